"""The yearly report as an XLSX workbook: a summary of the indicators, then one sheet each for the
organisations, the villages, the households and the lessons of the unit, and for what units did
offline: their activities, learning with the Tổ công nghệ số cộng đồng ("Học cùng") and initiatives.

Every sheet starts with the same three lines (title, reporting period, sources) and a frozen header.
Numbers are numbers and shares are real fractions formatted as percentages, so a unit can add and
chart them; a share whose denominator is unknown is an empty cell, never 0 %.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from io import BytesIO
from typing import Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter

from reports.cells import HEADER_FILL
from reports.report_text import (
    GROUP_NAMES,
    INDICATORS,
    KIND_NAMES,
    NO_HEAD,
    OFFLINE_SOURCES,
    SOURCES_NOTE,
    UNIT_KINDS,
    household_label,
    indicator_rows,
    initiative_status,
    kind_label,
    offline_rows,
    period_line,
    report_title,
)
from storage.report import OfflineLine, Report, share

SUMMARY, ORGANISATIONS, VILLAGES, HOUSEHOLDS, LESSONS = "Tổng hợp", "Tổ chức", "Thôn xóm", "Hộ gia đình", "Bài học"
ACTIVITIES, ASSISTED, INITIATIVES = "Hoạt động", "Học cùng", "Sáng kiến"
PERCENT = "0.0%"
INTEGER = "#,##0"
DATE = "DD/MM/YYYY"
ONCE = "Tổng cộng (mỗi người chỉ tính một lần)"
HEADER_ROW = 5  # after the title, the period, the note and a blank row
WIDTH_MIN, WIDTH_MAX = 10, 60
YES, NOT_YET = "Có", "Chưa"


@dataclass(frozen=True)
class Column:
    header: str
    value: Callable[[Any], object]
    format: str | None = None  # a number format; None for text and plain integers
    look: str = ""  # "wrapped" for long text


LessonTitle = Callable[[str], str]
QuestionText = Callable[[str], str]


def report_workbook(report: Report, lesson_title: LessonTitle, question_text: QuestionText) -> bytes:
    """The workbook's bytes. `lesson_title` and `question_text` name lessons and questions by their ids
    (the content as it is now; a question no longer in the course is shown by its id).

    Written in openpyxl's write-only mode: a commune's 10,000 households take a third of the time.
    """
    book = Workbook(write_only=True)
    _write(book, SUMMARY, _summary(report))
    people = report.people
    _write(book, ORGANISATIONS, _table(report, "Tổ chức: thành viên (đã xác nhận và tự khai) của đơn vị", [
        Column("Tổ chức", lambda row: row.name),
        Column("Loại", lambda row: KIND_NAMES.get(row.kind, row.kind)),
        Column("Thành viên", lambda row: row.people, INTEGER),
        Column("Đã xác nhận", lambda row: row.confirmed, INTEGER),
        Column("Hoàn thành khóa cơ bản", lambda row: row.finished, INTEGER),
        Column("Tỷ lệ hoàn thành", lambda row: share(row.finished, row.people), PERCENT),
        Column("VNeID mức 2 (tự khai)", lambda row: row.vneid, INTEGER),
    ], people.organisations))
    _write(book, VILLAGES, _table(report, "Thôn, xóm: người đăng ký của đơn vị theo nơi ở", [
        Column("Thôn/xóm", lambda row: row.name),
        Column("Người đăng ký", lambda row: row.people, INTEGER),
        Column("Hoàn thành khóa cơ bản", lambda row: row.finished, INTEGER),
        Column("Tỷ lệ trên số đăng ký", lambda row: share(row.finished, row.people), PERCENT),
        Column("Số dân (xã nhập)", lambda row: row.population, INTEGER),
        Column("Tỷ lệ trên số dân", lambda row: share(row.finished, row.population), PERCENT),
        Column("VNeID mức 2 (tự khai)", lambda row: row.vneid, INTEGER),
        Column("Số hộ", lambda row: row.households_known, INTEGER),
        Column("Hộ có người hoàn thành", lambda row: row.households_reached, INTEGER),
        Column("Tỷ lệ hộ", lambda row: share(row.households_reached, row.households_known), PERCENT),
    ], people.villages))
    named = report.scope.kind != "organisation"
    households = people.households if report.households_listed else ()
    _write(book, HOUSEHOLDS, _table(report, _households_note(report), [
        Column("Hộ", lambda row: (row.head_name or NO_HEAD) if named else household_label(row.household_id)),
        Column("Thôn/xóm", lambda row: row.village),
        # Small numbers without a number format: plain cells are written at half the cost, and a
        # commune has 10,000 rows here.
        Column("Số nhân khẩu (danh bạ)", lambda row: row.listed_members),
        Column("Người đăng ký", lambda row: row.registered),
        Column("Hoàn thành khóa cơ bản", lambda row: row.finished),
        Column("Hộ đã có người hoàn thành", lambda row: YES if row.finished else NOT_YET),
    ], households))
    _write(book, LESSONS, _table(report, "Bài học: các lượt làm bài kiểm tra kết thúc trong kỳ", [
        Column("Bài học", lambda row: lesson_title(row.lesson_id)),
        Column("Lượt làm bài kiểm tra", lambda row: row.attempts, INTEGER),
        Column("Lượt đạt", lambda row: row.passed, INTEGER),
        Column("Số người làm", lambda row: row.people, INTEGER),
        Column("Người làm lần đầu", lambda row: row.first_tries, INTEGER),
        Column("Đạt ngay lần đầu", lambda row: row.first_try_passed, INTEGER),
        Column("Tỷ lệ đạt lần đầu", lambda row: share(row.first_try_passed, row.first_tries), PERCENT),
        Column("Câu hay sai nhất", lambda row: "\n".join(
            f"{question_text(missed.question_key)} (sai {missed.wrong}/{missed.answered})" for missed in row.missed)),
    ], report.lessons))
    _write(book, ACTIVITIES, _activities(report))
    _write(book, ASSISTED, _assisted(report))
    _write(book, INITIATIVES, _initiatives(report))
    buffer = BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _households_note(report: Report) -> str:
    if not report.households_listed:
        return ("Báo cáo tóm tắt: không kèm danh sách từng hộ. Số hộ và số hộ có người hoàn thành "
                "ở trang Tổng hợp và trang Thôn, xóm")
    if report.scope.kind == "organisation":
        return "Hộ gia đình có thành viên của tổ chức (chỉ đếm thành viên; không ghi tên chủ hộ)"
    return "Hộ gia đình: mọi người đăng ký trong hộ"


# --- what goes on a sheet --------------------------------------------------------------------------

@dataclass(frozen=True)
class Value:
    value: object
    format: str | None = None
    look: str = ""  # "" | title | period | note | header | total


@dataclass
class Sheet:
    rows: list[list[Value]] = field(default_factory=list)
    widths: list[int] = field(default_factory=list)
    table_rows: int = 0  # data rows under the header, for the filter

    def add(self, row: list[Value]) -> None:
        self.rows.append(row)

    def fit(self, index: int, width: int) -> None:
        while len(self.widths) <= index:
            self.widths.append(0)
        self.widths[index] = max(self.widths[index], width)


def _heading(report: Report, note: str, sources: str = SOURCES_NOTE) -> Sheet:
    sheet = Sheet()
    sheet.add([Value(report_title(report), look="title")])
    sheet.add([Value(period_line(report), look="period")])
    sheet.add([Value(f"{note}. {sources}", look="note")])
    sheet.add([])
    return sheet


def _header_row(sheet: Sheet, headers: Sequence[str]) -> None:
    sheet.add([Value(name, look="header") for name in headers])
    for index, name in enumerate(headers):
        sheet.fit(index, len(name))


def _table(report: Report, note: str, columns: Sequence[Column], rows: Sequence[Any],
           sources: str = SOURCES_NOTE) -> Sheet:
    sheet = _heading(report, note, sources)
    _header_row(sheet, [column.header for column in columns])
    for row in rows:
        values = [Value(column.value(row), column.format, column.look) for column in columns]
        for index, value in enumerate(values):
            sheet.fit(index, _width(value.value, value.format))
        sheet.add(values)
    sheet.table_rows = len(rows)
    return sheet


def _summary(report: Report) -> Sheet:
    """The groups of QĐ 757 with both shares, then the unit's other indicators."""
    people = report.people
    sheet = _heading(report, "Tổng hợp theo nhóm đối tượng (QĐ 757/QĐ-BKHCN)")
    _header_row(sheet, ["Nhóm đối tượng", "Số người đăng ký", "Hoàn thành khóa cơ bản", "Tỷ lệ trên số đăng ký",
                        "Số người của nhóm (xã nhập)", "Tỷ lệ trên số người của nhóm", "VNeID mức 2 (tự khai)"])
    formats = [None, INTEGER, INTEGER, PERCENT, INTEGER, PERCENT, INTEGER]
    known = [line.population for line in people.groups if line.group is not None and line.population is not None]
    whole = sum(known) if len(known) == len(GROUP_NAMES) - 1 else None  # a total only when every group is known
    lines: list[tuple[list[object], str]] = [
        ([GROUP_NAMES.get(line.group, line.group or ""), line.registered, line.finished,
          share(line.finished, line.registered), line.population, share(line.finished, line.population),
          line.vneid], "")
        for line in people.groups
    ]
    lines.append((["Tổng cộng", people.registered, people.finished, share(people.finished, people.registered), whole,
                   share(people.finished, whole), people.vneid], "total"))
    for values, look in lines:
        sheet.add([Value(value, number_format, look) for value, number_format in zip(values, formats, strict=True)])
        for index, (value, number_format) in enumerate(zip(values, formats, strict=True)):
            sheet.fit(index, _width(value, number_format))
    sheet.add([])
    sheet.add([Value(name, look="header") for name in ("Chỉ tiêu khác", "Số đạt", "Trên tổng số", "Tỷ lệ")])
    for label, reached, whole_count in indicator_rows(report):
        sheet.add([Value(label), Value(reached, INTEGER), Value(whole_count, INTEGER),
                   Value(share(reached, whole_count), PERCENT)])
        sheet.fit(0, len(label))
    sheet.add([])
    sheet.add([Value(name, look="header") for name in ("Hoạt động tại cơ sở, học cùng, sáng kiến", "Số")])
    for label, count in offline_rows(report):
        sheet.add([Value(label), Value(count, INTEGER)])
        sheet.fit(0, len(label))
    sheet.add([])
    for line in INDICATORS:
        sheet.add([Value(line, look="note")])
    return sheet


