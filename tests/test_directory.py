"""The commune's directory as a workbook: template, import (all or nothing), export, prune; on SQLite and,
with TEST_DATABASE_URL, on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import typer
from openpyxl import load_workbook
from sqlmodel import col, select
from typer.testing import CliRunner

from bot.cli_directory import directory_app
from content.schema import CitizenGroup
from reports.directory_book import BookError, read_directory_file, write_directory, write_template
from storage import migrate
from storage.db import Database
from storage.directory import (
    COLUMNS,
    HOUSEHOLDS,
    ORGANISATIONS,
    POPULATION,
    SHEETS,
    VILLAGES,
    DirectoryError,
    ImportReport,
    Row,
    SheetRows,
    export_directory,
    import_directory,
)
from storage.models import Household, Membership, Organisation, Person, PopulationFigure, Village

NOW = datetime(2026, 12, 1, 3, 30, tzinfo=UTC)
CODE_LENGTH = 6


@pytest.fixture
async def database(database_url: str):
    db = Database(database_url)
    await migrate.upgrade(db.engine)
    yield db
    await db.dispose()


def sheet(name: str, *rows: list[Any], header: tuple[str, ...] | None = None) -> SheetRows:
    """A sheet as the workbook reader gives it: rows numbered from 2, cells by header."""
    columns = header or COLUMNS[name]
    return SheetRows(name, columns, tuple(Row(number, dict(zip(columns, values, strict=True)))
                                          for number, values in enumerate(rows, start=2)))


def commune(**sheets: SheetRows) -> dict[str, SheetRows]:
    return {rows.name: rows for rows in sheets.values()}


def base_file() -> dict[str, SheetRows]:
    """Two villages, a hội with a chi hội defined before it, three households, some figures."""
    return commune(
        villages=sheet(VILLAGES, [None, "Thôn 1"], [None, "Thôn 2"]),
        organisations=sheet(ORGANISATIONS, [None, "Chi hội Phụ nữ thôn 1", "đoàn thể", "Hội Liên hiệp Phụ nữ xã"],
                            [None, "Hội Liên hiệp Phụ nữ xã", "Đoàn thể", None],
                            [None, "Trường Tiểu học", "TRƯỜNG HỌC", ""]),
        households=sheet(HOUSEHOLDS, [None, "048213", "Nguyễn Văn An", "Thôn 1", 4],
                         [None, None, "Trần Thị Bình", "thôn  2", None],
                         [None, None, "Lê Văn Cường", "Thôn 2", "3"]),
        population=sheet(POPULATION, [None, 5200, 900, 120, "1.250"], ["Thôn 1", 800, None, None, None]),
    )


async def run_import(database: Database, sheets: dict[str, SheetRows], **options: Any) -> ImportReport:
    return await import_directory(database, sheets, code_length=CODE_LENGTH, clock=lambda: NOW, **options)


async def snapshot(database: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Everything the directory owns, comparable between two moments."""
    async with database.session() as session:
        villages = (await session.exec(select(Village).order_by(col(Village.id)))).all()
        units = (await session.exec(select(Organisation).order_by(col(Organisation.id)))).all()
        households = (await session.exec(select(Household).order_by(col(Household.id)))).all()
        figures = (await session.exec(select(PopulationFigure).order_by(col(PopulationFigure.id)))).all()
    return {
        "villages": [(v.id, v.name) for v in villages],
        "organisations": [(o.id, o.name, o.kind, o.parent_id) for o in units],
        "households": [(h.id, h.code, h.village_id, h.head_name, h.member_count, h.in_directory, h.created_at)
                       for h in households],
        "figures": [(f.id, f.target_group, f.village_id, f.count) for f in figures],
    }


async def add(database: Database, *rows: Any) -> list[Any]:
    async with database.session() as session:
        session.add_all(rows)
        await session.flush()
    return list(rows)


