"""/hoatdong: what a unit organised offline (a campaign, a class, home visits, a contest).

Leaders record for the organisations they lead, village heads for their village, staff for any
organisation or village or for the commune as a whole. Recording is one step per field: the kind
(buttons), the day (typed), the title (typed), the place (a village's button or typed), the number of
participants (typed digits, so that step shows no buttons: a typed "35" must never be taken for a menu
choice), and, for an organisation, which of its confirmed members were there (paged buttons that tick
on and off; typed letters search). A summary then offers "Lưu" or a change of any field. The unit's
list shows the current reporting year's activities; one can be opened, corrected field by field or
removed while its reporting year is the current one.

The draft lives in the chat's step data, so a bad answer, a restart or another worker loses nothing.
Buttons `hd:…` (registered anywhere: old messages, the list, an activity) check access on every press
and audit a refusal; `hdx:…` (a draft's choices, the confirmed removal) are honoured only among the
buttons last shown, and check access again too. Every step's view and typed answer checks again that
the person may record for the unit: a role revoked mid-draft stops the draft.

Audit lines: `activity_recorded`, `activity_corrected`, `activity_removed` with the activity's id and
the names of the fields set or changed (`detail`), never a title, a place or a name.

Photos (Telegram): a photo sent while a new activity's summary is shown reaches `on_summary_photo` with
its file_id (`Incoming.file_id`, a step's `on_photo`); the id is saved with the activity, the photo stays
on Telegram. Zalo's images carry no id the bot could keep, so there the question is not asked.
"""

from __future__ import annotations

import asyncio
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from handlers import texts
from handlers.context import NOT_FETCHED, NeedsPrefetch, Services, Turn
from handlers.core import Attachment, Incoming, Keyboard, Reply, redrawn
from handlers.home import show_main_menu
from handlers.numbers import action_number
from handlers.registry import Registry, Replies
from handlers.unit_figures import Unit, allowed, parse_unit
from storage import access, activities, queries
from storage.activities import ActivityError, UnitRef
from storage.models import ACTIVITY_KINDS, Organisation, UnitActivity, Village
from storage.report import Period, period_year_of, reporting_period

# --- words ----------------------------------------------------------------------------------------------

NOT_RESPONSIBLE = (
    "Ghi hoạt động dành cho lãnh đạo tổ chức, trưởng thôn và cán bộ xã. "
    "Nếu bạn phụ trách một đơn vị, hãy xin mã mời rồi gõ /ma."
)
NOT_YOURS = "Bạn không phụ trách đơn vị này, nên không xem hay ghi được hoạt động của đơn vị. Mình đưa bạn về menu."
GONE = "Hoạt động này không còn (có thể đã bị xóa). Mình đưa bạn về danh sách."
CLOSED = "Hoạt động này thuộc năm báo cáo đã khép lại: chỉ xem được, không sửa hay xóa được nữa."
WHICH_UNIT = "📋 Bạn ghi hoạt động cho đơn vị nào?"
WHICH_ORG = "🏢 Chọn tổ chức:"
WHICH_VILLAGE = "🏘️ Chọn thôn/xóm:"
COMMUNE_TITLE = "Toàn xã"

LIST_HEAD = "📋 {unit}: hoạt động năm báo cáo {year} (từ {first:%d/%m/%Y} đến {last:%d/%m/%Y})"
LIST_COUNT = "Đã ghi {count} hoạt động, {participants} lượt người tham dự."
LIST_NONE = "Chưa ghi hoạt động nào trong năm báo cáo này. Bấm “Ghi hoạt động mới” để bắt đầu."
LIST_LINE = "{number}. {day:%d/%m/%Y} · {kind} · {title} ({participants} người)"
LIST_PAGE = "Trang {page}/{pages}"

ASK_KIND = "🗂️ Ghi hoạt động mới cho {unit}.\nĐây là loại hoạt động nào?"
ASK_DATE = "📅 Hoạt động diễn ra ngày nào? Gõ ngày, ví dụ {example}."
ASK_TITLE = ("✍️ Tên hoạt động là gì? Gõ ngắn gọn (tối đa 160 ký tự), "
             "ví dụ: Tuyên truyền cài đặt VNeID mức 2.")
ASK_PLACE = ("📍 Hoạt động diễn ra ở đâu? Chọn thôn/xóm bên dưới, hoặc gõ tên nơi khác "
             "(ví dụ: Nhà văn hóa thôn 2).")
ASK_COUNT = "👥 Có bao nhiêu người tham dự? Gõ một con số, ví dụ 35.\n(Gõ menu nếu muốn dừng lại.)"
ASK_MEMBERS = ("🙋 Thành viên có mặt (không bắt buộc): bấm tên để đánh dấu ☑️, bấm lại để bỏ, rồi bấm “Xong”. "
               "Gõ vài chữ của tên để tìm.\nĐã chọn: {count} người.{found}")
FOUND = "\nĐang tìm “{query}”: {count} người khớp."
NO_MEMBERS = ("Tổ chức chưa có thành viên nào đã xác nhận và đồng ý hiện tên, nên chưa ghi tên được. "
              "Số người tham dự vẫn được ghi.")
