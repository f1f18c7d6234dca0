""""Học cùng" (/hoccung): a member of the Tổ công nghệ số cộng đồng registers a resident in person and
learns beside them on the member's own phone; later the resident continues on their own phone by a code.

While a member learns with someone, their chat's `learning_with` names that resident: the dispatcher makes
the resident the turn's person and the member its `helper`, lets through only learning (lessons, quizzes,
review, progress), and heads every answer with whose learning it is. What is completed that way is
marked `assisted_by` the member (handlers/quiz.py) and counts as completed.
"""

from __future__ import annotations

from dataclasses import replace

from handlers import learning, texts
from handlers.context import Turn
from handlers.core import Keyboard, Reply
from handlers.home import CONSENT_VERSION, WHO_SEES, show_main_menu
from handlers.household import spoken_code, until_text
from handlers.numbers import action_number
from handlers.registry import Registry, Replies
from storage import assisted, linking, queries
from storage.models import Household, Person, Village

NAME_MAX = 120
HOUSEHOLD_PAGE = 8

NOT_IN_TEAM = (
    "Chức năng “Học cùng” dành cho thành viên Tổ công nghệ số cộng đồng. Nếu bạn là thành viên, hãy xin "
    "cán bộ xã một mã mời rồi gõ /ma."
)
HOME = (
    "🤝 Học cùng\nBạn đăng ký cho người chưa tự dùng được điện thoại (người cao tuổi, người chưa đọc tốt), "
    "rồi học cùng họ ngay trên điện thoại của bạn. Bài họ học xong được tính cho họ, có ghi là “học cùng”.\n\n"
    "{people}"
)
NOBODY_YET = "Bạn chưa học cùng ai."
PEOPLE = "Những người bạn đã giúp ({count}): chọn một người."
BTN_NEW = "➕ Đăng ký một người mới"
ASK_NAME = (
    "✍️ Họ và tên đầy đủ của người học (như trên căn cước), ví dụ: Nguyễn Thị Lan.\n"
    "Bạn hỏi và gõ giúp họ nhé."
)
NAME_EMPTY = "Họ tên cần có chữ. Bạn gõ lại họ và tên đầy đủ nhé."
NAME_TOO_LONG = "Họ tên dài quá (tối đa {max} ký tự). Bạn gõ lại nhé."
ASK_VILLAGE = "🏘️ {name} ở thôn/xóm nào?"
BTN_NO_VILLAGE = "Không thuộc thôn/xóm nào trong danh sách"
ASK_HOUSEHOLD = "🏠 {name} thuộc hộ nào trong danh bạ của {village}? (theo tên chủ hộ)"
BTN_NO_HOUSEHOLD = "Không có trong danh sách / bỏ qua"
BTN_MORE = "Xem thêm ▶️"
READ_ALOUD = (
    "🔒 Bạn đọc cho {name} nghe, chậm và rõ:\n\n"
    "“Để ghi lại việc học của bác, xã cần lưu: họ tên, thôn/xóm, hộ gia đình và kết quả các bài học. "
    "Dùng để xã tổng hợp kết quả phong trào Bình dân học vụ số, không dùng vào việc khác. "
    "Người học cùng bác hôm nay là thành viên Tổ công nghệ số cộng đồng. {who_sees} "
    "Bác có thể xem lại hoặc xóa hết bất cứ lúc nào: trên điện thoại của bác, hoặc nhờ tổ làm giúp. "
    "Bác có đồng ý không?”\n\n"
    "Chỉ bấm “Đồng ý” khi chính {name} nói đồng ý. Mình ghi lại là đồng ý trực tiếp, do bạn ghi nhận."
)
BTN_AGREED = "✅ {name} đã nghe và đồng ý"
BTN_DECLINED = "Không đồng ý"
DECLINED = "Đã hủy: không lưu gì về người này. Họ vẫn có thể nghe bạn đọc bài mà không cần đăng ký."
REGISTERED = "✅ Đã đăng ký {name}. Bạn bấm “Học cùng ngay” để bắt đầu bài đầu tiên."
PERSON = "👤 {name}{village}\n• Bài đã xong: {done}/{total} (học cùng: {assisted})\n• {phone}"
OWN_PHONE = "Đã có điện thoại riêng liên kết: họ cũng tự học được."
NO_PHONE = "Chưa có điện thoại riêng: học trên máy của bạn."
NOT_YOURS = "Bạn chỉ học cùng được những người chính bạn đã đăng ký."
BTN_GO = "▶️ Học cùng ngay"
BTN_CODE = "📱 Mã để tự học trên điện thoại riêng"
BTN_LIST = "👥 Danh sách người học cùng"
BTN_STOP = "⏹ Kết thúc học cùng"
STARTED = "🤝 Bắt đầu học cùng {name}. Mọi bài làm từ giờ được tính cho {name} cho đến khi bạn bấm “Kết thúc”."
STOPPED = "⏹ Đã kết thúc buổi học cùng {name}. Từ giờ là tài khoản của chính bạn."
BANNER = "🤝 Đang học cùng: {name} (gõ /hoccung để kết thúc)"
BLOCKED = (
    "Bạn đang học cùng {name}, nên chức năng này tạm khóa để không làm thay đổi dữ liệu của họ. "
    "Gõ /hoccung rồi bấm “Kết thúc học cùng” trước nhé."
)
CODE_MADE = (
    "📱 Mã cho {name}: {spoken}\n\n"
    "Trên điện thoại của {name}, mở Zalo hoặc Telegram, tìm trợ lý của xã rồi nhắn:\n/lienket {code}\n\n"
    "Mã dùng được một lần, đến {until}. Liên kết xong, {name} tự học tiếp trên máy của mình, tiến độ giữ nguyên."
)

