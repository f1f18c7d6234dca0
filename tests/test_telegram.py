"""Telegram end to end: `hocvuso run`'s runtime against a fake Bot API server, polling and webhook."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlmodel import select

from bot.runtime import Runtime
from bot.settings import Settings
from content.loader import load_catalog
from handlers.core import Button, Reply, to_payload
from handlers.registry import Command
from storage import outbox
from storage.db import Database
from storage.models import ChannelAccount, ProcessedUpdate, RoleGrant
from tests.fakes.server import free_port
from tests.fakes.telegram import TOKEN, FakeTelegram
from tests.fakes.telegram import FakeUser as Resident
from tests.support import threads_only

SECRET = "bi-mat_123"
CATALOG = load_catalog()
LESSON = CATALOG.ordered_lessons()[0]


def make_settings(tmp_path: Path, telegram: FakeTelegram, **extra: object) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'tg.db'}",
        telegram_token=TOKEN, telegram_api_url=telegram.api_url,
        telegram_poll_timeout=1, telegram_timeout=2, **extra,
    )


@pytest.fixture
async def telegram():
    async with FakeTelegram() as fake:
        yield fake


@pytest.fixture(params=["polling", "webhook"])
async def running(request, tmp_path, telegram, fake_sleep, clock):
    extra = {}
    if request.param == "webhook":
        port = free_port()
        extra = {"webhook_url": f"http://127.0.0.1:{port}", "webhook_secret": SECRET, "listen_port": port}
    runtime = Runtime(make_settings(tmp_path, telegram, **extra), clock=clock, sleep=fake_sleep, renderer=threads_only)
    await runtime.start()
    yield runtime
    await runtime.stop()


@pytest.fixture
async def polling(tmp_path, telegram, fake_sleep, clock):
    runtime = Runtime(make_settings(tmp_path, telegram), clock=clock, sleep=fake_sleep, renderer=threads_only)
    await runtime.start()
    yield runtime
    await runtime.stop()


async def register(resident: Resident) -> None:
    await resident.says("/start", "Bạn có đồng ý không?")
    await resident.presses("Đồng ý", "họ và tên")
    await resident.says("Nguyễn Văn An", "thôn/xóm")
    await resident.presses("Thôn 2", "nhóm nào")
    await resident.presses("Người dân", "Hộ gia đình")
    await resident.presses("Tạo mã hộ mới", "tổ chức nào")
    toggled = await resident.presses("Hội Nông dân", "tổ chức nào")
    assert "☑️ Hội Nông dân xã" in toggled.button_labels
    await resident.presses("Xong", "VNeID")
    await resident.presses("Chưa kích hoạt", "Đăng ký xong")


async def test_a_resident_registers_learns_passes_and_sees_progress(running, telegram):
    resident = Resident(telegram, 5001)
    await register(resident)
    await resident.presses("Học bài đầu tiên", f"(1/{len(LESSON.cards)})")
    for number in range(2, len(LESSON.cards) + 1):
        await resident.presses("Tiếp", f"({number}/{len(LESSON.cards)})")
    await resident.presses("Làm bài kiểm tra", f"Câu 1/{len(LESSON.quiz)}")
    for number, question in enumerate(LESSON.quiz, start=1):
        expect = "Bạn đã hoàn thành bài" if number == len(LESSON.quiz) else f"Câu {number + 1}/"
        await resident.presses_data(f"qa:{question.id}:{question.correct_index}", expect)
    progress = await resident.says("/tiendo", "Tiến độ của bạn")
    assert f"đã xong 1/{len(CATALOG.core_course.lessons)} bài" in progress.text
    # The command menu was set in Vietnamese, and every button press was acknowledged.
    commands = telegram.methods_called("setMyCommands")[0]["commands"]
    assert {"command": "hoc", "description": "Danh sách bài học"} in commands
    presses = sum(1 for update in telegram.delivered if "callback_query" in update)
    assert len(telegram.methods_called("answerCallbackQuery")) == presses


async def test_long_quiz_options_are_listed_in_the_text_with_number_buttons(running, telegram):
    resident = Resident(telegram, 5002)
    await resident.says("/hoc", "Chọn bài để học")
    question_with_long_option = next(
        (lesson, q) for lesson in CATALOG.ordered_lessons() for q in lesson.quiz[:1]
        if any(len(o.text) > 40 for o in q.options)
    )
    lesson, question = question_with_long_option
    await resident.presses_data(f"lesson:{lesson.id}", "(1/")
    for number in range(2, len(lesson.cards) + 1):
        await resident.presses("Tiếp", f"({number}/")
    await resident.presses_data(f"quiz:start:{lesson.id}", "Câu 1/")
    shown = telegram.last(5002)
    assert shown is not None and "1. " + question.options[0].text in shown.text
    assert shown.button_labels[: len(question.options)] == [str(n) for n in range(1, len(question.options) + 1)]


async def test_stickers_and_forged_buttons_get_a_polite_answer(running, telegram):
    resident = Resident(telegram, 5003)
    await resident.says("/hoc", "Chọn bài để học")
    await telegram.user_sends_sticker(5003)
    await resident.expect("Mình chưa hiểu được nhãn dán")
    await telegram.user_presses(5003, "erase:yes")
    await resident.expect("Nút này đã cũ")
    await telegram.user_presses(5003, "qa:q1:0")
    await resident.expect("Nút này đã cũ")


async def webhook_runtime(tmp_path, telegram, fake_sleep, clock) -> Runtime:
    port = free_port()
    settings = make_settings(tmp_path, telegram, webhook_url=f"http://127.0.0.1:{port}",
                             webhook_secret=SECRET, listen_port=port)
    runtime = Runtime(settings, clock=clock, sleep=fake_sleep, renderer=threads_only)
    await runtime.start()
    return runtime


async def test_a_duplicate_webhook_update_changes_nothing(tmp_path, telegram, fake_sleep, clock):
    runtime = await webhook_runtime(tmp_path, telegram, fake_sleep, clock)
    try:
        resident = Resident(telegram, 5004)
        await resident.says("/start", "Bạn có đồng ý không?")
        update_id = await telegram.user_presses(5004, "consent:yes")
        await resident.expect("họ và tên")
        before = len(telegram.sent[5004])
        await telegram.redeliver(update_id)  # the webhook call returns only after handling
        assert telegram.webhook_responses[-1] == 200 and len(telegram.sent[5004]) == before
        async with runtime.services.database.session() as session:
            assert len((await session.exec(select(ChannelAccount))).all()) == 1  # not registered twice
    finally:
        await runtime.stop()


async def test_a_redelivery_after_a_restart_changes_nothing(tmp_path, telegram, fake_sleep, clock):
    first = Runtime(make_settings(tmp_path, telegram), clock=clock, sleep=fake_sleep, renderer=threads_only)
    await first.start()
    resident = Resident(telegram, 5011)
    await resident.says("/start", "Bạn có đồng ý không?")
    update_id = await telegram.user_presses(5011, "consent:yes")
    await resident.expect("họ và tên")
    await first.stop()
    before = len(telegram.sent[5011])
    await telegram.redeliver(update_id)  # Telegram had not seen it confirmed, so it comes again
    second = Runtime(make_settings(tmp_path, telegram), clock=clock, sleep=fake_sleep, renderer=threads_only)
    await second.start()
    try:
        await resident.says("Nguyễn Văn An", "thôn/xóm")  # handled after the redelivery, in order
        assert len(telegram.sent[5011]) == before + 1
        async with second.services.database.session() as session:
            keys = (await session.exec(select(ProcessedUpdate.delivery_key))).all()
            assert len((await session.exec(select(ChannelAccount))).all()) == 1
        press = next(u for u in telegram.delivered if u["update_id"] == update_id)
        assert keys.count(f"c:{press['callback_query']['id']}") == 1
    finally:
        await second.stop()


async def test_flood_control_waits_retry_after_and_retries(polling, telegram, sleeps):
    telegram.fail_next("sendMessage", 429, times=2, retry_after=7)
    resident = Resident(telegram, 5005)
    await resident.says("/trogiup", "Các lệnh")
    assert sleeps == [7.0, 7.0]


async def test_server_errors_back_off_then_succeed(polling, telegram, sleeps):
    telegram.fail_next("sendMessage", 502, times=1)
    telegram.fail_next("sendMessage", 500, times=1)
    resident = Resident(telegram, 5006)
    await resident.says("/trogiup", "Các lệnh")
    assert sleeps == [0.5, 1.0]


async def test_server_errors_give_up_after_the_bound(polling, telegram, sleeps):
    telegram.fail_next("sendMessage", 500, times=5)  # max_retries 4: five failures exhaust it
    resident = Resident(telegram, 5007)
    await telegram.user_sends(5007, "/trogiup")
    await telegram.wait_for(lambda: len(telegram.methods_called("sendMessage")) >= 5)
    await resident.says("/hoc", "Chọn bài để học")  # the bot goes on with the next update
    assert sleeps == [0.5, 1.0, 2.0, 4.0]
    assert not any("Các lệnh" in text for text in telegram.texts(5007))


async def test_a_send_that_timed_out_is_not_sent_twice(polling, telegram, sleeps):
    """Issue 8, defect 11: Telegram took the message but answered after the 2 s timeout."""
    telegram.slow_next("sendMessage", 2.5)
    resident = Resident(telegram, 5008)
    await resident.says("/trogiup", "Các lệnh")
    await resident.says("/hoc", "Chọn bài để học")  # the next answer comes after the late one
    assert sum("Các lệnh" in text for text in telegram.texts(5008)) == 1
    assert sleeps == []


async def test_an_edit_that_timed_out_is_repeated_and_not_modified_counts_as_done(polling, telegram, sleeps):
    """Issue 8, defect 11: the repeated edit gets "message is not modified", which is success."""
    resident = Resident(telegram, 5013)
    await resident.says("/hoc", "Chọn bài để học")
    await resident.presses_data(f"lesson:{LESSON.id}", "(1/")
    sends = len(telegram.methods_called("sendMessage"))
    telegram.slow_next("editMessageText", 2.5)
    await telegram.press(5013, "Tiếp")
    await telegram.wait_for(lambda: len(telegram.methods_called("editMessageText")) == 2)
    await resident.says("/trogiup", "Các lệnh")
    assert sleeps == [0.5]  # one repeat of the edit
    assert len(telegram.methods_called("sendMessage")) == sends + 1  # only the answer to /trogiup
    assert sum("(2/" in text for text in telegram.texts(5013)) == 1


async def test_a_blocked_chat_is_marked_and_not_written_to(polling, telegram):
    resident = Resident(telegram, 5009)
    await register(resident)
    telegram.block(5009)

    def attempts() -> int:
        return len([call for call in telegram.methods_called("sendMessage") if call["chat_id"] == 5009])

    before = attempts()
    await polling.telegram.sender.send_replies(5009, [Reply("Một"), Reply("Hai")])
    assert attempts() == before + 1  # the first refusal stops the rest
    database = polling.services.database
    async with database.session() as session:
        account = (await session.exec(select(ChannelAccount))).one()
    assert account.blocked
    assert not await polling.telegram.sender.deliver(5009, [Reply("Nhắc báo cáo")])
    await telegram.user_sends(5009, "/hoc")  # the bot's answer is refused; the bot goes on
    await telegram.wait_for(lambda: attempts() == before + 2)
    telegram.blocked.clear()
    await resident.says("/trogiup", "Các lệnh")  # writing again unblocks
    async with database.session() as session:
        assert not (await session.exec(select(ChannelAccount))).one().blocked


async def test_hocvuso_run_sends_what_waits_in_the_outbox_once_with_its_buttons(polling, telegram, clock):
    await register(Resident(telegram, 5010))
    await register(Resident(telegram, 5011))
    telegram.block(5011)
    database = polling.services.database
    async with database.session() as session:
        people = {account.external_id: account.person_id
                  for account in (await session.exec(select(ChannelAccount))).all()}
        reminder = to_payload([Reply("⏰ Còn 7 ngày đến hạn báo cáo.", ((Button("📑 Lấy báo cáo", "bc:commune"),),))])
        for chat in ("5010", "5011"):
            assert await outbox.enqueue_for_person(session, people[chat], key=f"reminder:test:{chat}",
                                                   kind="reminder", payload=reminder, now=clock())
        assert not await outbox.enqueue_for_person(session, people["5010"], key="reminder:test:5010",
                                                   kind="reminder", payload=reminder, now=clock())
    assert polling.outbox is not None
    polling.outbox.wake()

    def reminders(chat: int) -> list[dict]:
        return [call for call in telegram.methods_called("sendMessage")
                if call["chat_id"] == chat and "Còn 7 ngày" in call["text"]]

    await telegram.wait_for(lambda: len(reminders(5010)) == 1)
    await polling.outbox.drain()  # whatever the running sender has not started yet
    await polling.outbox.finish()  # and what it has in flight, recorded
    async with database.session() as session:
        counts = await outbox.status_counts(session)
        blocked = (await session.exec(select(ChannelAccount).where(ChannelAccount.external_id == "5011"))).one()
    assert counts["sent"] == 1 and counts["blocked"] == 1 and counts["queued"] == counts["sending"] == 0
    assert blocked.blocked and len(reminders(5010)) == 1 and len(reminders(5011)) <= 1
    markup = reminders(5010)[0]["reply_markup"]
    assert "bc:commune" in str(markup)


async def test_a_bot_started_after_a_reminder_time_sends_it_late_once(tmp_path, telegram, fake_sleep, clock):
    """hocvuso run: the scheduler's run at start catches up the reminder missed while it was stopped."""
    first = Runtime(make_settings(tmp_path, telegram), clock=clock, sleep=fake_sleep, renderer=threads_only)
    await first.start()
    await register(Resident(telegram, 5020))
    assert first.services is not None
    async with first.services.database.session() as session:
        person_id = (await session.exec(select(ChannelAccount))).one().person_id
        session.add(RoleGrant(person_id=person_id, role="staff", granted_at=clock()))
    await first.stop()
    clock.now = datetime(2026, 12, 3, 3, 0, tzinfo=UTC)  # 10:00 in Ninh Bình: the 7-day reminder was at 08:00

    def reminders() -> list[str]:
        return [text for text in telegram.texts(5020) if "Nhắc hạn báo cáo" in text]

    for _ in range(2):  # started twice: the reminder still comes once
        runtime = Runtime(make_settings(tmp_path, telegram), clock=clock, sleep=fake_sleep, renderer=threads_only)
        await runtime.start()
        try:
            assert runtime.scheduler is not None and runtime.outbox is not None
            await asyncio.wait_for(runtime.scheduler.finished("reminders").wait(), 10)  # its run at start
            await runtime.outbox.drain()
            await runtime.outbox.finish()
        finally:
            await runtime.stop()
    (text,) = reminders()
    assert "còn 7 ngày" in text and "đến muộn" in text and "08:00 ngày 03/12" in text


