"""the labels of a chat's last menu, so a choice can be typed by its words

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-27 03:00:00

Zalo has no buttons: a person reads "Gõ 1 → Tiếp ▶️" and may type "tiếp" instead of "1". The menu kept
only the actions; its labels are kept beside them. Rows from before have no labels: their numbers
still work, and the next answer stores labels.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("conversationstate") as table:
        table.add_column(sa.Column("menu_labels", sa.JSON(), nullable=False, server_default="[]"))


def downgrade() -> None:
    with op.batch_alter_table("conversationstate") as table:
        table.drop_column("menu_labels")
