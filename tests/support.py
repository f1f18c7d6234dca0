"""Test helpers: an injectable clock and a chat that reads like a conversation."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import count

from handlers.core import Incoming, Kind, Reply
from handlers.dispatcher import Dispatcher
from handlers.render import as_numbered

START = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)  # 08:00 in Ninh Bình


@dataclass
class FakeClock:
    """A clock that only moves when the test says so."""

    now: datetime = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


_keys = count(1)


@dataclass
class Chat:
    """One person talking to the bot, as a numbered-menu channel would show it."""

    dispatcher: Dispatcher
    user: str = "an"
    channel: str = "console"
    display_name: str | None = None
    replies: list[Reply] = field(default_factory=list)

    async def send(self, incoming: Incoming) -> str:
        self.replies = await self.dispatcher.handle(incoming)
        return self.transcript

    async def say(self, text: str) -> str:
        """Type `text`; returns everything the bot answered, as one string."""
        return await self.send(
            Incoming.from_text(self.channel, self.user, text, display_name=self.display_name)
        )

    async def press(self, action: str, delivery_key: str | None = None) -> str:
        """Press a button with this action (as a channel with buttons would send it)."""
        return await self.send(
            Incoming(self.channel, self.user, Kind.ACTION, action, self.display_name, delivery_key)
        )

    async def send_sticker(self) -> str:
        return await self.send(Incoming(self.channel, self.user, Kind.UNSUPPORTED, "", self.display_name))

    async def choose(self, label_part: str) -> str:
        """Type the number of the button whose label contains `label_part`."""
        return await self.say(str(self.number_of(label_part)))

    def number_of(self, label_part: str) -> int:
        labels = self.labels
        for number, label in enumerate(labels, start=1):
            if label_part in label:
                return number
        raise AssertionError(f"no button {label_part!r} among {labels}")

    @property
    def labels(self) -> list[str]:
        buttons = [reply for reply in self.replies if reply.buttons]
        return [b.label for row in buttons[-1].buttons for b in row] if buttons else []

    @property
    def transcript(self) -> str:
        return "\n".join(as_numbered(reply) for reply in self.replies)


async def converse(chat: Chat, script: list[tuple[str, str]]) -> None:
    """Play a conversation: each line is (what the person types, text expected in the answer).

    A line starting with '#' presses the button whose label contains the rest of the line.
    """
    for said, expected in script:
        answer = await (chat.choose(said[1:]) if said.startswith("#") else chat.say(said))
        assert expected in answer, f"after {said!r} expected {expected!r} in:\n{answer}"


def threads_only() -> None:
    """A Runtime's renderer for tests of the channels: charts on the event loop's thread pool, not in
    a process of their own (spawning one costs seconds per test). tests/test_faults.py runs `hocvuso
    run` itself, with its renderer process."""
    return None
