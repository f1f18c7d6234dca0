"""/thongbao in chat: staff reach the commune, a village or an organisation, a leader only their own
organisation, everyone else is refused; the count shown is the rows stored; a confirm pressed twice
sends once; the author sees the progress and, once sending is over, the final numbers."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlmodel import select

from bot.app import build_services
from bot.settings import Settings
from handlers.announcements import PER_DAY, close_finished_announcements, text_limit
from handlers.core import from_payload
from handlers.dispatcher import Dispatcher
from storage import access, outbox, queries
from storage.models import Announcement, AuditLog, ChannelAccount, Delivery, Membership, Organisation, Person, Village
from tests.support import CHANNELS, Chat, converse
from tests.test_dialog_figures import FARMERS, WOMEN, grant, register_viewer

HEADER = "📢 Thông báo của UBND xã Cát Thành:"
MESSAGE = "Tối thứ Bảy họp thôn lúc 19 giờ tại nhà văn hóa, bà con nhớ mang theo điện thoại."


@pytest.fixture
def settings(database_url: str) -> Settings:
    """Every test here on SQLite and, with TEST_DATABASE_URL, on PostgreSQL; long texts reach /thongbao's
    own check (the dispatcher's cap is raised above one message)."""
    return Settings(_env_file=None, database_url=database_url, max_text_length=4096)  # type: ignore[call-arg]


@dataclass
class People:
    """Who is in the commune besides the people chatting here, by the name of the case each covers."""

    ids: dict[str, int]
    accounts: dict[str, tuple[str, str]]  # reachable ones: the account a copy goes to


async def store_people(services) -> People:
    """Thôn 1: `an` (Hội Nông dân), `blocked` (Hội Nông dân, blocked the bot), `plain`;
    Thôn 2: `two_accounts` (Hội Nông dân, on two messengers), `no_account` (Hội Phụ nữ)."""
    now = services.clock()
    async with services.database.session() as session:
        villages = {v.name: v.id for v in (await session.exec(select(Village))).all()}
        orgs = {o.name: o.id for o in (await session.exec(select(Organisation))).all()}
        cases = {
            "an": ("Thôn 1", FARMERS, [("console", "p-an", False)]),
            "blocked": ("Thôn 1", FARMERS, [("telegram", "p-blocked", True)]),
            "plain": ("Thôn 1", None, [("console", "p-plain", False)]),
            "two_accounts": ("Thôn 2", FARMERS, [("console", "p-two-old", False), ("telegram", "p-two-new", False)]),
            "no_account": ("Thôn 2", WOMEN, []),
        }
        people = People({}, {})
        for name, (village, org, accounts) in cases.items():
            person = Person(full_name=f"Người {name}", village_id=villages[village], consent_at=now, created_at=now)
            session.add(person)
            await session.flush()
            people.ids[name] = person.id
            if org:
                session.add(Membership(person_id=person.id, organisation_id=orgs[org], confirmed=name == "an"))
            for channel, external_id, blocked in accounts:
                session.add(ChannelAccount(channel=channel, external_id=external_id, person_id=person.id,
                                           blocked=blocked, created_at=now))
                await session.flush()
                if not blocked:
                    people.accounts[name] = (channel, external_id)
    return people


async def deliveries(services) -> list[Delivery]:
    async with services.database.session() as session:
        return list((await session.exec(select(Delivery).order_by(Delivery.id))).all())


async def announcements(services) -> list[Announcement]:
    async with services.database.session() as session:
        return list((await session.exec(select(Announcement).order_by(Announcement.id))).all())


async def audit_lines(services, action: str) -> list[AuditLog]:
    async with services.database.session() as session:
        return list((await session.exec(select(AuditLog).where(AuditLog.action == action))).all())


async def staff_chat(chats, services, user: str = "staff") -> Chat:
    """A staff member; `chats` is the `make_chat` factory (or a dispatcher: on the console)."""
    chat = chats(user) if callable(chats) else Chat(chats, user=user)
    await register_viewer(chat, "Đỗ Văn Xã")
    await grant(services, chat, "staff")
    return chat


async def test_staff_send_to_a_village_exactly_the_people_counted(make_chat, services):
    people = await store_people(services)
    staff = await staff_chat(make_chat, services)
    await converse(staff, [
        ("/thongbao", "Bạn muốn gửi thông báo tới ai?"),
        ("#Một thôn/xóm", "Gửi tới thôn/xóm nào?"),
        ("#Thôn 1", "gõ nội dung thông báo gửi tới Thôn 1"),
        (MESSAGE, "Xem trước tin sẽ gửi"),
    ])
    assert f"{HEADER}\n\n{MESSAGE}" in staff.transcript
    assert "Tin này sẽ gửi tới 2 người (Thôn 1)" in staff.transcript  # not the one who blocked the bot
    assert await deliveries(services) == []  # nothing before the confirmation

    answer = await staff.choose("Gửi")
    assert "Đã xếp 2 tin vào hàng gửi tới Thôn 1" in answer
    (announcement,) = await announcements(services)
    rows = await deliveries(services)
    assert {(row.channel, row.external_id) for row in rows} == {people.accounts["an"], people.accounts["plain"]}
    keys = {f"announcement:{announcement.id}:{people.ids[name]}" for name in ("an", "plain")}
    assert {row.key for row in rows} == keys
    assert all(row.kind == "announcement" and row.announcement_id == announcement.id and row.status == "queued"
               for row in rows)
    (message,) = from_payload(rows[0].payload)
    assert message.text == f"{HEADER}\n\n{MESSAGE}"
    assert announcement.recipients == 2 and announcement.audience.startswith("village:")
    assert announcement.author_channel == staff.channel and announcement.author_external_id == staff.external_id
    (line,) = await audit_lines(services, "announcement_sent")
    assert line.village_id == int(announcement.audience.split(":")[1]) and line.outcome == "ok"

    # The confirmation pressed again (a double tap, a redelivery, an old message) sends nothing more.
    assert "Nút này đã cũ" in await staff.press("tbs:send")
    assert len(await deliveries(services)) == 2 and len(await announcements(services)) == 1


async def test_staff_reach_the_commune_and_an_organisation_with_one_copy_each(make_chat, services):
    people = await store_people(services)
    staff = await staff_chat(make_chat, services)
    # Everyone who consented and has an account the bot may write to: three stored here and the staff member.
    await converse(staff, [
        ("/thongbao", "tới ai?"), ("#Toàn xã", "gõ nội dung thông báo gửi tới toàn xã"),
        ("Lịch tiêm chủng tháng 12", "Tin này sẽ gửi tới 4 người (toàn xã)"), ("#Gửi", "Đã xếp 4 tin"),
    ])
    await converse(staff, [
        ("/thongbao", "tới ai?"), ("#Một tổ chức", "Gửi tới tổ chức nào?"), (f"#{FARMERS}", "gõ nội dung"),
        ("Họp chi hội", f"Tin này sẽ gửi tới 2 người ({FARMERS})"), ("#Gửi", "Đã xếp 2 tin"),
    ])
    first, second = await announcements(services)
    rows = [row for row in await deliveries(services) if row.announcement_id == second.id]
    # On two messengers: one copy, on the newest account; the blocked member gets none.
    assert {(row.channel, row.external_id) for row in rows} == {people.accounts["an"], people.accounts["two_accounts"]}
    assert people.accounts["two_accounts"] == ("telegram", "p-two-new")
    assert first.recipients == 4 and second.recipients == 2
    assert from_payload(rows[0].payload)[0].text.startswith(HEADER)


async def test_a_leader_writes_to_their_own_organisation_only(make_chat, services):
    await store_people(services)
    leader = make_chat("leader")
    await register_viewer(leader, "Trần Văn Lãnh")
    await grant(services, leader, "leader", org=FARMERS)
    # One organisation: no choice to make, and the organisation speaks.
    await converse(leader, [
        ("/thongbao", f"gõ nội dung thông báo gửi tới {FARMERS}"),
        ("Chủ nhật ra quân làm đường", f"📢 Thông báo của {FARMERS}:"),
    ])
    assert f"Tin này sẽ gửi tới 2 người ({FARMERS})" in leader.transcript
    assert "Chọn nơi nhận khác" not in leader.transcript
    async with services.database.session() as session:
        women = (await session.exec(select(Organisation.id).where(Organisation.name == WOMEN))).one()
    # Other audiences are not among the buttons shown: refused as old buttons, nothing stored.
    for forged in (f"tba:org:{women}", "tba:commune", "tba:villages", "tbs:other"):
        assert "Nút này đã cũ" in await leader.press(forged), forged
    # Step data pointing elsewhere (a role changed half-way, a forged state) is checked again at the send.
    async with services.database.session() as session:
        state = await queries.load_state(session, leader.channel, leader.external_id, services.clock())
        state.step, state.data, state.menu = "tb_preview", {"audience": f"org:{women}", "text": "x"}, ["tbs:send"]
        session.add(state)
    assert "Bạn chỉ gửi được thông báo tới tổ chức bạn phụ trách" in await leader.press("tbs:send")
    await leader.say("/thongbao")
    await leader.say("Chủ nhật ra quân làm đường")
    assert "Đã xếp 2 tin" in await leader.choose("Gửi")
    assert [a.audience for a in await announcements(services)] == [f"org:{(await _org_id(services, FARMERS))}"]
    assert len(await deliveries(services)) == 2
    assert [line.outcome for line in await audit_lines(services, "announcement")] == ["refused"]


async def _org_id(services, name: str) -> int:
    async with services.database.session() as session:
        return (await session.exec(select(Organisation.id).where(Organisation.name == name))).one()


async def test_residents_guests_and_village_heads_are_refused_politely(make_chat, services):
    resident = make_chat("resident")
    await register_viewer(resident, "Nguyễn Văn Dân")
    assert "dành cho cán bộ xã và lãnh đạo tổ chức" in await resident.say("/thongbao")
    head = make_chat("head")
    await register_viewer(head, "Lê Thị Trưởng")
    await grant(services, head, "village_head", village="Thôn 1")
    assert "dành cho cán bộ xã và lãnh đạo tổ chức" in await head.say("/thongbao")
    guest = make_chat("guest")
    assert "dành cho cán bộ xã và lãnh đạo tổ chức" in await guest.say("/thongbao")
    assert await announcements(services) == [] and await deliveries(services) == []
    assert len(await audit_lines(services, "announcement")) == 3


async def test_empty_and_too_long_messages_keep_the_author_in_the_step(make_chat, services):
    staff = await staff_chat(make_chat, services)
    await converse(staff, [("/thongbao", "tới ai?"), ("#Toàn xã", "gõ nội dung")])
    assert "Mình chưa thấy nội dung" in await staff.say("   ")
    assert "gõ nội dung thông báo" in staff.transcript
    assert "Thông báo chưa có nội dung" in await staff.say("\u200b")  # invisible: nothing to read
    limit = text_limit(HEADER)
    answer = await staff.say("a" * (limit + 1))
    assert f"Thông báo dài {limit + 1} ký tự, quá mức {limit} ký tự" in answer and "gõ nội dung" in answer
    answer = await staff.say("a" * limit)  # header, blank line and text: exactly one Zalo message
    assert "Xem trước tin sẽ gửi" in answer and len(f"{HEADER}\n\n{'a' * limit}") == 2000
    await staff.choose("Gửi")
    assert len(from_payload((await deliveries(services))[0].payload)[0].text) == 2000


async def test_cancel_and_edit_send_nothing_until_confirmed(make_chat, services):
    await store_people(services)
    staff = await staff_chat(make_chat, services)
    await converse(staff, [
        ("/thongbao", "tới ai?"), ("#Toàn xã", "gõ nội dung"), ("Bản nháp", "Xem trước"),
        ("#Sửa nội dung", "gõ nội dung"), ("Bản sửa", "Bản sửa"),
        ("#Chọn nơi nhận khác", "tới ai?"), ("#Một thôn/xóm", "thôn/xóm nào"), ("#Thôn 2", "gõ nội dung"),
        ("Bản cuối", "Tin này sẽ gửi tới 1 người (Thôn 2)"),
        ("#Hủy", "Đã hủy, không có tin nào được gửi"),
    ])
    assert await announcements(services) == [] and await deliveries(services) == []
    assert "Nút này đã cũ" in await staff.press("tbs:send")
    assert await deliveries(services) == []


async def test_an_audience_nobody_can_receive_offers_no_send_button(make_chat, services):
    staff = await staff_chat(make_chat, services)
    await converse(staff, [("/thongbao", "tới ai?"), ("#Một tổ chức", "tổ chức nào"), (f"#{WOMEN}", "gõ nội dung"),
                           ("Họp hội", "Tin này sẽ gửi tới 0 người")])
    assert "✅ Gửi" not in staff.labels


async def test_progress_is_for_the_author_and_staff_and_a_forged_button_is_harmless(make_chat, services, clock):
    await store_people(services)
    leader = make_chat("leader")
    await register_viewer(leader, "Trần Văn Lãnh")
    await grant(services, leader, "leader", org=FARMERS)
    await converse(leader, [("/thongbao", "gõ nội dung"), (MESSAGE, "Xem trước"), ("#Gửi", "Đã xếp 2 tin")])
    (announcement,) = await announcements(services)
    answer = await leader.choose("Tiến độ gửi")
    assert "• Đang chờ gửi: 2\n• Đã gửi: 0\n• Không gửi được: 0\n• Người đã chặn bot: 0" in answer
    assert "Tối thứ Bảy họp thôn lúc 19 giờ" in answer  # which announcement, by its first words

    resident = make_chat("resident")
    await register_viewer(resident, "Nguyễn Văn Dân")
    for forged in (f"tbtd:{announcement.id}", "tbtd:99999", "tbtd:abc", "tbtd:", "tbtd:-1"):
        answer = await resident.press(forged)
        assert "Bạn chỉ xem được tiến độ của thông báo do chính bạn gửi" in answer, forged
        assert "Đang chờ gửi" not in answer, forged
    assert len([line for line in await audit_lines(services, "announcement_progress")
                if line.outcome == "refused"]) == 5
    staff = await staff_chat(make_chat, services)
    assert "• Đang chờ gửi: 2" in await staff.press(f"tbtd:{announcement.id}")


async def test_at_most_five_announcements_a_day(make_chat, services, clock):
    await store_people(services)
    staff = await staff_chat(make_chat, services)
    for number in range(PER_DAY):
        await converse(staff, [("/thongbao", "tới ai?"), ("#Một thôn/xóm", "thôn/xóm nào"), ("#Thôn 1", "gõ nội dung"),
                               (f"Tin số {number}", "Xem trước"), ("#Gửi", "Đã xếp 2 tin")])
    assert "Hôm nay bạn đã gửi 5 thông báo" in await staff.say("/thongbao")
    assert len(await announcements(services)) == PER_DAY
    clock.advance(hours=16)  # 00:00 the next day in Ninh Bình
    assert "tới ai?" in await staff.say("/thongbao")


async def test_a_flood_started_in_two_chats_is_stopped_at_the_send(make_chat, services):
    """The limit is checked again at the confirmation: previews opened before the fifth send do not pass."""
    await store_people(services)
    staff = await staff_chat(make_chat, services)
    async with services.database.session() as session:
        author = (await session.exec(select(ChannelAccount.person_id)
                                     .where(ChannelAccount.external_id == staff.external_id))).one()
        for number in range(PER_DAY - 1):
            session.add(Announcement(author_id=author, author_channel=staff.channel,
                                     author_external_id=staff.external_id, audience="commune", text=f"Tin {number}",
                                     created_at=services.clock()))
    await converse(staff, [("/thongbao", "tới ai?"), ("#Toàn xã", "gõ nội dung"), ("Tin cuối", "Xem trước")])
    async with services.database.session() as session:
        session.add(Announcement(author_id=author, author_channel=staff.channel, author_external_id=staff.external_id,
                                 audience="commune", text="Tin khác", created_at=services.clock()))
    assert "Hôm nay bạn đã gửi 5 thông báo" in await staff.choose("Gửi")
    assert await deliveries(services) == []


async def test_a_role_revoked_half_way_sends_nothing(make_chat, services):
    await store_people(services)
    staff = await staff_chat(make_chat, services)
    await converse(staff, [("/thongbao", "tới ai?"), ("#Toàn xã", "gõ nội dung"), ("Tin", "Xem trước")])
    async with services.database.session() as session:
        grant_row = (await access.active_grants(session, (await session.exec(
            select(ChannelAccount.person_id).where(ChannelAccount.external_id == staff.external_id))).one()))[0]
        await access.revoke(session, grant_row.id, services.clock())
    assert "dành cho cán bộ xã và lãnh đạo tổ chức" in await staff.choose("Gửi")
    assert await deliveries(services) == []


# --- the final numbers -----------------------------------------------------------------------------

async def test_the_author_gets_the_final_numbers_once_when_sending_is_over(make_chat, services, clock):
    people = await store_people(services)
    staff = await staff_chat(make_chat, services)
    await converse(staff, [("/thongbao", "tới ai?"), ("#Một tổ chức", "tổ chức nào"), (f"#{FARMERS}", "gõ nội dung"),
                           (MESSAGE, "tới 2 người"), ("#Gửi", "Đã xếp 2 tin")])
    (announcement,) = await announcements(services)
    assert await close_finished_announcements(services, clock()) == 0  # both still queued

    # The sender (bot/outbox.py) at work: one copy sent, the other blocked.
    async with services.database.session() as session:
        leased = await outbox.lease_due(session, clock(), timedelta(minutes=1), 10, list(CHANNELS))
        assert len(leased) == 2
        by_person = {row.person_id: row.id for row in leased}
        await outbox.mark_sent(session, by_person[people.ids["an"]], clock())
    assert await close_finished_announcements(services, clock()) == 0  # one is being sent
    async with services.database.session() as session:
        await outbox.give_up(session, by_person[people.ids["two_accounts"]], "blocked", "Forbidden")
    assert "• Đang chờ gửi: 0\n• Đã gửi: 1" in await staff.press(f"tbtd:{announcement.id}")

    clock.advance(minutes=5)
    assert await close_finished_announcements(services, clock()) == 1
    assert await close_finished_announcements(services, clock()) == 0  # told once
    notices = [row for row in await deliveries(services) if row.kind == "notice"]
    assert [(row.key, row.channel, row.external_id) for row in notices] == [
        (f"announcement-done:{announcement.id}", staff.channel, staff.external_id)]
    (notice,) = from_payload(notices[0].payload)
    assert "đã gửi xong" in notice.text and f"tới {FARMERS}" in notice.text
    assert "• Đã gửi: 1\n• Không gửi được: 0\n• Người đã chặn bot: 1" in notice.text
    assert notice.actions == [f"tbtd:{announcement.id}"]
    (finished,) = await announcements(services)
    assert finished.finished_at == clock()


async def test_an_erased_author_is_not_told_and_the_announcement_is_closed(make_chat, services, clock):
    await store_people(services)
    staff = await staff_chat(make_chat, services)
    await converse(staff, [("/thongbao", "tới ai?"), ("#Một thôn/xóm", "thôn/xóm nào"), ("#Thôn 2", "gõ nội dung"),
                           ("Tin", "tới 1 người"), ("#Gửi", "Đã xếp 1 tin")])
    await converse(staff, [("/xoadulieu", "xóa"), ("#Xóa", "")])
    async with services.database.session() as session:
        leased = await outbox.lease_due(session, clock(), timedelta(minutes=1), 10, list(CHANNELS))
        await outbox.give_up(session, leased[0].id, "failed", "Bad Request")
    assert await close_finished_announcements(services, clock()) == 1
    assert [row.kind for row in await deliveries(services)] == ["announcement"]


async def test_with_the_default_cap_the_dispatcher_refuses_first_and_the_step_says_that_limit(database_url, clock,
                                                                                             chat_channel):
    services = await build_services(Settings(_env_file=None, database_url=database_url),  # type: ignore[call-arg]
                                    clock=clock, rng=random.Random(7))
    try:
        dispatcher = Dispatcher(services)
        staff = await staff_chat(lambda user: Chat.on(chat_channel, dispatcher, user=user), services)
        await converse(staff, [("/thongbao", "tới ai?"), ("#Toàn xã", "tối đa 1000 ký tự")])
        answer = await staff.say("a" * 1001)
        assert "Tin nhắn dài quá" in answer and "gõ nội dung thông báo" in answer
        assert "Xem trước" in await staff.say("a" * 1000)
    finally:
        await services.database.dispose()
