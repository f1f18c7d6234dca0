"""/tiendo (my progress), /dulieucuatoi (my data) and /xoadulieu (erase my data)."""

from __future__ import annotations

from datetime import timedelta

from handlers import texts
from handlers.context import Turn
from handlers.core import Keyboard, Reply
from handlers.home import CONSENT_VERSION, consent_reply, main_menu_buttons, show_main_menu
from handlers.linking import channel_label
from handlers.registration import describe_person
from handlers.registry import Registry, Replies
from handlers.roles import ROLE_LABELS, unit_label
from storage import access, linking, queries
from storage.models import Activity, LessonProgress, QuizAttempt

PROGRESS = (
    "📈 Tiến độ của bạn\n"
    "• {course}: đã xong {done}/{total} bài\n"
    "• Số ngày học liên tiếp: {streak}\n"
    "{scores}"
)
SCORES_HEADER = "• Điểm bài kiểm tra gần đây:"
SCORE_LINE = "   – {title}: {score}% {mark}"
NO_SCORES = "• Bạn chưa làm bài kiểm tra nào."
REVIEW_TITLE = "Ôn tập"
PROGRESS_GUEST = "Bạn chưa đăng ký nên mình không lưu tiến độ. Đăng ký để theo dõi kết quả nhé."
BTN_CONTINUE = "▶️ Học tiếp: {title}"

MY_DATA = (
    "🔒 Dữ liệu mình đang lưu về bạn:\n"
    "• Đồng ý lưu dữ liệu lúc: {consent}\n"
    "• Họ tên: {name}\n• Thôn/xóm: {village}\n• Nhóm: {group}\n• Hộ gia đình: {household}\n"
    "• Tổ chức: {orgs}\n• VNeID mức 2: {vneid}\n"
    "• Vai trò: {roles}\n"
    "• Lãnh đạo tổ chức và trưởng thôn xem được tên bạn: {named}\n"
    "• Nhắc học khi lâu không học: {nudges}\n"
    "• Tài khoản nhắn tin: {accounts}\n"
    "• Bài học đã mở: {lessons}; lượt làm bài kiểm tra: {attempts}; câu trả lời: {answers}; "
    "nhật ký hoạt động: {activities} mục\n\n"
    "Dữ liệu dùng để xã tổng hợp kết quả phong trào. Muốn xóa hết, gõ /xoadulieu."
)
LINKED_APPS = " (đã liên kết: dùng chung dữ liệu)"
LINK_MORE = " (liên kết thêm Zalo hoặc Telegram: /lienket)"
MY_DATA_GUEST = (
    "Bạn chưa đồng ý lưu dữ liệu nên mình không lưu thông tin cá nhân nào của bạn. "
    "Mình chỉ giữ mã trò chuyện của ứng dụng nhắn tin để biết bạn đang ở bước nào."
)
ERASE_CONFIRM = (
    "⚠️ Bạn chắc chắn muốn xóa toàn bộ dữ liệu của mình? Tiến độ học, kết quả kiểm tra, hộ gia đình "
    "và tổ chức đã chọn sẽ bị xóa, không lấy lại được."
)
ERASE_LINKED = ("\n\nBạn đã liên kết {apps}: dữ liệu là một, nên tài khoản trên các ứng dụng đó cũng bị xóa cùng.")
ERASED = (
    "Đã xóa toàn bộ dữ liệu của bạn. Số liệu tổng của xã chỉ còn giữ con số ẩn danh. "
    "Gõ /start nếu muốn bắt đầu lại."
)
ERASE_CANCELLED = "Đã hủy. Dữ liệu của bạn vẫn được giữ nguyên."
# "Học cùng": a resident without a phone of their own asks the member beside them to erase their data.
ERASED_FOR_OTHER = (
    "Đã xóa toàn bộ dữ liệu của {name} theo yêu cầu của họ. Buổi học cùng đã kết thúc; từ giờ là tài khoản "
    "của chính bạn."
)
NOTHING_TO_ERASE = "Mình không lưu dữ liệu cá nhân nào của bạn, nên không có gì để xóa."


async def show_progress(turn: Turn, _arg: str = "") -> Replies:
    turn.goto("main")
    person = turn.person
    if person is None:
        return [Reply(PROGRESS_GUEST, main_menu_buttons(turn).build())]
    course = turn.catalog.core_course
    progress = await queries.progress_of(turn.session, person.id)  # type: ignore[arg-type]
    done = [lid for lid in course.lessons if _completed(progress.get(lid))]
    days = await queries.activity_days(
        turn.session, person.id, turn.config.zone, turn.now - timedelta(days=400)  # type: ignore[arg-type]
    )
    attempts = await queries.recent_attempts(turn.session, person.id)  # type: ignore[arg-type]
    lines = [SCORES_HEADER] if attempts else [NO_SCORES]
    for attempt in attempts:
        title = _attempt_title(turn, attempt)
        lines.append(SCORE_LINE.format(title=title, score=attempt.score, mark="✅" if attempt.passed else "❌"))
    text = PROGRESS.format(
        course=course.title, done=len(done), total=len(course.lessons),
        streak=queries.streak(days, turn.today), scores="\n".join(lines),
    )
    keyboard = Keyboard()
    upcoming = next((lid for lid in course.lessons if lid not in done), None)
    lesson = turn.catalog.lesson(upcoming) if upcoming else None
    if lesson is not None:
        keyboard.add(BTN_CONTINUE.format(title=lesson.title), f"lesson:{lesson.id}")
    keyboard.add(texts.BTN_LEARN, "hoc").add(texts.BTN_MENU, "menu")
    return [Reply(text, keyboard.build())]


