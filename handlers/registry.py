"""The explicit registry of commands, steps and button actions."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from handlers.context import Services, Turn
from handlers.core import Incoming, Reply

Replies = list[Reply]
CommandHandler = Callable[[Turn], Awaitable[Replies]]
ActionHandler = Callable[[Turn, str], Awaitable[Replies]]
StepView = Callable[[Turn], Awaitable[Replies]]
# Returns None when the step does not take this text, so the dispatcher answers for it.
TextHandler = Callable[[Turn, str], Awaitable[Replies | None]]
# Work done outside the turn's transaction, asked for by a handler raising NeedsPrefetch: a long read
# such as a unit's figures must not run while the turn holds the database (on SQLite: every chat's
# turn). Its result reaches the handler, on the turn's second run, as `Turn.prefetched`.
Prefetch = Callable[[Services, Incoming, str, datetime], Awaitable[Any]]


@dataclass(frozen=True)
class Command:
    name: str
    description: str  # shown in /trogiup and in the channel's command menu
    handler: CommandHandler
    listed: bool = True


@dataclass(frozen=True)
class Step:
    name: str
    view: StepView  # shows the step again: after bad input, a restart, or an old button
    on_text: TextHandler | None = None
    on_photo: TextHandler | None = None  # given the photo's file_id; a step without it gets the kind answer


@dataclass(frozen=True)
class ActionRoute:
    prefix: str
    handler: ActionHandler
    # Safe navigation (open a lesson, main menu) is honoured from any old message; anything else
    # must be among the buttons last shown, so an old or forged button cannot act.
    anywhere: bool = False


@dataclass
class Registry:
    commands: dict[str, Command] = field(default_factory=dict)
    steps: dict[str, Step] = field(default_factory=dict)
    actions: dict[str, ActionRoute] = field(default_factory=dict)
    # keyed by the name a handler gives NeedsPrefetch
    prefetchers: dict[str, Prefetch] = field(default_factory=dict)

    def add_command(self, name: str, description: str, handler: CommandHandler, *, listed: bool = True) -> None:
        self._unique(self.commands, name)
        self.commands[name] = Command(name, description, handler, listed)

    def add_step(self, name: str, view: StepView, on_text: TextHandler | None = None, *,
                 on_photo: TextHandler | None = None) -> None:
        self._unique(self.steps, name)
        self.steps[name] = Step(name, view, on_text, on_photo)

    def add_action(self, prefix: str, handler: ActionHandler, *, anywhere: bool = False) -> None:
        self._unique(self.actions, prefix)
        self.actions[prefix] = ActionRoute(prefix, handler, anywhere)

    def add_prefetch(self, name: str, prefetch: Prefetch) -> None:
        self._unique(self.prefetchers, name)
        self.prefetchers[name] = prefetch

    @staticmethod
    def _unique(table: dict[str, object], key: str) -> None:
        if key in table:
            raise ValueError(f"registered twice: {key}")
