"""A fake Telegram Bot API server that speaks the wire format python-telegram-bot 22 expects.

Tests inject what users do (messages, button presses, stickers) and read what the bot sent. The
server can answer 429 with `retry_after`, 403 for a user who blocked the bot, 5xx, or answer slowly.
With a webhook set, it delivers updates by POST with the secret header, as Telegram does.

Flood control (issue 11), off unless asked for: `rate_limit=N` takes at most N `sendMessage` a second
from the bot and `chat_limit=1.0` at most one a second per chat; beyond them the answer is Telegram's
429 with `retry_after`. Every message taken is in `sent`; `message_counts()` counts repeats, and
`GET /_fake/stats` gives the same to a benchmark running the fake in another process.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.fakes.server import LocalServer

TOKEN = "123456:TEST-token_for-fake"
BOT_USER = {"id": 123456, "is_bot": True, "first_name": "Học vụ số", "username": "hocvuso_test_bot",
            "can_join_groups": False, "can_read_all_group_messages": False, "supports_inline_queries": False}
JSON_FIELDS = {"reply_markup", "allowed_updates", "commands", "scope", "link_preview_options", "reply_parameters"}
SENDING = {"sendMessage", "editMessageText", "sendDocument", "sendPhoto"}
INT_FIELDS = {"chat_id", "offset", "limit", "timeout", "message_id"}


@dataclass
class Sent:
    """One thing the bot sent to a chat."""

    method: str
    chat_id: int
    text: str = ""
    buttons: list[list[dict[str, str]]] = field(default_factory=list)
    file_name: str | None = None
    at: float = 0.0
    message_id: int = 0

    @property
    def button_labels(self) -> list[str]:
        return [button["text"] for row in self.buttons for button in row]

    def callback_for(self, label_part: str) -> str:
        for row in self.buttons:
            for button in row:
                if label_part in button["text"]:
                    return button["callback_data"]
        raise AssertionError(f"no button {label_part!r} in {self.button_labels}")


@dataclass
class Failure:
    status: int
    description: str
    retry_after: int | None = None
    delay: float = 0.0


class Bucket:
    """A token bucket: `per_second` tokens a second, holding at most `capacity`."""

    # Float time: a call one interval after the last conforms even if it comes a millisecond early.
    SLACK = 1e-3

    def __init__(self, per_second: float, capacity: float, now: float) -> None:
        self.per_second = per_second
        self.capacity = capacity
        self.tokens = capacity
        self.at = now

    def wait(self, now: float) -> float:
        """Seconds until a token is there (0: now); refills first."""
        self.tokens = min(self.capacity, self.tokens + max(0.0, now - self.at) * self.per_second)
        self.at = max(self.at, now)
        return 0.0 if self.tokens >= 1 - self.SLACK else (1 - self.tokens) / self.per_second

    def take(self) -> None:
        self.tokens -= 1


class FloodControl:
    """Telegram's limits on sending as the fake plays them: `per_second` messages a second from the bot
    (a bucket holding `burst`, one second's worth unless told) and, with `chat_interval`, one message per
    that many seconds to each chat. Telegram documents no more than "about 30 a second"."""

    def __init__(self, per_second: float | None, burst: float | None, chat_interval: float | None,
                 monotonic: Callable[[], float]) -> None:
        self.monotonic = monotonic
        now = monotonic()
        self.bot = Bucket(per_second, burst or per_second, now) if per_second else None
        self.chat_interval = chat_interval
        self.chats: dict[int, Bucket] = {}
        self.refused = 0  # 429s answered

    def admit(self, chat_id: int) -> int | None:
        """Take the message (None), or the whole seconds Telegram would ask to wait."""
        now = self.monotonic()
        buckets = [self.bot] if self.bot else []
        if self.chat_interval:
            chat = self.chats.setdefault(chat_id, Bucket(1 / self.chat_interval, 1, now))
            buckets.append(chat)
        wait = max((bucket.wait(now) for bucket in buckets), default=0.0)
        if wait > 0:
            self.refused += 1
            return max(1, math.ceil(wait))  # Telegram's retry_after is whole seconds
        for bucket in buckets:
            bucket.take()
        return None


class FakeTelegram:
    """The fake server. Use as `async with FakeTelegram() as telegram:`."""

    def __init__(
        self, token: str = TOKEN, *, rate_limit: float | None = None, burst: float | None = None,
        chat_limit: float | None = None, blocked: Iterable[int] = (), port: int | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """`rate_limit`: sendMessage calls a second taken from the bot (None: no limit); `chat_limit`:
        seconds between two messages to one chat (None: no limit); `blocked`: chats that answer 403;
        `monotonic`: the limits' clock, injectable so tests need not wait."""
        self.token = token
        self.updates: list[dict[str, Any]] = []
        self.sent: dict[int, list[Sent]] = defaultdict(list)
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.blocked: set[int] = set(blocked)
        self.flood = FloodControl(rate_limit, burst, chat_limit, monotonic)
        self.failures: dict[str, list[Failure]] = defaultdict(list)
        self.webhook: dict[str, Any] | None = None
        self.webhook_responses: list[int] = []
        self.injected_at: dict[int, float] = {}
        self.delivered: list[dict[str, Any]] = []  # every update ever sent to the bot
        self.confirmed: set[int] = set()  # updates the bot acknowledged (polled past, or webhook 200)
        self.messages: dict[tuple[int, int], tuple[str, list[Any]]] = {}  # what each sent message shows now
        self.send_delay = 0.0  # seconds each message waits before it takes effect
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(1000)
        self._changed = asyncio.Condition()
        # One condition per chat, so a waiting user wakes only for its own messages (many users at once).
        self._chat_changed: dict[int, asyncio.Condition] = defaultdict(asyncio.Condition)
        self._server = LocalServer(Starlette(routes=[
            Route("/bot{token}/{method}", self._endpoint, methods=["GET", "POST"]),
            Route("/_fake/stats", self._stats, methods=["GET"]),
        ]), port)
        self._client: httpx.AsyncClient | None = None

    # --- lifecycle ------------------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        """What HOCVUSO_TELEGRAM_API_URL is set to."""
        return self._server.url

    async def __aenter__(self) -> FakeTelegram:
        self._client = httpx.AsyncClient(timeout=10)
        await self._server.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._server.stop()
        if self._client is not None:
            await self._client.aclose()

    # --- what users do --------------------------------------------------------------------------

    async def user_sends(self, chat_id: int, text: str, first_name: str = "An") -> int:
        message = self._user_message(chat_id, first_name, text=text)
        if text.startswith("/"):
            command = text.split()[0]
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
        return await self._inject({"message": message})

    async def user_sends_sticker(self, chat_id: int) -> int:
        sticker = {"file_id": "CAACAgIAAx", "file_unique_id": "AgADx", "type": "regular", "width": 512,
                   "height": 512, "is_animated": False, "is_video": False}
        return await self._inject({"message": self._user_message(chat_id, "An", sticker=sticker)})

    async def user_presses(self, chat_id: int, callback_data: str, message_id: int | None = None) -> int:
        """A press of a button with `callback_data` on message `message_id` (default: the last with buttons)."""
        with_buttons = [sent for sent in self.sent[chat_id] if sent.buttons]
        last = with_buttons[-1] if with_buttons else None
        query = {
            "id": f"cq{next(self._update_ids)}",
            "from": self._user(chat_id, "An"),
            "chat_instance": f"ci{chat_id}",
            "data": callback_data,
            "message": {
                "message_id": message_id or (last.message_id if last else 1), "date": int(time.time()),
                "chat": {"id": chat_id, "type": "private"}, "from": BOT_USER, "text": last.text if last else "",
            },
        }
        return await self._inject({"callback_query": query})

    async def press(self, chat_id: int, label_part: str) -> int:
        """Press the button whose label contains `label_part` on the last message with buttons."""
        with_buttons = [sent for sent in self.sent[chat_id] if sent.buttons]
        assert with_buttons, f"no buttons were sent to {chat_id}"
        return await self.user_presses(chat_id, with_buttons[-1].callback_for(label_part))

    async def inject_raw(self, body: dict[str, Any]) -> int:
        """An update with any content, as a broken or future Telegram might send it."""
        return await self._inject(body)

    async def redeliver_unconfirmed(self) -> None:
        """Send every update the bot has not confirmed again, in order, as Telegram retries a webhook."""
        for update in [u for u in self.delivered if u["update_id"] not in self.confirmed]:
            if update["update_id"] not in self.confirmed:
                await self._deliver(dict(update))

    async def redeliver(self, update_id: int) -> None:
        """Send an already delivered update again, as Telegram does after a timeout."""
        original = next(u for u in self.delivered if u["update_id"] == update_id)
        await self._deliver(dict(original))

    # --- what the bot did -----------------------------------------------------------------------

    def last(self, chat_id: int) -> Sent | None:
        return self.sent[chat_id][-1] if self.sent[chat_id] else None

    def texts(self, chat_id: int) -> list[str]:
        return [sent.text for sent in self.sent[chat_id]]

    def methods_called(self, method: str) -> list[dict[str, Any]]:
        return [params for name, params in self.calls if name == method]

    def messages_taken(self) -> list[Sent]:
        """Every sendMessage the server took (answered 200), in the order taken."""
        taken = [sent for sents in self.sent.values() for sent in sents if sent.method == "sendMessage"]
        return sorted(taken, key=lambda sent: sent.message_id)

    def message_counts(self) -> Counter[tuple[int, str]]:
        """How many times each (chat, text) was taken: above 1 is a duplicate."""
        return Counter((sent.chat_id, sent.text) for sent in self.messages_taken())

    @property
    def too_many(self) -> int:
        """429s answered by the flood control (not those asked for with `fail_next`)."""
        return self.flood.refused

    async def wait_for(self, predicate, timeout: float = 10.0) -> None:
        """Wait until `predicate()` holds; fails after `timeout` seconds."""
        async def _until() -> None:
            async with self._changed:
                await self._changed.wait_for(predicate)

        await asyncio.wait_for(_until(), timeout)

    async def wait_for_chat(self, chat_id: int, predicate, timeout: float = 10.0) -> None:
        """Wait until `predicate()` holds, re-checked whenever the bot sends to this chat."""
        condition = self._chat_changed[chat_id]

        async def _until() -> None:
            async with condition:
                await condition.wait_for(predicate)

        await asyncio.wait_for(_until(), timeout)

    # --- failures on demand ---------------------------------------------------------------------

    def fail_next(self, method: str, status: int, times: int = 1, retry_after: int | None = None,
                  description: str | None = None) -> None:
        text = description or {429: f"Too Many Requests: retry after {retry_after}",
                               403: "Forbidden: bot was blocked by the user",
                               500: "Internal Server Error", 502: "Bad Gateway"}.get(status, "Error")
        self.failures[method].extend(Failure(status, text, retry_after) for _ in range(times))

    def slow_next(self, method: str, delay: float) -> None:
        self.failures[method].append(Failure(200, "", None, delay))

    def block(self, chat_id: int) -> None:
        self.blocked.add(chat_id)

    # --- internals ------------------------------------------------------------------------------

    def _user(self, chat_id: int, first_name: str) -> dict[str, Any]:
        return {"id": chat_id, "is_bot": False, "first_name": first_name, "language_code": "vi"}

    def _user_message(self, chat_id: int, first_name: str, **content: Any) -> dict[str, Any]:
        return {"message_id": next(self._message_ids), "date": int(time.time()),
                "from": self._user(chat_id, first_name),
                "chat": {"id": chat_id, "type": "private", "first_name": first_name}, **content}

    async def _inject(self, body: dict[str, Any]) -> int:
        update = {"update_id": next(self._update_ids), **body}
        self.injected_at[update["update_id"]] = time.perf_counter()
        await self._deliver(update)
        return update["update_id"]

    async def _deliver(self, update: dict[str, Any]) -> None:
        self.delivered.append(update)
        if self.webhook is None:
            async with self._changed:
                self.updates.append(update)
                self._changed.notify_all()
            return
        assert self._client is not None
        headers = {"X-Telegram-Bot-Api-Secret-Token": self.webhook.get("secret_token", "")}
        try:
            status = (await self._client.post(self.webhook["url"], json=update, headers=headers)).status_code
        except httpx.TransportError:  # the bot is down: Telegram keeps the update and tries again later
            status = 0
        self.webhook_responses.append(status)
        async with self._changed:
            if status == 200:
                self.confirmed.add(update["update_id"])
            self._changed.notify_all()

    async def _params(self, request: Request) -> dict[str, Any]:
        if request.headers.get("content-type", "").startswith("application/json"):
            return await request.json()
        params: dict[str, Any] = {}
        async with request.form() as form:  # closes uploaded files' temporary storage afterwards
            items = list(form.multi_items())
            for key, value in items:
                if hasattr(value, "filename"):
                    params[key] = {"filename": value.filename, "size": len(await value.read())}
        for key, value in items:
            if hasattr(value, "filename"):
                continue
            if key in JSON_FIELDS:
                params[key] = json.loads(value)
            elif key in INT_FIELDS:
                params[key] = int(value) if str(value).lstrip("-").isdigit() else value
            else:
                params[key] = value
        return params

    async def _endpoint(self, request: Request) -> JSONResponse:
        if request.path_params["token"] != self.token:
            return JSONResponse({"ok": False, "error_code": 401, "description": "Unauthorized"}, status_code=401)
        method = request.path_params["method"]
        params = await self._params(request)
        async with self._changed:
            self.calls.append((method, params))
            self._changed.notify_all()
        if self.send_delay and method in SENDING:
            # A slow network: the message takes effect only if the bot is still connected after the delay.
            # (Waiting on receive() is what notices a closed connection; uvicorn stops reading otherwise.)
            try:
                message = await asyncio.wait_for(request.receive(), self.send_delay)
            except TimeoutError:
                message = {}
            if message.get("type") == "http.disconnect":
                return JSONResponse({"ok": False, "error_code": 499, "description": "gone"}, status_code=499)
        pending = self.failures.get(method)
        if pending:
            failure = pending.pop(0)
            if failure.delay:
                # Done at once, answered late: the request took effect, but the bot may time out first.
                result = await self._answer(method, params)
                await asyncio.sleep(failure.delay)  # the slow answer itself; tests wait on its effect
                return result
            if failure.status != 200:
                body: dict[str, Any] = {"ok": False, "error_code": failure.status, "description": failure.description}
                if failure.retry_after is not None:
                    body["parameters"] = {"retry_after": failure.retry_after}
                return JSONResponse(body, status_code=failure.status)
        return await self._answer(method, params)

    async def _answer(self, method: str, params: dict[str, Any]) -> JSONResponse:
        handler = getattr(self, f"_api_{method}", None)
        if handler is None:
            return JSONResponse({"ok": False, "error_code": 404, "description": "Not Found"}, status_code=404)
        result = await handler(params)
        if isinstance(result, JSONResponse):
            return result
        return JSONResponse({"ok": True, "result": result})

    async def _api_getMe(self, params: dict[str, Any]) -> Any:
        return BOT_USER

    async def _api_getUpdates(self, params: dict[str, Any]) -> Any:
        offset = int(params.get("offset") or 0)
        timeout = float(params.get("timeout") or 0)
        async with self._changed:
            if offset:
                self.confirmed.update(u["update_id"] for u in self.updates if u["update_id"] < offset)
                self.updates = [u for u in self.updates if u["update_id"] >= offset]
                self._changed.notify_all()
            if not self.updates and timeout:
                with contextlib.suppress(TimeoutError):  # an idle long poll ends empty, as Telegram's does
                    await asyncio.wait_for(self._changed.wait_for(lambda: bool(self.updates)), timeout)
            return list(self.updates[: int(params.get("limit") or 100)])

    async def _api_setWebhook(self, params: dict[str, Any]) -> Any:
        self.webhook = {"url": params["url"], "secret_token": params.get("secret_token", "")}
        return True

    async def _api_deleteWebhook(self, params: dict[str, Any]) -> Any:
        self.webhook = None
        return True

    async def _api_getWebhookInfo(self, params: dict[str, Any]) -> Any:
        return {"url": self.webhook["url"] if self.webhook else "", "has_custom_certificate": False,
                "pending_update_count": len(self.updates)}

    async def _api_setMyCommands(self, params: dict[str, Any]) -> Any:
        return True

    async def _api_answerCallbackQuery(self, params: dict[str, Any]) -> Any:
        return True

    async def _blocked_answer(self, chat_id: int) -> JSONResponse | None:
        if chat_id in self.blocked:
            body = {"ok": False, "error_code": 403, "description": "Forbidden: bot was blocked by the user"}
            return JSONResponse(body, status_code=403)
        return None

    async def _record(self, method: str, params: dict[str, Any], **extra: Any) -> Any:
        chat_id = int(params["chat_id"])
        refused = await self._blocked_answer(chat_id)
        if refused is not None:
            return refused
        markup = params.get("reply_markup") or {}
        content = (params.get("text") or params.get("caption") or "", markup.get("inline_keyboard", []))
        if method == "editMessageText":
            current = self.messages.get((chat_id, int(params["message_id"])))
            if current is None:
                return self._bad_request("Bad Request: message to edit not found")
            if current == content:
                return self._bad_request(
                    "Bad Request: message is not modified: specified new message content and reply markup "
                    "are exactly the same as a current content and reply markup of the message")
        message_id = int(params["message_id"]) if method == "editMessageText" else next(self._message_ids)
        sent = Sent(method, chat_id, text=params.get("text") or params.get("caption") or "",
                    buttons=markup.get("inline_keyboard", []), at=time.perf_counter(), message_id=message_id,
                    **extra)
        message = {"message_id": message_id, "date": int(time.time()), "from": BOT_USER,
                   "chat": {"id": chat_id, "type": "private"}}
        if sent.text:
            message["text" if method == "sendMessage" else "caption"] = sent.text
        if markup:
            message["reply_markup"] = markup
        self.messages[(chat_id, message_id)] = content
        async with self._changed:
            self.sent[chat_id].append(sent)
            self._changed.notify_all()
        condition = self._chat_changed[chat_id]
        async with condition:
            condition.notify_all()
        return message

    @staticmethod
    def _bad_request(description: str) -> JSONResponse:
        return JSONResponse({"ok": False, "error_code": 400, "description": description}, status_code=400)

    async def _api_sendMessage(self, params: dict[str, Any]) -> Any:
        chat_id = int(params["chat_id"])
        refused = await self._blocked_answer(chat_id)
        if refused is not None:
            return refused
        retry_after = self.flood.admit(chat_id)
        if retry_after is not None:
            body = {"ok": False, "error_code": 429, "description": f"Too Many Requests: retry after {retry_after}",
                    "parameters": {"retry_after": retry_after}}
            return JSONResponse(body, status_code=429)
        return await self._record("sendMessage", params)

    async def _stats(self, request: Request) -> JSONResponse:
        """For a benchmark with the fake in another process: each message taken (chat, text, time on
        perf_counter) and the 429s answered."""
        taken = [[sent.chat_id, sent.text, sent.at] for sent in self.messages_taken()]
        return JSONResponse({"messages": taken, "too_many": self.too_many,
                             "calls": len(self.methods_called("sendMessage"))})

    async def _api_editMessageText(self, params: dict[str, Any]) -> Any:
        return await self._record("editMessageText", params)

    async def _api_sendDocument(self, params: dict[str, Any]) -> Any:
        result = await self._record("sendDocument", params, file_name=params["document"]["filename"])
        if isinstance(result, dict):
            result["document"] = {"file_id": "BQAC1", "file_unique_id": "AgAD1",
                                  "file_name": params["document"]["filename"]}
        return result

    async def _api_sendPhoto(self, params: dict[str, Any]) -> Any:
        result = await self._record("sendPhoto", params, file_name=params["photo"]["filename"])
        if isinstance(result, dict):
            result["photo"] = [{"file_id": "AgAC1", "file_unique_id": "AQAD1", "width": 320, "height": 240}]
        return result


class FakeUser:
    """A person in Telegram: sends, presses, and waits for the bot's answer."""

    def __init__(self, telegram: FakeTelegram, chat_id: int) -> None:
        self.telegram = telegram
        self.chat_id = chat_id
        self.seen = 0

    async def expect(self, part: str, timeout: float = 10.0) -> Sent:
        """Wait for a new message containing `part`; later messages of the same answer count too."""
        sent = self.telegram.sent[self.chat_id]
        await self.telegram.wait_for_chat(self.chat_id, lambda: any(part in s.text for s in sent[self.seen:]), timeout)
        index = next(i for i in range(self.seen, len(sent)) if part in sent[i].text)
        self.seen = index + 1
        return sent[index]

    async def says(self, text: str, expect: str) -> Sent:
        await self.telegram.user_sends(self.chat_id, text)
        return await self.expect(expect)

    async def presses(self, label: str, expect: str) -> Sent:
        await self.telegram.press(self.chat_id, label)
        return await self.expect(expect)

    async def presses_data(self, data: str, expect: str) -> Sent:
        offered = [s for s in self.telegram.sent[self.chat_id] if s.buttons][-1]
        assert data in [b["callback_data"] for row in offered.buttons for b in row], (data, offered.buttons)
        await self.telegram.user_presses(self.chat_id, data)
        return await self.expect(expect)
