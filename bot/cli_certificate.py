"""`hocvuso certificate verify CODE`: is a certificate genuine? (The same answer as /xacthuc in chat.)"""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated

import typer
from rich.console import Console

from handlers.certificates import BAD_FORMAT, genuine_fields
from storage import certificates
from storage.certificates import Issued
from storage.db import Database

certificate_app = typer.Typer(help="Giấy chứng nhận hoàn thành khóa học.", no_args_is_help=True)

GENUINE = "Giấy chứng nhận hợp lệ, do trợ lý Bình dân học vụ số cấp:"
NOT_FOUND = ("Không có giấy chứng nhận nào mang mã này: mã sai, giấy không do trợ lý cấp, "
             "hoặc không còn hiệu lực (người được cấp đã xóa dữ liệu, hoặc giấy đã được cấp lại theo tên mới).")


def _say(text: str, *, error: bool = False) -> None:
    Console(stderr=error, highlight=False).print(text, style="red" if error else None, markup=False, soft_wrap=True)


@certificate_app.command("verify")
def verify(
    code: Annotated[str, typer.Argument(help="Mã in trên giấy, ví dụ K7MX-4RTP-W9AC (có hay không có dấu gạch).")],
) -> None:
    """Kiểm tra một giấy chứng nhận: họ tên, khóa học, ngày cấp, nơi cấp. Mã không có thì thoát với mã 1."""
    from bot.app import prepare_database
    from bot.cli import _settings, _start
    from bot.logs import configure_from_settings

    if certificates.normalise_code(code) is None:
        _say(BAD_FORMAT, error=True)
        raise typer.Exit(2)
    settings = _settings()
    configure_from_settings(settings, logging.WARNING)

    async def main() -> Issued | None:
        database = Database(settings.database_url)
        try:
            await prepare_database(database, settings)
            async with database.session() as session:
                return await certificates.verify(session, code)
        finally:
            await database.dispose()

    issued = _start(settings, lambda: asyncio.run(main()))
    if issued is None:
        _say(NOT_FOUND, error=True)
        raise typer.Exit(1)
    _say(GENUINE)
    for label, value in genuine_fields(issued):
        _say(f"  {label}: {value}")
