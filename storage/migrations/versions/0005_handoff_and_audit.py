"""Who holds a conversation, the audit log of what reps did, and leases on timers

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Exactly one rep holds a conversation: taking it is a conditional update of these.
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("held_by", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("held_by_name", sa.String(length=200), nullable=True))
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=True),
        sa.Column("lead_id", sa.Integer(), nullable=True),
        sa.Column("rep_id", sa.Integer(), nullable=True),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversations.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_audit_log_conversation", "audit_log", ["conversation_id", "id"])
    # Timers are claimed under a lease, like outbox rows: a worker that dies mid-way loses none.
    with op.batch_alter_table("timers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("timers", schema=None) as batch_op:
        batch_op.drop_column("claimed_until")
    op.drop_index("ix_audit_log_conversation", table_name="audit_log")
    op.drop_table("audit_log")
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.drop_column("held_by_name")
        batch_op.drop_column("held_by")
