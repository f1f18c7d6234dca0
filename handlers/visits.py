"""/canthamhoi: the households of a village where nobody has finished the core course yet, to visit.

For the village head, the Tổ công nghệ số cộng đồng of the village (or of the whole commune) and staff
(`Scopes.visits`). Those with several villages choose one. The chat shows the counts and a paged list
(PAGE_SIZE households a page, "Trước"/"Sau"); the same list comes as an XLSX (reports/visits_book.py).

Like /thongke, the counting is a long read: the turn checks access, raises NeedsPrefetch; the prefetch
checks access again in a short transaction of its own, counts with `Database.read` (storage/visits.py)
and, for the file, draws it in the renderer; the turn, run again, checks access once more, writes the
audit line and shows the result. Every button is registered `anywhere` and checked on every press, so a
forged or old button for another village is refused, audited, and shows nothing of it.

Nothing here logs: names, codes and typed text stay out of the logs, and the audit log keeps ids only.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from handlers import texts
from handlers.context import NOT_FETCHED, NeedsPrefetch, Services, Turn
from handlers.core import Attachment, Incoming, Keyboard, Reply, redrawn
from handlers.home import show_main_menu
from handlers.numbers import action_number
from handlers.registry import Registry, Replies
from reports.visits_book import note, progress_text, size_text, who
from storage import access, queries
from storage.models import Village
from storage.visits import HouseholdToVisit, VisitList, households_to_visit

COMMAND = "canthamhoi"
ACTION = "ctham"  # ctham (choose), ctham:<village id>, ctham:<village id>:<page>
ACTION_FILE = "cthamx"  # cthamx:<village id>
# The main menu's button (handlers/home.BTN_VISITS, action `ctham`) shows for village heads, the digital
# team and staff: everyone with `Scopes.visits` on some village.

PAGE_SIZE = 10
NOT_ALLOWED = (
    "Danh sách hộ cần đến chỉ dành cho trưởng thôn, thành viên Tổ công nghệ số cộng đồng của thôn và "
    "cán bộ xã. Nếu bạn làm việc này, hãy xin mã mời rồi gõ /ma."
)
WHICH_VILLAGE = "🚪 Bạn muốn xem các hộ cần đến của thôn/xóm nào?"
NOT_READY = "Mình chưa lấy xong danh sách này. Bạn bấm xem lại nhé."
HEAD = (
    "🚪 Hộ cần đến hướng dẫn – {village} (đến {day})\n"
    "• Số hộ của thôn: {households}\n"
    "• Hộ đã có người hoàn thành khóa cơ bản: {reached}\n"
    "• Hộ cần đến: {to_visit} (trong đó {unregistered} hộ chưa ai đăng ký)"
)
NONE_KNOWN = "\n\nThôn này chưa có hộ nào trong danh bạ hay đăng ký qua chat."
ALL_REACHED = "\n\n🎉 Hộ nào của thôn cũng đã có người hoàn thành khóa cơ bản."
PAGE = "\n\nTrang {page}/{pages}:\n{lines}"
LINE = "{number}. {who} – {details}"
NOBODY = "chưa ai đăng ký"
REGISTERED = "{count} người đăng ký"
BEST = "giỏi nhất {progress} bài"
FOOTNOTE = "\n\nTên người đăng ký chỉ hiện khi họ đã đồng ý. Không ghi mã hộ."
BTN_PREVIOUS = "◀️ Trước"
BTN_NEXT = "Sau ▶️"
BTN_FILE = "📄 Danh sách (tệp Excel)"
BTN_OTHER_VILLAGE = "🏘️ Thôn khác"
FILE_CAPTION = "📄 Hộ cần đến hướng dẫn – {village}. {note}"


@dataclass(frozen=True)
class Prepared:
    """What the prefetch found for one village: the list, and for a file its bytes."""

    village_id: int
    export: bool
    village: str
    visits: VisitList
    file: bytes = b""
    moment: datetime | None = None


# --- who may see which village ---------------------------------------------------------------

async def villages_of(session: AsyncSession, scopes: access.Scopes) -> list[int]:
    """The villages whose households the person may see, in the directory's order."""
    if scopes.staff or scopes.team_commune:
        return [village_id for village_id in (await session.exec(select(Village.id).order_by(col(Village.id)))).all()
                if village_id is not None]
    return sorted({*scopes.villages, *scopes.team_villages})


