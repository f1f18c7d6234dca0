"""Certificates: issued on finishing the core course, sent again with /chungnhan, verified with /xacthuc,
`hocvuso certificate verify` and the page /xacthuc/{code}; unchanged by a renamed course; gone on erasure."""

from __future__ import annotations

import asyncio
import functools
import io
import logging
import multiprocessing
import random
import unicodedata
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest
import zxingcpp
from pypdf import PdfReader
from sqlalchemy import inspect, text
from sqlmodel import select
from typer.testing import CliRunner

from bot.app import build_services
from bot.cli import app as cli_app
from bot.settings import Settings, SettingsError, load_settings
from bot.web import build_web_app
from handlers.dispatcher import Dispatcher
from reports.certificate import CertificateData, render_certificate
from storage import certificates, figures, migrate
from storage.db import Database
from storage.models import Certificate, CertificateCodeTry, ChannelAccount, LessonProgress, Person
from storage.report import reporting_period
from tests.support import Chat, converse
from tests.test_dialog_learning import answer
from tests.test_dialog_registration import register

HANG = "Nguyễn Thị Hằng"
PUBLIC = "https://hocvuso.example.vn"
COMMUNE = "xã Cát Thành"
MADE_UP = "KKKK-KKKK-KKKK"


# --- helpers ------------------------------------------------------------------------------------

@pytest.fixture
def public_settings(sqlite_url) -> Settings:
    return Settings(_env_file=None, database_url=sqlite_url, public_url=PUBLIC)  # type: ignore[call-arg]


@pytest.fixture
async def services(public_settings, clock):
    built = await build_services(public_settings, clock=clock, rng=random.Random(7))
    yield built
    await built.database.dispose()


async def finish_core(chat: Chat, services) -> str:
    """Finish the core course: every lesson but the last stored as done, the last one passed in chat.
    Returns the transcript of the final answer."""
    now = services.clock()
    async with services.database.session() as session:
        person = (await session.exec(select(Person).join(ChannelAccount).where(
            ChannelAccount.channel == chat.channel, ChannelAccount.external_id == chat.user))).one()
        for lesson_id in services.core_lessons(now)[:-1]:
            session.add(LessonProgress(person_id=person.id, lesson_id=lesson_id, status="completed",
                                       best_score=100, started_at=now, completed_at=now))
    return await pass_last_lesson(chat, services)


async def pass_last_lesson(chat: Chat, services) -> str:
    last = services.catalog.lesson(services.core_lessons(services.clock())[-1])
    await chat.press(f"lesson:{last.id}")
    for _ in range(len(last.cards) - 1):
        await chat.choose("Tiếp")
    await chat.choose("Làm bài kiểm tra")
    await answer(chat, last, correct=True)
    return chat.transcript


def attached_pdf(chat: Chat) -> bytes:
    files = [reply.attachment for reply in chat.replies if reply.attachment is not None]
    assert len(files) == 1, chat.transcript
    assert files[0].kind == "document" and files[0].file_name.endswith(".pdf")
    return files[0].data


