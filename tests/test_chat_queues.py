"""Per-chat order with a global bound (issue 8, defect 2: one person's flood stalled everybody)."""

from __future__ import annotations

import asyncio

from bot.chat_queues import ChatQueues


class Work:
    """Items that finish only when the test says so, recording when each started."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.release: dict[str, asyncio.Event] = {}

    async def run(self, item: str) -> None:
        self.started.append(item)
        await self.release.setdefault(item, asyncio.Event()).wait()

    def finish(self, item: str) -> None:
        self.release.setdefault(item, asyncio.Event()).set()


async def settle() -> None:
    for _ in range(10):  # let the queues' tasks take their turns; nothing here waits on time
        await asyncio.sleep(0)


async def test_sixty_messages_of_one_chat_hold_one_slot_and_another_chat_goes_at_once():
    work = Work()
    queues: ChatQueues[str] = ChatQueues(2, work.run)
    for number in range(60):
        queues.put("flood", f"flood-{number}")
    queues.put("other", "other-help")
    await settle()
    assert work.started == ["flood-0", "other-help"]  # the waiting 59 hold no slot
    work.finish("other-help")
    await settle()
    assert queues.pending == 59


async def test_with_one_slot_chats_take_turns_instead_of_waiting_for_the_whole_flood():
    work = Work()
    queues: ChatQueues[str] = ChatQueues(1, work.run)
    for number in range(60):
        queues.put("flood", f"flood-{number}")
    await settle()
    queues.put("other", "other-help")
    work.finish("flood-0")
    await settle()
    assert work.started == ["flood-0", "other-help"]  # before flood-1, not after flood-59


async def test_one_chat_runs_in_order_one_at_a_time():
    work = Work()
    queues: ChatQueues[str] = ChatQueues(8, work.run)
    for number in range(3):
        queues.put("a", f"a-{number}")
    await settle()
    assert work.started == ["a-0"]
    for number in range(3):
        work.finish(f"a-{number}")
        await settle()
    await queues.join()
    assert work.started == ["a-0", "a-1", "a-2"]


async def test_a_failing_item_does_not_stop_the_chat(caplog):
    done: list[str] = []

    async def run(item: str) -> None:
        if item == "bad":
            raise RuntimeError("hỏng")
        done.append(item)

    queues: ChatQueues[str] = ChatQueues(1, run)
    queues.put("a", "bad")
    queues.put("a", "good")
    await queues.join()
    assert done == ["good"]


async def test_stop_finishes_the_item_in_hand_and_starts_no_other():
    work = Work()
    queues: ChatQueues[str] = ChatQueues(4, work.run)
    queues.put("a", "a-0")
    queues.put("a", "a-1")
    await settle()
    stopping = asyncio.create_task(queues.stop())
    await settle()
    assert not stopping.done()
    work.finish("a-0")
    await stopping
    assert work.started == ["a-0"]


async def test_an_item_that_only_waits_lends_its_slot_to_another_chat():
    """People flooding the bot into Telegram's limits wait out `retry_after` without holding every slot."""
    waiting = asyncio.Event()
    order: list[str] = []

    async def run(item: str) -> None:
        order.append(f"start {item}")
        if item == "flood":
            async with ChatQueues.slot_lent():
                await waiting.wait()
        order.append(f"end {item}")

    queues: ChatQueues[str] = ChatQueues(1, run)
    queues.put("a", "flood")
    await settle()
    queues.put("b", "help")
    await settle()
    assert order == ["start flood", "start help", "end help"]  # ran in the lent slot
    waiting.set()
    await queues.join()
    assert order[-1] == "end flood"


async def test_lending_outside_a_running_item_changes_nothing():
    async with ChatQueues.slot_lent():
        pass
    work = Work()
    queues: ChatQueues[str] = ChatQueues(1, work.run)
    queues.put("a", "a-0")
    queues.put("b", "b-0")
    await settle()
    assert work.started == ["a-0"]  # still one at a time
    work.finish("a-0")
    work.finish("b-0")
    await queues.join()
    assert work.started == ["a-0", "b-0"]


async def test_stop_cancels_what_is_still_running_after_the_grace():
    """Found in review: an answer waiting a day on Telegram kept SIGTERM from stopping the bot."""
    work = Work()
    queues: ChatQueues[str] = ChatQueues(4, work.run)
    queues.put("a", "never-ends")
    queues.put("a", "after-it")
    await settle()
    await queues.stop(grace=0)
    assert work.started == ["never-ends"] and queues.pending == 0
