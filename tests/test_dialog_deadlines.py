"""/hanchot and /danop in chat, the reminder's buttons, and `hocvuso deadlines|reminders` in the shell."""

from __future__ import annotations

import asyncio
import functools
import random
import unicodedata
from datetime import date

import pytest
from sqlmodel import col, select
from typer.testing import CliRunner

from bot.app import build_services
from bot.cli import app
from bot.settings import Settings
from handlers.core import from_payload
from handlers.deadlines import run_reminders
from storage import deadlines
from storage.deadlines import DEFAULT_TITLE
from storage.models import AuditLog, Deadline, Delivery, HandIn, Organisation, Person, Village
from tests.support import Chat, converse
from tests.test_deadlines import local, store_commune
from tests.test_dialog_figures import FARMERS, WOMEN, grant, register_viewer

NOT_STAFF = "Chức năng hạn chót chỉ dành cho cán bộ xã"
NOT_RESPONSIBLE = "Chức năng này dành cho lãnh đạo tổ chức, trưởng thôn và cán bộ xã"
CANNOT = "Nút này không dùng được nữa"


@pytest.fixture
def settings(database_url: str) -> Settings:
    """The conversations on SQLite and, with TEST_DATABASE_URL, on PostgreSQL."""
    return Settings(_env_file=None, database_url=database_url)  # type: ignore[call-arg]


async def with_role(chats, services, user: str, role: str, *, org: str | None = None,
                    village: str | None = None) -> Chat:
    """A person with `role`; `chats` is the `make_chat` factory (or a dispatcher: on the console)."""
    chat = chats(user) if callable(chats) else Chat(chats, user=user)
    await register_viewer(chat, f"Người {user}")
    await grant(services, chat, role, org=org, village=village)
    return chat


async def unit_ids(services) -> tuple[dict[str, int], dict[str, int]]:
    async with services.database.session() as session:
        orgs = {o.name: o.id for o in (await session.exec(select(Organisation))).all()}
        villages = {v.name: v.id for v in (await session.exec(select(Village))).all()}
    return orgs, villages


async def audited(services, action: str) -> list[str]:
    async with services.database.session() as session:
        rows = (await session.exec(select(AuditLog.outcome).where(AuditLog.action == action)
                                   .order_by(col(AuditLog.id)))).all()
    return list(rows)


async def the_deadlines(services) -> list[Deadline]:
    async with services.database.session() as session:
        return list((await session.exec(select(Deadline).order_by(col(Deadline.id)))).all())


# --- /hanchot ---------------------------------------------------------------------------------------

async def test_residents_and_guests_cannot_touch_deadlines(make_chat, services):
    [default] = await the_deadlines(services)
    guest = make_chat("guest")
    assert NOT_STAFF in await guest.say("/hanchot")
    resident = make_chat("resident")
    await register_viewer(resident, "Nguyễn Văn Dân")
    assert NOT_STAFF in await resident.say("/hanchot")
    for forged in (f"hc:pause:{default.id}", f"hc:remove:{default.id}", "hc:add", f"hc:open:{default.id}"):
        assert NOT_STAFF in await resident.press(forged), forged
    assert "Nút này đã cũ" in await resident.press(f"hcx:removeok:{default.id}")  # never shown to them
    assert NOT_RESPONSIBLE in await resident.say("/danop")
    assert CANNOT in await resident.press(f"dn:{default.id}:20261210:commune")
    [default] = await the_deadlines(services)
    assert not default.paused and default.removed_at is None
    assert await audited(services, "deadlines_view") == ["refused"] * 6
    assert await audited(services, "report_handed_in") == ["refused"] * 2


