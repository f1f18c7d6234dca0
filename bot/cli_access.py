"""`hocvuso invite|roles|audit`: invitations to roles, who holds which, and the audit log."""

from __future__ import annotations

import asyncio
import logging
import random
import re
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.settings import Settings, composed
from storage import access
from storage.db import Database
from storage.models import ROLES, AuditLog, Organisation, Person, RoleGrant, Village

T = TypeVar("T")

invite_app = typer.Typer(help="Mã mời nhận vai trò.", no_args_is_help=True)
roles_app = typer.Typer(help="Vai trò: ai giữ vai trò nào.", no_args_is_help=True)

ROLE_NAMES = {"leader": "lãnh đạo tổ chức", "village_head": "trưởng thôn", "staff": "cán bộ xã", "admin": "quản trị",
              "digital_team": "thành viên Tổ công nghệ số cộng đồng"}
EXPIRY = re.compile(r"(\d{1,4})\s*([dhm])")
SHORTEST, LONGEST = timedelta(minutes=10), timedelta(days=90)
# Piped into a file or another program, tables keep each row on one line instead of an 80-column wrap.
out = Console(highlight=False, width=None if sys.stdout.isatty() else 200)


class CommandError(Exception):
    """A mistake in the command's options: one Vietnamese line, exit code 2."""


def parse_expiry(text: str) -> timedelta:
    """'7d', '48h' or '30m' -> a duration between 10 minutes and 90 days."""
    match = EXPIRY.fullmatch(text.strip().lower())
    if not match:
        raise CommandError(f"--expires {text!r}: cần dạng như 7d (ngày), 48h (giờ) hoặc 30m (phút).")
    number, unit = int(match.group(1)), match.group(2)
    duration = {"d": timedelta(days=number), "h": timedelta(hours=number), "m": timedelta(minutes=number)}[unit]
    if not SHORTEST <= duration <= LONGEST:
        raise CommandError("--expires: thời hạn cần từ 10 phút đến 90 ngày.")
    return duration


