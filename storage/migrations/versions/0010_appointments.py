"""Appointments: bookings of calendar slots

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A booking holds a seat (1..capacity) of its slot, and the unique key makes two bookings
    # of one seat impossible, on any number of workers; a cancelled one gives its seat back
    # (NULL never conflicts) and keeps its row.
    op.create_table(
        "appointments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("lead_id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=True),
        sa.Column("script_id", sa.String(length=64), nullable=False),
        sa.Column("question_id", sa.String(length=48), nullable=False),
        sa.Column("calendar", sa.String(length=48), nullable=False),
        sa.Column("location", sa.String(length=48), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seat", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("booked_by", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancelled_by", sa.String(length=16), nullable=True),
        sa.ForeignKeyConstraint(["lead_id"], ["leads.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversations.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "calendar", "location", "starts_at", "seat", name="uq_appointments_seat"
        ),
    )
    with op.batch_alter_table("appointments", schema=None) as batch_op:
        batch_op.create_index("ix_appointments_calendar_starts_at", ["calendar", "starts_at"])
        batch_op.create_index(batch_op.f("ix_appointments_lead_id"), ["lead_id"])
        batch_op.create_index(batch_op.f("ix_appointments_conversation_id"), ["conversation_id"])
        batch_op.create_index(batch_op.f("ix_appointments_created_at"), ["created_at"])


def downgrade() -> None:
    op.drop_table("appointments")
