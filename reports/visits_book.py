"""The households of a village still to visit, as an XLSX workbook to print or share with the team.

The same rows, in the same order and with the same words, as the list in chat (handlers/visits.py takes
`who`, `size_text` and `progress_text` from here), plus two empty columns to fill in at the door. No
household code: the list goes from hand to hand.
"""

from __future__ import annotations

from io import BytesIO

from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from reports.cells import header, number, put
from storage.visits import HouseholdToVisit, VisitList

SHEET = "Hộ cần đến"
TITLE = "Hộ cần đến hướng dẫn – {village}"
COLUMNS = ["STT", "Chủ hộ / người trong hộ", "Nguồn", "Nhân khẩu (danh bạ)", "Người đã đăng ký",
           "Bài cơ bản học được nhiều nhất", "Ngày đến", "Ghi chú"]
FROM_DIRECTORY, FROM_CHAT = "Danh bạ xã", "Tự đăng ký qua chat"
NO_NAME = "Hộ chưa có tên để hiện"
NOTE = ("Đến ngày {day}: {households} hộ, {reached} hộ đã có người hoàn thành khóa cơ bản, {to_visit} hộ cần đến "
        "({unregistered} hộ chưa ai đăng ký).")
PRIVACY = ("Tên người đăng ký chỉ hiện khi họ đã đồng ý; số bài là của người đã đồng ý hiện tên. "
           "Danh sách này không ghi mã hộ.")
TITLE_ROW, NOTE_ROW, PRIVACY_ROW, HEADER_ROW = 1, 2, 3, 4
WIDTHS = (6, 36, 20, 12, 12, 16, 14, 30)  # characters
SHOWN_NAMES = 3  # names on one line; more are counted


def who(row: HouseholdToVisit) -> str:
    """How the household is called: the directory's head, else up to three named members, else a
    placeholder (its code is never shown)."""
    names = row.names
    if not names:
        return NO_NAME
    more = len(names) - SHOWN_NAMES
    return ", ".join(names[:SHOWN_NAMES]) + (f" và {more} người" if more > 0 else "")


def size_text(row: HouseholdToVisit) -> str:
    """'4 nhân khẩu' as the directory lists it; empty when it does not."""
    return f"{row.listed_size} nhân khẩu" if row.listed_size else ""


def progress_text(row: HouseholdToVisit, core_total: int) -> str:
    """'3/8': the most core lessons one named member completed; empty when nobody named is registered."""
    return f"{row.best_core}/{core_total}" if row.best_core is not None else ""


def note(visits: VisitList, day: str) -> str:
    return NOTE.format(day=day, households=number(visits.households), reached=number(visits.reached),
                       to_visit=number(visits.to_visit), unregistered=number(visits.nobody_registered))


def visits_workbook(village: str, day: str, visits: VisitList) -> bytes:
    """The workbook's bytes: title, counts, the privacy note, a frozen header and one row per household."""
    book = Workbook()
    sheet = book.active
    assert sheet is not None  # a new workbook always has its first sheet
    sheet.title = SHEET
    put(sheet, TITLE_ROW, 1, TITLE.format(village=village)).font = Font(bold=True, size=14)
    put(sheet, NOTE_ROW, 1, note(visits, day)).font = Font(italic=True)
    put(sheet, PRIVACY_ROW, 1, PRIVACY).font = Font(italic=True)
    header(sheet, HEADER_ROW, COLUMNS)
    for number_, row in enumerate(visits.rows, start=1):
        values: list[object] = [
            number_, who(row), FROM_DIRECTORY if row.in_directory else FROM_CHAT, row.listed_size,
            row.registered, progress_text(row, visits.core_total) or None, None, None,
        ]
        for column, value in enumerate(values, start=1):
            put(sheet, HEADER_ROW + number_, column, value)
    for column, width in enumerate(WIDTHS, start=1):
        sheet.column_dimensions[get_column_letter(column)].width = width
    sheet.freeze_panes = sheet.cell(row=HEADER_ROW + 1, column=1)
    last = f"{get_column_letter(len(COLUMNS))}{HEADER_ROW + max(len(visits.rows), 1)}"
    sheet.auto_filter.ref = f"A{HEADER_ROW}:{last}"
    buffer = BytesIO()
    book.save(buffer)
    return buffer.getvalue()
