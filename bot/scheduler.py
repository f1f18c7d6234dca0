"""The scheduler of `hocvuso run` (APScheduler 3.11, `AsyncIOScheduler` in the commune's zone).

Jobs: the reminders (`handlers.deadlines.run_reminders`) every 5 minutes and once right at start, so
what a stopped process missed is caught up (within `HOCVUSO_REMINDER_GRACE_HOURS`, saying it is late);
and any periodic jobs the caller adds as (name, seconds, async callable taking `now`), such as the
learner nudges or closing announcements, which also run once at start. Every job gets `now` from the
injected clock (`services.clock`), `coalesce=True` (runs missed while the loop was busy become one),
`max_instances=1` and an explicit `misfire_grace_time` of one interval (APScheduler's default is 1 s).

Exactly-once is not the scheduler's job: every message a job makes is an outbox row under a unique
key, so a job run twice, or by two processes, stores it once. Still, one process schedules at a time:
- PostgreSQL: the process holding `pg_try_advisory_lock(LOCK_KEY)` on a connection of its own, kept
  open (in autocommit, so no transaction stays open) for the process's lifetime. The others schedule
  nothing and try again every minute, so one of them takes over within a minute of the holder's death
  (its connection closes and PostgreSQL releases the lock). A holder whose lock connection breaks
  stops scheduling until it gets the lock again.
- SQLite: one process owns the file by design, so it always schedules.

Wiring (bot/runtime.py), once the services are built and the outbox sender runs:

    from bot.scheduler import ReminderScheduler

    self.scheduler = ReminderScheduler(self.services, jobs=[("nudges", 900, nudge_job), ...])
    await self.scheduler.start()
    ...
    await self.scheduler.shutdown()  # in stop(), before the database is disposed: the run in hand finishes

A job that fails is logged by its name only and runs again at its next time.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from handlers.context import Services
from handlers.deadlines import run_reminders
from storage.db import is_sqlite

log = logging.getLogger(__name__)

Job = Callable[[datetime], Awaitable[Any]]
PeriodicJob = tuple[str, float, Job]
"""(name, every so many seconds, async callable taking now)."""

REMINDERS = "reminders"
REMINDER_SECONDS = 300
LOCK_JOB = "scheduler-lock"
LOCK_RETRY_SECONDS = 60
# One number for every hocvuso process on a database: derived from a name, so it does not collide by
# chance with another application's advisory locks on the same server.
LOCK_KEY = int.from_bytes(hashlib.sha256(b"hocvuso:scheduler").digest()[:8], "big", signed=True)


class ReminderScheduler:
    """Runs the reminders and the caller's periodic jobs, in one process at a time."""

    def __init__(
        self, services: Services, jobs: Sequence[PeriodicJob] = (), *,
        reminders: Callable[[Services, datetime], Awaitable[Any]] = run_reminders,
        every: float = REMINDER_SECONDS, lock_retry: float = LOCK_RETRY_SECONDS,
    ) -> None:
        self.services = services
        self._jobs: list[PeriodicJob] = [(REMINDERS, every, lambda now: reminders(services, now)), *jobs]
        names = [name for name, _, _ in self._jobs]
        if len(set(names)) != len(names) or LOCK_JOB in names:
            raise ValueError("job names must be unique")
        if any(seconds <= 0 for _, seconds, _ in self._jobs) or lock_retry <= 0:
            raise ValueError("job intervals must be positive")
        self._lock_retry = lock_retry
        self.scheduler = AsyncIOScheduler(timezone=services.config.zone)
        self.holds_lock = False
        self._lock_connection: AsyncConnection | None = None
        self._running: set[asyncio.Task[None]] = set()
        self._finished: dict[str, asyncio.Event] = {name: asyncio.Event() for name in names}
        self.runs: dict[str, int] = dict.fromkeys(names, 0)

    @property
    def uses_lock(self) -> bool:
        """PostgreSQL: several processes may share the database, so scheduling takes the lock."""
        return not is_sqlite(self.services.database.url)

    async def start(self) -> None:
        """Start; schedule now if this process may, else keep trying each `lock_retry` seconds."""
        self.scheduler.start()
        if self.uses_lock:
            self.scheduler.add_job(self.check_lock, "interval", seconds=self._lock_retry, id=LOCK_JOB,
                                   name=LOCK_JOB, misfire_grace_time=int(self._lock_retry), coalesce=True,
                                   max_instances=1)
        try:
            await self.try_lock()
        except Exception:  # the database is down: the lock job tries again in a minute
            log.warning("scheduler could not ask for its lock; trying again later", exc_info=True)

    async def try_lock(self) -> bool:
        """Take the scheduling role if it is free; True when this process holds it (always on SQLite)."""
        if self.holds_lock:
            return True
        if self.uses_lock:
            connection = await self.services.database.engine.connect()
            try:
                # Autocommit: the lock belongs to the session, and no transaction stays open for days.
                connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
                taken = (await connection.execute(text("SELECT pg_try_advisory_lock(:key)"),
                                                  {"key": LOCK_KEY})).scalar()
            except BaseException:
                await connection.close()
                raise
            if not taken:
                await connection.close()
                return False
            self._lock_connection = connection
            log.warning("this process runs the scheduler")
        self.holds_lock = True
        self._add_work_jobs()
        return True

    async def check_lock(self) -> None:
        """Each minute on PostgreSQL: see that the lock connection lives, or try to take the lock."""
        if self.holds_lock and self._lock_connection is not None:
            try:
                await self._lock_connection.execute(text("SELECT 1"))
                return
            except Exception:
                log.warning("scheduler lost its database connection; it stops scheduling until it gets the lock")
                await self._drop_role()
        try:
            await self.try_lock()
        except Exception:
            log.warning("scheduler could not ask for its lock; trying again later", exc_info=True)

    def _add_work_jobs(self) -> None:
        now = datetime.now(self.services.config.zone)
        for name, seconds, job in self._jobs:
            # First run right now: after a stop, what was missed is caught up at once.
            self.scheduler.add_job(self._wrap(name, job), "interval", seconds=seconds, id=name, name=name,
                                   next_run_time=now, misfire_grace_time=max(1, int(seconds)), coalesce=True,
                                   max_instances=1, replace_existing=True)

    def _remove_work_jobs(self) -> None:
        for name, _, _ in self._jobs:
            with contextlib.suppress(JobLookupError):
                self.scheduler.remove_job(name)

    def _wrap(self, name: str, job: Job) -> Callable[[], Awaitable[None]]:
        async def scheduled() -> None:
            # The work runs in a task of its own: APScheduler cancels its job tasks at shutdown, and a
            # run in the middle of its transaction should finish (shutdown() waits for it) instead.
            task = asyncio.create_task(self.run_job(name, job))
            self._running.add(task)
            task.add_done_callback(self._running.discard)
            await asyncio.shield(task)

        return scheduled

    async def run_job(self, name: str, job: Job) -> None:
        """One run of a job with the injected clock's `now`; a failure is logged by the job's name only."""
        try:
            await job(self.services.clock())
        except Exception:
            log.exception("scheduled job failed: %s", name)
        finally:
            self.runs[name] += 1
            self._finished[name].set()

    def finished(self, name: str) -> asyncio.Event:
        """Set after each run of the job `name` (cleared by whoever waits on it)."""
        return self._finished[name]

    async def _drop_role(self) -> None:
        self._remove_work_jobs()
        self.holds_lock = False
        connection, self._lock_connection = self._lock_connection, None
        if connection is None:
            return
        # A broken connection cannot unlock; closing it below releases the lock on the server.
        with contextlib.suppress(Exception):
            await connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": LOCK_KEY})
        # Invalidated, not returned to the pool: a pooled session would keep a lock it failed to release.
        with contextlib.suppress(Exception):
            await connection.invalidate()
        with contextlib.suppress(Exception):
            await connection.close()

    async def shutdown(self) -> None:
        """Stop scheduling, let the runs in hand finish, and give the lock up."""
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
            await asyncio.sleep(0)  # AsyncIOScheduler shuts down on the loop's next turn
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)
        await self._drop_role()
