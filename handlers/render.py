"""Turning replies into what a channel can show: typed-number menus and text split at its limit."""

from __future__ import annotations

from handlers.core import Reply


def numbered_lines(labels: list[str]) -> str:
    """'1. label' lines: the labels of Telegram's number buttons, listed in the text beside them."""
    return "\n".join(f"{number}. {label}" for number, label in enumerate(labels, start=1))


# How a channel without buttons (the console, Zalo) shows a menu choice. Lesson cards number their
# steps "1. Vuốt từ mép trên…", and other answers number their lists the same way (deadlines,
# rankings, a household), so a menu written "1. Tiếp" under them leaves the person unsure which "1"
# to type. Rendering owns the menu, not the text (a card is content, and a "1." in it may be a step,
# a rank or a date), so the menu is what looks different: each choice says what to type, in words a
# first-time user reads without a legend, "Gõ 1 → Tiếp ▶️". No text of the bot starts a line with
# "Gõ <number> →", and the lines make the old "Gõ 1, 2 hoặc 3." under the list unneeded, so a menu
# costs a small phone's screen about what it did. Telegram shows buttons and is not rendered here.
MENU_LINE = "Gõ {number} → {label}"


def menu_lines(labels: list[str]) -> str:
    """'Gõ 1 → Tiếp ▶️' lines: a menu as a channel without buttons shows it."""
    return "\n".join(MENU_LINE.format(number=number, label=label) for number, label in enumerate(labels, start=1))


def as_numbered(reply: Reply) -> str:
    """The reply's text followed by its buttons as typed choices, for channels without buttons."""
    labels = reply.labels
    if not labels:
        return reply.text
    return f"{reply.text}\n\n{menu_lines(labels)}"


def merge_replies(replies: list[Reply], limit: int) -> list[Reply]:
    """Fold plain-text replies into the reply after them while the result fits in one message.

    "✅ Đúng rồi!" and the next question arrive as one message: fewer notifications and less
    scrolling on a small phone, and fewer calls to the channel's server.
    """
    merged: list[Reply] = []
    pending: Reply | None = None
    for reply in replies:
        if pending is not None:
            combined = f"{pending.text}\n\n{reply.text}"
            if len(combined) <= limit and reply.attachment is None and not reply.standalone:
                reply = Reply(combined, reply.buttons, None, redraw=reply.redraw)
            else:
                merged.append(pending)
        foldable = not reply.buttons and reply.attachment is None and not reply.standalone
        pending = reply if foldable else None
        if pending is None:
            merged.append(reply)
    if pending is not None:
        merged.append(pending)
    return merged


def split_text(text: str, limit: int) -> list[str]:
    """Split on paragraph boundaries, then lines, then words, so no part exceeds `limit`."""
    if len(text) <= limit:
        return [text]
    parts: list[str] = []
    current = ""
    for piece in _pieces(text, limit):
        candidate = f"{current}\n\n{piece}" if current else piece
        if len(candidate) <= limit:
            current = candidate
        else:
            if current.strip():  # a part of blank paragraphs alone would be an empty message
                parts.append(current)
            current = piece
    if current.strip():
        parts.append(current)
    return parts


def _pieces(text: str, limit: int) -> list[str]:
    pieces: list[str] = []
    for paragraph in text.split("\n\n"):
        if len(paragraph) <= limit:
            pieces.append(paragraph)
            continue
        pieces.extend(_hard_wrap(paragraph, limit))
    return pieces


def _hard_wrap(paragraph: str, limit: int) -> list[str]:
    chunks: list[str] = []
    current = ""
    for word in paragraph.replace("\n", " \n ").split(" "):
        while len(word) > limit:  # a single word longer than the limit: cut it
            if current:
                chunks.append(current)
                current = ""
            chunks.append(word[:limit])
            word = word[limit:]
        candidate = f"{current} {word}" if current else word
        if len(candidate) <= limit:
            current = candidate
        else:
            chunks.append(current)
            current = word
    if current:
        chunks.append(current)
    return [chunk.replace(" \n ", "\n").strip() for chunk in chunks if chunk.strip()]
