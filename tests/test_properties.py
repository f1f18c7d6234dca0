"""Property-based tests (issue 8): the dispatcher and the Telegram adapter under random and hostile input.

Hypothesis drives random text, odd Unicode digits, commands with junk, forged button actions, media
and malformed Telegram updates, on SQLite and (with TEST_DATABASE_URL) PostgreSQL. What must hold:
every person is answered, no turn apologises, every reply can be shown, and nothing already saved
changes unless the input is one that may change it (a button of the menu shown, a number typed for
one, text typed where a question waits for it, or safe navigation registered `anywhere`).

Every run tries the same examples (`derandomize=True`, no example database), so CI is reproducible.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
import logging
import random
import unicodedata
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, event, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete
from sqlmodel import col, select
from telegram import Bot

from bot.app import build_services, handler_config
from bot.channels.telegram import (
    CALLBACK_MAX_BYTES,
    CAPTION_MAX,
    LABEL_MAX,
    Outgoing,
    TelegramChannel,
    delivery_key,
    parse_update,
    plan,
    to_incoming,
)
from bot.runtime import Runtime
from bot.settings import Settings
from content.loader import load_catalog
from handlers import texts
from handlers.context import Services
from handlers.core import TELEGRAM, Attachment, Button, Incoming, Kind, Reply
from handlers.dispatcher import Dispatcher, build_registry
from handlers.numbers import typed_number
from storage.db import Database
from storage.models import (
    ALL_TABLES,
    Answer,
    ConversationState,
    Household,
    LessonProgress,
    Membership,
    Organisation,
    Person,
    ProcessedUpdate,
    QuizAttempt,
    Village,
)
from tests.fakes.server import free_port
from tests.fakes.telegram import SENDING, TOKEN, FakeTelegram
from tests.support import START, Chat, FakeClock, converse, threads_only
from tests.test_dialog_learning import first_lesson, read_all_cards
from tests.test_dialog_registration import register
from tests.test_dialog_review import pass_missing_one

# A failing example may hold a text of thousands of characters: printing it must not become the error.
pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr:hypothesis.errors.HypothesisWarning")

REGISTRY = build_registry()
CATALOG = load_catalog()
ANYWHERE = frozenset(prefix for prefix, route in REGISTRY.actions.items() if route.anywhere)
LESSONS = [lesson.id for lesson in CATALOG.ordered_lessons()]
QUESTIONS = [question.id for lesson in CATALOG.ordered_lessons()[:2] for question in lesson.quiz]
MAX_TEXT = 1000  # HandlerConfig.max_text_length, the default the services below are built with
# What the storage holds of an update (storage/models.py): the columns an accepted update must fit.
KEY_COLUMN, CHAT_COLUMN = 80, 64

# Each group of tests shares its database (and runtime) across examples: built once per test.
SHARED = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large]
PURE = settings(max_examples=300, deadline=None, derandomize=True, database=None, suppress_health_check=SHARED)
SINGLE = settings(max_examples=120, deadline=None, derandomize=True, database=None, suppress_health_check=SHARED)
SEQUENCES = settings(max_examples=70, deadline=None, derandomize=True, database=None, suppress_health_check=SHARED)
# A runtime keeps its chats between examples, so a failing example is reported as found, not shrunk.
RUNTIME = settings(max_examples=10, deadline=None, derandomize=True, database=None, suppress_health_check=SHARED,
                   phases=[Phase.explicit, Phase.generate])


# --- what people send -----------------------------------------------------------------------------

# Control characters, direction marks, joiners, combining marks, odd spaces, emoji with joiners.
SPECIAL = [
    "\x00", "\x07", "\x1b", "\x7f", "\r", "\t", "\v", "\u0085", "\u200b", "\u200c", "\u200d", "\u200e", "\u200f",
    "\u202a", "\u202e", "\u2066", "\u2069", "\ufeff", "\u0300", "\u0301", "\u0323", "\u0309", "\u00a0", "\u3000",
    "\u2028", "\u2029", "\U0001f600", "\U0001f468\u200d\U0001f469\u200d\U0001f467", "e\u0301", "\ufffd", "\U0010ffff",
]
# Digits `int()` refuses ('²', '③'), decimal digits of other scripts ('٣', '３', '𝟠') and look-alikes.
ODD_DIGITS = [
    "²", "³", "¹", "⁴", "₂", "③", "①", "⑩", "⓪", "❶", "½", "Ⅳ", "٣", "۳", "３", "𝟠", "𝟙", "१", "๓", "߃", "᠓",
    "0", "1", "2", "4", "9", "10", "00", "01", "-1", "+1", "1.0", "1e3", " 2 ", "99999999999", "1,5",
]
HOME_WORDS = sorted(texts.HOME_WORDS)
COMMANDS = sorted(REGISTRY.commands)
JUNK_COMMANDS = [
    "/", "//", "///", "/start@x y", "/xoadulieu extra", "/START", "/Start@hocvuso_bot", "/trogiup@hocvuso_bot",
    "/ start", "/@", "/@@", "/start@", "/hoc@x@y z", "/" + "x" * 200, "/xoadulieu /xoadulieu", "/caidat\n/start",
    "/tiendo\x00", "/menu\u200b", "/٣", "/²",
]
# Arguments a forger might try with a real prefix: ids that do not exist, words of other screens, overflows.
ARGS = [
    "", "yes", "no", "99", "123", "-1", "0", "999999", "99999999999999999999", "1e9", "display", "next", "prev",
    "done", "back", "join", "create", "leave", "newcode", "removeyes", "removeno", "remove:1", "remove:2",
    "remove:99999999999", "rm:123", "start", "retry", "ask_name", "ask_household_code", "household_remove",
    "settings", "²", "③", "٣", "x" * 70, ":", "::", "%00", "start:", *(f"start:{lesson}" for lesson in LESSONS[:3]),
    *LESSONS[:3], *(f"{q}:{n}" for q in QUESTIONS[:3] for n in ("0", "1", "99", "²")),
]
FORGED = [
    "qa:q1:99", "erase:yes", "erase:no", "consent:yes", "consent:no", "hh:rm:123", "hh:create", "hh:leave",
    "hh:newcode", "hh:removeyes", "hh:remove:1", "village:999999", "village:1", "org:1", "org:done", "vneid:yes",
    "group:student", "set:ask_name", "name:display", "skip", "skip:", "card:next", "card:prev", "review:start",
    "rv:1:1", "quiz:retry", "dangkytiep", "lesson:" + "x" * 100, "hoc:khongco", "menu:::", "", ":", "x" * 300,
    "qa:" + "9" * 80, "a" * CALLBACK_MAX_BYTES, "é" * 40,
]


@dataclass(frozen=True)
class Said:
    """One thing a person sends, before it is given a chat: typed text, a pressed action, or media."""

    kind: str  # text | action | unsupported | contact
    text: str = ""
    display_name: str | None = None

    def incoming(self, user: str, key: str | None, channel: str = "console") -> Incoming:
        if self.kind == "text":
            return Incoming.from_text(channel, user, self.text, display_name=self.display_name, delivery_key=key)
        kind = {"action": Kind.ACTION, "unsupported": Kind.UNSUPPORTED, "contact": Kind.CONTACT}[self.kind]
        return Incoming(channel, user, kind, self.text, self.display_name, key)


def _with_blanks(value: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.tuples(st.sampled_from(["", " ", "  ", "\t", "\n", "\u3000"]), value,
                     st.sampled_from(["", " ", "\n", "\u200b"])).map("".join)


plain_text = st.text(max_size=60)  # every code point but surrogates
weird_text = st.lists(st.sampled_from(SPECIAL) | st.characters(codec="utf-8"), max_size=25).map("".join)
long_text = st.one_of(
    st.builds(lambda piece, times: piece * times, st.text(min_size=1, max_size=5), st.integers(150, 1500)),
    st.sampled_from([MAX_TEXT - 1, MAX_TEXT, MAX_TEXT + 1, 4096, 20_000]).map(lambda n: "ắ" * n),
)
blank_text = st.text(alphabet=" \t\n\r\u3000\u00a0\u2028\u200b\ufeff\u180e", max_size=8)
odd_numbers = _with_blanks(st.lists(st.sampled_from(ODD_DIGITS), min_size=1, max_size=3).map("".join))
home_words = st.sampled_from(HOME_WORDS).flatmap(
    lambda word: st.sampled_from([word, word.upper(), f"  {word} ", unicodedata.normalize("NFD", word)]))
commands = st.one_of(
    st.sampled_from(JUNK_COMMANDS),
    st.builds(lambda name, junk: f"/{name}{junk}", st.sampled_from(COMMANDS),
              st.sampled_from(["", " ", "@x", "@x y", " extra", "@hocvuso_bot", "\n"]) | st.text(max_size=12)),
    st.text(max_size=20).map(lambda rest: "/" + rest),
)
typed = st.one_of(plain_text, weird_text, long_text, blank_text, odd_numbers, home_words, commands)

prefixes = st.sampled_from([*sorted(REGISTRY.actions), "khongco", "", "Menu", "HOC", " menu", "menu "])
forged_actions = st.one_of(
    st.text(max_size=80),
    st.builds(lambda prefix, arg: f"{prefix}:{arg}", prefixes, st.sampled_from(ARGS) | st.text(max_size=20)),
    st.sampled_from(FORGED),
    st.builds(lambda prefix, length: f"{prefix}:" + "7" * length, prefixes, st.integers(60, 1200)),  # overlong
)
display_names = st.one_of(
    st.none(), st.text(max_size=90),
    st.sampled_from(["Nguyễn Văn An", unicodedata.normalize("NFD", "Lê Thị Hoà"), "", "   ", "A" * 200, "An\x00"]),
)


said_anything = st.one_of(
    st.builds(Said, st.just("text"), typed, display_names),
    st.builds(Said, st.just("action"), forged_actions, display_names),
    st.builds(Said, st.sampled_from(["unsupported", "contact"]), st.just("") | plain_text, display_names),
)


# --- the dispatcher's side -------------------------------------------------------------------------

TRACKED = (Person, Household, Membership, LessonProgress, QuizAttempt, Answer)
_users = itertools.count(1)
_keys = itertools.count(1)


async def snapshot(services: Services, *models: type) -> dict[str, list[tuple]]:
    """Every row of the tracked tables, every column, in id order."""
    async with services.database.session() as session:
        connection = await session.connection()
        return {model.__name__: sorted(map(tuple, (await connection.execute(select(model.__table__))).all()),
                                       key=lambda row: row[0])
                for model in models or TRACKED}


async def chat_state(services: Services, user: str) -> tuple[str, list[str]]:
    """The chat's step and stored menu, read without creating the row ('new' when there is none)."""
    async with services.database.session() as session:
        state = (await session.exec(select(ConversationState).where(
            ConversationState.channel == "console", ConversationState.external_id == user))).first()
    return (state.step, list(state.menu)) if state is not None else ("new", [])


