"""The commune's directory as plain rows: check a whole file, tell what it would change, apply it.

Knows nothing of workbooks (reports/directory_book.py reads and writes them) nor of the terminal: a file
arrives as rows of cells per sheet, numbered as a spreadsheet shows them. Every problem names its sheet,
row and column. An invalid file changes nothing; a valid one is applied in one transaction. Stored rows
the file lacks are listed, and deleted only when the operator asks (`prune`).
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, update
from sqlmodel import SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from content.schema import CitizenGroup
from storage.db import Database
from storage.models import (
    ORGANISATION_KINDS,
    Household,
    Membership,
    Organisation,
    Person,
    PopulationFigure,
    RoleGrant,
    Village,
    column_length,
)

# --- the file's shape -----------------------------------------------------------------------------

INSTRUCTIONS = "Hướng dẫn"
VILLAGES = "Thôn xóm"
ORGANISATIONS = "Tổ chức"
HOUSEHOLDS = "Hộ gia đình"
POPULATION = "Dân số"
SHEETS = (VILLAGES, ORGANISATIONS, HOUSEHOLDS, POPULATION)

ID = "Mã"
VILLAGE_NAME = "Tên thôn/xóm"
ORGANISATION_NAME = "Tên tổ chức"
KIND = "Loại"
PARENT = "Thuộc tổ chức"
HOUSEHOLD_CODE = "Mã hộ"
HEAD_NAME = "Họ tên chủ hộ"
VILLAGE = "Thôn/xóm"
MEMBER_COUNT = "Số nhân khẩu"
GROUP_COLUMNS: dict[CitizenGroup, str] = {
    CitizenGroup.RESIDENT: "Người dân trong độ tuổi",
    CitizenGroup.STUDENT: "Học sinh, sinh viên",
    CitizenGroup.OFFICIAL: "Cán bộ, công chức, viên chức",
    CitizenGroup.WORKER: "Người lao động doanh nghiệp",
}
COLUMNS: dict[str, tuple[str, ...]] = {
    VILLAGES: (ID, VILLAGE_NAME),
    ORGANISATIONS: (ID, ORGANISATION_NAME, KIND, PARENT),
    HOUSEHOLDS: (ID, HOUSEHOLD_CODE, HEAD_NAME, VILLAGE, MEMBER_COUNT),
    POPULATION: (VILLAGE, *GROUP_COLUMNS.values()),
}
# A file made by hand may lack the Mã column: its rows are then matched by name.
OPTIONAL_COLUMNS = frozenset({ID})
# The columns that tell which sheet a CSV file holds (any one of them).
SIGNATURES: dict[str, tuple[str, ...]] = {
    VILLAGES: (VILLAGE_NAME,),
    ORGANISATIONS: (ORGANISATION_NAME,),
    HOUSEHOLDS: (HEAD_NAME,),
    POPULATION: tuple(GROUP_COLUMNS.values()),
}

VILLAGE_NAME_MAX = column_length(Village, "name")
ORGANISATION_NAME_MAX = column_length(Organisation, "name")
HEAD_NAME_MAX = column_length(Household, "head_name")
MEMBER_COUNT_MIN, MEMBER_COUNT_MAX = 1, 50
# A commune has some tens of thousands of people: a bigger figure is a typing slip (and PostgreSQL's
# integer column ends at about two billion).
POPULATION_MAX = 1_000_000

Cell = str | int | float | None
Progress = Callable[[str, int, int], None]
"""Told (what is being done, how many rows done, how many in all) as an import goes on."""

CHECKING = "Kiểm tra tệp"
WRITING = "Ghi vào cơ sở dữ liệu"
NEW, UPDATED, UNCHANGED = "new", "updated", "unchanged"


@dataclass(frozen=True)
class Row:
    """One row of a sheet: its number as the spreadsheet shows it, and its cells by header text."""

    number: int
    cells: Mapping[str, Cell]


@dataclass(frozen=True)
class SheetRows:
    """One sheet of a directory file: its header texts and its rows (blank rows may be left out)."""

    name: str
    header: tuple[str, ...]
    rows: tuple[Row, ...] = ()


@dataclass(frozen=True)
class Problem:
    """Why a file cannot be imported, tied to the sheet, row and column a clerk looks at."""

    sheet: str
    row: int | None
    column: str | None
    message: str

    def __str__(self) -> str:
        where = [self.sheet] if self.sheet else []
        if self.row is not None:
            where.append(f"dòng {self.row}")
        if self.column:
            where.append(f'cột "{self.column}"')
        return f"{', '.join(where)}: {self.message}" if where else self.message


class DirectoryError(Exception):
    """The file is not imported: every problem found, in sheet and row order."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        order = {name: index for index, name in enumerate(SHEETS)}
        self.problems = sorted(problems, key=lambda p: (order.get(p.sheet, -1), p.row or 0))
        super().__init__("\n".join(str(problem) for problem in self.problems))


@dataclass
class SheetSummary:
    """What an import does to one sheet's rows (for "Dân số": to single figures, except `missing`)."""

    sheet: str
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    cleared: int = 0  # figures a blank cell deletes
    missing: int = 0  # stored rows the file lacks
    removed: int = 0  # of those, deleted (--prune)

    @property
    def changes(self) -> int:
        return self.added + self.updated + self.cleared + self.removed


@dataclass(frozen=True)
class MissingRow:
    """A stored row the file lacks, with who still refers to it (what deleting it would touch)."""

    sheet: str
    label: str
    consequence: str = ""

    def __str__(self) -> str:
        return f"{self.sheet}: {self.label}" + (f" — {self.consequence}" if self.consequence else "")