CURRENT = "\n(Hiện tại: {value})"
SUMMARY_HEAD = "📝 Kiểm tra lại trước khi lưu:"
SUMMARY_TAIL = "Bấm “Lưu” để ghi lại, hoặc chọn mục cần sửa."
SAVED = "✅ Đã lưu hoạt động."
# On Telegram a photo can go with a new activity: only Telegram's id of it is kept, the photo stays there.
PHOTO_HINT = "📷 Muốn gửi kèm một ảnh của hoạt động (không bắt buộc)? Gửi ảnh ngay trong cuộc trò chuyện này."
PHOTO_LINE = "• Ảnh: đã gửi kèm 📷"
PHOTO_KEPT = "📷 Đã nhận ảnh. Ảnh được lưu cùng hoạt động khi bạn bấm “Lưu”."
PHOTO_ID_MAX = 200
PHOTO_CHANNEL = "telegram"
CORRECTED = "✅ Đã sửa: {fields}."
UNCHANGED = "Không có gì thay đổi."
WHICH_FIELD = "✏️ Bạn muốn sửa mục nào của hoạt động “{title}”?"
CONFIRM_REMOVE = ("🗑️ Xóa hoạt động “{title}” ngày {day:%d/%m/%Y}? "
                  "Hoạt động đã xóa không còn được tính trong báo cáo.")
REMOVED = "🗑️ Đã xóa hoạt động “{title}”."
BOOK_CAPTION = "📄 Hoạt động năm báo cáo {year} của {unit}: {count} hoạt động."
NOT_READY = "Mình chưa lập xong tệp này. Bạn bấm lại nhé."

DETAIL = ("📌 {title}\n• Đơn vị: {unit}\n• Loại: {kind}\n• Ngày: {day:%d/%m/%Y}\n• Nơi: {place}\n"
          "• Số người tham dự: {participants}{members}")
DETAIL_MEMBERS = "\n• Thành viên có mặt được ghi tên: {count}{names}"
NAMES_SHOWN = 20
MORE_NAMES = " và {count} người khác"

FIELD_WORDS = {"kind": "loại", "date": "ngày", "title": "tên", "place": "nơi", "count": "số người",
               "members": "thành viên có mặt"}
COLUMN_FIELD = {"kind": "kind", "held_on": "date", "title": "title", "place": "place", "place_village_id": "place",
                "participants": "count", "members": "members"}

BTN_NEW = "➕ Ghi hoạt động mới"
BTN_OPEN = "📌 {number}. {day:%d/%m} {title}"
BTN_BOOK = "📄 Tệp Excel"
BTN_PREV = "◀️ Trang trước"
BTN_NEXT = "▶️ Trang sau"
BTN_OTHER_UNIT = "↩️ Đơn vị khác"
BTN_ANY_ORG = "🏢 Một tổ chức…"
BTN_ANY_VILLAGE = "🏘️ Một thôn/xóm…"
BTN_CANCEL = "❌ Hủy"
BTN_BACK = "↩️ Quay lại"
BTN_LIST = "↩️ Danh sách hoạt động"
BTN_SAVE = "💾 Lưu"
BTN_EDIT = "✏️ Sửa {field}"
BTN_FIX = "✏️ Sửa"
BTN_REMOVE = "🗑️ Xóa"
BTN_REMOVE_YES = "🗑️ Xóa hẳn"
BTN_REMOVE_NO = "↩️ Không xóa"
BTN_DONE = "✅ Xong"
BTN_CLEAR_SEARCH = "✖️ Bỏ tìm"
LABEL_MAX = 30

UNIT_KINDS = ("commune", "org", "village")
FLOW = ("kind", "date", "title", "place", "count", "members")
LIST_PAGE_SIZE = 6
UNIT_PAGE_SIZE = 8
MEMBER_PAGE_SIZE = 8


# --- helpers ----------------------------------------------------------------------------------------------

def _short(text: str, limit: int = LABEL_MAX) -> str:
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def _fold(text: str) -> str:
    """'Nguyễn Đức' -> 'nguyen duc': how a typed search is compared with names."""
    bare = "".join(c for c in unicodedata.normalize("NFD", text.casefold()) if not unicodedata.combining(c))
    return " ".join(bare.replace("đ", "d").split())


def _ref(unit: Unit) -> UnitRef:
    if unit.kind == "org":
        return UnitRef(organisation_id=unit.id)
    return UnitRef(village_id=unit.id) if unit.kind == "village" else UnitRef()


def _unit_of(activity: UnitActivity) -> Unit:
    if activity.organisation_id is not None:
        return Unit("org", activity.organisation_id)
    return Unit("village", activity.village_id) if activity.village_id is not None else Unit("commune")


def _parse_unit(text: Any) -> Unit | None:
    unit = parse_unit(text) if isinstance(text, str) else None
    return unit if unit is not None and unit.kind in UNIT_KINDS else None


def _unit_and_page(rest: str) -> tuple[Unit | None, int]:
    """'org:5:2' -> (org 5, page 2); 'commune' -> (the commune, 0)."""
    parts = rest.split(":")
    size = 1 if parts[0] == "commune" else 2
    unit = _parse_unit(":".join(parts[:size]))
    page = action_number(parts[size]) if len(parts) == size + 1 else 0 if len(parts) == size else None
    return (unit, page) if page is not None else (None, 0)


def _period(turn: Turn) -> Period:
    config = turn.config
    return reporting_period(period_year_of(turn.now, config.report_deadline, config.zone),
                            config.report_deadline, config.zone)


def _is_open(turn: Turn, held_on: date) -> bool:
    return activities.is_open(held_on, turn.today, turn.config.report_deadline, turn.config.zone)


def _own_units(scopes: access.Scopes) -> list[Unit]:
    units = [Unit("commune")] if scopes.staff else []
    units += [Unit("org", organisation_id) for organisation_id in scopes.organisations]
    return units + [Unit("village", village_id) for village_id in scopes.villages]


async def _unit_name(turn: Turn, unit: Unit) -> str | None:
    """The unit's name; None when it is not (or no longer) in the directory."""
    if unit.kind == "commune":
        return COMMUNE_TITLE
    row = await turn.session.get(Organisation if unit.kind == "org" else Village, unit.id)
    return row.name if row is not None else None


