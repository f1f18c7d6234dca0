"""Deadlines in chat and the reminders before them.

- `/hanchot` (staff): the deadlines with their next occurrence and who handed in; add, change the date
  or the title, pause or resume, remove. Buttons `hc:...` are safe navigation and changes that check
  staff on every press (registered anywhere); `hcx:...` (the confirmed removal, the choices of a new
  deadline) are honoured only among the buttons last shown.
- `/danop` (leaders, village heads, staff): mark a unit's report handed in for the nearest open
  occurrence; the reminder's "✅ Đơn vị đã nộp báo cáo" button does the same (`dn:ID:YYYYMMDD:UNIT`,
  registered anywhere: it checks the person's access to the unit and that the occurrence is open).
- `run_reminders(services, now)`: called by the scheduler (bot/scheduler.py); stores every reminder
  due now in the outbox, one row per (deadline, occurrence, days before, person, unit). The units'
  figures are counted once per run, off the turn (`Database.read`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from handlers import texts
from handlers.context import HandlerConfig, Services, Turn
from handlers.core import Keyboard, Reply, redrawn, to_payload
from handlers.home import show_main_menu
from handlers.numbers import action_number
from handlers.registry import Registry, Replies
from handlers.unit_figures import Unit, allowed, parse_unit, share, units_of
from storage import access, deadlines, figures, outbox, queries
from storage.deadlines import DeadlineError, DueReminder, Recipient
from storage.figures import CommuneFigures
from storage.models import ChannelAccount, Deadline, Delivery

log = logging.getLogger(__name__)

# --- words ----------------------------------------------------------------------------------------

NOT_STAFF = "Chức năng hạn chót chỉ dành cho cán bộ xã. Nếu bạn cần, hãy liên hệ Phòng Văn hóa - Xã hội."
NOT_RESPONSIBLE = (
    "Chức năng này dành cho lãnh đạo tổ chức, trưởng thôn và cán bộ xã. "
    "Nếu bạn phụ trách một đơn vị, hãy xin mã mời rồi gõ /ma."
)
LIST_HEAD = "🗓️ Các hạn chót báo cáo"
NONE_YET = "🗓️ Chưa có hạn chót nào. Bấm “Thêm hạn chót” để tạo."
ITEM = "{number}. {title}\n{lines}"
NEXT_DUE = "   📅 Hạn tới: {due} ({repeat}) – {left}"
PAST_DUE = "   📅 Đã qua hạn {due} (một lần)"
REMIND = "   🔔 {days}, lúc {hour:02d}:00"
AUDIENCE = "   👥 Nhắc: {who}"
HANDED = "   ✅ Đã nộp: {done}/{total} đơn vị"
PAUSED = "   ⏸️ Đang tạm dừng nhắc"
YEARLY, ONCE = "hằng năm", "một lần"
WHO_ALL = "cán bộ xã, lãnh đạo các tổ chức và trưởng thôn"
WHO_ORGS = "cán bộ xã và lãnh đạo: {names}"
WHO_STAFF = "chỉ cán bộ xã"
DONE_LIST = "\n\n✅ Đã nộp ({count}): {names}"
TODO_LIST = "\n⏳ Chưa nộp ({count}): {names}"
MORE = "… và {count} đơn vị khác"
NAMES_SHOWN = 20
UNKNOWN_DEADLINE = "Hạn chót này không còn. Mình đưa bạn về danh sách."

BTN_ADD = "➕ Thêm hạn chót"
BTN_OPEN = "🗓️ {number}. {title}"
BTN_DATE = "📅 Đổi ngày hạn"
BTN_TITLE = "✏️ Đổi tên"
BTN_PAUSE = "⏸️ Tạm dừng nhắc"
BTN_RESUME = "▶️ Nhắc lại"
BTN_REMOVE = "🗑️ Xóa hạn chót"
BTN_REMOVE_YES = "🗑️ Xóa hẳn"
BTN_REMOVE_NO = "↩️ Không xóa"
BTN_LIST = "↩️ Danh sách hạn chót"
BTN_CANCEL = "❌ Hủy"
BTN_AUD_ALL = "Mọi tổ chức và thôn/xóm"
BTN_AUD_ORGS = "Một số tổ chức"
BTN_AUD_STAFF = "Chỉ cán bộ xã"
BTN_DONE = "✅ Xong"
LABEL_MAX = 32

ASK_TITLE = "✍️ Bạn gõ tên hạn chót (ví dụ: Sơ kết 3 năm Phong trào, 2027)."
ASK_NEW_TITLE = "✍️ Bạn gõ tên mới cho hạn chót “{title}”."
ASK_DATE = "📅 Hạn nộp ngày nào? Gõ 10/12 nếu lặp lại hằng năm, hoặc 15/06/2027 nếu chỉ một lần."
ASK_NEW_DATE = "📅 Ngày hạn mới của “{title}”? Gõ 10/12 nếu lặp lại hằng năm, hoặc 15/06/2027 nếu chỉ một lần."
ASK_AUDIENCE = "👥 Ai phải nộp báo cáo “{title}”? (Cán bộ xã luôn được nhắc.)"
ASK_ORGS = "🏢 Chọn các tổ chức phải nộp, rồi bấm “Xong”."
CHOOSE_ONE_ORG = "Bạn chọn ít nhất một tổ chức nhé."
NO_ORGS = "Danh mục chưa có tổ chức nào. Bạn chọn người nhận khác nhé."
ADDED = "✅ Đã thêm hạn chót."
CHANGED = "✅ Đã lưu thay đổi."
PAUSED_NOW = "⏸️ Đã tạm dừng nhắc hạn này. Bấm “Nhắc lại” khi cần."
RESUMED_NOW = "▶️ Đã bật lại tin nhắc cho hạn này."
CONFIRM_REMOVE = "🗑️ Xóa hạn chót “{title}”? Sẽ không còn tin nhắc nào cho hạn này."
REMOVED = "🗑️ Đã xóa hạn chót “{title}”."

NOTHING_OPEN = "📭 Hiện không có hạn báo cáo nào đang mở cho đơn vị của bạn."
ALL_DONE = "✅ Đơn vị của bạn đã đánh dấu nộp mọi báo cáo đang mở. Cảm ơn bạn!"
WHICH_HAND_IN = "📨 Bạn đánh dấu đã nộp báo cáo nào?"
BTN_HAND_IN = "{unit} – hạn {due:%d/%m}: {title}"
HANDED_IN = (
    "✅ Đã ghi nhận: {unit} đã nộp báo cáo “{title}” (hạn {due:%d/%m/%Y}). "
    "Đơn vị sẽ không nhận thêm tin nhắc cho kỳ này."
)
HANDED_BEFORE = "✅ {unit} đã đánh dấu nộp báo cáo “{title}” (hạn {due:%d/%m/%Y}) từ trước. Cảm ơn bạn!"
CANNOT_HAND_IN = "Nút này không dùng được nữa: hạn đã qua, hạn chót đã bị xóa, hoặc bạn không phụ trách đơn vị này."

REMINDER = "🔔 Nhắc hạn báo cáo\n{title}\n📅 Hạn nộp: {due:%d/%m/%Y} – {left}.{late}\n\n{figures}\n\n{hint}"
LEFT_TODAY = "hôm nay là hạn cuối"
LEFT_TOMORROW = "còn 1 ngày (hạn là ngày mai)"
LEFT_DAYS = "còn {days} ngày"
LATE = "\n⏰ Tin nhắc này đến muộn: lẽ ra gửi lúc {moment:%H:%M} ngày {moment:%d/%m}, nhưng hệ thống đã tạm ngừng."
FIGURES = ("📊 {unit} (đến {today:%d/%m/%Y}):\n• {people_label}: {people}\n"
           "• Hoàn thành khóa cơ bản: {finished} ({share}){assisted}")
# Finishers who learned with a digital-team member beside them ("Học cùng"), counted in and shown apart.
FIGURES_ASSISTED = ", trong đó {count} người học cùng Tổ công nghệ số"
FIGURES_HANDED = "\n• Đã nộp: {done}/{total} đơn vị"
HINT = "Bấm “Lấy báo cáo” để nhận tệp báo cáo. Nộp xong, bấm “Đơn vị đã nộp báo cáo” để thôi nhắc."
BTN_GET_REPORT = "📑 Lấy báo cáo"
BTN_HANDED_IN = "✅ Đơn vị đã nộp báo cáo"


# --- shared helpers --------------------------------------------------------------------------------

def left_text(days: int) -> str:
    if days <= 0:
        return LEFT_TODAY
    return LEFT_TOMORROW if days == 1 else LEFT_DAYS.format(days=days)


def days_text(days: list[int]) -> str:
    """[30, 14, 7, 0] -> 'Nhắc trước 30, 14, 7 ngày và đúng ngày hạn'."""
    before = [str(day) for day in sorted(set(days), reverse=True) if day > 0]
    on_day = 0 in days
    if not before:
        return "Nhắc đúng ngày hạn"
    return f"Nhắc trước {', '.join(before)} ngày" + (" và đúng ngày hạn" if on_day else "")


def _short(title: str) -> str:
    return title if len(title) <= LABEL_MAX else title[:LABEL_MAX - 1].rstrip() + "…"


def _names(units: list[str], names: dict[str, str]) -> str:
    shown = [names.get(unit, "?") for unit in units[:NAMES_SHOWN]]
    if len(units) > NAMES_SHOWN:
        shown.append(MORE.format(count=len(units) - NAMES_SHOWN))
    return ", ".join(shown) if shown else "–"


async def _is_staff(turn: Turn) -> bool:
    return (await access.scopes_of(turn.session, turn.person)).staff


async def _audit(turn: Turn, action: str, outcome: str = "ok", *, deadline_id: int | None = None,
                 unit: Unit | None = None) -> None:
    await access.audit(turn.session, turn.now, turn.person.id if turn.person else None, action, outcome,
                       organisation_id=unit.id if unit and unit.kind == "org" else None,
                       village_id=unit.id if unit and unit.kind == "village" else None, subject=deadline_id)


async def _refuse_staff(turn: Turn, action: str = "deadlines_view") -> Replies:
    await _audit(turn, action, "refused")
    return await show_main_menu(turn, NOT_STAFF)


# --- /hanchot: the list and one deadline ------------------------------------------------------------

async def _audience_text(session: AsyncSession, deadline: Deadline) -> str:
    if deadline.audience == "staff":
        return WHO_STAFF
    if deadline.audience == "organisations":
        names = await deadlines.unit_names(session, [f"org:{i}" for i in deadline.organisation_ids], "")
        return WHO_ORGS.format(names=", ".join(names.values()) or "–")
    return WHO_ALL


@dataclass(frozen=True)
class Status:
    """A deadline's next occurrence and which units handed in for it."""

    due_on: date | None
    done: list[str]
    todo: list[str]


