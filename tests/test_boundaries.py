"""The layering DESIGN.md asks for: handlers stay platform-neutral; dependencies point one way."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHANNEL_AND_WEB = {"telegram", "httpx", "aiogram", "starlette", "uvicorn", "aiohttp", "requests", "fastapi"}
# bot -> handlers -> (storage, content, reports); nothing below may reach back up.
FORBIDDEN = {
    "handlers": CHANNEL_AND_WEB | {"bot"},
    "storage": CHANNEL_AND_WEB | {"bot", "handlers", "reports"},
    "content": CHANNEL_AND_WEB | {"bot", "handlers", "storage", "reports"},
    "reports": CHANNEL_AND_WEB | {"bot", "handlers"},
}


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_the_scanner_sees_imports(tmp_path):
    sample = tmp_path / "x.py"
    sample.write_text("import telegram.ext\nfrom httpx import AsyncClient\ndef f():\n    import starlette\n")
    assert imported_roots(sample) == {"telegram", "httpx", "starlette"}


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_only_what_it_may(package):
    offenders = {
        f"{path.relative_to(ROOT)} imports {sorted(imported_roots(path) & FORBIDDEN[package])}"
        for path in (ROOT / package).rglob("*.py")
        if imported_roots(path) & FORBIDDEN[package]
    }
    assert not offenders, offenders
