"""Settings: defaults, lists from the environment, and one clear line for a bad value."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from bot.cli import app
from bot.settings import DEFAULT_DATABASE_URL, SettingsError, load_settings


def test_defaults_suit_cat_thanh(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    settings = load_settings()
    assert settings.database_url == DEFAULT_DATABASE_URL
    assert settings.timezone == "Asia/Ho_Chi_Minh"
    assert "Hội Nông dân xã" in settings.organisations and settings.villages


def test_lists_are_read_with_semicolons(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOCVUSO_VILLAGES", "Thôn Đông; Thôn Tây ;Xóm Mới, Chợ")
    assert load_settings().villages == ["Thôn Đông", "Thôn Tây", "Xóm Mới, Chợ"]


def test_dotenv_file_is_read(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("HOCVUSO_COMMUNE_NAME=xã Thử\n", encoding="utf-8")
    assert load_settings().commune_name == "xã Thử"


SECRET_SETTINGS = {"LINK_SECRET", "ZALO_TOKEN", "ZALO_WEBHOOK_SECRET"}


@pytest.mark.parametrize(("name", "value"), [
    ("TIMEZONE", "Sao/Hoa"),
    ("DATABASE_URL", "mysql://x"),
    ("VILLAGES", " ; "),
    ("PASS_PERCENT", "150"),
    ("LINK_HOURS", "0"),
    ("LINK_HOURS", "169"),
    ("LINK_HOURS", "mot ngay"),
    ("LINK_SECRET", "ngan-qua-chi-31-ky-tu-1234567890"[:31]),
    ("ZALO_TOKEN", "token khong co hai cham"),
    ("ZALO_WEBHOOK_SECRET", "bay-7ky"),
    ("ZALO_WEBHOOK_SECRET", "bí-mật-có-dấu-12"),
    ("ZALO_POLL_TIMEOUT", "61"),
    ("ZALO_API_URL", "ftp://bot-api.zaloplatforms.com"),
])
def test_a_bad_setting_is_named_in_one_line(monkeypatch, tmp_path, name, value):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(f"HOCVUSO_{name}", value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert message.startswith(f"Cài đặt HOCVUSO_{name} không hợp lệ: ") and "\n" not in message
    assert "Input should" not in message and "Value error" not in message  # Vietnamese, not pydantic's
    assert name not in SECRET_SETTINGS or value not in message  # a secret is never quoted back


def test_a_zalo_webhook_needs_its_own_secret(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOCVUSO_ZALO_TOKEN", "1459232241454765289:abc-xyz")
    monkeypatch.setenv("HOCVUSO_WEBHOOK_URL", "https://hocvuso.example.vn")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert "HOCVUSO_ZALO_WEBHOOK_SECRET" in str(caught.value)
    monkeypatch.setenv("HOCVUSO_ZALO_WEBHOOK_SECRET", "bi-mat-zalo_123")
    assert load_settings().zalo_webhook_secret is not None  # Telegram's secret is not needed without its token


def test_the_cli_stops_with_that_line(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOCVUSO_TIMEZONE", "Sao/Hoa")
    result = CliRunner().invoke(app, ["db", "upgrade"])
    assert result.exit_code == 2
    assert "HOCVUSO_TIMEZONE" in result.output


def test_env_example_documents_every_setting_and_loads(monkeypatch, tmp_path):
    from pathlib import Path

    from bot.settings import Settings

    example = Path(__file__).resolve().parent.parent / ".env.example"
    text = example.read_text(encoding="utf-8")
    for name in Settings.model_fields:
        assert f"HOCVUSO_{name.upper()}=" in text, name
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text(text, encoding="utf-8")
    settings = load_settings()
    assert settings.villages[0] == "Thôn 1" and len(settings.organisations) == 14


def test_secrets_are_redacted_from_log_lines():
    import logging

    from bot.logs import RedactSecrets

    record = logging.LogRecord("httpx", logging.INFO, __file__, 1, "POST %s/bot%s/getMe", ("http://x", "123:abc"), None)
    assert RedactSecrets(["123:abc"]).filter(record)
    assert record.getMessage() == "POST http://x/bot***/getMe"


# --- ranges and shapes (issue 8, #15 and #13) -------------------------------------------------------

@pytest.mark.parametrize(("name", "value"), [
    ("TELEGRAM_POLL_TIMEOUT", "0"),
    ("TELEGRAM_POLL_TIMEOUT", "51"),
    ("TELEGRAM_TIMEOUT", "0"),
    ("TELEGRAM_TIMEOUT", "121"),
    ("TELEGRAM_MAX_RETRIES", "-1"),
    ("TELEGRAM_CONCURRENCY", "0"),
    ("MAX_TEXT_LENGTH", "99"),
    ("MAX_TEXT_LENGTH", "100000"),
    ("HOUSEHOLD_CODE_LENGTH", "4"),
    ("REVIEW_AFTER_DAYS", "0"),
    ("LISTEN_PORT", "0"),
    ("LISTEN_PORT", "70000"),
    ("LISTEN_HOST", "may chu"),
    ("COMMUNE_NAME", "x" * 101),
    ("TELEGRAM_API_URL", "http://"),
    ("TELEGRAM_API_URL", "https://api.telegram.org?x=1"),
    ("WEBHOOK_URL", "https://"),
    ("CONTENT_DIR", "khong-co-thu-muc-nay"),
    ("TELEGRAM_TOKEN", "khong phai token"),
    ("DEBUG", "co le"),
])
def test_every_setting_has_a_range_or_a_shape(monkeypatch, tmp_path, name, value):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(f"HOCVUSO_{name}", value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert message.startswith(f"Cài đặt HOCVUSO_{name} không hợp lệ: ") and "\n" not in message
    assert "Input should" not in message and "Value error" not in message  # told in Vietnamese


def test_a_bad_secret_is_never_echoed(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOCVUSO_TELEGRAM_TOKEN", "123456:bi mat that su")
    monkeypatch.setenv("HOCVUSO_WEBHOOK_SECRET", "bí-mật-có-dấu")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert "HOCVUSO_TELEGRAM_TOKEN" in message and "HOCVUSO_WEBHOOK_SECRET" in message
    assert "bi mat" not in message and "bí-mật" not in message


def test_a_content_dir_must_be_a_folder(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tep.txt").write_text("x", encoding="utf-8")
    monkeypatch.setenv("HOCVUSO_CONTENT_DIR", str(tmp_path / "tep.txt"))
    with pytest.raises(SettingsError, match="HOCVUSO_CONTENT_DIR"):
        load_settings()
    monkeypatch.setenv("HOCVUSO_CONTENT_DIR", str(tmp_path))
    assert load_settings().content_dir == tmp_path


def test_the_poll_timeout_accepts_its_whole_range(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    for value in ("1", "50"):
        monkeypatch.setenv("HOCVUSO_TELEGRAM_POLL_TIMEOUT", value)
        assert load_settings().telegram_poll_timeout == int(value)


@pytest.mark.parametrize(("name", "model"), [("VILLAGES", "Village"), ("ORGANISATIONS", "Organisation")])
def test_names_must_fit_their_database_column(monkeypatch, tmp_path, name, model):
    import storage.models

    monkeypatch.chdir(tmp_path)
    limit = storage.models.column_length(getattr(storage.models, model), "name")
    monkeypatch.setenv(f"HOCVUSO_{name}", f"Thôn Một; {'Đ' * limit}")
    assert len(getattr(load_settings(), name.lower())[1]) == limit
    monkeypatch.setenv(f"HOCVUSO_{name}", f"Thôn Một; {'Đ' * (limit + 1)}")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert message.startswith(f"Cài đặt HOCVUSO_{name} không hợp lệ") and str(limit) in message


def test_names_are_measured_as_composed_unicode(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    decomposed = "Tho\u0302n Đo\u0302ng"  # as Unikey's "Unicode tổ hợp" types it
    monkeypatch.setenv("HOCVUSO_VILLAGES", decomposed)
    assert load_settings().villages == ["Thôn Đông"]


def test_env_example_gives_the_range_of_every_number():
    from pathlib import Path

    import annotated_types

    from bot.settings import Settings

    example = (Path(__file__).resolve().parent.parent / ".env.example").read_text(encoding="utf-8")
    for name, field in Settings.model_fields.items():
        bounds = [m for m in field.metadata if isinstance(m, annotated_types.Ge | annotated_types.Le)]
        if not bounds:
            continue
        low = next(m.ge for m in field.metadata if isinstance(m, annotated_types.Ge))
        high = next(m.le for m in field.metadata if isinstance(m, annotated_types.Le))
        assert f"{low}-{high}" in comment_above(example, f"HOCVUSO_{name.upper()}="), name


def comment_above(example: str, line_start: str) -> str:
    """The comment lines right above the line that starts with `line_start`."""
    lines = example.splitlines()
    index = next(i for i, line in enumerate(lines) if line.startswith(line_start))
    comment: list[str] = []
    while index > 0 and lines[index - 1].startswith("#"):
        index -= 1
        comment.insert(0, lines[index])
    return "\n".join(comment)