def _run(work: Callable[[Settings, Database], Awaitable[T]]) -> T:
    """Open (and migrate) the database of the settings, run `work`, and report any failure in one line."""
    from bot.app import prepare_database
    from bot.cli import _settings, _start
    from bot.logs import configure_from_settings

    settings = _settings()
    configure_from_settings(settings, logging.WARNING)

    async def main() -> T:
        database = Database(settings.database_url)
        try:
            await prepare_database(database, settings)
            return await work(settings, database)
        finally:
            await database.dispose()

    try:
        return _start(settings, lambda: asyncio.run(main()), passes=(CommandError,))
    except CommandError as exc:
        Console(stderr=True).print(str(exc), style="red", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


async def _unit_named(session: AsyncSession, model: type[Organisation] | type[Village], name: str) -> int:
    wanted = " ".join(composed(name).split())
    found = (await session.exec(select(model).where(model.name == wanted))).first()
    if found is None:
        kind = "tổ chức" if model is Organisation else "thôn/xóm"
        raise CommandError(f"Không có {kind} {wanted!r} trong danh mục (xem: hocvuso directory export).")
    return found.id  # type: ignore[return-value]


@invite_app.command("create")
def invite_create(
    role: Annotated[str, typer.Option("--role", help="leader, village_head, digital_team, staff hoặc admin.")],
    org: Annotated[str | None, typer.Option("--org", help="Tên tổ chức (với --role leader).")] = None,
    village: Annotated[str | None, typer.Option(
        "--village", help="Tên thôn/xóm (với --role village_head; với digital_team nếu thuộc một thôn).")] = None,
    expires: Annotated[str, typer.Option("--expires", help="Thời hạn: 7d, 48h, 30m (10 phút đến 90 ngày).")] = "7d",
) -> None:
    """Tạo một mã mời dùng một lần. Người bạn có quản trị đầu tiên cũng tạo bằng lệnh này (--role admin)."""

    async def work(settings: Settings, database: Database) -> tuple[str, datetime, str]:
        if role not in ROLES:
            raise CommandError(f"--role cần là một trong: {', '.join(ROLES)}.")
        if role == "leader" and (org is None or village is not None):
            raise CommandError("Mã cho lãnh đạo tổ chức cần --org \"Tên tổ chức\" (và không có --village).")
        if role == "village_head" and (village is None or org is not None):
            raise CommandError("Mã cho trưởng thôn cần --village \"Tên thôn\" (và không có --org).")
        if role == "digital_team" and org is not None:
            raise CommandError("Mã cho Tổ công nghệ số cộng đồng dùng --village \"Tên thôn\" (bỏ trống: cả xã).")
        if role in access.STAFF_ROLES and (org is not None or village is not None):
            raise CommandError("Cán bộ xã và quản trị xem cả xã: không dùng --org hay --village.")
        lifetime = parse_expiry(expires)
        now = datetime.now(UTC)
        async with database.session() as session:
            organisation_id = await _unit_named(session, Organisation, org) if org else None
            village_id = await _unit_named(session, Village, village) if village else None
            code = await access.create_invite(session, role=role, now=now, expires_in=lifetime,
                                              rng=random.SystemRandom(), organisation_id=organisation_id,
                                              village_id=village_id)
        unit = f" – {org or village}" if (org or village) else ""
        return code, (now + lifetime).astimezone(settings.zone), f"{ROLE_NAMES[role]}{unit}"

    code, until, label = _run(work)
    from bot.cli import _settings

    username = _settings().telegram_username
    out.print(f"Mã mời ({label}): [bold]{access.grouped(code)}[/bold]")
    out.print(f"Người nhận gõ trong cuộc trò chuyện với bot:  /ma {access.grouped(code)}")
    if username:
        out.print(f"Hoặc mở liên kết:  https://t.me/{username}?start={code}")
    out.print(f"Dùng được một lần, hết hạn lúc {until:%H:%M ngày %d/%m/%Y}. Mã không được lưu: hãy chép lại ngay.")


@roles_app.command("list")
def roles_list() -> None:
    """Liệt kê vai trò đang có hiệu lực."""

    async def work(_settings: Settings, database: Database) -> list[tuple[str, ...]]:
        async with database.session() as session:
            rows = (await session.exec(
                select(RoleGrant, Person.full_name, Organisation.name, Village.name)
                .join(Person, col(Person.id) == col(RoleGrant.person_id))
                .outerjoin(Organisation, col(Organisation.id) == col(RoleGrant.organisation_id))
                .outerjoin(Village, col(Village.id) == col(RoleGrant.village_id))
                .where(col(RoleGrant.revoked_at).is_(None))
                .order_by(col(RoleGrant.id))
            )).all()
        return [(str(g.id), str(g.person_id), name or "(chưa có tên)", ROLE_NAMES.get(g.role, g.role),
                 org or village or "cả xã", f"{g.granted_at:%d/%m/%Y}") for g, name, org, village in rows]

    rows = _run(work)
    table = Table(title="Vai trò đang có hiệu lực")
    for column in ("Mã vai trò", "Người (mã)", "Họ tên", "Vai trò", "Đơn vị", "Từ ngày"):
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    out.print(table if rows else "Chưa ai có vai trò nào. Tạo mã mời: hocvuso invite create --role admin")


@roles_app.command("revoke")
def roles_revoke(grant_id: Annotated[int, typer.Argument(help="Mã vai trò (cột đầu của hocvuso roles list).")]) -> None:
    """Thu hồi một vai trò; người đó không xem được số liệu của đơn vị nữa."""

    async def work(_settings: Settings, database: Database) -> RoleGrant | None:
        async with database.session() as session:
            return await access.revoke(session, grant_id, datetime.now(UTC))

    grant = _run(work)
    if grant is None:
        Console(stderr=True).print(f"Không có vai trò đang hiệu lực với mã {grant_id}.", style="red", highlight=False)
        raise typer.Exit(1)
    out.print(f"Đã thu hồi vai trò {ROLE_NAMES.get(grant.role, grant.role)} (mã {grant_id}).")


ACTION_NAMES = {
    "invite_created": "tạo mã mời", "invite_redeemed": "dùng mã mời", "invite_create": "tạo mã mời trong chat",
    "role_revoked": "thu hồi vai trò", "members_view": "xem thành viên", "member_confirmed": "xác nhận thành viên",
    "member_removed": "bỏ thành viên tự khai", "figures_view": "xem số liệu", "members_export": "tải danh sách",
    "report": "lấy báo cáo năm", "honours_export": "tải danh sách hoàn thành",
    "deadlines_view": "xem hạn chót", "deadline_added": "thêm hạn chót", "deadline_changed": "sửa hạn chót",
    "deadline_paused": "tạm dừng nhắc hạn", "deadline_resumed": "nhắc lại hạn", "deadline_removed": "xóa hạn chót",
    "report_handed_in": "báo đã nộp báo cáo", "announcement": "mở gửi thông báo",
    "announcement_sent": "gửi thông báo", "announcement_progress": "xem tiến độ thông báo",
    "account_linked": "liên kết tài khoản Telegram/Zalo",
}


def audit(
    since: Annotated[str | None, typer.Option("--since", help="Từ ngày (YYYY-MM-DD).")] = None,
) -> None:
    """In nhật ký truy cập: cấp, dùng, từ chối vai trò và mỗi lần xem số liệu."""
    try:
        start = date.fromisoformat(since) if since else None
    except ValueError:
        Console(stderr=True).print("--since cần dạng YYYY-MM-DD, ví dụ 2026-11-01.", style="red", highlight=False)
        raise typer.Exit(2) from None

    async def work(settings: Settings, database: Database) -> list[tuple[str, ...]]:
        statement = (select(AuditLog, Organisation.name, Village.name)
                     .outerjoin(Organisation, col(Organisation.id) == col(AuditLog.organisation_id))
                     .outerjoin(Village, col(Village.id) == col(AuditLog.village_id))
                     .order_by(col(AuditLog.at), col(AuditLog.id)))
        if start is not None:
            moment = datetime.combine(start, datetime.min.time(), settings.zone)
            statement = statement.where(col(AuditLog.at) >= moment)
        async with database.session() as session:
            rows = (await session.exec(statement)).all()
        return [(f"{row.at.astimezone(settings.zone):%d/%m/%Y %H:%M}", str(row.actor or "máy chủ"),
                 ACTION_NAMES.get(row.action, row.action), "được" if row.outcome == "ok" else "TỪ CHỐI",
                 ROLE_NAMES.get(row.role or "", ""), org or village or "", str(row.subject or ""))
                for row, org, village in rows]

    rows = _run(work)
    table = Table(title="Nhật ký truy cập")
    for column in ("Lúc", "Người (mã)", "Việc", "Kết quả", "Vai trò", "Đơn vị", "Đối tượng (mã)"):
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    out.print(table if rows else "Nhật ký trống.")
