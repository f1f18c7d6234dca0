"""link codes (/lienket: one person on Telegram and Zalo) and the wrong link codes typed per chat

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27 02:00:00

No data moves: both tables start empty. A code is stored as its SHA-256 only and lives 10 minutes.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import storage.types

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "linkcode",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("created_at", storage.types.UTCDateTime(), nullable=False),
        sa.Column("expires_at", storage.types.UTCDateTime(), nullable=False),
        sa.Column("used_at", storage.types.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["person_id"], ["person.id"], name=op.f("fk_linkcode_person_id_person"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_linkcode")),
        sa.UniqueConstraint("code_hash", name=op.f("uq_linkcode_code_hash")),
    )
    with op.batch_alter_table("linkcode", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_linkcode_person_id"), ["person_id"], unique=False)

    op.create_table(
        "linkcodetry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("external_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("at", storage.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_linkcodetry")),
    )
    with op.batch_alter_table("linkcodetry", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_linkcodetry_external_id"), ["external_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("linkcodetry", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_linkcodetry_external_id"))

    op.drop_table("linkcodetry")
    with op.batch_alter_table("linkcode", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_linkcode_person_id"))

    op.drop_table("linkcode")