async def village_id(database: Database, name: str) -> int:
    async with database.session() as session:
        village = (await session.exec(select(Village).where(Village.name == name))).one()
    assert village.id is not None
    return village.id


def summary(report: ImportReport, name: str) -> tuple[int, int, int, int]:
    found = next(s for s in report.summaries if s.sheet == name)
    return found.added, found.updated, found.unchanged, found.missing


async def export_and_read(database: Database, path: Path) -> dict[str, SheetRows]:
    write_directory(path, await export_directory(database), code_length=CODE_LENGTH)
    return read_directory_file(path)


def problems_of(error: pytest.ExceptionInfo[DirectoryError]) -> set[tuple[str, int | None, str | None]]:
    return {(p.sheet, p.row, p.column) for p in error.value.problems}


# --- template -------------------------------------------------------------------------------------

def test_the_template_has_instructions_and_every_sheet_with_headers_only(tmp_path: Path) -> None:
    path = tmp_path / "mau.xlsx"
    write_template(path, code_length=7)
    book = load_workbook(path)
    assert book.sheetnames == ["Hướng dẫn", *SHEETS]
    guide = " ".join(str(cell.value) for cell in book["Hướng dẫn"]["A"] if cell.value)
    assert "--prune" in guide and "“Mã”" in guide and "đúng 7 chữ số" in guide and "Mặt trận" in guide
    for name in SHEETS:
        data = book[name]
        assert [cell.value for cell in data[1]] == list(COLUMNS[name])
        assert data.max_row == 1  # no example row among the data
        assert data.freeze_panes == "A2" and data["A1"].font.bold
    assert book[HOUSEHOLDS].column_dimensions["B"].number_format == "@"  # Mã hộ keeps its leading zeros
    read = read_directory_file(path)
    assert set(read) == set(SHEETS) and all(not rows.rows for rows in read.values())


async def test_the_empty_template_imports_into_an_empty_database_without_change(database, tmp_path):
    path = tmp_path / "mau.xlsx"
    write_template(path, code_length=CODE_LENGTH)
    report = await run_import(database, read_directory_file(path))
    assert report.changes == 0 and not report.written and report.missing == ()


# --- import ---------------------------------------------------------------------------------------

async def test_a_file_imports_into_an_empty_database(database):
    report = await run_import(database, base_file())
    assert report.written
    assert summary(report, VILLAGES) == (2, 0, 0, 0)
    assert summary(report, ORGANISATIONS) == (3, 0, 0, 0)
    assert summary(report, HOUSEHOLDS) == (3, 0, 0, 0)
    assert summary(report, POPULATION)[0] == 5
    stored = await snapshot(database)
    assert [name for _, name in stored["villages"]] == ["Thôn 1", "Thôn 2"]
    units = {name: (kind, parent) for _, name, kind, parent in stored["organisations"]}
    hoi = next(i for i, name, _, _ in stored["organisations"] if name == "Hội Liên hiệp Phụ nữ xã")
    assert units["Chi hội Phụ nữ thôn 1"] == ("doan-the", hoi)  # its parent came later in the file
    assert units["Trường Tiểu học"] == ("truong-hoc", None)
    thon_2 = await village_id(database, "Thôn 2")
    households = {head: (code, village, members, directory, created)
                  for _, code, village, head, members, directory, created in stored["households"]}
    assert households["Nguyễn Văn An"] == ("048213", await village_id(database, "Thôn 1"), 4, True, NOW)
    assert households["Trần Thị Bình"] == (None, thon_2, None, True, NOW)  # "thôn  2" is Thôn 2
    assert households["Lê Văn Cường"][2] == 3
    figures = {(group, village): count for _, group, village, count in stored["figures"]}
    assert figures == {
        (CitizenGroup.RESIDENT.value, None): 5200, (CitizenGroup.STUDENT.value, None): 900,
        (CitizenGroup.OFFICIAL.value, None): 120, (CitizenGroup.WORKER.value, None): 1250,
        (CitizenGroup.RESIDENT.value, await village_id(database, "Thôn 1")): 800,
    }


