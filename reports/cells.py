"""What every workbook hocvuso writes does the same way: text kept as text, headers that look alike."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.worksheet.worksheet import Worksheet

HEADER_FILL = PatternFill("solid", fgColor="DDE6F0")


def put(sheet: Worksheet, row: int, column: int, value: object) -> Any:
    """Write one cell; text stays text even when it starts with "=" (a typed name is never a formula),
    and characters a workbook cannot hold are dropped."""
    if isinstance(value, str):
        value = ILLEGAL_CHARACTERS_RE.sub("", value)
    cell = sheet.cell(row=row, column=column, value=value)  # type: ignore[arg-type]
    if isinstance(value, str):
        cell.data_type = "s"
    return cell


def header(sheet: Worksheet, row: int, names: Sequence[str]) -> None:
    """A bold, shaded header row whose long names wrap."""
    for index, name in enumerate(names, start=1):
        cell = put(sheet, row, index, name)
        cell.font = Font(bold=True)
        cell.fill = HEADER_FILL
        cell.alignment = Alignment(wrap_text=True, vertical="center")


def number(value: int) -> str:
    """12.345: an integer the Vietnamese way, for the notes under a title."""
    return f"{value:,}".replace(",", ".")
