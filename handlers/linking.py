"""/lienket: one person on two messengers. The account that has the person shows a 6-digit code; the
other account types `/lienket CODE` (or /lienket, then the code), confirms, and from then on both
accounts share progress, household, organisations and roles (storage/linking.py)."""

from __future__ import annotations

from handlers import texts
from handlers.context import Turn
from handlers.core import Incoming, Keyboard, Kind, Reply
from handlers.home import show_main_menu
from handlers.household import parse_code, spoken_code, until_text
from handlers.registry import Registry, Replies
from storage import access, linking
from storage.models import Person

CHANNEL_LABELS = {"telegram": "Telegram", "zalo": "Zalo", linking.ASSISTED_CHANNEL: "đăng ký cùng Tổ công nghệ số"}
OTHER_APP = {"telegram": "Trên Zalo", "zalo": "Trên Telegram"}
ANOTHER_APP = "Trên ứng dụng kia (Zalo hoặc Telegram)"

CODE_MADE = (
    "🔗 Mã liên kết của bạn: {spoken}\n\n"
    "{where}, nhắn cho trợ lý:\n/lienket {code}\n\n"
    "Mã dùng được một lần, đến {until}. Chỉ nhập mã trên tài khoản của chính bạn, đừng đưa mã cho người khác.\n"
    "Liên kết xong, hai tài khoản dùng chung tiến độ học, hộ gia đình, tổ chức và vai trò."
)
BTN_NEW_CODE = "🔄 Tạo mã mới"
BTN_ENTER_CODE = "🔢 Tôi có mã từ ứng dụng khác"
HELLO = "👋 Xin chào! Mình là trợ lý {bot} của {commune}: một chương trình trả lời tự động, không phải người trực."
ASK_CODE = (
    "🔗 Bạn gõ mã liên kết 6 chữ số (ví dụ /lienket 482913).\n"
    "Chưa có mã? Trên ứng dụng bạn đã đăng ký (Telegram hoặc Zalo), gõ /lienket để lấy mã."
)
BAD_FORMAT = "Mã liên kết gồm 6 chữ số, ví dụ 482 913. Bạn gõ lại nhé."
WRONG = (
    "Mã liên kết chưa đúng hoặc đã được dùng. Bạn xem lại mã trên ứng dụng kia, hoặc gõ /lienket ở đó "
    "để lấy mã mới (còn {left} lần thử)."
)
EXPIRED = (
    "Mã này đã hết hạn: mã chỉ dùng được trong 10 phút. Bạn gõ /lienket trên ứng dụng kia để lấy mã mới "
    "(còn {left} lần thử)."
)
TOO_MANY = "Bạn đã gõ sai mã liên kết nhiều lần. Để giữ an toàn, bạn vui lòng chờ đến {until} rồi thử lại nhé."
SAME_CHANNEL = (
    "Mã này được tạo trên {app}, nên không liên kết với một tài khoản {app} khác được: mỗi người liên kết "
    "một tài khoản cho mỗi ứng dụng. Bạn nhập mã trên ứng dụng kia nhé."
)
OTHER_ACCOUNT_SAME_APP = (
    "Tài khoản này đã liên kết với một tài khoản {app}, nên không liên kết thêm với tài khoản {app} khác được."
)
OWN_CODE = "Đây là mã của chính tài khoản này. Bạn nhập mã trên ứng dụng kia (Zalo hoặc Telegram) nhé."
ALREADY_LINKED = "Tài khoản này đã liên kết với tài khoản đó rồi: tiến độ của bạn đã là một. Không cần làm gì thêm."
CONFIRM = (
    "🔗 Tài khoản này sẽ dùng chung tiến độ học, hộ gia đình, tổ chức và vai trò với tài khoản {who}. "
    "Đồng ý?"
)
CONFIRM_MERGE = (
    "🔗 Tài khoản này sẽ dùng chung tiến độ học, hộ gia đình, tổ chức và vai trò với tài khoản {who}.\n\n"
    "Tài khoản này đã có dữ liệu riêng: bài đã học, kết quả kiểm tra, tổ chức và vai trò được gộp vào, "
    "không mất gì. Họ tên, thôn/xóm và hộ giữ như bên {app}; mục nào bên đó còn trống thì lấy từ tài khoản này. "
    "Đồng ý?"
)
BTN_YES = "✅ Đồng ý liên kết"
BTN_NO = "Không"
LINKED = (
    "✅ Đã liên kết với tài khoản {app}. Từ giờ hai tài khoản dùng chung tiến độ học, hộ gia đình, tổ chức "
    "và vai trò. Nhắc nhở và thông báo gửi đến ứng dụng bạn dùng gần nhất."
)
CANCELLED = "Đã hủy, chưa liên kết gì."
GONE = "Mã này không dùng được nữa (đã hết hạn hoặc đã được dùng). Bạn gõ /lienket trên ứng dụng kia để lấy mã mới."


