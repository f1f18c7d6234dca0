"""/hoatdong in chat, its storage and `hocvuso activities list|export`.

The conversations run on the console, Telegram and Zalo, each on SQLite and (with TEST_DATABASE_URL) on
PostgreSQL; the counts are checked against counts made here, independently, from the data stored here.
"""

from __future__ import annotations

import asyncio
import functools
import io
import random
import unicodedata
from datetime import date, timedelta
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook
from sqlmodel import col, select
from typer.testing import CliRunner

from bot.app import build_services
from bot.cli import app
from bot.settings import Settings
from handlers.dispatcher import Dispatcher
from storage import access, activities
from storage.activities import ActivityError, UnitRef
from storage.models import (
    AuditLog,
    Membership,
    Organisation,
    Person,
    RoleGrant,
    UnitActivity,
    UnitActivityMember,
)
from storage.report import reporting_period
from tests.support import converse
from tests.test_dialog_deadlines import unit_ids, with_role
from tests.test_dialog_figures import FARMERS, WOMEN

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
DEADLINE = (10, 12)
TODAY = date(2026, 11, 2)  # tests.support.START in the commune's zone
NOT_RESPONSIBLE = "Ghi hoạt động dành cho lãnh đạo tổ chức, trưởng thôn và cán bộ xã"
NOT_YOURS = "Bạn không phụ trách đơn vị này"
STALE = "Nút này đã cũ"
FIELD_NAMES = set(activities.FIELDS) | {"removed_at"}
# Members of the farmers' association: (name, confirmed, consent version).
FARMERS_MEMBERS = [("Nguyễn Văn An", True, 2), ("Trần Thị Bình", True, 2), ("Lê Văn Cường", True, 2),
                   ("Phạm Văn Kín", True, 1), ("Hoàng Thị Tự Khai", False, 2)]


@pytest.fixture
def settings(database_url: str) -> Settings:
    """The conversations and the counts on SQLite and, with TEST_DATABASE_URL, on PostgreSQL."""
    return Settings(_env_file=None, database_url=database_url)  # type: ignore[call-arg]


async def add_members(services, organisation: str, people: list[tuple[str, bool, int]]) -> dict[str, int]:
    """People who said they belong to `organisation` (confirmed or not, named or not): name -> id."""
    now = services.clock()
    ids = {}
    async with services.database.session() as session:
        organisation_id = (await session.exec(select(Organisation.id).where(Organisation.name == organisation))).one()
        for name, confirmed, version in people:
            person = Person(full_name=name, consent_version=version, consent_offered=2, consent_at=now,
                            created_at=now)
            session.add(person)
            await session.flush()
            session.add(Membership(person_id=person.id, organisation_id=organisation_id, confirmed=confirmed))
            ids[name] = person.id
    return ids


async def stored(services) -> list[UnitActivity]:
    async with services.database.session() as session:
        return list((await session.exec(select(UnitActivity).order_by(col(UnitActivity.id)))).all())


async def present(services, activity_id: int) -> set[int]:
    async with services.database.session() as session:
        return set((await session.exec(select(UnitActivityMember.person_id)
                                       .where(UnitActivityMember.activity_id == activity_id))).all())


async def audit_rows(services, *actions: str) -> list[AuditLog]:
    async with services.database.session() as session:
        rows = (await session.exec(select(AuditLog).where(col(AuditLog.action).in_(actions))
                                   .order_by(col(AuditLog.id)))).all()
    return list(rows)


async def assert_audit_holds_no_words(services, *words: str) -> None:
    """Every audit line of activities holds ids and field names only."""
    for row in await audit_rows(services, "activity_recorded", "activity_corrected", "activity_removed",
                                "activities_view", "activities_export"):
        for value in row.model_dump().values():
            assert not any(word in str(value) for word in words), row
        assert row.detail is None or set(row.detail.split(",")) <= FIELD_NAMES, row.detail


# --- a leader: record, correct, remove ---------------------------------------------------------------------