async def _audit(turn: Turn, action: str, outcome: str = "ok", *, unit: Unit | None = None,
                 record_id: int | None = None, fields: list[str] | None = None) -> None:
    await access.audit(turn.session, turn.now, turn.person.id if turn.person else None, action, outcome,
                       organisation_id=unit.id if unit is not None and unit.kind == "org" else None,
                       village_id=unit.id if unit is not None and unit.kind == "village" else None,
                       record_id=record_id, detail=",".join(fields) if fields else None)


async def _refuse(turn: Turn, action: str, unit: Unit | None = None, record_id: int | None = None) -> Replies:
    await _audit(turn, action, "refused", unit=unit, record_id=record_id)
    scopes = await access.scopes_of(turn.session, turn.person)
    return await show_main_menu(turn, NOT_YOURS if _own_units(scopes) else NOT_RESPONSIBLE)


@dataclass(frozen=True)
class Allowed:
    """A unit the person may record for, with its name; and the activity acted on, if any."""

    unit: Unit
    name: str
    activity: UnitActivity | None = None


async def _check_unit(turn: Turn, unit: Unit | None, action: str, record_id: int | None = None) -> Allowed | Replies:
    scopes = await access.scopes_of(turn.session, turn.person)
    if unit is None or turn.person is None or not allowed(scopes, unit):
        return await _refuse(turn, action, unit, record_id)
    name = await _unit_name(turn, unit)
    if name is None:
        return await _refuse(turn, action, unit, record_id)
    return Allowed(unit, name)


async def _check_activity(turn: Turn, activity_id: int | None, action: str, *, to_change: bool) -> Allowed | Replies:
    """The activity and its unit, if the person may see it (and, `to_change`, its year is still open)."""
    activity = await activities.get(turn.session, activity_id) if activity_id is not None else None
    if activity is None:
        if activity_id is not None:
            removed = await turn.session.get(UnitActivity, activity_id)
            if removed is not None:  # removed meanwhile: back to its unit's list, if it is theirs
                checked = await _check_unit(turn, _unit_of(removed), action, activity_id)
                return checked if isinstance(checked, list) else await _show_list(turn, checked, GONE)
        return await _refuse(turn, action, record_id=activity_id)
    checked = await _check_unit(turn, _unit_of(activity), action, activity.id)
    if isinstance(checked, list):
        return checked
    if to_change and not _is_open(turn, activity.held_on):
        return await _show_activity(turn, Allowed(checked.unit, checked.name, activity), CLOSED)
    return Allowed(checked.unit, checked.name, activity)


# --- choosing the unit ------------------------------------------------------------------------------------

async def on_command(turn: Turn) -> Replies:
    return await on_action(turn, "")


async def _choose(turn: Turn) -> Replies:
    scopes = await access.scopes_of(turn.session, turn.person)
    own = _own_units(scopes)
    if not own or turn.person is None:
        return await _refuse(turn, "activities_view")
    if len(own) == 1 and not scopes.staff:
        checked = await _check_unit(turn, own[0], "activities_view")
        if isinstance(checked, list):
            return checked
        await _audit(turn, "activities_view", unit=checked.unit)
        return await _show_list(turn, checked)
    keyboard = Keyboard()
    for unit in own:
        name = await _unit_name(turn, unit)
        if name is not None:
            keyboard.add(_short(name, 40), f"hd:u:{unit.key}")
    if scopes.staff:
        keyboard.add(BTN_ANY_ORG, "hd:all:org:0").add(BTN_ANY_VILLAGE, "hd:all:village:0")
    turn.goto("main")
    return [Reply(WHICH_UNIT, keyboard.add(texts.BTN_MENU, "menu").build())]