def check_replies(replies: list[Reply], what: object) -> None:
    """Answered, without an apology, and every reply showable on Telegram."""
    assert replies, f"no answer to {what!r}"
    for reply in replies:
        assert texts.SORRY not in reply.text, f"apology for {what!r}"
        assert reply.text.strip(), f"an empty reply to {what!r}"
        for action in reply.actions:
            assert 1 <= len(action.encode()) <= CALLBACK_MAX_BYTES, f"button action {action!r} after {what!r}"


def may_change(incoming: Incoming, step: str, menu: list[str]) -> bool:
    """Whether `incoming` may change saved data at this step: what the person was offered, nothing else."""
    if len(incoming.text) > MAX_TEXT:
        return False  # refused unread
    if incoming.kind is Kind.ACTION:
        route = REGISTRY.actions.get(incoming.text.partition(":")[0])
        return incoming.text in menu or (route is not None and route.anywhere)
    if incoming.kind is not Kind.TEXT or step == "new":
        return False  # commands only show things; media is not read; a new chat is greeted
    text = incoming.text.strip()
    number = typed_number(text)
    if number is not None and 1 <= number <= len(menu):
        return True  # the same as pressing that button
    current = REGISTRY.steps.get(step)
    return current is not None and current.on_text is not None and text.lower() not in texts.HOME_WORDS


