"""The certificate of a finished course, as a one-page PDF (A4 landscape).

Plain data in, PDF bytes out, so it can be drawn in the renderer process (handlers/context.Services).
The text is set in DejaVu Sans, bundled in reports/fonts/ with its licence (LICENSE-DejaVu.txt: the
Bitstream Vera / Arev licence, which allows redistribution with software), because the PDF core fonts
have no Vietnamese letters. The font is embedded as a subset with its Unicode map, so the name, with
its diacritics, is searchable and can be copied out of the PDF. The text is composed (NFC) first: the
font has a glyph for every precomposed Vietnamese letter, and no text shaping is needed for them.

When the bot has a public address, a QR code carries `{public_url}/xacthuc/{code}`, the page that
confirms the certificate (bot/web.py).
"""

from __future__ import annotations

import io
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

FONTS = Path(__file__).parent / "fonts"
FONT = "DejaVuSans"
REGULAR, BOLD = FONTS / "DejaVuSans.ttf", FONTS / "DejaVuSans-Bold.ttf"

PAGE_W, PAGE_H = 297.0, 210.0  # A4 landscape, mm
MARGIN = 14.0
INK = (33, 37, 41)
ACCENT = (176, 32, 38)  # the red of the movement's posters
QR_SIZE = 34.0


@dataclass(frozen=True)
class CertificateData:
    """What one certificate shows; `code` is the bare code (printed grouped)."""

    full_name: str
    course_title: str
    lesson_count: int
    commune_name: str
    issued_on: date
    code: str
    verify_url: str | None = None  # the QR code's address; None: no QR code (no public address set)


def verify_url(public_url: str | None, code: str) -> str | None:
    """`{public_url}/xacthuc/{code}`, or None when the bot has no public address."""
    return f"{public_url.rstrip('/')}/xacthuc/{code}" if public_url else None


def _composed(text: str) -> str:
    return unicodedata.normalize("NFC", " ".join(text.split()))


def _capitalised(text: str) -> str:
    """'xã Cát Thành' -> 'Xã Cát Thành' (only the first letter: the rest is a name)."""
    return text[:1].upper() + text[1:]


def _grouped(code: str) -> str:
    return "-".join(code[i:i + 4] for i in range(0, len(code), 4))


def _date_line(place: str, day: date) -> str:
    """The place-and-date line of Vietnamese documents: 'Xã Cát Thành, ngày 02 tháng 11 năm 2026'."""
    return f"{_capitalised(place)}, ngày {day.day:02d} tháng {day.month:02d} năm {day.year}"


def qr_png(url: str) -> bytes:
    """The QR code of `url` as a black-and-white PNG (10 px a module, the standard 4-module quiet zone)."""
    import segno

    buffer = io.BytesIO()
    segno.make_qr(url, error="m").save(buffer, kind="png", scale=10, border=4)
    return buffer.getvalue()


