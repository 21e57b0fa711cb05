"""The lead forecast: what a daily budget brings, per ad group, from the business's own funnel.

Daily submissions are the budget over the cost per submission, split among ad groups by their
share of past submissions; their interval is Poisson's (submissions arrive independently).
Completed and qualified leads per day follow a beta-binomial: the conversion rate is
uncertain, Beta(1 + k, 1 + n - k) after k conversions in n observed submissions (a uniform
prior), and each of the day's submissions converts at that rate. The interval is the central
LEVEL of that distribution, summed exactly from its pmf (math.lgamma): fewer observations give
a wider interval, more give a narrower one. See docs/analytics.md.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from bot.funnel import FunnelGroup

LEVEL = 0.9  # the interval holds 90% of the forecast's probability
LEARNING_MULTIPLE = 10  # the ad platforms' rule: a daily budget of 10x the cost per lead


class ForecastError(ValueError):
    """A budget or cost that cannot be forecast from (zero, negative)."""


@dataclass(frozen=True, slots=True)
class Observed:
    """What a group (an ad group, a campaign) did in the period looked at."""

    key: str
    submitted: int
    completed: int
    qualified: int


@dataclass(frozen=True, slots=True)
class Interval:
    low: float
    point: float
    high: float


@dataclass(frozen=True, slots=True)
class GroupForecast:
    key: str
    share: float  # of the budget, from the group's share of past submissions
    budget: float
    submissions: Interval
    completed: Interval
    qualified: Interval
    observed: Observed
    warning: str | None = None


@dataclass(frozen=True, slots=True)
class Forecast:
    budget: float
    cost_per_lead: float
    cost_observed: bool  # from spend over past submissions, rather than entered
    submissions: Interval
    completed: Interval
    qualified: Interval
    groups: tuple[GroupForecast, ...]
    warnings: tuple[str, ...]


def observed_from(groups: Sequence[FunnelGroup]) -> list[Observed]:
    """What a funnel split by ad group (or campaign...) observed, for `forecast`."""
    return [
        Observed(group.key, group.counts.submitted, group.counts.completed, group.counts.qualified)
        for group in groups
    ]


def _log_beta(a: float, b: float) -> float:
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


def _quantiles(pmf: Sequence[float], level: float) -> tuple[int, int]:
    tail = (1 - level) / 2
    low = high = len(pmf) - 1
    total = 0.0
    found_low = False
    for k, p in enumerate(pmf):
        total += p
        if not found_low and total >= tail:
            low, found_low = k, True
        if total >= 1 - tail:
            high = k
            break
    return low, high


def beta_binomial(trials: int, successes: int, observed: int, level: float = LEVEL) -> Interval:
    """Conversions among `trials` new submissions, after `successes` in `observed` past ones."""
    alpha = 1.0 + successes
    beta = 1.0 + observed - successes
    base = _log_beta(alpha, beta)
    pmf = [
        math.exp(
            math.lgamma(trials + 1)
            - math.lgamma(k + 1)
            - math.lgamma(trials - k + 1)
            + _log_beta(k + alpha, trials - k + beta)
            - base
        )
        for k in range(trials + 1)
    ]
    low, high = _quantiles(pmf, level)
    return _around(low, trials * alpha / (alpha + beta), high)


def _around(low: int, mean: float, high: int) -> Interval:
    # A very skewed distribution (a rare conversion, few trials) can put its mean past a
    # quantile of whole numbers: the interval then reaches the mean's neighbouring whole number.
    return Interval(float(min(low, math.floor(mean))), mean, float(max(high, math.ceil(mean))))


def poisson(mean: float, level: float = LEVEL) -> Interval:
    """Submissions in a day that brings `mean` on average."""
    if mean <= 0:
        return Interval(0.0, 0.0, 0.0)
    limit = int(mean + 12 * math.sqrt(mean) + 12)  # beyond it the tail is negligible
    pmf = [math.exp(k * math.log(mean) - mean - math.lgamma(k + 1)) for k in range(limit + 1)]
    low, high = _quantiles(pmf, level)
    return _around(low, mean, high)


def _learning_warning(budget: float, cost: float, what: str) -> str | None:
    if budget >= LEARNING_MULTIPLE * cost:
        return None
    return (
        f"{what}: a daily budget of {budget:.2f} is below {LEARNING_MULTIPLE} times the cost per "
        f"lead ({LEARNING_MULTIPLE * cost:.2f}); the ad platform may not leave its learning "
        "phase, and results will be slower and costlier than forecast"
    )


def _group(observed: Observed, share: float, budget: float, cost: float) -> GroupForecast:
    mean = budget / cost
    trials = round(mean)  # the beta-binomial counts whole submissions
    return GroupForecast(
        key=observed.key,
        share=share,
        budget=budget,
        submissions=poisson(mean),
        completed=beta_binomial(trials, observed.completed, observed.submitted),
        qualified=beta_binomial(trials, observed.qualified, observed.submitted),
        observed=observed,
        warning=_learning_warning(budget, cost, f"ad group {observed.key or '(none)'}"),
    )


def forecast(
    budget: float,
    groups: Sequence[Observed],
    *,
    cost_per_lead: float | None = None,
    spend: float | None = None,
) -> Forecast:
    """Forecast a day at `budget`, at the entered `cost_per_lead`, or at the one observed:
    `spend` over the period divided by its submissions."""
    if budget <= 0:
        raise ForecastError("the daily budget must be more than 0")
    submitted = sum(group.submitted for group in groups)
    observed_cost = cost_per_lead is None
    if cost_per_lead is None:
        if spend is None or spend <= 0:
            raise ForecastError("give the cost per lead, or the spend of the period looked at")
        if submitted == 0:
            raise ForecastError("no submissions in the period: give the cost per lead")
        cost_per_lead = spend / submitted
    if cost_per_lead <= 0:
        raise ForecastError("the cost per lead must be more than 0")
    totals = Observed(
        "",
        submitted,
        sum(group.completed for group in groups),
        sum(group.qualified for group in groups),
    )
    overall = _group(totals, 1.0, budget, cost_per_lead)
    shares = [
        (group, group.submitted / submitted) for group in groups if submitted and group.submitted
    ]
    per_group = tuple(
        _group(group, share, budget * share, cost_per_lead) for group, share in shares
    )
    warnings = [_learning_warning(budget, cost_per_lead, "the whole budget")]
    if submitted == 0:
        warnings.append(
            "no submissions observed yet: the conversion rates are guesses (a uniform prior), "
            "and the intervals are as wide as they can be"
        )
    warnings += [group.warning for group in per_group]
    return Forecast(
        budget=budget,
        cost_per_lead=cost_per_lead,
        cost_observed=observed_cost,
        submissions=overall.submissions,
        completed=overall.completed,
        qualified=overall.qualified,
        groups=per_group,
        warnings=tuple(warning for warning in warnings if warning is not None),
    )