def channel_label(channel: str) -> str:
    """'telegram' -> 'Telegram'; a channel without a label keeps its name ('console')."""
    return CHANNEL_LABELS.get(channel, channel)


def initials(name: str | None) -> str:
    """'Nguyễn Văn An' -> 'N.V.A.': enough for the owner to recognise, too little to learn a name from."""
    return "".join(f"{word[0].upper()}." for word in (name or "").split() if word[0].isalpha())


def _argument(incoming: Incoming) -> str:
    """The code after the command ('/lienket 482 913' -> '482 913'); a plain word ('liên kết') has none."""
    if incoming.kind is not Kind.COMMAND:
        return ""
    parts = incoming.text.strip().split(maxsplit=1)
    return parts[1] if len(parts) > 1 else ""


# --- the account that has the person: show a code ---------------------------------------------------

async def on_command(turn: Turn) -> Replies:
    """/lienket CODE links this account; /lienket alone shows a code (or, for a guest, asks for one)."""
    argument = _argument(turn.incoming)
    if argument.strip():
        return await take_code(turn, argument)
    if turn.person is None:
        return _ask(turn, hello=turn.state.step == "new")
    return await make_code(turn)


async def make_code(turn: Turn) -> Replies:
    assert turn.person is not None and turn.person.id is not None
    channel = turn.incoming.channel
    code = await linking.create_code(turn.session, turn.person.id, channel, turn.now, turn.services.random)
    turn.goto("main")
    text = CODE_MADE.format(spoken=spoken_code(code), code=code, where=OTHER_APP.get(channel, ANOTHER_APP),
                            until=until_text(turn, turn.now + linking.CODE_LIFETIME))
    keyboard = (Keyboard().add(BTN_NEW_CODE, "lk:new").add(BTN_ENTER_CODE, "lk:enter")
                .add(texts.BTN_MENU, "menu"))
    return [Reply(text, keyboard.build(), standalone=True)]


# --- the other account: type the code, confirm ------------------------------------------------------

def _ask(turn: Turn, *, hello: bool = False, notice: str | None = None) -> Replies:
    turn.goto("link_ask")
    replies = [Reply(HELLO.format(bot=texts.BOT_NAME, commune=turn.config.commune_name))] if hello else []
    if notice:
        replies.append(Reply(notice))
    return [*replies, Reply(ASK_CODE, Keyboard().add(texts.BTN_MENU, "menu").build())]


async def view_ask(turn: Turn) -> Replies:
    return _ask(turn)


async def on_code_text(turn: Turn, text: str) -> Replies:
    return await take_code(turn, text)


async def _waiting(turn: Turn) -> Replies | None:
    """The polite wait after too many wrong codes; None when this chat may try."""
    tries = await linking.tries(turn.session, turn.incoming.channel, turn.incoming.user_id, turn.now)
    if len(tries) < linking.TRIES:
        return None
    until = tries[-linking.TRIES] + linking.TRIES_WINDOW
    return await show_main_menu(turn, TOO_MANY.format(until=until_text(turn, until)))


async def take_code(turn: Turn, text: str) -> Replies:
    """A typed code: checked, then the confirmation. A wrong or expired code counts as a try."""
    hello = turn.state.step == "new"
    code = parse_code(text, linking.CODE_DIGITS)
    if code is None:
        return _ask(turn, hello=hello, notice=BAD_FORMAT)
    waiting = await _waiting(turn)
    if waiting is not None:
        return waiting
    hashed = linking.code_hash(code)
    found = await linking.find_code(turn.session, hashed, turn.now)
    if found.status != "live":
        await linking.record_try(turn.session, turn.incoming.channel, turn.incoming.user_id, turn.now)
        await access.audit(turn.session, turn.now, turn.person.id if turn.person else None, "account_linked",
                           "refused")
        waiting = await _waiting(turn)
        if waiting is not None:
            return waiting
        left = linking.TRIES - len(await linking.tries(turn.session, turn.incoming.channel, turn.incoming.user_id,
                                                        turn.now))
        words = EXPIRED if found.status == "expired" else WRONG
        return _ask(turn, hello=hello, notice=words.format(left=left))
    refusal = await _refusal(turn, found)
    if refusal is not None:
        return await show_main_menu(turn, refusal)
    return await _confirm(turn, hashed, found, hello=hello)


