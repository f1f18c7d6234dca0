"""/sangkien: initiatives and good ways of working (sáng kiến, cách làm hay).

- Anyone registered proposes one: the title, the authors, the unit (an organisation they belong to or
  lead, their village, or none: the commune), what it does and the result so far; then a summary and
  "Gửi". The draft lives in the step data, so a refused answer (too long, empty) keeps everything typed
  before it, and a restart continues at the same question.
- A person sees their own proposals with their status, and corrects them until staff recognise them.
  Everyone registered sees the recognised ones. Nobody but the proposer and staff sees one before that.
- Staff see all of them page by page, open one, recognise it or take the recognition back (audited, ids
  only), and get the list as an XLSX for the khen thưởng proposals: read with `Database.read` and built
  in the renderer, as /thongke's lists are (handlers/unit_figures.py).

Buttons `sk:...` are registered anywhere: each press checks again who may see or change what, and a
refusal is audited (an old or forged button changes nothing). Buttons `skx:...` (the draft's choices)
are honoured only among the buttons last shown. Nothing here logs; the audit log holds ids only.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from handlers import texts
from handlers.context import NOT_FETCHED, NeedsPrefetch, Services, Turn
from handlers.core import Attachment, Incoming, Keyboard, Reply, redrawn
from handlers.home import main_menu_buttons
from handlers.numbers import action_number
from handlers.registry import Registry, Replies
from storage import access, initiatives, queries
from storage.initiatives import FIELDS, LIMITS, InitiativeError, InitiativeRow, UnitChoice
from storage.models import Initiative

PAGE = 5  # initiatives listed at once: a title and a line each, with a button each
LABEL_MAX = 32

# --- words -----------------------------------------------------------------------------------------

GUEST = ("💡 Gửi và xem sáng kiến dành cho người đã đăng ký. "
         "Bạn bấm “Đăng ký lưu tiến độ” để đăng ký trước nhé.")
HOME = (
    "💡 Sáng kiến, cách làm hay\n"
    "Bạn có cách làm hay giúp bà con học kỹ năng số, hay một sáng kiến trong công việc của đơn vị? "
    "Hãy gửi để cán bộ xã xem xét, công nhận và đề xuất khen thưởng.\n\n"
    "• Sáng kiến bạn đã gửi: {mine}{waiting}\n"
    "• Sáng kiến đã được công nhận trong xã: {recognised}"
)
MINE_WAITING = " ({count} đang chờ xét)"
STAFF_WAITING = "\n• Cả xã đang chờ xét: {count}"

ASK = {
    "title": "✍️ (1/5) Tên sáng kiến hoặc cách làm hay là gì? Gõ ngắn gọn, tối đa {limit} ký tự.\n"
             "Ví dụ: Nhóm Zalo hướng dẫn người cao tuổi cài VNeID",
    "authors": "👥 (2/5) Ai là tác giả? Gõ họ tên, cách nhau bằng dấu phẩy (tối đa {limit} ký tự).\n"
               "Ví dụ: Nguyễn Thị Lan, Trần Văn Minh",
    "unit": "🏢 (3/5) Sáng kiến này của đơn vị nào?",
    "description": "📝 (4/5) Sáng kiến làm gì, làm thế nào? Bạn kể ngắn gọn trong vài câu (tối đa {limit} ký tự).",
    "result": "📈 (5/5) Kết quả đến nay thế nào? Ví dụ: đã giúp 30 người cao tuổi cài VNeID "
              "(tối đa {limit} ký tự).",
}
ASK_AGAIN = {
    "title": "✍️ Bạn gõ tên mới của sáng kiến (tối đa {limit} ký tự).\nHiện tại: {current}",
    "authors": "👥 Bạn gõ lại tên các tác giả, cách nhau bằng dấu phẩy (tối đa {limit} ký tự).\nHiện tại: {current}",
    "unit": "🏢 Sáng kiến này của đơn vị nào?\nHiện tại: {current}",
    "description": "📝 Bạn gõ lại phần nội dung: sáng kiến làm gì, làm thế nào (tối đa {limit} ký tự).\n"
                   "Hiện tại:\n{current}",
    "result": "📈 Bạn gõ lại phần kết quả đến nay (tối đa {limit} ký tự).\nHiện tại:\n{current}",
}
FIELD_BUTTONS = {"title": "Tên sáng kiến", "authors": "Tác giả", "unit": "Đơn vị", "description": "Nội dung",
                 "result": "Kết quả"}
DETAILS = "💡 {title}\n👥 Tác giả: {authors}\n🏢 Đơn vị: {unit}\n\n📝 Nội dung:\n{description}\n\n📈 Kết quả:\n{result}"
SUMMARY = ("📋 Bạn xem lại sáng kiến trước khi gửi:\n\n{details}\n\n"
           "Đúng rồi thì bấm “Gửi”. Cần sửa thì bấm “Sửa một mục”.")
WHICH_FIELD = "✏️ Bạn muốn sửa mục nào?"
WHICH_FIELD_OF = "✏️ Bạn muốn sửa mục nào của sáng kiến “{title}”?"
SHOWN = "{details}\n\n📅 Gửi ngày {proposed:%d/%m/%Y}\n{status}"
STATUS_WAITING = "⏳ Đang chờ cán bộ xã xét."
STATUS_RECOGNISED = "🏅 Đã được công nhận ngày {day:%d/%m/%Y}."
NO_UNIT = "Không thuộc đơn vị nào"

MINE_HEAD = "📋 Sáng kiến bạn đã gửi ({count}):"
RECOGNISED_HEAD = "🏅 Sáng kiến đã được công nhận ({count}):"
ALL_HEAD = "🗂️ Tất cả sáng kiến ({count}, {waiting} đang chờ xét):"
LINE = "{number}. {title}\n   {unit} · {status}"
LINE_WAITING = "⏳ chờ xét"
LINE_RECOGNISED = "🏅 đã công nhận {day:%d/%m/%Y}"
PAGE_NOTE = "\n\nTrang {page}/{pages}. Bấm vào một sáng kiến để xem đủ."
ONE_PAGE_NOTE = "\n\nBấm vào một sáng kiến để xem đủ."
NONE_MINE = "📋 Bạn chưa gửi sáng kiến nào. Bấm “Gửi sáng kiến mới” để bắt đầu."
NONE_RECOGNISED = "🏅 Chưa có sáng kiến nào được công nhận."
NONE_ALL = "🗂️ Chưa có ai gửi sáng kiến."

SENT = ("✅ Đã gửi sáng kiến “{title}”. Cán bộ xã sẽ xem xét. "
        "Trước khi được công nhận, bạn vẫn sửa được trong “Sáng kiến của tôi”.")
SAVED = "✅ Đã lưu thay đổi."
NOT_FOUND = ("Mình không mở được sáng kiến này: có thể nó không còn, hoặc chưa được công nhận "
             "(khi đó chỉ người gửi và cán bộ xã xem được).")
CANNOT_CORRECT = "Sáng kiến này không sửa được: chỉ người gửi sửa được, và chỉ trước khi được công nhận."
RECOGNISED_ALREADY = ("Sáng kiến này vừa được công nhận nên không sửa được nữa. "
                      "Cần sửa gì, bạn liên hệ cán bộ xã nhé.")
NOT_STAFF = "Việc này chỉ dành cho cán bộ xã."
RECOGNISED_NOW = "🏅 Đã công nhận sáng kiến “{title}”. Mọi người đã xem được sáng kiến này."
UNRECOGNISED_NOW = "↩️ Đã bỏ công nhận sáng kiến “{title}”. Sáng kiến trở lại chờ xét."
WAS_RECOGNISED = "Sáng kiến này đã được công nhận từ trước."
WAS_WAITING = "Sáng kiến này đang chờ xét, chưa được công nhận."
UNIT_NOT_YOURS = "Đơn vị này không có trong các lựa chọn của bạn. Bạn chọn lại nhé."
DRAFT_GONE = "Bản nháp sáng kiến không còn. Bạn bắt đầu lại nhé."
NOT_READY = "Mình chưa lấy xong danh sách. Bạn bấm lấy lại nhé."
EXPORT_CAPTION = "📄 Danh sách sáng kiến, cách làm hay (đến {day:%d/%m/%Y}), để xét đề xuất khen thưởng. {note}"

BTN_HOME = "💡 Sáng kiến"
BTN_NEW = "➕ Gửi sáng kiến mới"
BTN_MINE = "📋 Sáng kiến của tôi"
BTN_RECOGNISED = "🏅 Sáng kiến đã được công nhận"
BTN_ALL = "🗂️ Xét sáng kiến (cán bộ xã)"
BTN_EXPORT = "📄 Tệp Excel sáng kiến"
BTN_CANCEL = "❌ Hủy"
BTN_SEND = "✅ Gửi"
BTN_FIX = "✏️ Sửa một mục"
BTN_BACK = "↩️ Quay lại"
BTN_ME = "👤 Là tôi: {name}"
BTN_COMMUNE = "🏛️ Không thuộc đơn vị nào"
BTN_ORG = "🏢 {name}"
BTN_VILLAGE = "🏡 {name}"
BTN_PREV = "◀️ Trang trước"
BTN_NEXT = "▶️ Trang sau"
BTN_OPEN = "📄 {number}. {title}"
BTN_EDIT = "✏️ Sửa sáng kiến"
BTN_RECOGNISE = "🏅 Công nhận"
BTN_UNRECOGNISE = "✖️ Bỏ công nhận"
BTN_LIST = "↩️ Về danh sách"
BTN_AGAIN = "🔄 Lấy lại"

ASKED = (*FIELDS[:2], "unit", *FIELDS[2:])  # title, authors, unit, description, result
LISTS = {"mine": "mine", "rec": "recognised", "all": "all"}
COMMUNE_KEY = "commune"


def _short(title: str) -> str:
    return title if len(title) <= LABEL_MAX else title[:LABEL_MAX - 1].rstrip() + "…"


def _person_id(turn: Turn) -> int:
    assert turn.person is not None and turn.person.id is not None
    return turn.person.id


async def _is_staff(turn: Turn) -> bool:
    return (await access.scopes_of(turn.session, turn.person)).staff


async def _audit(turn: Turn, action: str, outcome: str = "ok", *, initiative: Initiative | None = None,
                 record_id: int | None = None, detail: str | None = None) -> None:
    """One audit line: ids only (the initiative, its unit, its proposer), never what was typed."""
    await access.audit(
        turn.session, turn.now, turn.person.id if turn.person else None, action, outcome,
        organisation_id=initiative.organisation_id if initiative else None,
        village_id=initiative.village_id if initiative else None,
        subject=initiative.proposed_by if initiative else None,
        record_id=initiative.id if initiative else record_id, detail=detail)


async def _guest(turn: Turn) -> Replies:
    turn.goto("main")
    return [Reply(GUEST, main_menu_buttons(turn).build())]


# --- units ------------------------------------------------------------------------------------------

def _unit_key(choice: UnitChoice) -> str:
    return {"organisation": f"org:{choice.unit_id}", "village": f"village:{choice.unit_id}"}.get(choice.kind,
                                                                                                  COMMUNE_KEY)


async def _choices(turn: Turn) -> dict[str, UnitChoice]:
    """The units the person may propose for, by key, the commune last."""
    assert turn.person is not None
    found = {_unit_key(choice): choice for choice in await initiatives.unit_choices(turn.session, turn.person)}
    found[COMMUNE_KEY] = UnitChoice("commune", None, NO_UNIT)
    return found


def _unit_button(choice: UnitChoice) -> str:
    if choice.kind == "organisation":
        return BTN_ORG.format(name=choice.name)
    if choice.kind == "village":
        return BTN_VILLAGE.format(name=choice.name)
    return BTN_COMMUNE


# --- the initiatives' home -------------------------------------------------------------------------------

async def on_command(turn: Turn) -> Replies:
    return await on_initiatives(turn, "")


async def show_home(turn: Turn, preface: str | None = None) -> Replies:
    if turn.person is None:
        return await _guest(turn)
    person_id = _person_id(turn)
    staff = await _is_staff(turn)
    waiting = await initiatives.count_waiting(turn.session, person_id)
    text = HOME.format(mine=await initiatives.count(turn.session, "mine", person_id),
                       waiting=MINE_WAITING.format(count=waiting) if waiting else "",
                       recognised=await initiatives.count(turn.session, "recognised", person_id))
    keyboard = Keyboard().add(BTN_NEW, "sk:new").add(BTN_MINE, "sk:mine").add(BTN_RECOGNISED, "sk:rec")
    if staff:
        text += STAFF_WAITING.format(count=await initiatives.count_waiting(turn.session))
        keyboard.add(BTN_ALL, "sk:all").add(BTN_EXPORT, "sk:xlsx")
    turn.goto("sk_home")
    return [*([Reply(preface)] if preface else []), Reply(text, keyboard.add(texts.BTN_MENU, "menu").build())]


async def view_home(turn: Turn) -> Replies:
    return await show_home(turn)


async def on_initiatives(turn: Turn, argument: str) -> Replies:
    """sk, sk:new, sk:mine|rec|all[:PAGE], sk:open:ID, sk:edit:ID, sk:fix:ID:FIELD, sk:ok:ID, sk:undo:ID,
    sk:xlsx. Registered anywhere: every press is checked here, and a refusal audited."""
    if turn.person is None:
        return await _guest(turn)
    verb, _, rest = argument.partition(":")
    if verb == "new":
        turn.goto("sk_title", mode="new", draft={}, fixing=False)
        return await _ask(turn, "title")
    if verb in LISTS:
        if not rest:
            return await show_list(turn, LISTS[verb], 0)
        return redrawn(await show_list(turn, LISTS[verb], action_number(rest) or 0))  # another page
    if verb == "xlsx":
        return await _export(turn)
    number, _, field = rest.partition(":")
    initiative_id = action_number(number)
    if verb == "open" and initiative_id is not None:
        return await show_initiative(turn, initiative_id)
    if verb in {"edit", "fix"} and initiative_id is not None:
        return await _start_correction(turn, initiative_id, field if verb == "fix" else None)
    if verb in {"ok", "undo"} and initiative_id is not None:
        return await _recognise(turn, initiative_id, recognise=verb == "ok")
    return await show_home(turn)


# --- lists ---------------------------------------------------------------------------------------------

async def show_list(turn: Turn, kind: str, page: int, preface: str | None = None) -> Replies:
    """One page of one's own initiatives, the recognised ones, or (staff) all of them."""
    if turn.person is None:
        return await _guest(turn)
    if kind == "all" and not await _is_staff(turn):
        await _audit(turn, "initiatives_view", "refused")
        return await show_home(turn, NOT_STAFF)
    person_id = _person_id(turn)
    total = await initiatives.count(turn.session, kind, person_id)  # type: ignore[arg-type]
    pages = max(1, -(-total // PAGE))
    page = min(max(page, 0), pages - 1)
    shown = await initiatives.page(turn.session, kind, person_id, page * PAGE, PAGE)  # type: ignore[arg-type]
    short = next(key for key, value in LISTS.items() if value == kind)
    turn.goto("sk_list", list=short, page=page)
    keyboard = Keyboard()
    if not shown:
        text = {"mine": NONE_MINE, "recognised": NONE_RECOGNISED}.get(kind, NONE_ALL)
    else:
        if kind == "mine":
            head = MINE_HEAD.format(count=total)
        elif kind == "recognised":
            head = RECOGNISED_HEAD.format(count=total)
        else:
            head = ALL_HEAD.format(count=total, waiting=await initiatives.count_waiting(turn.session))
        lines = []
        for number, initiative in enumerate(shown, start=page * PAGE + 1):
            unit = await initiatives.unit_name(turn.session, initiative) or NO_UNIT
            status = (LINE_WAITING if initiative.recognised_at is None
                      else LINE_RECOGNISED.format(day=_local(turn, initiative.recognised_at)))
            lines.append(LINE.format(number=number, title=initiative.title, unit=unit, status=status))
            keyboard.add(BTN_OPEN.format(number=number, title=_short(initiative.title)), f"sk:open:{initiative.id}")
        note = PAGE_NOTE.format(page=page + 1, pages=pages) if pages > 1 else ONE_PAGE_NOTE
        text = head + "\n\n" + "\n".join(lines) + note
    if page > 0:
        keyboard.add(BTN_PREV, f"sk:{short}:{page - 1}")
    if page < pages - 1:
        keyboard.add(BTN_NEXT, f"sk:{short}:{page + 1}")
    if kind == "mine":
        keyboard.add(BTN_NEW, "sk:new")
    keyboard.add(BTN_HOME, "sk").add(texts.BTN_MENU, "menu")
    return [*([Reply(preface)] if preface else []), Reply(text, keyboard.build())]


async def view_list(turn: Turn) -> Replies:
    kind = LISTS.get(str(turn.data.get("list")), "mine")
    page = turn.data.get("page")
    return await show_list(turn, kind, page if isinstance(page, int) else 0)


def _local(turn: Turn, moment: datetime) -> date:
    return moment.astimezone(turn.config.zone).date()


# --- one initiative ----------------------------------------------------------------------------------



async def _refuse_view(turn: Turn, initiative_id: int | None, action: str = "initiative_view") -> Replies:
    await _audit(turn, action, "refused", record_id=initiative_id)
    return await show_home(turn, NOT_FOUND)


def _details(title: str, authors: str, unit: str | None, description: str, result: str) -> str:
    return DETAILS.format(title=title, authors=authors, unit=unit or NO_UNIT, description=description, result=result)


async def show_initiative(turn: Turn, initiative_id: int, preface: str | None = None) -> Replies:
    if turn.person is None:
        return await _guest(turn)
    initiative = await turn.session.get(Initiative, initiative_id)
    staff = await _is_staff(turn)
    if initiative is None or not initiatives.may_see(initiative, _person_id(turn), staff):
        return await _refuse_view(turn, initiative_id)
    details = _details(initiative.title, initiative.authors, await initiatives.unit_name(turn.session, initiative),
                       initiative.description, initiative.result)
    status = (STATUS_WAITING if initiative.recognised_at is None
              else STATUS_RECOGNISED.format(day=_local(turn, initiative.recognised_at)))
    text = SHOWN.format(details=details, proposed=_local(turn, initiative.created_at), status=status)
    keyboard = Keyboard()
    if initiatives.may_correct(initiative, _person_id(turn)):
        keyboard.add(BTN_EDIT, f"sk:edit:{initiative.id}")
    if staff:
        if initiative.recognised_at is None:
            keyboard.add(BTN_RECOGNISE, f"sk:ok:{initiative.id}")
        else:
            keyboard.add(BTN_UNRECOGNISE, f"sk:undo:{initiative.id}")
    # Back to the list it was opened from (kept while it stays open), else the likeliest one.
    back = {"sk_list": turn.data.get("list"), "sk_open": turn.data.get("back")}.get(turn.state.step)
    if back not in LISTS or (back == "all" and not staff):
        back = "mine" if initiative.proposed_by == _person_id(turn) else "all" if staff else "rec"
    keyboard.add(BTN_LIST, f"sk:{back}").add(BTN_HOME, "sk").add(texts.BTN_MENU, "menu")
    turn.goto("sk_open", id=initiative.id, back=back)
    return [*([Reply(preface)] if preface else []), Reply(text, keyboard.build())]


async def view_initiative(turn: Turn) -> Replies:
    initiative_id = turn.data.get("id")
    if not isinstance(initiative_id, int):
        return await show_home(turn)
    return await show_initiative(turn, initiative_id)


async def _recognise(turn: Turn, initiative_id: int, *, recognise: bool) -> Replies:
    action = "initiative_recognised" if recognise else "initiative_unrecognised"
    if not await _is_staff(turn):
        await _audit(turn, action, "refused", record_id=initiative_id)
        return await show_home(turn, NOT_STAFF)
    initiative = await turn.session.get(Initiative, initiative_id)
    if initiative is None:
        return await _refuse_view(turn, initiative_id, action)
    if recognise:
        done = await initiatives.recognise(turn.session, initiative_id, _person_id(turn), turn.now)
    else:
        done = await initiatives.unrecognise(turn.session, initiative_id)
    if done:
        await _audit(turn, action, initiative=initiative)
        await turn.session.refresh(initiative)
        note = (RECOGNISED_NOW if recognise else UNRECOGNISED_NOW).format(title=initiative.title)
    else:
        note = WAS_RECOGNISED if recognise else WAS_WAITING
    return redrawn(await show_initiative(turn, initiative_id, note))


# --- proposing: the questions ------------------------------------------------------------------------

def _draft(turn: Turn) -> dict[str, str] | None:
    """The draft being typed, from the step data (None when the step data is not a draft's)."""
    draft = turn.data.get("draft")
    if turn.data.get("mode") != "new" or not isinstance(draft, dict):
        return None
    return {key: value for key, value in draft.items() if key in ASKED and isinstance(value, str)}


async def _editing(turn: Turn) -> Initiative | Replies:
    """The initiative being corrected, if the person still may; otherwise the replies that say why."""
    initiative_id = turn.data.get("id")
    initiative = await turn.session.get(Initiative, initiative_id) if isinstance(initiative_id, int) else None
    if initiative is None or not initiatives.may_see(initiative, _person_id(turn), await _is_staff(turn)):
        return await _refuse_view(turn, initiative_id if isinstance(initiative_id, int) else None,
                                  "initiative_changed")
    if not initiatives.may_correct(initiative, _person_id(turn)):
        await _audit(turn, "initiative_changed", "refused", initiative=initiative)
        mine = initiative.proposed_by == _person_id(turn)
        return await show_initiative(turn, initiative.id, RECOGNISED_ALREADY if mine else CANNOT_CORRECT)  # type: ignore[arg-type]
    return initiative


async def _ask(turn: Turn, field: str) -> Replies:
    """The question for `field`: of a new draft, or of an initiative being corrected."""
    if turn.person is None:
        return await _guest(turn)
    keyboard = Keyboard()
    if turn.data.get("mode") == "edit":
        initiative = await _editing(turn)
        if not isinstance(initiative, Initiative):
            return initiative
        if field == "unit":
            current = await initiatives.unit_name(turn.session, initiative) or NO_UNIT
        else:
            current = getattr(initiative, field)
        text = ASK_AGAIN[field].format(limit=LIMITS.get(field, 0), current=current)
        cancel = f"sk:open:{initiative.id}"
    else:
        draft = _draft(turn)
        if draft is None:
            return await show_home(turn, DRAFT_GONE)
        text = ASK[field].format(limit=LIMITS.get(field, 0))
        if turn.data.get("fixing") and draft.get(field):
            text += f"\nHiện tại: {_draft_unit_name(draft, await _choices(turn)) if field == 'unit' else draft[field]}"
        cancel = "sk"
    if field == "unit":
        for key, choice in (await _choices(turn)).items():
            keyboard.add(_unit_button(choice), f"skx:unit:{key}")
    if field == "authors" and turn.person.full_name:
        keyboard.add(BTN_ME.format(name=turn.person.full_name), "skx:me")
    if turn.data.get("mode") == "new" and turn.data.get("fixing"):
        keyboard.add(BTN_BACK, "skx:summary")
    keyboard.add(BTN_CANCEL, cancel)
    return [Reply(text, keyboard.build())]


def _draft_unit_name(draft: dict[str, str], choices: dict[str, UnitChoice]) -> str:
    choice = choices.get(draft.get("unit", ""))
    return choice.name if choice is not None else "?"


async def _on_text(turn: Turn, field: str, text: str) -> Replies:
    if turn.person is None:
        return await _guest(turn)
    try:
        value = initiatives.clean(field, text)
    except InitiativeError as error:
        return [Reply(str(error)), *await _ask(turn, field)]
    return await _take(turn, field, value)


async def _take(turn: Turn, field: str, value: str) -> Replies:
    """An answer that passed its checks: into the draft and on to the next question (or back to the
    summary), or saved into the initiative being corrected."""
    if turn.data.get("mode") == "edit":
        initiative = await _editing(turn)
        if not isinstance(initiative, Initiative):
            return initiative
        if field == "unit":
            choice = (await _choices(turn))[value]
            done = await initiatives.move(turn.session, initiative.id, _person_id(turn), choice.kind,  # type: ignore[arg-type]
                                          choice.unit_id, turn.now)
        else:
            done = await initiatives.correct(turn.session, initiative.id, _person_id(turn), field, value,  # type: ignore[arg-type]
                                             turn.now)
        if not done:  # recognised between the question and the answer
            return await show_initiative(turn, initiative.id, RECOGNISED_ALREADY)  # type: ignore[arg-type]
        await turn.session.refresh(initiative)
        await _audit(turn, "initiative_changed", initiative=initiative, detail=field)
        return await show_initiative(turn, initiative.id, SAVED)  # type: ignore[arg-type]
    draft = _draft(turn)
    if draft is None:
        return await show_home(turn, DRAFT_GONE)
    draft[field] = value
    following = next((name for name in ASKED[ASKED.index(field) + 1:] if not draft.get(name)), None)
    if turn.data.get("fixing") or following is None:
        turn.goto("sk_confirm", mode="new", draft=draft, fixing=False)
        return await view_confirm(turn)
    turn.goto(f"sk_{following}", mode="new", draft=draft, fixing=False)
    return await _ask(turn, following)


def _asker(field: str) -> Any:
    async def view(turn: Turn) -> Replies:
        return await _ask(turn, field)
    return view


def _reader(field: str) -> Any:
    async def on_text(turn: Turn, text: str) -> Replies:
        return await _on_text(turn, field, text)
    return on_text


# --- proposing: the summary and sending --------------------------------------------------------------

async def view_confirm(turn: Turn) -> Replies:
    if turn.person is None:
        return await _guest(turn)
    draft = _draft(turn)
    if draft is None or any(not draft.get(field) for field in ASKED):
        return await show_home(turn, DRAFT_GONE)
    choices = await _choices(turn)
    if draft["unit"] not in choices:  # no longer a member of it
        turn.goto("sk_unit", mode="new", draft=draft, fixing=True)
        return [Reply(UNIT_NOT_YOURS), *await _ask(turn, "unit")]
    details = _details(draft["title"], draft["authors"], choices[draft["unit"]].name, draft["description"],
                       draft["result"])
    keyboard = Keyboard().add(BTN_SEND, "skx:send").add(BTN_FIX, "skx:fix").add(BTN_CANCEL, "sk")
    return [Reply(SUMMARY.format(details=details), keyboard.build())]


async def view_choose(turn: Turn) -> Replies:
    """Which field to correct: of the draft (skx:field:F) or of an initiative (sk:fix:ID:F)."""
    if turn.person is None:
        return await _guest(turn)
    keyboard = Keyboard()
    if turn.data.get("mode") == "edit":
        initiative = await _editing(turn)
        if not isinstance(initiative, Initiative):
            return initiative
        for field in ASKED:
            keyboard.add(FIELD_BUTTONS[field], f"sk:fix:{initiative.id}:{field}")
        keyboard.add(BTN_BACK, f"sk:open:{initiative.id}")
        return [Reply(WHICH_FIELD_OF.format(title=initiative.title), keyboard.build())]
    if _draft(turn) is None:
        return await show_home(turn, DRAFT_GONE)
    for field in ASKED:
        keyboard.add(FIELD_BUTTONS[field], f"skx:field:{field}")
    keyboard.add(BTN_BACK, "skx:summary")
    return [Reply(WHICH_FIELD, keyboard.build())]


async def _start_correction(turn: Turn, initiative_id: int, field: str | None) -> Replies:
    """sk:edit:ID (which field?) and sk:fix:ID:FIELD (its question), for the proposer until recognised."""
    turn.goto("sk_choose", mode="edit", id=initiative_id)
    initiative = await _editing(turn)
    if not isinstance(initiative, Initiative):
        return initiative
    if field in ASKED:
        turn.goto(f"sk_{field}", mode="edit", id=initiative_id)
        return await _ask(turn, field)  # type: ignore[arg-type]
    return await view_choose(turn)


async def on_draft(turn: Turn, argument: str) -> Replies:
    """skx:unit:KEY, skx:me, skx:send, skx:fix, skx:field:FIELD, skx:summary: only among the buttons last shown."""
    if turn.person is None:
        return await _guest(turn)
    verb, _, value = argument.partition(":")
    step = turn.state.step
    if verb == "unit" and step == "sk_unit":
        if value not in await _choices(turn):
            return [Reply(UNIT_NOT_YOURS), *await _ask(turn, "unit")]
        return await _take(turn, "unit", value)
    if verb == "me" and step == "sk_authors" and turn.person.full_name:
        return await _on_text(turn, "authors", turn.person.full_name)
    if turn.data.get("mode") != "new" or _draft(turn) is None:
        return await show_home(turn, DRAFT_GONE)
    draft = _draft(turn)
    assert draft is not None
    if verb == "send" and step == "sk_confirm":
        return await _send(turn, draft)
    if verb == "fix" and step == "sk_confirm":
        turn.goto("sk_choose", mode="new", draft=draft, fixing=True)
        return await view_choose(turn)
    if verb == "field" and value in ASKED:
        turn.goto(f"sk_{value}", mode="new", draft=draft, fixing=True)
        return await _ask(turn, value)
    turn.goto("sk_confirm", mode="new", draft=draft, fixing=False)
    return await view_confirm(turn)


async def _send(turn: Turn, draft: dict[str, str]) -> Replies:
    try:
        values = {field: initiatives.clean(field, draft.get(field, "")) for field in FIELDS}
    except InitiativeError:  # only step data that was not the dialog's own
        return await show_home(turn, DRAFT_GONE)
    choices = await _choices(turn)
    choice = choices.get(draft.get("unit", ""))
    if choice is None:
        turn.goto("sk_unit", mode="new", draft=draft, fixing=True)
        return [Reply(UNIT_NOT_YOURS), *await _ask(turn, "unit")]
    initiative = await initiatives.propose(turn.session, person_id=_person_id(turn), kind=choice.kind,
                                           unit_id=choice.unit_id, now=turn.now, **values)
    await _audit(turn, "initiative_proposed", initiative=initiative)
    return await show_list(turn, "mine", 0, SENT.format(title=initiative.title))


# --- the export (staff) --------------------------------------------------------------------------

@dataclass(frozen=True)
class PreparedExport:
    rows: list[InitiativeRow]
    file: bytes
    moment: datetime


async def prefetch_export(services: Services, incoming: Incoming, _argument: str,
                          now: datetime) -> PreparedExport | None:
    """Every initiative and its workbook, for staff only; None for anyone else, who costs nothing."""
    async with services.database.session() as session:
        person = await queries.person_of(session, incoming.channel, incoming.user_id)
        if not (await access.scopes_of(session, person)).staff:
            return None
    zone = services.config.zone
    rows = await services.database.read(lambda connection: initiatives.initiative_rows(connection, zone))
    file = await asyncio.get_running_loop().run_in_executor(
        services.renderer, _workbook, rows, services.config.commune_name, now.astimezone(zone).date())
    return PreparedExport(rows, file, now)


def _workbook(rows: list[InitiativeRow], commune: str, day: date) -> bytes:
    """Runs in the renderer (another process in `hocvuso run`): plain data in, XLSX bytes out."""
    from reports.initiatives_book import initiatives_workbook

    return initiatives_workbook(rows, commune=commune, day=day)


async def _export(turn: Turn) -> Replies:
    if not await _is_staff(turn):
        await _audit(turn, "initiatives_export", "refused")
        return await show_home(turn, NOT_STAFF)
    if turn.prefetched is NOT_FETCHED:
        raise NeedsPrefetch("initiatives", "")
    prepared = turn.prefetched
    if not isinstance(prepared, PreparedExport):  # only when the role was revoked meanwhile
        return [Reply(NOT_READY, Keyboard().add(BTN_AGAIN, "sk:xlsx").add(texts.BTN_MENU, "menu").build())]
    await _audit(turn, "initiatives_export")
    from reports.initiatives_book import note

    moment = prepared.moment.astimezone(turn.config.zone)
    turn.goto("sk_home")
    keyboard = Keyboard().add(BTN_ALL, "sk:all").add(BTN_HOME, "sk").add(texts.BTN_MENU, "menu")
    attachment = Attachment(f"sang-kien-{moment:%Y%m%d-%H%M}.xlsx", prepared.file)
    return [Reply(EXPORT_CAPTION.format(day=moment.date(), note=note(prepared.rows)), keyboard.build(),
                  attachment=attachment)]


def register(registry: Registry) -> None:
    registry.add_command("sangkien", "Gửi và xem sáng kiến, cách làm hay", on_command)
    # Who may see or change what is checked (and a refusal audited) on every press: old or forged
    # buttons are harmless.
    registry.add_action("sk", on_initiatives, anywhere=True)
    registry.add_action("skx", on_draft)
    registry.add_step("sk_home", view_home)
    registry.add_step("sk_list", view_list)
    registry.add_step("sk_open", view_initiative)
    registry.add_step("sk_choose", view_choose)
    registry.add_step("sk_confirm", view_confirm)
    for field in ASKED:
        registry.add_step(f"sk_{field}", _asker(field), None if field == "unit" else _reader(field))
    registry.add_prefetch("initiatives", prefetch_export)