async def forget_everyone(services: Services) -> None:
    """Every row but the villages and organisations: each example starts from the same empty commune."""
    async with services.database.session() as session:
        connection = await session.connection()
        for model in reversed(ALL_TABLES):
            if model not in (Village, Organisation):
                await connection.execute(delete(model.__table__))


@dataclass
class Someone:
    """A chat with the dispatcher, every turn with a fresh delivery key as Telegram gives."""

    dispatcher: Dispatcher
    user: str = field(default_factory=lambda: f"p{next(_users)}")

    def incoming(self, said: Said) -> Incoming:
        return said.incoming(self.user, f"k{next(_keys)}")

    async def send(self, said: Said) -> tuple[Incoming, list[Reply]]:
        incoming = self.incoming(said)
        return incoming, await self.dispatcher.handle(incoming)


async def registered_with_history(dispatcher: Dispatcher, user: str) -> None:
    """A person with a name, a household of two (a relative joined by its code), an organisation and a
    finished quiz (its answers, attempt and progress saved)."""
    services = dispatcher.services
    chat = Chat(dispatcher, user=user)
    await register(chat, name="Nguyễn Văn An")
    await pass_missing_one(chat, first_lesson(services))
    async with services.database.session() as session:  # the person registered last: this one
        person = (await session.exec(select(Person).order_by(col(Person.id).desc()).limit(1))).one()
        code = (await session.exec(select(Household.code).where(Household.id == person.household_id))).one()
    await converse(Chat(dispatcher, user=f"{user}-family"), [
        ("/start", "đồng ý"), ("#Đồng ý", "họ và tên"), ("Lê Thị Hoa", "thôn/xóm"), ("#Bỏ qua", "nhóm nào"),
        ("#Bỏ qua", "Hộ gia đình"), ("#Nhập mã hộ", "chữ số"), (code, "Bạn đã vào hộ"), ("#Xong", "VNeID"),
        ("#Chưa rõ", "Đăng ký xong"),
    ])
    await chat.say("menu")


@pytest.fixture
async def services_any(database_url: str) -> AsyncIterator[Services]:
    built = await build_services(Settings(_env_file=None, database_url=database_url),  # type: ignore[call-arg]
                                 clock=FakeClock(), rng=random.Random(8))
    assert built.config.max_text_length == MAX_TEXT
    yield built
    await built.database.dispose()


@pytest.fixture
async def at_home(services_any: Services) -> Someone:
    """A registered person with saved history, at the main menu."""
    person = Someone(Dispatcher(services_any))
    await registered_with_history(person.dispatcher, person.user)
    return person


@SINGLE
@given(said=said_anything)
@example(said=Said("text", "²"))
@example(said=Said("text", "/start@x y"))
@example(said=Said("action", "erase:yes"))
@example(said=Said("action", "consent:yes"))
@example(said=Said("action", "hh:rm:123"))
@example(said=Said("action", "qa:q1:99"))
@example(said=Said("action", "village:999999"))
@example(said=Said("action", f"lesson:{LESSONS[1]}"))
@example(said=Said("contact"))
async def test_any_single_input_at_the_main_menu_is_answered_and_changes_only_what_it_may(at_home, said):
    """A registered person with a household, an organisation and a finished quiz sends one thing from the
    main menu: nothing saved changes, except that safe navigation may start a lesson."""
    services = at_home.dispatcher.services
    await at_home.send(Said("action", "menu"))  # each example starts at the main menu
    before = await snapshot(services)
    incoming, replies = await at_home.send(said)
    check_replies(replies, said)
    after = await snapshot(services)
    prefix = incoming.text.partition(":")[0]
    if incoming.kind is Kind.ACTION and prefix in ANYWHERE and len(incoming.text) <= MAX_TEXT:
        # Safe navigation: opening a lesson may start its progress; nothing saved before changes.
        assert all(row in after["LessonProgress"] for row in before["LessonProgress"]), said
        before.pop("LessonProgress"), after.pop("LessonProgress")
    assert after == before, f"{said!r} changed saved data"


