"""Roles by invitation, membership confirmation, consent versions, and every refusal audited."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import text
from sqlmodel import select

from handlers.home import NEW_CONSENT_QUESTION
from handlers.roles import REFUSED
from storage import access
from storage.models import AuditLog, InviteCode, Membership, Organisation, Person, RoleGrant, Village
from tests.support import Chat, converse

FARMERS = "Hội Nông dân xã"
WOMEN = "Hội Liên hiệp Phụ nữ xã"


async def register(chat: Chat, name: str, org: str = "Hội Nông dân", village: str = "Thôn 2") -> None:
    await converse(chat, [
        ("/start", "Bạn có đồng ý không?"),
        ("#Đồng ý", "họ và tên"),
        (name, "thôn/xóm nào"),
        (f"#{village}", "nhóm nào"),
        ("#Người dân", "Hộ gia đình"),
        ("#Bỏ qua", "tổ chức nào"),
        (f"#{org}", "☑️"),
        ("#Xong", "VNeID mức 2"),
        ("#Đã kích hoạt", "Đăng ký xong"),
    ])


async def unit_id(services, model, name: str) -> int:
    async with services.database.session() as session:
        return (await session.exec(select(model.id).where(model.name == name))).one()


async def invite(services, role: str, *, org: str | None = None, village: str | None = None,
                 days: int = 7) -> str:
    organisation_id = await unit_id(services, Organisation, org) if org else None
    village_id = await unit_id(services, Village, village) if village else None
    async with services.database.session() as session:
        code = await access.create_invite(session, role=role, now=services.clock(), expires_in=timedelta(days=days),
                                          rng=services.random, organisation_id=organisation_id,
                                          village_id=village_id)
    return access.grouped(code)


async def audit_rows(services, outcome: str | None = None) -> list[AuditLog]:
    async with services.database.session() as session:
        statement = select(AuditLog).order_by(AuditLog.id)
        if outcome:
            statement = statement.where(AuditLog.outcome == outcome)
        return list((await session.exec(statement)).all())


async def test_a_leader_redeems_a_code_and_confirms_a_member(dispatcher, services):
    resident = Chat(dispatcher, user="an")
    await register(resident, "Nguyễn Văn An")
    code = await invite(services, "leader", org=FARMERS)
    leader = Chat(dispatcher, user="lan")
    await register(leader, "Trần Thị Lan", org="Hội Liên hiệp Phụ nữ")
    await converse(leader, [
        (f"/ma {code.lower()}", "Bạn đã nhận vai trò Lãnh đạo tổ chức: Hội Nông dân xã"),
        ("/thanhvien", "Chờ xác nhận: 1"),
        ("#✅ Nguyễn Văn An (Thôn 2)", "Đã xác nhận Nguyễn Văn An"),
    ])
    assert "Đã xác nhận: 1" in leader.transcript and "Không còn ai chờ xác nhận" in leader.transcript
    async with services.database.session() as session:
        membership = (await session.exec(
            select(Membership).join(Person).where(Person.full_name == "Nguyễn Văn An"))).one()
    assert membership.confirmed
    assert [row.action for row in await audit_rows(services)] == [
        "invite_created", "invite_redeemed", "members_view", "member_confirmed", "members_view"]


async def test_a_leader_removes_a_false_claim(dispatcher, services):
    await register(Chat(dispatcher, user="an"), "Nguyễn Văn An")
    leader = Chat(dispatcher, user="lan")
    await register(leader, "Trần Thị Lan", org="Hội Liên hiệp Phụ nữ")
    await converse(leader, [
        (f"/ma {await invite(services, 'leader', org=FARMERS)}", "Hội Nông dân xã"),
        ("/thanhvien", "Nguyễn Văn An"),
        ("#✖️ Nguyễn Văn An", "Đã bỏ Nguyễn Văn An"),
    ])
    farmers = await unit_id(services, Organisation, FARMERS)
    async with services.database.session() as session:
        assert (await session.exec(select(Membership).where(Membership.organisation_id == farmers))).all() == []


async def test_the_deep_link_asks_consent_first_then_grants(dispatcher, services):
    code = (await invite(services, "village_head", village="Thôn 3")).replace("-", "")
    head = Chat(dispatcher, user="ba")
    await converse(head, [
        (f"/start {code}", "cần đồng ý lưu dữ liệu trước"),
        ("#Đồng ý", "Bạn đã nhận vai trò Trưởng thôn: Thôn 3"),
    ])
    assert "họ và tên" in head.transcript  # registration goes on
    async with services.database.session() as session:
        grant = (await session.exec(select(RoleGrant))).one()
    assert grant.role == "village_head" and grant.village_id == await unit_id(services, Village, "Thôn 3")


async def test_wrong_expired_and_used_codes_get_the_same_refusal_and_are_audited(dispatcher, services, clock):
    used = await invite(services, "leader", org=FARMERS)
    expired = await invite(services, "leader", org=FARMERS, days=1)
    first = Chat(dispatcher, user="first")
    await register(first, "Lê Văn Một")
    await converse(first, [(f"/ma {used}", "Bạn đã nhận vai trò")])
    clock.advance(days=2)
    other = Chat(dispatcher, user="other")
    await register(other, "Lê Văn Hai")
    answers = [await other.say(f"/ma {code}") for code in (used, expired, "ACDE-FGHJ-KMNP")]
    assert all(REFUSED in answer for answer in answers)
    assert len({answer.replace(code, "") for answer, code in zip(answers, (used, expired, "ACDE-FGHJ-KMNP"),
                                                                   strict=True)}) == 1
    refused = await audit_rows(services, "refused")
    assert [(row.action, row.actor) for row in refused] == [("invite_redeemed", 2)] * 3


async def test_five_refused_codes_make_the_chat_wait(dispatcher, services, clock):
    good = await invite(services, "leader", org=FARMERS)
    guesser = Chat(dispatcher, user="guess")
    await register(guesser, "Phạm Văn Đoán")
    for _ in range(5):
        await guesser.say("/ma ACDE-FGHJ-KMNP")
    assert "vui lòng chờ đến" in guesser.transcript
    assert "vui lòng chờ đến" in await guesser.say(f"/ma {good}")  # even a good code waits
    clock.advance(minutes=11)
    assert "Bạn đã nhận vai trò" in await guesser.say(f"/ma {good}")


async def test_no_plaintext_code_is_stored(dispatcher, services):
    codes = [await invite(services, role, org=FARMERS if role == "leader" else None) for role in ("leader", "staff")]
    async with services.database.session() as session:
        rows = (await (await session.connection()).execute(text("SELECT * FROM invitecode"))).all()
    stored = " ".join(str(value) for row in rows for value in row)
    for code in codes:
        assert code not in stored and code.replace("-", "") not in stored
        assert access.code_hash(code.replace("-", "")) in stored


async def test_staff_make_a_leader_code_in_chat(dispatcher, services):
    staff = Chat(dispatcher, user="vhxh")
    await register(staff, "Đỗ Thị Xã")
    await converse(staff, [
        (f"/ma {await invite(services, 'staff')}", "Cán bộ xã"),
        ("#Tạo mã mời", "Tạo mã mời cho ai?"),
        ("#Lãnh đạo một tổ chức", "lãnh đạo tổ chức nào"),
        (f"#{WOMEN}", "Mã mời cho lãnh đạo tổ chức – Hội Liên hiệp Phụ nữ xã:"),
    ])
    code = re.search(r"/ma ([A-Z0-9-]{14})", staff.transcript).group(1)
    leader = Chat(dispatcher, user="hoa")
    await register(leader, "Lê Thị Hoa")
    assert "Lãnh đạo tổ chức: Hội Liên hiệp Phụ nữ xã" in await leader.say(f"/ma {code}")


async def test_leader_and_staff_actions_are_refused_to_others_and_audited(dispatcher, services):
    await register(Chat(dispatcher, user="an"), "Nguyễn Văn An")  # a farmer's claim
    women_leader = Chat(dispatcher, user="lan")
    await register(women_leader, "Trần Thị Lan", org="Hội Liên hiệp Phụ nữ")
    await women_leader.say(f"/ma {await invite(services, 'leader', org=WOMEN)}")
    resident = Chat(dispatcher, user="binh")
    await register(resident, "Lê Văn Bình")
    farmers = await unit_id(services, Organisation, FARMERS)
    async with services.database.session() as session:
        farmer_claim = (await session.exec(select(Membership.id).where(Membership.organisation_id == farmers))).first()
    attempts = [
        (resident, ["/thanhvien", "/moi", ("tv", f"org:{farmers}"), ("tv", f"ok:{farmer_claim}"),
                   ("moi", f"org:{farmers}"), ("moi", "leader")]),
        (women_leader, [("tv", f"org:{farmers}"), ("tv", f"ok:{farmer_claim}"), ("tv", f"no:{farmer_claim}"),
                       ("tv", f"all:{farmers}"), "/moi", ("moi", f"org:{farmers}")]),
    ]
    for chat, tries in attempts:
        for attempt in tries:
            before = len(await audit_rows(services, "refused"))
            answer = await (chat.say(attempt) if isinstance(attempt, str) else chat.press(":".join(attempt)))
            assert "chỉ dành cho cán bộ xã" in answer or "dành cho lãnh đạo tổ chức" in answer, (attempt, answer)
            assert len(await audit_rows(services, "refused")) == before + 1, attempt
    async with services.database.session() as session:
        claim = await session.get(Membership, farmer_claim)
    assert claim is not None and not claim.confirmed


async def test_people_of_the_old_consent_are_asked_once_and_hidden_if_they_decline(dispatcher, services):
    old = Chat(dispatcher, user="old")
    await register(old, "Vũ Văn Cũ")
    async with services.database.session() as session:
        person = (await session.exec(select(Person))).one()
        person.consent_version = person.consent_offered = 1  # registered before version 2
        session.add(person)
    await converse(old, [("menu", "Mình có thêm một điều cần hỏi"), ("#Không đồng ý", "Mình giữ nguyên")])
    assert NEW_CONSENT_QUESTION not in await old.say("menu")  # asked once only
    leader = Chat(dispatcher, user="lan")
    await register(leader, "Trần Thị Lan", org="Hội Liên hiệp Phụ nữ")
    await leader.say(f"/ma {await invite(services, 'leader', org=FARMERS)}")
    answer = await leader.say("/thanhvien")
    assert "Chờ xác nhận: 1" in answer and "1 người chưa đồng ý hiện tên" in answer and "Vũ Văn Cũ" not in answer


async def test_agreeing_to_the_new_consent_is_stored(dispatcher, services):
    old = Chat(dispatcher, user="old")
    await register(old, "Vũ Văn Cũ")
    async with services.database.session() as session:
        person = (await session.exec(select(Person))).one()
        person.consent_version = person.consent_offered = 1
        session.add(person)
    await converse(old, [("/start", "Mình có thêm một điều cần hỏi"), ("#Đồng ý", "Cảm ơn bạn")])
    async with services.database.session() as session:
        assert (await session.exec(select(Person.consent_version))).one() == 2


async def test_an_erased_person_leaves_every_list_and_role(dispatcher, services):
    resident = Chat(dispatcher, user="an")
    await register(resident, "Nguyễn Văn An")
    leader = Chat(dispatcher, user="lan")
    await register(leader, "Trần Thị Lan", org="Hội Liên hiệp Phụ nữ")
    await leader.say(f"/ma {await invite(services, 'leader', org=FARMERS)}")
    assert "Nguyễn Văn An" in await leader.say("/thanhvien")
    await converse(resident, [("/xoadulieu", "chắc chắn"), ("#Xóa hết", "Đã xóa toàn bộ")])
    answer = await leader.say("/thanhvien")
    assert "Nguyễn Văn An" not in answer and "Chờ xác nhận: 0" in answer
    await converse(leader, [("/xoadulieu", "chắc chắn"), ("#Xóa hết", "Đã xóa toàn bộ")])
    async with services.database.session() as session:
        assert (await session.exec(select(RoleGrant))).all() == []
        invites = (await session.exec(select(InviteCode))).all()
    assert [(row.used_by, row.created_by, row.used_at is not None) for row in invites] == [(None, None, True)]
    assert len(await audit_rows(services)) >= 3  # the record of what happened stays, by number only


async def test_my_data_shows_roles_and_who_sees_the_name(dispatcher, services):
    leader = Chat(dispatcher, user="lan")
    await register(leader, "Trần Thị Lan")
    await leader.say(f"/ma {await invite(services, 'leader', org=FARMERS)}")
    answer = await leader.say("/dulieucuatoi")
    assert "Vai trò: Lãnh đạo tổ chức: Hội Nông dân xã" in answer
    assert "xem được tên bạn: có" in answer and "Hội Nông dân xã (chờ tổ chức xác nhận)" in answer


def test_codes_are_read_the_way_people_type_them():
    code = "K7MX4RTPW9AC"
    for typed in ("K7MX-4RTP-W9AC", "k7mx 4rtp w9ac", "Ｋ７ＭＸ－４ＲＴＰ－Ｗ９ＡＣ", " k7mx–4rtp–w9ac "):
        assert access.normalise_code(typed) == code, typed
    for wrong in ("K7MX-4RTP-W9A", "K7MX-4RTP-W9ACX", "O7MX-4RTP-W9AC", "K7MX-4RTP-W9Ä", "", "🙂" * 12):
        assert access.normalise_code(wrong) is None, wrong
    assert access.grouped(code) == "K7MX-4RTP-W9AC"
    assert not set("01528OILZSB") & set(access.CODE_ALPHABET)


async def test_a_start_link_that_is_not_an_invitation_is_a_plain_start(dispatcher):
    assert "Bạn có đồng ý không?" in await Chat(dispatcher, user="x").say("/start quangcao_zalo")
