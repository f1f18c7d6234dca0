"""Issue 12: plain words work as commands, and a menu is never mistaken for a card's numbered steps."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Awaitable, Callable

import pytest
from sqlmodel import select

from bot.channels.console import render
from bot.channels.telegram import keyboard_for
from handlers import texts
from handlers.dispatcher import COMMAND_KEYS, HOME_KEYS, Dispatcher, build_registry, typed_words, without_marks
from storage.models import Deadline, Person
from tests.support import Chat, converse
from tests.test_dialog_deadlines import with_role

MENU_LINE = re.compile(r"^Gõ (\d+) → (.+)$")
STEP_LINE = re.compile(r"^\d+\. ")

Setup = Callable[[Chat], Awaitable[object]]


def first_lesson(services):
    return services.catalog.ordered_lessons()[0]


# --- rendering ------------------------------------------------------------------------------------

async def test_a_card_with_numbered_steps_and_its_menu_cannot_be_confused(chat, services):
    lesson = first_lesson(services)
    await chat.say("/hoc")
    shown = await chat.choose(lesson.title)
    assert "1. Vuốt từ mép trên màn hình xuống" in shown  # the card's own steps, as written
    card = next(reply for reply in chat.replies if reply.buttons)
    lines = render(card).splitlines()
    steps = [line for line in lines if STEP_LINE.match(line)]
    menu = [MENU_LINE.match(line) for line in lines if MENU_LINE.match(line)]
    assert len(steps) >= 4 and not any(MENU_LINE.match(line) for line in steps)
    # Every choice says what to type and maps back to its button, in order; it is the end of the message.
    assert [(int(m[1]), m[2]) for m in menu] == list(enumerate(card.labels, start=1))
    assert lines[-len(menu):] == [m[0] for m in menu]
    assert not any(STEP_LINE.match(m[2]) for m in menu)
    assert "1. Tiếp" not in shown and f"Gõ {chat.number_of('Tiếp')} → Tiếp ▶️" in shown
    # Typing the menu's number goes on, not to a step.
    assert f"(2/{len(lesson.cards)})" in await chat.choose("Tiếp")


def test_no_card_or_question_reads_like_a_menu_line(services):
    """The menu's form is free for the menu: no content line starts "Gõ 1 →"."""
    for lesson in services.catalog.ordered_lessons():
        for text in [*lesson.cards, *(q.question for q in lesson.quiz)]:
            assert not any(MENU_LINE.match(line.strip()) for line in text.splitlines()), lesson.id


async def test_telegram_still_shows_buttons_and_the_card_unchanged(chat, services):
    lesson = first_lesson(services)
    await chat.say("/hoc")
    await chat.choose(lesson.title)
    card = next(reply for reply in chat.replies if reply.buttons)
    text, rows = keyboard_for(card)
    assert text == card.text and "Gõ" not in text
    assert [label for row in rows for label, _ in row] == card.labels


# --- words as commands ----------------------------------------------------------------------------

async def to_main_menu(chat: Chat) -> None:
    await chat.say("/start")
    await chat.say("menu")


async def mid_lesson(chat: Chat) -> None:
    lesson = first_lesson(chat.dispatcher.services)
    await chat.say("/hoc")
    await chat.choose(lesson.title)
    await chat.choose("Tiếp")
    assert f"(2/{len(lesson.cards)})" in chat.transcript


async def mid_quiz(chat: Chat) -> None:
    lesson = first_lesson(chat.dispatcher.services)
    await chat.say("/hoc")
    await chat.choose(lesson.title)
    for _ in range(len(lesson.cards) - 1):
        await chat.choose("Tiếp")
    await chat.choose("Làm bài kiểm tra")
    assert "❓ Câu 1/" in chat.transcript


WORDS = [
    ("học", "/hoc"), ("hoc", "/hoc"), ("HỌC", "/hoc"), ("  Học!  ", "/hoc"), ("Hoc bai", "/hoc"),
    ("tiến độ", "/tiendo"), ("tien do", "/tiendo"), ("Tiến Độ.", "/tiendo"), ("TIEN  DO", "/tiendo"),
    ("tiến độ của tôi", "/tiendo"),
    ("trợ giúp", "/trogiup"), ("tro giup", "/trogiup"), ("Trợ giúp?", "/trogiup"),
    ("menu", "menu"), ("Menu!", "menu"), ("ve menu", "menu"), ("trang chu", "menu"),
]


async def answers_alike(dispatcher: Dispatcher, setup: Setup, word: str, command: str) -> tuple[str, str]:
    """What `word` and `command` get, each typed by its own person brought to the same place."""
    by_word, by_command = Chat(dispatcher, user="chu"), Chat(dispatcher, user="lenh")
    await setup(by_word)
    await setup(by_command)
    return await by_word.say(word), await by_command.say(command)