async def test_importing_the_same_file_twice_changes_nothing_the_second_time(database):
    await run_import(database, base_file())
    before = await snapshot(database)
    again = await run_import(database, base_file())
    assert again.changes == 0 and not again.written and again.missing == ()
    assert summary(again, HOUSEHOLDS) == (0, 0, 3, 0)
    assert summary(again, POPULATION) == (0, 0, 5, 0)
    assert await snapshot(database) == before


async def test_export_then_import_changes_nothing(database, tmp_path):
    await run_import(database, base_file())
    chat_household, = await add(database, Household(code="777777", created_at=NOW))
    before = await snapshot(database)
    sheets = await export_and_read(database, tmp_path / "danh-ba.xlsx")
    heads = [row.cells["Họ tên chủ hộ"] for row in sheets[HOUSEHOLDS].rows]
    assert sorted(heads) == ["Lê Văn Cường", "Nguyễn Văn An", "Trần Thị Bình"]  # never a chat household
    assert all(isinstance(row.cells["Mã"], int) for name in (VILLAGES, ORGANISATIONS, HOUSEHOLDS)
               for row in sheets[name].rows)
    book = load_workbook(tmp_path / "danh-ba.xlsx")
    assert book[POPULATION]["B2"].value == 5200  # numbers stay numbers
    report = await run_import(database, sheets)
    assert report.changes == 0 and report.missing == ()
    assert await snapshot(database) == before
    assert chat_household.id in [row[0] for row in before["households"]]


async def test_a_renamed_village_is_updated_and_its_people_keep_it(database, tmp_path):
    await run_import(database, base_file())
    thon_1 = await village_id(database, "Thôn 1")
    person, = await add(database, Person(full_name="Phạm Thị Dung", village_id=thon_1, consent_at=NOW,
                                         created_at=NOW))
    path = tmp_path / "danh-ba.xlsx"
    await export_and_read(database, path)
    book = load_workbook(path)
    villages = book[VILLAGES]
    assert villages["A2"].value == thon_1 and villages["B2"].value == "Thôn 1"
    villages["B2"] = "Thôn Đông"
    book[HOUSEHOLDS]["D2"] = "Thôn Đông"  # the households of Thôn 1 say the new name too
    book[POPULATION]["A3"] = "Thôn Đông"
    book.save(path)
    report = await run_import(database, read_directory_file(path))
    assert summary(report, VILLAGES) == (0, 1, 1, 0) and report.missing == ()
    assert summary(report, HOUSEHOLDS) == (0, 0, 3, 0)
    assert await village_id(database, "Thôn Đông") == thon_1
    async with database.session() as session:
        assert (await session.get(Person, person.id)).village_id == thon_1


async def test_two_villages_can_swap_names_and_two_households_their_codes(database, tmp_path):
    await run_import(database, base_file())
    await add(database, Household(code="111111", village_id=await village_id(database, "Thôn 2"), head_name="Hồ Văn E",
                                  in_directory=True, created_at=NOW))
    path = tmp_path / "danh-ba.xlsx"
    sheets = await export_and_read(database, path)
    codes = {row.cells["Họ tên chủ hộ"]: row.cells["Mã hộ"] for row in sheets[HOUSEHOLDS].rows}
    assert codes["Nguyễn Văn An"] == "048213" and codes["Hồ Văn E"] == "111111"
    book = load_workbook(path)
    book[VILLAGES]["B2"], book[VILLAGES]["B3"] = "Thôn 2", "Thôn 1"
    for row in book[HOUSEHOLDS].iter_rows(min_row=2):
        row[3].value = {"Thôn 1": "Thôn 2", "Thôn 2": "Thôn 1"}[row[3].value]
        row[1].value = {"048213": "111111", "111111": "048213"}.get(row[1].value, row[1].value)
    book[POPULATION]["A3"], book[POPULATION]["A4"] = "Thôn 2", "Thôn 1"
    book.save(path)
    before = await snapshot(database)
    report = await run_import(database, read_directory_file(path))
    assert summary(report, VILLAGES) == (0, 2, 0, 0)
    assert summary(report, HOUSEHOLDS) == (0, 2, 2, 0)  # only the two codes changed
    after = await snapshot(database)
    assert after["villages"] == [(before["villages"][0][0], "Thôn 2"), (before["villages"][1][0], "Thôn 1")]
    codes_after = {head: code for _, code, _, head, *_ in after["households"]}
    assert codes_after["Nguyễn Văn An"] == "111111" and codes_after["Hồ Văn E"] == "048213"