async def test_an_exception_in_a_handler_gets_an_apology_and_the_bot_goes_on(polling, telegram, monkeypatch):
    async def broken(turn):
        raise RuntimeError("boom")

    commands = polling.telegram.dispatcher.registry.commands
    monkeypatch.setitem(commands, "tiendo", Command("tiendo", "hỏng để thử", broken))
    resident = Resident(telegram, 5010)
    await resident.says("/tiendo", "Xin lỗi, mình vừa gặp trục trặc")
    await resident.says("/hoc", "Chọn bài để học")


async def test_webhook_checks_the_secret_and_serves_health(tmp_path, telegram, fake_sleep, clock):
    runtime = await webhook_runtime(tmp_path, telegram, fake_sleep, clock)
    port = runtime.settings.listen_port
    try:
        assert telegram.webhook == {"url": f"http://127.0.0.1:{port}/webhook/telegram", "secret_token": SECRET}
        update = {"update_id": 999, "message": {"message_id": 1, "date": 0, "text": "/start",
                  "chat": {"id": 6001, "type": "private"}, "from": {"id": 6001, "is_bot": False, "first_name": "A"}}}
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            assert (await client.get("/healthz")).json() == {"status": "ok", "database": "ok"}
            for headers in ({}, {"X-Telegram-Bot-Api-Secret-Token": "sai"}):
                assert (await client.post("/webhook/telegram", json=update, headers=headers)).status_code == 403
            assert telegram.sent[6001] == []  # nothing was processed
            good = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
            assert (await client.post("/webhook/telegram", content=b"{", headers=good)).status_code == 400
            assert (await client.post("/webhook/telegram", json=update, headers=good)).status_code == 200
        await Resident(telegram, 6001).expect("Bạn có đồng ý không?")
    finally:
        await runtime.stop()


