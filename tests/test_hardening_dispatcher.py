"""Hostile input and failing turns: what a person sees after an apology, odd digits, decomposed Unicode."""

from __future__ import annotations

import logging
import random
import sys
import unicodedata
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlmodel import select

from bot.app import build_services
from bot.settings import Settings
from handlers import texts
from handlers.context import Services
from handlers.core import Incoming, Kind
from handlers.dispatcher import Dispatcher, build_registry
from handlers.numbers import typed_number
from handlers.registry import Registry, Step
from storage import queries
from storage.models import Person
from tests.support import Chat, converse
from tests.test_dialog_learning import first_lesson
from tests.test_dialog_registration import register
from tests.test_dialog_review import pass_missing_one

SORRY = "trục trặc"


@pytest.fixture
async def services_anywhere(database_url, clock) -> AsyncIterator[Services]:
    """Services on SQLite and, with TEST_DATABASE_URL, on PostgreSQL."""
    built = await build_services(Settings(_env_file=None, database_url=database_url), clock=clock,
                                 rng=random.Random(11))
    yield built
    await built.database.dispose()


def failing_on_text(step: str) -> Registry:
    """The real registry, except that typing anything at `step` raises, as a bug in that step would."""
    registry = build_registry()

    async def broken(_turn: object, _text: str) -> None:
        raise RuntimeError("a bug in the step")

    registry.steps[step] = Step(step, registry.steps[step].view, broken)
    return registry


async def people(services) -> list[Person]:
    async with services.database.session() as session:
        return list((await session.exec(select(Person))).all())


# --- defect 1: after an apology, the stored menu is the menu the person sees --------------------

async def test_after_an_apology_on_the_erase_screen_1_goes_home_and_erases_nothing(services_anywhere, caplog):
    services = services_anywhere
    chat = Chat(Dispatcher(services, failing_on_text("erase_confirm")))
    await register(chat)
    await converse(chat, [("/xoadulieu", "chắc chắn")])
    assert chat.number_of("Xóa hết") == 1  # typing "1" here would erase
    apology = await chat.say("để mình nghĩ đã")
    assert SORRY in apology and chat.labels == [texts.BTN_MENU]
    await converse(chat, [("1", texts.MAIN_MENU)])
    assert [person.full_name for person in await people(services)] == ["Nguyễn Văn An"]
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "handler failed" in logged and "để mình nghĩ đã" not in logged and "Nguyễn" not in logged


async def test_after_an_apology_on_the_consent_screen_1_records_no_consent(services_anywhere):
    services = services_anywhere
    chat = Chat(Dispatcher(services, failing_on_text("consent")))
    await converse(chat, [("/start", "Bạn có đồng ý không?")])
    assert chat.number_of("Đồng ý") == 1
    assert SORRY in await chat.say("đồng ý chứ")
    await converse(chat, [("1", texts.MAIN_MENU)])
    assert await people(services) == []


async def test_with_the_database_down_the_apology_has_no_numbers(services_anywhere, monkeypatch):
    services = services_anywhere
    chat = Chat(Dispatcher(services))
    await register(chat)
    await converse(chat, [("/xoadulieu", "chắc chắn")])

    @asynccontextmanager
    async def database_down():
        raise ConnectionRefusedError("database down")
        yield  # pragma: no cover - makes this a generator

    monkeypatch.setattr(services.database, "session", database_down)
    apology = await chat.say("1")
    assert SORRY in apology and "menu" in apology
    assert all(not reply.buttons for reply in chat.replies)  # nothing numbered to map to an old screen
    monkeypatch.undo()
    await converse(chat, [("menu", texts.MAIN_MENU)])
    assert len(await people(services)) == 1


# --- defect 8: digits that are not decimal digits ------------------------------------------------

NOT_DECIMAL = [chr(c) for c in range(sys.maxunicode + 1) if chr(c).isdigit() and not chr(c).isdecimal()]


def test_digits_of_other_scripts_are_numbers_and_superscripts_are_not():
    assert typed_number("2") == 2 and typed_number("２") == 2 and typed_number("٣") == 3  # fullwidth, Arabic-Indic
    assert typed_number("１２") == 12 and typed_number("𝟒") == 4
    assert {"²", "③", "①", "⁴"} <= set(NOT_DECIMAL)
    assert all(typed_number(odd) is None for odd in NOT_DECIMAL)
    assert all(typed_number(f"1{odd}") is None for odd in NOT_DECIMAL)
    assert typed_number("") is None and typed_number("9" * 5000) is None and typed_number("-1") is None


