"""The people who finished every lesson, with their scores, as an XLSX workbook: the basis of the
commune's proposals for khen thưởng (storage.rankings.finished_everything).

Only people who agreed to show their name are listed; a note says how many more finished but are only
counted. Scores are numbers (best score of each lesson, out of 100), dates are dates.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from io import BytesIO

from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from reports.cells import header, put
from reports.cells import number as vietnamese_number
from storage.rankings import Honoured, HonoursList

SHEET = "Hoàn thành"
TITLE = "Danh sách người học xong tất cả các bài – {commune}, tính đến ngày {day}"
PURPOSE = ("Căn cứ để đề xuất khen thưởng trong phong trào “Bình dân học vụ số”. "
           "Điểm là điểm cao nhất của mỗi bài (thang 100).")
FIXED = ["STT", "Họ tên", "Thôn/xóm", "Tổ chức", "Ngày học xong"]
AVERAGE = "Điểm trung bình"
CLAIMED = " (tự khai)"
NO_NAME = "(chưa ghi tên)"
DATE_FORMAT = "DD/MM/YYYY"
AVERAGE_FORMAT = "0.0"
TITLE_ROW, PURPOSE_ROW, NOTE_ROW, HEADER_ROW = 1, 2, 3, 4
DATE_COLUMN = FIXED.index("Ngày học xong") + 1  # 1-based
WIDTH_MIN, WIDTH_MAX, SCORE_WIDTH = 8, 40, 12  # characters


def hidden_note(honours: HonoursList) -> str:
    listed = vietnamese_number(len(honours.rows))
    if not honours.hidden:
        return f"Có {listed} người; mọi người đều đã đồng ý hiện tên."
    hidden = vietnamese_number(honours.hidden)
    return (f"Có {listed} người có tên trong danh sách. {hidden} người khác cũng đã học xong "
            "nhưng chưa đồng ý hiện tên nên chỉ được đếm.")


def honours_workbook(honours: HonoursList, lesson_titles: Sequence[str], *, commune: str, day: date) -> bytes:
    """The workbook's bytes: title, purpose and note rows, a frozen header, one row per named person.

    `lesson_titles` names the score columns, in the order of `honours.lessons`.
    """
    if len(lesson_titles) != len(honours.lessons):
        raise ValueError("one title per lesson")
    book = Workbook()
    sheet = book.active
    assert sheet is not None  # a new workbook always has its first sheet
    sheet.title = SHEET
    columns = [*FIXED, *lesson_titles, AVERAGE]
    put(sheet, TITLE_ROW, 1, TITLE.format(commune=commune, day=f"{day:%d/%m/%Y}")).font = Font(bold=True, size=14)
    put(sheet, PURPOSE_ROW, 1, PURPOSE).font = Font(italic=True)
    put(sheet, NOTE_ROW, 1, hidden_note(honours)).font = Font(italic=True)
    header(sheet, HEADER_ROW, columns)
    for number, person in enumerate(honours.rows, start=1):
        for index, value in enumerate(_values(number, person), start=1):
            cell = put(sheet, HEADER_ROW + number, index, value)
            if index == DATE_COLUMN:
                cell.number_format = DATE_FORMAT
            elif index == len(columns):
                cell.number_format = AVERAGE_FORMAT
    _size_columns(sheet, honours)
    sheet.freeze_panes = sheet.cell(row=HEADER_ROW + 1, column=3)  # header rows, number and name stay
    last = f"{get_column_letter(len(columns))}{HEADER_ROW + max(len(honours.rows), 1)}"
    sheet.auto_filter.ref = f"A{HEADER_ROW}:{last}"
    buffer = BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _values(number: int, person: Honoured) -> list[object]:
    organisations = "; ".join(name + ("" if confirmed else CLAIMED) for name, confirmed in person.organisations)
    average = person.average
    return [
        number,
        person.name or NO_NAME,
        person.village,
        organisations or None,
        person.finished_at.date() if person.finished_at is not None else None,  # already in the commune's zone
        *person.scores,
        average,  # shown with one decimal (AVERAGE_FORMAT), stored exact
    ]



def _size_columns(sheet: Worksheet, honours: HonoursList) -> None:
    widths = [len(name) for name in FIXED]
    for number, person in enumerate(honours.rows, start=1):
        for index, value in enumerate(_values(number, person)[:len(FIXED)]):
            widths[index] = max(widths[index], 10 if index + 1 == DATE_COLUMN else len(str(value or "")))
    for index, width in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = min(max(width + 2, WIDTH_MIN), WIDTH_MAX)
    # Lesson titles are long: their headers wrap, and the columns hold numbers of up to three digits.
    for index in range(len(FIXED) + 1, len(FIXED) + len(honours.lessons) + 2):
        sheet.column_dimensions[get_column_letter(index)].width = SCORE_WIDTH
    sheet.row_dimensions[HEADER_ROW].height = 60