# --- all or nothing -------------------------------------------------------------------------------

async def test_one_bad_row_changes_nothing_and_names_sheet_row_and_column(database):
    await run_import(database, base_file())
    before = await snapshot(database)
    sheets = base_file()
    sheets[VILLAGES] = sheet(VILLAGES, [None, "Thôn 1"], [None, "Thôn 2"], [None, "Thôn 3"])  # one new village
    sheets[HOUSEHOLDS] = sheet(HOUSEHOLDS, [None, "048213", "Nguyễn Văn An", "Thôn 1", 5],
                               [None, None, "Trần Thị Bình", "Thôn 2", None],
                               [None, None, "Lê Văn Cường", "Thôn 2", "3"],
                               [None, None, "Vũ Thị Giang", "Thôn 3", 2],
                               [None, None, "Đỗ Văn Hùng", "Thôn 9", 2])
    with pytest.raises(DirectoryError) as error:
        await run_import(database, sheets)
    assert [str(p) for p in error.value.problems] == [
        'Hộ gia đình, dòng 6, cột "Thôn/xóm": không có thôn/xóm "Thôn 9" trong tệp hay trong dữ liệu đã lưu.'
    ]
    assert await snapshot(database) == before  # neither Thôn 3, nor Vũ Thị Giang, nor An's 5 members


async def test_every_kind_of_error_is_listed_together(database):
    await add(database, Household(code="123456", created_at=NOW))  # made in chat
    sheets = commune(
        villages=sheet(VILLAGES, [None, "Thôn 1"], [None, "X" * 121], [None, "thôn 1"], [42, "Thôn 5"],
                       ["abc", "Thôn 6"]),
        organisations=sheet(ORGANISATIONS, [None, "Hội A", "Hội", None], [None, "Hội B", "Khác", "Hội Z"],
                            [None, "", "Khác", None]),
        households=sheet(HOUSEHOLDS, [None, "12345", "Lê Văn A", "Thôn 1", 1],
                         [None, "555555", "Lê Văn B", "Thôn 1", 0], [None, "555555", "Lê Văn C", "Thôn 1", "hai"],
                         [None, "123456", "Lê Văn D", "Thôn 1", None], [None, None, "Lê Văn E", "", None]),
        population=sheet(POPULATION, ["Thôn 1", -3, None, None], header=COLUMNS[POPULATION][:4]),
    )
    with pytest.raises(DirectoryError) as error:
        await run_import(database, sheets)
    found = problems_of(error)
    assert {
        (VILLAGES, 3, "Tên thôn/xóm"),  # too long
        (VILLAGES, 4, "Tên thôn/xóm"),  # same name as row 2, whatever the case
        (VILLAGES, 5, "Mã"),  # no such stored village
        (VILLAGES, 6, "Mã"),  # not a Mã at all
        (ORGANISATIONS, 2, "Loại"),  # unknown kind
        (ORGANISATIONS, 3, "Thuộc tổ chức"),  # unknown parent
        (ORGANISATIONS, 4, "Tên tổ chức"),  # empty name
        (HOUSEHOLDS, 2, "Mã hộ"),  # five digits
        (HOUSEHOLDS, 3, "Số nhân khẩu"),  # 0 members
        (HOUSEHOLDS, 4, "Mã hộ"),  # the same code as row 3
        (HOUSEHOLDS, 4, "Số nhân khẩu"),  # not a number
        (HOUSEHOLDS, 5, "Mã hộ"),  # a chat household's code
        (HOUSEHOLDS, 6, "Thôn/xóm"),  # no village
        (POPULATION, 1, "Người lao động doanh nghiệp"),  # missing column
    } <= found
    messages = [str(p) for p in error.value.problems]
    assert 'Thôn xóm, dòng 4, cột "Tên thôn/xóm": tên "thôn 1" trùng với dòng 2.' in messages
    assert any("Mã hộ 555555 trùng với dòng 3" in m for m in messages)
    after = await snapshot(database)
    assert (after["villages"], after["organisations"], after["figures"], len(after["households"])) == ([], [], [], 1)