def parse(argument: str, *, paged: bool) -> tuple[int, int] | None:
    """'7' -> (7, 1), and with `paged` '7:3' -> (7, 3); None for anything a button of ours never
    carries (a forged one)."""
    village, _, page = argument.partition(":")
    village_id = action_number(village)
    number = action_number(page) if page else 1
    if village_id is None or number is None or (page and not paged):
        return None
    return village_id, max(number, 1)


async def _allowed_village(session: AsyncSession, scopes: access.Scopes, village_id: int) -> Village | None:
    """The village, when the person may see its households; None otherwise (or when it is gone)."""
    if not scopes.visits(village_id):
        return None
    return await session.get(Village, village_id)


# --- before the turn: count and draw ---------------------------------------------------------

async def prefetch_visits(services: Services, incoming: Incoming, argument: str, now: datetime) -> Prepared | None:
    return await _prefetch(services, incoming, argument, now, export=False)


async def prefetch_file(services: Services, incoming: Incoming, argument: str, now: datetime) -> Prepared | None:
    return await _prefetch(services, incoming, argument, now, export=True)


async def _prefetch(services: Services, incoming: Incoming, argument: str, now: datetime, *,
                    export: bool) -> Prepared | None:
    """Count (and draw) for a village the person may see; None for anyone else, who costs nothing."""
    village_id = action_number(argument)
    if village_id is None:
        return None
    async with services.database.session() as session:
        person = await queries.person_of(session, incoming.channel, incoming.user_id)
        scopes = await access.scopes_of(session, person)
        village = await _allowed_village(session, scopes, village_id)
        if village is None:
            return None
        name = village.name
    core = services.core_lessons(now)
    visits = await services.database.read(lambda connection: households_to_visit(connection, village_id, core))
    if not scopes.heads(village_id):
        visits = without_residents(visits)
    if not export:
        return Prepared(village_id, False, name, visits, moment=now)
    day = _day(services, now)
    file = await asyncio.get_running_loop().run_in_executor(services.renderer, _workbook, name, day, visits)
    return Prepared(village_id, True, name, visits, file, now)


def without_residents(visits: VisitList) -> VisitList:
    """The list as a digital-team member sees it: residents agreed that their leaders and village head see
    their name and progress (consent version 2), not the team; so the team gets the directory's head names,
    the counts, and no registered resident's name or progress."""
    rows = tuple(replace(row, named_members=(), best_core=None) for row in visits.rows)
    return replace(visits, rows=rows)


def _workbook(village: str, day: str, visits: VisitList) -> bytes:
    """Runs in the renderer (another process in `hocvuso run`): plain data in, XLSX bytes out."""
    from reports.visits_book import visits_workbook

    return visits_workbook(village, day, visits)


def _day(services: Services, moment: datetime) -> str:
    return moment.astimezone(services.config.zone).strftime("%d/%m/%Y")


# --- the turn: check, audit, show ------------------------------------------------------------

async def on_command(turn: Turn) -> Replies:
    return await on_visits(turn, "")


async def on_visits(turn: Turn, argument: str) -> Replies:
    return await _show(turn, argument, export=False)


async def on_file(turn: Turn, argument: str) -> Replies:
    return await _show(turn, argument, export=True)


async def _show(turn: Turn, argument: str, *, export: bool) -> Replies:
    action = "visits_export" if export else "visits_view"
    scopes = await access.scopes_of(turn.session, turn.person)
    villages = await villages_of(turn.session, scopes)
    if not argument and not export:
        if len(villages) > 1:
            return await _choose_village(turn, villages)
        argument = str(villages[0]) if villages else ""
    asked = parse(argument, paged=not export)
    village = await _allowed_village(turn.session, scopes, asked[0]) if asked is not None else None
    if asked is None or village is None:
        await access.audit(turn.session, turn.now, _actor(turn), action, "refused",
                           village_id=asked[0] if asked is not None else None)
        return await show_main_menu(turn, NOT_ALLOWED)
    village_id, page = asked
    if turn.prefetched is NOT_FETCHED:
        raise NeedsPrefetch("visits_file" if export else "visits", str(village_id))
    prepared = turn.prefetched
    if not isinstance(prepared, Prepared) or prepared.village_id != village_id or prepared.export != export:
        # Only when access changed between the read and the turn (a role revoked meanwhile).
        again = f"{ACTION_FILE if export else ACTION}:{village_id}"
        return [Reply(NOT_READY, Keyboard().add("🔄 Xem lại", again).add(texts.BTN_MENU, "menu").build())]
    await access.audit(turn.session, turn.now, _actor(turn), action, "ok", village_id=village_id)
    turn.goto("main")
    if export:
        return [_file_reply(turn, prepared, several=len(villages) > 1)]
    reply = _page_reply(turn, prepared, page, several=len(villages) > 1)
    # Turning a page redraws the same screen (Telegram edits the message pressed).
    return redrawn([reply]) if ":" in argument else [reply]