async def test_a_leader_records_corrects_and_removes_an_activity(make_chat, services):
    orgs, villages = await unit_ids(services)
    members = await add_members(services, FARMERS, FARMERS_MEMBERS)
    leader = await with_role(make_chat, services, "leader", "leader", org=FARMERS)
    title = "Tuyên truyền chữ ký số"
    await converse(leader, [
        ("/hoatdong", f"{FARMERS}: hoạt động năm báo cáo 2026 (từ 11/12/2025 đến 10/12/2026)"),
        ("#Ghi hoạt động mới", "Đây là loại hoạt động nào?"),
        ("#Tuyên truyền", "Hoạt động diễn ra ngày nào?"),
        ("31/02", "Ngày 31/02 không có thật"),
        ("mai", "Mình chưa hiểu ngày này"),
        ("20/11/2026", "Ngày 20/11/2026 chưa tới"),
        ("01/01/2024", "Ngày 01/01/2024 đã quá xa"),
        ("20/10", "Tên hoạt động là gì?"),
        ("\u200b", "Tên hoạt động đang trống"),
        ("x" * 161, "Tên hoạt động dài quá (161 ký tự, tối đa 160)"),
        (title, "Hoạt động diễn ra ở đâu?"),
        ("#Thôn 2", "Có bao nhiêu người tham dự?"),
        ("mười", "Bạn gõ số người tham dự bằng chữ số"),
        ("100001", "Số người tham dự cần từ 0 đến 100.000"),
        ("2", "Thành viên có mặt"),
        ("#Nguyễn Văn An", "Đã chọn: 1 người"),
        ("#Lê Văn Cường", "Đã chọn: 2 người"),
        ("binh", "Đang tìm “binh”: 1 người khớp"),
        ("#Trần Thị Bình", "Đã chọn: 3 người"),
        ("#Xong", "Đã ghi tên 3 thành viên có mặt, nhiều hơn số người tham dự (2)"),
        ("#Bỏ tìm", "☑️ Lê Văn Cường"),
        ("#Lê Văn Cường", "Đã chọn: 2 người"),
        ("#Xong", "Kiểm tra lại trước khi lưu"),
    ])
    summary = leader.transcript
    for line in (f"• Đơn vị: {FARMERS}", "• Loại: Tuyên truyền", "• Ngày: 20/10/2026", f"• Tên: {title}",
                 "• Nơi: Thôn 2", "• Số người tham dự: 2", "• Thành viên có mặt được ghi tên: 2"):
        assert line in summary, f"{line!r} not in\n{summary}"
    assert "Phạm Văn Kín" not in summary and "Hoàng Thị Tự Khai" not in summary
    assert await stored(services) == []  # nothing is stored before "Lưu"
    answer = await leader.choose("Lưu")
    assert "✅ Đã lưu hoạt động." in answer and "Nguyễn Văn An, Trần Thị Bình" in answer
    [activity] = await stored(services)
    assert (activity.organisation_id, activity.village_id, activity.kind, activity.held_on, activity.title,
            activity.place, activity.place_village_id, activity.participants) == (
        orgs[FARMERS], None, "tuyen-truyen", date(2026, 10, 20), title, None, villages["Thôn 2"], 2)
    assert await present(services, activity.id) == {members["Nguyễn Văn An"], members["Trần Thị Bình"]}
    [recorded] = await audit_rows(services, "activity_recorded")
    assert (recorded.outcome, recorded.record_id, recorded.organisation_id, recorded.detail) == (
        "ok", activity.id, orgs[FARMERS], "kind,held_on,title,place_village_id,participants,members")

    await converse(leader, [
        ("#Sửa", f"Bạn muốn sửa mục nào của hoạt động “{title}”?"),
        ("#Sửa số người", "(Hiện tại: 2)"),
        ("1", "Đã ghi tên 2 thành viên có mặt, nhiều hơn số người tham dự (1)"),
        ("40", "✅ Đã sửa: số người."),
        ("#Sửa", "Bạn muốn sửa mục nào"),
        ("#Sửa ngày", "(Hiện tại: 20/10/2026)"),
        ("05/12/2025", "Ngày 05/12/2025 thuộc năm báo cáo đã khép lại"),
        ("15/10/2026", "✅ Đã sửa: ngày."),
        ("#Sửa", "Bạn muốn sửa mục nào"),
        ("#Sửa nơi", "(Hiện tại: Thôn 2)"),
        ("Nhà văn hóa thôn 2", "✅ Đã sửa: nơi."),
        ("#Sửa", "Bạn muốn sửa mục nào"),
        ("#Sửa thành viên", "Đã chọn: 2 người"),
        ("#Trần Thị Bình", "Đã chọn: 1 người"),
        ("#Xong", "✅ Đã sửa: thành viên có mặt."),
        ("#Sửa", "Bạn muốn sửa mục nào"),
        ("#Sửa tên", f"(Hiện tại: {title})"),
        (title, "Không có gì thay đổi."),
    ])
    for line in ("• Ngày: 15/10/2026", "• Nơi: Nhà văn hóa thôn 2", "• Số người tham dự: 40",
                 "• Thành viên có mặt được ghi tên: 1 (Nguyễn Văn An)"):
        assert line in leader.transcript, line
    [activity] = await stored(services)
    assert (activity.held_on, activity.place, activity.place_village_id, activity.participants) == (
        date(2026, 10, 15), "Nhà văn hóa thôn 2", None, 40)
    assert await present(services, activity.id) == {members["Nguyễn Văn An"]}
    corrected = await audit_rows(services, "activity_corrected")
    assert [(row.outcome, row.record_id, row.organisation_id, row.detail) for row in corrected] == [
        ("ok", activity.id, orgs[FARMERS], "participants"), ("ok", activity.id, orgs[FARMERS], "held_on"),
        ("ok", activity.id, orgs[FARMERS], "place,place_village_id"), ("ok", activity.id, orgs[FARMERS], "members")]

    await leader.say("/hoatdong")
    assert "Đã ghi 1 hoạt động, 40 lượt người tham dự." in leader.transcript
    await converse(leader, [
        ("#📌 1.", "📌 Tuyên truyền chữ ký số"),
        ("#Xóa", f"Xóa hoạt động “{title}” ngày 15/10/2026?"),
        ("#Không xóa", "• Số người tham dự: 40"),
        ("#Xóa", "Xóa hoạt động"),
        ("#Xóa hẳn", f"🗑️ Đã xóa hoạt động “{title}”."),
    ])
    assert "Chưa ghi hoạt động nào trong năm báo cáo này." in leader.transcript
    [activity] = await stored(services)
    assert activity.removed_at == services.clock()
    [removed] = await audit_rows(services, "activity_removed")
    assert (removed.record_id, removed.organisation_id, removed.detail) == (activity.id, orgs[FARMERS], "removed_at")
    assert "Nút này đã cũ" in await leader.press(f"hdx:del:{activity.id}")  # the confirmation, once more
    assert len(await audit_rows(services, "activity_removed")) == 1
    await assert_audit_holds_no_words(services, title, "Nhà văn hóa", "Thôn 2", "Nguyễn", "Trần", "Người leader")