# --- what units did offline ------------------------------------------------------------------------

def _block(sheet: Sheet, headers: Sequence[str], rows: Sequence[tuple[Sequence[object], str]]) -> None:
    """A small table under the sheet's main one: a header, then (values, look) rows; numbers as integers."""
    sheet.add([])
    sheet.add([Value(name, look="header") for name in headers])
    for values, look in rows:
        sheet.add([Value(value, INTEGER if isinstance(value, int) else None, look) for value in values])
        for index, value in enumerate(values):
            sheet.fit(index, _width(value, None))


def _activities(report: Report) -> Sheet:
    """One row per activity, then the activities by unit and by kind; the people named as present
    counted once per unit and once in the total."""
    offline = report.offline
    sheet = _table(report, "Hoạt động đơn vị tổ chức trong kỳ (đã xóa thì không tính)", [
        Column("Đơn vị", lambda row: row.unit),
        Column("Loại hoạt động", lambda row: kind_label(row.kind)),
        Column("Ngày", lambda row: row.held_on, DATE),
        Column("Tên hoạt động", lambda row: row.title),
        Column("Nơi tổ chức", lambda row: row.place),
        Column("Số người tham dự", lambda row: row.participants, INTEGER),
        Column("Số thành viên được ghi tên", lambda row: row.named, INTEGER),
    ], offline.activities, OFFLINE_SOURCES)
    total = offline.total
    held = [line for line in offline.units if line.activities]
    _block(sheet, ["Theo đơn vị", "Số hoạt động", "Lượt người tham dự", "Thành viên được ghi tên (không trùng)"], [
        *(([line.name, line.activities, line.participants, line.named_people], "") for line in held),
        ([ONCE, total.activities, total.participants, total.named_people], "total"),
    ])
    _block(sheet, ["Theo loại hoạt động", "Số hoạt động", "Lượt người tham dự"], [
        *(([kind_label(line.kind), line.activities, line.participants], "") for line in total.by_kind),
        (["Tổng cộng", total.activities, total.participants], "total"),
    ])
    return sheet


