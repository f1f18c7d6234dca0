"""The tables of hocvuso. Append-only history (answers, activity) is never updated in place."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, ForeignKey, Integer, UniqueConstraint
from sqlmodel import Field, SQLModel

from storage.types import UTCDateTime

# Naming convention keeps constraint names identical on SQLite and PostgreSQL, which Alembic's
# batch mode on SQLite needs to alter tables later.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def _fk(target: str, *, nullable: bool = True, on_delete: str = "SET NULL") -> Any:
    """A foreign-key integer column; `on_delete` is what happens when the referenced row goes."""
    return Field(
        default=None,
        sa_column=Column(Integer, ForeignKey(target, ondelete=on_delete), nullable=nullable, index=True),
    )


def _when(*, nullable: bool = False) -> Any:
    return Field(default=None, sa_type=UTCDateTime, nullable=nullable)


class Village(SQLModel, table=True):
    """A thôn/xóm of the commune."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=120, unique=True)


class Organisation(SQLModel, table=True):
    """A unit of the commune: mass organisation, school, office or enterprise."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=160, unique=True)
    kind: str = Field(default="to-chuc", max_length=40)


class Household(SQLModel, table=True):
    """A hộ gia đình; its members share the code to join it."""

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=16, unique=True)
    village_id: int | None = _fk("village.id")
    created_at: datetime = _when()


class Person(SQLModel, table=True):
    """Someone who consented to have their learning recorded."""

    id: int | None = Field(default=None, primary_key=True)
    full_name: str | None = Field(default=None, max_length=120)
    village_id: int | None = _fk("village.id")
    household_id: int | None = _fk("household.id")
    is_household_head: bool = False
    target_group: str | None = Field(default=None, max_length=40)
    vneid_level2: str | None = Field(default=None, max_length=10)
    role: str = Field(default="resident", max_length=20)
    # The registration question reached (answered or skipped up to it); None once registration is done,
    # so /start can offer to continue an interrupted registration without asking skipped ones again.
    registration_step: str | None = Field(default=None, max_length=30)
    consent_at: datetime = _when()
    created_at: datetime = _when()


class ChannelAccount(SQLModel, table=True):
    """A person's account on one channel (Telegram, Zalo, console)."""

    __table_args__ = (UniqueConstraint("channel", "external_id"),)

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=20)
    external_id: str = Field(max_length=64)
    person_id: int | None = _fk("person.id", nullable=False, on_delete="CASCADE")
    blocked: bool = False
    created_at: datetime = _when()


class Membership(SQLModel, table=True):
    """A person's membership of an organisation."""

    __table_args__ = (UniqueConstraint("person_id", "organisation_id"),)

    id: int | None = Field(default=None, primary_key=True)
    person_id: int | None = _fk("person.id", nullable=False, on_delete="CASCADE")
    organisation_id: int | None = _fk("organisation.id", nullable=False, on_delete="CASCADE")
    role: str = Field(default="member", max_length=10)


class LessonProgress(SQLModel, table=True):
    """Where a person stands in one lesson."""

    __table_args__ = (UniqueConstraint("person_id", "lesson_id"),)

    id: int | None = Field(default=None, primary_key=True)
    person_id: int | None = _fk("person.id", nullable=False, on_delete="CASCADE")
    lesson_id: str = Field(max_length=40, index=True)
    status: str = Field(default="started", max_length=12)
    best_score: int | None = None
    started_at: datetime = _when()
    completed_at: datetime | None = _when(nullable=True)


class QuizAttempt(SQLModel, table=True):
    """One try at a lesson's quiz (or a review session); its answers hang off it."""

    id: int | None = Field(default=None, primary_key=True)
    person_id: int | None = _fk("person.id", nullable=False, on_delete="CASCADE")
    lesson_id: str = Field(max_length=40, index=True)
    kind: str = Field(default="lesson", max_length=10)
    question_ids: list[str] = Field(default_factory=list, sa_type=JSON)
    total: int = 0
    correct: int = 0
    score: int | None = None
    passed: bool | None = None
    started_at: datetime = _when()
    finished_at: datetime | None = _when(nullable=True)


