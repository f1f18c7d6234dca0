"""Deadlines and reminders with an injected clock: the schedule of a year, each reminder stored once,
catch-up after a stop, nothing after the deadline or after a hand-in, and who is reminded."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import col, select

from bot.app import prepare_database
from bot.settings import Settings
from handlers.core import from_payload
from handlers.deadlines import reminder_key, run_reminders
from storage import deadlines
from storage.deadlines import DEFAULT_TITLE, DeadlineError
from storage.models import ChannelAccount, Deadline, Delivery, Membership, Organisation, Person, RoleGrant, Village
from tests.test_dialog_figures import FARMERS, WOMEN

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")


def local(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """A moment of the commune's clock, in UTC (as the clock gives it)."""
    return datetime(year, month, day, hour, minute, tzinfo=ZONE).astimezone(UTC)


@pytest.fixture
def settings(database_url: str) -> Settings:
    """Every test here on SQLite and, with TEST_DATABASE_URL, on PostgreSQL."""
    return Settings(_env_file=None, database_url=database_url)  # type: ignore[call-arg]


@dataclass
class Commune:
    """The people with roles here, by what they are; and the units' ids."""

    ids: dict[str, int]
    orgs: dict[str, int]
    villages: dict[str, int]


async def store_commune(services) -> Commune:
    """staff (also admin), admin_only, a leader of each of two organisations, a head of Thôn 1, a resident,
    a revoked leader; plus members of the farmers' union, two of whom finished nothing."""
    now = services.clock()
    async with services.database.session() as session:
        villages = {v.name: v.id for v in (await session.exec(select(Village))).all()}
        orgs = {o.name: o.id for o in (await session.exec(select(Organisation))).all()}
        roles = {
            "staff": [("staff", None, None), ("admin", None, None)],
            "admin_only": [("admin", None, None)],
            "farmers": [("leader", FARMERS, None)],
            "women": [("leader", WOMEN, None)],
            "head": [("village_head", None, "Thôn 1")],
            "resident": [],
            "revoked": [("leader", FARMERS, None)],
        }
        ids = {}
        for name, grants in roles.items():
            person = Person(full_name=f"Người {name}", consent_at=now, created_at=now)
            session.add(person)
            await session.flush()
            ids[name] = person.id
            session.add(ChannelAccount(channel="console", external_id=f"role-{name}", person_id=person.id,
                                     created_at=now))
            for role, org, village in grants:
                session.add(RoleGrant(person_id=person.id, role=role, organisation_id=orgs.get(org),
                                      village_id=villages.get(village), granted_at=now,
                                      revoked_at=now if name == "revoked" else None))
        for number in range(2):
            member = Person(full_name=f"Hội viên {number}", village_id=villages["Thôn 1"], consent_at=now,
                            created_at=now)
            session.add(member)
            await session.flush()
            session.add(Membership(person_id=member.id, organisation_id=orgs[FARMERS], confirmed=True))
    return Commune(ids, orgs, villages)


async def rows(services) -> list[Delivery]:
    async with services.database.session() as session:
        return list((await session.exec(select(Delivery).order_by(col(Delivery.id)))).all())


async def only_default(services) -> Deadline:
    async with services.database.session() as session:
        found = await deadlines.active_deadlines(session)
    assert len(found) == 1
    return found[0]


def all_units(commune: Commune) -> set[str]:
    return {f"org:{i}" for i in commune.orgs.values()} | {f"village:{i}" for i in commune.villages.values()}


# --- the default deadline -----------------------------------------------------------------------

async def test_the_default_deadline_is_seeded_once_and_stays_removed(services, settings):
    deadline = await only_default(services)
    assert (deadline.title, deadline.day, deadline.month, deadline.year) == (DEFAULT_TITLE, 10, 12, None)
    assert (deadline.remind_days, deadline.remind_hour, deadline.audience) == ([30, 14, 7, 3, 1, 0], 8, "all")
    await prepare_database(services.database, settings)  # every start runs it again
    assert (await only_default(services)).id == deadline.id
    async with services.database.session() as session:
        await deadlines.remove_deadline(session, deadline.id, services.clock())
    await prepare_database(services.database, settings)
    async with services.database.session() as session:
        assert await deadlines.active_deadlines(session) == []
        assert len((await session.exec(select(Deadline))).all()) == 1


# --- the schedule ---------------------------------------------------------------------------------

