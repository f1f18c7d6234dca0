"""The neutral message types every channel translates to and from."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

LONE_SURROGATE = re.compile("[\ud800-\udfff]")


class Kind(StrEnum):
    """What a person sent."""

    TEXT = "text"
    COMMAND = "command"
    ACTION = "action"  # a button press
    CONTACT = "contact"
    UNSUPPORTED = "unsupported"  # sticker, photo, voice, location ...


@dataclass(frozen=True)
class Incoming:
    """One thing a person sent, in any channel."""

    channel: str
    user_id: str
    kind: Kind
    text: str = ""
    display_name: str | None = None
    delivery_key: str | None = None  # the channel's update id, for dedupe; None for the console
    # A photo's id on its channel (Telegram's file_id): the photo stays there, and a step that takes a
    # photo (an activity's, handlers/activities.py) keeps only this id.
    file_id: str | None = None

    def __post_init__(self) -> None:
        # Unikey's "Unicode tổ hợp" and some phones type Vietnamese decomposed (e + combining marks):
        # composed once here, every channel's text, names and ids compare and store as NFC.
        if not isinstance(self.display_name, str | None):  # a channel's odd name field is no name at all
            object.__setattr__(self, "display_name", None)
        for name in ("user_id", "text", "display_name"):
            value = getattr(self, name)
            if not isinstance(value, str):
                continue
            # A lone surrogate ("\ud800" in a JSON update) cannot be encoded to send back: it becomes
            # U+FFFD, so text echoed in an answer never makes the answer fail.
            value = LONE_SURROGATE.sub("\ufffd", value)
            if not unicodedata.is_normalized("NFC", value):
                value = unicodedata.normalize("NFC", value)
            if value is not getattr(self, name):
                object.__setattr__(self, name, value)

    @classmethod
    def from_text(cls, channel: str, user_id: str, text: str, **extra: object) -> Incoming:
        """Text typed by a person; a leading slash makes it a command."""
        stripped = text.strip()
        kind = Kind.COMMAND if stripped.startswith("/") and len(stripped) > 1 else Kind.TEXT
        return cls(channel=channel, user_id=user_id, kind=kind, text=text, **extra)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Button:
    label: str
    action: str


@dataclass(frozen=True)
class Attachment:
    file_name: str
    data: bytes
    kind: str = "document"  # document | photo


@dataclass(frozen=True)
class Reply:
    """One message to send back; buttons are rows of (label, action)."""

    text: str
    buttons: tuple[tuple[Button, ...], ...] = ()
    attachment: Attachment | None = None
    # Something to keep (a household code, a result): always its own message, never merged or edited away.
    standalone: bool = False
    # The same screen redrawn after a press on it (next card, a ticked box): a channel may edit the
    # pressed message in place instead of sending a new one.
    redraw: bool = False

    @property
    def actions(self) -> list[str]:
        return [button.action for row in self.buttons for button in row]

    @property
    def labels(self) -> list[str]:
        return [button.label for row in self.buttons for button in row]


def redrawn(replies: list[Reply]) -> list[Reply]:
    """Mark replies as the same screen redrawn after a press on it (see `Reply.redraw`)."""
    return [replace(reply, redraw=True) for reply in replies]


@dataclass(frozen=True)
class Capabilities:
    """What a channel can show."""

    buttons: bool
    text_limit: int


CONSOLE = Capabilities(buttons=False, text_limit=4096)
TELEGRAM = Capabilities(buttons=True, text_limit=4096)
ZALO = Capabilities(buttons=False, text_limit=2000)


@dataclass
class Keyboard:
    """Builds button rows; one button per row reads best on a small phone."""

    rows: list[tuple[Button, ...]] = field(default_factory=list)

    def add(self, label: str, action: str) -> Keyboard:
        self.rows.append((Button(label, action),))
        return self

    def build(self) -> tuple[tuple[Button, ...], ...]:
        return tuple(self.rows)


def to_payload(replies: list[Reply]) -> list[dict[str, Any]]:
    """Replies as JSON for the outbox: text and button rows (a message the bot starts carries no file)."""
    if any(reply.attachment is not None for reply in replies):
        raise ValueError("the outbox does not carry files")
    return [{"text": reply.text, "buttons": [[[button.label, button.action] for button in row]
                                             for row in reply.buttons]} for reply in replies]


def from_payload(payload: list[dict[str, Any]]) -> list[Reply]:
    return [Reply(str(item.get("text", "")),
                  tuple(tuple(Button(str(label), str(action)) for label, action in row)
                        for row in item.get("buttons") or ()))
            for item in payload]