async def test_household_code_held_by_a_chat_household_is_refused(database):
    await run_import(database, base_file())
    chat, = await add(database, Household(code="654321", created_at=NOW))
    before = await snapshot(database)
    sheets = {HOUSEHOLDS: sheet(HOUSEHOLDS, [None, "654321", "Mai Văn Khoa", "Thôn 1", 2])}
    with pytest.raises(DirectoryError) as error:
        await run_import(database, sheets)
    problem, = error.value.problems
    assert (problem.sheet, problem.row, problem.column) == (HOUSEHOLDS, 2, "Mã hộ")
    assert "do người dân tạo trên bot" in problem.message
    assert await snapshot(database) == before
    assert chat.in_directory is False


async def test_parents_may_not_loop_nor_be_the_unit_itself(database):
    sheets = {ORGANISATIONS: sheet(ORGANISATIONS, [None, "Hội A", "Đoàn thể", "Hội B"],
                                   [None, "Hội B", "Đoàn thể", "Hội A"], [None, "Hội C", "Khác", "hội c"],
                                   [None, "Hội D", "Khác", "Hội A"])}
    with pytest.raises(DirectoryError) as error:
        await run_import(database, sheets)
    assert problems_of(error) == {(ORGANISATIONS, 2, "Thuộc tổ chức"), (ORGANISATIONS, 3, "Thuộc tổ chức"),
                                  (ORGANISATIONS, 4, "Thuộc tổ chức")}  # D hangs under the loop, not in it
    assert "vòng lặp" in str(error.value.problems[0]) and "thuộc chính nó" in str(error.value.problems[2])


async def test_a_loop_through_a_stored_unit_the_file_lacks_is_refused(database):
    await run_import(database, {ORGANISATIONS: sheet(ORGANISATIONS, [None, "Hội A", "Đoàn thể", "Hội B"],
                                                     [None, "Hội B", "Đoàn thể", None])})
    before = await snapshot(database)
    with pytest.raises(DirectoryError) as error:  # Hội A stays (no --prune), still under Hội B
        await run_import(database, {ORGANISATIONS: sheet(ORGANISATIONS, [None, "Hội B", "Đoàn thể", "Hội A"])})
    assert problems_of(error) == {(ORGANISATIONS, 2, "Thuộc tổ chức")}
    assert await snapshot(database) == before


# --- missing rows and --prune ---------------------------------------------------------------------

