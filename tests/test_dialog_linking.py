"""One person, two apps (/lienket): a code on one messenger links the other, progress is one, and
messages the bot starts go to the app used last. On SQLite and, with TEST_DATABASE_URL, PostgreSQL."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from sqlmodel import col, select

from bot.settings import Settings
from handlers.core import Reply, to_payload
from handlers.linking import initials
from storage import linking, outbox
from storage.models import (
    Activity,
    Announcement,
    Answer,
    AuditLog,
    Certificate,
    ChannelAccount,
    ConversationState,
    Deadline,
    Delivery,
    HandIn,
    Household,
    Initiative,
    InviteCode,
    LessonProgress,
    LinkCode,
    LinkCodeTry,
    Membership,
    Organisation,
    Person,
    QuizAttempt,
    RoleGrant,
    UnitActivity,
    UnitActivityMember,
    Village,
)
from tests.support import Chat, converse
from tests.test_dialog_account import finish_first_lesson
from tests.test_dialog_learning import answer, read_all_cards
from tests.test_dialog_registration import register

CONFIRM = "Tài khoản này sẽ dùng chung tiến độ học"
LINKED = "Đã liên kết với tài khoản"
WRONG = "Mã liên kết chưa đúng hoặc đã được dùng"
EXPIRED = "Mã này đã hết hạn"
WAIT = "Bạn đã gõ sai mã liên kết nhiều lần"


@pytest.fixture
def settings(database_url: str) -> Settings:
    """The conversations on SQLite and, with TEST_DATABASE_URL, on PostgreSQL."""
    return Settings(_env_file=None, database_url=database_url)  # type: ignore[call-arg]


def telegram(dispatcher, user: str = "tg1") -> Chat:
    return Chat(dispatcher, user=user, channel="telegram")


def zalo(dispatcher, user: str = "z1") -> Chat:
    return Chat(dispatcher, user=user, channel="zalo")


async def code_from(chat: Chat) -> str:
    """Ask for a link code and read it from the answer, as the person would."""
    shown = await chat.say("/lienket")
    match = re.search(r"/lienket (\d{6})", shown)
    assert match, shown
    return match.group(1)


async def people(services) -> list[Person]:
    async with services.database.session() as session:
        return list((await session.exec(select(Person).order_by(col(Person.id)))).all())


async def accounts(services) -> list[tuple[str, str, int]]:
    async with services.database.session() as session:
        rows = (await session.exec(select(ChannelAccount).order_by(col(ChannelAccount.id)))).all()
    return [(row.channel, row.external_id, row.person_id) for row in rows]


async def audited(services) -> list[tuple[str, int | None, int | None]]:
    async with services.database.session() as session:
        rows = (await session.exec(select(AuditLog).where(AuditLog.action == "account_linked")
                                   .order_by(col(AuditLog.id)))).all()
    return [(row.outcome, row.actor, row.subject) for row in rows]


# --- linking a new account -------------------------------------------------------------------------

async def test_a_brand_new_zalo_chat_links_with_the_code_and_sees_the_progress(dispatcher, services):
    tg = telegram(dispatcher)
    await register(tg)
    await finish_first_lesson(tg, services)
    shown = await tg.say("/lienket")
    code = re.search(r"/lienket (\d{6})", shown).group(1)  # type: ignore[union-attr]
    assert f"Mã liên kết của bạn: {code[:3]} {code[3:]}" in shown
    assert f"Trên Zalo, nhắn cho trợ lý:\n/lienket {code}" in shown
    assert "đến 08:10" in shown  # ten minutes, in the commune's time
    assert {"🔄 Tạo mã mới", "🔢 Tôi có mã từ ứng dụng khác", "🏠 Về menu"} <= set(tg.labels)

    z = zalo(dispatcher)
    asked = await z.say(f"/lienket {code[:3]} {code[3:]}")  # its very first message, typed with a space
    assert "chương trình trả lời tự động" in asked  # a first contact says it is a machine
    assert CONFIRM in asked and "tài khoản Telegram (N.V.A.)" in asked
    assert "Nguyễn" not in asked  # who merely holds a code learns no name
    await converse(z, [("#Đồng ý liên kết", f"{LINKED} Telegram")])
    assert "Bạn muốn làm gì?" in z.transcript  # then the main menu, of a registered person
    await converse(z, [("/tiendo", f"đã xong 1/{len(services.catalog.core_course.lessons)} bài")])
    assert "Tài khoản nhắn tin: Telegram, Zalo (đã liên kết" in await z.say("/dulieucuatoi")

    [person] = await people(services)
    assert await accounts(services) == [("telegram", "tg1", person.id), ("zalo", "z1", person.id)]
    assert await audited(services) == [("ok", person.id, None)]
    # Learning on Zalo is the same person's progress, seen on Telegram.
    lesson = services.catalog.ordered_lessons()[1]
    await read_all_cards(z, lesson)
    await z.choose("Làm bài kiểm tra")
    await answer(z, lesson, correct=True)
    await converse(tg, [("/tiendo", f"đã xong 2/{len(services.catalog.core_course.lessons)} bài")])


async def test_lienket_alone_asks_for_the_code_and_a_plain_word_works_too(dispatcher, services):
    tg = telegram(dispatcher)
    await register(tg)
    await converse(tg, [("liên kết", "Mã liên kết của bạn")])  # the plain words, without the slash
    code = re.search(r"/lienket (\d{6})", tg.transcript).group(1)  # type: ignore[union-attr]
    z = zalo(dispatcher)
    await converse(z, [
        ("/start", "Bạn có đồng ý không?"),
        ("/lienket", "Bạn gõ mã liên kết 6 chữ số"),
        ("12345", "gồm 6 chữ số"),  # not a code at all: not a try either
        (f"{code[:3]}.{code[3:]}", CONFIRM),
        ("#Không", "Đã hủy, chưa liên kết gì"),
    ])
    assert len(await accounts(services)) == 1
    await converse(z, [(f"/lienket {code}", CONFIRM), ("#Đồng ý", LINKED)])
    assert len(await accounts(services)) == 2
    async with services.database.session() as session:
        assert (await session.exec(select(LinkCodeTry))).all() == []


async def test_a_new_code_replaces_the_old_one(dispatcher, services):
    tg = telegram(dispatcher)
    await register(tg)
    first = await code_from(tg)
    second = await code_from(tg)
    assert first != second
    z = zalo(dispatcher)
    assert WRONG in await z.say(f"/lienket {first}")
    await converse(z, [(f"/lienket {second}", CONFIRM), ("#Đồng ý", LINKED)])
    async with services.database.session() as session:
        codes = (await session.exec(select(LinkCode))).all()
    assert [c.used_at is not None for c in codes] == [True]  # one live code per person, never in clear
    assert all(second not in c.code_hash and first not in c.code_hash for c in codes)


# --- merging two people ----------------------------------------------------------------------------

async def test_an_account_with_its_own_progress_is_merged_and_nothing_is_lost(dispatcher, services):
    lessons = services.catalog.ordered_lessons()
    tg = telegram(dispatcher)
    await register(tg)  # Nguyễn Văn An, Thôn 2, a new household, Hội Nông dân
    await finish_first_lesson(tg, services)
    z = zalo(dispatcher)
    await converse(z, [
        ("/start", "Bạn có đồng ý không?"), ("#Đồng ý", "họ và tên"), ("An Zalo", "thôn/xóm nào"),
        ("#Thôn 1", "nhóm nào"), ("#Bỏ qua", "Hộ gia đình"), ("#Tạo mã hộ mới", "tổ chức nào"),
        ("#Đoàn Thanh niên", "☑️"), ("#Xong", "VNeID mức 2"), ("#Chưa kích hoạt", "Đăng ký xong"),
    ])
    await read_all_cards(z, lessons[1])
    await z.choose("Làm bài kiểm tra")
    await answer(z, lessons[1], correct=True)
    await read_all_cards(z, lessons[0])  # the first lesson, failed on Zalo and passed on Telegram
    await z.choose("Làm bài kiểm tra")
    await answer(z, lessons[0], correct=False)
    before = await people(services)
    assert len(before) == 2
    async with services.database.session() as session:
        attempts = len((await session.exec(select(QuizAttempt))).all())
        answers = len((await session.exec(select(Answer))).all())
        activities = len((await session.exec(select(Activity))).all())

    code = await code_from(tg)
    merge = await z.say(f"/lienket {code}")
    assert CONFIRM in merge and "đã có dữ liệu riêng" in merge and "không mất gì" in merge
    total = len(services.catalog.core_course.lessons)
    await converse(z, [("#Đồng ý liên kết", LINKED), ("/tiendo", f"đã xong 2/{total} bài")])
    await converse(tg, [("/tiendo", f"đã xong 2/{total} bài")])

    [person] = await people(services)
    target, source = before
    assert person.id == target.id and person.full_name == "Nguyễn Văn An"
    assert person.village_id == target.village_id and person.household_id == target.household_id
    assert person.vneid_level2 == "yes"  # the more advanced answer of the two
    async with services.database.session() as session:
        progress = {p.lesson_id: p for p in (await session.exec(select(LessonProgress))).all()}
        memberships = (await session.exec(select(Membership.organisation_id))).all()
        organisations = {o.id: o.name for o in (await session.exec(select(Organisation))).all()}
        households = (await session.exec(select(Household))).all()
        assert len((await session.exec(select(QuizAttempt))).all()) == attempts
        assert len((await session.exec(select(Answer))).all()) == answers
        assert len((await session.exec(select(Activity))).all()) == activities
        assert {a.person_id for a in (await session.exec(select(Activity))).all()} == {person.id}
    assert progress[lessons[0].id].status == "completed" and progress[lessons[0].id].best_score == 100
    assert progress[lessons[1].id].status == "completed" and progress[lessons[1].id].person_id == person.id
    assert sorted(organisations[o] for o in memberships) == ["Hội Nông dân xã", "Đoàn Thanh niên xã"]
    assert [h.id for h in households] == [target.household_id]  # Zalo's own household, now empty, is gone
    assert await audited(services) == [("ok", target.id, source.id)]


async def test_merge_moves_every_table_and_keeps_the_better_of_each(services):
    """storage.linking.merge_person on rows of every table that refers to a person."""
    now = services.clock()
    early, late = now - timedelta(days=9), now - timedelta(days=2)
    async with services.database.session() as session:
        org = {o.name: o.id for o in (await session.exec(select(Organisation))).all()}
        village = {v.name: v.id for v in (await session.exec(select(Village))).all()}
        farmers, youth, women = org["Hội Nông dân xã"], org["Đoàn Thanh niên xã"], org["Hội Liên hiệp Phụ nữ xã"]
        shared = Household(code="111111", village_id=village["Thôn 1"], created_at=now)
        own = Household(code="222222", village_id=village["Thôn 2"], created_at=now)
        session.add_all([shared, own])
        await session.flush()
        target = Person(full_name="Nguyễn Văn An", village_id=None, household_id=shared.id, is_household_head=True,
                        target_group=None, vneid_level2="no", registration_step="ask_vneid", consent_at=late,
                        consent_version=1, consent_offered=1, created_at=late)
        source = Person(full_name="An", village_id=village["Thôn 2"], household_id=own.id, is_household_head=True,
                        target_group="nguoi-dan", vneid_level2="yes", registration_step=None, consent_at=early,
                        consent_version=2, consent_offered=2, nudges_off=True, created_at=early)
        other = Person(full_name="Lê Thị Hoa", household_id=own.id, consent_at=early, created_at=early)
        session.add_all([target, source, other])
        await session.flush()
        t, s = target.id, source.id
        session.add_all([
            ChannelAccount(channel="telegram", external_id="t", person_id=t, created_at=late),
            ChannelAccount(channel="zalo", external_id="z", person_id=s, created_at=early),
            # one lesson on both sides (the source completed it), one on each side only
            LessonProgress(person_id=t, lesson_id="both", status="started", best_score=40, started_at=late),
            LessonProgress(person_id=s, lesson_id="both", status="completed", best_score=90, started_at=early,
                           completed_at=early),
            LessonProgress(person_id=t, lesson_id="mine", status="completed", best_score=100, started_at=late,
                           completed_at=late),
            LessonProgress(person_id=s, lesson_id="theirs", status="started", started_at=early),
            Membership(person_id=t, organisation_id=farmers, confirmed=False),
            Membership(person_id=s, organisation_id=farmers, confirmed=True, confirmed_at=early),
            Membership(person_id=s, organisation_id=youth),
            RoleGrant(person_id=t, role="leader", organisation_id=farmers, granted_at=late),
            RoleGrant(person_id=s, role="leader", organisation_id=farmers, granted_at=early),  # held twice
            RoleGrant(person_id=s, role="village_head", village_id=village["Thôn 2"], granted_at=early),
            RoleGrant(person_id=s, role="staff", granted_at=early, revoked_at=late),  # the record stays
            Certificate(code="AAAAAAAAAAAA", person_id=t, course_id="core", course_title="Kỹ năng số",
                        lesson_count=12, full_name="Nguyễn Văn An", commune_name="xã Cát Thành", issued_at=late,
                        issued_on=date(2026, 10, 31)),
            Certificate(code="CCCCCCCCCCCC", person_id=s, course_id="core", course_title="Kỹ năng số",
                        lesson_count=12, full_name="An", commune_name="xã Cát Thành", issued_at=early,
                        issued_on=date(2026, 10, 24)),
            Certificate(code="DDDDDDDDDDDD", person_id=s, course_id="extra", course_title="Nâng cao",
                        lesson_count=3, full_name="An", commune_name="xã Cát Thành", issued_at=early,
                        issued_on=date(2026, 10, 24)),
            Activity(person_id=s, kind="lesson_opened", lesson_id="theirs", at=early),
            Activity(person_id=t, kind="lesson_opened", lesson_id="mine", at=late),
            Delivery(key="nudge:source", kind="nudge", channel="zalo", external_id="z", person_id=s,
                     payload=[], next_try_at=now, created_at=now),
            InviteCode(code_hash="c" * 64, role="leader", created_by=s, created_at=early, expires_at=now),
            InviteCode(code_hash="u" * 64, role="leader", used_by=s, created_at=early, expires_at=now, used_at=early),
            Deadline(title="Sơ kết", day=30, month=6, created_by=s, created_at=early),
            Announcement(author_id=s, author_channel="zalo", author_external_id="z", audience="commune",
                         text="Họp", created_at=early),
        ])
        await session.flush()
        attempt = QuizAttempt(person_id=s, lesson_id="theirs", total=1, correct=1, started_at=early)
        deadline = (await session.exec(select(Deadline).where(Deadline.title == "Sơ kết"))).one()
        session.add_all([attempt, HandIn(deadline_id=deadline.id, due_on=date(2027, 6, 30), unit="commune",
                                         person_id=s, handed_at=early)])
        await session.flush()
        session.add(Answer(attempt_id=attempt.id, question_id="q1", option_index=0, correct=True, answered_at=early))
        await linking.create_code(session, s, "zalo", now, services.random)

    async with services.database.session() as session:
        await linking.merge_person(session, await session.get(Person, s), await session.get(Person, t))

    async with services.database.session() as session:
        def rows(model):
            return session.exec(select(model).order_by(col(model.id)))

        assert [p.id for p in (await rows(Person)).all()] == [t, other.id]
        merged = await session.get(Person, t)
        assert (merged.full_name, merged.village_id, merged.target_group, merged.vneid_level2) == (
            "Nguyễn Văn An", village["Thôn 2"], "nguoi-dan", "yes")  # the target's, its blanks filled
        assert (merged.household_id, merged.is_household_head) == (shared.id, True)
        assert merged.registration_step is None and merged.nudges_off
        assert (merged.consent_at, merged.created_at, merged.consent_version) == (early, early, 2)
        hoa = await session.get(Person, other.id)
        assert (hoa.household_id, hoa.is_household_head) == (own.id, True)  # the household left behind has a head
        assert {(a.channel, a.person_id) for a in (await rows(ChannelAccount)).all()} == {("telegram", t), ("zalo", t)}
        progress = {p.lesson_id: p for p in (await rows(LessonProgress)).all()}
        assert set(progress) == {"both", "mine", "theirs"} and {p.person_id for p in progress.values()} == {t}
        both = progress["both"]
        assert (both.status, both.best_score, both.started_at, both.completed_at) == ("completed", 90, early, early)
        memberships = {m.organisation_id: m for m in (await rows(Membership)).all()}
        assert set(memberships) == {farmers, youth} and memberships[farmers].confirmed
        assert memberships[farmers].confirmed_at == early and women not in memberships
        grants = [(g.person_id, g.role, g.revoked_at is not None) for g in (await rows(RoleGrant)).all()]
        assert sorted(grants) == [(t, "leader", False), (t, "staff", True), (t, "village_head", False)]
        certificates = {c.course_id: (c.code, c.person_id) for c in (await rows(Certificate)).all()}
        assert certificates == {"core": ("CCCCCCCCCCCC", t), "extra": ("DDDDDDDDDDDD", t)}  # the first issued
        for model, column in [(QuizAttempt, "person_id"), (Activity, "person_id"), (Delivery, "person_id"),
                              (HandIn, "person_id"), (Deadline, "created_by"), (Announcement, "author_id")]:
            values = {getattr(row, column) for row in (await rows(model)).all()}
            assert t in values and s not in values, model.__name__  # (the default deadline is nobody's)
        assert len((await rows(Activity)).all()) == 2 and len((await rows(Answer)).all()) == 1
        invites = (await rows(InviteCode)).all()
        assert [(i.created_by, i.used_by) for i in invites] == [(t, None), (None, t)]
        assert (await rows(LinkCode)).all() == []
        assert len((await rows(Household)).all()) == 2


async def test_the_household_follows_the_source_when_the_target_has_none(services):
    now = services.clock()
    async with services.database.session() as session:
        home = Household(code="333333", created_at=now)
        session.add(home)
        await session.flush()
        target = Person(full_name="A", consent_at=now, created_at=now)
        source = Person(household_id=home.id, is_household_head=True, consent_at=now, created_at=now)
        session.add_all([target, source])
        await session.flush()
        await linking.merge_person(session, source, target)
    async with services.database.session() as session:
        [person] = (await session.exec(select(Person))).all()
        assert (person.household_id, person.is_household_head) == (home.id, True)
        assert len((await session.exec(select(Household))).all()) == 1


# --- refusals ----------------------------------------------------------------------------------------

async def test_wrong_codes_are_limited_and_the_wait_ends(dispatcher, services, clock):
    tg = telegram(dispatcher)
    await register(tg)
    z = zalo(dispatcher)
    await z.say("/start")
    code = await code_from(tg)
    wrong = "999999" if code != "999999" else "888888"
    for left in (4, 3, 2, 1):
        shown = await z.say(f"/lienket {wrong}")
        assert WRONG in shown and f"còn {left} lần thử" in shown and wrong not in shown
    assert WAIT in await z.say(wrong.replace("9", "7"))  # typed at the step that waits for the code
    assert "chờ đến 08:15" in z.transcript
    assert WAIT in await z.say(f"/lienket {code}")  # while it waits, even the right code is not looked up
    async with services.database.session() as session:
        assert len((await session.exec(select(LinkCodeTry))).all()) == 5
    assert [outcome for outcome, *_ in await audited(services)] == ["refused"] * 5
    clock.advance(minutes=16)
    code = await code_from(tg)
    await converse(z, [(f"/lienket {code}", CONFIRM), ("#Đồng ý", LINKED)])


async def test_an_expired_code_is_refused_with_its_own_words(dispatcher, services, clock):
    tg = telegram(dispatcher)
    await register(tg)
    z = zalo(dispatcher)
    code = await code_from(tg)
    clock.advance(minutes=10)
    assert EXPIRED in await z.say(f"/lienket {code}")
    # A code still good when typed but gone by the time of "Đồng ý" links nothing.
    code = await code_from(tg)
    clock.advance(minutes=9)
    await converse(z, [(f"/lienket {code}", CONFIRM)])
    clock.advance(minutes=2)
    await converse(z, [("#Đồng ý", "Mã này không dùng được nữa")])
    assert len(await accounts(services)) == 1


async def test_a_code_links_once(dispatcher, services):
    tg = telegram(dispatcher)
    await register(tg)
    code = await code_from(tg)
    first, second = zalo(dispatcher, "z1"), Chat(dispatcher, user="c2", channel="console")
    await converse(first, [(f"/lienket {code}", CONFIRM)])
    await converse(second, [(f"/lienket {code}", CONFIRM)])  # both were shown the question
    await converse(first, [("#Đồng ý", LINKED)])
    await converse(second, [("#Đồng ý", "Mã này không dùng được nữa")])
    assert WRONG in await second.say(f"/lienket {code}")  # and typed again, it is a used code
    assert [channel for channel, *_ in await accounts(services)] == ["telegram", "zalo"]


async def test_the_same_app_is_not_linked_to_itself(dispatcher, services):
    tg = telegram(dispatcher)
    await register(tg)
    code = await code_from(tg)
    assert "Đây là mã của chính tài khoản này" in await tg.say(f"/lienket {code}")
    other = telegram(dispatcher, "tg2")
    shown = await other.say(f"/lienket {code}")
    assert "Mã này được tạo trên Telegram, nên không liên kết với một tài khoản Telegram khác" in shown
    await register(other, name="Trần Văn Bình")
    assert "không liên kết với một tài khoản Telegram khác" in await other.say(f"/lienket {code}")
    # A Zalo account already linked to another Telegram account cannot bring that one along either.
    z = zalo(dispatcher)
    await converse(z, [(f"/lienket {await code_from(other)}", CONFIRM), ("#Đồng ý", LINKED)])
    assert "đã liên kết với một tài khoản Telegram" in await z.say(f"/lienket {code}")
    assert len(await people(services)) == 2
    async with services.database.session() as session:  # refusals of a good code are not wrong tries
        assert (await session.exec(select(LinkCodeTry))).all() == []


async def test_an_account_already_linked_is_told_so(dispatcher, services):
    tg = telegram(dispatcher)
    await register(tg)
    z = zalo(dispatcher)
    await converse(z, [(f"/lienket {await code_from(tg)}", CONFIRM), ("#Đồng ý", LINKED)])
    assert "Tài khoản này đã liên kết với tài khoản đó rồi" in await z.say(f"/lienket {await code_from(tg)}")
    assert "Đây là mã của chính tài khoản này" not in z.transcript


async def test_a_forged_yes_links_nothing(dispatcher, services):
    tg = telegram(dispatcher)
    await register(tg)
    await code_from(tg)
    z = zalo(dispatcher)
    await z.say("/start")
    assert "Nút này đã cũ" in await z.press("lk:yes")
    assert len(await accounts(services)) == 1


async def test_erasing_a_linked_person_erases_every_account_and_code(dispatcher, services):
    tg = telegram(dispatcher)
    await register(tg)
    z = zalo(dispatcher)
    await converse(z, [(f"/lienket {await code_from(tg)}", CONFIRM), ("#Đồng ý", LINKED)])
    await code_from(tg)
    await converse(z, [("/xoadulieu", "chắc chắn"), ("#Xóa hết", "Đã xóa toàn bộ dữ liệu")])
    assert await accounts(services) == [] and await people(services) == []
    async with services.database.session() as session:
        assert (await session.exec(select(LinkCode))).all() == []


# --- where messages go -------------------------------------------------------------------------------

async def enqueue(services, person_id: int, key: str) -> tuple[str, str]:
    async with services.database.session() as session:
        assert await outbox.enqueue_for_person(session, person_id, key=key, kind="reminder",
                                               payload=to_payload([Reply("Nhắc hạn báo cáo")]), now=services.clock())
        row = (await session.exec(select(Delivery).where(Delivery.key == key))).one()
    return row.channel, row.external_id


async def test_reminders_go_to_the_app_used_last(dispatcher, services, clock):
    tg = telegram(dispatcher)
    await register(tg)
    z = zalo(dispatcher)
    clock.advance(minutes=1)
    await converse(z, [(f"/lienket {await code_from(tg)}", CONFIRM)])
    clock.advance(minutes=1)
    await converse(z, [("#Đồng ý", LINKED)])
    [person] = await people(services)
    assert await enqueue(services, person.id, "r1") == ("zalo", "z1")
    clock.advance(hours=3)
    await tg.say("/tiendo")
    assert await enqueue(services, person.id, "r2") == ("telegram", "tg1")
    clock.advance(hours=3)
    await z.say("menu")
    assert await enqueue(services, person.id, "r3") == ("zalo", "z1")
    async with services.database.session() as session:  # Zalo refused our messages: Telegram, though older
        from storage import queries

        await queries.set_blocked(session, "zalo", "z1", True)
    assert await enqueue(services, person.id, "r4") == ("telegram", "tg1")


async def test_without_any_conversation_the_newest_account_is_used(services):
    now = services.clock()
    async with services.database.session() as session:
        person = Person(consent_at=now, created_at=now)
        session.add(person)
        await session.flush()
        for channel, external_id in [("telegram", "old"), ("zalo", "new")]:
            session.add(ChannelAccount(channel=channel, external_id=external_id, person_id=person.id, created_at=now))
            await session.flush()
        account = await outbox.account_for(session, person.id)
    assert (account.channel, account.external_id) == ("zalo", "new")


def test_initials_name_nobody():
    assert initials("Nguyễn Văn An") == "N.V.A."
    assert initials("  lê   thị hoà ") == "L.T.H."
    assert initials(None) == "" and initials("") == ""


async def test_announcements_go_to_the_app_used_last_too(dispatcher, services, clock):
    from storage import announcements

    tg = telegram(dispatcher)
    await register(tg)
    z = zalo(dispatcher)
    clock.advance(minutes=1)
    await converse(z, [(f"/lienket {await code_from(tg)}", CONFIRM), ("#Đồng ý", LINKED)])
    clock.advance(hours=1)
    await tg.say("/tiendo")
    for number, (chat, expected) in enumerate([(None, "tg1"), (z, "z1")], start=1):
        if chat is not None:
            clock.advance(hours=1)
            await chat.say("/tiendo")
        async with services.database.session() as session:
            made = Announcement(author_channel="console", author_external_id="staff", audience="commune", text="Họp",
                                created_at=services.clock())
            session.add(made)
            await session.flush()
            stored = await announcements.enqueue_announcement(
                session, made.id, announcements.Audience("commune"), to_payload([Reply("Họp")]), services.clock())
            row = (await session.exec(select(Delivery).where(Delivery.announcement_id == made.id))).one()
        assert stored == 1 and row.external_id == expected, number


async def test_the_code_typed_without_the_slash_works_as_a_first_message(dispatcher, services):
    tg = telegram(dispatcher)
    await register(tg)
    code = await code_from(tg)
    z = zalo(dispatcher)
    asked = await z.say(f"Liên kết {code[:3]} {code[3:]}")  # as read, with marks and a space, no slash
    assert CONFIRM in asked and "chương trình trả lời tự động" in asked
    await converse(z, [("dong y lien ket", f"{LINKED} Telegram")])  # the choice typed by its words
    # A sentence that starts with the same words is not a code.
    assert CONFIRM not in await z.say("Liên kết các hộ trong thôn")


async def test_erasing_says_that_the_linked_apps_go_too(dispatcher, services):
    tg = telegram(dispatcher)
    await register(tg)
    assert "cũng bị xóa cùng" not in await tg.say("/xoadulieu")
    await tg.say("menu")
    z = zalo(dispatcher)
    await converse(z, [(f"/lienket {await code_from(tg)}", CONFIRM), ("#Đồng ý", LINKED)])
    warned = await z.say("/xoadulieu")
    assert "Bạn đã liên kết Telegram, Zalo" in warned and "cũng bị xóa cùng" in warned


# Every column that refers to a person, and how merge_person treats it. A new one fails the test below
# until the merge (and this list) say what happens to it.
PERSON_REFERENCES = {
    ("activity", "person_id"), ("certificate", "person_id"), ("channelaccount", "person_id"),
    ("conversationstate", "learning_with"), ("delivery", "person_id"), ("deadline", "created_by"),
    ("handin", "person_id"), ("initiative", "proposed_by"), ("initiative", "recognised_by"),
    ("invitecode", "created_by"), ("invitecode", "used_by"), ("lessonprogress", "person_id"),
    ("lessonprogress", "assisted_by"), ("linkcode", "person_id"), ("membership", "person_id"),
    ("person", "registered_by"), ("quizattempt", "person_id"), ("quizattempt", "assisted_by"),
    ("rolegrant", "person_id"), ("unitactivity", "recorded_by"), ("unitactivitymember", "person_id"),
    ("announcement", "author_id"),
}


def test_every_column_that_refers_to_a_person_is_known_to_the_merge():
    from sqlmodel import SQLModel

    referring = {(table.name, column.name) for table in SQLModel.metadata.tables.values()
                 for column in table.columns for key in column.foreign_keys if key.column.table.name == "person"}
    assert referring == PERSON_REFERENCES


async def test_merge_moves_what_units_do_offline(services):
    """Issue 14's references: initiatives, activities recorded and attended (one row when both attended),
    help given, people registered in person, a chat learning with the source."""
    now = services.clock()
    async with services.database.session() as session:
        target = Person(full_name="Nguyễn Văn An", consent_at=now, created_at=now)
        source = Person(full_name="An", consent_at=now, created_at=now)
        session.add_all([target, source])
        await session.flush()
        t, s = target.id, source.id
        elder = Person(full_name="Phạm Thị Gái", consent_at=now, created_at=now, consent_method="in_person",
                       registered_by=s)
        both = UnitActivity(kind="tap-huan", held_on=date(2026, 10, 20), title="Lớp", participants=3, recorded_by=s,
                            created_at=now, updated_at=now)
        only = UnitActivity(kind="khac", held_on=date(2026, 10, 21), title="Họp", participants=2, created_at=now,
                            updated_at=now)
        session.add_all([elder, both, only,
                         Initiative(title="Chợ số", authors="An", description="d", result="r", proposed_by=s,
                                    created_at=now, updated_at=now),
                         Initiative(title="Loa số", authors="Hoa", description="d", result="r", proposed_by=t,
                                    recognised_by=s, recognised_at=now, created_at=now, updated_at=now)])
        await session.flush()
        session.add_all([
            UnitActivityMember(activity_id=both.id, person_id=s), UnitActivityMember(activity_id=both.id, person_id=t),
            UnitActivityMember(activity_id=only.id, person_id=s),
            LessonProgress(person_id=elder.id, lesson_id="vneid", status="completed", assisted=True, assisted_by=s,
                           started_at=now, completed_at=now),
            QuizAttempt(person_id=elder.id, lesson_id="vneid", assisted=True, assisted_by=s, started_at=now),
            ConversationState(channel="console", external_id="tuan", learning_with=s, updated_at=now),
        ])

    async with services.database.session() as session:
        await linking.merge_person(session, await session.get(Person, s), await session.get(Person, t))

    async with services.database.session() as session:
        assert {i.proposed_by for i in (await session.exec(select(Initiative))).all()} == {t}
        assert {i.recognised_by for i in (await session.exec(select(Initiative))).all()} == {None, t}
        assert {a.recorded_by for a in (await session.exec(select(UnitActivity))).all()} == {t, None}
        attended = {(m.activity_id, m.person_id) for m in (await session.exec(select(UnitActivityMember))).all()}
        assert attended == {(both.id, t), (only.id, t)}
        assert (await session.get(Person, elder.id)).registered_by == t
        assert {p.assisted_by for p in (await session.exec(select(LessonProgress))).all()} == {t}
        assert {a.assisted_by for a in (await session.exec(select(QuizAttempt))).all()} == {t}
        assert (await session.exec(select(ConversationState.learning_with))).all() == [t]
