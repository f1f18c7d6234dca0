"""Composition root: builds the services from settings and applies migrations at start."""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import random
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from datetime import UTC, datetime
from typing import Any, TypeVar

from bot.settings import Settings
from content.loader import load_catalog
from handlers.context import Clock, HandlerConfig, Services
from storage import migrate, queries
from storage.db import Database
from storage.deadlines import seed_default


def system_clock() -> datetime:
    return datetime.now(UTC)


def handler_config(settings: Settings) -> HandlerConfig:
    return HandlerConfig(
        zone=settings.zone,
        commune_name=settings.commune_name,
        pass_percent=settings.pass_percent,
        household_code_length=settings.household_code_length,
        household_code_tries=settings.household_code_tries,
        household_code_window_minutes=settings.household_code_window_minutes,
        max_text_length=settings.max_text_length,
        review_after_days=settings.review_after_days,
        ranking_min_people=settings.ranking_min_people,
        reminder_grace_hours=settings.reminder_grace_hours,
        nudge_after_days=settings.nudge_after_days,
        report_deadline=settings.deadline,
        telegram_username=settings.telegram_username,
        public_url=settings.public_url,
    )


async def prepare_database(database: Database, settings: Settings) -> None:
    """Bring the schema to the newest migration, check the database takes writes, and seed an empty
    directory from the settings."""
    await migrate.upgrade(database.engine)
    await database.check_writable()
    async with database.session() as session:
        await queries.seed_reference_data(session, settings.villages, settings.organisations)
        await seed_default(session, settings.deadline, datetime.now(UTC))  # only into a table never used


def warm_renderer() -> None:
    # matplotlib, openpyxl and python-docx take a second to import: once, before the first file.
    import docx  # noqa: F401
    import openpyxl  # noqa: F401

    import reports.charts  # noqa: F401


T = TypeVar("T")
RENDERER_NICENESS = 10


def _start_renderer() -> None:
    """In the renderer process: end with the bot, even when the bot is killed with SIGKILL.

    A pool worker outlives a killed parent (nothing tells it), holding the parent's stderr open and
    its memory. multiprocessing hands a spawned child a pipe from its parent that reaches end of file
    when the parent is gone, however early: the parent may die while this process is still importing,
    before this runs, which is why the parent's pid is not what it watches.
    """
    parent = multiprocessing.parent_process()
    assert parent is not None

    def watch() -> None:
        parent.join()  # returns when the parent's sentinel pipe closes
        os._exit(0)

    threading.Thread(target=watch, name="hocvuso-renderer-watch", daemon=True).start()
    # Charts and reports are background work: on a small machine a commune's report kept both cores
    # busy and the chats waited (residents' p99 7.7 times higher, docs/BENCHMARKS.md). A lower
    # priority lets every chat turn go first; the report only takes the time the chats leave.
    with contextlib.suppress(AttributeError, OSError):  # no nice() on Windows
        os.nice(RENDERER_NICENESS)
    # Where the home folder is not writable (a service account), matplotlib falls back to a temporary
    # cache by itself; its English warning about that would be the only line on the operator's stderr.
    logging.getLogger("matplotlib").setLevel(logging.ERROR)
    warm_renderer()


class Renderer(Executor):
    """Two processes at a lower priority: one for what a resident waits on (a certificate at the end of
    the course), one for leaders' charts and reports. A single queue made a resident who finished the
    course wait seconds behind ten leaders' charts or a commune's report (docs/BENCHMARKS.md)."""

    def __init__(self) -> None:
        spawn = multiprocessing.get_context("spawn")
        self._residents = ProcessPoolExecutor(max_workers=1, mp_context=spawn, initializer=_start_renderer)
        self._leaders = ProcessPoolExecutor(max_workers=1, mp_context=spawn, initializer=_start_renderer)

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        if fn is warm_renderer:  # start both now, not on the first chart or certificate
            self._residents.submit(fn)
            return self._leaders.submit(fn)  # type: ignore[return-value]
        pool = self._residents if getattr(fn, "for_residents", False) else self._leaders
        return pool.submit(fn, *args, **kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        for pool in (self._residents, self._leaders):
            pool.shutdown(wait=wait, cancel_futures=cancel_futures)


def process_renderer() -> Renderer:
    """The processes that draw charts and write files for `hocvuso run`.

    Drawing a chart is about 50 ms of pure Python; on a thread it holds the GIL and, with ten leaders
    asking at once, tripled the chats' p99 (docs/BENCHMARKS.md). "spawn" starts a clean interpreter,
    not a fork of one with an event loop and open database connections.
    """
    return Renderer()


async def build_services(
    settings: Settings, *, clock: Clock = system_clock, rng: random.Random | None = None,
    renderer: Executor | None = None,
) -> Services:
    """Load the content (raising ContentError), open and migrate the database."""
    catalog = load_catalog(settings.content_dir)
    database = Database(settings.database_url)
    try:
        await prepare_database(database, settings)
    except BaseException:
        await database.dispose()
        raise
    # Household codes must not be guessable, so the default source is the OS's.
    return Services(database, catalog, handler_config(settings), clock, rng or random.SystemRandom(), renderer)

