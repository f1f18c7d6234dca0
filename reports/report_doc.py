"""A draft of the unit's yearly report as a DOCX, laid out as Vietnamese administrative documents are
(Nghị định 30/2020/NĐ-CP, Phụ lục I; shared/REPORTING-NOTES.md).

The figures are filled in from the same `Report` as the workbook. Every passage that needs a person's
words (what was organised, the shortcomings, the plans, the proposals, the signer) is marked `[...]`,
so the unit can see at a glance what is left to write.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from io import BytesIO

from docx import Document
from docx.enum.section import WD_ORIENT
from docx.enum.table import WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Cm, Mm, Pt
from docx.table import Table, _Cell
from docx.text.paragraph import Paragraph

from reports.report_text import GROUP_NAMES, indicator_rows, indicators, kinds_phrase, number, percent
from storage.report import OfflineLine, Report, share

FONT = "Times New Roman"
BODY_SIZE = Pt(14)
TO_FILL = "[...]"
SECTIONS = ("I. KẾT QUẢ THỰC HIỆN", "II. TỒN TẠI, HẠN CHẾ, NGUYÊN NHÂN", "III. PHƯƠNG HƯỚNG, NHIỆM VỤ",
            "IV. ĐỀ XUẤT, KIẾN NGHỊ")
SHOWN_ROWS = 40  # organisations or villages in a table of the DOCX; the workbook has them all
SHOWN_INITIATIVES = 10  # recognised initiatives named in the DOCX; the workbook lists them all


def report_document(report: Report, commune_name: str) -> bytes:
    """The DOCX's bytes. `commune_name` is the setting ("xã Cát Thành")."""
    document = Document()
    _page(document)
    _heading(document, report, commune_name)
    _title(document, report, commune_name)
    _results(document, report, commune_name)
    _to_write(document, SECTIONS[1], ["1. Tồn tại, hạn chế", "2. Nguyên nhân"])
    _to_write(document, SECTIONS[2], [])
    _to_write(document, SECTIONS[3], [])
    _body(document, f"Trên đây là báo cáo kết quả thực hiện Phong trào \"Bình dân học vụ số\" năm "
                    f"{report.period.year} của {_unit_phrase(report, commune_name)}./.")
    _ending(document, report, commune_name)
    buffer = BytesIO()
    document.save(buffer)
    return buffer.getvalue()


# --- page and type -------------------------------------------------------------------------------

def _page(document: object) -> None:
    section = document.sections[0]  # type: ignore[attr-defined]
    section.orientation = WD_ORIENT.PORTRAIT
    section.page_width, section.page_height = Mm(210), Mm(297)
    section.top_margin, section.bottom_margin = Mm(20), Mm(20)
    section.left_margin, section.right_margin = Mm(30), Mm(15)
    normal = document.styles["Normal"]  # type: ignore[attr-defined]
    normal.font.name = FONT
    normal.font.size = BODY_SIZE
    # Word takes the font for Vietnamese letters from the east-Asian and complex-script slots too.
    fonts = normal.element.get_or_add_rPr().get_or_add_rFonts()
    for slot in ("w:ascii", "w:hAnsi", "w:eastAsia", "w:cs"):
        fonts.set(qn(slot), FONT)
    # The page number, centred in the top margin, from page 2 on.
    section.different_first_page_header_footer = True
    header = section.header.paragraphs[0]
    header.alignment = WD_ALIGN_PARAGRAPH.CENTER
    _page_number(header)


def _page_number(paragraph: Paragraph) -> None:
    field = OxmlElement("w:fldSimple")
    field.set(qn("w:instr"), "PAGE")
    run = OxmlElement("w:r")
    text = OxmlElement("w:t")
    text.text = "2"
    run.append(text)
    field.append(run)
    paragraph._p.append(field)


def _line(paragraph: Paragraph, text: str, *, size: float = 14, bold: bool = False, italic: bool = False,
          underline: bool = False) -> None:
    run = paragraph.add_run(text)
    run.font.size = Pt(size)
    run.font.bold = bold
    run.font.italic = italic
    run.font.underline = underline


