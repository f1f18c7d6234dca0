"""The Zalo Bot API client and its outbox transport, against the fake Zalo server over real HTTP."""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bot.channels.zalo_client import (
    ZaloClient,
    ZaloError,
    ZaloNetworkError,
    ZaloOutbox,
    ZaloQuotaExceeded,
    ZaloServerError,
    ZaloUnauthorized,
    ZaloUnreachable,
    ZaloUpdate,
    message_parts,
    parse_updates,
)
from bot.outbox import Outcome
from handlers.core import Button, Reply
from handlers.render import as_numbered, split_text
from tests.fakes.server import LocalServer, free_port
from tests.fakes.zalo import BOT_INFO, SECRET_HEADER, TOKEN, FakeZalo

CHAT = "e4ea2cd5189df1c3a88c"


class Pauses:
    """An injected sleep: records each pause instead of waiting it."""

    def __init__(self) -> None:
        self.seen: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.seen.append(seconds)


@pytest.fixture
async def zalo() -> AsyncIterator[FakeZalo]:
    async with FakeZalo() as fake:
        yield fake


@pytest.fixture
def pauses() -> Pauses:
    return Pauses()


@pytest.fixture
async def client(zalo: FakeZalo, pauses: Pauses) -> AsyncIterator[ZaloClient]:
    async with ZaloClient(TOKEN, zalo.api_url, timeout=5, sleep=pauses) as zalo_client:
        yield zalo_client


# --- the methods ----------------------------------------------------------------------------------

async def test_get_me_posts_json_to_the_token_path(client: ZaloClient, zalo: FakeZalo) -> None:
    assert await client.get_me() == BOT_INFO
    assert zalo.calls == [("getMe", {})]


@pytest.mark.parametrize("idle_status", [408, 200])
async def test_an_idle_poll_is_an_empty_list(idle_status: int, pauses: Pauses) -> None:
    """Zalo answers an idle long poll with 408 (as the HTTP status, or as error_code with HTTP 200)."""
    async with FakeZalo(idle_status=idle_status) as zalo, ZaloClient(TOKEN, zalo.api_url, sleep=pauses) as client:
        assert await client.get_updates(timeout=0) == []
        assert zalo.idle_polls == 1
        assert len(zalo.calls) == 1 and pauses.seen == []  # "nothing new" is not an error to retry


async def test_the_long_poll_returns_when_a_message_arrives(client: ZaloClient, zalo: FakeZalo) -> None:
    poll = asyncio.create_task(client.get_updates(timeout=20))
    await zalo.wait_for(lambda: bool(zalo.methods_called("getUpdates")))
    await zalo.user_sends(CHAT, "học", display_name="Chị Lan")
    [update] = await poll
    assert (update.event_name, update.text, update.chat_id, update.user_id) == (
        "message.text.received", "học", CHAT, CHAT)
    assert update.display_name == "Chị Lan" and update.is_bot is False and update.chat_type == "PRIVATE"
    assert zalo.methods_called("getUpdates") == [{"timeout": "20"}]


@pytest.mark.parametrize("envelope", ["wrapped", "list", "bare"])
async def test_each_envelope_shape_is_read(envelope: str, pauses: Pauses) -> None:
    async with FakeZalo(envelope=envelope) as zalo, ZaloClient(TOKEN, zalo.api_url, sleep=pauses) as client:
        sent = await zalo.user_sends(CHAT, "tiến độ")
        [update] = await client.get_updates(timeout=0)
    message = sent["message"]
    assert update.text == "tiến độ" and update.message_id == message["message_id"]
    assert update.date == message["date"] and update.raw == sent


async def test_one_update_per_call_in_order(client: ZaloClient, zalo: FakeZalo) -> None:
    await zalo.user_sends(CHAT, "1")
    await zalo.user_sends_sticker(CHAT)
    await zalo.user_unsupported(CHAT)
    events = [[u.event_name for u in await client.get_updates(timeout=0)] for _ in range(4)]
    assert events == [["message.text.received"], ["message.sticker.received"], ["message.unsupported.received"], []]


async def test_media_and_unsupported_events_parse_without_text(client: ZaloClient, zalo: FakeZalo) -> None:
    await zalo.user_sends_image(CHAT, caption="ảnh")
    await zalo.user_sends_voice(CHAT)
    await zalo.user_unsupported(CHAT)
    updates = [(await client.get_updates(timeout=0))[0] for _ in range(3)]
    assert [u.event_name for u in updates] == [
        "message.image.received", "message.voice.received", "message.unsupported.received"]
    assert all(u.text is None and u.chat_id == CHAT and u.message_id for u in updates)


