"""Settings read from the environment (prefix HOCVUSO_) and a `.env` file."""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import annotated_types
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from storage.models import Organisation, Village, column_length

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///var/hocvuso.db"

# Thôn/xóm of xã Cát Thành after the 2025 merger are set by the operator; these defaults are
# placeholders in the commune's own naming pattern and are meant to be replaced in `.env`.
DEFAULT_VILLAGES = [
    "Thôn 1", "Thôn 2", "Thôn 3", "Thôn 4", "Thôn 5", "Thôn 6",
    "Thôn 7", "Thôn 8", "Thôn 9", "Thôn 10",
]

# The units the commune's plan addresses (ke-hoach-cat-thanh, section VI).
DEFAULT_ORGANISATIONS = [
    "Ủy ban MTTQ Việt Nam xã",
    "Hội Liên hiệp Phụ nữ xã",
    "Đoàn Thanh niên xã",
    "Hội Nông dân xã",
    "Hội Cựu chiến binh xã",
    "Hội Người cao tuổi xã",
    "Hội Chữ thập đỏ xã",
    "Công đoàn cơ sở",
    "Trường Mầm non",
    "Trường Tiểu học",
    "Trường THCS",
    "Phòng Văn hóa - Xã hội",
    "Phòng Kinh tế",
    "Doanh nghiệp trên địa bàn xã",
]


# A name longer than its column is refused by PostgreSQL at the first start (SQLite would keep it).
VILLAGE_NAME_MAX = column_length(Village, "name")
ORGANISATION_NAME_MAX = column_length(Organisation, "name")
COMMUNE_NAME_MAX = 100
# Telegram tokens are "<bot id>:<secret>"; anything else would only be refused by the Bot API later.
TELEGRAM_TOKEN = re.compile(r"[0-9]{1,20}:[A-Za-z0-9_-]{1,200}", re.ASCII)
# Zalo Bot Platform tokens are "<bot id>:<secret>" too; Zalo publishes no alphabet for the secret part,
# so only what cannot be a token is refused: spaces, and a value without its colon.
ZALO_TOKEN = re.compile(r"[0-9]{1,30}:[^\s]{1,500}", re.ASCII)
ZALO_SECRET_MIN, ZALO_SECRET_MAX = 8, 256  # setWebhook's secret_token
TELEGRAM_USERNAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{2,29}[Bb][Oo][Tt]")
# HOCVUSO_LINK_SECRET signs download links; `python3 -c "import secrets; print(secrets.token_urlsafe(32))"` gives 43.
LINK_SECRET_MIN = 32
LISTEN_HOST = re.compile(r"[A-Za-z0-9.:_\[\]-]{1,253}", re.ASCII)


def composed(text: str) -> str:
    """NFC and stripped: names typed in Unikey's "Unicode tổ hợp" are measured and compared as composed."""
    return unicodedata.normalize("NFC", text).strip()


def _split_list(value: object) -> object:
    """Accept a list from `.env` as `a; b; c` (commas are common inside Vietnamese names)."""
    if isinstance(value, str):
        return [item for item in (composed(part) for part in value.split(";")) if item]
    return value


def _check_names(names: list[str], limit: int) -> list[str]:
    names = [composed(name) for name in names]
    if not names:
        raise ValueError("cần ít nhất một mục")
    for name in names:
        if not name:
            raise ValueError("có mục để trống")
        if len(name) > limit:
            raise ValueError(f"tên “{name[:30]}…” dài {len(name)} ký tự, quá {limit} ký tự cơ sở dữ liệu cho phép")
    if len(set(names)) != len(names):
        raise ValueError("có tên bị lặp")
    return names


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https"):
        raise ValueError("phải bắt đầu bằng http:// hoặc https://")
    try:
        parts.port  # noqa: B018  (reading it checks the port is a number in range)
    except ValueError:
        raise ValueError("cổng trong địa chỉ không hợp lệ") from None
    if not parts.hostname or parts.query or parts.fragment or any(c.isspace() for c in value):
        raise ValueError("phải là một địa chỉ như https://ten-may-chu, không có dấu cách, ? hay #")
    return value.rstrip("/")