async def status_of(session: AsyncSession, deadline: Deadline, today: date) -> Status:
    due_on = deadlines.next_occurrence(deadline, today)
    if due_on is None:
        return Status(None, [], [])
    expected = await deadlines.expected_units(session, deadline)
    handed = await deadlines.handed_in(session, deadline.id, due_on)  # type: ignore[arg-type]
    return Status(due_on, [u for u in expected if u in handed], [u for u in expected if u not in handed])


async def describe(turn: Turn, deadline: Deadline, number: int, status: Status) -> str:
    lines = []
    if status.due_on is None:
        lines.append(PAST_DUE.format(due=f"{deadline.day:02d}/{deadline.month:02d}/{deadline.year}"))
    else:
        lines.append(NEXT_DUE.format(due=f"{status.due_on:%d/%m/%Y}", repeat=YEARLY if deadline.year is None else ONCE,
                                     left=left_text((status.due_on - turn.today).days)))
    lines.append(REMIND.format(days=days_text(deadline.remind_days), hour=deadline.remind_hour))
    lines.append(AUDIENCE.format(who=await _audience_text(turn.session, deadline)))
    if status.due_on is not None:
        lines.append(HANDED.format(done=len(status.done), total=len(status.done) + len(status.todo)))
    if deadline.paused:
        lines.append(PAUSED)
    return ITEM.format(number=number, title=deadline.title, lines="\n".join(lines))


