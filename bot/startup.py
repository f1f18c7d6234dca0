"""Start-up failures told in one Vietnamese line: what is wrong and which setting or file to look at.

`hocvuso run`, `chat` and `db upgrade` catch what escapes their start and print `describe(exc, settings)`
instead of a traceback. A line never holds a secret: the token, the webhook secret and the database
password are redacted, and messages that could hold them are not quoted (PTB's InvalidToken quotes the
token; a database URL may hold a password, so only host, port, database and user are named).
"""

from __future__ import annotations

import errno
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import SQLAlchemyError
from telegram import error as tg

from bot.channels.zalo_client import ZaloError, ZaloNetworkError, ZaloUnauthorized
from bot.downloads import DownloadsError
from bot.logs import qualified_name, redact, secrets_of
from bot.settings import Settings

GENERIC = "Không khởi động được: lỗi không lường trước ({name})."
DEBUG_HINT = " Đặt HOCVUSO_DEBUG=1 để xem chi tiết."

TOKEN_REJECTED = ("Telegram từ chối token trong HOCVUSO_TELEGRAM_TOKEN: token sai hoặc đã bị thu hồi; "
                  "hãy lấy token đúng từ @BotFather.")
API_NOT_FOUND = ("Máy chủ Bot API tại {api} trả lời 404 (không có đường dẫn này): kiểm tra HOCVUSO_TELEGRAM_API_URL "
                 "(chỉ ghi địa chỉ máy chủ, như https://api.telegram.org) và HOCVUSO_TELEGRAM_TOKEN.")
API_UNREACHABLE = ("Không kết nối được máy chủ Bot API tại {api} (HOCVUSO_TELEGRAM_API_URL): "
                   "hãy kiểm tra địa chỉ, mạng và tường lửa.")
API_TIMEOUT = ("Máy chủ Bot API tại {api} không trả lời trong {timeout:g} giây "
               "(HOCVUSO_TELEGRAM_API_URL, HOCVUSO_TELEGRAM_TIMEOUT).")
API_CONFLICT = ("Telegram báo một tiến trình khác đang nhận tin bằng cùng token (HOCVUSO_TELEGRAM_TOKEN): "
                "hãy dừng bản đang chạy kia trước.")
API_BAD_REQUEST = "Bot API tại {api} từ chối một yêu cầu lúc khởi động ({setting}): {description}"
API_FAILED = "Máy chủ Bot API tại {api} báo lỗi lúc khởi động ({name}) (HOCVUSO_TELEGRAM_API_URL)."
ZALO_TOKEN_REJECTED = ("Zalo từ chối token trong HOCVUSO_ZALO_TOKEN: token sai hoặc đã bị thu hồi; "
                       "hãy lấy token đúng trong Zalo Bot Creator.")
ZALO_UNREACHABLE = ("Không kết nối được máy chủ Zalo Bot API tại {api} (HOCVUSO_ZALO_API_URL): "
                    "hãy kiểm tra địa chỉ, mạng và tường lửa.")
ZALO_FAILED = ("Máy chủ Zalo Bot API tại {api} báo lỗi lúc khởi động: {description} "
               "(HOCVUSO_ZALO_API_URL, HOCVUSO_WEBHOOK_URL).")

