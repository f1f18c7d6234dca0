"""The commune's own contacts (`local-contacts.yaml`) and the `{lien-he:…}` placeholders of lesson cards.

Phone numbers, addresses and opening hours are data that commune staff set; nothing here invents them.
A card writes `{lien-he:cong-an-xa}` where a contact belongs. When the lessons are loaded the placeholder
becomes the contact as staff set it, or, while staff have not set it yet, says where to ask instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError, field_validator

from content.problems import ContentProblem

CONTACTS_FILE = "local-contacts.yaml"
NAME_MAX = 80
ADDRESS_MAX = 150
HOURS_MAX = 100
PLACEHOLDER = re.compile(r"\{([^{}\n]*)\}")
CONTACT_PREFIX = "lien-he:"

# What a phone number may look like once spaces, dots and dashes are taken out: a Vietnamese number of
# 10 or 11 digits starting with 0 (a mobile, or a landline with its area code), a three-digit short
# number such as 113, or a 1800/1900 hotline.
_PHONE = re.compile(r"^(0\d{9,10}|1\d{2}|(1800|1900)(\d{4}|\d{6}))$")
_SEPARATORS = re.compile(r"[\s.\-]")


@dataclass(frozen=True)
class KnownContact:
    """A contact a lesson may name: its usual name, and where to ask while staff have not set it."""

    name: str
    ask: str


KNOWN_CONTACTS: dict[str, KnownContact] = {
    "to-cong-nghe-so": KnownContact(
        "Tổ công nghệ số cộng đồng", "hỏi trưởng thôn xem ai trong tổ ở thôn mình"),
    "trung-tam-hanh-chinh-cong": KnownContact(
        "Trung tâm Phục vụ hành chính công xã", "hỏi trưởng thôn địa chỉ và giờ làm việc"),
    "cong-an-xa": KnownContact(
        "Công an xã", "hỏi số điện thoại, địa chỉ tại Trung tâm Phục vụ hành chính công xã; khẩn cấp thì gọi 113"),
}


def _line(max_length: int) -> type[str]:
    return Annotated[str, StringConstraints(strip_whitespace=True, max_length=max_length, pattern=r"^[^\n\r]*$")]


class Contact(BaseModel):
    """One contact as staff set it; an empty value means "not set yet"."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=NAME_MAX,
                                           pattern=r"^[^\n\r]*$")]
    phone: str | None = None
    address: _line(ADDRESS_MAX) | None = None  # type: ignore[valid-type]
    hours: _line(HOURS_MAX) | None = None  # type: ignore[valid-type]

    @field_validator("phone", "address", "hours", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("phone", mode="before")
    @classmethod
    def _phone_format(cls, value: Any) -> Any:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise ValueError("số điện thoại phải là chữ số, đặt trong dấu nháy, ví dụ \"0xxx xxx xxx\"")
        text = str(value).strip()
        digits = _SEPARATORS.sub("", text)
        if digits.startswith("+84"):
            digits = "0" + digits[3:]
        if not _PHONE.match(digits):
            raise ValueError(
                f"số điện thoại {text!r} không đúng dạng: cần 10 hoặc 11 chữ số bắt đầu bằng 0, hoặc số ngắn như 113 "
                "(viết trong dấu nháy để giữ số 0 ở đầu)"
            )
        return text


Contacts = dict[str, Contact]


def unset_contacts() -> Contacts:
    """Every known contact with its usual name and nothing else: what a folder without the file has."""
    return {key: Contact(name=known.name) for key, known in KNOWN_CONTACTS.items()}


def load_contacts(root: Path) -> tuple[Contacts, list[ContentProblem]]:
    """Read `local-contacts.yaml` from `root`; a missing file means no contact is set yet."""
    contacts = unset_contacts()
    path = root / CONTACTS_FILE
    if not path.exists():
        return contacts, []
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        return contacts, [ContentProblem(CONTACTS_FILE, "", f"không đọc được tệp: {exc}")]
    if raw is None:
        return contacts, []
    if not isinstance(raw, dict):
        return contacts, [ContentProblem(CONTACTS_FILE, "", "tệp phải là một bảng khóa: giá trị (mapping)")]
    problems: list[ContentProblem] = []
    for key, value in raw.items():
        if key not in KNOWN_CONTACTS:
            problems.append(ContentProblem(
                CONTACTS_FILE, str(key), f"không có liên hệ mã {key!r}; chỉ dùng: {', '.join(KNOWN_CONTACTS)}"))
            continue
        if value is not None and not isinstance(value, dict):
            problems.append(ContentProblem(CONTACTS_FILE, key, "cần các dòng name, phone, address, hours"))
            continue
        data = dict(value or {})
        if data.get("name") is None or (isinstance(data["name"], str) and not data["name"].strip()):
            data["name"] = KNOWN_CONTACTS[key].name  # the usual name until staff write their own
        try:
            contacts[key] = Contact.model_validate(data)
        except ValidationError as exc:
            problems.extend(
                ContentProblem(CONTACTS_FILE, ".".join([key, *(str(part) for part in error["loc"])]), error["msg"])
                for error in exc.errors()
            )
    return contacts, problems


def render_contact(key: str, contacts: Contacts) -> str:
    """One contact as a lesson shows it; what is not set yet says where to ask instead."""
    contact = contacts.get(key) or Contact(name=KNOWN_CONTACTS[key].name)
    parts = []
    if contact.phone:
        parts.append(f"điện thoại {contact.phone}")
    if contact.address:
        parts.append(f"địa chỉ {contact.address}")
    if contact.hours:
        parts.append(f"giờ làm việc {contact.hours}")
    if not contact.phone and not contact.address:
        parts.append(KNOWN_CONTACTS[key].ask)
    return f"{contact.name}: {'; '.join(parts)}"


def render_placeholders(text: str, contacts: Contacts) -> str:
    """Replace every known `{lien-he:…}` placeholder in `text`; anything else is left as it is."""

    def replace(match: re.Match[str]) -> str:
        key = _contact_key(match.group(1))
        return render_contact(key, contacts) if key is not None else match.group(0)

    return PLACEHOLDER.sub(replace, text)


def _contact_key(inside: str) -> str | None:
    if not inside.startswith(CONTACT_PREFIX):
        return None
    key = inside.removeprefix(CONTACT_PREFIX)
    return key if key in KNOWN_CONTACTS else None


def placeholder_problems(text: str, *, allowed: bool) -> list[str]:
    """What is wrong with the placeholders of one text; `allowed` is False outside the cards."""
    known = ", ".join("{" + CONTACT_PREFIX + key + "}" for key in KNOWN_CONTACTS)
    problems = []
    for match in PLACEHOLDER.finditer(text):
        if _contact_key(match.group(1)) is None:
            problems.append(f"chỗ thay thế {match.group(0)} không có; dùng được: {known}")
        elif not allowed:
            problems.append(f"chỗ thay thế {match.group(0)} chỉ dùng được trong thẻ bài (cards)")
    rest = PLACEHOLDER.sub("", text)
    if "{" in rest or "}" in rest:
        problems.append(f"dấu ngoặc nhọn {{ }} chỉ dùng để ghi chỗ thay thế, ví dụ {{{CONTACT_PREFIX}cong-an-xa}}; "
                        "hãy kiểm tra dấu mở và dấu đóng")
    return problems


def unset_names(contacts: Contacts) -> list[str]:
    """Contacts staff have not given a phone number or address yet."""
    return [contact.name for contact in contacts.values() if not contact.phone and not contact.address]