def pdf_text(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


def qr_codes(pdf: bytes) -> list[str]:
    page = PdfReader(io.BytesIO(pdf)).pages[0]
    return [found.text for image in page.images for found in zxingcpp.read_barcodes(image.image)]


async def stored(services) -> list[Certificate]:
    async with services.database.session() as session:
        return list((await session.exec(select(Certificate))).all())


# --- issuing ------------------------------------------------------------------------------------

async def _finished_in_figures(services, at: datetime) -> int:
    core = services.core_lessons(at)
    counted = await services.database.read(lambda connection: figures.commune_figures(connection, core, at))
    return counted.totals.finished_core


async def test_lessons_added_to_the_core_count_from_the_next_reporting_year(services, clock):
    """The second edition's four core lessons count towards "finished" from 11/12/2026, the first day of
    the 2027 reporting year: who finished the twelve keeps it in the 2026 report and the certificate, and
    finishing the four later is congratulated again, with the same certificate."""
    catalog = services.catalog
    assert set(catalog.core_course.required_from.values()) == {date(2026, 12, 11)}
    last_day_2026 = datetime(2026, 12, 10, 16, 59, tzinfo=UTC)  # 23:59 on 10/12 in Ninh Bình
    first_day_2027 = datetime(2026, 12, 10, 17, 0, tzinfo=UTC)
    twelve = services.core_lessons(last_day_2026)
    assert len(twelve) == 12 and services.core_lessons(clock()) == twelve
    assert services.core_lessons(first_day_2027) == tuple(catalog.core_course.lessons)
    period = reporting_period(2026, services.config.report_deadline, services.config.zone)
    assert catalog.core_lessons(period.last_day) == twelve  # what the 2026 report counts

    chat = Chat(Dispatcher(services))
    await register(chat, name=HANG)
    transcript = await finish_core(chat, services)
    assert f"Chúc mừng! Bạn đã hoàn thành cả {catalog.core_course.title}" in transcript
    assert await _finished_in_figures(services, clock()) == 1
    await converse(chat, [("/tiendo", f"đã xong 12/{len(catalog.core_course.lessons)} bài")])

    clock.now = first_day_2027 + timedelta(days=1)
    assert await _finished_in_figures(services, clock()) == 0  # the 2027 figures ask for all sixteen
    assert await _finished_in_figures(services, last_day_2026) == 1  # the 2026 ones still count her
    new_ones = [lesson for lesson in catalog.core_course.lessons if lesson not in twelve]
    async with services.database.session() as session:
        person = (await session.exec(select(Person))).one()
        for lesson_id in new_ones[:-1]:
            session.add(LessonProgress(person_id=person.id, lesson_id=lesson_id, status="completed",
                                       best_score=100, started_at=clock(), completed_at=clock()))
    transcript = await pass_last_lesson(chat, services)
    assert f"Chúc mừng! Bạn đã hoàn thành cả {catalog.core_course.title}" in transcript
    assert await _finished_in_figures(services, clock()) == 1
    [certificate] = await stored(services)  # the one issued in 2026, sent again
    assert certificate.lesson_count == 12 and "📜 Giấy chứng nhận hoàn" in transcript.split("Chúc mừng!")[-1]



async def test_finishing_the_core_course_brings_the_certificate(public_settings, clock, caplog):
    """In a renderer process, as `hocvuso run` draws: what crosses to it must pickle."""
    caplog.set_level(logging.DEBUG)
    renderer = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
    services = await build_services(public_settings, clock=clock, rng=random.Random(7), renderer=renderer)
    try:
        chat = Chat(Dispatcher(services))
        await register(chat, name=HANG)
        transcript = await finish_core(chat, services)
        core = services.catalog.core_course
        assert f"Chúc mừng! Bạn đã hoàn thành cả {core.title}" in transcript
        assert "📜 Giấy chứng nhận hoàn thành" in transcript
        [certificate] = await stored(services)
        code = certificate.code
        assert len(code) == 12 and set(code) <= set("ACDEFGHJKMNPRTUVWXY34679")
        assert f"Mã xác thực: {certificates.grouped(code)}" in transcript and "quét mã QR" in transcript
        assert (certificate.full_name, certificate.course_title, certificate.lesson_count) == (
            HANG, core.title, len(services.core_lessons(clock())))
        assert certificate.issued_on == date(2026, 11, 2) and certificate.commune_name == COMMUNE

        pdf = attached_pdf(chat)
        assert pdf.startswith(b"%PDF")
        content = pdf_text(pdf)
        assert HANG in content and COMMUNE in content and core.title in content
        assert "ngày 02 tháng 11 năm 2026" in content and certificates.grouped(code) in content
        assert qr_codes(pdf) == [f"{PUBLIC}/xacthuc/{code}"]
        # The keyboard of the quiz result stays with the certificate's message.
        assert any("Danh sách bài" in label for label in chat.labels)
    finally:
        await services.database.dispose()
        renderer.shutdown()
    assert HANG not in caplog.text and code not in caplog.text and certificates.grouped(code) not in caplog.text


async def test_chungnhan_sends_the_same_certificate_and_never_a_second_one(chat, services):
    await register(chat, name=HANG)
    await finish_core(chat, services)
    first = attached_pdf(chat)
    [certificate] = await stored(services)
    await converse(chat, [("/chungnhan", f"Mã xác thực: {certificates.grouped(certificate.code)}")])
    assert attached_pdf(chat) == first  # drawn again from what was stored: the very same file
    # Passing the last quiz again finishes nothing new.
    again = await pass_last_lesson(chat, services)
    assert "Bạn đã hoàn thành bài" in again and "Chúc mừng" not in again
    assert [c.code for c in await stored(services)] == [certificate.code]


async def test_a_person_without_a_name_is_asked_for_it_first(chat, services):
    await converse(chat, [("/start", "đồng ý"), ("#Đồng ý", "họ và tên"), ("#Bỏ qua", "thôn/xóm")])
    transcript = await finish_core(chat, services)
    assert "Chúc mừng" in transcript and "cho mình biết họ tên" in transcript
    assert all(reply.attachment is None for reply in chat.replies) and await stored(services) == []
    await converse(chat, [
        ("/chungnhan", "Giấy chứng nhận cần ghi họ tên của bạn"),
        ("#Nhập họ tên", "họ và tên"),
        ("Trần Thị Hằng", "Đã lưu"),
        ("/chungnhan", "📜 Giấy chứng nhận hoàn thành"),
    ])
    assert "Trần Thị Hằng" in pdf_text(attached_pdf(chat))
    assert [c.full_name for c in await stored(services)] == ["Trần Thị Hằng"]


async def test_only_those_who_finished_get_one(chat, services):
    total = len(services.core_lessons(services.clock()))
    await converse(chat, [("/chungnhan", "dành cho người đã đăng ký")])
    await register(chat, name=HANG)
    await converse(chat, [("/chungnhan", f"Bạn đã xong 0/{total} bài")])
    assert all(reply.attachment is None for reply in chat.replies) and await stored(services) == []


async def test_a_new_name_can_be_put_on_a_new_certificate(chat, services):
    await register(chat, name=HANG)
    await finish_core(chat, services)
    [old] = await stored(services)
    await converse(chat, [("/caidat", "Họ tên"), ("#Họ tên", "họ và tên"), ("Nguyễn Thị Thu Hằng", "Đã lưu")])
    await converse(chat, [("/chungnhan", "Giấy ghi tên “Nguyễn Thị Hằng” như lúc cấp")])
    assert HANG in pdf_text(attached_pdf(chat))
    await converse(chat, [("#Cấp lại theo tên mới", "📜 Giấy chứng nhận hoàn thành")])
    [new] = await stored(services)
    assert new.full_name == "Nguyễn Thị Thu Hằng" and new.code != old.code and new.issued_on == old.issued_on
    assert "Nguyễn Thị Thu Hằng" in pdf_text(attached_pdf(chat))
    verifier = Chat(chat.dispatcher, user="kiemtra")
    await converse(verifier, [(f"/xacthuc {old.code}", "không tìm thấy"), (f"/xacthuc {new.code}", "Thu Hằng")])


# --- verifying ----------------------------------------------------------------------------------

async def test_xacthuc_confirms_a_real_code_refuses_a_made_up_one_and_makes_guessers_wait(dispatcher, services):
    person = Chat(dispatcher, user="hang")
    await register(person, name=HANG)
    await finish_core(person, services)
    [certificate] = await stored(services)
    code = certificate.code
    title = services.catalog.core_course.title

    verifier = Chat(dispatcher, user="nha-tuyen-dung")  # never registered: a guest may verify
    spaced = " ".join(code.lower()[i:i + 4] for i in (0, 4, 8))
    wide = code.translate({c: chr(c + 0xFEE0) for c in range(0x21, 0x7F)})  # a phone's full-width letters
    assert unicodedata.normalize("NFKC", wide) == code
    for typed in (f"/xacthuc {certificates.grouped(code)}", f"/xacthuc {spaced}", f"/xacthuc {wide}"):
        answer_text = await verifier.say(typed)
        for expected in ("✅ Giấy chứng nhận này do trợ lý Bình dân học vụ số cấp", f"Họ tên: {HANG}",
                         f"Khóa học: {title} ({certificate.lesson_count} bài)", "Ngày cấp: 02/11/2026", COMMUNE):
            assert expected in answer_text, (typed, answer_text)
    await converse(verifier, [
        ("/xacthuc", "Bạn gõ mã xác thực"),
        ("123", "gồm 12 chữ và số"),  # not a code at all: told so, not counted
        (MADE_UP, "không tìm thấy giấy chứng nhận nào có mã này"),
    ])
    # Twelve letters and digits with some no code uses (B, E, O...): not found, and counted, like any miss.
    for typed in (MADE_UP, "ABCD-EFGH-OBOE", MADE_UP):
        await converse(verifier, [(f"/xacthuc {typed}", "không tìm thấy")])
    await converse(verifier, [(f"/xacthuc {MADE_UP}", "chờ đến 08:10")])  # the fifth miss in ten minutes
    assert HANG not in await verifier.say(f"/xacthuc {code}")  # while waiting, nothing is looked up
    async with services.database.session() as session:
        assert len((await session.exec(select(CertificateCodeTry))).all()) == 5
    services.clock.advance(minutes=10)
    await converse(verifier, [(f"/xacthuc {code}", f"Họ tên: {HANG}")])
    # Another chat was never held up by this one's guesses.
    await converse(Chat(dispatcher, user="khac"), [(f"/xacthuc {code}", f"Họ tên: {HANG}")])


async def test_the_page_and_the_shell_verify_too(chat, services, monkeypatch, sqlite_url):
    await register(chat, name=HANG)
    await finish_core(chat, services)
    [certificate] = await stored(services)
    web = build_web_app(services.database, None, None)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=web), base_url="http://test") as client:
        found = await client.get(f"/xacthuc/{certificate.code}")
        assert found.status_code == 200 and found.headers["cache-control"] == "no-store"
        assert HANG in found.text and COMMUNE in found.text and "02/11/2026" in found.text
        grouped = await client.get(f"/xacthuc/{certificates.grouped(certificate.code).lower()}")
        assert grouped.status_code == 200
        for path in (MADE_UP, "x" * 500, "%3Cscript%3E"):
            missing = await client.get(f"/xacthuc/{path}")
            assert missing.status_code == 404 and "Không tìm thấy" in missing.text and "<script>" not in missing.text

    monkeypatch.setenv("HOCVUSO_DATABASE_URL", sqlite_url)
    shell = functools.partial(asyncio.to_thread, lambda *args: CliRunner().invoke(cli_app, list(args)))
    result = await shell("certificate", "verify", certificates.grouped(certificate.code))
    assert result.exit_code == 0, result.output
    assert HANG in result.output and "Ngày cấp: 02/11/2026" in result.output
    missing = await shell("certificate", "verify", MADE_UP)
    assert missing.exit_code == 1 and "Không có giấy chứng nhận nào mang mã này" in missing.output
    assert (await shell("certificate", "verify", "abc")).exit_code == 2


