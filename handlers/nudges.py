"""Learner nudges: a short encouragement to someone who started the core course and stopped.

`enqueue_nudges` runs hourly (the runtime calls it). It stores one outbox row per person due, never
outside 07:00-21:00 in the commune's zone and at most one a week; each row expires at 21:00 that
day, so a backlog never lands in the quiet hours. The message opens the next lesson ("lesson:ID",
the lesson list's own action) and has a one-tap opt-out; /caidat switches nudges off and on.
"""

from __future__ import annotations

import logging
from datetime import datetime, time, timedelta
from typing import Any

from handlers.context import Services, Turn
from handlers.core import Keyboard, Reply, to_payload
from handlers.home import show_main_menu
from handlers.registration import show_settings
from handlers.registry import Registry, Replies
from storage import announcements as store
from storage.announcements import NudgeCandidate

log = logging.getLogger(__name__)

DAY_STARTS = 7  # no nudge before 07:00 ...
DAY_ENDS = 21  # ... nor from 21:00 on, in the commune's zone
EVERY = timedelta(days=7)  # at most one nudge a week
BATCH = 500  # nudges stored per transaction

NUDGE = (
    "👋 Chào bạn! Mấy hôm nay chưa thấy bạn vào học.\n"
    "Bạn đã xong {done}/{total} bài. Bài tiếp theo: «{lesson}», chỉ vài phút thôi.\n"
    "Mình học tiếp nhé? 💪"
)
BTN_CONTINUE = "▶️ Học tiếp"
BTN_STOP = "🔕 Tắt nhắc học"
TURNED_OFF = "🔕 Đã tắt nhắc học. Muốn bật lại, bạn vào /caidat."
TURNED_ON = "🔔 Đã bật nhắc học: khi bạn tạm nghỉ học vài hôm, mình sẽ nhắn nhẹ một tin."
NOT_REGISTERED = "Bạn chưa đăng ký lưu tiến độ nên mình không nhắn nhắc học cho bạn."


# --- enqueueing (called by the runtime) -------------------------------------------------------------

def quiet(services: Services, now: datetime) -> bool:
    """Whether `now` is in the quiet hours (21:00-07:00 in the commune's zone)."""
    return not DAY_STARTS <= now.astimezone(services.config.zone).hour < DAY_ENDS


def day_end(services: Services, now: datetime) -> datetime:
    """21:00 today in the commune's zone: a nudge not sent by then is dropped, never sent at night."""
    local = now.astimezone(services.config.zone)
    return datetime.combine(local.date(), time(DAY_ENDS), tzinfo=services.config.zone)


async def enqueue_nudges(services: Services, now: datetime) -> int:
    """Store a nudge for every person due now; returns how many were stored (0 in the quiet hours)."""
    if quiet(services, now):
        return 0
    core = services.core_lessons(now)
    idle = timedelta(days=services.config.nudge_after_days)
    # A long read off the event loop (on SQLite a turn would otherwise wait behind it); someone who
    # comes back meanwhile gets at most one friendly message too many.
    candidates = await services.database.read(
        lambda connection: store.nudge_candidates(connection, core, idle_since=now - idle,
                                                  nudged_since=now - EVERY))
    expires = day_end(services, now)
    day = now.astimezone(services.config.zone).date().isoformat()
    rows = [row for row in (_row(services, candidate, now, expires, day) for candidate in candidates)
            if row is not None]
    stored = 0
    # Short transactions: on SQLite the chats' turns wait for each, so a first run that finds thousands
    # due lets them in between. A key stored before is skipped, so a crash half-way loses nothing.
    for start in range(0, len(rows), BATCH):
        async with services.database.session() as session:
            stored += await store.enqueue_many(session, rows[start:start + BATCH])
    log.info("nudges stored: %d of %d due", stored, len(candidates))  # counts only, never who
    return stored


def _row(services: Services, candidate: NudgeCandidate, now: datetime, expires: datetime,
         day: str) -> dict[str, Any] | None:
    lesson = services.catalog.lesson(candidate.next_lesson)
    if lesson is None:  # the content changed since the course was read: nothing sensible to offer
        return None
    total = len(services.core_lessons(now))
    text = NUDGE.format(done=candidate.done, total=total, lesson=lesson.title)
    keyboard = Keyboard().add(BTN_CONTINUE, f"lesson:{lesson.id}").add(BTN_STOP, "nhachoc:off")
    return {
        "key": f"nudge:{candidate.person_id}:{day}", "kind": "nudge", "channel": candidate.channel,
        "external_id": candidate.external_id, "person_id": candidate.person_id, "announcement_id": None,
        "payload": to_payload([Reply(text, keyboard.build())]), "status": "queued", "attempts": 0,
        "next_try_at": now, "expires_at": expires, "created_at": now,
    }


# --- the switch ---------------------------------------------------------------------------------------

async def on_switch(turn: Turn, argument: str) -> Replies:
    """nhachoc:off (the nudge's button), nhachoc:on|off:caidat (the /caidat row). Registered anywhere:
    it only sets the pressing person's own switch to the state the button names."""
    choice, _, origin = argument.partition(":")
    person = turn.person
    if person is None:
        return await show_main_menu(turn, NOT_REGISTERED)
    if choice not in {"on", "off"}:
        return await show_settings(turn)
    person.nudges_off = choice == "off"
    turn.session.add(person)
    done = TURNED_OFF if person.nudges_off else TURNED_ON
    if origin == "caidat":
        return await show_settings(turn, done)
    return await show_main_menu(turn, done)


def register(registry: Registry) -> None:
    registry.add_action("nhachoc", on_switch, anywhere=True)
