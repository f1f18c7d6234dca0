"""Certificates: issued when a person finishes the core course, /chungnhan to get one's own again,
/xacthuc CODE to confirm that a certificate is genuine.

Drawing the PDF is CPU work (about 0.2 s), so it never runs inside a turn's transaction: the turn
checks what it can, then raises NeedsPrefetch; the prefetch reads the person in a short transaction of
its own, picks a fresh code, and draws the PDF in the renderer (another process in `hocvuso run`); the
turn, run again, checks that nothing changed meanwhile, stores the certificate and attaches the PDF.
A turn that cannot use what was drawn (the name changed in between) says so and points to /chungnhan:
it never raises NeedsPrefetch twice.

A certificate needs a name: a person who skipped the name question is asked for it (it is what the
paper certifies, and the bot never prints a messenger's display name the person did not give as theirs).

Codes are looked up only for a chat that is not waiting: a few codes matching nothing
(REFUSED_TRIES within TRIES_WINDOW) make it wait, as with invitation codes. Every miss has the one
answer, whether the code was made up, mistyped or belonged to someone who erased their data. Codes
and names are never logged.
"""

from __future__ import annotations

import asyncio
import unicodedata
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from content.schema import Course
from handlers import texts
from handlers.context import NOT_FETCHED, NeedsPrefetch, Services, Turn
from handlers.core import Attachment, Incoming, Keyboard, Reply
from handlers.home import show_main_menu
from handlers.household import until_text
from handlers.registry import Registry, Replies
from reports.certificate import CertificateData, render_certificate, verify_url
from storage import certificates, queries
from storage.certificates import Issued
from storage.models import CertificateCodeTry

PREFETCH = "certificate"
REFUSED_TRIES = 5
TRIES_WINDOW = timedelta(minutes=10)
FILE_NAME = "giay-chung-nhan.pdf"

SENT = (
    "📜 Giấy chứng nhận hoàn thành {course} của bạn (tệp PDF, in được).\n"
    "Mã xác thực: {code}. Ai cần kiểm tra, nhắn /xacthuc {code} cho mình{qr}. "
    "Gõ /chungnhan để nhận lại giấy bất cứ lúc nào."
)
QR_TOO = ", hoặc quét mã QR trên giấy"
NAME_FIRST = (
    "📜 Để nhận giấy chứng nhận, bạn cho mình biết họ tên để ghi lên giấy: vào /caidat, chọn “Họ tên”, "
    "rồi gõ /chungnhan."
)
ASK_NAME = (
    "📜 Bạn đã học xong {course}! Giấy chứng nhận cần ghi họ tên của bạn, mà mình chưa biết. "
    "Bấm “Nhập họ tên”, nhập xong thì gõ /chungnhan nhé."
)
BTN_NAME = "✏️ Nhập họ tên"
NOT_YET = (
    "📜 Giấy chứng nhận dành cho người học xong {course}. Bạn đã xong {done}/{total} bài, "
    "học tiếp nhé: xong bài cuối là nhận được giấy ngay."
)
GUEST = (
    "📜 Giấy chứng nhận dành cho người đã đăng ký lưu tiến độ và học xong {course}. "
    "Bạn đăng ký rồi học nhé."
)
NOT_READY = "Mình chưa chuẩn bị xong giấy chứng nhận. Bạn gõ /chungnhan để nhận nhé."
OTHER_NAME = (
    "Giấy ghi tên “{issued}” như lúc cấp. Muốn ghi tên mới “{current}”, bạn bấm “Cấp lại theo tên mới”: "
    "giấy mới có mã mới, mã cũ không còn xác thực được nữa."
)
BTN_RENEW = "✏️ Cấp lại theo tên mới"

ASK_CODE = "🔎 Bạn gõ mã xác thực in trên giấy chứng nhận (12 chữ và số, ví dụ K7MX-4RTP-W9AC)."
BAD_FORMAT = "Mã xác thực gồm 12 chữ và số, có thể cách nhau bằng dấu gạch (ví dụ K7MX-4RTP-W9AC). Bạn gõ lại nhé."
GENUINE = "✅ Giấy chứng nhận này do trợ lý Bình dân học vụ số cấp, còn hiệu lực:\n{lines}"
NOT_FOUND = (
    "❌ Mình không tìm thấy giấy chứng nhận nào có mã này. Bạn kiểm tra lại từng ký tự nhé. "
    "Nếu mã đúng như in trên giấy mà vẫn không thấy, giấy đó không do mình cấp hoặc không còn hiệu lực."
)
TOO_MANY = "Bạn đã gõ nhiều mã không đúng. Để giữ an toàn, bạn vui lòng chờ đến {until} rồi thử lại nhé."


def genuine_fields(issued: Issued) -> list[tuple[str, str]]:
    """What a verification shows (chat, `hocvuso certificate verify`, the web page): label and value."""
    return [
        ("Họ tên", issued.full_name),
        ("Khóa học", f"{issued.course_title} ({issued.lesson_count} bài)"),
        ("Ngày cấp", issued.issued_on.strftime("%d/%m/%Y")),
        ("Nơi cấp", f"Phong trào Bình dân học vụ số {issued.commune_name}"),
        ("Mã", certificates.grouped(issued.code)),
    ]


