"""PNG charts of the figures leaders see in chat, sized to be read on a phone.

Drawn on matplotlib's Figure and Agg canvas directly, never through pyplot: pyplot keeps global state
and is not thread-safe, and charts render on the read threads. Every text is drawn in DejaVu Sans
(shipped with matplotlib, it has every Vietnamese letter) with math parsing off, so a name with "$"
in it is drawn as typed. Characters the font lacks (emoji in a typed name) become "?" before drawing:
matplotlib would otherwise draw an empty box and warn on every render.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from io import BytesIO

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties, findfont, get_font

from storage.figures import CommuneFigures, MemberProgress, UnitFigures
from storage.report import Report

FONT = "DejaVu Sans"
DPI = 100
WIDTH = 900  # px: sharp on a phone once the messenger scales it to the screen
RIGHT = 30  # px of margin right of the bars
TITLE_SIZE, LABEL_SIZE, VALUE_SIZE, NOTE_SIZE = 22, 17, 16, 15
SHOWN_UNITS = 15  # per panel of the commune chart; a note counts the rest
UNIT_NAME_SIZE = 15  # the commune chart's labels: unit names are long
MARGIN = 24  # px left of titles and notes
LABELS = 340  # px left of the bars, for their labels
GAP = 10  # px between a label and its bar

INK, MUTED, BACKGROUND = "#1a202c", "#4a5568", "#edf2f7"
COLOURS = {"people": "#4a6fa5", "active": "#dd8a2e", "finished": "#2f855a", "vneid": "#6b46c1"}


# --- text ----------------------------------------------------------------------------------------

@cache
def _glyphs() -> frozenset[int]:
    """The code points DejaVu Sans can draw."""
    path = findfont(FontProperties(family=FONT), fallback_to_default=False)
    return frozenset(get_font(path).get_charmap())


def printable(text: str) -> str:
    """`text` composed (NFC, so a name typed with combining accents is drawn as single letters) with
    every character the font lacks replaced by "?"."""
    glyphs = _glyphs()
    return "".join(char if char == "\n" or ord(char) in glyphs else "?"
                   for char in unicodedata.normalize("NFC", text))


def _fit(figure: Figure, text: str, width: float, size: int, weight: str = "normal") -> str:
    """`text` made printable and, when wider than `width` px, cut to fit with "…" (measured, not
    counted: "HỘI LIÊN HIỆP" is half as wide again as "hội liên hiệp")."""
    renderer = figure.canvas.get_renderer()  # type: ignore[attr-defined]
    font = FontProperties(family=FONT, size=size, weight=weight)

    def fits(candidate: str) -> bool:
        return renderer.get_text_width_height_descent(candidate, font, ismath=False)[0] <= width

    text = printable(text)
    if fits(text):
        return text
    shortest, longest = 0, len(text) - 1  # characters kept before the "…"
    while shortest < longest:
        middle = (shortest + longest + 1) // 2
        shortest, longest = (middle, longest) if fits(text[:middle].rstrip() + "…") else (shortest, middle - 1)
    return text[:shortest].rstrip() + "…"


def number(value: int) -> str:
    """An integer the Vietnamese way: 12.345."""
    return f"{value:,}".replace(",", ".")


def percent(part: int, whole: int) -> str:
    """A share in whole percent; a small non-zero share reads "<1%", not "0%"."""
    if whole <= 0 or part <= 0:
        return "0%"
    share = part * 100 / whole
    return "<1%" if share < 0.5 else f"{share:.0f}%"


def _text(target: Figure | Axes, x: float, y: float, text: str, **style: object) -> None:
    target.text(x, y, printable(text), fontfamily=FONT, parse_math=False, **style)  # type: ignore[arg-type]


# --- layout --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Bar:
    label: str
    value: float  # the bar's length, on a scale from 0 to `scale`
    text: str  # written on or after the bar
    colour: str


def _figure(height: int) -> Figure:
    figure = Figure(figsize=(WIDTH / DPI, height / DPI), dpi=DPI, facecolor="white")
    FigureCanvasAgg(figure)  # attaches itself: texts are measured (_fit) and drawn on it
    return figure


def _axes(figure: Figure, height: int, top: int, rows: int, row_height: int, left: int) -> Axes:
    """Axes placed in pixels, without axis or frame (no tight_layout: measuring every text again
    costs more than drawing them)."""
    box_height = rows * row_height
    axes = figure.add_axes((left / WIDTH, 1 - (top + box_height) / height, (WIDTH - left - RIGHT) / WIDTH,
                            box_height / height))
    axes.set_axis_off()
    return axes


def _bars(axes: Axes, bars: Sequence[_Bar], scale: float, *, label_size: int = LABEL_SIZE) -> None:
    """Horizontal bars, first at the top, each labelled on its left and with its text inside (long
    bars) or after it. Labels are plain texts, not tick labels: ticks cost a third of the drawing."""
    positions = list(range(len(bars)))[::-1]
    axes.barh(positions, [scale] * len(bars), color=BACKGROUND, height=0.72)
    axes.barh(positions, [bar.value for bar in bars], color=[bar.colour for bar in bars], height=0.72)
    axes.set_xlim(0, scale)
    axes.set_ylim(-0.6, len(bars) - 0.4)
    figure = axes.get_figure(root=True)
    assert isinstance(figure, Figure)
    gap = GAP / (WIDTH - LABELS - RIGHT) * scale
    for position, bar in zip(positions, bars, strict=True):
        label = _fit(figure, bar.label, LABELS - MARGIN - GAP, label_size)
        _text(axes, -gap, position, label, ha="right", va="center", fontsize=label_size, color=INK)
        inside = bar.value >= 0.5 * scale
        _text(axes, bar.value - gap if inside else bar.value + gap, position, bar.text,
              ha="right" if inside else "left", va="center", fontsize=VALUE_SIZE, fontweight="bold",
              color="white" if inside else INK)


def _title(figure: Figure, height: int, title: str) -> None:
    title = _fit(figure, title, WIDTH - 2 * MARGIN, TITLE_SIZE, "bold")
    _text(figure, MARGIN / WIDTH, 1 - 22 / height, title, ha="left", va="top", fontsize=TITLE_SIZE,
          fontweight="bold", color=INK)


def _notes(figure: Figure, height: int, top: int, lines: Sequence[str]) -> None:
    for index, line in enumerate(lines):
        line = _fit(figure, line, WIDTH - 2 * MARGIN, NOTE_SIZE)
        _text(figure, MARGIN / WIDTH, 1 - (top + index * 30) / height, line, ha="left", va="top",
              fontsize=NOTE_SIZE, color=MUTED)


def _png(figure: Figure) -> bytes:
    buffer = BytesIO()
    try:
        figure.canvas.print_png(buffer)  # type: ignore[attr-defined]
    finally:
        figure.clear()  # drop the artists now rather than at the next garbage collection
    return buffer.getvalue()


# --- charts --------------------------------------------------------------------------------------

def unit_chart(title: str, figures: UnitFigures) -> bytes:
    """An organisation's or a village's four figures, each a bar with its share of the unit's people."""
    people = figures.people
    if figures.confirmed is None:
        head = _Bar("Người dân tham gia", people, f"{number(people)} người", COLOURS["people"])
    else:
        head = _Bar("Thành viên", people, f"{number(people)} ({number(figures.confirmed)} đã xác nhận)",
                    COLOURS["people"])

    def share(label: str, count: int, colour: str) -> _Bar:
        return _Bar(label, count, f"{number(count)} · {percent(count, people)}", colour)

    bars = [
        head,
        share("Hoạt động 30 ngày qua", figures.active_30_days, COLOURS["active"]),
        share("Hoàn thành khóa cơ bản", figures.finished_core, COLOURS["finished"]),
        share("Có VNeID mức 2", figures.vneid_level2, COLOURS["vneid"]),
    ]
    notes = []
    if figures.average_score is not None:
        notes.append(f"Điểm trung bình các bài kiểm tra: {figures.average_score:.0f}%")
    if figures.households_known is not None and figures.households_reached is not None:
        notes.append(f"Hộ có người học xong khóa cơ bản: {number(figures.households_reached)}/"
                     f"{number(figures.households_known)} hộ "
                     f"({percent(figures.households_reached, figures.households_known)})")
    notes.append("VNeID mức 2 theo lời người học tự khai.")
    height = 560
    figure = _figure(height)
    _title(figure, height, title)
    _bars(_axes(figure, height, top=80, rows=len(bars), row_height=90, left=LABELS), bars, max(people, 1))
    _notes(figure, height, top=height - 30 * len(notes) - 16, lines=notes)
    return _png(figure)


