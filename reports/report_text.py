"""The words and indicators the report's files share (XLSX, DOCX, chart), so they say the same thing.

The five indicators are the ones provinces report (Bắc Ninh's set; docs/REPORT-GUIDE.md). The
targets are Ninh Bình's for 2025, shown for reference; an indicator is judged against its target only
when the commune entered the group's population, since a share of the registered says nothing about
the people who never registered.
"""

from __future__ import annotations

from dataclasses import dataclass

from content.schema import GROUP_LABELS, CitizenGroup
from storage.models import ACTIVITY_KINDS, ORGANISATION_KINDS
from storage.report import GroupLine, InitiativeLine, KindCount, Report, share

GROUP_NAMES: dict[str | None, str] = {
    **{str(group): label for group, label in GROUP_LABELS.items()},
    None: "Chưa khai nhóm",
}
KIND_NAMES = ORGANISATION_KINDS
NO_HEAD = "(chưa có tên chủ hộ)"
SOURCES_NOTE = ("Nguồn: hocvuso (bài học và bài kiểm tra trên Telegram, Zalo); VNeID mức 2 do người học tự khai; "
                "số dân do xã nhập trong danh bạ (ô trống là chưa có số).")
OFFLINE_SOURCES = ("Nguồn: đơn vị tự ghi trên hocvuso (hoạt động: /hoatdong; sáng kiến: /sangkien); học cùng: bài học "
                   "và bài kiểm tra làm bên cạnh thành viên Tổ công nghệ số cộng đồng, trên hocvuso.")
UNIT_KINDS = {"commune": "Cấp xã", "organisation": "Tổ chức", "village": "Thôn, xóm"}
WAITING = "Chờ xét"
INDICATORS = (
    "Hoàn thành khóa cơ bản: đã học xong và làm đạt bài kiểm tra của mọi bài trong khóa kỹ năng số cơ bản "
    "(khung QĐ 757/QĐ-BKHCN ngày 29/4/2025) trước khi hết kỳ.",
    "Người đăng ký: người đã đồng ý tham gia trên hocvuso trước khi hết kỳ; người đã xóa dữ liệu không được tính.",
    "Tỷ lệ trên số người của nhóm chỉ có khi xã đã nhập số người của nhóm đó.",
    "Người trưởng thành: người dân, cán bộ công chức viên chức và người lao động doanh nghiệp; người chưa khai "
    "nhóm không được tính vào chỉ tiêu nào.",
)


def report_title(report: Report) -> str:
    return f'Kết quả thực hiện Phong trào "Bình dân học vụ số" năm {report.period.year}: {report.scope.name}'


def period_line(report: Report) -> str:
    period = report.period
    return (f"Kỳ báo cáo: từ ngày {period.first_day:%d/%m/%Y} đến ngày {period.last_day:%d/%m/%Y}. "
            f"Số liệu lấy lúc {report.made_at:%H:%M} ngày {report.made_at:%d/%m/%Y}.")


def household_label(household_id: int) -> str:
    return f"Hộ số {household_id}"


def number(value: int | None) -> str:
    """12.345 (the Vietnamese thousands separator); an unknown value is a dash."""
    return "-" if value is None else f"{value:,}".replace(",", ".")


def percent(value: float | None) -> str:
    """45,5% (one decimal, comma); an unknown share is a dash."""
    return "-" if value is None else f"{value * 100:.1f}%".replace(".", ",")


# --- the five indicators -------------------------------------------------------------------------

@dataclass(frozen=True)
class Indicator:
    number: int
    label: str
    reached: int  # people who meet it
    registered: int  # of the registered people it is about
    population: int | None  # the commune's figure for them, if entered
    target: float | None  # Ninh Bình 2025, for reference

    @property
    def share_of_registered(self) -> float | None:
        return share(self.reached, self.registered)

    @property
    def share_of_population(self) -> float | None:
        return share(self.reached, self.population)

    @property
    def verdict(self) -> str:
        if self.target is None:
            return "Không có chỉ tiêu"
        if self.share_of_population is None:
            return "Chưa có số người của nhóm"
        return "Đạt" if self.share_of_population >= self.target else "Chưa đạt"