def genuine_text(issued: Issued) -> str:
    return GENUINE.format(lines="\n".join(f"• {label}: {value}" for label, value in genuine_fields(issued)))


# --- before the turn: choose the code and draw --------------------------------------------------

@dataclass(frozen=True)
class Drawn:
    """A certificate drawn outside the turn: the one stored, or a new one (`new`) for the turn to store."""

    person_id: int
    issued: Issued
    pdf: bytes
    new: bool
    replaces: str | None = None  # renewing under a new name: the code it replaces


def certificate_data(issued: Issued, public_url: str | None) -> CertificateData:
    return CertificateData(full_name=issued.full_name, course_title=issued.course_title,
                           lesson_count=issued.lesson_count, commune_name=issued.commune_name,
                           issued_on=issued.issued_on, code=issued.code,
                           verify_url=verify_url(public_url, issued.code))


async def prefetch_certificate(services: Services, incoming: Incoming, argument: str, now: datetime) -> Drawn | None:
    """The person's certificate of the core course, drawn: the stored one, or a new one with a fresh code
    (a new name with `argument` "renew"). None when there is nobody or no name to print."""
    core = services.catalog.core_course
    async with services.database.session() as session:
        person = await queries.person_of(session, incoming.channel, incoming.user_id)
        if person is None or person.id is None:
            return None
        person_id, name = person.id, person.full_name
        stored = await certificates.of_person(session, person_id, core.id)
        old = Issued.of(stored) if stored is not None else None
        renaming = old is not None and argument == "renew" and bool(name) and name != old.full_name
        if old is not None and not renaming:
            issued, new = old, False
        elif not name:
            return None
        else:
            code = await certificates.free_code(session, services.random)
            if old is not None:  # the same certificate (course, date) under the name now given
                issued = replace(old, code=code, full_name=name)
            else:
                issued = Issued(code=code, person_id=person_id, course_id=core.id, course_title=core.title,
                                lesson_count=len(services.core_lessons(now)), full_name=name,
                                commune_name=services.config.commune_name, issued_at=now,
                                issued_on=now.astimezone(services.config.zone).date())
            new = True
    loop = asyncio.get_running_loop()
    pdf = await loop.run_in_executor(services.renderer, render_certificate,
                                     certificate_data(issued, services.config.public_url))
    return Drawn(person_id, issued, pdf, new, old.code if renaming and old is not None else None)


# --- in the turn: store what was drawn, attach it -----------------------------------------------

async def _take(turn: Turn, *, renew: bool = False) -> Drawn | None:
    """The drawn certificate, stored if new; raises NeedsPrefetch on the turn's first run. None when what
    was drawn no longer fits (the name or the certificate changed between the drawing and this turn)."""
    if turn.prefetched is NOT_FETCHED:
        raise NeedsPrefetch(PREFETCH, "renew" if renew else "issue")
    drawn, person = turn.prefetched, turn.person
    if not isinstance(drawn, Drawn) or person is None or drawn.person_id != person.id:
        return None
    stored = await certificates.of_person(turn.session, drawn.person_id, drawn.issued.course_id)
    if not drawn.new:
        return drawn if stored is not None and stored.code == drawn.issued.code else None
    if person.full_name != drawn.issued.full_name:
        return None
    if drawn.replaces is None:
        if stored is not None:
            return None
        await certificates.issue(turn.session, drawn.issued)
        return drawn
    if stored is None or stored.code != drawn.replaces:
        return None
    await certificates.rename(turn.session, stored, drawn.issued.full_name, drawn.issued.code)
    return drawn


def _sent_text(turn: Turn, issued: Issued) -> str:
    code = certificates.grouped(issued.code)
    return SENT.format(course=issued.course_title, code=code, qr=QR_TOO if turn.config.public_url else "")


def _attachment(drawn: Drawn) -> Attachment:
    return Attachment(FILE_NAME, drawn.pdf, kind="document")


async def congratulate(turn: Turn, course: Course, text: str) -> Reply:
    """The congratulation on finishing `course` (handlers/quiz.py); for the core course, with the
    certificate attached, or the request for a name when the person has given none."""
    reply = Reply(text, standalone=True)
    person = turn.person
    if person is None or course.id != turn.catalog.core_course.id:
        return reply
    if not person.full_name:
        return Reply(f"{text}\n\n{NAME_FIRST}", standalone=True)
    drawn = await _take(turn)
    if drawn is None:
        return Reply(f"{text}\n\n{NOT_READY}", standalone=True)
    return Reply(f"{text}\n\n{_sent_text(turn, drawn.issued)}", standalone=True, attachment=_attachment(drawn))


async def on_certificate_command(turn: Turn) -> Replies:
    return await _send_own(turn, renew=False)


