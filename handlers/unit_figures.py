"""/thongke: the figures of the unit a person answers for, with a chart and, on request, the member list.

The counting is a long read. The turn checks access first; an allowed request raises NeedsPrefetch,
so the count runs outside the turn's transaction and off the event loop's thread (Database.read) and
the chart is drawn on a worker thread; the turn, run again, checks access again, writes the audit
line and shows what was found.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from handlers import texts
from handlers.context import NOT_FETCHED, NeedsPrefetch, Services, Turn
from handlers.core import Attachment, Incoming, Keyboard, Reply
from handlers.home import show_main_menu
from handlers.numbers import action_number
from handlers.registry import Registry, Replies
from storage import access, figures, queries
from storage.figures import CommuneFigures, MemberList, UnitFigures
from storage.models import Organisation, Village

NOT_ALLOWED = (
    "Số liệu chỉ dành cho người phụ trách đơn vị: lãnh đạo tổ chức, trưởng thôn, chủ hộ và cán bộ xã. "
    "Nếu bạn phụ trách một đơn vị, hãy xin mã mời rồi gõ /ma."
)
WHICH_UNIT = "📊 Bạn muốn xem số liệu của đơn vị nào?"
NOT_READY = "Mình chưa lấy xong số liệu này. Bạn bấm xem lại nhé."
BTN_AGAIN = "🔄 Xem lại"
BTN_LIST = "📄 Danh sách (tệp Excel)"
BTN_OTHER_UNIT = "📊 Đơn vị khác"
LIST_CAPTION = "📄 Danh sách {title}. {note}"
COMMUNE_TITLE = "Toàn xã"
HOUSEHOLD_TITLE = "Hộ của bạn"

UNIT_TEXT = (
    "📊 {title} (đến {day})\n"
    "• {people_label}: {people}{claims}\n"
    "• Hoạt động trong 30 ngày: {active} ({active_share})\n"
    "• Hoàn thành khóa cơ bản: {finished} ({finished_share}){assisted}\n"
    "• VNeID mức 2 (tự khai): {vneid} ({vneid_share})\n"
    "• Điểm kiểm tra trung bình: {average}"
    "{households}{hardest}"
)
# "Học cùng": finishers who learned with a digital-team member beside them, counted in and shown apart.
ASSISTED = ", trong đó {count} người học cùng Tổ công nghệ số"
CLAIMS = " ({confirmed} đã xác nhận, {claimed} tự khai chờ xác nhận)"
HOUSEHOLDS = "\n• Hộ có người hoàn thành khóa cơ bản: {reached}/{known} hộ ({share})"
HARDEST = "\n\nBài khó nhất (tỉ lệ đạt ngay lần đầu):\n{lines}"
HARDEST_LINE = "   {rank}. {title}: {share} ({passed}/{tries} người)"
BY_ORG = "\n\nTheo tổ chức (hoàn thành khóa cơ bản):\n{lines}"
BY_VILLAGE = "\n\nTheo thôn/xóm (hoàn thành khóa cơ bản):\n{lines}"
ROW_LINE = "   • {name}: {finished}/{people} ({share})"
NOBODY_YET = "   • Chưa có ai đăng ký: {count} đơn vị"
MORE_ROWS = "   … và {count} đơn vị khác (xem tệp Excel và biểu đồ)"
HOUSEHOLD_TEXT = "🏡 {title}: {count} người đã đồng ý hiện tên{hidden}\n{lines}"
HOUSEHOLD_LINE = "• {name}: {core}/{total} bài cơ bản{done}, hoạt động gần nhất: {last}"
HOUSEHOLD_HIDDEN = " (và {count} người chưa đồng ý hiện tên)"
NEVER = "chưa có"
ROWS_SHOWN = 8


@dataclass(frozen=True)
class Unit:
    kind: str  # org | village | commune | household
    id: int | None = None

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.id}" if self.id is not None else self.kind


def parse_unit(argument: str) -> Unit | None:
    """'org:5' -> Unit('org', 5); None for anything that is not a unit key (a forged button)."""
    kind, _, number = argument.partition(":")
    if kind == "commune" and not number:
        return Unit(kind)
    if kind == "household":  # whichever household: only the person's own is ever shown
        return Unit(kind)
    if kind in {"org", "village"}:
        unit_id = action_number(number)
        return Unit(kind, unit_id) if unit_id is not None else None
    return None


def units_of(scopes: access.Scopes) -> list[Unit]:
    """The units a person answers for, the widest first."""
    units = [Unit("commune")] if scopes.staff else []
    units += [Unit("org", organisation_id) for organisation_id in scopes.organisations]
    units += [Unit("village", village_id) for village_id in scopes.villages]
    if scopes.household is not None:
        units.append(Unit("household", scopes.household))
    return units


def allowed(scopes: access.Scopes, unit: Unit) -> bool:
    if unit.kind == "commune":
        return scopes.staff
    if unit.kind == "org":
        return unit.id is not None and scopes.leads(unit.id)
    if unit.kind == "village":
        return unit.id is not None and scopes.heads(unit.id)
    return unit.kind == "household" and scopes.household is not None


def chosen_unit(scopes: access.Scopes, argument: str) -> Unit | None:
    """The unit asked for; with no argument, the person's only unit (None when there are several)."""
    if argument:
        unit = parse_unit(argument)
        if unit is not None and unit.kind == "household":
            return Unit("household", scopes.household) if scopes.household is not None else unit
        return unit
    units = units_of(scopes)
    return units[0] if len(units) == 1 else None


