"""Generate a commune (SQLite) or a province (PostgreSQL) of realistic hocvuso data, for benchmarks.

    .venv/bin/python -m benchmarks.generate_commune commune --db /tmp/commune.db [--sizes full|small]
        [--seed 2026] [--now 2026-11-26] [--replace]
    .venv/bin/python -m benchmarks.generate_commune province
        [--url postgresql+asyncpg://postgres@127.0.0.1:5432/hocvuso_province] [--sizes full|small]
        [--seed 2026] [--now 2026-11-26] [--replace]

**Commune** (issue 9 and 10): 30,000 people, 10,000 households, 20 organisations, 10 villages, exactly
1,000,000 answers and 300,000 activity rows, in an SQLite file migrated by `storage.migrate` and filled
with plain sqlite3. `benchmarks/commune_bench.py` uses `generate()` with its own sizes.

**Province** (issue 10): 1,000,000 people, 333,333 households, exactly 30,000,000 answers and 10,000,000
activity rows on PostgreSQL. The schema has one commune per database, so the province is modelled as one
"commune" whose directory is the union of its 129 communes' directories: 1,290 villages (about ten per
commune, named "Thôn 3 xã An Bình") and 2,580 organisations (twenty per commune, "Hội Nông dân xã An
Bình"); each commune's people live in its own villages and join its own organisations. The population
figures of the commune level (village NULL) are the province's totals. The database is created when
missing (never `test`, which the test suite uses), migrated by `storage.migrate`, then filled with COPY
(asyncpg's `copy_records_to_table` on a raw connection). Foreign keys, primary keys, unique constraints
and indexes of the loaded tables are dropped before the load and re-created by name from their own
definitions afterwards (checked: the final catalogue equals the migrated one); sequences are moved past
the ids used, then VACUUM (ANALYZE), so the visibility map and statistics are what a settled database has.

What is in it (both):
- villages of different sizes (the largest about twice the smallest); households from the commune's
  directory (90 %: head's name and size as listed, a code when somebody registered in it or staff printed
  one; 8 % of them have nobody registered) and households made in chat (10 %: a code, no head name);
- people who consented (14 months of sign-ups): name (family names shared within a household), village,
  household with exactly one head, QĐ 757 target group, VNeID level 2 (self-reported, by group), consent
  version 2, or 1 for people who signed up before the new text (150 days ago) and declined it or were not
  back since; 3 % stopped registration half-way (`registration_step`, the later fields empty);
- population figures per target group for every village and the commune (one village's civil servants
  not entered: unknown), a registered share of 30-98 % depending on the group;
- organisations, two "chi hội" under their "hội" (parent_id), memberships chosen by group (schools take
  pupils, offices civil servants, unions workers...), confirmed by the organisation's leader or still claimed;
  the women's union is the largest (2,000 members in the commune);
- lesson progress through the core course in order, quiz attempts (failed tries, then the pass; an attempt
  left open in the lesson being worked on; reviews, kind "review"), every answer as given with its time,
  harder questions missed more often; engagement varies by target group, village and organisation;
- activity: every consent, registration and course finished, then a share of the lesson events (opened,
  quiz started, finished or failed, reviews), then of the cards read and answers given, up to the budget;
  1.5 % anonymous rows of people who erased their data;
- a Telegram account and a conversation state (main menu) for everyone; no role grants, invitations or
  audit rows (commune_bench gives roles by invitation itself).
Times are spread over the 14 months before `--now` (default: today 00:00 UTC): a quarter of the people
signed up in the campaign's first two months, the others evenly since, each learning for a few days to
eight months; so a reporting period (after 10/12 of last year to 10/12 of this year) holds most of the
answers but not all (76 % at --now 2026-11-26). The same seed, sizes and `--now` give the
same rows. Row ids follow people, not time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import queue
import random
import sqlite3
import struct
import sys
import threading
import time
import zlib
from bisect import bisect
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from bot.settings import DEFAULT_ORGANISATIONS
from content.loader import Catalog, load_catalog
from content.schema import CitizenGroup, answer_key
from storage import migrate
from storage.db import Database
from storage.queries import guess_kind

CHANNEL = "telegram"
SEED = 2026
GENERATOR = "generate_commune v1"  # part of the SQLite marker: a change of the rows changes it
DEFAULT_PROVINCE_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/hocvuso_province"
REFUSED_DATABASES = {"test", "postgres", "template0", "template1"}  # `test` is the test suite's

DAY_US = 86_400_000_000
HOUR_US = 3_600_000_000
MINUTE_US = 60_000_000
SECOND_US = 1_000_000
HISTORY_DAYS = 425  # 14 months of sign-ups and learning
LAUNCH_DAYS = 60  # the campaign's first weeks, when many signed up
NEW_CONSENT_DAYS = 150  # consent text 2 was first shown this long ago
DIRECTORY_DAYS = 430  # the commune's directory was imported this long ago
PASS_PERCENT = 80  # bot.settings default
REVIEW_LESSON = "on-tap"  # handlers.review.REVIEW_LESSON
REVIEW_MAX = 5  # handlers.review.MAX_QUESTIONS
REGISTRATION_ORDER = ("ask_name", "ask_village", "ask_group", "ask_household", "ask_orgs", "ask_vneid")
ANSWERS_ON_FIRST_TRY = 0.77  # share of the answers that belong to passing attempts and the rest (not retries)
GHOST_ACTIVITY = 0.015  # share of activity rows left by people who erased their data
BATCH = 50_000  # rows per INSERT/COPY batch

FAMILY = (("Nguyễn", 38), ("Trần", 11), ("Lê", 9), ("Phạm", 7), ("Hoàng", 4), ("Huỳnh", 3), ("Phan", 4),
          ("Vũ", 3), ("Võ", 3), ("Đặng", 2), ("Bùi", 2), ("Đỗ", 2), ("Hồ", 1.5), ("Ngô", 1.5), ("Dương", 1),
          ("Lý", 0.5), ("Đinh", 1), ("Trương", 1), ("Lương", 0.5), ("Mai", 0.5))
MALE_MIDDLE = ("Văn", "Văn", "Văn", "Hữu", "Đức", "Minh", "Quang", "Công", "Xuân", "Thanh", "Ngọc", "Đình")
FEMALE_MIDDLE = ("Thị", "Thị", "Thị", "Thị", "Ngọc", "Thu", "Thanh", "Kim", "Minh", "Hồng", "Mỹ")
MALE_GIVEN = ("An", "Bình", "Cường", "Dũng", "Đạt", "Hải", "Hùng", "Huy", "Khoa", "Long", "Minh", "Nam", "Phong",
              "Phúc", "Quân", "Sơn", "Tài", "Thắng", "Thành", "Trung", "Tuấn", "Việt", "Vinh", "Hoàng")
FEMALE_GIVEN = ("Anh", "Châu", "Dung", "Giang", "Hà", "Hạnh", "Hoa", "Hương", "Lan", "Linh", "Loan", "Mai", "Nga",
                "Nhung", "Oanh", "Phương", "Thảo", "Trang", "Tuyết", "Vân", "Yến", "Hằng", "Hiền", "Ngọc")
COMMUNE_FIRST = ("An", "Bình", "Tân", "Phú", "Hòa", "Long", "Mỹ", "Phước", "Thạnh", "Hưng", "Vĩnh", "Đông", "Tây",
                 "Quang", "Minh", "Thuận", "Xuân", "Hiệp", "Cát", "Nhơn")
COMMUNE_SECOND = ("Lợi", "Thành", "Lộc", "Hải", "Sơn", "Phong", "Điền", "Thịnh", "Tiến", "Trung", "Hậu", "Khánh",
                  "Lâm", "Nghĩa", "Đức")

# Target groups: share of the people, how engaged (an exponent: higher learns more), VNeID level 2 answers
# (yes, no, unknown) and the registered share of the group's population.
GROUPS = (CitizenGroup.RESIDENT, CitizenGroup.STUDENT, CitizenGroup.OFFICIAL, CitizenGroup.WORKER)
GROUP_SHARE = (58, 17, 5, 20)
GROUP_ENGAGEMENT = (0.8, 1.4, 2.5, 1.0)
GROUP_VNEID = ((45, 35, 20), (60, 25, 15), (95, 3, 2), (60, 28, 12))
GROUP_COVERAGE = ((0.35, 0.6), (0.55, 0.85), (0.85, 0.98), (0.3, 0.55))
VNEID = ("yes", "no", "unknown")

CHI_HOI = {"Chi hội Phụ nữ Thôn 1": ("Hội Liên hiệp Phụ nữ xã", 0), "Chi hội Nông dân Thôn 2": ("Hội Nông dân xã", 1)}
MORE_ORGANISATIONS = (*CHI_HOI, "Hợp tác xã Nông nghiệp", "Trạm Y tế xã", "Công an xã", "Ban Chỉ huy Quân sự xã",
                      "Câu lạc bộ Dưỡng sinh", "Chi hội Khuyến học", "Tổ hợp tác Mây tre đan")
WOMEN = "Hội Liên hiệp Phụ nữ xã"
# Who joins an organisation, by words of its name: weights of (resident, pupil, civil servant, worker).
AFFINITY = ((("trường",), (0.3, 12, 2, 0.2)), (("đoàn thanh niên",), (1, 4, 1.5, 1.5)),
            (("phòng", "ủy ban", "công an", "quân sự", "trạm y tế"), (0.15, 0.05, 12, 0.3)),
            (("công đoàn", "doanh nghiệp", "hợp tác", "tổ hợp tác"), (1, 0.05, 0.5, 8)),
            (("cao tuổi", "cựu chiến binh", "dưỡng sinh"), (4, 0.02, 0.5, 0.3)))

TABLES: dict[str, tuple[str, ...]] = {
    "village": ("id", "name"),
    "organisation": ("id", "name", "kind", "parent_id"),
    "household": ("id", "code", "village_id", "head_name", "member_count", "in_directory", "created_at"),
    "populationfigure": ("id", "target_group", "village_id", "count"),
    "person": ("id", "full_name", "village_id", "household_id", "is_household_head", "target_group", "vneid_level2",
               "registration_step", "consent_at", "consent_version", "consent_offered", "created_at"),
    "channelaccount": ("id", "channel", "external_id", "person_id", "blocked", "created_at"),
    "conversationstate": ("id", "channel", "external_id", "step", "data", "menu", "updated_at"),
    "membership": ("id", "person_id", "organisation_id", "confirmed", "confirmed_at"),
    "lessonprogress": ("id", "person_id", "lesson_id", "status", "best_score", "started_at", "completed_at"),
    "quizattempt": ("id", "person_id", "lesson_id", "kind", "question_ids", "total", "correct", "score", "passed",
                    "started_at", "finished_at"),
    "answer": ("id", "attempt_id", "question_id", "option_index", "correct", "answered_at"),
    "activity": ("id", "person_id", "kind", "lesson_id", "detail", "at"),
}
"""The tables filled, and the columns given (in the order of the generated rows)."""


# --- sizes ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Sizes:
    people: int
    households: int
    organisations: int
    answers: int
    activity: int
    villages: int
    big_organisation: int  # members of the women's union (of an average commune, in a province)
    seed: int
    communes: int = 1

    @property
    def marker(self) -> int:
        """`PRAGMA user_version` of a database generated with these sizes (a positive 31-bit number)."""
        text = json.dumps([self.people, self.households, self.organisations, self.answers, self.activity,
                           self.villages, self.big_organisation, self.seed, self.communes, GENERATOR])
        return zlib.crc32(text.encode()) & 0x7FFFFFFF or 1

    def check(self) -> None:
        if min(self.people, self.households, self.organisations, self.villages, self.communes) < 1:
            raise ValueError("people, households, organisations, villages and communes must be at least 1")
        if self.villages < self.communes or self.organisations < self.communes:
            raise ValueError("every commune needs a village and an organisation")
        if self.households > 900_000:
            raise ValueError("household codes have 6 digits: at most 900,000 households")
        if self.big_organisation > self.people:
            raise ValueError("the largest organisation cannot have more members than there are people")
        if self.answers < 0 or self.activity < 0:
            raise ValueError("answers and activity cannot be negative")


COMMUNE = Sizes(30_000, 10_000, 20, 1_000_000, 300_000, 10, 2_000, SEED)
PROVINCE = Sizes(1_000_000, 333_333, 129 * 20, 30_000_000, 10_000_000, 129 * 10, 2_000, SEED, communes=129)
SMALL_COMMUNE = Sizes(600, 200, 16, 20_000, 6_000, 3, 80, SEED)
SMALL_PROVINCE = Sizes(1_500, 500, 3 * 16, 45_000, 15_000, 3 * 3, 80, SEED, communes=3)


def sizes_for(what: str, size: str, seed: int) -> Sizes:
    table = {("commune", "full"): COMMUNE, ("commune", "small"): SMALL_COMMUNE,
             ("province", "full"): PROVINCE, ("province", "small"): SMALL_PROVINCE}
    chosen = table[(what, size)]
    return Sizes(chosen.people, chosen.households, chosen.organisations, chosen.answers, chosen.activity,
                 chosen.villages, chosen.big_organisation, seed, chosen.communes)


# --- small helpers -------------------------------------------------------------------------------

def stamp(moment: datetime) -> str:
    """How `storage.types.UTCDateTime` stores a moment on SQLite: naive UTC, microseconds."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def pick(rng: random.Random, weighted: tuple[tuple[Any, int], ...]) -> Any:
    return rng.choices([value for value, _ in weighted], [weight for _, weight in weighted])[0]


