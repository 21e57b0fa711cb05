"""One conversation per lead and chat

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Several workers opening the same lead's chat at once must end up in one conversation.
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.create_unique_constraint(
            "uq_conversations_lead_chat", ["lead_id", "channel", "channel_user_id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.drop_constraint("uq_conversations_lead_chat", type_="unique")
