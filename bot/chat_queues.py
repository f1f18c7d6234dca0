"""Per-chat order with a global bound: the scheduling every channel's updates go through."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

Item = TypeVar("Item")


class _Slot:
    """One unit of the bound, held by the item running; given back at most once however it ends."""

    def __init__(self, slots: asyncio.Semaphore) -> None:
        self._slots = slots
        self.held = True

    def give_back(self) -> None:
        if self.held:
            self.held = False
            self._slots.release()

    async def take_again(self) -> None:
        await self._slots.acquire()  # cancelled while waiting: not held, so not given back later
        self.held = True


_current_slot: ContextVar[_Slot | None] = ContextVar("hocvuso_chat_slot", default=None)


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
                await self._slots.acquire()
                slot = _Slot(self._slots)
                token = _current_slot.set(slot)
                try:
                    await self._run(item)
                except Exception:  # one bad item must not stop the chat's later ones
                    log.exception("%s could not be processed", self._name)
                finally:
                    _current_slot.reset(token)
                    slot.give_back()
        finally:
            # Forget the chat once idle, so memory does not grow with the number of people.
            del self._tasks[chat_id], self._queues[chat_id]
            if not self._tasks:
                self._idle.set()

    @staticmethod
    @asynccontextmanager
    async def slot_lent() -> AsyncIterator[None]:
        """While the running item only waits (Telegram's `retry_after`, a back-off), lend its slot to
        another chat, so people who flood the bot into Telegram's limits cannot hold every slot asleep.
        Outside a running item this does nothing."""
        slot = _current_slot.get()
        if slot is None or not slot.held:
            yield
            return
        slot.give_back()
        try:
            yield
        finally:
            await slot.take_again()

    async def join(self) -> None:
        """Wait until every queued item has run."""
        await self._idle.wait()

    async def stop(self, grace: float | None = None) -> None:
        """Finish the items in hand, start no new ones (they stay in the inbox for the next start).

        After `grace` seconds the items still running are cancelled: an answer waiting on Telegram must
        not keep the process from stopping, and its row is taken up again at the next start.
        """
        self._stopping = True
        try:
            await asyncio.wait_for(asyncio.shield(self._idle.wait()), grace)
        except TimeoutError:
            for task in list(self._tasks.values()):
                task.cancel()
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)