async def test_webhook_set_info_delete_and_polling_exclusion(client: ZaloClient, zalo: FakeZalo) -> None:
    url = "https://hocvuso.example/webhook/zalo"
    assert (await client.set_webhook(url, "s3cret-value"))["url"] == url
    assert (await client.get_webhook_info())["url"] == url
    with pytest.raises(ZaloError) as refused:  # polling while a webhook is set is refused, as by Zalo
        await client.get_updates(timeout=0)
    assert type(refused.value) is ZaloError and len(zalo.methods_called("getUpdates")) == 1
    assert (await client.delete_webhook())["url"] == ""
    assert (await client.get_webhook_info())["url"] == ""
    assert await client.get_updates(timeout=0) == []


@pytest.mark.parametrize("secret", ["1234567", "x" * 257, ""])
async def test_webhook_secret_must_be_8_to_256_characters(client: ZaloClient, zalo: FakeZalo, secret: str) -> None:
    with pytest.raises(ValueError, match="8-256"):
        await client.set_webhook("https://hocvuso.example/webhook/zalo", secret)
    assert zalo.calls == []


async def test_the_fake_posts_events_to_the_webhook_with_the_secret(client: ZaloClient, zalo: FakeZalo) -> None:
    received: list[tuple[str | None, object]] = []

    async def hook(request: Request) -> Response:
        received.append((request.headers.get(SECRET_HEADER), await request.json()))
        return Response(status_code=200)

    server = LocalServer(Starlette(routes=[Route("/webhook/zalo", hook, methods=["POST"])]))
    await server.start()
    try:
        await client.set_webhook(f"{server.url}/webhook/zalo", "s3cret-value")
        update = await zalo.user_sends(CHAT, "menu")
        assert await zalo.post_webhook(update, secret="") == 200  # no header at all
    finally:
        await server.stop()
    assert zalo.webhook_responses == [200] and zalo.updates == []
    (secret, body), (missing, _) = received
    assert secret == "s3cret-value" and missing is None
    assert [u.text for u in parse_updates(body)] == ["menu"]


async def test_send_message_and_its_limits(client: ZaloClient, zalo: FakeZalo) -> None:
    result = await client.send_message(CHAT, "Xin chào")
    assert result["message_id"] == zalo.sent[CHAT][0].message_id
    await client.send_message(CHAT, "a" * 2000)
    for text in ("", "a" * 2001):
        with pytest.raises(ValueError, match="1-2000"):
            await client.send_message(CHAT, text)
    assert zalo.texts(CHAT) == ["Xin chào", "a" * 2000]
    assert len(zalo.calls) == 2  # the refused texts never left


async def test_the_fake_refuses_bad_texts_with_ok_false(zalo: FakeZalo) -> None:
    async with httpx.AsyncClient() as raw:
        for text in ("", "a" * 2001):
            answer = await raw.post(f"{zalo.api_url}/bot{TOKEN}/sendMessage", json={"chat_id": CHAT, "text": text})
            assert answer.status_code == 200 and answer.json()["ok"] is False
    assert zalo.sent == {}


async def test_photo_sticker_and_typing(client: ZaloClient, zalo: FakeZalo) -> None:
    await client.send_chat_action(CHAT, "typing")
    await client.send_photo(CHAT, "https://hocvuso.example/anh.png", caption="Giấy chứng nhận")
    await client.send_sticker(CHAT, "0e078a2fb66a5f34067b")
    assert [(s.method, s.photo, s.sticker, s.text) for s in zalo.sent[CHAT]] == [
        ("sendPhoto", "https://hocvuso.example/anh.png", None, "Giấy chứng nhận"),
        ("sendSticker", None, "0e078a2fb66a5f34067b", ""),
    ]
    assert zalo.methods_called("sendChatAction") == [{"chat_id": CHAT, "action": "typing"}]


# --- answers that are not ok ----------------------------------------------------------------------

async def test_ok_false_with_http_200_is_an_error_not_retried(client: ZaloClient, zalo: FakeZalo,
                                                              pauses: Pauses) -> None:
    zalo.fail_next("sendMessage", 200, error_code=-201, description="Invalid chat_id")
    with pytest.raises(ZaloError) as error:
        await client.send_message(CHAT, "Xin chào")
    assert (error.value.error_code, error.value.description, error.value.http_status) == (-201, "Invalid chat_id", 200)
    assert type(error.value) is ZaloError and len(zalo.calls) == 1 and pauses.seen == []


