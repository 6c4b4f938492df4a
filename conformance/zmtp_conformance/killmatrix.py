"""The kill matrix: proof that the harness catches each misbehaviour impl can be told to have.

BoringSSL's way: every zmtp.ProtocolBugs knob is switched on in impl's agent
in turn, and the scenarios listed for it in conformance/kill-matrix.yaml run
impl against the raw peer and libzmq (tcp, with captures through the
recording proxy, so the wire validator judges too). A knob is caught when at
least one cell fails; a knob no cell catches is a hole in the harness and
fails the run. A knob that is legal behaviour (a greeting sent in one piece)
says so, with the reason, instead of listing scenarios.
"""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from . import matrix, peers
from .cells import RAW, Cell
from .deviations import for_peers, load_wire
from .deviations import load as load_deviations
from .runner import run_cell
from .scenario import Scenario, load_all
from .vocabulary import Outcome
from .wire import ProxyCapture, file_name

TABLE = Path(__file__).resolve().parent.parent / "kill-matrix.yaml"


class KillMatrixError(Exception):
    """A kill-matrix table that does not fit ProtocolBugs or the scenarios; says which entry and why."""


@dataclass
class Knob:
    name: str
    value: Any
    scenarios: list[str] = field(default_factory=list)
    legal: str = ""  # why switching it on is not a misbehaviour

    @property
    def argument(self) -> str:
        return self.name if self.value is True else f"{self.name}={self.value!r}"


@dataclass
class KnobResult:
    knob: Knob
    cells: int = 0
    caught: list[str] = field(default_factory=list)  # cell ids that failed with the knob on
    reasons: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        if self.knob.legal:
            return "legal"
        return "caught" if self.caught else "UNDETECTED"


def load(path: Path = TABLE) -> list[Knob]:
    from zmtp.bugs import ProtocolBugs  # the judged side's knobs: what impl can be told to get wrong

    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise KillMatrixError(f"cannot read {path}: {exc}") from None
    names = [f.name for f in fields(ProtocolBugs)]
    entries = raw.get("knobs") or {}
    missing = [n for n in names if n not in entries]
    if missing:
        raise KillMatrixError(f"{path}: no entry for ProtocolBugs knob(s) {', '.join(missing)}")
    unknown = [n for n in entries if n not in names]
    if unknown:
        raise KillMatrixError(f"{path}: {', '.join(unknown)} is no ProtocolBugs knob")
    ids = {sc.id for sc in load_all()}
    knobs = []
    for name in names:
        e = entries[name] or {}
        if not e.get("legal") and not e.get("scenarios"):
            raise KillMatrixError(f"{path}: {name} lists no scenario that catches it and does not say why it is legal")
        for sid in e.get("scenarios") or []:
            if sid not in ids:
                raise KillMatrixError(f"{path}: {name}: scenario {sid!r} does not exist")
        knobs.append(Knob(name, e.get("value", True), list(e.get("scenarios") or []), str(e.get("legal") or "")))
    return knobs


def cells_for(knob: Knob, counterparts: list[str], scenarios: list[Scenario] | None = None) -> list[Cell]:
    """impl against the raw peer and each counterpart, both ways, over tcp."""
    chosen = [sc for sc in (scenarios if scenarios is not None else load_all()) if sc.id in knob.scenarios]
    out = []
    for cell in matrix.expand(chosen, ["impl", *counterparts]):
        if "impl" in (cell.server, cell.client) and cell.transport == "tcp":
            out.append(cell)
    return out


@dataclass
class Setting:
    """What every knob's run shares, read once: the peers, the deviation tables, the scenarios."""

    registry: dict[str, peers.PeerSpec]
    deviations: list[Any]
    wire_table: list[Any]
    scenarios: list[Scenario]

    @classmethod
    def load(cls) -> Setting:
        registry = peers.load_registry()
        families = {n: s.family or n for n, s in registry.items()}
        return cls(registry, for_peers(load_deviations(), families), for_peers(load_wire(), families), load_all())