@dataclass(frozen=True)
class ImportReport:
    """The outcome of an import: per-sheet counts, the stored rows the file lacks, what was written."""

    summaries: tuple[SheetSummary, ...]
    missing: tuple[MissingRow, ...]
    pruned: bool
    written: bool

    @property
    def changes(self) -> int:
        return sum(summary.changes for summary in self.summaries)


# --- cells ----------------------------------------------------------------------------------------

# Invisible characters pasted from the web or Word (zero-width spaces, BOMs, control characters).
_INVISIBLE = frozenset({"Cc", "Cf"})
_GROUPED_THOUSANDS = re.compile(r"\d{1,3}(?:[.,\s]\d{3})+")


def clean_text(value: Cell) -> str:
    """A cell as text: composed (NFC), invisible characters dropped, whitespace runs made one space."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = unicodedata.normalize("NFC", str(value))
    text = "".join(ch for ch in text if ch.isspace() or unicodedata.category(ch) not in _INVISIBLE)
    return " ".join(text.split())


def name_key(name: str) -> str:
    """How names are compared: "Thôn 1" and "thôn  1" are the same thôn."""
    return clean_text(name).casefold()


def whole_number(value: Cell) -> int:
    """A whole number from a cell: a number, or digits (thousands may be grouped: 1.250). ValueError else."""
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if value.is_integer():
            return int(value)
        raise ValueError(value)
    text = clean_text(value)
    if text.isascii() and text.isdecimal():
        return int(text)
    if _GROUPED_THOUSANDS.fullmatch(text):
        return int(re.sub(r"\D", "", text))
    raise ValueError(value)


def sheet_of_header(header: Iterable[Cell]) -> str | None:
    """Which sheet a header row belongs to (for a CSV file, which holds one sheet); None if unknown."""
    keys = {name_key(clean_text(cell)) for cell in header}
    found = [sheet for sheet, columns in SIGNATURES.items() if any(name_key(c) in keys for c in columns)]
    return found[0] if len(found) == 1 else None


def kind_of_label(label: str) -> str | None:
    """The organisation kind ("doan-the") of a Vietnamese label ("Đoàn thể"), any case; None if unknown."""
    wanted = name_key(label)
    return next((kind for kind, text in ORGANISATION_KINDS.items() if name_key(text) == wanted), None)


class _Ticker:
    """Counts rows for the progress callback, if there is one."""

    def __init__(self, progress: Progress | None, what: str, total: int) -> None:
        self.progress, self.what, self.total, self.done = progress, what, total, 0
        if progress is not None:
            progress(what, 0, total)

    def tick(self) -> None:
        self.done += 1
        if self.progress is not None:
            self.progress(self.what, self.done, self.total)


class _Sheet:
    """One sheet being read: its cells by canonical column, and the problems found in it."""

    def __init__(self, name: str, rows: SheetRows | None, problems: list[Problem]) -> None:
        self.name = name
        self.present = rows is not None
        self.problems = problems
        self.rows: tuple[Row, ...] = ()
        self._headers: dict[str, str] = {}
        if rows is not None:
            self._read_header(rows)

    def _read_header(self, rows: SheetRows) -> None:
        by_key: dict[str, str] = {}
        for header in rows.header:
            by_key.setdefault(name_key(str(header or "")), str(header))
        missing = False
        for column in COLUMNS[self.name]:
            if name_key(column) in by_key:
                self._headers[column] = by_key[name_key(column)]
            elif column not in OPTIONAL_COLUMNS:
                self.error(1, column, "thiếu cột này ở dòng tiêu đề.")
                missing = True
        if not missing:  # a sheet without its columns cannot be read row by row
            self.rows = tuple(row for row in rows.rows if any(clean_text(self.raw(row, c)) for c in self._headers))

    def has(self, column: str) -> bool:
        return column in self._headers

    def raw(self, row: Row, column: str) -> Cell:
        header = self._headers.get(column)
        return row.cells.get(header) if header is not None else None

    def text(self, row: Row, column: str) -> str:
        return clean_text(self.raw(row, column))

    def error(self, row: int | None, column: str | None, message: str) -> None:
        self.problems.append(Problem(self.name, row, column, message))

    def name_cell(self, row: Row, column: str, limit: int, what: str) -> str:
        """A required name: reported when blank or longer than its database column."""
        name = self.text(row, column)
        if not name:
            self.error(row.number, column, f"chưa ghi {what}.")
        elif len(name) > limit:
            self.error(row.number, column, f"dài {len(name)} ký tự, tối đa {limit} ký tự.")
        return name

    def id_cell(self, row: Row) -> tuple[int | None, bool]:
        """The row's Mã (None when blank or unreadable) and whether the cell held anything."""
        raw = self.raw(row, ID)
        if not clean_text(raw):
            return None, False
        try:
            number = whole_number(raw)
        except ValueError:
            number = 0
        if number <= 0:
            self.error(row.number, ID, f'"{clean_text(raw)}" không phải Mã do hocvuso ghi; dòng mới thì để trống.')
            return None, True
        return number, True

    def count_cell(self, row: Row, column: str, low: int, high: int) -> tuple[int | None, bool]:
        """An optional whole number in [low, high]: (the number or None when blank, whether it is good)."""
        raw = self.raw(row, column)
        if not clean_text(raw):
            return None, True
        try:
            number = whole_number(raw)
        except ValueError:
            number = -1
        if not low <= number <= high:
            self.error(row.number, column, f'"{clean_text(raw)}" phải là số nguyên từ {low} đến {high}.')
            return None, False
        return number, True


# --- lines: the rows as read ------------------------------------------------------------------------

