"""Settings read from the environment (prefix HOCVUSO_) and a `.env` file."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

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


def _split_list(value: object) -> object:
    """Accept a list from `.env` as `a; b; c` (commas are common inside Vietnamese names)."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(";") if item.strip()]
    return value


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
    pass_percent: int = Field(default=80, ge=1, le=100)
    max_text_length: int = Field(default=1000, ge=100)
    review_after_days: int = Field(default=3, ge=1, le=60)

    telegram_token: SecretStr | None = None
    telegram_api_url: str = "https://api.telegram.org"
    telegram_timeout: float = Field(default=10.0, gt=0, le=120)
    telegram_max_retries: int = Field(default=4, ge=0, le=20)
    telegram_poll_timeout: int = Field(default=25, ge=0, le=50)
    telegram_concurrency: int = Field(default=32, ge=1, le=256)
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None
    listen_host: str = "127.0.0.1"
    listen_port: int = Field(default=8080, ge=1, le=65535)

    _split_villages = field_validator("villages", "organisations", mode="before")(_split_list)

    @field_validator("villages", "organisations")
    @classmethod
    def _not_empty(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("cần ít nhất một mục")
        if len(set(value)) != len(value):
            raise ValueError("có tên bị lặp")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"không biết múi giờ {value!r}") from exc
        return value

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("phải bắt đầu bằng sqlite+aiosqlite:// hoặc postgresql+asyncpg://")
        return value

    @field_validator("telegram_api_url", "webhook_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("phải bắt đầu bằng http:// hoặc https://")
        return value.rstrip("/") if value else value

    @field_validator("webhook_secret")
    @classmethod
    def _telegram_secret_charset(cls, value: SecretStr | None) -> SecretStr | None:
        # Telegram accepts 1-256 characters A-Z, a-z, 0-9, _ and - in secret_token.
        if value is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", value.get_secret_value()):
            raise ValueError("chỉ gồm chữ không dấu, số, _ và -, dài 1 đến 256 ký tự")
        return value

    @model_validator(mode="after")
    def _webhook_needs_secret(self) -> Settings:
        if self.webhook_url and not self.webhook_secret:
            raise ValueError("HOCVUSO_WEBHOOK_URL cần có HOCVUSO_WEBHOOK_SECRET đi kèm")
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
            lines.append(f"Cài đặt HOCVUSO_{field.upper()} không hợp lệ: {error['msg']}")
        raise SettingsError("\n".join(lines)) from None
