"""Per-chat order with a global bound: the scheduling every channel's updates go through."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

Item = TypeVar("Item")


class ChatQueues(Generic[Item]):
    """Runs items of one chat one after another, in order, and items of different chats concurrently.

    At most `limit` items run at once. An item waiting behind its own chat's earlier item holds no slot:
    each chat has one task that takes a slot only for the item it is running, so a person who sends
    sixty messages occupies one slot, and everybody else still gets the others.
    """

    def __init__(self, limit: int, run: Callable[[Item], Awaitable[None]], name: str = "update") -> None:
        self._slots = asyncio.Semaphore(limit)
        self._run = run
        self._name = name
        self._queues: dict[str, deque[Item]] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._stopping = False
        self._idle = asyncio.Event()
        self._idle.set()

    def put(self, chat_id: str, item: Item) -> None:
        """Queue `item` behind the chat's earlier items; ignored once stopping (the inbox keeps it)."""
        if self._stopping:
            return
        queue = self._queues.setdefault(chat_id, deque())
        queue.append(item)
        if chat_id not in self._tasks:
            self._idle.clear()
            self._tasks[chat_id] = asyncio.create_task(self._drain(chat_id), name=f"chat-{self._name}")

    @property
    def pending(self) -> int:
        return sum(len(queue) for queue in self._queues.values())

    async def _drain(self, chat_id: str) -> None:
        queue = self._queues[chat_id]
        try:
            while queue and not self._stopping:
                item = queue.popleft()
                async with self._slots:
                    try:
                        await self._run(item)
                    except Exception:  # one bad item must not stop the chat's later ones
                        log.exception("%s could not be processed", self._name)
        finally:
            # Forget the chat once idle, so memory does not grow with the number of people.
            del self._tasks[chat_id], self._queues[chat_id]
            if not self._tasks:
                self._idle.set()

    async def join(self) -> None:
        """Wait until every queued item has run."""
        await self._idle.wait()

    async def stop(self) -> None:
        """Finish the items in hand, start no new ones (they stay in the inbox for the next start)."""
        self._stopping = True
        await self._idle.wait()