@dataclass(eq=False)
class _Line:
    """A row of the villages, organisations or households sheet, and the stored row it updates."""

    number: int
    name: str  # the head's name for a household
    id: int | None = None
    id_given: bool = False
    stored: Any = None  # None: a new row (during apply, the row made for it)
    status: str = NEW


@dataclass(eq=False)
class _OrganisationLine(_Line):
    kind: str | None = None
    parent: str = ""
    parent_target: Any = None


@dataclass(eq=False)
class _HouseholdLine(_Line):
    code: str | None = None  # None: the stored code is kept
    village: str = ""
    village_target: Any = None
    members: int | None = None


@dataclass(eq=False)
class _PopulationLine:
    number: int
    village: str  # "" for the whole commune
    counts: dict[CitizenGroup, int | None]  # groups whose cell could not be read are left out
    village_target: Any = None


@dataclass
class _Names:
    """Villages or organisations after the import: each name key's file line or kept stored row."""

    sheet: str
    noun: str
    lines: list[_Line]
    final: dict[str, Any] = field(default_factory=dict)
    removed: dict[str, Any] = field(default_factory=dict)  # name key -> stored row --prune deletes
    missing: list[Any] = field(default_factory=list)
    key_of_id: dict[int, str] = field(default_factory=dict)  # stored id -> its name key afterwards

    def resolve(self, sheet: _Sheet, row: int, column: str, name: str) -> Any:
        """The line or stored row named `name`; None (and a problem reported) when there is none."""
        target = self.final.get(name_key(name))
        if target is None:
            if name_key(name) in self.removed:
                sheet.error(row, column, f'{self.noun} "{name}" không có trong trang {self.sheet} nên sẽ bị xóa '
                                         "(--prune).")
            else:
                sheet.error(row, column, f'không có {self.noun} "{name}" trong tệp hay trong dữ liệu đã lưu.')
        return target


def _stored_id(target: Any) -> int | None:
    """The id a target has now: a stored row's, a line's stored row's; None for a new line."""
    if isinstance(target, _Line):
        return target.stored.id if target.stored is not None else None
    return target.id if target is not None else None


def _read_villages(sheet: _Sheet, ticker: _Ticker) -> list[_Line]:
    lines = []
    for row in sheet.rows:
        number, given = sheet.id_cell(row) if sheet.has(ID) else (None, False)
        name = sheet.name_cell(row, VILLAGE_NAME, VILLAGE_NAME_MAX, "tên thôn/xóm")
        lines.append(_Line(row.number, name, number, given))
        ticker.tick()
    return lines


def _read_organisations(sheet: _Sheet, ticker: _Ticker) -> list[_OrganisationLine]:
    lines = []
    labels = ", ".join(ORGANISATION_KINDS.values())
    for row in sheet.rows:
        number, given = sheet.id_cell(row) if sheet.has(ID) else (None, False)
        name = sheet.name_cell(row, ORGANISATION_NAME, ORGANISATION_NAME_MAX, "tên tổ chức")
        label = sheet.text(row, KIND)
        kind = kind_of_label(label)
        if not label:
            sheet.error(row.number, KIND, f"chưa ghi loại tổ chức (một trong: {labels}).")
        elif kind is None:
            sheet.error(row.number, KIND, f'không có loại "{label}"; chọn một trong: {labels}.')
        lines.append(_OrganisationLine(row.number, name, number, given, kind=kind, parent=sheet.text(row, PARENT)))
        ticker.tick()
    return lines


def _read_households(sheet: _Sheet, code_length: int, ticker: _Ticker) -> list[_HouseholdLine]:
    lines = []
    for row in sheet.rows:
        number, given = sheet.id_cell(row) if sheet.has(ID) else (None, False)
        head = sheet.name_cell(row, HEAD_NAME, HEAD_NAME_MAX, "họ tên chủ hộ")
        village = sheet.text(row, VILLAGE)
        if not village:
            sheet.error(row.number, VILLAGE, "chưa ghi thôn/xóm của hộ.")
        members, _ = sheet.count_cell(row, MEMBER_COUNT, MEMBER_COUNT_MIN, MEMBER_COUNT_MAX)
        line = _HouseholdLine(row.number, head, number, given, village=village, members=members)
        line.code = _household_code(sheet, row, code_length)
        lines.append(line)
        ticker.tick()
    return lines


def _household_code(sheet: _Sheet, row: Row, code_length: int) -> str | None:
    """The Mã hộ as typed; its shape is checked later, against the stored code too (see _households)."""
    raw = sheet.raw(row, HOUSEHOLD_CODE)
    code = clean_text(raw)
    if code and isinstance(raw, int | float) and not isinstance(raw, bool) and len(code) < code_length:
        # Excel turns 012345 typed in a number cell into 12345: guessing the zeros back could give
        # someone else's code, so the clerk is asked to type it again.
        sheet.error(row.number, HOUSEHOLD_CODE,
                    f'"{code}" là ô kiểu số nên Excel đã bỏ các số 0 ở đầu; hãy định dạng cột Mã hộ là Văn bản '
                    f"(Text) rồi gõ lại đủ {code_length} chữ số.")
        return None
    return code or None


def _read_population(sheet: _Sheet, ticker: _Ticker) -> list[_PopulationLine]:
    lines = []
    for row in sheet.rows:
        counts: dict[CitizenGroup, int | None] = {}
        for group, column in GROUP_COLUMNS.items():
            count, good = sheet.count_cell(row, column, 0, POPULATION_MAX)
            if good:
                counts[group] = count
        lines.append(_PopulationLine(row.number, sheet.text(row, VILLAGE), counts))
        ticker.tick()
    return lines


