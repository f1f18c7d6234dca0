"""The `hocvuso` command: chat in the terminal, run the bot, manage the database and content."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from bot.app import build_services
from bot.logs import configure_logging
from bot.settings import Settings, SettingsError, load_settings
from content.loader import ContentError, load_catalog
from handlers.dispatcher import Dispatcher
from storage import migrate
from storage.db import Database

app = typer.Typer(help="hocvuso – trợ lý Bình dân học vụ số.", no_args_is_help=True, add_completion=False)
db_app = typer.Typer(help="Cơ sở dữ liệu.", no_args_is_help=True)
content_app = typer.Typer(help="Nội dung bài học.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(content_app, name="content")

err = Console(stderr=True)


def run_event_loop(main: Coroutine[Any, Any, None]) -> None:
    """uvloop where it exists (Linux, macOS): about a fifth less CPU per update than asyncio's loop
    in benchmarks/telegram_bench.py; the standard loop elsewhere (Windows)."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
    else:
        uvloop.run(main)


def _settings() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        err.print(f"[red]{exc}[/red]", highlight=False)
        raise typer.Exit(2) from None


def _fail_on_content(exc: ContentError) -> None:
    err.print(f"[red]Nội dung có {len(exc.problems)} lỗi:[/red]", highlight=False)
    for problem in exc.problems:
        err.print(f"  {problem}", highlight=False, markup=False)
    raise typer.Exit(2)


@app.command()
def chat(
    user: Annotated[str, typer.Option("--user", "-u", help="Tên người dùng thử (mỗi tên một người).")] = "ban",
) -> None:
    """Trò chuyện với bot ngay trong cửa sổ dòng lệnh (dùng SQLite mặc định)."""
    from bot.channels.console import run_console

    settings = _settings()

    async def _main() -> None:
        try:
            services = await build_services(settings)
        except ContentError as exc:
            _fail_on_content(exc)
            return
        try:
            await run_console(Dispatcher(services), user)
        finally:
            await services.database.dispose()

    asyncio.run(_main())


@app.command()
def run() -> None:
    """Chạy bot trên các kênh đã cấu hình (Telegram: long polling, hoặc webhook khi có HOCVUSO_WEBHOOK_URL)."""
    from bot.runtime import NoChannelConfigured, run_until_signalled

    settings = _settings()
    secrets = [s.get_secret_value() for s in (settings.telegram_token, settings.webhook_secret) if s]
    configure_logging(logging.INFO, secrets)
    try:
        run_event_loop(run_until_signalled(settings))
    except NoChannelConfigured:
        err.print("Chưa cấu hình kênh nào: hãy đặt HOCVUSO_TELEGRAM_TOKEN (xem README). "
                  "Muốn thử ngay trong cửa sổ này thì dùng: hocvuso chat", highlight=False)
        raise typer.Exit(2) from None
    except ContentError as exc:
        _fail_on_content(exc)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Áp dụng các bản nâng cấp cấu trúc cơ sở dữ liệu (migration)."""
    settings = _settings()

    async def _main() -> str | None:
        database = Database(settings.database_url)
        try:
            await migrate.upgrade(database.engine)
            return await migrate.current_revision(database.engine)
        finally:
            await database.dispose()

    revision = asyncio.run(_main())
    typer.echo(f"Cơ sở dữ liệu đã ở phiên bản mới nhất ({revision}).")


@content_app.command("check")
def content_check(
    directory: Annotated[Path | None, typer.Argument(help="Thư mục nội dung khác (mặc định: content/).")] = None,
) -> None:
    """Kiểm tra mọi tệp bài học và khóa học."""
    try:
        catalog = load_catalog(directory or _settings().content_dir)
    except ContentError as exc:
        _fail_on_content(exc)
        return
    lessons = len(catalog.lessons)
    questions = sum(len(lesson.quiz) for lesson in catalog.lessons.values())
    typer.echo(f"Nội dung hợp lệ: {len(catalog.courses)} khóa học, {lessons} bài học, {questions} câu hỏi.")


def _content_root() -> Path:
    from content.loader import CONTENT_DIR

    return _settings().content_dir or CONTENT_DIR


@content_app.command("export")
def content_export(
    file: Annotated[Path, typer.Argument(help="Tệp Excel sẽ ghi, ví dụ ngan-hang-cau-hoi.xlsx.")],
) -> None:
    """Xuất mọi bài học và câu hỏi ra một tệp Excel để cán bộ sửa."""
    from content.spreadsheet import export_workbook

    try:
        catalog = load_catalog(_content_root())
    except ContentError as exc:
        _fail_on_content(exc)
        return
    export_workbook(catalog, file)
    questions = sum(len(lesson.quiz) for lesson in catalog.lessons.values())
    typer.echo(f"Đã xuất {len(catalog.lessons)} bài học, {questions} câu hỏi ra {file}.")


@content_app.command("import")
def content_import(
    file: Annotated[Path, typer.Argument(help="Tệp Excel đã sửa (cùng mẫu với tệp xuất ra).")],
) -> None:
    """Nhập lại tệp Excel: chỉ ghi khi cả tệp hợp lệ; báo từng lỗi theo trang, dòng, cột."""
    from content.spreadsheet import SpreadsheetError, import_workbook

    try:
        result = import_workbook(file, _content_root())
    except SpreadsheetError as exc:
        err.print(f"[red]Tệp có {len(exc.problems)} lỗi, chưa thay đổi gì:[/red]", highlight=False)
        for problem in exc.problems:
            err.print(f"  {problem}", highlight=False, markup=False)
        raise typer.Exit(2) from None
    typer.echo(f"Bài mới: {len(result.new)}; đã sửa: {len(result.changed)}; không đổi: {len(result.unchanged)}.")
    for label, ids in (("Mới", result.new), ("Đã sửa", result.changed)):
        if ids:
            typer.echo(f"{label}: {', '.join(ids)}")


@content_app.command("stats")
def content_stats() -> None:
    """Thống kê độ dài: số thẻ, số chữ mỗi thẻ, số câu hỏi của từng bài."""
    from rich.table import Table

    from content.stats import lesson_stats

    try:
        catalog = load_catalog(_content_root())
    except ContentError as exc:
        _fail_on_content(exc)
        return
    table = Table(title="Nội dung bài học")
    for column in ("Mã bài", "Thẻ", "Chữ (tổng)", "Chữ/thẻ (TB)", "Chữ/thẻ (nhiều nhất)", "Ký tự/thẻ (nhiều nhất)",
                   "Câu hỏi"):
        table.add_column(column, justify="left" if column == "Mã bài" else "right")
    rows = lesson_stats(catalog)
    for row in rows:
        table.add_row(row.lesson_id, str(row.cards), str(row.words), f"{row.words_per_card:.0f}",
                      str(row.most_words_in_a_card), str(row.longest_card), str(row.questions))
    table.add_row("Tổng", str(sum(r.cards for r in rows)), str(sum(r.words for r in rows)), "", "", "",
                  str(sum(r.questions for r in rows)))
    Console(width=140).print(table)


def main() -> None:
    configure_logging(logging.WARNING)
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
