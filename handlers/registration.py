"""Consent and the questions after it (name, village, group, household, organisations, VNeID),
asked once in a row at registration and one at a time from /caidat."""

from __future__ import annotations

import functools
import re
from collections.abc import Awaitable, Callable

from content.schema import GROUP_LABELS, CitizenGroup
from handlers import household as households
from handlers import roles, texts
from handlers.context import Turn
from handlers.core import Keyboard, Reply, redrawn
from handlers.home import CONSENT_VERSION, consent_reply, show_main_menu
from handlers.household import spoken_code
from handlers.registry import Registry, Replies
from storage import queries
from storage.models import Household, Organisation, Person, Village

ORDER = ["ask_name", "ask_village", "ask_group", "ask_household", "ask_orgs", "ask_vneid"]

CONSENT_DECLINED = (
    "Không sao cả. Bạn vẫn học được mọi bài, chỉ là mình sẽ không lưu tiến độ. "
    "Khi nào muốn, bạn chọn 'Đăng ký lưu tiến độ' trong menu."
)
ALREADY_CONSENTED = "Bạn đã đồng ý lưu dữ liệu rồi. Muốn sửa thông tin, gõ /caidat."
THANKS = "Cảm ơn bạn! Mình đã ghi nhận. Mình hỏi vài câu ngắn nhé (chọn Bỏ qua nếu chưa muốn trả lời)."
REGISTERED = "🎉 Đăng ký xong! Bạn bắt đầu với bài học đầu tiên nhé."
SAVED = "✅ Đã lưu."

ASK_NAME = "Bạn cho mình biết họ và tên (ví dụ: Nguyễn Văn An)."
BAD_NAME = "Tên cần có chữ cái và dài từ 2 đến 80 ký tự, không có số hay ký hiệu. Bạn gõ lại nhé."
ASK_VILLAGE = "Bạn ở thôn/xóm nào?"
ASK_GROUP = "Bạn thuộc nhóm nào?"
ASK_HOUSEHOLD = (
    "🏡 Hộ gia đình: nếu người nhà đã đăng ký, bạn nhập mã hộ họ đưa. "
    "Nếu bạn là người đầu tiên trong nhà, hãy tạo mã hộ mới để chia sẻ cho cả nhà."
)
ASK_HOUSEHOLD_CODE = "Bạn gõ mã hộ gồm {length} chữ số (ví dụ: 482915)."
IN_HOUSEHOLD = "Muốn đổi sang hộ khác, bạn nhập mã hộ đó hoặc tạo mã hộ mới."
BAD_HOUSEHOLD_CODE = "Mã hộ gồm {length} chữ số. Bạn kiểm tra và gõ lại nhé."
ALREADY_IN_HOUSEHOLD = "Bạn đã ở trong hộ này rồi."
JOINED_HOUSEHOLD = "Bạn đã vào hộ có mã {code}."
CREATED_HOUSEHOLD = (
    "Mã hộ của nhà bạn là: {spoken}\n\n"
    "Hãy đọc mã này cho người nhà để họ nhập khi đăng ký. Xem lại mã bất cứ lúc nào trong /caidat."
)
RENEWED_HOUSEHOLD = (
    "Mã hộ mới của nhà bạn là: {spoken}\n\n"
    "Mã cũ không dùng được nữa. Người nhà đã ở trong hộ vẫn giữ nguyên; ai chưa vào thì đọc mã mới cho họ."
)
LEFT_HOUSEHOLD = "Bạn đã rời hộ gia đình."
CONFIRM_REMOVE = (
    "Bạn chắc chắn muốn bỏ {name} khỏi hộ gia đình? "
    "Người này sẽ không còn trong hộ; muốn vào lại thì phải nhập mã hộ."
)
REMOVED = "Đã bỏ {name} khỏi hộ. Người này vẫn biết mã cũ: bạn nên đổi mã hộ để họ không vào lại được."
BTN_REMOVE_YES = "✅ Có, bỏ khỏi hộ"
BTN_REMOVE_NO = "↩️ Không, giữ lại"
ASK_ORGS = "Bạn là thành viên của tổ chức nào? Chọn bao nhiêu cũng được, rồi chọn 'Xong'."
ASK_VNEID = "Tài khoản định danh điện tử VNeID mức 2 của bạn đã kích hoạt chưa?"
VNEID_LABELS = {"yes": "Đã kích hoạt mức 2", "no": "Chưa kích hoạt", "unknown": "Chưa rõ"}
UNKNOWN_CHOICE = "Lựa chọn này không còn nữa. Bạn chọn lại nhé."

