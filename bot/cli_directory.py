"""`hocvuso directory template|import|export`: the commune's directory (thôn xóm, tổ chức, hộ gia
đình, dân số) kept in a workbook by the commune's IT and imported whole."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from sqlalchemy.exc import IntegrityError

from bot.logs import configure_from_settings
from storage import migrate
from storage.db import Database
from storage.directory import (
    CHECKING,
    HOUSEHOLDS,
    ORGANISATIONS,
    POPULATION,
    VILLAGES,
    DirectoryError,
    ImportReport,
    SheetRows,
    SheetSummary,
    export_directory,
    import_directory,
)
from storage.directory import Progress as ProgressCallback

# reports.directory_book (openpyxl, about 0.17 s) is imported inside the commands: every other `hocvuso`
# command would pay for it at start once this app is added to bot.cli.

directory_app = typer.Typer(help="Danh bạ của xã: thôn xóm, tổ chức, hộ gia đình, dân số (tệp Excel).",
                            no_args_is_help=True)

err = Console(stderr=True)
# A file with hundreds of errors is usually one mistake repeated: the first ones tell it.
LISTED_ERRORS = 50
LISTED_MISSING = 50
RACE = ("Dữ liệu vừa thay đổi trong lúc nhập (có thể một hộ vừa tạo trên bot đúng mã hộ trong tệp); chưa ghi gì, "
        "hãy chạy lại lệnh.")


def _say(text: str, style: str | None = None) -> None:
    """One line on stderr, never wrapped, never read as Rich markup (names may hold brackets)."""
    err.print(text, style=style, markup=False, highlight=False, soft_wrap=True)


def _fail(lines: Sequence[str]) -> NoReturn:
    for line in lines:
        _say(line, "red")
    raise typer.Exit(1)


def _write(save: Callable[[], None]) -> None:
    from reports.directory_book import BookError

    try:
        save()
    except BookError as exc:
        _fail([str(exc)])


@directory_app.command("template")
def directory_template(
    file: Annotated[Path, typer.Argument(help="Tệp Excel sẽ ghi, ví dụ danh-ba.xlsx.")],
) -> None:
    """Ghi tệp Excel mẫu để điền: hướng dẫn và tên cột của từng trang, chưa có dòng nào."""
    from bot.cli import _settings
    from reports.directory_book import write_template

    settings = _settings()
    _write(lambda: write_template(file, code_length=settings.household_code_length))
    typer.echo(f"Đã ghi tệp mẫu {file}. Điền xong thì xem trước bằng: hocvuso directory import {file} --dry-run")


@directory_app.command("export")
def directory_export(
    file: Annotated[Path, typer.Argument(help="Tệp Excel sẽ ghi, ví dụ danh-ba.xlsx.")],
) -> None:
    """Xuất danh bạ đang lưu ra tệp Excel (cùng mẫu với tệp nhập), để sửa rồi nhập lại."""
    from bot.cli import _settings, _start
    from reports.directory_book import write_directory

    settings = _settings()
    if file.suffix.lower() != ".xlsx":
        _fail([f'Tên tệp "{file}" cần có đuôi .xlsx.'])
    configure_from_settings(settings, logging.WARNING)

    async def _main() -> dict[str, SheetRows]:
        database = Database(settings.database_url)
        try:
            await migrate.upgrade(database.engine)
            return await export_directory(database)
        finally:
            await database.dispose()

    sheets = _start(settings, lambda: asyncio.run(_main()))
    _write(lambda: write_directory(file, sheets, code_length=settings.household_code_length))
    counts = ", ".join(f"{len(sheets[sheet].rows)} {what}" for sheet, what in
                       ((VILLAGES, "thôn/xóm"), (ORGANISATIONS, "tổ chức"), (HOUSEHOLDS, "hộ gia đình")))
    typer.echo(f"Đã xuất {counts} ra {file}.")


@directory_app.command("import")
def directory_import(
    file: Annotated[Path, typer.Argument(help="Tệp .xlsx theo mẫu, hoặc một trang dạng .csv.")],
    prune: Annotated[bool, typer.Option("--prune", help="Xóa khỏi hocvuso các dòng đã lưu mà tệp không có.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Chỉ kiểm tra và cho biết sẽ thay đổi gì.")] = False,
) -> None:
    """Nhập danh bạ từ tệp: kiểm tra cả tệp trước, có lỗi thì không ghi gì; đúng thì ghi một lần."""
    from bot.cli import _settings, _start
    from reports.directory_book import BookError, read_directory_file

    settings = _settings()
    try:
        sheets = read_directory_file(file)
    except BookError as exc:
        _fail([str(exc)])
    configure_from_settings(settings, logging.WARNING)

    async def _main() -> ImportReport:
        database = Database(settings.database_url)
        try:
            await migrate.upgrade(database.engine)
            with _progress_bar() as progress:
                return await import_directory(
                    database, sheets, code_length=settings.household_code_length, clock=lambda: datetime.now(UTC),
                    prune=prune, dry_run=dry_run, progress=progress,
                )
        finally:
            await database.dispose()

    try:
        report = _start(settings, lambda: asyncio.run(_main()), passes=(DirectoryError, IntegrityError))
    except DirectoryError as exc:
        _fail(_error_lines(exc))
    except IntegrityError:
        _fail([RACE])
    for line in report_lines(report, dry_run=dry_run):
        typer.echo(line)


@contextmanager
def _progress_bar() -> Iterator[ProgressCallback]:
    """A progress bar on a terminal (nothing when the output goes to a file), fed by the import."""
    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=err, transient=True,
                   disable=not err.is_terminal)
    with bar:
        task = bar.add_task(CHECKING, total=None)

        def show(what: str, done: int, total: int) -> None:
            bar.update(task, description=what, completed=done, total=total or None)

        yield show


def _error_lines(exc: DirectoryError) -> list[str]:
    problems = exc.problems
    lines = [f"Tệp có {len(problems)} lỗi, chưa thay đổi gì:"]
    lines += [f"  {problem}" for problem in problems[:LISTED_ERRORS]]
    if len(problems) > LISTED_ERRORS:
        lines.append(f"  … và {len(problems) - LISTED_ERRORS} lỗi khác.")
    return lines


def _summary_line(summary: SheetSummary) -> str:
    if summary.sheet == POPULATION:
        line = (f"{summary.sheet} (từng số liệu): thêm {summary.added}, sửa {summary.updated}, "
                f"xóa {summary.cleared}, giữ nguyên {summary.unchanged}")
    else:
        line = f"{summary.sheet}: thêm {summary.added}, sửa {summary.updated}, giữ nguyên {summary.unchanged}"
    if summary.missing:
        line += f"; tệp thiếu {summary.missing} dòng đã lưu"
    return line + "."


def report_lines(report: ImportReport, *, dry_run: bool) -> list[str]:
    """What the operator reads after an import (or a dry run), in Vietnamese."""
    lines = ["Chạy thử (--dry-run): chưa ghi gì. Nếu nhập thật thì:"] if dry_run else []
    lines += [_summary_line(summary) for summary in report.summaries]
    if report.missing:
        count = len(report.missing)
        if not report.pruned:
            lines.append(f"{count} dòng đã lưu mà tệp không có; hocvuso vẫn giữ (nhập với --prune để xóa):")
        else:
            lines.append(f"{'Sẽ xóa' if dry_run else 'Đã xóa'} {count} dòng đã lưu mà tệp không có:")
        lines += [f"  {row}" for row in report.missing[:LISTED_MISSING]]
        if count > LISTED_MISSING:
            lines.append(f"  … và {count - LISTED_MISSING} dòng khác.")
    if report.changes == 0:
        lines.append("Không có gì thay đổi: dữ liệu đã lưu giống tệp.")
    elif dry_run:
        lines.append(f"Sẽ có {report.changes} thay đổi. Bỏ --dry-run để nhập.")
    else:
        lines.append(f"Đã nhập xong: {report.changes} thay đổi.")
    return lines
