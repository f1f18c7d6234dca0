"""/thongbao: staff send a message to the commune, a village or an organisation; a leader to an
organisation they lead. The author sees the message as it will arrive and how many it reaches, then
confirms; every copy is an outbox row (storage.announcements), sent by the outbox's sender.

Steps: tb_choose (the audience) -> tb_text (the message) -> tb_preview (Gửi / Sửa / Hủy). Every step
checks access again, so a role revoked half-way sends nothing. The confirm button is only honoured
from the preview just shown (not `anywhere`), so pressing it twice sends once.
"""

from __future__ import annotations

from datetime import datetime, time

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from handlers import texts
from handlers.context import Services, Turn
from handlers.core import Keyboard, Reply, to_payload
from handlers.home import show_main_menu
from handlers.numbers import action_number
from handlers.registry import Registry, Replies
from storage import access, outbox
from storage import announcements as store
from storage.announcements import Audience, parse_audience
from storage.models import Announcement, Organisation, Village

# The smallest message limit of the channels (Zalo: 2000) and the width of Announcement.text: an
# announcement with its header always arrives as one message.
MESSAGE_LIMIT = 2000
PER_DAY = 5  # announcements per author per day in the commune's zone
EXCERPT = 40

NOT_ALLOWED = (
    "Chức năng gửi thông báo dành cho cán bộ xã và lãnh đạo tổ chức (gửi tới thành viên tổ chức mình). "
    "Nếu bạn phụ trách một tổ chức, hãy xin cán bộ xã một mã mời rồi gõ /ma."
)
NOT_YOUR_ORG = "Bạn chỉ gửi được thông báo tới tổ chức bạn phụ trách."
UNKNOWN_UNIT = "Không tìm thấy đơn vị này nữa. Bạn chọn lại nhé."
TOO_MANY = (
    "Hôm nay bạn đã gửi {count} thông báo, là mức tối đa trong một ngày. "
    "Để bà con không bị làm phiền, mai bạn gửi tiếp nhé."
)
CHOOSE_AUDIENCE = "📢 Bạn muốn gửi thông báo tới ai?"
CHOOSE_VILLAGE = "🏡 Gửi tới thôn/xóm nào?"
CHOOSE_ORG = "👥 Gửi tới tổ chức nào?"
NO_UNITS = "Xã chưa có {what} nào trong danh bạ."
ASK_TEXT = (
    "✍️ Bạn gõ nội dung thông báo gửi tới {title} (một tin, tối đa {limit} ký tự).\n"
    "Tin sẽ mở đầu bằng: {header}"
)
EMPTY_TEXT = "Thông báo chưa có nội dung. Bạn gõ nội dung cần gửi nhé."
TEXT_TOO_LONG = "Thông báo dài {length} ký tự, quá mức {limit} ký tự của một tin. Bạn rút gọn rồi gửi lại nhé."
PREVIEW = "👀 Xem trước tin sẽ gửi:\n\n{message}"
REACH = "👥 Tin này sẽ gửi tới {count} người ({title})."
NOBODY = (
    "👥 Tin này sẽ gửi tới 0 người ({title}): chưa ai trong đó đăng ký nhận tin qua bot. "
    "Bạn chọn nơi nhận khác hoặc hủy nhé."
)
CONFIRM = "Bạn kiểm tra lại rồi bấm Gửi."
QUEUED = (
    "✅ Đã xếp {count} tin vào hàng gửi tới {title}. Bot gửi dần để không bị chặn; "
    "khi gửi xong mình sẽ báo bạn kết quả."
)
CANCELLED = "Đã hủy, không có tin nào được gửi."
HEADER_COMMUNE = "📢 Thông báo của UBND {commune}:"
HEADER_ORG = "📢 Thông báo của {org}:"
PROGRESS = (
    "📊 Tiến độ gửi thông báo «{excerpt}» tới {title}:\n"
    "• Đang chờ gửi: {waiting}\n• Đã gửi: {sent}\n• Không gửi được: {failed}\n• Người đã chặn bot: {blocked}"
)
PROGRESS_DONE = "\n\n✅ Đã gửi xong."
PROGRESS_NOT_ALLOWED = "Bạn chỉ xem được tiến độ của thông báo do chính bạn gửi."
DONE_NOTICE = (
    "📢 Thông báo «{excerpt}» của bạn tới {title} đã gửi xong:\n"
    "• Đã gửi: {sent}\n• Không gửi được: {failed}\n• Người đã chặn bot: {blocked}"
)
COMMUNE_TITLE = "toàn xã"

