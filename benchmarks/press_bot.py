"""A second baseline: a bare python-telegram-bot 22 bot that makes only the Bot API calls hocvuso must make.

A text gets one `sendMessage` with a button; a button press gets `answerCallbackQuery` (the issue requires
it, so the spinner stops) and `editMessageText` with a button, in parallel, as hocvuso does. No database,
no conversation: what is left of hocvuso's cost once everything but the required calls is taken away.

Run by telegram_bench.py as its own process: `python -m benchmarks.press_bot API_URL TOKEN [CONCURRENCY]`.
CONCURRENCY (default 1, one update after another like the echo bot) is how many updates run at once and
the size of the HTTP connection pool; hocvuso's default is 32 (HOCVUSO_TELEGRAM_CONCURRENCY).
"""

from __future__ import annotations

import asyncio
import sys

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import ApplicationBuilder, CallbackQueryHandler, ContextTypes, MessageHandler, filters

KEYBOARD = InlineKeyboardMarkup([[InlineKeyboardButton("Tiếp", callback_data="next")]])


async def on_text(update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.message is not None and update.message.text is not None
    await update.message.reply_text(update.message.text, reply_markup=KEYBOARD)


async def on_press(update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    assert query is not None and query.data is not None
    await asyncio.gather(query.answer(), query.edit_message_text(query.data, reply_markup=KEYBOARD))


def main(api_url: str, token: str, concurrency: int) -> None:
    application = (
        ApplicationBuilder().token(token).base_url(f"{api_url}/bot").base_file_url(f"{api_url}/file/bot")
        .concurrent_updates(concurrency).connection_pool_size(concurrency)
        .build()
    )
    application.add_handler(MessageHandler(filters.TEXT, on_text))
    application.add_handler(CallbackQueryHandler(on_press))
    application.run_polling(allowed_updates=["message", "callback_query"], timeout=1, poll_interval=0.0)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 1)