async def test_staff_see_the_deadlines_and_add_a_one_off_for_some_organisations(make_chat, services):
    orgs, villages = await unit_ids(services)
    staff = await with_role(make_chat, services, "staff", "staff")
    answer = await staff.say("/hanchot")
    for line in (f"1. {DEFAULT_TITLE}", "📅 Hạn tới: 10/12/2026 (hằng năm) – còn 38 ngày",
                 "🔔 Nhắc trước 30, 14, 7, 3, 1 ngày và đúng ngày hạn, lúc 08:00",
                 "👥 Nhắc: cán bộ xã, lãnh đạo các tổ chức và trưởng thôn",
                 f"✅ Đã nộp: 0/{len(orgs) + len(villages)} đơn vị"):
        assert line in answer, line
    await staff.say("menu")
    assert await staff.choose("🗓️ Hạn chót báo cáo") == answer  # the main menu's way there
    typed_title = unicodedata.normalize("NFD", "Sơ kết 3 năm Phong trào")  # as Unikey's "tổ hợp" sends it
    await converse(staff, [
        ("#Thêm hạn chót", "Bạn gõ tên hạn chót"),
        ("x" * 201, "Tên hạn chót dài quá (201 ký tự, tối đa 200)"),
        (typed_title, "Hạn nộp ngày nào?"),
        ("31/02", "Ngày 31/02 không có thật"),
        ("mai", "Mình chưa hiểu ngày này"),
        ("01/01/2026", "Ngày 01/01/2026 đã qua"),
        ("30/06/2027", "Ai phải nộp báo cáo “Sơ kết 3 năm Phong trào”?"),
        ("#Một số tổ chức", "Chọn các tổ chức phải nộp"),
        ("#Xong", "Bạn chọn ít nhất một tổ chức nhé."),
        (f"#{WOMEN}", f"☑️ {WOMEN}"),
        (f"#{FARMERS}", f"☑️ {FARMERS}"),
        (f"#{FARMERS}", f"⬜ {FARMERS}"),  # ticked off again
        ("#Xong", "✅ Đã thêm hạn chót."),
    ])
    answer = staff.transcript
    assert "📅 Hạn tới: 30/06/2027 (một lần) – còn 240 ngày" in answer
    assert f"👥 Nhắc: cán bộ xã và lãnh đạo: {WOMEN}" in answer and "✅ Đã nộp: 0/1 đơn vị" in answer
    added = (await the_deadlines(services))[-1]
    assert added.title == "Sơ kết 3 năm Phong trào"  # stored composed (NFC)
    assert (added.day, added.month, added.year, added.audience) == (30, 6, 2027, "organisations")
    assert added.organisation_ids == [orgs[WOMEN]] and added.remind_days == [30, 14, 7, 3, 1, 0]
    async with services.database.session() as session:
        staff_id = (await session.exec(select(Person.id).where(Person.full_name == "Người staff"))).one()
    assert added.created_by == staff_id
    assert await audited(services, "deadline_added") == ["ok"]


async def test_staff_change_pause_resume_and_remove_a_deadline(make_chat, services):
    staff = await with_role(make_chat, services, "staff", "staff")
    await staff.say("/hanchot")
    await converse(staff, [
        ("#1.", "📅 Đổi ngày hạn"),
        ("#Đổi ngày hạn", "Ngày hạn mới của"),
        ("hôm qua", "Mình chưa hiểu ngày này"),
        ("15/12", "✅ Đã lưu thay đổi."),
        ("#Đổi tên", "Bạn gõ tên mới"),
        ("Báo cáo năm của xã", "1. Báo cáo năm của xã"),
        ("#Tạm dừng nhắc", "⏸️ Đang tạm dừng nhắc"),
    ])
    assert "📅 Hạn tới: 15/12/2026 (hằng năm)" in staff.transcript
    await store_commune(services)
    assert await run_reminders(services, local(2026, 12, 8, 8)) == 0  # paused
    await converse(staff, [
        ("#Nhắc lại", "▶️ Đã bật lại tin nhắc"),
        ("#Xóa hạn chót", "Xóa hạn chót “Báo cáo năm của xã”?"),
        ("#Không xóa", "1. Báo cáo năm của xã"),
        ("#Xóa hạn chót", "Sẽ không còn tin nhắc nào"),
        ("#Xóa hẳn", "🗑️ Đã xóa hạn chót “Báo cáo năm của xã”."),
    ])
    assert "Chưa có hạn chót nào" in staff.transcript
    [removed] = await the_deadlines(services)
    assert removed.removed_at is not None and not removed.paused and (removed.day, removed.month) == (15, 12)
    assert await run_reminders(services, local(2026, 12, 8, 8)) == 0  # removed
    assert NOT_STAFF not in await staff.press(f"hc:open:{removed.id}")  # an old button: the list again
    assert "Hạn chót này không còn" in staff.transcript
    assert "Hạn chót này không còn" in await staff.press("hc:open:99999999999")  # forged: never looked up
    for action in ("deadline_changed", "deadline_paused", "deadline_resumed", "deadline_removed"):
        assert await audited(services, action) == ["ok"] * (2 if action == "deadline_changed" else 1), action


# --- /danop and the reminder's buttons --------------------------------------------------------------

