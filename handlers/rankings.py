"""/xephang: thi đua between organisations and villages, and for staff the list of people who finished
every lesson (XLSX), the basis of the commune's proposals for khen thưởng.

Everyone registered sees the rankings: unit names and counts only, never a person's name. The counting
is a long read, done as /thongke does it (handlers/unit_figures.py): the turn checks who is asking and
raises NeedsPrefetch; the prefetch checks again in a short transaction of its own, counts with
Database.read and builds the workbook in the renderer; the turn, run again, checks again, writes the
audit line (for the list) and shows what was found. A press of the list's button by anyone but staff,
old or forged, is refused and audited.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from handlers import texts
from handlers.context import NOT_FETCHED, NeedsPrefetch, Services, Turn
from handlers.core import Attachment, Incoming, Keyboard, Reply
from handlers.home import main_menu_buttons, show_main_menu
from handlers.registry import Registry, Replies
from handlers.unit_figures import share
from storage import access, queries, rankings
from storage.rankings import HonoursList, Rankings, Standing

GUEST = "🏆 Bảng thi đua dành cho người đã đăng ký. Bạn bấm “Đăng ký lưu tiến độ” để tham gia nhé."
NOT_STAFF = "Danh sách này chỉ dành cho cán bộ xã."
NOT_READY = "Mình chưa lấy xong số liệu. Bạn bấm xem lại nhé."
BTN_AGAIN = "🔄 Xem lại"
BTN_RANKINGS = "🏆 Bảng thi đua"
BTN_HONOURS = "📄 Danh sách hoàn thành (Excel)"

HEADER = (
    "🏆 Thi đua học xong khóa cơ bản (đến {day})\n"
    "Xếp theo tỉ lệ người đã học xong, chỉ tính đơn vị có từ {minimum} người trở lên."
)
ORGANISATIONS = "\n\nTổ chức:\n{lines}"
VILLAGES = "\n\nThôn/xóm:\n{lines}"
RANK_LINE = "{rank}. {name}: {finished}/{people} ({share})"
MORE = "… và {count} đơn vị khác"
NONE_RANKED = "Chưa có đơn vị nào đủ {minimum} người."
IMPROVED = "\n\n📈 Tiến bộ nhất 30 ngày qua:\n{lines}"
IMPROVED_LINE = "• {name}: từ {before} lên {now}"
NONE_IMPROVED = "Chưa có đơn vị nào tăng tỉ lệ."
LEFT_OUT = "\n\n{count} đơn vị chưa đủ {minimum} người nên chưa xếp hạng."
HONOURS_CAPTION = "📄 Danh sách người học xong tất cả các bài, để xét đề xuất khen thưởng. {note}"
RANKED_SHOWN = 5
RANKINGS_KEY = ("rankings",)
RANKINGS_REUSED_FOR = timedelta(minutes=1)
IMPROVED_SHOWN = 3


# --- before the turn: count, and build the workbook -----------------------------------------------

@dataclass(frozen=True)
class PreparedRankings:
    rankings: Rankings


@dataclass(frozen=True)
class PreparedHonours:
    honours: HonoursList
    file: bytes
    moment: datetime


async def prefetch_rankings(services: Services, incoming: Incoming, _argument: str,
                            now: datetime) -> PreparedRankings | None:
    """Count for anyone registered; None for anyone else, who costs nothing."""
    async with services.database.session() as session:
        if await queries.person_of(session, incoming.channel, incoming.user_id) is None:
            return None
    core = services.core_lessons(now)
    minimum = services.config.ranking_min_people
    # The rankings hold no one's name and are the same for everyone: counted once a minute at most, so
    # a crowd (or one chat pressing again and again) costs one count.
    recent = services.recent_files.get(RANKINGS_KEY)
    if recent is not None and now - recent[0] < RANKINGS_REUSED_FOR:
        return PreparedRankings(recent[1])
    counted = await services.database.read(lambda c: rankings.rankings(c, core, now, minimum))
    services.recent_files[RANKINGS_KEY] = (now, counted)
    return PreparedRankings(counted)


async def prefetch_honours(services: Services, incoming: Incoming, _argument: str,
                           now: datetime) -> PreparedHonours | None:
    """The list and its workbook, for staff only; None for anyone else."""
    async with services.database.session() as session:
        person = await queries.person_of(session, incoming.channel, incoming.user_id)
        if not (await access.scopes_of(session, person)).staff:
            return None
    lessons = services.catalog.ordered_lessons()
    ids = tuple(lesson.id for lesson in lessons)
    zone = services.config.zone
    honours = await services.database.read(lambda c: rankings.finished_everything(c, ids, zone))
    file = await asyncio.get_running_loop().run_in_executor(
        services.renderer, _workbook, honours, [lesson.title for lesson in lessons], services.config.commune_name,
        now.astimezone(zone).date(),
    )
    return PreparedHonours(honours, file, now)


def _workbook(honours: HonoursList, titles: list[str], commune: str, day: date) -> bytes:
    """Runs in the renderer (another process in `hocvuso run`): plain data in, XLSX bytes out."""
    from reports.honours_book import honours_workbook

    return honours_workbook(honours, titles, commune=commune, day=day)


# --- the turn: check, audit, show -----------------------------------------------------------------

async def on_rankings_command(turn: Turn) -> Replies:
    return await on_rankings(turn, "")


async def on_rankings(turn: Turn, _argument: str) -> Replies:
    if turn.person is None:
        turn.goto("main")
        return [Reply(GUEST, main_menu_buttons(turn).build())]
    if turn.prefetched is NOT_FETCHED:
        raise NeedsPrefetch("rankings", "")
    prepared = turn.prefetched
    if not isinstance(prepared, PreparedRankings):  # only when the person erased their data meanwhile
        return [Reply(NOT_READY, Keyboard().add(BTN_AGAIN, "xh").add(texts.BTN_MENU, "menu").build())]
    turn.goto("main")
    keyboard = Keyboard()
    if (await access.scopes_of(turn.session, turn.person)).staff:
        keyboard.add(BTN_HONOURS, "xhds")
    return [Reply(rankings_text(prepared.rankings, turn.today), keyboard.add(texts.BTN_MENU, "menu").build())]


async def on_honours(turn: Turn, _argument: str) -> Replies:
    """xhds: registered `anywhere`, so access is checked (and a refusal audited) on every press."""
    if not (await access.scopes_of(turn.session, turn.person)).staff:
        await _audit(turn, "refused")
        return await show_main_menu(turn, NOT_STAFF)
    if turn.prefetched is NOT_FETCHED:
        raise NeedsPrefetch("honours", "")
    prepared = turn.prefetched
    if not isinstance(prepared, PreparedHonours):  # only when the role was revoked meanwhile
        return [Reply(NOT_READY, Keyboard().add(BTN_AGAIN, "xhds").add(texts.BTN_MENU, "menu").build())]
    await _audit(turn, "ok")
    turn.goto("main")
    from reports.honours_book import hidden_note

    keyboard = Keyboard().add(BTN_RANKINGS, "xh").add(texts.BTN_MENU, "menu")
    attachment = Attachment(f"hoan-thanh-{prepared.moment.astimezone(turn.config.zone):%Y%m%d-%H%M}.xlsx",
                            prepared.file)
    caption = HONOURS_CAPTION.format(note=hidden_note(prepared.honours))
    return [Reply(caption, keyboard.build(), attachment=attachment)]


async def _audit(turn: Turn, outcome: str) -> None:
    await access.audit(turn.session, turn.now, turn.person.id if turn.person else None, "honours_export", outcome)


# --- words ----------------------------------------------------------------------------------------

def rankings_text(counted: Rankings, day: date) -> str:
    minimum = counted.min_people
    text = HEADER.format(day=f"{day:%d/%m/%Y}", minimum=minimum)
    text += ORGANISATIONS.format(lines=_ranked(counted.organisations, minimum))
    text += VILLAGES.format(lines=_ranked(counted.villages, minimum))
    improved = [IMPROVED_LINE.format(name=unit.name, before=_counted(unit.finished_before, unit.people_before),
                                     now=_counted(unit.finished, unit.people))
                for unit in counted.improved[:IMPROVED_SHOWN]]
    text += IMPROVED.format(lines="\n".join(improved) or NONE_IMPROVED)
    if counted.left_out:
        text += LEFT_OUT.format(count=counted.left_out, minimum=minimum)
    return text


def _ranked(units: tuple[Standing, ...], minimum: int) -> str:
    if not units:
        return NONE_RANKED.format(minimum=minimum)
    lines = [RANK_LINE.format(rank=rank, name=unit.name, finished=unit.finished, people=unit.people,
                              share=share(unit.finished, unit.people))
             for rank, unit in enumerate(units[:RANKED_SHOWN], start=1)]
    if len(units) > RANKED_SHOWN:
        lines.append(MORE.format(count=len(units) - RANKED_SHOWN))
    return "\n".join(lines)


def _counted(finished: int, people: int) -> str:
    """'9/20 (45%)'; '0/0 (0%)' for a unit nobody had joined yet."""
    return f"{finished}/{people} ({share(finished, people) if people else '0%'})"


def register(registry: Registry) -> None:
    registry.add_command("xephang", "Bảng thi đua giữa các tổ chức, thôn/xóm", on_rankings_command)
    # Names no one: safe from any old message. The list checks access (and audits a refusal) itself.
    registry.add_action("xh", on_rankings, anywhere=True)
    registry.add_action("xhds", on_honours, anywhere=True)
    registry.add_prefetch("rankings", prefetch_rankings)
    registry.add_prefetch("honours", prefetch_honours)
