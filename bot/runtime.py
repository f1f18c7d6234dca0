"""`hocvuso run`: every configured channel, by long polling or behind one webhook server."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from contextlib import suppress
from dataclasses import replace
from datetime import datetime

import uvicorn

from bot.app import build_services, process_renderer, warm_renderer
from bot.channels.telegram import Sleep, TelegramChannel, TelegramOutbox
from bot.channels.zalo import FileLink, Link, ZaloChannel
from bot.downloads import Downloads, build_downloads
from bot.logs import release_startup_logs
from bot.outbox import OutboxSender, Transport
from bot.scheduler import ReminderScheduler
from bot.settings import Settings
from bot.web import build_web_app
from handlers.announcements import close_finished_announcements
from handlers.context import Clock, Services
from handlers.core import Attachment
from handlers.deadlines import run_reminders
from handlers.dispatcher import Dispatcher
from handlers.nudges import enqueue_nudges

log = logging.getLogger(__name__)


class NoChannelConfigured(Exception):
    """Nothing to run: no channel has its token set."""



class Runtime:
    """Builds the channels from settings; `start()` and `stop()` are what `hocvuso run` calls."""

    def __init__(self, settings: Settings, *, clock: Clock | None = None, sleep: Sleep = asyncio.sleep,
                 renderer: Callable[[], Executor | None] = process_renderer) -> None:
        if settings.telegram_token is None and settings.zalo_token is None:
            raise NoChannelConfigured
        self.settings = settings
        self._clock = clock
        self._sleep = sleep
        self._make_renderer = renderer  # tests of the channel alone draw on threads: a process each is seconds
        self.services: Services | None = None
        self.telegram: TelegramChannel | None = None
        self.zalo: ZaloChannel | None = None
        self.downloads: Downloads | None = None
        self.server: uvicorn.Server | None = None
        self._server_task: asyncio.Task[None] | None = None
        self.outbox: OutboxSender | None = None
        self._outbox_stop = asyncio.Event()
        self._outbox_task: asyncio.Task[None] | None = None
        self.scheduler: ReminderScheduler | None = None

    @property
    def webhook_mode(self) -> bool:
        return self.settings.webhook_url is not None

    @property
    def serves_web(self) -> bool:
        """The web server runs for webhooks, and for Zalo's download links and the certificate page when
        this server has a public address."""
        return self.webhook_mode or (self.settings.zalo_token is not None and self.settings.public_url is not None)

    @property
    def channels(self) -> list[str]:
        return [name for name, token in (("telegram", self.settings.telegram_token),
                                         ("zalo", self.settings.zalo_token)) if token is not None]

    async def start(self) -> None:
        """Open everything; a start that fails half-way closes what it opened before raising."""
        try:
            await self._open()
        except BaseException:
            with suppress(Exception):
                await self.stop()
            raise
        mode = "webhook" if self.webhook_mode else "long polling"
        log.warning("hocvuso is running: %s by %s", " and ".join(self.channels), mode)

    async def _open(self) -> None:
        extra = {"clock": self._clock} if self._clock else {}
        services = await build_services(self.settings, **extra)  # type: ignore[arg-type]
        # Started once the database is known to work, so a start that fails spawns nothing.
        renderer = self._make_renderer()
        if renderer is not None:
            renderer.submit(warm_renderer)  # start it now, not on the first leader's chart
        self.services = replace(services, renderer=renderer)
        dispatcher = Dispatcher(self.services)
        polling = not self.webhook_mode
        if self.settings.zalo_token is not None and self.settings.public_url is not None:
            self.downloads = await build_downloads(self.settings, self.services.clock)
        if self.settings.telegram_token is not None:
            self.telegram = TelegramChannel(dispatcher, self.settings, polling=polling, sleep=self._sleep)
        if self.settings.zalo_token is not None:
            self.zalo = ZaloChannel(dispatcher, self.settings, polling=polling, file_link=self._file_link(),
                                    sleep=self._sleep)
        if self.serves_web:
            await self._start_server()  # listen before a messenger is told where to post
        if self.telegram is not None:
            await self.telegram.start()
        if self.zalo is not None:
            await self.zalo.start()
        self._start_outbox()
        await self._start_scheduler()

    def _file_link(self) -> FileLink | None:
        """Zalo's files as download links on this server; None without a public address (the person is
        then told where else to get the file)."""
        downloads, public_url, zone = self.downloads, self.settings.public_url, self.settings.zone
        if downloads is None or public_url is None:
            return None

        async def link(attachment: Attachment) -> Link:
            published = await downloads.publish(attachment.file_name, attachment.data)
            until = published.expires_at.astimezone(zone).strftime("%H:%M ngày %d/%m/%Y")
            return Link(Downloads.url(public_url, published), until)

        return link

    def _start_outbox(self) -> None:
        """The sender of everything the bot says first (reminders, nudges, announcements)."""
        assert self.services is not None
        transports: list[Transport] = []
        if self.telegram is not None:
            transports.append(TelegramOutbox(self.telegram.bot))
        if self.zalo is not None:
            transports.append(self.zalo.outbox())
        self.outbox = OutboxSender(
            self.services.database, transports, self.services.clock,
            rate=self.settings.outbox_rate, max_attempts=self.settings.outbox_max_attempts, sleep=self._sleep,
        )
        self._outbox_task = asyncio.create_task(self.outbox.run(self._outbox_stop))

    async def _start_scheduler(self) -> None:
        """Reminders every 5 minutes, nudges every hour, announcements' final numbers every minute; each
        also once at start, so what a stop missed is caught up. Whatever a job stores wakes the sender."""
        services, sender = self.services, self.outbox
        assert services is not None and sender is not None

        def waking(job: Callable[[Services, datetime], Awaitable[int]]) -> Callable[[datetime], Awaitable[int]]:
            async def run(now: datetime) -> int:
                stored = await job(services, now)
                if stored:
                    sender.wake()
                return stored
            return run

        self.scheduler = ReminderScheduler(
            services, [("nudges", 3600, waking(enqueue_nudges)),
                       ("announcements", 60, waking(close_finished_announcements)),
                       *self._download_upkeep()],
            reminders=lambda _, now: waking(run_reminders)(now),
        )
        await self.scheduler.start()

    def _download_upkeep(self) -> list[tuple[str, int, Callable[[datetime], Awaitable[int]]]]:
        """Files whose links expired are deleted every hour."""
        downloads = self.downloads
        if downloads is None:
            return []

        async def prune(_now: datetime) -> int:
            return await downloads.prune()

        return [("downloads", 3600, prune)]

    async def _start_server(self) -> None:
        assert self.services is not None
        secret = self.settings.webhook_secret.get_secret_value() if self.settings.webhook_secret else None
        zalo_secret = (self.settings.zalo_webhook_secret.get_secret_value()
                       if self.settings.zalo_webhook_secret else None)
        app = build_web_app(self.services.database, self.telegram if self.webhook_mode else None, secret,
                            zalo=self.zalo if self.webhook_mode else None, zalo_secret=zalo_secret,
                            downloads=self.downloads)
        config = uvicorn.Config(app, host=self.settings.listen_host, port=self.settings.listen_port,
                                log_level="warning", lifespan="off", access_log=False,
                                log_config=None)  # uvicorn's own handlers would bypass bot/logs.py
        self.server = uvicorn.Server(config)
        self.server.install_signal_handlers = lambda: None  # type: ignore[method-assign]  # we own the signals
        self._server_task = asyncio.create_task(self.server.serve())
        while not self.server.started:
            if self._server_task.done():
                self._server_task.result()
            await asyncio.sleep(0.01)  # uvicorn has no start event; this polls its flag

    async def stop(self) -> None:
        """Stop taking updates, let the one in hand finish, close everything."""
        if self.scheduler is not None:
            await self.scheduler.shutdown()  # the job in hand finishes; what it stored waits in the outbox
        if self._outbox_task is not None:
            # The messages in flight finish and are recorded; the rest wait in the outbox for the next start.
            self._outbox_stop.set()
            with suppress(Exception):
                await self._outbox_task
        if self.server is not None and self._server_task is not None:
            self.server.should_exit = True  # uvicorn finishes requests in progress before it returns
            if not self._server_task.done():  # one that ended by failing told so through start()
                await self._server_task
        if self.telegram is not None:
            await self.telegram.stop()
        if self.zalo is not None:
            await self.zalo.stop()
        if self.services is not None:
            await self.services.database.dispose()
            if self.services.renderer is not None:
                self.services.renderer.shutdown(wait=False, cancel_futures=True)


async def run_until_signalled(settings: Settings) -> None:
    """Run until SIGINT or SIGTERM."""
    runtime = Runtime(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with suppress(NotImplementedError):  # Windows has no add_signal_handler
            loop.add_signal_handler(signum, stop.set)
    await runtime.start()
    release_startup_logs()
    try:
        await stop.wait()
    finally:
        log.warning("stopping hocvuso")
        await runtime.stop()
