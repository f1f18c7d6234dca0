"""Routes each incoming message to its handler inside one transaction, and remembers the menu."""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from handlers import (
    account,
    activities,
    announcements,
    assisted,
    certificates,
    deadlines,
    home,
    initiatives,
    learning,
    linking,
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
    visits,
)
from handlers.context import NOT_FETCHED, NeedsPrefetch, Services, Turn
from handlers.core import Incoming, Keyboard, Kind, Reply
from handlers.numbers import typed_number
from handlers.registry import Registry, Replies
from storage import assisted as storage_assisted
from storage import queries
from storage.models import ConversationState

log = logging.getLogger(__name__)

# Stores a turn's replies inside the turn's own transaction (see `Dispatcher.handle`).
KeepReplies = Callable[[AsyncSession, Replies], Awaitable[None]]


def build_registry() -> Registry:
    """Every conversation of hocvuso, registered explicitly in menu order."""
    registry = Registry()
    for module in (home, learning, quiz, review, registration, account, linking, roles, members, unit_figures, report,
                   rankings, certificates, announcements, nudges, deadlines, activities, visits, initiatives, assisted):
        module.register(registry)
    return registry


def command_name(text: str) -> str:
    """'/Start@hocvuso_bot payload' -> 'start'."""
    word = text.strip().split(maxsplit=1)[0] if text.strip() else ""
    return word.lstrip("/").split("@", 1)[0].lower()


# What may surround a typed word and still leave it that word: spaces, punctuation, symbols (an emoji
# copied with a label, with its variation selector or keycap), invisible characters. Letters, digits
# and the marks on them are the word.
_AROUND = frozenset("PSZC")
_EMOJI_MARKS = frozenset("\ufe0e\ufe0f\u20e3")


def _around(char: str) -> bool:
    return unicodedata.category(char)[0] in _AROUND or char in _EMOJI_MARKS


def typed_words(text: str) -> str:
    """'  Học bài! ' -> 'học bài': composed, case folded, spaces inside collapsed, what surrounds it gone."""
    words = " ".join(unicodedata.normalize("NFC", text.casefold()).split())
    start, end = 0, len(words)
    while start < end and _around(words[start]):
        start += 1
    while end > start and _around(words[end - 1]):
        end -= 1
    return words[start:end]


def without_marks(words: str) -> str:
    """'tiến độ' -> 'tien do': how Vietnamese reads typed without diacritics (no Telex, an old phone)."""
    bare = "".join(char for char in unicodedata.normalize("NFD", words) if not unicodedata.combining(char))
    return bare.replace("đ", "d")


def choice_key(label: str) -> str:
    """'✅ Đồng ý' and 'dong y' -> 'dong y': how a typed choice is compared with a menu's labels."""
    return without_marks(typed_words(label))


def remember_menu(state: ConversationState, replies: Replies) -> None:
    """The choices of the last reply that has any become the chat's menu: "2", or the second label
    typed, then means that choice."""
    last = next((reply for reply in reversed(replies) if reply.buttons), None)
    state.menu = last.actions if last is not None else []
    state.menu_labels = last.labels if last is not None else []


def chosen_by_label(state: ConversationState, words: str) -> str | None:
    """The menu's action whose label was typed, if exactly one label reads so."""
    key = without_marks(words)
    if not key:
        return None
    actions = {action for action, label in zip(state.menu, state.menu_labels, strict=False)
               if choice_key(label) == key}
    return actions.pop() if len(actions) == 1 else None


# "lienket 482913" typed without the slash, as people copy what they read: a command word followed by
# a code (digits only, so a sentence that starts with the same words stays a sentence).
CODE_COMMAND = re.compile(r"(lien ?ket)\s+([0-9][0-9 .]{3,20})")


def command_with_code(text: str) -> str | None:
    """'Liên kết 482 913' -> '/lienket 482 913'; None for anything else."""
    found = CODE_COMMAND.fullmatch(without_marks(typed_words(text)))
    return f"/lienket {found.group(2)}" if found else None


