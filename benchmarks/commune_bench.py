"""Figures for leaders on a commune-sized SQLite database: /thongke latency, and residents' turns beside it.

    .venv/bin/python -m benchmarks.commune_bench [--people 30000 --households 10000 --organisations 20
        --answers 1000000 --residents 50 --rate 40 --seconds 20 --leaders 10 --db PATH --keep]

The requirement (issue 9): on a commune of 30,000 people, 10,000 households, 20 organisations and
1,000,000 answers, on SQLite, /thongke for a 2,000-member organisation answers in under 300 ms; while ten
leaders ask for figures at once, the p99 of ordinary residents' turns stays under twice its value
without them.

1. Generate the database with `benchmarks/generate_commune.generate` (migrated by `storage.migrate`, filled
   with plain sqlite3; organisations with one of exactly 2,000 members, exactly `--answers` answers; see
   that module). A file given with `--db` that holds a database of the same sizes (its `PRAGMA
   user_version` names them and the generator's version) is reused as it is.
2. Measure A: a leader of the 2,000-member organisation (role given by an invitation and `/ma`, as in
   chat) sends /thongke 2 + 20 times, alone; `Dispatcher.handle` is timed end to end (prefetch: count on
   the read thread, chart on a worker thread; then the turn). The same for the head of the largest
   village and for commune staff (no target for those two).
3. Measure B: `--residents` registered residents send `--rate` turns per second in total (open loop:
   each turn starts at its scheduled time; a chat whose previous turn is still running waits for it, as
   one Telegram chat is answered in order). Each resident acts on the buttons of its last answer, as a
   person would: lesson list, lesson cards, quiz answers, result, now and then /tiendo or "menu".
   Phases alternate, `--rounds` times: residents alone, then residents while `--leaders` leaders of
   different organisations and villages send /thongke back to back for the whole phase.
Latency is the time from the `handle()` call to its return; "from schedule" adds the wait for the chat's
own previous turn and any lateness of the scheduler (a blocked event loop). Results are printed as JSON
and as Markdown tables, with the exact command.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import gc
import io
import json
import math
import os
import platform
import pstats
import random
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks.generate_commune import CHANNEL, Sizes, external_id, generate, marker_of, row_counts
from bot.app import build_services, process_renderer, warm_renderer
from bot.cli import run_event_loop
from bot.settings import Settings
from content.loader import Catalog, load_catalog
from handlers import texts, unit_figures
from handlers.context import Services
from handlers.core import Incoming, Kind, Reply
from handlers.dispatcher import Dispatcher
from storage import access

TARGET_MS = 300.0
TARGET_RATIO = 2.0


def percentile(ordered: list[float], share: float) -> float:
    """Nearest rank, as benchmarks/telegram_bench.py reports it."""
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


def summary_ms(seconds: list[float]) -> dict[str, float]:
    if not seconds:
        return {"n": 0}
    ordered = sorted(seconds)
    return {"n": len(ordered), "min": round(ordered[0] * 1000, 1),
            "p50": round(statistics.median(ordered) * 1000, 1), "p95": round(percentile(ordered, 0.95) * 1000, 1),
            "p99": round(percentile(ordered, 0.99) * 1000, 1), "max": round(ordered[-1] * 1000, 1)}


# --- instruments: where the time of /thongke goes ------------------------------------------------

@dataclass
class Probe:
    """Timings of the parts of /thongke's prefetch, in the order they happen; drained per measurement."""

    counts: list[tuple[float, float]] = field(default_factory=list)  # (wall, thread CPU) of the counting
    charts: list[tuple[float, float]] = field(default_factory=list)  # (wall, thread CPU) of the chart
    prefetches: list[float] = field(default_factory=list)  # the whole prefetch, on the loop
    lock: threading.Lock = field(default_factory=threading.Lock)

    def drain(self) -> tuple[list[tuple[float, float]], list[tuple[float, float]], list[float]]:
        with self.lock:
            taken = (self.counts, self.charts, self.prefetches)
            self.counts, self.charts, self.prefetches = [], [], []
        return taken