async def test_bad_answers_lose_nothing_even_across_a_restart(make_chat, services):
    """A village head: every wrong answer is answered and asked again; the draft survives a new process."""
    _, villages = await unit_ids(services)
    head = await with_role(make_chat, services, "head", "village_head", village="Thôn 3")
    await converse(head, [
        ("/hoatdong", "Thôn 3: hoạt động năm báo cáo 2026"),
        ("#Ghi hoạt động mới", "Đây là loại hoạt động nào?"),
        ("xin chào", "Bạn hãy chọn một mục bên dưới"),
        ("#Hỗ trợ tại nhà", "ngày nào"),
        ("03/11/2026", "chưa tới"),
        ("28/02/2026", "Tên hoạt động là gì?"),
        ("   ", "Mình chưa thấy nội dung tin nhắn"),
        ("Hướng dẫn dùng VNeID tại nhà", "ở đâu"),
    ])
    restarted = make_chat("head", dispatcher=Dispatcher(services))  # another process, the same chat
    await converse(restarted, [
        ("x" * 121, "Tên nơi tổ chức dài quá (121 ký tự, tối đa 120)"),
        ("Xóm Đồng", "Có bao nhiêu người tham dự?"),
        (" ", "Mình chưa thấy nội dung tin nhắn"),
        ("mười hai", "bằng chữ số"),
        ("-3", "bằng chữ số"),
        ("1.200", "Kiểm tra lại trước khi lưu"),  # a village has no member list: straight to the summary
    ])
    summary = restarted.transcript
    for line in ("• Đơn vị: Thôn 3", "• Loại: Hỗ trợ tại nhà", "• Ngày: 28/02/2026",
                 "• Tên: Hướng dẫn dùng VNeID tại nhà", "• Nơi: Xóm Đồng", "• Số người tham dự: 1200"):
        assert line in summary, f"{line!r} not in\n{summary}"
    assert "Thành viên có mặt" not in summary
    await restarted.choose("Sửa ngày")
    assert "Ngày 29/02/2026 không có thật" in await restarted.say("29/02/2026")
    assert "Kiểm tra lại trước khi lưu" in await restarted.say("27/02")  # back to the summary, the rest kept
    assert "• Ngày: 27/02/2026" in restarted.transcript and "• Nơi: Xóm Đồng" in restarted.transcript
    assert "✅ Đã lưu hoạt động." in await restarted.choose("Lưu")
    [activity] = await stored(services)
    assert (activity.organisation_id, activity.village_id, activity.kind, activity.held_on, activity.place,
            activity.participants) == (None, villages["Thôn 3"], "ho-tro-tai-nha", date(2026, 2, 27), "Xóm Đồng", 1200)
    [recorded] = await audit_rows(services, "activity_recorded")
    assert (recorded.village_id, recorded.organisation_id, recorded.detail) == (
        villages["Thôn 3"], None, "kind,held_on,title,place,participants")


