""""Học cùng": a member of the Tổ công nghệ số cộng đồng registers an elder in person, learns a lesson with
them on the member's phone, and the elder later continues on their own phone; a member sees only the
people they helped; while learning together, nothing but learning can be done."""

from __future__ import annotations

import re

from sqlmodel import select

from handlers.assisted import BLOCKED, NOT_IN_TEAM, NOT_YOURS
from handlers.deadlines import counted_units
from storage import figures
from storage.models import AuditLog, ConversationState, Household, LessonProgress, Person, QuizAttempt, Village
from tests.support import Chat, converse
from tests.test_dialog_learning import answer
from tests.test_roles import invite, register, unit_id

ELDER = "Phạm Thị Gái"
HEAD = "Phạm Văn Cả"


async def team_member(make_chat, services, user: str = "tuan", name: str = "Trần Văn Tuấn",
                      village: str = "Thôn 2") -> Chat:
    member = make_chat(user=user)
    await register(member, name, village=village)
    code = await invite(services, "digital_team", village=village)
    assert "Thành viên Tổ công nghệ số cộng đồng: " + village in await member.say(f"/ma {code}")
    return member


async def directory_household(services, village: str = "Thôn 2") -> int:
    village_id = await unit_id(services, Village, village)
    async with services.database.session() as session:
        household = Household(village_id=village_id, head_name=HEAD, member_count=3, in_directory=True,
                              created_at=services.clock())
        session.add(household)
        await session.flush()
        return household.id  # type: ignore[return-value]


async def register_elder(member: Chat, name: str = ELDER) -> None:
    await converse(member, [
        ("/hoccung", "Bạn chưa học cùng ai"),
        ("#Đăng ký một người mới", "Họ và tên đầy đủ"),
        (name, f"{name} ở thôn/xóm nào?"),
        ("#Thôn 2", "thuộc hộ nào trong danh bạ của Thôn 2"),
        (f"#Hộ ông/bà {HEAD}", f"Bạn đọc cho {name} nghe"),
        (f"#{name} đã nghe và đồng ý", f"Đã đăng ký {name}"),
    ])


async def stored_elder(services, name: str = ELDER) -> Person:
    async with services.database.session() as session:
        return (await session.exec(select(Person).where(Person.full_name == name))).one()


async def test_a_member_registers_an_elder_learns_with_her_and_she_links_her_own_phone(make_chat, services):
    household = await directory_household(services)
    member = await team_member(make_chat, services)
    await register_elder(member)
    elder = await stored_elder(services)
    member_person = await stored_elder(services, "Trần Văn Tuấn")
    assert (elder.consent_method, elder.registered_by, elder.household_id) == ("in_person", member_person.id,
                                                                                household)

    lesson = services.catalog.lesson(services.catalog.core_course.lessons[0])
    await converse(member, [
        ("#Học cùng ngay", f"Bắt đầu học cùng {ELDER}"),
        (f"#{lesson.title}", f"Đang học cùng: {ELDER}"),
    ])
    for _ in range(len(lesson.cards) - 1):
        await member.choose("Tiếp")
    await member.choose("Làm bài kiểm tra")
    await answer(member, lesson, correct=True)
    assert f'Bạn đã hoàn thành bài "{lesson.title}"' in member.transcript
    await converse(member, [("/tiendo", f"Đang học cùng: {ELDER}"), ("/tiendo", "đã xong 1/")])
    # Settings, erasure, roles, linking: closed while the elder's learning is on the member's chat.
    for command in ("/caidat", "/ma ABCD-EFGH-JKLM", "/lienket", "/thongke", "/sangkien", "/hoatdong"):
        assert BLOCKED.format(name=ELDER).split(",")[0] in await member.say(command), command
    await converse(member, [("/hoccung", f"Đã kết thúc buổi học cùng {ELDER}")])
    assert "Đang học cùng" not in await member.say("/tiendo")
    assert "đã xong 0/" in member.transcript.rsplit("Tiến độ của bạn", 1)[1]  # the member's own, untouched

    async with services.database.session() as session:
        progress = (await session.exec(select(LessonProgress).where(LessonProgress.person_id == elder.id))).one()
        attempt = (await session.exec(select(QuizAttempt).where(QuizAttempt.person_id == elder.id))).one()
        mine = (await session.exec(select(LessonProgress).where(LessonProgress.person_id == member_person.id))).all()
    assert (progress.status, progress.assisted_by, attempt.assisted_by) == ("completed", member_person.id,
                                                                             member_person.id)
    assert mine == []

    await converse(member, [("/hoccung", "Những người bạn đã giúp (1)"), (f"#{ELDER}", "Bài đã xong: 1/"),
                            ("#Mã để tự học", "/lienket ")])
    assert "(học cùng: 1)" in member.transcript
    code = re.search(r"/lienket (\d{6})", member.transcript).group(1)
    phone = make_chat(user="gai")
    await converse(phone, [(f"/lienket {code}", "đăng ký cùng Tổ công nghệ số (P.T.G.)"),
                           ("#Đồng ý liên kết", "Đã liên kết"),
                           ("/tiendo", "đã xong 1/"),
                           ("/dulieucuatoi", f"hộ ông/bà {HEAD}"),
                           ("/caidat", "Hộ gia đình"),
                           ("#Hộ gia đình", "mã chưa có")])
    assert "Đang học cùng" not in phone.transcript
    await converse(member, [("/hoccung", f"{ELDER} (1/"), (f"#{ELDER}", "Đã có điện thoại riêng")])


