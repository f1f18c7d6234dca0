"""Logging set-up that keeps secrets and personal data out of the logs.

Two layers: every configured secret (bot token, webhook secret, database password) is replaced in
everything written, and exceptions are written with their traceback frames and class names but
without the messages of those that may carry data: a database error holds the statement's values or
a row ("Key (code)=(482915) already exists"), a ValueError may quote what a person typed.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterable
from types import TracebackType
from typing import TYPE_CHECKING

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

if TYPE_CHECKING:
    from bot.settings import Settings

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None] | tuple[None, None, None]

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
REDACTED = "***"
HIDDEN = "(nội dung lỗi đã ẩn)"
# Loggers that say too much at INFO: httpx logs every request URL, and a Bot API URL holds the token.
NOISY = ("httpx", "httpcore", "alembic.runtime.migration")

# Messages of these say what failed on the network or the disk (connection refused, timed out, the
# Bot API's own description) and never carry what a person typed or a stored row; any token in them
# is redacted with the other secrets.
SAFE_MESSAGE_MODULES = ("telegram.error", "httpx", "httpcore", "bot.channels.zalo_client")
SAFE_MESSAGE_TYPES: tuple[type[BaseException], ...] = (OSError,)  # TimeoutError and ConnectionError too
# Attributes of driver errors that name the failure or the schema object, never a value.
DETAIL_ATTRIBUTES = (
    ("sqlstate", "SQLSTATE"), ("sqlite_errorname", "SQLite"), ("table_name", "bảng"),
    ("column_name", "cột"), ("constraint_name", "ràng buộc"),
)


def redact(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return text


def database_password(url: str) -> str | None:
    try:
        return make_url(url).password  # type: ignore[return-value]
    except ArgumentError:
        return None


def secrets_of(settings: Settings) -> list[str]:
    """Every value in the settings that must never be written anywhere (the download links' key too)."""
    secrets = [secret.get_secret_value() for secret in (settings.telegram_token, settings.webhook_secret,
                                                        settings.zalo_token, settings.zalo_webhook_secret,
                                                        settings.link_secret) if secret]
    password = database_password(settings.database_url)
    return [*secrets, password] if password else secrets


class RedactSecrets(logging.Filter):
    """Replaces every configured secret (bot tokens, webhook secrets) in a record before it is written."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = [secret for secret in secrets if secret]

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            record.msg, record.args = redact(record.getMessage(), self.secrets), None
        return True


def safe_message(error: BaseException) -> str:
    """What may be written after an exception's class name."""
    if isinstance(error, SAFE_MESSAGE_TYPES) or type(error).__module__.startswith(SAFE_MESSAGE_MODULES):
        return str(error)
    details = [f"{label} {value}" for attribute, label in DETAIL_ATTRIBUTES
               if isinstance(value := getattr(error, attribute, None), str) and value]
    orig = getattr(error, "orig", None)  # SQLAlchemy's wrapper: the driver's own error class
    if isinstance(orig, BaseException):
        details.append(f"lỗi gốc {qualified_name(orig)}")
    if isinstance(error, BaseExceptionGroup):
        details.append("gồm " + ", ".join(qualified_name(inner) for inner in error.exceptions))
    return f"{HIDDEN} [{'; '.join(details)}]" if details else HIDDEN


def qualified_name(error: BaseException) -> str:
    kind = type(error)
    return kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"


def format_exception_safely(error: BaseException) -> str:
    """Like traceback.format_exception, with each message replaced by `safe_message` (notes dropped)."""
    lines: list[str] = []
    seen: set[int] = set()

    def render(current: BaseException) -> None:
        seen.add(id(current))
        cause, context = current.__cause__, current.__context__
        if cause is not None and id(cause) not in seen:
            render(cause)
            lines.append("\nThe above exception was the direct cause of the following exception:\n\n")
        elif context is not None and not current.__suppress_context__ and id(context) not in seen:
            render(context)
            lines.append("\nDuring handling of the above exception, another exception occurred:\n\n")
        if current.__traceback__ is not None:
            lines.append("Traceback (most recent call last):\n")
            lines.extend(traceback.format_tb(current.__traceback__))
        lines.append(f"{qualified_name(current)}: {safe_message(current)}\n")

    render(error)
    return "".join(lines).rstrip("\n")


class SafeFormatter(logging.Formatter):
    """Writes records with secrets redacted and exceptions without messages that may carry data."""

    def __init__(self, secrets: Iterable[str], fmt: str = FORMAT) -> None:
        super().__init__(fmt)
        self.secrets = [secret for secret in secrets if secret]

    def format(self, record: logging.LogRecord) -> str:
        # Built here rather than by logging.Formatter.format, which would reuse record.exc_text: another
        # handler's formatter may have cached the full exception text, messages included.
        record.message = record.getMessage()
        if self.usesTime():
            record.asctime = self.formatTime(record, self.datefmt)
        text = self.formatMessage(record)
        if record.exc_info and record.exc_info[1] is not None:
            text += "\n" + format_exception_safely(record.exc_info[1])
        if record.stack_info:
            text += "\n" + self.formatStack(record.stack_info)
        return redact(text, self.secrets)

    def formatException(self, ei: ExcInfo) -> str:
        return redact(format_exception_safely(ei[1]), self.secrets) if ei[1] is not None else ""


# A start that logs this much is not failing quietly: write what it said rather than hold more.
HOLD_LIMIT = 1000


class StartupHold(logging.Handler):
    """Holds records while a command starts, in front of the real handler.

    A start that fails is told in one line (bot/startup.py), so what the libraries logged on the way
    (PTB logs the error page of a wrong Bot API URL, SQLAlchemy a failed reset) and while closing is
    dropped with it, or written first under HOCVUSO_DEBUG; a start that succeeds writes it all, in order.
    """

    def __init__(self, target: logging.Handler) -> None:
        super().__init__()
        self.target = target
        self.held: list[logging.LogRecord] = []
        self.holding = True
        self.dropping = False

    def emit(self, record: logging.LogRecord) -> None:
        if self.dropping:
            return
        if not self.holding:
            self.target.handle(record)
            return
        self.held.append(record)
        if len(self.held) >= HOLD_LIMIT:
            self.write_held()

    def write_held(self) -> None:
        # Not `release`: logging.Handler's lock already has a method of that name.
        self.holding = False
        held, self.held = self.held, []
        for record in held:
            self.target.handle(record)

    def drop_held(self) -> None:
        # The command is ending with its one line: what its teardown logs (a task's exception found
        # by the garbage collector, a pool closing) is dropped too.
        self.holding, self.dropping = False, True
        self.held = []


def _hold() -> StartupHold | None:
    return next((h for h in logging.getLogger().handlers if isinstance(h, StartupHold)), None)


def release_startup_logs() -> None:
    """The start succeeded: write what was held, and from now on write at once."""
    if (hold := _hold()) is not None:
        hold.write_held()


def discard_startup_logs() -> None:
    """The start failed and is told in one line: drop what was held."""
    if (hold := _hold()) is not None:
        hold.drop_held()


def configure_logging(level: int, secrets: Iterable[str] = (), *, hold: bool = False) -> None:
    """Root logging to stderr at `level`, with secrets redacted and exception messages held back.

    httpx logs every request URL at INFO, and a Bot API URL contains the token, so it is held at
    WARNING whatever the level; the filter and the formatter are the second line of defence. With
    `hold`, records wait in a StartupHold until the start is released or discarded.
    """
    secrets = [secret for secret in secrets if secret]
    handler = logging.StreamHandler()
    handler.setFormatter(SafeFormatter(secrets))
    handler.addFilter(RedactSecrets(secrets))
    root = logging.getLogger()
    root.handlers[:] = [StartupHold(handler) if hold else handler]
    root.setLevel(level)
    for noisy in NOISY:
        logging.getLogger(noisy).setLevel(logging.WARNING)


def configure_from_settings(settings: Settings, level: int) -> None:
    """The logging of every command that opens the database or a channel (run, chat, db upgrade):
    secrets from the settings redacted, and held until the command has started."""
    configure_logging(level, secrets_of(settings), hold=True)