async def test_quota_429_backs_off_with_growing_pauses_then_raises(client: ZaloClient, zalo: FakeZalo,
                                                                   pauses: Pauses) -> None:
    zalo.quota = 0
    with pytest.raises(ZaloQuotaExceeded) as error:
        await client.send_message(CHAT, "Nhắc hạn nộp")
    assert pauses.seen == [5.0, 10.0, 20.0]  # growing, never a tight loop
    assert error.value.pause == 40.0 and "wait 40 s" in str(error.value)
    assert zalo.too_many == 4
    # A call right after: the next pause is longer than a call waits, so it is raised at once.
    with pytest.raises(ZaloQuotaExceeded) as again:
        await client.send_message(CHAT, "Nhắc hạn nộp")
    assert again.value.pause == 80.0 and pauses.seen == [5.0, 10.0, 20.0] and zalo.too_many == 5
    zalo.quota = None  # the plan renewed: the first success resets the pauses
    await client.send_message(CHAT, "Nhắc hạn nộp")
    assert client.quota_strikes == 0 and client.quota_pause() == 5.0


async def test_quota_is_logged_with_the_pause(client: ZaloClient, zalo: FakeZalo,
                                              caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="bot.channels.zalo_client")
    zalo.fail_next("getUpdates", 429, times=1)
    assert await client.get_updates(timeout=0) == []
    [record] = [r for r in caplog.records if "429" in r.getMessage()]
    assert "waiting 5 s" in record.getMessage()


async def test_5xx_is_retried_with_backoff_then_raised(client: ZaloClient, zalo: FakeZalo, pauses: Pauses) -> None:
    zalo.fail_next("getMe", 502, times=10)
    with pytest.raises(ZaloServerError) as error:
        await client.get_me()
    assert pauses.seen == [0.5, 1.0, 2.0] and len(zalo.calls) == 4
    assert error.value.error_code == 502 and not error.value.maybe_delivered


async def test_a_send_refused_with_5xx_is_retried_and_sent_once(client: ZaloClient, zalo: FakeZalo,
                                                               pauses: Pauses) -> None:
    zalo.fail_next("sendMessage", 503, times=2)
    await client.send_message(CHAT, "Bài 2")
    assert zalo.texts(CHAT) == ["Bài 2"] and pauses.seen == [0.5, 1.0]


async def test_a_504_on_a_send_is_not_repeated(client: ZaloClient, zalo: FakeZalo, pauses: Pauses) -> None:
    """A gateway timeout means Zalo may have sent it: a duplicate is worse than a missing message."""
    zalo.fail_next("sendMessage", 504)
    with pytest.raises(ZaloServerError) as error:
        await client.send_message(CHAT, "Bài 2")
    assert error.value.maybe_delivered and len(zalo.calls) == 1 and pauses.seen == []


async def test_connection_errors_are_retried_then_wrapped(pauses: Pauses) -> None:
    async with ZaloClient(TOKEN, f"http://127.0.0.1:{free_port()}", sleep=pauses) as client:
        with pytest.raises(ZaloNetworkError) as error:
            await client.send_message(CHAT, "Xin chào")
    assert pauses.seen == [0.5, 1.0, 2.0]
    assert not error.value.maybe_delivered and error.value.description == "ConnectError"
    assert error.value.__suppress_context__  # httpx's error, which holds the request, is not chained


async def test_no_retry_after_a_read_timeout_on_a_send(zalo: FakeZalo, pauses: Pauses) -> None:
    zalo.hold_next("sendMessage")  # takes effect, answers only after release()
    async with ZaloClient(TOKEN, zalo.api_url, timeout=0.3, sleep=pauses) as client:
        with pytest.raises(ZaloNetworkError) as error:
            await client.send_message(CHAT, "Chỉ một lần")
    zalo.release()
    assert error.value.maybe_delivered and error.value.description == "ReadTimeout"
    assert zalo.texts(CHAT) == ["Chỉ một lần"] and len(zalo.calls) == 1 and pauses.seen == []


async def test_a_read_timeout_on_a_read_is_retried(zalo: FakeZalo, pauses: Pauses) -> None:
    zalo.hold_next("getMe")
    async with ZaloClient(TOKEN, zalo.api_url, timeout=0.3, sleep=pauses) as client:
        assert await client.get_me() == BOT_INFO
    assert len(zalo.calls) == 2 and pauses.seen == [0.5]