def instrument(dispatcher: Dispatcher, probe: Probe, *, chart_here: bool = True) -> None:
    """Wrap (in this process only) the counting, the chart and the prefetch of /thongke with timers.

    The handler asks for the prefetch (NeedsPrefetch): the turn runs once, stops, the prefetch counts and
    draws, and the turn runs again; "turns" below is the total minus the prefetch.
    """
    count, chart = unit_figures._count, unit_figures._chart

    def timed(work: Callable[..., Any], into: str) -> Callable[..., Any]:
        def run(*args: Any) -> Any:
            wall, cpu = time.perf_counter(), time.thread_time()
            try:
                return work(*args)
            finally:
                with probe.lock:
                    getattr(probe, into).append((time.perf_counter() - wall, time.thread_time() - cpu))
        return run

    unit_figures._count = timed(count, "counts")  # type: ignore[assignment]
    if chart_here:  # a chart drawn in the renderer process cannot be wrapped (it is sent there by name)
        unit_figures._chart = timed(chart, "charts")  # type: ignore[assignment]
    # The prefetch is found by what it is, not by the name it is registered under.
    keys = [key for key, prefetch in dispatcher.registry.prefetchers.items()
            if prefetch is unit_figures.prefetch_figures]
    if not keys:
        raise RuntimeError("no prefetch of /thongke's figures in the registry")
    for key in keys:
        prefetch = dispatcher.registry.prefetchers[key]

        async def timed_prefetch(*args: Any, _prefetch: Callable[..., Awaitable[Any]] = prefetch) -> Any:
            started = time.perf_counter()
            try:
                return await _prefetch(*args)
            finally:
                probe.prefetches.append(time.perf_counter() - started)

        dispatcher.registry.prefetchers[key] = timed_prefetch


# --- diagnostic variants (stand-ins in this process only, never the product's behaviour) -------------

VARIANTS = {
    "no-chart": "a fixed 100-byte PNG instead of the chart (what the counting alone costs)",
    "cached-count": "each unit counted once, then its figures reused (what the chart alone costs)",
    "one-chart": "charts drawn one at a time (a lock around the chart)",
    "chart-process": "charts drawn in one separate process (a ProcessPoolExecutor of one worker)",
    "chart-thread": "no renderer process: charts drawn on the default thread pool (hocvuso before the fix)",
    "gc-freeze": "gc.freeze() before the warm-up: start-up objects leave the garbage collector's generations",
}
_ORIGINAL_CHART = unit_figures._chart
_STUB_PNG = b"\x89PNG\r\n\x1a\n" + bytes(92)


def _draw_in_worker(title: str, counted: Any) -> bytes:
    """The chart, in the chart process of the chart-process variant (picklable by reference)."""
    return _ORIGINAL_CHART(title, counted)


def apply_variants(names: list[str]) -> None:
    """Replace the counting or the chart before `instrument` wraps them (see VARIANTS)."""
    if "no-chart" in names:
        unit_figures._chart = lambda title, counted: _STUB_PNG  # type: ignore[assignment]
    if "cached-count" in names:
        count, counted = unit_figures._count, {}

        def cached(connection: Any, unit: Any, *rest: Any) -> Any:
            if unit not in counted:
                counted[unit] = count(connection, unit, *rest)
            return counted[unit]

        unit_figures._count = cached  # type: ignore[assignment]
    if "one-chart" in names:
        chart, gate = unit_figures._chart, threading.Lock()

        def one_at_a_time(title: str, counted: Any) -> bytes:
            with gate:
                return chart(title, counted)

        unit_figures._chart = one_at_a_time  # type: ignore[assignment]
    if "chart-process" in names:
        import multiprocessing

        # spawn: the worker starts clean (no copy of this process's threads and locks), imports matplotlib once.
        pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))

        def in_process(title: str, counted: Any) -> bytes:
            return pool.submit(_draw_in_worker, title, counted).result()

        unit_figures._chart = in_process  # type: ignore[assignment]


@dataclass
class Collections:
    """How long the garbage collector stopped the process, by generation (gc.callbacks)."""

    pauses: list[tuple[int, float]] = field(default_factory=list)
    _started: dict[int, float] = field(default_factory=dict)

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        thread = threading.get_ident()
        if phase == "start":
            self._started[thread] = time.perf_counter()
        elif thread in self._started:
            self.pauses.append((info["generation"], time.perf_counter() - self._started.pop(thread)))

    def drain(self) -> list[tuple[int, float]]:
        taken, self.pauses = self.pauses, []
        return taken


COLLECTIONS = Collections()