async def test_danop_marks_the_unit_and_its_reminders_stop(make_chat, services):
    orgs, villages = await unit_ids(services)
    [default] = await the_deadlines(services)
    leader = await with_role(make_chat, services, "leader", "leader", org=FARMERS)
    answer = await leader.say("/danop")
    assert f"✅ Đã ghi nhận: {FARMERS} đã nộp báo cáo “{DEFAULT_TITLE}” (hạn 10/12/2026)." in answer
    assert "✅ Đơn vị của bạn đã đánh dấu nộp mọi báo cáo đang mở" in await leader.say("/danop")
    # Forged and old buttons change nothing.
    for forged in (f"dn:{default.id}:20261210:org:{orgs[WOMEN]}", f"dn:{default.id}:20261210:commune",
                   f"dn:{default.id}:20251210:org:{orgs[FARMERS]}", f"dn:{default.id}:20261211:org:{orgs[FARMERS]}",
                   f"dn:{default.id}:2026121:org:{orgs[FARMERS]}", f"dn:9999:20261210:org:{orgs[FARMERS]}",
                   f"dn:{default.id}:20261210:village:{villages['Thôn 1']}", "dn:x", "dn:"):
        assert CANNOT in await leader.press(forged), forged
    async with services.database.session() as session:
        assert await deadlines.handed_in(session, default.id, date(2026, 12, 10)) == {f"org:{orgs[FARMERS]}"}
    assert await audited(services, "report_handed_in") == ["ok"] + ["refused"] * 9

    staff = await with_role(make_chat, services, "staff", "staff")
    await run_reminders(services, local(2026, 11, 10, 8))
    async with services.database.session() as session:
        reached = set((await session.exec(select(Delivery.external_id))).all())
    assert reached == {staff.external_id}  # the leader's unit handed in; nobody else has a role here
    answer = await staff.press(f"hc:open:{default.id}")
    assert f"✅ Đã nộp (1): {FARMERS}" in answer and "⏳ Chưa nộp (" in answer


async def test_someone_with_two_units_chooses_which_handed_in(make_chat, services):
    person = await with_role(make_chat, services, "both", "leader", org=FARMERS)
    await grant(services, person, "village_head", village="Thôn 2")
    answer = await person.say("/danop")
    assert "Bạn đánh dấu đã nộp báo cáo nào?" in answer and "Thôn 2 – hạn 10/12" in answer
    assert "✅ Đã ghi nhận: Thôn 2 đã nộp báo cáo" in await person.choose("Thôn 2")
    assert f"✅ Đã ghi nhận: {FARMERS}" in await person.say("/danop")  # the only one left: marked at once


async def test_the_reminders_buttons_hand_in_and_turn_old_once_the_day_passed(make_chat, services, clock):
    head = await with_role(make_chat, services, "head", "village_head", village="Thôn 1")
    await run_reminders(services, local(2026, 11, 10, 8))
    async with services.database.session() as session:
        [row] = (await session.exec(select(Delivery).where(Delivery.external_id == head.external_id))).all()
    [reply] = from_payload(row.payload)
    assert "📊 Thôn 1 (đến 10/11/2026):\n• Người đăng ký: 0" in reply.text and "còn 30 ngày" in reply.text
    report, handed = reply.actions
    assert report.startswith("bc:village:")
    assert "✅ Đã ghi nhận: Thôn 1 đã nộp báo cáo" in await head.press(handed)
    assert "đã đánh dấu nộp báo cáo" in await head.press(handed)  # a second press is harmless
    async with services.database.session() as session:
        assert len((await session.exec(select(HandIn))).all()) == 1
    assert await run_reminders(services, local(2026, 11, 26, 8)) == 0
    clock.now = local(2026, 12, 11, 9)  # the deadline passed: the old button does nothing
    assert CANNOT in await head.press(handed)
    assert await audited(services, "report_handed_in") == ["ok", "refused"]


# --- the shell ------------------------------------------------------------------------------------

@pytest.fixture
def shell(monkeypatch, sqlite_url):
    monkeypatch.setenv("HOCVUSO_DATABASE_URL", sqlite_url)
    runner = CliRunner()
    return lambda *args: runner.invoke(app, list(args))


@pytest.fixture
async def shell_services(sqlite_url, clock):
    """The services on the shell's own SQLite file (whatever database the chats above use)."""
    built = await build_services(Settings(_env_file=None, database_url=sqlite_url), clock=clock,  # type: ignore[call-arg]
                                 rng=random.Random(1))
    yield built
    await built.database.dispose()


