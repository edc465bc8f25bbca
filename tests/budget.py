"""The default suite's time budget, as pytest hooks (imported by ``tests/conftest.py``).

Every default test (not marked ``slow``) should finish within ``BUDGET_S`` on a quiet 2-core machine: the run
lists the ones that did not, and fails when one takes longer than ``--max-test-seconds`` (``FAIL_AFTER_S`` unless
given: twice the budget, because the same machine runs up to a third slower in a busy hour).
"""

from __future__ import annotations

BUDGET_S = 30.0  # per default test, on a quiet 2-core machine: tests over it are listed
FAIL_AFTER_S = 60.0  # the default of --max-test-seconds: tests over it fail the run
_fail_after_s = FAIL_AFTER_S
_list_after_s = BUDGET_S  # the lower of the two: a stricter --max-test-seconds lists what it fails
_over_budget: list[tuple[float, str]] = []


def pytest_addoption(parser) -> None:
    parser.addoption("--max-test-seconds", type=float, default=FAIL_AFTER_S,
                     help=f"fail the run if a test without the slow marker takes longer (default {FAIL_AFTER_S:g}; "
                          f"tests over the {BUDGET_S:g} s budget are listed at the end either way)")


def pytest_configure(config) -> None:
    global _fail_after_s, _list_after_s
    _fail_after_s = config.getoption("--max-test-seconds")
    _list_after_s = min(BUDGET_S, _fail_after_s)


def pytest_runtest_logreport(report) -> None:
    """Collects the tests over budget (on the xdist controller too: workers send their reports there)."""
    if report.when == "call" and "slow" not in report.keywords and report.duration > _list_after_s:
        _over_budget.append((report.duration, report.nodeid))


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    if _over_budget:
        terminalreporter.section(f"tests over the {_list_after_s:g} s budget (mark them slow or make "
                                 f"them cheaper; over {_fail_after_s:g} s fails the run)")
        for seconds, nodeid in sorted(_over_budget, reverse=True):
            terminalreporter.line(f"{seconds:6.1f} s  {nodeid}")


def pytest_sessionfinish(session, exitstatus) -> None:
    if any(seconds > _fail_after_s for seconds, _ in _over_budget) and exitstatus == 0:
        session.exitstatus = 1