@dataclass(frozen=True)
class Press:
    """Press a button of the screen shown (the `pick`-th, counted round), or type its number (in any script)."""

    pick: int
    typed: str | None = None  # None: the button itself; else how the number is written: ascii, fullwidth...


@dataclass(frozen=True)
class Redeliver:
    """The previous update delivered again (same delivery key)."""


@dataclass(frozen=True)
class Old:
    """Press a button shown earlier in this walk (or on another screen): it must be refused unless it is
    on the screen now or is safe navigation."""

    pick: int


# Buttons of screens a walk may not have passed through, pressed as if from an old message.
OLD_BUTTONS = [
    "erase:yes", "consent:yes", "consent:no", "hh:create", "hh:leave", "hh:newcode", "hh:removeyes", "hh:join",
    "org:done", "org:1", "vneid:yes", "group:student", "village:1", "skip", "name:display", "set:ask_household",
    "card:next", "card:prev", f"quiz:start:{LESSONS[0]}", f"quiz:start:{LESSONS[1]}", "review:start", "rv:1:0",
    *(f"qa:{question}:{n}" for question in QUESTIONS[:6] for n in (0, 1)),
]


@dataclass(frozen=True)
class Wait:
    """Time passes: missed questions fall due for review, the window of wrong household codes slides."""

    hours: int


DIGIT_FORMS = {  # a menu number as typed on different keyboards
    "ascii": str,
    "fullwidth": lambda n: str(n).translate(str.maketrans("0123456789", "０１２３４５６７８９")),
    "arabic": lambda n: str(n).translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")),
}


# Moves do not depend on what the bot shows (a press names a position, resolved when it is made), so a
# walk replays exactly and shrinks well. Weighted towards real buttons, so walks go deep into
# registration, quizzes and households, and towards the first button ("Tiếp", "Làm bài kiểm tra",
# "Ôn tập"), which leads furthest.
walk_moves = st.one_of(
    said_anything,
    st.builds(Press, st.integers(0, 20)), st.builds(Press, st.integers(0, 20)), st.builds(Press, st.integers(0, 20)),
    st.just(Press(0)), st.just(Press(0)),
    st.builds(Press, st.integers(0, 20), st.sampled_from(sorted(DIGIT_FORMS))),
    st.builds(Old, st.integers(0, 255)), st.builds(Old, st.integers(0, 255)),
    st.just(Redeliver()),
    st.builds(Wait, st.sampled_from([1, 73])),
)


async def _in_quiz(chat: Chat, answered: int = 0) -> None:
    lesson = CATALOG.ordered_lessons()[1]  # the first lesson is passed already
    await read_all_cards(chat, lesson)
    await chat.choose("Làm bài kiểm tra")
    for _ in range(answered):
        await chat.say("1")


# Where a walk starts: deep screens a random walk would seldom reach by itself.
REGISTERED_STARTS = {
    "main menu": lambda chat: chat.say("menu"),
    "quiz": _in_quiz,
    "quiz, two answered": lambda chat: _in_quiz(chat, 2),
    "review due": lambda chat: converse(chat, [("/hoc", "Ôn tập"), ("#Ôn tập", "câu 1/1")]),
    "erase confirmation": lambda chat: chat.say("/xoadulieu"),
    "household of the head": lambda chat: converse(chat, [("/caidat", "Hộ gia đình"), ("#Hộ gia đình", "Bỏ số")]),
    "household code": lambda chat: converse(chat, [("/caidat", "Hộ"), ("#Hộ gia đình", "Bỏ số"),
                                                    ("#Nhập mã hộ", "chữ số")]),
    "removing a member": lambda chat: converse(chat, [("/caidat", "Hộ"), ("#Hộ gia đình", "Bỏ số"),
                                                       ("#Bỏ số", "chắc chắn")]),
    "organisations": lambda chat: converse(chat, [("/caidat", "Tổ chức"), ("#Tổ chức", "tổ chức nào")]),
}
GUEST_STARTS = {
    "new chat": None,
    "consent": lambda chat: chat.say("/start"),
    "half registered": lambda chat: converse(chat, [("/start", "đồng ý"), ("#Đồng ý", "họ và tên"),
                                                     ("Lê Văn Tư", "thôn/xóm")]),
    "guest in a quiz": lambda chat: converse(chat, [("/start", "đồng ý"), ("#Không đồng ý", "Không sao"),
                                                     ("/hoc", "Chọn bài"), (f"#{CATALOG.ordered_lessons()[0].title}",
                                                                            "Tiếp")]),
}