async def test_stopping_finishes_the_update_in_hand(tmp_path, telegram, fake_sleep, clock):
    runtime = Runtime(make_settings(tmp_path, telegram), clock=clock, sleep=fake_sleep, renderer=threads_only)
    await runtime.start()
    telegram.slow_next("sendMessage", 0.5)
    await telegram.user_sends(7001, "/trogiup")
    await telegram.wait_for(lambda: bool(telegram.methods_called("sendMessage")))
    await runtime.stop()
    assert any("Các lệnh" in text for text in telegram.texts(7001))
    database = Database(runtime.settings.database_url)
    async with database.session() as session:
        assert (await session.exec(select(ProcessedUpdate))).all() != []  # its transaction was committed
    await database.dispose()


async def test_hocvuso_run_polls_and_stops_cleanly_on_sigterm(tmp_path, telegram):
    """The real command in its own process: it answers, then SIGTERM ends it with exit code 0."""
    import asyncio
    import os
    import signal
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("HOCVUSO_")}
    env.update(HOCVUSO_TELEGRAM_TOKEN=TOKEN, HOCVUSO_TELEGRAM_API_URL=telegram.api_url,
               HOCVUSO_TELEGRAM_POLL_TIMEOUT="1", HOCVUSO_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'run.db'}")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "run", cwd=tmp_path, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        await telegram.wait_for(lambda: bool(telegram.methods_called("getUpdates")), timeout=60)
        resident = Resident(telegram, 8001)
        await resident.says("/start", "Bạn có đồng ý không?")
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), 30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, stderr.decode()
    assert TOKEN not in stderr.decode()  # the token never reaches the logs