# --- matching the lines with stored rows ------------------------------------------------------------

def _claim_by_id(sheet: _Sheet, lines: Sequence[_Line], stored: Iterable[Any], noun: str) -> set[int]:
    """Lines with a Mã update that stored row; returns the ids claimed."""
    by_id = {row.id: row for row in stored}
    claimed: dict[int, int] = {}
    for line in lines:
        if line.id is None:
            continue
        if line.id in claimed:
            sheet.error(line.number, ID, f"Mã {line.id} đã có ở dòng {claimed[line.id]}; Mã không được chép "
                                         "sang dòng khác (dòng mới thì để trống).")
        elif line.id not in by_id:
            sheet.error(line.number, ID, f"không có {noun} nào mang Mã {line.id} trong dữ liệu đã lưu; "
                                         "dòng mới thì để trống cột Mã.")
        else:
            claimed[line.id] = line.number
            line.stored = by_id[line.id]
    return set(claimed)


def _claim_by_name(lines: Sequence[_Line], stored: Sequence[Any], claimed: set[int]) -> None:
    """Lines without a Mã update the unclaimed stored row of the same name (same spelling first)."""
    by_key: dict[str, list[Any]] = defaultdict(list)
    for row in stored:
        by_key[name_key(row.name)].append(row)
    for line in lines:
        if line.id_given or not line.name:
            continue
        free = [row for row in by_key.get(name_key(line.name), []) if row.id not in claimed]
        match = next((row for row in free if row.name == line.name), free[0] if free else None)
        if match is not None:
            line.stored = match
            claimed.add(match.id)


def _names(sheet: _Sheet, lines: list[_Line], stored: Sequence[Any], *, noun: str, prune: bool) -> _Names:
    """Match villages or organisations and work out the names after the import, reporting clashes."""
    claimed = _claim_by_id(sheet, lines, stored, noun)
    _claim_by_name(lines, stored, claimed)
    names = _Names(sheet.name, noun, lines)
    first_line: dict[str, int] = {}
    for line in lines:
        if not line.name:
            continue
        key = name_key(line.name)
        if key in first_line:
            sheet.error(line.number, _name_column(sheet.name), f'tên "{line.name}" trùng với dòng '
                                                                   f"{first_line[key]}.")
            continue
        first_line[key] = line.number
        names.final[key] = line
        if line.stored is not None:
            names.key_of_id[line.stored.id] = key
    for row in stored:
        if row.id in claimed:
            continue
        key = name_key(row.name)
        if sheet.present:
            names.missing.append(row)
            if prune:
                names.removed.setdefault(key, row)
                continue
        names.key_of_id[row.id] = key
        clash = names.final.get(key)
        if isinstance(clash, _Line):
            sheet.error(clash.number, _name_column(sheet.name),
                        f'tên "{clash.name}" đang là tên của {noun} Mã {row.id} đã lưu mà tệp không có; hãy đặt '
                        f"tên khác, hoặc thêm lại dòng Mã {row.id}, hoặc nhập với --prune để xóa nó.")
        else:
            names.final.setdefault(key, row)
    return names


def _name_column(sheet: str) -> str:
    return VILLAGE_NAME if sheet == VILLAGES else ORGANISATION_NAME


def _check_parents(sheet: _Sheet, organisations: _Names, stored: Sequence[Organisation]) -> None:
    """Resolve each line's parent organisation and refuse a unit under itself or in a loop."""
    for line in organisations.lines:
        assert isinstance(line, _OrganisationLine)
        if not line.parent:
            continue
        target = organisations.resolve(sheet, line.number, PARENT, line.parent)
        if target is line:
            sheet.error(line.number, PARENT, "một tổ chức không thể thuộc chính nó.")
            target = None
        line.parent_target = target
    by_id = {row.id: row for row in stored}
    for line in organisations.lines:
        chain = _parent_loop(line, organisations, by_id)
        if chain:
            sheet.error(line.number, PARENT, f"vòng lặp “thuộc tổ chức”: {' → '.join(chain)}.")


def _parent_of(target: Any, organisations: _Names, by_id: Mapping[int | None, Organisation]) -> Any:
    """A unit's parent after the import: a line's as written, a kept stored row's as stored."""
    if isinstance(target, _OrganisationLine):
        return target.parent_target
    parent = by_id.get(target.parent_id)
    if parent is None or parent.id not in organisations.key_of_id:
        return None  # no parent, or one --prune deletes (the database then clears the link)
    return organisations.final.get(organisations.key_of_id[parent.id])


def _parent_loop(line: _Line, organisations: _Names, by_id: Mapping[int | None, Organisation]) -> list[str]:
    """The names around a loop of parents that comes back to `line`; [] when there is none."""
    chain, seen = [line.name], {id(line)}
    current = _parent_of(line, organisations, by_id)
    while current is not None:
        chain.append(current.name)
        if current is line:
            return chain
        if id(current) in seen:
            return []  # a loop higher up, reported on its own lines
        seen.add(id(current))
        current = _parent_of(current, organisations, by_id)
    return []


def _households(
    sheet: _Sheet, lines: list[_HouseholdLine], stored: Sequence[Household], villages: _Names, *, prune: bool,
    code_length: int,
) -> list[Household]:
    """Match the household lines and check their codes; returns the directory households the file lacks."""
    directory = [household for household in stored if household.in_directory]
    claimed = _claim_by_id(sheet, lines, directory, "hộ gia đình")
    for line in lines:
        line.village_target = villages.resolve(sheet, line.number, VILLAGE, line.village) if line.village else None
    _claim_households_by_code(lines, directory, claimed)
    _claim_households_by_name(lines, directory, claimed, villages)
    well_formed = [line for line in lines if _code_well_formed(sheet, line, code_length)]
    missing = [household for household in directory if household.id not in claimed] if sheet.present else []
    gone = {household.id for household in missing} if prune else set()
    _check_codes(sheet, well_formed, [h for h in stored if h.id not in claimed and h.id not in gone])
    return missing