SETTINGS = (
    "⚙️ Thông tin của bạn:\n"
    "• Họ tên: {name}\n• Thôn/xóm: {village}\n• Nhóm: {group}\n• Hộ gia đình: {household}\n"
    "• Tổ chức: {orgs}\n• VNeID mức 2: {vneid}\n\nBạn muốn sửa mục nào?"
)
NOT_ANSWERED = "chưa trả lời"

NAME_PATTERN = re.compile(r"^[^\W\d_]+(?:[ .'-][^\W\d_]+)*$")


async def begin_registration(turn: Turn) -> Replies:
    """Store the person (consent given) and ask the first question; redeem an invitation they brought."""
    invite = turn.data.get("invite")  # the hash of a code typed before consent (/ma or a deep link)
    turn.person = await queries.create_person(
        turn.session, turn.incoming.channel, turn.incoming.user_id, turn.now, consent_version=CONSENT_VERSION
    )
    await queries.log_activity(turn.session, turn.person, "consent_given", turn.now)
    notes = []
    if isinstance(invite, str):
        notes = await roles.redeem_hash(turn, invite, then_menu=False)
    _reached(turn, ORDER[0])
    return [Reply(THANKS), *notes, *await _enter(turn, ORDER[0], flow="register")]


def _reached(turn: Turn, step: str | None) -> None:
    """Remember the registration question reached (None: all done), so /start can continue there."""
    assert turn.person is not None
    turn.person.registration_step = step
    turn.session.add(turn.person)


def _answered(person: Person, step: str) -> bool:
    """Whether a question was answered, e.g. from /caidat. Organisations cannot tell: none is an answer."""
    answers = {
        "ask_name": person.full_name, "ask_village": person.village_id, "ask_group": person.target_group,
        "ask_household": person.household_id, "ask_vneid": person.vneid_level2,
    }
    return answers.get(step) is not None


async def resume_registration(turn: Turn, _arg: str = "") -> Replies:
    """'Tiếp tục đăng ký': the first question not answered yet, from where the person stopped.

    Questions before that point were answered or skipped, and skipped ones are not asked again.
    """
    person = turn.person
    if person is None:
        return await ask_consent(turn)
    if person.registration_step not in ORDER:
        return await show_main_menu(turn)
    remaining = ORDER[ORDER.index(person.registration_step):]
    step = next((step for step in remaining if not _answered(person, step)), None)
    if step is None:
        return await _finish(turn, [])
    _reached(turn, step)
    return await _enter(turn, step, flow="register")


async def on_consent(turn: Turn, answer: str) -> Replies:
    if turn.person is not None:
        return await show_main_menu(turn, ALREADY_CONSENTED)
    if answer == "yes":
        return await begin_registration(turn)
    return await show_main_menu(turn, CONSENT_DECLINED)


async def ask_consent(turn: Turn, _arg: str = "") -> Replies:
    if turn.person is not None:
        return await show_main_menu(turn, ALREADY_CONSENTED)
    turn.goto("consent")
    return [consent_reply()]


async def _enter(turn: Turn, step: str, flow: str) -> Replies:
    turn.goto(step, flow=flow)
    return await VIEWS[step](turn)


async def _after(turn: Turn, step: str, note: str | None = None, *, keep: bool = False) -> Replies:
    """Next question at registration; back to the settings list from /caidat.

    `keep` marks a note worth keeping in the chat (the household code to share with the family).
    """
    notes = [Reply(note, standalone=keep)] if note else []
    if turn.data.get("flow") == "settings":
        return [*notes, *await show_settings(turn, SAVED)]
    if step not in ORDER:  # an old skip button from a screen that is not a question
        return [*notes, *await show_main_menu(turn)]
    position = ORDER.index(step)
    if position + 1 < len(ORDER):  # the registration questions replace each other on one screen
        _reached(turn, ORDER[position + 1])
        return redrawn([*notes, *await _enter(turn, ORDER[position + 1], flow="register")])
    return await _finish(turn, notes)


async def _finish(turn: Turn, notes: list[Reply]) -> Replies:
    _reached(turn, None)
    await queries.log_activity(turn.session, turn.person, "registered", turn.now)
    first = turn.catalog.core_course.lessons[0]
    turn.goto("main")
    keyboard = Keyboard().add("📖 Học bài đầu tiên", f"lesson:{first}").add(texts.BTN_MENU, "menu")
    return [*notes, Reply(REGISTERED, keyboard.build())]


