"""Privacy: consent versions and erasures

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-26
"""

from __future__ import annotations

import hashlib
import unicodedata

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("leads", schema=None) as batch_op:
        batch_op.add_column(sa.Column("consent_version", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("consent_via", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True))
    # Every consent a lead gave, with its version; the words go when the lead is erased.
    op.create_table(
        "consents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("lead_id", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("version", sa.String(length=16), nullable=False),
        sa.Column("via", sa.String(length=16), nullable=False),
        sa.Column("given_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["lead_id"], ["leads.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("consents", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_consents_lead_id"), ["lead_id"])
    # Consents given before this revision: their text is known, the version follows from it.
    leads = sa.table(
        "leads",
        sa.column("id", sa.Integer()),
        sa.column("source", sa.String()),
        sa.column("consent_text", sa.Text()),
        sa.column("consent_at", sa.DateTime(timezone=True)),
        sa.column("consent_version", sa.String()),
        sa.column("consent_via", sa.String()),
    )
    _backfill(leads)
    # The retention sweep's lease: one worker sweeps at a time.
    op.create_table(
        "maintenance_leases",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=64), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def _version(text: str) -> str:
    # bot.privacy.consent_version as it is at this revision (a migration never changes).
    canonical = unicodedata.normalize("NFC", text.strip())
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:12]


def _backfill(leads: sa.TableClause) -> None:
    connection = op.get_bind()
    consents = sa.table(
        "consents",
        sa.column("lead_id", sa.Integer()),
        sa.column("text", sa.Text()),
        sa.column("version", sa.String()),
        sa.column("via", sa.String()),
        sa.column("given_at", sa.DateTime(timezone=True)),
    )
    query = sa.select(leads.c.id, leads.c.source, leads.c.consent_text, leads.c.consent_at).where(
        leads.c.consent_text.is_not(None), leads.c.consent_at.is_not(None)
    )
    for row in connection.execute(query).fetchall():
        version = _version(row.consent_text)
        via = "form" if row.source == "form" else "source"
        connection.execute(
            sa.update(leads)
            .where(leads.c.id == row.id)
            .values(consent_version=version, consent_via=via)
        )
        connection.execute(
            sa.insert(consents).values(
                lead_id=row.id,
                text=row.consent_text,
                version=version,
                via=via,
                given_at=row.consent_at,
            )
        )


def downgrade() -> None:
    op.drop_table("maintenance_leases")
    with op.batch_alter_table("consents", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_consents_lead_id"))
    op.drop_table("consents")
    with op.batch_alter_table("leads", schema=None) as batch_op:
        batch_op.drop_column("erased_at")
        batch_op.drop_column("consent_via")
        batch_op.drop_column("consent_version")