async def test_a_member_sees_only_the_people_they_helped(make_chat, services):
    await directory_household(services)
    first = await team_member(make_chat, services)
    await register_elder(first)
    other = await team_member(make_chat, services, user="lan", name="Vũ Thị Lan")
    listing = await other.say("/hoccung")
    assert ELDER not in listing and "Bạn chưa học cùng ai" in listing
    elder = await stored_elder(services)
    for verb in ("p", "go", "code"):
        answer_text = await other.press(f"hcung:{verb}:{elder.id}")  # a forged button for someone else's elder
        assert NOT_YOURS in answer_text and ELDER not in answer_text
    resident = make_chat(user="binh")
    await register(resident, "Lê Văn Bình")
    assert NOT_IN_TEAM in await resident.press(f"hcung:go:{elder.id}")
    assert NOT_IN_TEAM in await resident.say("/hoccung")
    async with services.database.session() as session:
        learning = (await session.exec(select(ConversationState.learning_with))).all()
        audits = (await session.exec(select(AuditLog).where(AuditLog.action == "assisted_registered"))).all()
    assert set(learning) == {None} and [row.subject for row in audits] == [elder.id]


async def test_a_name_without_letters_or_too_long_is_asked_again_and_declining_stores_nothing(make_chat, services):
    member = await team_member(make_chat, services)
    await converse(member, [
        ("/hoccung", "Học cùng"),
        ("#Đăng ký một người mới", "Họ và tên"),
        ("12345", "Họ tên cần có chữ"),
        ("Lan " * 40, "Họ tên dài quá"),
        ("  Đinh   Thị  Nụ ", "Đinh Thị Nụ ở thôn/xóm nào?"),
        ("#Không thuộc thôn", "Bạn đọc cho Đinh Thị Nụ nghe"),
        ("#Không đồng ý", "không lưu gì về người này"),
    ])
    async with services.database.session() as session:
        assert (await session.exec(select(Person).where(Person.full_name == "Đinh Thị Nụ"))).first() is None


async def test_leaving_the_team_ends_learning_together(make_chat, services):
    await directory_household(services)
    member = await team_member(make_chat, services)
    await register_elder(member)
    await converse(member, [("#Học cùng ngay", f"Bắt đầu học cùng {ELDER}")])
    async with services.database.session() as session:
        from storage.models import RoleGrant

        for grant in (await session.exec(select(RoleGrant).where(RoleGrant.role == "digital_team"))).all():
            grant.revoked_at = services.clock()
            session.add(grant)
    reply = await member.say("/tiendo")
    assert "Đang học cùng" not in reply and "đã xong 0/" in reply  # the member's own again


