"""/sangkien in chat on the three channels, and `hocvuso initiatives` in the shell: a resident proposes
and corrects an initiative, nobody else sees it before staff recognise it, staff page through all of
them, recognise one and export the list, erasure takes a person's initiatives with them. Every count
is compared with one made here, independently, from the rows the test stored."""

from __future__ import annotations

import asyncio
import functools
import io
import logging
import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook
from sqlmodel import col, select
from typer.testing import CliRunner

from bot.cli import app
from bot.settings import Settings
from storage import initiatives
from storage.initiatives import InitiativeError
from storage.models import AuditLog, Initiative, Membership, Organisation, Person, Village
from storage.report import reporting_period
from tests.support import Chat, converse
from tests.test_dialog_figures import FARMERS, WOMEN, grant, register_viewer

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
NOT_FOUND = "Mình không mở được sáng kiến này"
NOT_STAFF = "Việc này chỉ dành cho cán bộ xã."
GUEST = "Gửi và xem sáng kiến dành cho người đã đăng ký"
DESCRIPTION = ("Mỗi tối thứ Bảy, đoàn viên đến nhà văn hóa thôn hướng dẫn người cao tuổi cài VNeID.\n\n"
               "Mỗi người được kèm riêng đến khi tự đăng nhập được.")
RESULT = "Đã giúp 34 người cao tuổi kích hoạt VNeID mức 2."


@pytest.fixture
def settings(database_url: str) -> Settings:
    """The conversations on SQLite and, with TEST_DATABASE_URL, on PostgreSQL."""
    return Settings(_env_file=None, database_url=database_url)  # type: ignore[call-arg]


async def unit_ids(services) -> tuple[dict[str, int], dict[str, int]]:
    async with services.database.session() as session:
        orgs = {o.name: o.id for o in (await session.exec(select(Organisation))).all()}
        villages = {v.name: v.id for v in (await session.exec(select(Village))).all()}
    return orgs, villages


async def person_named(services, name: str) -> Person:
    async with services.database.session() as session:
        return (await session.exec(select(Person).where(Person.full_name == name))).one()


async def someone(make_chat, services, user: str, name: str, *, village: str | None = None,
                  org: str | None = None) -> tuple[Chat, int]:
    """A registered person, living in `village` and a claimed member of `org`."""
    chat = make_chat(user)
    await register_viewer(chat, name)
    orgs, villages = await unit_ids(services)
    async with services.database.session() as session:
        person = (await session.exec(select(Person).where(Person.full_name == name))).one()
        if village is not None:
            person.village_id = villages[village]
            session.add(person)
        if org is not None:
            session.add(Membership(person_id=person.id, organisation_id=orgs[org], confirmed=False))
    return chat, person.id  # type: ignore[return-value]


async def staff_member(make_chat, services, user: str = "staff") -> tuple[Chat, int]:
    chat, person_id = await someone(make_chat, services, user, "Đỗ Văn Xã")
    await grant(services, chat, "staff")
    return chat, person_id


async def store(services, proposer: int, title: str, *, org: int | None = None, village: int | None = None,
                proposed: datetime | None = None, recognised: datetime | None = None,
                by: int | None = None) -> int:
    """An initiative stored as the dialog stores it, at any moment."""
    proposed = proposed or services.clock()
    async with services.database.session() as session:
        initiative = Initiative(title=title, authors="Nguyễn Văn An, Lê Thị Bình", organisation_id=org,
                                village_id=village, description=f"Nội dung của {title}.", result="Có kết quả tốt.",
                                proposed_by=proposer, created_at=proposed, updated_at=proposed,
                                recognised_at=recognised, recognised_by=by if recognised else None)
        session.add(initiative)
        await session.flush()
        return initiative.id  # type: ignore[return-value]


async def the_initiatives(services) -> list[Initiative]:
    async with services.database.session() as session:
        return list((await session.exec(select(Initiative).order_by(col(Initiative.id)))).all())


async def audited(services, *actions: str) -> list[tuple[str, str, int | None, str | None]]:
    async with services.database.session() as session:
        rows = (await session.exec(select(AuditLog).where(col(AuditLog.action).in_(actions))
                                   .order_by(col(AuditLog.id)))).all()
    return [(row.action, row.outcome, row.record_id, row.detail) for row in rows]


# --- proposing --------------------------------------------------------------------------------------

