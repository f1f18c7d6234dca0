"""Certificates of a finished course: issuing (once per person and course), finding by code, codes.

A certificate copies what it certifies (the name, the course's title and number of lessons, the
commune) when it is issued, so it reads the same however the course or the commune's settings change
later. Its code is printed on it and carried by its QR code: not a secret, but unguessable (12
characters from access.CODE_ALPHABET: 24^12 ≈ 3.6e16 codes), so nobody finds someone's certificate by
trying codes. Codes are never logged.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage import access
from storage.models import Certificate

CODE_LENGTH = access.CODE_LENGTH


def new_code(rng: random.Random) -> str:
    return "".join(rng.choice(access.CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normalise_code(text: str) -> str | None:
    """The code typed or scanned, in capitals without spaces or dashes; None when it cannot be a code.

    The same reading as an invitation code (access.normalise_code): NFKC first, so a phone's
    full-width "Ｋ７" is the code's K7.
    """
    return access.normalise_code(text)


grouped = access.grouped
"""'K7MX4RTPW9AC' -> 'K7MX-4RTP-W9AC', as the certificate prints it."""


@dataclass(frozen=True)
class Issued:
    """What a certificate says, read from its row (no ORM object leaves the session)."""

    code: str
    person_id: int | None
    course_id: str
    course_title: str
    lesson_count: int
    full_name: str
    commune_name: str
    issued_at: datetime
    issued_on: date

    @classmethod
    def of(cls, row: Certificate) -> Issued:
        return cls(row.code, row.person_id, row.course_id, row.course_title, row.lesson_count, row.full_name,
                   row.commune_name, row.issued_at, row.issued_on)


async def of_person(session: AsyncSession, person_id: int, course_id: str) -> Certificate | None:
    statement = select(Certificate).where(Certificate.person_id == person_id, Certificate.course_id == course_id)
    return (await session.exec(statement)).first()


async def by_code(session: AsyncSession, code: str) -> Certificate | None:
    """The certificate with this (normalised) code; None for a made-up code or an erased person's."""
    return (await session.exec(select(Certificate).where(col(Certificate.code) == code))).first()


async def free_code(session: AsyncSession, rng: random.Random) -> str:
    """A code no certificate has. A clash is all but impossible; it is checked all the same."""
    for _ in range(20):
        code = new_code(rng)
        if await by_code(session, code) is None:
            return code
    raise RuntimeError("không tạo được mã chứng nhận mới")  # only with a broken random source


async def issue(session: AsyncSession, issued: Issued) -> Certificate:
    """Store a new certificate. The caller has checked the person has none for this course (the unique
    constraint on person and course refuses a second one in any case)."""
    row = Certificate(code=issued.code, person_id=issued.person_id, course_id=issued.course_id,
                      course_title=issued.course_title, lesson_count=issued.lesson_count,
                      full_name=issued.full_name, commune_name=issued.commune_name,
                      issued_at=issued.issued_at, issued_on=issued.issued_on)
    session.add(row)
    await session.flush()
    return row


async def rename(session: AsyncSession, row: Certificate, full_name: str, code: str) -> Certificate:
    """Reissue under a corrected name: a new code, so the old paper (with the old name) no longer
    verifies; the course and the date stay as they were issued."""
    row.full_name, row.code = full_name, code
    session.add(row)
    await session.flush()
    return row


async def verify(session: AsyncSession, text: str) -> Issued | None:
    """The certificate a typed or scanned code names; None for anything else (malformed, made up, erased)."""
    code = normalise_code(text)
    if code is None:
        return None
    row = await by_code(session, code)
    return Issued.of(row) if row is not None else None