# --- chats ------------------------------------------------------------------------------------

class Keys:
    """Delivery keys, unique across runs on a kept database (each turn is marked processed, as on Telegram)."""

    def __init__(self) -> None:
        self.run = f"{time.time_ns():x}"
        self.number = 0

    def __call__(self) -> str:
        self.number += 1
        return f"bench-{self.run}-{self.number}"


@dataclass
class Chat:
    dispatcher: Dispatcher
    user_id: str
    keys: Keys
    replies: list[Reply] = field(default_factory=list)

    async def send(self, kind: Kind, text: str) -> float:
        incoming = (Incoming(CHANNEL, self.user_id, kind, text, delivery_key=self.keys()) if kind is Kind.ACTION
                    else Incoming.from_text(CHANNEL, self.user_id, text, delivery_key=self.keys()))
        started = time.perf_counter()
        self.replies = await self.dispatcher.handle(incoming)
        return time.perf_counter() - started

    @property
    def text(self) -> str:
        return "\n".join(reply.text for reply in self.replies)

    @property
    def buttons(self) -> list[tuple[str, str]]:
        with_buttons = [reply for reply in self.replies if reply.buttons]
        if not with_buttons:
            return []
        return [(button.label, button.action) for row in with_buttons[-1].buttons for button in row]

    def figures_ok(self) -> bool:
        last = self.replies[-1] if self.replies else None
        if self.replies and self.replies[0].text.startswith("📑"):  # /baocao: the chart, the XLSX, the DOCX
            return len([reply for reply in self.replies if reply.attachment is not None]) == 3
        return (last is not None and last.text.startswith(("📊", "🏡")) and last.attachment is not None
                and last.attachment.data.startswith(b"\x89PNG"))


@dataclass
class Resident:
    """A registered resident who acts on the buttons of the last answer, as a person would."""

    chat: Chat
    rng: random.Random
    catalog: Catalog
    lesson: str | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def next_message(self) -> tuple[Kind, str, str]:
        """(kind, text, what it is) of the next thing this person sends."""
        rng, buttons = self.rng, self.chat.buttons
        actions = [action for _, action in buttons]
        draw = rng.random()
        if draw < 0.04:
            return Kind.COMMAND, "/tiendo", "/tiendo"
        if draw < 0.07:
            return Kind.TEXT, "menu", "menu"
        answers = [action for action in actions if action.startswith(("qa:", "rv:"))]
        if answers:
            return Kind.ACTION, self._answer(answers), "quiz answer"
        if "card:next" in actions:
            return (Kind.ACTION, "card:next", "next card") if rng.random() < 0.95 else (Kind.ACTION, "hoc", "list")
        following = [action for label, action in buttons if action.startswith("lesson:") and label.startswith("▶️")]
        quiz = [action for action in actions if action.startswith("quiz:start:")]
        if following and rng.random() < 0.8:
            return self._open(following[0])
        if quiz:
            return Kind.ACTION, quiz[0], "start quiz"
        if "review:start" in actions and rng.random() < 0.2:
            return Kind.ACTION, "review:start", "review"
        lessons = [(label, action) for label, action in buttons if action.startswith("lesson:")]
        if lessons:
            open_ones = [action for label, action in lessons if not label.startswith("✅")]
            return self._open(open_ones[0] if open_ones and rng.random() < 0.8 else rng.choice(lessons)[1])
        if "hoc" in actions:
            return Kind.ACTION, "hoc", "list"
        return Kind.COMMAND, "/hoc", "/hoc"

    def _open(self, action: str) -> tuple[Kind, str, str]:
        self.lesson = action.partition(":")[2]
        return Kind.ACTION, action, "open lesson"

    def _answer(self, options: list[str]) -> str:
        """The right option three times in four (when the lesson is known), else any."""
        prefix, question_id, _ = options[0].split(":", 2)
        lesson = self.catalog.lesson(self.lesson or "") if prefix == "qa" else None
        question = lesson.question(question_id) if lesson is not None else None
        if question is not None and self.rng.random() < 0.75:
            return f"qa:{question_id}:{question.correct_index}"
        return self.rng.choice(options)


