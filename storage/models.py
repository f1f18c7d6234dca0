"""The tables of hocvuso. Append-only history (answers, activity) is never updated in place."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Column, ForeignKey, Index, Integer, UniqueConstraint
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
    """A thôn/xóm of the commune, from the commune's directory; listed to people in id order."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=120, unique=True)


class Organisation(SQLModel, table=True):
    """A unit of the commune: mass organisation, school, office or enterprise (see ORGANISATION_KINDS).

    `parent_id` puts a chi hội under its hội; figures are per organisation, never summed up the tree.
    """

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=160, unique=True)
    kind: str = Field(default="khac", max_length=40)
    parent_id: int | None = _fk("organisation.id")


ORGANISATION_KINDS = {
    "mat-tran": "Mặt trận",
    "doan-the": "Đoàn thể",
    "truong-hoc": "Trường học",
    "co-quan": "Cơ quan",
    "doanh-nghiep": "Doanh nghiệp",
    "khac": "Khác",
}
"""Kinds of organisation and their Vietnamese labels (the directory workbook uses the labels)."""


class Household(SQLModel, table=True):
    """A hộ gia đình: created in chat by its first member, or listed in the commune's directory.

    Members join with the code. A directory household may have no code until someone creates one;
    `in_directory` rows are the ones the directory import owns (and may prune); a household made in
    chat is never pruned by an import.
    """

    id: int | None = Field(default=None, primary_key=True)
    code: str | None = Field(default=None, max_length=16, unique=True)
    village_id: int | None = _fk("village.id")
    head_name: str | None = Field(default=None, max_length=120)
    member_count: int | None = None
    in_directory: bool = False
    created_at: datetime = _when()


class PopulationFigure(SQLModel, table=True):
    """How many people of a target group (content.schema.CitizenGroup) live in the commune (village
    None) or in one village.

    Entered by the commune through the directory: the denominators of the report's shares. A figure
    that is not entered is unknown, never guessed.
    """

    __table_args__ = (UniqueConstraint("target_group", "village_id"),)

    id: int | None = Field(default=None, primary_key=True)
    target_group: str = Field(max_length=40)
    village_id: int | None = _fk("village.id", on_delete="CASCADE")
    count: int


class Person(SQLModel, table=True):
    """Someone who consented to have their learning recorded."""

    id: int | None = Field(default=None, primary_key=True)
    full_name: str | None = Field(default=None, max_length=120)
    village_id: int | None = _fk("village.id")
    household_id: int | None = _fk("household.id")
    is_household_head: bool = False
    target_group: str | None = Field(default=None, max_length=40)
    vneid_level2: str | None = Field(default=None, max_length=10)
    # The registration question reached (answered or skipped up to it); None once registration is done,
    # so /start can offer to continue an interrupted registration without asking skipped ones again.
    registration_step: str | None = Field(default=None, max_length=30)
    consent_at: datetime = _when()
    # The consent text agreed to (handlers.home.CONSENT_VERSION); version 2 tells that leaders and the
    # village head see one's name and progress, so only people at 2 or later appear by name in lists.
    consent_version: int = 1
    # The newest consent text shown to this person, so someone who declined a new text is not asked again.
    consent_offered: int = 1
    # Off with one tap in /caidat: no encouragement when they stop learning for a while.
    nudges_off: bool = False
    # "chat": agreed in the chat. "in_person": told aloud by a member of the digital team, who registered
    # them on the member's own phone (`registered_by`); they learn with that member until they link a phone.
    consent_method: str = Field(default="chat", max_length=12)
    registered_by: int | None = _fk("person.id")
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
    """A person's membership of an organisation: their claim until a leader of it confirms it."""

    __table_args__ = (UniqueConstraint("person_id", "organisation_id"),)

    id: int | None = Field(default=None, primary_key=True)
    person_id: int | None = _fk("person.id", nullable=False, on_delete="CASCADE")
    organisation_id: int | None = _fk("organisation.id", nullable=False, on_delete="CASCADE")
    confirmed: bool = False
    confirmed_at: datetime | None = _when(nullable=True)


ROLES = ("leader", "village_head", "staff", "admin", "digital_team")
"""Roles raised by invitation. Resident is everyone; household head is Person.is_household_head.
"digital_team": a member of the Tổ công nghệ số cộng đồng of one village (or of the commune, village None),
who may register residents in person and learn with them ("Học cùng", handlers/assisted.py)."""


