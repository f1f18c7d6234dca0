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


@pytest.mark.parametrize(("name", "value"), [
    ("TIMEZONE", "Sao/Hoa"),
    ("DATABASE_URL", "mysql://x"),
    ("VILLAGES", " ; "),
    ("PASS_PERCENT", "150"),
])
def test_a_bad_setting_is_named_in_one_line(monkeypatch, tmp_path, name, value):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(f"HOCVUSO_{name}", value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert message.startswith(f"Cài đặt HOCVUSO_{name} không hợp lệ") and "\n" not in message


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