def _skip_or_back(turn: Turn, keyboard: Keyboard) -> Keyboard:
    if turn.data.get("flow") == "settings":
        return keyboard.add(texts.BTN_BACK, "set:back")
    return keyboard.add(texts.BTN_SKIP, "skip")


# --- name ---------------------------------------------------------------------------------------

async def view_name(turn: Turn) -> Replies:
    keyboard = Keyboard()
    display = _clean_name(turn.incoming.display_name or "")
    if display and NAME_PATTERN.match(display):
        keyboard.add(f"Dùng tên: {display}", "name:display")
    return [Reply(ASK_NAME, _skip_or_back(turn, keyboard).build())]


def _clean_name(text: str) -> str:
    return " ".join(text.split())


async def on_name_text(turn: Turn, text: str) -> Replies:
    name = _clean_name(text)
    if not (2 <= len(name) <= 80 and NAME_PATTERN.match(name)):
        return [Reply(BAD_NAME), *await view_name(turn)]
    return await _save_name(turn, name)


async def on_name_action(turn: Turn, _arg: str) -> Replies:
    name = _clean_name(turn.incoming.display_name or "")
    if not (2 <= len(name) <= 80 and NAME_PATTERN.match(name)):
        return [Reply(BAD_NAME), *await view_name(turn)]
    return await _save_name(turn, name)


async def _save_name(turn: Turn, name: str) -> Replies:
    assert turn.person is not None
    turn.person.full_name = name
    turn.session.add(turn.person)
    return await _after(turn, "ask_name")


# --- village ------------------------------------------------------------------------------------

async def _villages(turn: Turn) -> list[Village]:
    return await queries.all_villages(turn.session)


async def view_village(turn: Turn) -> Replies:
    keyboard = Keyboard()
    for village in await _villages(turn):
        keyboard.add(village.name, f"village:{village.id}")
    return [Reply(ASK_VILLAGE, _skip_or_back(turn, keyboard).build())]


async def on_village(turn: Turn, arg: str) -> Replies:
    assert turn.person is not None
    chosen = next((v for v in await _villages(turn) if str(v.id) == arg), None)
    if chosen is None:
        return [Reply(UNKNOWN_CHOICE), *await view_village(turn)]
    turn.person.village_id = chosen.id
    turn.session.add(turn.person)
    return await _after(turn, "ask_village")


# --- group --------------------------------------------------------------------------------------

async def view_group(turn: Turn) -> Replies:
    keyboard = Keyboard()
    for group, label in GROUP_LABELS.items():
        keyboard.add(label, f"group:{group.value}")
    return [Reply(ASK_GROUP, _skip_or_back(turn, keyboard).build())]


async def on_group(turn: Turn, arg: str) -> Replies:
    assert turn.person is not None
    if arg not in {group.value for group in CitizenGroup}:
        return [Reply(UNKNOWN_CHOICE), *await view_group(turn)]
    turn.person.target_group = arg
    turn.session.add(turn.person)
    return await _after(turn, "ask_group")


# --- household ----------------------------------------------------------------------------------

async def view_household(turn: Turn, notes: Replies | None = None) -> Replies:
    person = turn.person
    keyboard = Keyboard()
    text = ASK_HOUSEHOLD
    household = await _household_of(turn)
    if household is not None:
        summary = await households.summary(turn, household)
        # The head's screen is long enough with the members; the buttons say the rest.
        text = summary.text if summary.buttons else f"{summary.text}\n\n{IN_HOUSEHOLD}"
        for button in summary.buttons:
            keyboard.add(button.label, button.action)
    keyboard.add("🔢 Nhập mã hộ", "hh:join").add("➕ Tạo mã hộ mới", "hh:create")
    if person is not None and person.household_id is not None:
        keyboard.add("Rời hộ hiện tại", "hh:leave")
    return [*(notes or []), Reply(text, _skip_or_back(turn, keyboard).build())]


async def _household_of(turn: Turn) -> Household | None:
    person = turn.person
    if person is None or person.household_id is None:
        return None
    return await turn.session.get(Household, person.household_id)


async def _household_again(turn: Turn, note: str | None = None) -> Replies:
    """Back to the household screen (of registration or /caidat, whichever the person came from)."""
    turn.goto("ask_household", flow=turn.data.get("flow", "register"))
    return await view_household(turn, [Reply(note)] if note else None)


