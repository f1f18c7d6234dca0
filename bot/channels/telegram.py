"""Telegram: python-telegram-bot 22 updates in, `Reply` out, with retries that respect Telegram."""

from __future__ import annotations

import asyncio
import logging
import os
import warnings
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from telegram import (
    BotCommand,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputFile,
    Message,
    Update,
)
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError
from telegram.ext import Application, ApplicationBuilder, BaseUpdateProcessor, ContextTypes, TypeHandler
from telegram.warnings import PTBDeprecationWarning

from bot.settings import Settings
from handlers.core import TELEGRAM, Incoming, Kind, Reply
from handlers.dispatcher import Dispatcher
from handlers.render import merge_replies, numbered_lines, split_text
from storage import queries
from storage.db import Database

log = logging.getLogger(__name__)

# Opt in to PTB's coming behaviour (time periods as timedelta) so that RetryAfter does not raise a
# deprecation warning every time Telegram asks us to slow down; retry_seconds() reads either form.
os.environ.setdefault("PTB_TIMEDELTA", "1")

CHANNEL = "telegram"
CALLBACK_MAX_BYTES = 64
CAPTION_MAX = 1024
# A phone shows about this many characters on a full-width inline button before cutting with "…".
LABEL_MAX = 40
NUMBERS_PER_ROW = 5
ALLOWED_UPDATES = ["message", "callback_query"]
Sleep = Callable[[float], Awaitable[None]]


class ChatBlocked(Exception):
    """The person blocked the bot (403): nothing more is sent to them."""