async def test_a_resident_proposes_an_initiative_and_corrects_it_until_recognised(make_chat, services, caplog):
    caplog.set_level(logging.DEBUG)
    orgs, villages = await unit_ids(services)
    lan, lan_id = await someone(make_chat, services, "lan", "Nguyễn Thị Lan", village="Thôn 1", org=FARMERS)
    await converse(lan, [
        ("/sangkien", "💡 Sáng kiến, cách làm hay"),
        ("#Gửi sáng kiến mới", "(1/5) Tên sáng kiến hoặc cách làm hay là gì?"),
        ("Tối thứ Bảy học VNeID", "(2/5) Ai là tác giả?"),
        ("#Là tôi", "(3/5) Sáng kiến này của đơn vị nào?"),
    ])
    assert lan.labels == [f"🏢 {FARMERS}", "🏡 Thôn 1", "🏛️ Không thuộc đơn vị nào", "❌ Hủy"]
    await converse(lan, [
        (f"#{FARMERS}", "(4/5) Sáng kiến làm gì, làm thế nào?"),
        (DESCRIPTION, "(5/5) Kết quả đến nay thế nào?"),
        (RESULT, "Bạn xem lại sáng kiến trước khi gửi"),
    ])
    summary = lan.transcript
    for line in ("💡 Tối thứ Bảy học VNeID", "👥 Tác giả: Nguyễn Thị Lan", f"🏢 Đơn vị: {FARMERS}", DESCRIPTION,
                 RESULT):
        assert line in summary, line
    answer = await lan.choose("Gửi")
    assert "✅ Đã gửi sáng kiến “Tối thứ Bảy học VNeID”" in answer
    assert "📋 Sáng kiến bạn đã gửi (1):" in answer and "1. Tối thứ Bảy học VNeID" in answer
    assert f"{FARMERS} · ⏳ chờ xét" in answer
    [stored] = await the_initiatives(services)
    assert (stored.title, stored.authors, stored.description, stored.result) == (
        "Tối thứ Bảy học VNeID", "Nguyễn Thị Lan", DESCRIPTION, RESULT)
    assert (stored.organisation_id, stored.village_id, stored.proposed_by) == (orgs[FARMERS], None, lan_id)
    assert stored.created_at == services.clock() and stored.recognised_at is None
    assert "Nút này đã cũ" in await lan.press("skx:send")  # a second press of "Gửi" stores nothing more
    assert len(await the_initiatives(services)) == 1

    # Their own, with its status; corrected while it waits.
    await converse(lan, [
        ("#Tối thứ Bảy", "⏳ Đang chờ cán bộ xã xét."),
        ("#Sửa sáng kiến", "Bạn muốn sửa mục nào của sáng kiến “Tối thứ Bảy học VNeID”?"),
        ("#Tên sáng kiến", "Hiện tại: Tối thứ Bảy học VNeID"),
        ("x" * 201, "Tên sáng kiến dài quá (201 ký tự, tối đa 200)"),
        ("Tối thứ Bảy cùng học VNeID", "✅ Đã lưu thay đổi."),
        ("#Sửa sáng kiến", "Bạn muốn sửa mục nào"),
        ("#Đơn vị", f"Hiện tại: {FARMERS}"),
        ("#Thôn 1", "✅ Đã lưu thay đổi."),
    ])
    assert "💡 Tối thứ Bảy cùng học VNeID" in lan.transcript and "🏢 Đơn vị: Thôn 1" in lan.transcript
    [stored] = await the_initiatives(services)
    assert (stored.title, stored.organisation_id, stored.village_id) == ("Tối thứ Bảy cùng học VNeID", None,
                                                                         villages["Thôn 1"])
    assert await audited(services, "initiative_proposed", "initiative_changed") == [
        ("initiative_proposed", "ok", stored.id, None), ("initiative_changed", "ok", stored.id, "title"),
        ("initiative_changed", "ok", stored.id, "unit")]
    # Logs hold neither names nor what was typed.
    for typed in ("Nguyễn Thị Lan", "Tối thứ Bảy", "VNeID mức 2", "nhà văn hóa"):
        assert typed not in caplog.text