async def on_deadlines_command(turn: Turn) -> Replies:
    return await on_deadlines(turn, "")


async def show_list(turn: Turn, preface: str | None = None) -> Replies:
    turn.goto("main")
    found = await deadlines.active_deadlines(turn.session)
    keyboard = Keyboard()
    parts = []
    for number, deadline in enumerate(found, start=1):
        parts.append(await describe(turn, deadline, number, await status_of(turn.session, deadline, turn.today)))
        keyboard.add(BTN_OPEN.format(number=number, title=_short(deadline.title)), f"hc:open:{deadline.id}")
    keyboard.add(BTN_ADD, "hc:add").add(texts.BTN_MENU, "menu")
    text = f"{LIST_HEAD}\n\n" + "\n\n".join(parts) if parts else NONE_YET
    return [*([Reply(preface)] if preface else []), Reply(text, keyboard.build())]


async def show_deadline(turn: Turn, deadline: Deadline, preface: str | None = None) -> Replies:
    turn.goto("main")
    found = await deadlines.active_deadlines(turn.session)
    number = next((n for n, d in enumerate(found, start=1) if d.id == deadline.id), 1)
    status = await status_of(turn.session, deadline, turn.today)
    text = await describe(turn, deadline, number, status)
    if status.due_on is not None and (status.done or status.todo):
        names = await deadlines.unit_names(turn.session, status.done + status.todo, turn.config.commune_name)
        text += DONE_LIST.format(count=len(status.done), names=_names(status.done, names))
        text += TODO_LIST.format(count=len(status.todo), names=_names(status.todo, names))
    keyboard = (Keyboard().add(BTN_DATE, f"hc:date:{deadline.id}").add(BTN_TITLE, f"hc:title:{deadline.id}")
                .add(BTN_RESUME if deadline.paused else BTN_PAUSE,
                     f"hc:{'resume' if deadline.paused else 'pause'}:{deadline.id}")
                .add(BTN_REMOVE, f"hc:remove:{deadline.id}").add(BTN_LIST, "hc").add(texts.BTN_MENU, "menu"))
    return [*([Reply(preface)] if preface else []), Reply(text, keyboard.build())]