@given(st.text())
def test_typed_number_never_raises(text):
    number = typed_number(text)
    assert number is None or number >= 0


async def test_every_non_decimal_digit_gets_please_choose_never_an_apology(services_anywhere):
    chat = Chat(Dispatcher(services_anywhere))
    await converse(chat, [("/start", "đồng ý"), ("menu", texts.MAIN_MENU)])
    for odd in NOT_DECIMAL:
        answer = await chat.say(odd)
        assert texts.PLEASE_CHOOSE in answer and SORRY not in answer, (hex(ord(odd)), answer)
        assert texts.MAIN_MENU in answer


async def test_fullwidth_and_arabic_indic_digits_choose_from_the_menu(chat):
    await converse(chat, [("/start", "đồng ý"), ("menu", texts.MAIN_MENU)])
    await converse(chat, [("２", "chưa đăng ký nên mình không lưu tiến độ")])
    await converse(chat, [("menu", texts.MAIN_MENU), ("٤", "Cách dùng")])


async def put_menu(services, step: str, data: dict, menu: list[str]) -> None:
    async with services.database.session() as session:
        state = await queries.load_state(session, "console", "an", services.clock())
        state.step, state.data, state.menu = step, data, menu
        session.add(state)


@pytest.mark.parametrize("odd", ["²", "③", "٣", "x"])
async def test_a_quiz_answer_with_an_odd_digit_is_refused_politely(chat, services, odd):
    lesson = first_lesson(services)
    question = lesson.quiz[0]
    data = {"lesson": lesson.id, "order": [q.id for q in lesson.quiz], "answers": {}, "attempt": None}
    await put_menu(services, "quiz", data, [f"qa:{question.id}:{odd}"])
    answer = await chat.press(f"qa:{question.id}:{odd}")
    assert texts.STALE_BUTTON in answer and SORRY not in answer
    assert f"Câu 1/{len(lesson.quiz)}" in answer


@pytest.mark.parametrize("odd", ["²", "①", "٠", "x"])
async def test_a_review_answer_with_an_odd_digit_is_refused_politely(chat, services, clock, odd):
    await register(chat)
    await pass_missing_one(chat, first_lesson(services))
    clock.advance(days=3)
    await converse(chat, [("/hoc", "Ôn tập: 1 câu"), ("#Ôn tập", "câu 1/1")])
    async with services.database.session() as session:
        state = await queries.load_state(session, "console", "an", services.clock())
        state.menu = [*state.menu, f"rv:1:{odd}"]
        session.add(state)
    answer = await chat.press(f"rv:1:{odd}")
    assert texts.STALE_BUTTON in answer and SORRY not in answer and "câu 1/1" in answer


# --- defect 12: Vietnamese typed in decomposed Unicode ---------------------------------------------

def test_incoming_text_name_and_user_are_normalised_to_nfc():
    decomposed = unicodedata.normalize("NFD", "Nguyễn Văn Ấn")
    incoming = Incoming.from_text("console", decomposed, decomposed, display_name=decomposed)
    assert incoming.text == incoming.display_name == incoming.user_id == "Nguyễn Văn Ấn"
    assert Incoming("console", "an", Kind.ACTION, "menu").display_name is None


async def test_a_name_typed_in_decomposed_unicode_is_accepted_and_stored_composed(chat, services):
    decomposed = unicodedata.normalize("NFD", "Nguyễn Văn Ấn")
    assert decomposed != "Nguyễn Văn Ấn"
    await register(chat, name=decomposed)
    assert [person.full_name for person in await people(services)] == ["Nguyễn Văn Ấn"]


async def test_the_log_of_a_failed_turn_names_no_user_text(services, caplog):
    caplog.set_level(logging.INFO)
    chat = Chat(Dispatcher(services, failing_on_text("main")))
    await chat.say("menu")
    await chat.say("Nguyễn Văn An 0912345678")
    assert all("0912345678" not in record.getMessage() for record in caplog.records)


async def test_a_lone_surrogate_is_replaced_so_an_echoing_answer_can_be_sent(chat):
    """Found in review: '/x\\ud800' (valid JSON) was echoed in the answer, which then failed to encode."""
    incoming = Incoming.from_text("telegram", "9", "/x\ud800", display_name="An\udfff")
    assert incoming.text == "/x\ufffd" and incoming.display_name == "An\ufffd"
    answer = await chat.say("/x\ud800")
    answer.encode("utf-8")  # what a channel must do to send it
    assert "/x\ufffd" in answer