def _centred(cell_or_document: object, text: str, **style: object) -> Paragraph:
    paragraph = cell_or_document.add_paragraph()  # type: ignore[attr-defined]
    paragraph.alignment = WD_ALIGN_PARAGRAPH.CENTER
    paragraph.paragraph_format.space_after = Pt(0)
    _line(paragraph, text, **style)  # type: ignore[arg-type]
    return paragraph


def _rule(cell: object, width: int) -> None:
    """A short line under a heading: underlined non-breaking spaces, the width of `width` characters."""
    _centred(cell, "\u00a0" * width, size=8, underline=True)


def _body(document: object, text: str, *, bold: bool = False, italic: bool = False, indent: bool = True) -> Paragraph:
    paragraph = document.add_paragraph()  # type: ignore[attr-defined]
    paragraph.alignment = WD_ALIGN_PARAGRAPH.JUSTIFY
    paragraph.paragraph_format.first_line_indent = Cm(1.27) if indent else None
    paragraph.paragraph_format.space_after = Pt(6)
    _line(paragraph, text, bold=bold, italic=italic)
    return paragraph


# --- heading, title ------------------------------------------------------------------------------

def place_of(commune_name: str) -> str:
    """"xã Cát Thành" -> "Cát Thành": the place name in "Cát Thành, ngày …"."""
    for prefix in ("xã ", "phường ", "thị trấn ", "đặc khu "):
        if commune_name.casefold().startswith(prefix):
            return commune_name[len(prefix):].strip()
    return commune_name.strip()


def dated(place: str, moment: datetime) -> str:
    """"Cát Thành, ngày 05 tháng 12 năm 2026": days under 10 and months 1 and 2 with a leading zero."""
    month = f"{moment.month:02d}" if moment.month <= 2 else str(moment.month)
    return f"{place}, ngày {moment.day:02d} tháng {month} năm {moment.year}"


def _issuer(report: Report, commune_name: str) -> tuple[str, str, str]:
    """(the body above the unit, the unit, the report's number and symbol to fill in)."""
    upper_commune = commune_name.upper()
    if report.scope.kind == "commune":
        return "", f"ỦY BAN NHÂN DÂN {upper_commune}", "Số:       /BC-UBND"
    if report.scope.kind == "village":
        return f"UBND {upper_commune}", report.scope.name.upper(), "Số:       /BC-…"
    return "[CƠ QUAN, TỔ CHỨC CẤP TRÊN]", report.scope.name.upper(), "Số:       /BC-…"


def _heading(document: object, report: Report, commune_name: str) -> None:
    parent, unit, symbol = _issuer(report, commune_name)
    table = document.add_table(rows=1, cols=2)  # type: ignore[attr-defined]
    table.alignment = WD_TABLE_ALIGNMENT.CENTER
    left, right = table.rows[0].cells
    left.width, right.width = Cm(6.5), Cm(9.5)
    left.paragraphs[0].paragraph_format.space_after = Pt(0)
    if parent:
        _line(left.paragraphs[0], parent, size=13)
        _centred(left, unit, size=13, bold=True)
    else:
        _line(left.paragraphs[0], unit, size=13, bold=True)
    left.paragraphs[0].alignment = WD_ALIGN_PARAGRAPH.CENTER
    _rule(left, 18)
    _centred(left, symbol, size=13)
    right.paragraphs[0].alignment = WD_ALIGN_PARAGRAPH.CENTER
    right.paragraphs[0].paragraph_format.space_after = Pt(0)
    _line(right.paragraphs[0], "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", size=12, bold=True)
    _centred(right, "Độc lập - Tự do - Hạnh phúc", size=13, bold=True, underline=True)
    _centred(right, "")
    _centred(right, dated(place_of(commune_name), report.made_at), size=14, italic=True)


