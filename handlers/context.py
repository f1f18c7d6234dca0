"""What a handler works with: the services injected at start, and the turn in hand."""

from __future__ import annotations

import random
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel.ext.asyncio.session import AsyncSession

from content.loader import Catalog
from handlers.core import Incoming
from storage.db import Database
from storage.models import ConversationState, Person

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class HandlerConfig:
    """The settings the conversation needs, handed in by the composition root."""

    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Ho_Chi_Minh"))
    commune_name: str = "xã Cát Thành"
    pass_percent: int = 80
    household_code_length: int = 6
    # Wrong household codes a chat may type within the window before it must wait: guessing turns
    # slow, while a person who mistypes is hardly ever held up (the head also sees who joined).
    household_code_tries: int = 5
    household_code_window_minutes: int = 60
    max_text_length: int = 1000
    review_after_days: int = 3
    # The yearly report's deadline (day, month): a reporting year ends on it.
    report_deadline: tuple[int, int] = (10, 12)
    # /xephang ranks only units with at least this many people (a share of 3 people says little).
    ranking_min_people: int = 10
    reminder_grace_hours: int = 24
    nudge_after_days: int = 5
    # The Telegram bot's username, for invitation deep links (t.me/<username>?start=CODE); None: no link.
    telegram_username: str | None = None
    # The bot's public web address (HOCVUSO_PUBLIC_URL): certificates carry a QR code of
    # {public_url}/xacthuc/{code}; None: no QR code, the certificate tells to ask the bot instead.
    public_url: str | None = None


@dataclass(frozen=True)
class Services:
    """Injected once: database, curriculum, configuration, clock and random source."""

    database: Database
    catalog: Catalog
    config: HandlerConfig
    clock: Clock
    random: random.Random
    # Where charts and files are drawn. Drawing is pure Python: on a thread it holds the GIL against
    # the chats, so `hocvuso run` gives a process (bot/app.process_renderer; docs/BENCHMARKS.md). None
    # is the event loop's default thread pool: the terminal chat and tests, where one person waits.
    renderer: Executor | None = None
    # What this process counted or made recently, so a double tap or a flood builds a report once
    # (handlers/report.py) and counts the rankings once a minute (handlers/rankings.py). In memory on
    # purpose: losing it on restart only costs one more count.
    recent_files: dict[Any, Any] = field(default_factory=dict, compare=False)

    def core_lessons(self, now: datetime) -> tuple[str, ...]:
        """The core lessons that count towards "finished" at `now` (content/schema.Course.required_from)."""
        return self.catalog.core_lessons(now.astimezone(self.config.zone).date())


NOT_FETCHED: Any = object()
"""`Turn.prefetched` before any prefetch ran."""


class NeedsPrefetch(Exception):
    """Raised by a handler that needs a long read done outside the turn's transaction.

    The dispatcher rolls the turn back, runs the prefetch registered under `name` (see Registry)
    with `argument`, and handles the message again with its result in `Turn.prefetched`.
    """

    def __init__(self, name: str, argument: str) -> None:
        super().__init__(name)
        self.name, self.argument = name, argument


@dataclass
class Turn:
    """One incoming message being handled, inside one database transaction."""

    incoming: Incoming
    session: AsyncSession
    state: ConversationState
    person: Person | None
    services: Services
    now: datetime
    prefetched: Any = NOT_FETCHED  # what a prefetch found outside the transaction (see NeedsPrefetch)
    # "Học cùng": the digital-team member whose chat this is, while `person` is the resident learning beside
    # them (handlers/assisted.py). None on every ordinary turn.
    helper: Person | None = None

    @property
    def helper_id(self) -> int | None:
        return self.helper.id if self.helper is not None else None

    @property
    def data(self) -> dict[str, Any]:
        return self.state.data

    def goto(self, step: str, **data: Any) -> None:
        """Move to `step` with fresh step data (JSON-serialisable values only)."""
        self.state.step = step
        self.state.data = dict(data)

    def update(self, **data: Any) -> None:
        # A new dict, so SQLAlchemy sees the JSON column change.
        self.state.data = {**self.state.data, **data}

    @property
    def catalog(self) -> Catalog:
        return self.services.catalog

    @property
    def config(self) -> HandlerConfig:
        return self.services.config

    @property
    def today(self) -> date:
        """Today in the commune's time zone."""
        return self.now.astimezone(self.config.zone).date()
