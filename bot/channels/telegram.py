"""Telegram: updates in through the inbox, `Reply` out, with retries that respect Telegram.

python-telegram-bot 22 is used as the Bot API client (requests, parsing, errors), not as a framework:
its `Updater` confirms a batch to Telegram (through the next `getUpdates` offset) before the batch is
handled, so a kill -9 would lose it. Here a batch is stored in the inbox first and only then polled past.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
from telegram import Bot, BotCommand, InlineKeyboardButton, InlineKeyboardMarkup, InputFile, Update
from telegram.error import BadRequest, Forbidden, InvalidToken, NetworkError, RetryAfter, TelegramError
from telegram.request import HTTPXRequest
from telegram.warnings import PTBDeprecationWarning

from bot.channels.inbox_channel import InboxChannel, Job, Sleep
from bot.outbox import Outcome, Result
from bot.settings import Settings
from handlers.core import TELEGRAM, Incoming, Kind, Reply
from handlers.dispatcher import Dispatcher
from handlers.render import merge_replies, numbered_lines, split_text
from storage import inbox, queries
from storage.db import Database
from storage.models import InboxUpdate, column_length

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
KEY_MAX = column_length(InboxUpdate, "delivery_key")
CHAT_ID_MAX = column_length(InboxUpdate, "chat_id")
POLL_BACKOFF_MAX = 30.0
MAX_RETRY_WAIT = 30.0  # longest `retry_after` waited out; Telegram asks for more only to punish a flood
# Errors after which Telegram may have delivered the message although we got no answer: a send is not
# repeated after them (a duplicate is worse than a message the person can ask for again).
MAYBE_DELIVERED = (httpx.ReadTimeout, httpx.WriteTimeout, httpx.ReadError, httpx.WriteError,
                   httpx.RemoteProtocolError)



class ChatBlocked(Exception):
    """The person blocked the bot (403): nothing more is sent to them."""


def retry_seconds(error: RetryAfter) -> float:
    """`retry_after` in seconds, whether PTB gives an int or a timedelta."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = error.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


# --- Telegram -> Incoming -----------------------------------------------------------------------

def parse_update(payload: object, bot: Bot) -> Update | None:
    """PTB's reading of one update; None when it cannot be read or used (never raises)."""
    if not isinstance(payload, dict) or not isinstance(payload.get("update_id"), int):
        return None
    try:
        update = Update.de_json(payload, bot)
        usable = update is not None and _well_typed(update) and _fits_the_inbox(update)
    except Exception:  # a malformed or unknown shape: whatever PTB raised, the update is unusable
        return None
    return update if usable else None


def _well_typed(update: Update) -> bool:
    """PTB does not check types: a chat id or a text of the wrong type must not reach the handlers."""
    message, query = update.message, update.callback_query
    if query is not None:
        chat = query.message.chat if query.message is not None else None
        return (isinstance(query.id, str) and isinstance(query.data, str | None) and _person(query.from_user)
                and (query.message is None or (chat is not None and isinstance(chat.id, int)
                                               and isinstance(chat.type, str))))
    if message is not None:
        return (message.chat is not None and isinstance(message.chat.id, int) and isinstance(message.chat.type, str)
                and isinstance(message.message_id, int) and isinstance(message.text, str | None)
                and (message.from_user is None or _person(message.from_user)))
    return True


def _person(user: object) -> bool:
    return (isinstance(getattr(user, "id", None), int) and isinstance(getattr(user, "first_name", None), str)
            and isinstance(getattr(user, "last_name", None), str | None))


def _fits_the_inbox(update: Update) -> bool:
    """Key and chat id must fit their columns and hold no NUL (PostgreSQL refuses it in text)."""
    key = delivery_key(update)
    chat = update.effective_chat.id if update.effective_chat is not None else None
    if key is None:
        return True  # not stored: confirmed and dropped
    chat_text = str(chat if chat is not None else getattr(update.effective_user, "id", ""))
    return len(key) <= KEY_MAX and len(chat_text) <= CHAT_ID_MAX and "\x00" not in key


