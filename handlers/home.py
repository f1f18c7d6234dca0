"""Greeting, consent, the main menu and help."""

from __future__ import annotations

from handlers import texts
from handlers.context import Turn
from handlers.core import Keyboard, Reply
from handlers.registry import Registry, Replies

WELCOME = (
    "👋 Xin chào! Mình là trợ lý {bot} của {commune}.\n\n"
    "Mình giúp bà con học kỹ năng số qua những bài ngắn: dùng điện thoại, VNeID, dịch vụ công, "
    "thanh toán an toàn, phòng lừa đảo... Mỗi bài có vài thẻ để đọc và một bài kiểm tra nhỏ."
)
CONSENT_QUESTION = (
    "🔒 Để ghi lại tiến độ học, mình cần lưu: họ tên, thôn/xóm, nhóm (người dân, học sinh...), "
    "hộ gia đình, tổ chức bạn tham gia, VNeID mức 2 đã kích hoạt hay chưa, và kết quả các bài học.\n\n"
    "Dùng để: xã tổng hợp kết quả phong trào và báo cáo UBND xã. Không dùng vào việc khác.\n"
    "Bạn xem lại bằng /dulieucuatoi và xóa hết bằng /xoadulieu bất cứ lúc nào.\n\n"
    "Nếu không đồng ý, bạn vẫn đọc bài được, nhưng mình không lưu gì về bạn.\n\n"
    "Bạn có đồng ý không?"
)
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
    turn.goto("main")
    replies = [Reply(preface)] if preface else []
    return [*replies, Reply(texts.MAIN_MENU, main_menu_buttons(turn).build())]


async def view_main(turn: Turn) -> Replies:
    return await show_main_menu(turn)


def consent_reply() -> Reply:
    keyboard = Keyboard().add("✅ Đồng ý", "consent:yes").add("Không đồng ý", "consent:no")
    return Reply(CONSENT_QUESTION, keyboard.build())


async def view_consent(turn: Turn) -> Replies:
    return [consent_reply()]


async def start(turn: Turn) -> Replies:
    """/start: greet; ask for consent unless already given."""
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
    registry.add_action("menu", go_home, anywhere=True)
    registry.add_action("trogiup", show_help, anywhere=True)