# --- staff, residents, and forged buttons --------------------------------------------------------------------

async def test_staff_record_for_the_commune_and_open_any_unit(make_chat, services):
    orgs, _ = await unit_ids(services)
    staff = await with_role(make_chat, services, "staff", "staff")
    await converse(staff, [
        ("/hoatdong", "Bạn ghi hoạt động cho đơn vị nào?"),
        ("#Toàn xã", "Toàn xã: hoạt động năm báo cáo 2026"),
        ("#Ghi hoạt động mới", "Ghi hoạt động mới cho Toàn xã"),
        ("#Hội thi", "ngày nào"),
        ("01/11/2026", "Tên hoạt động"),
        (unicodedata.normalize("NFD", "Hội thi “Công dân số” cấp xã"), "ở đâu"),  # as Unikey's "tổ hợp" types
        ("Hội trường UBND xã", "bao nhiêu người"),
        ("150", "Kiểm tra lại trước khi lưu"),
        ("#Lưu", "✅ Đã lưu hoạt động."),
        ("#Danh sách hoạt động", "Đã ghi 1 hoạt động, 150 lượt người tham dự."),
        ("#Đơn vị khác", "Bạn ghi hoạt động cho đơn vị nào?"),
        ("#Một tổ chức", "Chọn tổ chức"),
        (f"#{WOMEN}", f"{WOMEN}: hoạt động năm báo cáo 2026"),
        ("#Ghi hoạt động mới", f"Ghi hoạt động mới cho {WOMEN}"),
    ])
    [activity] = await stored(services)
    assert (activity.organisation_id, activity.village_id, activity.kind, activity.title, activity.participants) == (
        None, None, "hoi-thi", "Hội thi “Công dân số” cấp xã", 150)
    [recorded] = await audit_rows(services, "activity_recorded")
    assert (recorded.organisation_id, recorded.village_id, recorded.record_id) == (None, None, activity.id)
    # The women's union has no member list with names yet: the draft goes on without that step.
    await converse(staff, [("#tập huấn", "ngày nào"), ("02/11", "Tên"), ("Lớp dùng điện thoại", "ở đâu"),
                           ("#Thôn 1", "bao nhiêu"), ("25", "chưa ghi tên được")])
    assert "✅ Đã lưu hoạt động." in await staff.choose("Lưu")
    assert [a.organisation_id for a in await stored(services)] == [None, orgs[WOMEN]]


async def test_a_resident_and_a_guest_are_refused_politely(make_chat, services):
    orgs, _ = await unit_ids(services)
    guest = make_chat("guest")
    assert NOT_RESPONSIBLE in await guest.say("/hoatdong")
    resident = await with_role(make_chat, services, "resident", "leader", org=WOMEN)
    async with services.database.session() as session:  # a resident: the grant taken back
        grant = (await session.exec(select(RoleGrant))).first()
        await access.revoke(session, grant.id, services.clock())
    assert NOT_RESPONSIBLE in await resident.say("/hoatdong")
    assert NOT_RESPONSIBLE in await resident.press(f"hd:new:org:{orgs[WOMEN]}")
    assert NOT_RESPONSIBLE in await resident.press("hd:u:commune")
    assert await stored(services) == []
    assert [row.outcome for row in await audit_rows(services, "activities_view", "activity_recorded")] == [
        "refused"] * 4


