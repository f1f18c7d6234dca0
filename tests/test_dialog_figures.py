"""/thongke in chat: every figure equals a count made here, independently, from the commune built here."""

from __future__ import annotations

import io
import random
from dataclasses import dataclass, field
from datetime import timedelta

from openpyxl import load_workbook
from sqlmodel import select

from storage import access
from storage.models import (
    Activity,
    AuditLog,
    Household,
    LessonProgress,
    Membership,
    Organisation,
    Person,
    QuizAttempt,
    Village,
)
from tests.support import Chat, converse

FARMERS, WOMEN = "Hội Nông dân xã", "Hội Liên hiệp Phụ nữ xã"


@dataclass
class Resident:
    name: str
    village: str | None
    orgs: dict[str, bool]  # organisation -> confirmed
    lessons_done: int  # the first n core lessons completed
    scores: list[int]  # one first try per lesson done, in lesson order
    vneid: str
    active: bool
    named: bool  # agreed to consent version 2
    household: int | None
    id: int | None = None
    extra: dict = field(default_factory=dict)


def build_residents(core: list[str]) -> list[Resident]:
    rng = random.Random(2026)
    residents = []
    for number in range(40):
        done = rng.choice([0, 3, len(core), len(core)])
        orgs = {}
        if rng.random() < 0.6:
            orgs[FARMERS] = rng.random() < 0.5
        if rng.random() < 0.4:
            orgs[WOMEN] = rng.random() < 0.5
        residents.append(Resident(
            name=f"Người Thứ {chr(65 + number % 26)}{number}", village=rng.choice(["Thôn 1", "Thôn 2", None]),
            orgs=orgs, lessons_done=done, scores=[rng.choice([60, 70, 80, 90, 100]) for _ in range(done)],
            vneid=rng.choice(["yes", "no", "unknown"]), active=rng.random() < 0.5, named=rng.random() < 0.8,
            household=rng.choice([1, 2, 3, None]),
        ))
    return residents


async def store(services, residents: list[Resident], core: list[str]) -> dict[int, int]:
    now = services.clock()
    async with services.database.session() as session:
        villages = {v.name: v.id for v in (await session.exec(select(Village))).all()}
        orgs = {o.name: o.id for o in (await session.exec(select(Organisation))).all()}
        households = {}
        for number in (1, 2, 3):
            household = Household(code=f"90000{number}", village_id=villages["Thôn 1"], created_at=now)
            session.add(household)
            await session.flush()
            households[number] = household.id
        session.add(Household(code="900004", village_id=villages["Thôn 1"], created_at=now))  # nobody in it
        for resident in residents:
            person = Person(full_name=resident.name, village_id=villages.get(resident.village),
                            vneid_level2=resident.vneid, consent_version=2 if resident.named else 1,
                            consent_offered=2, household_id=households.get(resident.household),
                            consent_at=now, created_at=now)
            session.add(person)
            await session.flush()
            resident.id = person.id
            for org, confirmed in resident.orgs.items():
                session.add(Membership(person_id=person.id, organisation_id=orgs[org], confirmed=confirmed))
            for lesson, score in zip(core[:resident.lessons_done], resident.scores, strict=True):
                session.add(LessonProgress(person_id=person.id, lesson_id=lesson, status="completed",
                                           best_score=score, started_at=now, completed_at=now))
                session.add(QuizAttempt(person_id=person.id, lesson_id=lesson, total=5, correct=score // 20,
                                        score=score, passed=score >= 80, started_at=now, finished_at=now))
            moment = now - timedelta(days=5 if resident.active else 40)
            session.add(Activity(person_id=person.id, kind="lesson_done", at=moment))
    return households


def share(part: int, whole: int) -> str:
    if whole == 0:
        return "–"
    value = 100 * part / whole
    return f"{value:.0f}%" if value >= 10 or value == 0 else f"{value:.1f}%".replace(".", ",")


