"""Writing lessons and courses back to YAML in the same shape authors write by hand."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from content.schema import Course, Lesson


class _Dumper(yaml.SafeDumper):
    """Multi-line text as `|` blocks, so a card reads in the file as it reads in the chat."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def lesson_data(lesson: Lesson) -> dict[str, Any]:
    data = lesson.model_dump(mode="json", exclude_none=True)
    data["cards"] = [card if card.endswith("\n") else card + "\n" for card in data["cards"]]
    for question in data["quiz"]:
        for option in question["options"]:
            if not option["correct"]:
                del option["correct"]
    return data


def course_data(course: Course) -> dict[str, Any]:
    data = course.model_dump(mode="json")
    if not course.required_from:
        del data["required_from"]  # most courses have none: their files stay as they were
    return data


def dump(data: dict[str, Any]) -> str:
    return yaml.dump(data, Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=100)


def write_lesson(path: Path, lesson: Lesson) -> None:
    path.write_text(dump(lesson_data(lesson)), encoding="utf-8")


def write_course(path: Path, course: Course) -> None:
    path.write_text(dump(course_data(course)), encoding="utf-8")