async def test_missing_rows_are_listed_and_kept_and_removed_only_with_prune(database):
    await run_import(database, base_file())
    thon_2 = await village_id(database, "Thôn 2")
    before = await snapshot(database)
    truong = next(i for i, name, *_ in before["organisations"] if name == "Trường Tiểu học")
    binh = next(i for i, _, _, head, *_ in before["households"] if head == "Trần Thị Bình")
    person, = await add(database, Person(full_name="Trần Văn Lâm", village_id=thon_2, household_id=binh,
                                         is_household_head=True, consent_at=NOW, created_at=NOW))
    await add(database, Membership(person_id=person.id, organisation_id=truong))
    smaller = commune(
        villages=sheet(VILLAGES, [None, "Thôn 1"]),
        organisations=sheet(ORGANISATIONS, [None, "Chi hội Phụ nữ thôn 1", "Đoàn thể", "Hội Liên hiệp Phụ nữ xã"],
                            [None, "Hội Liên hiệp Phụ nữ xã", "Đoàn thể", None]),
        households=sheet(HOUSEHOLDS, [None, "048213", "Nguyễn Văn An", "Thôn 1", 4]),
        population=sheet(POPULATION, ["Thôn 1", 800, None, None, None]),
    )
    kept = await run_import(database, smaller)
    assert kept.changes == 0 and not kept.pruned
    listed = [str(row) for row in kept.missing]
    assert f'Thôn xóm: "Thôn 2" (Mã {thon_2}) — 1 người, 2 hộ gia đình đang ghi thôn/xóm này' in listed
    assert f'Tổ chức: "Trường Tiểu học" (Mã {truong}) — 1 thành viên' in listed
    assert f'Hộ gia đình: "Trần Thị Bình", Thôn 2 (Mã {binh}) — 1 người đã vào hộ' in listed
    assert "Dân số: cả xã — 4 số liệu" in listed
    assert len(listed) == 5  # Thôn 2 has two households
    assert await snapshot(database) == before

    # A row that refers to a village --prune would delete is refused, not silently emptied.
    refers = dict(smaller, **{HOUSEHOLDS: sheet(HOUSEHOLDS, [None, "048213", "Nguyễn Văn An", "Thôn 2", 4])})
    with pytest.raises(DirectoryError, match="sẽ bị xóa"):
        await run_import(database, refers, prune=True)

    pruned = await run_import(database, smaller, prune=True)
    assert pruned.pruned and pruned.written and len(pruned.missing) == 5
    after = await snapshot(database)
    assert [name for _, name in after["villages"]] == ["Thôn 1"]
    assert [name for _, name, *_ in after["organisations"]] == ["Chi hội Phụ nữ thôn 1", "Hội Liên hiệp Phụ nữ xã"]
    assert [head for _, _, _, head, *_ in after["households"]] == ["Nguyễn Văn An"]
    assert [(village, count) for _, _, village, count in after["figures"]] == [(await village_id(database, "Thôn 1"),
                                                                                800)]
    async with database.session() as session:
        left = await session.get(Person, person.id)
    assert left is not None and left.village_id is None and left.household_id is None
    assert not left.is_household_head
    assert (await run_import(database, smaller, prune=True)).changes == 0


async def test_chat_households_are_never_listed_nor_pruned(database):
    await run_import(database, base_file())
    thon_1 = await village_id(database, "Thôn 1")
    chat, = await add(database, Household(code="246810", village_id=thon_1, head_name="Nguyễn Văn An", created_at=NOW))
    only_one = {HOUSEHOLDS: sheet(HOUSEHOLDS, [None, "048213", "Nguyễn Văn An", "Thôn 1", 4])}
    report = await run_import(database, only_one, prune=True)
    assert summary(report, HOUSEHOLDS) == (0, 0, 1, 2)
    assert all("246810" not in str(row) and f"(Mã {chat.id})" not in str(row) for row in report.missing)
    async with database.session() as session:
        kept = await session.get(Household, chat.id)
    assert kept is not None and kept.code == "246810" and not kept.in_directory
    # A row without Mã or Mã hộ never takes over a chat household with the same head and village.
    again = await run_import(database, {HOUSEHOLDS: sheet(HOUSEHOLDS, [None, None, "Nguyễn Văn An", "Thôn 1", 4])})
    assert summary(again, HOUSEHOLDS) == (0, 0, 1, 0)  # it is the directory one, unchanged


async def test_dry_run_tells_what_would_change_and_writes_nothing(database):
    report = await run_import(database, base_file(), dry_run=True)
    assert not report.written and summary(report, VILLAGES) == (2, 0, 0, 0) and report.changes == 13
    assert await snapshot(database) == {"villages": [], "organisations": [], "households": [], "figures": []}


