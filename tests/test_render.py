"""Numbered menus and text splitting for channels with limits."""

from __future__ import annotations

import pytest

from handlers.core import Keyboard, Reply
from handlers.render import as_numbered, choice_hint, split_text


def test_buttons_become_a_numbered_list_with_a_hint():
    reply = Reply("Chọn:", Keyboard().add("Tiếp", "card:next").add("Quay lại", "card:prev").add("Menu", "menu").build())
    assert as_numbered(reply) == "Chọn:\n\n1. Tiếp\n2. Quay lại\n3. Menu\n\nGõ 1, 2 hoặc 3."


@pytest.mark.parametrize(("count", "hint"), [(1, "Gõ 1 để chọn."), (2, "Gõ 1 hoặc 2."), (8, "Gõ một số từ 1 đến 8.")])
def test_choice_hint(count, hint):
    assert choice_hint(count) == hint


def test_short_text_is_not_split():
    assert split_text("Xin chào", 2000) == ["Xin chào"]


@pytest.mark.parametrize("limit", [50, 120, 2000])
def test_long_text_splits_on_paragraphs_within_the_limit(limit):
    paragraphs = [f"Đoạn {n}: " + "chữ " * (n * 7) for n in range(1, 30)]
    text = "\n\n".join(p.strip() for p in paragraphs)
    parts = split_text(text, limit)
    assert all(0 < len(part) <= limit for part in parts)
    assert " ".join(" ".join(parts).split()) == " ".join(text.split())  # nothing lost or added


def test_a_word_longer_than_the_limit_is_cut():
    parts = split_text("a" * 250, 100)
    assert parts == ["a" * 100, "a" * 100, "a" * 50]