class Answer(SQLModel, table=True):
    """One answer as it was given; never changed afterwards."""

    __table_args__ = (UniqueConstraint("attempt_id", "question_id"),)

    id: int | None = Field(default=None, primary_key=True)
    attempt_id: int | None = _fk("quizattempt.id", nullable=False, on_delete="CASCADE")
    question_id: str = Field(max_length=60)
    option_index: int
    correct: bool
    answered_at: datetime = _when()


class Activity(SQLModel, table=True):
    """Append-only log of learning events from which reports count participation.

    When a person erases their data the rows stay with `person_id` cleared, so commune totals keep
    anonymous counts as Nghị định 13/2023 allows.
    """

    id: int | None = Field(default=None, primary_key=True)
    person_id: int | None = _fk("person.id")
    kind: str = Field(max_length=20, index=True)
    lesson_id: str | None = Field(default=None, max_length=40)
    detail: str | None = Field(default=None, max_length=60)
    at: datetime = _when()


class ConversationState(SQLModel, table=True):
    """Where a chat stands: the step, its data and the last menu shown.

    Kept per channel account, so a restart or another worker continues the conversation exactly.
    """

    __table_args__ = (UniqueConstraint("channel", "external_id"),)

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=20)
    external_id: str = Field(max_length=64)
    step: str = Field(default="main", max_length=30)
    data: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    menu: list[str] = Field(default_factory=list, sa_type=JSON)
    updated_at: datetime = _when()


class ProcessedUpdate(SQLModel, table=True):
    """An update already handled, so a redelivery changes nothing.

    The key names what the update carries (a chat's message id, a button press's query id), not the
    channel's update counter, which Telegram may restart; rows older than a week are pruned.
    """

    __table_args__ = (UniqueConstraint("channel", "delivery_key"),)

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=20)
    delivery_key: str = Field(max_length=80)
    processed_at: datetime = Field(default=None, sa_type=UTCDateTime, nullable=False, index=True)


class InboxUpdate(SQLModel, table=True):
    """An update received from a messenger, stored before the messenger is told it arrived.

    Rows are written before the next poll (or before a webhook answers 200) and replayed at start, so
    a kill -9 loses nothing. The replies are stored in the same transaction that handles the update;
    `sent` counts the messages of those replies already delivered, so a replay sends only the rest.
    """

    __table_args__ = (UniqueConstraint("channel", "delivery_key"),)

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=20)
    delivery_key: str = Field(max_length=80)
    chat_id: str = Field(max_length=64)
    payload: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    replies: list[dict[str, Any]] | None = Field(default=None, sa_type=JSON)
    sent: int = 0
    received_at: datetime = _when()
    # A worker works on a row until this moment; after it (a crashed worker) any worker may take it.
    lease_until: datetime = _when()
    done_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True, index=True)


class HouseholdCodeTry(SQLModel, table=True):
    """A wrong household code typed in a chat: a few an hour are allowed, then the chat waits.

    Counted per chat (channel + external id), not per person, so erasing one's data and consenting
    again does not reset the count. Holds no code and no name; a chat's rows older than the window
    are deleted whenever it tries again.
    """

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=20)
    external_id: str = Field(max_length=64, index=True)
    at: datetime = _when()


def column_length(model: type[SQLModel], column: str) -> int:
    """The length of a string column, read from the table so a limit elsewhere cannot drift from it."""
    return model.__table__.c[column].type.length  # type: ignore[attr-defined, no-any-return]


ALL_TABLES = [
    Village, Organisation, Household, Person, ChannelAccount, Membership, LessonProgress,
    QuizAttempt, Answer, Activity, ConversationState, ProcessedUpdate, InboxUpdate,
    HouseholdCodeTry,
]
