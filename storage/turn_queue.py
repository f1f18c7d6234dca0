"""The queue of this process's SQLite transactions, with a short lane for bookkeeping writes."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class TurnQueue:
    """A first-come, first-served lock whose urgent holders go before the waiting ordinary ones.

    "This message was sent" must be written as soon as Telegram confirms it: while it waits behind
    other people's turns, a kill -9 would make the restart send that message again. Those writes take
    microseconds, so letting them pass delays nobody.
    """

    def __init__(self) -> None:
        self._held = False
        self._urgent: deque[asyncio.Future[None]] = deque()
        self._ordinary: deque[asyncio.Future[None]] = deque()

    @asynccontextmanager
    async def hold(self, *, urgent: bool = False) -> AsyncIterator[None]:
        await self._acquire(urgent)
        try:
            yield
        finally:
            self._release()

    async def _acquire(self, urgent: bool) -> None:
        if not self._held:
            self._held = True
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        lane = self._urgent if urgent else self._ordinary
        lane.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._release()  # handed the lock just as it was cancelled: pass it on
            else:
                lane.remove(waiter)
            raise

    def _release(self) -> None:
        """Hand the lock to the next waiter (urgent first); it stays held while handed over."""
        for lane in (self._urgent, self._ordinary):
            while lane:
                waiter = lane.popleft()
                if not waiter.done():
                    waiter.set_result(None)
                    return
        self._held = False
