"""Runs a Starlette app on a free 127.0.0.1 port inside the test's own event loop."""

from __future__ import annotations

import asyncio
import socket

import uvicorn
from starlette.types import ASGIApp


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LocalServer:
    """uvicorn serving `app` on 127.0.0.1 until `stop()`."""

    def __init__(self, app: ASGIApp, port: int | None = None) -> None:
        self.port = port or free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._task = asyncio.create_task(self.server.serve())
        while not self.server.started:
            if self._task.done():
                self._task.result()  # raises why it could not start
            await asyncio.sleep(0.005)  # uvicorn offers no start event; this polls its flag

    async def stop(self) -> None:
        self.server.should_exit = True
        if self._task is not None:
            await self._task
