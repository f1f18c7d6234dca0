"""Every registered command and step answers empty, unknown and oversized input with a reply."""

from __future__ import annotations

import pytest

from handlers.core import Incoming, Kind
from handlers.dispatcher import build_registry
from storage import queries
from tests.support import Chat
from tests.test_dialog_registration import register

REGISTRY = build_registry()

ODD_INPUTS = [
    Incoming("console", "an", Kind.TEXT, ""),
    Incoming("console", "an", Kind.TEXT, "chữ gì đó không ai hiểu"),
    Incoming("console", "an", Kind.TEXT, "0"),
    Incoming("console", "an", Kind.TEXT, "²"),  # a digit to str.isdigit, not to int()
    Incoming("console", "an", Kind.TEXT, "١"),  # Arabic-Indic 1: a decimal digit
    Incoming("console", "an", Kind.TEXT, "x" * 20_000),
    Incoming("console", "an", Kind.COMMAND, "/khongcolenhnay"),
    Incoming("console", "an", Kind.COMMAND, "/"),
    Incoming("console", "an", Kind.ACTION, "khongco:1"),
    Incoming("console", "an", Kind.ACTION, ""),
    Incoming("console", "an", Kind.ACTION, "x" * 300),
    Incoming("console", "an", Kind.UNSUPPORTED, ""),
    Incoming("console", "an", Kind.CONTACT, ""),
]


def sample_data(services, step: str) -> dict:
    lesson = services.catalog.ordered_lessons()[0]
    return {
        "card": {"lesson": lesson.id, "index": 1},
        "quiz": {"lesson": lesson.id, "order": [q.id for q in lesson.quiz], "answers": {}, "attempt": None},
        "quiz_result": {"lesson": lesson.id},
    }.get(step, {"flow": "settings"})


async def put_in_step(services, step: str, data: dict) -> None:
    async with services.database.session() as session:
        state = await queries.load_state(session, "console", "an", services.clock())
        state.step, state.data, state.menu = step, data, []
        session.add(state)


@pytest.mark.parametrize("registered", [False, True], ids=["guest", "registered"])
@pytest.mark.parametrize("step", sorted(REGISTRY.steps))
async def test_every_step_answers_odd_input(step, registered, chat: Chat, services):
    if registered:
        await register(chat)
    for data in ({}, sample_data(services, step)):
        for incoming in ODD_INPUTS:
            await put_in_step(services, step, data)
            replies = await chat.send(incoming)
            assert replies, f"{step} {data} gave no reply to {incoming.kind}:{incoming.text[:20]!r}"
            assert all(reply.text.strip() for reply in chat.replies)
            assert "Xin lỗi, mình vừa gặp trục trặc" not in replies, f"{step} crashed on {incoming.text[:20]!r}"


@pytest.mark.parametrize("registered", [False, True], ids=["guest", "registered"])
@pytest.mark.parametrize("command", sorted(REGISTRY.commands))
async def test_every_command_answers_from_every_step(command, registered, chat: Chat, services):
    if registered:
        await register(chat)
    for step in REGISTRY.steps:
        await put_in_step(services, step, {})
        replies = await chat.say(f"/{command}")
        assert replies and "trục trặc" not in replies, f"/{command} from {step}"


def test_every_action_shown_has_a_route():
    assert {"menu", "hoc", "lesson", "qa", "quiz", "card", "consent", "erase", "set"} <= set(REGISTRY.actions)