@SEQUENCES
@given(start=st.sampled_from([*REGISTERED_STARTS, *GUEST_STARTS]), walk=st.lists(walk_moves, min_size=3, max_size=40))
async def test_sequences_of_presses_typing_and_forgeries_keep_every_promise(services_any, start, walk):
    """Random walks from deep screens through the real menus, mixed with random text, forged actions,
    old buttons, media, redeliveries and time passing."""
    await forget_everyone(services_any)
    services_any.clock.now = START  # type: ignore[attr-defined]  # every walk starts in the same commune
    services_any.random.seed(8)
    person = Someone(Dispatcher(services_any))
    chat = Chat(person.dispatcher, user=person.user)
    if start in REGISTERED_STARTS:
        await registered_with_history(person.dispatcher, person.user)
        if start == "review due":
            services_any.clock.advance(days=3)  # type: ignore[attr-defined]
        await REGISTERED_STARTS[start](chat)
    elif GUEST_STARTS[start] is not None:
        await GUEST_STARTS[start](chat)  # type: ignore[misc]
    assert texts.SORRY not in chat.transcript
    event(f"start: {start}")  # shown by --hypothesis-show-statistics: how deep the walks go
    shown = [*OLD_BUTTONS, *(action for reply in chat.replies for action in reply.actions)]
    saved: dict[str, list[tuple]] | None = None  # what is saved now, when known
    previous: Incoming | None = None
    for move in walk:
        step, menu = await chat_state(services_any, person.user)
        event(f"reached step {step}")
        if isinstance(move, Wait):
            services_any.clock.advance(hours=move.hours)  # type: ignore[attr-defined]
            continue
        if isinstance(move, Redeliver):
            if previous is None:
                continue
            tables = (*TRACKED, ConversationState, ProcessedUpdate)
            everything = await snapshot(services_any, *tables)
            assert await person.dispatcher.handle(previous) == [], "a redelivered update was answered again"
            assert await snapshot(services_any, *tables) == everything, "a redelivery changed something"
            continue
        if isinstance(move, Old):
            said = Said("action", shown[move.pick % len(shown)])
        elif isinstance(move, Press):
            if not menu:
                continue
            index = move.pick % len(menu)
            typed = None if move.typed is None else DIGIT_FORMS[move.typed](index + 1)
            said = Said("action", menu[index]) if typed is None else Said("text", typed)
        else:
            said = move
        incoming = person.incoming(said)
        changing = may_change(incoming, step, menu)
        if not changing and saved is None:
            saved = await snapshot(services_any)
        replies = await person.dispatcher.handle(incoming)
        check_replies(replies, (step, said))
        shown += [action for reply in replies for action in reply.actions if action not in shown]
        if changing:
            saved = None
        else:
            assert await snapshot(services_any) == saved, f"{said!r} at step {step} (menu {menu}) changed saved data"
        previous = incoming


# --- the Telegram adapter, pure functions --------------------------------------------------------

BOT = Bot(TOKEN)
json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.integers(-(2**70), 2**70),
                         st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20))
UPDATE_KEYS = ["update_id", "message", "edited_message", "callback_query", "channel_post", "chat", "from", "id",
               "text", "data", "message_id", "date", "type", "first_name", "last_name", "is_bot", "chat_instance",
               "contact", "phone_number", "sticker", "entities", "offset", "length", "reply_to_message", "caption"]
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.sampled_from(UPDATE_KEYS) | st.text(max_size=8), inner, max_size=5),
    max_leaves=25,
)


def private_chat(chat_id: int) -> dict[str, Any]:
    return {"id": chat_id, "type": "private", "first_name": "An"}


def user(user_id: int, last_name: str | None = None) -> dict[str, Any]:
    """A Telegram user; most have no last name."""
    named = {"last_name": last_name} if last_name else {}
    return {"id": user_id, "is_bot": False, "first_name": "An", **named, "language_code": "vi"}


def templates(chat_id: int, message_id: int, words: str) -> list[dict[str, Any]]:
    """Valid updates of every shape hocvuso meets, to be broken by `mutated`."""
    message = {"message_id": message_id, "date": 1_700_000_000, "from": user(chat_id), "chat": private_chat(chat_id)}
    pressed = {**message, "from": {"id": 1, "is_bot": True, "first_name": "Bot"}, "text": "Câu 1/5",
               "reply_markup": {"inline_keyboard": [[{"text": "1", "callback_data": "qa:q1:0"}]]}}
    return [
        {"message": {**message, "text": words}},
        {"message": {**message, "text": "/start " + words,
                     "entities": [{"type": "bot_command", "offset": 0, "length": 6}]}},
        {"message": {**message, "contact": {"phone_number": "0912345678", "first_name": words}}},
        {"message": {**message, "sticker": {"file_id": "x", "file_unique_id": "y", "type": "regular", "width": 1,
                                            "height": 1, "is_animated": False, "is_video": False}}},
        {"message": {**message, "text": words, "reply_to_message": {**message, "text": words}}},
        {"message": {**message, "chat": {"id": -chat_id, "type": "group", "title": "Nhà"}, "text": words}},
        {"edited_message": {**message, "text": words, "edit_date": 1_700_000_001}},
        {"callback_query": {"id": f"raw{message_id}", "from": user(chat_id, "Nguyễn"), "chat_instance": "ci",
                            "data": words[:20], "message": pressed}},
        {"callback_query": {"id": f"raw{message_id}", "from": user(chat_id), "chat_instance": "ci",
                            "data": words[:20], "message": {"message_id": message_id, "date": 0,
                                                            "chat": private_chat(chat_id)}}},
        {"callback_query": {"id": f"raw{message_id}", "from": user(chat_id), "chat_instance": "ci",
                            "data": words[:20], "inline_message_id": "inl"}},
    ]


