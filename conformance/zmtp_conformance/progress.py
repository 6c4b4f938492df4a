"""A live progress bar for matrix runs (`zmtp-conformance run --progress`), drawn with rich.

It replaces pytest's row of dots: one bar for the whole matrix with the
running counts of each outcome, updated as cells finish on any worker
(under pytest-xdist the controller sees every worker's reports).
"""

from __future__ import annotations

from typing import Any

import pytest

from .plugin import cell_record
from .vocabulary import Outcome

COLOURS = {
    Outcome.PASSED: "green",
    Outcome.FAILED: "red",
    Outcome.DEVIATES: "yellow",
    Outcome.UNSUPPORTED: "blue",
    Outcome.SKIPPED: "dim",
}


class ProgressBar:
    def __init__(self, config: pytest.Config) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.config = config
        self.counts = {o: 0 for o in COLOURS}
        self.progress = Progress(
            TextColumn("[bold]matrix"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.description}"),
            console=Console(stderr=True),
            transient=False,
        )
        self.task = self.progress.add_task("", total=None)

    def _describe(self) -> str:
        return "  ".join(f"[{COLOURS[o]}]{o} {n}[/]" for o, n in self.counts.items() if n)

    # -- totals ------------------------------------------------------------

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.progress.update(self.task, total=len(session.items))
        self.progress.start()

    # -- per cell ------------------------------------------------------------

    @pytest.hookimpl(tryfirst=True)
    def pytest_report_teststatus(self, report: pytest.TestReport, config: pytest.Config) -> Any:
        # Keep pytest's category (its summary still counts), but print no dot: the bar shows it.
        if getattr(report, "outcome", None) == "rerun":
            return "rerun", "", ""
        if report.when == "call" or (report.when == "setup" and report.skipped):
            if report.passed:
                return "passed", "", ""
            if report.skipped:
                return ("xfailed" if hasattr(report, "wasxfail") else "skipped"), "", ""
            if report.failed:
                return "failed", "", ""
        if report.when in ("setup", "teardown") and report.passed:
            return "", "", ""
        return None

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.outcome == "rerun":  # pytest-rerunfailures tries again; the last attempt counts
            return
        rec = cell_record(report)
        if rec is not None:
            self.counts[rec["outcome"]] = self.counts.get(rec["outcome"], 0) + 1
            self.progress.update(self.task, advance=1, description=self._describe())

    def pytest_runtest_logfinish(self, nodeid: str, location: Any) -> None:
        self.progress.refresh()

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self.progress.stop()


class XdistProgressBar(ProgressBar):
    """Under pytest-xdist the controller collects nothing; the workers say how many cells there are."""

    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        # Every worker collects the whole matrix; the first to report sets the total.
        if self.progress.tasks[0].total is None:
            self.progress.update(self.task, total=len(ids))
            self.progress.start()


def make(config: pytest.Config) -> ProgressBar:
    cls = XdistProgressBar if config.pluginmanager.hasplugin("xdist") else ProgressBar
    return cls(config)
