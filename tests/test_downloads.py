"""Download links (issue 12): signed, expiring, unguessable links to files Zalo cannot send."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from pydantic import SecretStr

from bot.downloads import (
    KEY_FILE,
    MAX_TOKEN_LENGTH,
    Downloads,
    DownloadsError,
    build_downloads,
    content_disposition,
    content_type,
    load_key,
    safe_file_name,
)
from bot.logs import secrets_of
from bot.settings import Settings, SettingsError, load_settings
from bot.web import build_web_app
from storage.db import Database
from tests.support import START, FakeClock

SECRET = b"k" * 32
OTHER_SECRET = b"o" * 32
NAME = "Báo cáo Thôn Đông 2026.xlsx"
DATA = b"PK\x03\x04 some workbook bytes \x00\xff"
GONE = "Đường dẫn tải tệp không hợp lệ hoặc đã hết hạn. Hãy xin lại tệp trong cuộc trò chuyện với trợ lý."


@pytest.fixture
def downloads(tmp_path: Path, clock: FakeClock) -> Downloads:
    return Downloads(tmp_path / "downloads", SECRET, clock, timedelta(hours=24))


def token_of(path: str) -> str:
    assert path.startswith("/tai/")
    return path.removeprefix("/tai/")


def changed(text: str, index: int) -> str:
    """`text` with the character at `index` replaced by another one of the same alphabet."""
    old = text[index]
    new = ("1" if old != "1" else "2") if old.isdigit() else ("A" if old != "A" else "B")
    return text[:index] + new + text[index + 1:]


def stored_files(folder: Path) -> list[Path]:
    return sorted(path for path in folder.iterdir() if path.name != KEY_FILE)


# --- publish and open -----------------------------------------------------------------------------

async def test_publish_then_open_gives_the_bytes_back(downloads, clock):
    published = await downloads.publish(NAME, DATA)
    assert published.file_name == NAME
    assert published.expires_at == START + timedelta(hours=24) and published.expires_at.tzinfo is not None
    assert await downloads.open(token_of(published.path)) == (NAME, DATA)
    assert Downloads.url("https://hocvuso.example.vn/", published) == f"https://hocvuso.example.vn{published.path}"
    # Kept under a random id, never under the name a person sees; and two files never share an id.
    [stored] = stored_files(downloads.directory)
    assert "Báo" not in stored.name and stored.name in published.path and len(stored.name) >= 22
    other = await downloads.publish(NAME, b"other")
    assert other.path != published.path and await downloads.open(token_of(other.path)) == (NAME, b"other")
    # The token never shows in a repr (a log line of the object).
    assert token_of(published.path) not in repr(published) and "kkkk" not in repr(downloads)


async def test_a_name_from_a_person_cannot_become_a_path(downloads):
    published = await downloads.publish("../../etc/passwd", b"x")
    assert published.file_name == "passwd"
    assert [path.parent for path in stored_files(downloads.directory)] == [downloads.directory]
    assert await downloads.open(token_of(published.path)) == ("passwd", b"x")


async def test_an_expired_link_is_refused(downloads, clock):
    published = await downloads.publish(NAME, DATA)
    clock.advance(hours=23, minutes=59)
    assert await downloads.open(token_of(published.path)) == (NAME, DATA)
    clock.advance(minutes=1)
    assert await downloads.open(token_of(published.path)) is None


@pytest.mark.parametrize("part", [0, 1, 2])  # the id, the expiry, the signature
async def test_a_link_with_one_character_changed_is_refused(downloads, part):
    token = token_of((await downloads.publish(NAME, DATA)).path)
    parts = token.split(".")
    assert len(parts) == 3
    start = sum(len(p) + 1 for p in parts[:part])
    for index in (start, start + len(parts[part]) - 1):  # its first and its last character
        altered = changed(token, index)
        assert altered != token
        assert await downloads.open(altered) is None, (part, index)


async def test_a_signature_spelt_another_way_is_refused(downloads):
    # The last base64 character of a 32-byte signature carries two spare bits: flipping one decodes to the
    # same bytes, so signatures are compared as text.
    import base64

    token = token_of((await downloads.publish(NAME, DATA)).path)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    twin = token[:-1] + alphabet[alphabet.index(token[-1]) ^ 1]
    signature, twin_signature = token.rsplit(".", 1)[1], twin.rsplit(".", 1)[1]
    assert base64.urlsafe_b64decode(signature + "=") == base64.urlsafe_b64decode(twin_signature + "=")
    assert await downloads.open(twin) is None


async def test_a_later_expiry_cannot_be_written_into_a_link(downloads, clock):
    token = token_of((await downloads.publish(NAME, DATA)).path)
    file_id, expires, signature = token.split(".")
    later = f"{file_id}.{int(expires) + 365 * 86400}.{signature}"
    assert await downloads.open(later) is None


@pytest.mark.parametrize("token", [
    "", "abc", "a.b.c", "x" * (MAX_TOKEN_LENGTH + 1), "../../.key", ".key", "é" * 24 + ".1.x",
])
async def test_malformed_tokens_are_refused(downloads, token):
    await downloads.publish(NAME, DATA)
    assert await downloads.open(token) is None


async def test_a_link_signed_with_another_key_is_refused(downloads, tmp_path, clock):
    impostor = Downloads(downloads.directory, OTHER_SECRET, clock, timedelta(hours=24))
    forged = await impostor.publish(NAME, b"forged")
    assert await downloads.open(token_of(forged.path)) is None
    # ...and a good link to a file that is gone (deleted, another host's) is refused too.
    published = await downloads.publish(NAME, DATA)
    for path in stored_files(downloads.directory):
        path.unlink()
    assert await downloads.open(token_of(published.path)) is None


async def test_prune_removes_expired_files_only(downloads, clock):
    old = await downloads.publish("cu.pdf", b"old")
    clock.advance(hours=12)
    new = await downloads.publish("moi.pdf", b"new")
    assert await downloads.prune() == 0
    clock.advance(hours=12)
    (downloads.directory / "ghi-chu-cua-nguoi-van-hanh.txt").write_text("x", encoding="utf-8")
    assert await downloads.prune() == 1
    assert await downloads.open(token_of(new.path)) == ("moi.pdf", b"new")
    assert await downloads.open(token_of(old.path)) is None
    clock.advance(hours=12)
    assert await downloads.prune() == 1
    assert [path.name for path in stored_files(downloads.directory)] == ["ghi-chu-cua-nguoi-van-hanh.txt"]


async def test_prune_of_a_folder_not_made_yet_is_nothing(tmp_path, clock):
    assert await Downloads(tmp_path / "chua-co", SECRET, clock, timedelta(hours=1)).prune() == 0


# --- the key --------------------------------------------------------------------------------------

async def test_the_key_file_is_made_0600_once_and_reused(tmp_path, clock):
    folder = tmp_path / "var" / "downloads"
    key = load_key(folder)
    key_file = folder / KEY_FILE
    assert len(key) >= 32 and key_file.is_file()
    if os.name == "posix":
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        assert stat.S_IMODE(folder.stat().st_mode) & 0o077 == 0
    assert load_key(folder) == key
    assert [path.name for path in folder.iterdir()] == [KEY_FILE]  # no temporary file left behind

    # Links made before a restart still open after it.
    settings = Settings(_env_file=None, downloads_dir=folder)  # type: ignore[call-arg]
    before = await build_downloads(settings, clock)
    published = await before.publish(NAME, DATA)
    after = await build_downloads(settings, clock)
    assert await after.open(token_of(published.path)) == (NAME, DATA)
    assert settings.link_hours == 24 and after.ttl == timedelta(hours=24)


@pytest.mark.skipif(os.name != "posix", reason="file modes")
def test_a_key_file_others_can_read_is_tightened(tmp_path):
    folder = tmp_path / "downloads"
    key = load_key(folder)
    (folder / KEY_FILE).chmod(0o644)
    assert load_key(folder) == key
    assert stat.S_IMODE((folder / KEY_FILE).stat().st_mode) == 0o600


def test_a_broken_key_file_is_told_in_one_line(tmp_path):
    folder = tmp_path / "downloads"
    folder.mkdir()
    (folder / KEY_FILE).write_text("khong phai khoa", encoding="utf-8")
    with pytest.raises(DownloadsError) as caught:
        load_key(folder)
    assert "HOCVUSO_LINK_SECRET" in str(caught.value) and "\n" not in str(caught.value)


async def test_the_secret_setting_is_the_key(tmp_path, clock):
    secret = "s" * 40
    settings = Settings(_env_file=None, downloads_dir=tmp_path / "d", link_secret=secret,  # type: ignore[call-arg]
                        link_hours=2)
    downloads = await build_downloads(settings, clock)
    assert not (tmp_path / "d" / KEY_FILE).exists() and downloads.ttl == timedelta(hours=2)
    published = await downloads.publish(NAME, DATA)
    same_key = Downloads(tmp_path / "d", secret.encode(), clock, timedelta(hours=2))
    assert await same_key.open(token_of(published.path)) == (NAME, DATA)
    assert secret in secrets_of(settings)


async def test_a_folder_that_cannot_be_made_is_told_in_one_line(tmp_path, clock):
    (tmp_path / "tep").write_text("x", encoding="utf-8")
    settings = Settings(_env_file=None, downloads_dir=tmp_path / "tep" / "downloads")  # type: ignore[call-arg]
    for secret in (None, "s" * 32):
        settings.link_secret = SecretStr(secret) if secret else None
        with pytest.raises(DownloadsError) as caught:
            await build_downloads(settings, clock)
        message = str(caught.value)
        assert "HOCVUSO_DOWNLOADS_DIR" in message and "\n" not in message and "s" * 32 not in message


# --- what the browser gets ------------------------------------------------------------------------

def test_names_and_types_for_the_headers():
    assert content_type("a.XLSX").startswith("application/vnd.openxmlformats-officedocument.spreadsheetml")
    assert content_type("a.docx").endswith("wordprocessingml.document")
    assert content_type("giay.pdf") == "application/pdf" and content_type("bieu-do.png") == "image/png"
    assert content_type("ds.csv").startswith("text/csv") and content_type("x.exe") == "application/octet-stream"
    assert content_type("khong-duoi") == "application/octet-stream"
    header = content_disposition(NAME)
    assert header.startswith('attachment; filename="Bao cao Thon Dong 2026.xlsx"; ')
    assert header.endswith("filename*=UTF-8''" + quote(NAME, safe=""))
    assert header.isascii()
    assert safe_file_name('a"b\r\nc\u202e.pdf') == "a_b c.pdf"  # quotes, line breaks, bidi tricks
    assert content_disposition('x";\r\nSet-Cookie: a=b.pdf').count("\n") == 0
    assert len(safe_file_name("d" * 500 + ".docx")) == 100 and safe_file_name("..") == "tep"


def server_log(caplog: pytest.LogCaptureFixture) -> str:
    """What the server side logged (the test's own httpx client logs every URL it asks for)."""
    return "\n".join(record.getMessage() for record in caplog.records
                     if not record.name.startswith(("httpx", "httpcore")))


@pytest.fixture
async def client(downloads: Downloads, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'web.db'}")
    web = build_web_app(database, None, None, downloads=downloads)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=web), base_url="http://test") as client:
            yield client
    finally:
        await database.dispose()