SQLITE_LINES = {
    "SQLITE_NOTADB": "Tệp cơ sở dữ liệu {file} hỏng hoặc không phải tệp SQLite (HOCVUSO_DATABASE_URL): "
                     "hãy khôi phục từ bản sao lưu hoặc chỉ tới tệp khác.",
    "SQLITE_CORRUPT": "Tệp cơ sở dữ liệu {file} bị hỏng (HOCVUSO_DATABASE_URL): hãy khôi phục từ bản sao lưu.",
    "SQLITE_READONLY": "Không ghi được vào tệp cơ sở dữ liệu {file} (HOCVUSO_DATABASE_URL): tệp hoặc thư mục "
                       "chứa nó chỉ cho đọc; hãy cho người chạy hocvuso quyền ghi.",
    "SQLITE_CANTOPEN": "Không mở được tệp cơ sở dữ liệu {file} (HOCVUSO_DATABASE_URL): thư mục không tồn tại "
                       "hoặc không có quyền ghi.",
    "SQLITE_PERM": "Không được phép ghi tệp cơ sở dữ liệu {file} (HOCVUSO_DATABASE_URL).",
    "SQLITE_BUSY": "Tệp cơ sở dữ liệu {file} đang bị một tiến trình khác giữ (HOCVUSO_DATABASE_URL): "
                   "có thể hocvuso đang chạy ở nơi khác.",
    "SQLITE_LOCKED": "Tệp cơ sở dữ liệu {file} đang bị khóa (HOCVUSO_DATABASE_URL).",
    "SQLITE_FULL": "Ổ đĩa chứa tệp cơ sở dữ liệu {file} đã đầy (HOCVUSO_DATABASE_URL).",
    "SQLITE_IOERR": "Lỗi đọc ghi ổ đĩa với tệp cơ sở dữ liệu {file} (HOCVUSO_DATABASE_URL).",
}
FOLDER_FAILED = "Không tạo được thư mục {folder} cho tệp cơ sở dữ liệu (HOCVUSO_DATABASE_URL): {reason}."

PG_PLACE = "PostgreSQL tại {host}:{port}"
POSTGRES_LINES = {
    "3D000": "{place} không có cơ sở dữ liệu “{database}” (HOCVUSO_DATABASE_URL): hãy tạo nó trước "
             "(createdb {database}).",
    "28P01": "{place} không cho người dùng “{user}” đăng nhập (HOCVUSO_DATABASE_URL): sai mật khẩu.",
    "28000": "{place} không cho người dùng “{user}” đăng nhập (HOCVUSO_DATABASE_URL): "
             "người dùng không tồn tại hoặc không được phép vào cơ sở dữ liệu “{database}”.",
    "42501": "Người dùng “{user}” không đủ quyền trên cơ sở dữ liệu “{database}” của {place} (HOCVUSO_DATABASE_URL).",
    "25006": "{place} chỉ cho đọc (HOCVUSO_DATABASE_URL): hãy trỏ tới máy chủ chính.",
    "53300": "{place} đã đủ số kết nối tối đa (HOCVUSO_DATABASE_URL): thử lại sau hoặc tăng max_connections.",
    "57P03": "{place} đang khởi động hoặc tắt, chưa nhận kết nối (HOCVUSO_DATABASE_URL): thử lại sau ít phút.",
}
PG_REFUSED = ("Không kết nối được {place} (HOCVUSO_DATABASE_URL): máy chủ không nhận kết nối; "
              "PostgreSQL đã chạy chưa, cổng có đúng không?")
PG_UNKNOWN_HOST = ("Không tìm thấy máy chủ PostgreSQL “{host}” (HOCVUSO_DATABASE_URL): "
                   "tên máy sai hoặc mạng chưa sẵn sàng.")
PG_TIMEOUT = "{place} không trả lời (HOCVUSO_DATABASE_URL)."
PG_TLS = "Không bắt tay TLS được với {place} (HOCVUSO_DATABASE_URL): kiểm tra các tùy chọn ssl trong địa chỉ."
DATABASE_FAILED = "Lỗi cơ sở dữ liệu lúc khởi động với {place} (HOCVUSO_DATABASE_URL): {name}."
CONTENT_UNREADABLE = "Không đọc được nội dung bài học ở {file} (HOCVUSO_CONTENT_DIR)."
LISTEN_LINES = {
    errno.EADDRINUSE: "Cổng {host}:{port} của webhook đang bị chương trình khác dùng "
                      "(HOCVUSO_LISTEN_HOST, HOCVUSO_LISTEN_PORT).",
    errno.EACCES: "Không được phép mở cổng {host}:{port} cho webhook (HOCVUSO_LISTEN_PORT): "
                  "cổng dưới 1024 cần quyền quản trị, hãy chọn cổng khác.",
    errno.EADDRNOTAVAIL: "Máy này không có địa chỉ {host} để mở webhook (HOCVUSO_LISTEN_HOST).",
}

