"""household code tries (a few wrong codes an hour per chat); the registration question a person reached

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "householdcodetry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("external_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_householdcodetry")),
    )
    with op.batch_alter_table("householdcodetry", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_householdcodetry_external_id"), ["external_id"], unique=False)
    # Nullable, and None for everyone registered before: nobody is asked again what they already skipped.
    with op.batch_alter_table("person", schema=None) as batch_op:
        batch_op.add_column(sa.Column("registration_step", sqlmodel.sql.sqltypes.AutoString(length=30), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("person", schema=None) as batch_op:
        batch_op.drop_column("registration_step")
    with op.batch_alter_table("householdcodetry", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_householdcodetry_external_id"))
    op.drop_table("householdcodetry")
