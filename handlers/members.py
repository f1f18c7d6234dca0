"""/thanhvien: a leader confirms or removes the people who say they belong to the organisation."""

from __future__ import annotations

from handlers import texts
from handlers.context import Turn
from handlers.core import Keyboard, Reply, redrawn
from handlers.home import show_main_menu
from handlers.numbers import action_number
from handlers.registry import Registry, Replies
from storage import access, members
from storage.models import Membership, Organisation

PAGE = 6  # claims shown at once: two buttons each fit a phone screen

NOT_A_LEADER = (
    "Chức năng này dành cho lãnh đạo tổ chức. Nếu bạn là lãnh đạo, hãy xin cán bộ xã một mã mời rồi gõ /ma."
)
WHICH_ORG = "Bạn muốn xem thành viên của tổ chức nào?"
PENDING = (
    "👥 {org}\n• Đã xác nhận: {confirmed}\n• Chờ xác nhận: {pending}{unnamed}\n\n"
    "Bấm ✅ để xác nhận người đúng là thành viên, ✖️ để bỏ người không phải thành viên."
)
UNNAMED = " (trong đó {count} người chưa đồng ý hiện tên, nên không có trong danh sách)"
NONE_PENDING = "Không còn ai chờ xác nhận."
CONFIRMED = "✅ Đã xác nhận {name}."
REMOVED = "Đã bỏ {name} khỏi danh sách tự khai của tổ chức."
GONE = "Người này không còn chờ xác nhận (có thể đã được xác nhận, đã rời tổ chức hoặc đã xóa dữ liệu)."
BTN_CONFIRM_ALL = "✅ Xác nhận cả {count} người trên"
CONFIRMED_ALL = "✅ Đã xác nhận {count} người."


async def on_members_command(turn: Turn) -> Replies:
    return await on_members_action(turn, "")


async def on_members_action(turn: Turn, argument: str) -> Replies:
    """tv, tv:org:ID, tv:ok:MEMBERSHIP, tv:no:MEMBERSHIP, tv:all:ORG: access is checked on every press."""
    scopes = await access.scopes_of(turn.session, turn.person)
    verb, _, number = argument.partition(":")
    target = action_number(number) if number else None
    if not scopes.organisations:
        return await _refuse(turn, None)
    if verb == "org" and target is not None:
        return await _show_org(turn, scopes, target)
    if verb in {"ok", "no"} and target is not None:
        return await _decide(turn, scopes, target, confirm=verb == "ok")
    if verb == "all" and target is not None:
        return await _confirm_shown(turn, scopes, target)
    if len(scopes.organisations) == 1:
        return await _show_org(turn, scopes, scopes.organisations[0])
    keyboard = Keyboard()
    for organisation_id in scopes.organisations:
        organisation = await turn.session.get(Organisation, organisation_id)
        if organisation is not None:
            keyboard.add(organisation.name, f"tv:org:{organisation_id}")
    turn.goto("main")
    return [Reply(WHICH_ORG, keyboard.add(texts.BTN_MENU, "menu").build())]


async def _refuse(turn: Turn, organisation_id: int | None) -> Replies:
    await access.audit(turn.session, turn.now, turn.person.id if turn.person else None, "members_view",
                       "refused", organisation_id=organisation_id)
    return await show_main_menu(turn, NOT_A_LEADER)


