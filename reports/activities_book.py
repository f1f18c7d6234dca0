"""Units' offline activities of one reporting year as an XLSX workbook (/hoatdong, `hocvuso activities export`).

Two sheets: "Hoạt động", one row per activity (unit, kind, day, title, place, participants, members
named as present and, with `names`, who they were; who recorded it by initials), and "Theo đơn vị",
per unit the activities, their participants and the distinct people named, with a commune line that
counts a person named by two units once.
"""

from __future__ import annotations

from collections.abc import Sequence
from io import BytesIO

from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from reports.cells import header, number, put
from storage.activities import ActivityRow, tally
from storage.report import Period

SHEET = "Hoạt động"
TOTALS_SHEET = "Theo đơn vị"
COLUMNS = ["Đơn vị", "Loại hoạt động", "Ngày", "Tên hoạt động", "Nơi tổ chức", "Số người tham dự",
           "Số thành viên được ghi tên"]
NAMES_COLUMN = "Thành viên có mặt"
RECORDER_COLUMN = "Người ghi (viết tắt)"
TOTAL_COLUMNS = ["Đơn vị", "Số hoạt động", "Lượt người tham dự", "Số người được ghi tên (không trùng)"]
ALL_UNITS = "Cộng (một người chỉ tính một lần)"
DATE_FORMAT = "DD/MM/YYYY"
TITLE_ROW, NOTE_ROW, HEADER_ROW = 1, 2, 3
DATE_COLUMN = 3  # 1-based
WIDTH_MIN, WIDTH_MAX = 10, 50


def note(period: Period, rows: Sequence[ActivityRow]) -> str:
    return (f"Năm báo cáo {period.year}: từ {period.first_day:%d/%m/%Y} đến {period.last_day:%d/%m/%Y}. "
            f"{number(len(rows))} hoạt động, {number(sum(row.participants for row in rows))} lượt người tham dự.")


def activities_workbook(title: str, period: Period, rows: Sequence[ActivityRow], *, names: bool) -> bytes:
    """The workbook's bytes. `names`: list the members named as present (staff, and a unit's own leaders)."""
    book = Workbook()
    sheet = book.active
    assert sheet is not None  # a new workbook always has its first sheet
    sheet.title = SHEET
    columns = [*COLUMNS, *([NAMES_COLUMN] if names else []), RECORDER_COLUMN]
    put(sheet, TITLE_ROW, 1, title).font = Font(bold=True, size=14)
    put(sheet, NOTE_ROW, 1, note(period, rows)).font = Font(italic=True)
    header(sheet, HEADER_ROW, columns)
    values = [_values(row, names) for row in rows]
    for offset, line in enumerate(values, start=1):
        for index, value in enumerate(line, start=1):
            cell = put(sheet, HEADER_ROW + offset, index, value)
            if index == DATE_COLUMN:
                cell.number_format = DATE_FORMAT
    _finish(sheet, columns, values, DATE_COLUMN)

    totals = book.create_sheet(TOTALS_SHEET)
    put(totals, TITLE_ROW, 1, f"{title}: tổng hợp theo đơn vị").font = Font(bold=True, size=14)
    put(totals, NOTE_ROW, 1, note(period, rows)).font = Font(italic=True)
    header(totals, HEADER_ROW, TOTAL_COLUMNS)
    units, everything = tally(rows)
    lines: list[list[object]] = [[unit.unit_name, unit.totals.activities, unit.totals.participants,
                                  unit.totals.named_people] for unit in units]
    lines.append([ALL_UNITS, everything.activities, everything.participants, everything.named_people])
    for offset, line in enumerate(lines, start=1):
        for index, value in enumerate(line, start=1):
            cell = put(totals, HEADER_ROW + offset, index, value)
            if offset == len(lines):
                cell.font = Font(bold=True)
    _finish(totals, TOTAL_COLUMNS, lines, None)

    buffer = BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _values(row: ActivityRow, names: bool) -> list[object]:
    values: list[object] = [row.unit_name, row.kind_label, row.held_on, row.title, row.place, row.participants,
                            row.named_count]
    if names:
        values.append(", ".join(row.named))
    values.append(row.recorded_by)
    return values


def _finish(sheet: Worksheet, columns: list[str], lines: Sequence[Sequence[object]], date_column: int | None) -> None:
    widths = [len(name) for name in columns]
    for line in lines:
        for index, value in enumerate(line):
            widths[index] = max(widths[index], 10 if index + 1 == date_column else len(str(value or "")))
    for index, width in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = min(max(width + 2, WIDTH_MIN), WIDTH_MAX)
    sheet.freeze_panes = sheet.cell(row=HEADER_ROW + 1, column=1)
    last = f"{get_column_letter(len(columns))}{HEADER_ROW + max(len(lines), 1)}"
    sheet.auto_filter.ref = f"A{HEADER_ROW}:{last}"
