"""Words shared by several conversations. Every word a person reads is Vietnamese."""

BOT_NAME = "Bình dân học vụ số"

MAIN_MENU = "🏠 Bạn muốn làm gì? Chọn một mục bên dưới."
WELCOME_BACK = "Chào mừng bạn quay lại, {name}!"

TOO_LONG = "Tin nhắn dài quá, mình chưa đọc được. Bạn gửi ngắn hơn nhé."
EMPTY = "Mình chưa thấy nội dung tin nhắn. Bạn thử lại nhé."
PLEASE_CHOOSE = "Bạn hãy chọn một mục bên dưới (bấm nút hoặc gõ số)."
UNKNOWN_COMMAND = "Mình chưa biết lệnh {command}. Gõ /trogiup để xem các lệnh."
UNSUPPORTED = "Cảm ơn bạn! Mình chỉ đọc được chữ và nút bấm thôi."
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

# Typed words that always lead home, whatever step the person is in.
HOME_WORDS = frozenset({"menu", "về menu", "ve menu", "trang chủ", "quay về", "thoát", "huỷ", "hủy", "start"})
