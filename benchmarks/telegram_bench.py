"""Many simulated residents over the fake Bot API servers: hocvuso against bare bots, Telegram and Zalo.

    .venv/bin/python -m benchmarks.telegram_bench [--residents 50] [--rate 100] [--bots echo,press,...]

Each bot runs as its own process, talking to the fake server in this process over 127.0.0.1:
- echo: benchmarks/echo_bot.py, a bare echo bot, the issue's baseline;
- press, press-32: benchmarks/press_bot.py, only the Bot API calls hocvuso's script requires (a press is
  acknowledged and its message edited), one update at a time and 32 at once (hocvuso's default);
- hocvuso: `hocvuso run`, long polling, a fresh SQLite file;
- zalo-bare: benchmarks/zalo_bare_bot.py over the fake Zalo Bot API (tests/fakes/zalo.py): hocvuso's own
  Zalo client and concurrency model, making the `sendMessage` calls hocvuso makes for each step of the
  script (counted and measured by a calibration run of hocvuso first), and nothing else;
- hocvuso-zalo: `hocvuso run` with only the Zalo token set, long polling, a fresh SQLite file; the same
  script, a choice typed as its number ("Gõ 2 → Thôn 2": "2"), as Zalo has no buttons.
Zalo's getUpdates gives one update per call: both Zalo bots share that bound.
Two runs each (all the bots' throughput runs first, then their latency runs):
- throughput: every resident sends its next message as soon as the previous answer arrived;
- latency at a fixed load: residents paced so that `--rate` updates per second arrive in total.
Latency is measured at the fake server: from the moment an update is offered to the moment the last
message of its answer reaches the server. Results are printed as JSON and as a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import functools
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from content.loader import load_catalog
from tests.fakes.telegram import TOKEN, FakeTelegram, FakeUser
from tests.fakes.zalo import TOKEN as ZALO_TOKEN
from tests.fakes.zalo import FakeZalo, ZaloResident, ZaloSent

ROOT = Path(__file__).resolve().parent.parent


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Measured:
    latencies: list[float] = field(default_factory=list)
    updates: int = 0
    seconds: float = 0.0
    bot_cpu_seconds: float = 0.0
    bench_cpu_seconds: float = 0.0  # this process: the fake server and the residents
    calls: dict[str, int] = field(default_factory=dict)  # Zalo: the calls the fake took, by method

    def summary(self) -> dict[str, float]:
        ordered = sorted(self.latencies)
        summary = {
            "updates": self.updates,
            "seconds": round(self.seconds, 3),
            "updates_per_second": round(self.updates / self.seconds, 1),
            "bot_cpu_ms_per_update": round(self.bot_cpu_seconds / self.updates * 1000, 2),
            "bot_cpu_share": round(self.bot_cpu_seconds / self.seconds, 2),
            "bench_cpu_share": round(self.bench_cpu_seconds / self.seconds, 2),
            "p50_ms": round(statistics.median(ordered) * 1000, 2),
            "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 2),
        }
        summary.update({f"{method}_per_update": round(count / self.updates, 3) for method, count in self.calls.items()})
        return summary


def resident_script() -> list[tuple[str, str, str]]:
    """(kind, what, expected text of the answer's last message): registration, lesson 1, quiz, progress."""
    lesson = load_catalog().ordered_lessons()[0]
    steps = [
        ("say", "/start", "Bạn có đồng ý không?"),
        ("data", "consent:yes", "họ và tên"),
        ("say", "Nguyễn Văn An", "thôn/xóm"),
        ("label", "Thôn 2", "nhóm nào"),
        ("label", "Người dân", "Hộ gia đình"),
        ("label", "Bỏ qua", "tổ chức nào"),
        ("label", "Xong", "VNeID"),
        ("label", "Chưa kích hoạt", "Đăng ký xong"),
        ("label", "Học bài đầu tiên", "(1/"),
    ]
    steps += [("label", "Tiếp", f"({n}/") for n in range(2, len(lesson.cards) + 1)]
    steps.append(("label", "Làm bài kiểm tra", "Câu 1/"))
    for number, question in enumerate(lesson.quiz, start=1):
        last = number == len(lesson.quiz)
        steps.append(("data", f"qa:{question.id}:{question.correct_index}",
                      "Bạn đã hoàn thành" if last else f"Câu {number + 1}/"))
    steps.append(("say", "/tiendo", "Tiến độ của bạn"))
    return steps


def calls_only_script(script: list[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    """hocvuso's script with the same texts and presses in the same order, for benchmarks/press_bot.py."""
    return [("say", f"tin nhắn {n:02d}", f"tin nhắn {n:02d}") if kind == "say" else
            ("data", f"bước {n:02d}", f"bước {n:02d}") for n, (kind, _what, _expect) in enumerate(script)]


Player = Callable[[str, str, str, Measured], Awaitable[None]]  # plays one step: kind, what, expect


async def play(user: FakeUser, kind: str, what: str, expect: str, measured: Measured) -> None:
    telegram = user.telegram
    if kind == "say":
        update_id = await telegram.user_sends(user.chat_id, what)
    elif kind == "label":
        update_id = await telegram.press(user.chat_id, what)
    else:
        update_id = await telegram.user_presses(user.chat_id, what)
    sent = await user.expect(expect, timeout=60)
    measured.latencies.append(sent.at - telegram.injected_at[update_id])
    measured.updates += 1


def telegram_players(telegram: FakeTelegram, first_chat: int) -> Callable[[int], Player]:
    return lambda index: functools.partial(play, FakeUser(telegram, first_chat + index))


async def drive(new_player: Callable[[int], Player], script: list[tuple[str, str, str]], residents: int,
                rate: float | None) -> Measured:
    """Run every resident through the script; paced to `rate` updates/s in total, or flat out."""
    measured = Measured()
    interval = residents / rate if rate else 0.0

    async def resident(index: int) -> None:
        player = new_player(index)
        if interval:
            await asyncio.sleep(interval * index / residents)  # spread the residents over one interval
        next_at = time.perf_counter()
        for kind, what, expect in script:
            if interval:
                delay = next_at - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)  # pacing the offered load is the point of this run
                next_at += interval
            await player(kind, what, expect, measured)

    started, cpu_started = time.perf_counter(), time.process_time()
    await asyncio.gather(*(resident(i) for i in range(residents)))
    measured.seconds = time.perf_counter() - started
    measured.bench_cpu_seconds = time.process_time() - cpu_started
    return measured


async def start_process(args: list[str], env: dict[str, str], fake: FakeTelegram | FakeZalo,
                        ) -> asyncio.subprocess.Process:
    process = await asyncio.create_subprocess_exec(
        sys.executable, *args, cwd=ROOT, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )
    polls_before = len(fake.methods_called("getUpdates"))
    waiting = asyncio.ensure_future(fake.wait_for(lambda: len(fake.methods_called("getUpdates")) > polls_before,
                                                  timeout=60))
    exited = asyncio.ensure_future(process.wait())
    await asyncio.wait({waiting, exited}, return_when=asyncio.FIRST_COMPLETED)
    if not waiting.done():  # it died before its first poll: say why
        waiting.cancel()
        assert process.stderr is not None
        raise RuntimeError(f"{' '.join(args)} exited ({process.returncode}): "
                           f"{(await process.stderr.read()).decode(errors='replace')[-3000:]}")
    exited.cancel()
    waiting.result()
    return process


async def stop_process(process: asyncio.subprocess.Process) -> None:
    process.terminate()
    await asyncio.wait_for(process.wait(), 30)


# --- Zalo -----------------------------------------------------------------------------------------

SETTLE = 0.3  # calibration: how long after an answer's expected message a later message still counts


class BenchZalo(FakeZalo):
    """The fake Zalo server, waking only the resident whose chat got a message: FakeZalo.wait_for wakes
    every waiter at every call, and with 50 residents this process would spend its CPU re-checking."""

    def __init__(self) -> None:
        super().__init__()
        self.chat_events: dict[str, asyncio.Event] = {}

    async def _record(self, sent: ZaloSent) -> dict[str, Any]:
        result = await super()._record(sent)
        event = self.chat_events.get(sent.chat_id)
        if event is not None:
            event.set()
        return result


class BenchResident(ZaloResident):
    zalo: BenchZalo

    async def expect(self, part: str, timeout: float = 60.0) -> ZaloSent:  # noqa: ASYNC109 (ZaloResident's)
        event = self.zalo.chat_events.setdefault(self.chat_id, asyncio.Event())
        sent = self._messages()
        deadline = time.perf_counter() + timeout
        while True:
            event.clear()
            for index in range(self.seen, len(sent)):
                if part in sent[index].text:
                    self.seen = index + 1
                    return sent[index]
            try:
                await asyncio.wait_for(event.wait(), deadline - time.perf_counter())
            except TimeoutError:
                raise AssertionError(f"{self.chat_id}: no message with {part!r}; the last ones: "
                                     f"{[s.text[:80] for s in sent[-3:]]}") from None


async def zalo_play(resident: BenchResident, kind: str, what: str, expect: str, measured: Measured) -> None:
    """One step: a text as typed, a choice as its number in the last list ("Gõ 2 → Thôn 2": "2")."""
    text = str(resident.number_of(what)) if kind == "choose" else what
    offered = time.perf_counter()
    await resident.zalo.user_sends(resident.chat_id, text)
    sent = await resident.expect(expect)
    measured.latencies.append(sent.at - offered)
    measured.updates += 1


def zalo_players(zalo: BenchZalo, first_chat: int) -> Callable[[int], Player]:
    return lambda index: functools.partial(zalo_play, BenchResident(zalo, str(first_chat + index)))


def zalo_script() -> list[tuple[str, str, str]]:
    """The resident script on Zalo: the same steps, every button a choice typed by its number."""
    quiz = {question.id: question for question in load_catalog().ordered_lessons()[0].quiz}
    steps = []
    for kind, what, expect in resident_script():
        if what == "consent:yes":
            steps.append(("choose", "Đồng ý", expect))
        elif kind == "data":  # qa:<question>:<index>
            _, question_id, index = what.rsplit(":", 2)
            steps.append(("choose", quiz[question_id].options[int(index)].text, expect))
        else:
            steps.append(("choose" if kind == "label" else "say", what, expect))
    return steps


def bare_zalo_script(plan: list[list[int]]) -> list[tuple[str, str, str]]:
    """For benchmarks/zalo_bare_bot.py: step n asks for hocvuso's messages of that step, by their lengths;
    the answer is over when its last message arrives."""
    return [("say", f"bước {n:02d}: {','.join(map(str, lengths))}", f"bước {n:02d} ({len(lengths)}/{len(lengths)})")
            for n, lengths in enumerate(plan)]


async def calibrate_zalo(args: list[str], env: dict[str, str], script: list[tuple[str, str, str]]) -> list[list[int]]:
    """What hocvuso sends on Zalo for each step of `script`: one resident plays it, and after each expected
    message waits SETTLE s for any later one; the lengths of the `sendMessage` texts, per step."""
    async with BenchZalo() as zalo:
        full_env = {**{key: value.replace("{mode}", "calibration") for key, value in env.items()},
                    "HOCVUSO_ZALO_API_URL": zalo.api_url}
        process = await start_process(args, full_env, zalo)
        try:
            resident = BenchResident(zalo, "500000")
            plan = []
            for kind, what, expect in script:
                before, calls_before = len(resident._messages()), len(zalo.calls)
                await zalo_play(resident, kind, what, expect, Measured())
                await asyncio.sleep(SETTLE)
                answer = resident._messages()[before:]
                others = {method for method, _ in zalo.calls[calls_before:]} - {"sendMessage", "getUpdates"}
                if others or any(sent.method != "sendMessage" for sent in answer):
                    print(f"calibration: step {what!r} also made {sorted(others)}: not replayed by the bare bot",
                          file=sys.stderr)
                if expect not in answer[-1].text:
                    print(f"calibration: step {what!r}: {expect!r} is not in the answer's last message; its "
                          "latency is measured to an earlier one", file=sys.stderr)
                resident.seen = len(resident._messages())
                plan.append([len(sent.text) for sent in answer if sent.method == "sendMessage"])
        finally:
            await stop_process(process)
    print(f"calibration: sendMessage lengths per step {plan}", file=sys.stderr)
    return plan


# --- one bot ----------------------------------------------------------------------------------------

async def bench_bot(name: str, mode: str, args: list[str], env: dict[str, str], script, residents: int,
                    rate: float | None) -> dict:
    """One run of one bot in its own process: `mode` "throughput" (rate None) or "latency"."""
    zalo = name in ZALO_BOTS
    async with (BenchZalo() if zalo else FakeTelegram()) as fake:
        full_env = {key: value.replace("{mode}", mode) for key, value in env.items()}
        full_env["HOCVUSO_ZALO_API_URL" if zalo else "HOCVUSO_TELEGRAM_API_URL"] = fake.api_url
        run_args = [a.replace("{api}", fake.api_url) for a in args]
        players = functools.partial(zalo_players if zalo else telegram_players, fake)
        process = await start_process(run_args, full_env, fake)
        try:
            await drive(players(900_000), script, 2, None)  # warm-up: imports, first queries
            cpu_before = cpu_seconds(process.pid)
            calls_before, idle_before = (len(fake.calls), fake.idle_polls) if zalo else (0, 0)
            measured = await drive(players(1_000_000), script, residents, rate)
            measured.bot_cpu_seconds = cpu_seconds(process.pid) - cpu_before
            if zalo:
                measured.calls = dict(collections.Counter(method for method, _ in fake.calls[calls_before:]))
                measured.calls["idle_getUpdates"] = fake.idle_polls - idle_before
        finally:
            await stop_process(process)
    summary = measured.summary()
    print(f"{time.strftime('%H:%M:%S')} {name} {mode}: {summary}", file=sys.stderr)
    return summary


TELEGRAM_BOTS = ("echo", "press", "press-32", "hocvuso")
ZALO_BOTS = ("zalo-bare", "hocvuso-zalo")
BOTS = TELEGRAM_BOTS + ZALO_BOTS


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--residents", type=int, default=50)
    parser.add_argument("--rate", type=float, default=100.0, help="updates per second offered in the latency run")
    parser.add_argument("--bots", default=",".join(BOTS), help="which bots to run, comma-separated")
    options = parser.parse_args()
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("HOCVUSO_")}
    script = resident_script()
    with tempfile.TemporaryDirectory() as folder:
        hocvuso_env = {**base_env, "HOCVUSO_TELEGRAM_TOKEN": TOKEN, "HOCVUSO_TELEGRAM_POLL_TIMEOUT": "1",
                       "HOCVUSO_DATABASE_URL": f"sqlite+aiosqlite:///{folder}/bench-{{mode}}.db"}
        zalo_env = {**base_env, "HOCVUSO_ZALO_TOKEN": ZALO_TOKEN, "HOCVUSO_ZALO_POLL_TIMEOUT": "1",
                    "HOCVUSO_ZALO_CONCURRENCY": "32"}
        hocvuso_zalo_env = {**zalo_env, "HOCVUSO_DATABASE_URL": f"sqlite+aiosqlite:///{folder}/zalo-{{mode}}.db"}
        runs = {
            "echo": (["-m", "benchmarks.echo_bot", "{api}", TOKEN], base_env,
                     [("say", f"xin chào {n}", f"xin chào {n}") for n in range(len(script))]),
            "press": (["-m", "benchmarks.press_bot", "{api}", TOKEN, "1"], base_env, calls_only_script(script)),
            "press-32": (["-m", "benchmarks.press_bot", "{api}", TOKEN, "32"], base_env, calls_only_script(script)),
            "hocvuso": (["-m", "bot", "run"], hocvuso_env, script),
            "hocvuso-zalo": (["-m", "bot", "run"], hocvuso_zalo_env, zalo_script()),
        }
        names = options.bots.split(",")
        zalo_plan = None
        if "zalo-bare" in names:
            zalo_plan = await calibrate_zalo(["-m", "bot", "run"], hocvuso_zalo_env, zalo_script())
            runs["zalo-bare"] = (["-m", "benchmarks.zalo_bare_bot"], zalo_env, bare_zalo_script(zalo_plan))
        results: dict[str, dict] = {name: {} for name in names}
        # Every bot's throughput run, then every bot's latency run: the runs compared (the ratios) are
        # close in time, which matters on a machine whose load changes from minute to minute.
        for mode, offered in (("throughput", None), ("latency", options.rate)):
            for name in names:
                args, env, bot_script = runs[name]
                results[name][mode] = await bench_bot(name, mode, args, env, bot_script, options.residents, offered)
    report = {
        "date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}", "residents": options.residents, "rate": options.rate,
        "updates_per_resident": len(script), **results,
    }
    if "echo" in results:
        echo_rate = results["echo"]["throughput"]["updates_per_second"]
        report["throughput_ratio"] = {name: round(result["throughput"]["updates_per_second"] / echo_rate, 2)
                                      for name, result in results.items() if name in TELEGRAM_BOTS[1:]}
    if zalo_plan is not None:
        report["zalo_send_lengths_per_step"] = zalo_plan
    if "zalo-bare" in results and "hocvuso-zalo" in results:
        bare, ours = results["zalo-bare"]["throughput"], results["hocvuso-zalo"]["throughput"]
        report["zalo_ratio"] = {
            "throughput hocvuso-zalo/zalo-bare": round(ours["updates_per_second"] / bare["updates_per_second"], 2),
            "CPU per update zalo-bare/hocvuso-zalo": round(bare["bot_cpu_ms_per_update"]
                                                           / ours["bot_cpu_ms_per_update"], 2),
        }
    print(json.dumps(report, indent=2, ensure_ascii=False))
    print(markdown(report))


def markdown(report: dict) -> str:
    rows = ["| bot | run | updates | updates/s | bot CPU ms/update | p50 ms | p99 ms |",
            "| --- | --- | --- | --- | --- | --- | --- |"]
    for bot in (name for name in TELEGRAM_BOTS if name in report):
        for mode in ("throughput", "latency"):
            r = report[bot][mode]
            keys = ("updates", "updates_per_second", "bot_cpu_ms_per_update", "p50_ms", "p99_ms")
            cells = [bot, mode, *(r[key] for key in keys)]
            rows.append("| " + " | ".join(str(cell) for cell in cells) + " |")
    ratios = report.get("throughput_ratio", {})
    text = "\n".join(rows) + "".join(f"\n\nthroughput ratio {name}/echo: {ratio}" for name, ratio in ratios.items())
    if len(rows) == 2:  # no Telegram bot ran
        text = ""
    zalo = [bot for bot in ZALO_BOTS if bot in report]
    if zalo:
        rows = ["| bot | run | updates | updates/s | bot CPU ms/update | bench CPU share | sendMessage/update "
                "| getUpdates/update | p50 ms | p99 ms |", "|" + " --- |" * 10]
        for bot in zalo:
            for mode in ("throughput", "latency"):
                r = report[bot][mode]
                keys = ("updates", "updates_per_second", "bot_cpu_ms_per_update", "bench_cpu_share",
                        "sendMessage_per_update", "getUpdates_per_update", "p50_ms", "p99_ms")
                cells = [bot, mode, *(r.get(key, "") for key in keys)]
                rows.append("| " + " | ".join(str(cell) for cell in cells) + " |")
        text += ("\n\n" if text else "") + "\n".join(rows)
        text += "".join(f"\n\n{name}: {ratio}" for name, ratio in report.get("zalo_ratio", {}).items())
    return text


if __name__ == "__main__":
    asyncio.run(main())
