"""Greeting, consent, the main menu and help."""

from __future__ import annotations

from handlers import texts
from handlers.context import Turn
from handlers.core import Keyboard, Reply
from handlers.registry import Registry, Replies
from storage import access

WELCOME = (
    "👋 Xin chào! Mình là trợ lý {bot} của {commune}: một chương trình trả lời tự động, không phải người trực.\n\n"
    "Mình giúp bà con học kỹ năng số qua những bài ngắn: dùng điện thoại, VNeID, dịch vụ công, "
    "thanh toán an toàn, phòng lừa đảo... Mỗi bài có vài thẻ để đọc và một bài kiểm tra nhỏ."
)
# Raised whenever the consent text says something new about who sees what; people who agreed to an
# older text are asked once more (see needs_new_consent), and the version agreed to is stored.
CONSENT_VERSION = 2
WHO_SEES = (
    "Ai xem được: lãnh đạo tổ chức bạn chọn và trưởng thôn/xóm của bạn xem họ tên và kết quả học của bạn; "
    "chủ hộ xem tiến độ của người trong hộ; cán bộ xã xem số liệu của cả xã."
)
CONSENT_QUESTION = (
    "🔒 Để ghi lại tiến độ học, mình cần lưu: họ tên, thôn/xóm, nhóm (người dân, học sinh...), "
    "hộ gia đình, tổ chức bạn tham gia, VNeID mức 2 đã kích hoạt hay chưa, và kết quả các bài học.\n\n"
    "Dùng để: xã tổng hợp kết quả phong trào và báo cáo UBND xã. Không dùng vào việc khác.\n"
    f"{WHO_SEES}\n"
    "Bạn xem lại bằng /dulieucuatoi và xóa hết bằng /xoadulieu bất cứ lúc nào.\n\n"
    "Nếu không đồng ý, bạn vẫn đọc bài được, nhưng mình không lưu gì về bạn.\n\n"
    "Bạn có đồng ý không?"
)
NEW_CONSENT_QUESTION = (
    "🔒 Mình có thêm một điều cần hỏi bạn về dữ liệu đã lưu.\n\n"
    f"{WHO_SEES}\n\n"
    "Nếu bạn không đồng ý, tiến độ của bạn vẫn được lưu như cũ, nhưng họ tên bạn không hiện trong danh "
    "sách của ai: xã chỉ đếm số người. Bạn có đồng ý không?"
)
NEW_CONSENT_YES = "✅ Cảm ơn bạn, mình đã ghi nhận."
NEW_CONSENT_NO = "Mình giữ nguyên như cũ: họ tên bạn không hiện trong danh sách của ai, xã chỉ đếm số người."
BTN_FIGURES = "📊 Số liệu đơn vị"
BTN_LEARN_WITH = "🤝 Học cùng"
BTN_ACTIVITIES = "📝 Hoạt động đơn vị"
BTN_INITIATIVES = "💡 Sáng kiến"
BTN_VISITS = "🚪 Hộ cần đến hướng dẫn"
BTN_STOP_LEARNING_WITH = "⏹ Kết thúc học cùng"
BTN_MEMBERS = "👥 Xác nhận thành viên"
BTN_REPORT = "📑 Báo cáo năm"
BTN_INVITE = "🎟️ Tạo mã mời"
BTN_DEADLINES = "🗓️ Hạn chót báo cáo"
UNFINISHED_REGISTRATION = "Phần đăng ký của bạn còn vài câu chưa trả lời. Bạn trả lời tiếp nhé?"
BTN_CONTINUE_REGISTRATION = "📝 Tiếp tục đăng ký"
HELP = (
    "❓ Cách dùng:\n"
    "• Bấm nút, hoặc gõ số của mục muốn chọn.\n"
    "• Gõ menu bất cứ lúc nào để về đầu.\n\n"
    "Các lệnh:\n{commands}"
)


def main_menu_buttons(turn: Turn) -> Keyboard:
    keyboard = Keyboard().add(texts.BTN_LEARN, "hoc").add(texts.BTN_PROGRESS, "tiendo")
    if turn.person is None:
        keyboard.add(texts.BTN_REGISTER, "dangky")
    else:
        keyboard.add(texts.BTN_SETTINGS, "caidat")
    return keyboard.add(texts.BTN_HELP, "trogiup")