def test_the_schedule_of_a_whole_year_every_five_minutes():
    """Ticking every 5 minutes for 13 months: each reminder becomes due at its moment, and the newest
    due one is always the one just passed; the ticks after the deadline's day find nothing."""
    deadline = Deadline(id=1, title="Báo cáo", day=10, month=12, remind_days=[30, 14, 7, 3, 1, 0], remind_hour=8,
                        audience="all", organisation_ids=[], created_at=local(2026, 1, 1))
    first_seen: dict[tuple[date, int], datetime] = {}
    tick, end = local(2026, 11, 1), local(2027, 12, 11, 1)
    while tick < end:
        for due in deadlines.reminders_due([deadline], tick, ZONE, timedelta(hours=24)):
            first_seen.setdefault((due.due_on, due.days_before), tick)
            assert tick < deadlines.day_end(due.due_on, ZONE)
            assert due.late == (tick - due.moment > timedelta(minutes=10))
        tick += timedelta(minutes=5)
    expected = {}
    for year in (2026, 2027):
        for days in (30, 14, 7, 3, 1, 0):
            moment = datetime(year, 12, 10, 8, tzinfo=ZONE) - timedelta(days=days)
            expected[(date(year, 12, 10), days)] = moment.astimezone(UTC)
    assert first_seen == expected
    schedule = deadlines.schedule_of(deadline, 2026, ZONE)
    assert [moment.astimezone(ZONE).strftime("%d/%m %H:%M") for _, moment in schedule] == [
        "10/11 08:00", "26/11 08:00", "03/12 08:00", "07/12 08:00", "09/12 08:00", "10/12 08:00"]


async def test_each_reminder_is_stored_once_however_often_the_job_runs(services):
    """run_reminders every 3 hours, every 5 minutes around each moment, and twice each time: one row per
    reminder and recipient, stored at the first run at or after its moment."""
    commune = await store_commune(services)
    deadline = await only_default(services)
    moments = [local(2026, 12, 10, 8) - timedelta(days=days) for days in (30, 14, 7, 3, 1, 0)]
    ticks = set()
    tick = local(2026, 11, 2)
    while tick < local(2026, 12, 12):
        ticks.add(tick)
        tick += timedelta(hours=3)
    for moment in moments:
        ticks.update(moment + timedelta(minutes=5 * n) for n in range(-6, 12))
    made = 0
    for tick in sorted(ticks):
        made += await run_reminders(services, tick)
        made += await run_reminders(services, tick)  # a second process, or a restart
    stored = await rows(services)
    recipients = {("staff", "commune"), ("admin_only", "commune"), ("farmers", f"org:{commune.orgs[FARMERS]}"),
                  ("women", f"org:{commune.orgs[WOMEN]}"), ("head", f"village:{commune.villages['Thôn 1']}")}
    expected = {(f"reminder:{deadline.id}:2026-12-10:{days}:{commune.ids[who]}:{unit}", moment)
                for days, moment in zip((30, 14, 7, 3, 1, 0), moments, strict=True) for who, unit in recipients}
    assert {(row.key, row.created_at) for row in stored} == expected
    assert made == len(stored) == 30
    assert all(row.kind == "reminder" and row.status == "queued" and row.channel == "console" for row in stored)
    assert all(row.expires_at == local(2026, 12, 11) for row in stored)  # the end of the due day


async def test_someone_who_blocked_the_bot_is_not_counted_for_again_and_again(services, monkeypatch):
    from storage import figures

    await store_commune(services)
    async with services.database.session() as session:
        for account in (await session.exec(select(ChannelAccount))).all():
            account.blocked = True
            session.add(account)
    counts = []
    original = figures.commune_figures
    monkeypatch.setattr(figures, "commune_figures", lambda *args: counts.append(1) or original(*args))
    for minutes in (0, 5, 10):
        assert await run_reminders(services, local(2026, 12, 3, 8, minutes)) == 0
    assert counts == [] and await rows(services) == []


async def test_catch_up_after_a_stop_says_it_is_late_and_skips_what_is_too_old(services):
    commune = await store_commune(services)
    # Stopped from the evening of 02/12 to 15:00 on 03/12: the 7-day reminder goes, late.
    assert await run_reminders(services, local(2026, 12, 3, 15)) == 5
    text = from_payload((await rows(services))[0].payload)[0].text
    assert "còn 7 ngày" in text
    assert "Tin nhắc này đến muộn: lẽ ra gửi lúc 08:00 ngày 03/12, nhưng hệ thống đã tạm ngừng." in text
    # Stopped for more than the grace window (24 h) past the 3-day reminder: it is skipped.
    assert await run_reminders(services, local(2026, 12, 8, 8, 5)) == 0
    # On time (within a few minutes of 08:00): not late.
    assert await run_reminders(services, local(2026, 12, 9, 8, 5)) == 5
    text = from_payload((await rows(services))[-1].payload)[0].text
    assert "muộn" not in text and "còn 1 ngày (hạn là ngày mai)" in text
    # The day-0 reminder caught up at 23:59 of the due day; from midnight on, nothing.
    assert await run_reminders(services, local(2026, 12, 11, 0, 0)) == 0
    assert await run_reminders(services, local(2026, 12, 10, 23, 59)) == 5
    text = from_payload((await rows(services))[-1].payload)[0].text
    assert "hôm nay là hạn cuối" in text and "đến muộn" in text
    assert await run_reminders(services, local(2026, 12, 11, 0, 1)) == 0
    assert len(await rows(services)) == 15
    assert commune.ids  # everyone with a role was reached each time (5 recipients)