def _title(document: object, report: Report, commune_name: str) -> None:
    _centred(document, "")
    _centred(document, "BÁO CÁO", size=14, bold=True)
    _centred(document, f"Kết quả thực hiện Phong trào \"Bình dân học vụ số\" năm {report.period.year}",
             size=14, bold=True)
    _rule(document, 24)
    if report.scope.kind == "commune":
        _centred(document, "Kính gửi: [Cơ quan cấp trên nhận báo cáo]", size=14)
    else:
        _centred(document, f"Kính gửi: Ủy ban nhân dân {commune_name} (qua Phòng Văn hóa - Xã hội)", size=14)
    _centred(document, "")


def _unit_phrase(report: Report, commune_name: str) -> str:
    return f"Ủy ban nhân dân {commune_name}" if report.scope.kind == "commune" else report.scope.name


# --- section I, with the figures -----------------------------------------------------------------

def _results(document: object, report: Report, commune_name: str) -> None:
    period, people = report.period, report.people
    _body(document, (
        f"Thực hiện Kế hoạch số {TO_FILL} của Ủy ban nhân dân {commune_name} về triển khai Phong trào "
        f"\"Bình dân học vụ số\", {_unit_phrase(report, commune_name)} báo cáo kết quả thực hiện năm "
        f"{period.year} (từ ngày {period.first_day:%d/%m/%Y} đến ngày {period.last_day:%d/%m/%Y}) như sau:"
    ))
    _body(document, SECTIONS[0], bold=True, indent=False)
    _body(document, "1. Công tác chỉ đạo, tuyên truyền, tổ chức thực hiện", bold=True)
    _body(document, f"{TO_FILL} (các văn bản đã ban hành, hình thức tuyên truyền, lớp hướng dẫn đã tổ chức.)")
    _body(document, "2. Kết quả học kỹ năng số cơ bản trên nền tảng hocvuso", bold=True)
    _body(document, (
        f"a) Số người đăng ký tham gia: {number(people.registered)} người; đã hoàn thành khóa kỹ năng số cơ bản "
        f"({report.core_total} bài): {number(people.finished)} người, đạt "
        f"{percent(share(people.finished, people.registered))} số người đăng ký."
    ))
    lines = [f"{GROUP_NAMES.get(line.group, line.group or '')}: {number(line.finished)}/{number(line.registered)} người"
             + (f", bằng {percent(share(line.finished, line.population))} số người của nhóm "
                f"({number(line.population)} người)" if line.population else "")
             for line in people.groups if line.registered]
    if lines:
        _body(document, "b) Theo nhóm đối tượng: " + "; ".join(lines) + ".")
    for label, reached, whole in indicator_rows(report):
        tail = f"/{number(whole)} ({percent(share(reached, whole))})" if whole is not None else ""
        _body(document, f"- {label}: {number(reached)}{tail}.")
    _body(document, f"- Số người tự khai đã kích hoạt định danh điện tử mức 2 (VNeID): {number(people.vneid)} người.")
    _body(document, "c) Các chỉ tiêu chính:", indent=True)
    _indicator_table(document, report)
    if report.scope.kind == "commune":
        _units_table(document, "d) Theo tổ chức (hoàn thành khóa cơ bản trên số thành viên):",
                     [(row.name, row.finished, row.people) for row in people.organisations])
    if report.scope.kind != "village":
        _units_table(document, "đ) Theo thôn, xóm (hoàn thành khóa cơ bản trên số người đăng ký):",
                     [(row.name, row.finished, row.people) for row in people.villages])
    _offline(document, report)
    _body(document, "4. Đánh giá chung", bold=True)
    _body(document, f"{TO_FILL} (đánh giá mức độ hoàn thành kế hoạch, những cách làm hay.)")


