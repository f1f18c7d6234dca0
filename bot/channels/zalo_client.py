"""A small client of our own for the Zalo Bot Platform API, and the outbox's view of Zalo.

Calls are `POST {api_url}/bot{TOKEN}/{method}` with a JSON body; the answer is
`{ok, result, description, error_code}`, and `ok` is what counts: Zalo also answers HTTP 200 with
`ok: false`. `getUpdates` gives one update per call, has no offset, and an idle long poll answers 408.

What the client promises:
- *bounded retries*: 5xx answers and failed connections are tried again after 0.5, 1, 2 … s (at most
  8 s, `max_retries` times), then raised;
- *no duplicates*: a send whose request may have reached Zalo (a read timeout, a connection broken
  after the request went out, a 504 from a gateway) is never repeated: `ZaloNetworkError` or
  `ZaloServerError` with `maybe_delivered` is raised at once. Calls that change nothing for a person
  (getMe, getUpdates, the webhook calls) are repeated;
- *429 is not a tight loop*: Zalo answers 429 when the plan's quota is used up and publishes no wait,
  so the client waits a growing pause (5, 10, 20 … s, at most 15 min, reset by the next success),
  logs it, and raises `ZaloQuotaExceeded` with the pause to wait once it is longer than 30 s or the
  tries are used up;
- *the token is never written*: httpx only ever sees the URL `…/bot***/method` (and logs that one at
  INFO); the token is put in by the transport underneath, just before the request goes on the wire.
  No exception message, log line or repr holds it, and Zalo's own descriptions are redacted too.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from bot.outbox import Outcome, Result
from handlers.core import ZALO, Reply
from handlers.render import as_numbered, merge_replies, split_text

log = logging.getLogger(__name__)

CHANNEL = "zalo"
DEFAULT_API_URL = "https://bot-api.zaloplatforms.com"
REDACTED = "***"
TEXT_MIN, TEXT_MAX = 1, ZALO.text_limit  # sendMessage's text, and sendPhoto's caption
SECRET_MIN, SECRET_MAX = 8, 256  # setWebhook's secret_token
BACKOFF_FIRST = 0.5
BACKOFF_MAX = 8.0
QUOTA_FIRST_PAUSE = 5.0
QUOTA_MAX_PAUSE = 900.0
MAX_QUOTA_WAIT = 30.0  # longest pause waited inside a call; a longer one is the caller's to wait
DESCRIPTION_MAX = 300
UNAUTHORIZED_WAIT = 300.0  # the outbox's pause when Zalo refuses the token: the rows are kept, not failed
# Words in Zalo's description that mean the person cannot be reached (blocked the bot, left, deleted).
# Zalo publishes no error code for it, so a 403 without them is read as a token problem: marking
# everybody blocked because of a revoked token would do lasting harm, a paused channel does not.
UNREACHABLE_MARKERS = ("block", "chặn", "unreachable", "cannot be reached", "not reachable", "deactivated",
                       "not allowed to send", "user not found", "người dùng không tồn tại")
TOKEN_MARKERS = ("token", "unauthori", "access denied", "api key")
# Failures before the request left this machine: always safe to try again.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
Sleep = Callable[[float], Awaitable[None]]
_PLACEHOLDER = f"/bot{REDACTED}/".encode()


# --- errors -------------------------------------------------------------------------------------

class ZaloError(Exception):
    """Zalo did not do what was asked: its `error_code` and `description` (the token redacted)."""

    def __init__(self, method: str, error_code: int | None, description: str, *, http_status: int | None = None):
        super().__init__(method, error_code, description)
        self.method = method
        self.error_code = error_code
        self.description = description
        self.http_status = http_status

    def __str__(self) -> str:
        code = f"error_code {self.error_code}" if self.error_code is not None else "no error_code"
        return f"Zalo {self.method}: {self.description or 'no description'} ({code})"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.method!r}, {self.error_code!r}, {self.description!r})"


class ZaloUnauthorized(ZaloError):
    """The token was refused (401, or a 403 about the token): nothing works until it is fixed."""


class ZaloUnreachable(ZaloError):
    """The person cannot be reached: they blocked the bot or their account is gone."""


class ZaloQuotaExceeded(ZaloError):
    """429: the plan's quota is used up. `pause` is how long to wait before the next call."""

    def __init__(self, method: str, error_code: int | None, description: str, *, pause: float,
                 http_status: int | None = None):
        super().__init__(method, error_code, description, http_status=http_status)
        self.pause = pause

    def __str__(self) -> str:
        return f"{super().__str__()}; wait {self.pause:g} s"


