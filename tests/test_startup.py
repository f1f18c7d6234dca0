"""Start-up failures: the real command in its own process ends with ONE Vietnamese line that names the
setting or the file, a non-zero exit, and never a token or a password (issue 8, #5 and #13)."""

from __future__ import annotations

import asyncio
import os
import shutil
import stat
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from tests.fakes.server import free_port
from tests.fakes.telegram import TOKEN, FakeTelegram

PASSWORD = "s3cr3t-Mat-khau"
ROOT_USER = os.name == "posix" and os.geteuid() == 0


@dataclass
class Outcome:
    code: int
    stderr: str
    stdout: str

    @property
    def lines(self) -> list[str]:
        return self.stderr.splitlines()


async def hocvuso(*args: str, cwd: Path, unprivileged: bool = False, **settings: str) -> Outcome:
    """Run `python -m bot ARGS` with only these HOCVUSO_ settings (no `.env`: cwd is a fresh folder)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("HOCVUSO_")}
    env.update({f"HOCVUSO_{name.upper()}": value for name, value in settings.items()})
    extra: dict[str, object] = {}
    if unprivileged and ROOT_USER:
        # root may write to any file, so a read-only file is tried as an ordinary user.
        extra = {"user": "nobody", "group": "nogroup", "extra_groups": []}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", *args, cwd=cwd, env=env, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, **extra,  # type: ignore[arg-type]
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode is not None
    return Outcome(process.returncode, stderr.decode(), stdout.decode())


def assert_one_line(outcome: Outcome, *named: str, secrets: tuple[str, ...] = (TOKEN, PASSWORD)) -> str:
    assert outcome.code != 0, outcome
    assert len(outcome.lines) == 1, outcome.stderr
    line = outcome.lines[0]
    for name in named:
        assert name in line, line
    for secret in secrets:
        assert secret not in outcome.stderr and secret not in outcome.stdout
    assert "Traceback" not in line
    return line


@pytest.fixture
async def telegram():
    async with FakeTelegram() as fake:
        yield fake


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A folder an unprivileged child process can enter (pytest's own tmp folders are root-only)."""
    folder = Path(tempfile.mkdtemp(prefix="hocvuso-"))
    folder.chmod(0o777)
    yield folder
    for path in (folder, *folder.rglob("*")):
        path.chmod(stat.S_IRWXU)
    shutil.rmtree(folder)


