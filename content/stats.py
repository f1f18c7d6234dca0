"""Readability figures of the curriculum for `hocvuso content stats`."""

from __future__ import annotations

from dataclasses import dataclass

from content.loader import Catalog


@dataclass(frozen=True)
class LessonStats:
    lesson_id: str
    cards: int
    words: int
    most_words_in_a_card: int
    longest_card: int  # characters
    questions: int

    @property
    def words_per_card(self) -> float:
        return self.words / self.cards if self.cards else 0.0


def lesson_stats(catalog: Catalog) -> list[LessonStats]:
    rows = []
    for lesson in catalog.ordered_lessons():
        words = [len(card.split()) for card in lesson.cards]
        rows.append(LessonStats(lesson.id, len(lesson.cards), sum(words), max(words),
                                max(len(card) for card in lesson.cards), len(lesson.quiz)))
    return rows