class ZaloServerError(ZaloError):
    """A 5xx (or a 408 outside getUpdates): Zalo's trouble, worth another try later.

    `maybe_delivered`: a 504 from a gateway, after which Zalo may have acted on the request."""

    def __init__(self, method: str, error_code: int | None, description: str, *, http_status: int | None = None,
                 maybe_delivered: bool = False):
        super().__init__(method, error_code, description, http_status=http_status)
        self.maybe_delivered = maybe_delivered


class ZaloNetworkError(ZaloError):
    """No answer: the connection failed or timed out (the httpx error's class is the description).

    `maybe_delivered`: the request may have reached Zalo (a read timeout, a connection broken after
    sending), so a send must not be repeated."""

    def __init__(self, method: str, description: str, *, maybe_delivered: bool):
        super().__init__(method, None, description)
        self.maybe_delivered = maybe_delivered


# --- updates ------------------------------------------------------------------------------------

def _text(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return ""


def _infer_event(message: Mapping[str, Any]) -> str:
    if isinstance(message.get("text"), str):
        return "message.text.received"
    if message.get("photo") or message.get("photo_url"):
        return "message.image.received"
    if message.get("sticker"):
        return "message.sticker.received"
    return ""


@dataclass(frozen=True)
class ZaloUpdate:
    """One event from Zalo, read tolerantly: missing or mistyped fields are empty, never an error.

    Ids are strings (Zalo's are hexadecimal); `date` is Zalo's, in milliseconds. `raw` is the update
    as it came (without a `{ok, result}` wrapper), for storing."""

    event_name: str
    user_id: str
    display_name: str = field(repr=False)
    is_bot: bool
    chat_id: str
    chat_type: str
    text: str | None = field(repr=False)
    message_id: str
    date: int | None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: object) -> ZaloUpdate | None:
        """A bare update `{event_name, message}`; None when `data` is not an update at all."""
        if not isinstance(data, Mapping) or not ("event_name" in data or "message" in data):
            return None
        message = data.get("message")
        message = message if isinstance(message, Mapping) else {}
        sender = message.get("from")
        sender = sender if isinstance(sender, Mapping) else {}
        chat = message.get("chat")
        chat = chat if isinstance(chat, Mapping) else {}
        event_name = _text(data.get("event_name")) or _infer_event(message)
        user_id = _text(sender.get("id"))
        name = next((value for key in ("display_name", "name", "first_name")
                     if isinstance(value := sender.get(key), str) and value), "")
        date = message.get("date")
        if isinstance(date, str) and date.isdigit():
            date = int(date)
        text = message.get("text")
        return cls(
            event_name=event_name, user_id=user_id, display_name=name, is_bot=sender.get("is_bot") is True,
            chat_id=_text(chat.get("id")) or user_id, chat_type=_text(chat.get("chat_type")),
            text=text if isinstance(text, str) else None, message_id=_text(message.get("message_id")),
            date=date if isinstance(date, int) and not isinstance(date, bool) else None, raw=dict(data),
        )


def parse_updates(payload: object) -> list[ZaloUpdate]:
    """The updates in a getUpdates answer or a webhook body, whatever its shape: a bare update, or
    `{ok, result}` whose result is one update or a list of them. Anything else gives []."""
    if not isinstance(payload, Mapping):
        return []
    if "result" in payload or "ok" in payload:
        if payload.get("ok") is False:
            return []
        result = payload.get("result")
        items = result if isinstance(result, list) else [result]
    else:
        items = [payload]
    return [update for item in items if (update := ZaloUpdate.from_dict(item)) is not None]


# --- the client ---------------------------------------------------------------------------------