@pytest.mark.parametrize("setup", [to_main_menu, mid_lesson, mid_quiz])
@pytest.mark.parametrize(("word", "command"), WORDS)
async def test_plain_words_do_what_their_command_does(dispatcher, setup, word, command):
    said, expected = await answers_alike(dispatcher, setup, word, command)
    assert said == expected
    assert texts.PLEASE_CHOOSE not in said


@pytest.mark.parametrize(("word", "command"), [("học", "/hoc"), ("tiến độ", "/tiendo"), ("trợ giúp", "/trogiup"),
                                               ("về menu", "menu")])
async def test_decomposed_words_are_the_same_words(dispatcher, word, command):
    """Unikey's "Unicode tổ hợp" and some phones type e + combining marks."""
    decomposed = unicodedata.normalize("NFD", word)
    assert decomposed != word or word.isascii()
    said, expected = await answers_alike(dispatcher, mid_lesson, decomposed, command)
    assert said == expected


def test_the_words_are_matched_whatever_surrounds_them():
    nfd = unicodedata.normalize("NFD", "  TIẾN ĐỘ!!\u200b ")
    assert typed_words(nfd) == "tiến độ" and without_marks(typed_words(nfd)) == "tien do"
    assert typed_words("📚 Học bài") == "học bài" and typed_words("⚙️ Trợ giúp ▶️") == "trợ giúp"
    assert typed_words("\u3000menu\u00a0") == "menu"
    assert without_marks(typed_words("ĐƯỜNG")) == "duong"


def test_every_word_names_a_command_and_no_word_is_two_things():
    registry = build_registry()
    assert set(COMMAND_KEYS.values()) <= set(registry.commands)
    assert {"hoc", "tien do", "tro giup"} <= set(COMMAND_KEYS)
    assert not set(COMMAND_KEYS) & {without_marks(word) for word in HOME_KEYS}
    assert "huy" not in HOME_KEYS  # Huy is a given name: only "hủy"/"huỷ" with their marks lead home


@pytest.mark.parametrize("text", ["học sinh", "tôi muốn học", "tiến", "giúp tôi với", "hocc", "1 học"])
async def test_other_words_are_not_commands(chat, text):
    await to_main_menu(chat)
    answer = await chat.say(text)
    assert texts.PLEASE_CHOOSE in answer


async def test_a_menu_number_still_wins(chat):
    await to_main_menu(chat)
    assert "Chọn bài để học" in await chat.choose("Học bài")


# --- a step waiting for text keeps it -------------------------------------------------------------

async def at_name_question(chat: Chat) -> None:
    await converse(chat, [("/start", "Bạn có đồng ý không?"), ("#Đồng ý", "họ và tên")])


@pytest.mark.parametrize("name", ["Học", "hoc", "Tiến Độ", "Huy"])
async def test_a_name_that_is_also_a_word_is_the_name(chat, services, name):
    await at_name_question(chat)
    answer = await chat.say(name)
    assert "thôn/xóm nào" in answer and "Chọn bài để học" not in answer
    async with services.database.session() as session:
        assert (await session.exec(select(Person.full_name))).one() == name


async def test_a_home_word_still_leaves_a_question(chat):
    await at_name_question(chat)
    assert texts.MAIN_MENU in await chat.say("Menu.")


@pytest.mark.parametrize("word", ["tro giup", "học", unicodedata.normalize("NFD", "tiến độ")])
async def test_a_word_at_the_household_code_question_is_a_wrong_code(chat, word):
    await converse(chat, [
        ("/start", "đồng ý"), ("#Đồng ý", "họ và tên"), ("Lê Thị Hoa", "thôn/xóm"), ("#Bỏ qua", "nhóm nào"),
        ("#Bỏ qua", "Hộ gia đình"), ("#Nhập mã hộ", "6 chữ số"),
    ])
    answer = await chat.say(word)
    assert "gồm 6 chữ số" in answer
    assert "❓ Cách dùng" not in answer and "Chọn bài để học" not in answer


async def test_a_deadline_may_be_named_with_a_word(dispatcher, services):
    staff = await with_role(dispatcher, services, "staff", "staff")
    await staff.say("/hanchot")
    await converse(staff, [("#1.", "📅 Đổi ngày hạn"), ("#Đổi tên", "Bạn gõ tên mới")])
    answer = await staff.say("Tiến độ")
    assert "1. Tiến độ" in answer and "Đổi ngày hạn" in answer
    async with services.database.session() as session:
        assert (await session.exec(select(Deadline.title))).all() == ["Tiến độ"]
