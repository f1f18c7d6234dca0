"""Roles by invitation: /ma (or the /start deep link) redeems a code; staff make codes with /moi."""

from __future__ import annotations

from datetime import timedelta

from handlers import texts
from handlers.context import Turn
from handlers.core import Keyboard, Reply
from handlers.home import consent_reply, show_main_menu
from handlers.household import until_text
from handlers.numbers import action_number
from handlers.registry import Registry, Replies
from storage import access, queries
from storage.models import InviteCodeTry, Organisation, RoleGrant, Village

# After this many refused codes within the window a chat waits: guessing a 12-character code is
# hopeless anyway, and the wait keeps the audit log from filling with a flood.
REFUSED_TRIES = 5
TRIES_WINDOW = timedelta(minutes=10)
CHAT_INVITE_DAYS = 7

ROLE_LABELS = {
    "leader": "Lãnh đạo tổ chức",
    "village_head": "Trưởng thôn",
    "staff": "Cán bộ xã",
    "admin": "Quản trị",
    "digital_team": "Thành viên Tổ công nghệ số cộng đồng",
}
ASK_CODE = "🎟️ Bạn gõ mã mời được cấp (12 ký tự, ví dụ K7MX-4RTP-W9AC)."
BAD_FORMAT = "Mã mời gồm 12 chữ và số, có thể viết cách nhau bằng dấu gạch (ví dụ K7MX-4RTP-W9AC). Bạn gõ lại nhé."
REFUSED = (
    "Mã này không dùng được: mã sai, đã hết hạn hoặc đã được dùng. "
    "Bạn kiểm tra lại, hoặc xin người cấp mã một mã mới."
)
TOO_MANY = "Bạn đã gõ sai mã mời nhiều lần. Để giữ an toàn, bạn vui lòng chờ đến {until} rồi thử lại nhé."
CONSENT_FIRST = "Để nhận vai trò, bạn cần đồng ý lưu dữ liệu trước. Đồng ý xong, mình nhận mã cho bạn ngay."
GRANTED = "✅ Bạn đã nhận vai trò {role}{unit}.\n{next}"
NEXT_LEADER = "Gõ /thongke để xem số liệu, /thanhvien để xác nhận thành viên."
NEXT_OTHER = "Gõ /thongke để xem số liệu."
NEXT_TEAM = "Gõ /hoccung để đăng ký và học cùng một người chưa tự dùng được điện thoại."
NEXT_STAFF = "Gõ /thongke để xem số liệu của xã, /moi để tạo mã mời cho lãnh đạo tổ chức và trưởng thôn."

NOT_ALLOWED = "Chức năng này chỉ dành cho cán bộ xã. Nếu bạn cần, hãy liên hệ Phòng Văn hóa - Xã hội."
INVITE_WHO = "🎟️ Tạo mã mời cho ai?"
BTN_FOR_LEADER = "Lãnh đạo một tổ chức"
BTN_FOR_VILLAGE = "Trưởng một thôn/xóm"
BTN_FOR_TEAM = "Thành viên Tổ công nghệ số cộng đồng"
BTN_WHOLE_COMMUNE = "Cả xã (không riêng thôn nào)"
INVITE_WHICH_TEAM = "Mã mời cho thành viên Tổ công nghệ số cộng đồng của thôn/xóm nào?"
INVITE_WHICH_ORG = "Mã mời cho lãnh đạo tổ chức nào?"
INVITE_WHICH_VILLAGE = "Mã mời cho trưởng thôn/xóm nào?"
INVITE_MADE = (
    "🎟️ Mã mời cho {role}{unit}:\n\n{code}\n\n"
    "Người nhận gõ /ma {code} trong cuộc trò chuyện với bot{link}. "
    "Mã dùng được một lần, hết hạn lúc {expires}. Chỉ đưa mã cho đúng người."
)
UNKNOWN_UNIT = "Đơn vị này không còn trong danh mục. Bạn chọn lại nhé."


