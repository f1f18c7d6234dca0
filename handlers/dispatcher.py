"""Routes each incoming message to its handler inside one transaction, and remembers the menu."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from handlers import (
    account,
    announcements,
    certificates,
    deadlines,
    home,
    learning,
    members,
    nudges,
    quiz,
    rankings,
    registration,
    report,
    review,
    roles,
    texts,
    unit_figures,
)
from handlers.context import NOT_FETCHED, NeedsPrefetch, Services, Turn
from handlers.core import Incoming, Keyboard, Kind, Reply
from handlers.numbers import typed_number
from handlers.registry import Registry, Replies
from storage import queries

log = logging.getLogger(__name__)

# Stores a turn's replies inside the turn's own transaction (see `Dispatcher.handle`).
KeepReplies = Callable[[AsyncSession, Replies], Awaitable[None]]


def build_registry() -> Registry:
    """Every conversation of hocvuso, registered explicitly in menu order."""
    registry = Registry()
    for module in (home, learning, quiz, review, registration, account, roles, members, unit_figures, report, rankings,
                   certificates, announcements, nudges, deadlines):
        module.register(registry)
    return registry


def command_name(text: str) -> str:
    """'/Start@hocvuso_bot payload' -> 'start'."""
    word = text.strip().split(maxsplit=1)[0] if text.strip() else ""
    return word.lstrip("/").split("@", 1)[0].lower()


class Dispatcher:
    """Turns an `Incoming` into replies; the only entry point channels call."""

    def __init__(self, services: Services, registry: Registry | None = None) -> None:
        self.services = services
        self.registry = registry or build_registry()

    async def handle(self, incoming: Incoming, keep: KeepReplies | None = None) -> Replies:
        """The replies to `incoming`.

        `keep`, when given, runs inside the message's transaction with the replies, so a channel can
        store what it must still send in the same commit that changes the conversation: a crash after
        the commit then loses no answer. On a failed turn `keep` has not run.
        """
        try:
            return await self._handle(incoming, keep)
        except Exception:
            # Logged with the delivery key only: never names, phone numbers or message text.
            log.exception("handler failed: channel=%s update=%s", incoming.channel, incoming.delivery_key)
            return await self._apologise(incoming)

    async def _apologise(self, incoming: Incoming) -> Replies:
        """The apology after a failed turn, with its one button stored as the chat's menu.

        The failed turn's rollback also undid its menu, so "1" would still mean the first button of the
        screen before (on /xoadulieu: erase everything). A fresh transaction stores the apology's menu;
        when even that fails (database down) the apology has no buttons, so no number can be taken for
        a button of an older screen.
        """
        apology = Reply(texts.SORRY, Keyboard().add(texts.BTN_MENU, "menu").build())
        try:
            async with self.services.database.session() as session:
                now = self.services.clock()
                state = await queries.load_state(session, incoming.channel, incoming.user_id, now)
                state.menu, state.updated_at = apology.actions, now
                session.add(state)
        except Exception:
            log.exception("menu not stored after a failure: channel=%s update=%s",
                          incoming.channel, incoming.delivery_key)
            return [Reply(texts.SORRY)]
        return [apology]

    async def _handle(self, incoming: Incoming, keep: KeepReplies | None) -> Replies:
        """One turn; a turn that asks for a long read is given up, the read done outside, and redone."""
        now = self.services.clock()
        try:
            return await self._turn(incoming, keep, now, NOT_FETCHED)
        except NeedsPrefetch as need:
            # Nothing of the first try was committed (its transaction rolled back), so the turn is
            # simply done again, with the read's result in hand.
            prefetch = self.registry.prefetchers[need.name]
            prefetched = await prefetch(self.services, incoming, need.argument, now)
            return await self._turn(incoming, keep, now, prefetched)

    async def _turn(self, incoming: Incoming, keep: KeepReplies | None, now: datetime, prefetched: Any) -> Replies:
        async with self.services.database.session() as session:
            if incoming.delivery_key and not await queries.mark_processed(
                session, incoming.channel, incoming.delivery_key, now
            ):
                if keep is not None:
                    await keep(session, [])
                return []  # a redelivery of an update already answered
            state, person = await queries.load_chat(session, incoming.channel, incoming.user_id, now)
            turn = Turn(incoming, session, state, person, self.services, now, prefetched)
            replies = await self._route(turn)
            state.menu = next((reply.actions for reply in reversed(replies) if reply.buttons), [])
            state.updated_at = now
            session.add(state)
            if keep is not None:
                await keep(session, replies)
            return replies

    async def _route(self, turn: Turn) -> Replies:
        incoming = turn.incoming
        if len(incoming.text) > self.services.config.max_text_length:
            return [Reply(texts.TOO_LONG), *await self.current_view(turn)]
        if incoming.kind is Kind.COMMAND:
            return await self._command(turn)
        if incoming.kind is Kind.ACTION:
            return await self._action(turn, incoming.text)
        if incoming.kind is Kind.TEXT:
            return await self._text(turn, incoming.text.strip())
        return [Reply(texts.UNSUPPORTED), *await self.current_view(turn)]

    async def _command(self, turn: Turn) -> Replies:
        name = command_name(turn.incoming.text)
        command = self.registry.commands.get(name)
        if command is None:
            return [Reply(texts.UNKNOWN_COMMAND.format(command="/" + name[:30])), *await self.current_view(turn)]
        return await command.handler(turn)

    async def _action(self, turn: Turn, action: str) -> Replies:
        prefix, _, argument = action.partition(":")
        route = self.registry.actions.get(prefix)
        if route is None or (not route.anywhere and action not in turn.state.menu):
            return [Reply(texts.STALE_BUTTON), *await self.current_view(turn)]
        return await route.handler(turn, argument)

    async def _text(self, turn: Turn, text: str) -> Replies:
        if turn.state.step == "new":  # the first message of a new chat, whatever it says
            return await home.start(turn)
        menu = turn.state.menu
        number = typed_number(text)
        if number is not None and 1 <= number <= len(menu):
            return await self._action(turn, menu[number - 1])
        if text.lower() in texts.HOME_WORDS:
            return await home.show_main_menu(turn)
        step = self.registry.steps.get(turn.state.step)
        if step is not None and step.on_text is not None and text:
            replies = await step.on_text(turn, text)
            if replies is not None:
                return replies
        notice = texts.EMPTY if not text else texts.PLEASE_CHOOSE
        return [Reply(notice), *await self.current_view(turn)]

    async def current_view(self, turn: Turn) -> Replies:
        """Show the person's current step again (the main menu if the step no longer exists)."""
        step = self.registry.steps.get(turn.state.step)
        if step is None:
            return await home.show_main_menu(turn)
        return await step.view(turn)
