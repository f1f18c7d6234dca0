"""The baseline: a bare python-telegram-bot 22 echo bot, long polling, nothing else.

Run by telegram_bench.py as its own process: `python -m benchmarks.echo_bot API_URL TOKEN`.
"""

from __future__ import annotations

import sys

from telegram import Update
from telegram.ext import ApplicationBuilder, ContextTypes, MessageHandler, filters


async def echo(update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.message is not None and update.message.text is not None
    await update.message.reply_text(update.message.text)


def main(api_url: str, token: str) -> None:
    application = (
        ApplicationBuilder().token(token).base_url(f"{api_url}/bot").base_file_url(f"{api_url}/file/bot").build()
    )
    application.add_handler(MessageHandler(filters.TEXT, echo))
    application.run_polling(allowed_updates=["message"], timeout=1, poll_interval=0.0)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