async def test_a_long_stop_sends_only_the_newest_missed_reminder(services):
    await store_commune(services)
    long_grace = replace(services, config=replace(services.config, reminder_grace_hours=120))
    # Stopped from 02/12 to 09:00 on 07/12: the 7-day (03/12) and 3-day (07/12) ones were missed.
    assert await run_reminders(long_grace, local(2026, 12, 7, 9)) == 5
    assert {row.key.split(":")[3] for row in await rows(services)} == {"3"}


async def test_no_reminder_for_a_unit_that_handed_in(services):
    commune = await store_commune(services)
    deadline = await only_default(services)
    farmers, village = f"org:{commune.orgs[FARMERS]}", f"village:{commune.villages['Thôn 1']}"
    async with services.database.session() as session:
        assert await deadlines.hand_in(session, deadline.id, date(2026, 12, 10), farmers, commune.ids["farmers"],
                                       services.clock())
        assert not await deadlines.hand_in(session, deadline.id, date(2026, 12, 10), farmers, None, services.clock())
        assert await deadlines.handed_in(session, deadline.id, date(2026, 12, 10)) == {farmers}
    await run_reminders(services, local(2026, 12, 3, 8))
    units = {row.key.rsplit(":", 2)[1] + ":" + row.key.rsplit(":", 1)[1] for row in await rows(services)}
    assert farmers not in units and village in units
    staff_text = next(from_payload(row.payload)[0].text for row in await rows(services)
                      if row.person_id == commune.ids["staff"])
    assert f"• Đã nộp: 1/{len(all_units(commune))} đơn vị" in staff_text
    # The commune's own hand-in stops the staff's reminders of that occurrence, not the next year's.
    async with services.database.session() as session:
        await deadlines.hand_in(session, deadline.id, date(2026, 12, 10), "commune", None, services.clock())
    await run_reminders(services, local(2026, 12, 7, 8))
    latest = [row for row in await rows(services) if ":2026-12-10:3:" in row.key]
    assert {row.person_id for row in latest} == {commune.ids["women"], commune.ids["head"]}
    await run_reminders(services, local(2027, 11, 10, 8))
    assert {row.person_id for row in await rows(services) if ":2027-12-10:30:" in row.key} == {
        commune.ids[name] for name in ("staff", "admin_only", "farmers", "women", "head")}


async def test_each_audience_reaches_its_people(services):
    commune = await store_commune(services)
    now = services.clock()
    async with services.database.session() as session:
        default = (await deadlines.active_deadlines(session))[0]
        await deadlines.edit_deadline(session, default.id, now=now, zone=ZONE, paused=True)
        orgs = await deadlines.add_deadline(session, title="Báo cáo Hội Phụ nữ", day=20, month=11, year=2026, now=now,
                                            zone=ZONE, remind_days=[0], audience="organisations",
                                            organisation_ids=[commune.orgs[WOMEN]])
        staff = await deadlines.add_deadline(session, title="Tổng kết xã", day=20, month=11, year=None, now=now,
                                             zone=ZONE, remind_days=[0], audience="staff")
    await run_reminders(services, local(2026, 11, 20, 8))
    reached = {(row.key.split(":")[1], row.person_id, row.key.split(":", 5)[5]) for row in await rows(services)}
    staff_ids = {commune.ids["staff"], commune.ids["admin_only"]}
    assert reached == (
        {(str(orgs.id), person, "commune") for person in staff_ids}
        | {(str(orgs.id), commune.ids["women"], f"org:{commune.orgs[WOMEN]}")}
        | {(str(staff.id), person, "commune") for person in staff_ids}
    )  # paused: nothing of the default; nobody revoked, no resident; staff who is also admin once