async def test_wrong_answers_are_refused_politely_and_nothing_typed_is_lost(make_chat, services):
    guest = make_chat("guest")
    assert GUEST in await guest.say("/sangkien")
    assert GUEST in await guest.press("sk:open:1") and GUEST in await guest.press("sk:new")
    lan, _ = await someone(make_chat, services, "lan", "Nguyễn Thị Lan")
    await converse(lan, [
        ("/sangkien", "Sáng kiến bạn đã gửi: 0"),
        ("#Gửi sáng kiến mới", "(1/5)"),
        ("x" * 201, "Tên sáng kiến dài quá (201 ký tự, tối đa 200). Bạn gõ ngắn lại giúp mình nhé."),
        ("ab", "Tên sáng kiến ngắn quá"),
        ("???", "Mình chưa thấy chữ nào trong tên sáng kiến"),
        ("  Sổ tay   số\tcủa thôn ", "(2/5) Ai là tác giả?"),
        ("x" * 301, "Tên tác giả dài quá (301 ký tự, tối đa 300)"),
        ("Trần Văn Minh,  Lê Thị Hoa", "(3/5) Sáng kiến này của đơn vị nào?"),
        ("Hội nào đó", "Bạn hãy chọn một mục bên dưới"),
        ("#Không thuộc đơn vị nào", "(4/5)"),
        ("y" * 1001, "Tin nhắn dài quá"),
    ])
    assert "(4/5) Sáng kiến làm gì, làm thế nào?" in lan.transcript  # the same question again
    await converse(lan, [
        ("Ghi các bước dùng dịch vụ công vào một cuốn sổ chung.", "(5/5)"),
        ("menu thôn", "Bạn xem lại sáng kiến"),  # any words are a result, even "menu" among them
        ("#Sửa một mục", "Bạn muốn sửa mục nào?"),
        ("#Kết quả", "Hiện tại: menu thôn"),
        ("   ", "Mình chưa thấy nội dung"),
        ("Cả thôn dùng chung, 20 hộ đã làm theo.", "Bạn xem lại sáng kiến"),
    ])
    for kept in ("💡 Sổ tay số của thôn", "👥 Tác giả: Trần Văn Minh, Lê Thị Hoa", "🏢 Đơn vị: Không thuộc đơn vị nào",
                 "Ghi các bước dùng dịch vụ công", "📈 Kết quả:\nCả thôn dùng chung, 20 hộ đã làm theo."):
        assert kept in lan.transcript, kept
    assert "Sáng kiến bạn đã gửi (1)" in await lan.choose("Gửi")
    [stored] = await the_initiatives(services)
    assert (stored.title, stored.organisation_id, stored.village_id) == ("Sổ tay số của thôn", None, None)
    # Cancelling a new draft stores nothing.
    await converse(lan, [("/sangkien", "Sáng kiến bạn đã gửi: 1 (1 đang chờ xét)"), ("#Gửi sáng kiến mới", "(1/5)"),
                         ("Một ý khác", "(2/5)"), ("#Hủy", "💡 Sáng kiến, cách làm hay")])
    assert len(await the_initiatives(services)) == 1


def test_the_limits_are_the_columns():
    assert initiatives.LIMITS == {"title": 200, "authors": 300, "description": 1000, "result": 1000}
    assert initiatives.clean("description", " a \n\n\n\n b\u202e \x07") == "a\n\nb"
    assert initiatives.clean("title", "Sổ\u202e tay\nsố") == "Sổ tay số"
    with pytest.raises(InitiativeError, match="Phần kết quả dài quá"):
        initiatives.clean("result", "k" * 1001)


# --- who sees what ------------------------------------------------------------------------------------