class RoleGrant(SQLModel, table=True):
    """A role a person holds: leader of one organisation, head of one village, staff or admin.

    Revoked grants stay (with `revoked_at`) as the record of who could see what, and when.
    """

    id: int | None = Field(default=None, primary_key=True)
    person_id: int | None = _fk("person.id", nullable=False, on_delete="CASCADE")
    role: str = Field(max_length=20)
    organisation_id: int | None = _fk("organisation.id", on_delete="CASCADE")
    village_id: int | None = _fk("village.id", on_delete="CASCADE")
    invite_id: int | None = _fk("invitecode.id")
    granted_at: datetime = _when()
    revoked_at: datetime | None = _when(nullable=True)


class InviteCode(SQLModel, table=True):
    """A single-use invitation to a role. Only the code's SHA-256 is stored, never the code."""

    id: int | None = Field(default=None, primary_key=True)
    code_hash: str = Field(max_length=64, unique=True)
    role: str = Field(max_length=20)
    organisation_id: int | None = _fk("organisation.id", on_delete="CASCADE")
    village_id: int | None = _fk("village.id", on_delete="CASCADE")
    created_by: int | None = _fk("person.id")  # None: made in the operator's shell
    created_at: datetime = _when()
    expires_at: datetime = _when()
    used_at: datetime | None = _when(nullable=True)
    used_by: int | None = _fk("person.id")


class InviteCodeTry(SQLModel, table=True):
    """A refused invitation code typed in a chat (like HouseholdCodeTry): a few are allowed, then a wait."""

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=20)
    external_id: str = Field(max_length=64, index=True)
    at: datetime = _when()


class AuditLog(SQLModel, table=True):
    """Who was given, used or refused access to what: grants, redemptions, refusals, views of figures.

    Holds ids and the unit's id, never a name, a code or what was typed. `actor` is a person id (no
    foreign key: the record outlives an erased person, who is then only a number).
    """

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default=None, sa_type=UTCDateTime, nullable=False, index=True)
    actor: int | None = None
    action: str = Field(max_length=40)
    outcome: str = Field(max_length=12)  # ok | refused
    role: str | None = Field(default=None, max_length=20)
    organisation_id: int | None = None
    village_id: int | None = None
    subject: int | None = None  # the person acted on (a member confirmed, a grant revoked), if any
    record_id: int | None = None  # the row acted on (an activity, an initiative), if any
    detail: str | None = Field(default=None, max_length=200)  # field names changed; never their values


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
    # Completed with a digital-team member beside them ("Học cùng"): it counts as completed, and every figure
    # shows it apart. `assisted_by` names the member (None once they erased their data; `assisted` stays).
    assisted: bool = False
    assisted_by: int | None = _fk("person.id")


class QuizAttempt(SQLModel, table=True):
    """One try at a lesson's quiz (or a review session); its answers hang off it."""

    # Each person's tries at each lesson in time order, with what the report reads of them: its
    # first-try figures walk this index instead of sorting every try (0.7 s -> 0.3 s for a commune).
    __table_args__ = (
        Index("ix_quizattempt_person_lesson_finished", "person_id", "lesson_id", "finished_at", "id", "kind", "passed"),
    )
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
    assisted: bool = False  # taken with a digital-team member beside them
    assisted_by: int | None = _fk("person.id")  # who; None once they erased their data


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

    # "Active in the last 30 days" of a unit reads each member's newest row through this index.
    __table_args__ = (Index("ix_activity_person_at", "person_id", "at"),)


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
    # The labels of that menu, in the same order: on a channel without buttons a person may type the
    # choice ("tiếp", "Đồng ý") instead of its number.
    menu_labels: list[str] = Field(default_factory=list, sa_type=JSON)
    # "Học cùng": the resident a digital-team member is learning with on this chat (handlers/assisted.py).
    # While set, lessons and quizzes are the resident's, marked as taken with the member's help.
    learning_with: int | None = _fk("person.id")
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