async def test_token_problems_and_blocked_people_are_told_apart(zalo: FakeZalo, pauses: Pauses) -> None:
    async with ZaloClient("1:wrong-token", zalo.api_url, sleep=pauses) as wrong:
        with pytest.raises(ZaloUnauthorized):
            await wrong.get_me()
    async with ZaloClient(TOKEN, zalo.api_url, sleep=pauses) as client:
        zalo.fail_next("sendMessage", 403, description="Forbidden: invalid access token")
        with pytest.raises(ZaloUnauthorized):
            await client.send_message(CHAT, "a")
        zalo.fail_next("sendMessage", 403)  # a bare 403 is read as a token problem, never as blocked
        with pytest.raises(ZaloUnauthorized):
            await client.send_message(CHAT, "a")
        zalo.block(CHAT)
        with pytest.raises(ZaloUnreachable):
            await client.send_message(CHAT, "a")
    assert len(zalo.calls) == 3 and pauses.seen == []  # none retried (the wrong token's call is not recorded)


# --- the token is never written -------------------------------------------------------------------

async def test_the_token_is_in_no_log_line_exception_or_repr(zalo: FakeZalo, pauses: Pauses,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "bot.channels.zalo_client"):
        caplog.set_level(logging.DEBUG, logger=name)
    errors: list[BaseException] = []
    async with ZaloClient(TOKEN, zalo.api_url, timeout=0.3, sleep=pauses) as client:
        assert TOKEN not in repr(client)
        await client.get_me()
        await client.send_message(CHAT, "Xin chào")
        await client.get_updates(timeout=0)
        zalo.fail_next("getMe", 500, times=10)
        zalo.fail_next("sendMessage", 400, description=f"bad request for /bot{TOKEN}/sendMessage")
        zalo.fail_next("sendPhoto", 429, times=10)
        zalo.hold_next("sendSticker")
        for call in (client.get_me(), client.send_message(CHAT, "a"), client.send_photo(CHAT, "https://x.example/a"),
                     client.send_sticker(CHAT, "abc")):
            with pytest.raises(ZaloError) as error:
                await call
            errors.append(error.value)
        zalo.release()
    async with ZaloClient(TOKEN, f"http://127.0.0.1:{free_port()}", sleep=pauses) as down:
        with pytest.raises(ZaloNetworkError) as error:
            await down.get_me()
        errors.append(error.value)
    requests = [r.getMessage() for r in caplog.records if r.name == "httpx"]
    assert requests and all("/bot***/" in line for line in requests)  # httpx did log its URLs, at INFO
    assert any(r.name.startswith("httpcore") for r in caplog.records)
    assert TOKEN not in caplog.text and all(TOKEN not in r.getMessage() for r in caplog.records)
    assert "***" in errors[1].description
    for error in errors:
        written = "".join(traceback.format_exception(error))
        assert TOKEN not in f"{error}{error!r}{error.args}{written}"


# --- updates read tolerantly ----------------------------------------------------------------------

def test_parse_updates_accepts_every_shape() -> None:
    update = {"event_name": "message.text.received",
              "message": {"from": {"id": "u1", "display_name": "An"}, "chat": {"id": "c1", "chat_type": "PRIVATE"},
                          "text": "menu", "message_id": "m1", "date": 1749632637199}}
    for shape in (update, {"ok": True, "result": update}, {"ok": True, "result": [update]}):
        [parsed] = parse_updates(shape)
        assert (parsed.chat_id, parsed.user_id, parsed.text, parsed.message_id, parsed.date) == (
            "c1", "u1", "menu", "m1", 1749632637199)
    assert parse_updates({"ok": False, "error_code": 408, "description": "Request timeout"}) == []
    assert parse_updates({"ok": True, "result": None}) == []
    assert parse_updates(["not", "a", "dict"]) == []
    assert parse_updates({"ok": True, "result": [update, 5, "x"]})[0].text == "menu"


def test_missing_and_mistyped_fields_are_empty_not_errors() -> None:
    bare = ZaloUpdate.from_dict({"event_name": "message.unsupported.received"})
    assert bare is not None and (bare.user_id, bare.chat_id, bare.text, bare.message_id, bare.date) == (
        "", "", None, "", None)
    odd = ZaloUpdate.from_dict({"message": {"from": {"id": 42, "first_name": "Bình", "is_bot": "yes"},
                                            "chat": "?", "text": 7, "message_id": 9, "date": "1749632637199"}})
    assert odd is not None
    assert (odd.event_name, odd.user_id, odd.chat_id, odd.display_name, odd.is_bot, odd.text) == (
        "", "42", "42", "Bình", False, None)
    assert (odd.message_id, odd.date) == ("9", 1749632637199)
    inferred = ZaloUpdate.from_dict({"message": {"text": "học", "chat": {"id": "c"}}})
    assert inferred is not None and inferred.event_name == "message.text.received"
    assert ZaloUpdate.from_dict({"update_id": 1}) is None and ZaloUpdate.from_dict(None) is None
    assert "học" not in repr(inferred)  # what a person wrote stays out of reprs (and so out of logs)


