"""The console channel: the same conversations in a terminal, also with piped input."""

from __future__ import annotations

import asyncio
import sys
from typing import TextIO

from handlers.core import CONSOLE, Incoming, Reply
from handlers.dispatcher import Dispatcher
from handlers.render import as_numbered, split_text

PROMPT = "> "
SEPARATOR = "─" * 40


def render(reply: Reply) -> str:
    text = as_numbered(reply)
    if reply.attachment is not None:
        text += f"\n📎 Tệp đính kèm: {reply.attachment.file_name} ({len(reply.attachment.data)} byte)"
    return "\n\n".join(split_text(text, CONSOLE.text_limit))


async def run_console(
    dispatcher: Dispatcher, user: str, stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout
) -> None:
    """Read lines until end of input; answer each like a chat would."""
    interactive = stdin.isatty()
    if interactive:
        stdout.write("Gõ /start để bắt đầu, menu để về đầu, Ctrl+D để thoát.\n")
    loop = asyncio.get_running_loop()
    while True:
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
            stdout.write(f"{render(reply)}\n{SEPARATOR}\n")
        stdout.flush()