def _paths(value: Any, path: tuple = ()) -> Iterator[tuple]:
    if isinstance(value, dict):
        for key, inner in value.items():
            yield (*path, key)
            yield from _paths(inner, (*path, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield (*path, index)
            yield from _paths(inner, (*path, index))


BREAKS = ["delete", "delete", "null", "null", "wrong type", "wrong type", "huge", "huge", "negative", "garbage",
          "empty"]
READ_FIELDS = {"message", "callback_query", "chat", "from", "id", "message_id", "text", "data", "type", "first_name",
               "last_name", "contact"}


@st.composite
def mutated(draw: st.DrawFn, base: dict[str, Any], allow_update_id: bool = True) -> dict[str, Any]:
    """`base` with a few fields deleted, nulled, retyped, made huge or replaced by nested garbage."""
    body = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 4), label="breaks")):
        paths = [p for p in _paths(body) if allow_update_id or p != ("update_id",)]
        if not paths:
            break
        # Half the time a field hocvuso reads (ids, chat, sender, text, data), else anywhere.
        read = [p for p in paths if p[-1] in READ_FIELDS] or paths
        path = draw(st.sampled_from(read) | st.sampled_from(paths), label="where")
        parent = body
        for step in path[:-1]:
            parent = parent[step]
        key, how = path[-1], draw(st.sampled_from(BREAKS), label="how")
        if how == "delete":
            del parent[key]
            continue
        parent[key] = {
            "null": None,
            "wrong type": draw(st.sampled_from([[], {}, "1", 1, 1.5, True, ["a"], {"id": 1}])),
            "huge": draw(st.sampled_from([2**31, 2**53 + 1, 2**63, 2**64, -(2**63) - 1, 10**70, -(10**100)])),
            "negative": -1,
            "garbage": draw(json_values),
            "empty": draw(st.sampled_from(["", [], {}])),
        }[how]
    return body


def updates() -> st.SearchStrategy[Any]:
    """Anything JSON-like, valid updates, and valid updates broken in a few places."""
    valid = st.builds(
        lambda chat, message, words, index: {"update_id": message, **templates(chat, message, words)[index]},
        st.integers(1, 2**40), st.integers(1, 2**31), st.text(max_size=30), st.integers(0, 9))
    keyed = st.dictionaries(st.sampled_from(UPDATE_KEYS), json_values, max_size=4).map(
        lambda body: {"update_id": 1, **body})
    broken = valid.flatmap(mutated)
    return st.one_of(json_values, keyed, valid, broken, broken, broken)


CHAT_NONE = {"update_id": 1, "message": {"message_id": 1, "date": 0, "chat": None, "text": "a"}}
PRESS_CHAT_NONE = {"update_id": 1, "callback_query": {
    "id": "q", "from": user(5), "chat_instance": "ci", "data": "menu",
    "message": {"message_id": 1, "date": 0, "chat": None}}}
NAME_NOT_TEXT = {"update_id": 1, "message": {
    "message_id": 1, "date": 0, "chat": private_chat(5), "text": "a", "from": {**user(5), "first_name": 7}}}
HUGE_IDS = {"update_id": 1, "message": {"message_id": 10**70, "date": 0, "chat": private_chat(10**70), "text": "a"}}


@PURE
@given(payload=updates())
@example(payload=CHAT_NONE)
def test_parse_update_never_raises(payload):
    update = parse_update(payload, BOT)
    assert update is None or update.update_id == payload["update_id"]


@PURE
@given(payload=updates())
@example(payload=PRESS_CHAT_NONE)
def test_what_parse_update_accepts_to_incoming_and_delivery_key_read_without_raising(payload):
    """`parse_update` is the adapter's only check: whatever it lets through is read without an error."""
    try:
        update = parse_update(payload, BOT)
    except Exception:  # test_parse_update_never_raises covers this
        return
    if update is not None:
        key, incoming = delivery_key(update), to_incoming(update)
        assert incoming is None or key is not None


@PURE
@given(payload=updates())
@example(payload=NAME_NOT_TEXT)
def test_an_accepted_update_is_text_where_the_handlers_expect_text(payload):
    """`Incoming` promises text (the name step splits the display name): PTB does not check types."""
    try:
        update = parse_update(payload, BOT)
        incoming = to_incoming(update) if update is not None else None
    except Exception:  # the two tests above cover these
        return
    if incoming is not None:
        assert isinstance(incoming.user_id, str) and isinstance(incoming.text, str)
        assert incoming.display_name is None or isinstance(incoming.display_name, str), incoming.display_name


@PURE
@given(payload=updates())
@example(payload=HUGE_IDS)
def test_an_accepted_update_fits_the_inbox(payload):
    """The delivery key and the chat id are no longer than their columns (PostgreSQL refuses longer ones)."""
    try:
        update = parse_update(payload, BOT)
        incoming = to_incoming(update) if update is not None else None
    except Exception:  # the tests above cover these
        return
    if incoming is not None:
        key = delivery_key(update)  # type: ignore[arg-type]
        assert isinstance(key, str) and len(key) <= KEY_COLUMN, key
        assert len(incoming.user_id) <= CHAT_COLUMN, incoming.user_id


@pytest.fixture
def channel(tmp_path: Path) -> TelegramChannel:
    settings = Settings(_env_file=None, database_url=f"sqlite+aiosqlite:///{tmp_path / 'unused.db'}",  # type: ignore[call-arg]
                        telegram_token=TOKEN)
    services = Services(Database(settings.database_url), CATALOG, handler_config(settings), FakeClock(),
                        random.Random(1))
    return TelegramChannel(Dispatcher(services), settings, polling=True)


