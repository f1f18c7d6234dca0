"""The chat the dialog tests talk through (tests/support.py), on each channel: what the person does goes
in through the channel's adapter as its platform would send it, and the answer shows as the platform
would show it. The dialog tests (tests/test_dialog_*.py) run on all three with it."""

from __future__ import annotations

import pytest
from sqlmodel import select

from handlers.render import menu_lines
from storage.models import ChannelAccount, ConversationState
from tests.support import converse
from tests.test_dialog_figures import FARMERS, grant, register_viewer

CONSENT = ["✅ Đồng ý", "Không đồng ý"]


async def test_each_channel_shows_the_choices_its_own_way_and_stores_its_own_chat_id(chat, services):
    shown = await chat.say("/start")
    assert chat.labels == CONSENT
    if chat.channel == "telegram":  # buttons, one per row; nothing to type
        assert "[✅ Đồng ý]\n[Không đồng ý]" in shown and "Gõ 1" not in shown
        assert chat.external_id.isdigit()
    else:  # the console and Zalo: typed numbers at the end of the message
        assert shown.endswith(menu_lines(CONSENT))
    await converse(chat, [("#Đồng ý", "họ và tên")])
    async with services.database.session() as session:
        account = (await session.exec(select(ChannelAccount))).one()
        state = (await session.exec(select(ConversationState))).one()
    assert (account.channel, account.external_id) == (chat.channel, chat.external_id)
    assert (state.channel, state.external_id) == (chat.channel, chat.external_id)


@pytest.mark.parametrize("chat_channel", ["telegram"], indirect=True)
async def test_telegram_lists_long_labels_in_the_text_and_a_choice_presses_its_number(chat, services):
    lesson = services.catalog.lesson("kinh-te-so")
    assert len(lesson.title) > 40  # too long for a button
    shown = await chat.say("/hoc")
    number = services.catalog.core_course.lessons.index(lesson.id) + 1
    assert f"{number}. ▫️ {lesson.title}" in shown and "[1] [2] [3] [4] [5]" in shown
    assert dict(chat.choices)[f"▫️ {lesson.title}"] == "lesson:kinh-te-so"  # the 9 button's data
    assert f"📖 {lesson.title} (1/{len(lesson.cards)})" in await chat.choose(lesson.title)


@pytest.mark.parametrize("chat_channel", ["telegram"], indirect=True)
async def test_telegram_redraws_the_next_card_in_the_message_pressed(chat, services):
    lesson = services.catalog.ordered_lessons()[0]
    await chat.say("/hoc")
    await chat.choose(lesson.title)
    [card] = chat.shown
    assert f"(2/{len(lesson.cards)})" in await chat.choose("Tiếp")
    assert [shown.message_id for shown in chat.shown] == [card.message_id]  # edited, not sent again
    assert f"(1/{len(lesson.cards)})" in await chat.choose("Quay lại")
    assert [shown.message_id for shown in chat.shown] == [card.message_id]
    assert f"(2/{len(lesson.cards)})" in await chat.say("1")  # typed: a new message
    assert chat.shown[0].message_id != card.message_id


async def test_a_file_shows_as_each_channel_can_send_it(make_chat, services):
    leader = make_chat("leader")
    await register_viewer(leader, "Trần Văn Lãnh")
    await grant(services, leader, "leader", org=FARMERS)
    shown = await leader.say("/thongke")
    chart = leader.replies[-1].attachment
    assert chart is not None and f"📊 {FARMERS}" in shown
    if leader.channel == "telegram":
        assert f"📎 {chart.file_name}" in shown  # a photo, its text as the caption
    elif leader.channel == "zalo":
        assert f"Zalo không gửi được tệp “{chart.file_name}”" in shown  # no download link set up here
    await leader.choose("Danh sách")
    assert leader.replies[-1].attachment.file_name.endswith(".xlsx")
