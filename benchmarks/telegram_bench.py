"""Many simulated residents over the fake Bot API server: hocvuso against bare PTB bots.

    .venv/bin/python -m benchmarks.telegram_bench [--residents 50] [--rate 100] [--bots echo,press,...]

Each bot runs as its own process, talking to the fake server in this process over 127.0.0.1:
- echo: benchmarks/echo_bot.py, a bare echo bot, the issue's baseline;
- press, press-32: benchmarks/press_bot.py, only the Bot API calls hocvuso's script requires (a press is
  acknowledged and its message edited), one update at a time and 32 at once (hocvuso's default);
- hocvuso: `hocvuso run`, long polling, a fresh SQLite file.
Two runs each:
- throughput: every resident sends its next message as soon as the previous answer arrived;
- latency at a fixed load: residents paced so that `--rate` updates per second arrive in total.
Latency is measured at the fake server: from the moment an update is offered to the moment the last
message of its answer reaches the server. Results are printed as JSON and as a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
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

from content.loader import load_catalog
from tests.fakes.telegram import TOKEN, FakeTelegram, FakeUser

ROOT = Path(__file__).resolve().parent.parent
Step = Callable[[FakeUser], Awaitable[None]]


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

    def summary(self) -> dict[str, float]:
        ordered = sorted(self.latencies)
        return {
            "updates": self.updates,
            "seconds": round(self.seconds, 3),
            "updates_per_second": round(self.updates / self.seconds, 1),
            "bot_cpu_ms_per_update": round(self.bot_cpu_seconds / self.updates * 1000, 2),
            "bot_cpu_share": round(self.bot_cpu_seconds / self.seconds, 2),
            "p50_ms": round(statistics.median(ordered) * 1000, 2),
            "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 2),
        }


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


async def drive(telegram: FakeTelegram, script: list[tuple[str, str, str]], residents: int, rate: float | None,
                first_chat: int) -> Measured:
    """Run every resident through the script; paced to `rate` updates/s in total, or flat out."""
    measured = Measured()
    interval = residents / rate if rate else 0.0

    async def resident(index: int) -> None:
        user = FakeUser(telegram, first_chat + index)
        if interval:
            await asyncio.sleep(interval * index / residents)  # spread the residents over one interval
        next_at = time.perf_counter()
        for kind, what, expect in script:
            if interval:
                delay = next_at - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)  # pacing the offered load is the point of this run
                next_at += interval
            await play(user, kind, what, expect, measured)

    started = time.perf_counter()
    await asyncio.gather(*(resident(i) for i in range(residents)))
    measured.seconds = time.perf_counter() - started
    return measured


async def start_process(args: list[str], env: dict[str, str], telegram: FakeTelegram) -> asyncio.subprocess.Process:
    process = await asyncio.create_subprocess_exec(
        sys.executable, *args, cwd=ROOT, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )
    polls_before = len(telegram.methods_called("getUpdates"))
    await telegram.wait_for(lambda: len(telegram.methods_called("getUpdates")) > polls_before, timeout=60)
    return process


async def stop_process(process: asyncio.subprocess.Process) -> None:
    process.terminate()
    await asyncio.wait_for(process.wait(), 30)


async def bench_bot(name: str, args: list[str], env: dict[str, str], script, residents: int, rate: float) -> dict:
    results = {}
    for mode, offered in (("throughput", None), ("latency", rate)):
        async with FakeTelegram() as telegram:
            full_env = {key: value.replace("{mode}", mode) for key, value in env.items()}
            full_env["HOCVUSO_TELEGRAM_API_URL"] = telegram.api_url
            run_args = [a.replace("{api}", telegram.api_url) for a in args]
            process = await start_process(run_args, full_env, telegram)
            try:
                await drive(telegram, script, 2, None, 900_000)  # warm-up: imports, first queries
                cpu_before = cpu_seconds(process.pid)
                measured = await drive(telegram, script, residents, offered, 1_000_000)
                measured.bot_cpu_seconds = cpu_seconds(process.pid) - cpu_before
            finally:
                await stop_process(process)
            results[mode] = measured.summary()
            print(f"{name} {mode}: {results[mode]}", file=sys.stderr)
    return results


BOTS = ("echo", "press", "press-32", "hocvuso")


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
        runs = {
            "echo": (["-m", "benchmarks.echo_bot", "{api}", TOKEN], base_env,
                     [("say", f"xin chào {n}", f"xin chào {n}") for n in range(len(script))]),
            "press": (["-m", "benchmarks.press_bot", "{api}", TOKEN, "1"], base_env, calls_only_script(script)),
            "press-32": (["-m", "benchmarks.press_bot", "{api}", TOKEN, "32"], base_env, calls_only_script(script)),
            "hocvuso": (["-m", "bot", "run"], hocvuso_env, script),
        }
        results = {}
        for name in options.bots.split(","):
            args, env, bot_script = runs[name]
            results[name] = await bench_bot(name, args, env, bot_script, options.residents, options.rate)
    report = {
        "date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}", "residents": options.residents, "rate": options.rate,
        "updates_per_resident": len(script), **results,
    }
    if "echo" in results:
        echo_rate = results["echo"]["throughput"]["updates_per_second"]
        report["throughput_ratio"] = {name: round(result["throughput"]["updates_per_second"] / echo_rate, 2)
                                      for name, result in results.items() if name != "echo"}
    print(json.dumps(report, indent=2, ensure_ascii=False))
    print(markdown(report))


def markdown(report: dict) -> str:
    rows = ["| bot | run | updates | updates/s | bot CPU ms/update | p50 ms | p99 ms |",
            "| --- | --- | --- | --- | --- | --- | --- |"]
    for bot in (name for name in BOTS if name in report):
        for mode in ("throughput", "latency"):
            r = report[bot][mode]
            keys = ("updates", "updates_per_second", "bot_cpu_ms_per_update", "p50_ms", "p99_ms")
            cells = [bot, mode, *(r[key] for key in keys)]
            rows.append("| " + " | ".join(str(cell) for cell in cells) + " |")
    ratios = report.get("throughput_ratio", {})
    return "\n".join(rows) + "".join(f"\n\nthroughput ratio {name}/echo: {ratio}" for name, ratio in ratios.items())


if __name__ == "__main__":
    asyncio.run(main())