BTN_COMMUNE = "🏘️ Toàn xã"
BTN_VILLAGE = "🏡 Một thôn/xóm"
BTN_ORG = "👥 Một tổ chức"
BTN_SEND = "✅ Gửi"
BTN_EDIT = "✏️ Sửa nội dung"
BTN_OTHER = "👥 Chọn nơi nhận khác"
BTN_CANCEL = "❌ Hủy"
BTN_PROGRESS = "📊 Tiến độ gửi"
BTN_AGAIN = "🔄 Xem lại"


# --- who may send what ----------------------------------------------------------------------------

def may_send(scopes: access.Scopes, audience: Audience) -> bool:
    """Staff: anywhere in the commune; a leader: only the organisations they lead."""
    if scopes.staff:
        return True
    return audience.kind == "org" and audience.id in scopes.organisations


async def audience_title(turn: Turn, audience: Audience) -> str | None:
    return await audience_words(turn.session, audience)


async def audience_words(session: AsyncSession, audience: Audience) -> str | None:
    """The audience in words; None when its village or organisation no longer exists."""
    if audience.kind == "commune":
        return COMMUNE_TITLE
    model = Organisation if audience.kind == "org" else Village
    row = await session.get(model, audience.id)
    return row.name if row is not None else None


async def header_of(turn: Turn, scopes: access.Scopes, audience: Audience) -> str:
    """Who speaks: the commune for staff, the organisation for its leader."""
    if scopes.staff or audience.kind != "org":
        return HEADER_COMMUNE.format(commune=turn.config.commune_name)
    return HEADER_ORG.format(org=await audience_title(turn, audience) or "?")


def text_limit(header: str) -> int:
    """The longest text that still fits one message with its header."""
    return MESSAGE_LIMIT - len(header) - 2  # the blank line between header and text


def _limit(turn: Turn, header: str) -> int:
    # The dispatcher refuses longer messages before they reach the step: say the limit that holds.
    return min(text_limit(header), turn.config.max_text_length)


def _day_start(turn: Turn) -> datetime:
    """Midnight today in the commune's zone: the flood limit counts a local day."""
    return datetime.combine(turn.today, time(0), tzinfo=turn.config.zone)


async def _over_limit(turn: Turn) -> Replies | None:
    assert turn.person is not None and turn.person.id is not None
    count = await store.sent_since(turn.session, turn.person.id, _day_start(turn))
    if count < PER_DAY:
        return None
    await access.audit(turn.session, turn.now, turn.person.id, "announcement", "refused")
    return await show_main_menu(turn, TOO_MANY.format(count=count))


async def _refuse(turn: Turn, text: str = NOT_ALLOWED, audience: Audience | None = None) -> Replies:
    await access.audit(turn.session, turn.now, turn.person.id if turn.person else None, "announcement", "refused",
                       organisation_id=audience.id if audience and audience.kind == "org" else None,
                       village_id=audience.id if audience and audience.kind == "village" else None)
    return await show_main_menu(turn, text)


# --- choosing the audience ------------------------------------------------------------------------

async def on_command(turn: Turn) -> Replies:
    """/thongbao: the audience, or straight to the message for a leader of one organisation."""
    scopes = await access.scopes_of(turn.session, turn.person)
    if not scopes.staff and not scopes.organisations:
        return await _refuse(turn)
    limited = await _over_limit(turn)
    if limited is not None:
        return limited
    if not scopes.staff and len(scopes.organisations) == 1:
        return await _chosen(turn, scopes, Audience("org", scopes.organisations[0]))
    return await view_choose(turn)


