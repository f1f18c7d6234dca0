"""The commune's directory as a workbook: the empty template, the export, and reading a filled file
(XLSX, or one sheet as CSV) back into the plain rows storage/directory.py checks and imports."""

from __future__ import annotations

import csv
import io
import os
import tempfile
import warnings
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from openpyxl import Workbook, load_workbook
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation

from storage.directory import (
    COLUMNS,
    GROUP_COLUMNS,
    HEAD_NAME,
    HEAD_NAME_MAX,
    HOUSEHOLD_CODE,
    HOUSEHOLDS,
    ID,
    INSTRUCTIONS,
    KIND,
    MEMBER_COUNT,
    MEMBER_COUNT_MAX,
    MEMBER_COUNT_MIN,
    ORGANISATION_NAME,
    ORGANISATION_NAME_MAX,
    ORGANISATIONS,
    PARENT,
    POPULATION,
    SHEETS,
    VILLAGE,
    VILLAGE_NAME,
    VILLAGE_NAME_MAX,
    VILLAGES,
    Cell,
    Row,
    SheetRows,
    clean_text,
    name_key,
    sheet_of_header,
)
from storage.models import ORGANISATION_KINDS

WIDTHS = {ID: 8, VILLAGE_NAME: 32, ORGANISATION_NAME: 44, KIND: 16, PARENT: 44, HOUSEHOLD_CODE: 12,
          HEAD_NAME: 32, VILLAGE: 24, MEMBER_COUNT: 14, **dict.fromkeys(GROUP_COLUMNS.values(), 18)}
# Rows a dropdown (kind, thôn/xóm) covers: far more than a commune has.
LISTED_ROWS = 5000
TEXT = "@"  # Excel's "Text" format: a household code keeps its leading zeros


class BookError(Exception):
    """A file that cannot be read or written; the message is one line for the operator."""


# --- writing --------------------------------------------------------------------------------------

def write_template(path: Path, *, code_length: int) -> None:
    """The empty workbook: the instructions and each sheet's header, no data rows."""
    write_directory(path, {name: SheetRows(name, COLUMNS[name]) for name in SHEETS}, code_length=code_length)


def write_directory(path: Path, sheets: Mapping[str, SheetRows], *, code_length: int) -> None:
    """Write the instructions and the four sheets (rows as storage.directory.export_rows gives them)."""
    book = Workbook()
    guide = book.active
    guide.title = INSTRUCTIONS
    _write_guide(guide, code_length)
    for name in SHEETS:
        sheet = book.create_sheet(name)
        columns = COLUMNS[name]
        _header(sheet, columns)
        for row in sheets.get(name, SheetRows(name, columns)).rows:
            sheet.append([_cell_value(column, row.cells.get(column)) for column in columns])
        _format(sheet, name, columns)
    _save(book, path)


def _header(sheet: Any, columns: Sequence[str]) -> None:
    sheet.append(list(columns))
    for index, column in enumerate(columns, start=1):
        sheet.cell(row=1, column=index).font = Font(bold=True)
        sheet.column_dimensions[get_column_letter(index)].width = WIDTHS.get(column, 20)
    sheet.freeze_panes = "A2"


def _cell_value(column: str, value: Cell) -> Cell:
    if column == HOUSEHOLD_CODE and value is not None:
        return str(value)
    return value