def retry_seconds(error: RetryAfter) -> float:
    """`retry_after` in seconds, whether PTB gives an int or a timedelta."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = error.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


# --- Telegram -> Incoming -----------------------------------------------------------------------

def to_incoming(update: Update) -> Incoming | None:
    """The neutral form of a Telegram update; None for updates hocvuso does not handle."""
    key = str(update.update_id)
    if update.callback_query is not None:
        query = update.callback_query
        chat_id = query.message.chat.id if query.message is not None else query.from_user.id
        return Incoming(CHANNEL, str(chat_id), Kind.ACTION, query.data or "", query.from_user.full_name, key)
    message = update.message
    if message is None or message.chat.type != "private":
        return None  # edits, channel posts and group chats: hocvuso talks one to one
    name = message.from_user.full_name if message.from_user else None
    if message.text is not None:
        return Incoming.from_text(CHANNEL, str(message.chat.id), message.text, display_name=name, delivery_key=key)
    kind = Kind.CONTACT if message.contact is not None else Kind.UNSUPPORTED
    return Incoming(CHANNEL, str(message.chat.id), kind, "", name, key)


# --- Reply -> Telegram --------------------------------------------------------------------------

def keyboard_for(reply: Reply) -> tuple[str, InlineKeyboardMarkup | None]:
    """The text and inline keyboard for a reply.

    Labels too long for a button (quiz options, long lesson titles) are listed in the text and the
    buttons carry their numbers, so nothing is cut off on a small screen.
    """
    if not reply.buttons:
        return reply.text, None
    for action in reply.actions:
        if not 1 <= len(action.encode()) <= CALLBACK_MAX_BYTES:
            raise ValueError(f"callback data must be 1-64 bytes: {action!r}")
    if all(len(label) <= LABEL_MAX for label in reply.labels):
        rows = [[InlineKeyboardButton(b.label, callback_data=b.action) for b in row] for row in reply.buttons]
        return reply.text, InlineKeyboardMarkup(rows)
    buttons = [InlineKeyboardButton(str(n), callback_data=a) for n, a in enumerate(reply.actions, start=1)]
    rows = [buttons[i : i + NUMBERS_PER_ROW] for i in range(0, len(buttons), NUMBERS_PER_ROW)]
    text = f"{reply.text}\n\n{numbered_lines(reply.labels)}"
    return text, InlineKeyboardMarkup(rows)


class ReplySender:
    """Sends replies to one chat, retrying as Telegram asks and giving up on blocked chats."""

    def __init__(self, application: Application, database: Database, max_retries: int, sleep: Sleep) -> None:
        self.application = application
        self.database = database
        self.max_retries = max_retries
        self.sleep = sleep

    @property
    def bot(self) -> Any:
        return self.application.bot

    async def send_replies(self, chat_id: int, replies: list[Reply]) -> None:
        """Send in order; stop at a blocked chat (it is marked, and nothing more is sent)."""
        try:
            for reply in replies:
                await self._send_one(chat_id, reply)
        except ChatBlocked:
            log.info("chat blocked the bot: telegram chat marked blocked")

    async def edit(self, chat_id: int, message_id: int, reply: Reply) -> bool:
        """Replace the text and buttons of a message; False when Telegram will not edit it."""
        text, markup = keyboard_for(reply)
        if len(text) > TELEGRAM.text_limit:
            return False
        try:
            edited = await self._call(chat_id, lambda: self.bot.edit_message_text(
                chat_id=chat_id, message_id=message_id, text=text, reply_markup=markup))
        except ChatBlocked:
            return True  # nothing more can be sent; do not try again as a new message
        return edited is not None

    async def deliver(self, chat_id: int, replies: list[Reply]) -> bool:
        """For messages the bot starts itself: skipped for accounts marked blocked."""
        async with self.database.session() as session:
            if await queries.is_blocked(session, CHANNEL, str(chat_id)):
                return False
        await self.send_replies(chat_id, replies)
        return True

    async def _send_one(self, chat_id: int, reply: Reply) -> None:
        text, markup = keyboard_for(reply)
        if reply.attachment is not None:
            await self._send_attachment(chat_id, reply, text, markup)
            return
        parts = split_text(text, TELEGRAM.text_limit)
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            await self._call(chat_id, lambda p=part, m=(markup if last else None): self.bot.send_message(
                chat_id=chat_id, text=p, reply_markup=m))

    async def _send_attachment(
        self, chat_id: int, reply: Reply, text: str, markup: InlineKeyboardMarkup | None
    ) -> None:
        attachment = reply.attachment
        assert attachment is not None
        caption = text if len(text) <= CAPTION_MAX else None
        if caption is None:
            for part in split_text(text, TELEGRAM.text_limit):
                await self._call(chat_id, lambda p=part: self.bot.send_message(chat_id=chat_id, text=p))
        send = self.bot.send_photo if attachment.kind == "photo" else self.bot.send_document
        field = "photo" if attachment.kind == "photo" else "document"
        await self._call(chat_id, lambda: send(
            chat_id=chat_id, caption=caption, reply_markup=markup,
            **{field: InputFile(attachment.data, filename=attachment.file_name)}))

    async def _call(self, chat_id: int, request: Callable[[], Awaitable[Message]]) -> Message | None:
        """One Bot API call: 429 waits `retry_after`; 5xx and timeouts back off; 403 marks the chat."""
        backoff = 0.5
        for attempt in range(self.max_retries + 1):
            last_try = attempt == self.max_retries
            try:
                return await request()
            except RetryAfter as error:
                if last_try:
                    raise
                await self.sleep(retry_seconds(error))
            except Forbidden:
                async with self.database.session() as session:
                    await queries.set_blocked(session, CHANNEL, str(chat_id), True)
                raise ChatBlocked from None
            except BadRequest as error:
                log.warning("telegram refused a message: %s", error.message)
                return None
            except NetworkError:  # 5xx answers and timeouts
                if last_try:
                    raise
                await self.sleep(backoff)
                backoff = min(backoff * 2, 8.0)
        return None


class PerChatUpdateProcessor(BaseUpdateProcessor):
    """Updates of different chats run concurrently; those of one chat run one after another, in order.

    asyncio.Lock wakes waiters first come, first served, and PTB starts the tasks in arrival order.
    """

    def __init__(self, max_concurrent_updates: int) -> None:
        super().__init__(max_concurrent_updates)
        self._locks: dict[int, asyncio.Lock] = {}
        self._users: dict[int, int] = {}

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        chat = update.effective_chat if isinstance(update, Update) else None
        if chat is None:
            await coroutine
            return
        lock = self._locks.setdefault(chat.id, asyncio.Lock())
        self._users[chat.id] = self._users.get(chat.id, 0) + 1
        try:
            async with lock:
                await coroutine
        finally:
            self._users[chat.id] -= 1
            if not self._users[chat.id]:  # forget idle chats so memory does not grow with users
                del self._users[chat.id], self._locks[chat.id]

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to tear down."""