def _offline(document: object, report: Report) -> None:
    """Item 3: the activities held, the people who learned with help and the initiatives, for the unit;
    for the commune its totals (each person once), then each unit that did any of it."""
    offline, whole = report.offline, report.scope.kind == "commune"
    total = offline.total
    _body(document, "3. Hoạt động tại cơ sở, học cùng Tổ công nghệ số cộng đồng, sáng kiến", bold=True)
    _body(document, f"a) Hoạt động đã tổ chức: {activities_sentence(total, whole)}")
    _body(document, f"b) Học cùng Tổ công nghệ số cộng đồng: {helped_sentence(total, whole)}")
    recognised = [line for line in offline.initiatives if line.recognised_in_period]
    named = "; ".join(f"“{line.title}” ({line.unit})" for line in recognised[:SHOWN_INITIATIVES])
    more = (f" và {number(len(recognised) - SHOWN_INITIATIVES)} sáng kiến khác (xem tệp Excel kèm theo)"
            if len(recognised) > SHOWN_INITIATIVES else "")
    _body(document, f"c) Sáng kiến, cách làm hay: {initiatives_sentence(total)}"
                    + (f" Các sáng kiến được công nhận: {named}{more}." if recognised else ""))
    if not whole:
        return
    units = [line for line in offline.units if line.anything]
    if not units:
        return
    _body(document, "d) Theo từng đơn vị (một người tham dự hoặc học cùng ở nhiều đơn vị được tính ở mỗi đơn vị; "
                    "số cộng toàn xã ở trên tính mỗi người một lần):")
    for line in units[:SHOWN_ROWS]:
        _body(document, f"- {line.name}: {unit_sentence(line)}")
    if len(units) > SHOWN_ROWS:
        _body(document, f"(Còn {len(units) - SHOWN_ROWS} đơn vị khác, xem tệp Excel kèm theo.)", italic=True)


def activities_sentence(line: OfflineLine, whole: bool = False) -> str:
    """"3 hoạt động với 145 lượt người tham dự (tuyên truyền: …); 12 thành viên được ghi tên có mặt."."""
    if not line.activities:
        return "trong kỳ chưa ghi nhận hoạt động nào (ghi bằng lệnh /hoatdong)."
    once = ", mỗi người chỉ tính một lần dù có mặt ở nhiều hoạt động, nhiều đơn vị" if whole else ""
    return (f"{number(line.activities)} hoạt động với {number(line.participants)} lượt người tham dự "
            f"({kinds_phrase(line.by_kind)}); {number(line.named_people)} thành viên được ghi tên có mặt{once}.")


def helped_sentence(line: OfflineLine, whole: bool = False) -> str:
    once = " (mỗi người chỉ tính một lần)" if whole else ""
    return (f"{number(line.helped_people)} người đã học cùng thành viên của Tổ trong kỳ{once}, hoàn thành "
            f"{number(line.helped_lessons)} bài học; {number(line.helped_finished)} người hoàn thành khóa kỹ năng "
            "số cơ bản có học cùng Tổ (đã tính trong số người hoàn thành ở mục 2).")


def initiatives_sentence(line: OfflineLine) -> str:
    return (f"{number(line.initiatives_proposed)} sáng kiến được đề xuất trong kỳ, "
            f"{number(line.initiatives_recognised)} sáng kiến được công nhận trong kỳ.")


def unit_sentence(line: OfflineLine) -> str:
    """One unit's line of item 3 d): only what it did."""
    parts = []
    if line.activities:
        parts.append(f"{number(line.activities)} hoạt động với {number(line.participants)} lượt người tham dự "
                     f"({kinds_phrase(line.by_kind)}), {number(line.named_people)} thành viên được ghi tên có mặt.")
    if line.helped_people or line.helped_finished:
        parts.append(f"{number(line.helped_people)} người học cùng Tổ công nghệ số, hoàn thành "
                     f"{number(line.helped_lessons)} bài học; {number(line.helped_finished)} người hoàn thành khóa "
                     "cơ bản có học cùng.")
    if line.initiatives_proposed or line.initiatives_recognised:
        parts.append(initiatives_sentence(line))
    return " ".join(part[0].upper() + part[1:] for part in parts)


