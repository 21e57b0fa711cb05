"""Which script a lead gets: the first rule that matches its source, form, campaign or ad group."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RouteRule:
    """Every criterion given must match; a rule with none matches every lead."""

    script: str
    source: str | None = None
    form_id: str | None = None
    campaign_id: str | None = None
    adgroup_id: str | None = None

    def matches(self, source: str, attribution: Mapping[str, str]) -> bool:
        wanted = (
            (self.source, source),
            (self.form_id, attribution.get("form_id")),
            (self.campaign_id, attribution.get("campaign_id")),
            (self.adgroup_id, attribution.get("adgroup_id")),
        )
        return all(expected is None or expected == actual for expected, actual in wanted)


def route(
    rules: Sequence[RouteRule], default: str, source: str, attribution: Mapping[str, str]
) -> str:
    for rule in rules:
        if rule.matches(source, attribution):
            return rule.script
    return default
