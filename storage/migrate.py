"""Applies the Alembic migrations, at start-up and from `hocvuso db upgrade`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.db import create_engine

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if url:
        config.set_main_option("sqlalchemy.url", url)
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


class ForeignKeysBroken(RuntimeError):
    """A migration left rows pointing at rows that do not exist; it was rolled back."""


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the schema up to `revision` on the engine's database."""
    await _migrate(engine, lambda config: command.upgrade(config, revision))


async def downgrade(engine: AsyncEngine, revision: str) -> None:
    """Take the schema back to `revision` (for an operator undoing an upgrade, and for tests)."""
    await _migrate(engine, lambda config: command.downgrade(config, revision))


async def _migrate(engine: AsyncEngine, step: Callable[[Config], None]) -> None:
    """Run Alembic on one transaction of the engine's database.

    On SQLite, Alembic alters a table by copying it, dropping the old one and renaming the copy. With
    foreign keys enforced, dropping `person` would cascade to every channel account, and dropping
    `household` would empty everyone's household: SQLite's own procedure for altering a table turns
    them off meanwhile, on a connection of its own (the setting cannot change inside a transaction),
    and checks every reference before committing.
    """

    def run(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        step(config)
        if connection.dialect.name == "sqlite" and connection.exec_driver_sql("PRAGMA foreign_key_check").first():
            raise ForeignKeysBroken("migration left dangling references; nothing was changed")

    own = None
    if engine.dialect.name == "sqlite":
        own = create_engine(engine.url.render_as_string(hide_password=False), foreign_keys=False)
    try:
        async with (own or engine).begin() as connection:
            await connection.run_sync(run)
    finally:
        if own is not None:
            await own.dispose()


async def current_revision(engine: AsyncEngine) -> str | None:
    def _current(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async with engine.connect() as connection:
        return await connection.run_sync(_current)