def render_certificate(data: CertificateData) -> bytes:
    """The certificate as PDF bytes."""
    from fpdf import FPDF
    from fpdf.enums import XPos, YPos

    pdf = FPDF(orientation="L", unit="mm", format="A4")
    pdf.set_auto_page_break(False)
    pdf.set_margins(MARGIN, MARGIN, MARGIN)
    pdf.add_font(FONT, "", str(REGULAR))
    pdf.add_font(FONT, "B", str(BOLD))
    pdf.set_title("Giấy chứng nhận hoàn thành khóa học")
    pdf.set_subject("Phong trào Bình dân học vụ số")
    pdf.set_creator("hocvuso")
    # The same certificate drawn again is the same file (fpdf2 would stamp the moment of drawing).
    pdf.set_creation_date(datetime(data.issued_on.year, data.issued_on.month, data.issued_on.day))
    pdf.add_page()

    # A double frame.
    pdf.set_draw_color(*ACCENT)
    pdf.set_line_width(1.2)
    pdf.rect(8, 8, PAGE_W - 16, PAGE_H - 16)
    pdf.set_line_width(0.3)
    pdf.rect(11, 11, PAGE_W - 22, PAGE_H - 22)

    width = PAGE_W - 2 * MARGIN
    commune = _composed(data.commune_name)

    def line(text: str, size: float, *, bold: bool = False, color: tuple[int, int, int] = INK,
             gap: float = 0.0, smallest: float = 9.0) -> None:
        """One centred line, made smaller until it fits (a long name or course title); wrapped if even
        the smallest size is too wide."""
        pdf.set_text_color(*color)
        style = "B" if bold else ""
        pdf.set_font(FONT, style, size)
        while size > smallest and pdf.get_string_width(text) > width - 4:
            size -= 0.5
            pdf.set_font(FONT, style, size)
        height = size * 0.5
        if pdf.get_string_width(text) > width - 4:
            pdf.multi_cell(width, height, text, align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        else:
            pdf.cell(width, height, text, align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        if gap:
            pdf.ln(gap)

    pdf.set_y(20)
    line("PHONG TRÀO “BÌNH DÂN HỌC VỤ SỐ”", 12, bold=True, gap=1)
    line(commune.upper(), 12, bold=True, gap=10)
    line("GIẤY CHỨNG NHẬN", 30, bold=True, color=ACCENT, gap=2)
    line("HOÀN THÀNH KHÓA HỌC KỸ NĂNG SỐ", 14, bold=True, gap=10)
    line("Chứng nhận ông/bà", 13, gap=2)
    line(_composed(data.full_name), 26, bold=True, color=ACCENT, gap=6, smallest=12)
    line(f"đã học xong và đạt bài kiểm tra của cả {data.lesson_count} bài trong khóa học", 13, gap=1)
    line(f"“{_composed(data.course_title)}”", 16, bold=True, gap=1, smallest=10)
    line(f"của Phong trào “Bình dân học vụ số” {commune}.", 13, gap=8)

    # Bottom: place and date on the right, verification on the left, the QR code in the corner.
    bottom = PAGE_H - MARGIN - 8
    right_edge = PAGE_W - MARGIN - 4
    qr = data.verify_url is not None
    text_right = right_edge - (QR_SIZE + 6 if qr else 0)
    pdf.set_text_color(*INK)
    pdf.set_font(FONT, "", 12)
    pdf.set_xy(MARGIN + 4, bottom - 40)
    pdf.multi_cell(text_right - MARGIN - 4, 6, _date_line(commune, data.issued_on), align="R",
                   new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_x(MARGIN + 4)
    pdf.set_font(FONT, "", 9)
    pdf.cell(text_right - MARGIN - 4, 5, "Cấp tự động bởi trợ lý Bình dân học vụ số", align="R")

    pdf.set_font(FONT, "", 10)
    pdf.set_xy(MARGIN + 6, bottom - 18)
    pdf.cell(0, 5, "Mã xác thực:", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_x(MARGIN + 6)
    pdf.set_font(FONT, "B", 14)
    pdf.cell(0, 7, _grouped(data.code), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_x(MARGIN + 6)
    pdf.set_font(FONT, "", 8.5)
    how = f"Kiểm tra: nhắn /xacthuc {_grouped(data.code)} cho trợ lý Bình dân học vụ số"
    pdf.cell(0, 4.5, how + (", hoặc quét mã QR." if qr else "."))

    if data.verify_url is not None:
        pdf.image(io.BytesIO(qr_png(data.verify_url)), x=right_edge - QR_SIZE, y=bottom - QR_SIZE,
                  w=QR_SIZE, h=QR_SIZE, alt_text="Mã QR xác thực giấy chứng nhận")
    return bytes(pdf.output())


# A resident waits on it at the end of the course: hocvuso run draws it in the residents' renderer
# process, never queued behind leaders' charts and reports (bot/app.Renderer).
render_certificate.for_residents = True  # type: ignore[attr-defined]