def test_hocvuso_run_without_a_token_says_what_to_set(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from bot.cli import app

    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["run"])
    assert result.exit_code == 2
    assert "HOCVUSO_TELEGRAM_TOKEN" in result.output


async def test_cards_and_ticks_edit_their_message_but_the_household_code_stays(polling, telegram):
    resident = Resident(telegram, 5012)
    await register(resident)
    code_message = next(s for s in telegram.sent[5012] if "Mã hộ của nhà bạn là" in s.text)
    edited_ids = {int(call["message_id"]) for call in telegram.methods_called("editMessageText")}
    assert edited_ids and code_message.message_id not in edited_ids  # the org ticks were edits
    assert code_message.buttons == []  # its own message, not folded into the organisations question
    await resident.presses("Học bài đầu tiên", "(1/")
    before = len(telegram.methods_called("editMessageText"))
    await resident.presses("Tiếp", "(2/")
    assert len(telegram.methods_called("editMessageText")) == before + 1


async def test_documents_and_photos_are_sent_with_their_names_and_captions(polling, telegram):
    from handlers.core import Attachment, Keyboard

    buttons = Keyboard().add("🏠 Về menu", "menu").build()
    report = Reply("📊 Báo cáo tháng 11", buttons, Attachment("bao-cao.xlsx", b"PK\x03\x04 du lieu", "document"))
    chart = Reply("Biểu đồ theo thôn", attachment=Attachment("bieu-do.png", b"\x89PNG du lieu", "photo"))
    long_caption = Reply("Ghi chú " * 200, attachment=Attachment("dai.pdf", b"%PDF", "document"))
    await polling.telegram.sender.send_replies(9001, [report, chart, long_caption])
    sent = telegram.sent[9001]
    assert [(s.method, s.file_name) for s in sent] == [
        ("sendDocument", "bao-cao.xlsx"), ("sendPhoto", "bieu-do.png"),
        ("sendMessage", None), ("sendDocument", "dai.pdf"),  # a caption over 1024 characters goes first as text
    ]
    assert sent[0].text == "📊 Báo cáo tháng 11" and sent[0].button_labels == ["🏠 Về menu"]
    uploaded = telegram.methods_called("sendDocument")[0]["document"]
    assert uploaded == {"filename": "bao-cao.xlsx", "size": len(b"PK\x03\x04 du lieu")}