async def on_certificate_action(turn: Turn, argument: str) -> Replies:
    """cn:renew (a button shown with the certificate when the name changed since it was issued)."""
    return await _send_own(turn, renew=argument == "renew")


async def _send_own(turn: Turn, *, renew: bool) -> Replies:
    person = turn.person
    core = turn.catalog.core_course
    if person is None:
        return await show_main_menu(turn, GUEST.format(course=core.title))
    stored = await certificates.of_person(turn.session, person.id, core.id)  # type: ignore[arg-type]
    if stored is None:
        progress = await queries.progress_of(turn.session, person.id)  # type: ignore[arg-type]
        required = turn.catalog.core_lessons(turn.today)
        done = sum(1 for lesson_id in required
                   if (row := progress.get(lesson_id)) is not None and row.status == "completed")
        total = len(required)
        if total == 0 or done < total:
            return await show_main_menu(turn, NOT_YET.format(course=core.title, done=done, total=total))
        if not person.full_name:
            turn.goto("main")
            keyboard = Keyboard().add(BTN_NAME, "set:ask_name").add(texts.BTN_MENU, "menu")
            return [Reply(ASK_NAME.format(course=core.title), keyboard.build())]
    renewing = renew and stored is not None and bool(person.full_name) and person.full_name != stored.full_name
    drawn = await _take(turn, renew=renewing)
    turn.goto("main")
    keyboard = Keyboard()
    if drawn is None:
        return [Reply(NOT_READY, keyboard.add(texts.BTN_MENU, "menu").build())]
    text = _sent_text(turn, drawn.issued)
    if person.full_name and person.full_name != drawn.issued.full_name:
        text += "\n\n" + OTHER_NAME.format(issued=drawn.issued.full_name, current=person.full_name)
        keyboard.add(BTN_RENEW, "cn:renew")
    keyboard.add(texts.BTN_MENU, "menu")
    return [Reply(text, keyboard.build(), attachment=_attachment(drawn), standalone=True)]


# --- /xacthuc -----------------------------------------------------------------------------------

async def on_verify_command(turn: Turn) -> Replies:
    """/xacthuc CODE, or /xacthuc alone (then the code is asked for)."""
    argument = turn.incoming.text.strip().partition(" ")[2]
    if not argument.strip():
        turn.goto("ask_certificate_code")
        return await view_ask_code(turn)
    return await verify_text(turn, argument)


async def view_ask_code(turn: Turn) -> Replies:
    return [Reply(ASK_CODE, Keyboard().add(texts.BTN_MENU, "menu").build())]


async def verify_text(turn: Turn, text: str) -> Replies:
    """Check a typed code; a made-up, mistyped or erased one all get NOT_FOUND."""
    code = certificates.normalise_code(text)
    if code is None and not _shaped_like_a_code(text):
        turn.goto("ask_certificate_code")
        return [Reply(BAD_FORMAT), *await view_ask_code(turn)]
    waiting = await _waiting(turn)
    if waiting is not None:
        return waiting
    # Twelve letters and digits with one that no code uses (a B for an 8) match nothing: the person
    # hears "not found", not that the shape is wrong, and the try counts like any other miss.
    row = await certificates.by_code(turn.session, code) if code is not None else None
    if row is None:
        await queries.record_chat_try(turn.session, CertificateCodeTry, turn.incoming.channel,
                                      turn.incoming.user_id, turn.now, TRIES_WINDOW)
        waiting = await _waiting(turn)
        if waiting is not None:
            return [Reply(NOT_FOUND), *waiting]
        turn.goto("ask_certificate_code")
        return [Reply(NOT_FOUND), *await view_ask_code(turn)]
    return await show_main_menu(turn, genuine_text(Issued.of(row)))


def _shaped_like_a_code(text: str) -> bool:
    """Twelve letters or digits once spaces and dashes are left out, whatever the letters."""
    flat = "".join(character for character in unicodedata.normalize("NFKC", text) if character not in " -_.–—")
    return len(flat) == certificates.CODE_LENGTH and flat.isascii() and flat.isalnum()


async def _waiting(turn: Turn) -> Replies | None:
    """The polite wait after too many codes matching nothing; None when this chat may try."""
    tries = await queries.chat_tries(turn.session, CertificateCodeTry, turn.incoming.channel,
                                     turn.incoming.user_id, turn.now - TRIES_WINDOW)
    if len(tries) < REFUSED_TRIES:
        return None
    until = tries[-REFUSED_TRIES] + TRIES_WINDOW
    return await show_main_menu(turn, TOO_MANY.format(until=until_text(turn, until)))


def register(registry: Registry) -> None:
    registry.add_command("chungnhan", "Nhận giấy chứng nhận hoàn thành khóa học", on_certificate_command)
    registry.add_command("xacthuc", "Kiểm tra một giấy chứng nhận bằng mã xác thực", on_verify_command)
    registry.add_step("ask_certificate_code", view_ask_code, verify_text)
    registry.add_action("cn", on_certificate_action)
    registry.add_prefetch(PREFETCH, prefetch_certificate)