async def test_a_leader_cannot_record_for_another_unit(make_chat, services):
    orgs, villages = await unit_ids(services)
    async with services.database.session() as session:
        theirs = await activities.create(
            session, unit=UnitRef(organisation_id=orgs[WOMEN]), kind="tap-huan", held_on=date(2026, 10, 1),
            title="Lớp của Hội Phụ nữ", place=None, place_village_id=villages["Thôn 1"], participants=30,
            recorded_by=None, now=services.clock())
    leader = await with_role(make_chat, services, "leader", "leader", org=FARMERS)
    women = orgs[WOMEN]
    for forged in (f"hd:u:org:{women}", f"hd:u:org:{women}:1", f"hd:new:org:{women}", f"hd:xlsx:org:{women}",
                   f"hd:open:{theirs.id}", f"hd:fix:{theirs.id}", f"hd:f:{theirs.id}:title", f"hd:del:{theirs.id}",
                   "hd:u:commune", "hd:new:commune", f"hd:new:village:{villages['Thôn 1']}", "hd:all:org:0",
                   "hd:new:household", "hd:open:99999", "hd:zzz"):
        answer = await leader.press(forged)
        assert NOT_YOURS in answer, f"{forged}: {answer}"
        assert "Lớp của Hội Phụ nữ" not in answer
    assert STALE in await leader.press(f"hdx:del:{theirs.id}")
    assert STALE in await leader.press("hdx:save")
    # A draft for their own unit stops as soon as the role is gone: every step checks again.
    await converse(leader, [("/hoatdong", FARMERS), ("#Ghi hoạt động mới", "loại hoạt động"), ("#Khác", "ngày nào")])
    async with services.database.session() as session:
        grant = (await session.exec(select(RoleGrant).where(RoleGrant.organisation_id == orgs[FARMERS]))).one()
        await access.revoke(session, grant.id, services.clock())
    assert NOT_RESPONSIBLE in await leader.say("20/10")
    [only] = await stored(services)
    assert (only.id, only.title, only.removed_at, only.participants) == (theirs.id, "Lớp của Hội Phụ nữ", None, 30)
    refused = [row for row in await audit_rows(services, "activities_view", "activity_recorded", "activity_corrected",
                                               "activity_removed", "activities_export") if row.outcome == "refused"]
    assert len(refused) == 16
    assert {row.record_id for row in refused} >= {theirs.id}
    await assert_audit_holds_no_words(services, "Lớp của Hội Phụ nữ")


async def test_a_leader_gets_the_years_workbook(make_chat, services):
    orgs, _ = await unit_ids(services)
    members = await add_members(services, FARMERS, FARMERS_MEMBERS)
    async with services.database.session() as session:
        for day, title, count, named in [(date(2026, 3, 8), "Tập huấn ngày 8/3", 20, ["Nguyễn Văn An"]),
                                         (date(2025, 12, 20), "Tuyên truyền cuối năm", 45,
                                          ["Nguyễn Văn An", "Trần Thị Bình"]),
                                         (date(2025, 11, 30), "Năm trước", 9, [])]:
            await activities.create(
                session, unit=UnitRef(organisation_id=orgs[FARMERS]), kind="tap-huan", held_on=day, title=title,
                place="Nhà văn hóa", place_village_id=None, participants=count,
                members=[members[name] for name in named], recorded_by=None, now=services.clock())
    leader = await with_role(make_chat, services, "leader", "leader", org=FARMERS)
    answer = await leader.say("/hoatdong")
    assert "Đã ghi 2 hoạt động, 65 lượt người tham dự." in answer and "Năm trước" not in answer
    await leader.choose("Tệp Excel")
    reply = leader.replies[-1]
    assert "Hoạt động năm báo cáo 2026 của Hội Nông dân xã: 2 hoạt động." in reply.text
    book = load_workbook(io.BytesIO(reply.attachment.data))
    rows = [row for row in book["Hoạt động"].iter_rows(min_row=4, values_only=True)]
    assert [(row[3], row[5], row[6], row[7]) for row in rows] == [
        ("Tuyên truyền cuối năm", 45, 2, "Nguyễn Văn An, Trần Thị Bình"), ("Tập huấn ngày 8/3", 20, 1, "Nguyễn Văn An")]
    totals = [row for row in book["Theo đơn vị"].iter_rows(min_row=4, values_only=True)]
    assert totals[0] == (FARMERS, 2, 65, 2)
    [exported] = await audit_rows(services, "activities_export")
    assert (exported.outcome, exported.organisation_id) == ("ok", orgs[FARMERS])


async def test_an_activity_of_last_year_is_shown_but_not_changed(make_chat, services):
    orgs, _ = await unit_ids(services)
    async with services.database.session() as session:
        old = await activities.create(
            session, unit=UnitRef(organisation_id=orgs[FARMERS]), kind="khac", held_on=date(2025, 12, 5),
            title="Cuối kỳ trước", place="Sân kho", place_village_id=None, participants=12, recorded_by=None,
            now=services.clock())
    leader = await with_role(make_chat, services, "leader", "leader", org=FARMERS)
    answer = await leader.press(f"hd:open:{old.id}")
    assert "📌 Cuối kỳ trước" in answer and "thuộc năm báo cáo đã khép lại" in answer and "Sửa" not in leader.labels
    for forged in (f"hd:fix:{old.id}", f"hd:f:{old.id}:count", f"hd:del:{old.id}"):
        assert "thuộc năm báo cáo đã khép lại" in await leader.press(forged), forged
    [same] = await stored(services)
    assert (same.participants, same.removed_at) == (12, None)