def deep_link(turn: Turn, code: str) -> str:
    """The Telegram link that opens the bot with the code (when the bot's username is configured)."""
    username = turn.config.telegram_username
    return f"https://t.me/{username}?start={code}" if username else ""


async def unit_label(turn: Turn, grant_or_invite: RoleGrant) -> str:
    """': Hội Nông dân xã' or ': Thôn 3' for a scoped role; '' for staff and admin."""
    if grant_or_invite.organisation_id is not None:
        organisation = await turn.session.get(Organisation, grant_or_invite.organisation_id)
        return f": {organisation.name}" if organisation else ""
    if grant_or_invite.village_id is not None:
        village = await turn.session.get(Village, grant_or_invite.village_id)
        return f": {village.name}" if village else ""
    return ""


# --- redeeming ----------------------------------------------------------------------------------

async def on_code_command(turn: Turn) -> Replies:
    """/ma CODE, or /ma alone (then the code is asked for)."""
    argument = turn.incoming.text.strip().partition(" ")[2]
    if not argument.strip():
        turn.goto("ask_invite")
        return await view_ask_code(turn)
    return await redeem_text(turn, argument)


async def view_ask_code(turn: Turn) -> Replies:
    return [Reply(ASK_CODE, Keyboard().add(texts.BTN_MENU, "menu").build())]


async def on_code_text(turn: Turn, text: str) -> Replies:
    return await redeem_text(turn, text)


async def redeem_text(turn: Turn, text: str) -> Replies:
    """Check a typed code. Wrong, expired and used codes get the same answer: nothing to learn from it."""
    code = access.normalise_code(text)
    if code is None:
        turn.goto("ask_invite")
        return [Reply(BAD_FORMAT), *await view_ask_code(turn)]
    waiting = await _waiting(turn)
    if waiting is not None:
        return waiting
    if turn.person is None:  # the code is looked at only after consent, so a guest learns nothing
        turn.goto("consent", invite=access.code_hash(code))
        return [Reply(CONSENT_FIRST), consent_reply()]
    return await redeem_hash(turn, access.code_hash(code))


async def redeem_hash(turn: Turn, hashed: str, *, then_menu: bool = True) -> Replies:
    """Redeem for the turn's person; the replies say what happened (and show the menu after)."""
    assert turn.person is not None
    grant = await access.redeem(turn.session, hashed, turn.person, turn.now)
    if grant is None:
        await queries.record_chat_try(turn.session, InviteCodeTry, turn.incoming.channel, turn.incoming.user_id,
                                      turn.now, TRIES_WINDOW)
        if not then_menu:
            return [Reply(REFUSED)]
        waiting = await _waiting(turn)
        if waiting is not None:
            return waiting
        turn.goto("ask_invite")
        return [Reply(REFUSED), *await view_ask_code(turn)]
    follow = {"leader": NEXT_LEADER, "staff": NEXT_STAFF, "admin": NEXT_STAFF,
              "digital_team": NEXT_TEAM}.get(grant.role, NEXT_OTHER)
    note = Reply(GRANTED.format(role=ROLE_LABELS[grant.role], unit=await unit_label(turn, grant), next=follow),
                 standalone=True)
    return [note, *await show_main_menu(turn)] if then_menu else [note]


async def _waiting(turn: Turn) -> Replies | None:
    """The polite wait after too many refused codes; None when this chat may try."""
    tries = await queries.chat_tries(turn.session, InviteCodeTry, turn.incoming.channel, turn.incoming.user_id,
                                     turn.now - TRIES_WINDOW)
    if len(tries) < REFUSED_TRIES:
        return None
    until = tries[-REFUSED_TRIES] + TRIES_WINDOW
    return await show_main_menu(turn, TOO_MANY.format(until=until_text(turn, until)))


# --- making codes in chat (staff and admins; leader and village-head codes only) -----------------

async def on_invite_command(turn: Turn) -> Replies:
    return await on_invite_action(turn, "")


