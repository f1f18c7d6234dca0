"""The three files a unit hands in: the workbook, the draft report and the chart, made in one call.

`make_report` counts and builds from plain data (a database address, the unit, the period, the titles
of the content), so `hocvuso run` runs all of it in its renderer process: a commune's report is a
second or two of CPU, most of it pure Python, which on the bot's own process would hold up every chat.
"""

from __future__ import annotations

import asyncio
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from storage.db import Database
from storage.report import Period, Report, Scope, gather_report


@dataclass(frozen=True)
class ReportFiles:
    stem: str  # "bao-cao-2026-hoi-nong-dan-xa"
    xlsx: bytes
    docx: bytes
    png: bytes

    def named(self) -> list[tuple[str, bytes]]:
        return [(f"{self.stem}.xlsx", self.xlsx), (f"{self.stem}.docx", self.docx), (f"{self.stem}.png", self.png)]


def ascii_slug(text: str) -> str:
    """"Hội Nông dân xã" -> "hoi-nong-dan-xa": a file name any phone and any Windows opens."""
    flat = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    flat = "".join(char for char in flat if not unicodedata.combining(char)).lower()
    return re.sub(r"[^a-z0-9]+", "-", flat).strip("-")[:60] or "don-vi"


def report_files(report: Report, commune_name: str, lesson_titles: dict[str, str],
                 question_texts: dict[str, str]) -> ReportFiles:
    """Build the three files. `question_texts` maps "lesson/question" to the question as it reads now."""
    # Imported here: matplotlib, openpyxl and python-docx load in a second, and only where files are made.
    from reports.charts import report_chart
    from reports.report_book import report_workbook
    from reports.report_doc import report_document

    stem = f"bao-cao-{report.period.year}-{ascii_slug(report.scope.name)}"
    return ReportFiles(
        stem=stem,
        xlsx=report_workbook(report, lambda lesson: lesson_titles.get(lesson, lesson),
                             lambda key: question_texts.get(key, key)),
        docx=report_document(report, commune_name),
        png=report_chart(f"{report.scope.name} · năm {report.period.year}", report),
    )


@dataclass(frozen=True)
class ReportRequest:
    """Everything `make_report` needs, as plain data that crosses to another process."""

    database_url: str
    scope: Scope
    period: Period
    core: Sequence[str]
    lesson_order: Sequence[str]
    made_at: datetime
    commune_name: str
    lesson_titles: dict[str, str]
    question_texts: dict[str, str]
    households: bool = True  # False: a summary without the list of households


def make_report(request: ReportRequest) -> tuple[Report, ReportFiles]:
    """Count the unit's figures on a connection of its own and build the three files (synchronous: it
    runs on the renderer's process or a worker thread, with an event loop of its own)."""
    report = asyncio.run(count_report(request))
    return report, report_files(report, request.commune_name, request.lesson_titles, request.question_texts)


async def count_report(request: ReportRequest) -> Report:
    """The figures alone, on a connection of their own (also what a province's summary times)."""
    # Three reads at once: the people, the lessons and the answers (see gather_report). This process
    # makes reports only, so it does not take them from the bot's own two.
    database = Database(request.database_url, read_threads=3)
    try:
        return await gather_report(database, request.scope, request.period, request.core, request.lesson_order,
                                   request.made_at, request.households)
    finally:
        await database.dispose()
