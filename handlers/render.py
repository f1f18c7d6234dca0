"""Turning replies into what a channel can show: numbered menus and text split at its limit."""

from __future__ import annotations

from handlers.core import Reply


def choice_hint(count: int) -> str:
    """'Gõ 1, 2 hoặc 3' for short menus, 'Gõ một số từ 1 đến 8' for longer ones."""
    if count == 1:
        return "Gõ 1 để chọn."
    if count <= 3:
        numbers = [str(n) for n in range(1, count + 1)]
        return f"Gõ {', '.join(numbers[:-1])} hoặc {numbers[-1]}."
    return f"Gõ một số từ 1 đến {count}."


def numbered_lines(labels: list[str]) -> str:
    return "\n".join(f"{number}. {label}" for number, label in enumerate(labels, start=1))


def as_numbered(reply: Reply) -> str:
    """The reply's text followed by its buttons as a numbered list, for channels without buttons."""
    labels = reply.labels
    if not labels:
        return reply.text
    return f"{reply.text}\n\n{numbered_lines(labels)}\n\n{choice_hint(len(labels))}"


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