async def view_choose(turn: Turn) -> Replies:
    scopes = await access.scopes_of(turn.session, turn.person)
    if not scopes.staff and not scopes.organisations:
        return await _refuse(turn)
    turn.goto("tb_choose")
    if not scopes.staff:
        return await _list_orgs(turn, scopes.organisations)
    keyboard = Keyboard().add(BTN_COMMUNE, "tba:commune").add(BTN_VILLAGE, "tba:villages").add(BTN_ORG, "tba:orgs")
    return [Reply(CHOOSE_AUDIENCE, keyboard.add(BTN_CANCEL, "tbs:cancel").build())]


async def _list_orgs(turn: Turn, only: tuple[int, ...] | None = None) -> Replies:
    organisations = [row for row in await _all(turn, Organisation) if only is None or row.id in only]
    return _unit_buttons(turn, CHOOSE_ORG, "org", [(row.id, row.name) for row in organisations], "tổ chức")


async def _list_villages(turn: Turn) -> Replies:
    villages = await _all(turn, Village)
    return _unit_buttons(turn, CHOOSE_VILLAGE, "village", [(row.id, row.name) for row in villages], "thôn/xóm")


async def _all(turn: Turn, model: type[Organisation] | type[Village]) -> list[Organisation] | list[Village]:
    return list((await turn.session.exec(select(model).order_by(model.id))).all())  # type: ignore[arg-type]


def _unit_buttons(turn: Turn, question: str, kind: str, units: list[tuple[int | None, str]], what: str) -> Replies:
    turn.goto("tb_choose")
    keyboard = Keyboard()
    for unit_id, name in units:
        keyboard.add(name, f"tba:{kind}:{unit_id}")
    keyboard.add(BTN_CANCEL, "tbs:cancel")
    text = question if units else NO_UNITS.format(what=what)
    return [Reply(text, keyboard.build())]


async def on_audience(turn: Turn, argument: str) -> Replies:
    """tba:commune | tba:villages | tba:orgs | tba:village:ID | tba:org:ID."""
    scopes = await access.scopes_of(turn.session, turn.person)
    if not scopes.staff and not scopes.organisations:
        return await _refuse(turn)
    if argument == "villages" and scopes.staff:
        return await _list_villages(turn)
    if argument == "orgs":
        return await _list_orgs(turn, None if scopes.staff else scopes.organisations)
    audience = parse_audience(argument)
    if audience is None:
        return await view_choose(turn)
    if not may_send(scopes, audience):
        return await _refuse(turn, NOT_YOUR_ORG, audience)
    return await _chosen(turn, scopes, audience)


async def _chosen(turn: Turn, scopes: access.Scopes, audience: Audience) -> Replies:
    if await audience_title(turn, audience) is None:
        return [Reply(UNKNOWN_UNIT), *await view_choose(turn)]
    turn.goto("tb_text", audience=audience.key)
    return await view_text(turn)


# --- the message --------------------------------------------------------------------------------

async def _draft(turn: Turn) -> tuple[access.Scopes, Audience, str, str] | Replies:
    """The step's audience checked again (scopes, audience, title, header), or the replies that send
    the person elsewhere: a role revoked, an audience gone, step data from elsewhere."""
    scopes = await access.scopes_of(turn.session, turn.person)
    if not scopes.staff and not scopes.organisations:
        return await _refuse(turn)
    audience = parse_audience(str(turn.data.get("audience", "")))
    if audience is None:
        return await view_choose(turn)
    if not may_send(scopes, audience):
        return await _refuse(turn, NOT_YOUR_ORG, audience)
    title = await audience_title(turn, audience)
    if title is None:
        return [Reply(UNKNOWN_UNIT), *await view_choose(turn)]
    return scopes, audience, title, await header_of(turn, scopes, audience)