# --- storage: what people type, and the counts ------------------------------------------------------------

@pytest.mark.parametrize(("typed", "day"), [
    ("20/10", date(2026, 10, 20)), ("20/10/2026", date(2026, 10, 20)), ("20-10-26", date(2026, 10, 20)),
    ("２０／１０", date(2026, 10, 20)), ("02/11", date(2026, 11, 2)), ("28/12", date(2025, 12, 28)),
    ("11/12/2024", date(2024, 12, 11)),
])
def test_a_typed_day(typed, day):
    assert activities.parse_day(typed, TODAY, DEADLINE, ZONE) == day


@pytest.mark.parametrize(("typed", "says"), [
    ("31/02", "không có thật"), ("3/11/2026", "chưa tới"), ("10/12/2024", "đã quá xa"), ("hôm qua", "chưa hiểu"),
    ("10/12/2025", None),
])
def test_a_refused_day(typed, says):
    if says is None:  # the last day of last year: fine to record, not to correct into
        assert activities.parse_day(typed, TODAY, DEADLINE, ZONE) == date(2025, 12, 10)
        with pytest.raises(ActivityError, match="năm báo cáo đã khép lại"):
            activities.parse_day(typed, TODAY, DEADLINE, ZONE, correcting=True)
        return
    with pytest.raises(ActivityError, match=says):
        activities.parse_day(typed, TODAY, DEADLINE, ZONE)


@pytest.mark.parametrize(("typed", "number"), [("35", 35), ("1.200", 1200), ("1 200", 1200), ("35 người", 35),
                                               ("０", 0), ("100000", 100000)])
def test_a_typed_number_of_participants(typed, number):
    assert activities.parse_participants(typed) == number


@pytest.mark.parametrize("typed", ["mười", "-1", "1,5", "100001", "12a", "1.20"])
def test_a_refused_number_of_participants(typed):
    with pytest.raises(ActivityError):
        activities.parse_participants(typed)


async def generate(services, rng: random.Random) -> list[dict]:
    """Activities of every kind of unit, this year and last, some removed, with members named."""
    orgs, villages = await unit_ids(services)
    farmers = await add_members(services, FARMERS, [(f"Nông Dân {n}", True, 2) for n in range(8)])
    women = await add_members(services, WOMEN, [(f"Phụ Nữ {n}", True, 2) for n in range(5)])
    both = list(farmers.values())[:3]  # in both organisations
    async with services.database.session() as session:
        for person_id in both:
            session.add(Membership(person_id=person_id, organisation_id=orgs[WOMEN], confirmed=True))
    pools = {("organisation", orgs[FARMERS]): list(farmers.values()),
             ("organisation", orgs[WOMEN]): [*women.values(), *both],
             ("village", villages["Thôn 1"]): [], ("commune", None): []}
    made = []
    async with services.database.session() as session:
        for number in range(40):
            (kind, unit_id), pool = rng.choice(list(pools.items()))
            unit = UnitRef(organisation_id=unit_id) if kind == "organisation" else (
                UnitRef(village_id=unit_id) if kind == "village" else UnitRef())
            held_on = date(2026, 11, 2) - timedelta(days=rng.randrange(0, 600))
            named = rng.sample(pool, rng.randrange(0, len(pool) + 1)) if pool else []
            participants = len(named) + rng.randrange(0, 50)
            activity = await activities.create(
                session, unit=unit, kind=rng.choice(list(activities.ACTIVITY_KINDS)), held_on=held_on,
                title=f"Hoạt động {number}", place=f"Nơi {number}", place_village_id=None, participants=participants,
                members=named, recorded_by=None, now=services.clock())
            removed = rng.random() < 0.15
            if removed:
                await activities.remove(session, activity, services.clock())
            made.append({"unit": unit.key, "held_on": held_on, "participants": participants, "named": set(named),
                         "removed": removed, "id": activity.id, "title": activity.title})
    return made


def expected_totals(made: list[dict], year: int) -> tuple[dict, tuple[int, int, int]]:
    period = reporting_period(year, DEADLINE, ZONE)
    counted = [a for a in made if not a["removed"] and period.first_day <= a["held_on"] <= period.last_day]
    units: dict = {}
    for activity in counted:
        count, people, named = units.get(activity["unit"], (0, 0, set()))
        units[activity["unit"]] = (count + 1, people + activity["participants"], named | activity["named"])
    everyone = set().union(*(a["named"] for a in counted)) if counted else set()
    return ({unit: (count, people, len(named)) for unit, (count, people, named) in units.items()},
            (len(counted), sum(a["participants"] for a in counted), len(everyone)))


