"""Flaky cells over several runs: which cells needed a rerun, in which run.

A cell that passes only on its rerun is a defect of the harness or a finding about a peer,
never noise to live with (issue 18). One run's matrix.json lists its flaky cells in
`meta.flaky`; this module lines several runs up, oldest first, so a trend shows.

Cells that passed only on a rerun after a declared stall of a peer (peers.yaml `known_stalls`,
`meta.stalls`) are counted apart: a reviewed upstream bug whose rate is watched, not a flaky cell,
so they do not break a clean streak.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import jsonfile


@dataclass(frozen=True)
class Run:
    source: Path
    generated: str
    cells: int
    flaky: tuple[str, ...]
    reasons: dict[str, str] = field(default_factory=dict)
    stalls: dict[str, str] = field(default_factory=dict)  # cell -> the known stall it passed after


def read_run(source: Path) -> Run:
    """One run's flaky cells, from its report folder or matrix.json."""
    path = source if source.suffix == ".json" else source / "matrix.json"
    meta, records = jsonfile.read(path)
    # A matrix.json written before meta.flaky existed still carries the per-cell flag.
    flaky = meta.get("flaky")
    if flaky is None:
        flaky = sorted(r["id"] for r in records if r.get("flaky"))
    by_id = {r["id"]: r for r in records}
    stalls = meta.get("stalls")
    if stalls is None:
        stalls = {r["id"]: r["stall"] for r in records if r.get("stall") and r["outcome"] == "passed"}
    return Run(
        source=source,
        generated=str(meta.get("generated") or ""),
        cells=len(records),
        flaky=tuple(flaky),
        reasons={i: str(by_id[i].get("reason") or "") for i in flaky if i in by_id},
        stalls=dict(stalls),
    )


def trend(runs: list[Run]) -> list[str]:
    """Lines for a person: each run's count (oldest first), then every cell flaky in any run
    with a mark per run, the most often flaky first."""
    runs = sorted(runs, key=lambda r: r.generated)
    lines = [
        f"run {i + 1}: {r.generated or '?'}  {len(r.flaky)} flaky of {r.cells} cells, "
        f"{len(r.stalls)} passed after a known stall  ({r.source})"
        for i, r in enumerate(runs)
    ]
    lines += _stall_lines(runs)
    seen: dict[str, int] = {}
    for r in runs:
        for cell in r.flaky:
            seen[cell] = seen.get(cell, 0) + 1
    if not seen:
        lines.append("no flaky cell in any run")
        return lines
    lines.append("")
    lines.append("  ".join(f"r{i + 1}" for i in range(len(runs))) + "  cell")
    for cell, _ in sorted(seen.items(), key=lambda kv: (-kv[1], kv[0])):
        marks = "  ".join(" x" if cell in r.flaky else " ." for r in runs)
        last = next((r.reasons[cell] for r in reversed(runs) if cell in r.reasons), "")
        lines.append(f"{marks}  {cell}" + (f"\n      {last}" if last else ""))
    return lines


def _stall_lines(runs: list[Run]) -> list[str]:
    """For each known stall, how many cells passed on a rerun after it, run by run (oldest first)."""
    ids = sorted({s for r in runs for s in r.stalls.values()})
    lines = []
    for sid in ids:
        counts = "  ".join(f"r{i + 1}: {sum(v == sid for v in r.stalls.values())}" for i, r in enumerate(runs))
        lines.append(f"known stall {sid}, cells that passed on a rerun: {counts}")
    return lines


def clean_streak(runs: list[Run]) -> int:
    """How many of the most recent runs in a row had no flaky cell."""
    streak = 0
    for r in sorted(runs, key=lambda r: r.generated, reverse=True):
        if r.flaky:
            break
        streak += 1
    return streak


def summary(runs: list[Run]) -> dict[str, Any]:
    return {
        "runs": [
            {"source": str(r.source), "generated": r.generated, "cells": r.cells, "flaky": list(r.flaky), "stalls": r.stalls}
            for r in runs
        ],
        "clean_streak": clean_streak(runs),
    }
