"""The reps' Telegram group: each conversation's thread there, and the bot's messages in it

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A forum topic per conversation, or the first card whose replies form its thread.
    op.create_table(
        "telegram_rep_threads",
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("topic_id", sa.BigInteger(), nullable=True),
        sa.Column("root_message_id", sa.BigInteger(), nullable=True),
        sa.Column("mirrored_until", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversations.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("conversation_id", "chat_id"),
    )
    op.create_index(
        "ix_telegram_rep_threads_topic", "telegram_rep_threads", ["chat_id", "topic_id"]
    )
    # Every message the bot posted there: a rep's reply to any of them finds the conversation.
    op.create_table(
        "telegram_rep_messages",
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("outbox_key", sa.String(length=128), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversations.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("chat_id", "message_id"),
        sa.UniqueConstraint("outbox_key"),
    )
    with op.batch_alter_table("telegram_rep_messages", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_telegram_rep_messages_conversation_id"), ["conversation_id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("telegram_rep_messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_telegram_rep_messages_conversation_id"))
    op.drop_table("telegram_rep_messages")
    op.drop_index("ix_telegram_rep_threads_topic", table_name="telegram_rep_threads")
    op.drop_table("telegram_rep_threads")