def delivery_key(update: Update) -> str | None:
    """What makes an update unique: a chat's message id, or a button press's query id.

    Not the update id: Telegram may start update ids afresh after a week without updates.
    """
    if update.callback_query is not None:
        return f"c:{update.callback_query.id}"
    if update.message is not None:
        return f"m:{update.message.chat.id}:{update.message.message_id}"
    return None


def to_incoming(update: Update) -> Incoming | None:
    """The neutral form of a Telegram update; None for updates hocvuso does not handle."""
    key = delivery_key(update)
    if update.callback_query is not None:
        query = update.callback_query
        if query.message is not None and query.message.chat.type != "private":
            return None
        chat_id = query.message.chat.id if query.message is not None else query.from_user.id
        return Incoming(CHANNEL, str(chat_id), Kind.ACTION, query.data or "", query.from_user.full_name, key)
    message = update.message
    if message is None or message.chat.type != "private":
        return None  # edits, channel posts and group chats: hocvuso talks one to one
    name = message.from_user.full_name if message.from_user else None
    if message.text is not None:
        return Incoming.from_text(CHANNEL, str(message.chat.id), message.text, display_name=name, delivery_key=key)
    if message.contact is not None:
        return Incoming(CHANNEL, str(message.chat.id), Kind.CONTACT, "", name, key)
    photo = message.photo[-1].file_id if message.photo else None  # the largest size Telegram keeps
    return Incoming(CHANNEL, str(message.chat.id), Kind.UNSUPPORTED, _what_was_sent(message), name, key,
                    file_id=photo)


def _what_was_sent(message: Any) -> str:
    """What a message without text carries, as the dispatcher names it (handlers/texts.UNSUPPORTED_KINDS)."""
    if message.photo:
        return "image"
    if message.sticker is not None:
        return "sticker"
    if message.voice is not None or message.audio is not None or message.video_note is not None:
        return "voice"
    return ""


# --- Reply -> what to send ------------------------------------------------------------------------

Rows = tuple[tuple[tuple[str, str], ...], ...]  # button rows of (label, callback data)


def keyboard_for(reply: Reply) -> tuple[str, Rows]:
    """The text and button rows for a reply.

    Labels too long for a button (quiz options, long lesson titles) are listed in the text and the
    buttons carry their numbers, so nothing is cut off on a small screen.
    """
    if not reply.buttons:
        return reply.text, ()
    for action in reply.actions:
        if not 1 <= len(action.encode()) <= CALLBACK_MAX_BYTES:
            raise ValueError("callback data must be 1-64 bytes")
    if all(len(label) <= LABEL_MAX for label in reply.labels):
        return reply.text, tuple(tuple((b.label, b.action) for b in row) for row in reply.buttons)
    numbers = [(str(n), action) for n, action in enumerate(reply.actions, start=1)]
    rows = tuple(tuple(numbers[i : i + NUMBERS_PER_ROW]) for i in range(0, len(numbers), NUMBERS_PER_ROW))
    return f"{reply.text}\n\n{numbered_lines(reply.labels)}", rows


def markup_for(rows: Rows) -> InlineKeyboardMarkup | None:
    if not rows:
        return None
    return InlineKeyboardMarkup([[InlineKeyboardButton(label, callback_data=data) for label, data in row]
                                 for row in rows])


@dataclass(frozen=True)
class Outgoing:
    """One Bot API call that shows part of an answer: a text, an edit, a document or a photo."""

    method: str  # send | edit | document | photo
    text: str
    rows: Rows = ()
    message_id: int | None = None  # the message an edit replaces
    file_name: str | None = None
    data: bytes = field(default=b"", repr=False)

    def to_json(self) -> dict[str, Any]:
        return {"method": self.method, "text": self.text, "rows": [[list(b) for b in row] for row in self.rows],
                "message_id": self.message_id, "file_name": self.file_name,
                "data": base64.b64encode(self.data).decode() if self.data else ""}

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> Outgoing:
        rows = tuple(tuple((str(b[0]), str(b[1])) for b in row) for row in value.get("rows") or [])
        data = base64.b64decode(value["data"]) if value.get("data") else b""
        return cls(value["method"], value.get("text") or "", rows, value.get("message_id"),
                   value.get("file_name"), data)