def external_id(person_id: int) -> str:
    """The Telegram chat id of a generated person (commune_bench plays people by it)."""
    return str(700_000_000 + person_id)


def split(total: int, weights: Sequence[float]) -> list[int]:
    """`total` split in proportion to `weights`, exactly (largest remainders)."""
    whole = sum(weights)
    shares = [total * weight / whole for weight in weights]
    parts = [int(share) for share in shares]
    for index in sorted(range(len(weights)), key=lambda i: (parts[i] - shares[i], i))[:total - sum(parts)]:
        parts[index] += 1
    return parts


class Share:
    """Hands out `allotted` of `total` things in proportion to the counts it is shown, exactly.

    Shown counts n1, n2, ... (summing to `total`), it gives floor(allotted * cumulative / total) minus what
    it gave before: the gifts sum to `allotted` when all counts were shown, and no gift exceeds its count.
    """

    def __init__(self, allotted: int, total: int) -> None:
        self.allotted, self.total, self.seen, self.given = allotted, total, 0, 0

    def take(self, count: int) -> int:
        if not self.total:
            return 0
        self.seen += count
        gift = self.allotted * self.seen // self.total - self.given
        self.given += gift
        return gift


def organisation_names(count: int) -> list[str]:
    """The organisations of one commune: the women's union first (the largest), then the plan's units."""
    names = [WOMEN, *(name for name in DEFAULT_ORGANISATIONS if name != WOMEN), *MORE_ORGANISATIONS]
    names += [f"Tổ chức {number}" for number in range(len(names) + 1, count + 1)]
    return names[:count]


def commune_names(count: int, rng: random.Random) -> list[str]:
    names = [f"{first} {second}" for first in COMMUNE_FIRST for second in COMMUNE_SECOND if first != second]
    rng.shuffle(names)
    names += [f"Số {number}" for number in range(len(names) + 1, count + 1)]
    return names[:count]


def affinity(name: str) -> tuple[float, float, float, float]:
    lowered = name.lower()
    return next((weights for words, weights in AFFINITY if any(word in lowered for word in words)), (1, 1, 1, 1))


def default_now() -> datetime:
    """Today 00:00 UTC: two runs on the same day give the same rows."""
    return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


# Times are generated as microseconds since 2000-01-01 UTC, which is PostgreSQL's binary timestamp: the
# province goes to COPY as plain integers (with the connection's codec below), never as datetime objects.
_EPOCH = datetime(2000, 1, 1)


def to_us(moment: datetime) -> int:
    return (moment.astimezone(UTC).replace(tzinfo=None) - _EPOCH) // timedelta(microseconds=1)


def sqlite_time(us: int) -> str:
    """A generated time as SQLite stores a UTCDateTime (naive UTC, always with microseconds)."""
    text = (_EPOCH + timedelta(microseconds=us)).isoformat(" ")
    return text if len(text) > 19 else text + ".000000"


postgres_time = int  # already PostgreSQL's own value: a builtin that hands an int back costs least


# --- the layout: communes, their villages, households and organisations -------------------------

@dataclass(frozen=True)
class Commune:
    index: int
    name: str | None  # None: a single commune (names as the commune knows them)
    first_person: int  # global person index (0-based) of its first person
    people: int
    first_village: int  # id
    village_names: tuple[str, ...]
    village_weights: tuple[float, ...]
    village_bias: tuple[float, ...]  # engagement of the village (an exponent)
    first_household: int  # id
    households: int
    first_organisation: int  # id
    organisation_names: tuple[str, ...]  # as stored
    organisation_bases: tuple[str, ...]  # without the commune's name
    women_members: int


def layout(sizes: Sizes) -> list[Commune]:
    rng = random.Random(f"{sizes.seed}/layout")
    count = sizes.communes
    if count == 1:
        people, villages, households, organisations, names = ([sizes.people], [sizes.villages], [sizes.households],
                                                               [sizes.organisations], [None])
    else:
        weights = [rng.uniform(0.6, 1.4) for _ in range(count)]
        people = split(sizes.people, weights)
        villages = [1 + part for part in split(sizes.villages - count, [rng.uniform(0.7, 1.3) for _ in range(count)])]
        households = split(sizes.households, weights)
        organisations = [1 + part for part in split(sizes.organisations - count, [1.0] * count)]
        names = commune_names(count, rng)
    average = sizes.people / count
    communes = []
    person = village = household = organisation = 0
    for index in range(count):
        name = names[index]
        number = villages[index]
        bases = organisation_names(organisations[index])
        if name is None:
            village_names = [f"Thôn {k}" for k in range(1, number + 1)]
            stored = bases
            women = min(sizes.big_organisation, people[index])
        else:
            village_names = [f"Thôn {k} xã {name}" for k in range(1, number + 1)]
            stored = [f"{base} {name}" if base.endswith(" xã") else f"{base} xã {name}" for base in bases]
            women = min(people[index], round(sizes.big_organisation * people[index] / average))
        communes.append(Commune(
            index=index, name=name, first_person=person, people=people[index], first_village=village + 1,
            village_names=tuple(village_names),
            village_weights=tuple(1.0 - 0.5 * k / max(1, number - 1) for k in range(number)),
            village_bias=tuple(rng.uniform(0.75, 1.35) for _ in range(number)),
            first_household=household + 1, households=households[index], first_organisation=organisation + 1,
            organisation_names=tuple(stored), organisation_bases=tuple(bases), women_members=women,
        ))
        person += people[index]
        village += number
        household += households[index]
        organisation += organisations[index]
    return communes