class TelegramChannel:
    """The Telegram side of hocvuso: a PTB Application whose every update goes to the Dispatcher."""

    def __init__(
        self, dispatcher: Dispatcher, settings: Settings, *, polling: bool, sleep: Sleep = asyncio.sleep
    ) -> None:
        assert settings.telegram_token is not None
        self.dispatcher = dispatcher
        api = settings.telegram_api_url
        timeout = settings.telegram_timeout
        builder = (
            ApplicationBuilder()
            .token(settings.telegram_token.get_secret_value())
            .base_url(f"{api}/bot")
            .base_file_url(f"{api}/file/bot")
            .connect_timeout(timeout).read_timeout(timeout).write_timeout(timeout).pool_timeout(timeout)
            .media_write_timeout(timeout * 2)
            .concurrent_updates(PerChatUpdateProcessor(settings.telegram_concurrency))
            .connection_pool_size(settings.telegram_concurrency)
        )
        if polling:
            builder = builder.get_updates_read_timeout(settings.telegram_poll_timeout + timeout)
        else:
            builder = builder.updater(None)
        self.application = builder.build()
        self.application.add_handler(TypeHandler(Update, self._on_update))
        self.application.add_error_handler(self._on_error)
        self.sender = ReplySender(self.application, dispatcher.services.database, settings.telegram_max_retries, sleep)
        self.polling = polling
        self.poll_timeout = settings.telegram_poll_timeout
        self.webhook_url = f"{settings.webhook_url}/webhook/telegram" if settings.webhook_url else None
        self.webhook_secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else None

    async def start(self) -> None:
        await self.application.initialize()
        await self._set_commands()
        if self.polling:
            await self.application.bot.delete_webhook()
            await self.application.start()
            assert self.application.updater is not None
            await self.application.updater.start_polling(
                timeout=self.poll_timeout, allowed_updates=ALLOWED_UPDATES, poll_interval=0.0,
            )
        else:
            await self.application.start()
            await self.application.bot.set_webhook(
                url=self.webhook_url, secret_token=self.webhook_secret, allowed_updates=ALLOWED_UPDATES,
            )

    async def stop(self) -> None:
        """Stop fetching, finish the update in hand, then close."""
        if self.application.updater is not None and self.application.updater.running:
            await self.application.updater.stop()
        if self.application.running:
            await self.application.stop()
        await self.application.shutdown()

    async def process_webhook(self, data: dict[str, Any]) -> None:
        """Handle one update posted to the webhook, before answering Telegram."""
        update = Update.de_json(data, self.application.bot)
        await self.application.process_update(update)

    async def _set_commands(self) -> None:
        commands = [
            BotCommand(command.name, command.description)
            for command in self.dispatcher.registry.commands.values()
            if command.listed
        ]
        try:
            await self.application.bot.set_my_commands(commands)
        except TelegramError as error:  # the menu is a convenience; the bot works without it
            log.warning("could not set the command menu: %s", error)

    async def _on_update(self, update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        # The spinner is stopped while the answer is prepared, not before: one round trip less.
        acknowledged = asyncio.create_task(self._acknowledge(update)) if update.callback_query else None
        try:
            await self._answer(update)
        finally:
            if acknowledged is not None:
                await acknowledged

    async def _answer(self, update: Update) -> None:
        incoming = to_incoming(update)
        if incoming is None:
            return
        replies = merge_replies(await self.dispatcher.handle(incoming), TELEGRAM.text_limit)
        pressed = update.callback_query.message if update.callback_query is not None else None
        # A press that redraws its own screen (next card, a ticked organisation) edits the message it
        # was pressed on, so a small screen is not filled with copies; anything else is a new message.
        redraw = pressed is not None and len(replies) == 1 and replies[0].redraw and not replies[0].attachment
        if redraw and await self.sender.edit(int(incoming.user_id), pressed.message_id, replies[0]):
            return
        await self.sender.send_replies(int(incoming.user_id), replies)

    async def _acknowledge(self, update: Update) -> None:
        """Stop the button's spinner; an old query cannot be answered any more, which is fine."""
        try:
            await update.callback_query.answer()  # type: ignore[union-attr]
        except TelegramError as error:
            log.info("callback query not acknowledged: %s", error)

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        update_id = getattr(update, "update_id", None)
        log.error("telegram update %s failed: %r", update_id, context.error)
