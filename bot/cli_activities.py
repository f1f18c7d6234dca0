"""`hocvuso activities list|export`: the units' offline activities of a reporting year (/hoatdong in chat).

The list names no resident: who recorded an activity shows as initials, and the members named as
present are counted. The workbook, for staff, lists their names too. A mistake is one Vietnamese line
and exit code 2.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from bot.cli_access import CommandError, _run, _unit_named, out
from bot.settings import Settings
from storage import activities
from storage.activities import ActivityRow, UnitRef
from storage.db import Database
from storage.models import Organisation, Village
from storage.report import Period, period_year_of, reporting_period

activities_app = typer.Typer(help="Hoạt động các đơn vị tổ chức (tuyên truyền, tập huấn, hỗ trợ tại nhà…).",
                             no_args_is_help=True)

YEAR_OPTION = "Năm báo cáo, ví dụ 2026 (mặc định: năm đang chạy, đến hạn 10/12)."
ORG_OPTION = "Tên tổ chức (mặc định: mọi đơn vị)."
VILLAGE_OPTION = "Tên thôn/xóm (mặc định: mọi đơn vị)."


async def _read(settings: Settings, database: Database, year: int | None, org: str | None,
                village: str | None) -> tuple[Period, str, list[ActivityRow]]:
    """The period, the title and the rows asked for (checked: the year, one unit at most, its name)."""
    if org is not None and village is not None:
        raise CommandError("Chọn một đơn vị: --org hoặc --village, không cả hai.")
    if year is not None and not 2000 <= year <= 2100:
        raise CommandError("--year cần là một năm từ 2000 đến 2100.")
    unit: UnitRef | None = None
    title = f"Hoạt động các đơn vị – {settings.commune_name}"
    if org is not None or village is not None:
        model = Organisation if org is not None else Village
        async with database.session() as session:
            unit_id = await _unit_named(session, model, org or village or "")
            found = await session.get(model, unit_id)
        assert found is not None
        unit = UnitRef(organisation_id=unit_id) if org is not None else UnitRef(village_id=unit_id)
        title = f"Hoạt động của {found.name}"
    period = reporting_period(year or period_year_of(datetime.now(UTC), settings.deadline, settings.zone),
                              settings.deadline, settings.zone)
    rows = await database.read(
        lambda connection: activities.activity_rows(connection, period, settings.commune_name, unit=unit))
    return period, title, rows


def _summary(period: Period, rows: list[ActivityRow]) -> str:
    _, everything = activities.tally(rows)
    span = f"Năm báo cáo {period.year} ({period.first_day:%d/%m/%Y} – {period.last_day:%d/%m/%Y})"
    if not rows:
        return f"{span}: chưa có hoạt động nào."
    return (f"{span}: {everything.activities} hoạt động, {everything.participants} lượt người tham dự, "
            f"{everything.named_people} người được ghi tên (không tính trùng).")


@activities_app.command("list")
def activities_list(
    year: Annotated[int | None, typer.Option("--year", help=YEAR_OPTION)] = None,
    org: Annotated[str | None, typer.Option("--org", help=ORG_OPTION)] = None,
    village: Annotated[str | None, typer.Option("--village", help=VILLAGE_OPTION)] = None,
) -> None:
    """Liệt kê hoạt động của năm báo cáo: mọi đơn vị, một tổ chức (--org) hoặc một thôn (--village)."""

    async def work(settings: Settings, database: Database) -> tuple[Period, str, list[ActivityRow]]:
        return await _read(settings, database, year, org, village)

    period, title, rows = _run(work)
    if rows:
        table = Table(title=title)
        for column in ("Mã", "Đơn vị", "Loại", "Ngày", "Tên hoạt động", "Nơi", "Người tham dự",
                       "Thành viên ghi tên", "Người ghi"):
            table.add_column(column)
        for row in rows:
            table.add_row(str(row.id), row.unit_name, row.kind_label, f"{row.held_on:%d/%m/%Y}", row.title,
                          row.place, str(row.participants), str(row.named_count), row.recorded_by)
        out.print(table)
    out.print(_summary(period, rows), markup=False)


@activities_app.command("export")
def activities_export(
    year: Annotated[int | None, typer.Option("--year", help=YEAR_OPTION)] = None,
    org: Annotated[str | None, typer.Option("--org", help=ORG_OPTION)] = None,
    village: Annotated[str | None, typer.Option("--village", help=VILLAGE_OPTION)] = None,
    out_file: Annotated[Path | None, typer.Option("--out", help="Tệp Excel ghi ra (mặc định: hoat-dong-NĂM.xlsx).")]
    = None,
) -> None:
    """Xuất hoạt động của năm báo cáo ra tệp Excel (mỗi hoạt động một dòng, kèm bảng tổng hợp theo đơn vị)."""
    from reports.activities_book import activities_workbook

    async def work(settings: Settings, database: Database) -> tuple[Path, str]:
        if out_file is not None and out_file.suffix.lower() != ".xlsx":
            raise CommandError("--out cần là một tệp .xlsx, ví dụ hoat-dong-2026.xlsx.")
        period, title, rows = await _read(settings, database, year, org, village)
        data = activities_workbook(title, period, rows, names=True)
        path = out_file or Path(f"hoat-dong-{period.year}.xlsx")
        try:
            path.write_bytes(data)
        except OSError as exc:
            raise CommandError(f"Không ghi được tệp {path} (--out): {exc.strerror}.") from None
        return path, _summary(period, rows)

    path, summary = _run(work)
    out.print(str(path), markup=False)
    out.print(summary, markup=False)
