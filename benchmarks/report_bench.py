"""The yearly report at commune and province scale: time and peak memory of `make_report`.

    .venv/bin/python -m benchmarks.report_bench --db /tmp/commune.db [--repeats 5]
    .venv/bin/python -m benchmarks.report_bench --url postgresql+asyncpg://postgres@127.0.0.1:5432/hocvuso_province

The requirement (issue 10): on the commune of benchmarks/generate_commune.py (30,000 people, 10,000
households, 20 organisations, 1,000,000 answers) the full commune report, all three files, in under 2 s
on SQLite; a province-wide summary (1,000,000 people, 30,000,000 answers) in under 15 s on PostgreSQL;
peak memory under 500 MB. Chat turns beside a report are measured by
`benchmarks.commune_bench --report`.

Each measurement runs `reports.report_files.make_report` exactly as the renderer process of
`hocvuso run` does (its own connection, its own event loop), in a fresh child process, so that its peak
memory (ru_maxrss) is the report's and nothing else's: one cold run (imports and first drawing
included) then `--repeats` warm runs in the same child. A database given by `--url` is the province:
its summary is the same three files without the list of households (`hocvuso report --summary`): every
figure is counted, the households too, but 333,333 rows are not listed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sqlite3
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from content.loader import load_catalog
from content.schema import answer_key
from reports.report_files import ReportRequest, make_report
from storage.report import Scope, reporting_period

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
TARGET_COMMUNE_S, TARGET_PROVINCE_S, TARGET_MB = 2.0, 15.0, 500.0


def request_for(url: str, scope: Scope, year: int, households: bool = True) -> ReportRequest:
    catalog = load_catalog()
    lessons = catalog.ordered_lessons()
    return ReportRequest(
        database_url=url, scope=scope, period=reporting_period(year, (10, 12), ZONE),
        core=tuple(catalog.core_course.lessons), lesson_order=[lesson.id for lesson in lessons],
        made_at=datetime.now(UTC).astimezone(ZONE), commune_name="xã Cát Thành",
        lesson_titles={lesson.id: lesson.title for lesson in lessons},
        question_texts={answer_key(lesson.id, question.id): question.question
                        for lesson in lessons for question in lesson.quiz},
        households=households,
    )


def child(url: str, kind: str, unit_id: int | None, year: int, repeats: int, summary: bool) -> dict[str, Any]:
    """Runs in the child process: one cold run, then `repeats` warm ones."""
    request = request_for(url, Scope(kind, unit_id, "đơn vị"), year, households=not summary)  # type: ignore[arg-type]

    def once() -> tuple[float, dict[str, Any]]:
        started = time.perf_counter()
        report, files = make_report(request)
        sizes = {"xlsx_kb": len(files.xlsx) // 1024, "docx_kb": len(files.docx) // 1024,
                 "png_kb": len(files.png) // 1024}
        seconds = time.perf_counter() - started
        people = report.people
        return seconds, {"registered": people.registered, "finished": people.finished,
                         "households": people.households_known, **sizes}

    cold, shape = once()
    warm = [once()[0] for _ in range(repeats)]
    return {
        "cold_s": round(cold, 3), "warm_s": [round(value, 3) for value in warm],
        "warm_median_s": round(statistics.median(warm), 3) if warm else None,
        "peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1), **shape,
    }


def measure(url: str, kind: str, unit_id: int | None, year: int, repeats: int, summary: bool) -> dict[str, Any]:
    arguments = [sys.executable, "-m", "benchmarks.report_bench", "--child", json.dumps(
        [url, kind, unit_id, year, repeats, summary])]
    done = subprocess.run(arguments, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"the measuring process failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def largest_units(path: Path) -> tuple[int, int]:
    """The largest organisation and the largest village of a SQLite commune."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as connection:
        organisation = connection.execute(
            "SELECT organisation_id FROM membership GROUP BY organisation_id ORDER BY count(*) DESC LIMIT 1").fetchone()
        village = connection.execute(
            "SELECT village_id FROM person WHERE village_id IS NOT NULL GROUP BY village_id "
            "ORDER BY count(*) DESC LIMIT 1").fetchone()
    return organisation[0], village[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", type=Path, help="a SQLite commune made by benchmarks.generate_commune")
    parser.add_argument("--url", help="a PostgreSQL province made by benchmarks.generate_commune province")
    parser.add_argument("--year", type=int, default=2026)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        print(json.dumps(child(*json.loads(options.child))))
        return
    if (options.db is None) == (options.url is None):
        parser.error("give one of --db (a commune on SQLite) or --url (a province on PostgreSQL)")
    results: dict[str, Any] = {}
    if options.db is not None:
        url = f"sqlite+aiosqlite:///{options.db.resolve()}"
        organisation, village = largest_units(options.db)
        for name, kind, unit_id in (("commune", "commune", None), ("largest organisation", "organisation",
                                                                     organisation),
                                    ("largest village", "village", village)):
            results[name] = measure(url, kind, unit_id, options.year, options.repeats, False)
            print(f"{name}: {results[name]}", file=sys.stderr)
        target = {"commune_warm_median_s": results["commune"]["warm_median_s"], "target_s": TARGET_COMMUNE_S}
    else:
        results["province summary"] = measure(options.url, "commune", None, options.year, options.repeats, True)
        print(f"province summary: {results['province summary']}", file=sys.stderr)
        target = {"province_warm_median_s": results["province summary"]["warm_median_s"],
                  "target_s": TARGET_PROVINCE_S}
    report = {
        "command": " ".join([".venv/bin/python -m benchmarks.report_bench", *sys.argv[1:]]),
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
                   f"SQLite {sqlite3.sqlite_version}",
        "results": results, "target": target, "target_mb": TARGET_MB,
    }
    print(json.dumps(report, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