def _indicator_table(document: object, report: Report) -> None:
    headers = ["STT", "Chỉ tiêu", "Số đăng ký", "Số đạt", "Tỷ lệ trên số đăng ký", "Số người của nhóm (xã nhập)",
               "Tỷ lệ trên số người của nhóm", "Chỉ tiêu (tỉnh, 2025)", "Đánh giá"]
    rows = [
        [str(item.number), item.label, number(item.registered), number(item.reached),
         percent(item.share_of_registered), number(item.population), percent(item.share_of_population),
         percent(item.target) if item.target is not None else "-", item.verdict]
        for item in indicators(report)
    ]
    _grid(document, headers, rows, size=10, widths=[0.9, 4.2, 1.5, 1.4, 1.6, 1.8, 1.6, 1.5, 1.7])
    _body(document, "Nguồn số liệu: hocvuso; VNeID mức 2 do người học tự khai; số người của nhóm do xã nhập.",
          italic=True)


def _units_table(document: object, caption: str, rows: Sequence[tuple[str, int, int]]) -> None:
    if not rows:
        return
    _body(document, caption)
    shown = [[str(index), name, number(finished), number(people), percent(share(finished, people))]
             for index, (name, finished, people) in enumerate(rows[:SHOWN_ROWS], start=1)]
    _grid(document, ["STT", "Đơn vị", "Hoàn thành", "Đăng ký", "Tỷ lệ"], shown, size=11,
          widths=[1.0, 8.0, 2.2, 2.2, 2.0])
    if len(rows) > SHOWN_ROWS:
        _body(document, f"(Còn {len(rows) - SHOWN_ROWS} đơn vị khác, xem tệp Excel kèm theo.)", italic=True)


def _grid(document: object, headers: Sequence[str], rows: Sequence[Sequence[str]], *, size: int,
          widths: Sequence[float]) -> Table:
    table = document.add_table(rows=1 + len(rows), cols=len(headers))  # type: ignore[attr-defined]
    table.style = "Table Grid"
    table.alignment = WD_TABLE_ALIGNMENT.CENTER
    # Cells straight from each row's XML: python-docx's table.cell(r, c) walks every cell of the table
    # on each call, which made a 30-row table take half a second.
    for row_index, (values, tr) in enumerate(zip([headers, *rows], table._tbl.tr_lst, strict=True)):
        for column, (value, tc) in enumerate(zip(values, tr.tc_lst, strict=True)):
            cell = _Cell(tc, table)
            cell.width = Cm(widths[column])
            paragraph = cell.paragraphs[0]
            paragraph.alignment = WD_ALIGN_PARAGRAPH.LEFT if column == 1 else WD_ALIGN_PARAGRAPH.CENTER
            _line(paragraph, value, size=size, bold=row_index == 0)
    return table


# --- the sections to write, the end --------------------------------------------------------------

def _to_write(document: object, section: str, items: Sequence[str]) -> None:
    _body(document, section, bold=True, indent=False)
    for item in items or [""]:
        if item:
            _body(document, item, bold=True)
        _body(document, TO_FILL)


def _ending(document: object, report: Report, commune_name: str) -> None:
    table = document.add_table(rows=1, cols=2)  # type: ignore[attr-defined]
    left, right = table.rows[0].cells
    left.width, right.width = Cm(7.5), Cm(8.5)
    first = left.paragraphs[0]
    _line(first, "Nơi nhận:", size=12, bold=True, italic=True)
    recipients = ["- Như trên;"] if report.scope.kind != "commune" else [f"- {TO_FILL};"]
    recipients += [f"- {TO_FILL};", "- Lưu: VT."]
    for recipient in recipients:
        paragraph = left.add_paragraph()
        paragraph.paragraph_format.space_after = Pt(0)
        _line(paragraph, recipient, size=11)
    right.paragraphs[0].alignment = WD_ALIGN_PARAGRAPH.CENTER
    signer = "TM. ỦY BAN NHÂN DÂN" if report.scope.kind == "commune" else f"{TO_FILL} (TM./KT.)"
    _line(right.paragraphs[0], signer, size=14, bold=True)
    _centred(right, f"{TO_FILL} CHỨC VỤ", size=14, bold=True)
    for _ in range(3):
        _centred(right, "")
    _centred(right, f"{TO_FILL} Họ và tên", size=14, bold=True)
