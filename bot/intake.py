"""Lead intake: route each submission to a script, normalise it, store it once, sign its token."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from bot.answers.contact import parse_email, parse_phone
from bot.answers.result import Parsed
from bot.catalog import ScriptCatalog
from bot.errors import ReferenceTakenError
from bot.first_contact import FIRST_CONTACT, FirstContactPolicy, first_contact_payload
from bot.ports import Storage, Transaction
from bot.records import Lead, NewLead, Submission
from bot.routing import RouteRule, route
from bot.textsafe import storable, storable_value
from bot.tokens import TokenSigner, new_reference

_REFERENCE_TRIES = 8


class LeadWatcher(Protocol):
    def lead_created(self, tx: Transaction, lead_id: int, now: datetime) -> bool:
        """Called in the lead's transaction, once, when a lead is first stored. True when it
        queued work to be sent (then the senders are woken after the commit)."""


@dataclass(frozen=True, slots=True)
class AcceptedLead:
    lead_id: int
    reference: str
    token: str
    script_id: str
    created: bool  # False: a repeated delivery of a lead already stored


class IntakeService:
    def __init__(
        self,
        storage: Storage,
        catalog: ScriptCatalog,
        signer: TokenSigner,
        clock: Callable[[], datetime],
        *,
        rules: Sequence[RouteRule] = (),
        default_script: str,
        reference: Callable[[], str] = new_reference,
        first_contact: FirstContactPolicy | None = None,
        on_commit: Callable[[], None] = lambda: None,
        watchers: Sequence[LeadWatcher] = (),
    ) -> None:
        self._storage = storage
        self._catalog = catalog
        self._signer = signer
        self._clock = clock
        self._rules = tuple(rules)
        self._default = default_script
        self._reference = reference
        self._first_contact = first_contact or FirstContactPolicy()
        self._on_commit = on_commit  # e.g. wake the dispatcher: a first contact is due
        self._watchers = tuple(watchers)  # e.g. lead.created for the CRM, in the same commit

    def script_for(self, submission: Submission) -> str:
        return route(self._rules, self._default, submission.source, submission.attribution)

    async def submit(
        self, submissions: Sequence[Submission], script_id: str | None = None
    ) -> list[AcceptedLead]:
        """Store a batch in one transaction; repeats come back as the lead already stored."""
        now = self._clock()
        leads = [self._new_lead(s, script_id or self.script_for(s), now) for s in submissions]

        queued = 0  # first contacts and watchers' work to send: wake the senders for them

        def work(tx: Transaction) -> list[tuple[Lead, bool]]:
            nonlocal queued
            stored = []
            for lead in leads:
                added, created = self._add(tx, lead, now)
                if created:
                    queued += self._created(tx, lead, added.id, now)
                stored.append((added, created))
            return stored

        stored = await self._storage.run(work)
        if queued:  # waking them for nothing costs each a claim transaction, per lead
            self._on_commit()
        return [
            AcceptedLead(
                lead.id, lead.reference, self._signer.sign(lead.id, now), lead.script_id, created
            )
            for lead, created in stored
        ]

    def store_in(self, tx: Transaction, submission: Submission, now: datetime) -> Lead:
        """`submit` for one submission, in the caller's transaction (a chat's first message
        stores its lead in the turn that opens its conversation). The caller wakes the senders
        after its commit: a first contact or a watcher's event may be queued."""
        lead = self._new_lead(submission, self.script_for(submission), now)
        stored, created = self._add(tx, lead, now)
        if created:
            self._created(tx, lead, stored.id, now)
        return stored

    def _created(self, tx: Transaction, lead: NewLead, lead_id: int, now: datetime) -> int:
        """What a new lead sets going, in its transaction: how many messages it queued."""
        queued = self._queue_first_contact(tx, lead, lead_id, now)
        for watcher in self._watchers:
            queued += watcher.lead_created(tx, lead_id, now)
        return queued

    def _queue_first_contact(
        self, tx: Transaction, lead: NewLead, lead_id: int, now: datetime
    ) -> int:
        script = self._catalog.current(lead.script_id).script
        payload = first_contact_payload(script, lead, lead_id, self._first_contact.channels)
        if payload is None:
            return 0
        zones = self._first_contact.zones_for(str(payload["chat"]), script.spec.timezone)
        tx.outbox.add(
            kind=FIRST_CONTACT,
            idempotency_key=f"first-contact-{lead_id}",
            payload=payload,
            due_at=self._first_contact.due_at(now, zones),
            now=now,
        )
        return 1

    def _add(self, tx: Transaction, lead: NewLead, now: datetime) -> tuple[Lead, bool]:
        for _attempt in range(_REFERENCE_TRIES):
            try:
                return tx.leads.add(lead, self._reference(), now)
            except ReferenceTakenError:
                continue  # about one chance in 800 million per lead stored: draw again
        raise ReferenceTakenError("no free reference code after several draws")

    def _new_lead(self, submission: Submission, script_id: str, now: datetime) -> NewLead:
        script = self._catalog.current(script_id).script
        fields = {
            storable(key): storable(value) for key, value in submission.fields.items() if value
        }
        phone = email = None
        if raw_phone := fields.get("phone"):
            parsed = parse_phone(raw_phone, region=script.spec.region)
            phone = str(parsed.value) if isinstance(parsed, Parsed) else None
        if raw_email := fields.get("email"):
            parsed_email = parse_email(raw_email)
            email = str(parsed_email.value) if isinstance(parsed_email, Parsed) else None
        return NewLead(
            source=submission.source,
            external_id=storable(submission.external_id),
            script_id=script_id,
            submitted_at=submission.submitted_at or now,
            fields=fields,
            raw=storable_value(submission.raw),
            attribution=storable_value(submission.attribution),
            phone=phone,
            email=email,
            language=_language(fields.get("language")),
            is_test=submission.is_test,
            consent_text=_consent(submission.consent_text or fields.get("consent")),
        )


def _language(tag: str | None) -> str | None:
    """A language tag as a script knows them ("es", "pt-BR"), or nothing."""
    if tag and len(tag) <= 16 and tag.replace("-", "").replace("_", "").isalnum():
        return tag
    return None


_REFUSALS = frozenset({"false", "no", "0", "off", "n", "unchecked"})


def _consent(given: str | None) -> str | None:
    """What the prospect agreed to: a source's consent text, or a relay's `consent` field
    (its text, or a ticked checkbox's "true"); an unticked box is no consent."""
    if given is None or given.strip().casefold() in _REFUSALS or not given.strip():
        return None
    return storable(given.strip())
