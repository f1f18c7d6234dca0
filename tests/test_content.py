"""The curriculum loads, and every kind of mistake in a file is named with its file and field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from bot.cli import app
from content.loader import ContentError, load_catalog
from content.schema import CARD_MAX, EXPLANATION_MAX, OPTION_MAX, TITLE_MAX


def edit_lesson(root: Path, name: str, change) -> None:
    path = root / "lessons" / name
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")


def problems_of(root: Path) -> list[str]:
    with pytest.raises(ContentError) as caught:
        load_catalog(root)
    return [str(problem) for problem in caught.value.problems]


def test_the_shipped_content_is_valid():
    catalog = load_catalog()
    core = catalog.core_course
    assert core.core and len(core.lessons) >= 12
    for lesson in catalog.lessons.values():
        assert len(lesson.title) <= TITLE_MAX
        assert 3 <= len(lesson.cards) <= 6 and 4 <= len(lesson.quiz) <= 5
        assert all(len(card) <= CARD_MAX for card in lesson.cards)
        for question in lesson.quiz:
            assert sum(option.correct for option in question.options) == 1
            assert all(len(option.text) <= OPTION_MAX for option in question.options)
            assert len(question.explanation) <= EXPLANATION_MAX
        assert lesson.sources


def test_two_correct_options_are_named(content_copy):
    first = sorted((content_copy / "lessons").glob("*.yaml"))[0].name

    def two_correct(data):
        for option in data["quiz"][0]["options"]:
            option["correct"] = True

    edit_lesson(content_copy, first, two_correct)
    problems = problems_of(content_copy)
    assert any(p.startswith(f"lessons/{first}: quiz[1].options") and "đúng một đáp án đúng" in p for p in problems)


def test_every_error_in_a_file_is_reported_at_once(content_copy):
    first = sorted((content_copy / "lessons").glob("*.yaml"))[0].name

    def break_many(data):
        data["title"] = "T" * (TITLE_MAX + 1)
        data["cards"][1] = "C" * (CARD_MAX + 1)
        del data["promise"]
        data["tags"]["domain"] = "khong-co"

    edit_lesson(content_copy, first, break_many)
    problems = problems_of(content_copy)
    for field in ("title", "cards[2]", "promise", "tags.domain"):
        assert any(p.startswith(f"lessons/{first}: {field}:") for p in problems), (field, problems)


def test_course_links_and_duplicate_ids_are_checked(content_copy):
    names = sorted((content_copy / "lessons").glob("*.yaml"))
    second_id = yaml.safe_load(names[1].read_text(encoding="utf-8"))["id"]
    edit_lesson(content_copy, names[0].name, lambda data: data.update(id=second_id))
    course = content_copy / "courses" / "co-ban.yaml"
    course.write_text(course.read_text(encoding="utf-8") + "  - bai-khong-co\n", encoding="utf-8")
    problems = problems_of(content_copy)
    assert any("đã dùng ở" in p for p in problems)
    assert any("courses/co-ban.yaml: lessons[" in p and "bai-khong-co" in p for p in problems)


def test_a_lesson_outside_every_course_and_broken_yaml_are_named(content_copy):
    (content_copy / "lessons" / "99-le.yaml").write_text(
        (sorted((content_copy / "lessons").glob("*.yaml"))[0]).read_text(encoding="utf-8").replace(
            "id: ", "id: bai-le\nold_id: ", 1), encoding="utf-8")
    (content_copy / "lessons" / "98-hong.yaml").write_text("id: [khong dong", encoding="utf-8")
    problems = problems_of(content_copy)
    assert any(p.startswith("lessons/98-hong.yaml: không đọc được tệp") for p in problems)
    assert any(p.startswith("lessons/99-le.yaml: old_id:") for p in problems)


def test_content_check_command_reports_ok_and_errors(content_copy):
    runner = CliRunner()
    good = runner.invoke(app, ["content", "check", str(content_copy)])
    assert good.exit_code == 0 and "Nội dung hợp lệ" in good.output
    edit_lesson(content_copy, sorted((content_copy / "lessons").glob("*.yaml"))[0].name,
                lambda data: data.update(quiz=data["quiz"][:2]))
    bad = runner.invoke(app, ["content", "check", str(content_copy)])
    assert bad.exit_code == 2
    assert "quiz" in bad.output


def test_every_message_and_button_the_content_makes_fits_every_channel():
    """Cards with their header fit Zalo's 2000 characters; every action fits Telegram's 64 bytes."""
    from handlers.core import ZALO

    catalog = load_catalog()
    for lesson in catalog.lessons.values():
        for card in lesson.cards:
            assert len(f"📖 {lesson.title} (6/6)\n\n{card}") <= ZALO.text_limit
        actions = [f"lesson:{lesson.id}", f"quiz:start:{lesson.id}"]
        actions += [f"qa:{q.id}:{i}" for q in lesson.quiz for i in range(len(q.options))]
        assert all(len(action.encode()) <= 64 for action in actions), lesson.id
    for course in catalog.courses:
        assert len(f"hoc:{course.id}".encode()) <= 64


def test_the_longest_ids_the_schema_allows_still_fit_telegram():
    from content.schema import OPTIONS_MAX, Slug

    longest = "x" * Slug.__metadata__[0].max_length
    assert len(f"quiz:start:{longest}".encode()) <= 64
    assert len(f"qa:{longest}:{OPTIONS_MAX - 1}".encode()) <= 64


def test_a_lesson_in_no_course_and_two_core_courses_are_named(content_copy):
    course = content_copy / "courses" / "co-ban.yaml"
    text = course.read_text(encoding="utf-8")
    last = text.strip().splitlines()[-1]
    course.write_text(text.replace(last + "\n", ""), encoding="utf-8")
    (content_copy / "courses" / "khac.yaml").write_text(
        "id: khac\ntitle: Khóa khác\ncore: true\nlessons:\n  - vneid\n", encoding="utf-8")
    problems = problems_of(content_copy)
    orphan = last.strip().removeprefix("- ")
    assert any(p.startswith("lessons/") and orphan in p and "không thuộc khóa học nào" in p for p in problems)
    assert any(p.startswith("courses/: ") and "khóa cơ bản (core: true)" in p for p in problems)


def rename_first_lesson(root: Path, new_id: str) -> str:
    """Give the first lesson of the core course a new id, in its file and in the course; returns its file."""
    name = sorted((root / "lessons").glob("*.yaml"))[0].name
    old_id = yaml.safe_load((root / "lessons" / name).read_text(encoding="utf-8"))["id"]
    edit_lesson(root, name, lambda data: data.update(id=new_id))
    course = root / "courses" / "co-ban.yaml"
    course.write_text(course.read_text(encoding="utf-8").replace(f"- {old_id}\n", f"- {new_id}\n"), encoding="utf-8")
    return name


def test_a_lesson_and_question_id_too_long_to_store_together_are_named(content_copy):
    """Each answer stores "lesson-id/question-id": content must not pass the check and then fail to save."""
    from content.schema import ANSWER_KEY_MAX, ID_MAX

    name = rename_first_lesson(content_copy, "bai-" + "a" * (ID_MAX - 4))
    long_question = "cau-" + "b" * (ID_MAX - 4)
    edit_lesson(content_copy, name, lambda data: data["quiz"][1].update(id=long_question))
    problems = problems_of(content_copy)
    assert any(
        p.startswith(f"lessons/{name}: quiz: câu 2:") and long_question in p and f"tối đa {ANSWER_KEY_MAX}" in p
        and f"{2 * ID_MAX + 1} ký tự" in p for p in problems
    ), problems


def test_the_content_limits_fit_the_database_columns():
    """The check and the schema agree: any id the check accepts fits every column it is stored in.

    `content` may not import `storage` (tests/test_boundaries.py), so the limits are pinned here, against
    the columns themselves: narrowing a column without the content limit fails this test.
    """
    from content.schema import ANSWER_KEY_MAX, ID_MAX
    from handlers.review import REVIEW_LESSON
    from storage.models import Activity, Answer, LessonProgress, QuizAttempt
    from storage.models import column_length as length

    for model in (LessonProgress, QuizAttempt, Activity):
        assert length(model, "lesson_id") >= ID_MAX, model.__name__
    assert len(REVIEW_LESSON) <= length(QuizAttempt, "lesson_id")
    assert length(Answer, "question_id") >= ANSWER_KEY_MAX  # "lesson-id/question-id"
    detail = length(Activity, "detail")
    assert len(f"{'q' * ID_MAX}:dung") <= detail  # answer_given: "question-id:dung|sai"
    assert detail >= ID_MAX  # course_finished: the course id


def test_the_longest_ids_the_check_accepts_load(content_copy):
    from content.schema import ANSWER_KEY_MAX, ID_MAX

    name = rename_first_lesson(content_copy, "l" * ID_MAX)
    longest = "q" * (ANSWER_KEY_MAX - ID_MAX - 1)
    edit_lesson(content_copy, name, lambda data: data["quiz"][0].update(id=longest))
    lesson = load_catalog(content_copy).lesson("l" * ID_MAX)
    assert len(f"{lesson.id}/{lesson.quiz[0].id}") == ANSWER_KEY_MAX
