"""`hocvuso chat` as a newcomer runs it: a real process, piped input, its own SQLite file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run_chat(workdir: Path, lines: list[str], user: str = "an") -> str:
    env = {key: value for key, value in os.environ.items() if not key.startswith("HOCVUSO_")}
    result = subprocess.run(
        [sys.executable, "-m", "bot", "chat", "--user", user],
        input="\n".join(lines) + "\n", capture_output=True, text=True, cwd=workdir, env=env,
        timeout=120, check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    # Run from a fresh folder so the default `./var/hocvuso.db` is created there on first use.
    return tmp_path


def test_a_scripted_session_registers_and_reads_a_lesson(workdir):
    out = run_chat(workdir, ["/start", "1", "Nguyễn Văn An", "1", "1", "3", "15", "2", "/hoc", "1", "1"])
    assert "Bạn có đồng ý không?" in out
    assert "Đăng ký xong" in out
    assert "(2/" in out
    assert (workdir / "var" / "hocvuso.db").exists()


def test_a_second_process_continues_the_lesson(workdir):
    run_chat(workdir, ["/start", "2", "/hoc", "1", "1"])
    out = run_chat(workdir, ["1"])
    assert "(3/" in out


def test_each_user_name_is_a_different_person(workdir):
    run_chat(workdir, ["/start", "1", "Nguyễn Văn An"], user="an")
    out = run_chat(workdir, ["/start"], user="binh")
    assert "Bạn có đồng ý không?" in out


def test_bad_settings_stop_start_up_with_one_line(workdir):
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("HOCVUSO_")}, "HOCVUSO_TIMEZONE": "X/Y"}
    result = subprocess.run([sys.executable, "-m", "bot", "chat"], input="", capture_output=True, text=True,
                            cwd=workdir, env=env, timeout=60, check=False)
    assert result.returncode == 2
    assert result.stderr.strip() == "Cài đặt HOCVUSO_TIMEZONE không hợp lệ: Value error, không biết múi giờ 'X/Y'"
