"""One ASGI app for every channel's webhook, plus /healthz."""

from __future__ import annotations

import hmac
import json
import logging

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.channels.telegram import TelegramChannel
from storage.db import Database

log = logging.getLogger(__name__)

MAX_BODY = 1_000_000  # an update is a few kilobytes; anything this large is not from Telegram
TELEGRAM_SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


def secret_matches(given: str | None, expected: str) -> bool:
    """Constant-time comparison, so the secret cannot be guessed from response times."""
    return hmac.compare_digest((given or "").encode(), expected.encode())


async def read_at_most(request: Request, limit: int) -> bytes | None:
    """The request body, or None once it passes `limit` bytes (never read whole into memory)."""
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


def build_web_app(database: Database, telegram: TelegramChannel | None, telegram_secret: str | None) -> Starlette:
    async def healthz(_request: Request) -> Response:
        try:
            await database.ping()
        except Exception:
            log.exception("health check: database unreachable")
            return JSONResponse({"status": "error", "database": "unreachable"}, status_code=503)
        return JSONResponse({"status": "ok", "database": "ok"})

    async def telegram_webhook(request: Request) -> Response:
        if telegram is None or telegram_secret is None:
            return Response(status_code=404)
        if not secret_matches(request.headers.get(TELEGRAM_SECRET_HEADER), telegram_secret):
            return Response(status_code=403)
        body = await read_at_most(request, MAX_BODY)
        if body is None:
            return Response(status_code=413)
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):  # not JSON, or nested deeper than the parser goes
            return Response(status_code=400)
        if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
            return Response(status_code=400)
        # 200 only once the update is stored in the inbox: Telegram sends it again after anything else.
        return Response(status_code=await telegram.accept_webhook(data))

    return Starlette(routes=[
        Route("/healthz", healthz, methods=["GET"]),
        Route("/webhook/telegram", telegram_webhook, methods=["POST"]),
    ])
