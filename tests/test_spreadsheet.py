"""The question bank spreadsheet: export, edit, import; an invalid file changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from openpyxl import load_workbook
from typer.testing import CliRunner

from bot.cli import app
from content.loader import load_catalog
from content.spreadsheet import QUESTIONS, REQUIRED_FROM, SpreadsheetError, export_workbook, import_workbook


@pytest.fixture
def content(content_copy: Path) -> Path:
    return content_copy


@pytest.fixture
def exported(content: Path, tmp_path: Path) -> Path:
    path = tmp_path / "ngan-hang.xlsx"
    export_workbook(load_catalog(content), path)
    return path


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.yaml"))}


def edit(path: Path, sheet: str, cell: str, value: object) -> None:
    book = load_workbook(path)
    book[sheet][cell] = value
    book.save(path)


def test_an_unchanged_round_trip_changes_nothing(content, exported):
    before = snapshot(content)
    result = import_workbook(exported, content)
    assert result.new == [] and result.changed == []
    assert snapshot(content) == before


def test_an_edited_question_rewrites_only_its_lesson(content, exported):
    before = snapshot(content)
    catalog = load_catalog(content)
    first = catalog.ordered_lessons()[0]
    edit(exported, QUESTIONS, "C2", "Câu hỏi đã sửa: muốn vào mạng ngoài đồng thì làm gì?")
    result = import_workbook(exported, content)
    assert result.changed == [first.id]
    after = snapshot(content)
    changed = [name for name in before if before[name] != after[name]]
    assert changed == [catalog.files[first.id]]
    assert load_catalog(content).lesson(first.id).quiz[0].question.startswith("Câu hỏi đã sửa")


def test_a_new_lesson_and_its_questions_become_a_new_file(content, exported):
    book = load_workbook(exported)
    lessons, questions, courses = book["Bài học"], book[QUESTIONS], book["Khóa học"]
    source_row = [cell.value for cell in lessons[2]]
    lessons.append(["bai-moi", "Bài mới thử", "Sau bài này, bạn có thể thử.", *source_row[3:]])
    for row in list(questions.iter_rows(min_row=2, max_row=6, values_only=True)):
        questions.append(["bai-moi", *row[1:]])
    courses["D2"] = courses["D2"].value + "\nbai-moi"
    book.save(exported)
    result = import_workbook(exported, content)
    assert result.new == ["bai-moi"] and result.changed == ["khóa co-ban"]
    catalog = load_catalog(content)
    assert catalog.files["bai-moi"] == f"lessons/{len(catalog.lessons):02d}-bai-moi.yaml"
    assert catalog.core_course.lessons[-1] == "bai-moi"


def test_the_dates_from_which_lessons_count_go_out_and_come_back(content, exported):
    """A core lesson that counts only from a date keeps its date through the workbook; a line that is not
    "lesson: date" is named by its cell, and nothing is written."""
    dated = load_catalog(content).core_course.required_from
    assert dated  # the second edition added lessons that count from the 2027 reporting year
    assert import_workbook(exported, content).changed == []
    assert load_catalog(content).core_course.required_from == dated
    book = load_workbook(exported)
    courses = book["Khóa học"]
    column = next(cell.column_letter for cell in courses[1] if cell.value == REQUIRED_FROM)
    row = next(cell.row for cell in courses["A"] if cell.value == "co-ban")
    courses[f"{column}{row}"] = courses[f"{column}{row}"].value + "\nvneid sau ngày 11/12"
    book.save(exported)
    with pytest.raises(SpreadsheetError, match=f"Khóa học, dòng {row}, cột {column}.*vneid sau ngày 11/12"):
        import_workbook(exported, content)
    assert load_catalog(content).core_course.required_from == dated


def test_a_workbook_from_before_the_dates_column_still_imports(content, exported):
    book = load_workbook(exported)
    courses = book["Khóa học"]
    column = next(cell.column for cell in courses[1] if cell.value == REQUIRED_FROM)
    courses.delete_cols(column)
    book.save(exported)
    dated = load_catalog(content).core_course.required_from
    assert import_workbook(exported, content).changed == []  # the files' dates stay as they were
    assert load_catalog(content).core_course.required_from == dated


def test_ids_too_long_to_store_together_are_refused_like_in_the_files(content, exported):
    """The import checks what `content check` checks: "lesson-id/question-id" must fit its column."""
    from content.schema import ANSWER_KEY_MAX, ID_MAX

    before = snapshot(content)
    long_lesson = "bai-" + "a" * (ID_MAX - 4)
    book = load_workbook(exported)
    lessons, questions, courses = book["Bài học"], book[QUESTIONS], book["Khóa học"]
    lessons.append([long_lesson, *[cell.value for cell in lessons[2]][1:]])
    for number, row in enumerate(questions.iter_rows(min_row=2, max_row=6, values_only=True), start=1):
        questions.append([long_lesson, f"cau-{number}-" + "b" * (ID_MAX - 6), *row[2:]])
    courses["D2"] = courses["D2"].value + "\n" + long_lesson
    book.save(exported)
    with pytest.raises(SpreadsheetError) as caught:
        import_workbook(exported, content)
    messages = [str(problem) for problem in caught.value.problems]
    row = lessons.max_row
    assert any(m.startswith(f"Bài học, dòng {row}, cột A (Mã bài): câu 1:") and f"tối đa {ANSWER_KEY_MAX}" in m
               for m in messages), messages
    assert snapshot(content) == before


def test_an_invalid_file_changes_nothing_and_names_every_error(content, exported):
    before = snapshot(content)
    edit(exported, QUESTIONS, "H2", "E")           # answer letter out of range
    edit(exported, QUESTIONS, "D3", "x" * 150)     # option A too long
    edit(exported, "Bài học", "B3", "")            # a lesson without a title
    edit(exported, "Bài học", "G2", "y" * 700)     # card 2 too long
    with pytest.raises(SpreadsheetError) as caught:
        import_workbook(exported, content)
    messages = [str(problem) for problem in caught.value.problems]
    assert any(m.startswith("Câu hỏi, dòng 2, cột H (Đáp án đúng (A-D))") for m in messages), messages
    assert any(m.startswith("Câu hỏi, dòng 3, cột D (Phương án A)") for m in messages), messages
    assert any(m.startswith("Bài học, dòng 3, cột B (Tên bài)") for m in messages), messages
    assert any(m.startswith("Bài học, dòng 2, cột G (Thẻ 2)") for m in messages), messages
    assert snapshot(content) == before


def test_missing_columns_and_unknown_lessons_are_reported(content, exported):
    book = load_workbook(exported)
    book[QUESTIONS]["A2"] = "khong-co-bai-nay"
    book["Khóa học"]["D1"] = "Bài"
    book.save(exported)
    with pytest.raises(SpreadsheetError) as caught:
        import_workbook(exported, content)
    messages = [str(problem) for problem in caught.value.problems]
    assert any("Câu hỏi, dòng 2, cột A (Mã bài): không có bài mã 'khong-co-bai-nay'" in m for m in messages)
    assert any("Khóa học, dòng 1" in m and "thiếu cột" in m for m in messages)


def test_a_file_that_is_not_a_workbook_is_refused(content, tmp_path):
    bogus = tmp_path / "khong-phai.xlsx"
    bogus.write_text("xin chào", encoding="utf-8")
    with pytest.raises(SpreadsheetError, match="không mở được tệp Excel"):
        import_workbook(bogus, content)


def test_the_cli_exports_imports_and_reports(content, exported, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOCVUSO_CONTENT_DIR", str(content))
    runner = CliRunner()
    out = tmp_path / "xuat.xlsx"
    exported_run = runner.invoke(app, ["content", "export", str(out)])
    shipped = load_catalog(content)
    questions = sum(len(lesson.quiz) for lesson in shipped.lessons.values())
    assert exported_run.exit_code == 0
    assert f"{len(shipped.lessons)} bài học, {questions} câu hỏi" in exported_run.output
    unchanged = len(shipped.lessons) + len(shipped.courses)
    assert f"không đổi: {unchanged}" in runner.invoke(app, ["content", "import", str(out)]).output
    edit(out, QUESTIONS, "H2", "Z")
    failed = runner.invoke(app, ["content", "import", str(out)])
    assert failed.exit_code == 2 and "chưa thay đổi gì" in failed.output and "dòng 2" in failed.output
    stats = runner.invoke(app, ["content", "stats"])
    assert stats.exit_code == 0 and "dien-thoai-thong-minh" in stats.output and "Tổng" in stats.output