async def test_the_web_route_serves_the_file(downloads, client, caplog):
    caplog.set_level(logging.DEBUG)
    published = await downloads.publish(NAME, DATA)
    answer = await client.get(published.path)
    assert answer.status_code == 200 and answer.content == DATA
    assert answer.headers["content-type"] == content_type(NAME)
    assert answer.headers["content-disposition"] == content_disposition(NAME)
    assert answer.headers["content-disposition"].startswith("attachment;")
    assert answer.headers["cache-control"] == "no-store"
    assert "noindex" in answer.headers["x-robots-tag"]
    assert answer.headers["referrer-policy"] == "no-referrer"
    pdf = await downloads.publish("Giấy chứng nhận.pdf", b"%PDF-1.7")
    assert (await client.get(pdf.path)).headers["content-type"] == "application/pdf"
    assert token_of(published.path) not in server_log(caplog)


async def test_the_web_route_answers_every_bad_link_alike(downloads, client, clock, caplog):
    caplog.set_level(logging.DEBUG)
    published = await downloads.publish(NAME, DATA)
    token = token_of(published.path)
    expired = await downloads.publish("cu.pdf", b"old")
    clock.advance(hours=24)
    fresh = await downloads.publish("moi.pdf", b"new")
    bad = [changed(token, 0), changed(token, len(token) - 1), token_of(expired.path), "khong-co",
           "x" * 400, "%3Cscript%3E", token_of(fresh.path) + "x"]
    answers = [await client.get(f"/tai/{path}") for path in bad]
    for answer in answers:
        assert answer.status_code == 404 and GONE in answer.text
        assert answer.headers["cache-control"] == "no-store" and "content-disposition" not in answer.headers
        assert "<script>" not in answer.text
    assert len({answer.text for answer in answers}) == 1  # nothing learnt from which one it was
    assert (await client.get(fresh.path)).content == b"new"
    assert all(token_of(p.path) not in server_log(caplog) for p in (published, expired, fresh))


