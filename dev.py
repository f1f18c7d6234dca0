#!/usr/bin/env python3
"""The newcomer's entry point; needs only Python 3.11+.

    python3 dev.py chat     talk to the bot in this terminal (SQLite in ./var/)
    python3 dev.py test     run the whole test suite

Each creates `.venv/` and installs the project into it when missing or when pyproject.toml changed.
Anything after the command is passed on (`python3 dev.py test -k quiz`, `python3 dev.py chat --user binh`).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
STAMP = VENV / ".hocvuso-installed"


def venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def project_fingerprint() -> str:
    return hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()


def ensure_environment() -> Path:
    """Create the virtual environment and install the project with its test tools, once."""
    if sys.version_info < (3, 11):  # noqa: UP036 - this file must greet an older Python politely
        sys.exit(f"hocvuso cần Python 3.11 trở lên (máy này: {sys.version.split()[0]}).")
    python = venv_python()
    if not python.exists():
        print("Đang tạo môi trường ảo .venv ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    if not STAMP.exists() or STAMP.read_text() != project_fingerprint():
        print("Đang cài hocvuso và các thư viện (lần đầu mất vài phút) ...", flush=True)
        subprocess.run([python, "-m", "pip", "install", "--quiet", "--upgrade", "pip"], check=True)
        subprocess.run([python, "-m", "pip", "install", "--quiet", "-e", f"{ROOT}[dev]"], check=True)
        STAMP.write_text(project_fingerprint())
    return python


def main(argv: list[str]) -> int:
    command, rest = (argv[0], argv[1:]) if argv else ("help", [])
    if command not in {"chat", "test", "setup"}:
        print(__doc__)
        return 0 if command in {"help", "-h", "--help"} else 2
    python = ensure_environment()
    if command == "setup":
        return 0
    if command == "chat":
        return subprocess.call([python, "-m", "bot", "chat", *rest], cwd=ROOT)
    return subprocess.call([python, "-m", "pytest", *rest], cwd=ROOT)


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        sys.exit(130)