@dataclass
class Phase:
    name: str
    round: int
    turns: list[float] = field(default_factory=list)  # handle() latency
    from_schedule: list[float] = field(default_factory=list)
    kinds: dict[str, int] = field(default_factory=dict)
    failures: int = 0
    waited_for_chat: int = 0
    leader_turns: list[float] = field(default_factory=list)
    leader_failures: int = 0
    loop_lag: list[float] = field(default_factory=list)
    seconds: float = 0.0
    process_cpu: float = 0.0
    loop_cpu: float = 0.0
    others_cpu: float = 0.0
    counts: list[tuple[float, float]] = field(default_factory=list)
    charts: list[tuple[float, float]] = field(default_factory=list)
    prefetches: list[float] = field(default_factory=list)
    collections: list[tuple[int, float]] = field(default_factory=list)

    def report(self) -> dict[str, Any]:
        result: dict[str, Any] = {
            "phase": self.name, "round": self.round, "residents_ms": summary_ms(self.turns),
            "residents_from_schedule_ms": summary_ms(self.from_schedule), "turn_kinds": self.kinds,
            "failed_turns": self.failures, "turns_that_waited_for_their_chat": self.waited_for_chat,
            "loop_lag_ms": summary_ms(self.loop_lag), "seconds": round(self.seconds, 2),
            "process_cpu_s": round(self.process_cpu, 2), "loop_thread_cpu_s": round(self.loop_cpu, 2),
            "other_processes_cpu_s": round(self.others_cpu, 2),
            "gc_full_collections_ms": summary_ms([pause for generation, pause in self.collections if generation == 2]),
            "gc_young_collections_ms": summary_ms([pause for generation, pause in self.collections if generation < 2]),
        }
        if self.name == "with":
            result["leaders_ms"] = summary_ms(self.leader_turns)
            result["leaders_failed"] = self.leader_failures
            result["leaders_count_ms"] = summary_ms([wall for wall, _ in self.counts])
            result["leaders_count_cpu_ms"] = summary_ms([cpu for _, cpu in self.counts])
            result["leaders_chart_ms"] = summary_ms([wall for wall, _ in self.charts])
            result["leaders_chart_cpu_ms"] = summary_ms([cpu for _, cpu in self.charts])
            result["leaders_prefetch_ms"] = summary_ms(self.prefetches)
        return result


def process_cpu() -> float:
    times = os.times()
    return times.user + times.system


