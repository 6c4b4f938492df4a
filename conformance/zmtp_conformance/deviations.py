"""The reviewed table of known deviations (conformance/deviations.yaml).

A cell that fails where the table says a peer departs from the spec is
reported as "deviates", not "failed": the report still shows it, with the
reason and a reference, but it does not fail the build.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
TABLE = HERE.parent / "deviations.yaml"


@dataclass(frozen=True)
class Deviation:
    scenario: str  # id or glob
    peer: str
    side: str  # server, client or any
    reason: str
    reference: str = ""

    def applies(self, scenario_id: str, server_peer: str, client_peer: str) -> bool:
        if not fnmatch.fnmatchcase(scenario_id, self.scenario):
            return False
        if self.side in ("server", "any") and server_peer == self.peer:
            return True
        return self.side in ("client", "any") and client_peer == self.peer


def _read(path: Path) -> dict:
    try:
        return yaml.safe_load(path.read_text()) or {}
    except OSError as exc:
        raise SystemExit(f"cannot read the deviation table {path}: {exc}") from None


def load(path: Path = TABLE) -> list[Deviation]:
    raw = _read(path)
    out = []
    for i, entry in enumerate(raw.get("deviations") or []):
        missing = {"scenario", "peer", "reason"} - set(entry or {})
        if missing:
            raise SystemExit(f"{path}: entry {i + 1} lacks {', '.join(sorted(missing))}")
        side = entry.get("side", "any")
        if side not in ("server", "client", "any"):
            raise SystemExit(f"{path}: entry {i + 1}: side must be server, client or any, not {side!r}")
        # One entry may name several peers (czmq, for one, behaves as the libzmq it
        # links) and several scenarios (one cause seen by more than one check).
        names = entry["peer"] if isinstance(entry["peer"], list) else [entry["peer"]]
        ids = entry["scenario"] if isinstance(entry["scenario"], list) else [entry["scenario"]]
        for scenario in ids:
            for peer in names:
                out.append(Deviation(scenario, peer, side, entry["reason"], entry.get("reference", "")))
    return out


@dataclass(frozen=True)
class WireDeviation:
    """A validator finding (check id) that a peer is known to produce on the wire."""

    check: str  # check id or glob, e.g. "curve-message-frame"
    peer: str
    reason: str
    reference: str = ""
    scenario: str = "*"  # only in these scenarios (id or glob)

    def applies(self, check: str, peer: str, scenario_id: str) -> bool:
        return (
            peer == self.peer
            and fnmatch.fnmatchcase(check, self.check)
            and fnmatch.fnmatchcase(scenario_id, self.scenario)
        )


def load_wire(path: Path = TABLE) -> list[WireDeviation]:
    """The table's `wire:` section: what the validator may find in a peer's bytes without failing its cell."""
    raw = _read(path)
    out = []
    for i, entry in enumerate(raw.get("wire") or []):
        missing = {"check", "peer", "reason"} - set(entry or {})
        if missing:
            raise SystemExit(f"{path}: wire entry {i + 1} lacks {', '.join(sorted(missing))}")
        names = entry["peer"] if isinstance(entry["peer"], list) else [entry["peer"]]
        checks = entry["check"] if isinstance(entry["check"], list) else [entry["check"]]
        scenarios = entry.get("scenario", "*")
        for scenario in scenarios if isinstance(scenarios, list) else [scenarios]:
            for check in checks:
                for peer in names:
                    out.append(WireDeviation(check, peer, entry["reason"], entry.get("reference", ""), scenario))
    return out


def for_peers(table: list, families: dict[str, str]) -> list:
    """The table with each entry for an implementation also made for every peer that is a version
    of it (peers.yaml `family`), so `libzmq-4.3.4` inherits what is known of `libzmq`."""
    from dataclasses import replace

    out = list(table)
    for dev in table:
        for peer, family in families.items():
            if family == dev.peer and peer != dev.peer:
                out.append(replace(dev, peer=peer))
    return out


def find_wire(table: list[WireDeviation], check: str, peer: str, scenario_id: str) -> WireDeviation | None:
    return next((d for d in table if d.applies(check, peer, scenario_id)), None)


def find(table: list[Deviation], scenario_id: str, server_peer: str, client_peer: str) -> Deviation | None:
    for dev in table:
        if dev.applies(scenario_id, server_peer, client_peer):
            return dev
    return None