def _assisted(report: Report) -> Sheet:
    """Per organisation (its members) and village (its residents), learning with a digital-team member
    beside them; counts only."""
    offline = report.offline
    units = [line for line in offline.units if line.kind != "commune" or report.scope.kind != "commune"]
    note = ("Học cùng Tổ công nghệ số cộng đồng: người hoàn thành bài học hoặc làm bài kiểm tra bên cạnh thành viên "
            "của Tổ. Tổ chức tính thành viên, thôn tính người ở thôn")
    if report.scope.kind == "commune":
        note += "; một người vừa là thành viên tổ chức vừa ở thôn được tính ở cả hai dòng, một lần ở dòng Tổng cộng"
    sheet = _table(report, note, [
        Column("Đơn vị", lambda row: row.name),
        Column("Loại đơn vị", lambda row: UNIT_KINDS.get(row.kind, row.kind)),
        Column("Người học cùng trong kỳ", lambda row: row.helped_people, INTEGER),
        Column("Bài học hoàn thành khi học cùng (trong kỳ)", lambda row: row.helped_lessons, INTEGER),
        Column("Hoàn thành khóa cơ bản có học cùng", lambda row: row.helped_finished, INTEGER),
    ], units, OFFLINE_SOURCES)
    if report.scope.kind == "commune":
        total = offline.total
        values: list[object] = [ONCE, None, total.helped_people, total.helped_lessons, total.helped_finished]
        sheet.add([Value(value, INTEGER if isinstance(value, int) else None, "total") for value in values])
        sheet.fit(0, len(ONCE))
    return sheet


