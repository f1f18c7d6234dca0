"""Test helpers: an injectable clock, and a chat that reads like a conversation on any channel.

`Chat` is the console: text typed in, each reply shown as `as_numbered` renders it (what
`bot/channels/console.render` prints), a choice made by typing its number. `Chat.on(channel, …)` gives
the same person on Telegram or Zalo, through that channel's own adapter code both ways and without a
network: what the person does becomes the update JSON the platform would post, read by the channel's
parser; the answer is planned by the channel's `plan` into the calls it would make, and the transcript
is what the phone would show. A test written against `Chat`'s methods runs unchanged on all three.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any, ClassVar

from handlers.core import Incoming, Kind, Reply
from handlers.dispatcher import Dispatcher
from handlers.render import MENU_LINE, as_numbered

START = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)  # 08:00 in Ninh Bình
CHANNELS = ("console", "telegram", "zalo")


@dataclass
class FakeClock:
    """A clock that only moves when the test says so."""

    now: datetime = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


# Ids the platforms hand out: unique across every chat of a test run (a person's second `Chat`, as
# after a restart, must not repeat a message id the inbox has already seen).
_message_ids = count(1)
_update_ids = count(1)
_query_ids = count(4_410_000_000_000_000_001)

TYPED_CHOICE = re.compile("^" + re.escape(MENU_LINE).replace(r"\{number\}", r"(\d+)").replace(r"\{label\}", "(.+)")
                          + "$")


def typed_choices(text: str) -> tuple[tuple[str, str], ...]:
    """The "Gõ 1 → Tiếp ▶️" lines that end a message, as (label, what to type)."""
    choices: list[tuple[str, str]] = []
    for line in reversed(text.splitlines()):
        match = TYPED_CHOICE.match(line)
        if match is None:
            break
        choices.insert(0, (match[2], match[1]))
    return tuple(choices)


@dataclass(frozen=True)
class Shown:
    """One message of an answer as the person sees it, and the choices it offers.

    `choices` are (label as read, what picking it sends): the number to type on the console and Zalo,
    the button's callback data on Telegram, where `message_id` is the message the buttons are on."""

    text: str
    choices: tuple[tuple[str, str], ...] = ()
    message_id: int | None = None
    rows: tuple[tuple[tuple[str, str], ...], ...] = ()  # Telegram's button rows of (label, callback data)