async def test_without_downloads_the_route_answers_404(tmp_path):
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'web.db'}")
    web = build_web_app(database, None, None)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=web), base_url="http://test") as client:
            answer = await client.get("/tai/abc.1.def")
    finally:
        await database.dispose()
    assert answer.status_code == 404 and GONE in answer.text


# --- settings -------------------------------------------------------------------------------------

def test_the_download_settings_default(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    settings = load_settings()
    assert settings.downloads_dir == Path("var/downloads") and settings.link_hours == 24
    assert settings.link_secret is None


def test_a_file_where_the_downloads_folder_should_be_is_refused(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tep").write_text("x", encoding="utf-8")
    monkeypatch.setenv("HOCVUSO_DOWNLOADS_DIR", str(tmp_path / "tep"))
    with pytest.raises(SettingsError, match="HOCVUSO_DOWNLOADS_DIR"):
        load_settings()


def test_the_download_settings_accept_their_range(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    for hours in ("1", "168"):
        monkeypatch.setenv("HOCVUSO_LINK_HOURS", hours)
        assert load_settings().link_hours == int(hours)
    monkeypatch.setenv("HOCVUSO_LINK_SECRET", "b" * 32)
    settings = load_settings()
    assert settings.link_secret is not None and "b" * 32 not in repr(settings)
    assert "b" * 32 in secrets_of(settings)