def _code_well_formed(sheet: _Sheet, line: _HouseholdLine, code_length: int) -> bool:
    """A new code has exactly `code_length` digits; the household's own stored code is always accepted
    (it may be from before the length was changed)."""
    code = line.code
    if code is None or (line.stored is not None and code == line.stored.code):
        return True
    if code.isascii() and code.isdecimal() and len(code) == code_length:
        return True
    sheet.error(line.number, HOUSEHOLD_CODE,
                f'"{code}" không đúng dạng: Mã hộ gồm đúng {code_length} chữ số, hoặc để trống.')
    return False


def _claim_households_by_code(lines: Sequence[_HouseholdLine], directory: Sequence[Household],
                              claimed: set[int]) -> None:
    by_code = {household.code: household for household in directory if household.code}
    for line in lines:
        match = by_code.get(line.code) if not line.id_given and line.code else None
        if match is not None and match.id not in claimed:
            line.stored = match
            claimed.add(match.id)


def _claim_households_by_name(lines: Sequence[_HouseholdLine], directory: Sequence[Household], claimed: set[int],
                              villages: _Names) -> None:
    """A line with neither Mã nor a known Mã hộ updates the household of the same head in the same thôn."""
    by_head: dict[tuple[str, str | None], list[Household]] = defaultdict(list)
    for household in directory:
        village = villages.key_of_id.get(household.village_id) if household.village_id else None
        by_head[(name_key(household.head_name or ""), village)].append(household)
    for line in lines:
        if line.id_given or line.stored is not None or not line.name or not line.village:
            continue
        key = (name_key(line.name), name_key(line.village))
        match = next((h for h in by_head.get(key, []) if h.id not in claimed), None)
        if match is not None:
            line.stored = match
            claimed.add(match.id)


def _check_codes(sheet: _Sheet, lines: Sequence[_HouseholdLine], others: Sequence[Household]) -> None:
    """A code typed in the file must be nobody else's after the import: not another line's, not a kept
    household's (one made in chat included: it is the code its members type to join)."""
    holders: dict[str, Any] = {household.code: household for household in others if household.code}
    for line in lines:
        code = line.code if line.code is not None else (line.stored.code if line.stored is not None else None)
        if not code:
            continue
        holder = holders.get(code)
        if holder is None:
            holders[code] = line
        elif line.code is not None:
            sheet.error(line.number, HOUSEHOLD_CODE, _code_clash(code, holder))
        elif isinstance(holder, _HouseholdLine):  # the other line took the code this line keeps
            sheet.error(holder.number, HOUSEHOLD_CODE, _code_clash(code, line))


def _code_clash(code: str, holder: Any) -> str:
    if isinstance(holder, _HouseholdLine):
        return f"Mã hộ {code} trùng với dòng {holder.number}."
    if holder.in_directory:
        return (f'Mã hộ {code} đang là mã của hộ "{holder.head_name or ""}" (Mã {holder.id}) đã lưu mà tệp không '
                "có; hãy chọn mã khác, hoặc nhập với --prune để xóa hộ đó.")
    return (f"Mã hộ {code} đang là mã của một hộ do người dân tạo trên bot (các thành viên gõ mã này để vào hộ); "
            "hãy chọn mã khác hoặc để trống.")


def _population(sheet: _Sheet, lines: list[_PopulationLine], villages: _Names) -> None:
    """Resolve each row's thôn/xóm (blank: the whole commune); one row per thôn, one for the commune."""
    seen: dict[str, int] = {}
    for line in lines:
        key = name_key(line.village)
        if key in seen:
            whose = f'thôn/xóm "{line.village}"' if line.village else "cả xã (cột Thôn/xóm để trống)"
            sheet.error(line.number, VILLAGE, f"đã có dòng {seen[key]} cho {whose}.")
            continue
        seen[key] = line.number
        if line.village:
            line.village_target = villages.resolve(sheet, line.number, VILLAGE, line.village)


# --- the plan -------------------------------------------------------------------------------------

@dataclass
class _FigureChange:
    group: CitizenGroup
    village: Any  # a village target, None for the commune
    count: int | None  # None: delete
    stored: PopulationFigure | None


@dataclass
class ImportPlan:
    """What a valid file changes, worked out inside the import's transaction (see plan_import)."""

    prune: bool
    summaries: dict[str, SheetSummary]
    missing: list[MissingRow]
    villages: _Names
    organisations: _Names
    households: list[_HouseholdLine]
    missing_households: list[Household]
    figures: list[_FigureChange]
    missing_figures: list[PopulationFigure]
    village_names: dict[int | None, str] = field(default_factory=dict)  # as stored, to describe missing rows

    def report(self, *, written: bool) -> ImportReport:
        return ImportReport(tuple(self.summaries.values()), tuple(self.missing), self.prune, written)


@dataclass
class _Stored:
    villages: list[Village]
    organisations: list[Organisation]
    households: list[Household]
    figures: list[PopulationFigure]


async def _load(session: AsyncSession) -> _Stored:
    async def every(model: type[SQLModel]) -> list[Any]:
        return list((await session.exec(select(model).order_by(col(model.id)))).all())  # type: ignore[attr-defined]

    return _Stored(await every(Village), await every(Organisation), await every(Household),
                   await every(PopulationFigure))


