"""The initiatives (sáng kiến, cách làm hay) as an XLSX workbook: the basis of the commune's proposals
for khen thưởng (storage.initiatives.initiative_rows).

One row per initiative in the order they were proposed, with its status; dates are dates, long text
wraps. Authors are as the proposer typed them; who proposed it is not in the file.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from io import BytesIO

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter

from reports.cells import header, number, put
from storage.initiatives import InitiativeRow

SHEET = "Sáng kiến"
TITLE = "Sáng kiến, cách làm hay – {commune}, tính đến ngày {day}"
TITLE_YEAR = "Sáng kiến, cách làm hay – {commune}, năm báo cáo {year} ({first} – {last})"
PURPOSE = "Căn cứ để xét đề xuất khen thưởng trong phong trào “Bình dân học vụ số”."
COLUMNS = ["STT", "Tên sáng kiến", "Tác giả", "Đơn vị", "Nội dung", "Kết quả", "Ngày đề xuất", "Trạng thái",
           "Ngày công nhận"]
WIDTHS = [6, 36, 28, 24, 60, 50, 13, 16, 14]  # characters
RECOGNISED, WAITING = "Đã công nhận", "Chờ xét"
NO_UNIT = "Không thuộc đơn vị nào"
DATE_FORMAT = "DD/MM/YYYY"
DATE_COLUMNS = (COLUMNS.index("Ngày đề xuất") + 1, COLUMNS.index("Ngày công nhận") + 1)  # 1-based
TITLE_ROW, PURPOSE_ROW, NOTE_ROW, HEADER_ROW = 1, 2, 3, 4


def note(rows: Sequence[InitiativeRow]) -> str:
    """'Có 12 sáng kiến: 5 đã được công nhận, 7 đang chờ xét.'"""
    recognised = sum(row.recognised_on is not None for row in rows)
    if not rows:
        return "Chưa có sáng kiến nào."
    return (f"Có {number(len(rows))} sáng kiến: {number(recognised)} đã được công nhận, "
            f"{number(len(rows) - recognised)} đang chờ xét.")


def initiatives_workbook(rows: Sequence[InitiativeRow], *, commune: str, day: date,
                         year: tuple[int, date, date] | None = None) -> bytes:
    """The workbook's bytes: title, purpose and note rows, a frozen header, one row per initiative.

    `year` (reporting year, its first and last day) titles a list of one reporting year; without it the
    list is everything as of `day`.
    """
    book = Workbook()
    sheet = book.active
    assert sheet is not None  # a new workbook always has its first sheet
    sheet.title = SHEET
    if year is None:
        title = TITLE.format(commune=commune, day=f"{day:%d/%m/%Y}")
    else:
        title = TITLE_YEAR.format(commune=commune, year=year[0], first=f"{year[1]:%d/%m/%Y}",
                                  last=f"{year[2]:%d/%m/%Y}")
    put(sheet, TITLE_ROW, 1, title).font = Font(bold=True, size=14)
    put(sheet, PURPOSE_ROW, 1, PURPOSE).font = Font(italic=True)
    put(sheet, NOTE_ROW, 1, note(rows)).font = Font(italic=True)
    header(sheet, HEADER_ROW, COLUMNS)
    top = Alignment(wrap_text=True, vertical="top")
    for position, row in enumerate(rows, start=1):
        for index, value in enumerate(_values(position, row), start=1):
            cell = put(sheet, HEADER_ROW + position, index, value)
            cell.alignment = top
            if index in DATE_COLUMNS:
                cell.number_format = DATE_FORMAT
    for index, width in enumerate(WIDTHS, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = width
    sheet.freeze_panes = sheet.cell(row=HEADER_ROW + 1, column=3)  # header rows, number and title stay
    last = f"{get_column_letter(len(COLUMNS))}{HEADER_ROW + max(len(rows), 1)}"
    sheet.auto_filter.ref = f"A{HEADER_ROW}:{last}"
    buffer = BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _values(position: int, row: InitiativeRow) -> list[object]:
    return [
        position,
        row.title,
        row.authors,
        row.unit or NO_UNIT,
        row.description,
        row.result,
        row.proposed_on,
        RECOGNISED if row.recognised_on is not None else WAITING,
        row.recognised_on,
    ]