# --- the content: the core course's lessons and how hard their questions are ---------------------

@dataclass(frozen=True)
class Question:
    id: str
    key: str  # answer_key(lesson, question)
    correct_index: int
    options: int
    right: float  # how often it is answered right
    miss: float  # weight for being the one missed


@dataclass(frozen=True)
class LessonData:
    id: str
    questions: tuple[Question, ...]
    rows: tuple[tuple[str, int, int, str], ...]  # per question: key, correct index, options, id
    miss_cum: tuple[float, ...]  # cumulative miss weights, to pick the one question missed
    order_json: str  # quizattempt.question_ids of a lesson attempt
    cards: int
    difficulty: float  # weight of a failed try falling on this lesson
    need: int  # right answers to pass
    course_id: str


def lesson_data(catalog: Catalog, seed: int) -> list[LessonData]:
    rng = random.Random(f"{seed}/questions")
    course = catalog.core_course
    lessons = []
    for lesson_id in course.lessons:
        lesson = catalog.lesson(lesson_id)
        if lesson is None:
            raise ValueError(f"core lesson {lesson_id} is missing from the catalog")
        questions = []
        for question in lesson.quiz:
            right = rng.uniform(0.55, 0.95)
            questions.append(Question(question.id, answer_key(lesson.id, question.id), question.correct_index,
                                      len(question.options), right, 1.05 - right))
        count = len(questions)
        lessons.append(LessonData(
            id=lesson.id, questions=tuple(questions), order_json=json.dumps([q.id for q in questions]),
            rows=tuple((q.key, q.correct_index, q.options, q.id) for q in questions),
            miss_cum=tuple(accumulate(q.miss for q in questions)),
            cards=len(lesson.cards), difficulty=sum(q.miss for q in questions) / count,
            need=math.ceil(PASS_PERCENT * count / 100), course_id=course.id,
        ))
    return lessons


def failure_lessons(seed: int, person_id: int, count: int, touched: int, lessons: list[LessonData]) -> list[int]:
    """Which of the first `touched` core lessons a person's `count` failed tries fell on.

    The person's own random source: the first n draws are the same whatever `count` is, so the plan can add
    a failed try to a person and know how many answers it adds.
    """
    rng = random.Random(seed * 1_000_003 + person_id)
    return rng.choices(range(touched), [lessons[index].difficulty for index in range(touched)], k=count)


# --- the plan: pass 1, everything that fixes the row counts ------------------------------------

class Plan:
    """Who learns how much, drawn for every person first, so the answers and the activity come out exact.

    Pass 1 (here) draws per person: group, village, join time, how far they get; then it chooses who is
    engaged so that passing attempts hold about 77 % of the answers, spreads the failed tries over the people
    who learn (more for some than others) so that the answers are exactly `sizes.answers`, and counts each
    person's activity events by tier. Pass 2 (`rows`) draws the rest person by person and emits the rows.
    Memory: a few numpy arrays of one entry per person.
    """

    def __init__(self, sizes: Sizes, catalog: Catalog, now: datetime, tick: Callable[[int], None] | None = None):
        sizes.check()
        self.sizes, self.seed = sizes, sizes.seed
        self.now = to_us(now)
        self.communes = layout(sizes)
        self.lessons = lesson_data(catalog, sizes.seed)
        n = sizes.people
        core = len(self.lessons)
        self.qlen = np.array([len(lesson.questions) for lesson in self.lessons] + [0], dtype=np.int64)
        cum_q = np.concatenate([[0], np.cumsum(self.qlen[:core])])
        cum_cards = np.concatenate([[0], np.cumsum([lesson.cards for lesson in self.lessons])])
        cards = np.array([lesson.cards for lesson in self.lessons] + [0], dtype=np.int64)

        group = np.zeros(n, np.int8)
        village = np.zeros(n, np.int32)  # 0: none
        stop = np.full(n, -1, np.int8)  # registration question reached (index in REGISTRATION_ORDER), -1 done
        no_household = np.zeros(n, np.bool_)
        join = np.zeros(n, np.int64)
        rank = np.zeros(n, np.float64)  # engagement: the lowest are engaged
        done_e = np.zeros(n, np.int8)  # core lessons completed if engaged
        extra_e = np.zeros(n, np.bool_)  # a next lesson started if engaged
        extra_n = np.zeros(n, np.bool_)  # lesson 1 started if not engaged
        open_r = np.full(n, -1.0, np.float64)  # an attempt left open in the started lesson: where
        reviews = np.zeros(n, np.int32)  # review sizes, 3 bits each
        review_sum = np.zeros(n, np.int64)
        weight = np.zeros(n, np.float64)  # how often this person fails
        cum_share = list(accumulate(GROUP_SHARE))
        history = HISTORY_DAYS * DAY_US
        for commune in self.communes:
            rng = random.Random(f"{self.seed}/plan/{commune.index}")
            r = rng.random
            cum_village = list(accumulate(commune.village_weights))
            start = commune.first_person
            for i in range(start, start + commune.people):
                g = bisect(cum_share, r() * cum_share[-1])
                group[i] = g
                v = bisect(cum_village, r() * cum_village[-1])
                village[i] = commune.first_village + v if r() >= 0.01 else 0
                if r() < 0.03:
                    stop[i] = s = rng.randrange(len(REGISTRATION_ORDER))
                    if s <= 1:
                        village[i] = 0
                    no_household[i] = s <= 3
                if village[i] == 0 or r() < 0.02:
                    no_household[i] = True
                # A quarter signed up in the campaign's first two months, the others at any time since.
                ago = history - int(r() * LAUNCH_DAYS * DAY_US) if r() < 0.25 else int(r() * history)
                join[i] = self.now - max(HOUR_US, ago)
                rank[i] = r() ** (GROUP_ENGAGEMENT[g] * commune.village_bias[v])
                done = core if r() < 0.3 else min(core - 1, 1 + int((core - 1) * r() ** 1.6))
                done_e[i] = done
                extra_e[i] = done < core and r() < 0.6
                extra_n[i] = r() < 0.45
                if r() < 0.35:
                    open_r[i] = r()
                if done >= 2 and r() < 0.25:
                    packed = total = 0
                    for _ in range(rng.randint(1, 3)):
                        size = rng.randint(1, REVIEW_MAX)
                        packed, total = packed * 8 + size, total + size
                    reviews[i], review_sum[i] = packed, total
                weight[i] = 0.25 + 2.75 * r() ** 2
            if tick:
                tick(commune.people)

        # Who is engaged: the lowest ranks, as many as make passing attempts (and the rest) ~77 % of the answers.
        # Temporaries are dropped as soon as they are used: at a million people each is 1-8 MB.
        open_k_e = np.where(extra_e & (open_r >= 0), np.floor(open_r * self.qlen[np.minimum(done_e, core)]), -1)
        open_k_e = open_k_e.astype(np.int8)
        open_k_n = (np.where(extra_n & (open_r >= 0), np.floor(open_r * self.qlen[0]), -1) if core
                    else np.full(n, -1)).astype(np.int8)
        del open_r
        base_n = np.maximum(open_k_n, 0).astype(np.int32)
        gain = (cum_q[done_e] + review_sum + np.maximum(open_k_e, 0) - base_n).astype(np.int32)
        order = np.argsort(rank, kind="stable")
        del rank
        target = int(ANSWERS_ON_FIRST_TRY * sizes.answers) - int(base_n.sum())
        cumulative = np.cumsum(gain[order], dtype=np.int64)
        count = int(np.searchsorted(cumulative, target, side="right")) if target > 0 else 0
        del cumulative, gain, base_n
        engaged = np.zeros(n, np.bool_)
        engaged[order[:count]] = True
        del order
        self.done = np.where(engaged, done_e, 0).astype(np.int8)
        self.extra = np.where(engaged, extra_e, extra_n) if core else np.zeros(n, np.bool_)
        self.open_k = np.where(engaged, open_k_e, open_k_n).astype(np.int8)
        self.reviews = np.where(engaged, reviews, 0).astype(np.int32)
        self.review_sum = np.where(engaged, review_sum, 0).astype(np.int16)
        del done_e, extra_e, extra_n, open_k_e, open_k_n, reviews, review_sum
        touched = self.done.astype(np.int32) + self.extra
        base = int(cum_q[self.done].sum()) + int(self.review_sum.sum()) + int(np.maximum(self.open_k, 0).sum())

        # Failed tries: exactly the answers left, spread over the people who learn by how often they fail.
        left = sizes.answers - base
        if left < 0:
            raise ValueError(f"{sizes.answers} answers are too few for {n} people; give more answers")
        weights = np.floor(weight * touched * 1024).astype(np.int64)
        del weight
        total_weight = int(weights.sum())
        if left and not total_weight:
            raise ValueError("nobody learns, so no answers can be placed; give more people or answers")
        uniform = len(set(self.qlen[:core].tolist())) <= 1
        longest = int(self.qlen[:core].max()) if core else 1
        tries = left // longest
        if total_weight and tries * total_weight >= 2 ** 62:
            raise ValueError("too many answers for the allocation's arithmetic")
        allotted = (tries * np.cumsum(weights)) // total_weight if total_weight else np.zeros(n, np.int64)
        del weights
        self.failures = np.diff(allotted, prepend=0).astype(np.int32)
        del allotted
        if uniform:
            failure_answers = self.failures * longest
        else:
            failure_answers = np.zeros(n, np.int32)
            for i in np.flatnonzero(self.failures).tolist():
                picks = failure_lessons(self.seed, i + 1, int(self.failures[i]), int(touched[i]), self.lessons)
                failure_answers[i] = sum(len(self.lessons[p].questions) for p in picks)
        left -= int(failure_answers.sum())
        if left >= longest:  # lessons of different lengths: more tries, one at a time, until under one quiz
            learners = np.flatnonzero(touched)
            step = 0
            while left >= longest and len(learners):
                i = int(learners[step % len(learners)])
                step += 1
                self.failures[i] += 1
                last = failure_lessons(self.seed, i + 1, int(self.failures[i]), int(touched[i]), self.lessons)[-1]
                failure_answers[i] += len(self.lessons[last].questions)
                left -= len(self.lessons[last].questions)
        self._place_rest(left, touched)
        answers_of = cum_q[self.done] + self.review_sum + np.maximum(self.open_k, 0) + failure_answers
        del failure_answers
        if int(answers_of.sum()) != sizes.answers:
            raise AssertionError("the plan's answers do not add up")

        # Activity by tier: 1 consent, registration, course finished; 2 lesson events; 3 cards and answers.
        count_reviews = np.zeros(n, np.int8)
        packed = self.reviews.copy()
        while packed.any():
            count_reviews += packed > 0
            packed //= 8
        del packed
        has_open = self.open_k >= 0
        finished_tries = self.done + self.failures
        self.tier1 = (1 + (stop == -1) + ((self.done == core) & (core > 0))).astype(np.int8)
        self.tier2 = (touched + (finished_tries + has_open) + finished_tries + 2 * count_reviews).astype(np.int32)
        extra_cards = np.where(self.extra, cards[np.minimum(self.done, core)], 0)
        self.tier3 = (cum_cards[self.done] + extra_cards + answers_of).astype(np.int32)
        del extra_cards, answers_of
        budget = sizes.activity
        self.ghosts = round(budget * GHOST_ACTIVITY)
        room = budget - self.ghosts
        self.tier_totals = [int(self.tier1.sum()), int(self.tier2.sum()), int(self.tier3.sum())]
        self.allotted = []
        for total in self.tier_totals:
            self.allotted.append(min(total, room))
            room -= self.allotted[-1]

        self.group, self.village, self.stop, self.no_household, self.join = group, village, stop, no_household, join
        self.engaged = engaged
        # Rows by table, for progress bars and checks (activity and answers exact; the others from the plan).
        self.expected = {
            "person": n, "answer": sizes.answers, "activity": sum(self.allotted) + self.ghosts,
            "quizattempt": int((finished_tries + has_open + count_reviews).sum()),
            "lessonprogress": int(touched.sum()),
        }

    def _place_rest(self, left: int, touched: np.ndarray) -> None:
        """Fewer answers than one quiz are left: they go to attempts left open (answered part of the way),
        then to reviews, then to a new open attempt in a lesson somebody started."""
        if left <= 0:
            return
        for i in reversed(np.flatnonzero(self.open_k >= 0).tolist()):
            room = int(self.qlen[int(self.done[i])]) - 1 - int(self.open_k[i])  # the open lesson is `done`
            add = min(room, left)
            self.open_k[i] += add
            left -= add
            if not left:
                return
        for i in reversed(np.flatnonzero(self.reviews).tolist()):
            sizes = _unpack(int(self.reviews[i]))
            for index, size in enumerate(sizes):
                add = min(REVIEW_MAX - size, left)
                sizes[index] += add
                self.review_sum[i] += add
                left -= add
            self.reviews[i] = _pack(sizes)
            if not left:
                return
        for i in reversed(np.flatnonzero(self.extra & (self.open_k < 0)).tolist()):
            add = min(int(self.qlen[int(self.done[i])]) - 1, left)
            self.open_k[i] = add
            left -= add
            if not left:
                return
        raise ValueError("cannot place the last few answers exactly; give slightly different answers")

    # --- pass 2 ---------------------------------------------------------------------------------

    def rows(self, when: Callable[[int], Any]) -> Iterator[tuple[str, list[tuple[Any, ...]]]]:
        """Every row, table by table in batches of at most BATCH rows; `when` encodes a time (µs since 1970)."""
        return _Writer(self, when).run()