async def _choose_any(turn: Turn, kind: str, page: int) -> Replies:
    """Staff: every organisation (or village) of the directory, a page at a time."""
    scopes = await access.scopes_of(turn.session, turn.person)
    if not scopes.staff or turn.person is None:
        return await _refuse(turn, "activities_view")
    rows: list[Any] = await (queries.all_organisations(turn.session) if kind == "org"
                             else queries.all_villages(turn.session))
    pages = max(1, -(-len(rows) // UNIT_PAGE_SIZE))
    page = min(page, pages - 1)
    keyboard = Keyboard()
    for row in rows[page * UNIT_PAGE_SIZE:(page + 1) * UNIT_PAGE_SIZE]:
        keyboard.add(_short(row.name, 40), f"hd:u:{kind}:{row.id}")
    if page > 0:
        keyboard.add(BTN_PREV, f"hd:all:{kind}:{page - 1}")
    if page + 1 < pages:
        keyboard.add(BTN_NEXT, f"hd:all:{kind}:{page + 1}")
    keyboard.add(BTN_OTHER_UNIT, "hd").add(texts.BTN_MENU, "menu")
    turn.goto("main")
    return [Reply(WHICH_ORG if kind == "org" else WHICH_VILLAGE, keyboard.build())]


# --- the unit's list and one activity ---------------------------------------------------------------------

async def _show_list(turn: Turn, checked: Allowed, preface: str | None = None, page: int = 0) -> Replies:
    period = _period(turn)
    found = await activities.of_unit(turn.session, _ref(checked.unit), period)
    pages = max(1, -(-len(found) // LIST_PAGE_SIZE))
    page = min(max(page, 0), pages - 1)
    shown = list(enumerate(found, start=1))[page * LIST_PAGE_SIZE:(page + 1) * LIST_PAGE_SIZE]
    lines = [LIST_HEAD.format(unit=checked.name, year=period.year, first=period.first_day, last=period.last_day)]
    if found:
        lines.append(LIST_COUNT.format(count=len(found), participants=sum(a.participants for a in found)))
        lines.append("\n".join(LIST_LINE.format(number=number, day=a.held_on, kind=ACTIVITY_KINDS.get(a.kind, a.kind),
                                                title=a.title, participants=a.participants) for number, a in shown))
        if pages > 1:
            lines.append(LIST_PAGE.format(page=page + 1, pages=pages))
    else:
        lines.append(LIST_NONE)
    key = checked.unit.key
    keyboard = Keyboard().add(BTN_NEW, f"hd:new:{key}")
    for number, activity in shown:
        keyboard.add(BTN_OPEN.format(number=number, day=activity.held_on, title=_short(activity.title, 24)),
                     f"hd:open:{activity.id}")
    if page > 0:
        keyboard.add(BTN_PREV, f"hd:u:{key}:{page - 1}")
    if page + 1 < pages:
        keyboard.add(BTN_NEXT, f"hd:u:{key}:{page + 1}")
    if found:
        keyboard.add(BTN_BOOK, f"hd:xlsx:{key}")
    scopes = await access.scopes_of(turn.session, turn.person)
    if scopes.staff or len(_own_units(scopes)) > 1:
        keyboard.add(BTN_OTHER_UNIT, "hd")
    keyboard.add(texts.BTN_MENU, "menu")
    turn.goto("activities", unit=key, page=page)
    return [*([Reply(preface)] if preface else []), Reply("\n\n".join(lines), keyboard.build())]


async def view_list(turn: Turn) -> Replies:
    unit = _parse_unit(turn.data.get("unit"))
    if unit is None:
        return await _choose(turn)
    checked = await _check_unit(turn, unit, "activities_view")
    if isinstance(checked, list):
        return checked
    page = turn.data.get("page")
    return await _show_list(turn, checked, page=page if isinstance(page, int) else 0)


async def _place_text(turn: Turn, place: str | None, village_id: int | None) -> str:
    if village_id is not None:
        village = await turn.session.get(Village, village_id)
        if village is not None:
            return village.name
    return place or "–"


async def _show_activity(turn: Turn, checked: Allowed, preface: str | None = None) -> Replies:
    activity = checked.activity
    assert activity is not None and activity.id is not None
    named, hidden = await activities.members_present(turn.session, activity.id)
    members = ""
    if named or hidden:
        names = ", ".join(person.name for person in named[:NAMES_SHOWN])
        more = len(named) - NAMES_SHOWN + hidden
        names += MORE_NAMES.format(count=more) if more > 0 and names else ""
        members = DETAIL_MEMBERS.format(count=len(named) + hidden, names=f" ({names})" if names else "")
    text = DETAIL.format(title=activity.title, unit=checked.name, kind=ACTIVITY_KINDS.get(activity.kind, activity.kind),
                         day=activity.held_on, place=await _place_text(turn, activity.place, activity.place_village_id),
                         participants=activity.participants, members=members)
    if activity.photo_file_id:
        text = f"{text}\n{PHOTO_LINE}"
    keyboard = Keyboard()
    if _is_open(turn, activity.held_on):
        keyboard.add(BTN_FIX, f"hd:fix:{activity.id}").add(BTN_REMOVE, f"hd:del:{activity.id}")
    elif preface != CLOSED:
        text = f"{text}\n\n{CLOSED}"
    keyboard.add(BTN_LIST, f"hd:u:{checked.unit.key}").add(texts.BTN_MENU, "menu")
    turn.goto("activity", id=activity.id)
    return [*([Reply(preface)] if preface else []), Reply(text, keyboard.build())]


async def view_activity(turn: Turn) -> Replies:
    activity_id = turn.data.get("id")
    if not isinstance(activity_id, int):
        return await _choose(turn)
    checked = await _check_activity(turn, activity_id, "activities_view", to_change=False)
    return checked if isinstance(checked, list) else await _show_activity(turn, checked)


# --- hd: buttons honoured from any message (each checks access) --------------------------------------------

async def on_action(turn: Turn, argument: str) -> Replies:
    """hd, hd:all:KIND:PAGE, hd:u:UNIT[:PAGE], hd:new:UNIT, hd:open:ID, hd:fix:ID, hd:f:ID:FIELD,
    hd:del:ID, hd:xlsx:UNIT."""
    verb, _, rest = argument.partition(":")
    if verb == "all":
        kind, _, page = rest.partition(":")
        number = action_number(page)
        if kind not in ("org", "village") or number is None:
            return await _refuse(turn, "activities_view")
        return await _choose_any(turn, kind, number)
    if verb in ("u", "new", "xlsx"):
        unit, page = _unit_and_page(rest) if verb == "u" else (_parse_unit(rest), 0)
        action = {"u": "activities_view", "new": "activity_recorded", "xlsx": "activities_export"}[verb]
        checked = await _check_unit(turn, unit, action)
        if isinstance(checked, list):
            return checked
        if verb == "new":
            turn.goto("activity_kind", mode="new", unit=checked.unit.key)
            return await view_kind(turn)
        if verb == "xlsx":
            return await _book(turn, checked)
        await _audit(turn, "activities_view", unit=checked.unit)
        return await _show_list(turn, checked, page=page)
    if verb in ("open", "fix", "del", "f"):
        number, _, field = rest.partition(":")
        activity_id = action_number(number)
        action = {"open": "activities_view", "fix": "activity_corrected", "f": "activity_corrected",
                  "del": "activity_removed"}[verb]
        checked = await _check_activity(turn, activity_id, action, to_change=verb != "open")
        if isinstance(checked, list):
            return checked
        activity = checked.activity
        assert activity is not None
        if verb == "open":
            await _audit(turn, "activities_view", unit=checked.unit, record_id=activity.id)
            return await _show_activity(turn, checked)
        if verb == "fix":
            return _which_field(turn, checked)
        if verb == "f":
            return await _start_fix(turn, checked, field)
        keyboard = (Keyboard().add(BTN_REMOVE_YES, f"hdx:del:{activity.id}")
                    .add(BTN_REMOVE_NO, f"hd:open:{activity.id}"))
        turn.goto("activity", id=activity.id)
        return [Reply(CONFIRM_REMOVE.format(title=activity.title, day=activity.held_on), keyboard.build())]
    if argument:
        return await _refuse(turn, "activities_view")
    return await _choose(turn)


def _fields_of(unit: Unit) -> tuple[str, ...]:
    return FLOW if unit.kind == "org" else FLOW[:-1]


def _which_field(turn: Turn, checked: Allowed) -> Replies:
    activity = checked.activity
    assert activity is not None
    keyboard = Keyboard()
    for field in _fields_of(checked.unit):
        keyboard.add(BTN_EDIT.format(field=FIELD_WORDS[field]), f"hd:f:{activity.id}:{field}")
    keyboard.add(BTN_BACK, f"hd:open:{activity.id}")
    turn.goto("activity", id=activity.id)
    return [Reply(WHICH_FIELD.format(title=activity.title), keyboard.build())]


async def _start_fix(turn: Turn, checked: Allowed, field: str) -> Replies:
    activity = checked.activity
    assert activity is not None and activity.id is not None
    if field not in _fields_of(checked.unit):
        return _which_field(turn, checked)
    members = await activities.member_ids(turn.session, activity.id) if field == "members" else []
    turn.goto(f"activity_{field}", mode="fix", id=activity.id, unit=checked.unit.key, members=members, page=0)
    return await VIEWS[field](turn)


# --- the draft: one step per field ----------------------------------------------------------------------

async def _context(turn: Turn, action: str | None = None) -> Allowed | Replies:
    """Who the step is for: a new activity of an allowed unit, or an open activity being corrected."""
    mode = turn.data.get("mode")
    if mode == "fix":
        activity_id = turn.data.get("id")
        return await _check_activity(turn, activity_id if isinstance(activity_id, int) else None,
                                     action or "activity_corrected", to_change=True)
    if mode == "new":
        return await _check_unit(turn, _parse_unit(turn.data.get("unit")), action or "activity_recorded")
    return await _choose(turn)  # step data that is not a draft: start from the beginning


def _cancel(checked: Allowed) -> str:
    if checked.activity is not None:
        return f"hd:open:{checked.activity.id}"
    return f"hd:u:{checked.unit.key}"


def _current(checked: Allowed, value: str) -> str:
    return CURRENT.format(value=value) if checked.activity is not None else ""


async def view_kind(turn: Turn) -> Replies:
    checked = await _context(turn)
    if isinstance(checked, list):
        return checked
    keyboard = Keyboard()
    for code, label in ACTIVITY_KINDS.items():
        keyboard.add(label, f"hdx:kind:{code}")
    keyboard.add(BTN_CANCEL, _cancel(checked))
    if checked.activity is not None:
        text = "🗂️ Loại hoạt động mới?" + _current(checked, ACTIVITY_KINDS.get(checked.activity.kind, "?"))
    else:
        text = ASK_KIND.format(unit=checked.name)
    return [Reply(text, keyboard.build())]


async def view_date(turn: Turn) -> Replies:
    checked = await _context(turn)
    if isinstance(checked, list):
        return checked
    current = _current(checked, f"{checked.activity.held_on:%d/%m/%Y}") if checked.activity else ""
    text = ASK_DATE.format(example=f"{turn.today:%d/%m} hoặc {turn.today:%d/%m/%Y}") + current
    return [Reply(text, Keyboard().add(BTN_CANCEL, _cancel(checked)).build())]


async def view_title(turn: Turn) -> Replies:
    checked = await _context(turn)
    if isinstance(checked, list):
        return checked
    current = _current(checked, checked.activity.title) if checked.activity else ""
    return [Reply(ASK_TITLE + current, Keyboard().add(BTN_CANCEL, _cancel(checked)).build())]


async def view_place(turn: Turn) -> Replies:
    checked = await _context(turn)
    if isinstance(checked, list):
        return checked
    activity = checked.activity
    current = ""
    if activity is not None:
        current = _current(checked, await _place_text(turn, activity.place, activity.place_village_id))
    keyboard = Keyboard()
    for village in await queries.all_villages(turn.session):
        keyboard.add(_short(village.name, 40), f"hdx:place:{village.id}")
    keyboard.add(BTN_CANCEL, _cancel(checked))
    return [Reply(ASK_PLACE + current, keyboard.build())]


async def view_count(turn: Turn) -> Replies:
    """No buttons here: a typed number must reach the step, never pick a menu choice."""
    checked = await _context(turn)
    if isinstance(checked, list):
        return checked
    current = _current(checked, str(checked.activity.participants)) if checked.activity else ""
    return [Reply(ASK_COUNT + current)]


async def view_members(turn: Turn) -> Replies:
    checked = await _context(turn)
    if isinstance(checked, list):
        return checked
    if checked.unit.kind != "org":
        return await _after(turn, checked, "members")
    people = await activities.confirmed_members(turn.session, checked.unit.id)  # type: ignore[arg-type]
    if not people and checked.activity is None:
        return [Reply(NO_MEMBERS), *await _after(turn, checked, "members")]
    chosen = {i for i in turn.data.get("members") or [] if isinstance(i, int)}
    query = turn.data.get("q") if isinstance(turn.data.get("q"), str) else ""
    if query:
        people = [person for person in people if _fold(query) in _fold(person.name)]
    pages = max(1, -(-len(people) // MEMBER_PAGE_SIZE))
    page = turn.data.get("page") if isinstance(turn.data.get("page"), int) else 0
    page = min(max(page, 0), pages - 1)
    keyboard = Keyboard()
    for person in people[page * MEMBER_PAGE_SIZE:(page + 1) * MEMBER_PAGE_SIZE]:
        keyboard.add(f"{'☑️' if person.person_id in chosen else '⬜'} {_short(person.name, 34)}",
                     f"hdx:m:{person.person_id}")
    if page > 0:
        keyboard.add(BTN_PREV, f"hdx:mp:{page - 1}")
    if page + 1 < pages:
        keyboard.add(BTN_NEXT, f"hdx:mp:{page + 1}")
    if query:
        keyboard.add(BTN_CLEAR_SEARCH, "hdx:mq")
    keyboard.add(BTN_DONE, "hdx:md").add(BTN_CANCEL, _cancel(checked))
    found = FOUND.format(query=_short(query, 40), count=len(people)) if query else ""
    text = ASK_MEMBERS.format(count=len(chosen), found=found)
    return [Reply(text if people or query else f"{NO_MEMBERS}\n\n{text}", keyboard.build())]


async def view_summary(turn: Turn) -> Replies:
    checked = await _context(turn, "activity_recorded")
    if isinstance(checked, list):
        return checked
    if checked.activity is not None:
        return await _show_activity(turn, checked)
    missing = _missing(turn, checked)
    if missing is not None:
        turn.state.step = f"activity_{missing}"
        return await VIEWS[missing](turn)
    data = turn.data
    held_on = date.fromisoformat(data["held_on"])
    place = await _place_text(turn, data.get("place"), data.get("place_village"))
    members = [i for i in data.get("members") or [] if isinstance(i, int)]
    lines = [SUMMARY_HEAD, f"• Đơn vị: {checked.name}", f"• Loại: {ACTIVITY_KINDS[data['kind']]}",
             f"• Ngày: {held_on:%d/%m/%Y}", f"• Tên: {data['title']}", f"• Nơi: {place}",
             f"• Số người tham dự: {data['participants']}"]
    if checked.unit.kind == "org":
        lines.append(f"• Thành viên có mặt được ghi tên: {len(members)}")
    if isinstance(data.get("photo"), str):
        lines.append(PHOTO_LINE)
    tail = SUMMARY_TAIL
    if turn.incoming.channel == PHOTO_CHANNEL and not isinstance(data.get("photo"), str):
        tail = f"{SUMMARY_TAIL}\n{PHOTO_HINT}"
    keyboard = Keyboard().add(BTN_SAVE, "hdx:save")
    for field in _fields_of(checked.unit):
        keyboard.add(BTN_EDIT.format(field=FIELD_WORDS[field]), f"hdx:edit:{field}")
    keyboard.add(BTN_CANCEL, _cancel(checked))
    return [Reply("\n".join(lines) + "\n\n" + tail, keyboard.build())]


async def on_summary_photo(turn: Turn, file_id: str) -> Replies:
    """A photo sent while a new activity's summary is shown: kept in the draft, saved with it."""
    checked = await _context(turn, "activity_recorded")
    if isinstance(checked, list):
        return checked
    if checked.activity is None and len(file_id) <= PHOTO_ID_MAX:
        turn.update(photo=file_id)
        return [Reply(PHOTO_KEPT), *await view_summary(turn)]
    return await view_summary(turn)


def _missing(turn: Turn, checked: Allowed) -> str | None:
    """The first field the draft has no valid value for (None: ready to save)."""
    data = turn.data
    if data.get("kind") not in ACTIVITY_KINDS:
        return "kind"
    try:
        date.fromisoformat(data.get("held_on"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "date"
    if not isinstance(data.get("title"), str):
        return "title"
    if not isinstance(data.get("place"), str) and not isinstance(data.get("place_village"), int):
        return "place"
    participants = data.get("participants")
    if not isinstance(participants, int) or isinstance(participants, bool):
        return "count"
    return None


async def _after(turn: Turn, checked: Allowed, field: str) -> Replies:
    """The next step of a new activity: the following field, or the summary once every field is in."""
    fields = _fields_of(checked.unit)
    if turn.data.get("back") == "summary" or field not in fields or field == fields[-1]:
        turn.state.step = "activity_summary"
        turn.update(page=0, q="")
        return await view_summary(turn)
    following = fields[fields.index(field) + 1]
    turn.state.step = f"activity_{following}"
    turn.update(page=0, q="")
    return await VIEWS[following](turn)


async def _set(turn: Turn, checked: Allowed, field: str, draft: dict[str, Any], changes: dict[str, Any],
               view: Any) -> Replies:
    """A field answered: into the draft of a new activity, or stored at once for a correction."""
    activity = checked.activity
    if activity is None:
        turn.update(**draft)
        return await _after(turn, checked, field)
    try:
        changed = await activities.correct(turn.session, activity, turn.now, **changes)
    except ActivityError as error:
        return [Reply(str(error)), *await view(turn)]
    if not changed:
        return await _show_activity(turn, checked, UNCHANGED)
    await _audit(turn, "activity_corrected", unit=checked.unit, record_id=activity.id, fields=changed)
    words = list(dict.fromkeys(FIELD_WORDS[COLUMN_FIELD[name]] for name in changed))
    return await _show_activity(turn, checked, CORRECTED.format(fields=", ".join(words)))


async def on_date_text(turn: Turn, text: str) -> Replies:
    checked = await _context(turn)
    if isinstance(checked, list):
        return checked
    config = turn.config
    try:
        held_on = activities.parse_day(text, turn.today, config.report_deadline, config.zone,
                                       correcting=checked.activity is not None)
    except ActivityError as error:
        return [Reply(str(error)), *await view_date(turn)]
    return await _set(turn, checked, "date", {"held_on": held_on.isoformat()}, {"held_on": held_on}, view_date)


async def on_title_text(turn: Turn, text: str) -> Replies:
    checked = await _context(turn)
    if isinstance(checked, list):
        return checked
    try:
        title = activities.clean_title(text)
    except ActivityError as error:
        return [Reply(str(error)), *await view_title(turn)]
    return await _set(turn, checked, "title", {"title": title}, {"title": title}, view_title)


async def on_place_text(turn: Turn, text: str) -> Replies:
    checked = await _context(turn)
    if isinstance(checked, list):
        return checked
    try:
        place = activities.clean_place(text)
    except ActivityError as error:
        return [Reply(str(error)), *await view_place(turn)]
    return await _set(turn, checked, "place", {"place": place, "place_village": None},
                      {"place": place, "place_village_id": None}, view_place)


async def on_count_text(turn: Turn, text: str) -> Replies:
    checked = await _context(turn)
    if isinstance(checked, list):
        return checked
    try:
        participants = activities.parse_participants(text)
        if checked.activity is None:
            activities.check_members(participants, turn.data.get("members") or [])
    except ActivityError as error:
        return [Reply(str(error)), *await view_count(turn)]
    return await _set(turn, checked, "count", {"participants": participants}, {"participants": participants},
                      view_count)


async def on_members_text(turn: Turn, text: str) -> Replies:
    """Typed letters on the member list search it by name."""
    checked = await _context(turn)
    if isinstance(checked, list):
        return checked
    turn.update(q=" ".join(text.split())[:60], page=0)
    return await view_members(turn)


VIEWS = {"kind": view_kind, "date": view_date, "title": view_title, "place": view_place, "count": view_count,
         "members": view_members}


# --- hdx: choices honoured only among the buttons last shown ----------------------------------------------

async def on_shown(turn: Turn, argument: str) -> Replies:
    """hdx:kind:CODE, hdx:place:VILLAGE, hdx:m:PERSON, hdx:mp:PAGE, hdx:mq, hdx:md, hdx:edit:FIELD, hdx:save,
    hdx:del:ID."""
    verb, _, value = argument.partition(":")
    if verb == "del":
        checked = await _check_activity(turn, action_number(value), "activity_removed", to_change=True)
        if isinstance(checked, list):
            return checked
        activity = checked.activity
        assert activity is not None
        if await activities.remove(turn.session, activity, turn.now):
            await _audit(turn, "activity_removed", unit=checked.unit, record_id=activity.id, fields=["removed_at"])
        return await _show_list(turn, checked, REMOVED.format(title=activity.title))
    step = turn.state.step
    checked = await _context(turn)
    if isinstance(checked, list):
        return checked
    if verb == "kind" and step == "activity_kind" and value in ACTIVITY_KINDS:
        return await _set(turn, checked, "kind", {"kind": value}, {"kind": value}, view_kind)
    if verb == "place" and step == "activity_place":
        village_id = action_number(value)
        village = await turn.session.get(Village, village_id) if village_id is not None else None
        if village is None:
            return await view_place(turn)
        return await _set(turn, checked, "place", {"place": None, "place_village": village.id},
                          {"place": None, "place_village_id": village.id}, view_place)
    if verb in ("m", "mp", "mq", "md") and step == "activity_members" and checked.unit.kind == "org":
        return await _on_members(turn, checked, verb, value)
    if verb == "edit" and step == "activity_summary" and checked.activity is None \
            and value in _fields_of(checked.unit):
        turn.state.step = f"activity_{value}"
        turn.update(back="summary", page=0, q="")
        return await VIEWS[value](turn)
    if verb == "save" and step == "activity_summary" and checked.activity is None:
        return await _save(turn, checked)
    view = VIEW_OF_STEP.get(step)
    return await view(turn) if view is not None else await _choose(turn)


async def _on_members(turn: Turn, checked: Allowed, verb: str, value: str) -> Replies:
    chosen = [i for i in turn.data.get("members") or [] if isinstance(i, int)]
    if verb == "m":
        person_id = action_number(value)
        members = {person.person_id for person in
                   await activities.confirmed_members(turn.session, checked.unit.id)}  # type: ignore[arg-type]
        if person_id in members:
            chosen = [i for i in chosen if i != person_id] if person_id in chosen else [*chosen, person_id]
            turn.update(members=chosen)
        return redrawn(await view_members(turn))
    if verb == "mp":
        turn.update(page=action_number(value) or 0)
        return redrawn(await view_members(turn))
    if verb == "mq":
        turn.update(q="", page=0)
        return redrawn(await view_members(turn))
    # Done: only people still confirmed members count, and, in a correction, those named before (they were
    # members then; they are not in the list now, so they could not be unticked anyway).
    activity = checked.activity
    members = {person.person_id for person in
               await activities.confirmed_members(turn.session, checked.unit.id)}  # type: ignore[arg-type]
    if activity is not None:
        members |= set(await activities.member_ids(turn.session, activity.id))  # type: ignore[arg-type]
    chosen = [i for i in chosen if i in members]
    participants = activity.participants if activity is not None else turn.data.get("participants")
    if isinstance(participants, int):
        try:
            activities.check_members(participants, chosen)
        except ActivityError as error:
            return [Reply(str(error)), *await view_members(turn)]
    return await _set(turn, checked, "members", {"members": chosen}, {"members": chosen}, view_members)


async def _save(turn: Turn, checked: Allowed) -> Replies:
    missing = _missing(turn, checked)
    if missing is not None:
        turn.state.step = f"activity_{missing}"
        return await VIEWS[missing](turn)
    data, config = turn.data, turn.config
    held_on = date.fromisoformat(data["held_on"])
    try:  # the day may have turned since it was typed (a new reporting year began)
        activities.check_day(held_on, turn.today, config.report_deadline, config.zone)
    except ActivityError as error:
        turn.state.step = "activity_date"
        return [Reply(str(error)), *await view_date(turn)]
    members: list[int] = []
    if checked.unit.kind == "org":
        allowed_ids = {p.person_id for p in
                       await activities.confirmed_members(turn.session, checked.unit.id)}  # type: ignore[arg-type]
        members = [i for i in data.get("members") or [] if i in allowed_ids]
    village_id = data.get("place_village")
    if isinstance(village_id, int) and await turn.session.get(Village, village_id) is None:
        turn.state.step = "activity_place"
        return await view_place(turn)
    try:
        activity = await activities.create(
            turn.session, unit=_ref(checked.unit), kind=data["kind"], held_on=held_on, title=data["title"],
            place=data.get("place") if not isinstance(village_id, int) else None,
            place_village_id=village_id if isinstance(village_id, int) else None,
            participants=data["participants"], members=members, recorded_by=turn.person.id if turn.person else None,
            photo_file_id=data["photo"] if isinstance(data.get("photo"), str) else None, now=turn.now)
    except ActivityError as error:
        return [Reply(str(error)), *await view_summary(turn)]
    await _audit(turn, "activity_recorded", unit=checked.unit, record_id=activity.id,
                 fields=activities.set_fields(activity, members))
    return await _show_activity(turn, Allowed(checked.unit, checked.name, activity), SAVED)


# --- the unit's workbook: counted and made outside the turn ------------------------------------------------

@dataclass(frozen=True)
class Book:
    unit: Unit
    year: int
    file: bytes
    count: int


async def prefetch_book(services: Services, incoming: Incoming, argument: str, now: datetime) -> Book | None:
    """The unit's activities of the reporting year as an XLSX; None for anyone who may not have it."""
    unit = _parse_unit(argument)
    async with services.database.session() as session:
        person = await queries.person_of(session, incoming.channel, incoming.user_id)
        scopes = await access.scopes_of(session, person)
        if unit is None or person is None or not allowed(scopes, unit):
            return None
        row = await session.get(Organisation if unit.kind == "org" else Village, unit.id) if unit.id else None
        title = row.name if row is not None else services.config.commune_name
    config = services.config
    period = reporting_period(period_year_of(now, config.report_deadline, config.zone), config.report_deadline,
                              config.zone)
    ref = _ref(unit)
    rows = await services.database.read(
        lambda connection: activities.activity_rows(connection, period, config.commune_name, unit=ref))
    loop = asyncio.get_running_loop()
    file = await loop.run_in_executor(services.renderer, _workbook, title, period, rows)
    return Book(unit, period.year, file, len(rows))


def _workbook(title: str, period: Period, rows: list[activities.ActivityRow]) -> bytes:
    """Runs in the renderer (another process in `hocvuso run`): plain data in, XLSX bytes out."""
    from reports.activities_book import activities_workbook

    return activities_workbook(f"Hoạt động của {title}", period, rows, names=True)


async def _book(turn: Turn, checked: Allowed) -> Replies:
    if turn.prefetched is NOT_FETCHED:
        raise NeedsPrefetch("activities_book", checked.unit.key)
    book = turn.prefetched
    if not isinstance(book, Book) or book.unit != checked.unit:
        keyboard = Keyboard().add(BTN_BOOK, f"hd:xlsx:{checked.unit.key}").add(texts.BTN_MENU, "menu")
        return [Reply(NOT_READY, keyboard.build())]
    await _audit(turn, "activities_export", unit=checked.unit)
    keyboard = Keyboard().add(BTN_LIST, f"hd:u:{checked.unit.key}").add(texts.BTN_MENU, "menu")
    turn.goto("activities", unit=checked.unit.key, page=0)
    name = f"hoat-dong-{checked.unit.kind}{'-' + str(checked.unit.id) if checked.unit.id else ''}-{book.year}.xlsx"
    return [Reply(BOOK_CAPTION.format(year=book.year, unit=checked.name, count=book.count), keyboard.build(),
                  attachment=Attachment(name, book.file))]


VIEW_OF_STEP = {"activities": view_list, "activity": view_activity, "activity_summary": view_summary,
                **{f"activity_{field}": view for field, view in VIEWS.items()}}


def register(registry: Registry) -> None:
    registry.add_command("hoatdong", "Ghi hoạt động của đơn vị (lãnh đạo, trưởng thôn, cán bộ xã)", on_command)
    # Access is checked (and a refusal audited) on every press, so an old or forged button is harmless.
    registry.add_action("hd", on_action, anywhere=True)
    # A draft's choices and the confirmed removal: only among the buttons last shown (and checked again).
    registry.add_action("hdx", on_shown)
    registry.add_step("activities", view_list)
    registry.add_step("activity", view_activity)
    registry.add_step("activity_kind", view_kind)
    registry.add_step("activity_date", view_date, on_date_text)
    registry.add_step("activity_title", view_title, on_title_text)
    registry.add_step("activity_place", view_place, on_place_text)
    registry.add_step("activity_count", view_count, on_count_text)
    registry.add_step("activity_members", view_members, on_members_text)
    registry.add_step("activity_summary", view_summary, on_photo=on_summary_photo)
    registry.add_prefetch("activities_book", prefetch_book)
