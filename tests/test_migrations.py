"""Migrations carry what people chose across schema changes, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import text
from sqlmodel import select

from storage import migrate
from storage.db import Database
from storage.models import ChannelAccount, Household, LessonProgress, Membership, Organisation, Person, Village

THEN = datetime(2026, 10, 1, 2, 0)  # naive UTC, as the columns store it


async def test_0004_keeps_every_residents_choices(database_url):
    database = Database(database_url)
    try:
        await migrate.upgrade(database.engine, "0003")
        async with database.engine.begin() as connection:
            for statement, rows in [
                ("INSERT INTO village (id, name) VALUES (:id, :name)", [{"id": 1, "name": "Thôn 1"},
                                                                        {"id": 2, "name": "Thôn 2"}]),
                ("INSERT INTO organisation (id, name, kind) VALUES (:id, :name, 'to-chuc')",
                 [{"id": 1, "name": "Hội Nông dân xã"}, {"id": 2, "name": "Đoàn Thanh niên xã"}]),
                ("INSERT INTO household (id, code, village_id, created_at) VALUES (1, '482915', 2, :at)",
                 [{"at": THEN}]),
                ("INSERT INTO person (id, full_name, village_id, household_id, is_household_head, target_group, "
                 "vneid_level2, role, consent_at, created_at) VALUES (:id, :name, :village, :household, :head, "
                 "'nguoi-dan', 'yes', 'resident', :at, :at)",
                 [{"id": 1, "name": "Nguyễn Văn An", "village": 2, "household": 1, "head": True, "at": THEN},
                  {"id": 2, "name": "Lê Thị Hoa", "village": 1, "household": 1, "head": False, "at": THEN}]),
                ("INSERT INTO membership (person_id, organisation_id, role) VALUES (:person, :org, 'member')",
                 [{"person": 1, "org": 1}, {"person": 1, "org": 2}, {"person": 2, "org": 2}]),
                ("INSERT INTO channelaccount (channel, external_id, person_id, blocked, created_at) "
                 "VALUES ('telegram', :chat, :person, false, :at)",
                 [{"chat": "1001", "person": 1, "at": THEN}, {"chat": "1002", "person": 2, "at": THEN}]),
                ("INSERT INTO lessonprogress (person_id, lesson_id, status, best_score, started_at) "
                 "VALUES (1, 'vneid', 'completed', 100, :at)", [{"at": THEN}]),
            ]:
                await connection.execute(text(statement), rows)
        await migrate.upgrade(database.engine)

        async with database.session() as session:
            people = {p.id: p for p in (await session.exec(select(Person))).all()}
            memberships = (await session.exec(select(Membership))).all()
            household = (await session.exec(select(Household))).one()
            kinds = set((await session.exec(select(Organisation.kind))).all())
            villages = (await session.exec(select(Village.name))).all()
            accounts = (await session.exec(select(ChannelAccount.external_id, ChannelAccount.person_id))).all()
            progress = (await session.exec(select(LessonProgress.person_id, LessonProgress.lesson_id))).all()
        assert (people[1].full_name, people[1].village_id, people[1].household_id, people[1].is_household_head) == (
            "Nguyễn Văn An", 2, 1, True)
        assert (people[2].village_id, people[2].household_id, people[2].vneid_level2) == (1, 1, "yes")
        assert all(p.consent_version == 1 and p.consent_offered == 1 for p in people.values())
        assert sorted((m.person_id, m.organisation_id, m.confirmed) for m in memberships) == [
            (1, 1, False), (1, 2, False), (2, 2, False)]  # each chosen organisation is now a claim
        assert (household.code, household.village_id, household.in_directory) == ("482915", 2, False)
        assert household.created_at == THEN.replace(tzinfo=UTC)
        assert sorted(accounts) == [("1001", 1), ("1002", 2)] and progress == [(1, "vneid")]
        assert kinds == {"khac"} and sorted(villages) == ["Thôn 1", "Thôn 2"]
    finally:
        await database.dispose()


async def test_0004_downgrades_and_upgrades_again(database_url):
    database = Database(database_url)
    try:
        await migrate.upgrade(database.engine)
        await migrate.upgrade(database.engine, "head")  # a second start changes nothing
        await migrate.downgrade(database.engine, "0003")
        assert await migrate.current_revision(database.engine) == "0003"
        await migrate.upgrade(database.engine)
        assert await migrate.current_revision(database.engine) == migrate.head_revision()
    finally:
        await database.dispose()
