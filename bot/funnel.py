"""The lead funnel: its stages, what a report holds, and reading medians off histograms."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

# What a funnel can be split by: the lead's attribution, its script, its chat's channel, or
# the day it was submitted (UTC).
DIMENSIONS = ("source", "campaign", "adgroup", "ad", "form", "script", "channel", "day")

# The stages, in order, as (field of FunnelCounts, label). docs/analytics.md defines each.
STAGES = (
    ("submitted", "submitted"),
    ("reached", "redirected or contacted"),
    ("started", "conversation started"),
    ("completed", "completed"),
    ("qualified", "qualified"),
    ("handed_off", "handed off"),
    ("booked", "appointment booked"),
)
# Each of these counts only leads of the stage before it; handoffs and bookings can come
# at any point of a conversation.
NESTED = frozenset({"submitted", "reached", "started", "completed", "qualified"})

# Histogram buckets, by upper bound in seconds; a last bucket holds everything slower. The
# summary tables have a column per bucket, so changing these needs a migration.
SPEED_BOUNDS = (5, 10, 30, 60, 300, 900, 3600, 86400)  # form submitted -> first bot message
ANSWER_BOUNDS = (5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600, 86400)  # question -> reply


@dataclass(frozen=True, slots=True)
class Filters:
    """Which leads a report counts: submitted from `since` to `until` (both days included,
    UTC), with the given attribution (None: any)."""

    since: date | None = None
    until: date | None = None
    source: str | None = None
    campaign: str | None = None
    adgroup: str | None = None
    ad: str | None = None
    form: str | None = None
    script: str | None = None
    channel: str | None = None

    def attribution(self) -> dict[str, str]:
        chosen = {
            "source": self.source,
            "campaign": self.campaign,
            "adgroup": self.adgroup,
            "ad": self.ad,
            "form": self.form,
            "script": self.script,
            "channel": self.channel,
        }
        return {key: value for key, value in chosen.items() if value is not None}


@dataclass(frozen=True, slots=True)
class FunnelCounts:
    submitted: int = 0
    reached: int = 0
    started: int = 0
    completed: int = 0
    qualified: int = 0
    handed_off: int = 0
    booked: int = 0
    reminded: int = 0  # leads sent at least one reminder after silence
    came_back: int = 0  # of those, leads who wrote again after a reminder

    def stage(self, name: str) -> int:
        value = getattr(self, name)
        assert isinstance(value, int)
        return value


@dataclass(frozen=True, slots=True)
class FunnelGroup:
    """One line of a funnel split by a dimension; `key` is '' for leads without one."""

    key: str
    counts: FunnelCounts


@dataclass(frozen=True, slots=True)
class QuestionStat:
    question: str
    asked: int  # conversations that were asked it
    answered: int  # of those, conversations where the prospect wrote back after it
    abandoned: int  # conversations that expired in silence at it
    answer_histogram: tuple[int, ...]  # by ANSWER_BOUNDS

    @property
    def median_seconds(self) -> float | None:
        return median_from_histogram(self.answer_histogram, ANSWER_BOUNDS)


@dataclass(frozen=True, slots=True)
class DayCount:
    day: date
    submitted: int
    qualified: int


@dataclass(frozen=True, slots=True)
class FunnelReport:
    filters: Filters
    by: str | None
    total: FunnelCounts
    groups: tuple[FunnelGroup, ...]  # empty unless split by a dimension
    questions: tuple[QuestionStat, ...]  # most asked first
    speed_histogram: tuple[int, ...]  # by SPEED_BOUNDS
    days: tuple[DayCount, ...]  # oldest first

    @property
    def median_speed_seconds(self) -> float | None:
        return median_from_histogram(self.speed_histogram, SPEED_BOUNDS)


def rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def bucket_labels(bounds: Sequence[int]) -> list[str]:
    """'≤ 5 s', '5–10 s', ... '> 1 d': what each histogram bucket holds."""
    labels = []
    low = 0
    for high in bounds:
        labels.append(f"≤ {duration(high)}" if low == 0 else f"{duration(low)}–{duration(high)}")
        low = high
    labels.append(f"> {duration(low)}")
    return labels


def duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:g} s"
    if seconds < 3600:
        return f"{seconds / 60:g} min"
    if seconds < 86400:
        return f"{seconds / 3600:g} h"
    return f"{seconds / 86400:g} d"


def median_from_histogram(counts: Sequence[int], bounds: Sequence[int]) -> float | None:
    """The median, interpolated linearly inside the bucket that holds it: exact to within that
    bucket's width. In the last, open bucket it is that bucket's lower bound (a floor)."""
    total = sum(counts)
    if total == 0:
        return None
    middle = total / 2
    seen = 0
    low = 0.0
    for index, count in enumerate(counts):
        if index >= len(bounds):
            return float(low)
        high = float(bounds[index])
        if count and seen + count >= middle:
            return low + (high - low) * (middle - seen) / count
        seen += count
        low = high
    return float(low)