def plan(replies: list[Reply], pressed_message_id: int | None = None) -> list[Outgoing]:
    """The calls that show `replies`, in order.

    A press that redraws its own screen (next card, a ticked organisation) edits the message it was
    pressed on, so a small screen is not filled with copies; anything else is a new message.
    """
    replies = merge_replies(replies, TELEGRAM.text_limit)
    if (pressed_message_id is not None and len(replies) == 1 and replies[0].redraw
            and replies[0].attachment is None):
        text, rows = keyboard_for(replies[0])
        if len(text) <= TELEGRAM.text_limit:
            return [Outgoing("edit", text, rows, pressed_message_id)]
    calls: list[Outgoing] = []
    for reply in replies:
        calls.extend(_calls_for(reply))
    return calls


def _calls_for(reply: Reply) -> list[Outgoing]:
    text, rows = keyboard_for(reply)
    attachment = reply.attachment
    if attachment is None:
        parts = split_text(text, TELEGRAM.text_limit)
        return [Outgoing("send", part, rows if index == len(parts) - 1 else ())
                for index, part in enumerate(parts)]
    calls = []
    caption = text if len(text) <= CAPTION_MAX else ""
    if not caption:
        calls.extend(Outgoing("send", part) for part in split_text(text, TELEGRAM.text_limit) if part)
    method = "photo" if attachment.kind == "photo" else "document"
    calls.append(Outgoing(method, caption, rows, file_name=attachment.file_name, data=attachment.data))
    return calls


class ReplySender:
    """Makes the calls of an answer in one chat, retrying as Telegram asks and giving up on blocked chats."""

    def __init__(self, bot: Bot, database: Database, max_retries: int, sleep: Sleep) -> None:
        self.bot = bot
        self.database = database
        self.max_retries = max_retries
        self.sleep = sleep

    async def send_replies(self, chat_id: int, replies: list[Reply]) -> None:
        """Send in order; stop at a blocked chat (it is marked, and nothing more is sent)."""
        try:
            for call in plan(replies):
                await self.perform(chat_id, call)
        except ChatBlocked:
            log.info("chat blocked the bot: telegram chat marked blocked")

    async def deliver(self, chat_id: int, replies: list[Reply]) -> bool:
        """For messages the bot starts itself: skipped for accounts marked blocked."""
        async with self.database.session() as session:
            if await queries.is_blocked(session, CHANNEL, str(chat_id)):
                return False
        await self.send_replies(chat_id, replies)
        return True

    async def perform(self, chat_id: int, call: Outgoing) -> None:
        """One call; an edit Telegram refuses is sent as a new message instead. Raises ChatBlocked."""
        markup = markup_for(call.rows)
        if call.method == "edit":
            edited = await self._call(chat_id, lambda: self.bot.edit_message_text(
                chat_id=chat_id, message_id=call.message_id, text=call.text, reply_markup=markup), repeatable=True)
            if edited:
                return
            call = Outgoing("send", call.text, call.rows)
        if call.method == "send":
            await self._call(chat_id, lambda: self.bot.send_message(chat_id=chat_id, text=call.text,
                                                                     reply_markup=markup))
            return
        send = self.bot.send_photo if call.method == "photo" else self.bot.send_document
        await self._call(chat_id, lambda: send(
            chat_id, InputFile(call.data, filename=call.file_name), caption=call.text or None,
            reply_markup=markup))

    async def _call(self, chat_id: int, request: Callable[[], Awaitable[Any]], *, repeatable: bool = False) -> bool:
        """One Bot API call; True when Telegram shows what was asked.

        429 waits `retry_after`; 5xx and failed connections back off 0.5, 1, 2, 4 s; 403 marks the chat
        blocked. A timeout after the request went out is retried only for calls that are safe to repeat
        (an edit): a message is never sent twice.
        """
        backoff = 0.5
        for attempt in range(self.max_retries + 1):
            last_try = attempt == self.max_retries
            try:
                await request()
                return True
            except RetryAfter as error:
                if last_try or retry_seconds(error) > MAX_RETRY_WAIT:
                    raise  # the answer is given up: a chat silenced for hours helps nobody
                await self.sleep(retry_seconds(error))
            except Forbidden:
                async with self.database.session() as session:
                    await queries.set_blocked(session, CHANNEL, str(chat_id), True)
                raise ChatBlocked from None
            except BadRequest as error:
                if "not modified" in error.message.lower():
                    return True  # an edit repeated after a timeout: it had been made the first time
                log.warning("telegram refused a message: %s", error.message)
                return False
            except NetworkError as error:  # 5xx answers, timeouts, failed connections
                if isinstance(error.__cause__, MAYBE_DELIVERED) and not repeatable:
                    log.warning("telegram did not confirm a message in time; not sent again to avoid a duplicate")
                    return True
                if last_try:
                    raise
                await self.sleep(backoff)
                backoff = min(backoff * 2, 8.0)
        return False


