"""`hocvuso deadlines add|list|edit|remove` and `hocvuso reminders preview`.

The same checks as /hanchot in chat (storage/deadlines.py); a mistake is one Vietnamese line and exit
code 2. The preview lists who would be reminded of what at a moment, and sends and stores nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table

from bot.cli_access import CommandError, _run, _unit_named, out
from bot.settings import Settings, composed
from handlers.deadlines import left_text, plan_reminders, status_of
from storage import deadlines
from storage.db import Database
from storage.deadlines import DeadlineError
from storage.models import Deadline, Organisation

deadlines_app = typer.Typer(help="Hạn chót báo cáo và lịch nhắc.", no_args_is_help=True)
reminders_app = typer.Typer(help="Tin nhắc hạn báo cáo.", no_args_is_help=True)

AUDIENCE_NAMES = {"all": "mọi tổ chức và thôn/xóm", "organisations": "một số tổ chức", "staff": "chỉ cán bộ xã"}
ID_MAX = 2**31 - 1  # an integer column on PostgreSQL
ROLE_NAMES = {"leader": "lãnh đạo tổ chức", "village_head": "trưởng thôn", "staff": "cán bộ xã", "admin": "quản trị"}


def parse_days(text: str) -> list[int]:
    """'30,14,7,3,1,0' -> [30, 14, 7, 3, 1, 0] (checked: 0 to 365, at least one)."""
    parts = [part.strip() for part in text.split(",")]
    if not parts or not all(part.isascii() and part.isdecimal() and len(part) <= 3 for part in parts):
        raise CommandError("--days cần các số ngày cách nhau bằng dấu phẩy, ví dụ 30,14,7,3,1,0.")
    try:
        return deadlines.check_days(int(part) for part in parts)
    except DeadlineError as error:
        raise CommandError(f"--days: {error}") from None


def parse_when(text: str, today: datetime, settings: Settings) -> tuple[int, int, int | None]:
    try:
        day, month, year = deadlines.parse_date(text)
        deadlines.check_future(day, month, year, today.astimezone(settings.zone).date())
    except DeadlineError as error:
        raise CommandError(f"--date {text!r}: {error}") from None
    return day, month, year


def _title(text: str) -> str:
    try:
        return deadlines.clean_title(composed(text))
    except DeadlineError as error:
        raise CommandError(f"--title: {error}") from None


def _hour(hour: int) -> int:
    if not 0 <= hour <= 23:
        raise CommandError("--hour cần từ 0 đến 23 (giờ của xã).")
    return hour


@deadlines_app.command("add")
def deadlines_add(
    title: Annotated[str, typer.Option("--title", help="Tên hạn chót, ví dụ \"Sơ kết 3 năm Phong trào\".")],
    when: Annotated[str, typer.Option("--date", help="DD/MM: hằng năm; DD/MM/YYYY: một lần.")],
    days: Annotated[str, typer.Option("--days", help="Nhắc trước bao nhiêu ngày (0: đúng ngày).")] = "30,14,7,3,1,0",
    hour: Annotated[int, typer.Option("--hour", help="Giờ nhắc (0-23, giờ của xã).")] = 8,
    audience: Annotated[str, typer.Option("--audience", help="all, organisations hoặc staff.")] = "all",
    org: Annotated[list[str] | None, typer.Option("--org", help="Tên tổ chức phải nộp (với --audience "
                                                                "organisations); lặp lại cho nhiều tổ chức.")] = None,
) -> None:
    """Thêm một hạn chót: hằng năm (--date 10/12) hoặc một lần (--date 30/06/2027)."""

    async def work(settings: Settings, database: Database) -> tuple[int, str]:
        now = datetime.now(UTC)
        clean = _title(title)
        day, month, year = parse_when(when, now, settings)
        reminder_days, reminder_hour = parse_days(days), _hour(hour)
        if audience not in deadlines.AUDIENCES:
            raise CommandError(f"--audience cần là một trong: {', '.join(deadlines.AUDIENCES)}.")
        if audience == "organisations" and not org:
            raise CommandError("--audience organisations cần ít nhất một --org \"Tên tổ chức\".")
        if audience != "organisations" and org:
            raise CommandError("--org chỉ dùng với --audience organisations.")
        async with database.session() as session:
            organisation_ids = [await _unit_named(session, Organisation, name) for name in org or []]
            deadline = await deadlines.add_deadline(
                session, title=clean, day=day, month=month, year=year, now=now, zone=settings.zone,
                remind_days=reminder_days, remind_hour=reminder_hour, audience=audience,
                organisation_ids=organisation_ids)
        return deadline.id, _date_text(deadline)  # type: ignore[return-value]

    deadline_id, due = _run(work)
    out.print(f"Đã thêm hạn chót số {deadline_id}: {due}. Xem: hocvuso deadlines list", markup=False)


def _date_text(deadline: Deadline) -> str:
    if deadline.year is None:
        return f"{deadline.day:02d}/{deadline.month:02d} hằng năm"
    return f"{deadline.day:02d}/{deadline.month:02d}/{deadline.year} (một lần)"


@deadlines_app.command("list")
def deadlines_list() -> None:
    """Liệt kê các hạn chót, kỳ tới, lịch nhắc và số đơn vị đã nộp."""

    async def work(settings: Settings, database: Database) -> list[tuple[str, ...]]:
        today = datetime.now(UTC).astimezone(settings.zone).date()
        rows = []
        async with database.session() as session:
            for deadline in await deadlines.active_deadlines(session):
                status = await status_of(session, deadline, today)
                due = (f"{status.due_on:%d/%m/%Y} ({left_text((status.due_on - today).days)})"
                       if status.due_on else "đã qua")
                handed = f"{len(status.done)}/{len(status.done) + len(status.todo)}" if status.due_on else ""
                who = AUDIENCE_NAMES.get(deadline.audience, deadline.audience)
                if deadline.audience == "organisations":
                    names = await deadlines.unit_names(session, [f"org:{i}" for i in deadline.organisation_ids], "")
                    who = "\n".join(names.values())
                rows.append((str(deadline.id), deadline.title, due, "hằng năm" if deadline.year is None else "một lần",
                             ", ".join(map(str, deadline.remind_days)), f"{deadline.remind_hour:02d}:00", who,
                             "tạm dừng" if deadline.paused else "đang nhắc", handed))
        return rows

    rows = _run(work)
    table = Table(title="Hạn chót báo cáo")
    for column in ("Mã", "Tên", "Kỳ tới", "Lặp", "Nhắc trước (ngày)", "Giờ", "Phải nộp", "Trạng thái", "Đã nộp"):
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    out.print(table if rows else "Chưa có hạn chót nào. Thêm: hocvuso deadlines add --title ... --date DD/MM")


def _check_id(deadline_id: int) -> None:
    if not 1 <= deadline_id <= ID_MAX:
        raise CommandError(f"Không có hạn chót số {deadline_id} (xem: hocvuso deadlines list).")


@deadlines_app.command("edit")
def deadlines_edit(
    deadline_id: Annotated[int, typer.Argument(help="Mã hạn chót (xem: hocvuso deadlines list).")],
    title: Annotated[str | None, typer.Option("--title", help="Tên mới.")] = None,
    when: Annotated[str | None, typer.Option("--date", help="Ngày mới: DD/MM hoặc DD/MM/YYYY.")] = None,
    days: Annotated[str | None, typer.Option("--days", help="Lịch nhắc mới, ví dụ 14,7,1,0.")] = None,
    hour: Annotated[int | None, typer.Option("--hour", help="Giờ nhắc mới (0-23).")] = None,
    pause: Annotated[bool, typer.Option("--pause", help="Tạm dừng nhắc.")] = False,
    resume: Annotated[bool, typer.Option("--resume", help="Nhắc lại.")] = False,
) -> None:
    """Đổi tên, ngày, lịch nhắc, giờ nhắc, hoặc tạm dừng / bật lại một hạn chót."""

    async def work(settings: Settings, database: Database) -> str:
        if pause and resume:
            raise CommandError("Chọn một: --pause hoặc --resume.")
        if title is None and when is None and days is None and hour is None and not pause and not resume:
            raise CommandError("Không có gì để đổi: thêm --title, --date, --days, --hour, --pause hoặc --resume.")
        now = datetime.now(UTC)
        changes = {
            "title": _title(title) if title is not None else None,
            "when": parse_when(when, now, settings) if when is not None else None,
            "remind_days": parse_days(days) if days is not None else None,
            "remind_hour": _hour(hour) if hour is not None else None,
            "paused": True if pause else False if resume else None,
        }
        _check_id(deadline_id)
        async with database.session() as session:
            deadline = await deadlines.edit_deadline(session, deadline_id, now=now, zone=settings.zone, **changes)
        if deadline is None:
            raise CommandError(f"Không có hạn chót số {deadline_id} (xem: hocvuso deadlines list).")
        return f"{deadline.title}: {_date_text(deadline)}"

    out.print(f"Đã lưu: {_run(work)}", markup=False)


@deadlines_app.command("remove")
def deadlines_remove(
    deadline_id: Annotated[int, typer.Argument(help="Mã hạn chót (xem: hocvuso deadlines list).")],
) -> None:
    """Xóa một hạn chót: không còn tin nhắc nào cho nó (hạn mặc định không tự tạo lại)."""

    async def work(_settings: Settings, database: Database) -> str:
        _check_id(deadline_id)
        async with database.session() as session:
            deadline = await deadlines.remove_deadline(session, deadline_id, datetime.now(UTC))
        if deadline is None:
            raise CommandError(f"Không có hạn chót số {deadline_id} (xem: hocvuso deadlines list).")
        return deadline.title

    out.print(f"Đã xóa hạn chót: {_run(work)}", markup=False)


def parse_moment(text: str, settings: Settings) -> datetime:
    """'2026-12-03T08:00' in the commune's zone (or with its own offset) -> an aware moment."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise CommandError(f"--at {text!r}: cần dạng 2026-12-03T08:00 (giờ của xã).") from None
    return moment.replace(tzinfo=settings.zone) if moment.tzinfo is None else moment


