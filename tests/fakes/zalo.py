"""A fake Zalo Bot Platform API server speaking the wire format of the public documentation.

Calls are `POST /bot{TOKEN}/{method}` with JSON; answers are `{ok, result, description, error_code}`.
`getUpdates` long-polls for its `timeout`, gives one update per call and answers 408 when idle; it is
refused while a webhook is set (polling and webhook exclude each other). With a webhook set, user events
are posted to it with the header `X-Bot-Api-Secret-Token`. `envelope` picks the shape an update travels
in: "wrapped" (`{ok, result: update}`), "list" (`{ok, result: [update]}`) or "bare" (the update itself).

Tests inject what people do (text, image, sticker, voice, and the `message.unsupported.received` Zalo
sends instead of the content for protected users) and read what the bot sent (`sent`, per chat).
Failures on demand: `fail_next` (any status, or `ok: false` with HTTP 200), `hold_next` (the call takes
effect, its answer waits for `release()`: a read timeout without sleeping), `quota` (429 after that
many sends), `block` (a person who blocked the bot).

Where Zalo publishes no wording (a blocked person, getUpdates under a webhook), the fake's answer is
our guess; the client reads a blocked person from words in the description (see zalo_client.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.fakes.server import LocalServer

TOKEN = "1459232241454765289:zaloFAKEtokenAbCdEfGhIjKlMnOpQrStUvWxYz"
BOT_INFO = {"id": "1459232241454765289", "account_name": "bot.HocVuSo", "account_type": "BASIC",
            "can_join_groups": False, "display_name": "Bot Học vụ số"}
SECRET_HEADER = "X-Bot-Api-Secret-Token"
TEXT_MAX = 2000
SENDING = {"sendMessage", "sendPhoto", "sendSticker"}
BLOCKED_DESCRIPTION = "The user has blocked the bot or cannot be reached"
EVENTS = ("message.text.received", "message.image.received", "message.sticker.received",
          "message.voice.received", "message.unsupported.received")


@dataclass
class ZaloSent:
    """One thing the bot sent to a chat."""

    method: str
    chat_id: str
    text: str = ""  # a message's text or a photo's caption
    photo: str | None = None
    sticker: str | None = None
    message_id: str = ""
    at: float = 0.0


@dataclass
class Failure:
    status: int  # the HTTP status; 200 with an error_code answers ok: false with HTTP 200
    error_code: int
    description: str
    hold: bool = False  # take effect, answer only after release()


class FakeZalo:
    """The fake server. Use as `async with FakeZalo() as zalo:`; `zalo.api_url` is HOCVUSO_ZALO_API_URL."""

    def __init__(self, token: str = TOKEN, *, envelope: str = "wrapped", idle_status: int = 408,
                 quota: int | None = None, blocked: Iterable[str] = (), port: int | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        """`envelope`: "wrapped", "list" or "bare" (see above); `idle_status`: the HTTP status of an idle
        poll (408; 200 answers `ok: false, error_code: 408`); `quota`: sends taken before 429
        (None: no limit); `blocked`: chats whose sends are refused; `clock`: for `date` fields."""
        if envelope not in ("wrapped", "list", "bare"):
            raise ValueError(envelope)
        self.token = token
        self.envelope = envelope
        self.idle_status = idle_status
        self.quota = quota
        self.blocked: set[str] = set(blocked)
        self.clock = clock
        self.updates: list[dict[str, Any]] = []  # waiting for getUpdates
        self.delivered: list[dict[str, Any]] = []  # every update handed to the bot, by poll or webhook
        self.sent: dict[str, list[ZaloSent]] = defaultdict(list)
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.failures: dict[str, list[Failure]] = defaultdict(list)
        self.webhook: dict[str, Any] | None = None
        self.webhook_responses: list[int] = []
        self.too_many = 0  # 429s answered
        self.idle_polls = 0  # 408s answered
        self._ids = itertools.count(1)
        self._changed = asyncio.Condition()
        self._release = asyncio.Event()
        self._server = LocalServer(Starlette(routes=[
            Route("/bot{token}/{method}", self._endpoint, methods=["GET", "POST"]),
        ]), port)
        self._client: httpx.AsyncClient | None = None

    # --- lifecycle ------------------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        return self._server.url

    async def __aenter__(self) -> FakeZalo:
        self._client = httpx.AsyncClient(timeout=10)
        await self._server.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.release()  # held answers end, so the server can stop
        await self._server.stop()
        if self._client is not None:
            await self._client.aclose()

    # --- what people do -------------------------------------------------------------------------

    def event(self, chat_id: str, event_name: str, display_name: str = "An", **content: Any) -> dict[str, Any]:
        """A bare update as Zalo builds it (not yet delivered)."""
        message = {"from": {"id": chat_id, "display_name": display_name, "is_bot": False},
                   "chat": {"id": chat_id, "chat_type": "PRIVATE"},
                   "message_id": self._new_id(), "date": int(self.clock() * 1000), **content}
        return {"event_name": event_name, "message": message}

    async def user_sends(self, chat_id: str, text: str, display_name: str = "An") -> dict[str, Any]:
        return await self.deliver(self.event(chat_id, "message.text.received", display_name, text=text))

    async def user_sends_image(self, chat_id: str, photo_url: str = "https://example.invalid/anh.jpg",
                               caption: str | None = None) -> dict[str, Any]:
        content: dict[str, Any] = {"photo_url": photo_url}
        if caption:
            content["caption"] = caption
        return await self.deliver(self.event(chat_id, "message.image.received", **content))

    async def user_sends_sticker(self, chat_id: str, sticker: str = "0e078a2fb66a5f34067b") -> dict[str, Any]:
        return await self.deliver(self.event(chat_id, "message.sticker.received", sticker=sticker))

    async def user_sends_voice(self, chat_id: str) -> dict[str, Any]:
        return await self.deliver(self.event(chat_id, "message.voice.received",
                                             voice_url="https://example.invalid/giong-noi.aac"))

    async def user_unsupported(self, chat_id: str) -> dict[str, Any]:
        """What Zalo sends instead of the content for protected users (children, people who cannot read,
        people with disabilities): no text, no media."""
        return await self.deliver(self.event(chat_id, "message.unsupported.received"))

    async def deliver(self, update: dict[str, Any]) -> dict[str, Any]:
        """Hand an update to the bot: posted to the webhook if one is set, else queued for getUpdates."""
        if self.webhook is None:
            async with self._changed:
                self.updates.append(update)
                self._changed.notify_all()
        else:
            status = await self.post_webhook(update)
            async with self._changed:
                self.webhook_responses.append(status)
                self._changed.notify_all()
        self.delivered.append(update)
        return update

    async def post_webhook(self, update: dict[str, Any], *, url: str | None = None,
                           secret: str | None = None) -> int:
        """POST `update` (in the envelope) as Zalo's webhook call; returns the bot's HTTP status (0: down).
        `url`/`secret` default to the webhook set; `secret=""` sends no header at all."""
        assert self._client is not None, "use `async with FakeZalo()`"
        target = url or (self.webhook or {}).get("url")
        assert target, "no webhook url"
        token = (self.webhook or {}).get("secret_token", "") if secret is None else secret
        headers = {SECRET_HEADER: token} if token else {}
        try:
            response = await self._client.post(target, json=self.envelop(update), headers=headers)
        except httpx.TransportError:
            return 0
        return response.status_code

    def envelop(self, update: dict[str, Any]) -> dict[str, Any]:
        if self.envelope == "bare":
            return update
        return {"ok": True, "result": [update] if self.envelope == "list" else update}

    # --- what the bot did -----------------------------------------------------------------------

    def texts(self, chat_id: str) -> list[str]:
        return [sent.text for sent in self.sent[chat_id] if sent.method == "sendMessage"]

    def last(self, chat_id: str) -> ZaloSent | None:
        return self.sent[chat_id][-1] if self.sent[chat_id] else None

    def methods_called(self, method: str) -> list[dict[str, Any]]:
        return [params for name, params in self.calls if name == method]

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        """Wait until `predicate()` holds, re-checked whenever the fake records something."""
        async def until() -> None:
            async with self._changed:
                await self._changed.wait_for(predicate)

        await asyncio.wait_for(until(), timeout)

    # --- failures on demand ---------------------------------------------------------------------

    def fail_next(self, method: str, status: int, times: int = 1, *, error_code: int | None = None,
                  description: str | None = None) -> None:
        """The next `times` calls of `method` answer `ok: false` with this HTTP status (200 allowed)."""
        code = error_code if error_code is not None else status
        text = description or {401: "Unauthorized", 403: "Forbidden", 429: "Quota exceeded",
                               500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
                               504: "Gateway Timeout"}.get(code, "Bad Request")
        self.failures[method].extend(Failure(status, code, text) for _ in range(times))

    def hold_next(self, method: str) -> None:
        """The next call of `method` takes effect at once and is answered only after `release()`."""
        self._release.clear()
        self.failures[method].append(Failure(200, 0, "", hold=True))

    def release(self) -> None:
        self._release.set()

    def block(self, chat_id: str) -> None:
        self.blocked.add(chat_id)

    # --- the API --------------------------------------------------------------------------------

    def _new_id(self) -> str:
        return f"{next(self._ids):020x}"

    @staticmethod
    def _error(status: int, error_code: int, description: str) -> JSONResponse:
        return JSONResponse({"ok": False, "error_code": error_code, "description": description}, status_code=status)

    async def _endpoint(self, request: Request) -> JSONResponse:
        if request.path_params["token"] != self.token:
            return self._error(401, 401, "Unauthorized")
        method = request.path_params["method"]
        try:
            params = await request.json() if await request.body() else {}
        except ValueError:
            return self._error(400, 400, "Bad Request: body is not JSON")
        if not isinstance(params, dict):
            return self._error(400, 400, "Bad Request: body is not an object")
        async with self._changed:
            self.calls.append((method, params))
            self._changed.notify_all()
        pending = self.failures.get(method)
        if pending:
            failure = pending.pop(0)
            if not failure.hold:
                return self._error(failure.status, failure.error_code, failure.description)
            answer = await self._answer(method, params)
            await self._release.wait()  # tests time out on the client side; nothing sleeps here
            return answer
        return await self._answer(method, params)

    async def _answer(self, method: str, params: dict[str, Any]) -> JSONResponse:
        handler = getattr(self, f"_api_{method}", None)
        if handler is None:
            return self._error(404, 404, "Method not found")
        if method in SENDING:
            refused = self._refuse_send(params)
            if refused is not None:
                return refused
        result = await handler(params)
        if isinstance(result, JSONResponse):
            return result
        return JSONResponse({"ok": True} if result is None else {"ok": True, "result": result})

    def _refuse_send(self, params: dict[str, Any]) -> JSONResponse | None:
        chat_id = params.get("chat_id")
        if not isinstance(chat_id, str) or not chat_id:
            return self._error(200, 400, "chat_id is required")
        if chat_id in self.blocked:
            return self._error(403, 403, BLOCKED_DESCRIPTION)
        if self.quota is not None and self.quota <= 0:
            self.too_many += 1
            return self._error(429, 429, "Quota exceeded")
        return None

    async def _api_getMe(self, params: dict[str, Any]) -> Any:
        return BOT_INFO

    async def _api_getUpdates(self, params: dict[str, Any]) -> Any:
        if self.webhook is not None:
            return self._error(400, 400, "Webhook is set: call deleteWebhook before getUpdates")
        try:
            timeout = float(params.get("timeout", 30))
        except (TypeError, ValueError):
            return self._error(200, 400, "timeout must be a number")
        async with self._changed:
            if not self.updates and timeout > 0:
                with contextlib.suppress(TimeoutError):  # the long poll: woken by an update, or idle
                    await asyncio.wait_for(self._changed.wait_for(lambda: bool(self.updates)), timeout)
            if not self.updates:
                self.idle_polls += 1
                return self._error(self.idle_status, 408, "Request timeout")
            update = self.updates.pop(0)
            self._changed.notify_all()
        return JSONResponse(self.envelop(update))

    async def _api_setWebhook(self, params: dict[str, Any]) -> Any:
        url, secret = params.get("url"), params.get("secret_token")
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            return self._error(200, 400, "url must be an HTTPS URL")
        if not isinstance(secret, str) or not 8 <= len(secret) <= 256:
            return self._error(200, 400, "secret_token must be 8 to 256 characters")
        self.webhook = {"url": url, "secret_token": secret, "updated_at": int(self.clock() * 1000)}
        return {"url": url, "updated_at": self.webhook["updated_at"]}

    async def _api_deleteWebhook(self, params: dict[str, Any]) -> Any:
        self.webhook = None
        return {"url": "", "updated_at": int(self.clock() * 1000)}

    async def _api_getWebhookInfo(self, params: dict[str, Any]) -> Any:
        if self.webhook is None:
            return {"url": "", "updated_at": 0}
        return {"url": self.webhook["url"], "updated_at": self.webhook["updated_at"]}

    async def _record(self, sent: ZaloSent) -> dict[str, Any]:
        sent.message_id, sent.at = self._new_id(), time.perf_counter()
        if self.quota is not None:
            self.quota -= 1
        async with self._changed:
            self.sent[sent.chat_id].append(sent)
            self._changed.notify_all()
        return {"message_id": sent.message_id, "date": int(self.clock() * 1000)}

    async def _api_sendMessage(self, params: dict[str, Any]) -> Any:
        text = params.get("text")
        if not isinstance(text, str) or not 1 <= len(text) <= TEXT_MAX:
            return self._error(200, 400, "text must be 1 to 2000 characters")
        return await self._record(ZaloSent("sendMessage", params["chat_id"], text))

    async def _api_sendPhoto(self, params: dict[str, Any]) -> Any:
        photo, caption = params.get("photo"), params.get("caption")
        if not isinstance(photo, str) or not photo.startswith(("https://", "http://")):
            return self._error(200, 400, "photo must be an image URL")
        if caption is not None and (not isinstance(caption, str) or not 1 <= len(caption) <= TEXT_MAX):
            return self._error(200, 400, "caption must be 1 to 2000 characters")
        return await self._record(ZaloSent("sendPhoto", params["chat_id"], caption or "", photo=photo))

    async def _api_sendSticker(self, params: dict[str, Any]) -> Any:
        sticker = params.get("sticker")
        if not isinstance(sticker, str) or not sticker:
            return self._error(200, 400, "sticker is required")
        return await self._record(ZaloSent("sendSticker", params["chat_id"], sticker=sticker))

    async def _api_sendChatAction(self, params: dict[str, Any]) -> Any:
        if not isinstance(params.get("chat_id"), str) or params.get("action") not in ("typing", "upload_photo"):
            return self._error(200, 400, "chat_id and action (typing) are required")
        return None


MENU_LINE = re.compile(r"^Gõ (\d+) → (.+)$", re.MULTILINE)


class ZaloResident:
    """A person in Zalo: types, and waits for the bot's answer. Zalo has no buttons, so a choice is made
    by typing the number the last list gives it ("Gõ 2 → Thôn 2")."""

    def __init__(self, zalo: FakeZalo, chat_id: str, display_name: str = "An") -> None:
        self.zalo = zalo
        self.chat_id = chat_id
        self.display_name = display_name
        self.seen = 0

    def _messages(self) -> list[ZaloSent]:
        return self.zalo.sent[self.chat_id]

    async def expect(self, part: str, timeout: float = 10.0) -> ZaloSent:
        """Wait for a new message containing `part`; later messages of the same answer count too."""
        sent = self._messages()
        try:
            await self.zalo.wait_for(lambda: any(part in s.text for s in sent[self.seen:]), timeout)
        except TimeoutError:
            raise AssertionError(f"no message with {part!r}; the last ones: {[s.text for s in sent[-3:]]}") from None
        index = next(i for i in range(self.seen, len(sent)) if part in sent[i].text)
        self.seen = index + 1
        return sent[index]

    async def says(self, text: str, expect: str) -> ZaloSent:
        await self.zalo.user_sends(self.chat_id, text, self.display_name)
        return await self.expect(expect)

    def number_of(self, label_part: str) -> int:
        """The number the newest list gives the choice whose label contains `label_part`."""
        for sent in reversed(self._messages()):
            choices = MENU_LINE.findall(sent.text)
            if choices:
                for number, label in choices:
                    if label_part in label:
                        return int(number)
                raise AssertionError(f"no choice {label_part!r} in {choices}")
        raise AssertionError("no list of choices was sent")

    async def chooses(self, label_part: str, expect: str) -> ZaloSent:
        return await self.says(str(self.number_of(label_part)), expect)