class _TokenTransport(httpx.AsyncBaseTransport):
    """Puts the token into the path just before the request is sent.

    httpx builds, logs and attaches to its exceptions the request with `/bot***/`; only the copy
    handed to the connection pool below carries the token."""

    def __init__(self, inner: httpx.AsyncBaseTransport, token: str) -> None:
        self._inner = inner
        self._real = f"/bot{quote(token, safe=':')}/".encode()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url.copy_with(raw_path=request.url.raw_path.replace(_PLACEHOLDER, self._real, 1))
        real = httpx.Request(request.method, url, headers=request.headers, stream=request.stream,
                             extensions=request.extensions)
        return await self._inner.handle_async_request(real)

    async def aclose(self) -> None:
        await self._inner.aclose()


class ZaloClient:
    """The Zalo Bot API over httpx. Use as `async with ZaloClient(token) as zalo:` or call `aclose()`."""

    def __init__(self, token: str, api_url: str = DEFAULT_API_URL, timeout: float = 10, max_retries: int = 3,
                 sleep: Sleep = asyncio.sleep) -> None:
        if not token or not token.strip():
            raise ValueError("the Zalo token is empty")
        if max_retries < 0 or timeout <= 0:
            raise ValueError("max_retries must be >= 0 and timeout > 0")
        self._token = token
        self.api_url = api_url.rstrip("/")
        self.timeout = timeout
        self.max_retries = max_retries
        self.sleep = sleep  # injected: tests record the pauses instead of waiting them
        self.quota_strikes = 0  # 429s in a row; the next success resets it
        self._http = httpx.AsyncClient(
            transport=_TokenTransport(httpx.AsyncHTTPTransport(), token), timeout=httpx.Timeout(timeout),
            headers={"Content-Type": "application/json"},
        )

    def __repr__(self) -> str:
        return f"ZaloClient(api_url={self.api_url!r}, token={REDACTED})"

    async def __aenter__(self) -> ZaloClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # --- the methods ----------------------------------------------------------------------------

    async def get_me(self) -> dict[str, Any]:
        """The bot's own account (`id`, `account_name`, …); checks the token."""
        return _as_dict(await self._call("getMe", {}, repeatable=True))

    async def get_updates(self, timeout: float = 30) -> list[ZaloUpdate]:  # noqa: ASYNC109 (Zalo's own parameter)
        """Long-polls for at most `timeout` seconds: [] when nothing came (Zalo's 408), else the update(s)."""
        if timeout < 0:
            raise ValueError("timeout must be >= 0")
        answer = await self._call("getUpdates", {"timeout": str(int(timeout))}, repeatable=True,
                                  read_timeout=timeout + self.timeout)
        return [] if answer is None else parse_updates({"ok": True, "result": answer})

    async def set_webhook(self, url: str, secret_token: str) -> dict[str, Any]:
        """Zalo posts updates to `url` with `secret_token` in `X-Bot-Api-Secret-Token` (8–256 characters)."""
        if not url:
            raise ValueError("the webhook url is empty")
        if not SECRET_MIN <= len(secret_token) <= SECRET_MAX:
            raise ValueError(f"secret_token must be {SECRET_MIN}-{SECRET_MAX} characters (got {len(secret_token)})")
        return _as_dict(await self._call("setWebhook", {"url": url, "secret_token": secret_token}, repeatable=True))

    async def delete_webhook(self) -> dict[str, Any]:
        return _as_dict(await self._call("deleteWebhook", {}, repeatable=True))

    async def get_webhook_info(self) -> dict[str, Any]:
        """`{url, updated_at}`; an empty url when polling."""
        return _as_dict(await self._call("getWebhookInfo", {}, repeatable=True))

    async def send_message(self, chat_id: str, text: str, *, retry: bool = True) -> dict[str, Any]:
        """Sends `text` (1–2,000 characters); returns `{message_id, date}`. `retry=False`: one try only."""
        _check_text("text", text)
        payload = {"chat_id": _chat(chat_id), "text": text}
        return _as_dict(await self._call("sendMessage", payload, repeatable=False, retry=retry))

    async def send_photo(self, chat_id: str, photo_url: str, caption: str | None = None, *,
                         retry: bool = True) -> dict[str, Any]:
        """Sends the image at `photo_url` (Zalo fetches it; bytes cannot be uploaded)."""
        if not photo_url:
            raise ValueError("photo_url is empty")
        payload = {"chat_id": _chat(chat_id), "photo": photo_url}
        if caption:
            _check_text("caption", caption)
            payload["caption"] = caption
        return _as_dict(await self._call("sendPhoto", payload, repeatable=False, retry=retry))

    async def send_sticker(self, chat_id: str, sticker: str, *, retry: bool = True) -> dict[str, Any]:
        """Sends a sticker by its Zalo id (from stickers.zaloapp.com)."""
        if not sticker:
            raise ValueError("sticker is empty")
        payload = {"chat_id": _chat(chat_id), "sticker": sticker}
        return _as_dict(await self._call("sendSticker", payload, repeatable=False, retry=retry))

    async def send_chat_action(self, chat_id: str, action: str = "typing") -> None:
        """Shows "typing…" for a moment. Repeating it does no harm, so it is retried like a read."""
        if action not in ("typing", "upload_photo"):
            raise ValueError(f"unknown chat action {action!r}")
        await self._call("sendChatAction", {"chat_id": _chat(chat_id), "action": action}, repeatable=True)

    # --- one call -------------------------------------------------------------------------------

    def quota_pause(self) -> float:
        """The pause after the current run of 429s: 5, 10, 20 … s, at most 15 minutes."""
        strikes = max(1, self.quota_strikes)
        return min(QUOTA_MAX_PAUSE, QUOTA_FIRST_PAUSE * 2.0 ** (strikes - 1))

    async def _call(self, method: str, payload: dict[str, Any], *, repeatable: bool, retry: bool = True,
                    read_timeout: float | None = None) -> Any:
        """One API method with the retries above; returns `result` (None for an idle getUpdates)."""
        attempts = self.max_retries + 1 if retry else 1
        backoff = BACKOFF_FIRST
        for attempt in range(1, attempts + 1):
            last = attempt == attempts
            try:
                return await self._once(method, payload, read_timeout)
            except ZaloQuotaExceeded as error:
                if last or error.pause > MAX_QUOTA_WAIT:
                    log.warning("zalo %s: quota used up (429, %d in a row); the caller waits %g s",
                                method, self.quota_strikes, error.pause)
                    raise
                log.warning("zalo %s: quota used up (429, %d in a row); waiting %g s before try %d of %d",
                            method, self.quota_strikes, error.pause, attempt + 1, attempts)
                await self.sleep(error.pause)
            except (ZaloServerError, ZaloNetworkError) as error:
                if error.maybe_delivered and not repeatable:
                    log.warning("zalo %s: no answer after the request went out (%s); not sent again, "
                                "to avoid a duplicate", method, error.description)
                    raise
                if last:
                    log.warning("zalo %s failed (%s); giving up after %d tries", method, error.description, attempts)
                    raise
                log.info("zalo %s failed (%s); try %d of %d in %g s", method, error.description, attempt + 1,
                         attempts, backoff)
                await self.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _once(self, method: str, payload: dict[str, Any], read_timeout: float | None) -> Any:
        timeout = httpx.Timeout(self.timeout, read=read_timeout) if read_timeout is not None else None
        url = f"{self.api_url}/bot{REDACTED}/{method}"
        try:
            if timeout is None:
                response = await self._http.post(url, json=payload)
            else:
                response = await self._http.post(url, json=payload, timeout=timeout)
        except NOT_SENT as error:
            raise ZaloNetworkError(method, type(error).__name__, maybe_delivered=False) from None
        except httpx.TransportError as error:  # timed out or broken after the request went out
            raise ZaloNetworkError(method, type(error).__name__, maybe_delivered=True) from None
        return self._read(method, response)

    def _read(self, method: str, response: httpx.Response) -> Any:
        status = response.status_code
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            body = {}
        if response.is_success and (body.get("ok") is True or (method == "getUpdates" and body and "ok" not in body)):
            self.quota_strikes = 0
            return body.get("result") if "ok" in body else body  # getUpdates may answer a bare update
        code = body.get("error_code")
        code = code if isinstance(code, int) and not isinstance(code, bool) else None
        codes = {status, code}
        description = self._redact(str(body.get("description") or response.reason_phrase or f"HTTP {status}"))
        lowered = description.lower()
        if method == "getUpdates" and 408 in codes:
            return None  # an idle long poll: nothing new
        if 429 in codes:
            self.quota_strikes += 1
            raise ZaloQuotaExceeded(method, code, description, pause=self.quota_pause(), http_status=status)
        unreachable = any(marker in lowered for marker in UNREACHABLE_MARKERS)
        if 401 in codes or (403 in codes and (not unreachable or any(m in lowered for m in TOKEN_MARKERS))):
            raise ZaloUnauthorized(method, code, description, http_status=status)
        if unreachable:
            raise ZaloUnreachable(method, code, description, http_status=status)
        if status >= 500 or (code is not None and code >= 500) or 408 in codes:
            raise ZaloServerError(method, code, description, http_status=status, maybe_delivered=504 in codes)
        if response.is_success and not body:
            description = f"unreadable answer (HTTP {status})"
        raise ZaloError(method, code, description, http_status=status)

    def _redact(self, text: str) -> str:
        for secret in (self._token, quote(self._token, safe=":")):
            text = text.replace(secret, REDACTED)
        return text[:DESCRIPTION_MAX]