class Certificate(SQLModel, table=True):
    """A certificate of a finished course, as it was issued: name, course and commune are copied, so a
    later change of the course (or of the commune's name) never changes a certificate already given.

    `code` is what the certificate prints and the QR code carries: 12 characters from
    storage.access.CODE_ALPHABET, unguessable but not secret (it is stored as it is, to draw the PDF
    again). One per person and course; the person's erasure deletes it (storage.queries.erase_person).
    """

    __table_args__ = (UniqueConstraint("person_id", "course_id"),)

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=16, unique=True)
    person_id: int | None = _fk("person.id")
    course_id: str = Field(max_length=40)
    course_title: str = Field(max_length=200)
    lesson_count: int
    full_name: str = Field(max_length=120)
    commune_name: str = Field(max_length=100)
    issued_at: datetime = _when()
    issued_on: date  # the date printed, in the commune's time zone when it was issued


class CertificateCodeTry(SQLModel, table=True):
    """A certificate code that matched nothing, typed in a chat (like InviteCodeTry): a few, then a wait."""

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=20)
    external_id: str = Field(max_length=64, index=True)
    at: datetime = _when()


def column_length(model: type[SQLModel], column: str) -> int:
    """The length of a string column, read from the table so a limit elsewhere cannot drift from it."""
    return model.__table__.c[column].type.length  # type: ignore[attr-defined, no-any-return]


ALL_TABLES = [
    Village, Organisation, Household, PopulationFigure, Person, ChannelAccount, Membership, RoleGrant,
    InviteCode, InviteCodeTry, AuditLog, LessonProgress, QuizAttempt, Answer, Activity,
    ConversationState, ProcessedUpdate, InboxUpdate, HouseholdCodeTry, Certificate, CertificateCodeTry,
]


DELIVERY_STATUSES = ("queued", "sending", "sent", "failed", "blocked", "expired")
DELIVERY_KINDS = ("reminder", "nudge", "announcement", "notice")


class Delivery(SQLModel, table=True):
    """The outbox: one message the bot starts itself (a reminder, a nudge, an announcement, a notice),
    stored before it is sent under a key that names what it is, so it is sent once whatever restarts.

    `payload` is the message as channel-neutral replies (text and button rows). A row is `queued`
    until a sender leases it (`sending`, until `lease_until`), then `sent`, `failed` (with `reason`,
    after the bounded retries), `blocked` (the person blocked the bot) or `expired` (not sent by
    `expires_at`, e.g. a nudge that would land in the quiet hours).
    """

    __table_args__ = (Index("ix_delivery_status_next_try_at", "status", "next_try_at"),)

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=160, unique=True)
    kind: str = Field(max_length=20)
    channel: str = Field(max_length=20)
    external_id: str = Field(max_length=64)
    person_id: int | None = _fk("person.id", on_delete="CASCADE")
    announcement_id: int | None = _fk("announcement.id", on_delete="SET NULL")
    payload: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)
    status: str = Field(default="queued", max_length=10)
    attempts: int = 0
    next_try_at: datetime = _when()
    lease_until: datetime | None = _when(nullable=True)
    expires_at: datetime | None = _when(nullable=True)
    created_at: datetime = _when()
    sent_at: datetime | None = _when(nullable=True)
    reason: str | None = Field(default=None, max_length=200)


class Deadline(SQLModel, table=True):
    """A date units must report by: every year on `day`/`month`, or once on `day`/`month`/`year`.

    Reminders go `remind_days` days before (0: on the day) at `remind_hour`:00 in the commune's zone,
    to the `audience`: "all" (staff, every organisation leader and village head), "organisations"
    (staff and the leaders of `organisation_ids`) or "staff".
    """

    id: int | None = Field(default=None, primary_key=True)
    title: str = Field(max_length=200)
    day: int
    month: int
    year: int | None = None  # None: every year
    remind_days: list[int] = Field(default_factory=lambda: [30, 14, 7, 3, 1, 0], sa_type=JSON)
    remind_hour: int = 8
    audience: str = Field(default="all", max_length=20)
    organisation_ids: list[int] = Field(default_factory=list, sa_type=JSON)
    paused: bool = False
    created_at: datetime = _when()
    created_by: int | None = _fk("person.id")
    removed_at: datetime | None = _when(nullable=True)  # kept, so the default is not seeded again


class HandIn(SQLModel, table=True):
    """A unit marked its report for one occurrence of a deadline as handed in (/danop): it gets no
    more reminders for that occurrence. `unit` is "commune", "org:ID" or "village:ID"."""

    __table_args__ = (UniqueConstraint("deadline_id", "due_on", "unit"),)

    id: int | None = Field(default=None, primary_key=True)
    deadline_id: int | None = _fk("deadline.id", nullable=False, on_delete="CASCADE")
    due_on: date
    unit: str = Field(max_length=40)
    person_id: int | None = _fk("person.id")
    handed_at: datetime = _when()