def _initiatives(report: Report) -> Sheet:
    """The initiatives proposed or recognised in the period, then how many of each."""
    offline = report.offline
    sheet = _table(report, "Sáng kiến, cách làm hay đề xuất hoặc được công nhận trong kỳ", [
        Column("Tên sáng kiến", lambda row: row.title, look="wrapped"),
        Column("Tác giả", lambda row: row.authors, look="wrapped"),
        Column("Đơn vị", lambda row: row.unit),
        Column("Nội dung", lambda row: row.description, look="wrapped"),
        Column("Kết quả", lambda row: row.result, look="wrapped"),
        Column("Ngày đề xuất", lambda row: row.proposed_on, DATE),
        Column("Tình trạng", lambda row: initiative_status(row)),
    ], offline.initiatives, OFFLINE_SOURCES)
    total: OfflineLine = offline.total
    _block(sheet, ["Sáng kiến trong kỳ", "Số"], [
        (["Được đề xuất", total.initiatives_proposed], ""),
        (["Được công nhận", total.initiatives_recognised], ""),
    ])
    return sheet


# --- writing ---------------------------------------------------------------------------------------

LOOKS: dict[str, dict[str, Any]] = {
    "": {},
    "title": {"font": Font(bold=True, size=14)},
    "period": {"font": Font(italic=True)},
    "note": {"font": Font(italic=True, color="4A5568")},
    "header": {"font": Font(bold=True), "fill": HEADER_FILL, "alignment": Alignment(wrap_text=True, vertical="center")},
    "total": {"font": Font(bold=True)},
    "wrapped": {"alignment": Alignment(wrap_text=True, vertical="top")},
}
WRAPPED = Alignment(wrap_text=True, vertical="top")


def _write(book: Workbook, name: str, content: Sheet) -> None:
    sheet = book.create_sheet(name)
    # Write-only sheets take their sizes, frozen panes and filter before the first row.
    for index, width in enumerate(content.widths, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = min(max(width + 2, WIDTH_MIN), WIDTH_MAX)
    sheet.freeze_panes = f"A{HEADER_ROW + 1}"
    if content.table_rows:
        last = get_column_letter(len(content.widths))
        sheet.auto_filter.ref = f"A{HEADER_ROW}:{last}{HEADER_ROW + content.table_rows}"
    for row in content.rows:
        sheet.append([_cell(sheet, value) for value in row])


def _cell(sheet: Any, value: Value) -> object:
    """One cell; text stays text even when it starts with "=" (a typed name is never a formula)."""
    content = value.value
    if isinstance(content, str):
        content = ILLEGAL_CHARACTERS_RE.sub("", content)
    plain = not value.format and not value.look
    if plain and (content is None or isinstance(content, int) or (isinstance(content, str) and _inert(content))):
        return content
    cell = WriteOnlyCell(sheet, value=content)
    if isinstance(content, str):
        cell.data_type = "s"
        if "\n" in content:
            cell.alignment = WRAPPED
    if value.format:
        cell.number_format = value.format
    for attribute, style in LOOKS[value.look].items():
        setattr(cell, attribute, style)
    return cell


def _inert(text: str) -> bool:
    """Text openpyxl writes as it is: not taken for a formula, nothing to wrap."""
    return not text.startswith("=") and "\n" not in text


def _width(value: object, number_format: str | None) -> int:
    if value is None:
        return 0
    if number_format == PERCENT:
        return 7
    if number_format == DATE:
        return 10
    if isinstance(value, int):
        return len(f"{value:,}")
    return max(len(line) for line in str(value).split("\n"))
