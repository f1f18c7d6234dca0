"""The list of a unit's named members as an XLSX workbook, for the leader or village head who asks.

Only people who agreed to show their name are listed (storage.figures.MemberList); a note says how
many more are counted but not named.
"""

from __future__ import annotations

from io import BytesIO

from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from reports.cells import header, number, put
from storage.figures import MemberList, MemberProgress

SHEET = "Thành viên"
COLUMNS = ["Họ tên", "Thôn/xóm", "Số bài đã học xong", "Đã xong khóa cơ bản", "Lần hoạt động gần nhất"]
STATUS = "Trạng thái"
CONFIRMED, CLAIMED = "Đã xác nhận", "Tự khai"
YES, NOT_YET = "Có", "Chưa"
NO_NAME = "(chưa ghi tên)"
DATE_FORMAT = "DD/MM/YYYY"
TITLE_ROW, NOTE_ROW, HEADER_ROW = 1, 2, 3
DATE_COLUMN = COLUMNS.index("Lần hoạt động gần nhất")  # 0-based
# Lessons completed with a digital-team member beside them: they count as finished, shown apart (issue 14).
ASSISTED = "Số bài học cùng Tổ công nghệ số"
WIDTH_MIN, WIDTH_MAX = 12, 40  # characters


def hidden_note(members: MemberList) -> str:
    """The note under the title: how many are counted but not named, and why."""
    listed = number(len(members.rows))
    if not members.hidden:
        return f"Danh sách có {listed} người; mọi người đều đã đồng ý hiện tên."
    return (f"Danh sách có {listed} người. {number(members.hidden)} người chưa đồng ý hiện tên nên không có "
            "trong danh sách.")


def members_workbook(title: str, members: MemberList, *, organisation: bool) -> bytes:
    """The workbook's bytes: a title, the note, a frozen header and one row per named member.

    `organisation` adds the membership status column (confirmed by the leader, or only claimed).
    """
    book = Workbook()
    sheet = book.active
    assert sheet is not None  # a new workbook always has its first sheet
    sheet.title = SHEET
    columns = [*COLUMNS, STATUS, ASSISTED] if organisation else [*COLUMNS, ASSISTED]
    put(sheet, TITLE_ROW, 1, title).font = Font(bold=True, size=14)
    put(sheet, NOTE_ROW, 1, hidden_note(members)).font = Font(italic=True)
    header(sheet, HEADER_ROW, columns)
    for offset, member in enumerate(members.rows, start=1):
        for index, value in enumerate(_values(member, organisation), start=1):
            cell = put(sheet, HEADER_ROW + offset, index, value)
            if index == DATE_COLUMN + 1:
                cell.number_format = DATE_FORMAT
    _size_columns(sheet, columns, members, organisation)
    sheet.freeze_panes = sheet.cell(row=HEADER_ROW + 1, column=1)
    last = f"{get_column_letter(len(columns))}{HEADER_ROW + max(len(members.rows), 1)}"
    sheet.auto_filter.ref = f"A{HEADER_ROW}:{last}"
    buffer = BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _values(member: MemberProgress, organisation: bool) -> list[object]:
    values: list[object] = [
        member.name or NO_NAME,
        member.village,
        member.lessons_finished,
        YES if member.finished_core else NOT_YET,
        member.last_active.date() if member.last_active is not None else None,  # already in the commune's zone
    ]
    if organisation:
        values.append(CONFIRMED if member.confirmed else CLAIMED)
    values.append(member.lessons_assisted)
    return values



def _size_columns(sheet: Worksheet, columns: list[str], members: MemberList, organisation: bool) -> None:
    widths = [len(name) for name in columns]
    for member in members.rows:
        for index, value in enumerate(_values(member, organisation)):
            widths[index] = max(widths[index], 10 if index == DATE_COLUMN else len(str(value or "")))
    for index, width in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = min(max(width + 2, WIDTH_MIN), WIDTH_MAX)