@PURE
@given(batch=st.lists(updates(), max_size=6))
@example(batch=[CHAT_NONE])
def test_reading_a_batch_never_raises_and_keeps_only_what_can_be_handled(channel, batch):
    received = channel._read(batch)
    for item, update, incoming in received:
        assert any(item.payload is payload for payload in batch)
        assert item.delivery_key == delivery_key(update) and incoming == to_incoming(update)
        assert item.chat_id == incoming.user_id


# Pieces that make long texts hard to split: paragraphs, lines, long words, emoji, odd spaces.
PIECES = [" ", "\n", "\n\n", "\t", "\u3000", "\u00a0", "Bình dân học vụ số ", "a" * 50, "x" * 5000, "😀" * 30,
          "e\u0301" * 10, "\r\n", "\n\n\n"]
# Replies always say something (the dispatcher's properties check it): blank texts get a visible end.
reply_texts = st.one_of(
    st.text(max_size=200),
    st.builds(lambda parts, times: ("".join(parts) * times)[:10_000],
              st.lists(st.sampled_from(PIECES) | st.text(max_size=20), min_size=1, max_size=12),
              st.integers(1, 400)),
).map(lambda text: text if text.strip() else f"{text}.")
actions = st.text(min_size=1, max_size=CALLBACK_MAX_BYTES).map(
    lambda text: text.encode()[:CALLBACK_MAX_BYTES].decode("utf-8", "ignore") or "x")
buttons = st.builds(Button, st.text(min_size=1, max_size=60) | st.text(min_size=1, max_size=3), actions)
keyboards = st.lists(st.lists(buttons, min_size=1, max_size=3).map(tuple), max_size=6).map(tuple)
attachments = st.none() | st.builds(Attachment, st.just("bao-cao.xlsx"), st.binary(max_size=8),
                                    st.sampled_from(["document", "photo"]))
replies_strategy = st.lists(st.builds(Reply, reply_texts, keyboards, attachments, st.booleans(), st.booleans()),
                            min_size=1, max_size=5)


def _visible(text: str) -> str:
    return "".join(char for char in text if not char.isspace())


def _is_subsequence(needle: str, haystack: str) -> bool:
    chars = iter(haystack)
    return all(char in chars for char in needle)


@PURE
@given(replies=replies_strategy, pressed=st.none() | st.integers(1, 2**31))
def test_plan_fits_telegram_and_loses_no_text_and_no_button(replies, pressed):
    calls = plan(replies, pressed)
    assert calls
    for call in calls:
        assert len(call.text) <= TELEGRAM.text_limit
        if call.method in ("photo", "document"):
            assert len(call.text) <= CAPTION_MAX
        assert all(len(label) <= LABEL_MAX for row in call.rows for label, _ in row)
        assert Outgoing.from_json(json.loads(json.dumps(call.to_json()))) == call  # stored and replayed as is
    edits = [call for call in calls if call.method == "edit"]
    assert not edits or (len(calls) == 1 and edits[0].message_id == pressed)
    # Every character but whitespace arrives, in order; every button, in order.
    assert _is_subsequence(_visible("".join(r.text for r in replies)), _visible("".join(c.text for c in calls)))
    assert [data for call in calls for row in call.rows for _, data in row] == [a for r in replies for a in r.actions]
    assert all(call.text.strip() for call in calls if call.method in ("send", "edit")), "an empty message"


# --- end to end through the fake Telegram server ---------------------------------------------------

CHATS = (7_000_001, 7_000_002, 7_000_003)
_markers = itertools.count(1)


def marker() -> str:
    """A piece of 'personal' text no log line may ever hold."""
    return f"Bímật{next(_markers):05d}kín"


@dataclass(frozen=True)
class Event:
    what: str  # text | press | sticker | raw
    chat: int
    value: Any = None


def _raw_bodies() -> st.SearchStrategy[dict[str, Any]]:
    """Updates without `update_id` (the fake numbers them): broken templates and nested garbage."""
    def template(chat: int, message_id: int, index: int) -> dict[str, Any]:
        return templates(chat, message_id, "{marker}")[index]

    base = st.builds(template, st.sampled_from(CHATS), st.integers(10**7, 10**8), st.integers(0, 9))
    garbage = st.dictionaries(st.sampled_from([k for k in UPDATE_KEYS if k != "update_id"]), json_values, max_size=3)
    return st.one_of(base, base.flatmap(lambda body: mutated(body, allow_update_id=False)), garbage)


# Half of what people type or press carries a 'personal' marker to look for in the log; the other half is
# left as generated, so typed numbers and real actions still work.
events = st.one_of(
    st.builds(Event, st.just("text"), st.sampled_from(CHATS), st.tuples(typed, st.booleans())),
    st.builds(Event, st.just("press"), st.sampled_from(CHATS),
              st.tuples(forged_actions.map(lambda action: action[:100]), st.booleans())),
    st.builds(Event, st.just("sticker"), st.sampled_from(CHATS)),
    st.builds(Event, st.just("raw"), st.just(0), _raw_bodies()),
)


def _fill(value: Any, words: str) -> Any:
    """The template's '{marker}' placeholders replaced, and the fake's own message ids kept clear of."""
    if isinstance(value, str):
        return value.replace("{marker}", words)
    if isinstance(value, list):
        return [_fill(inner, words) for inner in value]
    if isinstance(value, dict):
        filled = {key: _fill(inner, words) for key, inner in value.items() if key != "update_id"}
        if isinstance(filled.get("message_id"), int) and 0 <= filled["message_id"] < 10**7:
            filled["message_id"] += 10**7  # never the id of a message the fake hands out
        return filled
    return value