# --- before the turn: count and draw ---------------------------------------------------------

@dataclass(frozen=True)
class Prepared:
    """What the prefetch found for one unit: figures and chart, or the member list's workbook."""

    unit: Unit
    export: bool
    title: str
    figures: UnitFigures | CommuneFigures | MemberList | None = None
    file: bytes = b""
    moment: datetime | None = None


async def prefetch_figures(services: Services, incoming: Incoming, argument: str, now: datetime) -> Prepared | None:
    return await _prefetch(services, incoming, argument, now, export=False)


async def prefetch_list(services: Services, incoming: Incoming, argument: str, now: datetime) -> Prepared | None:
    return await _prefetch(services, incoming, argument, now, export=True)


async def _prefetch(services: Services, incoming: Incoming, argument: str, now: datetime, *,
                    export: bool) -> Prepared | None:
    """Count (and draw) for a unit the person may see; None for anyone else, who costs nothing."""
    async with services.database.session() as session:
        person = await queries.person_of(session, incoming.channel, incoming.user_id)
        scopes = await access.scopes_of(session, person)
        unit = chosen_unit(scopes, argument)
        if unit is None or not allowed(scopes, unit):
            return None
        title = await unit_title(session, unit)
    core = services.core_lessons(now)
    zone = services.config.zone
    loop = asyncio.get_running_loop()
    if export:
        members = await services.database.read(lambda c: _members(c, unit, core, zone))
        file = await loop.run_in_executor(services.renderer, _workbook, title, members, unit.kind == "org")
        return Prepared(unit, True, title, members, file, now)
    counted = await services.database.read(lambda c: _count(c, unit, core, now, zone))
    chart = await loop.run_in_executor(services.renderer, _chart, title, counted)
    return Prepared(unit, False, title, counted, chart, now)


async def unit_title(session: Any, unit: Unit) -> str:
    if unit.kind == "commune":
        return COMMUNE_TITLE
    if unit.kind == "household":
        return HOUSEHOLD_TITLE
    model = Organisation if unit.kind == "org" else Village
    row = await session.get(model, unit.id)
    return row.name if row is not None else "?"


def _count(connection: Any, unit: Unit, core: tuple[str, ...], now: datetime, zone: Any) -> Any:
    if unit.kind == "org":
        return figures.organisation_figures(connection, unit.id, core, now)  # type: ignore[arg-type]
    if unit.kind == "village":
        return figures.village_figures(connection, unit.id, core, now)  # type: ignore[arg-type]
    if unit.kind == "household":
        return figures.household_progress(connection, unit.id, core, zone)  # type: ignore[arg-type]
    return figures.commune_figures(connection, core, now)


def _members(connection: Any, unit: Unit, core: tuple[str, ...], zone: Any) -> MemberList:
    scope = {"org": "organisation_id", "village": "village_id", "household": "household_id"}.get(unit.kind)
    return figures.member_rows(connection, core_lessons=core, zone=zone, **({scope: unit.id} if scope else {}))


def _chart(title: str, counted: Any) -> bytes:
    """Runs in the renderer (another process in `hocvuso run`): plain data in, PNG bytes out."""
    from reports import charts  # matplotlib takes half a second to import: only where charts are drawn

    if isinstance(counted, MemberList):
        return charts.household_chart(title, counted.rows, counted.core_total, hidden=counted.hidden)
    if isinstance(counted, CommuneFigures):
        return charts.commune_chart(title, counted)
    return charts.unit_chart(title, counted)


