"""Background work yields to the chats: the renderer's two lanes and the lower priority of long reads."""

from __future__ import annotations

import os
import sys
import threading

import pytest

from bot.app import RENDERER_NICENESS, process_renderer, warm_renderer
from storage import migrate
from storage.db import READ_NICENESS, Database

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice values are Linux's")


def worker_pid() -> int:
    return os.getpid()


def residents_worker_pid() -> int:
    return os.getpid()


residents_worker_pid.for_residents = True  # type: ignore[attr-defined]


def niceness() -> int:
    return os.nice(0)


def test_a_residents_job_never_queues_behind_leaders_work_and_both_run_at_a_lower_priority():
    renderer = process_renderer()
    try:
        renderer.submit(warm_renderer).result(timeout=60)
        leaders = {renderer.submit(worker_pid).result(timeout=60) for _ in range(3)}
        residents = {renderer.submit(residents_worker_pid).result(timeout=60) for _ in range(3)}
        assert len(leaders) == 1 and len(residents) == 1 and leaders != residents  # one process each
        assert os.getpid() not in leaders | residents
        expected = min(os.nice(0) + RENDERER_NICENESS, 19)
        assert renderer.submit(niceness).result(timeout=60) == expected
    finally:
        renderer.shutdown(wait=True)


@linux_only
async def test_long_reads_run_on_threads_of_lower_priority_than_the_event_loop(tmp_path):
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'uu-tien.db'}")
    try:
        await migrate.upgrade(database.engine)
        mine = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        theirs = await database.read(lambda _: os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        assert theirs == min(mine + READ_NICENESS, 19)
        assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == mine  # the loop's thread is untouched
    finally:
        await database.dispose()