async def run_knob(knob: Knob, counterparts: list[str], workdir: Path, setting: Setting) -> KnobResult:
    result = KnobResult(knob)
    if knob.legal:
        return result
    pool = peers.AgentPool(setting.registry, {"impl": ["--bug", knob.argument]})
    # Knobs run at once and share cell ids: each writes its captures in a folder of its own.
    workdir = workdir / knob.name
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        for cell in cells_for(knob, counterparts, setting.scenarios):
            capture = ProxyCapture(cell.client)
            r = await run_cell(
                cell, pool, setting.deviations, capture, workdir / file_name(cell.id), setting.wire_table
            )
            result.cells += 1
            if r.outcome == Outcome.FAILED:
                result.caught.append(cell.id)
                result.reasons.append(r.reason)
                await pool.discard_cell(cell.server, cell.client)
    finally:
        await pool.close()
    return result


# Knobs run side by side, each with its own agents: a knob's cells mostly wait on sockets, so
# four at once take about a third of the time of one after another on two cores. Extra load can
# only add failures, never hide one, so it cannot make a knob look undetected.
CONCURRENT_KNOBS = 4


def run(  # type: ignore[no-untyped-def]
    knobs: list[Knob], counterparts: list[str], log=print, concurrency: int = CONCURRENT_KNOBS
) -> list[KnobResult]:
    setting = Setting.load()

    async def all_knobs(workdir: Path) -> list[KnobResult]:
        gate = asyncio.Semaphore(max(1, concurrency))

        async def one(knob: Knob) -> KnobResult:
            async with gate:
                return await run_knob(knob, counterparts, workdir, setting)

        return await asyncio.gather(*(one(k) for k in knobs))

    with tempfile.TemporaryDirectory(prefix="zmtp-kill-") as tmp:
        results = asyncio.run(all_knobs(Path(tmp)))
    for knob, r in zip(knobs, results, strict=True):
        if knob.legal:
            log(f"{knob.name:<30} legal: {knob.legal}")
        else:
            log(f"{knob.name:<30} {r.verdict}: {len(r.caught)} of {r.cells} cells failed")
    return results


def record(results: list[KnobResult]) -> dict[str, Any]:
    return {
        r.knob.name: {
            "value": repr(r.knob.value),
            "verdict": r.verdict,
            "legal": r.knob.legal or None,
            "cells": r.cells,
            "caught_by": r.caught,
            "first_reason": r.reasons[0] if r.reasons else None,
        }
        for r in results
    }


def write_html(path: Path, results: list[KnobResult]) -> None:
    import html

    e = html.escape
    rows = []
    for r in results:
        cls = {"caught": "ok", "legal": "legal", "UNDETECTED": "bad"}[r.verdict]
        what = e(r.knob.legal) if r.knob.legal else "<br>".join(e(c) for c in r.caught[:12])
        more = f"<br>... {len(r.caught) - 12} more" if len(r.caught) > 12 else ""
        rows.append(
            f"<tr class='{cls}'><td><code>{e(r.knob.argument)}</code></td><td>{e(r.verdict)}</td>"
            f"<td>{len(r.caught)} / {r.cells}</td><td>{what}{more}</td></tr>"
        )
    path.write_text(
        "<!doctype html><meta charset='utf-8'><title>Kill matrix</title><style>body{font:14px system-ui;margin:2em}"
        "td,th{border:1px solid #ccc;padding:.3em;vertical-align:top}table{border-collapse:collapse}"
        ".ok{background:#e3f6e3}.bad{background:#fde2e2}.legal{background:#eee}</style>"
        "<h1>Kill matrix: every ProtocolBugs knob of impl, and the cells that caught it</h1>"
        "<p>Each knob is switched on in impl's agent; a knob is caught when at least one of the cells "
        "(impl against the raw peer and libzmq, tcp, wire validated) fails.</p>"
        "<table><tr><th>knob</th><th>verdict</th><th>failed / cells</th><th>caught by</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def available_counterparts(wanted: list[str]) -> list[str]:
    registry = peers.load_registry()
    return [p for p in wanted if p in registry and p != RAW and registry[p].missing() is None]