def _workbook(title: str, members: MemberList, organisation: bool) -> bytes:
    from reports.members_book import members_workbook

    return members_workbook(title, members, organisation=organisation)


# --- the turn: check, audit, show -----------------------------------------------------------

async def on_figures_command(turn: Turn) -> Replies:
    return await on_figures(turn, "")


async def on_figures(turn: Turn, argument: str) -> Replies:
    return await _show(turn, argument, export=False)


async def on_list(turn: Turn, argument: str) -> Replies:
    return await _show(turn, argument, export=True)


async def _show(turn: Turn, argument: str, *, export: bool) -> Replies:
    scopes = await access.scopes_of(turn.session, turn.person)
    unit = chosen_unit(scopes, argument)
    if unit is None and not argument and len(units_of(scopes)) > 1:
        return await _choose_unit(turn, scopes)
    if unit is None or not allowed(scopes, unit):
        await audit_unit(turn, unit, "members_export" if export else "figures_view", "refused")
        return await show_main_menu(turn, NOT_ALLOWED)
    if turn.prefetched is NOT_FETCHED:
        raise NeedsPrefetch("list" if export else "figures", unit.key)
    prepared = turn.prefetched
    if not isinstance(prepared, Prepared) or prepared.unit != unit or prepared.export != export:
        # Only when access changed between the read and the turn (a role revoked meanwhile).
        keyboard = Keyboard().add(BTN_AGAIN, f"{'tkx' if export else 'tk'}:{unit.key}").add(texts.BTN_MENU, "menu")
        return [Reply(NOT_READY, keyboard.build())]
    await audit_unit(turn, unit, "members_export" if export else "figures_view", "ok")
    turn.goto("main")
    keyboard = Keyboard()
    if not export:
        keyboard.add(BTN_LIST, f"tkx:{unit.key}")
    if len(units_of(scopes)) > 1:
        keyboard.add(BTN_OTHER_UNIT, "tk")
    keyboard.add(texts.BTN_MENU, "menu")
    if export:
        return [_list_reply(turn, prepared, keyboard)]
    text = _figures_text(turn, prepared)
    stamp = f"{prepared.moment or turn.now:%Y%m%d-%H%M}"
    chart = Attachment(f"so-lieu-{unit.kind}-{stamp}.png", prepared.file, kind="photo")
    return [Reply(text, keyboard.build(), attachment=chart)]


async def _choose_unit(turn: Turn, scopes: access.Scopes) -> Replies:
    return await choose_unit(turn, units_of(scopes), "tk", WHICH_UNIT)


async def choose_unit(turn: Turn, units: list[Unit], action: str, question: str) -> Replies:
    """A button per unit (its name), each pressing `action:<unit key>`."""
    keyboard = Keyboard()
    for unit in units:
        keyboard.add(await unit_title(turn.session, unit), f"{action}:{unit.key}")
    turn.goto("main")
    return [Reply(question, keyboard.add(texts.BTN_MENU, "menu").build())]


async def audit_unit(turn: Turn, unit: Unit | None, action: str, outcome: str) -> None:
    """The audit line of a view of a unit's figures or files, granted or refused."""
    await access.audit(
        turn.session, turn.now, turn.person.id if turn.person else None, action, outcome,
        organisation_id=unit.id if unit and unit.kind == "org" else None,
        village_id=unit.id if unit and unit.kind == "village" else None,
        subject=unit.id if unit and unit.kind == "household" else None,
    )


def _list_reply(turn: Turn, prepared: Prepared, keyboard: Keyboard) -> Reply:
    from reports.members_book import hidden_note

    members = prepared.figures
    assert isinstance(members, MemberList)
    stamp = f"{prepared.moment or turn.now:%Y%m%d-%H%M}"
    return Reply(LIST_CAPTION.format(title=prepared.title, note=hidden_note(members)), keyboard.build(),
                 attachment=Attachment(f"danh-sach-{prepared.unit.kind}-{stamp}.xlsx", prepared.file))


# --- words ------------------------------------------------------------------------------------

def share(part: int, whole: int) -> str:
    """'45%' (Vietnamese decimal comma when needed); a dash when there is nobody to count."""
    if whole <= 0:
        return "–"
    value = 100 * part / whole
    return f"{value:.0f}%" if value >= 10 or value == 0 else f"{value:.1f}%".replace(".", ",")