def _unpack(packed: int) -> list[int]:
    sizes = []
    while packed:
        sizes.append(packed % 8)
        packed //= 8
    return sizes[::-1]


def _pack(sizes: list[int]) -> int:
    packed = 0
    for size in sizes:
        packed = packed * 8 + size
    return packed


@dataclass
class _Ids:
    membership: int = 0
    progress: int = 0
    attempt: int = 0
    answer: int = 0
    activity: int = 0
    figure: int = 0


@dataclass
class _Buffers:
    lists: dict[str, list[tuple[Any, ...]]] = field(default_factory=lambda: {table: [] for table in TABLES})

    def full(self) -> Iterator[tuple[str, list[tuple[Any, ...]]]]:
        for table, rows in self.lists.items():
            if len(rows) >= BATCH:
                yield table, rows[:]
                del rows[:]

    def rest(self) -> Iterator[tuple[str, list[tuple[Any, ...]]]]:
        for table, rows in self.lists.items():
            if rows:
                yield table, rows[:]
                del rows[:]


class _Writer:
    """Pass 2: the rows of each commune, person by person, from the plan and a random source per commune."""

    def __init__(self, plan: Plan, when: Callable[[int], Any]) -> None:
        self.plan, self.when = plan, when
        self.ids = _Ids()
        self.buffers = _Buffers()
        self.shares = [Share(allotted, total) for allotted, total in zip(plan.allotted, plan.tier_totals, strict=True)]
        self.family = [name for name, _ in FAMILY]
        self.family_cum = list(accumulate(weight for _, weight in FAMILY))
        # Population of the commune level (the province's, for a province): sums of the villages'.
        self.commune_population = [0] * len(GROUPS)
        self.code_step, self.code_offset = 314_159, random.Random(f"{plan.seed}/codes").randrange(900_000)
        self.questions = {q.key: q for lesson in plan.lessons for q in lesson.questions}
        self.vneid_cum = [list(accumulate(weights)) for weights in GROUP_VNEID]

    def run(self) -> Iterator[tuple[str, list[tuple[Any, ...]]]]:
        for commune in self.plan.communes:
            yield from self.commune(commune)
        yield from self.finish()
        yield from self.buffers.rest()

    # --- one commune ---

    def commune(self, commune: Commune) -> Iterator[tuple[str, list[tuple[Any, ...]]]]:
        plan, when, out = self.plan, self.when, self.buffers.lists
        rng = random.Random(f"{plan.seed}/commune/{commune.index}")
        first, count = commune.first_person, commune.people
        people = range(first, first + count)
        villages = range(commune.first_village, commune.first_village + len(commune.village_names))
        out["village"].extend(zip(villages, commune.village_names, strict=True))
        org_ids = list(range(commune.first_organisation, commune.first_organisation + len(commune.organisation_names)))
        by_base = dict(zip(commune.organisation_bases, org_ids, strict=True))
        for org_id, name, base in zip(org_ids, commune.organisation_names, commune.organisation_bases, strict=True):
            parent = by_base.get(CHI_HOI[base][0]) if base in CHI_HOI else None
            out["organisation"].append((org_id, name, guess_kind(base), parent))

        # Households: villages in proportion to the people who live there; 90 % listed in the directory.
        residents = {v: [] for v in villages}  # people who can be in a household, by village
        for i in people:
            if not plan.no_household[i]:
                residents[int(plan.village[i])].append(i)
        households = range(commune.first_household, commune.first_household + commune.households)
        weights = [len(residents[v]) + 1 for v in villages]
        cum = list(accumulate(weights))
        household_village = {h: villages[bisect(cum, rng.random() * cum[-1])] for h in households}
        in_directory = {h: rng.random() < 0.9 for h in households}
        family_of = {h: self.family[bisect(self.family_cum, rng.random() * self.family_cum[-1])] for h in households}
        person_household: dict[int, int] = {}
        members: dict[int, list[int]] = {}
        for v in villages:
            homes = [h for h in households if household_village[h] == v]
            living = residents[v]
            rng.shuffle(living)
            wanted = [h for h in homes if not in_directory[h] or rng.random() < 0.92][:len(living)]
            for h, i in zip(wanted, living, strict=False):
                person_household[i] = h
                members[h] = [i]
            for i in living[len(wanted):]:
                h = wanted[int(rng.random() * len(wanted))] if wanted else None
                if h is not None:
                    person_household[i] = h
                    members[h].append(i)
        for h in households:
            if not in_directory[h] and h not in members:
                in_directory[h] = True  # a household made in chat always has a member
        head = {min(group, key=lambda i: (plan.join[i], i)): h for h, group in members.items()}

        # Memberships: exactly the planned members per organisation, chosen by group and engagement.
        claimed = np.array([i for i in people if plan.stop[i] == -1 or plan.stop[i] > 4], dtype=np.int64)
        memberships = self.memberships(commune, rng, claimed, org_ids, by_base)
        yield from self.buffers.full()

        # People, one by one, with everything they did.
        head_names: dict[int, str | None] = {}
        for i in people:
            h = person_household.get(i)
            self.person(rng, i, h, h is not None and head.get(i) == h, family_of.get(h) if h else None,
                        memberships.get(i, ()), head_names)
            if len(out["answer"]) >= BATCH or len(out["activity"]) >= BATCH or len(out["person"]) >= BATCH:
                yield from self.buffers.full()

        # The households, now that their heads have names.
        for h in households:
            listed = in_directory[h]
            group = members.get(h, [])
            code = None
            if group or rng.random() < 0.5:
                code = str(100_000 + (h * self.code_step + self.code_offset) % 900_000)
            if not listed:
                out["household"].append((h, code, household_village[h], None, None, False,
                                         when(min(int(plan.join[j]) for j in group))))
                continue
            head_name = head_names.get(h) if group and rng.random() < 0.6 else None
            if head_name is None:
                head_name = f"{family_of[h]} {rng.choice(MALE_MIDDLE)} {rng.choice(MALE_GIVEN)}"
            size = len(group) + rng.randint(0 if group else 1, 3)
            created = plan.now - DIRECTORY_DAYS * DAY_US + int(rng.random() * HOUR_US)
            out["household"].append((h, code, household_village[h], head_name, size, True, when(created)))
        self.figures(commune, rng, villages)
        yield from self.buffers.full()

    def memberships(self, commune: Commune, rng: random.Random, claimed: np.ndarray, org_ids: list[int],
                    by_base: dict[str, int]) -> dict[int, list[tuple[int, bool, int]]]:
        plan = self.plan
        chosen: dict[int, list[int]] = {}
        generator = np.random.default_rng([plan.seed, commune.index, 7])
        groups = plan.group[claimed] if len(claimed) else np.zeros(0, np.int8)
        engaged = plan.engaged[claimed] if len(claimed) else np.zeros(0, np.bool_)
        big = commune.women_members
        for org_id, base in zip(org_ids, commune.organisation_bases, strict=True):
            if base in CHI_HOI:  # a chi hội: most of its hội's members in its village
                parent, village_index = CHI_HOI[base]
                village = commune.first_village + village_index % len(commune.village_names)
                pool = [i for i in chosen.get(by_base.get(parent, -1), []) if plan.village[i] == village]
                chosen[org_id] = sorted(i for i in pool if rng.random() < 0.85)
                continue
            size = big if base == WOMEN else rng.randint(max(1, big // 13), max(1, big * 3 // 4))
            size = min(size, len(claimed))
            if not size:
                chosen[org_id] = []
                continue
            bias = rng.uniform(-0.6, 0.9)  # organisations whose members learn more, or less
            weights = np.array(affinity(base), np.float64)[groups] * np.where(engaged, 1 + bias, 1 - bias / 2)
            keys = np.log1p(-generator.random(len(claimed))) / weights  # weighted sample without replacement
            picked = np.argpartition(-keys, size - 1)[:size]
            chosen[org_id] = sorted(claimed[picked].tolist())
        result: dict[int, list[tuple[int, bool, int]]] = {}
        for org_id in org_ids:
            rate = rng.uniform(0.45, 0.95)  # how diligent its leader is at confirming claims
            for i in chosen[org_id]:
                at = int(plan.join[i]) + int(rng.uniform(0.02, 45) * DAY_US)
                confirmed = rng.random() < rate and at < plan.now - 10 * MINUTE_US
                result.setdefault(i, []).append((org_id, confirmed, at))
        return result

    def figures(self, commune: Commune, rng: random.Random, villages: range) -> None:
        """Population per target group of each village: the registered divided by the group's coverage."""
        plan = self.plan
        people = slice(commune.first_person, commune.first_person + commune.people)
        village, group, stop = plan.village[people], plan.group[people], plan.stop[people]
        reached = (stop == -1) | (stop > 2)
        missing = (villages[-1], 2) if len(villages) > 1 else None  # not entered: unknown
        for v in villages:
            for g, target in enumerate(GROUPS):
                registered = int(np.count_nonzero((village == v) & (group == g) & reached))
                population = max(registered, math.ceil(registered / rng.uniform(*GROUP_COVERAGE[g])))
                population += rng.randint(0, 12)  # people of the group nobody has reached at all
                self.commune_population[g] += population
                if (v, g) == missing:
                    continue
                self.ids.figure += 1
                self.buffers.lists["populationfigure"].append((self.ids.figure, str(target), v, population))

    def finish(self) -> Iterator[tuple[str, list[tuple[Any, ...]]]]:
        plan, out = self.plan, self.buffers.lists
        for g, target in enumerate(GROUPS):
            self.ids.figure += 1
            out["populationfigure"].append((self.ids.figure, str(target), None, self.commune_population[g]))
        # Anonymous activity of people who erased their data: their rows stay with the person cleared.
        rng = random.Random(f"{plan.seed}/ghosts")
        kinds = (("card_read", 45), ("answer_given", 30), ("lesson_opened", 10), ("quiz_started", 7),
                 ("lesson_finished", 6), ("quiz_failed", 2))
        lesson_ids = [lesson.id for lesson in plan.lessons] or [None]
        history = HISTORY_DAYS * DAY_US
        for _ in range(plan.ghosts):
            self.ids.activity += 1
            at = plan.now - MINUTE_US - int(history * rng.random())
            out["activity"].append((self.ids.activity, None, pick(rng, kinds), rng.choice(lesson_ids), None,
                                    self.when(at)))
            if len(out["activity"]) >= BATCH:
                yield from self.buffers.full()

    # --- one person ---

    def person(self, rng: random.Random, i: int, household: int | None, is_head: bool, family: str | None,
               memberships: Sequence[tuple[int, bool, int]], head_names: dict[int, str | None]) -> None:
        plan, when, ids, out = self.plan, self.when, self.ids, self.buffers.lists
        lessons = plan.lessons
        r = rng.random
        pid = i + 1
        now = plan.now
        join = int(plan.join[i])
        stop = int(plan.stop[i])
        done, extra = int(plan.done[i]), bool(plan.extra[i])
        touched = done + extra
        open_k = int(plan.open_k[i])
        failures = int(plan.failures[i])
        k1, k2, k3 = (share.take(int(counts[i])) for share, counts in
                      zip(self.shares, (plan.tier1, plan.tier2, plan.tier3), strict=True))
        tier2: list[tuple[int, str, str | None, str | None]] = []  # (time, kind, lesson, detail)
        tier3: list[tuple[int, str, str | None, str | None]] | None = [] if k3 else None
        last = join + int(r() * 10 * MINUTE_US)

        # Lessons: opened at times spread between joining and the end of this person's learning.
        end = min(now - 3 * HOUR_US, join + int((0.5 + 240 * r() ** 2) * DAY_US))
        begin = join + 2 * MINUTE_US
        end = max(end, begin + MINUTE_US)
        opens = sorted(begin + int(r() * (end - begin)) for _ in range(touched))
        if touched:
            opens[0] = begin + int(r() * min(end - begin, 3 * DAY_US) * 0.1)
            opens.sort()
        per_lesson = [0] * touched
        for index in failure_lessons(plan.seed, pid, failures, touched, lessons) if failures else ():
            per_lesson[index] += 1
        missed: list[str] = []
        course_done_at = None
        attempts, progress = out["quizattempt"], out["lessonprogress"]
        add_answer = out["answer"].append
        answer_id = ids.answer
        limit = now - SECOND_US
        for index in range(touched):
            lesson = lessons[index]
            questions = lesson.questions
            rows = lesson.rows
            n = len(questions)
            opened = opens[index]
            window_end = opens[index + 1] if index + 1 < touched else min(now - 2 * HOUR_US, opened + 3 * DAY_US)
            tier2.append((opened, "lesson_opened", lesson.id, None))
            t = opened
            for card in range(lesson.cards):
                t += 10 * SECOND_US + int(r() * 80 * SECOND_US)
                if tier3 is not None:
                    tier3.append((t, "card_read", lesson.id, str(card + 1)))
            passes = index < done
            tries = per_lesson[index] + (1 if passes or (index == done and open_k >= 0) else 0)
            gap = max(0, window_end - t) // (tries + 1)
            best = None
            completed_at = None
            for number in range(tries):
                failed = number < per_lesson[index]
                is_open = not failed and not passes
                ids.attempt += 1
                attempt_id = ids.attempt
                start = min(t + int(gap * (0.3 + 0.7 * r())), now - 30 * MINUTE_US)
                tier2.append((start, "quiz_started", lesson.id, None))
                if is_open:
                    asked = open_k
                    wrong = {j for j in range(asked) if r() > questions[j].right}
                else:
                    asked = n
                    allowed = n - lesson.need
                    if failed:
                        low = allowed + 1
                        count = low + _decay(r(), n - low)
                    else:
                        count = 0 if r() < 0.6 or not allowed else 1 + int(r() * allowed)
                    if count == 0:
                        wrong = _NONE
                    elif count == 1:
                        wrong = {bisect(lesson.miss_cum, r() * lesson.miss_cum[-1])}
                    else:
                        wrong = _choose_wrong(r, questions, count)
                at = start
                for j in range(asked):
                    key, option, options, question_id = rows[j]
                    at += 8_000_000 + int(r() * 37_000_000)  # 8-45 s per question
                    if at > limit:
                        at = limit
                    answer_id += 1
                    if j in wrong:
                        right = False
                        option = (option + 1 + int(r() * (options - 1))) % options
                        missed.append(key)
                    else:
                        right = True
                    add_answer((answer_id, attempt_id, key, option, right, when(at)))
                    if tier3 is not None:
                        tier3.append((at, "answer_given", lesson.id, f"{question_id}:{'dung' if right else 'sai'}"))
                if is_open:
                    attempts.append((attempt_id, pid, lesson.id, "lesson", lesson.order_json, n, 0, None, None,
                                     when(start), None))
                    last = max(last, at)
                    continue
                finished = min(at + SECOND_US + int(r() * 4 * SECOND_US), now - SECOND_US)
                correct = n - len(wrong)
                score = round(correct * 100 / n)
                attempts.append((attempt_id, pid, lesson.id, "lesson", lesson.order_json, n, correct, score,
                                 not failed, when(start), when(finished)))
                tier2.append((finished, "quiz_failed" if failed else "lesson_finished", lesson.id, str(score)))
                best = score if best is None else max(best, score)
                if not failed:
                    completed_at = finished
                t = finished
                last = max(last, finished)
            last = max(last, t)
            ids.progress += 1
            progress.append((ids.progress, pid, lesson.id, "completed" if passes else "started", best, when(opened),
                             when(completed_at) if completed_at is not None else None))
            if passes and index == len(lessons) - 1:
                course_done_at = completed_at

        # Reviews of missed questions, a few days after the first lessons.
        if plan.reviews[i]:
            keys = list(dict.fromkeys(missed))
            seen = set(keys)
            others = [q.key for lesson in lessons[:done] for q in lesson.questions if q.key not in seen]
            rng.shuffle(others)
            pool = keys + others
            lowest = opens[0] + 3 * DAY_US if opens else join
            for size in _unpack(int(plan.reviews[i])):
                ids.attempt += 1
                attempt_id = ids.attempt
                start = lowest + int(r() * max(0, now - 2 * HOUR_US - lowest))
                start = min(start, now - 2 * HOUR_US)
                chosen = pool[:size]
                pool = pool[size:] + pool[:size]
                tier2.append((start, "review_started", None, None))
                at = start
                correct = 0
                for key in chosen:
                    question = self.questions[key]
                    at += 8 * SECOND_US + int(r() * 37 * SECOND_US)
                    answer_id += 1
                    right = r() < 0.7
                    correct += right
                    option = question.correct_index
                    if not right:
                        option = (option + 1 + int(r() * (question.options - 1))) % question.options
                    add_answer((answer_id, attempt_id, key, option, right, when(at)))
                    if tier3 is not None:
                        tier3.append((at, "answer_given", key.partition("/")[0],
                                      f"on-tap:{'dung' if right else 'sai'}"))
                finished = at + SECOND_US
                score = round(correct * 100 / size)
                attempts.append((attempt_id, pid, REVIEW_LESSON, "review", json.dumps(chosen), size, correct, score,
                                 correct == size, when(start), when(finished)))
                tier2.append((finished, "review_finished", None, str(score)))
                last = max(last, finished)

        ids.answer = answer_id

        # The person, as registration left them, and their consent.
        gender_female = r() < 0.5
        surname = family if family is not None and r() < 0.7 else \
            self.family[bisect(self.family_cum, r() * self.family_cum[-1])]
        if gender_female:
            name = f"{surname} {rng.choice(FEMALE_MIDDLE)} {rng.choice(FEMALE_GIVEN)}"
        else:
            name = f"{surname} {rng.choice(MALE_MIDDLE)} {rng.choice(MALE_GIVEN)}"
        reached = len(REGISTRATION_ORDER) if stop == -1 else stop  # questions answered
        full_name = name if reached > 0 else None
        village = int(plan.village[i]) or None
        group = int(plan.group[i])
        target_group = str(GROUPS[group]) if reached > 2 else None
        cum_vneid = self.vneid_cum[group]
        vneid = VNEID[bisect(cum_vneid, r() * cum_vneid[-1])] if reached > 5 else None
        new_text = now - NEW_CONSENT_DAYS * DAY_US
        if join >= new_text:
            version, offered = 2, 2
        else:
            if last < new_text and r() < 0.75:  # came back to the menu since, without learning
                last = new_text + int(r() * (now - HOUR_US - new_text))
            if last >= new_text:  # the new text was shown at their next menu
                version, offered = (2, 2) if r() < 0.8 else (1, 2)
            else:
                version, offered = 1, 1
        joined = when(join)
        out["person"].append((pid, full_name, village, household, is_head, target_group, vneid,
                              REGISTRATION_ORDER[stop] if stop >= 0 else None, joined, version, offered, joined))
        if is_head and household is not None:
            head_names[household] = full_name
        out["channelaccount"].append((pid, CHANNEL, external_id(pid), pid, r() < 0.01, joined))
        out["conversationstate"].append((pid, CHANNEL, external_id(pid), "main", "{}", "[]", when(last)))
        for org_id, confirmed, at in memberships:
            ids.membership += 1
            out["membership"].append((ids.membership, pid, org_id, confirmed, when(at) if confirmed else None))

        # Activity: all of tier 1, and this person's share of tiers 2 and 3.
        events = [(join, "consent_given", None, None)]
        if stop == -1:
            events.append((join + MINUTE_US + int(r() * 9 * MINUTE_US), "registered", None, None))
        if course_done_at is not None:
            events.append((course_done_at, "course_finished", None, lessons[-1].course_id))
        chosen_events = events if k1 == len(events) else rng.sample(events, k1)
        if len(tier2) != plan.tier2[i] or (tier3 is not None and len(tier3) != plan.tier3[i]):
            raise AssertionError(f"person {pid}: the plan counted other events than were made")
        if k2:
            chosen_events += tier2 if k2 == len(tier2) else rng.sample(tier2, k2)
        if tier3:
            chosen_events += tier3 if k3 == len(tier3) else rng.sample(tier3, k3)
        chosen_events.sort(key=lambda event: event[0])
        activity = out["activity"]
        for at, kind, lesson_id, detail in chosen_events:
            ids.activity += 1
            activity.append((ids.activity, pid, kind, lesson_id, detail, when(at)))


_NONE: frozenset[int] = frozenset()


def _decay(draw: float, span: int) -> int:
    """0..span, each step less likely than the one before (more wrong answers are rarer)."""
    weights = [0.55, 0.27, 0.12, 0.05, 0.01][:span + 1] or [1.0]
    total = sum(weights)
    point = draw * total
    for value, weight in enumerate(weights):
        point -= weight
        if point < 0:
            return value
    return len(weights) - 1


def _choose_wrong(r: Callable[[], float], questions: Sequence[Question], count: int) -> set[int]:
    """`count` questions answered wrong, the harder ones more likely (weighted, without replacement)."""
    n = len(questions)
    if count <= 0:
        return set()
    if count >= n:
        return set(range(n))
    weights = [q.miss for q in questions]
    wrong: set[int] = set()
    for _ in range(count):
        point = r() * sum(weights)
        chosen = n - 1
        for index, weight in enumerate(weights):
            if weight and point < weight:
                chosen = index
                break
            point -= weight
        if not weights[chosen]:  # rounding at the very end of the range
            chosen = max(range(n), key=weights.__getitem__)
        wrong.add(chosen)
        weights[chosen] = 0.0
    return wrong


# --- running the rows through another thread -------------------------------------------------------

_END = object()


class _Producer:
    """Pulls batches from a generator on a thread of its own, a few ahead: generating the next batch
    overlaps with the database storing this one (sqlite3 and asyncpg's waits release the GIL)."""

    def __init__(self, batches: Iterator[Any], depth: int = 2) -> None:
        self.queue: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._work, args=(batches,), name="generate-rows", daemon=True)
        self.thread.start()

    def _put(self, item: Any) -> bool:
        while not self.stopped.is_set():
            try:
                self.queue.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def _work(self, batches: Iterator[Any]) -> None:
        try:
            for batch in batches:
                if not self._put(batch):
                    return
            self._put(_END)
        except BaseException as error:  # handed to the consumer, which raises it
            self._put(error)

    def get(self) -> Any:
        item = self.queue.get()
        if isinstance(item, BaseException):
            raise item
        return item

    def close(self) -> None:
        self.stopped.set()
        self.thread.join()


def _progress(console: Console | None) -> Progress | contextlib.nullcontext[None]:
    if console is None:
        return contextlib.nullcontext()
    return Progress(SpinnerColumn(), TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), TimeRemainingColumn(), console=console)


