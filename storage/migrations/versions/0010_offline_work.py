"""what units do offline (issue 14): activities and who attended, initiatives, learning with the digital team

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-27 05:12:00

New tables start empty. Existing people agreed in the chat (`consent_method` "chat"); existing progress
and attempts were taken alone (`assisted_by` NULL). The audit log gains the row acted on and the names of
the fields changed.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import storage.types

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "initiative",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("authors", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=True),
        sa.Column("village_id", sa.Integer(), nullable=True),
        sa.Column("description", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
        sa.Column("result", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
        sa.Column("proposed_by", sa.Integer(), nullable=False),
        sa.Column("created_at", storage.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", storage.types.UTCDateTime(), nullable=False),
        sa.Column("recognised_at", storage.types.UTCDateTime(), nullable=True),
        sa.Column("recognised_by", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name=op.f("fk_initiative_organisation_id_organisation"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["proposed_by"], ["person.id"], name=op.f("fk_initiative_proposed_by_person"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["recognised_by"], ["person.id"], name=op.f("fk_initiative_recognised_by_person"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["village_id"], ["village.id"], name=op.f("fk_initiative_village_id_village"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_initiative")),
    )
    with op.batch_alter_table("initiative", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_initiative_organisation_id"), ["organisation_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_initiative_proposed_by"), ["proposed_by"], unique=False)
        batch_op.create_index(batch_op.f("ix_initiative_recognised_by"), ["recognised_by"], unique=False)
        batch_op.create_index(batch_op.f("ix_initiative_village_id"), ["village_id"], unique=False)

    op.create_table(
        "unitactivity",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=True),
        sa.Column("village_id", sa.Integer(), nullable=True),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("held_on", sa.Date(), nullable=False),
        sa.Column("title", sqlmodel.sql.sqltypes.AutoString(length=160), nullable=False),
        sa.Column("place", sqlmodel.sql.sqltypes.AutoString(length=120), nullable=True),
        sa.Column("place_village_id", sa.Integer(), nullable=True),
        sa.Column("participants", sa.Integer(), nullable=False),
        sa.Column("photo_file_id", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("recorded_by", sa.Integer(), nullable=True),
        sa.Column("created_at", storage.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", storage.types.UTCDateTime(), nullable=False),
        sa.Column("removed_at", storage.types.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name=op.f("fk_unitactivity_organisation_id_organisation"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["place_village_id"],
            ["village.id"],
            name=op.f("fk_unitactivity_place_village_id_village"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["recorded_by"], ["person.id"], name=op.f("fk_unitactivity_recorded_by_person"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["village_id"], ["village.id"], name=op.f("fk_unitactivity_village_id_village"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_unitactivity")),
    )
    with op.batch_alter_table("unitactivity", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_unitactivity_organisation_id"), ["organisation_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_unitactivity_place_village_id"), ["place_village_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_unitactivity_recorded_by"), ["recorded_by"], unique=False)
        batch_op.create_index(batch_op.f("ix_unitactivity_village_id"), ["village_id"], unique=False)

    op.create_table(
        "unitactivitymember",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("activity_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["activity_id"],
            ["unitactivity.id"],
            name=op.f("fk_unitactivitymember_activity_id_unitactivity"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["person_id"], ["person.id"], name=op.f("fk_unitactivitymember_person_id_person"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_unitactivitymember")),
        sa.UniqueConstraint("activity_id", "person_id", name=op.f("uq_unitactivitymember_activity_id")),
    )
    with op.batch_alter_table("unitactivitymember", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_unitactivitymember_activity_id"), ["activity_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_unitactivitymember_person_id"), ["person_id"], unique=False)

    with op.batch_alter_table("auditlog", schema=None) as batch_op:
        batch_op.add_column(sa.Column("record_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("detail", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True))

    with op.batch_alter_table("conversationstate", schema=None) as batch_op:
        batch_op.add_column(sa.Column("learning_with", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_conversationstate_learning_with"), ["learning_with"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_conversationstate_learning_with_person"), "person", ["learning_with"], ["id"],
            ondelete="SET NULL",
        )

    with op.batch_alter_table("lessonprogress", schema=None) as batch_op:
        batch_op.add_column(sa.Column("assisted", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("assisted_by", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_lessonprogress_assisted_by"), ["assisted_by"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_lessonprogress_assisted_by_person"), "person", ["assisted_by"], ["id"], ondelete="SET NULL"
        )

    with op.batch_alter_table("person", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "consent_method", sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False, server_default="chat"
            )
        )
        batch_op.add_column(sa.Column("registered_by", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_person_registered_by"), ["registered_by"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_person_registered_by_person"), "person", ["registered_by"], ["id"], ondelete="SET NULL"
        )

    with op.batch_alter_table("quizattempt", schema=None) as batch_op:
        batch_op.add_column(sa.Column("assisted", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("assisted_by", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_quizattempt_assisted_by"), ["assisted_by"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_quizattempt_assisted_by_person"), "person", ["assisted_by"], ["id"], ondelete="SET NULL"
        )


def downgrade() -> None:
    with op.batch_alter_table("conversationstate", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_conversationstate_learning_with_person"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_conversationstate_learning_with"))
        batch_op.drop_column("learning_with")

    with op.batch_alter_table("quizattempt", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_quizattempt_assisted_by_person"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_quizattempt_assisted_by"))
        batch_op.drop_column("assisted_by")
        batch_op.drop_column("assisted")

    with op.batch_alter_table("person", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_person_registered_by_person"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_person_registered_by"))
        batch_op.drop_column("registered_by")
        batch_op.drop_column("consent_method")

    with op.batch_alter_table("lessonprogress", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_lessonprogress_assisted_by_person"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_lessonprogress_assisted_by"))
        batch_op.drop_column("assisted_by")
        batch_op.drop_column("assisted")

    with op.batch_alter_table("auditlog", schema=None) as batch_op:
        batch_op.drop_column("detail")
        batch_op.drop_column("record_id")

    with op.batch_alter_table("unitactivitymember", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_unitactivitymember_person_id"))
        batch_op.drop_index(batch_op.f("ix_unitactivitymember_activity_id"))

    op.drop_table("unitactivitymember")
    with op.batch_alter_table("unitactivity", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_unitactivity_village_id"))
        batch_op.drop_index(batch_op.f("ix_unitactivity_recorded_by"))
        batch_op.drop_index(batch_op.f("ix_unitactivity_place_village_id"))
        batch_op.drop_index(batch_op.f("ix_unitactivity_organisation_id"))

    op.drop_table("unitactivity")
    with op.batch_alter_table("initiative", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_initiative_village_id"))
        batch_op.drop_index(batch_op.f("ix_initiative_recognised_by"))
        batch_op.drop_index(batch_op.f("ix_initiative_proposed_by"))
        batch_op.drop_index(batch_op.f("ix_initiative_organisation_id"))

    op.drop_table("initiative")