async def on_deadlines(turn: Turn, argument: str) -> Replies:
    """hc, hc:open:ID, hc:add, hc:date:ID, hc:title:ID, hc:pause:ID, hc:resume:ID, hc:remove:ID."""
    if not await _is_staff(turn):
        return await _refuse_staff(turn)
    verb, _, number = argument.partition(":")
    if verb == "add":
        turn.goto("deadline_title", mode="add")
        return await view_title(turn)
    if verb not in {"open", "date", "title", "pause", "resume", "remove"}:
        return await show_list(turn)
    deadline_id = action_number(number)
    deadline = await deadlines.active_deadline(turn.session, deadline_id) if deadline_id is not None else None
    if deadline is None:
        return await show_list(turn, UNKNOWN_DEADLINE)
    if verb == "date":
        turn.goto("deadline_date", mode="redate", id=deadline.id)
        return await view_date(turn)
    if verb == "title":
        turn.goto("deadline_title", mode="rename", id=deadline.id)
        return await view_title(turn)
    if verb in {"pause", "resume"}:
        return await _pause(turn, deadline, verb == "pause")
    if verb == "remove":
        keyboard = Keyboard().add(BTN_REMOVE_YES, f"hcx:removeok:{deadline.id}").add(BTN_REMOVE_NO,
                                                                                     f"hc:open:{deadline.id}")
        return [Reply(CONFIRM_REMOVE.format(title=deadline.title), keyboard.build())]
    return await show_deadline(turn, deadline)


async def _pause(turn: Turn, deadline: Deadline, paused: bool) -> Replies:
    if deadline.paused != paused:
        await deadlines.edit_deadline(turn.session, deadline.id, now=turn.now, zone=turn.config.zone,  # type: ignore[arg-type]
                                      paused=paused)
        await _audit(turn, "deadline_paused" if paused else "deadline_resumed", deadline_id=deadline.id)
    return redrawn(await show_deadline(turn, deadline, PAUSED_NOW if paused else RESUMED_NOW))


# --- /hanchot: typed steps -------------------------------------------------------------------------

async def _step_deadline(turn: Turn) -> Deadline | None:
    """The deadline a rename or a new date is for (None: gone, or step data that is not ours)."""
    deadline_id = turn.data.get("id")
    return await deadlines.active_deadline(turn.session, deadline_id) if isinstance(deadline_id, int) else None


def _cancel_keyboard(turn: Turn) -> Keyboard:
    deadline_id = turn.data.get("id")
    return Keyboard().add(BTN_CANCEL, f"hc:open:{deadline_id}" if isinstance(deadline_id, int) else "hc")


async def view_title(turn: Turn) -> Replies:
    if not await _is_staff(turn):
        return await _refuse_staff(turn)
    if turn.data.get("mode") == "rename":
        deadline = await _step_deadline(turn)
        if deadline is None:
            return await show_list(turn, UNKNOWN_DEADLINE)
        return [Reply(ASK_NEW_TITLE.format(title=deadline.title), _cancel_keyboard(turn).build())]
    if turn.data.get("mode") != "add":
        return await show_list(turn)
    return [Reply(ASK_TITLE, _cancel_keyboard(turn).build())]


async def on_title_text(turn: Turn, text: str) -> Replies:
    if not await _is_staff(turn):
        return await _refuse_staff(turn, "deadline_changed")
    try:
        title = deadlines.clean_title(text)
    except DeadlineError as error:
        return [Reply(str(error)), *await view_title(turn)]
    if turn.data.get("mode") == "rename":
        deadline = await _step_deadline(turn)
        if deadline is None:
            return await show_list(turn, UNKNOWN_DEADLINE)
        await deadlines.edit_deadline(turn.session, deadline.id, now=turn.now, zone=turn.config.zone,  # type: ignore[arg-type]
                                      title=title)
        await _audit(turn, "deadline_changed", deadline_id=deadline.id)
        return await show_deadline(turn, deadline, CHANGED)
    if turn.data.get("mode") != "add":
        return await show_list(turn)
    turn.goto("deadline_date", mode="add", title=title)
    return await view_date(turn)