@dataclass
class Tracker:
    """Progress bars per table (rich), or nothing."""

    progress: Progress | None
    tasks: dict[str, Any] = field(default_factory=dict)

    def add(self, name: str, description: str, total: int | None) -> None:
        if self.progress is not None:
            self.tasks[name] = self.progress.add_task(description, total=total)

    def advance(self, name: str, count: int) -> None:
        if self.progress is not None and name in self.tasks:
            self.progress.advance(self.tasks[name], count)

    def finish(self, name: str) -> None:
        if self.progress is not None and name in self.tasks:
            task = self.tasks[name]
            self.progress.update(task, completed=self.progress.tasks[task].total or 0)


def make_plan(sizes: Sizes, catalog: Catalog, now: datetime, tracker: Tracker) -> Plan:
    tracker.add("plan", "plan (who learns how much)", sizes.people)
    plan = Plan(sizes, catalog, now, tick=lambda count: tracker.advance("plan", count))
    tracker.finish("plan")
    for table, description in (("person", "people"), ("quizattempt", "quiz attempts"), ("answer", "answers"),
                               ("activity", "activity")):
        tracker.add(table, description, plan.expected[table])
    return plan


# --- SQLite ---------------------------------------------------------------------------------------

async def _migrate(url: str) -> None:
    database = Database(url)
    try:
        await migrate.upgrade(database.engine)
    finally:
        await database.dispose()