def _format(sheet: Any, name: str, columns: Sequence[str]) -> None:
    """Codes as text, and dropdowns for the kind and the thôn/xóm so a clerk picks instead of typing."""
    if HOUSEHOLD_CODE in columns:
        letter = get_column_letter(columns.index(HOUSEHOLD_CODE) + 1)
        sheet.column_dimensions[letter].number_format = TEXT  # cells the clerk adds later
        for (cell,) in sheet.iter_rows(min_row=2, min_col=columns.index(HOUSEHOLD_CODE) + 1,
                                       max_col=columns.index(HOUSEHOLD_CODE) + 1):
            cell.number_format = TEXT
    if name == ORGANISATIONS:
        labels = ", ".join(ORGANISATION_KINDS.values())
        kinds = DataValidation(type="list", formula1=f'"{",".join(ORGANISATION_KINDS.values())}"', allow_blank=True,
                               showErrorMessage=True, errorTitle="Loại tổ chức", error=f"Chọn một trong: {labels}.")
        _cover(sheet, kinds, columns.index(KIND))
    if VILLAGE in columns:
        # A warning, not a refusal: a thôn already stored may be missing from a file made by hand.
        villages = DataValidation(type="list", formula1=f"'{VILLAGES}'!$B$2:$B${LISTED_ROWS}", allow_blank=True,
                                  showErrorMessage=True, errorStyle="warning", errorTitle="Thôn/xóm",
                                  error="Tên này không có ở trang Thôn xóm.")
        _cover(sheet, villages, columns.index(VILLAGE))


def _cover(sheet: Any, validation: DataValidation, index: int) -> None:
    letter = get_column_letter(index + 1)
    validation.add(f"{letter}2:{letter}{LISTED_ROWS}")
    sheet.add_data_validation(validation)


def _guide_lines(code_length: int) -> list[str]:
    example = "0482137596"[:code_length]
    kinds = ", ".join(ORGANISATION_KINDS.values())
    groups = ", ".join(f"“{label}”" for label in GROUP_COLUMNS.values())
    return [
        "Danh bạ của xã trên hocvuso: cách điền tệp này",
        f"Tệp có 4 trang để điền: {', '.join(SHEETS)}. Dòng 1 của mỗi trang là tên cột: giữ nguyên, không sửa, "
        "không xóa. Mỗi dòng sau đó là một thôn/xóm, một tổ chức, một hộ gia đình hoặc số dân của một nơi.",
        "Cột “Mã” do hocvuso tự điền. Dòng mới thì để trống cột Mã. Không bao giờ sửa Mã hay chép Mã sang dòng "
        "khác: nhờ Mã, hocvuso biết một dòng được đổi tên (ví dụ “Thôn 1” thành “Thôn Đông”) chứ không phải một "
        "dòng mới, nên người dân và các hộ vẫn ở đúng thôn của mình.",
        f"Trang {VILLAGES}: mỗi dòng một thôn/xóm. Tên không được trùng nhau (viết hoa hay thường cũng tính là "
        f"trùng), tối đa {VILLAGE_NAME_MAX} ký tự.",
        f"Trang {ORGANISATIONS}: tên tối đa {ORGANISATION_NAME_MAX} ký tự, không trùng nhau. Cột “Loại” là một "
        f"trong: {kinds}. Cột “Thuộc tổ chức” để trống, hoặc ghi đúng tên tổ chức cấp trên (ví dụ “Chi hội Phụ "
        "nữ thôn 1” thuộc “Hội Liên hiệp Phụ nữ xã”); tổ chức cấp trên có thể ở ngay trong tệp. Một tổ chức "
        "không thể thuộc chính nó, cũng không thể thuộc một tổ chức cấp dưới của nó.",
        f"Trang {HOUSEHOLDS}: “Mã hộ” là mã các thành viên gõ trên bot để vào hộ: đúng {code_length} chữ số "
        f"(ví dụ {example}), không trùng với mã của hộ nào khác, kể cả hộ người dân tự tạo trên bot. Để trống "
        "nếu hộ chưa có mã; mã hocvuso đang lưu thì được giữ nguyên. Cột Mã hộ đã để dạng Văn bản để Excel không "
        f"bỏ số 0 ở đầu. “Họ tên chủ hộ” tối đa {HEAD_NAME_MAX} ký tự. “Thôn/xóm” ghi đúng tên như ở trang "
        f"{VILLAGES} (hoặc một thôn/xóm hocvuso đã lưu). “Số nhân khẩu” là số từ {MEMBER_COUNT_MIN} đến "
        f"{MEMBER_COUNT_MAX}, có thể để trống.",
        f"Trang {POPULATION}: mỗi thôn/xóm nhiều nhất một dòng; một dòng để trống cột Thôn/xóm là số của cả xã. "
        f"Các cột {groups} là số người của từng nhóm đối tượng (số nguyên, không âm). Ô để trống là chưa biết: "
        "nếu hocvuso đang lưu một số ở ô đó thì số ấy bị xóa.",
        "Xóa một dòng khỏi tệp thì hocvuso chưa xóa gì: khi nhập, hocvuso liệt kê các dòng đã lưu mà tệp không có, "
        "kèm số người và số hộ đang gắn với dòng đó. Muốn xóa hẳn thì nhập với --prune. Hộ do người dân tự tạo "
        "trên bot không có trong tệp này và không bao giờ bị xóa.",
        "Cách nhập: “hocvuso directory import ten-tep.xlsx --dry-run” để xem trước, rồi “hocvuso directory "
        "import ten-tep.xlsx”. Tệp có lỗi thì hocvuso không ghi gì và báo từng lỗi theo trang, dòng, cột. "
        "Luôn bắt đầu từ tệp vừa xuất (“hocvuso directory export ten-tep.xlsx”), để không ghi đè mã hộ mới "
        "bằng mã cũ.",
        "Có thể nhập riêng một trang dưới dạng tệp CSV (mã UTF-8, phân cách bằng dấu phẩy hoặc dấu chấm phẩy), "
        "giữ đúng dòng tên cột như trên.",
        f"Ví dụ một dòng ở trang {HOUSEHOLDS} (chỉ để xem, không chép vào trang dữ liệu): {ID}: để trống · "
        f"{HOUSEHOLD_CODE}: {example} · {HEAD_NAME}: Nguyễn Văn An · {VILLAGE}: Thôn 1 · {MEMBER_COUNT}: 4",
    ]