class Announcement(SQLModel, table=True):
    """A message staff or a leader sent to many (/thongbao); each recipient's copy is a Delivery.
    `audience` is "commune", "org:ID" or "village:ID"."""

    id: int | None = Field(default=None, primary_key=True)
    author_id: int | None = _fk("person.id")
    author_channel: str = Field(max_length=20)
    author_external_id: str = Field(max_length=64)
    audience: str = Field(max_length=40)
    text: str = Field(max_length=2000)
    recipients: int = 0
    created_at: datetime = _when()
    finished_at: datetime | None = _when(nullable=True)  # when its final numbers were sent to the author


class LinkCode(SQLModel, table=True):
    """A short code that links another messenger's account to a person (/lienket): 6 digits, single
    use, 10 minutes. Only the code's SHA-256 is stored. One live code per person: asking again
    replaces it. `channel` is where it was made, so the same messenger is not linked to itself."""

    id: int | None = Field(default=None, primary_key=True)
    code_hash: str = Field(max_length=64, unique=True)
    person_id: int | None = _fk("person.id", nullable=False, on_delete="CASCADE")
    channel: str = Field(max_length=20)
    created_at: datetime = _when()
    expires_at: datetime = _when()
    used_at: datetime | None = _when(nullable=True)


class LinkCodeTry(SQLModel, table=True):
    """A link code that was wrong or expired, typed in a chat (like HouseholdCodeTry): a few, then a wait."""

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=20)
    external_id: str = Field(max_length=64, index=True)
    at: datetime = _when()


ACTIVITY_KINDS = {
    "tuyen-truyen": "Tuyên truyền",
    "tap-huan": "Lớp/buổi tập huấn",
    "ho-tro-tai-nha": "Hỗ trợ tại nhà",
    "hoi-thi": "Hội thi",
    "khac": "Khác",
}
"""Kinds of activity a unit organises offline, and their Vietnamese labels (plan, section III.1)."""


class UnitActivity(SQLModel, table=True):
    """Something a unit organised offline (/hoatdong): a campaign, a class, home visits, a contest.

    The unit is an organisation, or a village (its head or the digital team), or the commune (staff:
    both None). Removing keeps the row with `removed_at`, so the audit trail still names what it was;
    removed rows count nowhere. `participants` is the number present; `members` may name some of them.
    """

    id: int | None = Field(default=None, primary_key=True)
    organisation_id: int | None = _fk("organisation.id", on_delete="CASCADE")
    village_id: int | None = _fk("village.id", on_delete="CASCADE")
    kind: str = Field(max_length=20)
    held_on: date
    title: str = Field(max_length=160)
    place: str | None = Field(default=None, max_length=120)
    place_village_id: int | None = _fk("village.id")
    participants: int = 0
    photo_file_id: str | None = Field(default=None, max_length=200)  # Telegram's file_id; the photo stays there
    recorded_by: int | None = _fk("person.id")
    created_at: datetime = _when()
    updated_at: datetime = _when()
    removed_at: datetime | None = _when(nullable=True)


class UnitActivityMember(SQLModel, table=True):
    """A member of the unit named as present at an activity."""

    __table_args__ = (UniqueConstraint("activity_id", "person_id"),)

    id: int | None = Field(default=None, primary_key=True)
    activity_id: int | None = _fk("unitactivity.id", nullable=False, on_delete="CASCADE")
    person_id: int | None = _fk("person.id", nullable=False, on_delete="CASCADE")


class Initiative(SQLModel, table=True):
    """A sáng kiến or cách làm hay proposed by anyone registered (/sangkien); staff mark it recognised.

    Until then only its proposer and staff see it. It goes with its proposer's erasure (its text may
    name people).
    """

    id: int | None = Field(default=None, primary_key=True)
    title: str = Field(max_length=200)
    authors: str = Field(max_length=300)
    organisation_id: int | None = _fk("organisation.id")
    village_id: int | None = _fk("village.id")
    description: str = Field(max_length=1000)
    result: str = Field(max_length=1000)
    proposed_by: int | None = _fk("person.id", nullable=False, on_delete="CASCADE")
    created_at: datetime = _when()
    updated_at: datetime = _when()
    recognised_at: datetime | None = _when(nullable=True)
    recognised_by: int | None = _fk("person.id")
