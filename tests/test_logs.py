"""What the bot leaves behind: logs without tokens, names, household codes or message text (issue 8, #6),
and no erased name left in the SQLite file."""

from __future__ import annotations

import logging
import random
import sqlite3
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlmodel import select

from bot.app import build_services
from bot.logs import SafeFormatter, configure_from_settings, release_startup_logs
from bot.settings import Settings
from handlers import texts
from handlers.dispatcher import Dispatcher
from storage import inline_sqlite
from storage.db import Database, is_sqlite
from storage.models import Household
from tests.fakes.telegram import TOKEN
from tests.support import Chat, converse
from tests.test_dialog_registration import register

NAME_A = "Phùng Thị Xuyến"
NAME_B = "Khúc Văn Thưởng"
NAME_C = "Doãn Thị Nguyệt"
FREE_TEXT = "cho tôi hỏi chuyện riêng nhà Thưởng"


def formatted(error: BaseException, secrets: tuple[str, ...] = ()) -> str:
    """How the formatter renders `error` logged with log.exception."""
    try:
        raise error
    except BaseException:
        record = logging.getLogger("test").makeRecord("test", logging.ERROR, __file__, 1, "hỏng", (), None)
        import sys

        record.exc_info = sys.exc_info()
    return SafeFormatter(secrets).format(record)


# --- the formatter -----------------------------------------------------------------------------------

def test_exception_messages_that_may_carry_data_are_left_out():
    output = formatted(ValueError(f"tên không hợp lệ: {NAME_A}"))
    assert NAME_A not in output
    assert "ValueError" in output and "Traceback" in output and "formatted" in output  # class and frames stay


def test_a_chained_error_keeps_every_class_and_no_message():
    try:
        try:
            raise KeyError(NAME_B)
        except KeyError as inner:
            raise RuntimeError(f"nhà {NAME_B}") from inner
    except RuntimeError as error:
        output = formatted(error)
    assert NAME_B not in output
    assert "KeyError" in output and "RuntimeError" in output and "direct cause" in output


def test_network_errors_keep_their_message_but_never_a_secret():
    output = formatted(ConnectionRefusedError(111, f"Connect call failed to /bot{TOKEN}"), secrets=(TOKEN,))
    assert "Connect call failed" in output and TOKEN not in output


def test_a_message_cached_by_another_formatter_is_not_reused():
    try:
        raise ValueError(NAME_A)
    except ValueError:
        import sys

        record = logging.getLogger("test").makeRecord("test", logging.ERROR, __file__, 1, "x", (), sys.exc_info())
    assert NAME_A in logging.Formatter().format(record)  # caches record.exc_text
    assert NAME_A not in SafeFormatter(()).format(record)


async def test_database_errors_never_carry_parameters_and_keep_their_codes(database_url):
    database = Database(database_url)
    try:
        async with database.session() as session:
            connection = await session.connection()
            await connection.execute(text("SELECT * FROM khong_co_bang WHERE ten = :ten"), {"ten": NAME_A})
    except DBAPIError as error:
        caught = error
    finally:
        await database.dispose()
    assert NAME_A not in str(caught)  # hide_parameters on every engine
    output = formatted(caught)
    assert NAME_A not in output
    expected = "SQLITE_ERROR" if is_sqlite(database_url) else "42P01"  # what an operator needs to look up
    assert "ProgrammingError" in output or "OperationalError" in output
    assert expected in output


# --- a whole conversation with a failing database -----------------------------------------------

async def fail_underneath(database: Database) -> None:
    """From now on, renaming a person fails inside the database, and the household table is gone."""
    if is_sqlite(database.url):
        statements = ["CREATE TRIGGER hong BEFORE UPDATE OF full_name ON person "
                      "BEGIN SELECT RAISE(ABORT, 'ổ đĩa hỏng'); END"]
    else:
        statements = [
            "CREATE FUNCTION hong() RETURNS trigger LANGUAGE plpgsql AS "
            "$f$ BEGIN RAISE EXCEPTION 'hàng %', row_to_json(NEW); END $f$",
            "CREATE TRIGGER hong BEFORE UPDATE OF full_name ON person FOR EACH ROW EXECUTE FUNCTION hong()",
        ]
    statements.append("ALTER TABLE household RENAME TO household_mat")
    async with database.session() as session:
        connection = await session.connection()
        for statement in statements:
            await connection.exec_driver_sql(statement)


async def test_a_conversation_on_a_failing_database_leaves_nothing_personal_on_stderr(
    database_url, clock, capfd, restore_logging
):
    settings = Settings(_env_file=None, database_url=database_url, telegram_token=TOKEN)  # type: ignore[call-arg]
    configure_from_settings(settings, logging.INFO)  # exactly as `hocvuso run` does
    services = await build_services(settings, clock=clock, rng=random.Random(7))
    release_startup_logs()  # as `hocvuso run` does once it has started
    try:
        dispatcher = Dispatcher(services)
        first, second, third = Chat(dispatcher, "an"), Chat(dispatcher, "binh"), Chat(dispatcher, "chi")
        await register(first, name=NAME_A)
        async with services.database.session() as session:
            code = (await session.exec(select(Household))).one().code
        await converse(second, [("/start", "Bạn có đồng ý không?"), ("#Đồng ý", "họ và tên")])
        await converse(third, [("/start", "đồng ý"), ("#Đồng ý", "họ và tên"), (NAME_C, "thôn/xóm nào"),
                               ("#Thôn 2", "nhóm nào"), ("#Người dân", "Hộ gia đình"), ("#Nhập mã hộ", "mã hộ")])
        await fail_underneath(services.database)
        assert texts.SORRY in await second.say(NAME_B)
        assert texts.SORRY in await third.say(code)
        await second.say(FREE_TEXT)
        await first.say("/caidat")
    finally:
        await services.database.dispose()
    stderr = capfd.readouterr().err
    assert stderr.count("handler failed") >= 2, stderr  # the failures were logged...
    for private in (TOKEN, NAME_A, NAME_B, NAME_C, code, FREE_TEXT, "Thưởng"):
        assert private not in stderr, private  # ...without anything of the people
    assert "Traceback" in stderr


# --- erasure leaves no bytes behind ------------------------------------------------------------------

async def test_an_erased_name_is_gone_from_the_sqlite_file(tmp_path, clock, monkeypatch):
    connect = sqlite3.connect

    def without_secure_delete(*args: object, **kwargs: object) -> sqlite3.Connection:
        connection = connect(*args, **kwargs)  # type: ignore[arg-type]
        connection.execute("PRAGMA secure_delete=OFF")  # as SQLite builds whose default is off
        return connection

    monkeypatch.setattr(inline_sqlite.sqlite3, "connect", without_secure_delete)
    path = tmp_path / "xoa.db"
    name = "Quàng Thị Zuyến Độc Nhất"
    settings = Settings(_env_file=None, database_url=f"sqlite+aiosqlite:///{path}")  # type: ignore[call-arg]
    services = await build_services(settings, clock=clock, rng=random.Random(3))
    try:
        chat = Chat(Dispatcher(services))
        await register(chat, name=name)
        await converse(chat, [("/xoadulieu", "chắc chắn"), ("#Xóa hết", "Đã xóa toàn bộ dữ liệu")])
    finally:
        await services.database.dispose()
    monkeypatch.undo()
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()
    encoded = name.encode()
    for file in (path, Path(f"{path}-wal")):
        if file.exists():
            assert encoded not in file.read_bytes(), file.name