async def test_a_course_finished_with_help_counts_and_is_shown_apart(make_chat, services):
    """The elder does the last core lesson with the member: she has finished, and the figures say, apart,
    that one finisher learned with help; independently counted from the stored progress."""
    await directory_household(services)
    member = await team_member(make_chat, services)
    await register_elder(member)
    elder = await stored_elder(services)
    now = services.clock()
    required = services.core_lessons(now)
    async with services.database.session() as session:
        for lesson_id in required[:-1]:
            session.add(LessonProgress(person_id=elder.id, lesson_id=lesson_id, status="completed", best_score=100,
                                       started_at=now, completed_at=now))
    last = services.catalog.lesson(required[-1])
    await converse(member, [("#Học cùng ngay", "Bắt đầu học cùng"), (f"#{last.title}", "Đang học cùng")])
    for _ in range(len(last.cards) - 1):
        await member.choose("Tiếp")
    await member.choose("Làm bài kiểm tra")
    await answer(member, last, correct=True)
    assert f"Bạn đã hoàn thành cả {services.catalog.core_course.title}" in member.transcript
    await member.say("/hoccung")

    async with services.database.session() as session:
        rows = (await session.exec(select(LessonProgress))).all()
    done: dict[int, set[str]] = {}
    for row in rows:
        if row.status == "completed":
            done.setdefault(row.person_id, set()).add(row.lesson_id)
    finishers = {person for person, lessons in done.items() if lessons >= set(required)}
    helped = {row.person_id for row in rows if row.person_id in finishers and row.assisted_by is not None
              and row.lesson_id in required}
    assert (len(finishers), len(helped)) == (1, 1)
    counted = await services.database.read(lambda connection: figures.commune_figures(connection, required, now))
    village = next(row for row in counted.villages if row.name == "Thôn 2")
    assert (counted.totals.finished_core, counted.totals.finished_assisted) == (1, 1)
    assert (village.finished_core, village.finished_assisted) == (1, 1)
    units = counted_units(counted)  # what the deadline reminders show of each unit
    assert (units["commune"].assisted, units[f"village:{village.village_id}"].assisted) == (1, 1)
    listed = await services.database.read(lambda connection: figures.member_rows(
        connection, village_id=village.village_id, core_lessons=required, zone=services.config.zone))
    assert [row.lessons_assisted for row in listed.rows if row.person_id == elder.id] == [1]
    staff = make_chat(user="vhxh")
    await register(staff, "Đỗ Thị Xã")
    await staff.say(f"/ma {await invite(services, 'staff')}")
    shown = await staff.say("/thongke")
    assert "Hoàn thành khóa cơ bản: 1 (" in shown and "trong đó 1 người học cùng Tổ công nghệ số" in shown


async def test_erasure_on_either_side_keeps_the_other_whole(make_chat, services):
    """The member erases their own data: the elder stays, her lesson still counts as learned with help.
    Then the elder, on her own phone, erases hers: nothing of her is left, and the member's list is empty."""
    await directory_household(services)
    member = await team_member(make_chat, services)
    await register_elder(member)
    elder = await stored_elder(services)
    lesson = services.catalog.lesson(services.catalog.core_course.lessons[0])
    await converse(member, [("#Học cùng ngay", "Bắt đầu"), (f"#{lesson.title}", "Đang học cùng")])
    for _ in range(len(lesson.cards) - 1):
        await member.choose("Tiếp")
    await member.choose("Làm bài kiểm tra")
    await answer(member, lesson, correct=True)
    await member.say("/hoccung")  # stop learning together
    await converse(member, [(f"#{ELDER}", "Bài đã xong: 1/"), ("#Mã để tự học", "/lienket ")])
    code = re.search(r"/lienket (\d{6})", member.transcript).group(1)
    phone = make_chat(user="gai")
    await converse(phone, [(f"/lienket {code}", "Đồng ý?"), ("#Đồng ý liên kết", "Đã liên kết")])

    await converse(member, [("/xoadulieu", "chắc chắn"), ("#Xóa hết", "Đã xóa")])
    async with services.database.session() as session:
        progress = (await session.exec(select(LessonProgress).where(LessonProgress.person_id == elder.id))).one()
        kept = await session.get(Person, elder.id)
    assert (progress.status, progress.assisted, progress.assisted_by) == ("completed", True, None)
    assert kept is not None and kept.registered_by is None and kept.consent_method == "in_person"
    counted = await services.database.read(
        lambda connection: figures.village_figures(connection, kept.village_id, [lesson.id], services.clock()))
    assert (counted.finished_core, counted.finished_assisted) == (1, 1)

    await converse(phone, [("/xoadulieu", "chắc chắn"), ("#Xóa hết", "Đã xóa")])
    async with services.database.session() as session:
        assert await session.get(Person, elder.id) is None
        assert (await session.exec(select(LessonProgress))).all() == []


async def test_a_resident_without_a_phone_has_her_data_erased_by_the_member_beside_her(make_chat, services):
    await directory_household(services)
    member = await team_member(make_chat, services)
    await register_elder(member)
    elder = await stored_elder(services)
    await converse(member, [
        ("#Học cùng ngay", "Bắt đầu"),
        ("/dulieucuatoi", ELDER),
        ("/xoadulieu", f"Đang học cùng: {ELDER}"),
        ("#Xóa hết", f"Đã xóa toàn bộ dữ liệu của {ELDER}"),
        ("/tiendo", "Tiến độ của bạn"),
    ])
    assert "Đang học cùng" not in member.transcript  # the last answer: the member's own progress
    async with services.database.session() as session:
        assert await session.get(Person, elder.id) is None
        member_person = (await session.exec(select(Person).where(Person.full_name == "Trần Văn Tuấn"))).one()
        states = (await session.exec(select(ConversationState))).all()
    assert member_person is not None and all(state.learning_with is None for state in states)
    assert "Bạn chưa học cùng ai" in await member.say("/hoccung")
