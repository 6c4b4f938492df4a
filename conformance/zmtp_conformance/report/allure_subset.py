"""The cells the default Allure report shows: the ones a reader opens it for.

A full docker matrix is about 13,000 cells, and Allure 3 carries each one
several times over whatever it attaches (its result, a search index, a
tree, categories, a timeline, each twice in the single file): measured,
the single file of a 12,882-cell run weighed 201 MB, of which attachments
were under a quarter. What makes it heavy is the number of cells, so the
default report holds the failed, broken and deviating cells only, with
all they attach (transcript, capture, wire violations, expected vs seen),
and says at the top how many cells the run had of each outcome and where
the others are: matrix.html and matrix.json list every cell, and
`zmtp-conformance report --all-cells` renders them all.

The run's allure-results folder is left whole (a user's own Allure reads
it as it is): the subset is a copy, hard links where the filesystem
allows, made for one `allure generate` and thrown away after it.
"""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import allure_results

# Allure statuses of the cells a reader needs: a failure, a harness error (pytest's "broken"), a deviation.
NEEDED = frozenset({"failed", "broken", allure_results.DEVIATES_STATUS})
# Allure's statuses in the words of the harness (vocabulary.Outcome), in the order the summary lists them.
OUTCOME_WORDS = {
    "failed": "failed",
    "broken": "broken (harness error)",
    allure_results.DEVIATES_STATUS: "deviates",
    "passed": "passed",
    "skipped": "unsupported or skipped",
}


@dataclass
class Subset:
    """What a subset holds of its run: cells by outcome (a cell's last attempt), and what was copied."""

    cells: Counter[str] = field(default_factory=Counter)  # every cell of the run, by Allure status
    shown: Counter[str] = field(default_factory=Counter)  # the cells in the subset, by Allure status
    results: int = 0  # result files copied (a rerun cell has one per attempt)
    attachments: int = 0

    def variables(self) -> dict[str, str]:
        """The lines the report shows at its top: the run's cells by outcome, and what this report holds."""
        total = sum(self.cells.values())
        shown = sum(self.shown.values())
        order = list(OUTCOME_WORDS) + sorted(set(self.cells) - set(OUTCOME_WORDS))
        by_outcome = ", ".join(f"{self.cells[s]:,} {OUTCOME_WORDS.get(s, s)}" for s in order if self.cells[s])
        return {
            "cells in the run": f"{total:,}: {by_outcome}" if total else "0",
            "cells in this report": (
                f"{shown:,}, the failed, broken and deviating ones (with their reruns); every cell is in "
                "../matrix.html and ../matrix.json; `zmtp-conformance report --all-cells` renders them all"
            ),
        }


def _attachment_sources(node: dict[str, Any]) -> Iterator[str]:
    """The attachment files a result, a step or a fixture names, its steps' included."""
    for att in node.get("attachments") or ():
        if att.get("source"):
            yield att["source"]
    for step in node.get("steps") or ():
        yield from _attachment_sources(step)


def _place(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:  # another filesystem, or one without hard links
        shutil.copyfile(src, dst)


def select(results: Path, into: Path) -> Subset:
    """Copies into `into` (an empty or new folder) the results of `results` that a reader needs,
    with their attachments and fixtures' containers, and the folder's other files (categories.json,
    environment.properties, executor.json); counts every cell by outcome.

    The attempts of one cell (one historyId, several with --reruns) go together: a cell that failed
    and passed on a rerun is flaky, which a reader needs as much as a failure, and is shown with all
    its attempts; a cell is counted once, by its last attempt."""
    into.mkdir(parents=True, exist_ok=True)
    attempts: dict[str, list[tuple[Path, dict[str, Any]]]] = {}
    for path in sorted(results.glob("*-result.json")):
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ValueError(f"{path}: not an Allure result ({exc})") from exc
        key = doc.get("historyId") or doc.get("uuid") or path.name
        attempts.setdefault(key, []).append((path, doc))

    subset = Subset()
    kept_uuids: set[str] = set()
    sources: set[str] = set()
    for group in attempts.values():
        last = max(group, key=lambda item: item[1].get("stop") or 0)[1]
        status = last.get("status") or "unknown"
        subset.cells[status] += 1
        if not any(doc.get("status") in NEEDED for _, doc in group):
            continue
        subset.shown[status] += 1
        for path, doc in group:
            _place(path, into / path.name)
            subset.results += 1
            kept_uuids.add(doc.get("uuid", ""))
            sources.update(_attachment_sources(doc))

    for path in sorted(results.glob("*-container.json")):
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ValueError(f"{path}: not an Allure container ({exc})") from exc
        if kept_uuids.intersection(doc.get("children") or ()):
            _place(path, into / path.name)
            for fixture in (*(doc.get("befores") or ()), *(doc.get("afters") or ())):
                sources.update(_attachment_sources(fixture))

    for name in sorted(sources):
        src = results / name
        if src.is_file():  # a result naming a missing file: Allure reports it missing, as it would unfiltered
            _place(src, into / name)
            subset.attachments += 1
    for path in results.iterdir():
        if (
            path.is_file()
            and not path.name.endswith(("-result.json", "-container.json"))
            and "-attachment" not in path.name
        ):
            _place(path, into / path.name)
    return subset