async def _show_org(turn: Turn, scopes: access.Scopes, organisation_id: int, note: str | None = None) -> Replies:
    if organisation_id not in scopes.organisations:
        return await _refuse(turn, organisation_id)
    organisation = await turn.session.get(Organisation, organisation_id)
    if organisation is None:
        return await _refuse(turn, organisation_id)
    counts = await members.claim_counts(turn.session, organisation_id)
    claims = await members.pending_claims(turn.session, organisation_id, PAGE)
    await access.audit(turn.session, turn.now, turn.person.id, "members_view",  # type: ignore[union-attr]
                       organisation_id=organisation_id)
    unnamed = UNNAMED.format(count=counts.pending_unnamed) if counts.pending_unnamed else ""
    text = PENDING.format(org=organisation.name, confirmed=counts.confirmed, pending=counts.pending, unnamed=unnamed)
    keyboard = Keyboard()
    for claim in claims:
        label = f"{claim.name} ({claim.village})" if claim.village else claim.name
        keyboard.add(f"✅ {label}", f"tv:ok:{claim.membership_id}")
        keyboard.add(f"✖️ {label}", f"tv:no:{claim.membership_id}")
    if len(claims) > 1:
        keyboard.add(BTN_CONFIRM_ALL.format(count=len(claims)), f"tv:all:{organisation_id}")
    if not claims:
        text = f"{text}\n\n{NONE_PENDING}"
    turn.goto("members", org=organisation_id, shown=[claim.membership_id for claim in claims])
    notes = [Reply(note)] if note else []
    return [*notes, Reply(text, keyboard.add(texts.BTN_MENU, "menu").build())]


async def _decide(turn: Turn, scopes: access.Scopes, membership_id: int, *, confirm: bool) -> Replies:
    claim = await turn.session.get(Membership, membership_id)
    if claim is None or claim.confirmed:
        organisation_id = turn.data.get("org")
        if isinstance(organisation_id, int) and organisation_id in scopes.organisations:
            return redrawn(await _show_org(turn, scopes, organisation_id, GONE))
        return await show_main_menu(turn, GONE)
    if claim.organisation_id not in scopes.organisations:
        return await _refuse(turn, claim.organisation_id)
    shown = await members.named_claim(turn.session, membership_id)
    if shown is None:  # a claim of someone who has not agreed to show their name: not decidable by name
        return redrawn(await _show_org(turn, scopes, claim.organisation_id, GONE))  # type: ignore[arg-type]
    done = await (members.confirm(turn.session, membership_id, turn.now) if confirm
                  else members.remove(turn.session, membership_id))
    if done:
        await access.audit(turn.session, turn.now, turn.person.id,  # type: ignore[union-attr]
                           "member_confirmed" if confirm else "member_removed",
                           organisation_id=claim.organisation_id, subject=shown.person_id)
    note = (CONFIRMED if confirm else REMOVED).format(name=shown.name) if done else GONE
    return redrawn(await _show_org(turn, scopes, claim.organisation_id, note))  # type: ignore[arg-type]


async def _confirm_shown(turn: Turn, scopes: access.Scopes, organisation_id: int) -> Replies:
    """Confirm the claims on the screen the leader saw (not whoever claimed since)."""
    if organisation_id not in scopes.organisations:
        return await _refuse(turn, organisation_id)
    shown = turn.data.get("shown") if turn.data.get("org") == organisation_id else None
    count = 0
    for membership_id in shown or []:
        claim = await turn.session.get(Membership, membership_id) if isinstance(membership_id, int) else None
        if claim is None or claim.organisation_id != organisation_id:
            continue
        if await members.confirm(turn.session, membership_id, turn.now):
            count += 1
            await access.audit(turn.session, turn.now, turn.person.id,  # type: ignore[union-attr]
                               "member_confirmed", organisation_id=organisation_id, subject=claim.person_id)
    return redrawn(await _show_org(turn, scopes, organisation_id, CONFIRMED_ALL.format(count=count)))


async def view_members(turn: Turn) -> Replies:
    organisation_id = turn.data.get("org")
    return await on_members_action(turn, f"org:{organisation_id}" if isinstance(organisation_id, int) else "")


def register(registry: Registry) -> None:
    registry.add_command("thanhvien", "Xác nhận thành viên (lãnh đạo tổ chức)", on_members_command)
    # Access is checked (and a refusal audited) on every press, so an old or forged button is harmless.
    registry.add_action("tv", on_members_action, anywhere=True)
    registry.add_step("members", view_members)