async def _waiting(turn: Turn) -> Replies | None:
    """The polite wait, when this chat typed too many wrong codes; None when it may try."""
    tries = await households.code_tries(turn)
    if tries.wait_until is None:
        return None
    return await _household_again(turn, households.wait_text(turn, tries.wait_until))


async def on_join(turn: Turn) -> Replies:
    waiting = await _waiting(turn)
    if waiting is not None:
        return waiting
    turn.goto("ask_household_code", flow=turn.data.get("flow", "register"))
    return await view_household_code(turn)


async def on_create(turn: Turn) -> Replies:
    person = turn.person
    assert person is not None
    previous = person.household_id
    household = await queries.create_household(
        turn.session, person.village_id, turn.services.random, turn.config.household_code_length, turn.now
    )
    await _move_to_household(turn, household, head=True, previous=previous)
    created = CREATED_HOUSEHOLD.format(spoken=spoken_code(household.code))
    return await _after(turn, "ask_household", created, keep=True)


async def on_leave(turn: Turn) -> Replies:
    assert turn.person is not None
    await _move_to_household(turn, None, head=False, previous=turn.person.household_id)
    return await _after(turn, "ask_household", LEFT_HOUSEHOLD)


async def on_renew_code(turn: Turn) -> Replies:
    """The head gives the household a new code, so someone removed cannot come back with the old one."""
    person = turn.person
    household = await _household_of(turn)
    if person is None or household is None or not person.is_household_head:
        return await _household_again(turn)
    code = await queries.renew_household_code(
        turn.session, household, turn.services.random, turn.config.household_code_length
    )
    renewed = Reply(RENEWED_HOUSEHOLD.format(spoken=spoken_code(code)), standalone=True)
    return [renewed, *await _household_again(turn)]


async def _move_to_household(turn: Turn, household: Household | None, *, head: bool, previous: int | None) -> None:
    person = turn.person
    assert person is not None
    person.household_id = household.id if household else None
    person.is_household_head = head
    turn.session.add(person)
    await turn.session.flush()
    if previous is not None and previous != person.household_id:
        await queries.settle_household(turn.session, previous)


async def view_household_code(turn: Turn) -> Replies:
    keyboard = Keyboard().add(texts.BTN_BACK, "hh:back")
    return [Reply(ASK_HOUSEHOLD_CODE.format(length=turn.config.household_code_length), keyboard.build())]


async def on_household_code_text(turn: Turn, text: str) -> Replies:
    person = turn.person
    assert person is not None
    length = turn.config.household_code_length
    code = households.parse_code(text, length)
    if code is None:
        return [Reply(BAD_HOUSEHOLD_CODE.format(length=length)), *await view_household_code(turn)]
    waiting = await _waiting(turn)  # checked before the lookup: while waiting, nothing is looked up
    if waiting is not None:
        return waiting
    household = await queries.household_by_code(turn.session, code, leaving=person.household_id)
    if household is None:
        return await _missed(turn)
    if household.id == person.household_id:  # their own code: nothing to change, the head stays head
        return await _after(turn, "ask_household", ALREADY_IN_HOUSEHOLD)
    await _move_to_household(turn, household, head=False, previous=person.household_id)
    return await _after(turn, "ask_household", JOINED_HOUSEHOLD.format(code=spoken_code(code)))


async def _missed(turn: Turn) -> Replies:
    """One answer for every miss, whether or not the code was ever used: nothing to learn from it."""
    tries = await households.record_miss(turn)
    if tries.wait_until is not None:
        return await _household_again(turn, households.wait_text(turn, tries.wait_until))
    return [Reply(households.miss_text(tries)), *await view_household_code(turn)]


async def on_remove(turn: Turn, argument: str) -> Replies:
    """The head pressed a member's remove button: ask once before removing."""
    member = await households.removable_member(turn, argument)
    if member is None:
        return await _household_again(turn)
    turn.goto("household_remove", flow=turn.data.get("flow", "register"), member=member.id)
    return await view_household_remove(turn)


async def view_household_remove(turn: Turn) -> Replies:
    member = await households.removable_member(turn, str(turn.data.get("member", "")))
    if member is None:
        return await _household_again(turn)
    keyboard = Keyboard().add(BTN_REMOVE_YES, "hh:removeyes").add(BTN_REMOVE_NO, "hh:removeno")
    return [Reply(CONFIRM_REMOVE.format(name=households.member_name(member)), keyboard.build())]


