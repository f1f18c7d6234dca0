"""The question bank as a spreadsheet: staff export every lesson and question, edit, and import back.

An import changes nothing unless the whole file is valid; every error names sheet, row and column.
Only lessons and courses whose content changed are written; new ones get new files.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from openpyxl import Workbook, load_workbook
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter
from pydantic import ValidationError

from content.files import write_course, write_lesson
from content.loader import CONTENT_DIR, Catalog, ContentError, link_problems, load_catalog
from content.schema import CARDS_MAX, OPTIONS_MAX, Course, Lesson, Question

COURSES, LESSONS, QUESTIONS = "Khóa học", "Bài học", "Câu hỏi"
REQUIRED_FROM = "Bài chỉ tính vào hoàn thành từ ngày (mỗi dòng: mã: năm-tháng-ngày)"
COURSE_COLUMNS = ["Mã khóa", "Tên khóa", "Khóa cơ bản (có/không)", "Các bài (mã, mỗi dòng một bài)", REQUIRED_FROM]
# A workbook exported before a column existed still imports: the column is then empty.
OPTIONAL_COLUMNS = frozenset({REQUIRED_FROM})
LESSON_COLUMNS = [
    "Mã bài", "Tên bài", "Sau bài này bạn có thể", "Nhóm đối tượng (QĐ 757)", "Lĩnh vực (TT 02/2025)",
    *[f"Thẻ {n}" for n in range(1, CARDS_MAX + 1)], "Nguồn (mỗi dòng: tên | địa chỉ)",
]
LETTERS = "ABCD"[:OPTIONS_MAX]
QUESTION_COLUMNS = [
    "Mã bài", "Mã câu", "Câu hỏi", *[f"Phương án {letter}" for letter in LETTERS], "Đáp án đúng (A-D)",
    "Giải thích",
]
YES = {"có", "co", "x", "yes", "true", "1"}


@dataclass(frozen=True)
class CellProblem:
    sheet: str
    row: int
    column: str  # header text; the letter is added when printed
    message: str
    letter: str = ""

    def __str__(self) -> str:
        where = f"{self.sheet}, dòng {self.row}"
        if self.column:
            where += f", cột {self.letter} ({self.column})" if self.letter else f", cột {self.column}"
        return f"{where}: {self.message}"


class SpreadsheetError(Exception):
    def __init__(self, problems: list[CellProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(problem) for problem in problems))


@dataclass
class ImportResult:
    new: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)


# --- export -------------------------------------------------------------------------------------

def export_workbook(catalog: Catalog, path: Path) -> None:
    """Write every course, lesson and question to `path` (.xlsx)."""
    book = Workbook()
    courses = book.active
    courses.title = COURSES
    _header(courses, COURSE_COLUMNS)
    for course in catalog.courses:
        courses.append([course.id, course.title, "có" if course.core else "không", "\n".join(course.lessons),
                        "\n".join(f"{lesson}: {day.isoformat()}" for lesson, day in course.required_from.items())])
    lessons = book.create_sheet(LESSONS)
    questions = book.create_sheet(QUESTIONS)
    _header(lessons, LESSON_COLUMNS)
    _header(questions, QUESTION_COLUMNS)
    for lesson in _lessons_in_order(catalog):
        cards = [*lesson.cards, *[None] * (CARDS_MAX - len(lesson.cards))]
        sources = "\n".join(f"{s.title} | {s.url}" if s.url else s.title for s in lesson.sources)
        groups = ", ".join(group.value for group in lesson.tags.groups)
        lessons.append([lesson.id, lesson.title, lesson.promise, groups, lesson.tags.domain.value, *cards, sources])
        for question in lesson.quiz:
            options = [o.text for o in question.options] + [None] * (OPTIONS_MAX - len(question.options))
            questions.append([lesson.id, question.id, question.question, *options,
                              LETTERS[question.correct_index], question.explanation])
    for sheet in (courses, lessons, questions):
        for row in sheet.iter_rows(min_row=2):
            for cell in row:
                cell.alignment = Alignment(wrap_text=True, vertical="top")
    book.save(path)


def _header(sheet: Any, columns: list[str]) -> None:
    sheet.append(columns)
    for index, _ in enumerate(columns, start=1):
        sheet.cell(row=1, column=index).font = Font(bold=True)
        sheet.column_dimensions[get_column_letter(index)].width = 40 if index > 2 else 22
    sheet.freeze_panes = "A2"


def _lessons_in_order(catalog: Catalog) -> list[Lesson]:
    """Every lesson as its file has it (contact placeholders kept), in course order, then the rest."""
    ordered = [lesson.id for lesson in catalog.ordered_lessons()]
    ids = ordered + [lesson_id for lesson_id in catalog.lessons if lesson_id not in ordered]
    return [catalog.as_written(lesson_id) or catalog.lessons[lesson_id] for lesson_id in ids]


# --- import -------------------------------------------------------------------------------------

@dataclass
class _Row:
    number: int
    values: dict[str, Any]


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def _rows(book: Any, sheet_name: str, columns: list[str], problems: list[CellProblem]) -> list[_Row]:
    if sheet_name not in book.sheetnames:
        problems.append(CellProblem(sheet_name, 1, "", "thiếu trang tính này"))
        return []
    sheet = book[sheet_name]
    header = [_text(cell) for cell in next(sheet.iter_rows(min_row=1, max_row=1, values_only=True), ())]
    missing = [name for name in columns if name not in header and name not in OPTIONAL_COLUMNS]
    for name in missing:
        problems.append(CellProblem(sheet_name, 1, name, "thiếu cột này ở dòng tiêu đề"))
    if missing:
        return []
    index = {name: header.index(name) for name in columns if name in header}  # an absent optional: no key
    rows = []
    for number, values in enumerate(sheet.iter_rows(min_row=2, values_only=True), start=2):
        cells = {name: _text(values[i]) if i < len(values) else "" for name, i in index.items()}
        if any(cells.values()):
            rows.append(_Row(number, cells))
    return rows


def _letter(columns: list[str], name: str) -> str:
    return get_column_letter(columns.index(name) + 1) if name in columns else ""


def _problem(sheet: str, row: int, columns: list[str], column: str, message: str) -> CellProblem:
    return CellProblem(sheet, row, column, message, _letter(columns, column))


def _question_from(row: _Row, problems: list[CellProblem]) -> dict[str, Any] | None:
    values = row.values
    options = [values[f"Phương án {letter}"] for letter in LETTERS]
    while options and not options[-1]:
        options.pop()
    if "" in options:
        gap = LETTERS[options.index("")]
        problems.append(_problem(QUESTIONS, row.number, QUESTION_COLUMNS, f"Phương án {gap}",
                                 "phương án bị bỏ trống giữa các phương án khác"))
        return None
    answer = values["Đáp án đúng (A-D)"].upper()
    if answer not in LETTERS[: len(options)] or len(answer) != 1:
        problems.append(_problem(QUESTIONS, row.number, QUESTION_COLUMNS, "Đáp án đúng (A-D)",
                                 f"phải là một chữ trong {', '.join(LETTERS[: len(options)]) or 'A-D'}"))
        return None
    data = {
        "id": values["Mã câu"], "question": values["Câu hỏi"], "explanation": values["Giải thích"],
        "options": [{"text": text, "correct": LETTERS[i] == answer} for i, text in enumerate(options)],
    }
    try:
        Question.model_validate(data)
    except ValidationError as error:
        for item in error.errors():
            column = _question_column(item["loc"])
            problems.append(_problem(QUESTIONS, row.number, QUESTION_COLUMNS, column, item["msg"]))
        return None
    return data


def _question_column(loc: tuple[Any, ...]) -> str:
    names = {"id": "Mã câu", "question": "Câu hỏi", "explanation": "Giải thích", "options": "Phương án A"}
    if loc and loc[0] == "options" and len(loc) > 1 and isinstance(loc[1], int):
        return f"Phương án {LETTERS[loc[1]]}"
    return names.get(str(loc[0]) if loc else "", "")


def _lesson_from(row: _Row, questions: list[dict[str, Any]], problems: list[CellProblem]) -> Lesson | None:
    values = row.values
    cards = [values[f"Thẻ {n}"] for n in range(1, CARDS_MAX + 1)]
    while cards and not cards[-1]:
        cards.pop()
    sources = []
    for line in values["Nguồn (mỗi dòng: tên | địa chỉ)"].splitlines():
        title, _, url = (part.strip() for part in line.partition("|"))
        if title:
            sources.append({"title": title, **({"url": url} if url else {})})
    data = {
        "id": values["Mã bài"], "title": values["Tên bài"], "promise": values["Sau bài này bạn có thể"],
        "tags": {"groups": [g.strip() for g in re.split(r"[,\n]", values["Nhóm đối tượng (QĐ 757)"]) if g.strip()],
                 "domain": values["Lĩnh vực (TT 02/2025)"]},
        "cards": cards, "quiz": questions, "sources": sources,
    }
    try:
        return Lesson.model_validate(data)
    except ValidationError as error:
        for item in error.errors():
            problems.append(_problem(LESSONS, row.number, LESSON_COLUMNS, _lesson_column(item["loc"]), item["msg"]))
        return None


def _lesson_column(loc: tuple[Any, ...]) -> str:
    first = str(loc[0]) if loc else ""
    if first == "cards" and len(loc) > 1 and isinstance(loc[1], int):
        return f"Thẻ {loc[1] + 1}"
    if first == "tags":
        return "Nhóm đối tượng (QĐ 757)" if "groups" in loc else "Lĩnh vực (TT 02/2025)"
    return {"id": "Mã bài", "title": "Tên bài", "promise": "Sau bài này bạn có thể", "cards": "Thẻ 1",
            "sources": "Nguồn (mỗi dòng: tên | địa chỉ)", "quiz": "Mã bài"}.get(first, "")


def read_workbook(path: Path, current: Catalog | None = None) -> tuple[list[Course], list[Lesson]]:
    """Parse and validate the whole file; raise SpreadsheetError with every problem found. A workbook
    without the dates column keeps the dates of `current`'s courses: an old file must not quietly change
    who has finished a course."""
    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except Exception as error:  # openpyxl raises many kinds for a file that is not a workbook
        raise SpreadsheetError([CellProblem(path.name, 1, "", f"không mở được tệp Excel: {error}")]) from None
    problems: list[CellProblem] = []
    course_rows = _rows(book, COURSES, COURSE_COLUMNS, problems)
    lesson_rows = _rows(book, LESSONS, LESSON_COLUMNS, problems)
    question_rows = _rows(book, QUESTIONS, QUESTION_COLUMNS, problems)
    book.close()
    lesson_ids = {row.values["Mã bài"] for row in lesson_rows}
    by_lesson: dict[str, list[dict[str, Any]]] = {}
    for row in question_rows:
        owner = row.values["Mã bài"]
        if owner not in lesson_ids:
            problems.append(_problem(QUESTIONS, row.number, QUESTION_COLUMNS, "Mã bài",
                                     f"không có bài mã {owner!r} ở trang {LESSONS}"))
            continue
        question = _question_from(row, problems)
        if question is not None:
            by_lesson.setdefault(owner, []).append(question)
    lessons: list[Lesson] = []
    seen: dict[str, int] = {}
    for row in lesson_rows:
        lesson_id = row.values["Mã bài"]
        if lesson_id in seen:
            problems.append(_problem(LESSONS, row.number, LESSON_COLUMNS, "Mã bài",
                                     f"mã bài trùng với dòng {seen[lesson_id]}"))
            continue
        seen[lesson_id] = row.number
        lesson = _lesson_from(row, by_lesson.get(lesson_id, []), problems)
        if lesson is not None:
            lessons.append(lesson)
    courses = [course for row in course_rows if (course := _course_from(row, problems, current)) is not None]
    if problems:
        raise SpreadsheetError(problems)
    return courses, lessons


def _course_from(row: _Row, problems: list[CellProblem], current: Catalog | None) -> Course | None:
    values = row.values
    data = {
        "id": values["Mã khóa"], "title": values["Tên khóa"],
        "core": values["Khóa cơ bản (có/không)"].lower() in YES,
        "lessons": [i.strip() for i in re.split(r"[,\n]", values["Các bài (mã, mỗi dòng một bài)"]) if i.strip()],
        "required_from": _dated_lessons(row, problems, current),
    }
    if data["required_from"] is None:
        return None
    try:
        return Course.model_validate(data)
    except ValidationError as error:
        names = {"id": "Mã khóa", "title": "Tên khóa", "lessons": "Các bài (mã, mỗi dòng một bài)",
                 "required_from": REQUIRED_FROM}
        for item in error.errors():
            column = names.get(str(item["loc"][0]) if item["loc"] else "", "")
            problems.append(_problem(COURSES, row.number, COURSE_COLUMNS, column, item["msg"]))
        return None


def _dated_lessons(row: _Row, problems: list[CellProblem], current: Catalog | None) -> dict[str, Any] | None:
    """The "mã: ngày" lines of a course row; None (with a problem noted) when a line is not one."""
    if REQUIRED_FROM not in row.values:  # a workbook from before the column: the files' dates stay
        known = current.course(row.values["Mã khóa"]) if current is not None else None
        return dict(known.required_from) if known is not None else {}
    dated: dict[str, Any] = {}
    for line in filter(None, (line.strip() for line in row.values[REQUIRED_FROM].splitlines())):
        lesson, colon, day = (part.strip() for part in line.partition(":"))
        if not colon or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", day):
            problems.append(_problem(COURSES, row.number, COURSE_COLUMNS, REQUIRED_FROM,
                                     f"dòng “{line}” cần dạng mã-bài: năm-tháng-ngày, ví dụ vneid: 2026-12-11"))
            return None
        dated[lesson] = day
    return dated


def import_workbook(path: Path, directory: Path | None = None) -> ImportResult:
    """Validate `path` against itself and the lessons already in `directory`, then write what changed."""
    root = directory or CONTENT_DIR
    try:
        current = load_catalog(root)
    except ContentError:
        current = Catalog(courses=())
    courses, lessons = read_workbook(path, current)
    merged = dict(current.lessons)
    merged.update({lesson.id: lesson for lesson in lessons})
    problems = link_problems(courses, merged)
    if problems:
        raise SpreadsheetError([
            CellProblem(COURSES, 0, "", f"bài {p.lesson_id!r}: {p.message}" if p.lesson_id else p.message)
            for p in problems
        ])
    return _write_changes(root, current, courses, lessons)


def _write_changes(root: Path, current: Catalog, courses: list[Course], lessons: list[Lesson]) -> ImportResult:
    result = ImportResult()
    lesson_dir, course_dir = root / "lessons", root / "courses"
    lesson_dir.mkdir(parents=True, exist_ok=True)
    course_dir.mkdir(parents=True, exist_ok=True)
    number = len(list(lesson_dir.glob("*.yaml")))
    for lesson in lessons:
        existing = current.as_written(lesson.id)  # as the file has it: placeholders are not replaced
        if existing == lesson:
            result.unchanged.append(lesson.id)
            continue
        path = current.files.get(lesson.id)
        if path is None:
            number += 1
            path = f"lessons/{number:02d}-{lesson.id}.yaml"
            result.new.append(lesson.id)
        else:
            result.changed.append(lesson.id)
        write_lesson(root / path, lesson)
    existing_courses = {course.id: course for course in current.courses}
    for course in courses:
        if existing_courses.get(course.id) == course:
            result.unchanged.append(f"khóa {course.id}")
            continue
        (result.changed if course.id in existing_courses else result.new).append(f"khóa {course.id}")
        name = current.files.get(f"khoa:{course.id}")
        write_course(root / name if name else course_dir / f"{course.id}.yaml", course)
    return result