async def test_a_name_is_escaped_on_the_page(services):
    now = services.clock()
    async with services.database.session() as session:
        session.add(Certificate(code="ACDEFGHJKMNP", person_id=None, course_id="co-ban", course_title="<b>Khóa</b>",
                                lesson_count=1, full_name="<script>alert(1)</script>", commune_name="xã & thôn",
                                issued_at=now, issued_on=date(2026, 11, 2)))
    web = build_web_app(services.database, None, None)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=web), base_url="http://test") as client:
        page = (await client.get("/xacthuc/ACDEFGHJKMNP")).text
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<b>" not in page and "xã &amp; thôn" in page


# --- survives the course, not the person ----------------------------------------------------------

async def test_a_certificate_survives_a_renamed_course(tmp_path, content_copy, clock):
    settings = Settings(_env_file=None, database_url=f"sqlite+aiosqlite:///{tmp_path / 'c.db'}",  # type: ignore[call-arg]
                        content_dir=content_copy)
    before = await build_services(settings, clock=clock, rng=random.Random(3))
    try:
        chat = Chat(Dispatcher(before))
        await register(chat, name=HANG)
        await finish_core(chat, before)
        old_title = before.catalog.core_course.title
        lessons = len(before.core_lessons(clock()))
    finally:
        await before.database.dispose()

    course_file = content_copy / "courses" / "co-ban.yaml"
    course_file.write_text(course_file.read_text(encoding="utf-8").replace(old_title, "Kỹ năng số cho mọi nhà"),
                           encoding="utf-8")
    after = await build_services(settings, clock=clock, rng=random.Random(4))
    try:
        assert after.catalog.core_course.title == "Kỹ năng số cho mọi nhà"
        chat = Chat(Dispatcher(after))
        await converse(chat, [("/chungnhan", f"Giấy chứng nhận hoàn thành {old_title}")])
        content = pdf_text(attached_pdf(chat))
        assert old_title in content and f"cả {lessons} bài" in content and "Kỹ năng số cho mọi nhà" not in content
        [certificate] = await stored(after)
        await converse(Chat(Dispatcher(after), user="b"), [(f"/xacthuc {certificate.code}", f"Khóa học: {old_title}")])
    finally:
        await after.database.dispose()