def _write_guide(sheet: Any, code_length: int) -> None:
    sheet.column_dimensions["A"].width = 110
    for number, line in enumerate(_guide_lines(code_length), start=1):
        cell = sheet.cell(row=number, column=1, value=line)
        cell.alignment = Alignment(wrap_text=True, vertical="top")
        if number == 1:
            cell.font = Font(bold=True, size=14)


def _save(book: Workbook, path: Path) -> None:
    """Save through a temporary file beside `path`, so a failed save never leaves half a workbook."""
    if path.suffix.lower() != ".xlsx":
        raise BookError(f'Tên tệp "{path}" cần có đuôi .xlsx.')
    try:
        handle, temporary = tempfile.mkstemp(suffix=".xlsx", dir=path.parent)
    except OSError as error:
        raise BookError(f'Không ghi được tệp "{path}": {_reason(error)}.') from None
    os.close(handle)
    try:
        book.save(temporary)
        os.replace(temporary, path)
    except OSError as error:
        raise BookError(f'Không ghi được tệp "{path}": {_reason(error)}.') from None
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def _reason(error: OSError) -> str:
    if isinstance(error, FileNotFoundError):
        return "thư mục không tồn tại"
    if isinstance(error, PermissionError):
        return "không có quyền ghi (hoặc tệp đang mở trong Excel)"
    if isinstance(error, IsADirectoryError):
        return "đây là một thư mục"
    return f"lỗi hệ thống ({error.strerror or type(error).__name__})"


# --- reading --------------------------------------------------------------------------------------

def read_directory_file(path: Path) -> dict[str, SheetRows]:
    """The sheets of a directory file, by sheet name: every data sheet of an XLSX workbook, or the one
    sheet a CSV file holds (recognised from its header row). Raises BookError with one line."""
    if not path.exists():
        raise BookError(f'Không có tệp "{path}".')
    if path.is_dir():
        raise BookError(f'"{path}" là một thư mục, không phải tệp.')
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        return _read_workbook(path)
    if suffix == ".csv":
        return {(sheet := _read_csv(path)).name: sheet}
    if suffix == ".xls":
        raise BookError(f'Tệp "{path.name}" là Excel 97-2003 (.xls): trong Excel chọn Lưu thành, kiểu '
                        "“Sổ làm việc Excel (*.xlsx)”, rồi nhập tệp .xlsx đó.")
    raise BookError(f'Không đọc được "{path.name}": chỉ nhập được tệp Excel (.xlsx) hoặc CSV (.csv).')


