"""One ASGI app for every channel's webhook, plus /healthz, the certificate page /xacthuc/{code} and the
download links /tai/{token} (bot/downloads.py)."""

from __future__ import annotations

import hmac
import html
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from bot.channels.telegram import TelegramChannel
from bot.channels.zalo import ZaloChannel
from bot.downloads import MAX_TOKEN_LENGTH, Downloads, content_disposition, content_type
from handlers.certificates import genuine_fields
from storage import certificates
from storage.certificates import Issued
from storage.db import Database

log = logging.getLogger(__name__)

MAX_BODY = 1_000_000  # an update is a few kilobytes; anything this large is not from Telegram
TELEGRAM_SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
ZALO_SECRET_HEADER = "X-Bot-Api-Secret-Token"


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


# The page shows a person's name: never cached, never indexed, never sent on as a referrer.
PAGE_HEADERS = {"Cache-Control": "no-store", "X-Robots-Tag": "noindex, nofollow", "Referrer-Policy": "no-referrer",
                "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'"}
PAGE = """<!doctype html>
<html lang="vi"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex, nofollow"><title>Xác thực giấy chứng nhận</title>
<style>body{{font-family:sans-serif;max-width:36em;margin:2em auto;padding:0 1em;line-height:1.5}}
h1{{font-size:1.3em}} dt{{font-weight:bold}} dd{{margin:0 0 .6em 0}}</style></head>
<body><h1>{title}</h1>{body}</body></html>
"""
FOUND = "✅ Giấy chứng nhận hợp lệ"
FOUND_NOTE = "Giấy chứng nhận này do trợ lý Bình dân học vụ số cấp và còn hiệu lực."
NOT_FOUND = "Không tìm thấy giấy chứng nhận"
NOT_FOUND_NOTE = ("Không có giấy chứng nhận nào mang mã này: mã sai, giấy không do trợ lý Bình dân học vụ số cấp, "
                  "hoặc không còn hiệu lực.")


def certificate_page(issued: Issued | None) -> str:
    """The verification page: what the certificate says, or that there is none; everything escaped."""
    if issued is None:
        return PAGE.format(title=html.escape(NOT_FOUND), body=f"<p>{html.escape(NOT_FOUND_NOTE)}</p>")
    rows = "".join(f"<dt>{html.escape(label)}</dt><dd>{html.escape(value)}</dd>"
                   for label, value in genuine_fields(issued))
    return PAGE.format(title=html.escape(FOUND), body=f"<p>{html.escape(FOUND_NOTE)}</p><dl>{rows}</dl>")


# A downloaded file holds people's figures or a name: never cached, indexed or sent on as a referrer.
DOWNLOAD_HEADERS = {"Cache-Control": "no-store", "X-Robots-Tag": "noindex, nofollow", "Referrer-Policy": "no-referrer",
                    "X-Content-Type-Options": "nosniff"}
LINK_GONE = ("Đường dẫn tải tệp không hợp lệ hoặc đã hết hạn. "
             "Hãy xin lại tệp trong cuộc trò chuyện với trợ lý.")
LINK_GONE_PAGE = f"""<!doctype html>
<html lang="vi"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex, nofollow"><title>Không tải được tệp</title>
<style>body{{font-family:sans-serif;max-width:36em;margin:2em auto;padding:0 1em;line-height:1.5}}</style></head>
<body><p>{html.escape(LINK_GONE)}</p></body></html>
"""


async def read_json(request: Request) -> object | Response:
    """The body as JSON, or the response that refuses it (413 too large, 400 not JSON)."""
    body = await read_at_most(request, MAX_BODY)
    if body is None:
        return Response(status_code=413)
    try:
        return json.loads(body)
    except (ValueError, RecursionError):  # not JSON, or nested deeper than the parser goes
        return Response(status_code=400)


async def receive_update(
    request: Request, header: str, secret: str, accept: Callable[[dict[str, Any]], Awaitable[int]],
    well_formed: Callable[[dict[str, Any]], bool] = lambda _update: True,
) -> Response:
    """One webhook call: 403 without the secret (checked before the body is read, so a caller without
    it gets nothing processed), 413 or 400 for a body that is not one update, else the status `accept`
    gives: 200 only once the update is stored, so the messenger sends it again after anything else."""
    if not secret_matches(request.headers.get(header), secret):
        return Response(status_code=403)
    data = await read_json(request)
    if isinstance(data, Response):
        return data
    if not isinstance(data, dict) or not well_formed(data):
        return Response(status_code=400)
    return Response(status_code=await accept(data))


def build_web_app(database: Database, telegram: TelegramChannel | None, telegram_secret: str | None, *,
                  zalo: ZaloChannel | None = None, zalo_secret: str | None = None,
                  downloads: Downloads | None = None) -> Starlette:
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
        return await receive_update(request, TELEGRAM_SECRET_HEADER, telegram_secret, telegram.accept_webhook,
                                    lambda update: isinstance(update.get("update_id"), int))

    async def zalo_webhook(request: Request) -> Response:
        if zalo is None or zalo_secret is None:
            return Response(status_code=404)
        return await receive_update(request, ZALO_SECRET_HEADER, zalo_secret, zalo.accept_webhook)

    async def verify_certificate(request: Request) -> Response:
        # Anyone with the paper may look; the code's 24^12 possibilities are what stop guessing here.
        # Neither the code nor the name is logged.
        raw = str(request.path_params.get("code", ""))
        issued = None
        if len(raw) <= 64 and certificates.normalise_code(raw) is not None:  # anything else is not looked up
            async with database.session() as session:
                issued = await certificates.verify(session, raw)
        return HTMLResponse(certificate_page(issued), status_code=200 if issued else 404, headers=PAGE_HEADERS)

    async def download(request: Request) -> Response:
        # An altered, expired or unknown link gets one answer, so guessing teaches nothing. Never logged:
        # the token is the only key to the file.
        token = str(request.path_params.get("token", ""))
        found = None
        if downloads is not None and len(token) <= MAX_TOKEN_LENGTH:  # anything longer is not looked at
            try:
                found = await downloads.open(token)
            except OSError:
                log.error("download: a stored file could not be read (HOCVUSO_DOWNLOADS_DIR)")
                return Response(status_code=500, headers=PAGE_HEADERS)
        if found is None:
            return HTMLResponse(LINK_GONE_PAGE, status_code=404, headers=PAGE_HEADERS)
        name, data = found
        return Response(data, media_type=content_type(name),
                        headers={**DOWNLOAD_HEADERS, "Content-Disposition": content_disposition(name)})

    return Starlette(routes=[
        Route("/healthz", healthz, methods=["GET"]),
        Route("/xacthuc/{code}", verify_certificate, methods=["GET"]),
        Route("/tai/{token}", download, methods=["GET"]),
        Route("/webhook/telegram", telegram_webhook, methods=["POST"]),
        Route("/webhook/zalo", zalo_webhook, methods=["POST"]),
    ])