def _attempt_title(turn: Turn, attempt: QuizAttempt) -> str:
    """The lesson's title, or "Ôn tập" for a review (whose lesson id is only a marker)."""
    if attempt.kind == "review":
        return REVIEW_TITLE
    lesson = turn.catalog.lesson(attempt.lesson_id)
    return lesson.title if lesson else attempt.lesson_id


def _completed(progress: LessonProgress | None) -> bool:
    return progress is not None and progress.status == "completed"


async def show_my_data(turn: Turn, _arg: str = "") -> Replies:
    turn.goto("main")
    person = turn.person
    if person is None:
        return [Reply(MY_DATA_GUEST, main_menu_buttons(turn).build())]
    summary = await describe_person(turn)
    session, person_id = turn.session, person.id
    accounts = await queries.channel_accounts_of(session, person_id)  # type: ignore[arg-type]
    roles = [f"{ROLE_LABELS[grant.role]}{await unit_label(turn, grant)}"
             for grant in await access.active_grants(session, person_id)]  # type: ignore[arg-type]
    text = MY_DATA.format(
        roles="; ".join(roles) or "người học",
        named="có" if person.consent_version >= CONSENT_VERSION else "không (chỉ được đếm số người)",
        nudges="đang tắt" if person.nudges_off else "đang bật (tắt trong /caidat)",
        consent=person.consent_at.astimezone(turn.config.zone).strftime("%H:%M %d/%m/%Y"),
        accounts=", ".join(channel_label(account.channel) for account in accounts)
        + (LINKED_APPS if len(accounts) > 1 else LINK_MORE),
        lessons=await queries.count_rows(session, LessonProgress, person_id),  # type: ignore[arg-type]
        attempts=await queries.count_rows(session, QuizAttempt, person_id),  # type: ignore[arg-type]
        answers=await queries.answer_count(session, person_id),  # type: ignore[arg-type]
        activities=await queries.count_rows(session, Activity, person_id),  # type: ignore[arg-type]
        **summary,
    )
    return [Reply(text, main_menu_buttons(turn).build())]


async def ask_erase(turn: Turn, _arg: str = "") -> Replies:
    if turn.person is None:
        turn.goto("main")
        return [Reply(NOTHING_TO_ERASE, main_menu_buttons(turn).build())]
    turn.goto("erase_confirm")
    return await view_erase(turn)


async def view_erase(turn: Turn) -> Replies:
    keyboard = Keyboard().add("🗑️ Xóa hết dữ liệu của tôi", "erase:yes").add("Không, giữ lại", "erase:no")
    text = ERASE_CONFIRM
    if turn.person is not None and turn.person.id is not None:
        apps = await linking.channels_of(turn.session, turn.person.id)
        if len(apps) > 1:  # one person on two apps: erasing here erases there too
            text += ERASE_LINKED.format(apps=", ".join(channel_label(app) for app in apps))
    return [Reply(text, keyboard.build())]


async def on_erase(turn: Turn, arg: str) -> Replies:
    if arg != "yes" or turn.person is None:
        return await show_main_menu(turn, ERASE_CANCELLED)
    if turn.helper is not None:  # erased on the resident's behalf, in person: back to the member's own chat
        name = turn.person.full_name or "người học"
        turn.state.learning_with = None
        await queries.erase_person(turn.session, turn.person, keep_state_id=turn.state.id)
        turn.person, turn.helper = turn.helper, None
        return await show_main_menu(turn, ERASED_FOR_OTHER.format(name=name))
    await queries.erase_person(turn.session, turn.person, keep_state_id=turn.state.id)
    turn.person = None
    turn.goto("consent")
    return [Reply(ERASED), consent_reply()]


def register(registry: Registry) -> None:
    registry.add_command("tiendo", "Xem tiến độ học của bạn", show_progress)
    registry.add_command("dulieucuatoi", "Xem dữ liệu mình lưu về bạn", show_my_data)
    registry.add_command("xoadulieu", "Xóa toàn bộ dữ liệu của bạn", ask_erase)
    registry.add_action("tiendo", show_progress, anywhere=True)
    registry.add_action("erase", on_erase)
    registry.add_step("erase_confirm", view_erase)
