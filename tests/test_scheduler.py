"""The scheduler: reminders at start and every 5 minutes with the injected clock, jobs configured for
misfires, a run in hand finishing at shutdown, and one scheduling process on PostgreSQL."""

from __future__ import annotations

import asyncio
import logging
import random
from datetime import datetime, timedelta

import pytest
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import text
from sqlmodel import select

from bot.app import build_services
from bot.scheduler import LOCK_JOB, REMINDERS, ReminderScheduler
from bot.settings import Settings
from storage.models import Delivery
from tests.test_deadlines import ZONE, local, store_commune


def jobs_of(scheduler: ReminderScheduler) -> dict[str, object]:
    return {job.id: job for job in scheduler.scheduler.get_jobs()}


async def test_reminders_run_at_start_then_every_five_minutes_with_the_injected_clock(services, clock):
    await store_commune(services)
    clock.now = local(2026, 12, 3, 8, 1)  # the 7-day reminders are due
    seen: list[datetime] = []

    async def extra(now: datetime) -> None:
        seen.append(now)

    scheduler = ReminderScheduler(services, jobs=[("extra", 60, extra)])
    started = datetime.now(ZONE)
    await scheduler.start()
    try:
        assert scheduler.holds_lock and not scheduler.uses_lock  # SQLite: one process by design
        jobs = jobs_of(scheduler)
        assert set(jobs) == {REMINDERS, "extra"}
        for name, seconds in ((REMINDERS, 300), ("extra", 60)):
            job = jobs[name]
            assert (job.coalesce, job.max_instances, job.misfire_grace_time) == (True, 1, seconds)
            assert isinstance(job.trigger, IntervalTrigger) and job.trigger.interval == timedelta(seconds=seconds)
            assert str(job.trigger.timezone) == "Asia/Ho_Chi_Minh"
        # Once right at start (the catch-up), without waiting five minutes.
        await asyncio.wait_for(scheduler.finished(REMINDERS).wait(), 10)
        await asyncio.wait_for(scheduler.finished("extra").wait(), 10)
        assert scheduler.runs[REMINDERS] == 1 and seen == [clock.now]
        async with services.database.session() as session:
            assert len((await session.exec(select(Delivery))).all()) == 5
        following = jobs_of(scheduler)[REMINDERS].next_run_time
        assert started + timedelta(seconds=299) <= following <= datetime.now(ZONE) + timedelta(seconds=300)
    finally:
        await scheduler.shutdown()
    assert not scheduler.scheduler.running


async def test_a_failing_job_is_logged_by_its_name_and_the_others_go_on(services, caplog):
    async def broken(now: datetime) -> None:
        raise ValueError("never logged as such")

    scheduler = ReminderScheduler(services, jobs=[("broken", 60, broken)])
    with caplog.at_level(logging.ERROR, logger="bot.scheduler"):
        await scheduler.start()
        try:
            await asyncio.wait_for(scheduler.finished("broken").wait(), 10)
            await asyncio.wait_for(scheduler.finished(REMINDERS).wait(), 10)
            assert set(jobs_of(scheduler)) == {REMINDERS, "broken"}  # still scheduled
        finally:
            await scheduler.shutdown()
    assert [record.getMessage() for record in caplog.records] == ["scheduled job failed: broken"]


async def test_shutdown_lets_the_run_in_hand_finish(services):
    began, release = asyncio.Event(), asyncio.Event()
    finished: list[bool] = []

    async def slow(now: datetime) -> None:
        began.set()
        await release.wait()
        finished.append(True)

    scheduler = ReminderScheduler(services, jobs=[("slow", 60, slow)])
    await scheduler.start()
    await asyncio.wait_for(began.wait(), 10)
    stopping = asyncio.create_task(scheduler.shutdown())
    for _ in range(5):  # yield to the loop a few turns (no time passes): shutdown gets to its wait
        await asyncio.sleep(0)
    assert not scheduler.scheduler.running and not stopping.done()  # stopped scheduling, waits for the run
    release.set()
    await asyncio.wait_for(stopping, 10)
    assert finished == [True]


def test_job_names_and_intervals_are_checked(services):
    async def job(now: datetime) -> None:
        return None

    for jobs in ([(REMINDERS, 60, job)], [("a", 60, job), ("a", 30, job)], [(LOCK_JOB, 60, job)], [("a", 0, job)]):
        with pytest.raises(ValueError):
            ReminderScheduler(services, jobs=jobs)


async def test_on_postgresql_one_process_schedules_and_another_takes_over(database_url, clock):
    if database_url.startswith("sqlite"):
        pytest.skip("PostgreSQL only: on SQLite one process owns the file")
    settings = Settings(_env_file=None, database_url=database_url)  # type: ignore[call-arg]
    first = await build_services(settings, clock=clock, rng=random.Random(1))
    second = await build_services(settings, clock=clock, rng=random.Random(2))
    one, other = ReminderScheduler(first), ReminderScheduler(second)
    try:
        await one.start()
        await other.start()
        assert one.holds_lock and not other.holds_lock
        assert set(jobs_of(one)) == {LOCK_JOB, REMINDERS} and set(jobs_of(other)) == {LOCK_JOB}
        lock_job = jobs_of(other)[LOCK_JOB]
        assert lock_job.trigger.interval == timedelta(seconds=60) and lock_job.coalesce
        await other.check_lock()  # the minute's retry: still held
        assert not other.holds_lock

        # The first process dies: its lock connection is gone, and the other takes over at its next try.
        assert one._lock_connection is not None
        pid = (await one._lock_connection.execute(text("SELECT pg_backend_pid()"))).scalar()
        async with second.database.engine.connect() as connection:
            assert (await connection.execute(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid})).scalar()
        await other.check_lock()
        assert other.holds_lock and set(jobs_of(other)) == {LOCK_JOB, REMINDERS}
        # The first one notices its broken connection: it stops scheduling, the lock being taken.
        await one.check_lock()
        assert not one.holds_lock and set(jobs_of(one)) == {LOCK_JOB}

        # A clean stop gives the lock up at once.
        await other.shutdown()
        await one.check_lock()
        assert one.holds_lock and set(jobs_of(one)) == {LOCK_JOB, REMINDERS}
    finally:
        for scheduler in (one, other):
            await scheduler.shutdown()
        await first.database.dispose()
        await second.database.dispose()