async def test_erasure_takes_the_certificate_with_it(chat, services):
    await register(chat, name=HANG)
    await finish_core(chat, services)
    [certificate] = await stored(services)
    await converse(chat, [("/xoadulieu", "chắc chắn"), ("#Xóa hết", "Đã xóa toàn bộ dữ liệu")])
    assert await stored(services) == []
    async with services.database.session() as session:
        assert await certificates.verify(session, certificate.code) is None
    await converse(Chat(chat.dispatcher, user="b"), [(f"/xacthuc {certificate.code}", "không tìm thấy")])


# --- the PDF and the setting ------------------------------------------------------------------------

def test_without_a_public_address_there_is_no_qr_code():
    data = CertificateData(full_name="Đặng Thị Ỷ", course_title="Khóa kỹ năng số cơ bản", lesson_count=12,
                           commune_name=COMMUNE, issued_on=date(2026, 12, 1), code="ACDEFGHJKMNP")
    pdf = render_certificate(data)
    assert len(PdfReader(io.BytesIO(pdf)).pages[0].images) == 0
    content = pdf_text(pdf)
    assert "Đặng Thị Ỷ" in content and "/xacthuc ACDE-FGHJ-KMNP" in content and "quét" not in content
    assert render_certificate(data) == pdf  # the same certificate is the same file