async def test_nobody_sees_an_initiative_before_staff_recognise_it(make_chat, services):
    lan, lan_id = await someone(make_chat, services, "lan", "Nguyễn Thị Lan", village="Thôn 1")
    initiative_id = await store(services, lan_id, "Nhóm Zalo học cùng con cháu")
    binh, _ = await someone(make_chat, services, "binh", "Trần Văn Bình", village="Thôn 1")
    await converse(binh, [("/sangkien", "Sáng kiến đã được công nhận trong xã: 0"),
                          ("#Sáng kiến đã được công nhận", "Chưa có sáng kiến nào được công nhận.")])
    assert "Bạn chưa gửi sáng kiến nào" in await binh.press("sk:mine")
    for forged in (f"sk:open:{initiative_id}", f"sk:edit:{initiative_id}", f"sk:fix:{initiative_id}:title",
                   "sk:open:99999"):
        answer = await binh.press(forged)
        assert NOT_FOUND in answer and "Nhóm Zalo" not in answer, forged
    for forged in (f"sk:ok:{initiative_id}", f"sk:undo:{initiative_id}", "sk:all", "sk:xlsx"):
        answer = await binh.press(forged)
        assert NOT_STAFF in answer and "Nhóm Zalo" not in answer, forged
        assert binh.replies[-1].attachment is None
    assert "Nút này đã cũ" in await binh.press(f"skx:unit:village:{initiative_id}")  # never shown to them
    [stored] = await the_initiatives(services)
    assert stored.recognised_at is None and stored.title == "Nhóm Zalo học cùng con cháu"
    refused = [(action, outcome) for action, outcome, _, _ in await audited(
        services, "initiative_view", "initiative_changed", "initiative_recognised", "initiative_unrecognised",
        "initiatives_view", "initiatives_export")]
    assert refused == [("initiative_view", "refused"), ("initiative_changed", "refused"),
                       ("initiative_changed", "refused"), ("initiative_view", "refused"),
                       ("initiative_recognised", "refused"), ("initiative_unrecognised", "refused"),
                       ("initiatives_view", "refused"), ("initiatives_export", "refused")]

    staff, staff_id = await staff_member(make_chat, services)
    await converse(staff, [
        ("/sangkien", "Cả xã đang chờ xét: 1"),
        ("#Xét sáng kiến", "🗂️ Tất cả sáng kiến (1, 1 đang chờ xét):"),
        ("#Nhóm Zalo", "⏳ Đang chờ cán bộ xã xét."),
        ("#Công nhận", "🏅 Đã công nhận sáng kiến “Nhóm Zalo học cùng con cháu”."),
    ])
    assert "🏅 Đã được công nhận ngày 02/11/2026." in staff.transcript and "✖️ Bỏ công nhận" in staff.labels
    assert "Sáng kiến này đã được công nhận từ trước." in await staff.press(f"sk:ok:{initiative_id}")
    [stored] = await the_initiatives(services)
    assert (stored.recognised_at, stored.recognised_by) == (services.clock(), staff_id)

    # Now everyone sees it, and nobody corrects it any more.
    await converse(binh, [("/sangkien", "Sáng kiến đã được công nhận trong xã: 1"),
                          ("#Sáng kiến đã được công nhận", "1. Nhóm Zalo học cùng con cháu"),
                          ("#Nhóm Zalo", "🏅 Đã được công nhận ngày 02/11/2026.")])
    assert "Tác giả: Nguyễn Văn An, Lê Thị Bình" in binh.transcript and "✏️ Sửa sáng kiến" not in binh.labels
    assert "Sáng kiến này không sửa được" in await binh.press(f"sk:fix:{initiative_id}:title")
    answer = await lan.press(f"sk:open:{initiative_id}")
    assert "🏅 Đã được công nhận" in answer and "✏️ Sửa sáng kiến" not in lan.labels
    assert "vừa được công nhận nên không sửa được nữa" in await lan.press(f"sk:fix:{initiative_id}:result")

    # Taken back: hidden from others again.
    assert "↩️ Đã bỏ công nhận" in await staff.press(f"sk:undo:{initiative_id}")
    assert NOT_FOUND in await binh.press(f"sk:open:{initiative_id}")
    assert "⏳ Đang chờ cán bộ xã xét." in await lan.press(f"sk:open:{initiative_id}")
    assert "✏️ Sửa sáng kiến" in lan.labels
    outcomes = [(action, outcome, record) for action, outcome, record, _ in await audited(
        services, "initiative_recognised", "initiative_unrecognised") if outcome == "ok"]
    assert outcomes == [("initiative_recognised", "ok", initiative_id),
                        ("initiative_unrecognised", "ok", initiative_id)]


async def test_a_leader_may_propose_for_the_organisation_they_lead(make_chat, services):
    leader, _ = await someone(make_chat, services, "leader", "Phạm Thị Hội")
    await grant(services, leader, "leader", org=WOMEN)
    await converse(leader, [("/sangkien", "Sáng kiến"), ("#Gửi sáng kiến mới", "(1/5)"),
                            ("Chợ không dùng tiền mặt", "(2/5)"), ("Chi hội Phụ nữ thôn 2", "(3/5)")])
    assert leader.labels == [f"🏢 {WOMEN}", "🏛️ Không thuộc đơn vị nào", "❌ Hủy"]


# --- staff: all of them, recognition, the workbook -----------------------------------------------------

