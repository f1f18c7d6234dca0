"""Numbered menus and text splitting for channels with limits."""

from __future__ import annotations

import pytest

from handlers.core import Keyboard, Reply
from handlers.render import as_numbered, merge_replies, split_text


def test_buttons_become_choices_that_say_what_to_type():
    reply = Reply("Chọn:", Keyboard().add("Tiếp", "card:next").add("Quay lại", "card:prev").add("Menu", "menu").build())
    assert as_numbered(reply) == "Chọn:\n\nGõ 1 → Tiếp\nGõ 2 → Quay lại\nGõ 3 → Menu"


def test_a_reply_without_buttons_is_its_text():
    assert as_numbered(Reply("Xin chào")) == "Xin chào"


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


def test_plain_replies_fold_into_the_next_one_within_the_limit():
    from handlers.core import Attachment

    buttons = Keyboard().add("Tiếp", "card:next").build()
    replies = [Reply("✅ Đúng rồi!"), Reply("❓ Câu 2/5", buttons)]
    assert merge_replies(replies, 100) == [Reply("✅ Đúng rồi!\n\n❓ Câu 2/5", buttons)]
    assert merge_replies(replies, 15) == replies  # too long together: kept apart
    with_file = [Reply("Báo cáo"), Reply("", attachment=Attachment("a.xlsx", b"x"))]
    assert merge_replies(with_file, 100) == with_file
    three = [Reply("a"), Reply("b"), Reply("c", buttons), Reply("d")]
    assert merge_replies(three, 100) == [Reply("a\n\nb\n\nc", buttons), Reply("d")]


def test_a_standalone_reply_is_never_folded():
    buttons = Keyboard().add("Xong", "org:done").build()
    code = Reply("Mã hộ của nhà bạn là: 123 456", standalone=True)
    replies = [Reply("Cảm ơn"), code, Reply("Bạn là thành viên của tổ chức nào?", buttons)]
    assert merge_replies(replies, 2000) == replies