# --- population -----------------------------------------------------------------------------------

async def test_population_figures_are_replaced_per_row_and_blank_cells_clear_them(database):
    await run_import(database, base_file())
    thon_1, thon_2 = await village_id(database, "Thôn 1"), await village_id(database, "Thôn 2")
    changed = {POPULATION: sheet(POPULATION, [None, 5300, None, 120, 1250], ["Thôn 1", None, 10, None, None],
                                 ["Thôn 2", 0, None, None, None])}
    report = await run_import(database, changed)
    found = next(s for s in report.summaries if s.sheet == POPULATION)
    assert (found.added, found.updated, found.cleared, found.unchanged) == (2, 1, 2, 2)
    figures = {(f[1], f[2]): f[3] for f in (await snapshot(database))["figures"]}
    assert figures == {
        (CitizenGroup.RESIDENT.value, None): 5300, (CitizenGroup.OFFICIAL.value, None): 120,
        (CitizenGroup.WORKER.value, None): 1250, (CitizenGroup.STUDENT.value, thon_1): 10,
        (CitizenGroup.RESIDENT.value, thon_2): 0,  # zero is a figure, blank is unknown
    }


# --- CSV ------------------------------------------------------------------------------------------

async def test_csv_with_semicolons_and_a_bom_imports_one_sheet(database, tmp_path):
    await run_import(database, base_file())
    path = tmp_path / "ho.csv"
    path.write_bytes("\ufeffMã;Mã hộ;Họ tên chủ hộ;Thôn/xóm;Số nhân khẩu\r\n"
                     ";135790;Đinh Thị Mai;Thôn 2;5\r\n;;\"Ngô Văn Nam; con\";Thôn 1;\r\n".encode())
    sheets = read_directory_file(path)
    assert list(sheets) == [HOUSEHOLDS]
    assert [row.number for row in sheets[HOUSEHOLDS].rows] == [2, 3]
    before = await snapshot(database)
    report = await run_import(database, sheets)
    assert [s.sheet for s in report.summaries] == [HOUSEHOLDS]
    assert summary(report, HOUSEHOLDS) == (2, 0, 0, 3)  # the three stored ones are listed, not removed
    after = await snapshot(database)
    assert after["villages"] == before["villages"] and after["organisations"] == before["organisations"]
    heads = {head: code for _, code, _, head, *_ in after["households"]}
    assert heads["Đinh Thị Mai"] == "135790" and heads["Ngô Văn Nam; con"] is None and len(heads) == 5


async def test_csv_with_commas_and_quoted_headers_imports_the_population(database, tmp_path):
    await run_import(database, base_file())
    path = tmp_path / "dan-so.csv"
    path.write_text('Thôn/xóm,Người dân trong độ tuổi,"Học sinh, sinh viên","Cán bộ, công chức, viên chức",'
                    "Người lao động doanh nghiệp\n,5200,900,120,1250\nThôn 1,800,,,\n", encoding="utf-8")
    report = await run_import(database, read_directory_file(path))
    assert report.changes == 0 and summary(report, POPULATION) == (0, 0, 5, 0)


def test_files_that_cannot_be_read_are_told_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("x")
    (tmp_path / "b.xlsx").write_text("not a zip")
    (tmp_path / "c.csv").write_bytes("Mã;Tên thôn/xóm\n;Thôn 1\n".encode("latin-1"))
    (tmp_path / "d.csv").write_text("Tên;Địa chỉ\n", encoding="utf-8")
    cases = {"none.xlsx": "Không có tệp", "a.txt": ".xlsx", "b.xlsx": "Không mở được", "c.csv": "UTF-8",
             "d.csv": "Không nhận ra"}
    for name, words in cases.items():
        with pytest.raises(BookError, match=words) as error:
            read_directory_file(tmp_path / name)
        assert "\n" not in str(error.value)


# --- the command ----------------------------------------------------------------------------------