def machine_cpu() -> float:
    """CPU seconds every process of the machine has used (Linux /proc/stat), to see other people's load."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return math.nan
    busy = sum(int(value) for index, value in enumerate(fields) if index not in (3, 4))  # all but idle, iowait
    return busy / os.sysconf("SC_CLK_TCK")


# --- the benchmark --------------------------------------------------------------------------------

@dataclass
class Cast:
    """Who plays whom: chats for the leaders of each unit, staff, and residents."""

    org_leader: dict[int, str]
    village_head: dict[int, str]
    staff: str
    residents: list[str]
    organisations: list[tuple[int, str, int]]  # id, name, members, the largest first
    villages: list[tuple[int, str, int]]  # id, name, people, the largest first


def cast(path: Path, residents: int, seed: int) -> Cast:
    """Stable choices on one database: the same person plays the same role in every run."""
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        organisations = connection.execute(
            "SELECT o.id, o.name, count(m.id) FROM organisation o LEFT JOIN membership m ON m.organisation_id = o.id "
            "GROUP BY o.id ORDER BY count(m.id) DESC, o.id").fetchall()
        villages = connection.execute(
            "SELECT v.id, v.name, count(p.id) FROM village v LEFT JOIN person p ON p.village_id = v.id "
            "GROUP BY v.id ORDER BY count(p.id) DESC, v.id").fetchall()
        # Leaders and staff are no household heads, so each has exactly one unit (/thongke needs no choice).
        candidates = [row[0] for row in connection.execute(
            "SELECT id FROM person WHERE is_household_head = 0 ORDER BY id")]
        everyone = [row[0] for row in connection.execute("SELECT id FROM person ORDER BY id")]
    finally:
        connection.close()
    staff = candidates[0]
    village_head = {village_id: external_id(candidates[index]) for index, (village_id, _, _) in
                    enumerate(sorted(villages), start=1)}
    org_leader = {organisation_id: external_id(candidates[index]) for index, (organisation_id, _, _) in
                  enumerate(sorted(organisations), start=1 + len(villages))}
    taken = set(candidates[:1 + len(villages) + len(organisations)])
    people = random.Random(seed).sample([person for person in everyone if person not in taken], residents)
    return Cast(org_leader, village_head, external_id(staff), [external_id(p) for p in people],
                organisations, villages)


async def give_role(services: Services, chat: Chat, role: str, *, organisation_id: int | None = None,
                    village_id: int | None = None) -> None:
    """An invitation made as an operator would, redeemed in the chat with /ma (a role held stays one)."""
    async with services.database.session() as session:
        code = await access.create_invite(session, role=role, now=services.clock(), expires_in=timedelta(days=1),
                                          rng=services.random, organisation_id=organisation_id,
                                          village_id=village_id)
    await chat.send(Kind.COMMAND, f"/ma {code}")
    if "Bạn đã nhận vai trò" not in chat.text:
        raise RuntimeError(f"/ma did not give the role {role}: {chat.text[:200]}")


async def measure_alone(chat: Chat, label: str, probe: Probe, repeats: int, warm: int) -> dict[str, Any]:
    """/thongke `warm` + `repeats` times, nothing else running; the parts of each from the probe."""
    for _ in range(warm):
        await chat.send(Kind.COMMAND, "/thongke")
        if not chat.figures_ok():
            raise RuntimeError(f"{label}: /thongke gave no figures: {chat.text[:300]}")
    probe.drain()
    seconds = []
    for _ in range(repeats):
        seconds.append(await chat.send(Kind.COMMAND, "/thongke"))
        if not chat.figures_ok():
            raise RuntimeError(f"{label}: /thongke gave no figures: {chat.text[:300]}")
    counts, charts, prefetches = probe.drain()
    turn = [total - prefetch for total, prefetch in zip(seconds, prefetches, strict=True)]
    return {
        "who": label, "total_ms": summary_ms(seconds),
        "count_ms": summary_ms([wall for wall, _ in counts]), "chart_ms": summary_ms([wall for wall, _ in charts]),
        "prefetch_ms": summary_ms(prefetches), "turns_ms": summary_ms(turn),
        "first_line": chat.text.splitlines()[0],
    }


async def loop_lag(stop: asyncio.Event, into: list[float], every: float = 0.005) -> None:
    """How late the event loop wakes a 5 ms sleep: time the loop could not run anything."""
    while not stop.is_set():
        started = time.perf_counter()
        await asyncio.sleep(every)
        into.append(max(0.0, time.perf_counter() - started - every))


async def run_phase(phase: Phase, residents: list[Resident], leaders: list[Chat], rate: float, seconds: float,
                    probe: Probe, profiler: cProfile.Profile | None, command: str = "/thongke",
                    fresh: Callable[[], None] = lambda: None) -> None:
    """Residents' turns at `rate` per second (open loop), with leaders sending `command` back to back
    (`fresh` before each: /baocao would otherwise reuse the report it made a moment ago)."""
    stop = asyncio.Event()
    lag = asyncio.create_task(loop_lag(stop, phase.loop_lag))
    probe.drain()
    COLLECTIONS.drain()
    cpu, loop_cpu, machine, started = process_cpu(), time.thread_time(), machine_cpu(), time.perf_counter()
    end = started + seconds
    if profiler is not None:
        profiler.enable()

    async def leader_loop(chat: Chat) -> None:
        while time.perf_counter() < end:
            fresh()
            phase.leader_turns.append(await chat.send(Kind.COMMAND, command))
            if not chat.figures_ok():
                phase.leader_failures += 1

    async def turn(resident: Resident, scheduled: float) -> None:
        if resident.lock.locked():
            phase.waited_for_chat += 1
        async with resident.lock:  # one chat is answered in order
            kind, text, what = resident.next_message()
            latency = await resident.chat.send(kind, text)
        phase.turns.append(latency)
        phase.from_schedule.append(time.perf_counter() - scheduled)
        phase.kinds[what] = phase.kinds.get(what, 0) + 1
        if not resident.chat.replies or resident.chat.replies[0].text == texts.SORRY:
            phase.failures += 1

    leader_tasks = [asyncio.create_task(leader_loop(chat)) for chat in leaders]
    tasks = []
    total = int(rate * seconds)
    for number in range(total):
        scheduled = started + number / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)  # the offered load is paced: that is the point of an open loop
        tasks.append(asyncio.create_task(turn(residents[number % len(residents)], scheduled)))
    await asyncio.gather(*tasks, *leader_tasks)
    if profiler is not None:
        profiler.disable()
    phase.seconds = time.perf_counter() - started
    phase.process_cpu = process_cpu() - cpu
    phase.loop_cpu = time.thread_time() - loop_cpu
    phase.others_cpu = max(0.0, machine_cpu() - machine - phase.process_cpu)
    stop.set()
    await lag
    phase.counts, phase.charts, phase.prefetches = probe.drain()
    phase.collections = COLLECTIONS.drain()


async def bench(path: Path, options: argparse.Namespace, catalog: Catalog) -> dict[str, Any]:
    settings = Settings(_env_file=None, database_url=f"sqlite+aiosqlite:///{path}")
    # As `hocvuso run` does: charts and files are drawn in a renderer process (bot/app.process_renderer),
    # unless a diagnostic variant draws them in this process.
    in_this_process = bool(set(options.variant) & {"no-chart", "one-chart", "chart-process", "chart-thread"})
    renderer = None if in_this_process else process_renderer()
    services = await build_services(settings, renderer=renderer)
    if renderer is not None:
        await asyncio.wrap_future(renderer.submit(warm_renderer))  # matplotlib loaded before anything is timed
    dispatcher = Dispatcher(services)
    probe = Probe()
    apply_variants(options.variant)
    instrument(dispatcher, probe, chart_here=renderer is None)
    gc.callbacks.append(COLLECTIONS)
    keys = Keys()
    roles = cast(path, options.residents, options.seed)
    try:
        # --- A: one /thongke at a time ---
        big_id, big_name, big_members = roles.organisations[0]
        village_id, village_name, village_people = roles.villages[0]
        leader = Chat(dispatcher, roles.org_leader[big_id], keys)
        await give_role(services, leader, "leader", organisation_id=big_id)
        head = Chat(dispatcher, roles.village_head[village_id], keys)
        await give_role(services, head, "village_head", village_id=village_id)
        staff = Chat(dispatcher, roles.staff, keys)
        await give_role(services, staff, "staff")
        alone = [
            await measure_alone(leader, f"leader of {big_name} ({big_members} members)", probe, options.repeats, 2),
            await measure_alone(head, f"head of {village_name} ({village_people} people)", probe, options.repeats, 2),
            await measure_alone(staff, "staff (the commune)", probe, options.repeats, 2),
        ]
        for result in alone:
            print(f"A {result['who']}: {result['total_ms']}", file=sys.stderr)

        # --- B: residents, without and with leaders ---
        units: list[tuple[str, int, str, int]] = []  # (role, unit id, name, size), alternating, largest first
        for index in range(max(len(roles.organisations), len(roles.villages))):
            if index < len(roles.organisations):
                units.append(("leader", *roles.organisations[index]))
            if index < len(roles.villages):
                units.append(("village_head", *roles.villages[index]))
        leaders = []
        command = "/baocao" if options.report else "/thongke"
        for role, unit_id, _name, _size in ([] if options.report else units[:options.leaders]):
            table = roles.org_leader if role == "leader" else roles.village_head
            chat = Chat(dispatcher, table[unit_id], keys)
            await give_role(services, chat, role, **({"organisation_id": unit_id} if role == "leader"
                                                     else {"village_id": unit_id}))
            await chat.send(Kind.COMMAND, "/thongke")
            if not chat.figures_ok():
                raise RuntimeError(f"leader {role} {unit_id}: no figures: {chat.text[:300]}")
            leaders.append(chat)
        if options.report:  # one member of staff: the commune's whole report, again and again
            await staff.send(Kind.COMMAND, "/baocao")
            if not staff.figures_ok():
                raise RuntimeError(f"staff: no report: {staff.text[:300]}")
            leaders.append(staff)
        rng = random.Random(options.seed + 1)
        residents = [Resident(Chat(dispatcher, user_id, keys), random.Random(rng.random()), catalog)
                     for user_id in roles.residents]
        for resident in residents:
            await resident.chat.send(Kind.COMMAND, "/hoc")
        if "gc-freeze" in options.variant:
            gc.freeze()
        warm = Phase("warm-up", 0)
        await run_phase(warm, residents, [], options.rate, options.warmup, probe, None)
        print(f"warm-up: {warm.report()['residents_ms']}", file=sys.stderr)
        profilers = {"without": cProfile.Profile(), "with": cProfile.Profile()} if options.profile else {}
        phases = []
        for number in range(1, options.rounds + 1):
            for name in ("without", "with"):
                phase = Phase(name, number)
                await run_phase(phase, residents, leaders if name == "with" else [], options.rate, options.seconds,
                                probe, profilers.get(name), command, services.recent_files.clear)
                report = phase.report()
                print(f"B round {number} {name}: residents {report['residents_ms']}"
                      + (f", leaders {report['leaders_ms']}" if name == "with" else ""), file=sys.stderr)
                phases.append(phase)
                await asyncio.sleep(1.0)
        for name, profiler in profilers.items():
            dump_profile(profiler, f"{options.profile}.{name}", name)
    finally:
        await services.database.dispose()
        if renderer is not None:
            renderer.shutdown()
    without = [t for phase in phases if phase.name == "without" for t in phase.turns]
    with_leaders = [t for phase in phases if phase.name == "with" for t in phase.turns]
    ratios = []
    for number in range(1, options.rounds + 1):
        pair = {phase.name: summary_ms(phase.turns)["p99"] for phase in phases if phase.round == number}
        ratios.append(round(pair["with"] / pair["without"], 2))
    pooled_ratio = round(summary_ms(with_leaders)["p99"] / summary_ms(without)["p99"], 2)
    return {
        "alone": alone,
        "leaders": (["staff: /baocao of the commune"] if options.report
                    else [f"{role} {name} ({size})" for role, _, name, size in units[:options.leaders]]),
        "phases": [phase.report() for phase in phases], "ratio_by_round": ratios,
        "pooled": {"without_ms": summary_ms(without), "with_ms": summary_ms(with_leaders), "ratio": pooled_ratio},
    }


def dump_profile(profiler: cProfile.Profile, path: str, name: str) -> None:
    profiler.dump_stats(path)
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(25)
    print(f"cProfile of the event loop's thread, phases {name} leaders ({path}):\n{out.getvalue()}", file=sys.stderr)


# --- results ------------------------------------------------------------------------------------

def markdown(report: dict[str, Any]) -> str:
    lines = [f"| /thongke, alone (n = {report['repeats']}) | min ms | median ms | p95 ms | max ms | "
             "count ms (median) | chart ms (median) | turns outside the prefetch ms (median) | target |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for index, result in enumerate(report["results"]["alone"]):
        total = result["total_ms"]
        target = "—"
        if index == 0:
            met = total["max"] < TARGET_MS
            target = f"< {TARGET_MS:.0f} ms: {'met' if met else 'not met'}"
        lines.append(f"| {result['who']} | {total['min']} | {total['p50']} | {total['p95']} | {total['max']} | "
                     f"{result['count_ms']['p50']} | {result['chart_ms'].get('p50', 'other process')} | "
                     f"{result['turns_ms']['p50']} | {target} |")
    lines += ["", "| round | leaders | resident turns | p50 ms | p95 ms | p99 ms | max ms | p99 from schedule ms | "
              "loop lag p99 ms | leaders' /thongke n | their median ms | their p95 ms | CPU s (loop thread) | "
              "other processes' CPU s | full GCs: n, max ms |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for phase in report["results"]["phases"]:
        r, leaders, full = phase["residents_ms"], phase.get("leaders_ms", {}), phase["gc_full_collections_ms"]
        lines.append(
            f"| {phase['round']} | {'yes' if phase['phase'] == 'with' else 'no'} | {r['n']} | {r['p50']} | "
            f"{r['p95']} | {r['p99']} | {r['max']} | {phase['residents_from_schedule_ms']['p99']} | "
            f"{phase['loop_lag_ms'].get('p99', '–')} | {leaders.get('n', '–')} | {leaders.get('p50', '–')} | "
            f"{leaders.get('p95', '–')} | {phase['process_cpu_s']} ({phase['loop_thread_cpu_s']}) | "
            f"{phase['other_processes_cpu_s']} | {full['n']}, {full.get('max', '–')} |")
    pooled = report["results"]["pooled"]
    ratios = ", ".join(str(ratio) for ratio in report["results"]["ratio_by_round"])
    met = all(ratio <= TARGET_RATIO for ratio in [pooled["ratio"], *report["results"]["ratio_by_round"]])
    lines += ["", f"p99 with leaders / p99 without, by round: {ratios}; pooled: {pooled['ratio']} "
              f"({pooled['with_ms']['p99']} / {pooled['without_ms']['p99']} ms); target ≤ {TARGET_RATIO}: "
              f"{'met' if met else 'not met'}"]
    if report["variant"]:
        lines.append(f"diagnostic variant: {', '.join(report['variant'])} (not the product's behaviour)")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=30_000)
    parser.add_argument("--households", type=int, default=10_000)
    parser.add_argument("--organisations", type=int, default=20)
    parser.add_argument("--answers", type=int, default=1_000_000)
    parser.add_argument("--activity", type=int, default=300_000, help="activity rows (benchmarks/generate_commune.py)")
    parser.add_argument("--villages", type=int, default=10)
    parser.add_argument("--big-organisation", type=int, default=2_000, help="members of the largest organisation")
    parser.add_argument("--residents", type=int, default=50)
    parser.add_argument("--rate", type=float, default=40.0, help="residents' turns per second, all together")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each phase")
    parser.add_argument("--rounds", type=int, default=2, help="pairs of phases (without, with leaders)")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of residents alone before the phases")
    parser.add_argument("--leaders", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=20, help="timed /thongke per viewer in measure A")
    parser.add_argument("--report", action="store_true",
                        help="in B, one member of staff builds the commune's yearly report (/baocao) back to back "
                             "instead of the leaders' /thongke (issue 10)")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--db", type=Path, help="the SQLite file: reused when it holds this commune, else made")
    parser.add_argument("--keep", action="store_true", help="keep the generated file (a --db file is always kept)")
    parser.add_argument("--variant", default="", help="diagnosis only, comma-separated: " + "; ".join(
        f"{name}: {what}" for name, what in VARIANTS.items()))
    parser.add_argument("--profile", help="cProfile the loop's thread into PROFILE.without and PROFILE.with")
    options = parser.parse_args()
    options.variant = [name for name in options.variant.split(",") if name]
    unknown = set(options.variant) - set(VARIANTS)
    if unknown:
        parser.error(f"unknown --variant {', '.join(sorted(unknown))}; known: {', '.join(VARIANTS)}")
    if options.big_organisation > options.people:
        parser.error("--big-organisation cannot exceed --people")
    sizes = Sizes(options.people, options.households, options.organisations, options.answers, options.activity,
                  options.villages, options.big_organisation, options.seed)
    catalog = load_catalog()
    folder = None
    if options.db is None:
        folder = tempfile.mkdtemp(prefix="commune-bench-")
        path = Path(folder) / "commune.db"
    else:
        path = options.db.resolve()
    generated_in = None
    try:
        if marker_of(path) == sizes.marker:
            print(f"reusing {path}", file=sys.stderr)
        else:
            if path.exists():
                raise SystemExit(f"{path} exists and holds no commune of these sizes; give another --db")
            started = time.perf_counter()
            generate(path, sizes, catalog, datetime.now(UTC))
            generated_in = round(time.perf_counter() - started, 1)
            print(f"generated {path} in {generated_in} s", file=sys.stderr)
        counts = row_counts(path)
        print(f"rows: {counts}", file=sys.stderr)
        results: dict[str, Any] = {}

        async def run() -> None:
            results.update(await bench(path, options, catalog))

        run_event_loop(run())
    finally:
        if folder is not None and not options.keep:
            for suffix in ("", "-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    Path(f"{path}{suffix}").unlink()
            with contextlib.suppress(OSError):
                os.rmdir(folder)
        elif folder is not None:
            print(f"kept {path}", file=sys.stderr)
    report = {
        "command": " ".join([".venv/bin/python -m benchmarks.commune_bench", *sys.argv[1:]]),
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
                   f"SQLite {sqlite3.sqlite_version}",
        "database": str(path), "generated_in_s": generated_in, "rows": counts, "repeats": options.repeats,
        "residents": options.residents, "rate": options.rate, "seconds": options.seconds,
        "leaders": options.leaders, "variant": options.variant, "results": results,
    }
    print(json.dumps(report, indent=2, ensure_ascii=False))
    print(markdown(report))
    print(f"\ncommand: {report['command']}")


if __name__ == "__main__":
    main()
