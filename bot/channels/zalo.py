"""Zalo: updates in through the inbox, replies out as numbered text, files as download links.

The same durability as Telegram (bot/channels/telegram.py): an update is stored in the inbox before it
is handled, the answer's messages are stored in the turn's own commit, and each message sent is counted,
so a restart neither loses an answer nor sends one twice.

What Zalo changes:
- *no buttons*: a menu is a list "Gõ 1 → Tiếp ▶️"; the dispatcher keeps the chat's menu, so a typed
  "2" maps back through it. A message the bot starts itself (a reminder) stores its menu when sent.
- *no files*: a report, a certificate or a chart is published as a signed, expiring link on
  hocvuso's own web server (bot/downloads.py, `HOCVUSO_PUBLIC_URL`); a chart is also shown with
  sendPhoto, which takes an image address.
- *getUpdates has no offset*: Zalo counts an update as delivered once it has answered the poll, so
  between that answer and the inbox's commit (milliseconds) a kill -9 loses the update, and waiting for
  the commit before polling again would not close that window. So the poller polls again at once and
  a storer task commits what arrived, in batches; a stop stores what was fetched before it ends. The
  webhook has no such window: Zalo gets its 200 only once the update is stored.
- *images, stickers, voice, and the `message.unsupported.received` Zalo sends instead of the content
  for protected users* reach the dispatcher as `Kind.UNSUPPORTED` with what they were, and get a kind
  answer that shows the person's step again.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

from bot.channels.inbox_channel import Arrived, InboxChannel, Job, Sleep
from bot.channels.zalo_client import (
    CHANNEL,
    ZaloClient,
    ZaloError,
    ZaloNetworkError,
    ZaloOutbox,
    ZaloQuotaExceeded,
    ZaloServerError,
    ZaloUnauthorized,
    ZaloUnreachable,
    ZaloUpdate,
    parse_updates,
)
from bot.settings import Settings
from handlers.core import ZALO, Attachment, Incoming, Kind, Reply
from handlers.dispatcher import Dispatcher, remember_menu
from handlers.render import as_numbered, merge_replies, split_text
from storage import inbox, queries
from storage.models import InboxUpdate, column_length

log = logging.getLogger(__name__)

TEXT_EVENT = "message.text.received"
# What each non-text event is called for the dispatcher (see handlers/texts.UNSUPPORTED_KINDS).
OTHER_EVENTS = {
    "message.image.received": "image",
    "message.sticker.received": "sticker",
    "message.voice.received": "voice",
    "message.unsupported.received": "hidden",
}
GROUP_CHAT_TYPES = {"GROUP"}  # hocvuso talks one to one: a group's messages are confirmed and dropped
KEY_MAX = column_length(InboxUpdate, "delivery_key")
CHAT_ID_MAX = column_length(InboxUpdate, "chat_id")
POLL_BACKOFF_MAX = 30.0
TOKEN_REFUSED_WAIT = 300.0
STORE_GRACE = 10.0  # seconds a stop gives the updates already fetched to be stored
# Publishes a file and gives back the link's text; None when this server cannot serve files.
FileLink = Callable[[Attachment], Awaitable["Link | None"]]

NO_LINK = ("📎 Zalo không gửi được tệp “{name}”, và trợ lý chưa có địa chỉ web để tạo đường dẫn tải. "
           "Bạn lấy tệp này qua Telegram, hoặc báo cán bộ xã giúp.")
FILE_LINK = ("📎 Tải tệp “{name}” tại đường dẫn (link) này:\n{url}\n"
             "Đường dẫn dùng được đến {until}; hết hạn thì bạn xin lại tệp.")
PHOTO_LINK = "🖼️ Không xem được ảnh? Mở đường dẫn (link) này:\n{url}\n(dùng được đến {until})"

@dataclass(frozen=True)
class Link:
    url: str
    until: str  # when it stops working, as the person reads it ("17:05 ngày 27/11")


# --- Zalo -> Incoming -----------------------------------------------------------------------------

def delivery_key(update: ZaloUpdate) -> str:
    """A chat's message id; an update without one is known by a digest of what it carries, so the same
    update delivered twice is still handled once."""
    if update.message_id:
        return f"m:{update.chat_id}:{update.message_id}"
    digest = hashlib.sha256(json.dumps(update.raw, sort_keys=True, default=str).encode()).hexdigest()
    return f"h:{digest[:40]}"


def usable(update: ZaloUpdate, key: str) -> bool:
    """An update hocvuso answers: from a person, in a one-to-one chat, with ids that fit the inbox."""
    return (not update.is_bot and bool(update.chat_id) and update.chat_type.upper() not in GROUP_CHAT_TYPES
            and len(update.chat_id) <= CHAT_ID_MAX and len(key) <= KEY_MAX and "\x00" not in key + update.chat_id)


def to_incoming(update: ZaloUpdate) -> Incoming | None:
    """The neutral form of a Zalo event; None for what hocvuso does not answer."""
    key = delivery_key(update)
    if not usable(update, key):
        return None
    name = update.display_name or None
    if update.event_name == TEXT_EVENT and update.text is not None:
        return Incoming.from_text(CHANNEL, update.chat_id, update.text, display_name=name, delivery_key=key)
    # Any other event, known or not yet (Zalo adds new ones), gets the kind answer for what it was.
    what = OTHER_EVENTS.get(update.event_name, "hidden")
    return Incoming(CHANNEL, update.chat_id, Kind.UNSUPPORTED, what, name, key)


# --- Reply -> what to send ------------------------------------------------------------------------

@dataclass(frozen=True)
class ZaloCall:
    """One message of an answer: a text, or a photo by its address."""

    method: str  # text | photo
    text: str
    photo: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"method": self.method, "text": self.text, "photo": self.photo}

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> ZaloCall:
        return cls(str(value.get("method") or "text"), str(value.get("text") or ""), str(value.get("photo") or ""))


def _texts(text: str) -> list[ZaloCall]:
    return [ZaloCall("text", part) for part in split_text(text, ZALO.text_limit) if part.strip()]


async def plan(replies: list[Reply], file_link: FileLink | None = None) -> list[ZaloCall]:
    """The messages that show `replies` on Zalo, in order: short replies folded into the next, a menu
    as "Gõ N → …" lines at the end of its message, text split at 2,000 characters on paragraph
    boundaries, a file as a download link (a chart also as a photo)."""
    calls: list[ZaloCall] = []
    for reply in merge_replies(replies, ZALO.text_limit):
        attachment = reply.attachment
        if attachment is None:
            calls.extend(_texts(as_numbered(reply)))
            continue
        link = await file_link(attachment) if file_link is not None else None
        if link is None:
            note = NO_LINK.format(name=attachment.file_name)
        elif attachment.kind == "photo":
            calls.append(ZaloCall("photo", "", link.url))
            note = PHOTO_LINK.format(url=link.url, until=link.until)
        else:
            note = FILE_LINK.format(name=attachment.file_name, url=link.url, until=link.until)
        text = f"{reply.text}\n\n{note}" if reply.text.strip() else note
        calls.extend(_texts(as_numbered(replace(reply, text=text, attachment=None))))
    return calls


# --- the channel ----------------------------------------------------------------------------------

def make_client(settings: Settings, sleep: Sleep) -> ZaloClient:
    assert settings.zalo_token is not None
    return ZaloClient(settings.zalo_token.get_secret_value(), settings.zalo_api_url, settings.zalo_timeout,
                      settings.zalo_max_retries, sleep)


class ZaloChannel(InboxChannel):
    """The Zalo side of hocvuso: inbox in, dispatcher, messages out."""

    channel = CHANNEL

    def __init__(self, dispatcher: Dispatcher, settings: Settings, *, polling: bool,
                 file_link: FileLink | None = None, sleep: Sleep = asyncio.sleep) -> None:
        super().__init__(dispatcher, settings.zalo_concurrency, sleep)
        # The client's own pauses (a back-off, a short quota wait) lend the chat's slot to another chat.
        self.client = make_client(settings, self._wait_without_a_slot)
        self.file_link = file_link
        self.polling = polling
        self.poll_timeout = settings.zalo_poll_timeout
        self.webhook_url = f"{settings.webhook_url}/webhook/zalo" if settings.webhook_url else None
        self.webhook_secret = (settings.zalo_webhook_secret.get_secret_value()
                               if settings.zalo_webhook_secret else None)
        # Polled updates on their way to the inbox; None tells the storer to end.
        self._arrived: asyncio.Queue[list[Arrived] | None] = asyncio.Queue()
        self._poller: asyncio.Task[None] | None = None
        self._storer: asyncio.Task[None] | None = None

    def outbox(self) -> ZaloOutbox:
        """The outbox's transport for Zalo: a message with a menu stores it for the chat when sent."""
        return ZaloOutbox(self.client, remember_menu=self.remember_menu)

    async def start(self) -> None:
        """Check the token (getMe), replay what the inbox still holds, then take new updates."""
        await self.client.get_me()
        if self.polling:
            with contextlib.suppress(ZaloError):  # none was set: Zalo may answer with an error
                await self.client.delete_webhook()
        await self._start_inbox()
        if self.polling:
            self._storer = asyncio.create_task(self._store_forever(), name="zalo-store")
            self._poller = asyncio.create_task(self._poll_forever(), name="zalo-poll")
        else:
            assert self.webhook_url is not None and self.webhook_secret is not None
            await self.client.set_webhook(self.webhook_url, self.webhook_secret)

    async def stop(self) -> None:
        """Stop fetching, store what was fetched, finish the updates in hand, then close; the rest waits
        in the inbox."""
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        if self._storer is not None:
            self._arrived.put_nowait(None)  # stored up to here, then it ends
            try:
                await asyncio.wait_for(self._storer, STORE_GRACE)
            except TimeoutError:
                log.warning("zalo: updates fetched before the stop could not be stored")
        await self._stop_inbox()
        await self.client.aclose()

    async def remember_menu(self, external_id: str, replies: list[Reply]) -> None:
        """After a message the bot started (a reminder) with choices: "1" now means its first choice, as
        after any answer, since it is the list the person sees last."""
        async with self.database.session() as session:
            state = await queries.load_state(session, CHANNEL, external_id, self.clock())
            remember_menu(state, replies)
            session.add(state)

    # --- receiving -------------------------------------------------------------------------------

    async def accept_webhook(self, payload: object) -> int:
        """Store a posted update; the HTTP status to answer (200 only once it is stored or skipped)."""
        try:
            await self._store(self._read(parse_updates(payload)))
        except Exception:
            log.exception("zalo update not stored; Zalo will send it again")
            return 503
        return 200

    async def _poll_forever(self) -> None:
        """Poll again as soon as an answer came: Zalo has no offset and counts an update delivered once it
        answered the poll, so waiting for the commit before the next poll would protect nothing and
        make every update wait for the one before (docs/BENCHMARKS.md, "Zalo")."""
        backoff = 1.0
        while True:
            try:
                received = self._read(await self.client.get_updates(self.poll_timeout))
                if received:
                    self._arrived.put_nowait(received)
            except asyncio.CancelledError:
                raise
            except ZaloUnauthorized:
                log.error("zalo refused the bot token while polling; trying again in %.0f s", TOKEN_REFUSED_WAIT)
                await self.sleep(TOKEN_REFUSED_WAIT)
                continue
            except ZaloQuotaExceeded as error:
                log.warning("zalo polling: quota used up; trying again in %.0f s", error.pause)
                await self.sleep(error.pause)
                continue
            except Exception as error:
                # One line per failed round, and the pause grows: an outage never floods the log.
                log.warning("zalo polling failed (%s); trying again in %.0f s", type(error).__name__, backoff)
                await self.sleep(backoff)
                backoff = min(backoff * 2, POLL_BACKOFF_MAX)
                continue
            backoff = 1.0

    async def _store_forever(self) -> None:
        """Store what the poller fetched, everything waiting in one durable commit; a failed store is
        tried again (never dropped) until it succeeds or the channel stops."""
        backoff = 1.0
        batch: list[Arrived] = []
        ending = False
        while not (ending and not batch):
            if not batch and not ending:
                item = await self._arrived.get()
                ending = item is None
                batch = item or []
            while not self._arrived.empty():
                item = self._arrived.get_nowait()
                ending = ending or item is None
                batch += item or []
            try:
                await self._store(batch)
            except Exception as error:
                if ending:
                    log.warning("zalo: %d update(s) fetched before the stop were not stored (%s)",
                                len(batch), type(error).__name__)
                    return
                log.warning("zalo updates not stored (%s); trying again in %.0f s", type(error).__name__, backoff)
                await self.sleep(backoff)
                backoff = min(backoff * 2, POLL_BACKOFF_MAX)
                continue
            batch, backoff = [], 1.0

    @staticmethod
    def _read(updates: list[ZaloUpdate]) -> list[Arrived]:
        received: list[Arrived] = []
        for update in updates:
            incoming = to_incoming(update)
            if incoming is None:
                continue  # a group, the bot's own message, ids that do not fit: confirmed and forgotten
            assert incoming.delivery_key is not None  # every Zalo update has one
            received.append((inbox.Received(incoming.delivery_key, update.chat_id, dict(update.raw)),
                             update, incoming))
        return received

    # --- handling and answering ---------------------------------------------------------------

    async def _finish_job(self, job: Job) -> None:
        pending = job.pending
        calls = None if pending.replies is None else [ZaloCall.from_json(c) for c in pending.replies]
        if calls is None:
            calls = await self._handle(job)
        if calls is not None:
            await self._send(pending, calls)

    async def _handle(self, job: Job) -> list[ZaloCall] | None:
        """Run the dispatcher; the answer's messages are stored in the same commit. None: nothing to send."""
        pending = job.pending
        incoming = job.incoming
        if incoming is None:
            update = ZaloUpdate.from_dict(pending.payload)
            incoming = to_incoming(update) if update is not None else None
        if incoming is None:
            await self._close_unusable(pending)
            return None
        kept: list[ZaloCall] | None = None

        async def keep(session: Any, replies: list[Reply]) -> None:
            nonlocal kept
            kept = await plan(replies, self.file_link)
            await inbox.keep_replies(await session.connection(), pending.id, [call.to_json() for call in kept])

        replies = await self.dispatcher.handle(incoming, keep=keep)
        if kept is not None:
            return kept
        calls = await plan(replies)  # the turn failed: the apology
        await self._keep_apology(pending, [call.to_json() for call in calls])
        return calls

    async def _send(self, pending: inbox.Pending, calls: list[ZaloCall]) -> None:
        """Send the messages not sent yet, recording each, then close the row."""
        done = pending.sent
        try:
            for index in range(pending.sent, len(calls)):
                await self._perform(pending.chat_id, calls[index])
                done = index + 1
                if done < len(calls):
                    await self._record_sent(pending.id, done, finished=False)
        except ZaloUnreachable:
            async with self.database.session() as session:
                await queries.set_blocked(session, CHANNEL, pending.chat_id, True)
            log.info("chat blocked the bot: zalo chat marked blocked")
        except (ZaloServerError, ZaloNetworkError) as error:
            if error.maybe_delivered:
                done += 1  # it may have arrived: counted, so a restart does not send it twice
            log.warning("zalo answer given up after retries (%s)", type(error).__name__)
        except ZaloError as error:
            log.warning("zalo answer given up (%s)", error)
        await self._record_sent(pending.id, min(done, len(calls)), finished=True)

    async def _perform(self, chat_id: str, call: ZaloCall) -> None:
        if call.method == "photo" and call.photo:
            await self.client.send_photo(chat_id, call.photo, call.text or None)
        elif call.text.strip():
            await self.client.send_message(chat_id, call.text)