@reminders_app.command("preview")
def reminders_preview(
    at: Annotated[str, typer.Option("--at", help="Thời điểm, ví dụ 2026-12-03T08:00 (giờ của xã).")],
) -> None:
    """Xem ai sẽ nhận tin nhắc nào vào một thời điểm (không gửi, không ghi gì)."""

    async def work(settings: Settings, database: Database) -> tuple[datetime, list[tuple[str, ...]]]:
        from bot.app import handler_config

        moment = parse_moment(at, settings)
        config = handler_config(settings)
        rows = []
        async with database.session() as session:
            for plan in await plan_reminders(session, config, moment.astimezone(UTC)):
                reminder = plan.reminder
                left = left_text(deadlines.days_left(reminder.due_on, moment, settings.zone))
                for recipient in plan.recipients:
                    rows.append((reminder.title, f"{reminder.due_on:%d/%m/%Y}", left,
                                 f"{reminder.days_before}" + (" (muộn)" if reminder.late else ""),
                                 str(recipient.person_id), ROLE_NAMES.get(recipient.role, recipient.role),
                                 plan.names.get(recipient.unit, "?")))
        return moment.astimezone(settings.zone), rows

    moment, rows = _run(work)
    if not rows:
        out.print(f"Lúc {moment:%H:%M ngày %d/%m/%Y} không có tin nhắc nào đến hạn.", markup=False)
        return
    table = Table(title=f"Tin nhắc lúc {moment:%H:%M ngày %d/%m/%Y} (xem trước, chưa gửi)")
    for column in ("Hạn chót", "Kỳ", "Còn", "Nhắc trước (ngày)", "Người nhận (mã)", "Vai trò", "Đơn vị"):
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    out.print(table)
    out.print(f"Tổng: {len(rows)} tin.", markup=False)