async def plan_import(
    session: AsyncSession, sheets: Mapping[str, SheetRows], *, code_length: int, prune: bool = False,
    progress: Progress | None = None,
) -> ImportPlan:
    """Check the whole file against itself and the stored directory; raise DirectoryError with every
    problem, or return what importing it changes. Writes nothing."""
    problems: list[Problem] = []
    present = {name: rows for name, rows in sheets.items() if name in SHEETS}
    if not present:
        raise DirectoryError([Problem("", None, None, f"tệp không có trang nào trong số: {', '.join(SHEETS)}.")])
    readers = {name: _Sheet(name, present.get(name), problems) for name in SHEETS}
    ticker = _Ticker(progress, CHECKING, sum(len(reader.rows) for reader in readers.values()))
    stored = await _load(session)

    village_sheet, organisation_sheet = readers[VILLAGES], readers[ORGANISATIONS]
    villages = _names(village_sheet, _read_villages(village_sheet, ticker), stored.villages, noun="thôn/xóm",
                      prune=prune)
    organisation_lines: list[Any] = _read_organisations(organisation_sheet, ticker)
    organisations = _names(organisation_sheet, organisation_lines, stored.organisations, noun="tổ chức",
                           prune=prune)
    _check_parents(organisation_sheet, organisations, stored.organisations)
    household_lines = _read_households(readers[HOUSEHOLDS], code_length, ticker)
    missing_households = _households(readers[HOUSEHOLDS], household_lines, stored.households, villages,
                                     prune=prune, code_length=code_length)
    population_lines = _read_population(readers[POPULATION], ticker)
    _population(readers[POPULATION], population_lines, villages)
    if problems:
        raise DirectoryError(problems)

    figures, missing_figures = _figure_changes(readers[POPULATION], population_lines, stored.figures)
    plan = ImportPlan(prune, {}, [], villages, organisations, household_lines, missing_households, figures,
                      missing_figures, {village.id: village.name for village in stored.villages})
    _summarise(plan, present)
    plan.missing = await _describe_missing(session, plan)
    return plan


def _figure_changes(
    sheet: _Sheet, lines: Sequence[_PopulationLine], stored: Sequence[PopulationFigure]
) -> tuple[list[_FigureChange], list[PopulationFigure]]:
    """Each figure of the rows present, and the stored figures of rows the sheet lacks."""
    by_key = {(figure.target_group, figure.village_id): figure for figure in stored}
    changes: list[_FigureChange] = []
    covered: set[int | None] = set()  # the stored villages (None: the commune) the sheet has a row for
    for line in lines:
        village_id = _stored_id(line.village_target)
        new_village = line.village_target is not None and village_id is None
        if not new_village:
            covered.add(village_id)
        for group, count in line.counts.items():
            current = None if new_village else by_key.get((group.value, village_id))
            changes.append(_FigureChange(group, line.village_target, count, current))
    missing = []
    if sheet.present:
        missing = [figure for figure in stored if figure.village_id not in covered]
    return changes, missing


def _status(line: _Line, same: bool) -> str:
    return NEW if line.stored is None else UNCHANGED if same else UPDATED


def _summarise(plan: ImportPlan, present: Mapping[str, SheetRows]) -> None:
    """Mark each line new, updated or unchanged and count them per sheet."""
    for line in plan.villages.lines:
        line.status = _status(line, line.stored is not None and line.stored.name == line.name)
    for line in plan.organisations.lines:
        assert isinstance(line, _OrganisationLine)
        stored = line.stored
        same = stored is not None and (stored.name, stored.kind) == (line.name, line.kind)
        line.status = _status(line, same and _same_target(line.parent_target, stored.parent_id))
    for line in plan.households:
        line.status = _status(line, _household_same(line))
    summaries = {name: SheetSummary(name) for name in SHEETS if name in present}
    for name, lines, missing in ((VILLAGES, plan.villages.lines, plan.villages.missing),
                                 (ORGANISATIONS, plan.organisations.lines, plan.organisations.missing),
                                 (HOUSEHOLDS, plan.households, plan.missing_households)):
        if name in summaries:
            _count(summaries[name], [line.status for line in lines], len(missing), plan.prune)
    if POPULATION in summaries:
        summary = summaries[POPULATION]
        for change in plan.figures:
            if change.stored is None:
                summary.added += 1 if change.count is not None else 0
            elif change.count is None:
                summary.cleared += 1
            elif change.count == change.stored.count:
                summary.unchanged += 1
            else:
                summary.updated += 1
        rows = {figure.village_id for figure in plan.missing_figures}
        summary.missing = len(rows)
        summary.removed = len(rows) if plan.prune else 0
    plan.summaries = summaries


def _same_target(target: Any, stored_id: int | None) -> bool:
    """Whether a reference (a parent, a village) stays what is stored: a new line never does."""
    if target is None:
        return stored_id is None
    current = _stored_id(target)
    return current is not None and current == stored_id


def _household_same(line: _HouseholdLine) -> bool:
    stored = line.stored
    if stored is None:
        return False
    return (stored.head_name == line.name and _same_target(line.village_target, stored.village_id)
            and stored.member_count == line.members and (line.code is None or line.code == stored.code))


def _count(summary: SheetSummary, statuses: list[str], missing: int, prune: bool) -> None:
    summary.added = statuses.count(NEW)
    summary.updated = statuses.count(UPDATED)
    summary.unchanged = statuses.count(UNCHANGED)
    summary.missing = missing
    summary.removed = missing if prune else 0