def indicators(report: Report) -> list[Indicator]:
    """The five indicators of the unit, in the order they are reported."""
    groups = {line.group: line for line in report.people.groups}

    def group(member: CitizenGroup) -> GroupLine:
        return groups.get(str(member)) or GroupLine(str(member), 0, 0, 0, None)

    def finished(number_: int, label: str, member: CitizenGroup, target: float | None) -> Indicator:
        line = group(member)
        return Indicator(number_, label, line.finished, line.registered, line.population, target)

    adults = [group(member) for member in (CitizenGroup.RESIDENT, CitizenGroup.OFFICIAL, CitizenGroup.WORKER)]
    adult_population = [line.population for line in adults]
    return [
        finished(1, "Tỷ lệ cán bộ, công chức, viên chức có kỹ năng số cơ bản", CitizenGroup.OFFICIAL, 0.8),
        finished(2, "Tỷ lệ học sinh, sinh viên được trang bị kỹ năng số cơ bản", CitizenGroup.STUDENT, 1.0),
        finished(3, "Tỷ lệ người dân trưởng thành có kỹ năng số cơ bản", CitizenGroup.RESIDENT, 0.8),
        Indicator(
            4, "Tỷ lệ người trưởng thành đã kích hoạt định danh điện tử mức 2 (tự khai)",
            sum(line.vneid for line in adults), sum(line.registered for line in adults),
            None if None in adult_population else sum(p for p in adult_population if p is not None), 0.5,
        ),
        finished(5, "Tỷ lệ người lao động doanh nghiệp có kỹ năng số cơ bản", CitizenGroup.WORKER, None),
    ]


def indicator_rows(report: Report) -> list[tuple[str, int, int | None]]:
    """The unit's other figures: (label, count, out of how many or None)."""
    people = report.people
    return [
        ("Hộ gia đình có người hoàn thành khóa cơ bản", people.households_reached, people.households_known),
        ("Lượt hoàn thành bài học trong kỳ", people.lessons_finished, None),
        ("Lượt làm đạt bài kiểm tra trong kỳ", people.quizzes_passed, None),
        ("Số người có hoạt động học trong kỳ", people.people_active, people.registered),
    ]


# --- what units do offline -----------------------------------------------------------------------

def kind_label(kind: str) -> str:
    """"tap-huan" -> "Lớp/buổi tập huấn" (a kind no longer offered keeps its key)."""
    return ACTIVITY_KINDS.get(kind, kind)


def kinds_phrase(kinds: tuple[KindCount, ...]) -> str:
    """"tuyên truyền: 2 hoạt động, 80 lượt người; hội thi: 1 hoạt động, 40 lượt người"."""
    return "; ".join(f"{_lower_first(kind_label(line.kind))}: {number(line.activities)} hoạt động, "
                     f"{number(line.participants)} lượt người" for line in kinds)


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def initiative_status(line: InitiativeLine) -> str:
    return f"Đã công nhận ngày {line.recognised_on:%d/%m/%Y}" if line.recognised_on is not None else WAITING


def offline_rows(report: Report) -> list[tuple[str, int]]:
    """What the unit did offline, for the summary: (label, count); people each counted once."""
    total = report.offline.total
    return [
        ("Hoạt động tại cơ sở đã tổ chức trong kỳ", total.activities),
        ("Lượt người tham dự các hoạt động", total.participants),
        ("Thành viên được ghi tên có mặt (mỗi người một lần)", total.named_people),
        ("Người học cùng Tổ công nghệ số cộng đồng trong kỳ", total.helped_people),
        ("Bài học hoàn thành khi học cùng Tổ công nghệ số trong kỳ", total.helped_lessons),
        ("Hoàn thành khóa cơ bản có học cùng Tổ công nghệ số", total.helped_finished),
        ("Sáng kiến, cách làm hay được đề xuất trong kỳ", total.initiatives_proposed),
        ("Sáng kiến, cách làm hay được công nhận trong kỳ", total.initiatives_recognised),
    ]
