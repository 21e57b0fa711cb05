"""The lead forecast's maths (bot/forecast.py): beta-binomial intervals, budget split, warning."""

from __future__ import annotations

import math

import pytest

from bot.forecast import (
    ForecastError,
    Observed,
    beta_binomial,
    forecast,
    poisson,
)


def test_the_beta_binomial_interval_holds_the_point_estimate() -> None:
    for trials, successes, observed in [(12, 30, 100), (1, 0, 1000), (50, 999, 1000), (0, 0, 0)]:
        found = beta_binomial(trials, successes, observed)
        assert found.low <= found.point <= found.high
        assert found.low >= 0
        assert found.high <= trials


def test_the_interval_narrows_with_more_observations_at_the_same_rate() -> None:
    few = beta_binomial(100, 3, 10)
    many = beta_binomial(100, 300, 1000)
    assert few.high - few.low > many.high - many.low
    assert math.isclose(many.point, 100 * 301 / 1002)


def test_the_pmf_sums_to_one_so_the_interval_is_a_true_quantile() -> None:
    # With a certain rate (all 1000 converted) nearly all mass is at `trials`.
    assert beta_binomial(20, 1000, 1000).high == 20
    assert beta_binomial(20, 0, 1000).low == 0


def test_submissions_follow_poisson_around_budget_over_cost() -> None:
    found = poisson(11.9)
    assert found.point == 11.9
    assert (found.low, found.high) == (7.0, 18.0)
    assert poisson(0) == poisson(0.0)


def test_the_budget_is_split_by_each_ad_groups_share_of_submissions() -> None:
    result = forecast(100, [Observed("A", 75, 30, 10), Observed("B", 25, 5, 1)], cost_per_lead=2.0)
    assert [(g.key, g.budget) for g in result.groups] == [("A", 75.0), ("B", 25.0)]
    assert result.submissions.point == 50.0
    a, b = result.groups
    assert a.submissions.point == 37.5
    assert a.completed.point > b.completed.point
    assert result.warnings == ()


def test_a_budget_below_ten_times_the_cost_per_lead_warns() -> None:
    groups = [Observed("A", 90, 30, 10), Observed("B", 10, 5, 1)]
    result = forecast(40, groups, cost_per_lead=4.2)  # 40 < 42
    assert result.warnings[0].startswith("the whole budget: a daily budget of 40.00 is below 10")
    assert [g.warning is not None for g in result.groups] == [True, True]
    # 400: ad group A gets 360, enough; B gets 40, not.
    enough = forecast(400, groups, cost_per_lead=4.2)
    assert [g.key for g in enough.groups if g.warning] == ["B"]
    assert len(enough.warnings) == 1
    assert "ad group B: a daily budget of 40.00 is below" in enough.warnings[0]
    assert forecast(420, [Observed("A", 1, 1, 1)], cost_per_lead=4.2).warnings == ()


def test_the_cost_per_lead_can_come_from_the_spend_observed() -> None:
    result = forecast(100, [Observed("A", 40, 10, 5)], spend=200)
    assert (result.cost_per_lead, result.cost_observed) == (5.0, True)
    assert forecast(100, [Observed("A", 40, 10, 5)], cost_per_lead=3).cost_observed is False


def test_without_observations_it_says_the_rates_are_guesses() -> None:
    result = forecast(100, [], cost_per_lead=1)
    assert result.groups == ()
    assert any("uniform prior" in warning for warning in result.warnings)


@pytest.mark.parametrize(
    ("budget", "cost", "spend", "groups", "message"),
    [
        (0, 1.0, None, [], "budget must be more than 0"),
        (10, None, None, [], "give the cost per lead"),
        (10, None, 50.0, [], "no submissions"),
        (10, -1.0, None, [], "cost per lead must be more than 0"),
    ],
)
def test_what_cannot_be_forecast_is_refused(
    budget: float, cost: float | None, spend: float | None, groups: list[Observed], message: str
) -> None:
    with pytest.raises(ForecastError, match=message):
        forecast(budget, groups, cost_per_lead=cost, spend=spend)
