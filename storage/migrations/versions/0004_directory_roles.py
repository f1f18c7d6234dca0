"""the directory (organisation parents, directory households, population figures), roles by invitation,
the audit log, confirmed memberships and consent versions

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 17:00:00

Every existing choice is kept: people keep their village, household and organisations (each
organisation becomes a claim until a leader confirms it) and are at consent version 1. The unused
`person.role` and `membership.role` columns go: roles now live in `rolegrant`.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _string(length: int) -> sqlmodel.sql.sqltypes.AutoString:
    return sqlmodel.sql.sqltypes.AutoString(length=length)


def _fk_column(name: str) -> sa.Column:
    return sa.Column(name, sa.Integer(), nullable=True)


def upgrade() -> None:
    with op.batch_alter_table("organisation", schema=None) as batch_op:
        batch_op.add_column(_fk_column("parent_id"))
        batch_op.create_index(batch_op.f("ix_organisation_parent_id"), ["parent_id"], unique=False)
        batch_op.create_foreign_key(batch_op.f("fk_organisation_parent_id_organisation"), "organisation",
                                    ["parent_id"], ["id"], ondelete="SET NULL")
    op.execute("UPDATE organisation SET kind = 'khac' WHERE kind = 'to-chuc'")

    with op.batch_alter_table("household", schema=None) as batch_op:
        batch_op.alter_column("code", existing_type=_string(16), nullable=True)
        batch_op.add_column(sa.Column("head_name", _string(120), nullable=True))
        batch_op.add_column(sa.Column("member_count", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("in_directory", sa.Boolean(), nullable=False, server_default=sa.false()))

    op.create_table(
        "populationfigure",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("target_group", _string(40), nullable=False),
        sa.Column("village_id", sa.Integer(), nullable=True),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["village_id"], ["village.id"], name=op.f("fk_populationfigure_village_id_village"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_populationfigure")),
        sa.UniqueConstraint("target_group", "village_id", name=op.f("uq_populationfigure_target_group")),
    )
    with op.batch_alter_table("populationfigure", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_populationfigure_village_id"), ["village_id"], unique=False)

    # Everyone registered so far agreed to version 1 and was shown version 1.
    with op.batch_alter_table("person", schema=None) as batch_op:
        batch_op.add_column(sa.Column("consent_version", sa.Integer(), nullable=False, server_default="1"))
        batch_op.add_column(sa.Column("consent_offered", sa.Integer(), nullable=False, server_default="1"))
        batch_op.drop_column("role")

    # An organisation chosen before this version was never confirmed by anyone: it is a claim.
    with op.batch_alter_table("membership", schema=None) as batch_op:
        batch_op.add_column(sa.Column("confirmed", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("confirmed_at", sa.DateTime(), nullable=True))
        batch_op.drop_column("role")

    op.create_table(
        "invitecode",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code_hash", _string(64), nullable=False),
        sa.Column("role", _string(20), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=True),
        sa.Column("village_id", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("used_at", sa.DateTime(), nullable=True),
        sa.Column("used_by", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["organisation_id"], ["organisation.id"],
                                name=op.f("fk_invitecode_organisation_id_organisation"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["village_id"], ["village.id"], name=op.f("fk_invitecode_village_id_village"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["created_by"], ["person.id"], name=op.f("fk_invitecode_created_by_person"),
                                ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["used_by"], ["person.id"], name=op.f("fk_invitecode_used_by_person"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invitecode")),
        sa.UniqueConstraint("code_hash", name=op.f("uq_invitecode_code_hash")),
    )
    with op.batch_alter_table("invitecode", schema=None) as batch_op:
        for column in ("organisation_id", "village_id", "created_by", "used_by"):
            batch_op.create_index(batch_op.f(f"ix_invitecode_{column}"), [column], unique=False)

    op.create_table(
        "rolegrant",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("role", _string(20), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=True),
        sa.Column("village_id", sa.Integer(), nullable=True),
        sa.Column("invite_id", sa.Integer(), nullable=True),
        sa.Column("granted_at", sa.DateTime(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"], name=op.f("fk_rolegrant_person_id_person"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["organisation_id"], ["organisation.id"],
                                name=op.f("fk_rolegrant_organisation_id_organisation"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["village_id"], ["village.id"], name=op.f("fk_rolegrant_village_id_village"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["invite_id"], ["invitecode.id"], name=op.f("fk_rolegrant_invite_id_invitecode"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rolegrant")),
    )
    with op.batch_alter_table("rolegrant", schema=None) as batch_op:
        for column in ("person_id", "organisation_id", "village_id", "invite_id"):
            batch_op.create_index(batch_op.f(f"ix_rolegrant_{column}"), [column], unique=False)

    op.create_table(
        "invitecodetry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel", _string(20), nullable=False),
        sa.Column("external_id", _string(64), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invitecodetry")),
    )
    with op.batch_alter_table("invitecodetry", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_invitecodetry_external_id"), ["external_id"], unique=False)

    op.create_table(
        "auditlog",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("actor", sa.Integer(), nullable=True),
        sa.Column("action", _string(40), nullable=False),
        sa.Column("outcome", _string(12), nullable=False),
        sa.Column("role", _string(20), nullable=True),
        sa.Column("organisation_id", sa.Integer(), nullable=True),
        sa.Column("village_id", sa.Integer(), nullable=True),
        sa.Column("subject", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_auditlog")),
    )
    with op.batch_alter_table("auditlog", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_auditlog_at"), ["at"], unique=False)

    with op.batch_alter_table("activity", schema=None) as batch_op:
        batch_op.create_index("ix_activity_person_at", ["person_id", "at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("activity", schema=None) as batch_op:
        batch_op.drop_index("ix_activity_person_at")
    for table in ("auditlog", "invitecodetry", "rolegrant", "invitecode", "populationfigure"):
        op.drop_table(table)
    with op.batch_alter_table("membership", schema=None) as batch_op:
        batch_op.add_column(sa.Column("role", _string(10), nullable=False, server_default="member"))
        batch_op.drop_column("confirmed_at")
        batch_op.drop_column("confirmed")
    with op.batch_alter_table("person", schema=None) as batch_op:
        batch_op.add_column(sa.Column("role", _string(20), nullable=False, server_default="resident"))
        batch_op.drop_column("consent_offered")
        batch_op.drop_column("consent_version")
    op.execute("DELETE FROM household WHERE code IS NULL")
    with op.batch_alter_table("household", schema=None) as batch_op:
        batch_op.drop_column("in_directory")
        batch_op.drop_column("member_count")
        batch_op.drop_column("head_name")
        batch_op.alter_column("code", existing_type=_string(16), nullable=False)
    with op.batch_alter_table("organisation", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_organisation_parent_id_organisation"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_organisation_parent_id"))
        batch_op.drop_column("parent_id")