@pytest.fixture
def cli(sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, restore_logging: None) -> CliRunner:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOCVUSO_DATABASE_URL", sqlite_url)
    return CliRunner()


def hocvuso() -> typer.Typer:
    app = typer.Typer()
    app.add_typer(directory_app, name="directory")
    return app


def test_the_command_imports_exports_and_refuses_a_bad_file_with_exit_1(cli: CliRunner, tmp_path: Path) -> None:
    app = hocvuso()
    assert cli.invoke(app, ["directory", "template", "mau.xlsx"]).exit_code == 0
    book = load_workbook(tmp_path / "mau.xlsx")
    book[VILLAGES].append([None, "Thôn 1"])
    book[HOUSEHOLDS].append([None, "012345", "Nguyễn Văn An", "Thôn 1", 4])
    book[HOUSEHOLDS].append([None, None, "Lê Thị Bình", "Thôn 7", 4])
    book.save(tmp_path / "bad.xlsx")
    refused = cli.invoke(app, ["directory", "import", "bad.xlsx"])
    assert refused.exit_code == 1 and "Traceback" not in refused.output
    assert 'Hộ gia đình, dòng 3, cột "Thôn/xóm": không có thôn/xóm "Thôn 7"' in refused.output
    assert "Tệp có 1 lỗi, chưa thay đổi gì:" in refused.output

    book[HOUSEHOLDS]["D3"] = "Thôn 1"
    book.save(tmp_path / "good.xlsx")
    dry = cli.invoke(app, ["directory", "import", "good.xlsx", "--dry-run"])
    assert dry.exit_code == 0 and "Chạy thử" in dry.output and "Thôn xóm: thêm 1" in dry.output
    done = cli.invoke(app, ["directory", "import", "good.xlsx"])
    assert done.exit_code == 0 and "Hộ gia đình: thêm 2, sửa 0, giữ nguyên 0." in done.output
    again = cli.invoke(app, ["directory", "import", "good.xlsx"])
    assert "Không có gì thay đổi" in again.output

    assert cli.invoke(app, ["directory", "export", "ra.xlsx"]).exit_code == 0
    exported = load_workbook(tmp_path / "ra.xlsx")[HOUSEHOLDS]
    assert exported["B2"].value == "012345" and isinstance(exported["A2"].value, int)
    assert "Không có gì thay đổi" in cli.invoke(app, ["directory", "import", "ra.xlsx"]).output


def test_the_command_tells_a_wrong_path_in_one_line(cli: CliRunner) -> None:
    app = hocvuso()
    for arguments in (["import", "khong-co.xlsx"], ["export", "khong-co/ra.xlsx"], ["export", "ra.csv"],
                      ["template", "khong-co/mau.xlsx"]):
        result = cli.invoke(app, ["directory", *arguments])
        assert result.exit_code == 1, arguments
        assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output


async def test_progress_is_reported_while_checking_and_writing(database):
    seen: list[tuple[str, int, int]] = []
    await run_import(database, base_file(), progress=lambda what, done, total: seen.append((what, done, total)))
    stages = {what for what, _, _ in seen}
    assert stages == {"Kiểm tra tệp", "Ghi vào cơ sở dữ liệu"}
    assert ("Kiểm tra tệp", 10, 10) in seen and ("Ghi vào cơ sở dữ liệu", 13, 13) in seen


async def test_a_code_typed_as_a_number_that_lost_its_zeros_is_refused(database):
    sheets = commune(villages=sheet(VILLAGES, [None, "Thôn 1"]),
                     households=sheet(HOUSEHOLDS, [None, 12345, "Lê Văn A", "Thôn 1", None],
                                      [None, 123456.0, "Lê Văn B", "Thôn 1", None]))
    with pytest.raises(DirectoryError) as error:
        await run_import(database, sheets)
    problem, = error.value.problems
    assert problem.row == 2 and "số 0 ở đầu" in problem.message