async def test_the_reminder_shows_the_units_figures_and_two_buttons(services):
    commune = await store_commune(services)
    deadline = await only_default(services)
    await run_reminders(services, local(2026, 12, 3, 8, 2))
    farmers = f"org:{commune.orgs[FARMERS]}"
    row = next(row for row in await rows(services) if row.person_id == commune.ids["farmers"])
    assert row.key == f"reminder:{deadline.id}:2026-12-10:7:{commune.ids['farmers']}:{farmers}"
    [reply] = from_payload(row.payload)
    assert reply.text.startswith(f"🔔 Nhắc hạn báo cáo\n{DEFAULT_TITLE}\n📅 Hạn nộp: 10/12/2026 – còn 7 ngày.")
    assert f"📊 {FARMERS} (đến 03/12/2026):\n• Thành viên: 2\n• Hoàn thành khóa cơ bản: 0 (0%)" in reply.text
    assert "muộn" not in reply.text and "Đã nộp" not in reply.text  # only staff see the units' count
    assert [(b.label, b.action) for row_ in reply.buttons for b in row_] == [
        ("📑 Lấy báo cáo", f"bc:{farmers}"), ("✅ Đơn vị đã nộp báo cáo", f"dn:{deadline.id}:20261210:{farmers}")]
    head = next(row for row in await rows(services) if row.person_id == commune.ids["head"])
    assert "📊 Thôn 1 (đến 03/12/2026):\n• Người đăng ký: 2" in from_payload(head.payload)[0].text
    staff = next(row for row in await rows(services) if row.person_id == commune.ids["staff"])
    assert "📊 xã Cát Thành" in from_payload(staff.payload)[0].text
    assert len(row.key) <= 160 and reminder_key  # the key fits its column


async def test_paused_removed_and_past_deadlines_remind_nobody(services):
    await store_commune(services)
    deadline = await only_default(services)
    now = services.clock()
    async with services.database.session() as session:
        await deadlines.edit_deadline(session, deadline.id, now=now, zone=ZONE, paused=True)
    assert await run_reminders(services, local(2026, 12, 3, 8)) == 0
    async with services.database.session() as session:
        await deadlines.edit_deadline(session, deadline.id, now=now, zone=ZONE, paused=False)
        once = await deadlines.add_deadline(session, title="Sơ kết", day=5, month=12, year=2026, now=now, zone=ZONE,
                                            remind_days=[3, 0])
        await deadlines.remove_deadline(session, deadline.id, now)
    assert await run_reminders(services, local(2026, 12, 3, 8)) == 0  # removed
    assert await run_reminders(services, local(2026, 12, 2, 8)) == 5  # the one-off, 3 days before
    assert await run_reminders(services, local(2026, 12, 5, 8)) == 5
    assert await run_reminders(services, local(2026, 12, 6, 8)) == 0  # past: no occurrence any more
    async with services.database.session() as session:
        assert deadlines.next_occurrence(once, date(2026, 12, 6)) is None


# --- what people type -------------------------------------------------------------------------

@pytest.mark.parametrize(("typed", "parsed"), [
    ("10/12", (10, 12, None)), (" 1/6 ", (1, 6, None)), ("30/06/2027", (30, 6, 2027)), ("29/02/2028", (29, 2, 2028)),
    ("5-9-2030", (5, 9, 2030)), ("05.09", (5, 9, None)), ("１０／１２", (10, 12, None)),
])
def test_dates_people_type(typed, parsed):
    assert deadlines.parse_date(typed) == parsed


@pytest.mark.parametrize(("typed", "says"), [
    ("31/02", "không có thật"), ("29/02", "không có trong mọi năm"), ("29/02/2027", "không có thật"),
    ("10/13", "không có thật"), ("mười hai", "chưa hiểu"), ("10/12/26", "chưa hiểu"), ("", "chưa hiểu"),
    ("10/12/1999", "Năm cần từ 2000 đến 2100"), ("١٠/١٢", "chưa hiểu"),
])
def test_bad_dates_are_answered_politely(typed, says):
    with pytest.raises(DeadlineError, match=says):
        deadlines.parse_date(typed)


def test_titles_days_and_audiences_are_checked():
    assert deadlines.clean_title("  Sơ kết   2027 ") == "Sơ kết 2027"
    for bad, says in (("   ", "đang trống"), ("x" * 201, "dài quá")):
        with pytest.raises(DeadlineError, match=says):
            deadlines.clean_title(bad)
    assert deadlines.check_days([0, 7, 7, 30]) == [30, 7, 0]
    for bad in ([], [-1], [366]):
        with pytest.raises(DeadlineError):
            deadlines.check_days(bad)
    with pytest.raises(DeadlineError, match="ít nhất một tổ chức"):
        deadlines.check_audience("organisations", [])
    with pytest.raises(DeadlineError):
        deadlines.check_audience("everyone", [])
    with pytest.raises(DeadlineError, match="đã qua"):
        deadlines.check_future(1, 1, 2026, date(2026, 11, 2))
