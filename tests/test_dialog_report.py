"""/baocao in chat and `hocvuso report` in the shell: each role gets its own unit's files, nobody else's,
and their figures are the ones /thongke shows."""

from __future__ import annotations

import asyncio
import functools
import io

import pytest
from docx import Document
from openpyxl import load_workbook
from sqlmodel import select
from typer.testing import CliRunner

from bot.cli import app
from reports.report_book import HOUSEHOLDS, ORGANISATIONS, SUMMARY, VILLAGES
from storage.models import AuditLog, Organisation, Village
from tests.support import Chat
from tests.test_dialog_figures import FARMERS, WOMEN, build_residents, grant, register_viewer, store


def _summary_total(book) -> tuple[int, int]:
    """(registered, finished) from the summary sheet's "Tổng cộng" row."""
    for row in book[SUMMARY].iter_rows(values_only=True):
        if row and row[0] == "Tổng cộng":
            return row[1], row[2]
    raise AssertionError("no total row")


def _files(chat: Chat) -> dict[str, bytes]:
    return {reply.attachment.file_name.rsplit(".", 1)[1]: reply.attachment.data
            for reply in chat.replies if reply.attachment is not None}


async def test_each_role_gets_its_own_units_report_with_the_figures_of_thongke(make_chat, services):
    core = list(services.core_lessons(services.clock()))
    residents = build_residents(core)
    await store(services, residents, core)

    leader = make_chat("leader")
    await register_viewer(leader, "Trần Văn Lãnh")
    await grant(services, leader, "leader", org=FARMERS)
    answer = await leader.say("/baocao")
    farmers = [r for r in residents if FARMERS in r.orgs]
    done = sum(r.lessons_done == len(core) for r in farmers)
    assert f"📑 Báo cáo năm 2026: {FARMERS}" in answer
    assert f"• Người đăng ký: {len(farmers)}" in answer and f"• Hoàn thành khóa cơ bản: {done} (" in answer
    files = _files(leader)
    assert set(files) == {"png", "xlsx", "docx"} and files["png"].startswith(b"\x89PNG")
    book = load_workbook(io.BytesIO(files["xlsx"]))
    assert _summary_total(book) == (len(farmers), done)
    assert [row[0] for row in book[ORGANISATIONS].iter_rows(min_row=6, values_only=True) if row[0]] == [FARMERS]
    assert all(str(row[0]).startswith("Hộ số") for row in book[HOUSEHOLDS].iter_rows(min_row=6, values_only=True)
               if row[0])
    document = Document(io.BytesIO(files["docx"]))
    assert any(FARMERS.upper() in cell.text for cell in document.tables[0].rows[0].cells)
    thongke = await leader.say("/thongke")
    assert f"• Hoàn thành khóa cơ bản: {done} (" in thongke  # the same count in chat

    head = make_chat("head")
    await register_viewer(head, "Lê Thị Trưởng")
    await grant(services, head, "village_head", village="Thôn 1")
    await head.say("/baocao")
    village = [r for r in residents if r.village == "Thôn 1"]
    book = load_workbook(io.BytesIO(_files(head)["xlsx"]))
    assert _summary_total(book) == (len(village), sum(r.lessons_done == len(core) for r in village))
    assert [row[0] for row in book[VILLAGES].iter_rows(min_row=6, values_only=True) if row[0]] == ["Thôn 1"]

    staff = make_chat("staff")
    await register_viewer(staff, "Đỗ Văn Xã")
    await grant(services, staff, "staff")
    answer = await staff.say("/baocao")
    everyone = len(residents) + 3  # the three viewers registered here
    assert "📑 Báo cáo năm 2026: xã Cát Thành" in answer and f"• Người đăng ký: {everyone}" in answer
    book = load_workbook(io.BytesIO(_files(staff)["xlsx"]))
    assert _summary_total(book) == (everyone, sum(r.lessons_done == len(core) for r in residents))
    organisations = {row[0] for row in book[ORGANISATIONS].iter_rows(min_row=6, values_only=True) if row[0]}
    assert {FARMERS, WOMEN} <= organisations

    # Last year's report is one press away, and counts only what was there by its end.
    answer = await staff.choose("Báo cáo năm 2025")
    assert "Báo cáo năm 2025" in answer and "Kỳ báo cáo: 11/12/2024 - 10/12/2025" in answer
    assert "• Người đăng ký: 0" in answer  # everyone here registered in 2026

    async with services.database.session() as session:
        logged = (await session.exec(select(AuditLog).where(AuditLog.action == "report"))).all()
    assert [entry.outcome for entry in logged] == ["ok"] * 4


async def test_nobody_gets_a_report_outside_their_scope(make_chat, services):
    async with services.database.session() as session:
        farmers = (await session.exec(select(Organisation.id).where(Organisation.name == FARMERS))).one()
        women = (await session.exec(select(Organisation.id).where(Organisation.name == WOMEN))).one()
        village = (await session.exec(select(Village.id).where(Village.name == "Thôn 2"))).one()
    resident = make_chat("resident")
    await register_viewer(resident, "Nguyễn Văn Dân")
    answer = await resident.say("/baocao")
    assert "Báo cáo chỉ dành cho người phụ trách đơn vị" in answer and not _files(resident)

    leader = make_chat("leader")
    await register_viewer(leader, "Trần Văn Lãnh")
    await grant(services, leader, "leader", org=FARMERS)
    for forged in (f"bc:org:{women}", f"bc:village:{village}", "bc:commune", "bc:household", "bc:org:x",
                   f"bc:org:{farmers}@1999", f"bc:org:{farmers}@", "bc:org:99999"):
        answer = await leader.press(forged)
        assert "Báo cáo chỉ dành cho người phụ trách đơn vị" in answer, forged
        assert not _files(leader), forged
    await leader.press(f"bc:org:{farmers}@2025")  # their own unit, another year: allowed
    assert set(_files(leader)) == {"png", "xlsx", "docx"}
    async with services.database.session() as session:
        refused = (await session.exec(select(AuditLog).where(AuditLog.action == "report",
                                                             AuditLog.outcome == "refused"))).all()
    assert len(refused) == 9  # the resident's and each forged press