async def view_date(turn: Turn) -> Replies:
    if not await _is_staff(turn):
        return await _refuse_staff(turn)
    if turn.data.get("mode") == "redate":
        deadline = await _step_deadline(turn)
        if deadline is None:
            return await show_list(turn, UNKNOWN_DEADLINE)
        return [Reply(ASK_NEW_DATE.format(title=deadline.title), _cancel_keyboard(turn).build())]
    if turn.data.get("mode") != "add" or not isinstance(turn.data.get("title"), str):
        return await show_list(turn)
    return [Reply(ASK_DATE, _cancel_keyboard(turn).build())]


async def on_date_text(turn: Turn, text: str) -> Replies:
    if not await _is_staff(turn):
        return await _refuse_staff(turn, "deadline_changed")
    try:
        day, month, year = deadlines.parse_date(text)
        deadlines.check_future(day, month, year, turn.today)
    except DeadlineError as error:
        return [Reply(str(error)), *await view_date(turn)]
    if turn.data.get("mode") == "redate":
        deadline = await _step_deadline(turn)
        if deadline is None:
            return await show_list(turn, UNKNOWN_DEADLINE)
        await deadlines.edit_deadline(turn.session, deadline.id, now=turn.now, zone=turn.config.zone,  # type: ignore[arg-type]
                                      when=(day, month, year))
        await _audit(turn, "deadline_changed", deadline_id=deadline.id)
        return await show_deadline(turn, deadline, CHANGED)
    title = turn.data.get("title")
    if turn.data.get("mode") != "add" or not isinstance(title, str):
        return await show_list(turn)
    turn.goto("deadline_audience", title=title, day=day, month=month, year=year)
    return await view_audience(turn)


def _new_deadline_data(turn: Turn) -> tuple[str, int, int, int | None] | None:
    """(title, day, month, year) of the deadline being added, from the step data; None if not ours."""
    data = turn.data
    title, day, month, year = data.get("title"), data.get("day"), data.get("month"), data.get("year")
    if not (isinstance(title, str) and isinstance(day, int) and isinstance(month, int)
            and (year is None or isinstance(year, int))):
        return None
    return title, day, month, year


async def view_audience(turn: Turn) -> Replies:
    if not await _is_staff(turn):
        return await _refuse_staff(turn)
    new = _new_deadline_data(turn)
    if new is None:
        return await show_list(turn)
    keyboard = (Keyboard().add(BTN_AUD_ALL, "hcx:aud:all").add(BTN_AUD_ORGS, "hcx:aud:organisations")
                .add(BTN_AUD_STAFF, "hcx:aud:staff").add(BTN_CANCEL, "hc"))
    return [Reply(ASK_AUDIENCE.format(title=new[0]), keyboard.build())]


async def view_orgs(turn: Turn) -> Replies:
    if not await _is_staff(turn):
        return await _refuse_staff(turn)
    if _new_deadline_data(turn) is None:
        return await show_list(turn)
    chosen = set(turn.data.get("chosen") or [])
    keyboard = Keyboard()
    for organisation in await queries.all_organisations(turn.session):
        mark = "☑️" if organisation.id in chosen else "⬜"
        keyboard.add(f"{mark} {organisation.name}", f"hcx:org:{organisation.id}")
    keyboard.add(BTN_DONE, "hcx:orgdone").add(BTN_CANCEL, "hc")
    return [Reply(ASK_ORGS, keyboard.build())]


async def on_confirmed(turn: Turn, argument: str) -> Replies:
    """hcx:removeok:ID, hcx:aud:WHO, hcx:org:ID, hcx:orgdone: only from the buttons last shown."""
    if not await _is_staff(turn):
        return await _refuse_staff(turn, "deadline_changed")
    verb, _, value = argument.partition(":")
    if verb == "removeok":
        number = action_number(value)
        deadline = await deadlines.remove_deadline(turn.session, number, turn.now) if number is not None else None
        if deadline is None:
            return await show_list(turn, UNKNOWN_DEADLINE)
        await _audit(turn, "deadline_removed", deadline_id=deadline.id)
        return await show_list(turn, REMOVED.format(title=deadline.title))
    if verb == "aud" and value in deadlines.AUDIENCES and turn.state.step == "deadline_audience":
        if value != "organisations":
            return await _save_new(turn, value, [])
        if not await queries.all_organisations(turn.session):
            return [Reply(NO_ORGS), *await view_audience(turn)]
        turn.goto("deadline_orgs", **{**turn.data, "chosen": []})
        return await view_orgs(turn)
    if verb in {"org", "orgdone"} and turn.state.step == "deadline_orgs":
        return await _choose_org(turn, verb, value)
    return await show_list(turn)


