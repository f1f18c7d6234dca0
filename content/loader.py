"""Reads and validates every content file, naming each error with its file and field."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from content.channels import channel_problems
from content.contacts import Contacts, load_contacts, placeholder_problems, render_placeholders, unset_contacts
from content.problems import ContentError, ContentProblem
from content.schema import Course, Lesson, option_key

__all__ = ["CONTENT_DIR", "Catalog", "ContentError", "ContentProblem", "link_problems", "load_catalog"]

CONTENT_DIR = Path(__file__).parent
ModelT = TypeVar("ModelT", bound=BaseModel)


@dataclass(frozen=True)
class Catalog:
    """The validated curriculum: courses in file order, lessons by id.

    `lessons` are ready to show: their `{lien-he:…}` placeholders are replaced by the commune's contacts.
    `written` keeps each lesson as its file has it, placeholders and all, for tools that write files back
    (the spreadsheet export and import).
    """

    courses: tuple[Course, ...]
    lessons: dict[str, Lesson] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)  # lesson or course id -> file, relative to the root
    written: dict[str, Lesson] = field(default_factory=dict)
    contacts: Contacts = field(default_factory=unset_contacts)

    @property
    def core_course(self) -> Course:
        return next((course for course in self.courses if course.core), self.courses[0])

    def core_lessons(self, day: date) -> tuple[str, ...]:
        """The core lessons that count towards "finished" on `day` (the commune's date)."""
        return self.core_course.required_on(day)

    def lesson(self, lesson_id: str) -> Lesson | None:
        return self.lessons.get(lesson_id)

    def as_written(self, lesson_id: str) -> Lesson | None:
        """The lesson as its file has it (placeholders not replaced)."""
        return self.written.get(lesson_id, self.lessons.get(lesson_id))

    def course(self, course_id: str) -> Course | None:
        return next((course for course in self.courses if course.id == course_id), None)

    def ordered_lessons(self) -> list[Lesson]:
        """Lessons in course order, each once."""
        seen: dict[str, Lesson] = {}
        for course in self.courses:
            for lesson_id in course.lessons:
                seen.setdefault(lesson_id, self.lessons[lesson_id])
        return list(seen.values())


def _field_path(location: tuple[object, ...]) -> str:
    parts: list[str] = []
    for item in location:
        if isinstance(item, int):
            parts.append(f"[{item + 1}]")
        else:
            parts.append(("." if parts else "") + str(item))
    return "".join(parts)


def _read_file(
    path: Path, model: type[ModelT], root: Path
) -> tuple[ModelT | None, list[ContentProblem]]:
    name = str(path.relative_to(root)) if path.is_relative_to(root) else str(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        return None, [ContentProblem(name, "", f"không đọc được tệp: {exc}")]
    if not isinstance(raw, dict):
        return None, [ContentProblem(name, "", "tệp phải là một bảng khóa: giá trị (mapping)")]
    try:
        return model.model_validate(raw), []
    except ValidationError as exc:
        return None, [
            ContentProblem(name, _field_path(error["loc"]), error["msg"]) for error in exc.errors()
        ]


def load_catalog(directory: Path | None = None, *, strict: bool = False) -> Catalog:
    """Load `courses/*.yaml`, `lessons/*.yaml` and `local-contacts.yaml`; raise ContentError listing every problem.

    `strict` adds the rules of `hocvuso content check` that judge the course as a whole rather than
    what the bot needs to run (today: no option text repeated across questions).
    """
    root = directory or CONTENT_DIR
    contacts, problems = load_contacts(root)
    lessons: dict[str, Lesson] = {}
    written: dict[str, Lesson] = {}
    files: dict[str, str] = {}
    for path in sorted((root / "lessons").glob("*.yaml")):
        lesson, found = _read_file(path, Lesson, root)
        problems.extend(found)
        if lesson is None:
            continue
        name = str(path.relative_to(root))
        if lesson.id in lessons:
            problems.append(ContentProblem(name, "id", f"mã bài {lesson.id!r} đã dùng ở {files[lesson.id]}"))
            continue
        placeholders = _placeholder_problems(lesson, name)
        problems.extend(placeholders)
        shown = _rendered(lesson, contacts)
        if not placeholders:
            problems.extend(ContentProblem(name, where, message) for where, message in channel_problems(shown))
        lessons[lesson.id] = shown
        written[lesson.id] = lesson
        files[lesson.id] = name
    courses: list[Course] = []
    course_files: dict[str, str] = {}
    for path in sorted((root / "courses").glob("*.yaml")):
        course, found = _read_file(path, Course, root)
        problems.extend(found)
        if course is None:
            continue
        name = str(path.relative_to(root))
        for index, lesson_id in enumerate(course.lessons):
            if lesson_id not in lessons:
                problems.append(ContentProblem(name, f"lessons[{index + 1}]", f"không có bài học mã {lesson_id!r}"))
        courses.append(course)
        course_files.setdefault(course.id, name)
    problems.extend(_catalog_problems(courses, lessons, files))
    if strict:
        problems.extend(repeated_options([(files[lesson_id], lesson) for lesson_id, lesson in written.items()]))
    if problems:
        raise ContentError(problems)
    return Catalog(courses=tuple(courses), lessons=lessons, files={**files, **_prefixed(course_files)},
                   written=written, contacts=contacts)


def _rendered(lesson: Lesson, contacts: Contacts) -> Lesson:
    cards = [render_placeholders(card, contacts) for card in lesson.cards]
    return lesson if cards == lesson.cards else lesson.model_copy(update={"cards": cards})


def _placeholder_problems(lesson: Lesson, name: str) -> list[ContentProblem]:
    """Placeholders are for the commune's contacts, and only in cards; each unknown one is named."""
    texts: list[tuple[str, str, bool]] = [("title", lesson.title, False), ("promise", lesson.promise, False)]
    texts += [(f"cards[{i}]", card, True) for i, card in enumerate(lesson.cards, start=1)]
    for q, question in enumerate(lesson.quiz, start=1):
        texts += [(f"quiz[{q}].question", question.question, False),
                  (f"quiz[{q}].explanation", question.explanation, False)]
        texts += [(f"quiz[{q}].options[{o}].text", option.text, False)
                  for o, option in enumerate(question.options, start=1)]
    return [
        ContentProblem(name, where, message)
        for where, text, allowed in texts
        for message in placeholder_problems(text, allowed=allowed)
    ]


def repeated_options(lessons: list[tuple[str, Lesson]]) -> list[ContentProblem]:
    """Every option whose text (compared by `option_key`) already appeared in an earlier question.

    A wrong option that comes back in several questions teaches people to rule it out by sight; a right
    one lets them pass without reading.
    """
    seen: dict[str, str] = {}
    problems = []
    for name, lesson in lessons:
        for q, question in enumerate(lesson.quiz, start=1):
            for o, option in enumerate(question.options, start=1):
                where = f"quiz[{q}].options[{o}].text"
                first = seen.setdefault(option_key(option.text), f"{name} {where}")
                if first != f"{name} {where}" and not first.startswith(f"{name} quiz[{q}]."):
                    problems.append(ContentProblem(
                        name, where, f"lựa chọn {option.text!r} đã có ở {first}; hãy viết lại cho khác"))
    return problems


def _prefixed(course_files: dict[str, str]) -> dict[str, str]:
    return {f"khoa:{course_id}": name for course_id, name in course_files.items()}


@dataclass(frozen=True)
class LinkProblem:
    """Something wrong between courses and lessons; `lesson_id` when it concerns one lesson file."""

    message: str
    lesson_id: str | None = None
    missing_lesson: bool = False


def link_problems(courses: list[Course], lessons: dict[str, Lesson]) -> list[LinkProblem]:
    """Missing lessons, lessons in no course, several core courses, repeated course ids."""
    if not courses:
        return [LinkProblem("cần ít nhất một khóa học")]
    problems: list[LinkProblem] = []
    if sum(course.core for course in courses) > 1:
        problems.append(LinkProblem("chỉ một khóa học được đánh dấu là khóa cơ bản (core: true)"))
    ids = [course.id for course in courses]
    repeated = sorted({course_id for course_id in ids if ids.count(course_id) > 1})
    problems.extend(LinkProblem(f"mã khóa {course_id!r} bị lặp") for course_id in repeated)
    for course in courses:
        problems.extend(
            LinkProblem(f"khóa {course.id!r} liệt kê bài {lesson_id!r} nhưng không có bài này", missing_lesson=True)
            for lesson_id in course.lessons if lesson_id not in lessons
        )
    reachable = {lesson_id for course in courses for lesson_id in course.lessons}
    problems.extend(
        LinkProblem("bài học không thuộc khóa học nào", lesson_id)
        for lesson_id in lessons if lesson_id not in reachable
    )
    return problems


def _catalog_problems(
    courses: list[Course], lessons: dict[str, Lesson], lesson_files: dict[str, str]
) -> list[ContentProblem]:
    # Missing lessons are already reported against the course file's line; the rest names its file.
    return [
        ContentProblem(lesson_files[problem.lesson_id], "id", problem.message)
        if problem.lesson_id else ContentProblem("courses/", "", problem.message)
        for problem in link_problems(courses, lessons)
        if not problem.missing_lesson
    ]
