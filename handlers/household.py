"""Household codes: reading what was typed, the limit on wrong codes, and the members the head sees.

A code is the only key to a household, so wrong codes are limited per chat (a few an hour), a miss
never says whether a code exists, and the head of the household sees who joined and can remove them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from handlers.context import Turn
from handlers.core import Button
from handlers.numbers import action_number
from storage import queries
from storage.models import Household, Person

WRONG_CODE = "Mã hộ chưa đúng. Bạn hỏi lại người nhà rồi gõ lại nhé (còn {left} lần thử)."
TOO_MANY_TRIES = (
    "Bạn đã gõ sai mã hộ nhiều lần. Để giữ an toàn cho các hộ, bạn vui lòng chờ đến {until} "
    "rồi thử lại nhé."
)
MEMBERS_HEAD = "🏡 Hộ của bạn (mã {code}) có {count} người:\n{names}"
MEMBERS_HEAD_HINT = "Nếu có người không phải người nhà, bạn bấm nút để bỏ họ ra khỏi hộ."
MEMBERS_OTHER = "🏡 Hộ của bạn (mã {code}) có {count} người."
MEMBER_LINE = "{number}. {name}"
YOU = " (bạn)"
NO_NAME = "chưa có tên"
BTN_REMOVE = "❌ Bỏ số {number}: {name}"
BTN_RENEW = "🔄 Đổi mã hộ"

# Phones may type fullwidth digits; anything else that only looks like a digit ('²', '①') is not one.
FULLWIDTH_DIGITS = str.maketrans("０１２３４５６７８９", "0123456789")
SEPARATORS = re.compile(r"[\s.\-]")
ASCII_DIGITS = re.compile(r"[0-9]+")
# Person ids fit PostgreSQL's integer; a longer forged number must not reach the query and fail there.
MAX_ID_DIGITS = 9


NO_CODE_YET = "chưa có"


def spoken_code(code: str) -> str:
    """'482915' -> '482 915': groups of three are easier to read aloud on the phone."""
    return " ".join(code[i : i + 3] for i in range(0, len(code), 3))


def parse_code(text: str, length: int) -> str | None:
    """'482 915', '482.915', '４８２９１５' -> '482915'; None unless exactly `length` digits 0-9."""
    code = SEPARATORS.sub("", text.translate(FULLWIDTH_DIGITS))
    return code if len(code) == length and ASCII_DIGITS.fullmatch(code) else None


# --- the limit on wrong codes -------------------------------------------------------------------

@dataclass(frozen=True)
class CodeTries:
    """What the chat may still try: `left` wrong codes, or nothing until `wait_until`."""

    left: int
    wait_until: datetime | None = None


def _window(turn: Turn) -> timedelta:
    return timedelta(minutes=turn.config.household_code_window_minutes)


async def code_tries(turn: Turn) -> CodeTries:
    """The chat's wrong codes within the window decide; counted per chat, so erasing resets nothing."""
    allowed = max(1, turn.config.household_code_tries)
    window = _window(turn)
    tries = await queries.household_code_tries(
        turn.session, turn.incoming.channel, turn.incoming.user_id, turn.now - window
    )
    if len(tries) < allowed:
        return CodeTries(left=allowed - len(tries))
    # A sliding window: the chat may try again once the oldest of the last `allowed` tries drops out.
    return CodeTries(left=0, wait_until=tries[len(tries) - allowed] + window)


async def record_miss(turn: Turn) -> CodeTries:
    await queries.record_household_code_try(
        turn.session, turn.incoming.channel, turn.incoming.user_id, turn.now,
        turn.config.household_code_window_minutes,
    )
    return await code_tries(turn)


def miss_text(tries: CodeTries) -> str:
    return WRONG_CODE.format(left=tries.left)


def _minute_up(moment: datetime) -> datetime:
    whole = moment.replace(second=0, microsecond=0)
    return whole if whole == moment else whole + timedelta(minutes=1)


def until_text(turn: Turn, until: datetime) -> str:
    """A moment to wait for, in the commune's time, rounded up to the minute so it is never too early."""
    local = _minute_up(until).astimezone(turn.config.zone)
    return local.strftime("%H:%M") if local.date() == turn.today else local.strftime("%H:%M ngày %d/%m")


def wait_text(turn: Turn, until: datetime) -> str:
    return TOO_MANY_TRIES.format(until=until_text(turn, until))


# --- what the members see -----------------------------------------------------------------------

@dataclass(frozen=True)
class Summary:
    """The household as its member sees it: a text, and for the head a button per other member."""

    text: str
    buttons: tuple[Button, ...] = ()


async def summary(turn: Turn, household: Household) -> Summary:
    person = turn.person
    assert person is not None and household.id is not None
    members = await queries.household_members(turn.session, household.id)
    # A directory household may have no code yet (its members were registered in person, "Học cùng").
    code = spoken_code(household.code) if household.code else NO_CODE_YET
    if not person.is_household_head:
        return Summary(MEMBERS_OTHER.format(code=code, count=len(members)))
    lines, buttons = [], []
    for number, member in enumerate(members, start=1):
        name = member_name(member)
        if member.id == person.id:
            lines.append(MEMBER_LINE.format(number=number, name=name + YOU))
            continue
        lines.append(MEMBER_LINE.format(number=number, name=name))
        buttons.append(Button(BTN_REMOVE.format(number=number, name=name), f"hh:remove:{member.id}"))
    text = MEMBERS_HEAD.format(code=code, count=len(members), names="\n".join(lines))
    if buttons:
        text += "\n\n" + MEMBERS_HEAD_HINT
    return Summary(text, (*buttons, Button(BTN_RENEW, "hh:newcode")))


def member_name(member: Person) -> str:
    return member.full_name or NO_NAME


async def removable_member(turn: Turn, argument: str) -> Person | None:
    """The member a remove button names, if the one pressing heads a household that person is in now.

    A button's argument cannot be trusted: anything else (another household's member, oneself, a
    non-number, a press by someone who is not the head) yields None and nothing is done.
    """
    head = turn.person
    if head is None or not head.is_household_head or head.household_id is None:
        return None
    member_id = action_number(argument, MAX_ID_DIGITS)
    if member_id is None:
        return None
    member = await turn.session.get(Person, member_id)
    if member is None or member.id == head.id or member.household_id != head.household_id:
        return None
    return member