HOME_KEYS = frozenset(typed_words(word) for word in texts.HOME_WORDS)
COMMAND_KEYS = {without_marks(typed_words(word)): command for word, command in texts.COMMAND_WORDS.items()}


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
                remember_menu(state, [apology])
                state.updated_at = now
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
            helper = None
            if state.learning_with is not None:  # "Học cùng": the resident learns, on the member's chat
                resident = await storage_assisted.learner_for(session, person, state.learning_with)
                if resident is None:  # left the team, or the resident erased: back to the member's own
                    state.learning_with = None
                else:
                    helper, person = person, resident
            turn = Turn(incoming, session, state, person, self.services, now, prefetched, helper=helper)
            replies = assisted.with_banner(turn, await self._route(turn))
            remember_menu(state, replies)
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
        return await self._unsupported(turn, incoming.text)

    async def _unsupported(self, turn: Turn, what: str) -> Replies:
        """A photo, sticker, voice message or hidden content: a kind word, then where the person was. A
        new chat often opens with a sticker: it is greeted like any first message."""
        step = self.registry.steps.get(turn.state.step)
        if what == "image" and turn.incoming.file_id and step is not None and step.on_photo is not None:
            return await step.on_photo(turn, turn.incoming.file_id)
        notice = Reply(texts.UNSUPPORTED_KINDS.get(what, texts.UNSUPPORTED))
        if turn.state.step == "new":
            return [notice, *await home.start(turn)]
        return [notice, *await self.current_view(turn)]

    async def _command(self, turn: Turn) -> Replies:
        name = command_name(turn.incoming.text)
        command = self.registry.commands.get(name)
        if command is None:
            return [Reply(texts.UNKNOWN_COMMAND.format(command="/" + name[:30])), *await self.current_view(turn)]
        if turn.helper is not None and not assisted.allowed_while_learning("command", name):
            return [await assisted.blocked(turn), *await self.current_view(turn)]
        return await command.handler(turn)

    async def _action(self, turn: Turn, action: str) -> Replies:
        prefix, _, argument = action.partition(":")
        route = self.registry.actions.get(prefix)
        if route is None or (not route.anywhere and action not in turn.state.menu):
            return [Reply(texts.STALE_BUTTON), *await self.current_view(turn)]
        if turn.helper is not None and not assisted.allowed_while_learning("action", prefix):
            return [await assisted.blocked(turn), *await self.current_view(turn)]
        return await route.handler(turn, argument)

    async def _text(self, turn: Turn, text: str) -> Replies:
        """Typed text, in this order: a number of the last menu; a home word ("menu"), the way out of any
        step; a label of the last menu ("tiếp", "dong y"); the text a step is waiting for (a name "Học" is
        a name, a title "Tiến độ" a title); only then a plain word for a command ("học", "tien do"), which
        would otherwise take a person's answer away from the question it answers."""
        coded = command_with_code(text)
        if coded is not None:  # before a new chat's greeting too: the code is why they wrote
            return await self._command(replace(turn, incoming=replace(turn.incoming, kind=Kind.COMMAND, text=coded)))
        if turn.state.step == "new":  # the first message of a new chat, whatever it says
            return await home.start(turn)
        menu = turn.state.menu
        number = typed_number(text)
        if number is not None and 1 <= number <= len(menu):
            return await self._action(turn, menu[number - 1])
        words = typed_words(text)
        if words in HOME_KEYS:
            return await home.show_main_menu(turn)
        action = chosen_by_label(turn.state, words)
        if action is not None:  # "tiếp", "Đồng ý": a choice typed by its words instead of its number
            return await self._action(turn, action)
        step = self.registry.steps.get(turn.state.step)
        if step is not None and step.on_text is not None and text:
            replies = await step.on_text(turn, text)
            if replies is not None:
                return replies
        command = self.registry.commands.get(COMMAND_KEYS.get(without_marks(words), ""))
        if command is not None:
            return await command.handler(turn)
        notice = texts.EMPTY if not text else texts.PLEASE_CHOOSE
        return [Reply(notice), *await self.current_view(turn)]

    async def current_view(self, turn: Turn) -> Replies:
        """Show the person's current step again (the main menu if the step no longer exists)."""
        step = self.registry.steps.get(turn.state.step)
        if step is None:
            return await home.show_main_menu(turn)
        return await step.view(turn)
