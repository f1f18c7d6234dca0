"""`hocvuso outbox`: what the bot has queued, sent and failed to send on its own (reminders, nudges,
announcements, notices)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from bot.cli_access import _run, out
from bot.settings import Settings
from storage import outbox
from storage.db import Database

KIND_NAMES = {"reminder": "Nhắc hạn báo cáo", "nudge": "Nhắc học", "announcement": "Thông báo",
              "notice": "Tin báo kết quả"}
STATUS_NAMES = {"queued": "Chờ gửi", "sending": "Đang gửi", "sent": "Đã gửi", "failed": "Lỗi",
                "blocked": "Bị chặn", "expired": "Quá giờ gửi"}


def outbox_status(
    failures: Annotated[int, typer.Option("--failures", min=0, max=500,
                                          help="Số tin lỗi gần nhất cần liệt kê (kèm lý do).")] = 10,
) -> None:
    """Đếm tin bot tự gửi (nhắc hạn, nhắc học, thông báo) theo trạng thái, và lý do của các tin lỗi gần nhất."""

    async def work(settings: Settings, database: Database) -> tuple[dict[tuple[str, str], int], list]:
        async with database.session() as session:
            return await outbox.kind_counts(session), await outbox.recent_failures(session, failures)

    counts, failed = _run(work)
    table = Table(title="Hộp thư đi")
    table.add_column("Loại tin")
    for name in STATUS_NAMES.values():
        table.add_column(name, justify="right")
    for kind in sorted({kind for kind, _ in counts}, key=lambda kind: list(KIND_NAMES).index(kind)
                       if kind in KIND_NAMES else len(KIND_NAMES)):
        table.add_row(KIND_NAMES.get(kind, kind), *(str(counts.get((kind, status), 0)) for status in STATUS_NAMES))
    table.add_row("Tổng", *(str(sum(count for (_, status_), count in counts.items() if status_ == status))
                            for status in STATUS_NAMES), style="bold")
    out.print(table)
    if failed:
        listing = Table(title="Tin lỗi hoặc đang thử lại gần nhất")
        for column in ("Loại tin", "Khóa", "Lý do"):
            listing.add_column(column)
        for kind, key, reason in failed:
            listing.add_row(KIND_NAMES.get(kind, kind), key, reason or "")
        out.print(listing)
