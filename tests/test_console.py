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
    assert result.stderr.strip() == "Cài đặt HOCVUSO_TIMEZONE không hợp lệ: không biết múi giờ 'X/Y'"


def chat_process(workdir: Path, lines: list[str], *args: str, **settings: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOCVUSO_")}
    env.update({f"HOCVUSO_{name.upper()}": value for name, value in settings.items()})
    return subprocess.run([sys.executable, "-m", "bot", "chat", *args], input="\n".join(lines) + "\n",
                          capture_output=True, text=True, cwd=workdir, env=env, timeout=60, check=False)


@pytest.mark.parametrize("user", ["x" * 65, "   ", "an\x01"])
def test_a_user_name_that_cannot_be_stored_is_refused_politely(workdir, user):
    """PostgreSQL keeps at most 64 characters of a chat id (issue 8, #14)."""
    result = chat_process(workdir, ["/start"], "--user", user)
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1 and "--user" in result.stderr
    assert result.stdout == ""


async def test_the_longest_user_name_is_answered_on_every_database(workdir, database_url):
    import asyncio

    env = {k: v for k, v in os.environ.items() if not k.startswith("HOCVUSO_")}
    env["HOCVUSO_DATABASE_URL"] = database_url
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "chat", "--user", "ệ" * 64, cwd=workdir, env=env,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(b"/start\n1\n"), 60)
    assert process.returncode == 0, err.decode()
    assert "họ và tên" in out.decode() and "Xin lỗi" not in out.decode()


def test_a_user_name_is_measured_composed_and_stripped(workdir):
    out = run_chat(workdir, ["/start"], user=" " + "e\u0302" * 64 + " ")  # 64 "ê" typed decomposed
    assert "Bạn có đồng ý không?" in out


def test_chat_logs_a_failed_turn_without_the_name(workdir):
    """`hocvuso chat` logs like `hocvuso run`: a failing database leaves no name on stderr (issue 8, #6)."""
    import sqlite3

    path = workdir / "var" / "hocvuso.db"
    run_chat(workdir, ["/start"])
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TRIGGER hong BEFORE UPDATE OF full_name ON person "
                           "BEGIN SELECT RAISE(ABORT, 'hỏng'); END")
    connection.close()
    token = "123456:AAbbCCdd_chat-token"
    result = chat_process(workdir, ["1", "Lã Thị Riêng", "1"], "--user", "an", telegram_token=token)
    assert result.returncode == 0, result.stderr
    assert "handler failed" in result.stderr
    assert "Lã Thị Riêng" not in result.stderr and token not in result.stderr


async def test_every_lesson_of_every_course_can_be_completed_in_the_console(services):
    """Both courses, every lesson, scripted through the real console channel by typed numbers: /hoc lists
    the core course's lessons, then the other courses, whose own list the course's number opens."""
    import io

    from bot.channels.console import run_console
    from handlers.dispatcher import Dispatcher

    catalog = services.catalog
    core, others = catalog.core_course, [course for course in catalog.courses if not course.core]
    lines = ["/start", "1", "Nguyễn Văn An", "1", "1", "3", "15", "2"]
    for course in [core, *others]:
        opening = [] if course is core else [str(len(core.lessons) + 1 + others.index(course))]
        for number, lesson_id in enumerate(course.lessons, start=1):
            lesson = catalog.lesson(lesson_id)
            lines += ["/hoc", *opening, str(number)] + ["1"] * (len(lesson.cards) - 1) + ["1"]
            lines += [str(question.correct_index + 1) for question in lesson.quiz]
    lines.append("/tiendo")
    output = io.StringIO()
    await run_console(Dispatcher(services), "an", io.StringIO("\n".join(lines) + "\n"), output)
    transcript = output.getvalue()
    lessons = catalog.ordered_lessons()
    assert len(lessons) == len(catalog.lessons) >= 19
    for lesson in lessons:
        assert f'Bạn đã hoàn thành bài "{lesson.title}"' in transcript, lesson.id
    for course in catalog.courses:
        assert f"Chúc mừng! Bạn đã hoàn thành cả {course.title}" in transcript, course.id
    assert f"đã xong {len(core.lessons)}/{len(core.lessons)} bài" in transcript


async def test_the_terminal_shows_what_the_bot_sent_on_its_own_once_to_its_own_person(services):
    import io

    from bot.channels.console import run_console
    from handlers.core import Button, Reply, to_payload
    from handlers.dispatcher import Dispatcher
    from storage import outbox

    dispatcher = Dispatcher(services)
    for user in ("an", "binh"):
        await run_console(dispatcher, user, io.StringIO("/start\n1\nNgười Thử\n"), io.StringIO())
    reminder = to_payload([Reply("⏰ Còn 3 ngày đến hạn báo cáo.", ((Button("📑 Lấy báo cáo", "bc:commune"),),))])
    async with services.database.session() as session:
        for user in ("an", "binh"):
            await outbox.enqueue(session, key=f"reminder:test:{user}", kind="reminder", channel="console",
                                 external_id=user, payload=reminder, now=services.clock())
    first, again = io.StringIO(), io.StringIO()
    await run_console(dispatcher, "an", io.StringIO("1\n"), first)  # 1: the reminder's own button
    await run_console(dispatcher, "an", io.StringIO("/tiendo\n"), again)
    assert first.getvalue().startswith("📬 ⏰ Còn 3 ngày") and "Gõ 1 → 📑 Lấy báo cáo" in first.getvalue()
    assert "Báo cáo chỉ dành cho người phụ trách đơn vị" in first.getvalue()  # a resident: politely refused
    assert "Còn 3 ngày" not in again.getvalue()
    async with services.database.session() as session:
        assert (await outbox.status_counts(session))["queued"] == 1  # binh's waits for binh


def test_files_are_written_under_exports_and_their_path_shown(tmp_path):
    from bot.channels.console import render, save_attachment
    from handlers.core import Attachment, Reply

    reply = Reply("📊 Số liệu", attachment=Attachment("so-lieu/../x.png", b"\x89PNG", "photo"))
    first, second = save_attachment(reply, tmp_path / "exports"), save_attachment(reply, tmp_path / "exports")
    assert first.parent == second.parent == tmp_path / "exports" and first != second  # never overwritten
    assert first.read_bytes() == b"\x89PNG" and "/" not in first.name
    assert f"đã lưu ở {first}" in render(reply, first)
