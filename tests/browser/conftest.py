"""Browser tests: each test's outcome is kept on its item, so that the page fixtures can save a
screenshot of every open page when the test failed (into test-artifacts/)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    report: pytest.TestReport = yield  # type: ignore[misc]
    item.stash.setdefault(REPORTS, {})[report.when] = report
    return report  # type: ignore[return-value]


def failed(item: pytest.Item) -> bool:
    reports = item.stash.get(REPORTS, {})
    return any(report.failed for report in reports.values())