@dataclass
class Chat:
    """One person talking to the bot, as a numbered-menu channel would show it.

    Built directly, it talks to the dispatcher under `channel`'s name (the console, or a channel's
    name only); `Chat.on(channel, …)` goes through the channel's adapter."""

    dispatcher: Dispatcher
    user: str = "an"
    channel: str = "console"
    display_name: str | None = None
    replies: list[Reply] = field(default_factory=list)
    shown: list[Shown] = field(default_factory=list)  # the last answer's messages
    screen: list[Shown] = field(default_factory=list, repr=False)  # the last answer that showed any
    last: Any = field(default=None, repr=False)  # what was sent last, to deliver it again

    @staticmethod
    def on(channel: str, dispatcher: Dispatcher, user: str = "an", display_name: str | None = None) -> Chat:
        """The person `user` on `channel` ("console", "telegram" or "zalo")."""
        kinds: dict[str, type[Chat]] = {"console": Chat, "telegram": TelegramChat, "zalo": ZaloChat}
        return kinds[channel](dispatcher, user=user, display_name=display_name)

    @property
    def external_id(self) -> str:
        """The chat's id as the database stores it (`ChannelAccount.external_id`)."""
        return self.user

    # --- what the person does ----------------------------------------------------------------------

    async def send(self, incoming: Incoming) -> str:
        """Hand `incoming` to the dispatcher as it is; the answer is shown as this channel shows it."""
        self.last = incoming
        return await self._answer(incoming)

    async def say(self, text: str) -> str:
        """Type `text`; returns everything the bot answered, as one string."""
        return await self.send(
            Incoming.from_text(self.channel, self.user, text, display_name=self.display_name)
        )

    async def press(self, action: str, delivery_key: str | None = None) -> str:
        """Press a button with this action (as a channel with buttons would send it): an old or forged
        button, as no choice shown needs it (`choose` and `pick` make those)."""
        return await self.send(
            Incoming(self.channel, self.external_id, Kind.ACTION, action, self.display_name, delivery_key)
        )

    async def send_sticker(self) -> str:
        return await self.send(Incoming(self.channel, self.user, Kind.UNSUPPORTED, "", self.display_name))

    async def choose(self, label_part: str) -> str:
        """Pick the choice whose label contains `label_part` (type its number, or press its button)."""
        return await self._pick(self._choice(label_part))

    async def pick(self, number: int) -> str:
        """Pick the `number`-th choice of the last menu shown (type the number, or press the button)."""
        choices = self.choices
        assert 1 <= number <= len(choices), f"no choice {number} among {self.labels}"
        return await self._pick(choices[number - 1])

    async def redeliver(self) -> str:
        """The channel delivers what was sent last once more (a retry after a lost acknowledgement)."""
        return await (self.send(self.last) if isinstance(self.last, Incoming) else self._receive(self.last))

    async def _pick(self, choice: tuple[str, str]) -> str:
        return await self.say(choice[1])

    async def _receive(self, payload: dict[str, Any]) -> str:
        """Read a platform's update as its channel does, and answer it (Telegram and Zalo)."""
        raise NotImplementedError

    async def _answer(self, incoming: Incoming, pressed_id: int | None = None) -> str:
        """The dispatcher's answer, shown as this channel shows it: on the console, each reply as
        `as_numbered` renders it; a choice is its number in its reply's menu."""
        self.replies = await self.dispatcher.handle(incoming)
        return self._showing([Shown(as_numbered(reply), tuple((label, str(number)) for number, label
                                                              in enumerate(reply.labels, start=1)))
                              for reply in self.replies])

    def _showing(self, shown: list[Shown]) -> str:
        """The answer's messages; an empty answer (a redelivery) leaves the screen as it was.

        On every channel the last choices shown must be the menu the dispatcher keeps for the chat
        (its last reply with buttons): what "2" or a button means is what the person reads."""
        menu = next((reply.labels for reply in reversed(self.replies) if reply.buttons), [])
        seen = next(([label for label, _ in each.choices] for each in reversed(shown) if each.choices), [])
        assert seen == menu, f"{self.channel} shows the choices {seen}, the dispatcher keeps {menu}"
        self.shown = shown
        if shown:
            self.screen = shown
        return self.transcript

    # --- what the person sees ----------------------------------------------------------------------

    @property
    def choices(self) -> tuple[tuple[str, str], ...]:
        """The choices of the last message on the screen that offers any: the menu a number means."""
        return next((shown.choices for shown in reversed(self.screen) if shown.choices), ())

    def number_of(self, label_part: str) -> int:
        labels = self.labels
        for number, label in enumerate(labels, start=1):
            if label_part in label:
                return number
        raise AssertionError(f"no button {label_part!r} among {labels}")

    def _choice(self, label_part: str) -> tuple[str, str]:
        return self.choices[self.number_of(label_part) - 1]

    @property
    def labels(self) -> list[str]:
        return [label for label, _ in self.choices]

    @property
    def transcript(self) -> str:
        return "\n".join(shown.text for shown in self.shown)


