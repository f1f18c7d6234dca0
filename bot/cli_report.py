"""`hocvuso report`: the yearly report's three files for the commune, an organisation or a village."""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from bot.cli_access import CommandError, _run, _unit_named
from bot.settings import Settings
from content.loader import load_catalog
from content.schema import answer_key
from reports.report_files import ReportRequest, make_report
from storage.db import Database
from storage.models import Organisation, Village
from storage.report import Scope, period_year_of, reporting_period

out = Console(highlight=False, width=None if sys.stdout.isatty() else 200)


def report(
    year: Annotated[int | None, typer.Option("--year", help="Năm báo cáo (mặc định: kỳ đang chạy).")] = None,
    org: Annotated[str | None, typer.Option("--org", help="Tên tổ chức (mặc định: toàn xã).")] = None,
    village: Annotated[str | None, typer.Option("--village", help="Tên thôn/xóm (mặc định: toàn xã).")] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Thư mục ghi ba tệp.")] = Path("."),
    summary: Annotated[bool, typer.Option("--summary", help=(
        "Báo cáo tóm tắt: đếm đủ mọi số liệu nhưng không kèm danh sách từng hộ (cho dữ liệu rất lớn)."))] = False,
) -> None:
    """Lập báo cáo năm (Excel, Word, biểu đồ PNG) cho toàn xã, một tổ chức (--org) hoặc một thôn (--village)."""

    async def work(settings: Settings, database: Database) -> list[Path]:
        if org is not None and village is not None:
            raise CommandError("Chọn một đơn vị: --org hoặc --village, không cả hai.")
        if year is not None and not 2000 <= year <= 2100:
            raise CommandError("--year cần là một năm từ 2000 đến 2100.")
        scope = await _scope(database, settings)
        now = datetime.now(UTC).astimezone(settings.zone)
        period = reporting_period(year or period_year_of(now, settings.deadline, settings.zone), settings.deadline,
                                  settings.zone)
        catalog = load_catalog(settings.content_dir)
        lessons = catalog.ordered_lessons()
        request = ReportRequest(
            database_url=settings.database_url, scope=scope, period=period, core=catalog.core_lessons(period.last_day),
            lesson_order=[lesson.id for lesson in lessons], made_at=now, commune_name=settings.commune_name,
            lesson_titles={lesson.id: lesson.title for lesson in lessons},
            question_texts={answer_key(lesson.id, question.id): question.question
                            for lesson in lessons for question in lesson.quiz},
            households=not summary,
        )
        with out.status("Đang đếm số liệu và lập tệp…"):
            _, files = await asyncio.to_thread(make_report, request)
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
            written = []
            for name, data in files.named():
                path = out_dir / name
                path.write_bytes(data)
                written.append(path)
        except OSError as exc:
            raise CommandError(f"Không ghi được vào thư mục {out_dir} (--out): {exc.strerror}.") from None
        return written

    async def _scope(database: Database, settings: Settings) -> Scope:
        if org is None and village is None:
            return Scope("commune", None, settings.commune_name)
        model = Organisation if org is not None else Village
        async with database.session() as session:
            unit_id = await _unit_named(session, model, org or village or "")
            unit = await session.get(model, unit_id)
        assert unit is not None
        return Scope("organisation" if org is not None else "village", unit_id, unit.name)

    for path in _run(work):
        out.print(str(path), markup=False)