def _figures_text(turn: Turn, prepared: Prepared) -> str:
    counted = prepared.figures
    day = turn.today.strftime("%d/%m/%Y")
    if isinstance(counted, MemberList):
        return _household_text(prepared.title, counted)
    if isinstance(counted, CommuneFigures):
        return _unit_text(turn, prepared.title, counted.totals, day) + _commune_rows(counted)
    assert isinstance(counted, UnitFigures)
    return _unit_text(turn, prepared.title, counted, day)


def _unit_text(turn: Turn, title: str, counted: UnitFigures, day: str) -> str:
    people = counted.people
    claims = ""
    if counted.confirmed is not None:
        claims = CLAIMS.format(confirmed=counted.confirmed, claimed=people - counted.confirmed)
    households = ""
    if counted.households_known is not None:
        households = HOUSEHOLDS.format(reached=counted.households_reached, known=counted.households_known,
                                       share=share(counted.households_reached or 0, counted.households_known))
    hardest = ""
    if counted.hardest:
        lines = [HARDEST_LINE.format(rank=rank, title=_lesson_title(turn, rate.lesson_id),
                                     share=share(rate.first_try_passed, rate.first_tries),
                                     passed=rate.first_try_passed, tries=rate.first_tries)
                 for rank, rate in enumerate(counted.hardest, start=1)]
        hardest = HARDEST.format(lines="\n".join(lines))
    average = "chưa có bài kiểm tra nào" if counted.average_score is None else f"{counted.average_score:.0f}/100"
    return UNIT_TEXT.format(
        title=title, day=day, people_label="Thành viên" if counted.confirmed is not None else "Người đăng ký",
        people=people, claims=claims, active=counted.active_30_days, active_share=share(counted.active_30_days, people),
        finished=counted.finished_core, finished_share=share(counted.finished_core, people),
        assisted=ASSISTED.format(count=counted.finished_assisted) if counted.finished_assisted else "",
        vneid=counted.vneid_level2, vneid_share=share(counted.vneid_level2, people), average=average,
        households=households, hardest=hardest,
    )


def _commune_rows(commune: CommuneFigures) -> str:
    def lines(rows: list[tuple[str, int, int]]) -> str:
        """The highest shares first (ties in the directory's order); units nobody joined, counted apart."""
        counted = [row for row in rows if row[2] > 0]
        ranked = sorted(counted, key=lambda row: -row[1] / row[2])  # a stable sort keeps the order of ties
        shown = [ROW_LINE.format(name=name, finished=finished, people=people, share=share(finished, people))
                 for name, finished, people in ranked[:ROWS_SHOWN]]
        if len(ranked) > ROWS_SHOWN:
            shown.append(MORE_ROWS.format(count=len(ranked) - ROWS_SHOWN))
        if len(rows) > len(counted):
            shown.append(NOBODY_YET.format(count=len(rows) - len(counted)))
        return "\n".join(shown)

    organisations = [(row.name, row.finished_core, row.people) for row in commune.organisations]
    villages = [(row.name, row.finished_core, row.people) for row in commune.villages]
    return BY_ORG.format(lines=lines(organisations)) + BY_VILLAGE.format(lines=lines(villages))


def _household_text(title: str, members: MemberList) -> str:
    lines = [
        HOUSEHOLD_LINE.format(
            name=member.name or "(chưa có tên)", core=member.core_finished, total=members.core_total,
            done=" ✅" if member.finished_core else "",
            last=member.last_active.strftime("%d/%m/%Y") if member.last_active else NEVER)
        for member in members.rows
    ]
    hidden = HOUSEHOLD_HIDDEN.format(count=members.hidden) if members.hidden else ""
    return HOUSEHOLD_TEXT.format(title=title, count=len(members.rows), hidden=hidden, lines="\n".join(lines))


def _lesson_title(turn: Turn, lesson_id: str) -> str:
    lesson = turn.catalog.lesson(lesson_id)
    return lesson.title if lesson is not None else lesson_id


def register(registry: Registry) -> None:
    registry.add_command("thongke", "Số liệu của đơn vị bạn phụ trách", on_figures_command)
    # Access is checked (and a refusal audited) on every press, so an old or forged button is harmless.
    registry.add_action("tk", on_figures, anywhere=True)
    registry.add_action("tkx", on_list, anywhere=True)
    registry.add_prefetch("figures", prefetch_figures)
    registry.add_prefetch("list", prefetch_list)