# Code in these modules touches the database; an OSError raised through them is the database's.
DATABASE_MODULES = ("sqlalchemy", "asyncpg", "alembic", "storage.")


def describe(exc: BaseException, settings: Settings) -> str:
    """One line for any start-up failure: the explanation, or the exception's class name only."""
    line = explain(exc, settings)
    if line is None:
        line = GENERIC.format(name=qualified_name(exc)) + ("" if settings.debug else DEBUG_HINT)
    return line


def explain(exc: BaseException, settings: Settings) -> str | None:
    """One line naming the setting or file behind a known start-up failure; None for anything else."""
    errors = list(causes(exc))
    for explainer in (_telegram, _zalo, _downloads, _database, _listen, _content):
        line = explainer(errors, settings)
        if line is not None:
            return " ".join(redact(line, secrets_of(settings)).split())  # one line, whatever a description held
    return None


def causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception, its causes and contexts, SQLAlchemy's `orig` and the members of exception groups."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop(0)
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        orig = getattr(current, "orig", None)
        pending += [current.__cause__, current.__context__, orig if isinstance(orig, BaseException) else None]
        if isinstance(current, BaseExceptionGroup):
            pending += list(current.exceptions)


def first(errors: list[BaseException], kind: type[BaseException]) -> BaseException | None:
    return next((error for error in errors if isinstance(error, kind)), None)


# --- Telegram -------------------------------------------------------------------------------------