async def on_remove_confirmed(turn: Turn) -> Replies:
    """Checked again now: the member may have left, or the person stopped being the head, meanwhile."""
    head = turn.person
    member = await households.removable_member(turn, str(turn.data.get("member", "")))
    if head is None or member is None or head.household_id is None:
        return await _household_again(turn)
    name = households.member_name(member)
    if not await queries.remove_from_household(turn.session, member.id, head.household_id):  # type: ignore[arg-type]
        return await _household_again(turn)
    return await _household_again(turn, REMOVED.format(name=name))


async def on_household_back(turn: Turn, _arg: str) -> Replies:
    return await _enter(turn, "ask_household", flow=turn.data.get("flow", "register"))


HOUSEHOLD_ACTIONS: dict[str, Callable[[Turn], Awaitable[Replies]]] = {
    "join": on_join,
    "create": on_create,
    "leave": on_leave,
    "newcode": on_renew_code,
    "removeyes": on_remove_confirmed,
    "removeno": _household_again,
}


async def _household_action(turn: Turn, arg: str) -> Replies:
    if arg == "back":
        return await on_household_back(turn, arg)
    verb, _, argument = arg.partition(":")
    if verb == "remove":
        return await on_remove(turn, argument)
    action = HOUSEHOLD_ACTIONS.get(arg)
    if action is None:
        return [Reply(UNKNOWN_CHOICE), *await view_household(turn)]
    return await action(turn)


# --- organisations ------------------------------------------------------------------------------

async def _organisations(turn: Turn) -> list[Organisation]:
    return await queries.all_organisations(turn.session)


async def view_orgs(turn: Turn) -> Replies:
    if "chosen" not in turn.data and turn.person is not None:
        current = await queries.memberships_of(turn.session, turn.person.id)  # type: ignore[arg-type]
        turn.update(chosen=sorted(m.organisation_id for m in current))
    chosen = set(turn.data.get("chosen", []))
    keyboard = Keyboard()
    for organisation in await _organisations(turn):
        mark = "☑️" if organisation.id in chosen else "⬜"
        keyboard.add(f"{mark} {organisation.name}", f"org:{organisation.id}")
    keyboard.add("✅ Xong", "org:done")
    if turn.data.get("flow") == "settings":
        keyboard.add(texts.BTN_BACK, "set:back")
    return [Reply(ASK_ORGS, keyboard.build())]


async def on_org(turn: Turn, arg: str) -> Replies:
    assert turn.person is not None
    if arg == "done":
        await queries.set_memberships(turn.session, turn.person.id, turn.data.get("chosen", []))  # type: ignore[arg-type]
        return await _after(turn, "ask_orgs")
    organisation = next((o for o in await _organisations(turn) if str(o.id) == arg), None)
    if organisation is None:
        return [Reply(UNKNOWN_CHOICE), *await view_orgs(turn)]
    chosen = set(turn.data.get("chosen", []))
    chosen ^= {organisation.id}
    turn.update(chosen=sorted(chosen))  # type: ignore[type-var]
    return redrawn(await view_orgs(turn))


# --- VNeID --------------------------------------------------------------------------------------

async def view_vneid(turn: Turn) -> Replies:
    keyboard = Keyboard()
    for value, label in VNEID_LABELS.items():
        keyboard.add(label, f"vneid:{value}")
    if turn.data.get("flow") == "settings":
        keyboard.add(texts.BTN_BACK, "set:back")
    return [Reply(ASK_VNEID, keyboard.build())]


async def on_vneid(turn: Turn, arg: str) -> Replies:
    assert turn.person is not None
    if arg not in VNEID_LABELS:
        return [Reply(UNKNOWN_CHOICE), *await view_vneid(turn)]
    turn.person.vneid_level2 = arg
    turn.session.add(turn.person)
    return await _after(turn, "ask_vneid")


async def on_skip(turn: Turn, _arg: str) -> Replies:
    return await _after(turn, turn.state.step)


# --- /caidat ------------------------------------------------------------------------------------

async def show_settings(turn: Turn, preface: str | None = None) -> Replies:
    person = turn.person
    if person is None:
        turn.goto("consent")
        return [Reply(texts.NEEDS_CONSENT), consent_reply()]
    turn.goto("settings")
    summary = await describe_person(turn)
    keyboard = (
        Keyboard()
        .add("Họ tên", "set:ask_name")
        .add("Thôn/xóm", "set:ask_village")
        .add("Nhóm", "set:ask_group")
        .add("Hộ gia đình", "set:ask_household")
        .add("Tổ chức", "set:ask_orgs")
        .add("VNeID mức 2", "set:ask_vneid")
        .add("🔔 Nhắc học: đang tắt" if person.nudges_off else "🔔 Nhắc học: đang bật",
             f"nhachoc:{'on' if person.nudges_off else 'off'}:caidat")
        .add(texts.BTN_MENU, "menu")
    )
    notes = [Reply(preface)] if preface else []
    return [*notes, Reply(SETTINGS.format(**summary), keyboard.build())]


