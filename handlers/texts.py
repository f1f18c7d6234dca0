"""Words shared by several conversations. Every word a person reads is Vietnamese."""

BOT_NAME = "Bình dân học vụ số"

MAIN_MENU = "🏠 Bạn muốn làm gì? Chọn một mục bên dưới."
WELCOME_BACK = "Chào mừng bạn quay lại, {name}!"

TOO_LONG = "Tin nhắn dài quá, mình chưa đọc được. Bạn gửi ngắn hơn nhé."
EMPTY = "Mình chưa thấy nội dung tin nhắn. Bạn thử lại nhé."
PLEASE_CHOOSE = "Bạn hãy chọn một mục bên dưới (bấm nút hoặc gõ số)."
UNKNOWN_COMMAND = "Mình chưa biết lệnh {command}. Gõ /trogiup để xem các lệnh."
UNSUPPORTED = "Cảm ơn bạn! Mình chỉ đọc được chữ và nút bấm thôi."
# What a channel tells it received instead of text (Incoming.text of Kind.UNSUPPORTED). "hidden" is what
# Zalo sends in place of the content for protected users, among them people who cannot read: the answer
# says what to do in the simplest way, and who can sit with them.
UNSUPPORTED_KINDS = {
    "image": "📷 Cảm ơn bạn đã gửi ảnh! Mình chưa xem được ảnh, chỉ đọc được chữ và số.",
    "sticker": "😊 Cảm ơn bạn! Mình chưa hiểu được nhãn dán. Bạn gõ chữ hoặc số giúp mình nhé.",
    "voice": ("🎤 Mình chưa nghe được tin nhắn thoại. Bạn gõ chữ hoặc số nhé. Nếu khó gõ, bạn nhờ người thân "
              "hoặc Tổ công nghệ số cộng đồng ở thôn gõ giúp."),
    "hidden": ("🙂 Mình chưa đọc được tin nhắn này, nhưng không sao cả. Bạn chỉ cần gõ một con số trong danh sách "
               "bên dưới để chọn. Người thân hoặc Tổ công nghệ số cộng đồng ở thôn có thể ngồi học cùng bạn."),
}
STALE_BUTTON = "Nút này đã cũ. Mình đưa bạn về đúng bước hiện tại."
SORRY = "Xin lỗi, mình vừa gặp trục trặc. Bạn thử lại hoặc gõ menu để về đầu."
NEEDS_CONSENT = (
    "Để lưu tiến độ và thông tin này, bạn cần đồng ý cho mình lưu dữ liệu trước."
)

BTN_MENU = "🏠 Về menu"
BTN_LEARN = "📚 Học bài"
BTN_PROGRESS = "📈 Tiến độ của tôi"
BTN_SETTINGS = "⚙️ Cài đặt"
BTN_HELP = "❓ Trợ giúp"
BTN_REGISTER = "📝 Đăng ký lưu tiến độ"
BTN_BACK = "↩️ Quay lại"
BTN_SKIP = "Bỏ qua"

# Typed words that always lead home, whatever step the person is in, even one waiting for text: the
# way out of any question. Matched ignoring case, spaces and punctuation around them, but with their
# marks as written here: the forms without marks are listed one by one, and "huy" is not among them,
# since Huy is a given name a person may type at a name question.
HOME_WORDS = frozenset({"menu", "về menu", "ve menu", "trang chủ", "trang chu", "quay về", "quay ve", "thoát",
                        "thoat", "huỷ", "hủy", "start"})

# Plain words that do what a command does ("học" = /hoc). Matched ignoring case, spaces and
# punctuation around them, and diacritics ("hoc", "tien do"); a step waiting for text (a name, a
# date, an announcement) reads them as that text first, so only its own refusal lets them through.
COMMAND_WORDS = {
    "học": "hoc",
    "học bài": "hoc",
    "tiến độ": "tiendo",
    "tiến độ của tôi": "tiendo",
    "trợ giúp": "trogiup",
    "giúp": "trogiup",
    "hướng dẫn": "trogiup",
    "liên kết": "lienket",
    "liên kết tài khoản": "lienket",
}