def public_url(url: str) -> str:
    """scheme://host:port/path without any user or password."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def _telegram(errors: list[BaseException], settings: Settings) -> str | None:
    error = first(errors, tg.TelegramError)
    if error is None:
        return None
    api = public_url(settings.telegram_api_url)
    rejected = [e for e in errors if isinstance(e, tg.InvalidToken)]
    if rejected:
        # PTB raises InvalidToken for 401 (a token Telegram does not know) and for 404 (a wrong path,
        # or a malformed token); the innermost one carries the server's answer, the outer one the token.
        answer = rejected[-1].message
        return API_NOT_FOUND.format(api=api) if answer.startswith("Not Found") or "(404)" in answer else TOKEN_REJECTED
    if first(errors, tg.Conflict) is not None:
        return API_CONFLICT
    if first(errors, tg.TimedOut) is not None or first(errors, httpx.TimeoutException) is not None:
        return API_TIMEOUT.format(api=api, timeout=settings.telegram_timeout)
    if first(errors, httpx.TransportError) is not None:
        return API_UNREACHABLE.format(api=api)
    bad_request = first(errors, tg.BadRequest)
    if isinstance(bad_request, tg.BadRequest):
        setting = "HOCVUSO_WEBHOOK_URL" if settings.webhook_url else "HOCVUSO_TELEGRAM_API_URL"
        return API_BAD_REQUEST.format(api=api, setting=setting, description=bad_request.message)
    return API_FAILED.format(api=api, name=type(error).__name__)


def _zalo(errors: list[BaseException], settings: Settings) -> str | None:
    error = first(errors, ZaloError)
    if not isinstance(error, ZaloError):
        return None
    api = public_url(settings.zalo_api_url)
    if isinstance(error, ZaloUnauthorized):
        return ZALO_TOKEN_REJECTED
    if isinstance(error, ZaloNetworkError):
        return ZALO_UNREACHABLE.format(api=api)
    return ZALO_FAILED.format(api=api, description=error.description)  # Zalo's own words, token redacted


def _downloads(errors: list[BaseException], settings: Settings) -> str | None:
    error = first(errors, DownloadsError)
    return str(error) if error is not None else None


# --- the database ---------------------------------------------------------------------------------

def _database(errors: list[BaseException], settings: Settings) -> str | None:
    url = make_url(settings.database_url)
    explainer = _sqlite if url.get_backend_name() == "sqlite" else _postgres
    line = explainer(errors, url)
    if line is not None:
        return line
    error = first(errors, SQLAlchemyError)
    if error is None:
        return None
    return DATABASE_FAILED.format(place=place(url), name=", ".join(sorted({qualified_name(e) for e in errors})))


def sqlite_file(url: URL) -> Path:
    return Path(url.database or "").absolute()


def place(url: URL) -> str:
    if url.get_backend_name() == "sqlite":
        return f"tệp {sqlite_file(url)}"
    return PG_PLACE.format(host=url.host or "localhost", port=url.port or 5432)


def _sqlite(errors: list[BaseException], url: URL) -> str | None:
    file = sqlite_file(url)
    for error in errors:
        name = getattr(error, "sqlite_errorname", None)
        if isinstance(name, str):
            # Extended codes (SQLITE_READONLY_DIRECTORY, SQLITE_IOERR_WRITE...) share their family's line.
            family = next((key for key in SQLITE_LINES if name == key or name.startswith(key + "_")), None)
            if family is not None:
                return SQLITE_LINES[family].format(file=file)
    folder_error = next((e for e in errors if isinstance(e, OSError) and raised_in(e, ("storage.db",))), None)
    if isinstance(folder_error, OSError):
        reason = "không có quyền ghi" if isinstance(folder_error, PermissionError) else "đường dẫn không dùng được"
        return FOLDER_FAILED.format(folder=file.parent, reason=reason)
    return None


def _postgres(errors: list[BaseException], url: URL) -> str | None:
    host, port = url.host or "localhost", url.port or 5432
    names = {"place": PG_PLACE.format(host=host, port=port), "host": host, "port": port,
             "database": url.database or url.username or "", "user": url.username or ""}
    for error in errors:
        code = getattr(error, "sqlstate", None)
        if isinstance(code, str) and code in POSTGRES_LINES:
            return POSTGRES_LINES[code].format(**names)
    network: list[BaseException] = [e for e in errors if isinstance(e, OSError) and raised_in(e, DATABASE_MODULES)]
    checks: list[tuple[type[BaseException], str]] = [
        (socket.gaierror, PG_UNKNOWN_HOST), (ConnectionRefusedError, PG_REFUSED),
        (TimeoutError, PG_TIMEOUT), (ssl.SSLError, PG_TLS), (OSError, PG_REFUSED),
    ]
    for kind, line in checks:
        if first(network, kind) is not None:
            return line.format(**names)
    return None


def raised_in(error: BaseException, modules: tuple[str, ...]) -> bool:
    """True if the exception came up through code of one of `modules`."""
    frame = error.__traceback__
    while frame is not None:
        if str(frame.tb_frame.f_globals.get("__name__", "")).startswith(modules):
            return True
        frame = frame.tb_next
    return False


# --- the webhook server ---------------------------------------------------------------------------

def _listen(errors: list[BaseException], settings: Settings) -> str | None:
    # uvicorn logs why it cannot listen and then calls sys.exit; the OSError is the SystemExit's context.
    for error in errors:
        if isinstance(error, OSError) and error.errno in LISTEN_LINES and raised_in(error, ("uvicorn",)):
            return LISTEN_LINES[error.errno].format(host=settings.listen_host, port=settings.listen_port)
    return None


# --- content --------------------------------------------------------------------------------------

def _content(errors: list[BaseException], _settings: Settings) -> str | None:
    error = next((e for e in errors if isinstance(e, OSError) and raised_in(e, ("content.",))), None)
    if isinstance(error, OSError):
        return CONTENT_UNREADABLE.format(file=error.filename or "thư mục nội dung")
    return None