async def test_a_leader_opens_the_invitation_link_and_gets_figures_chart_and_list(running, telegram):
    """The deep link, consent, the role; /thongke as a photo with its caption; the member list as XLSX."""
    from datetime import timedelta

    from storage import access
    from storage.models import Organisation

    services = running.services
    async with services.database.session() as session:
        farmers = (await session.exec(select(Organisation.id).where(Organisation.name == "Hội Nông dân xã"))).one()
        code = await access.create_invite(session, role="leader", organisation_id=farmers, now=services.clock(),
                                          expires_in=timedelta(days=1), rng=services.random)
    await register(Resident(telegram, 5101))  # a member of Hội Nông dân
    leader = Resident(telegram, 5102)
    await leader.says(f"/start {code}", "cần đồng ý lưu dữ liệu trước")
    await leader.presses("Đồng ý", "Bạn đã nhận vai trò Lãnh đạo tổ chức: Hội Nông dân xã")
    await leader.says("/thongke", "📊 Hội Nông dân xã")
    photo = telegram.sent[5102][-1]
    assert photo.method == "sendPhoto" and photo.file_name.endswith(".png")
    assert "Thành viên: 1 (0 đã xác nhận, 1 tự khai chờ xác nhận)" in photo.text
    await leader.presses("Danh sách", "Danh sách Hội Nông dân xã")
    document = telegram.sent[5102][-1]
    assert document.method == "sendDocument" and document.file_name.endswith(".xlsx")