# --- the outbox transport -------------------------------------------------------------------------

@pytest.fixture
async def outbox(client: ZaloClient) -> ZaloOutbox:
    return ZaloOutbox(client)


async def test_outbox_sends_menus_as_numbered_text(outbox: ZaloOutbox, zalo: FakeZalo) -> None:
    menu = Reply("Hôm nay học gì?", ((Button("Học tiếp", "learn"),), (Button("Tiến độ", "progress"),)))
    result = await outbox.send(CHAT, [Reply("⏰ Nhắc: còn 3 ngày."), menu])
    assert result.outcome is Outcome.SENT and outbox.channel == "zalo"
    [text] = zalo.texts(CHAT)  # the plain reminder is folded into the menu: one message
    assert text == as_numbered(Reply("⏰ Nhắc: còn 3 ngày.\n\nHôm nay học gì?", menu.buttons))
    assert "Học tiếp" in text and "Tiến độ" in text


async def test_outbox_splits_at_2000_on_paragraph_boundaries(outbox: ZaloOutbox, zalo: FakeZalo) -> None:
    paragraphs = [f"Đoạn {n}: " + "chữ " * 120 for n in range(12)]  # about 6,000 characters
    text = "\n\n".join(p.strip() for p in paragraphs)
    result = await outbox.send(CHAT, [Reply(text)])
    sent = zalo.texts(CHAT)
    assert result.outcome is Outcome.SENT and len(sent) > 1
    assert sent == split_text(text, 2000) == message_parts([Reply(text)])
    assert all(len(part) <= 2000 for part in sent)
    assert "\n\n".join(sent) == text  # cut only between paragraphs


async def test_outbox_quota_is_wait_after_one_try(outbox: ZaloOutbox, zalo: FakeZalo, pauses: Pauses) -> None:
    zalo.quota = 0
    first = await outbox.send(CHAT, [Reply("Nhắc")])
    second = await outbox.send(CHAT, [Reply("Nhắc")])
    assert (first.outcome, first.seconds, second.seconds) == (Outcome.WAIT, 5.0, 10.0)  # growing
    assert "429" in first.reason and len(zalo.calls) == 2 and pauses.seen == []


@pytest.mark.parametrize(("status", "code", "description", "outcome"), [
    (500, None, None, Outcome.RETRY),
    (502, None, None, Outcome.RETRY),
    (200, -201, "Invalid chat_id", Outcome.REFUSED),
    (400, None, "text must be 1 to 2000 characters", Outcome.REFUSED),
    (403, None, "The user has blocked the bot", Outcome.BLOCKED),
    (401, None, None, Outcome.WAIT),
    (504, None, None, Outcome.SENT),
])
async def test_outbox_outcomes(outbox: ZaloOutbox, zalo: FakeZalo, pauses: Pauses, status: int, code: int | None,
                               description: str | None, outcome: Outcome) -> None:
    zalo.fail_next("sendMessage", status, error_code=code, description=description)
    secret_text = "Mã hộ gia đình 482915"
    result = await outbox.send(CHAT, [Reply(secret_text)])
    assert result.outcome is outcome and result.reason
    assert secret_text not in result.reason and "482915" not in result.reason
    if outcome is Outcome.REFUSED:
        assert description is not None and description in result.reason
    assert len(zalo.calls) == 1 and pauses.seen == []  # one try: the outbox decides when to try again


async def test_outbox_read_timeout_counts_as_sent(zalo: FakeZalo, pauses: Pauses) -> None:
    zalo.hold_next("sendMessage")
    async with ZaloClient(TOKEN, zalo.api_url, timeout=0.3, sleep=pauses) as client:
        result = await ZaloOutbox(client).send(CHAT, [Reply("Chỉ một lần")])
    zalo.release()
    assert result.outcome is Outcome.SENT and "không gửi trùng" in result.reason
    assert zalo.texts(CHAT) == ["Chỉ một lần"]


async def test_outbox_connection_failure_is_retry(pauses: Pauses) -> None:
    async with ZaloClient(TOKEN, f"http://127.0.0.1:{free_port()}", sleep=pauses) as client:
        result = await ZaloOutbox(client).send(CHAT, [Reply("Nhắc")])
    assert result.outcome is Outcome.RETRY and pauses.seen == []


async def test_outbox_blocked_person(outbox: ZaloOutbox, zalo: FakeZalo) -> None:
    zalo.block(CHAT)
    assert (await outbox.send(CHAT, [Reply("Nhắc")])).outcome is Outcome.BLOCKED