@dataclass(frozen=True)
class _Share:
    name: str
    finished: int
    people: int

    @property
    def order(self) -> tuple[bool, float]:
        """Units with people first, the highest share first; a stable sort keeps ties in the given order."""
        return (self.people == 0, -(self.finished / self.people if self.people else 0.0))


def commune_chart(title: str, commune: CommuneFigures) -> bytes:
    """The share who finished the core course, per organisation and per village, best first."""
    totals = commune.totals
    return _share_panels(title, [
        f"Hoàn thành khóa cơ bản: {number(totals.finished_core)}/{number(totals.people)} người "
        f"({percent(totals.finished_core, totals.people)})"
    ], [
        ("Tổ chức", "tổ chức", [_Share(row.name, row.finished_core, row.people) for row in commune.organisations]),
        ("Thôn, xóm", "thôn, xóm", [_Share(row.name, row.finished_core, row.people) for row in commune.villages]),
    ])


SHORT_GROUPS = {"nguoi-dan": "Người dân", "hoc-sinh-sinh-vien": "Học sinh, sinh viên",
                "can-bo-cong-chuc": "Cán bộ, CCVC", "nguoi-lao-dong-doanh-nghiep": "Lao động doanh nghiệp",
                None: "Chưa khai nhóm"}
"""The target groups, short enough for a chart's labels."""