def _actor(turn: Turn) -> int | None:
    return turn.person.id if turn.person is not None else None


async def _choose_village(turn: Turn, villages: list[int]) -> Replies:
    rows = (await turn.session.exec(select(Village.id, Village.name).where(col(Village.id).in_(villages))
                                    .order_by(col(Village.id)))).all()
    keyboard = Keyboard()
    for village_id, name in rows:
        keyboard.add(name, f"{ACTION}:{village_id}")
    turn.goto("main")
    return [Reply(WHICH_VILLAGE, keyboard.add(texts.BTN_MENU, "menu").build())]


def _page_reply(turn: Turn, prepared: Prepared, page: int, *, several: bool) -> Reply:
    visits = prepared.visits
    text = HEAD.format(village=prepared.village, day=_day(turn.services, prepared.moment or turn.now),
                       households=visits.households, reached=visits.reached, to_visit=visits.to_visit,
                       unregistered=visits.nobody_registered)
    pages = max(1, -(-visits.to_visit // PAGE_SIZE))
    page = min(page, pages)
    keyboard = Keyboard()
    if visits.households == 0:
        text += NONE_KNOWN
    elif not visits.rows:
        text += ALL_REACHED
    else:
        first = (page - 1) * PAGE_SIZE
        lines = [line(number, row, visits.core_total)
                 for number, row in enumerate(visits.rows[first:first + PAGE_SIZE], start=first + 1)]
        text += PAGE.format(page=page, pages=pages, lines="\n".join(lines)) + FOOTNOTE
        if page > 1:
            keyboard.add(BTN_PREVIOUS, f"{ACTION}:{prepared.village_id}:{page - 1}")
        if page < pages:
            keyboard.add(BTN_NEXT, f"{ACTION}:{prepared.village_id}:{page + 1}")
        keyboard.add(BTN_FILE, f"{ACTION_FILE}:{prepared.village_id}")
    if several:
        keyboard.add(BTN_OTHER_VILLAGE, ACTION)
    return Reply(text, keyboard.add(texts.BTN_MENU, "menu").build())


def line(number: int, row: HouseholdToVisit, core_total: int) -> str:
    """'3. Nguyễn Văn Hùng – 4 nhân khẩu, 2 người đăng ký, giỏi nhất 3/8 bài'."""
    details = [size_text(row)] if row.listed_size else []
    details.append(REGISTERED.format(count=row.registered) if row.registered else NOBODY)
    progress = progress_text(row, core_total)
    if progress:
        details.append(BEST.format(progress=progress))
    return LINE.format(number=number, who=who(row), details=", ".join(details))


def _file_reply(turn: Turn, prepared: Prepared, *, several: bool) -> Reply:
    moment = prepared.moment or turn.now
    keyboard = Keyboard().add("🚪 Xem trong chat", f"{ACTION}:{prepared.village_id}")
    if several:
        keyboard.add(BTN_OTHER_VILLAGE, ACTION)
    keyboard.add(texts.BTN_MENU, "menu")
    caption = FILE_CAPTION.format(village=prepared.village, note=note(prepared.visits, _day(turn.services, moment)))
    stamp = f"{moment.astimezone(turn.config.zone):%Y%m%d-%H%M}"
    return Reply(caption, keyboard.build(),
                 attachment=Attachment(f"ho-can-den-{prepared.village_id}-{stamp}.xlsx", prepared.file))


def register(registry: Registry) -> None:
    registry.add_command(COMMAND, "Hộ cần đến hướng dẫn (trưởng thôn, Tổ công nghệ số)", on_command)
    # Access is checked (and a refusal audited) on every press, so an old or forged button is harmless.
    registry.add_action(ACTION, on_visits, anywhere=True)
    registry.add_action(ACTION_FILE, on_file, anywhere=True)
    registry.add_prefetch("visits", prefetch_visits)
    registry.add_prefetch("visits_file", prefetch_file)