def generate(path: Path, sizes: Sizes, catalog: Catalog, now: datetime, console: Console | None = None
             ) -> dict[str, int]:
    """A commune (or a province) in a new SQLite file: the schema by Alembic, the rows by plain sqlite3.

    The non-unique indexes are dropped during the load and created again from their own SQL (the schema
    stays the migrations'). No ANALYZE: the bot never runs it on SQLite. Returns the rows per table.
    """
    asyncio.run(_migrate(f"sqlite+aiosqlite:///{path}"))
    with _progress(console) as progress:
        tracker = Tracker(progress)
        plan = make_plan(sizes, catalog, now, tracker)
        connection = sqlite3.connect(path, isolation_level=None)
        try:
            # A new file, thrown away if this fails: no journal while loading, WAL (as the bot runs it) after.
            connection.execute("PRAGMA journal_mode=OFF")
            connection.execute("PRAGMA synchronous=OFF")
            connection.execute("PRAGMA cache_size=-32000")
            connection.execute("BEGIN")
            indexes = connection.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL AND tbl_name IN "
                f"({', '.join('?' * len(TABLES))}) ORDER BY name", list(TABLES)).fetchall()
            for name, _ in indexes:
                connection.execute(f'DROP INDEX "{name}"')
            statements = {table: sqlite_insert(table) for table in TABLES}
            producer = _Producer(plan.rows(int))
            try:
                while (batch := producer.get()) is not _END:
                    table, rows = batch
                    connection.executemany(statements[table], rows)
                    tracker.advance(table, len(rows))
            finally:
                producer.close()
            tracker.add("indexes", "indexes", len(indexes))
            for _, sql in indexes:
                connection.execute(sql)
                tracker.advance("indexes", 1)
            connection.execute(f"PRAGMA user_version = {sizes.marker}")
            connection.execute("COMMIT")
            connection.execute("PRAGMA journal_mode=WAL")
        finally:
            connection.close()
    return row_counts(path)