def report_chart(title: str, report: Report) -> bytes:
    """The yearly report's figures: who finished the core course by target group, then by village (or,
    for a village, by organisation), as shares of the registered."""
    people = report.people
    groups = [_Share(SHORT_GROUPS.get(line.group, line.group or ""), line.finished, line.registered)
              for line in people.groups if line.registered or line.group is not None]
    panels = [("Theo nhóm đối tượng", "nhóm", groups)]
    if report.scope.kind == "village":
        panels.append(("Theo tổ chức", "tổ chức",
                       [_Share(row.name, row.finished, row.people) for row in people.organisations]))
    else:
        panels.append(("Theo thôn, xóm", "thôn, xóm",
                       [_Share(row.name, row.finished, row.people) for row in people.villages]))
    notes = [f"Hoàn thành khóa cơ bản: {number(people.finished)}/{number(people.registered)} người đăng ký "
             f"({percent(people.finished, people.registered)})"]
    if people.households_known:
        notes.append(f"Hộ có người hoàn thành: {number(people.households_reached)}/{number(people.households_known)} "
                     f"hộ ({percent(people.households_reached, people.households_known)})")
    return _share_panels(title, notes, panels, keep_order=(True, False))


def _share_panels(title: str, notes: Sequence[str], panels: Sequence[tuple[str, str, list[_Share]]],
                  keep_order: Sequence[bool] = ()) -> bytes:
    """Panels of shares, best first unless `keep_order` says a panel keeps its own order; each draws
    only its first SHOWN_UNITS (a longer list is unreadable on a phone) and a note counts the rest."""
    row_height, heading, gap = 40, 46, 64
    sizes = [max(1, min(len(shares), SHOWN_UNITS)) for _, _, shares in panels]
    top = 90 + 30 * len(notes)
    height = top + 30 + sum(heading + size * row_height + gap for size in sizes)
    figure = _figure(height)
    _title(figure, height, title)
    _notes(figure, height, 62, notes)
    for index, ((heading_text, noun, shares), size) in enumerate(zip(panels, sizes, strict=True)):
        _text(figure, MARGIN / WIDTH, 1 - top / height, heading_text, ha="left", va="top", fontsize=LABEL_SIZE + 1,
              fontweight="bold", color=INK)
        axes = _axes(figure, height, top=top + heading, rows=size, row_height=row_height, left=LABELS)
        ordered = shares if index < len(keep_order) and keep_order[index] else sorted(shares, key=lambda s: s.order)
        shown = ordered[:SHOWN_UNITS]
        if shown:
            _bars(axes, [_Bar(share.name, share.finished / share.people * 100 if share.people else 0,
                              f"{percent(share.finished, share.people)} ({number(share.finished)}/"
                              f"{number(share.people)})" if share.people else "chưa có ai đăng ký",
                              COLOURS["finished"]) for share in shown], 100,
                  label_size=UNIT_NAME_SIZE)
        else:
            _notes(figure, height, top + heading + 6, [f"Chưa có {noun} nào."])
        top += heading + size * row_height
        if len(shares) > SHOWN_UNITS:
            _notes(figure, height, top + 6, [f"… và {number(len(shares) - SHOWN_UNITS)} {noun} khác, "
                                             "xem trong bảng số liệu."])
        top += gap
    return _png(figure)


def household_chart(title: str, members: Sequence[MemberProgress], core_total: int, *, hidden: int = 0) -> bytes:
    """Core lessons finished by each named member of a household; `hidden` members are only counted."""
    row_height = 64
    rows = max(1, len(members))
    notes = [f"{number(hidden)} người trong hộ chưa đồng ý hiện tên nên không có trong biểu đồ."] if hidden else []
    height = 90 + rows * row_height + 30 + 30 * len(notes) + 16
    figure = _figure(height)
    _title(figure, height, title)
    axes = _axes(figure, height, top=90, rows=rows, row_height=row_height, left=LABELS)
    scale = max(core_total, 1)
    if members:
        _bars(axes, [_Bar(member.name or "(chưa ghi tên)", min(member.core_finished, scale),
                          f"{member.core_finished}/{core_total} bài", COLOURS["finished"])
                     for member in members], scale)
    else:
        _notes(figure, height, 90 + 16, ["Chưa có ai trong hộ đồng ý hiện tên."])
    _notes(figure, height, top=height - 30 * len(notes) - 16, lines=notes)
    return _png(figure)