class TelegramOutbox:
    """The outbox's view of Telegram (bot/outbox.py): one try at each call of a message; what went wrong
    is told to the sender, which decides when to try again."""

    channel = CHANNEL

    def __init__(self, bot: Bot) -> None:
        self.bot = bot

    async def send(self, external_id: str, replies: list[Reply]) -> Result:
        chat_id = int(external_id)
        try:
            for call in plan(replies):
                markup = markup_for(call.rows)
                await self.bot.send_message(chat_id=chat_id, text=call.text, reply_markup=markup)
        except RetryAfter as error:
            return Result(Outcome.WAIT, retry_seconds(error), "Telegram yêu cầu chờ (429)")
        except Forbidden:
            return Result(Outcome.BLOCKED, reason="người nhận đã chặn bot")
        except BadRequest as error:  # Telegram's own description of the fault, never the message's text
            return Result(Outcome.REFUSED, reason=f"Telegram từ chối: {error.message}")
        except NetworkError as error:
            # Only a read timeout means the whole request went out and Telegram may have taken it. A broken
            # or stale connection (a keep-alive the server had closed) most often never delivered it: a
            # reminder lost is worse than one repeated, so those are tried again.
            if isinstance(error.__cause__, httpx.ReadTimeout):
                return Result(Outcome.SENT, reason="hết thời gian chờ sau khi gửi: coi như đã gửi, để không gửi trùng")
            return Result(Outcome.RETRY, reason="lỗi mạng hoặc máy chủ Telegram")
        return Result(Outcome.SENT)


# --- the channel ----------------------------------------------------------------------------------

class RawUpdatesBot(Bot):
    """PTB's Bot, plus getUpdates that returns the raw JSON.

    `Bot.get_updates` reads the whole batch into Update objects at once, so one update PTB cannot read
    fails the batch, and polling would stop at it forever; `do_api_request("getUpdates")` warns on
    every call. `_post` is the call both make underneath (PTB 22 is pinned in pyproject.toml).
    """

    async def get_raw_updates(self, offset: int | None, poll_seconds: int, read_timeout: float) -> list[Any]:
        data: dict[str, Any] = {"timeout": poll_seconds, "allowed_updates": ALLOWED_UPDATES}
        if offset is not None:
            data["offset"] = offset
        result = await self._post("getUpdates", data, read_timeout=read_timeout)
        return result if isinstance(result, list) else []


def make_requests(settings: Settings) -> tuple[HTTPXRequest, HTTPXRequest]:
    """The connection pools: one for the answers, one for the long poll."""
    timeout = settings.telegram_timeout
    request = HTTPXRequest(connection_pool_size=settings.telegram_concurrency, connect_timeout=timeout,
                           read_timeout=timeout, write_timeout=timeout, pool_timeout=timeout,
                           media_write_timeout=timeout * 2)
    polling = HTTPXRequest(connection_pool_size=1, connect_timeout=timeout, read_timeout=timeout,
                           write_timeout=timeout, pool_timeout=timeout)
    return request, polling


