"""Conversations: greeting, consent, registration and /caidat."""

from __future__ import annotations

from sqlmodel import select

from bot.app import build_services
from handlers.dispatcher import Dispatcher
from storage.models import ChannelAccount, Household, Membership, Person
from tests.support import Chat, converse


async def register(chat: Chat, name: str = "Nguyễn Văn An", household: str = "Tạo mã hộ mới") -> None:
    await converse(chat, [
        ("/start", "Bạn có đồng ý không?"),
        ("#Đồng ý", "họ và tên"),
        (name, "thôn/xóm nào"),
        ("#Thôn 2", "nhóm nào"),
        ("#Người dân", "Hộ gia đình"),
        (f"#{household}", "tổ chức nào"),
        ("#Hội Nông dân", "☑️ Hội Nông dân xã"),
        ("#Xong", "VNeID mức 2"),
        ("#Đã kích hoạt", "Đăng ký xong"),
    ])


async def test_full_registration_is_saved(chat, services):
    await register(chat)
    async with services.database.session() as session:
        person = (await session.exec(select(Person))).one()
        memberships = (await session.exec(select(Membership))).all()
        household = (await session.exec(select(Household))).one()
    assert person.full_name == "Nguyễn Văn An"
    assert person.target_group == "nguoi-dan"
    assert person.vneid_level2 == "yes"
    assert person.household_id == household.id and person.is_household_head
    assert len(memberships) == 1


async def test_household_code_is_shared_with_the_family(make_chat, services):
    father = make_chat("bo")
    await register(father, name="Trần Văn Bình")
    async with services.database.session() as session:
        code = (await session.exec(select(Household.code))).one()
    spoken = f"{code[:3]} {code[3:]}"
    mother = make_chat("me")
    await converse(mother, [
        ("/start", "đồng ý"),
        ("#Đồng ý", "họ và tên"),
        ("Lê Thị Hoa", "thôn/xóm"),
        ("#Bỏ qua", "nhóm nào"),
        ("#Bỏ qua", "Hộ gia đình"),
        ("#Nhập mã hộ", "6 chữ số"),
        ("12", "gồm 6 chữ số"),
        ("000000" if code != "000000" else "111111", "Mã hộ chưa đúng"),
        (spoken, f"Bạn đã vào hộ có mã {spoken}"),
    ])
    async with services.database.session() as session:
        members = (await session.exec(select(Person).where(Person.household_id.is_not(None)))).all()
    assert len(members) == 2


async def test_household_code_is_read_out_after_creation(chat, services):
    await register(chat)
    async with services.database.session() as session:
        code = (await session.exec(select(Household.code))).one()
    assert len(code) == 6 and code.isdigit()
    shown = await chat.say("/caidat")
    assert f"mã {code[:3]} {code[3:]}" in shown


async def test_declining_consent_stores_nothing_personal(chat, services):
    await converse(chat, [
        ("/start", "Bạn có đồng ý không?"),
        ("#Không đồng ý", "vẫn học được"),
        ("/caidat", "cần đồng ý"),
        ("/dulieucuatoi", "chưa đồng ý lưu dữ liệu"),
        ("/xoadulieu", "không có gì để xóa"),
    ])
    async with services.database.session() as session:
        assert (await session.exec(select(Person))).all() == []
        assert (await session.exec(select(ChannelAccount))).all() == []


async def test_a_bad_name_is_asked_again_politely(chat):
    await converse(chat, [
        ("/start", "đồng ý"),
        ("#Đồng ý", "họ và tên"),
        ("12345", "Tên cần có chữ cái"),
        ("a", "Tên cần có chữ cái"),
        ("Phạm Thị Mai", "thôn/xóm"),
    ])


async def test_display_name_can_be_used_as_the_name(make_chat):
    chat = make_chat("tg1", display_name="Hoàng Văn Nam")
    await converse(chat, [
        ("/start", "đồng ý"),
        ("#Đồng ý", "Dùng tên: Hoàng Văn Nam"),
        ("#Dùng tên", "thôn/xóm"),
    ])


