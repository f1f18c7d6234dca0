"""`hocvuso initiatives list|export`: the initiatives (sáng kiến, cách làm hay) at the shell.

`--year` is a reporting year (to the report deadline, 10/12 by default): the initiatives proposed or
recognised in it; with `--recognised`, those recognised in it (without `--year`: all recognised ones).
A mistake in the options is one Vietnamese line and exit code 2, as in the other commands.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from bot.cli_access import CommandError, _run, out
from bot.settings import Settings
from reports.initiatives_book import NO_UNIT, RECOGNISED, WAITING, initiatives_workbook, note
from storage.db import Database
from storage.initiatives import InitiativeRow, initiative_rows
from storage.report import Period, reporting_period

initiatives_app = typer.Typer(help="Sáng kiến, cách làm hay.", no_args_is_help=True)

FIRST_YEAR, LAST_YEAR = 2000, 2100
YearOption = Annotated[int | None, typer.Option("--year", help="Năm báo cáo, ví dụ 2026 (mặc định: tất cả).")]
RecognisedOption = Annotated[bool, typer.Option("--recognised", help="Chỉ các sáng kiến đã được công nhận.")]


def _period(year: int | None, settings: Settings) -> Period | None:
    if year is None:
        return None
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise CommandError(f"--year cần là một năm từ {FIRST_YEAR} đến {LAST_YEAR}.")
    return reporting_period(year, settings.deadline, settings.zone)


async def _rows(settings: Settings, database: Database, period: Period | None,
                recognised: bool) -> list[InitiativeRow]:
    zone = settings.zone
    return await database.read(lambda connection: initiative_rows(connection, zone, period=period,
                                                                  recognised_only=recognised))


def _which(period: Period | None) -> str:
    if period is None:
        return ""
    return f" trong năm báo cáo {period.year} ({period.first_day:%d/%m/%Y} – {period.last_day:%d/%m/%Y})"


@initiatives_app.command("list")
def initiatives_list(year: YearOption = None, recognised: RecognisedOption = False) -> None:
    """Liệt kê các sáng kiến: tên, tác giả, đơn vị, ngày đề xuất, trạng thái."""

    async def work(settings: Settings, database: Database) -> tuple[list[InitiativeRow], Period | None]:
        period = _period(year, settings)
        return await _rows(settings, database, period, recognised), period

    rows, period = _run(work)
    if not rows:
        out.print(f"Chưa có sáng kiến nào{' được công nhận' if recognised else ''}{_which(period)}.", markup=False)
        return
    table = Table(title=f"Sáng kiến, cách làm hay{_which(period)}")
    for column in ("Số", "Tên sáng kiến", "Tác giả", "Đơn vị", "Ngày đề xuất", "Trạng thái", "Ngày công nhận"):
        table.add_column(column, justify="right" if column == "Số" else "left")
    for row in rows:
        table.add_row(str(row.id), row.title, row.authors, row.unit or NO_UNIT, f"{row.proposed_on:%d/%m/%Y}",
                      RECOGNISED if row.recognised_on else WAITING,
                      f"{row.recognised_on:%d/%m/%Y}" if row.recognised_on else "")
    out.print(table)
    out.print(note(rows), markup=False)


@initiatives_app.command("export")
def initiatives_export(
    year: YearOption = None,
    recognised: RecognisedOption = False,
    file: Annotated[Path | None, typer.Option("--out", help="Tệp Excel sẽ ghi (mặc định: sang-kien[-NĂM].xlsx).")]
    = None,
) -> None:
    """Xuất các sáng kiến ra tệp Excel, để xét đề xuất khen thưởng."""

    async def work(settings: Settings, database: Database) -> tuple[Path, int]:
        period = _period(year, settings)
        target = file or Path(f"sang-kien-{year}.xlsx" if year is not None else "sang-kien.xlsx")
        if target.suffix.lower() != ".xlsx":
            raise CommandError(f"--out cần là một tệp .xlsx, ví dụ sang-kien-{year or 2026}.xlsx.")
        rows = await _rows(settings, database, period, recognised)
        today = datetime.now(UTC).astimezone(settings.zone).date()
        span = (period.year, period.first_day, period.last_day) if period is not None else None
        data = await asyncio.to_thread(initiatives_workbook, rows, commune=settings.commune_name, day=today,
                                       year=span)
        try:
            target.write_bytes(data)
        except OSError as exc:
            raise CommandError(f"Không ghi được tệp {target} (--out): {exc.strerror}.") from None
        return target, len(rows)

    target, count = _run(work)
    out.print(f"Đã xuất {count} sáng kiến ra {target}.", markup=False)