TIME_COLUMNS = {"created_at", "consent_at", "updated_at", "confirmed_at", "started_at", "completed_at", "finished_at",
                "answered_at", "at"}
# A generated time (µs since 2000) as SQLite stores a UTCDateTime, computed by SQLite itself: the same text
# as sqlite_time() gives, at a fraction of its cost (checked by tests/test_generate_commune.py).
SQLITE_TIME = ("strftime('%Y-%m-%d %H:%M:%S', ?{n} / 1000000 + 946684800, 'unixepoch') "
               "|| printf('.%06d', ?{n} % 1000000)")


def sqlite_insert(table: str) -> str:
    columns = TABLES[table]
    values = [SQLITE_TIME.format(n=n) if column in TIME_COLUMNS else f"?{n}"
              for n, column in enumerate(columns, start=1)]
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(values)})"


def row_counts(path: Path) -> dict[str, int]:
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return {table: connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in TABLES}
    finally:
        connection.close()


def marker_of(path: Path) -> int | None:
    if not path.exists():
        return None
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return connection.execute("PRAGMA user_version").fetchone()[0]
    except sqlite3.DatabaseError:
        return None
    finally:
        connection.close()


# --- PostgreSQL -----------------------------------------------------------------------------------

def asyncpg_dsn(url: str, database: str | None = None) -> str:
    from sqlalchemy.engine import make_url

    parsed = make_url(url).set(drivername="postgresql")
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


def database_name(url: str) -> str:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if not parsed.drivername.startswith("postgresql"):
        raise SystemExit(f"not a PostgreSQL URL: {parsed.drivername}")
    name = parsed.database or ""
    if not name or name in REFUSED_DATABASES:
        raise SystemExit(f"refusing to generate into database {name!r}: choose another name")
    return name


async def prepare_database(url: str, *, replace: bool) -> None:
    """Create the database if it is missing; an existing one must be empty, or is dropped with --replace."""
    import asyncpg

    name = database_name(url)
    admin = await asyncpg.connect(asyncpg_dsn(url, "postgres"))
    try:
        exists = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if exists and replace:
            await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            exists = None
        if not exists:
            await admin.execute(f'CREATE DATABASE "{name}"')
            return
    finally:
        await admin.close()
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        has_rows = bool(await connection.fetchval("SELECT to_regclass('person') IS NOT NULL")) and bool(
            await connection.fetchval("SELECT EXISTS (SELECT 1 FROM person)"))
    finally:
        await connection.close()
    if has_rows:
        raise SystemExit(f"database {name} exists and holds people; give --replace to drop it and start again")


SCHEMA_QUERY_CONSTRAINTS = """
SELECT c.conname, c.contype::text, t.relname, pg_get_constraintdef(c.oid), r.relname
FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid JOIN pg_namespace n ON n.oid = t.relnamespace
LEFT JOIN pg_class r ON r.oid = c.confrelid
WHERE n.nspname = current_schema() ORDER BY t.relname, c.conname
"""
SCHEMA_QUERY_INDEXES = """
SELECT indexname, tablename, indexdef FROM pg_indexes WHERE schemaname = current_schema() ORDER BY indexname
"""


async def schema_of(connection: Any) -> dict[str, list[tuple[Any, ...]]]:
    """Constraints and indexes of the current schema: what the load drops and must put back the same."""
    constraints = [tuple(row) for row in await connection.fetch(SCHEMA_QUERY_CONSTRAINTS)]
    indexes = [tuple(row) for row in await connection.fetch(SCHEMA_QUERY_INDEXES)]
    return {"constraints": constraints, "indexes": indexes}


_TIMESTAMP = struct.Struct("!q")