async def test_free_text_where_a_button_is_expected_repeats_the_step(chat):
    await converse(chat, [
        ("/start", "đồng ý"),
        ("#Đồng ý", "họ và tên"),
        ("Nguyễn An", "thôn/xóm"),
        ("ở gần chợ", "Bạn hãy chọn một mục bên dưới"),
        ("99", "Bạn hãy chọn"),
        ("#Thôn 3", "nhóm nào"),
    ])


async def test_settings_change_one_answer_and_return(chat, services):
    await register(chat)
    await converse(chat, [
        ("/caidat", "Thôn/xóm: Thôn 2"),
        ("#Thôn/xóm", "thôn/xóm nào"),
        ("#Thôn 5", "Đã lưu"),
    ])
    assert "Thôn/xóm: Thôn 5" in chat.transcript
    await converse(chat, [
        ("#Tổ chức", "☑️ Hội Nông dân xã"),
        ("#Hội Nông dân", "⬜ Hội Nông dân xã"),
        ("#Đoàn Thanh niên", "☑️ Đoàn Thanh niên xã"),
        ("#Xong", "Tổ chức: Đoàn Thanh niên xã"),
        ("#VNeID", "VNeID mức 2"),
        ("#Quay lại", "Bạn muốn sửa mục nào?"),
        ("#Hộ gia đình", "Rời hộ hiện tại"),
        ("#Rời hộ", "Bạn đã rời hộ gia đình"),
    ])
    async with services.database.session() as session:
        assert (await session.exec(select(Household))).all() == []  # the empty household is removed


async def test_start_again_after_registration_welcomes_back(chat):
    await register(chat)
    await converse(chat, [("/start", "Chào mừng bạn quay lại, Nguyễn Văn An")])
    assert "Tiếp tục đăng ký" not in chat.transcript
    await converse(chat, [("menu", "Bạn muốn làm gì?")])


async def test_an_interrupted_registration_is_offered_again_where_it_stopped(chat, settings, clock):
    await converse(chat, [
        ("/start", "Bạn có đồng ý không?"),
        ("#Đồng ý", "họ và tên"),
        ("Phạm Thị Mai", "thôn/xóm"),
        ("#Bỏ qua", "nhóm nào"),
        ("#Người dân", "Hộ gia đình"),
        ("/start", "Chào mừng bạn quay lại, Phạm Thị Mai"),
    ])
    assert "còn vài câu" in chat.transcript
    await converse(chat, [("#Về menu", "Bạn muốn làm gì?")])
    # The person comes back after a restart: a fresh process, the same database.
    restarted = await build_services(settings, clock=clock)
    try:
        chat.dispatcher = Dispatcher(restarted)
        await converse(chat, [
            ("/start", "Tiếp tục đăng ký"),
            ("#Tiếp tục đăng ký", "Hộ gia đình"),  # the village was skipped, the group answered
            ("#Bỏ qua", "tổ chức nào"),
            ("#Xong", "VNeID mức 2"),
            ("/start", "Tiếp tục đăng ký"),
            ("#Tiếp tục đăng ký", "VNeID mức 2"),
            ("#Chưa kích hoạt", "Đăng ký xong"),
            ("/start", "Chào mừng bạn quay lại"),
        ])
        assert "Tiếp tục đăng ký" not in chat.transcript
    finally:
        await restarted.database.dispose()


async def test_resuming_passes_over_what_was_answered_in_settings(chat):
    await converse(chat, [
        ("/start", "Bạn có đồng ý không?"),
        ("#Đồng ý", "họ và tên"),
        ("/caidat", "Bạn muốn sửa mục nào?"),
        ("#Họ tên", "họ và tên"),
        ("Phạm Thị Mai", "Đã lưu"),
        ("#Thôn/xóm", "thôn/xóm nào"),
        ("#Thôn 3", "Đã lưu"),
        ("/start", "Tiếp tục đăng ký"),
        ("#Tiếp tục đăng ký", "nhóm nào"),
    ])


async def test_an_old_continue_button_after_registration_goes_home(chat):
    await register(chat)
    assert "Bạn muốn làm gì?" in await chat.press("dangkytiep")
