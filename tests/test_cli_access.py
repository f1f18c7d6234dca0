"""`hocvuso invite create`, `roles list|revoke` and `audit` from the operator's shell."""

from __future__ import annotations

import asyncio
import functools
import re

import pytest
from typer.testing import CliRunner

from bot.cli import app
from handlers.dispatcher import Dispatcher
from tests.support import Chat, converse


@pytest.fixture
def shell(monkeypatch, sqlite_url):
    monkeypatch.setenv("HOCVUSO_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("HOCVUSO_TELEGRAM_USERNAME", "@hocvuso_catthanh_bot")
    runner = CliRunner()
    return lambda *args: runner.invoke(app, list(args))


async def test_the_first_admin_comes_from_the_shell_and_roles_can_be_revoked(shell, services):
    """The commands run their own event loop, so from this test they run on a thread of their own."""
    shell = functools.partial(asyncio.to_thread, shell)
    made = await shell("invite", "create", "--role", "admin", "--expires", "48h")
    assert made.exit_code == 0, made.output
    code = re.search(r"/ma ([A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4})", made.output).group(1)
    assert f"https://t.me/hocvuso_catthanh_bot?start={code.replace('-', '')}" in made.output

    admin = Chat(Dispatcher(services), user="admin")
    await converse(admin, [("/start", "đồng ý"), ("#Đồng ý", "họ và tên"), ("Đỗ Văn Quản", "thôn/xóm")])
    assert "Bạn đã nhận vai trò Quản trị" in await admin.say(f"/ma {code}")

    listed = await shell("roles", "list")
    assert "Đỗ Văn Quản" in listed.output and "quản trị" in listed.output
    grant_id = re.search(r"│\s*(\d+)\s*│", listed.output).group(1)
    assert (await shell("roles", "revoke", grant_id)).exit_code == 0
    assert "Tạo mã mời" not in await admin.say("menu")  # the staff button went with the role
    assert (await shell("roles", "revoke", grant_id)).exit_code == 1  # already revoked

    log = await shell("audit")
    for action in ("tạo mã mời", "dùng mã mời", "thu hồi vai trò"):
        assert action in log.output
    assert code not in log.output and "Đỗ Văn Quản" not in log.output  # ids only


@pytest.mark.parametrize(("args", "says"), [
    (["--role", "leader"], "cần --org"),
    (["--role", "leader", "--org", "Hội Không Có"], "Không có tổ chức"),
    (["--role", "village_head", "--org", "Hội Nông dân xã"], "cần --village"),
    (["--role", "staff", "--village", "Thôn 1"], "không dùng --org hay --village"),
    (["--role", "chief"], "--role cần là một trong"),
    (["--role", "staff", "--expires", "1y"], "--expires"),
    (["--role", "staff", "--expires", "91d"], "từ 10 phút đến 90 ngày"),
])
def test_a_wrong_invitation_is_one_line(shell, args, says):
    result = shell("invite", "create", *args)
    assert result.exit_code == 2 and says in result.output and "Traceback" not in result.output


def test_audit_refuses_a_bad_date(shell):
    result = shell("audit", "--since", "26/11/2026")
    assert result.exit_code == 2 and "YYYY-MM-DD" in result.output
