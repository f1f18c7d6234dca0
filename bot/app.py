"""Composition root: builds the services from settings and applies migrations at start."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from bot.settings import Settings
from content.loader import load_catalog
from handlers.context import Clock, HandlerConfig, Services
from storage import migrate, queries
from storage.db import Database


def system_clock() -> datetime:
    return datetime.now(UTC)


def handler_config(settings: Settings) -> HandlerConfig:
    return HandlerConfig(
        zone=settings.zone,
        commune_name=settings.commune_name,
        pass_percent=settings.pass_percent,
        household_code_length=settings.household_code_length,
        household_code_tries=settings.household_code_tries,
        household_code_window_minutes=settings.household_code_window_minutes,
        max_text_length=settings.max_text_length,
        review_after_days=settings.review_after_days,
        telegram_username=settings.telegram_username,
    )


async def prepare_database(database: Database, settings: Settings) -> None:
    """Bring the schema to the newest migration, check the database takes writes, and seed an empty
    directory from the settings."""
    await migrate.upgrade(database.engine)
    await database.check_writable()
    async with database.session() as session:
        await queries.seed_reference_data(session, settings.villages, settings.organisations)


async def build_services(
    settings: Settings, *, clock: Clock = system_clock, rng: random.Random | None = None
) -> Services:
    """Load the content (raising ContentError), open and migrate the database."""
    catalog = load_catalog(settings.content_dir)
    database = Database(settings.database_url)
    try:
        await prepare_database(database, settings)
    except BaseException:
        await database.dispose()
        raise
    # Household codes must not be guessable, so the default source is the OS's.
    return Services(database, catalog, handler_config(settings), clock, rng or random.SystemRandom())

