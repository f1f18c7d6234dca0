"""/baocao: the yearly report's three files for the unit a person answers for.

Staff get the commune's, a leader their organisation's, a village head their village's. Counting is a
long read and the files are CPU work: the turn checks access and raises NeedsPrefetch; the prefetch
counts off the event loop (Database.read) and builds the files in the renderer; the turn, run again,
checks access again, writes the audit line and sends them.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from handlers import texts
from handlers.context import NOT_FETCHED, NeedsPrefetch, Services, Turn
from handlers.core import Attachment, Incoming, Keyboard, Reply
from handlers.home import show_main_menu
from handlers.numbers import action_number
from handlers.registry import Registry, Replies
from handlers.unit_figures import ASSISTED, Unit, allowed, audit_unit, choose_unit, parse_unit, unit_title, units_of
from reports.report_files import ReportRequest
from reports.report_text import percent
from storage import access, queries
from storage.report import Period, Report, Scope, period_year_of, reporting_period, share

NOT_ALLOWED = (
    "Báo cáo chỉ dành cho người phụ trách đơn vị: lãnh đạo tổ chức, trưởng thôn và cán bộ xã. "
    "Nếu bạn phụ trách một đơn vị, hãy xin mã mời rồi gõ /ma."
)
WHICH_UNIT = "📑 Bạn muốn lập báo cáo cho đơn vị nào?"
NOT_READY = "Mình chưa lập xong báo cáo này. Bạn bấm lập lại nhé."
BTN_AGAIN = "🔄 Lập lại"
BTN_LAST_YEAR = "📅 Báo cáo năm {year}"
BTN_OTHER_UNIT = "📑 Đơn vị khác"
SUMMARY = (
    "📑 Báo cáo năm {year}: {title}\n"
    "Kỳ báo cáo: {first} - {last}\n"
    "• Người đăng ký: {registered}\n"
    "• Hoàn thành khóa cơ bản: {finished} ({finished_share}){assisted}\n"
    "{households}"
    "• Trong kỳ: {lessons} lượt học xong bài, {quizzes} lượt làm đạt bài kiểm tra\n"
    "• Hoạt động tại cơ sở: {activities} hoạt động, {participants} lượt người tham dự\n"
    "• Học cùng Tổ công nghệ số: {helped} người, {helped_lessons} bài học xong\n"
    "• Sáng kiến: {proposed} đề xuất, {recognised} được công nhận\n\n"
    "Kèm theo: bảng số liệu (Excel), bản nháp báo cáo (Word) và biểu đồ. "
    "Trong bản Word, bạn điền các chỗ [...] rồi trình ký."
)
HOUSEHOLDS = "• Hộ có người hoàn thành: {reached}/{known} hộ ({share})\n"
XLSX_CAPTION = "📊 Bảng số liệu báo cáo năm {year}: {title}"
DOCX_CAPTION = "📝 Bản nháp báo cáo năm {year}: {title}. Điền các chỗ [...] rồi trình ký."
REPORTABLE = {"commune", "org", "village"}
REUSE_FOR = timedelta(minutes=2)
"""A report asked for again within this time is the one just made (its time is printed on it)."""
KEPT_REPORTS = 32


@dataclass(frozen=True)
class Asked:
    unit: Unit
    year: int | None  # None: the reporting year now running

    @property
    def key(self) -> str:
        return self.unit.key if self.year is None else f"{self.unit.key}@{self.year}"


def parse_asked(argument: str) -> Asked | None:
    """'org:5@2025' -> the unit and the year; None for anything else (a forged button)."""
    unit_part, at, year_part = argument.partition("@")
    unit = parse_unit(unit_part)
    if unit is None or unit.kind not in REPORTABLE:
        return None
    year = action_number(year_part) if at else None
    if at and (year is None or not 2000 <= year <= 2100):
        return None
    return Asked(unit, year)


def reportable_units(scopes: access.Scopes) -> list[Unit]:
    return [unit for unit in units_of(scopes) if unit.kind in REPORTABLE]


def _chosen(scopes: access.Scopes, argument: str) -> Asked | None:
    if argument:
        return parse_asked(argument)
    units = reportable_units(scopes)
    return Asked(units[0], None) if len(units) == 1 else None


def _period(services: Services, year: int | None, now: datetime) -> Period:
    config = services.config
    year = year if year is not None else period_year_of(now, config.report_deadline, config.zone)
    return reporting_period(year, config.report_deadline, config.zone)


# --- before the turn: count and build the files ----------------------------------------------

@dataclass(frozen=True)
class Prepared:
    asked: Asked
    report: Report
    files: Any  # reports.report_files.ReportFiles


async def prefetch_report(services: Services, incoming: Incoming, argument: str, now: datetime) -> Prepared | None:
    """Count and build for a unit the person may report for; None for anyone else, who costs nothing."""
    async with services.database.session() as session:
        person = await queries.person_of(session, incoming.channel, incoming.user_id)
        scopes = await access.scopes_of(session, person)
        asked = _chosen(scopes, argument)
        if asked is None or not allowed(scopes, asked.unit):
            return None
        title = await unit_title(session, asked.unit)
    period = _period(services, asked.year, now)
    key = ("report", asked.unit.key, period.year)
    recent = services.recent_files.get(key)
    if recent is not None and now - recent.report.made_at < REUSE_FOR:
        return Prepared(asked, recent.report, recent.files)
    titles, questions = content_names(services)
    request = ReportRequest(
        database_url=services.database.url, scope=scope_of(asked.unit, title, services.config.commune_name),
        period=period, core=services.catalog.core_lessons(period.last_day), lesson_order=lesson_order(services),
        made_at=now.astimezone(services.config.zone), commune_name=services.config.commune_name,
        lesson_titles=titles, question_texts=questions,
    )
    loop = asyncio.get_running_loop()
    report, files = await loop.run_in_executor(services.renderer, _make, request)
    _keep(services.recent_files, key, Prepared(asked, report, files))
    return Prepared(asked, report, files)


def _keep(recent: dict[Any, Any], key: tuple[str, str, int], prepared: Prepared) -> None:
    recent.pop(key, None)
    recent[key] = prepared
    while len(recent) > KEPT_REPORTS:  # the oldest first: dicts keep insertion order
        recent.pop(next(iter(recent)))


def scope_of(unit: Unit, title: str, commune_name: str) -> Scope:
    if unit.kind == "commune":
        return Scope("commune", None, commune_name)
    return Scope("organisation" if unit.kind == "org" else "village", unit.id, title)


def lesson_order(services: Services) -> list[str]:
    return [lesson.id for lesson in services.catalog.ordered_lessons()]


def content_names(services: Services) -> tuple[dict[str, str], dict[str, str]]:
    """Lesson titles by id and question texts by answer key, as the content reads now."""
    from content.schema import answer_key

    lessons = services.catalog.ordered_lessons()
    titles = {lesson.id: lesson.title for lesson in lessons}
    questions = {answer_key(lesson.id, question.id): question.question
                 for lesson in lessons for question in lesson.quiz}
    return titles, questions


def _make(request: Any) -> tuple[Report, Any]:
    """Runs in the renderer (another process in `hocvuso run`): counts and builds the three files."""
    from reports.report_files import make_report  # matplotlib, openpyxl, python-docx: only where files are made

    return make_report(request)


# --- the turn ----------------------------------------------------------------------------------

async def on_report_command(turn: Turn) -> Replies:
    return await on_report(turn, "")


async def on_report(turn: Turn, argument: str) -> Replies:
    scopes = await access.scopes_of(turn.session, turn.person)
    asked = _chosen(scopes, argument)
    if asked is None and not argument and len(reportable_units(scopes)) > 1:
        return await _choose_unit(turn, scopes)
    if asked is None or not allowed(scopes, asked.unit):
        await _audit(turn, asked.unit if asked else None, "refused")
        return await show_main_menu(turn, NOT_ALLOWED)
    if turn.prefetched is NOT_FETCHED:
        raise NeedsPrefetch("report", asked.key)
    prepared = turn.prefetched
    if not isinstance(prepared, Prepared) or prepared.asked != asked:
        keyboard = Keyboard().add(BTN_AGAIN, f"bc:{asked.key}").add(texts.BTN_MENU, "menu")
        return [Reply(NOT_READY, keyboard.build())]
    await _audit(turn, asked.unit, "ok")
    turn.goto("main")
    return _replies(prepared, len(reportable_units(scopes)) > 1)


def _replies(prepared: Prepared, several_units: bool) -> Replies:
    report, files, asked = prepared.report, prepared.files, prepared.asked
    people, period, offline = report.people, report.period, report.offline.total
    households = ""
    if people.households_known:
        households = HOUSEHOLDS.format(reached=people.households_reached, known=people.households_known,
                                       share=percent(share(people.households_reached, people.households_known)))
    text = SUMMARY.format(
        year=period.year, title=report.scope.name, first=f"{period.first_day:%d/%m/%Y}",
        last=f"{period.last_day:%d/%m/%Y}", registered=people.registered, finished=people.finished,
        finished_share=percent(share(people.finished, people.registered)), households=households,
        lessons=people.lessons_finished, quizzes=people.quizzes_passed,
        assisted=ASSISTED.format(count=offline.helped_finished) if offline.helped_finished else "",
        activities=offline.activities, participants=offline.participants, helped=offline.helped_people,
        helped_lessons=offline.helped_lessons, proposed=offline.initiatives_proposed,
        recognised=offline.initiatives_recognised,
    )
    keyboard = Keyboard()
    if asked.year is None:
        keyboard.add(BTN_LAST_YEAR.format(year=period.year - 1), f"bc:{asked.unit.key}@{period.year - 1}")
    if several_units:
        keyboard.add(BTN_OTHER_UNIT, "bc")
    keyboard.add(texts.BTN_MENU, "menu")
    title = report.scope.name
    return [
        Reply(text, attachment=Attachment(f"{files.stem}.png", files.png, kind="photo")),
        Reply(XLSX_CAPTION.format(year=period.year, title=title),
              attachment=Attachment(f"{files.stem}.xlsx", files.xlsx)),
        Reply(DOCX_CAPTION.format(year=period.year, title=title), keyboard.build(),
              attachment=Attachment(f"{files.stem}.docx", files.docx)),
    ]


async def _choose_unit(turn: Turn, scopes: access.Scopes) -> Replies:
    return await choose_unit(turn, reportable_units(scopes), "bc", WHICH_UNIT)


async def _audit(turn: Turn, unit: Unit | None, outcome: str) -> None:
    await audit_unit(turn, unit, "report", outcome)


def register(registry: Registry) -> None:
    registry.add_command("baocao", "Báo cáo năm của đơn vị (Excel, Word, biểu đồ)", on_report_command)
    # Access is checked (and a refusal audited) on every press, so an old or forged button is harmless.
    registry.add_action("bc", on_report, anywhere=True)
    registry.add_prefetch("report", prefetch_report)
