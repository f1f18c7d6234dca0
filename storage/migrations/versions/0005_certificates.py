"""certificates of the finished core course (as issued), and refused certificate codes per chat

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 09:00:00

Nobody has a certificate before this version: the first ones are issued when someone finishes the
core course (or asks with /chungnhan, having finished it before).
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _string(length: int) -> sqlmodel.sql.sqltypes.AutoString:
    return sqlmodel.sql.sqltypes.AutoString(length=length)


def upgrade() -> None:
    op.create_table(
        "certificate",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", _string(16), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=True),
        sa.Column("course_id", _string(40), nullable=False),
        sa.Column("course_title", _string(200), nullable=False),
        sa.Column("lesson_count", sa.Integer(), nullable=False),
        sa.Column("full_name", _string(120), nullable=False),
        sa.Column("commune_name", _string(100), nullable=False),
        sa.Column("issued_at", sa.DateTime(), nullable=False),
        sa.Column("issued_on", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"], name=op.f("fk_certificate_person_id_person"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_certificate")),
        sa.UniqueConstraint("code", name=op.f("uq_certificate_code")),
        sa.UniqueConstraint("person_id", "course_id", name=op.f("uq_certificate_person_id")),
    )
    with op.batch_alter_table("certificate", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_certificate_person_id"), ["person_id"], unique=False)

    op.create_table(
        "certificatecodetry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel", _string(20), nullable=False),
        sa.Column("external_id", _string(64), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_certificatecodetry")),
    )
    with op.batch_alter_table("certificatecodetry", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_certificatecodetry_external_id"), ["external_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("certificatecodetry", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_certificatecodetry_external_id"))
    op.drop_table("certificatecodetry")
    with op.batch_alter_table("certificate", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_certificate_person_id"))
    op.drop_table("certificate")