# --- who refers to the missing rows ----------------------------------------------------------------

async def _counts(session: AsyncSession, column: Any, ids: Sequence[int], *where: Any) -> dict[int, int]:
    """How many rows of `column`'s table point at each of `ids`."""
    counts: dict[int, int] = {}
    for chunk in _chunks(ids):
        statement = select(column, func.count()).where(column.in_(chunk), *where).group_by(column)
        counts.update({key: number for key, number in (await session.exec(statement)).all()})
    return counts


def _chunks(ids: Sequence[int], size: int = 500) -> Iterable[Sequence[int]]:
    """Ids in slices, each one statement's worth of parameters."""
    return (ids[start:start + size] for start in range(0, len(ids), size))


def _phrase(parts: Iterable[tuple[int, str]]) -> str:
    return ", ".join(f"{number} {what}" for number, what in parts if number)


async def _describe_missing(session: AsyncSession, plan: ImportPlan) -> list[MissingRow]:
    rows: list[MissingRow] = []
    active = col(RoleGrant.revoked_at).is_(None)
    villages = [village.id for village in plan.villages.missing]
    if villages:
        people = await _counts(session, col(Person.village_id), villages)
        households = await _counts(session, col(Household.village_id), villages)
        heads = await _counts(session, col(RoleGrant.village_id), villages, active)
        for village in plan.villages.missing:
            refers = _phrase(((people.get(village.id, 0), "người"), (households.get(village.id, 0), "hộ gia đình")))
            consequence = f"{refers} đang ghi thôn/xóm này" if refers else ""
            if heads.get(village.id):
                consequence += ("; " if consequence else "") + f"{heads[village.id]} người giữ vai trò ở đây"
            rows.append(MissingRow(VILLAGES, f'"{village.name}" (Mã {village.id})', consequence))
    organisations = [organisation.id for organisation in plan.organisations.missing]
    if organisations:
        members = await _counts(session, col(Membership.organisation_id), organisations)
        units = await _counts(session, col(Organisation.parent_id), organisations)
        leaders = await _counts(session, col(RoleGrant.organisation_id), organisations, active)
        for unit in plan.organisations.missing:
            consequence = _phrase(((members.get(unit.id, 0), "thành viên"),
                                   (units.get(unit.id, 0), "tổ chức trực thuộc"),
                                   (leaders.get(unit.id, 0), "người giữ vai trò")))
            rows.append(MissingRow(ORGANISATIONS, f'"{unit.name}" (Mã {unit.id})', consequence))
    households = [household.id for household in plan.missing_households]
    if households:
        people = await _counts(session, col(Person.household_id), households)
        for household in plan.missing_households:
            where = plan.village_names.get(household.village_id, "chưa rõ thôn/xóm")
            refers = _phrase(((people.get(household.id, 0), "người đã vào hộ"),))
            rows.append(MissingRow(HOUSEHOLDS, f'"{household.head_name or ""}", {where} (Mã {household.id})', refers))
    rows += _missing_population(plan)
    return rows


def _missing_population(plan: ImportPlan) -> list[MissingRow]:
    by_village: dict[int | None, int] = defaultdict(int)
    for figure in plan.missing_figures:
        by_village[figure.village_id] += 1
    return [MissingRow(POPULATION, f'"{plan.village_names.get(village)}"' if village is not None else "cả xã",
                       f"{count} số liệu") for village, count in by_village.items()]


# --- applying -------------------------------------------------------------------------------------

def _placeholder(row_id: int) -> str:
    """A name or code no real row has, held for a moment so two rows can swap names (unique columns)."""
    return f"~{row_id}~"


async def apply_plan(session: AsyncSession, plan: ImportPlan, *, now: datetime,
                     progress: Progress | None = None) -> None:
    """Write the plan in the session's transaction: deletions first (--prune), then villages,
    organisations, households, population figures."""
    total = sum(summary.changes for summary in plan.summaries.values())
    ticker = _Ticker(progress, WRITING, total)
    if plan.prune:
        await _prune(session, plan, ticker)
    await _write_names(session, plan.villages.lines, lambda line: Village(name=line.name), _set_village, ticker)
    await _write_names(session, plan.organisations.lines, _new_organisation, _set_organisation, ticker)
    for line in plan.organisations.lines:
        if line.status != UNCHANGED:
            assert isinstance(line, _OrganisationLine)
            line.stored.parent_id = _target_row(line.parent_target)
    await session.flush()
    await _write_households(session, plan.households, now, ticker)
    await _write_figures(session, plan.figures, ticker)
    await session.flush()


async def _prune(session: AsyncSession, plan: ImportPlan, ticker: _Ticker) -> None:
    """Delete the stored rows the file lacks; the database clears or cascades what pointed at them."""
    for chunk in _chunks([household.id for household in plan.missing_households]):
        # The database only clears household_id: a member must not stay "head" of no household.
        await session.exec(update(Person).where(col(Person.household_id).in_(chunk))
                           .values(household_id=None, is_household_head=False))
    deletions: list[tuple[type[SQLModel], list[int]]] = [
        (Household, [household.id for household in plan.missing_households]),
        (PopulationFigure, [figure.id for figure in plan.missing_figures]),
        (Organisation, [organisation.id for organisation in plan.organisations.missing]),
        (Village, [village.id for village in plan.villages.missing]),
    ]
    for model, ids in deletions:
        for chunk in _chunks(ids):
            await session.exec(delete(model).where(col(model.id).in_(chunk)))  # type: ignore[attr-defined]
    rows = len(plan.missing_households) + len(plan.organisations.missing) + len(plan.villages.missing)
    rows += len({figure.village_id for figure in plan.missing_figures})
    for _ in range(rows):
        ticker.tick()