async def view_text(turn: Turn) -> Replies:
    draft = await _draft(turn)
    if isinstance(draft, list):
        return draft
    _scopes, audience, title, header = draft
    turn.goto("tb_text", audience=audience.key)
    keyboard = Keyboard()
    if await _can_choose(turn):
        keyboard.add(BTN_OTHER, "tbs:other")
    keyboard.add(BTN_CANCEL, "tbs:cancel")
    return [Reply(ASK_TEXT.format(title=title, limit=_limit(turn, header), header=header), keyboard.build())]


async def _can_choose(turn: Turn) -> bool:
    scopes = await access.scopes_of(turn.session, turn.person)
    return scopes.staff or len(scopes.organisations) > 1


async def on_text(turn: Turn, text: str) -> Replies:
    draft = await _draft(turn)
    if isinstance(draft, list):
        return draft
    _scopes, audience, _title, header = draft
    body = text.strip()
    if not body or not any(character.isprintable() and not character.isspace() for character in body):
        return [Reply(EMPTY_TEXT), *await view_text(turn)]
    limit = _limit(turn, header)
    if len(body) > limit:
        return [Reply(TEXT_TOO_LONG.format(length=len(body), limit=limit)), *await view_text(turn)]
    turn.goto("tb_preview", audience=audience.key, text=body)
    return await view_preview(turn)


# --- preview and confirmation -----------------------------------------------------------------------

async def _ready(turn: Turn) -> Replies | tuple[Audience, str, str, str]:
    """(audience, title, header, body) of the draft in the step's data, checked again (the data of an
    old step may be stale or forged); otherwise the replies that send the person back."""
    draft = await _draft(turn)
    if isinstance(draft, list):
        return draft
    _scopes, audience, title, header = draft
    body = str(turn.data.get("text", "")).strip()
    if not body or len(body) > _limit(turn, header):
        return await view_text(turn)
    return audience, title, header, body


async def view_preview(turn: Turn) -> Replies:
    ready = await _ready(turn)
    if isinstance(ready, list):
        return ready
    audience, title, header, body = ready
    count = await store.reachable_count(turn.session, audience)
    keyboard = Keyboard()
    if count:
        keyboard.add(BTN_SEND, "tbs:send")
    keyboard.add(BTN_EDIT, "tbs:edit")
    if await _can_choose(turn):
        keyboard.add(BTN_OTHER, "tbs:other")
    keyboard.add(BTN_CANCEL, "tbs:cancel")
    reach = REACH.format(count=count, title=title) + "\n" + CONFIRM if count else NOBODY.format(title=title)
    return [Reply(PREVIEW.format(message=f"{header}\n\n{body}")), Reply(reach, keyboard.build())]


async def on_decision(turn: Turn, argument: str) -> Replies:
    """tbs:send | tbs:edit | tbs:other | tbs:cancel, from the buttons last shown."""
    if argument == "cancel":
        return await show_main_menu(turn, CANCELLED)
    if argument == "other":
        return await view_choose(turn)
    if argument == "edit":
        turn.goto("tb_text", audience=str(turn.data.get("audience", "")))
        return await view_text(turn)
    if argument == "send" and turn.state.step == "tb_preview":
        return await _send(turn)
    return await show_main_menu(turn)


async def _send(turn: Turn) -> Replies:
    ready = await _ready(turn)
    if isinstance(ready, list):
        return ready
    audience, title, header, body = ready
    limited = await _over_limit(turn)
    if limited is not None:
        return limited
    assert turn.person is not None
    announcement = Announcement(
        author_id=turn.person.id, author_channel=turn.incoming.channel, author_external_id=turn.incoming.user_id,
        audience=audience.key, text=body, created_at=turn.now)
    turn.session.add(announcement)
    await turn.session.flush()
    assert announcement.id is not None
    payload = to_payload([Reply(f"{header}\n\n{body}")])
    announcement.recipients = await store.enqueue_announcement(turn.session, announcement.id, audience, payload,
                                                               turn.now)
    turn.session.add(announcement)
    await access.audit(turn.session, turn.now, turn.person.id, "announcement_sent",
                       organisation_id=audience.id if audience.kind == "org" else None,
                       village_id=audience.id if audience.kind == "village" else None, subject=announcement.id)
    turn.goto("main")
    keyboard = Keyboard().add(BTN_PROGRESS, f"tbtd:{announcement.id}").add(texts.BTN_MENU, "menu")
    return [Reply(QUEUED.format(count=announcement.recipients, title=title), keyboard.build())]


