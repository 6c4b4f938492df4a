"""What a run writes into allure-results beyond allure-pytest's defaults.

- A deviating cell leaves as status `unknown`, not `skipped`: pytest sees
  it as xfail, which allure-pytest reports as skipped, the same as a cell a
  peer does not support. Its message starts "deviates: PEER" and it carries
  the label DEVIATING_PEER, so the category "Deviates from the RFC" groups
  the deviations by peer.
- A cell's capture is attached only where a reader needs it (failed and
  deviating cells). Every other cell links its pcap, which stays in the
  report folder's captures/ (matrix.html lists them too): attaching every
  pcap made the single-file report weigh 211 MB for a 3,810-cell run.
- categories.json in the results folder, for Allure 2 (Allure 3 reads its
  categories from the configuration `allure.generate` writes).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

DEVIATING_PEER = "deviating peer"  # label: the peer whose documented deviation excused the cell
DEVIATION = "deviation"  # label: the deviation table's entry and its reason
DEVIATES_STATUS = "unknown"
DEVIATES_PREFIX = "deviates: "
# The report sits one folder below the report folder (allure-report/, allure-report-single/).
REPORT_TO_RUN = "../"

DEVIATES_CATEGORY = "Deviates from the RFC (documented deviations)"
UNSUPPORTED_CATEGORY = "Unsupported by a peer"
# [\s\S] rather than a DOTALL flag: Allure 2 (Java) and Allure 3 (JavaScript) both read this regex,
# Java matching the whole message and JavaScript searching it.
_CATEGORIES = (
    (DEVIATES_CATEGORY, "unknown", r"deviates: [\s\S]*", DEVIATING_PEER),
    (UNSUPPORTED_CATEGORY, "skipped", r"[\s\S]*unsupported: [\s\S]*", None),
)


def categories(group_by_label: bool = True) -> list[dict[str, Any]]:
    """The categories a reader sorts cells by; with group_by_label (Allure 3), deviations grouped by peer."""
    out = []
    for name, status, regex, label in _CATEGORIES:
        cat: dict[str, Any] = {"name": name, "matchedStatuses": [status], "messageRegex": regex}
        if group_by_label and label:
            cat["groupBy"] = [{"label": label}]
        out.append(cat)
    return out


def deviation_labels(peer: str, entry: str, reason: str) -> list[tuple[str, str]]:
    """The labels a deviating cell carries: which peer deviates, and the table's entry that says how."""
    return [(DEVIATING_PEER, peer), (DEVIATION, f"{entry}: {reason}")]


def capture_link(relative: str) -> str:
    """The URL, from the report's index.html, of a capture at `relative` in the report folder."""
    return REPORT_TO_RUN + Path(relative).as_posix()


def write_categories(results: Path) -> None:
    """categories.json in an allure-results folder (replaced whole, as several workers may write it)."""
    results.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=results, prefix=".categories-", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(categories(group_by_label=False), f, indent=1)
    os.replace(tmp, results / "categories.json")


def mark_deviation(result: Any) -> bool:
    """A deviating cell's result (allure_commons' TestResult) as status unknown with its peer in the message."""
    labels = {label.name: label.value for label in result.labels}
    peer = labels.get(DEVIATING_PEER)
    if peer is None or result.status != "skipped":
        return False
    from allure_commons.model2 import StatusDetails

    result.status = DEVIATES_STATUS
    result.statusDetails = StatusDetails(message=f"{DEVIATES_PREFIX}{peer}: {labels.get(DEVIATION, '')}")
    return True


def install(results: Path) -> Any:
    """Registers, ahead of allure's file logger, a plugin that marks deviations and writes categories.json;
    returns what `uninstall` takes."""
    import allure_commons

    class DeviationStatus:
        def __init__(self) -> None:
            self.wrote_categories = False

        # tryfirst: the status changes before the file logger (another report_result) writes the result.
        @allure_commons.hookimpl(tryfirst=True)
        def report_result(self, result: Any) -> None:
            if not self.wrote_categories:
                write_categories(results)
                self.wrote_categories = True
            mark_deviation(result)

    plugin = DeviationStatus()
    allure_commons.plugin_manager.register(plugin)
    return plugin


def uninstall(plugin: Any) -> None:
    import allure_commons

    if allure_commons.plugin_manager.is_registered(plugin):
        allure_commons.plugin_manager.unregister(plugin)