def make_bot(settings: Settings, requests: tuple[HTTPXRequest, HTTPXRequest]) -> RawUpdatesBot:
    assert settings.telegram_token is not None
    api = settings.telegram_api_url
    return RawUpdatesBot(settings.telegram_token.get_secret_value(), base_url=f"{api}/bot",
                         base_file_url=f"{api}/file/bot", request=requests[0], get_updates_request=requests[1])


class TelegramChannel(InboxChannel):
    """The Telegram side of hocvuso: inbox in, dispatcher, outgoing calls out."""

    channel = CHANNEL

    def __init__(
        self, dispatcher: Dispatcher, settings: Settings, *, polling: bool, sleep: Sleep = asyncio.sleep
    ) -> None:
        super().__init__(dispatcher, settings.telegram_concurrency, sleep)
        self._requests = make_requests(settings)
        self.bot = make_bot(settings, self._requests)
        self.sender = ReplySender(self.bot, self.database, settings.telegram_max_retries, self._wait_without_a_slot)
        self.polling = polling
        self.poll_timeout = settings.telegram_poll_timeout
        self.timeout = settings.telegram_timeout
        self.webhook_url = f"{settings.webhook_url}/webhook/telegram" if settings.webhook_url else None
        self.webhook_secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else None
        self._started = False

    async def start(self) -> None:
        """Check the token (getMe), replay what the inbox still holds, then take new updates."""
        await self.bot.initialize()
        self._started = True
        await self._set_commands()
        if self.polling:
            await self.bot.delete_webhook()
        await self._start_inbox()
        if self.polling:
            self._tasks.append(asyncio.create_task(self._poll_forever(), name="telegram-poll"))
        else:
            await self.bot.set_webhook(url=self.webhook_url, secret_token=self.webhook_secret,
                                       allowed_updates=ALLOWED_UPDATES)

    async def stop(self) -> None:
        """Stop fetching, finish the updates in hand, then close; the rest waits in the inbox."""
        await self._stop_inbox()
        if self._started:
            await self.bot.shutdown()
        else:  # getMe failed (a wrong token): the pools were opened all the same
            for request in self._requests:
                await request.shutdown()

    # --- receiving -------------------------------------------------------------------------------

    async def accept_webhook(self, payload: dict[str, Any]) -> int:
        """Store one posted update; the HTTP status to answer (200 only once it is stored or skipped)."""
        received = self._read([payload])
        try:
            await self._store(received)
        except Exception:
            log.exception("telegram update not stored; Telegram will send it again")
            return 503
        return 200

    async def _poll_forever(self) -> None:
        offset: int | None = None
        backoff = 1.0
        while True:
            try:
                batch = await self._get_updates(offset)
                received = self._read(batch)
                await self._store(received)  # before the next poll tells Telegram the batch arrived
            except asyncio.CancelledError:
                raise
            except InvalidToken:
                log.error("telegram refused the bot token while polling; trying again in %.0f s", POLL_BACKOFF_MAX)
                await self.sleep(POLL_BACKOFF_MAX)
                continue
            except Exception as error:
                # One line per failed round, and the pause grows: an outage never floods the log.
                log.warning("telegram polling failed (%s); trying again in %.0f s", type(error).__name__, backoff)
                await self.sleep(backoff)
                backoff = min(backoff * 2, POLL_BACKOFF_MAX)
                continue
            backoff = 1.0
            ids = [item["update_id"] for item in batch if isinstance(item, dict)
                   and isinstance(item.get("update_id"), int)]
            if ids:
                offset = max(ids) + 1

    async def _get_updates(self, offset: int | None) -> list[Any]:
        return await self.bot.get_raw_updates(offset, self.poll_timeout, self.poll_timeout + self.timeout)

    def _read(self, batch: list[Any]) -> list[tuple[inbox.Received, Update, Incoming]]:
        """The updates worth storing; unreadable ones are logged once, by update id only, and skipped."""
        received = []
        for payload in batch:
            update = parse_update(payload, self.bot)
            if update is None:
                update_id = payload.get("update_id") if isinstance(payload, dict) else None
                log.warning("telegram update %s skipped: it could not be read",
                            update_id if isinstance(update_id, int) else "?")
                continue
            try:
                incoming, key = to_incoming(update), delivery_key(update)
            except Exception:  # a shape PTB read but hocvuso cannot: skipped like an unreadable one
                log.warning("telegram update %s skipped: it could not be read", update.update_id)
                continue
            if incoming is None or key is None:
                continue  # not for hocvuso (a group, an edit): confirmed and forgotten
            received.append((inbox.Received(key, incoming.user_id, payload), update, incoming))
        return received

    def _refused(self, item: inbox.Received) -> None:
        log.warning("telegram update %s skipped: the database refused it", item.payload.get("update_id"))

    # --- handling and answering ---------------------------------------------------------------

    async def _finish_job(self, job: Job) -> None:
        pending = job.pending
        calls = None if pending.replies is None else [Outgoing.from_json(c) for c in pending.replies]
        if calls is None:
            calls = await self._handle(job)
            if calls is None:
                return
        await self._send(pending, calls)

    async def _handle(self, job: Job) -> list[Outgoing] | None:
        """Run the dispatcher; the answer's calls are stored in the same commit. None: nothing to send."""
        pending = job.pending
        update = job.update or parse_update(pending.payload, self.bot)
        incoming = job.incoming or (to_incoming(update) if update is not None else None)
        if update is None or incoming is None:
            await self._close_unusable(pending)
            return None
        pressed = update.callback_query.message if update.callback_query is not None else None
        pressed_id = pressed.message_id if pressed is not None else None
        # The spinner is stopped while the answer is prepared, not before: one round trip less.
        acknowledged = asyncio.create_task(self._acknowledge(update)) if update.callback_query else None
        kept: list[Outgoing] | None = None

        async def keep(session: Any, replies: list[Reply]) -> None:
            nonlocal kept
            kept = plan(replies, pressed_id)
            await inbox.keep_replies(await session.connection(), pending.id, [call.to_json() for call in kept])

        try:
            replies = await self.dispatcher.handle(incoming, keep=keep)
        finally:
            if acknowledged is not None:
                await acknowledged
        if kept is not None:
            return kept
        calls = plan(replies)  # the turn failed: the apology
        await self._keep_apology(pending, [call.to_json() for call in calls])
        return calls

    async def _send(self, pending: inbox.Pending, calls: list[Outgoing]) -> None:
        """Make the calls not made yet, recording each, then close the row."""
        chat_id = int(pending.chat_id)
        done = pending.sent
        try:
            for index in range(pending.sent, len(calls)):
                await self.sender.perform(chat_id, calls[index])
                done = index + 1
                if done < len(calls):
                    await self._record_sent(pending.id, done, finished=False)
        except ChatBlocked:
            log.info("chat blocked the bot: telegram chat marked blocked")
        except TelegramError as error:
            log.warning("telegram answer given up after retries (%s)", type(error).__name__)
        await self._record_sent(pending.id, done, finished=True)

    async def _acknowledge(self, update: Update) -> None:
        """Stop the button's spinner; an old query cannot be answered any more, which is fine."""
        try:
            await self.bot.answer_callback_query(update.callback_query.id)  # type: ignore[union-attr]
        except TelegramError as error:
            log.info("callback query not acknowledged: %s", type(error).__name__)

    async def _set_commands(self) -> None:
        commands = [
            BotCommand(command.name, command.description)
            for command in self.dispatcher.registry.commands.values()
            if command.listed
        ]
        try:
            await self.bot.set_my_commands(commands)
        except TelegramError as error:  # the menu is a convenience; the bot works without it
            log.warning("could not set the command menu: %s", type(error).__name__)