def _target_row(target: Any) -> int | None:
    """The id of a target once written: a line's row (now stored), or a kept stored row."""
    if target is None:
        return None
    return target.stored.id if isinstance(target, _Line) else target.id


def _set_village(line: _Line) -> None:
    line.stored.name = line.name


def _new_organisation(line: _Line) -> Organisation:
    assert isinstance(line, _OrganisationLine)
    return Organisation(name=line.name, kind=line.kind or "khac")


def _set_organisation(line: _Line) -> None:
    assert isinstance(line, _OrganisationLine)
    line.stored.name, line.stored.kind = line.name, line.kind or "khac"


async def _write_names(session: AsyncSession, lines: Sequence[_Line], build: Callable[[_Line], Any],
                       update: Callable[[_Line], None], ticker: _Ticker) -> None:
    renamed = [line for line in lines if line.status == UPDATED and line.stored.name != line.name]
    for line in renamed:  # names are unique: free the old ones first, so two rows can swap names
        line.stored.name = _placeholder(line.stored.id)
    if renamed:
        await session.flush()
    for line in lines:
        if line.status == NEW:
            line.stored = build(line)
            session.add(line.stored)
        elif line.status == UPDATED:
            update(line)
            session.add(line.stored)
        else:
            continue
        ticker.tick()
    await session.flush()


async def _write_households(session: AsyncSession, lines: Sequence[_HouseholdLine], now: datetime,
                            ticker: _Ticker) -> None:
    recoded = [line for line in lines
               if line.status == UPDATED and line.code is not None and line.code != line.stored.code]
    for line in recoded:  # codes are unique too: free the old ones first
        line.stored.code = _placeholder(line.stored.id)
    if recoded:
        await session.flush()
    for line in lines:
        village = _target_row(line.village_target)
        if line.status == NEW:
            line.stored = Household(code=line.code, village_id=village, head_name=line.name,
                                    member_count=line.members, in_directory=True, created_at=now)
        elif line.status == UPDATED:
            stored = line.stored
            stored.village_id, stored.head_name, stored.member_count = village, line.name, line.members
            if line.code is not None:
                stored.code = line.code
        else:
            continue
        session.add(line.stored)
        ticker.tick()
    await session.flush()


async def _write_figures(session: AsyncSession, changes: Sequence[_FigureChange], ticker: _Ticker) -> None:
    for change in changes:
        if change.stored is None and change.count is not None:
            session.add(PopulationFigure(target_group=change.group.value, village_id=_target_row(change.village),
                                         count=change.count))
        elif change.stored is not None and change.count is None:
            await session.delete(change.stored)
        elif change.stored is not None and change.stored.count != change.count:
            change.stored.count = change.count  # type: ignore[assignment]
            session.add(change.stored)
        else:
            continue
        ticker.tick()


# --- the whole import, and the export ---------------------------------------------------------------

async def import_directory(
    database: Database, sheets: Mapping[str, SheetRows], *, code_length: int, clock: Callable[[], datetime],
    prune: bool = False, dry_run: bool = False, progress: Progress | None = None,
) -> ImportReport:
    """Check `sheets` and, unless `dry_run`, apply them in one transaction; raise DirectoryError
    (nothing changed) when the file has any problem."""
    async with database.session() as session:
        plan = await plan_import(session, sheets, code_length=code_length, prune=prune, progress=progress)
        written = not dry_run and any(summary.changes for summary in plan.summaries.values())
        if written:
            await apply_plan(session, plan, now=clock(), progress=progress)
    return plan.report(written=written)


async def export_rows(session: AsyncSession) -> dict[str, SheetRows]:
    """The stored directory as the rows of each sheet, Mã filled in: villages, organisations (with their
    parent's name), the households of the directory (never those made in chat), population figures."""
    stored = await _load(session)
    village_names = {village.id: village.name for village in stored.villages}
    unit_names = {unit.id: unit.name for unit in stored.organisations}
    village_order = {village.id: index for index, village in enumerate(stored.villages)}
    households = sorted((h for h in stored.households if h.in_directory),
                        key=lambda h: (village_order.get(h.village_id, len(village_order)), h.id))
    sheets = {
        VILLAGES: [[village.id, village.name] for village in stored.villages],
        ORGANISATIONS: [[unit.id, unit.name, ORGANISATION_KINDS.get(unit.kind, ORGANISATION_KINDS["khac"]),
                         unit_names.get(unit.parent_id)] for unit in stored.organisations],
        HOUSEHOLDS: [[h.id, h.code, h.head_name, village_names.get(h.village_id), h.member_count]
                     for h in households],
        POPULATION: _population_rows(stored),
    }
    return {name: SheetRows(name, COLUMNS[name],
                            tuple(Row(number, dict(zip(COLUMNS[name], values, strict=True)))
                                  for number, values in enumerate(rows, start=2)))
            for name, rows in sheets.items()}


def _population_rows(stored: _Stored) -> list[list[Cell]]:
    """One row for the commune and one per village, figures or blanks, so a clerk can fill them in."""
    figures = {(figure.village_id, figure.target_group): figure.count for figure in stored.figures}
    places: list[tuple[int | None, str | None]] = [(None, None)]
    places += [(village.id, village.name) for village in stored.villages]
    return [[name, *(figures.get((village, group.value)) for group in GROUP_COLUMNS)] for village, name in places]


async def export_directory(database: Database) -> dict[str, SheetRows]:
    """What `hocvuso directory export` writes, read in one transaction."""
    async with database.session() as session:
        return await export_rows(session)