async def _choose_org(turn: Turn, verb: str, value: str) -> Replies:
    known = {organisation.id for organisation in await queries.all_organisations(turn.session)}
    chosen = [i for i in turn.data.get("chosen") or [] if i in known]
    if verb == "orgdone":
        if not chosen:
            return [Reply(CHOOSE_ONE_ORG), *await view_orgs(turn)]
        return await _save_new(turn, "organisations", chosen)
    number = action_number(value)
    if number in known:
        chosen = [i for i in chosen if i != number] if number in chosen else [*chosen, number]
    turn.update(chosen=chosen)
    return redrawn(await view_orgs(turn))


async def _save_new(turn: Turn, audience: str, organisation_ids: list[int]) -> Replies:
    new = _new_deadline_data(turn)
    if new is None:
        return await show_list(turn)
    title, day, month, year = new
    try:
        deadline = await deadlines.add_deadline(
            turn.session, title=title, day=day, month=month, year=year, now=turn.now, zone=turn.config.zone,
            audience=audience, organisation_ids=organisation_ids, created_by=turn.person.id if turn.person else None)
    except DeadlineError as error:  # the day passed while they chose (a one-off typed near midnight)
        return await show_list(turn, str(error))
    await _audit(turn, "deadline_added", deadline_id=deadline.id)
    return await show_deadline(turn, deadline, ADDED)


# --- /danop and the reminder's button ---------------------------------------------------------------

HANDING_UNITS = ("commune", "org", "village")


@dataclass(frozen=True)
class Open:
    """An occurrence a unit may mark handed in."""

    deadline: Deadline
    due_on: date
    unit: Unit
    handed: bool

    @property
    def action(self) -> str:
        return f"dn:{self.deadline.id}:{self.due_on:%Y%m%d}:{self.unit.key}"


async def open_for(turn: Turn, units: list[Unit]) -> list[Open]:
    """For each unit and each deadline it must report for, the nearest open occurrence."""
    found = []
    for deadline in await deadlines.active_deadlines(turn.session):
        due_on = deadlines.next_occurrence(deadline, turn.today)
        if due_on is None:
            continue
        handed = await deadlines.handed_in(turn.session, deadline.id, due_on)  # type: ignore[arg-type]
        for unit in units:
            if deadlines.in_audience(deadline.audience, deadline.organisation_ids, unit.key):
                found.append(Open(deadline, due_on, unit, unit.key in handed))
    return sorted(found, key=lambda item: item.due_on)


async def on_hand_in_command(turn: Turn) -> Replies:
    scopes = await access.scopes_of(turn.session, turn.person)
    units = [unit for unit in units_of(scopes) if unit.kind in HANDING_UNITS]
    if not units:
        await _audit(turn, "report_handed_in", "refused")
        return await show_main_menu(turn, NOT_RESPONSIBLE)
    options = await open_for(turn, units)
    pending = [option for option in options if not option.handed]
    if not options:
        return await show_main_menu(turn, NOTHING_OPEN)
    if not pending:
        return await show_main_menu(turn, ALL_DONE)
    if len(pending) == 1:
        return await _mark(turn, pending[0].deadline, pending[0].due_on, pending[0].unit)
    names = await deadlines.unit_names(turn.session, [o.unit.key for o in pending], turn.config.commune_name)
    keyboard = Keyboard()
    for option in pending:
        keyboard.add(BTN_HAND_IN.format(unit=names.get(option.unit.key, "?"), due=option.due_on,
                                        title=_short(option.deadline.title)), option.action)
    turn.goto("main")
    return [Reply(WHICH_HAND_IN, keyboard.add(texts.BTN_MENU, "menu").build())]


def parse_hand_in(argument: str) -> tuple[int, date, Unit] | None:
    """'3:20261210:org:5' -> (3, 10/12/2026, org 5); None for anything else (a forged button)."""
    deadline_part, _, rest = argument.partition(":")
    day_part, _, unit_part = rest.partition(":")
    deadline_id = action_number(deadline_part)
    unit = parse_unit(unit_part)
    if deadline_id is None or unit is None or unit.kind not in HANDING_UNITS or len(day_part) != 8:
        return None
    try:
        due_on = datetime.strptime(day_part, "%Y%m%d").date() if day_part.isascii() and day_part.isdecimal() else None
    except ValueError:
        return None
    return (deadline_id, due_on, unit) if due_on is not None else None