def generated(services, people: list[int], units: dict[str, list[int]]) -> list[dict]:
    """Initiatives across two reporting years, some recognised, of random units."""
    rng = random.Random(14)
    start = datetime(2025, 11, 1, 3, tzinfo=UTC)
    rows = []
    for number in range(1, 15):
        kind = rng.choice(["organisation", "village", "commune"])
        unit = rng.choice(units[kind]) if kind != "commune" else None
        proposed = start + timedelta(days=number * 25)  # 26/11/2025 ... 22/10/2026
        recognised = proposed + timedelta(days=rng.choice([3, 30, 60])) if rng.random() < 0.5 else None
        if recognised is not None and recognised > services.clock():
            recognised = None
        rows.append({"title": f"Sáng kiến số {number:02d}", "kind": kind, "unit": unit, "proposed": proposed,
                     "recognised": recognised, "by": rng.choice(people)})
    return rows


async def store_generated(services, rows: list[dict], staff_id: int) -> None:
    for row in rows:
        row["id"] = await store(services, row["by"], row["title"],
                                org=row["unit"] if row["kind"] == "organisation" else None,
                                village=row["unit"] if row["kind"] == "village" else None,
                                proposed=row["proposed"], recognised=row["recognised"], by=staff_id)


async def test_staff_see_all_page_through_recognise_and_export(make_chat, services):
    orgs, villages = await unit_ids(services)
    names = {**{("organisation", i): name for name, i in orgs.items()},
             **{("village", i): name for name, i in villages.items()}}
    _, lan_id = await someone(make_chat, services, "lan", "Nguyễn Thị Lan")
    staff, staff_id = await staff_member(make_chat, services)
    rows = generated(services, [lan_id, staff_id], {"organisation": list(orgs.values()),
                                                    "village": list(villages.values())})
    await store_generated(services, rows, staff_id)
    waiting = [row for row in rows if row["recognised"] is None]
    assert 0 < len(waiting) < len(rows)

    await converse(staff, [
        ("/sangkien", f"Cả xã đang chờ xét: {len(waiting)}"),
        ("#Xét sáng kiến", f"🗂️ Tất cả sáng kiến ({len(rows)}, {len(waiting)} đang chờ xét):"),
    ])
    seen = []
    for page in (1, 2, 3):
        assert f"Trang {page}/3." in staff.transcript
        seen += [label.partition(". ")[2] for label in staff.labels if ". Sáng kiến số" in label]
        if page < 3:
            await staff.choose("Trang sau")
    # Those waiting first, then the recognised ones, each part newest first; each once.
    assert seen == [row["title"] for row in reversed(rows) if row["recognised"] is None] + [
        row["title"] for row in reversed(rows) if row["recognised"] is not None]
    assert "Trang 2/3." in await staff.choose("Trang trước")

    chosen = waiting[0]
    await staff.press(f"sk:open:{chosen['id']}")
    assert "⏳ Đang chờ cán bộ xã xét." in staff.transcript
    unit = names.get((chosen["kind"], chosen["unit"]), "Không thuộc đơn vị nào")
    assert f"🏢 Đơn vị: {unit}" in staff.transcript
    assert "Đã công nhận sáng kiến" in await staff.choose("Công nhận")
    chosen["recognised"] = services.clock()

    answer = await staff.press("sk:xlsx")
    recognised = sum(row["recognised"] is not None for row in rows)
    assert f"Có {len(rows)} sáng kiến: {recognised} đã được công nhận, {len(rows) - recognised} đang chờ xét." in answer
    attachment = staff.replies[-1].attachment
    assert attachment is not None and attachment.file_name.endswith(".xlsx")
    sheet = load_workbook(io.BytesIO(attachment.data)).active
    header = [cell.value for cell in sheet[4]]
    assert header == ["STT", "Tên sáng kiến", "Tác giả", "Đơn vị", "Nội dung", "Kết quả", "Ngày đề xuất",
                      "Trạng thái", "Ngày công nhận"]
    listed = [dict(zip(header, row, strict=True)) for row in sheet.iter_rows(min_row=5, values_only=True)]
    assert [line["Tên sáng kiến"] for line in listed] == [row["title"] for row in rows]  # in order proposed
    assert [line["STT"] for line in listed] == list(range(1, len(rows) + 1))
    for line, row in zip(listed, rows, strict=True):
        assert line["Đơn vị"] == names.get((row["kind"], row["unit"]), "Không thuộc đơn vị nào")
        assert line["Ngày đề xuất"].date() == row["proposed"].astimezone(ZONE).date()
        assert line["Trạng thái"] == ("Đã công nhận" if row["recognised"] else "Chờ xét")
        assert (line["Ngày công nhận"].date() if line["Ngày công nhận"] else None) == (
            row["recognised"].astimezone(ZONE).date() if row["recognised"] else None)
    assert Counter(line["Đơn vị"] for line in listed) == Counter(
        names.get((row["kind"], row["unit"]), "Không thuộc đơn vị nào") for row in rows)
    assert [entry[:2] for entry in await audited(services, "initiatives_export")] == [("initiatives_export", "ok")]

    # The report's counts for a reporting year, per unit: proposed in it, recognised in it.
    for year in (2026, 2027):
        period = reporting_period(year, (10, 12), ZONE)
        totals = await services.database.read(lambda connection, p=period: initiatives.initiative_totals(connection, p))
        expected: dict[tuple[str, int | None], list[int]] = {}
        for row in rows:
            counts = expected.setdefault((row["kind"], row["unit"]), [0, 0])
            counts[0] += period.start <= row["proposed"] < period.end
            counts[1] += row["recognised"] is not None and period.start <= row["recognised"] < period.end
        expected = {key: counts for key, counts in expected.items() if any(counts)}
        assert {(line.kind, line.unit_id): [line.proposed, line.recognised] for line in totals.units} == expected
        assert all(line.name == names.get((line.kind, line.unit_id)) for line in totals.units)
        assert totals.proposed == sum(counts[0] for counts in expected.values())
        assert totals.recognised == sum(counts[1] for counts in expected.values())