async def test_the_shell_adds_lists_edits_and_removes_deadlines(shell, shell_services):
    shell = functools.partial(asyncio.to_thread, shell)
    added = await shell("deadlines", "add", "--title", "Sơ kết 2027", "--date", "30/06/2027", "--days", "14,7,0",
                        "--hour", "9", "--audience", "organisations", "--org", FARMERS, "--org", WOMEN)
    assert added.exit_code == 0, added.output
    assert "Đã thêm hạn chót số 2: 30/06/2027 (một lần)" in added.output
    listed = (await shell("deadlines", "list")).output
    for text in ("Sơ kết 2027", "30/06/2027", "một lần", "14, 7, 0", "09:00", "30, 14, 7, 3, 1, 0",
                 FARMERS, WOMEN, "0/2", "10/12/2026", "hằng năm", "đang nhắc"):
        assert text in listed, text
    assert (await shell("deadlines", "edit", "2", "--pause", "--title", "Sơ kết giữa kỳ 2027")).exit_code == 0
    listed = (await shell("deadlines", "list")).output
    assert "tạm dừng" in listed and "Sơ kết giữa kỳ 2027" in listed
    assert (await shell("deadlines", "edit", "2", "--resume", "--date", "01/07/2027", "--days", "3")).exit_code == 0
    [_, edited] = await the_deadlines(shell_services)
    assert (edited.paused, edited.day, edited.month, edited.year, edited.remind_days) == (False, 1, 7, 2027, [3])
    assert (await shell("deadlines", "remove", "2")).exit_code == 0
    gone = await shell("deadlines", "remove", "2")
    assert gone.exit_code == 2 and "Không có hạn chót số 2" in gone.output
    assert "Sơ kết" not in (await shell("deadlines", "list")).output


@pytest.mark.parametrize(("args", "says"), [
    (["add", "--title", "X", "--date", "31/02"], "không có thật"),
    (["add", "--title", "X", "--date", "01/01/2020"], "đã qua"),
    (["add", "--title", "   ", "--date", "10/12"], "đang trống"),
    (["add", "--title", "x" * 201, "--date", "10/12"], "dài quá"),
    (["add", "--title", "X", "--date", "10/12", "--days", "30,abc"], "--days cần các số ngày"),
    (["add", "--title", "X", "--date", "10/12", "--days", "400"], "từ 0 (đúng ngày hạn) đến 365"),
    (["add", "--title", "X", "--date", "10/12", "--hour", "24"], "--hour cần từ 0 đến 23"),
    (["add", "--title", "X", "--date", "10/12", "--audience", "everyone"], "--audience cần là một trong"),
    (["add", "--title", "X", "--date", "10/12", "--audience", "organisations"], "cần ít nhất một --org"),
    (["add", "--title", "X", "--date", "10/12", "--org", FARMERS], "--org chỉ dùng với"),
    (["add", "--title", "X", "--date", "10/12", "--audience", "organisations", "--org", "Hội Không Có"],
     "Không có tổ chức"),
    (["edit", "1"], "Không có gì để đổi"),
    (["edit", "1", "--pause", "--resume"], "Chọn một: --pause hoặc --resume"),
    (["edit", "1", "--date", "29/02"], "không có trong mọi năm"),
    (["edit", "99", "--pause"], "Không có hạn chót số 99"),
    (["remove", "99999999999"], "Không có hạn chót số 99999999999"),
])
def test_a_wrong_deadline_command_is_one_line(shell, args, says):
    result = shell("deadlines", *args)
    assert result.exit_code == 2, result.output
    assert says in result.output and len(result.output.strip().splitlines()) == 1, result.output


async def test_the_preview_lists_who_would_get_what_and_writes_nothing(shell, shell_services):
    commune = await store_commune(shell_services)
    shell = functools.partial(asyncio.to_thread, shell)
    shown = await shell("reminders", "preview", "--at", "2026-12-03T08:00")
    assert shown.exit_code == 0, shown.output
    output = shown.output
    assert "Tin nhắc lúc 08:00 ngày 03/12/2026 (xem trước, chưa gửi)" in output and "Tổng: 5 tin." in output
    for text in ("10/12/2026", "còn 7 ngày", "cán bộ xã", "quản trị", "lãnh đạo tổ chức", "trưởng thôn", FARMERS,
                 WOMEN, "Thôn 1", "xã Cát Thành", str(commune.ids["head"])):
        assert text in output, text
    assert "Người staff" not in output  # ids, not names
    later = (await shell("reminders", "preview", "--at", "2026-12-03T15:00+07:00")).output
    assert "7 (muộn)" in later and "còn 7 ngày" in later  # after a stop, within the grace window
    too_late = (await shell("reminders", "preview", "--at", "2026-12-04T15:00")).output
    assert "Lúc 15:00 ngày 04/12/2026 không có tin nhắc nào đến hạn." in too_late
    bad = await shell("reminders", "preview", "--at", "03/12/2026")
    assert bad.exit_code == 2 and "--at '03/12/2026': cần dạng 2026-12-03T08:00" in bad.output
    async with shell_services.database.session() as session:
        assert (await session.exec(select(Delivery))).all() == []