async def describe_person(turn: Turn) -> dict[str, str]:
    """The person's answers in words, for /caidat and /dulieucuatoi."""
    person = turn.person
    assert person is not None
    session = turn.session
    village = await session.get(Village, person.village_id) if person.village_id else None
    household = await session.get(Household, person.household_id) if person.household_id else None
    memberships = await queries.memberships_of(session, person.id)  # type: ignore[arg-type]
    names = []
    for membership in memberships:
        organisation = await session.get(Organisation, membership.organisation_id)
        if organisation is not None:
            names.append(f"{organisation.name} ({'đã xác nhận' if membership.confirmed else 'chờ tổ chức xác nhận'})")
    group = GROUP_LABELS.get(CitizenGroup(person.target_group)) if person.target_group else None
    household_text = None
    if household is not None and household.code is None:  # a directory household no one made a code for yet
        household_text = f"hộ ông/bà {household.head_name}" if household.head_name else "hộ trong danh bạ của xã"
    elif household is not None:
        household_text = f"mã {spoken_code(household.code)}" + (" (chủ hộ tạo mã)" if person.is_household_head else "")
    return {
        "name": person.full_name or NOT_ANSWERED,
        "village": village.name if village else NOT_ANSWERED,
        "group": group or NOT_ANSWERED,
        "household": household_text or NOT_ANSWERED,
        "orgs": ", ".join(sorted(names)) or "không có",
        "vneid": VNEID_LABELS.get(person.vneid_level2 or "", NOT_ANSWERED),
    }


async def view_settings(turn: Turn) -> Replies:
    return await show_settings(turn)


async def on_settings_action(turn: Turn, arg: str) -> Replies:
    if arg == "back" or arg not in VIEWS or turn.person is None:
        return await show_settings(turn)
    return await _enter(turn, arg, flow="settings")


async def open_settings(turn: Turn, _arg: str = "") -> Replies:
    return await show_settings(turn)


VIEWS = {
    "ask_name": view_name,
    "ask_village": view_village,
    "ask_group": view_group,
    "ask_household": view_household,
    "ask_household_code": view_household_code,
    "ask_orgs": view_orgs,
    "ask_vneid": view_vneid,
}


def _needs_person(handler: Callable[..., Awaitable[Replies]]) -> Callable[..., Awaitable[Replies]]:
    """Questions about a person only make sense after consent; anyone else is asked for it."""

    @functools.wraps(handler)
    async def guarded(turn: Turn, *args: str) -> Replies:
        if turn.person is None:
            turn.goto("consent")
            return [Reply(texts.NEEDS_CONSENT), consent_reply()]
        return await handler(turn, *args)

    return guarded


def register(registry: Registry) -> None:
    registry.add_command("caidat", "Xem và sửa thông tin của bạn", open_settings)
    registry.add_action("caidat", open_settings, anywhere=True)
    registry.add_action("dangky", ask_consent, anywhere=True)
    # Only shows the person's own next question, so it is safe from any old message.
    registry.add_action("dangkytiep", resume_registration, anywhere=True)
    registry.add_action("consent", on_consent)
    registry.add_action("set", _needs_person(on_settings_action))
    registry.add_action("name", _needs_person(on_name_action))
    registry.add_action("village", _needs_person(on_village))
    registry.add_action("group", _needs_person(on_group))
    registry.add_action("hh", _needs_person(_household_action))
    registry.add_action("org", _needs_person(on_org))
    registry.add_action("vneid", _needs_person(on_vneid))
    registry.add_action("skip", _needs_person(on_skip))
    registry.add_step("settings", view_settings)
    registry.add_step("ask_name", _needs_person(view_name), _needs_person(on_name_text))
    registry.add_step("ask_village", _needs_person(view_village))
    registry.add_step("ask_group", _needs_person(view_group))
    registry.add_step("ask_household", _needs_person(view_household))
    registry.add_step("ask_household_code", _needs_person(view_household_code), _needs_person(on_household_code_text))
    registry.add_step("household_remove", _needs_person(view_household_remove))
    registry.add_step("ask_orgs", _needs_person(view_orgs))
    registry.add_step("ask_vneid", _needs_person(view_vneid))