async def on_hand_in(turn: Turn, argument: str) -> Replies:
    """dn:ID:YYYYMMDD:UNIT from /danop or a reminder: every condition checked again on each press."""
    parsed = parse_hand_in(argument)
    scopes = await access.scopes_of(turn.session, turn.person)
    deadline = await deadlines.active_deadline(turn.session, parsed[0]) if parsed else None
    if parsed is None or deadline is None or not await _may_hand_in(turn, scopes, deadline, parsed[1], parsed[2]):
        await _audit(turn, "report_handed_in", "refused", deadline_id=deadline.id if deadline else None,
                     unit=parsed[2] if parsed else None)
        return await show_main_menu(turn, CANNOT_HAND_IN)
    return await _mark(turn, deadline, parsed[1], parsed[2])


async def _may_hand_in(turn: Turn, scopes: access.Scopes, deadline: Deadline, due_on: date, unit: Unit) -> bool:
    if not allowed(scopes, unit) or not deadlines.in_audience(deadline.audience, deadline.organisation_ids, unit.key):
        return False
    if not deadlines.is_occurrence(deadline, due_on) or due_on < turn.today:
        return False
    names = await deadlines.unit_names(turn.session, [unit.key], turn.config.commune_name)
    return unit.key in names  # a unit that is not (or no longer) in the directory


async def _mark(turn: Turn, deadline: Deadline, due_on: date, unit: Unit) -> Replies:
    names = await deadlines.unit_names(turn.session, [unit.key], turn.config.commune_name)
    name = names.get(unit.key, "?")
    person_id = turn.person.id if turn.person else None
    new = await deadlines.hand_in(turn.session, deadline.id, due_on, unit.key, person_id, turn.now)  # type: ignore[arg-type]
    if new:
        await _audit(turn, "report_handed_in", deadline_id=deadline.id, unit=unit)
    words = HANDED_IN if new else HANDED_BEFORE
    note = Reply(words.format(unit=name, title=deadline.title, due=due_on), standalone=True)
    return [note, *await show_main_menu(turn)]


# --- reminders ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Counted:
    """What a reminder shows of its unit."""

    people_label: str
    people: int
    finished: int
    assisted: int = 0  # of `finished`, with a digital-team member's help


def counted_units(commune: CommuneFigures) -> dict[str, Counted]:
    """unit key -> its figures, all from one count of the commune."""
    totals = commune.totals
    units = {"commune": Counted("Người đăng ký", totals.people, totals.finished_core, totals.finished_assisted)}
    units.update({f"org:{row.organisation_id}": Counted("Thành viên", row.people, row.finished_core,
                                                        row.finished_assisted)
                  for row in commune.organisations})
    units.update({f"village:{row.village_id}": Counted("Người đăng ký", row.people, row.finished_core,
                                                       row.finished_assisted)
                  for row in commune.villages})
    return units


def reminder_replies(
    reminder: DueReminder, unit: str, unit_name: str, counted: Counted | None, handed: tuple[int, int] | None,
    now: datetime, config: HandlerConfig,
) -> Replies:
    """The reminder for one unit: title, date, days left, the unit's figures, and two buttons."""
    today = now.astimezone(config.zone).date()
    late = LATE.format(moment=reminder.moment.astimezone(config.zone)) if reminder.late else ""
    counted = counted or Counted("Người đăng ký", 0, 0)
    lines = FIGURES.format(unit=unit_name, today=today, people_label=counted.people_label, people=counted.people,
                           finished=counted.finished, share=share(counted.finished, counted.people),
                           assisted=FIGURES_ASSISTED.format(count=counted.assisted) if counted.assisted else "")
    if handed is not None:
        lines += FIGURES_HANDED.format(done=handed[0], total=handed[1])
    text = REMINDER.format(title=reminder.title, due=reminder.due_on, left=left_text((reminder.due_on - today).days),
                           late=late, figures=lines, hint=HINT)
    keyboard = (Keyboard().add(BTN_GET_REPORT, f"bc:{unit}")
                .add(BTN_HANDED_IN, f"dn:{reminder.deadline_id}:{reminder.due_on:%Y%m%d}:{unit}"))
    return [Reply(text, keyboard.build())]


def reminder_key(reminder: DueReminder, recipient: Recipient) -> str:
    return (f"reminder:{reminder.deadline_id}:{reminder.due_on.isoformat()}:{reminder.days_before}:"
            f"{recipient.person_id}:{recipient.unit}")[:160]


KEYS_PER_QUERY = 500  # bound parameters per IN (...): well under SQLite's and asyncpg's limits


@dataclass(frozen=True)
class Planned:
    """A due reminder with the people it goes to and what they are shown besides the figures."""

    reminder: DueReminder
    recipients: list[Recipient]
    names: dict[str, str]
    handed: tuple[int, int] | None  # (handed in, expected) for staff; None for a staff-only deadline


