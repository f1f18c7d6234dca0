"""The shape of lesson and course files, with the limits of the content guide."""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from enum import StrEnum
from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

TITLE_MAX = 60
CARD_MAX = 600
OPTION_MAX = 100
EXPLANATION_MAX = 200
QUESTION_MAX = 300
CARDS_MIN, CARDS_MAX = 3, 6
QUESTIONS_MIN, QUESTIONS_MAX = 4, 5
OPTIONS_MIN, OPTIONS_MAX = 3, 4
# Ids are stored in database columns (storage/models.py): lesson ids in lesson_id (40), question ids in
# activity details ("question-id:dung", 60), course ids in activity details. `content` may not import
# `storage`, so tests/test_content.py pins these limits to the columns themselves.
ID_MAX = 32
# Each answer stores "lesson-id/question-id" (answer.question_id, 60 characters).
ANSWER_KEY_MAX = 60

Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$", max_length=ID_MAX)]


def _text(max_length: int) -> type[str]:
    return Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=max_length)]


class CitizenGroup(StrEnum):
    """The four groups of the basic digital skills framework (QĐ 757/QĐ-BKHCN, 2025)."""

    RESIDENT = "nguoi-dan"
    STUDENT = "hoc-sinh-sinh-vien"
    OFFICIAL = "can-bo-cong-chuc"
    WORKER = "nguoi-lao-dong-doanh-nghiep"


class Domain(StrEnum):
    """The domains of the digital competence framework (Thông tư 02/2025/TT-BGDĐT)."""

    DATA = "khai-thac-du-lieu"
    COMMUNICATION = "giao-tiep-hop-tac"
    CREATION = "sang-tao-noi-dung"
    SAFETY = "an-toan"
    PROBLEM_SOLVING = "giai-quyet-van-de"
    AI = "ung-dung-ai"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Option(Strict):
    text: _text(OPTION_MAX)  # type: ignore[valid-type]
    correct: bool = False


def option_key(text: str) -> str:
    """An option's text as compared for repeats: NFC, casefolded, spaces collapsed, no trailing punctuation."""
    key = re.sub(r"\s+", " ", unicodedata.normalize("NFC", text).casefold()).strip()
    while key and (key[-1].isspace() or unicodedata.category(key[-1]).startswith("P")):
        key = key[:-1]
    return key


class Question(Strict):
    id: Slug
    question: _text(QUESTION_MAX)  # type: ignore[valid-type]
    options: list[Option]
    explanation: _text(EXPLANATION_MAX)  # type: ignore[valid-type]

    @field_validator("options")
    @classmethod
    def _three_or_four_one_correct(cls, options: list[Option]) -> list[Option]:
        problems = []
        if not OPTIONS_MIN <= len(options) <= OPTIONS_MAX:
            problems.append(f"cần {OPTIONS_MIN} hoặc {OPTIONS_MAX} lựa chọn, đang có {len(options)}")
        correct = sum(option.correct for option in options)
        if correct != 1:
            problems.append(f"cần đúng một đáp án đúng (correct: true), đang có {correct}")
        seen: dict[str, int] = {}
        for number, option in enumerate(options, start=1):
            first = seen.setdefault(option_key(option.text), number)
            if first != number:
                problems.append(f"lựa chọn {number} trùng với lựa chọn {first}")
        if problems:
            raise ValueError("; ".join(problems))
        return options

    @property
    def correct_index(self) -> int:
        return next(i for i, option in enumerate(self.options) if option.correct)


class Tags(Strict):
    groups: list[CitizenGroup] = Field(min_length=1)
    domain: Domain


class Source(Strict):
    title: _text(200)  # type: ignore[valid-type]
    url: Annotated[str, StringConstraints(pattern=r"^https?://\S+$")] | None = None


class Lesson(Strict):
    id: Slug
    title: _text(TITLE_MAX)  # type: ignore[valid-type]
    promise: _text(200)  # type: ignore[valid-type]
    tags: Tags
    cards: list[_text(CARD_MAX)] = Field(min_length=CARDS_MIN, max_length=CARDS_MAX)  # type: ignore[valid-type]
    quiz: list[Question] = Field(min_length=QUESTIONS_MIN, max_length=QUESTIONS_MAX)
    sources: list[Source] = Field(min_length=1)

    @field_validator("quiz")
    @classmethod
    def _answer_keys_fit(cls, quiz: list[Question], info: ValidationInfo) -> list[Question]:
        lesson_id = info.data.get("id")  # absent when the id itself is invalid: reported already
        if not isinstance(lesson_id, str):
            return quiz
        for number, question in enumerate(quiz, start=1):
            length = len(answer_key(lesson_id, question.id))
            if length > ANSWER_KEY_MAX:
                raise PydanticCustomError(
                    "answer_key_too_long",
                    "câu {number}: mã bài + \"/\" + mã câu '{question}' dài {length} ký tự, tối đa {limit}; "
                    "hãy rút ngắn mã bài hoặc mã câu",
                    {"number": number, "question": question.id, "length": length, "limit": ANSWER_KEY_MAX},
                )
        return quiz

    @model_validator(mode="after")
    def _unique_question_ids(self) -> Lesson:
        seen: set[str] = set()
        for question in self.quiz:
            if question.id in seen:
                raise ValueError(f"mã câu hỏi {question.id!r} bị lặp")
            seen.add(question.id)
        return self

    def question(self, question_id: str) -> Question | None:
        return next((q for q in self.quiz if q.id == question_id), None)


def answer_key(lesson_id: str, question_id: str) -> str:
    """How an answer names its question in the database: unique across lessons."""
    return f"{lesson_id}/{question_id}"


class Course(Strict):
    """A course. `required_from` names lessons added to a course people were already finishing: each
    counts towards "finished" only from its date (a reporting year's first day), so a lesson added
    before the deadline does not take back anyone's finished course in that year's report."""

    id: Slug
    title: _text(TITLE_MAX)  # type: ignore[valid-type]
    core: bool = False
    lessons: list[Slug] = Field(min_length=1)
    required_from: dict[Slug, date] = Field(default_factory=dict)

    @field_validator("lessons")
    @classmethod
    def _no_repeats(cls, lessons: list[str]) -> list[str]:
        if len(set(lessons)) != len(lessons):
            raise ValueError("một bài học được liệt kê hai lần")
        return lessons

    @model_validator(mode="after")
    def _dated_lessons_listed(self) -> Course:
        unlisted = sorted(set(self.required_from) - set(self.lessons))
        if unlisted:
            raise ValueError(f"required_from nêu bài không có trong lessons: {', '.join(unlisted)}")
        if all(lesson in self.required_from for lesson in self.lessons):
            raise ValueError("required_from không được hẹn ngày cho mọi bài: khóa học cần ít nhất một bài tính ngay")
        return self

    def required_on(self, day: date) -> tuple[str, ...]:
        """The lessons a person must have completed to have finished the course on `day`."""
        return tuple(lesson for lesson in self.lessons
                     if (since := self.required_from.get(lesson)) is None or since <= day)


GROUP_LABELS: dict[CitizenGroup, str] = {
    CitizenGroup.RESIDENT: "Người dân",
    CitizenGroup.STUDENT: "Học sinh, sinh viên",
    CitizenGroup.OFFICIAL: "Cán bộ, công chức, viên chức",
    CitizenGroup.WORKER: "Người lao động doanh nghiệp",
}