async def test_the_workbook_is_built_in_the_renderer_process_as_hocvuso_run_does(settings, clock):
    """What the export sends to the renderer process must cross a process boundary."""
    # On the console only: the renderer process is under test, not a channel, and starting one costs seconds.
    from bot.app import build_services, process_renderer
    from handlers.dispatcher import Dispatcher

    renderer = process_renderer()
    services = await build_services(settings, clock=clock, rng=random.Random(3), renderer=renderer)
    try:
        staff = Chat(Dispatcher(services), user="staff")
        await register_viewer(staff, "Đỗ Văn Xã")
        await grant(services, staff, "staff")
        staff_id = (await person_named(services, "Đỗ Văn Xã")).id
        await store(services, staff_id, "Góc học số", recognised=clock(), by=staff_id)
        assert "Có 1 sáng kiến: 1 đã được công nhận" in await staff.press("sk:xlsx")
        sheet = load_workbook(io.BytesIO(staff.replies[-1].attachment.data)).active
        assert [row[1] for row in sheet.iter_rows(min_row=5, values_only=True)] == ["Góc học số"]
    finally:
        renderer.shutdown()
        await services.database.dispose()


# --- erasure -------------------------------------------------------------------------------------------

async def test_erasure_takes_the_persons_initiatives_and_keeps_those_they_recognised(make_chat, services):
    lan, lan_id = await someone(make_chat, services, "lan", "Nguyễn Thị Lan")
    staff, staff_id = await staff_member(make_chat, services)
    theirs = await store(services, lan_id, "Sổ tay số", recognised=services.clock(), by=staff_id)
    await store(services, lan_id, "Nhóm Zalo")
    others = await store(services, staff_id, "Góc học số ở nhà văn hóa", recognised=services.clock(), by=staff_id)
    binh, _ = await someone(make_chat, services, "binh", "Trần Văn Bình")
    assert "Sổ tay số" in await binh.press("sk:rec")
    await converse(lan, [("/xoadulieu", "chắc chắn"), ("#Xóa hết", "Đã xóa toàn bộ dữ liệu")])
    assert [row.id for row in await the_initiatives(services)] == [others]
    answer = await binh.press("sk:rec")
    assert "Sổ tay số" not in answer and "Góc học số" in answer
    assert NOT_FOUND in await binh.press(f"sk:open:{theirs}")
    await converse(staff, [("/xoadulieu", "chắc chắn"), ("#Xóa hết", "Đã xóa toàn bộ dữ liệu")])
    assert await the_initiatives(services) == []  # the staff member's own went with them
    assert "Chưa có sáng kiến nào được công nhận" in await binh.press("sk:rec")