def expected_lines(people: list[Resident], core: list[str], titles: dict[str, str], *, org: str | None) -> list[str]:
    total = len(people)
    finished = sum(p.lessons_done == len(core) for p in people)
    active = sum(p.active for p in people)
    vneid = sum(p.vneid == "yes" for p in people)
    lines = []
    if org is not None:
        confirmed = sum(p.orgs[org] for p in people)
        lines.append(f"• Thành viên: {total} ({confirmed} đã xác nhận, {total - confirmed} tự khai chờ xác nhận)")
    else:
        lines.append(f"• Người đăng ký: {total}")
    lines += [f"• Hoạt động trong 30 ngày: {active} ({share(active, total)})",
              f"• Hoàn thành khóa cơ bản: {finished} ({share(finished, total)})",
              f"• VNeID mức 2 (tự khai): {vneid} ({share(vneid, total)})"]
    scores = [score for p in people for score in p.scores]
    lines.append(f"• Điểm kiểm tra trung bình: {sum(scores) / len(scores):.0f}/100")
    rates = []
    for position, lesson in enumerate(core):
        tries = [p.scores[position] for p in people if p.lessons_done > position]
        if tries:
            passed = sum(score >= 80 for score in tries)
            rates.append((passed / len(tries), position, lesson, passed, len(tries)))
    for rank, (_rate, _position, lesson, passed, tries) in enumerate(sorted(rates)[:3], start=1):
        lines.append(f"   {rank}. {titles[lesson]}: {share(passed, tries)} ({passed}/{tries} người)")
    return lines


async def register_viewer(chat: Chat, name: str) -> None:
    """A viewer in no village and no organisation, so they change no unit's figures but the commune's."""
    await converse(chat, [
        ("/start", "Bạn có đồng ý không?"), ("#Đồng ý", "họ và tên"), (name, "thôn/xóm nào"),
        ("#Bỏ qua", "nhóm nào"), ("#Bỏ qua", "Hộ gia đình"), ("#Bỏ qua", "tổ chức nào"), ("#Xong", "VNeID"),
        ("#Chưa kích hoạt", "Đăng ký xong"),
    ])


async def grant(services, chat: Chat, role: str, *, org: str | None = None, village: str | None = None) -> None:
    async with services.database.session() as session:
        organisation_id = (await session.exec(select(Organisation.id).where(Organisation.name == org))).first()
        village_id = (await session.exec(select(Village.id).where(Village.name == village))).first()
        code = await access.create_invite(session, role=role, now=services.clock(), expires_in=timedelta(days=1),
                                          rng=services.random, organisation_id=organisation_id, village_id=village_id)
    assert "Bạn đã nhận vai trò" in await chat.say(f"/ma {code}")


async def test_each_role_sees_figures_equal_to_independent_counts(make_chat, services):
    core = list(services.core_lessons(services.clock()))
    titles = {lesson: services.catalog.lesson(lesson).title for lesson in core}
    residents = build_residents(core)
    await store(services, residents, core)

    leader = make_chat("leader")
    await register_viewer(leader, "Trần Văn Lãnh")
    await grant(services, leader, "leader", org=FARMERS)
    answer = await leader.say("/thongke")
    farmers = [r for r in residents if FARMERS in r.orgs]
    for line in expected_lines(farmers, core, titles, org=FARMERS):
        assert line in answer, f"{line!r} not in\n{answer}"
    assert leader.replies[-1].attachment.data.startswith(b"\x89PNG")

    # The member list: exactly the named members, with the right count of lessons; the others counted.
    await leader.choose("Danh sách")
    book = load_workbook(io.BytesIO(leader.replies[-1].attachment.data))
    cells = [[cell for cell in row] for row in book.active.iter_rows(values_only=True)]
    listed = {row[0]: row[2] for row in cells if row and isinstance(row[2], int)}
    assert listed == {r.name: r.lessons_done for r in farmers if r.named}
    hidden = sum(not r.named for r in farmers)
    assert any(f"{hidden} người chưa đồng ý hiện tên" in str(row[0]) for row in cells if row and row[0])

    head = make_chat("head")
    await register_viewer(head, "Lê Thị Trưởng")
    await grant(services, head, "village_head", village="Thôn 1")
    answer = await head.say("/thongke")
    village = [r for r in residents if r.village == "Thôn 1"]
    for line in expected_lines(village, core, titles, org=None):
        assert line in answer, f"{line!r} not in\n{answer}"
    reached = {r.household for r in residents if r.household and r.lessons_done == len(core)}
    assert f"• Hộ có người hoàn thành khóa cơ bản: {len(reached)}/4 hộ ({share(len(reached), 4)})" in answer

    staff = make_chat("staff")
    await register_viewer(staff, "Đỗ Văn Xã")
    await grant(services, staff, "staff")
    answer = await staff.say("/thongke")
    viewers = 3
    everyone = len(residents) + viewers
    finished = sum(r.lessons_done == len(core) for r in residents)
    assert f"• Người đăng ký: {everyone}" in answer
    assert f"• Hoàn thành khóa cơ bản: {finished} ({share(finished, everyone)})" in answer
    women = [r for r in residents if WOMEN in r.orgs]
    women_done = sum(r.lessons_done == len(core) for r in women)
    assert f"• {WOMEN}: {women_done}/{len(women)} ({share(women_done, len(women))})" in answer