async def test_a_person_with_several_units_chooses_one(make_chat, services):
    person = make_chat("both")
    await register_viewer(person, "Phạm Văn Hai")
    await grant(services, person, "leader", org=FARMERS)
    await grant(services, person, "village_head", village="Thôn 2")
    answer = await person.say("/baocao")
    assert "Bạn muốn lập báo cáo cho đơn vị nào?" in answer and not _files(person)
    assert "Thôn 2" in await person.choose("Thôn 2")
    assert set(_files(person)) == {"png", "xlsx", "docx"}
    assert "📑 Đơn vị khác" in person.labels


# --- the shell -------------------------------------------------------------------------------------

@pytest.fixture
def shell(monkeypatch, sqlite_url):
    monkeypatch.setenv("HOCVUSO_DATABASE_URL", sqlite_url)
    runner = CliRunner()
    return functools.partial(asyncio.to_thread, lambda *args: runner.invoke(app, list(args)))


async def test_the_shell_writes_the_three_files_of_a_unit(shell, services, tmp_path):
    core = list(services.core_lessons(services.clock()))
    residents = build_residents(core)
    await store(services, residents, core)
    result = await shell("report", "--year", "2026", "--org", FARMERS, "--out", str(tmp_path / "bao-cao"))
    assert result.exit_code == 0, result.output
    written = sorted(path.name for path in (tmp_path / "bao-cao").iterdir())
    assert written == ["bao-cao-2026-hoi-nong-dan-xa.docx", "bao-cao-2026-hoi-nong-dan-xa.png",
                       "bao-cao-2026-hoi-nong-dan-xa.xlsx"]
    book = load_workbook(tmp_path / "bao-cao" / "bao-cao-2026-hoi-nong-dan-xa.xlsx")
    farmers = [r for r in residents if FARMERS in r.orgs]
    assert _summary_total(book) == (len(farmers), sum(r.lessons_done == len(core) for r in farmers))

    commune = await shell("report", "--out", str(tmp_path / "xa"))
    assert commune.exit_code == 0 and "bao-cao-2026-xa-cat-thanh.xlsx" in commune.output
    full = load_workbook(tmp_path / "xa" / "bao-cao-2026-xa-cat-thanh.xlsx")
    summary = await shell("report", "--summary", "--out", str(tmp_path / "tom-tat"))
    assert summary.exit_code == 0, summary.output
    brief = load_workbook(tmp_path / "tom-tat" / "bao-cao-2026-xa-cat-thanh.xlsx")
    assert _summary_total(brief) == _summary_total(full)
    assert [row for row in brief[HOUSEHOLDS].iter_rows(min_row=6, values_only=True) if any(row)] == []
    assert [row for row in full[HOUSEHOLDS].iter_rows(min_row=6, values_only=True) if any(row)] != []


@pytest.mark.parametrize(("args", "says"), [
    (["--org", "Hội Không Có"], "Không có tổ chức"),
    (["--village", "Thôn 99"], "Không có thôn/xóm"),
    (["--org", FARMERS, "--village", "Thôn 1"], "Chọn một đơn vị"),
    (["--year", "1990"], "--year cần là một năm"),
])
async def test_a_wrong_report_command_is_one_line(shell, services, tmp_path, args, says):
    result = await shell("report", *args, "--out", str(tmp_path / "bao-cao"))
    assert result.exit_code == 2 and says in result.output
    assert len(result.output.strip().splitlines()) == 1 and not (tmp_path / "bao-cao").exists()


async def test_a_double_tap_builds_the_report_once(make_chat, services, clock, monkeypatch):
    import handlers.report

    built = []
    real = handlers.report._make

    def counted(request):
        built.append(request.scope)
        return real(request)

    monkeypatch.setattr(handlers.report, "_make", counted)
    staff = make_chat("staff")
    await register_viewer(staff, "Đỗ Văn Xã")
    await grant(services, staff, "staff")
    await staff.say("/baocao")
    first = _files(staff)
    await staff.say("/baocao")
    assert _files(staff) == first and len(built) == 1  # the same files, counted once
    clock.advance(minutes=3)
    await staff.say("/baocao")
    assert len(built) == 2  # later, counted again


async def test_the_report_is_made_in_the_renderer_process_as_hocvuso_run_does(services):
    from dataclasses import replace

    from bot.app import process_renderer
    from handlers.dispatcher import Dispatcher

    # On the console only: the renderer process is under test, not a channel, and starting one costs seconds.
    renderer = process_renderer()
    try:
        dispatcher = Dispatcher(replace(services, renderer=renderer))
        staff = Chat(dispatcher, user="staff")
        await register_viewer(staff, "Đỗ Văn Xã")
        await grant(services, staff, "staff")
        answer = await staff.say("/baocao")
        assert "• Người đăng ký: 1" in answer
        files = _files(staff)
        assert set(files) == {"png", "xlsx", "docx"}
        assert _summary_total(load_workbook(io.BytesIO(files["xlsx"]))) == (1, 0)
    finally:
        renderer.shutdown(wait=True)
