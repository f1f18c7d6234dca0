"""Several courses: /hoc offers them; finishing every lesson of a course is logged once per course."""

from __future__ import annotations

import random
import shutil

from sqlmodel import select

from bot.app import build_services
from bot.settings import Settings
from content.loader import CONTENT_DIR
from handlers.dispatcher import Dispatcher
from storage.models import Activity
from tests.support import Chat, converse
from tests.test_dialog_learning import answer
from tests.test_dialog_registration import register

SMALL_COURSE = """id: can-bo
title: Khóa cho cán bộ
lessons:
  - dich-vu-cong
"""


async def test_courses_are_offered_and_a_finished_course_is_logged(tmp_path, clock, chat_channel):
    content = tmp_path / "content"
    shutil.copytree(CONTENT_DIR, content, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    (content / "courses" / "can-bo.yaml").write_text(SMALL_COURSE, encoding="utf-8")
    settings = Settings(_env_file=None, database_url=f"sqlite+aiosqlite:///{tmp_path / 'c.db'}",
                        content_dir=content)
    services = await build_services(settings, clock=clock, rng=random.Random(2))
    try:
        chat = Chat.on(chat_channel, Dispatcher(services))
        await register(chat)
        lesson = services.catalog.lesson("dich-vu-cong")
        await converse(chat, [
            ("/hoc", "Khóa kỹ năng số cơ bản (0/"),  # the core course first, the others below it
            ("#Khóa cho cán bộ (0/1)", "Khóa cho cán bộ (0/1 bài đã xong)"),
            (f"#{lesson.title}", "(1/"),
        ])
        for _ in range(len(lesson.cards) - 1):
            await chat.choose("Tiếp")
        await chat.choose("Làm bài kiểm tra")
        await answer(chat, lesson, correct=True)
        assert "Chúc mừng! Bạn đã hoàn thành cả Khóa cho cán bộ" in chat.transcript
        assert "Khóa kỹ năng số cơ bản" not in chat.transcript  # the core course is not finished
        await converse(chat, [
            ("/hoc", "✅ Khóa cho cán bộ (1/1)"),
            ("#Khóa cho cán bộ", "⭐ Khóa kỹ năng số cơ bản (1/"),
        ])
        async with services.database.session() as session:
            finished = (await session.exec(select(Activity).where(Activity.kind == "course_finished"))).all()
        assert [a.detail for a in finished] == ["can-bo"]
    finally:
        await services.database.dispose()
