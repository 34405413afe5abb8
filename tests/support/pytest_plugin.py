"""pytest hook: a failed test's report gets the log tail of every live test broker.

Registered by ``tests/integration/conftest.py`` (and by any conftest that imports
``pytest_runtest_makereport`` from here).  Sections show up under the failure in the
normal pytest output ("Captured broker log ...").
"""

from __future__ import annotations

from collections.abc import Generator

import pytest

from tests.support.broker import live_brokers

_SECTION_PREFIX = "Captured broker log"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if not report.failed:
        return
    if any(name.startswith(_SECTION_PREFIX) for name, _ in report.sections):
        return  # registered twice (root and local conftest): report once
    for proc in live_brokers():
        report.sections.append((f"{_SECTION_PREFIX} {proc.workdir.name}", proc.log_tail()))