async def test_a_household_head_sees_the_household(make_chat, services):
    core = list(services.core_lessons(services.clock()))
    residents = build_residents(core)
    households = await store(services, residents, core)
    head = make_chat("hh")
    await register_viewer(head, "Chủ Hộ Một")
    async with services.database.session() as session:
        person = (await session.exec(select(Person).where(Person.full_name == "Chủ Hộ Một"))).one()
        person.household_id, person.is_household_head = households[1], True
        session.add(person)
    answer = await head.say("/thongke")
    members = [r for r in residents if r.household == 1]
    for member in members:
        assert (member.name in answer) == member.named
        if member.named:
            assert f"{member.name}: {member.lessons_done}/{len(core)} bài cơ bản" in answer
    assert f"{sum(not m.named for m in members)} người chưa đồng ý hiện tên" in answer or all(m.named for m in members)


async def test_figures_are_refused_outside_ones_scope_and_audited(make_chat, services):
    resident = make_chat("res")
    await register_viewer(resident, "Người Dân Thường")
    women_leader = make_chat("women")
    await register_viewer(women_leader, "Lãnh Đạo Phụ Nữ")
    await grant(services, women_leader, "leader", org=WOMEN)
    head_two = make_chat("two")
    await register_viewer(head_two, "Trưởng Thôn Hai")
    await grant(services, head_two, "village_head", village="Thôn 2")
    async with services.database.session() as session:
        farmers = (await session.exec(select(Organisation.id).where(Organisation.name == FARMERS))).one()
        thon1 = (await session.exec(select(Village.id).where(Village.name == "Thôn 1"))).one()
    tries = [
        (resident, "/thongke"), (resident, f"tk:org:{farmers}"), (resident, f"tkx:village:{thon1}"),
        (resident, "tk:commune"), (resident, "tk:household"), (resident, "tk:org:x1"),
        (women_leader, f"tk:org:{farmers}"), (women_leader, f"tkx:org:{farmers}"), (women_leader, "tk:commune"),
        (head_two, f"tk:village:{thon1}"), (head_two, f"tkx:village:{thon1}"), (head_two, "tkx:commune"),
    ]
    for chat, attempt in tries:
        async with services.database.session() as session:
            before = len((await session.exec(select(AuditLog).where(AuditLog.outcome == "refused"))).all())
        answer = await (chat.say(attempt) if attempt.startswith("/") else chat.press(attempt))
        assert "Số liệu chỉ dành cho người phụ trách đơn vị" in answer, attempt
        assert chat.replies[-1].attachment is None
        async with services.database.session() as session:
            after = len((await session.exec(select(AuditLog).where(AuditLog.outcome == "refused"))).all())
        assert after == before + 1, attempt


async def test_a_typed_number_gets_the_figures_too(make_chat, services):
    """Console and Zalo type the button's number: the prefetch reads the menu to find the button (and
    Telegram presses it)."""
    leader = make_chat("leader")
    await register_viewer(leader, "Trần Văn Lãnh")
    await grant(services, leader, "leader", org=FARMERS)
    await leader.say("menu")
    answer = await leader.choose("Số liệu đơn vị")
    assert "📊 Hội Nông dân xã" in answer and leader.replies[-1].attachment is not None
    assert leader.replies[-1].attachment.file_name.endswith(".png")
    assert "Thành viên: 0" in answer


async def test_charts_and_lists_drawn_in_another_process_as_hocvuso_run_does(settings, clock):
    """The process renderer (bot/app.process_renderer): everything sent there must cross a process boundary."""
    # On the console only: the renderer process is under test, not a channel, and starting one costs seconds.
    import random as randomness

    from bot.app import build_services, process_renderer
    from handlers.dispatcher import Dispatcher

    renderer = process_renderer()
    services = await build_services(settings, clock=clock, rng=randomness.Random(3), renderer=renderer)
    try:
        leader = Chat(Dispatcher(services), user="leader")
        await register_viewer(leader, "Trần Văn Lãnh")
        await grant(services, leader, "leader", org=FARMERS)
        assert "📊 Hội Nông dân xã" in await leader.say("/thongke")
        assert leader.replies[-1].attachment.data.startswith(b"\x89PNG")
        await leader.choose("Danh sách")
        assert leader.replies[-1].attachment.file_name.endswith(".xlsx")
        load_workbook(io.BytesIO(leader.replies[-1].attachment.data))
    finally:
        renderer.shutdown()
        await services.database.dispose()
