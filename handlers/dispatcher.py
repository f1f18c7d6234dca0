"""Routes each incoming message to its handler inside one transaction, and remembers the menu."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from handlers import account, home, learning, members, quiz, registration, review, roles, texts, unit_figures
from handlers.context import Services, Turn
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
    for module in (home, learning, quiz, review, registration, account, roles, members, unit_figures):
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

    async def _prefetch(self, incoming: Incoming, now: datetime) -> Any:
        """Run the prefetch of the command or button this message names, outside any transaction.

        A number typed for a button (console, Zalo) needs the chat's last menu, read in a short
        transaction of its own; anything else costs nothing here.
        """
        prefetchers = self.registry.prefetchers
        if not prefetchers:
            return None
        key, argument = None, ""
        if incoming.kind is Kind.COMMAND:
            key = "/" + command_name(incoming.text)
            argument = incoming.text.strip().partition(" ")[2].strip()
        elif incoming.kind is Kind.ACTION:
            key, _, argument = incoming.text.partition(":")
        elif incoming.kind is Kind.TEXT and typed_number(incoming.text.strip()) is not None:
            menu = await self._menu_of(incoming)
            number = typed_number(incoming.text.strip())
            if number is not None and 1 <= number <= len(menu):
                key, _, argument = menu[number - 1].partition(":")
        prefetch = prefetchers.get(key) if key else None
        return None if prefetch is None else await prefetch(self.services, incoming, argument, now)

    async def _menu_of(self, incoming: Incoming) -> list[str]:
        async with self.services.database.session() as session:
            return await queries.menu_of(session, incoming.channel, incoming.user_id)

    async def _handle(self, incoming: Incoming, keep: KeepReplies | None) -> Replies:
        now = self.services.clock()
        prefetched = await self._prefetch(incoming, now)
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