async def on_invite_action(turn: Turn, argument: str) -> Replies:
    """moi, moi:leader, moi:village_head, moi:team, moi:org:ID, moi:village:ID, moi:teamv:ID, moi:teamc
    (every step checks access again)."""
    scopes = await access.scopes_of(turn.session, turn.person)
    if not scopes.staff:
        await access.audit(turn.session, turn.now, turn.person.id if turn.person else None, "invite_create",
                           "refused")
        return await show_main_menu(turn, NOT_ALLOWED)
    kind, _, number = argument.partition(":")
    turn.goto("main")
    if kind == "leader":
        keyboard = Keyboard()
        for organisation in await queries.all_organisations(turn.session):
            keyboard.add(organisation.name, f"moi:org:{organisation.id}")
        return [Reply(INVITE_WHICH_ORG, keyboard.add(texts.BTN_BACK, "moi").build())]
    if kind == "village_head":
        keyboard = Keyboard()
        for village in await queries.all_villages(turn.session):
            keyboard.add(village.name, f"moi:village:{village.id}")
        return [Reply(INVITE_WHICH_VILLAGE, keyboard.add(texts.BTN_BACK, "moi").build())]
    if kind == "team":
        keyboard = Keyboard()
        for village in await queries.all_villages(turn.session):
            keyboard.add(village.name, f"moi:teamv:{village.id}")
        keyboard.add(BTN_WHOLE_COMMUNE, "moi:teamc")
        return [Reply(INVITE_WHICH_TEAM, keyboard.add(texts.BTN_BACK, "moi").build())]
    if kind in {"org", "village", "teamv"}:
        return await _make_invite(turn, kind, action_number(number))
    if kind == "teamc":
        return await _make_invite(turn, kind, None)
    keyboard = (Keyboard().add(BTN_FOR_LEADER, "moi:leader").add(BTN_FOR_VILLAGE, "moi:village_head")
                .add(BTN_FOR_TEAM, "moi:team").add(texts.BTN_MENU, "menu"))
    return [Reply(INVITE_WHO, keyboard.build())]


async def _make_invite(turn: Turn, kind: str, unit_id: int | None) -> Replies:
    assert turn.person is not None
    model = Organisation if kind == "org" else Village
    unit = await turn.session.get(model, unit_id) if unit_id is not None else None
    back = {"org": "leader", "village": "village_head"}.get(kind, "team")
    if unit is None and kind != "teamc":
        return [Reply(UNKNOWN_UNIT), *await on_invite_action(turn, back)]
    role = {"org": "leader", "village": "village_head"}.get(kind, "digital_team")
    code = await access.create_invite(
        turn.session, role=role, now=turn.now, expires_in=timedelta(days=CHAT_INVITE_DAYS),
        rng=turn.services.random, created_by=turn.person.id,
        organisation_id=unit.id if kind == "org" and unit else None,
        village_id=unit.id if kind in {"village", "teamv"} and unit else None,
    )
    link = deep_link(turn, code)
    expires = (turn.now + timedelta(days=CHAT_INVITE_DAYS)).astimezone(turn.config.zone).strftime("%H:%M ngày %d/%m/%Y")
    where = f" – {unit.name}" if unit is not None else " – cả xã"
    text = INVITE_MADE.format(role=ROLE_LABELS[role][0].lower() + ROLE_LABELS[role][1:], unit=where,
                              code=access.grouped(code),
                              link=f" (hoặc mở {link})" if link else "", expires=expires)
    return [Reply(text, standalone=True), *await show_main_menu(turn)]


def register(registry: Registry) -> None:
    registry.add_command("ma", "Nhập mã mời để nhận vai trò", on_code_command)
    registry.add_step("ask_invite", view_ask_code, on_code_text)
    registry.add_command("moi", "Tạo mã mời (cán bộ xã)", on_invite_command, listed=False)
    # Access is checked (and a refusal audited) on every press, so an old or forged button is harmless.
    registry.add_action("moi", on_invite_action, anywhere=True)