def sqlite(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


async def make_database(path: Path) -> None:
    from bot.app import prepare_database
    from bot.settings import Settings
    from storage.db import Database

    database = Database(sqlite(path))
    try:
        await prepare_database(database, Settings(_env_file=None, database_url=sqlite(path)))  # type: ignore[call-arg]
    finally:
        await database.dispose()


# --- Telegram (#5) ---------------------------------------------------------------------------------

async def test_a_rejected_token_is_named_but_never_printed(tmp_path, telegram):
    outcome = await hocvuso("run", cwd=tmp_path, telegram_token="123456:wrong-Token_value",
                            telegram_api_url=telegram.api_url, telegram_timeout="2",
                            database_url=sqlite(tmp_path / "a.db"))
    line = assert_one_line(outcome, "HOCVUSO_TELEGRAM_TOKEN", secrets=("wrong-Token_value", "123456:"))
    assert "@BotFather" in line


async def test_a_wrong_api_path_names_the_api_url_not_the_token(tmp_path, telegram):
    outcome = await hocvuso("run", cwd=tmp_path, telegram_token=TOKEN,
                            telegram_api_url=f"{telegram.api_url}/sai-duong-dan", telegram_timeout="2",
                            database_url=sqlite(tmp_path / "a.db"))
    assert_one_line(outcome, "HOCVUSO_TELEGRAM_API_URL", "404")
    assert TOKEN.split(":")[1] not in outcome.stderr


async def test_an_unreachable_api_names_the_api_url(tmp_path):
    url = f"http://127.0.0.1:{free_port()}"
    outcome = await hocvuso("run", cwd=tmp_path, telegram_token=TOKEN, telegram_api_url=url,
                            telegram_timeout="1", database_url=sqlite(tmp_path / "a.db"))
    assert_one_line(outcome, "HOCVUSO_TELEGRAM_API_URL", url)


async def test_a_busy_webhook_port_is_named(tmp_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        outcome = await hocvuso("run", cwd=tmp_path, telegram_token=TOKEN, telegram_api_url=f"http://127.0.0.1:{port}",
                                webhook_url=f"http://127.0.0.1:{port}", webhook_secret="bi-mat_123",
                                listen_port=str(port), database_url=sqlite(tmp_path / "a.db"))
    assert outcome.code == 1
    assert_one_line(outcome, "HOCVUSO_LISTEN_PORT", str(port), secrets=(TOKEN, "bi-mat_123"))


# --- PostgreSQL (#13) ------------------------------------------------------------------------------

@pytest.mark.parametrize("command", [("run",), ("chat",), ("db", "upgrade")])
async def test_a_refused_postgresql_names_host_and_port_but_not_the_password(tmp_path, command):
    port = free_port()
    url = f"postgresql+asyncpg://hocvuso:{PASSWORD}@127.0.0.1:{port}/hocvuso"
    outcome = await hocvuso(*command, cwd=tmp_path, database_url=url, telegram_token=TOKEN,
                            telegram_api_url=f"http://127.0.0.1:{free_port()}")
    assert_one_line(outcome, "HOCVUSO_DATABASE_URL", f"127.0.0.1:{port}")


async def test_a_missing_postgresql_database_is_named(tmp_path):
    base = os.environ.get("TEST_DATABASE_URL")
    if not base:
        pytest.skip("TEST_DATABASE_URL is not set")
    url = make_url(base).set(database="hocvuso_khong_co_csdl_nay", password=PASSWORD)
    outcome = await hocvuso("db", "upgrade", cwd=tmp_path, database_url=url.render_as_string(hide_password=False))
    assert_one_line(outcome, "HOCVUSO_DATABASE_URL", "hocvuso_khong_co_csdl_nay")


# --- SQLite (#13) ----------------------------------------------------------------------------------

async def test_a_corrupt_sqlite_file_is_named(tmp_path):
    path = tmp_path / "hong.db"
    path.write_bytes(b"day khong phai la co so du lieu " * 200)
    outcome = await hocvuso("chat", cwd=tmp_path, database_url=sqlite(path))
    assert_one_line(outcome, "HOCVUSO_DATABASE_URL", str(path))


async def test_a_read_only_sqlite_file_is_named(open_dir):
    path = open_dir / "chi-doc.db"
    await make_database(path)
    path.chmod(0o444)
    outcome = await hocvuso("run", cwd=open_dir, unprivileged=True, database_url=sqlite(path),
                            telegram_token=TOKEN, telegram_api_url=f"http://127.0.0.1:{free_port()}")
    assert_one_line(outcome, "HOCVUSO_DATABASE_URL", str(path))


async def test_a_folder_that_cannot_be_written_is_named(open_dir):
    folder = open_dir / "khoa"
    folder.mkdir()
    folder.chmod(0o555)
    path = folder / "moi.db"
    outcome = await hocvuso("db", "upgrade", cwd=open_dir, unprivileged=True, database_url=sqlite(path))
    assert_one_line(outcome, "HOCVUSO_DATABASE_URL", str(path))


# --- the one place that explains -------------------------------------------------------------------

def settings(**values: object):
    from bot.settings import Settings

    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def test_an_unexpected_error_is_told_by_its_class_only():
    from bot.startup import describe, explain

    error = RuntimeError("Nguyễn Văn Bí Mật 482915")
    assert explain(error, settings()) is None
    line = describe(error, settings())
    assert "RuntimeError" in line and "HOCVUSO_DEBUG" in line
    assert "Bí Mật" not in line and "482915" not in line and "\n" not in line


def test_no_explanation_ever_holds_a_secret():
    from telegram.error import InvalidToken

    from bot.startup import describe

    outer = InvalidToken(f"The token `{TOKEN}` was rejected by the server.")
    outer.__cause__ = InvalidToken("Unauthorized")
    line = describe(outer, settings(telegram_token=TOKEN))
    assert "HOCVUSO_TELEGRAM_TOKEN" in line and TOKEN not in line


def test_an_unexpected_start_up_error_in_the_cli_is_one_line(monkeypatch, tmp_path):
    from typer.testing import CliRunner

    import bot.cli

    async def explode(*_args: object, **_kwargs: object) -> None:
        raise KeyError("Trần Thị Riêng Tư")

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(bot.cli, "build_services", explode)
    result = CliRunner().invoke(bot.cli.app, ["chat"], input="")
    assert result.exit_code == 1
    assert len(result.output.splitlines()) == 1, result.output
    assert "KeyError" in result.output and "Riêng Tư" not in result.output


def test_debug_shows_the_traceback_without_secrets(monkeypatch, tmp_path):
    from typer.testing import CliRunner

    import bot.cli

    async def explode(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError(f"hỏng ở {TOKEN}")

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOCVUSO_DEBUG", "1")
    monkeypatch.setenv("HOCVUSO_TELEGRAM_TOKEN", TOKEN)
    monkeypatch.setattr(bot.cli, "build_services", explode)
    result = CliRunner().invoke(bot.cli.app, ["chat"], input="")
    assert result.exit_code == 1
    assert "Traceback" in result.output and "hỏng ở" in result.output
    assert TOKEN not in result.output