def _stable_number(channel: str, user: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{channel}:{user}".encode()).digest()[:6], "big") + 1


@dataclass
class TelegramChat(Chat):
    """The person on Telegram: Bot API updates in (`parse_update`, `to_incoming`), `plan`'s calls out.

    The chat keeps the messages the bot sent, so a press carries the message its button is on, and an
    edit (a redrawn screen) changes that message as Telegram would."""

    channel: str = "telegram"
    messages: dict[int, Shown] = field(default_factory=dict, repr=False)
    media: dict[int, str] = field(default_factory=dict, repr=False)  # message id -> photo | document

    TOKEN: ClassVar[str] = "110201543:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"  # the Bot API docs' example
    BOT_USER: ClassVar[dict[str, Any]] = {"id": 110201543, "is_bot": True, "first_name": "Học vụ số",
                                         "username": "hocvuso_bot"}
    _bot: ClassVar[Any] = None

    @property
    def chat_id(self) -> int:
        return _stable_number("telegram", self.user)

    @property
    def external_id(self) -> str:
        return str(self.chat_id)

    @classmethod
    def bot(cls) -> Any:
        """A `telegram.Bot` to read updates with: building one makes no request."""
        if cls._bot is None:
            from telegram import Bot

            cls._bot = Bot(cls.TOKEN)
        return cls._bot

    def _person(self) -> dict[str, Any]:
        # Telegram always has a first name; a test without a display name gets one that is no name
        # (the empty string reads as none), so the name step looks as on the console.
        return {"id": self.chat_id, "is_bot": False, "first_name": self.display_name or ""}

    def _chat(self) -> dict[str, Any]:
        return {"id": self.chat_id, "type": "private"}

    def _now(self) -> int:
        return int(self.dispatcher.services.clock().timestamp())

    def _message(self, **content: Any) -> dict[str, Any]:
        return {"update_id": next(_update_ids),
                "message": {"message_id": next(_message_ids), "date": self._now(), "chat": self._chat(),
                            "from": self._person(), **content}}

    async def say(self, text: str) -> str:
        return await self._receive(self._message(text=text))

    async def send_sticker(self) -> str:
        sticker = {"file_id": "CAACAgIAAxkBAAEBc2tnXm", "file_unique_id": "AgADc2t", "width": 512, "height": 512,
                   "is_animated": False, "is_video": False, "type": "regular", "emoji": "👍"}
        return await self._receive(self._message(sticker=sticker))

    async def send_photo(self, file_id: str = "AgACAgIAAxkBAAIBb2dQhotoLargeSize") -> str:
        """A photo as Telegram sends it: several sizes, the largest last."""
        sizes = [{"file_id": f"{file_id[:20]}small", "file_unique_id": "AQADs1", "width": 90, "height": 67,
                  "file_size": 1204},
                 {"file_id": file_id, "file_unique_id": "AQADx1", "width": 1280, "height": 960, "file_size": 120400}]
        return await self._receive(self._message(photo=sizes))

    async def press(self, action: str, delivery_key: str | None = None) -> str:
        """A callback query with `action` as its data, from the last message with buttons (an old or
        forged button). With `delivery_key`, the query id is the key: the same key twice is a redelivery."""
        on = next((shown.message_id for shown in reversed(self.messages.values()) if shown.choices), None)
        return await self._receive(self._callback(action, on, delivery_key))

    async def _pick(self, choice: tuple[str, str]) -> str:
        on = next(shown.message_id for shown in reversed(self.screen) if choice in shown.choices)
        return await self._receive(self._callback(choice[1], on))

    def _callback(self, data: str, message_id: int | None, query_id: str | None = None) -> dict[str, Any]:
        query: dict[str, Any] = {"id": query_id or str(next(_query_ids)), "from": self._person(),
                                 "chat_instance": str(-self.chat_id), "data": data}
        if message_id is not None:
            shown = self.messages[message_id]
            message: dict[str, Any] = {"message_id": message_id, "date": self._now(), "chat": self._chat(),
                                       "from": self.BOT_USER}
            if message_id in self.media:  # a file: its text is the caption
                message["caption"] = shown.text
                file = {"file_id": f"BQACAgIAAx{message_id}", "file_unique_id": f"AgAD{message_id}"}
                if self.media[message_id] == "photo":
                    message["photo"] = [{**file, "width": 1280, "height": 720}]
                else:
                    message["document"] = file
            else:
                message["text"] = shown.text
            if shown.rows:
                message["reply_markup"] = {"inline_keyboard": [[{"text": label, "callback_data": data}
                                                                for label, data in row] for row in shown.rows]}
            query["message"] = message
        return {"update_id": next(_update_ids), "callback_query": query}

    async def _receive(self, payload: dict[str, Any]) -> str:
        """What TelegramChannel does with an update, without the inbox and the network."""
        from bot.channels import telegram

        update = telegram.parse_update(payload, self.bot())
        assert update is not None, f"the Telegram channel cannot read {payload}"
        incoming = telegram.to_incoming(update)
        assert incoming is not None, f"the Telegram channel drops {payload}"
        assert incoming.delivery_key == telegram.delivery_key(update)
        pressed = update.callback_query.message if update.callback_query is not None else None
        self.last = payload
        return await self._answer(incoming, pressed.message_id if pressed is not None else None)

    async def _answer(self, incoming: Incoming, pressed_id: int | None = None) -> str:
        """As TelegramChannel answers: the calls planned in the turn's commit (`keep`), or, after a
        failed turn, those of the apology."""
        from bot.channels import telegram

        kept: list[Any] | None = None

        async def keep(_session: Any, replies: list[Reply]) -> None:
            nonlocal kept
            kept = telegram.plan(replies, pressed_id)

        self.replies = await self.dispatcher.handle(incoming, keep=keep)
        calls = kept if kept is not None else telegram.plan(self.replies)
        return self._showing([self._show(call) for call in calls])

    def _show(self, call: Any) -> Shown:
        """The message a call leaves on the screen; an edit Telegram refuses (a media message, or one
        this chat never saw) is sent as a new message, as `ReplySender.perform` does."""
        if call.method == "edit" and call.message_id in self.messages and call.message_id not in self.media:
            message_id = call.message_id
        else:
            message_id = next(_message_ids)
        if call.method in ("document", "photo"):
            self.media[message_id] = call.method
        lines = [f"📎 {call.file_name}"] if call.file_name else []
        lines += [call.text] if call.text else []
        lines += [" ".join(f"[{label}]" for label, _ in row) for row in call.rows]
        shown = Shown("\n".join(lines), self._choices(call.text, call.rows), message_id, call.rows)
        self.messages.pop(message_id, None)  # an edited message moves to the end: it is the newest screen
        self.messages[message_id] = Shown(call.text, shown.choices, message_id, call.rows)
        return shown

    @staticmethod
    def _choices(text: str, rows: Any) -> tuple[tuple[str, str], ...]:
        """Each button as (label, callback data); number buttons take the label listed for them in the
        text (`keyboard_for` lists labels too long for a button)."""
        buttons = [button for row in rows for button in row]
        numbers = [str(number) for number in range(1, len(buttons) + 1)]
        lines = text.splitlines()[-len(buttons):] if buttons else []
        if [label for label, _ in buttons] == numbers and [line.partition(". ")[0] for line in lines] == numbers:
            return tuple((line.partition(". ")[2], data) for line, (_, data) in zip(lines, buttons, strict=True))
        return tuple(buttons)


@dataclass
class ZaloChat(Chat):
    """The person on Zalo: Zalo updates in (`ZaloUpdate.from_dict`, `to_incoming`), `plan`'s messages
    out. Zalo has no buttons: a choice is typed by its number, as on the console; files become the note
    that they cannot be sent (no download link is set up here)."""

    channel: str = "zalo"

    @property
    def external_id(self) -> str:
        return f"{_stable_number('zalo', self.user):016x}"

    def _event(self, event_name: str, message_id: str | None = None, **content: Any) -> dict[str, Any]:
        sender: dict[str, Any] = {"id": self.external_id, "is_bot": False}
        if self.display_name:
            sender["display_name"] = self.display_name
        return {"event_name": event_name,
                "message": {"from": sender, "chat": {"id": self.external_id, "chat_type": "PRIVATE"},
                            "message_id": message_id or f"{next(_message_ids):x}",
                            "date": int(self.dispatcher.services.clock().timestamp() * 1000), **content}}

    async def say(self, text: str) -> str:
        return await self._receive(self._event("message.text.received", text=text))

    async def send_sticker(self) -> str:
        return await self._receive(self._event("message.sticker.received", sticker="d7a4b2f0c1e3",
                                               url="https://zalo-api.zadn.vn/sticker/d7a4b2f0c1e3"))

    async def press(self, action: str, delivery_key: str | None = None) -> str:
        """Zalo has no buttons: an action of the menu shown is typed by its number; any other (an old
        or forged button, which no Zalo user can press) reaches the dispatcher as an action, to test
        its guard. With `delivery_key`, the typed message's id is the key: twice is a redelivery."""
        menu = next((reply.actions for reply in reversed(self.replies) if reply.buttons), [])
        if action in menu:
            typed = str(menu.index(action) + 1)
            return await self._receive(self._event("message.text.received", delivery_key, text=typed))
        key = delivery_key or f"m:{self.external_id}:{next(_message_ids):x}"
        return await self.send(Incoming(self.channel, self.external_id, Kind.ACTION, action, self.display_name, key))

    async def _receive(self, payload: dict[str, Any]) -> str:
        """What ZaloChannel does with an update, without the inbox and the network."""
        from bot.channels import zalo
        from bot.channels.zalo_client import ZaloUpdate

        update = ZaloUpdate.from_dict(payload)
        assert update is not None, f"the Zalo channel cannot read {payload}"
        incoming = zalo.to_incoming(update)
        assert incoming is not None, f"the Zalo channel drops {payload}"
        assert incoming.delivery_key == zalo.delivery_key(update)
        self.last = payload
        return await self._answer(incoming)

    async def _answer(self, incoming: Incoming, pressed_id: int | None = None) -> str:
        """As ZaloChannel answers: the messages planned in the turn's commit, or the apology's."""
        from bot.channels import zalo

        kept: list[Any] | None = None

        async def keep(_session: Any, replies: list[Reply]) -> None:
            nonlocal kept
            kept = await zalo.plan(replies)

        self.replies = await self.dispatcher.handle(incoming, keep=keep)
        calls = kept if kept is not None else await zalo.plan(self.replies)
        return self._showing([Shown(text, typed_choices(text)) for text in
                              (f"🖼️ {call.photo}\n{call.text}".strip() if call.method == "photo" else call.text
                               for call in calls)])


async def converse(chat: Chat, script: list[tuple[str, str]]) -> None:
    """Play a conversation: each line is (what the person types, text expected in the answer).

    A line starting with '#' picks the choice whose label contains the rest of the line.
    """
    for said, expected in script:
        answer = await (chat.choose(said[1:]) if said.startswith("#") else chat.say(said))
        assert expected in answer, f"after {said!r} on {chat.channel} expected {expected!r} in:\n{answer}"


def threads_only() -> None:
    """A Runtime's renderer for tests of the channels: charts on the event loop's thread pool, not in
    a process of their own (spawning one costs seconds per test). tests/test_faults.py runs `hocvuso
    run` itself, with its renderer process."""
    return None