# What a member may do while learning with someone: learning, seeing and erasing the resident's data at
# their request, and the way out. Anything else (settings, roles, linking, reports) would act on the
# resident's data or the member's own.
# Erasure is let through: a resident without a phone of their own asks the member beside them to do it.
ALLOWED_COMMANDS = frozenset({"hoc", "tiendo", "menu", "trogiup", "hoccung", "dulieucuatoi", "xoadulieu"})
ALLOWED_ACTIONS = frozenset({"hoc", "lesson", "card", "quiz", "qa", "review", "rv", "tiendo", "menu", "trogiup",
                             "hcung", "erase"})


def allowed_while_learning(kind: str, name: str) -> bool:
    return name in (ALLOWED_COMMANDS if kind == "command" else ALLOWED_ACTIONS)


async def blocked(turn: Turn) -> Reply:
    return Reply(BLOCKED.format(name=_name(turn.person)))


def with_banner(turn: Turn, replies: Replies) -> Replies:
    """Every answer while learning with someone starts by saying whose learning it is."""
    if turn.helper is None or not replies:
        return replies
    first = replies[0]
    return [replace(first, text=f"{BANNER.format(name=_name(turn.person))}\n\n{first.text}"), *replies[1:]]


def _name(person: Person | None) -> str:
    return (person.full_name if person is not None else None) or "người học"


# --- the member's menu -----------------------------------------------------------------------------------

async def on_command(turn: Turn) -> Replies:
    return await on_action(turn, "")


async def on_action(turn: Turn, argument: str) -> Replies:
    """hcung, hcung:new, hcung:v:ID, hcung:h:ID, hcung:hp:PAGE, hcung:yes, hcung:no, hcung:p:ID, hcung:go:ID,
    hcung:code:ID, hcung:stop. Membership of the team is checked on every press."""
    if turn.helper is not None:  # learning with someone: the only way on is to stop
        return await _stop(turn)
    if not await assisted.is_team_member(turn.session, turn.person):
        return await show_main_menu(turn, NOT_IN_TEAM)
    verb, _, rest = argument.partition(":")
    number = action_number(rest) if rest else None
    if verb == "new":
        turn.goto("hcung_name")
        return await view_name(turn)
    if verb == "v" and turn.state.step == "hcung_village":
        return await _chosen_village(turn, number)
    if verb == "h" and turn.state.step == "hcung_household":
        return await _chosen_household(turn, number)
    if verb == "hp" and turn.state.step == "hcung_household" and number is not None:
        turn.update(page=number)
        return await view_household(turn)
    if verb == "yes" and turn.state.step == "hcung_consent":
        return await _register(turn)
    if verb == "no" and turn.state.step == "hcung_consent":
        return [Reply(DECLINED), *await _home(turn)]
    if verb in {"p", "go", "code"} and number is not None:
        return await _about(turn, verb, number)
    return await _home(turn)