@pytest.mark.parametrize("value", ["ftp://hocvuso.example.vn", "hocvuso.example.vn", "https://x.vn/?a=1", "https://"])
def test_a_bad_public_url_is_one_line_naming_the_setting(monkeypatch, value):
    monkeypatch.setenv("HOCVUSO_PUBLIC_URL", value)
    with pytest.raises(SettingsError) as raised:
        load_settings(_env_file=None)
    assert str(raised.value).startswith("Cài đặt HOCVUSO_PUBLIC_URL không hợp lệ: ")
    assert "\n" not in str(raised.value)


def test_a_public_url_loses_its_trailing_slash(monkeypatch):
    monkeypatch.setenv("HOCVUSO_PUBLIC_URL", "https://hocvuso.example.vn/")
    assert load_settings(_env_file=None).public_url == PUBLIC


# --- the migration ------------------------------------------------------------------------------

async def test_0005_upgrades_and_downgrades(database_url):
    database = Database(database_url)
    then = datetime(2026, 11, 2, 1, 0)
    try:
        await migrate.upgrade(database.engine, "0004")
        async with database.engine.begin() as connection:
            await connection.execute(text(
                "INSERT INTO person (id, full_name, is_household_head, consent_at, created_at, consent_version, "
                "consent_offered) VALUES (1, :name, false, :at, :at, 2, 2)"), {"name": HANG, "at": then})
        await migrate.upgrade(database.engine)
        async with database.engine.begin() as connection:
            await connection.execute(text(
                "INSERT INTO certificate (code, person_id, course_id, course_title, lesson_count, full_name, "
                "commune_name, issued_at, issued_on) VALUES ('ACDEFGHJKMNP', 1, 'co-ban', 'Khóa', 12, :name, "
                ":commune, :at, :day)"), {"name": HANG, "commune": COMMUNE, "at": then, "day": date(2026, 11, 2)})
        async with database.session() as session:
            issued = await certificates.verify(session, "acde-fghj-kmnp")
        assert issued is not None and issued.full_name == HANG and issued.issued_at == then.replace(tzinfo=UTC)

        await migrate.downgrade(database.engine, "0004")
        async with database.engine.connect() as connection:
            tables = await connection.run_sync(lambda sync: set(inspect(sync).get_table_names()))
        assert "certificate" not in tables and "certificatecodetry" not in tables and "person" in tables
        await migrate.upgrade(database.engine)
        assert await migrate.current_revision(database.engine) == migrate.head_revision()
    finally:
        await database.dispose()


def test_codes_are_read_like_invitation_codes():
    assert certificates.normalise_code(" acde-fghj kmnp ") == "ACDEFGHJKMNP"
    assert certificates.normalise_code("ＡＣＤＥ－ＦＧＨＪ－ＫＭＮＰ") == "ACDEFGHJKMNP"
    assert certificates.normalise_code("ACDE-FGHJ-KMN0") is None  # 0 is not in the alphabet
    assert certificates.normalise_code("ACDE") is None
    codes = {certificates.new_code(random.Random(seed)) for seed in range(50)}
    assert len(codes) == 50 and all(len(code) == 12 for code in codes)
