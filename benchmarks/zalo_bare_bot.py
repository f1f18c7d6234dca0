"""The Zalo baseline: a bare bot that makes the Zalo calls hocvuso makes, and nothing else.

Same client library (bot/channels/zalo_client.ZaloClient over httpx), same concurrency model as
hocvuso's Zalo channel (one poller taking one update per `getUpdates`; updates of one chat in order,
of different chats concurrently, at most HOCVUSO_ZALO_CONCURRENCY at once, through bot/chat_queues),
same event loop (uvloop). No inbox, no dispatcher, no database: what is left of hocvuso's cost once
its own work is taken away.

What to answer is in the text itself, so the benchmark can replay hocvuso's answers without the bot
knowing the script: "bước 03: 949,180" is answered with two `sendMessage`, of 949 and 180 characters,
starting "bước 03 (1/2)" and "bước 03 (2/2)" (the lengths are those of hocvuso's messages for that step of
the resident script, see benchmarks/telegram_bench.py). Any other text is echoed once.

Run by telegram_bench.py as its own process, configured like `hocvuso run`:
`HOCVUSO_ZALO_TOKEN=… HOCVUSO_ZALO_API_URL=… python -m benchmarks.zalo_bare_bot`
(HOCVUSO_ZALO_POLL_TIMEOUT, default 30, and HOCVUSO_ZALO_CONCURRENCY, default 32, as in bot/settings.py).
"""

from __future__ import annotations

import asyncio
import os
import re

from bot.channels.zalo_client import ZaloClient, ZaloError, ZaloUpdate
from bot.chat_queues import ChatQueues

TEXT_EVENT = "message.text.received"
PLAN = re.compile(r"^(?P<marker>.+?): (?P<lengths>\d+(?:,\d+)*)$")
FILLER = " Bình dân học vụ số: học kỹ năng số qua những bài ngắn, mỗi bài vài thẻ và một bài kiểm tra."


def answer_texts(text: str) -> list[str]:
    """The messages that answer `text`: as many as its plan lists, each of its length; else an echo."""
    match = PLAN.match(text)
    if match is None:
        return [text]
    lengths = [int(part) for part in match["lengths"].split(",")]
    texts = []
    for number, length in enumerate(lengths, start=1):
        head = f"{match['marker']} ({number}/{len(lengths)})"
        texts.append((head + FILLER * (length // len(FILLER) + 1))[:max(length, len(head))])
    return texts


async def serve(token: str, api_url: str, poll_timeout: int, concurrency: int) -> None:
    async with ZaloClient(token, api_url) as client:

        async def answer(update: ZaloUpdate) -> None:
            assert update.text is not None
            for text in answer_texts(update.text):  # one after another, as hocvuso sends an answer's parts
                await client.send_message(update.chat_id, text)

        queues: ChatQueues[ZaloUpdate] = ChatQueues(concurrency, answer, "zalo update")
        await client.get_me()
        while True:
            try:
                updates = await client.get_updates(poll_timeout)
            except ZaloError:
                await asyncio.sleep(1)
                continue
            for update in updates:
                if update.event_name == TEXT_EVENT and update.text and update.chat_id:
                    queues.put(update.chat_id, update)


def main() -> None:
    arguments = (os.environ["HOCVUSO_ZALO_TOKEN"], os.environ["HOCVUSO_ZALO_API_URL"],
                 int(os.environ.get("HOCVUSO_ZALO_POLL_TIMEOUT", "30")),
                 int(os.environ.get("HOCVUSO_ZALO_CONCURRENCY", "32")))
    try:
        import uvloop  # hocvuso run's loop (bot/cli.run_event_loop)
    except ImportError:
        asyncio.run(serve(*arguments))
    else:
        uvloop.run(serve(*arguments))


if __name__ == "__main__":
    main()