def _as_dict(result: Any) -> dict[str, Any]:
    return dict(result) if isinstance(result, Mapping) else {}


def _chat(chat_id: str) -> str:
    chat = str(chat_id)
    if not chat:
        raise ValueError("chat_id is empty")
    return chat


def _check_text(name: str, text: str) -> None:
    if not isinstance(text, str) or not TEXT_MIN <= len(text) <= TEXT_MAX:
        size = len(text) if isinstance(text, str) else type(text).__name__
        raise ValueError(f"{name} must be {TEXT_MIN}-{TEXT_MAX} characters (got {size})")


# --- the outbox's view of Zalo ------------------------------------------------------------------

def message_parts(replies: list[Reply]) -> list[str]:
    """What `replies` become on Zalo: plain replies folded into the next, buttons as a numbered list,
    each text split at 2,000 characters on paragraph boundaries; empty parts dropped."""
    parts: list[str] = []
    for reply in merge_replies(replies, ZALO.text_limit):
        parts.extend(part for part in split_text(as_numbered(reply), ZALO.text_limit) if part.strip())
    return parts


class ZaloOutbox:
    """The outbox's view of Zalo (bot/outbox.py): one try at each part of a message; what went wrong is
    told to the sender, which decides when to try again. The reason never holds the message's text."""

    channel = CHANNEL

    def __init__(self, client: ZaloClient,
                 remember_menu: Callable[[str, list[Reply]], Awaitable[None]] | None = None) -> None:
        self.client = client
        # Zalo has no buttons: a message with choices must make "1" mean its first choice in that chat.
        self.remember_menu = remember_menu

    async def send(self, external_id: str, replies: list[Reply]) -> Result:
        result = await self._send(external_id, replies)
        if result.outcome is Outcome.SENT and any(reply.buttons for reply in replies) and self.remember_menu:
            try:
                await self.remember_menu(external_id, replies)
            except Exception:  # the message went out; typing its number shows the current step instead
                log.warning("zalo: the choices of a message sent were not stored for its chat")
        return result

    async def _send(self, external_id: str, replies: list[Reply]) -> Result:
        try:
            for part in message_parts(replies):
                await self.client.send_message(external_id, part, retry=False)
        except ZaloQuotaExceeded as error:
            return Result(Outcome.WAIT, error.pause, f"Zalo báo hết hạn mức (429): chờ {error.pause:g} giây")
        except ZaloUnauthorized as error:  # nothing can be sent: keep the rows, do not spend their tries
            return Result(Outcome.WAIT, UNAUTHORIZED_WAIT,
                          f"Zalo từ chối token ({error.error_code}): kiểm tra HOCVUSO_ZALO_TOKEN")
        except ZaloUnreachable:
            return Result(Outcome.BLOCKED, reason="người nhận đã chặn bot hoặc không liên lạc được trên Zalo")
        except (ZaloServerError, ZaloNetworkError) as error:
            if error.maybe_delivered:
                return Result(Outcome.SENT, reason="hết thời gian chờ sau khi gửi: coi như đã gửi, để không gửi trùng")
            return Result(Outcome.RETRY, reason=f"lỗi mạng hoặc máy chủ Zalo ({error.description})")
        except ZaloError as error:  # Zalo's own description of the fault, never the message's text
            return Result(Outcome.REFUSED, reason=f"Zalo từ chối: {error.description} ({error.error_code})")
        except ValueError:
            return Result(Outcome.REFUSED, reason="tin nhắn không hợp lệ cho Zalo")
        return Result(Outcome.SENT)
