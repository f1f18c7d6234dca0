"""The `hocvuso` command: chat in the terminal, run the bot, manage the database and content."""

from __future__ import annotations

import asyncio
import logging
import sys
import traceback
import unicodedata
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console

from bot.app import build_services
from bot.cli_access import audit, invite_app, roles_app
from bot.cli_activities import activities_app
from bot.cli_certificate import certificate_app
from bot.cli_deadlines import deadlines_app, reminders_app
from bot.cli_directory import directory_app
from bot.cli_initiatives import initiatives_app
from bot.cli_outbox import outbox_status
from bot.cli_report import report
from bot.logs import (
    configure_from_settings,
    configure_logging,
    discard_startup_logs,
    redact,
    release_startup_logs,
    secrets_of,
)
from bot.settings import Settings, SettingsError, composed, load_settings
from bot.startup import describe
from content.loader import ContentError, load_catalog
from handlers.dispatcher import Dispatcher
from storage import migrate
from storage.db import Database
from storage.models import ChannelAccount, ConversationState, column_length

T = TypeVar("T")

# Locals in a traceback would show the token (PTB keeps it in local variables): never print them.
app = typer.Typer(help="hocvuso – trợ lý Bình dân học vụ số.", no_args_is_help=True, add_completion=False,
                  pretty_exceptions_show_locals=False)
db_app = typer.Typer(help="Cơ sở dữ liệu.", no_args_is_help=True)
content_app = typer.Typer(help="Nội dung bài học.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(content_app, name="content")
app.add_typer(directory_app, name="directory")
app.add_typer(invite_app, name="invite")
app.add_typer(roles_app, name="roles")
app.add_typer(certificate_app, name="certificate")
app.add_typer(deadlines_app, name="deadlines")
app.add_typer(reminders_app, name="reminders")
app.add_typer(activities_app, name="activities")
app.add_typer(initiatives_app, name="initiatives")
app.command("audit")(audit)
app.command("report")(report)
app.command("outbox")(outbox_status)

err = Console(stderr=True)
# A console person's name is their chat id; PostgreSQL keeps at most this many characters of it.
CONSOLE_USER_MAX = min(column_length(ChannelAccount, "external_id"), column_length(ConversationState, "external_id"))


def run_event_loop(main: Coroutine[Any, Any, None]) -> None:
    """uvloop where it exists (Linux, macOS): about a fifth less CPU per update than asyncio's loop
    in benchmarks/telegram_bench.py; the standard loop elsewhere (Windows)."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
    else:
        uvloop.run(main)


def _say(text: str) -> None:
    """One message on stderr, never wrapped (a terminal narrower than the line must not split it)."""
    err.print(text, style="red", markup=False, highlight=False, soft_wrap=True)


def _settings() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        _say(str(exc))
        raise typer.Exit(2) from None


def _start(settings: Settings, call: Callable[[], T], passes: tuple[type[Exception], ...] = ()) -> T:
    """Run a command's event loop; anything that escapes it ends the command with one line and exit 1.

    The line (bot/startup.py) names the setting or the file and never a secret; HOCVUSO_DEBUG=1 adds
    what was logged and the traceback, with the secrets redacted. Exceptions in `passes` are the
    caller's to tell.
    """
    try:
        return call()
    except ContentError as exc:
        discard_startup_logs()
        _fail_on_content(exc)
    except (typer.Exit, typer.Abort, *passes):
        discard_startup_logs()
        raise
    except (Exception, SystemExit) as exc:
        # SystemExit too: uvicorn calls sys.exit inside the event loop when it cannot listen.
        if isinstance(exc, SystemExit) and not exc.code:
            raise
        if settings.debug:
            release_startup_logs()
            sys.stderr.write(redact("".join(traceback.format_exception(exc)), secrets_of(settings)))
        else:
            discard_startup_logs()
        _say(describe(exc, settings))
        raise typer.Exit(1) from None
    finally:
        release_startup_logs()  # nothing is lost on any other way out (no-op after a discard)


def _console_user(raw: str) -> str:
    """The --user of `hocvuso chat`: composed, stripped, and short enough to be stored as a chat id."""
    user = composed(raw)
    if not 1 <= len(user) <= CONSOLE_USER_MAX or any(unicodedata.category(c) in ("Cc", "Cs") for c in user):
        _say(f"Tên người dùng thử (--user) cần từ 1 đến {CONSOLE_USER_MAX} ký tự, không có ký tự điều khiển. "
             "Bạn chọn tên khác giúp mình nhé.")
        raise typer.Exit(2)
    return user


def _fail_on_content(exc: ContentError) -> NoReturn:
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
    user = _console_user(user)
    configure_from_settings(settings, logging.WARNING)

    async def _main() -> None:
        services = await build_services(settings)
        release_startup_logs()  # started: a failing turn is logged at once
        try:
            await run_console(Dispatcher(services), user)
        finally:
            await services.database.dispose()

    _start(settings, lambda: asyncio.run(_main()))


@app.command()
def run() -> None:
    """Chạy bot trên các kênh đã cấu hình (Telegram, Zalo: long polling, hoặc webhook khi có HOCVUSO_WEBHOOK_URL)."""
    from bot.runtime import NoChannelConfigured, run_until_signalled

    settings = _settings()
    configure_from_settings(settings, logging.INFO)
    try:
        _start(settings, lambda: run_event_loop(run_until_signalled(settings)), passes=(NoChannelConfigured,))
    except NoChannelConfigured:
        _say("Chưa cấu hình kênh nào: hãy đặt HOCVUSO_TELEGRAM_TOKEN hoặc HOCVUSO_ZALO_TOKEN (xem README). "
             "Muốn thử ngay trong cửa sổ này thì dùng: hocvuso chat")
        raise typer.Exit(2) from None


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Áp dụng các bản nâng cấp cấu trúc cơ sở dữ liệu (migration)."""
    settings = _settings()
    configure_from_settings(settings, logging.WARNING)

    async def _main() -> str | None:
        database = Database(settings.database_url)
        try:
            await migrate.upgrade(database.engine)
            return await migrate.current_revision(database.engine)
        finally:
            await database.dispose()

    revision = _start(settings, lambda: asyncio.run(_main()))
    typer.echo(f"Cơ sở dữ liệu đã ở phiên bản mới nhất ({revision}).")


@content_app.command("check")
def content_check(
    directory: Annotated[Path | None, typer.Argument(help="Thư mục nội dung khác (mặc định: content/).")] = None,
) -> None:
    """Kiểm tra mọi tệp bài học, khóa học và tệp liên hệ của xã (local-contacts.yaml)."""
    from content.contacts import CONTACTS_FILE, unset_names

    try:
        catalog = load_catalog(directory or _settings().content_dir, strict=True)
    except ContentError as exc:
        _fail_on_content(exc)
        return
    lessons = len(catalog.lessons)
    questions = sum(len(lesson.quiz) for lesson in catalog.lessons.values())
    typer.echo(f"Nội dung hợp lệ: {len(catalog.courses)} khóa học, {lessons} bài học, {questions} câu hỏi.")
    if unset := unset_names(catalog.contacts):
        typer.echo(f"Liên hệ của xã chưa có số điện thoại, địa chỉ ({CONTACTS_FILE}): {', '.join(unset)}; "
                   "bài học sẽ chỉ chỗ hỏi thay.")


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