class Settings(BaseSettings):
    """Everything an operator can set. See `.env.example` for each one."""

    model_config = SettingsConfigDict(
        env_prefix="HOCVUSO_", env_file=".env", env_file_encoding="utf-8", extra="ignore", env_ignore_empty=True
    )

    database_url: str = DEFAULT_DATABASE_URL
    timezone: str = "Asia/Ho_Chi_Minh"
    commune_name: str = "xã Cát Thành"
    villages: Annotated[list[str], NoDecode] = Field(default_factory=lambda: list(DEFAULT_VILLAGES))
    organisations: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_ORGANISATIONS)
    )
    content_dir: Path | None = None
    household_code_length: int = Field(default=6, ge=5, le=9)
    household_code_tries: int = Field(default=5, ge=1, le=20)
    household_code_window_minutes: int = Field(default=60, ge=1, le=1440)
    pass_percent: int = Field(default=80, ge=1, le=100)
    # Telegram's own message limit is 4096 characters; nothing longer can arrive.
    max_text_length: int = Field(default=1000, ge=100, le=4096)
    review_after_days: int = Field(default=3, ge=1, le=60)
    # The day (DD/MM) each unit's yearly report is due; a reporting year ends on it (the commune's plan: 10/12).
    report_deadline: str = "10/12"
    # /xephang ranks only organisations and villages with at least this many people.
    ranking_min_people: int = Field(default=10, ge=1, le=10000)
    # A reminder missed while the bot was down is still sent this many hours after its time (saying it
    # is late); an older one is skipped. Never after the deadline itself.
    reminder_grace_hours: int = Field(default=24, ge=1, le=168)
    # A learner who started the course and did nothing for this many days gets one encouragement
    # (at most one a week, never 21:00-07:00, off in /caidat).
    nudge_after_days: int = Field(default=5, ge=1, le=60)
    # Messages the bot starts itself (reminders, nudges, announcements), per second per channel: at
    # most Telegram's 30 for a bot. One chat gets at most one a second.
    outbox_rate: float = Field(default=30.0, ge=1, le=30)
    # Tries of such a message before it is kept as failed, with its reason (hocvuso outbox).
    outbox_max_attempts: int = Field(default=5, ge=1, le=20)

    telegram_token: SecretStr | None = None
    telegram_api_url: str = "https://api.telegram.org"
    telegram_username: str | None = None
    telegram_timeout: float = Field(default=10.0, ge=0.1, le=120)
    telegram_max_retries: int = Field(default=4, ge=0, le=20)
    # 0 would make an idle bot call getUpdates hundreds of times a second; Telegram allows up to 50.
    telegram_poll_timeout: int = Field(default=25, ge=1, le=50)
    telegram_concurrency: int = Field(default=32, ge=1, le=256)
    zalo_token: SecretStr | None = None
    # The Zalo Bot Platform's address; older deployments used https://bot-api.zapps.me.
    zalo_api_url: str = "https://bot-api.zaloplatforms.com"
    zalo_timeout: float = Field(default=10.0, ge=0.1, le=120)
    zalo_max_retries: int = Field(default=3, ge=0, le=20)
    # getUpdates' long poll in seconds: Zalo answers 408 after it when nothing came.
    zalo_poll_timeout: int = Field(default=30, ge=1, le=60)
    zalo_concurrency: int = Field(default=32, ge=1, le=256)
    # Zalo posts to HOCVUSO_WEBHOOK_URL/webhook/zalo with this in X-Bot-Api-Secret-Token (8-256 characters).
    zalo_webhook_secret: SecretStr | None = None
    webhook_url: str | None = None
    # Where people reach this server from outside: certificates carry a QR code of <public_url>/xacthuc/<code>.
    public_url: str | None = None
    # Files a channel cannot send (Zalo) are offered as <public_url>/tai/<token> links (bot/downloads.py):
    # kept in this folder, signed with this key (a random one kept in <folder>/.key when unset), valid
    # this many hours.
    downloads_dir: Path = Path("var/downloads")
    link_secret: SecretStr | None = None
    link_hours: int = Field(default=24, ge=1, le=168)
    webhook_secret: SecretStr | None = None
    listen_host: str = "127.0.0.1"
    listen_port: int = Field(default=8080, ge=1, le=65535)
    debug: bool = False

    _split_villages = field_validator("villages", "organisations", mode="before")(_split_list)

    @field_validator("villages")
    @classmethod
    def _village_names(cls, value: list[str]) -> list[str]:
        return _check_names(value, VILLAGE_NAME_MAX)

    @field_validator("organisations")
    @classmethod
    def _organisation_names(cls, value: list[str]) -> list[str]:
        return _check_names(value, ORGANISATION_NAME_MAX)

    @field_validator("commune_name")
    @classmethod
    def _commune_name(cls, value: str) -> str:
        value = composed(value)
        if not 1 <= len(value) <= COMMUNE_NAME_MAX:
            raise ValueError(f"cần từ 1 đến {COMMUNE_NAME_MAX} ký tự")
        return value

    @field_validator("content_dir")
    @classmethod
    def _existing_folder(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_dir():
            raise ValueError(f"không có thư mục {value}")
        return value

    @field_validator("downloads_dir")
    @classmethod
    def _folder_or_nothing(cls, value: Path) -> Path:
        # Created at start when missing; a file in its place could never hold the downloads.
        if value.exists() and not value.is_dir():
            raise ValueError(f"{value} là một tệp, không phải thư mục")
        return value

    @field_validator("link_secret")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        # Never quoted back, not even its length.
        if value is not None and len(value.get_secret_value()) < LINK_SECRET_MIN:
            raise ValueError(f"cần ít nhất {LINK_SECRET_MIN} ký tự ngẫu nhiên (hoặc để trống: hocvuso tự tạo khóa)")
        return value

    @field_validator("telegram_token")
    @classmethod
    def _token_shape(cls, value: SecretStr | None) -> SecretStr | None:
        # The value is never quoted back: it is a secret even when it is wrong.
        if value is not None and not TELEGRAM_TOKEN.fullmatch(value.get_secret_value()):
            raise ValueError("không đúng dạng token của @BotFather (số:chuỗi ký tự, không dấu cách)")
        return value

    @field_validator("zalo_token")
    @classmethod
    def _zalo_token_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not ZALO_TOKEN.fullmatch(value.get_secret_value()):
            raise ValueError("không đúng dạng token của Zalo Bot Creator (số:chuỗi ký tự, không dấu cách)")
        return value

    @field_validator("zalo_webhook_secret")
    @classmethod
    def _zalo_secret_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not re.fullmatch(rf"[A-Za-z0-9_-]{{{ZALO_SECRET_MIN},{ZALO_SECRET_MAX}}}",
                                                   value.get_secret_value()):
            raise ValueError(f"chỉ gồm chữ không dấu, số, _ và -, dài {ZALO_SECRET_MIN} đến {ZALO_SECRET_MAX} ký tự")
        return value

    @field_validator("telegram_username")
    @classmethod
    def _username_shape(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.removeprefix("@")
        if not TELEGRAM_USERNAME.fullmatch(value):
            raise ValueError("phải là tên bot trên Telegram: 5 đến 32 chữ cái không dấu, số hoặc _, kết thúc bằng bot")
        return value

    @field_validator("listen_host")
    @classmethod
    def _host_shape(cls, value: str) -> str:
        if not LISTEN_HOST.fullmatch(value):
            raise ValueError("phải là tên máy hoặc địa chỉ IP, như 127.0.0.1 hay 0.0.0.0")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"không biết múi giờ {value!r}") from exc
        return value

    @field_validator("report_deadline")
    @classmethod
    def _day_and_month(cls, value: str) -> str:
        day, _, month = value.strip().partition("/")
        try:
            date(2001, int(month), int(day))  # a year without 29/02: the deadline must exist every year
        except ValueError as exc:
            raise ValueError(f"cần một ngày có mọi năm, dạng NN/TT (ví dụ 10/12), không phải {value!r}") from exc
        return f"{int(day):02d}/{int(month):02d}"

    @property
    def deadline(self) -> tuple[int, int]:
        """The report deadline as (day, month)."""
        day, month = self.report_deadline.split("/")
        return int(day), int(month)

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, value: str) -> str:
        # Never quoted back: the address may hold a password.
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("phải bắt đầu bằng sqlite+aiosqlite:// hoặc postgresql+asyncpg://")
        try:
            url = make_url(value)
            port_ok = url.port is None or 1 <= url.port <= 65535
        except (ArgumentError, ValueError):
            port_ok = False
        if not port_ok:
            raise ValueError("không đọc được địa chỉ này (xem mẫu trong .env.example)")
        if url.get_backend_name() == "sqlite" and (not url.database or url.database == ":memory:"):
            # Each pooled connection would get its own empty in-memory database.
            raise ValueError("cần đường dẫn tới một tệp, như sqlite+aiosqlite:///var/hocvuso.db")
        return value

    @field_validator("telegram_api_url", "zalo_api_url", "webhook_url", "public_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        return _http_url(value) if value is not None else None

    @field_validator("webhook_secret")
    @classmethod
    def _telegram_secret_charset(cls, value: SecretStr | None) -> SecretStr | None:
        # Telegram accepts 1-256 characters A-Z, a-z, 0-9, _ and - in secret_token.
        if value is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", value.get_secret_value()):
            raise ValueError("chỉ gồm chữ không dấu, số, _ và -, dài 1 đến 256 ký tự")
        return value

    @model_validator(mode="after")
    def _webhook_needs_secret(self) -> Settings:
        if self.webhook_url and self.telegram_token and not self.webhook_secret:
            raise ValueError("HOCVUSO_WEBHOOK_URL cần có HOCVUSO_WEBHOOK_SECRET đi kèm")
        if self.webhook_url and self.zalo_token and not self.zalo_webhook_secret:
            raise ValueError("HOCVUSO_WEBHOOK_URL cùng HOCVUSO_ZALO_TOKEN cần có HOCVUSO_ZALO_WEBHOOK_SECRET đi kèm")
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class SettingsError(Exception):
    """An invalid setting: the message is one line naming it."""


def load_settings(**overrides: object) -> Settings:
    """Read settings, turning a validation error into one clear line per bad setting."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else "webhook_url"
            lines.append(f"Cài đặt HOCVUSO_{field.upper()} không hợp lệ: {explain_error(field, error)}")
        raise SettingsError("\n".join(lines)) from None


def bounds(field: str) -> tuple[Any, Any] | None:
    """(lowest, highest) allowed for a numeric setting, from its Field(ge=..., le=...)."""
    info = Settings.model_fields.get(field)
    metadata = info.metadata if info else []
    low = next((m.ge for m in metadata if isinstance(m, annotated_types.Ge)), None)
    high = next((m.le for m in metadata if isinstance(m, annotated_types.Le)), None)
    return (low, high) if low is not None and high is not None else None


NUMBER_ERRORS = {"int_parsing": "một số nguyên", "int_type": "một số nguyên", "int_from_float": "một số nguyên",
                 "float_parsing": "một số", "float_type": "một số"}
RANGE_ERRORS = {"greater_than_equal", "less_than_equal", "greater_than", "less_than"}


def explain_error(field: str, error: ErrorDetails) -> str:
    """The reason in Vietnamese. Never the value itself: it may be a token, a secret or a password."""
    kind, context = error["type"], error.get("ctx") or {}
    if kind == "value_error" and "error" in context:
        return str(context["error"])
    limits = bounds(field)
    if kind in RANGE_ERRORS or kind in NUMBER_ERRORS:
        whole = (info := Settings.model_fields.get(field)) is not None and info.annotation is int
        what = NUMBER_ERRORS.get(kind, "một số nguyên" if whole else "một số")
        return f"phải là {what} từ {limits[0]} đến {limits[1]}" if limits else f"phải là {what}"
    if kind in ("bool_parsing", "bool_type"):
        return "phải là 1 (bật) hoặc 0 (tắt)"
    if kind == "list_type":
        return "phải là danh sách, các mục cách nhau bằng dấu chấm phẩy"
    return f"giá trị không dùng được ({kind})"
