"""Analytics: what keeps the funnel's queries fast

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-26
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

# The attribution every summary row is keyed by; '' where a lead has none.
_KEYS = ("source", "campaign", "adgroup", "ad", "form", "script", "channel")
_FUNNEL = (
    "submitted",
    "reached",
    "started",
    "completed",
    "qualified",
    "handed_off",
    "booked",
    "reminded",
    "came_back",
    *(f"speed_{i}" for i in range(9)),
)
_QUESTION = ("asked", "answered", "abandoned", *(f"answer_{i}" for i in range(12)))


def _counts(names: tuple[str, ...]) -> list[sa.Column[int]]:
    return [sa.Column(name, sa.Integer(), nullable=False) for name in names]


def _keys() -> list[sa.Column[Any]]:
    return [
        sa.Column("day", sa.Date(), nullable=False),
        *(sa.Column(name, sa.Text(), nullable=False) for name in _KEYS),
    ]


def upgrade() -> None:
    # The refresh looks for what changed since its last run by these.
    op.create_index("ix_leads_updated_at", "leads", ["updated_at"])
    op.create_index("ix_conversations_updated_at", "conversations", ["updated_at"])
    # Summaries per day of submission and attribution: the dashboard reads a few thousand
    # rows of these, never the million leads behind them.
    op.create_table(
        "funnel_days",
        *_keys(),
        *_counts(_FUNNEL),
        sa.PrimaryKeyConstraint("day", *_KEYS),
    )
    op.create_table(
        "funnel_question_days",
        *_keys(),
        sa.Column("question", sa.String(length=48), nullable=False),
        *_counts(_QUESTION),
        sa.PrimaryKeyConstraint("day", *_KEYS, "question"),
    )
    op.create_table(
        "analytics_marks",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("mark", sa.DateTime(timezone=True), nullable=True),
        sa.Column("refreshed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("analytics_marks")
    op.drop_table("funnel_question_days")
    op.drop_table("funnel_days")
    op.drop_index("ix_conversations_updated_at", table_name="conversations")
    op.drop_index("ix_leads_updated_at", table_name="leads")