async def test_a_recognition_outlives_the_staff_member_who_made_it(make_chat, services):
    lan, lan_id = await someone(make_chat, services, "lan", "Nguyễn Thị Lan")
    staff, staff_id = await staff_member(make_chat, services)
    kept = await store(services, lan_id, "Sổ tay số", recognised=services.clock(), by=staff_id)
    await converse(staff, [("/xoadulieu", "chắc chắn"), ("#Xóa hết", "Đã xóa toàn bộ dữ liệu")])
    [row] = await the_initiatives(services)
    assert (row.id, row.recognised_at, row.recognised_by) == (kept, services.clock(), None)
    assert "🏅 Đã được công nhận" in await lan.press(f"sk:open:{kept}")


# --- the shell -----------------------------------------------------------------------------------------

@pytest.fixture
def shell(monkeypatch, database_url, restore_logging):
    """`hocvuso …` on the test's database (SQLite or PostgreSQL), run off the event loop."""
    monkeypatch.setenv("HOCVUSO_DATABASE_URL", database_url)
    runner = CliRunner()
    return functools.partial(asyncio.to_thread, lambda *args: runner.invoke(app, list(args)))


async def test_the_shell_lists_and_exports_the_initiatives(shell, make_chat, services, tmp_path):
    orgs, villages = await unit_ids(services)
    _, lan_id = await someone(make_chat, services, "lan", "Nguyễn Thị Lan")
    _, staff_id = await staff_member(make_chat, services)
    rows = generated(services, [lan_id, staff_id], {"organisation": list(orgs.values()),
                                                    "village": list(villages.values())})
    await store_generated(services, rows, staff_id)
    period = reporting_period(2026, (10, 12), ZONE)

    def within(moment: datetime | None) -> bool:
        return moment is not None and period.start <= moment < period.end

    listed = await shell("initiatives", "list")
    assert listed.exit_code == 0, listed.output
    assert all(row["title"] in listed.output for row in rows)
    recognised = [row for row in rows if row["recognised"]]
    assert f"Có {len(rows)} sáng kiến: {len(recognised)} đã được công nhận" in listed.output
    only = await shell("initiatives", "list", "--recognised")
    assert {row["title"] for row in rows if row["title"] in only.output} == {row["title"] for row in recognised}
    of_year = await shell("initiatives", "list", "--year", "2026")
    expected = [row for row in rows if within(row["proposed"]) or within(row["recognised"])]
    assert {row["title"] for row in rows if row["title"] in of_year.output} == {row["title"] for row in expected}
    assert "năm báo cáo 2026 (11/12/2025 – 10/12/2026)" in of_year.output

    target = tmp_path / "khen-thuong.xlsx"
    exported = await shell("initiatives", "export", "--year", "2026", "--out", str(target))
    assert exported.exit_code == 0, exported.output
    assert f"Đã xuất {len(expected)} sáng kiến ra" in exported.output
    sheet = load_workbook(target).active
    assert "năm báo cáo 2026" in sheet["A1"].value
    titles = [row[1] for row in sheet.iter_rows(min_row=5, values_only=True)]
    assert titles == [row["title"] for row in expected]
    recognised_2026 = await shell("initiatives", "export", "--year", "2026", "--recognised", "--out",
                                  str(tmp_path / "cong-nhan.xlsx"))
    assert recognised_2026.exit_code == 0, recognised_2026.output
    titles = [row[1] for row in load_workbook(tmp_path / "cong-nhan.xlsx").active.iter_rows(min_row=5,
                                                                                              values_only=True)]
    assert titles == [row["title"] for row in rows if within(row["recognised"])]


@pytest.mark.parametrize(("args", "says"), [
    (["list", "--year", "1990"], "--year cần là một năm từ 2000 đến 2100."),
    (["export", "--year", "3000"], "--year cần là một năm từ 2000 đến 2100."),
    (["export", "--out", "sang-kien.csv"], "--out cần là một tệp .xlsx"),
    (["export", "--out", "khong-co/thu-muc/sang-kien.xlsx"], "Không ghi được tệp"),
])
async def test_a_wrong_initiatives_command_is_one_line(shell, tmp_path, monkeypatch, args, says):
    monkeypatch.chdir(tmp_path)
    result = await shell("initiatives", *args)
    assert result.exit_code == 2, result.output
    assert says in result.output and len(result.output.strip().splitlines()) == 1, result.output
    assert list(tmp_path.glob("*.xlsx")) == []