# --- progress -----------------------------------------------------------------------------------

def excerpt(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= EXCERPT else line[:EXCERPT - 1].rstrip() + "…"


async def on_progress(turn: Turn, argument: str) -> Replies:
    """tbtd:ID, registered anywhere: the author (or staff) sees the counts; anyone else a refusal."""
    number = action_number(argument)
    announcement = await turn.session.get(Announcement, number) if number is not None else None
    scopes = await access.scopes_of(turn.session, turn.person)
    mine = announcement is not None and turn.person is not None and announcement.author_id == turn.person.id
    if announcement is None or not (mine or scopes.staff):
        await access.audit(turn.session, turn.now, turn.person.id if turn.person else None,
                           "announcement_progress", "refused", subject=number)
        return await show_main_menu(turn, PROGRESS_NOT_ALLOWED)
    counts = await outbox.status_counts(turn.session, announcement_id=announcement.id)
    waiting = counts["queued"] + counts["sending"]
    title = await _title_of(turn.session, announcement)
    text = PROGRESS.format(excerpt=excerpt(announcement.text), title=title, waiting=waiting, sent=counts["sent"],
                           failed=counts["failed"] + counts["expired"], blocked=counts["blocked"])
    if not waiting:
        text += PROGRESS_DONE
    turn.goto("main")
    keyboard = Keyboard()
    if waiting:
        keyboard.add(BTN_AGAIN, f"tbtd:{announcement.id}")
    return [Reply(text, keyboard.add(texts.BTN_MENU, "menu").build())]


async def _title_of(session: AsyncSession, announcement: Announcement) -> str:
    audience = parse_audience(announcement.audience)
    title = await audience_words(session, audience) if audience is not None else None
    return title or "?"


# --- the final numbers (called by the runtime) ---------------------------------------------------------

async def close_finished_announcements(services: Services, now: datetime, limit: int = 200) -> int:
    """Tell each author whose announcement has no row waiting or being sent the final numbers (sent,
    failed, blocked), as an outbox notice under `announcement-done:{id}`, and mark it finished.
    Returns how many were finished."""
    finished = 0
    async with services.database.session() as session:
        for announcement in await store.finished_unreported(session, limit):
            assert announcement.id is not None
            if not await store.mark_finished(session, announcement.id, now):
                continue  # another process told the author
            finished += 1
            if announcement.author_id is None:
                continue  # the author erased their data
            counts = await outbox.status_counts(session, announcement_id=announcement.id)
            text = DONE_NOTICE.format(excerpt=excerpt(announcement.text),
                                      title=await _title_of(session, announcement),
                                      sent=counts["sent"], failed=counts["failed"] + counts["expired"],
                                      blocked=counts["blocked"])
            keyboard = Keyboard().add(BTN_PROGRESS, f"tbtd:{announcement.id}")
            await outbox.enqueue_for_person(session, announcement.author_id, key=f"announcement-done:{announcement.id}",
                                            kind="notice", payload=to_payload([Reply(text, keyboard.build())]), now=now)
    return finished


def register(registry: Registry) -> None:
    registry.add_command("thongbao", "Gửi thông báo (cán bộ xã, lãnh đạo tổ chức)", on_command)
    registry.add_step("tb_choose", view_choose)
    registry.add_step("tb_text", view_text, on_text)
    registry.add_step("tb_preview", view_preview)
    # Choosing and confirming only from the buttons just shown: an old preview cannot send again.
    registry.add_action("tba", on_audience)
    registry.add_action("tbs", on_decision)
    # Read-only, checked on every press (author or staff), audited when refused: safe from old messages.
    registry.add_action("tbtd", on_progress, anywhere=True)