def _read_workbook(path: Path) -> dict[str, SheetRows]:
    wanted = {name_key(name): name for name in SHEETS}
    sheets: dict[str, SheetRows] = {}
    # openpyxl warns about Excel features it does not keep (extensions, some styles): only the cells matter.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            book = load_workbook(path, read_only=True, data_only=True)
        except Exception:  # openpyxl raises many kinds for a file that is not a workbook
            raise BookError(f'Không mở được "{path.name}": tệp hỏng, đang bị khóa, hoặc không phải tệp Excel '
                            ".xlsx.") from None
        try:
            for title in book.sheetnames:
                name = wanted.get(name_key(title))
                if name is not None and name not in sheets:
                    sheets[name] = _sheet_rows(name, book[title].iter_rows(values_only=True))
        except Exception:
            raise BookError(f'Không đọc hết được "{path.name}": tệp Excel bị hỏng.') from None
        finally:
            book.close()
    if not sheets:
        raise BookError(f'Tệp "{path.name}" không có trang nào trong số: {", ".join(SHEETS)} '
                        "(dùng tệp mẫu: hocvuso directory template).")
    return sheets


def _sheet_rows(name: str, values: Iterable[Sequence[Any]]) -> SheetRows:
    """Rows numbered as the spreadsheet shows them (the header is row 1); wholly blank rows left out."""
    rows = iter(values)
    header = tuple("" if cell is None else clean_text(_plain(cell)) for cell in next(rows, ()))
    data = []
    for number, cells in enumerate(rows, start=2):
        plain = [_plain(cell) for cell in cells]
        if not any(clean_text(cell) for cell in plain):
            continue
        by_header: dict[str, Cell] = {}
        for index, column in enumerate(header):
            if column:
                by_header.setdefault(column, plain[index] if index < len(plain) else None)
        data.append(Row(number, by_header))
    return SheetRows(name, header, tuple(data))


def _plain(value: Any) -> Cell:
    """A cell value as text or number (dates and other kinds become their text)."""
    if value is None or isinstance(value, str | int | float):
        return value
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return str(value)


def _read_csv(path: Path) -> SheetRows:
    try:
        text = path.read_bytes().decode("utf-8-sig")  # Excel's "CSV UTF-8" starts with a BOM
    except UnicodeDecodeError:
        raise BookError(f'Tệp "{path.name}" không phải mã UTF-8: trong Excel chọn Lưu thành, kiểu '
                        "“CSV UTF-8 (Comma delimited)”, rồi nhập lại.") from None
    except OSError as error:
        raise BookError(f'Không đọc được tệp "{path.name}": {_reason(error)}.') from None
    delimiter = _delimiter(text)
    try:
        records = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    except csv.Error:
        raise BookError(f'Tệp "{path.name}" không đúng dạng CSV (dấu ngoặc kép không khớp?).') from None
    name = sheet_of_header(records[0]) if records else None
    if name is None:
        examples = "; ".join(f"{sheet}: {', '.join(COLUMNS[sheet])}" for sheet in SHEETS)
        raise BookError(f'Không nhận ra trang nào trong "{path.name}": dòng đầu phải là dòng tên cột của một '
                        f"trang ({examples}).")
    return _sheet_rows(name, records)


def _delimiter(text: str) -> str:
    """Comma or semicolon (Excel set to Vietnamese writes semicolons): whichever splits the header row
    into more known column names; a tie goes to the commoner character."""
    first_line = text.split("\n", 1)[0]
    known = {name_key(column) for columns in COLUMNS.values() for column in columns}

    def score(delimiter: str) -> int:
        header = next(csv.reader([first_line], delimiter=delimiter), [])
        return sum(name_key(cell) in known for cell in header)

    semicolons, commas = score(";"), score(",")
    if semicolons != commas:
        return ";" if semicolons > commas else ","
    return ";" if first_line.count(";") > first_line.count(",") else ","
