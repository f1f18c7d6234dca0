"""Reads and validates every content file, naming each error with its file and field."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from content.schema import Course, Lesson

CONTENT_DIR = Path(__file__).parent
ModelT = TypeVar("ModelT", bound=BaseModel)


@dataclass(frozen=True)
class ContentProblem:
    """One thing wrong with the content: where, and what."""

    file: str
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}: {self.field}" if self.field else self.file
        return f"{where}: {self.message}"


class ContentError(Exception):
    """The content does not load; `problems` lists every error found."""

    def __init__(self, problems: list[ContentProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(problem) for problem in problems))


@dataclass(frozen=True)
class Catalog:
    """The validated curriculum: courses in file order, lessons by id."""

    courses: tuple[Course, ...]
    lessons: dict[str, Lesson] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)  # lesson or course id -> file, relative to the root

    @property
    def core_course(self) -> Course:
        return next((course for course in self.courses if course.core), self.courses[0])

    def lesson(self, lesson_id: str) -> Lesson | None:
        return self.lessons.get(lesson_id)

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


def load_catalog(directory: Path | None = None) -> Catalog:
    """Load `courses/*.yaml` and `lessons/*.yaml`; raise ContentError listing every problem."""
    root = directory or CONTENT_DIR
    problems: list[ContentProblem] = []
    lessons: dict[str, Lesson] = {}
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
        lessons[lesson.id] = lesson
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
    if problems:
        raise ContentError(problems)
    return Catalog(courses=tuple(courses), lessons=lessons, files={**files, **_prefixed(course_files)})


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