async def load_postgres(url: str, sizes: Sizes, catalog: Catalog, now: datetime, *, replace: bool = False,
                        console: Console | None = None) -> dict[str, Any]:
    """Create (or reuse an empty) database, migrate it and fill it by COPY; returns timings and counts."""
    import asyncpg

    timings: dict[str, float] = {}
    started = time.perf_counter()
    await prepare_database(url, replace=replace)
    await _migrate(url)
    timings["create and migrate"] = time.perf_counter() - started
    connection = await asyncpg.connect(asyncpg_dsn(url), command_timeout=None)
    try:
        # Timestamps go as PostgreSQL's own binary value (µs since 2000), not through datetime objects.
        await connection.set_type_codec("timestamp", schema="pg_catalog", format="binary",
                                        encoder=_TIMESTAMP.pack, decoder=lambda data: _TIMESTAMP.unpack(data)[0])
        await connection.execute("SET synchronous_commit = off")
        await connection.execute("SET maintenance_work_mem = '512MB'")
        before = await schema_of(connection)
        loaded = set(TABLES)
        foreign = [row for row in before["constraints"] if row[1] == "f" and (row[2] in loaded or row[4] in loaded)]
        keys = [row for row in before["constraints"] if row[1] in ("p", "u") and row[2] in loaded]
        backing = {row[0] for row in before["constraints"]}
        indexes = [row for row in before["indexes"] if row[1] in loaded and row[0] not in backing]
        for name, _, table, _, _ in foreign + keys:
            await connection.execute(f'ALTER TABLE "{table}" DROP CONSTRAINT "{name}"')
        for name, _, _ in indexes:
            await connection.execute(f'DROP INDEX "{name}"')

        with _progress(console) as progress:
            tracker = Tracker(progress)
            mark = time.perf_counter()
            plan = make_plan(sizes, catalog, now, tracker)
            timings["plan"] = time.perf_counter() - mark
            mark = time.perf_counter()
            producer = _Producer(plan.rows(postgres_time))
            try:
                while (batch := await asyncio.to_thread(producer.get)) is not _END:
                    table, rows = batch
                    await connection.copy_records_to_table(table, records=rows, columns=list(TABLES[table]))
                    tracker.advance(table, len(rows))
            finally:
                producer.close()
            timings["rows (COPY)"] = time.perf_counter() - mark

            mark = time.perf_counter()
            steps = ([f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" {definition}'
                      for name, _, table, definition, _ in keys]
                     + [definition for _, _, definition in indexes]
                     + [f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" {definition}'
                        for name, _, table, definition, _ in foreign])
            tracker.add("indexes", "keys, indexes, foreign keys", len(steps))
            for statement in steps:
                await connection.execute(statement)
                tracker.advance("indexes", 1)
            timings["keys, indexes, foreign keys"] = time.perf_counter() - mark
            after = await schema_of(connection)
            if after != before:
                raise RuntimeError("the schema after the load differs from the migrated one")
            for table in TABLES:
                await connection.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"coalesce((SELECT max(id) FROM \"{table}\"), 0) + 1, false)")
            mark = time.perf_counter()
            tracker.add("vacuum", "vacuum (analyze)", len(TABLES))
            for table in TABLES:
                await connection.execute(f'VACUUM (ANALYZE) "{table}"')
                tracker.advance("vacuum", 1)
            timings["vacuum analyze"] = time.perf_counter() - mark
        counts = {table: await connection.fetchval(f'SELECT count(*) FROM "{table}"') for table in TABLES}
        size = await connection.fetchval("SELECT pg_database_size(current_database())")
    finally:
        await connection.close()
    timings["total"] = time.perf_counter() - started
    return {"rows": counts, "bytes": size, "seconds": timings, "expected": plan.expected}


# --- checks, used by the test ------------------------------------------------------------------------

SANITY = {
    "answers without their attempt": "SELECT count(*) FROM answer a LEFT JOIN quizattempt q ON q.id = a.attempt_id "
                                     "WHERE q.id IS NULL",
    "attempts without their person": "SELECT count(*) FROM quizattempt q LEFT JOIN person p ON p.id = q.person_id "
                                     "WHERE p.id IS NULL",
    "memberships without person or organisation": (
        "SELECT count(*) FROM membership m LEFT JOIN person p ON p.id = m.person_id "
        "LEFT JOIN organisation o ON o.id = m.organisation_id WHERE p.id IS NULL OR o.id IS NULL"),
    "people in a missing village or household": (
        "SELECT count(*) FROM person p LEFT JOIN village v ON v.id = p.village_id "
        "LEFT JOIN household h ON h.id = p.household_id "
        "WHERE (p.village_id IS NOT NULL AND v.id IS NULL) OR (p.household_id IS NOT NULL AND h.id IS NULL)"),
    "people in a household of another village": (
        "SELECT count(*) FROM person p JOIN household h ON h.id = p.household_id WHERE h.village_id <> p.village_id"),
    "households with members but not one head": (
        "SELECT count(*) FROM (SELECT household_id FROM person WHERE household_id IS NOT NULL GROUP BY household_id "
        "HAVING sum(CASE WHEN is_household_head THEN 1 ELSE 0 END) <> 1) x"),
    "households made in chat without members": (
        "SELECT count(*) FROM household h WHERE NOT h.in_directory AND NOT EXISTS "
        "(SELECT 1 FROM person p WHERE p.household_id = h.id)"),
    "activity of missing people": "SELECT count(*) FROM activity a LEFT JOIN person p ON p.id = a.person_id "
                                  "WHERE a.person_id IS NOT NULL AND p.id IS NULL",
    "progress without person": "SELECT count(*) FROM lessonprogress l LEFT JOIN person p ON p.id = l.person_id "
                               "WHERE p.id IS NULL",
    "finished attempts without all their answers": (
        "SELECT count(*) FROM quizattempt q WHERE q.finished_at IS NOT NULL AND q.total <> "
        "(SELECT count(*) FROM answer a WHERE a.attempt_id = q.id)"),
    "attempts whose correct count differs from their answers": (
        "SELECT count(*) FROM quizattempt q WHERE q.finished_at IS NOT NULL AND q.correct <> "
        "(SELECT count(*) FROM answer a WHERE a.attempt_id = q.id AND a.correct)"),
    "completed lessons without a passed attempt": (
        "SELECT count(*) FROM lessonprogress l WHERE l.status = 'completed' AND NOT EXISTS (SELECT 1 FROM quizattempt "
        "q WHERE q.person_id = l.person_id AND q.lesson_id = l.lesson_id AND q.passed)"),
    "answers after their attempt finished": (
        "SELECT count(*) FROM answer a JOIN quizattempt q ON q.id = a.attempt_id WHERE a.answered_at > q.finished_at "
        "OR a.answered_at < q.started_at"),
    "chi hội without their hội": "SELECT count(*) FROM organisation o LEFT JOIN organisation p ON p.id = o.parent_id "
                                 "WHERE o.parent_id IS NOT NULL AND p.id IS NULL",
    "population figures of missing villages": (
        "SELECT count(*) FROM populationfigure f LEFT JOIN village v ON v.id = f.village_id "
        "WHERE f.village_id IS NOT NULL AND v.id IS NULL"),
}
"""Queries that must all count 0 on a generated database (plain SQL, the same on SQLite and PostgreSQL)."""


# --- the command -------------------------------------------------------------------------------------

def parse_now(text: str | None) -> datetime:
    if not text:
        return default_now()
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def human_bytes(count: int) -> str:
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    commands = parser.add_subparsers(dest="what", required=True)
    commune = commands.add_parser("commune", help="a commune in an SQLite file")
    commune.add_argument("--db", type=Path, required=True, help="the SQLite file to make")
    province = commands.add_parser("province", help="a province on PostgreSQL")
    province.add_argument("--url", default=DEFAULT_PROVINCE_URL, help="postgresql+asyncpg URL; the database is "
                          f"created if missing (default {DEFAULT_PROVINCE_URL})")
    for command in (commune, province):
        command.add_argument("--sizes", choices=("full", "small"), default="full",
                             help="full: the issue's sizes; small: a tiny dataset made in a second or two")
        command.add_argument("--seed", type=int, default=SEED)
        command.add_argument("--now", help="the moment the data ends (ISO date or time, UTC); default today 00:00 UTC")
        command.add_argument("--replace", action="store_true", help="remove an existing file or database first")
    options = parser.parse_args(argv)
    sizes = sizes_for(options.what, options.sizes, options.seed)
    now = parse_now(options.now)
    console = Console(stderr=True)
    catalog = load_catalog()
    console.print(f"{options.what} ({options.sizes}): {sizes.people:,} people, {sizes.households:,} households, "
                  f"{sizes.villages:,} villages, {sizes.organisations:,} organisations, {sizes.answers:,} answers, "
                  f"{sizes.activity:,} activity rows; seed {sizes.seed}, now {now.isoformat()}")
    started = time.perf_counter()
    if options.what == "commune":
        path = options.db.resolve()
        if path.exists():
            if not options.replace:
                raise SystemExit(f"{path} exists; give --replace to make it again")
            for suffix in ("", "-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    Path(f"{path}{suffix}").unlink()
        counts = generate(path, sizes, catalog, now, console)
        seconds = {"total": time.perf_counter() - started}
        size = path.stat().st_size
        where = str(path)
    else:
        result = asyncio.run(load_postgres(options.url, sizes, catalog, now, replace=options.replace,
                                           console=console))
        counts, size, seconds = result["rows"], result["bytes"], result["seconds"]
        where = options.url
    console.print(f"generated {where} in {time.perf_counter() - started:.1f} s; size {human_bytes(size)}")
    for phase, value in seconds.items():
        console.print(f"  {phase}: {value:.1f} s")
    for table, count in counts.items():
        console.print(f"  {table}: {count:,} rows")
    print(json.dumps({"what": options.what, "sizes": options.sizes, "seed": sizes.seed, "now": now.isoformat(),
                      "where": where, "seconds": {k: round(v, 1) for k, v in seconds.items()}, "bytes": size,
                      "rows": counts, "python": sys.version.split()[0], "cores": os.cpu_count()}, ensure_ascii=False))


if __name__ == "__main__":
    main()