async def show_main_menu(turn: Turn, preface: str | None = None) -> Replies:
    """The main menu, with the buttons of the person's roles; first, once, a newer consent text."""
    replies = [Reply(preface)] if preface else []
    if needs_new_consent(turn):
        return [*replies, ask_new_consent(turn)]
    turn.goto("main")
    keyboard = main_menu_buttons(turn)
    if turn.helper is not None:  # "Học cùng": the resident's menu, and the way back to the member's own
        return [*replies, Reply(texts.MAIN_MENU, keyboard.add(BTN_STOP_LEARNING_WITH, "hcung:stop").build())]
    scopes = await access.scopes_of(turn.session, turn.person)
    if scopes.any:
        keyboard.add(BTN_FIGURES, "tk")
    if scopes.staff or scopes.organisations or scopes.villages:
        keyboard.add(BTN_REPORT, "bc")
        keyboard.add(BTN_ACTIVITIES, "hd")
    if scopes.organisations:
        keyboard.add(BTN_MEMBERS, "tv")
    if turn.person is not None:
        keyboard.add(BTN_INITIATIVES, "sk")
    if scopes.digital_team:
        keyboard.add(BTN_LEARN_WITH, "hcung")
    if scopes.villages or scopes.digital_team or scopes.staff:
        keyboard.add(BTN_VISITS, "ctham")
    if scopes.staff:
        keyboard.add(BTN_DEADLINES, "hc")
        keyboard.add(BTN_INVITE, "moi")
    return [*replies, Reply(texts.MAIN_MENU, keyboard.build())]


def needs_new_consent(turn: Turn) -> bool:
    person = turn.person
    return person is not None and person.consent_offered < CONSENT_VERSION


def ask_new_consent(turn: Turn) -> Reply:
    """Ask once: the offer is recorded now, so declining (or ignoring it) is never asked again."""
    assert turn.person is not None
    turn.person.consent_offered = CONSENT_VERSION
    turn.session.add(turn.person)
    turn.goto("consent_update")
    return new_consent_reply()


async def on_new_consent(turn: Turn, answer: str) -> Replies:
    person = turn.person
    if person is None:
        return await show_main_menu(turn)
    if answer == "yes":
        person.consent_version = CONSENT_VERSION
        turn.session.add(person)
        return await show_main_menu(turn, NEW_CONSENT_YES)
    return await show_main_menu(turn, NEW_CONSENT_NO)


def new_consent_reply() -> Reply:
    keyboard = Keyboard().add("✅ Đồng ý", "consent2:yes").add("Không đồng ý", "consent2:no")
    return Reply(NEW_CONSENT_QUESTION, keyboard.build())


async def view_new_consent(turn: Turn) -> Replies:
    return [new_consent_reply()]


async def view_main(turn: Turn) -> Replies:
    return await show_main_menu(turn)


def consent_reply() -> Reply:
    keyboard = Keyboard().add("✅ Đồng ý", "consent:yes").add("Không đồng ý", "consent:no")
    return Reply(CONSENT_QUESTION, keyboard.build())


async def view_consent(turn: Turn) -> Replies:
    return [consent_reply()]


async def start(turn: Turn) -> Replies:
    """/start: greet; ask for consent unless already given. `/start CODE` (a deep link) redeems an invitation."""
    payload = turn.incoming.text.strip().partition(" ")[2].strip()
    if payload and access.normalise_code(payload) is not None:  # any other payload: a plain /start
        from handlers import roles  # roles builds on this module's menus; imported here to avoid a cycle

        return await roles.redeem_text(turn, payload)
    greeting = WELCOME.format(bot=texts.BOT_NAME, commune=turn.config.commune_name)
    if turn.person is not None:
        name = turn.person.full_name or turn.incoming.display_name or "bạn"
        if turn.person.registration_step is not None:
            return offer_to_continue(turn, texts.WELCOME_BACK.format(name=name))
        return await show_main_menu(turn, texts.WELCOME_BACK.format(name=name))
    turn.goto("consent")
    return [Reply(greeting), consent_reply()]


def offer_to_continue(turn: Turn, greeting: str) -> Replies:
    """A registration stopped halfway (the app closed, a restart): offer the questions left, or the menu."""
    turn.goto("main")
    keyboard = Keyboard().add(BTN_CONTINUE_REGISTRATION, "dangkytiep").add(texts.BTN_MENU, "menu")
    return [Reply(f"{greeting}\n{UNFINISHED_REGISTRATION}", keyboard.build())]


def help_text(registry: Registry) -> str:
    commands = "\n".join(
        f"/{command.name} – {command.description}" for command in registry.commands.values() if command.listed
    )
    return HELP.format(commands=commands)


def register(registry: Registry) -> None:
    async def show_help(turn: Turn, _arg: str = "") -> Replies:
        turn.goto("main")
        return [Reply(help_text(registry), main_menu_buttons(turn).build())]

    async def go_home(turn: Turn, _arg: str = "") -> Replies:
        return await show_main_menu(turn)

    registry.add_command("start", "Bắt đầu, lời chào", start)
    registry.add_command("menu", "Về menu chính", go_home)
    registry.add_command("trogiup", "Hướng dẫn sử dụng", show_help)
    registry.add_step("main", view_main)
    registry.add_step("consent", view_consent)
    registry.add_step("consent_update", view_new_consent)
    registry.add_action("consent2", on_new_consent)
    registry.add_action("menu", go_home, anywhere=True)
    registry.add_action("trogiup", show_help, anywhere=True)
