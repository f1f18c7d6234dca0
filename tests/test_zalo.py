"""Zalo end to end: `hocvuso run`'s runtime against a fake Zalo Bot API server, polling and webhook."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import httpx
import pytest
from sqlmodel import select

from bot.runtime import Runtime
from bot.settings import Settings
from content.loader import load_catalog
from handlers.core import Button, Reply, to_payload
from storage import outbox
from storage.db import Database
from storage.models import ChannelAccount, InboxUpdate, LessonProgress, RoleGrant
from tests.fakes.server import free_port
from tests.fakes.zalo import TOKEN, FakeZalo, ZaloResident
from tests.support import threads_only

SECRET = "zalo-bi-mat_123"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
CATALOG = load_catalog()
LESSON = CATALOG.ordered_lessons()[0]


def make_settings(tmp_path: Path, zalo: FakeZalo, **extra: object) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'zalo.db'}",
        zalo_token=TOKEN, zalo_api_url=zalo.api_url, zalo_poll_timeout=1, zalo_timeout=2, **extra,
    )


def webhook_settings(tmp_path: Path, zalo: FakeZalo, **extra: object) -> Settings:
    port = free_port()
    return make_settings(tmp_path, zalo, webhook_url=f"http://127.0.0.1:{port}", zalo_webhook_secret=SECRET,
                         listen_port=port, **extra)


@pytest.fixture
async def zalo():
    async with FakeZalo() as fake:
        yield fake


@pytest.fixture(params=["polling", "webhook"])
async def running(request, tmp_path, zalo, fake_sleep, clock):
    settings = (webhook_settings(tmp_path, zalo) if request.param == "webhook"
                else make_settings(tmp_path, zalo))
    runtime = Runtime(settings, clock=clock, sleep=fake_sleep, renderer=threads_only)
    await runtime.start()
    yield runtime
    await runtime.stop()


async def register(resident: ZaloResident) -> None:
    await resident.says("/start", "Bạn có đồng ý không?")
    await resident.chooses("Đồng ý", "họ và tên")
    await resident.says("Nguyễn Văn An", "thôn/xóm")
    await resident.chooses("Thôn 2", "nhóm nào")
    await resident.chooses("Người dân", "Hộ gia đình")
    await resident.chooses("Tạo mã hộ mới", "tổ chức nào")
    await resident.chooses("Hội Nông dân", "tổ chức nào")
    await resident.chooses("Xong", "VNeID")
    await resident.chooses("Chưa kích hoạt", "Đăng ký xong")


async def test_a_resident_registers_and_takes_a_lesson_and_its_quiz_by_numbers_and_words(running, zalo):
    resident = ZaloResident(zalo, "a1")
    await register(resident)
    # Words as well as numbers: "hoc" without marks is /hoc, "tiep" is the "Tiếp ▶️" choice.
    await resident.says("hoc", "Chọn bài để học")
    await resident.chooses(LESSON.title, f"(1/{len(LESSON.cards)})")
    for number in range(2, len(LESSON.cards) + 1):
        await resident.says("tiep" if number % 2 else "Tiếp", f"({number}/{len(LESSON.cards)})")
    await resident.says("làm bài kiểm tra", f"Câu 1/{len(LESSON.quiz)}")
    for number, question in enumerate(LESSON.quiz, start=1):
        expect = "Bạn đã hoàn thành bài" if number == len(LESSON.quiz) else f"Câu {number + 1}/"
        await resident.chooses(question.options[question.correct_index].text, expect)
    progress = await resident.says("tien do", "Tiến độ của bạn")
    assert f"đã xong 1/{len(CATALOG.core_course.lessons)} bài" in progress.text
    # No message passed Zalo's limit, and every list of choices says what to type.
    assert all(1 <= len(text) <= 2000 for text in zalo.texts("a1"))
    assert not any(line.startswith("1. Tiếp") for text in zalo.texts("a1") for line in text.splitlines())


@pytest.mark.parametrize("envelope", ["wrapped", "list", "bare"])
@pytest.mark.parametrize("mode", ["polling", "webhook"])
async def test_every_shape_of_update_is_read(tmp_path, fake_sleep, clock, envelope, mode):
    async with FakeZalo(envelope=envelope) as zalo:
        settings = webhook_settings(tmp_path, zalo) if mode == "webhook" else make_settings(tmp_path, zalo)
        runtime = Runtime(settings, clock=clock, sleep=fake_sleep, renderer=threads_only)
        await runtime.start()
        try:
            resident = ZaloResident(zalo, "s1")
            await resident.says("/start", "Bạn có đồng ý không?")
            await resident.says("dong y", "họ và tên")
        finally:
            await runtime.stop()


async def test_the_first_message_says_it_is_an_automated_assistant(running, zalo):
    resident = ZaloResident(zalo, "a2")
    greeting = await resident.says("xin chào", "Xin chào")
    assert "trả lời tự động" in greeting.text


@pytest.mark.parametrize(("event", "answer"), [
    ("user_sends_image", "chưa xem được ảnh"),
    ("user_sends_sticker", "nhãn dán"),
    ("user_sends_voice", "tin nhắn thoại"),
    ("user_unsupported", "chỉ cần gõ một con số"),
])
async def test_media_and_hidden_content_get_a_kind_answer_and_the_step_again(running, zalo, event, answer):
    resident = ZaloResident(zalo, "a3")
    await resident.says("/hoc", "Chọn bài để học")
    await resident.chooses(LESSON.title, "(1/")
    await getattr(zalo, event)("a3")
    shown = await resident.expect(answer)
    assert "(1/" in shown.text and "Gõ 1 →" in shown.text  # back where they were, with the choices
    await resident.chooses("Tiếp", "(2/")


async def test_a_new_chat_opening_with_a_sticker_is_greeted(running, zalo):
    resident = ZaloResident(zalo, "a4")
    await zalo.user_sends_sticker("a4")
    shown = await resident.expect("nhãn dán")
    assert "Xin chào" in shown.text


async def test_a_redelivered_message_is_answered_once(tmp_path, zalo, fake_sleep, clock):
    runtime = Runtime(webhook_settings(tmp_path, zalo), clock=clock, sleep=fake_sleep, renderer=threads_only)
    await runtime.start()
    try:
        resident = ZaloResident(zalo, "a5")
        update = await zalo.user_sends("a5", "/trogiup")
        await resident.expect("Cách dùng")
        assert await zalo.post_webhook(update) == 200  # Zalo sends it again: confirmed, not answered again
        await resident.says("/tiendo", "Tiến độ")
        assert sum("Cách dùng" in text for text in zalo.texts("a5")) == 1
    finally:
        await runtime.stop()


async def test_the_webhook_refuses_a_wrong_or_missing_secret_and_processes_nothing(tmp_path, zalo, fake_sleep,
                                                                                    clock):
    settings = webhook_settings(tmp_path, zalo)
    runtime = Runtime(settings, clock=clock, sleep=fake_sleep, renderer=threads_only)
    await runtime.start()
    try:
        assert zalo.webhook is not None and zalo.webhook["secret_token"] == SECRET
        assert zalo.webhook["url"] == f"{settings.webhook_url}/webhook/zalo"
        forged = zalo.event("a6", "message.text.received", text="/start")
        assert await zalo.post_webhook(forged, secret="sai-bi-mat-123") == 403
        assert await zalo.post_webhook(forged, secret="") == 403
        assert await zalo.post_webhook(forged, secret=SECRET[:-1]) == 403
        async with httpx.AsyncClient() as client:  # not JSON, with the right secret: refused, nothing stored
            bad = await client.post(zalo.webhook["url"], content=b"{", headers={"X-Bot-Api-Secret-Token": SECRET})
        assert bad.status_code == 400
        database = Database(settings.database_url)
        async with database.session() as session:
            assert (await session.exec(select(InboxUpdate))).all() == []
        await database.dispose()
        assert zalo.sent["a6"] == []
    finally:
        await runtime.stop()


async def test_polling_takes_408_as_nothing_new_and_429_as_a_pause(tmp_path, zalo, fake_sleep, sleeps, clock):
    zalo.fail_next("getUpdates", 429)
    runtime = Runtime(make_settings(tmp_path, zalo), clock=clock, sleep=fake_sleep, renderer=threads_only)
    await runtime.start()
    try:
        await zalo.wait_for(lambda: zalo.idle_polls >= 2)
        resident = ZaloResident(zalo, "a7")
        await resident.says("menu", "Xin chào")
        assert 5.0 in sleeps  # the quota pause, not a tight loop
    finally:
        await runtime.stop()


async def test_a_reminder_goes_through_the_outbox_and_its_number_works(running, zalo, clock):
    resident = ZaloResident(zalo, "a8")
    await register(resident)
    services = running.services
    assert services is not None
    async with services.database.session() as session:
        account = (await session.exec(select(ChannelAccount).where(ChannelAccount.external_id == "a8"))).one()
        reminder = Reply("🗓️ Nhắc hạn: còn 3 ngày.", ((Button("📈 Tiến độ của tôi", "tiendo"),),))
        assert await outbox.enqueue_for_person(session, account.person_id, key=f"test:{account.person_id}",
                                               kind="reminder", payload=to_payload([reminder]), now=clock())
    assert running.outbox is not None
    running.outbox.wake()
    shown = await resident.expect("Nhắc hạn")
    assert "Gõ 1 → 📈 Tiến độ của tôi" in shown.text
    await resident.says("1", "Tiến độ của bạn")


async def test_a_blocked_person_is_marked_and_not_sent_to_again(running, zalo):
    resident = ZaloResident(zalo, "a9")
    await resident.says("/start", "Bạn có đồng ý không?")
    await resident.chooses("Đồng ý", "họ và tên")
    zalo.block("a9")
    await zalo.user_sends("a9", "Trần Thị Bình")
    services = running.services
    assert services is not None

    async def blocked() -> bool:
        async with services.database.session() as session:
            account = (await session.exec(select(ChannelAccount).where(ChannelAccount.external_id == "a9"))).first()
            return account is not None and account.blocked

    for _ in range(200):
        if await blocked():
            break
        await asyncio.sleep(0.02)
    assert await blocked()


async def test_both_channels_run_in_one_process(tmp_path, zalo, fake_sleep, clock):
    from tests.fakes.telegram import TOKEN as TELEGRAM_TOKEN
    from tests.fakes.telegram import FakeTelegram, FakeUser

    async with FakeTelegram() as telegram:
        settings = make_settings(tmp_path, zalo, telegram_token=TELEGRAM_TOKEN, telegram_api_url=telegram.api_url,
                                 telegram_poll_timeout=1, telegram_timeout=2)
        runtime = Runtime(settings, clock=clock, sleep=fake_sleep, renderer=threads_only)
        await runtime.start()
        try:
            assert runtime.telegram is not None and runtime.zalo is not None
            await ZaloResident(zalo, "b1").says("/hoc", "Chọn bài để học")
            on_telegram = FakeUser(telegram, 6001)
            await on_telegram.says("/start", "Bạn có đồng ý không?")
            await on_telegram.presses("Đồng ý", "họ và tên")
            await on_telegram.says("Nguyễn Văn An", "thôn/xóm")
            shown = await on_telegram.says("/lienket", "Mã liên kết")
            code = re.search(r"/lienket (\d{6})", shown.text).group(1)  # type: ignore[union-attr]
            # The same person on Zalo: a new chat whose first message is the code.
            on_zalo = ZaloResident(zalo, "b2")
            asked = await on_zalo.says(f"/lienket {code}", "dùng chung tiến độ")
            assert "Nguyễn" not in asked.text
            await on_zalo.chooses("Đồng ý", "Đã liên kết với tài khoản Telegram")
            await on_zalo.says("/caidat", "Nguyễn Văn An")  # the registration made on Telegram
            services = runtime.services
            assert services is not None
            async with services.database.session() as session:
                accounts = (await session.exec(select(ChannelAccount).order_by(ChannelAccount.id))).all()
            assert [(a.channel, a.external_id) for a in accounts] == [("telegram", "6001"), ("zalo", "b2")]
            assert accounts[0].person_id == accounts[1].person_id
        finally:
            await runtime.stop()


async def test_a_finished_lesson_is_stored_for_the_zalo_account(running, zalo):
    resident = ZaloResident(zalo, "a10")
    await register(resident)
    await resident.says("1", "(1/")  # "Học bài đầu tiên" is the first choice after registering
    services = running.services
    assert services is not None
    async with services.database.session() as session:
        rows = (await session.exec(select(LessonProgress))).all()
    assert [row.lesson_id for row in rows] == [LESSON.id]


async def grant_staff(runtime: Runtime, chat_id: str, clock) -> None:
    services = runtime.services
    assert services is not None
    async with services.database.session() as session:
        account = (await session.exec(select(ChannelAccount).where(ChannelAccount.external_id == chat_id))).one()
        session.add(RoleGrant(person_id=account.person_id, role="staff", granted_at=clock()))


async def test_staff_get_figures_and_the_report_as_links_that_expire(tmp_path, zalo, fake_sleep, clock):
    port = free_port()
    public = f"http://127.0.0.1:{port}"
    settings = make_settings(tmp_path, zalo, public_url=public, listen_port=port,
                             downloads_dir=tmp_path / "downloads")
    runtime = Runtime(settings, clock=clock, sleep=fake_sleep, renderer=threads_only)
    await runtime.start()  # polling, and the web server for the links
    try:
        staff = ZaloResident(zalo, "c1")
        await register(staff)
        await grant_staff(runtime, "c1", clock)
        await staff.says("/thongke", "số liệu của đơn vị nào")
        figures = await staff.chooses("Toàn xã", "Người đăng ký")
        assert "Toàn xã" in figures.text and "/tai/" in figures.text  # the chart, as a link too
        await staff.says("/baocao", "Báo cáo năm 2026")
        await staff.expect(".docx")
        links = [line for s in zalo.sent["c1"] for line in s.text.splitlines() if line.startswith(f"{public}/tai/")]
        photos = [s.photo for s in zalo.sent["c1"] if s.method == "sendPhoto"]
        assert photos and all(photo.startswith(f"{public}/tai/") for photo in photos)
        async with httpx.AsyncClient() as client:
            files = {}
            for link in links:
                answer = await client.get(link)
                assert answer.status_code == 200 and answer.headers["cache-control"] == "no-store"
                files[answer.headers["content-type"].split(";")[0]] = answer.content
            assert files[XLSX].startswith(b"PK") and files[DOCX].startswith(b"PK")
            altered = links[0][:-1] + ("A" if links[0][-1] != "A" else "B")
            assert (await client.get(altered)).status_code == 404
            clock.advance(hours=settings.link_hours, minutes=1)
            assert (await client.get(links[0])).status_code == 404  # expired
    finally:
        await runtime.stop()


async def test_without_a_public_address_the_person_is_told_where_to_get_the_file(running, zalo, clock):
    staff = ZaloResident(zalo, "c2")
    await register(staff)
    await grant_staff(running, "c2", clock)
    shown = await staff.says("/baocao", "Zalo không gửi được tệp")
    assert "Telegram" in shown.text
    assert zalo.methods_called("sendPhoto") == []


async def test_a_wrong_token_stops_the_start_with_one_line_naming_it(tmp_path, fake_sleep, clock):
    from bot.startup import describe

    async with FakeZalo(token="123:another-token") as zalo:
        settings = make_settings(tmp_path, zalo)
        runtime = Runtime(settings, clock=clock, sleep=fake_sleep, renderer=threads_only)
        with pytest.raises(Exception) as raised:
            await runtime.start()
    line = describe(raised.value, settings)
    assert "HOCVUSO_ZALO_TOKEN" in line and "\n" not in line and TOKEN not in line


async def test_updates_fetched_before_a_stop_are_stored_and_answered_after_the_restart(tmp_path, zalo, fake_sleep,
                                                                                      clock):
    from bot.channels.zalo_client import ZaloUpdate

    settings = make_settings(tmp_path, zalo)
    first = Runtime(settings, clock=clock, sleep=fake_sleep, renderer=threads_only)
    await first.start()
    assert first.zalo is not None
    fetched = ZaloUpdate.from_dict(zalo.event("d1", "message.text.received", text="/hoc"))
    assert fetched is not None
    await first.zalo.queues.stop()  # nothing is handled any more, as in the middle of a stop
    first.zalo._arrived.put_nowait(first.zalo._read([fetched]))  # what the poller fetched just before
    await first.stop()
    assert zalo.sent["d1"] == []
    second = Runtime(settings, clock=clock, sleep=fake_sleep, renderer=threads_only)
    await second.start()
    try:
        await ZaloResident(zalo, "d1").expect("Chọn bài để học")
    finally:
        await second.stop()