async def _home(turn: Turn) -> Replies:
    assert turn.person is not None and turn.person.id is not None
    people = await assisted.helped_by(turn.session, turn.person.id)
    progress = await _done_counts(turn, [helped.person_id for helped in people])
    keyboard = Keyboard().add(BTN_NEW, "hcung:new")
    for helped in people:
        done = progress.get(helped.person_id, 0)
        keyboard.add(f"{helped.name} ({done}/{len(turn.catalog.core_course.lessons)})", f"hcung:p:{helped.person_id}")
    turn.goto("main")
    listing = PEOPLE.format(count=len(people)) if people else NOBODY_YET
    return [Reply(HOME.format(people=listing), keyboard.add(texts.BTN_MENU, "menu").build())]


async def _done_counts(turn: Turn, person_ids: list[int]) -> dict[int, int]:
    core = set(turn.catalog.core_course.lessons)
    counts: dict[int, int] = {}
    for person_id in person_ids:  # a member helps a handful of people: one small query each
        progress = await queries.progress_of(turn.session, person_id)
        counts[person_id] = sum(1 for row in progress.values() if row.status == "completed" and row.lesson_id in core)
    return counts


# --- registering someone in person ---------------------------------------------------------------------

async def view_name(turn: Turn) -> Replies:
    return [Reply(ASK_NAME, Keyboard().add(texts.BTN_BACK, "hcung").build())]


async def on_name(turn: Turn, text: str) -> Replies:
    name = " ".join(text.split())
    if not any(character.isalpha() for character in name):
        return [Reply(NAME_EMPTY), *await view_name(turn)]
    if len(name) > NAME_MAX:
        return [Reply(NAME_TOO_LONG.format(max=NAME_MAX)), *await view_name(turn)]
    turn.goto("hcung_village", name=name)
    return await view_village(turn)


async def view_village(turn: Turn) -> Replies:
    keyboard = Keyboard()
    for village in await queries.all_villages(turn.session):
        keyboard.add(village.name, f"hcung:v:{village.id}")
    keyboard.add(BTN_NO_VILLAGE, "hcung:v:0").add(texts.BTN_BACK, "hcung")
    return [Reply(ASK_VILLAGE.format(name=turn.data.get("name", "")), keyboard.build())]


async def _chosen_village(turn: Turn, village_id: int | None) -> Replies:
    village = await turn.session.get(Village, village_id) if village_id else None
    if village_id is None or (village_id and village is None):  # a forged or vanished village: ask again
        return await view_village(turn)
    turn.update(village=village.id if village else None, page=0)
    if village is None or not await assisted.directory_households(turn.session, village.id):  # type: ignore[arg-type]
        turn.update(household=None)
        turn.state.step = "hcung_consent"
        return await view_consent(turn)
    turn.state.step = "hcung_household"
    return await view_household(turn)


