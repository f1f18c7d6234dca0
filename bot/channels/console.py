"""The console channel: the same conversations in a terminal, also with piped input."""

from __future__ import annotations

import asyncio
import re
import sys
from datetime import timedelta
from pathlib import Path
from typing import TextIO

from handlers.core import CONSOLE, Incoming, Reply, from_payload
from handlers.dispatcher import Dispatcher, remember_menu
from handlers.render import as_numbered, split_text
from storage import outbox, queries

PROMPT = "> "
SEPARATOR = "─" * 40
EXPORTS = Path("var/exports")  # beside the default database, relative to where `hocvuso chat` runs
SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")


def save_attachment(reply: Reply, exports: Path) -> Path | None:
    """Write the reply's file (a chart, a list) under `exports`, never over an earlier one."""
    if reply.attachment is None:
        return None
    exports.mkdir(parents=True, exist_ok=True)
    name = SAFE_NAME.sub("_", reply.attachment.file_name) or "tep"
    stem, dot, suffix = name.rpartition(".")
    path = exports / name
    number = 1
    while path.exists():
        number += 1
        path = exports / (f"{stem}-{number}.{suffix}" if dot else f"{name}-{number}")
    path.write_bytes(reply.attachment.data)
    return path


def render(reply: Reply, saved: Path | None = None) -> str:
    text = as_numbered(reply)
    if reply.attachment is not None:
        where = f"đã lưu ở {saved}" if saved else f"{len(reply.attachment.data)} byte"
        text += f"\n📎 Tệp đính kèm: {reply.attachment.file_name} ({where})"
    return "\n\n".join(split_text(text, CONSOLE.text_limit))


async def run_console(
    dispatcher: Dispatcher, user: str, stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout,
    exports: Path = EXPORTS,
) -> None:
    """Read lines until end of input; answer each like a chat would. Files are written under `exports`."""
    interactive = stdin.isatty()
    if interactive:
        stdout.write("Gõ /start để bắt đầu, menu để về đầu, Ctrl+D để thoát.\n")
    loop = asyncio.get_running_loop()
    while True:
        await show_waiting(dispatcher, user, stdout)
        if interactive:
            stdout.write(PROMPT)
            stdout.flush()
        line = await loop.run_in_executor(None, stdin.readline)
        if not line:
            break
        text = line.rstrip("\r\n")
        if not interactive:
            stdout.write(f"{PROMPT}{text}\n")
        replies = await dispatcher.handle(Incoming.from_text("console", user, text, display_name=None))
        for reply in replies:
            saved = save_attachment(reply, exports) if reply.attachment is not None else None
            stdout.write(f"{render(reply, saved)}\n{SEPARATOR}\n")
        stdout.flush()


async def show_waiting(dispatcher: Dispatcher, user: str, stdout: TextIO) -> int:
    """Print what the bot sent this person on its own (a reminder, an announcement) since the last
    line, and mark it sent: the terminal's outbox sender. Returns how many messages were shown."""
    services = dispatcher.services
    async with services.database.session() as session:
        rows = await outbox.lease_due(session, services.clock(), timedelta(minutes=1), 20, ["console"],
                                      external_id=user)
        shown = [reply for row in rows for reply in from_payload(row.payload)]
        for reply in shown:
            stdout.write(f"📬 {render(reply)}\n{SEPARATOR}\n")
        for row in rows:
            await outbox.mark_sent(session, row.id, services.clock())
        if any(reply.buttons for reply in shown):
            # "1" now means the first button of what was just printed, as after any answer.
            state = await queries.load_state(session, "console", user, services.clock())
            remember_menu(state, shown)
            session.add(state)
    return len(rows)