async def test_the_counts_equal_independent_counts(services):
    made = await generate(services, random.Random(14))
    overlaps = []
    for year in (2025, 2026):
        period = reporting_period(year, DEADLINE, ZONE)
        units, commune = expected_totals(made, year)
        totals = await services.database.read(lambda c, p=period: activities.activity_totals(c, p))
        assert {key: (t.activities, t.participants, t.named_people) for key, t in totals.items()} == units
        everything = await services.database.read(lambda c, p=period: activities.commune_totals(c, p))
        assert (everything.activities, everything.participants, everything.named_people) == commune
        rows = await services.database.read(lambda c, p=period: activities.activity_rows(c, p, "xã Cát Thành"))
        per_unit, together = activities.tally(rows)
        assert {(u.unit_kind, u.unit_id): (u.totals.activities, u.totals.participants, u.totals.named_people)
                for u in per_unit} == units
        assert (together.activities, together.participants, together.named_people) == commune
        overlaps.append(commune[2] < sum(named for _, _, named in units.values()))
    assert any(overlaps)  # someone named by both organisations is counted once for the commune


# --- the shell ------------------------------------------------------------------------------------------------

@pytest.fixture
def shell(monkeypatch, sqlite_url):
    monkeypatch.setenv("HOCVUSO_DATABASE_URL", sqlite_url)
    runner = CliRunner()
    return lambda *args: runner.invoke(app, list(args))


@pytest.fixture
async def shell_services(sqlite_url, clock):
    """The services on the shell's own SQLite file (whatever database the chats above use)."""
    built = await build_services(Settings(_env_file=None, database_url=sqlite_url),  # type: ignore[call-arg]
                                 clock=clock, rng=random.Random(1))
    yield built
    await built.database.dispose()


async def test_the_shell_lists_and_exports_the_years_activities(shell, shell_services, tmp_path):
    made = await generate(shell_services, random.Random(2026))
    orgs, _ = await unit_ids(shell_services)
    units, commune = expected_totals(made, 2026)
    shell = functools.partial(asyncio.to_thread, shell)
    listed = await shell("activities", "list", "--year", "2026")
    assert listed.exit_code == 0, listed.output
    assert (f"Năm báo cáo 2026 (11/12/2025 – 10/12/2026): {commune[0]} hoạt động, {commune[1]} lượt người tham dự, "
            f"{commune[2]} người được ghi tên (không tính trùng).") in listed.output
    period = reporting_period(2026, DEADLINE, ZONE)
    for activity in made:
        shown = f"Hoạt động {activity['title'].split()[-1]} " in listed.output.replace("│", " ")
        assert shown == (not activity["removed"] and period.first_day <= activity["held_on"] <= period.last_day)
    assert "Nông Dân" not in listed.output and "Phụ Nữ" not in listed.output  # no names in the list

    farmers = await shell("activities", "list", "--year", "2026", "--org", FARMERS)
    count, people, named = units.get(("organisation", orgs[FARMERS]), (0, 0, 0))
    assert f": {count} hoạt động, {people} lượt người tham dự, {named} người được ghi tên" in farmers.output

    target = tmp_path / "hd.xlsx"
    exported = await shell("activities", "export", "--year", "2026", "--out", str(target))
    assert exported.exit_code == 0, exported.output
    book = load_workbook(target)
    rows = [row for row in book["Hoạt động"].iter_rows(min_row=4, values_only=True)]
    assert sorted(row[3] for row in rows) == sorted(
        a["title"] for a in made if not a["removed"] and period.first_day <= a["held_on"] <= period.last_day)
    assert sum(row[5] for row in rows) == commune[1]
    assert any("Nông Dân" in (row[7] or "") for row in rows)  # staff's file names the members present
    totals = {row[0]: row[1:] for row in book["Theo đơn vị"].iter_rows(min_row=4, values_only=True)}
    assert totals.pop("Cộng (một người chỉ tính một lần)") == commune
    names = {("organisation", orgs[FARMERS]): FARMERS, ("organisation", orgs[WOMEN]): WOMEN,
             ("commune", None): "xã Cát Thành"}
    assert totals == {names.get(unit, "Thôn 1"): figures for unit, figures in units.items()}

    default = await shell("activities", "export", "--year", "2025", "--out", str(tmp_path / "old.xlsx"))
    assert default.exit_code == 0 and "Năm báo cáo 2025" in default.output


