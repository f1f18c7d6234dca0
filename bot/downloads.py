"""Short-lived download links for files a channel cannot send (Zalo: reports, certificates, charts).

A link is `<HOCVUSO_PUBLIC_URL>/tai/<token>`, served by `bot/web.py`. The token is
`<id>.<expires>.<signature>`:
- `id`: 144 random bits (`secrets.token_urlsafe(18)`, 24 characters), the stored file's name, so a
  link cannot be guessed and nothing a person typed ever becomes a path;
- `expires`: Unix seconds; from then on the link is refused, whatever is still on disk;
- `signature`: HMAC-SHA256 over both, base64url, compared in constant time as text, so no character of
  the token can change without the token being refused.
An altered, malformed, expired or unknown token gets the same answer (None here, one 404 page there).

Each file is one file in the folder: a JSON line (the name it is offered under, its expiry) and then
the bytes, written under a temporary name and renamed, so a reader never sees half a file. The key is
HOCVUSO_LINK_SECRET, or a random one made once and kept in `<folder>/.key` (mode 0600), so links
survive a restart. Files live on this host's disk: a link works only on the host that made it.
Disk work runs in a thread, off the event loop. Neither a token nor a file name is logged here.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

if TYPE_CHECKING:
    from bot.settings import Settings

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]

ROUTE = "/tai/"
ID_BYTES = 18  # 144 bits: 24 base64url characters without padding
ID = re.compile(r"[A-Za-z0-9_-]{24}", re.ASCII)
TOKEN = re.compile(r"([A-Za-z0-9_-]{24})\.([0-9]{1,12})\.([A-Za-z0-9_-]{43})", re.ASCII)
TEMPORARY = re.compile(r"[A-Za-z0-9_-]{24}\.([0-9]{1,12})\.tmp", re.ASCII)
# Longer than any token this module makes (82 characters); nothing longer is looked at.
MAX_TOKEN_LENGTH = 300
KEY_FILE = ".key"
KEY_BYTES = 32
SECRET_MIN_BYTES = 32
HEADER_LIMIT = 4096
# What is signed starts with this, so the key signs nothing else by accident.
DOMAIN = b"hocvuso/tai/v1\n"

NAME_MAX = 100  # characters of the offered name, extension included
DEFAULT_NAME = "tep"
FORBIDDEN_IN_NAME = set('<>:"/\\|?*')  # not allowed in a Windows file name, and '/' nowhere
CONTENT_TYPES = {
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "pdf": "application/pdf",
    "png": "image/png",
    "csv": "text/csv; charset=utf-8",
}
OCTET_STREAM = "application/octet-stream"

FOLDER_FAILED = ("Không tạo hoặc ghi được thư mục tệp tải về {folder} (HOCVUSO_DOWNLOADS_DIR): {reason}; "
                 "hãy cho người chạy hocvuso quyền ghi, hoặc chọn thư mục khác.")
KEY_BROKEN = ("Tệp khóa {file} của đường dẫn tải tệp bị hỏng: hãy xóa nó (hocvuso tạo khóa mới, các đường dẫn "
              "đã gửi hết hiệu lực) hoặc đặt HOCVUSO_LINK_SECRET.")


class DownloadsError(Exception):
    """The downloads folder or its key cannot be used: the message is one Vietnamese line naming the setting."""


@dataclass(frozen=True)
class Published:
    """A file offered by link. `path` holds the token: never log it (it is kept out of repr)."""

    path: str = field(repr=False)
    expires_at: datetime
    file_name: str


class Downloads:
    """Files kept for a while and handed out by signed, expiring, unguessable links."""

    def __init__(self, directory: Path, secret: bytes, clock: Clock, ttl: timedelta) -> None:
        if len(secret) < SECRET_MIN_BYTES:
            raise ValueError(f"the link key needs at least {SECRET_MIN_BYTES} bytes")
        if ttl <= timedelta(0):
            raise ValueError("a link must live for some time")
        self.directory = directory
        self._secret = secret
        self.clock = clock
        self.ttl = ttl

    def __repr__(self) -> str:
        return f"Downloads({str(self.directory)!r}, ttl={self.ttl})"  # never the key

    # --- the links ---------------------------------------------------------------------------------

    @staticmethod
    def url(public_url: str, published: Published) -> str:
        """The full link: HOCVUSO_PUBLIC_URL (settings.public_url) and the published path."""
        return public_url.rstrip("/") + published.path

    async def publish(self, file_name: str, data: bytes) -> Published:
        """Keep `data` for the link's lifetime and give the link; `file_name` is only offered, never a path."""
        name = safe_file_name(file_name)
        expires = int((self._now() + self.ttl).timestamp())
        file_id = secrets.token_urlsafe(ID_BYTES)
        await asyncio.to_thread(self._write, file_id, name, expires, bytes(data))
        token = f"{file_id}.{expires}.{self._sign(file_id, str(expires))}"
        return Published(path=ROUTE + token, expires_at=datetime.fromtimestamp(expires, UTC), file_name=name)

    async def open(self, token: str) -> tuple[str, bytes] | None:
        """(file name, bytes) for a good link; None for an altered, malformed, expired or unknown one."""
        checked = self._check(token)
        if checked is None:
            return None
        file_id, expires = checked
        stored = await asyncio.to_thread(self._read, file_id)
        if stored is None or stored[1] != expires:  # the file belongs to exactly this link
            return None
        return stored[0], stored[2]

    async def prune(self) -> int:
        """Delete the files whose links have expired (and writes a crash left behind); how many were deleted."""
        return await asyncio.to_thread(self._prune, self._now().timestamp())

    # --- inside ------------------------------------------------------------------------------------

    def _now(self) -> datetime:
        now = self.clock()
        if now.tzinfo is None:
            raise ValueError("the clock must give aware datetimes")
        return now

    def _sign(self, file_id: str, expires: str) -> str:
        message = DOMAIN + f"{file_id}.{expires}".encode("ascii")
        digest = hmac.new(self._secret, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")

    def _check(self, token: str) -> tuple[str, int] | None:
        if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
            return None
        match = TOKEN.fullmatch(token)
        if match is None:
            return None
        file_id, expires, signature = match.groups()
        # Compared as text: base64's last character has spare bits, so two spellings can decode alike.
        if not hmac.compare_digest(self._sign(file_id, expires), signature):
            return None
        if self._now().timestamp() >= int(expires):
            return None
        return file_id, int(expires)

    def _write(self, file_id: str, name: str, expires: int, data: bytes) -> None:
        prepare_directory(self.directory)
        header = json.dumps({"name": name, "expires": expires}, ensure_ascii=True).encode("ascii") + b"\n"
        temporary = self.directory / f"{file_id}.{expires}.tmp"
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
        try:
            with os.fdopen(descriptor, "wb") as out:
                out.write(header)
                out.write(data)
            os.replace(temporary, self.directory / file_id)
        except BaseException:
            with contextlib.suppress(OSError):
                temporary.unlink()
            raise

    def _read(self, file_id: str) -> tuple[str, int, bytes] | None:
        try:
            with (self.directory / file_id).open("rb") as stored:
                header = read_header(stored.readline(HEADER_LIMIT))
                if header is None:
                    return None
                return header[0], header[1], stored.read()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None

    def _prune(self, now: float) -> int:
        removed = 0
        try:
            entries = list(os.scandir(self.directory))
        except FileNotFoundError:
            return 0
        for entry in entries:
            name = entry.name
            if ID.fullmatch(name):
                try:
                    with open(entry.path, "rb") as stored:
                        header = read_header(stored.readline(HEADER_LIMIT))
                except FileNotFoundError:
                    continue
                except OSError:
                    log.warning("downloads: could not read a stored file while pruning")
                    continue
                # A file without its header can never be served: it goes too.
                gone = header is None or now >= header[1]
            elif (temporary := TEMPORARY.fullmatch(name)) is not None:
                gone = now >= int(temporary.group(1))  # a write that never finished, by a process now gone
            else:
                continue  # the key, and anything the operator put here
            if gone:
                try:
                    os.unlink(entry.path)
                except FileNotFoundError:
                    continue  # another process pruned it first
                except OSError:
                    log.warning("downloads: could not delete an expired file; tried again at the next prune")
                    continue
                removed += 1
        return removed


def read_header(line: bytes) -> tuple[str, int] | None:
    """(name, expires) from a stored file's first line, or None if it is not one."""
    if not line.endswith(b"\n"):
        return None
    try:
        meta = json.loads(line)
    except ValueError:
        return None
    if not isinstance(meta, dict):
        return None
    name, expires = meta.get("name"), meta.get("expires")
    if not isinstance(name, str) or type(expires) is not int:
        return None
    return name, expires


# --- the key and the folder ------------------------------------------------------------------------

def prepare_directory(directory: Path) -> None:
    """The folder, made when missing (0700: only the user running hocvuso reads the files)."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)


def load_key(directory: Path) -> bytes:
    """The link key kept in `<directory>/.key`, made (random, 256 bits, mode 0600) the first time.

    Two processes starting together on an empty folder agree on one key: each writes its own under a
    temporary name and links it to `.key`, which only the first can do; the other reads the first's.
    """
    prepare_directory(directory)
    path = directory / KEY_FILE
    with contextlib.suppress(FileNotFoundError):
        return read_key(path)
    key = secrets.token_bytes(KEY_BYTES)
    temporary = directory / f".key-{secrets.token_hex(8)}.tmp"
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="ascii") as out:
            out.write(key.hex() + "\n")
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(temporary, path)  # atomic, and never over a key another process made first
        except FileExistsError:
            return read_key(path)
    finally:
        with contextlib.suppress(OSError):
            temporary.unlink()
    return key


def read_key(path: Path) -> bytes:
    try:
        text = path.read_text(encoding="ascii").strip()
        key = bytes.fromhex(text)
    except (UnicodeDecodeError, ValueError):
        raise DownloadsError(KEY_BROKEN.format(file=path)) from None
    if len(key) < KEY_BYTES:
        raise DownloadsError(KEY_BROKEN.format(file=path))
    if os.name == "posix" and path.stat().st_mode & 0o077:
        os.chmod(path, 0o600)  # a key others could read would let them make links
        log.warning("downloads: the link key file was readable by others; it is now 0600")
    return key


async def build_downloads(settings: Settings, clock: Clock) -> Downloads:
    """Downloads as the settings say: HOCVUSO_DOWNLOADS_DIR, HOCVUSO_LINK_SECRET (or the kept key),
    HOCVUSO_LINK_HOURS. A folder that cannot be made or written raises DownloadsError (one line)."""
    directory = settings.downloads_dir
    try:
        if settings.link_secret is not None:
            await asyncio.to_thread(prepare_directory, directory)
            secret = settings.link_secret.get_secret_value().encode("utf-8")
        else:
            secret = await asyncio.to_thread(load_key, directory)
    except OSError as exc:
        reason = "không có quyền ghi" if isinstance(exc, PermissionError) else "đường dẫn không dùng được"
        raise DownloadsError(FOLDER_FAILED.format(folder=directory.absolute(), reason=reason)) from None
    return Downloads(directory, secret, clock, timedelta(hours=settings.link_hours))


# --- what the web route sends ----------------------------------------------------------------------

def safe_file_name(name: str) -> str:
    """The name a file is offered under: the last part of a path, printable, at most 100 characters."""
    name = unicodedata.normalize("NFC", name).replace("\\", "/").rsplit("/", 1)[-1]
    kept = []
    for char in name:
        category = unicodedata.category(char)
        if category.startswith("Z") or char in "\t\n\r":
            kept.append(" ")
        elif category.startswith("C"):  # control, format (bidi overrides), unassigned: dropped
            continue
        else:
            kept.append("_" if char in FORBIDDEN_IN_NAME else char)
    name = " ".join("".join(kept).split()).rstrip(".")  # Windows drops trailing dots; a leading one hides a file
    stem, dot, extension = name.rpartition(".")
    if not (dot and extension.isascii() and extension.isalnum() and len(extension) <= 10):
        stem, extension = name, ""  # no extension, or a dot inside the name
    stem = stem.strip(" .") or DEFAULT_NAME
    suffix = f".{extension}" if extension else ""
    stem = stem[: NAME_MAX - len(suffix)].rstrip(" .") or DEFAULT_NAME
    return stem + suffix


def ascii_file_name(name: str) -> str:
    """A plain-ASCII spelling for old clients: "Báo cáo Đông.xlsx" -> "Bao cao Dong.xlsx"."""
    name = name.replace("đ", "d").replace("Đ", "D")
    plain = "".join(c for c in unicodedata.normalize("NFKD", name) if not unicodedata.combining(c))
    return "".join(c if " " <= c <= "~" and c not in '"\\%;' else "_" for c in plain)


def content_disposition(name: str) -> str:
    """`attachment` with an ASCII `filename` and the real name as `filename*` (RFC 6266, RFC 8187)."""
    name = safe_file_name(name)
    encoded = quote(name, safe="!#$&+^`|~-._")
    return f"attachment; filename=\"{ascii_file_name(name)}\"; filename*=UTF-8''{encoded}"


def content_type(name: str) -> str:
    """The media type by extension (xlsx, docx, pdf, png, csv); anything else application/octet-stream."""
    _, dot, extension = name.rpartition(".")
    return CONTENT_TYPES.get(extension.lower(), OCTET_STREAM) if dot else OCTET_STREAM