async def _short_sleep(seconds: float) -> None:
    await asyncio.sleep(min(seconds, 0.05))  # retries and poll back-off without waiting, and without spinning


@pytest.fixture(params=["polling", "webhook"])
async def live(request: pytest.FixtureRequest, database_url: str, tmp_path: Path) -> AsyncIterator[FakeTelegram]:
    """`hocvuso run`'s runtime against the fake Bot API server, on each database and in each mode."""
    async with FakeTelegram() as telegram:
        extra: dict[str, Any] = {}
        if request.param == "webhook":
            port = free_port()
            extra = {"webhook_url": f"http://127.0.0.1:{port}", "webhook_secret": "bi-mat_123", "listen_port": port}
        settings = Settings(_env_file=None, database_url=database_url, telegram_token=TOKEN,  # type: ignore[call-arg]
                            telegram_api_url=telegram.api_url, telegram_poll_timeout=1, telegram_timeout=2, **extra)
        runtime = Runtime(settings, clock=FakeClock(), sleep=_short_sleep, renderer=threads_only)
        await runtime.start()
        try:
            yield telegram
        finally:
            await runtime.stop()


def _sending_calls(telegram: FakeTelegram, chat: int | None = None) -> list[dict[str, Any]]:
    return [params for method, params in telegram.calls if method in SENDING
            and (chat is None or str(params.get("chat_id")) == str(chat))]


async def _everyone_still_answered(telegram: FakeTelegram, timeout: float) -> None:
    """Each chat asks for help, then sends a command of its own the bot repeats in its answer. Updates of
    a chat are answered in order, so once that answer arrives, all the chat sent before was handled, and
    the help came just before it."""
    probes = {chat: f"/xong{next(_markers)}" for chat in CHATS}
    for chat, probe in probes.items():
        await telegram.user_sends(chat, "/trogiup")
        await telegram.user_sends(chat, probe)

    def answered(chat: int, probe: str) -> Callable[[], bool]:
        return lambda: any(probe in sent.text for sent in telegram.sent[chat])

    await asyncio.gather(*(telegram.wait_for_chat(chat, answered(chat, probe), timeout)
                           for chat, probe in probes.items()))
    for chat, probe in probes.items():
        sent = telegram.sent[chat]
        last = next(index for index, message in enumerate(sent) if probe in message.text)
        assert "Các lệnh" in sent[last - 1].text, (chat, [message.text[:40] for message in sent[last - 2:]])


def _no_apology_sent(telegram: FakeTelegram) -> None:
    sent = [str(params.get("text") or params.get("caption") or "") for params in _sending_calls(telegram)]
    assert not [text for text in sent if texts.SORRY in text], "an apology was sent"


@RUNTIME
@given(batch=st.lists(events, min_size=10, max_size=60))
async def test_a_runtime_fed_random_and_malformed_updates_keeps_answering_everyone(live, caplog, batch):
    telegram = live
    caplog.set_level(logging.INFO)
    secrets: list[str] = []
    handled = dict.fromkeys(CHATS, 0)  # well-formed updates each chat sent: each must be answered
    answered_before = {chat: len(_sending_calls(telegram, chat)) for chat in CHATS}
    for happening in batch:
        secret = marker()
        if happening.what in ("text", "press"):
            value, marked = happening.value
            if marked:
                value = f"{value} {secret}" if happening.what == "text" else f"{value}{secret}"
                secrets.append(secret)
            if happening.what == "text":
                await telegram.user_sends(happening.chat, value)
            else:
                await telegram.user_presses(happening.chat, value)
        elif happening.what == "sticker":
            await telegram.user_sends_sticker(happening.chat)
        else:
            secrets.append(secret)
            await telegram.inject_raw(_fill(happening.value, secret))
        if happening.what != "raw":
            handled[happening.chat] += 1
    await _everyone_still_answered(telegram, timeout=15)
    for chat in CHATS:  # every update sent was answered (a press redrawing its screen by an edit)
        assert len(_sending_calls(telegram, chat)) - answered_before[chat] >= handled[chat] + 2, chat
    _no_apology_sent(telegram)
    assert not [secret for secret in secrets if secret in caplog.text], "message text reached the log"


# Updates the adapter accepts but cannot read or store, found by the pure tests above.
POISON = {
    "message without a chat": {"message": {"message_id": 10**7, "date": 0, "chat": None, "text": "{marker}"}},
    "chat id too long for its column": {"message": {"message_id": 10**7 + 1, "date": 0,
                                                    "chat": private_chat(10**70), "text": "{marker}"}},
    "NUL in a callback query id": {"callback_query": {"id": "q\x00", "from": user(CHATS[0]), "chat_instance": "ci",
                                                      "data": "{marker}"}},
}


async def test_one_update_that_cannot_be_read_or_stored_holds_up_no_one(live, caplog):
    telegram = live
    caplog.set_level(logging.INFO)
    for poison, body in POISON.items():
        secret = marker()
        await telegram.inject_raw(_fill(body, secret))
        try:
            await _everyone_still_answered(telegram, timeout=3)
        except TimeoutError:
            pytest.fail(f"after an update with a {poison}, the bot stopped answering")
        _no_apology_sent(telegram)
        assert secret not in caplog.text, poison