async def view_household(turn: Turn) -> Replies:
    village_id = turn.data.get("village")
    village = await turn.session.get(Village, village_id) if isinstance(village_id, int) else None
    if village is None:
        return await view_village(turn)
    households = await assisted.directory_households(turn.session, village.id)  # type: ignore[arg-type]
    page = max(0, min(int(turn.data.get("page", 0)), (len(households) - 1) // HOUSEHOLD_PAGE))
    keyboard = Keyboard()
    for household in households[page * HOUSEHOLD_PAGE:(page + 1) * HOUSEHOLD_PAGE]:
        keyboard.add(f"Hộ ông/bà {household.head_name}", f"hcung:h:{household.id}")
    if (page + 1) * HOUSEHOLD_PAGE < len(households):
        keyboard.add(BTN_MORE, f"hcung:hp:{page + 1}")
    keyboard.add(BTN_NO_HOUSEHOLD, "hcung:h:0").add(texts.BTN_BACK, "hcung")
    return [Reply(ASK_HOUSEHOLD.format(name=turn.data.get("name", ""), village=village.name), keyboard.build())]


async def _chosen_household(turn: Turn, household_id: int | None) -> Replies:
    if household_id is None:
        return await view_household(turn)
    if household_id:
        household = await turn.session.get(Household, household_id)
        if household is None or household.village_id != turn.data.get("village"):
            return await view_household(turn)
    turn.update(household=household_id or None)
    turn.state.step = "hcung_consent"
    return await view_consent(turn)


async def view_consent(turn: Turn) -> Replies:
    name = turn.data.get("name", "")
    who_sees = WHO_SEES.replace("bạn", "bác")
    keyboard = Keyboard().add(BTN_AGREED.format(name=name), "hcung:yes").add(BTN_DECLINED, "hcung:no")
    return [Reply(READ_ALOUD.format(name=name, who_sees=who_sees), keyboard.build())]


async def _register(turn: Turn) -> Replies:
    assert turn.person is not None
    name = turn.data.get("name")
    if not isinstance(name, str) or not name:
        return await _home(turn)
    resident = await assisted.register_in_person(
        turn.session, turn.person, name=name, village_id=turn.data.get("village"),
        household_id=turn.data.get("household"), consent_version=CONSENT_VERSION, now=turn.now)
    return [Reply(REGISTERED.format(name=name)), *await _show_person(turn, resident.id)]  # type: ignore[arg-type]


# --- one person: learn together, or give them a code for their own phone ---------------------------------

async def _about(turn: Turn, verb: str, person_id: int) -> Replies:
    assert turn.person is not None and turn.person.id is not None
    helped = {item.person_id for item in await assisted.helped_by(turn.session, turn.person.id)}
    if person_id not in helped:  # a forged or stale button: nobody else's name or progress is shown
        return [Reply(NOT_YOURS), *await _home(turn)]
    if verb == "p":
        return await _show_person(turn, person_id)
    resident = await assisted.learner_for(turn.session, turn.person, person_id)
    if resident is None:
        return [Reply(NOT_YOURS), *await _show_person(turn, person_id)]
    if verb == "code":
        return await _code(turn, resident)
    return await _start(turn, resident)


async def _show_person(turn: Turn, person_id: int) -> Replies:
    person = await turn.session.get(Person, person_id)
    assert turn.person is not None and person is not None
    village = await turn.session.get(Village, person.village_id) if person.village_id else None
    core = set(turn.catalog.core_course.lessons)
    progress = [row for row in (await queries.progress_of(turn.session, person_id)).values()
                if row.status == "completed" and row.lesson_id in core]
    own_phone = bool(await linking.channels_of(turn.session, person_id))
    text = PERSON.format(name=_name(person), village=f" – {village.name}" if village else "", done=len(progress),
                         total=len(core), assisted=sum(1 for row in progress if row.assisted),
                         phone=OWN_PHONE if own_phone else NO_PHONE)
    keyboard = Keyboard()
    if person.registered_by == turn.person.id:
        keyboard.add(BTN_GO, f"hcung:go:{person_id}").add(BTN_CODE, f"hcung:code:{person_id}")
    keyboard.add(BTN_LIST, "hcung").add(texts.BTN_MENU, "menu")
    turn.goto("main")
    return [Reply(text, keyboard.build())]


async def _code(turn: Turn, resident: Person) -> Replies:
    code = await linking.create_code(turn.session, resident.id, linking.ASSISTED_CHANNEL, turn.now,  # type: ignore[arg-type]
                                     turn.services.random)
    text = CODE_MADE.format(name=_name(resident), spoken=spoken_code(code), code=code,
                            until=until_text(turn, turn.now + linking.CODE_LIFETIME))
    return [Reply(text, standalone=True), *await _show_person(turn, resident.id)]  # type: ignore[arg-type]


async def _start(turn: Turn, resident: Person) -> Replies:
    turn.state.learning_with = resident.id
    turn.helper, turn.person = turn.person, resident
    await queries.log_activity(turn.session, resident, "assisted_started", turn.now)
    return [Reply(STARTED.format(name=_name(resident))), *await learning.show_lesson_list(turn)]


async def _stop(turn: Turn) -> Replies:
    resident = turn.person
    turn.state.learning_with = None
    turn.person, turn.helper = turn.helper, None
    return [Reply(STOPPED.format(name=_name(resident))), *await _home(turn)]


def register(registry: Registry) -> None:
    registry.add_command("hoccung", "Học cùng người chưa tự dùng được điện thoại (Tổ công nghệ số)", on_command,
                         listed=False)
    # Team membership and who was helped are checked on every press, so a forged button shows nothing.
    registry.add_action("hcung", on_action, anywhere=True)
    registry.add_step("hcung_name", view_name, on_name)
    registry.add_step("hcung_village", view_village)
    registry.add_step("hcung_household", view_household)
    registry.add_step("hcung_consent", view_consent)
