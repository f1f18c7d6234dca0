"""Telegram under hostile input and failing parts (issue 8): floods, unreadable updates, reused update
ids, a database that refuses the inbox, and the promise never to confirm an update before storing it."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

import pytest
from sqlmodel import select

from bot.runtime import Runtime
from storage import inbox
from storage.models import InboxUpdate
from tests.fakes.server import free_port
from tests.fakes.telegram import FakeTelegram
from tests.fakes.telegram import FakeUser as Resident
from tests.support import threads_only
from tests.test_telegram import SECRET, make_settings


@pytest.fixture
async def telegram():
    async with FakeTelegram() as fake:
        yield fake


@pytest.fixture
def no_wait():
    async def _sleep(_seconds: float) -> None:
        return None
    return _sleep


async def started(tmp_path, telegram, clock, no_wait, mode: str = "polling", **extra: object) -> Runtime:
    if mode == "webhook":
        port = free_port()
        extra.update(webhook_url=f"http://127.0.0.1:{port}", webhook_secret=SECRET, listen_port=port)
    runtime = Runtime(make_settings(tmp_path, telegram, **extra), clock=clock, sleep=no_wait, renderer=threads_only)
    await runtime.start()
    return runtime


@pytest.mark.parametrize("mode", ["polling", "webhook"])
async def test_one_person_flooding_does_not_hold_up_another(tmp_path, telegram, clock, no_wait, mode):
    """Defect 2: sixty messages from one chat made another person wait 28 s for /trogiup."""
    runtime = await started(tmp_path, telegram, clock, no_wait, mode, telegram_concurrency=2)
    try:
        telegram.send_delay = 0.02  # each answer takes a little while, as on a real network
        for number in range(30):
            await telegram.user_sends(1001, f"/lenh{number}")
        await Resident(telegram, 1002).says("/trogiup", "Các lệnh")
        flood_answered = sum("/lenh" in text for text in telegram.texts(1001))
        assert flood_answered < 10, f"{flood_answered} of the flood's answers went before"
        await telegram.wait_for(lambda: sum("/lenh" in t for t in telegram.texts(1001)) == 30, timeout=30)
        flood_order = [int(t.split("/lenh")[1].split(".")[0]) for t in telegram.texts(1001)]
        assert flood_order == list(range(30))  # and the flood itself in order
    finally:
        await runtime.stop()


@pytest.mark.parametrize("mode", ["polling", "webhook"])
async def test_an_unreadable_update_is_skipped_logged_once_and_the_rest_answered(
    tmp_path, telegram, clock, no_wait, mode, caplog
):
    """Defect 17: one update PTB cannot read stopped all polling and filled the log."""
    caplog.set_level(logging.INFO)
    runtime = await started(tmp_path, telegram, clock, no_wait, mode)
    try:
        secret_text = "Nguyễn Văn Bí mật 0912345678"
        bad = await telegram.inject_raw({"message": {"message_id": 5, "text": secret_text,
                                                     "chat": {"id": 1003, "type": "private"}}})  # no date
        wrong_type = await telegram.inject_raw({"message": {"message_id": 6, "date": 0, "text": ["a"],
                                                            "chat": {"id": 1003, "type": "private"}}})
        await Resident(telegram, 1003).says("/trogiup", "Các lệnh")
        await telegram.wait_for(lambda: {bad, wrong_type} <= telegram.confirmed)
    finally:
        await runtime.stop()
    skipped = [r for r in caplog.records if "could not be read" in r.getMessage()]
    assert sorted(r.getMessage() for r in skipped) == sorted(
        f"telegram update {n} skipped: it could not be read" for n in (bad, wrong_type))
    assert all(secret_text not in r.getMessage() for r in caplog.records)


async def test_an_update_id_telegram_hands_out_again_is_still_answered(tmp_path, telegram, clock, no_wait):
    """Defect 16: dedupe was keyed on the update id, which Telegram may start afresh after a week."""
    runtime = await started(tmp_path, telegram, clock, no_wait)
    try:
        resident = Resident(telegram, 1004)
        await resident.says("/trogiup", "Các lệnh")
        first_id = telegram.delivered[-1]["update_id"]
        message = telegram._user_message(1004, "An", text="/hoc")
        message["entities"] = [{"type": "bot_command", "offset": 0, "length": 4}]
        await telegram._deliver({"update_id": first_id, "message": message})  # the same id, a new message
        await resident.expect("Chọn bài để học")
    finally:
        await runtime.stop()


async def test_updates_are_not_confirmed_until_the_inbox_holds_them(tmp_path, telegram, clock, no_wait,
                                                                    monkeypatch, caplog):
    """Defect 3 and a database outage: an update the inbox could not store is fetched again, not lost."""
    real_store = inbox.store
    failures = {"left": 2}

    async def failing_store(*args, **kwargs):
        if failures["left"]:
            failures["left"] -= 1
            raise ConnectionError("database is down")
        return await real_store(*args, **kwargs)

    monkeypatch.setattr(inbox, "store", failing_store)
    runtime = await started(tmp_path, telegram, clock, no_wait)
    try:
        update_id = await telegram.user_sends(1005, "/trogiup")
        await telegram.wait_for(lambda: failures["left"] == 0)
        assert update_id not in telegram.confirmed  # not polled past while it could not be stored
        await Resident(telegram, 1005).expect("Các lệnh")
        await telegram.wait_for(lambda: update_id in telegram.confirmed)
        assert sum("Các lệnh" in t for t in telegram.texts(1005)) == 1
    finally:
        await runtime.stop()


async def test_a_webhook_update_the_inbox_cannot_store_gets_no_200(tmp_path, telegram, clock, no_wait,
                                                                  monkeypatch):
    async def failing_store(*args, **kwargs):
        raise ConnectionError("database is down")

    runtime = await started(tmp_path, telegram, clock, no_wait, "webhook")
    try:
        monkeypatch.setattr(inbox, "store", failing_store)
        update_id = await telegram.user_sends(1006, "/trogiup")
        assert telegram.webhook_responses[-1] == 503 and update_id not in telegram.confirmed
        monkeypatch.undo()
        await telegram.redeliver_unconfirmed()  # Telegram tries again later
        await Resident(telegram, 1006).expect("Các lệnh")
        assert update_id in telegram.confirmed
    finally:
        await runtime.stop()


async def test_an_update_stored_before_a_crash_is_answered_at_the_next_start(tmp_path, telegram, clock, no_wait):
    """What a kill -9 after storing leaves: the row is answered at start, and the answer not repeated."""
    first = await started(tmp_path, telegram, clock, no_wait)
    await first.stop()
    message = telegram._user_message(1007, "An", text="/trogiup")
    message["entities"] = [{"type": "bot_command", "offset": 0, "length": 8}]
    async with first.services.database.session() as session:  # stored, then the process died
        await inbox.store(await session.connection(), "telegram", [inbox.Received("m:1007:1", "1007",
                                                               {"update_id": 50, "message": message})], clock())
    second = await started(tmp_path, telegram, clock, no_wait)
    try:
        await Resident(telegram, 1007).expect("Các lệnh")
        await second.telegram.queues.join()
        async with second.services.database.session() as session:
            row = (await session.exec(select(InboxUpdate))).one()
        assert row.done_at is not None and row.sent == 1
    finally:
        await second.stop()


async def test_the_webhook_refuses_a_huge_body_without_reading_it_all(tmp_path, telegram, clock, no_wait):
    import httpx

    runtime = await started(tmp_path, telegram, clock, no_wait, "webhook")
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    try:
        async def endless():
            for _ in range(2000):
                yield b"x" * 1024  # 2 MB, streamed with no length given

        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{runtime.settings.listen_port}") as client:
            streamed = await client.post("/webhook/telegram", content=endless(), headers=headers)
            declared = await client.post("/webhook/telegram", content=b"{" * 1_000_001, headers=headers)
        assert streamed.status_code == 413
        assert declared.status_code == 413
    finally:
        await runtime.stop()


async def test_telegram_on_a_failing_database_writes_nothing_personal_to_stderr(
    tmp_path, telegram, clock, no_wait, capfd, restore_logging
):
    """The log test of issue 8, through Telegram: a conversation, then the database fails underneath
    (renaming a person fails, the household table is gone, then the inbox itself cannot be written)."""
    from bot.logs import configure_from_settings, release_startup_logs
    from storage.models import Household
    from tests.fakes.telegram import TOKEN
    from tests.test_logs import FREE_TEXT, NAME_A, NAME_B, fail_underneath
    from tests.test_telegram import register as register_on_telegram

    runtime = Runtime(make_settings(tmp_path, telegram), clock=clock, sleep=no_wait, renderer=threads_only)
    configure_from_settings(runtime.settings, logging.INFO)  # exactly as `hocvuso run` does
    await runtime.start()
    release_startup_logs()
    try:
        first, second = Resident(telegram, 2001), Resident(telegram, 2002)
        await register_on_telegram(first)
        async with runtime.services.database.session() as session:
            code = (await session.exec(select(Household))).one().code
        await second.says("/start", "Bạn có đồng ý không?")
        await second.presses("Đồng ý", "họ và tên")
        await fail_underneath(runtime.services.database)
        await second.says(NAME_B, "Xin lỗi")
        await second.says("/caidat", "Thông tin của bạn")
        await second.presses("Hộ gia đình", "Hộ gia đình")
        await second.presses("Nhập mã hộ", "mã hộ")
        await second.says(code, "Xin lỗi")
        await second.says(FREE_TEXT, "")  # typed at the code step: answered, whatever it is
        async with runtime.services.database.session() as session:  # now the inbox goes too
            await (await session.connection()).exec_driver_sql("ALTER TABLE inboxupdate RENAME TO inbox_mat")
        polls = len(telegram.methods_called("getUpdates"))
        await telegram.user_sends(2001, f"{NAME_A} {FREE_TEXT}")
        await telegram.wait_for(lambda: len(telegram.methods_called("getUpdates")) > polls + 2)
    finally:
        await runtime.stop()
    stderr = capfd.readouterr().err
    assert "handler failed" in stderr and "telegram polling failed" in stderr, stderr
    for private in (TOKEN, NAME_A, NAME_B, code, FREE_TEXT, "Thưởng", "Văn An"):
        assert private not in stderr, private


async def test_an_update_the_database_refuses_is_skipped_and_the_batch_goes_on(
    tmp_path, telegram, clock, no_wait, monkeypatch, caplog
):
    """Found by the property tests: a key PostgreSQL refuses stalled polling for everyone."""
    from sqlalchemy.exc import DataError

    real_store = inbox.store

    async def refusing_store(session, channel, received, now):
        if any(item.delivery_key.endswith(":666") for item in received):
            raise DataError("INSERT …", {}, Exception("refused"))
        return await real_store(session, channel, received, now)

    monkeypatch.setattr(inbox, "store", refusing_store)
    runtime = await started(tmp_path, telegram, clock, no_wait)
    try:
        poison = telegram._user_message(1008, "An", text="độc")
        poison["message_id"] = 666
        poison_id = await telegram.inject_raw({"message": poison})
        await Resident(telegram, 1008).says("/trogiup", "Các lệnh")
        await telegram.wait_for(lambda: poison_id in telegram.confirmed)
    finally:
        await runtime.stop()
    assert f"telegram update {poison_id} skipped: the database refused it" in caplog.text
    assert not any("độc" in text for text in telegram.texts(1008))


async def test_a_chat_waiting_out_flood_control_does_not_hold_its_slot(tmp_path, telegram, clock):
    """With every slot taken by chats sleeping on 429 retry_after, nobody else would be answered."""
    released = asyncio.Event()
    waits: list[float] = []

    async def sleep_until_released(seconds: float) -> None:
        waits.append(seconds)
        await released.wait()

    runtime = Runtime(make_settings(tmp_path, telegram, telegram_concurrency=1), clock=clock,
                      sleep=sleep_until_released, renderer=threads_only)
    await runtime.start()
    try:
        telegram.fail_next("sendMessage", 429, retry_after=30)
        await telegram.user_sends(1009, "/trogiup")
        await telegram.wait_for(lambda: waits == [30.0])
        await Resident(telegram, 1010).says("/hoc", "Chọn bài để học")  # ran in the lent slot
        released.set()
        await Resident(telegram, 1009).expect("Các lệnh")
    finally:
        released.set()
        await runtime.stop()


async def test_a_retry_after_of_hours_gives_up_the_answer_instead_of_silencing_the_chat(
    tmp_path, telegram, clock, no_wait
):
    """Found in review: retry_after=86400 was waited out, holding the chat and the stop for a day."""
    waits: list[float] = []

    async def record(seconds: float) -> None:
        waits.append(seconds)

    runtime = Runtime(make_settings(tmp_path, telegram), clock=clock, sleep=record, renderer=threads_only)
    await runtime.start()
    try:
        telegram.fail_next("sendMessage", 429, retry_after=86400)
        await telegram.user_sends(1011, "/trogiup")
        await Resident(telegram, 1011).says("/hoc", "Chọn bài để học")
        assert waits == []
        assert not any("Các lệnh" in text for text in telegram.texts(1011))
    finally:
        await runtime.stop()


async def test_the_webhook_answers_400_to_json_nested_too_deep(tmp_path, telegram, clock, no_wait):
    """Found in review: a RecursionError in the JSON parser gave 500 and a long traceback."""
    import httpx

    runtime = await started(tmp_path, telegram, clock, no_wait, "webhook")
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{runtime.settings.listen_port}") as client:
            answer = await client.post("/webhook/telegram", content=b"[" * 100_000 + b"]" * 100_000,
                                       headers={"X-Telegram-Bot-Api-Secret-Token": SECRET})
        assert answer.status_code == 400
    finally:
        await runtime.stop()


async def test_waiting_on_telegram_renews_the_rows_lease(tmp_path, telegram, clock, no_wait):
    """Several workers on PostgreSQL: a row whose answer waits out 429s must not look abandoned."""
    renewed: list[datetime] = []

    async def advancing_sleep(seconds: float) -> None:
        clock.advance(seconds=seconds)

    runtime = Runtime(make_settings(tmp_path, telegram), clock=clock, sleep=advancing_sleep, renderer=threads_only)
    await runtime.start()
    try:
        telegram.fail_next("sendMessage", 429, times=4, retry_after=30)
        await Resident(telegram, 1012).says("/trogiup", "Các lệnh")
        await runtime.telegram.queues.join()
        async with runtime.services.database.session() as session:
            row = (await session.exec(select(InboxUpdate).where(InboxUpdate.chat_id == "1012"))).one()
        renewed.append(row.lease_until)
    finally:
        await runtime.stop()
    assert renewed[0] >= clock() + inbox.LEASE - timedelta(seconds=1)  # renewed after the last wait