@pytest.mark.parametrize(("args", "says"), [
    (["list", "--year", "1999"], "--year cần là một năm từ 2000 đến 2100"),
    (["list", "--org", "Hội Không Có"], "Không có tổ chức 'Hội Không Có'"),
    (["list", "--org", FARMERS, "--village", "Thôn 1"], "Chọn một đơn vị"),
    (["export", "--out", "hoat-dong.txt"], "--out cần là một tệp .xlsx"),
    (["export", "--village", "Thôn 99"], "Không có thôn/xóm 'Thôn 99'"),
])
def test_a_wrong_activities_command_is_one_line(shell, args, says):
    result = shell("activities", *args)
    assert result.exit_code == 2, result.output
    assert says in result.output and len(result.output.strip().splitlines()) == 1, result.output


async def test_only_confirmed_members_who_show_their_name_are_offered(services):
    orgs, _ = await unit_ids(services)
    await add_members(services, FARMERS, FARMERS_MEMBERS)
    async with services.database.session() as session:
        offered = await activities.confirmed_members(session, orgs[FARMERS])
    assert [person.name for person in offered] == ["Nguyễn Văn An", "Trần Thị Bình", "Lê Văn Cường"]  # by given name


async def test_long_lists_come_a_page_at_a_time(make_chat, services):
    orgs, _ = await unit_ids(services)
    people = await add_members(services, FARMERS, [(f"Hội Viên Số {n:02d}", True, 2) for n in range(11)])
    async with services.database.session() as session:
        for day in range(1, 9):
            await activities.create(
                session, unit=UnitRef(organisation_id=orgs[FARMERS]), kind="khac", held_on=date(2026, 10, day),
                title=f"Buổi {day}", place="Sân kho", place_village_id=None, participants=day + 10, recorded_by=None,
                now=services.clock())
    leader = await with_role(make_chat, services, "leader", "leader", org=FARMERS)
    await converse(leader, [
        ("/hoatdong", "Đã ghi 8 hoạt động, 116 lượt người tham dự."),
        ("#Trang sau", "7. 02/10/2026 · Khác · Buổi 2 (12 người)"),
        ("#Trang trước", "Trang 1/2"),
        ("#Trang sau", "Trang 2/2"),
        ("#📌 8.", "📌 Buổi 1"),
        ("#Sửa", "Bạn muốn sửa mục nào"),
        ("#Sửa thành viên", "Đã chọn: 0 người."),
        ("#Trang sau", "Hội Viên Số 08"),
        ("#Hội Viên Số 10", "Đã chọn: 1 người."),
        ("#Trang trước", "Hội Viên Số 00"),
        ("#Hội Viên Số 00", "Đã chọn: 2 người."),
        ("#Xong", "✅ Đã sửa: thành viên có mặt."),
    ])
    [first] = [a for a in await stored(services) if a.title == "Buổi 1"]
    assert await present(services, first.id) == {people["Hội Viên Số 00"], people["Hội Viên Số 10"]}


@pytest.mark.parametrize("chat_channel", ["telegram"], indirect=True)
async def test_on_telegram_a_photo_goes_with_a_new_activity(make_chat, services):
    """Sent while the summary is shown, the photo's Telegram id is kept and saved with the activity; sent at
    another question, it gets the usual answer about images and changes nothing."""
    await unit_ids(services)
    leader = await with_role(make_chat, services, "leader", "leader", org=FARMERS)
    await converse(leader, [
        ("/hoatdong", FARMERS),
        ("#Ghi hoạt động mới", "loại hoạt động"),
        ("#buổi tập huấn", "ngày nào"),
        ("20/10", "Tên hoạt động"),
    ])
    assert "Tên hoạt động" in await leader.send_photo("AgACAgIAAxkBAAIBb2dQwrongStep")  # asked again
    await converse(leader, [
        ("Lớp dùng VNeID", "ở đâu"),
        ("Nhà văn hóa thôn", "bao nhiêu người"),
        ("12", "Muốn gửi kèm một ảnh"),
    ])
    answer = await leader.send_photo()
    assert "Đã nhận ảnh" in answer and "• Ảnh: đã gửi kèm 📷" in answer and "Muốn gửi kèm" not in answer
    assert await stored(services) == []
    assert "• Ảnh: đã gửi kèm 📷" in await leader.choose("Lưu")
    [activity] = await stored(services)
    assert activity.photo_file_id == "AgACAgIAAxkBAAIBb2dQhotoLargeSize"  # the largest size, not the thumbnail