async def plan_reminders(session: AsyncSession, config: HandlerConfig, now: datetime) -> list[Planned]:
    """Every reminder due at `now` with its recipients (units that handed in left out). Writes nothing:
    `hocvuso reminders preview` shows exactly this."""
    active = await deadlines.active_deadlines(session)
    due = deadlines.reminders_due(active, now, config.zone, timedelta(hours=config.reminder_grace_hours))
    by_id = {deadline.id: deadline for deadline in active}
    planned = []
    for reminder in due:
        deadline = by_id[reminder.deadline_id]
        done = await deadlines.handed_in(session, reminder.deadline_id, reminder.due_on)
        found = await deadlines.recipients(session, reminder.audience, reminder.organisation_ids, done)
        names = await deadlines.unit_names(session, {r.unit for r in found}, config.commune_name)
        handed = None
        if deadline.audience != "staff":
            expected = await deadlines.expected_units(session, deadline)
            handed = (sum(unit in done for unit in expected), len(expected))
        planned.append(Planned(reminder, found, names, handed))
    return planned


async def _not_stored(session: AsyncSession, planned: list[Planned]) -> list[Planned]:
    """The plans without the recipients whose reminder is in the outbox already (a reminder stays due
    for the whole grace window: the figures are counted only when someone is still to be reminded)."""
    keys = [reminder_key(plan.reminder, recipient) for plan in planned for recipient in plan.recipients]
    stored: set[str] = set()
    for start in range(0, len(keys), KEYS_PER_QUERY):
        chunk = keys[start:start + KEYS_PER_QUERY]
        stored.update((await session.exec(select(Delivery.key).where(col(Delivery.key).in_(chunk)))).all())
    people = list({recipient.person_id for plan in planned for recipient in plan.recipients})
    reachable: set[int] = set()  # someone who blocked the bot would otherwise be counted for every 5 minutes
    for start in range(0, len(people), KEYS_PER_QUERY):
        chunk = people[start:start + KEYS_PER_QUERY]
        reachable.update((await session.exec(
            select(ChannelAccount.person_id).where(col(ChannelAccount.person_id).in_(chunk),
                                                   col(ChannelAccount.blocked).is_(False)))).all())
    left = [replace(plan, recipients=[r for r in plan.recipients if reminder_key(plan.reminder, r) not in stored
                                      and r.person_id in reachable])
            for plan in planned]
    return [plan for plan in left if plan.recipients]


async def run_reminders(services: Services, now: datetime) -> int:
    """Store in the outbox every reminder due at `now` that was not stored before; how many were new.

    Safe to run as often as wanted, from any number of processes: each reminder has its key.
    """
    async with services.database.session() as session:
        planned = await _not_stored(session, await plan_reminders(session, services.config, now))
    if not planned:
        return 0  # the usual case, every 5 minutes: nothing new, and nothing is counted
    core = services.core_lessons(now)
    # One count of the commune gives every unit's figures; it runs off the event loop's thread.
    commune = await services.database.read(lambda connection: figures.commune_figures(connection, core, now))
    counted = counted_units(commune)
    made = 0
    async with services.database.session() as session:
        for plan in planned:
            reminder = plan.reminder
            # A unit may have handed in while the figures were counted.
            done = await deadlines.handed_in(session, reminder.deadline_id, reminder.due_on)
            expires = deadlines.day_end(reminder.due_on, services.config.zone)
            for recipient in plan.recipients:
                if recipient.unit in done:
                    continue
                replies = reminder_replies(reminder, recipient.unit, plan.names.get(recipient.unit, "?"),
                                           counted.get(recipient.unit),
                                           plan.handed if recipient.unit == "commune" else None, now, services.config)
                made += await outbox.enqueue_for_person(
                    session, recipient.person_id, key=reminder_key(reminder, recipient), kind="reminder",
                    payload=to_payload(replies), now=now, expires_at=expires)
    if made:
        log.info("reminders stored in the outbox: %d", made)
    return made


def register(registry: Registry) -> None:
    registry.add_command("hanchot", "Hạn chót báo cáo và tin nhắc (cán bộ xã)", on_deadlines_command, listed=False)
    registry.add_command("danop", "Đánh dấu đơn vị đã nộp báo cáo", on_hand_in_command)
    registry.add_step("deadline_title", view_title, on_title_text)
    registry.add_step("deadline_date", view_date, on_date_text)
    registry.add_step("deadline_audience", view_audience)
    registry.add_step("deadline_orgs", view_orgs)
    # Staff is checked (and a refusal audited) on every press, so an old or forged button is harmless.
    registry.add_action("hc", on_deadlines, anywhere=True)
    registry.add_action("hcx", on_confirmed)
    # Checks access to the unit and that the occurrence is open on every press (reminders are old messages).
    registry.add_action("dn", on_hand_in, anywhere=True)