async def _refusal(turn: Turn, found: linking.Found) -> str | None:
    """Why this account cannot be linked to the code's person, if it cannot."""
    assert found.person_id is not None
    here = turn.incoming.channel
    if turn.person is not None and turn.person.id == found.person_id:
        return OWN_CODE if found.channel == here else ALREADY_LINKED
    theirs = set(await linking.channels_of(turn.session, found.person_id))
    if here in theirs:
        return SAME_CHANNEL.format(app=channel_label(found.channel or here))
    if turn.person is not None:
        overlap = sorted(theirs & set(await linking.channels_of(turn.session, turn.person.id)))  # type: ignore[arg-type]
        if overlap:
            return OTHER_ACCOUNT_SAME_APP.format(app=channel_label(overlap[0]))
    return None


async def _confirm(turn: Turn, hashed: str, found: linking.Found, *, hello: bool) -> Replies:
    target = await turn.session.get(Person, found.person_id)
    assert target is not None  # a person's erasure deletes their codes
    app = channel_label(found.channel or "")
    marks = initials(target.full_name)
    who = f"{app} ({marks})" if marks else app
    text = (CONFIRM_MERGE.format(who=who, app=app) if turn.person is not None else CONFIRM.format(who=who))
    turn.goto("link_confirm", code=hashed)
    replies = [Reply(HELLO.format(bot=texts.BOT_NAME, commune=turn.config.commune_name))] if hello else []
    return [*replies, _confirm_reply(text)]


def _confirm_reply(text: str) -> Reply:
    return Reply(text, Keyboard().add(BTN_YES, "lk:yes").add(BTN_NO, "lk:no").build())


async def view_confirm(turn: Turn) -> Replies:
    hashed = turn.data.get("code")
    found = await linking.find_code(turn.session, hashed, turn.now) if isinstance(hashed, str) else None
    if found is None or found.status != "live":
        return await show_main_menu(turn, GONE)
    return await _confirm(turn, hashed, found, hello=False)  # type: ignore[arg-type]


async def on_action(turn: Turn, argument: str) -> Replies:
    """lk:new (another code), lk:enter (type a code from the other app), lk:yes / lk:no (confirm)."""
    if argument == "new":
        if turn.person is None:
            return _ask(turn)
        return await make_code(turn)
    if argument == "enter":
        return _ask(turn)
    if argument == "yes":
        return await _link(turn)
    return await show_main_menu(turn, CANCELLED)


async def _link(turn: Turn) -> Replies:
    """Link now: the code is checked again and used once; this chat's own person, if any, is merged."""
    hashed = turn.data.get("code")
    found = await linking.find_code(turn.session, hashed, turn.now) if isinstance(hashed, str) else None
    if found is None or found.status != "live" or not await linking.use_code(turn.session, hashed, turn.now):  # type: ignore[arg-type]
        return await show_main_menu(turn, GONE)
    refusal = await _refusal(turn, found)
    if refusal is not None:
        return await show_main_menu(turn, refusal)
    target = await turn.session.get(Person, found.person_id)
    assert target is not None and target.id is not None
    source = turn.person
    merged = source.id if source is not None else None
    if source is None:
        await linking.add_account(turn.session, target.id, turn.incoming.channel, turn.incoming.user_id, turn.now)
    else:
        await linking.merge_person(turn.session, source, target)
    # Ids only: the person linked to, and the person merged into them (none for a new account).
    await access.audit(turn.session, turn.now, target.id, "account_linked", subject=merged)
    turn.person = target
    return await show_main_menu(turn, LINKED.format(app=channel_label(found.channel or "")))


def register(registry: Registry) -> None:
    registry.add_command("lienket", "Liên kết Telegram và Zalo: dùng chung tiến độ", on_command)
    registry.add_step("link_ask", view_ask, on_code_text)
    registry.add_step("link_confirm", view_confirm)
    registry.add_action("lk", on_action)
