"""The reviewed table of known deviations (conformance/deviations.yaml).

An entry excuses exactly one way of failing: the implementation (family), the
side it plays, the scenario ids (no globs), and a failure signature: the step
that fails (its index, or setup/sanity) and patterns over what the harness
expected and what it saw. A failed cell whose failure does not match the
signature stays failed, so a peer that regresses in another way is still
caught. Each entry cites the RFC clause and the upstream source that shows
the behaviour.

Entries that name each other as `alternative` are two (or more) known ways the
same cells fail, which one depending on timing (zmq4 loses the message sent
while it reconnects, or hands the old connection's EOF to Recv): each keeps
its own signature, and the group is stale only when none of them excused a
cell, so a run that shows one way does not call the other entry stale.

An entry may name its `partners`: the peers (families or versions) on the other
side against which alone the failure shows (a client that trips over one
server's framing). It then speaks only of cells with one of them, so a run that
never pairs them (CI pairs every peer with impl and libzmq) does not call it
stale, and a failure against any other peer stays a failure.

The `wire:` section does the same for the capture validator: a check id, the
implementation, the scenarios, and a pattern over the octets it flagged.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from . import vocabulary, yamltext

HERE = Path(__file__).resolve().parent
TABLE = HERE.parent / "deviations.yaml"
SIDES = ("server", "client")
SCENARIO_ID = re.compile(vocabulary.SCENARIO_ID)


class DeviationError(Exception):
    """A deviation table that cannot be used; says which file, which entry and why."""


@dataclass(frozen=True)
class Failure:
    """How a cell failed, in the terms a signature matches."""

    step: str  # the failing step's index ("3"), or "setup" / "sanity" / "teardown"
    action: str  # that step's action ("expect_raw"), or the phase again
    reason: str
    expected: str | None
    seen: str | None


@dataclass(frozen=True)
class Signature:
    step: str | None = None
    action: str | None = None
    reason: re.Pattern[str] | None = None
    expected: re.Pattern[str] | None = None
    seen: re.Pattern[str] | None = None

    def matches(self, f: Failure) -> bool:
        if self.step is not None and self.step != f.step:
            return False
        if self.action is not None and self.action != f.action:
            return False
        for pattern, text in ((self.reason, f.reason), (self.expected, f.expected), (self.seen, f.seen)):
            if pattern is not None and (text is None or not pattern.search(text)):
                return False
        return True

    def describe(self) -> str:
        parts = [f"step {self.step}" if self.step else "", self.action or ""]
        for name in ("reason", "expected", "seen"):
            pattern = getattr(self, name)
            if pattern is not None:
                parts.append(f"{name} ~ /{pattern.pattern}/")
        return ", ".join(p for p in parts if p)


@dataclass(frozen=True)
class Deviation:
    id: str
    peer: str  # an implementation family, or one peer version
    side: str  # the side the deviating peer plays: server or client
    scenarios: tuple[str, ...]
    fails: Signature
    reason: str
    clause: str
    upstream: str
    line: int = 0  # in the table, for messages
    # Where the behaviour shows only under some mechanisms or transports (a CURVE bug): empty, all.
    mechanisms: tuple[str, ...] = ()
    transports: tuple[str, ...] = ()
    # Entries for the other ways the same cells fail (see the module's docstring).
    alternatives: tuple[str, ...] = ()
    # The peers on the other side against which alone this failure shows: empty, any.
    partners: tuple[str, ...] = ()

    @property
    def reference(self) -> str:
        return f"{self.clause}; {self.upstream}"

    def covers(
        self, scenario_id: str, server_peer: str, client_peer: str, mechanism: str = "", transport: str = ""
    ) -> bool:
        """Whether this entry speaks of the cell at all (its failure aside)."""
        if scenario_id not in self.scenarios:
            return False
        if self.mechanisms and mechanism not in self.mechanisms:
            return False
        if self.transports and transport not in self.transports:
            return False
        if self.partners and (client_peer if self.side == "server" else server_peer) not in self.partners:
            return False
        return (server_peer if self.side == "server" else client_peer) == self.peer

    def excuses(
        self,
        scenario_id: str,
        server_peer: str,
        client_peer: str,
        failure: Failure,
        mechanism: str = "",
        transport: str = "",
    ) -> bool:
        return self.covers(scenario_id, server_peer, client_peer, mechanism, transport) and self.fails.matches(failure)


@dataclass(frozen=True)
class WireDeviation:
    """A validator finding (check id) that a peer is known to produce on the wire."""

    id: str
    check: str  # the validator's check id, e.g. "frame-malformed"
    peer: str
    reason: str
    clause: str = ""
    upstream: str = ""
    scenarios: tuple[str, ...] = ()  # empty: in every scenario
    octets: re.Pattern[str] | None = None  # over the flagged octets, as lowercase hex
    line: int = 0

    @property
    def reference(self) -> str:
        return f"{self.clause}; {self.upstream}" if self.clause else self.upstream

    def applies(self, check: str, peer: str, scenario_id: str, octets: str = "") -> bool:
        if peer != self.peer or check != self.check:
            return False
        if self.scenarios and scenario_id not in self.scenarios:
            return False
        return self.octets is None or bool(self.octets.search(octets.replace(" ", "").lower()))


def _read(path: Path) -> tuple[dict[str, Any], dict[tuple[str, int], int]]:
    try:
        text = path.read_text()
        raw, node = yamltext.parse(text)
        raw = raw or {}
    except (OSError, yaml.YAMLError) as exc:
        raise DeviationError(f"cannot read the deviation table {path}: {exc}") from None
    lines: dict[tuple[str, int], int] = {}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(value, yaml.SequenceNode):
                for i, item in enumerate(value.value):
                    lines[key.value, i] = item.start_mark.line + 1
    return raw, lines


def _list(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _pattern(path: Path, line: int, name: str, text: Any) -> re.Pattern[str] | None:
    if text is None:
        return None
    try:
        return re.compile(str(text))
    except re.error as exc:
        raise DeviationError(f"{path}:{line}: {name}: not a regular expression ({exc}): {text!r}") from None


def _scenarios(path: Path, line: int, value: Any, known: set[str] | None) -> tuple[str, ...]:
    ids = _list(value)
    for sid in ids:
        if not SCENARIO_ID.match(sid):
            raise DeviationError(f"{path}:{line}: scenario {sid!r} is not a scenario id (globs are not allowed)")
        if known is not None and sid not in known:
            raise DeviationError(f"{path}:{line}: scenario {sid!r} does not exist")
    return tuple(ids)


ENTRY_KEYS = {"id", "peer", "side", "scenarios", "fails", "reason", "clause", "upstream"}
OPTIONAL_KEYS = {"mechanisms": tuple(vocabulary.MECHANISMS), "transports": tuple(vocabulary.TRANSPORTS)}
ALTERNATIVE = "alternative"
PARTNERS = "partners"
FAILS_KEYS = {"step", "action", "reason", "expected", "seen"}
WIRE_KEYS = {"id", "check", "peer", "reason", "clause", "upstream", "scenarios", "octets"}


def load(path: Path = TABLE, known_scenarios: set[str] | None = None) -> list[Deviation]:
    """The behaviour entries, one Deviation per peer named; `known_scenarios` checks every id exists."""
    raw, lines = _read(path)
    out: list[Deviation] = []
    seen_ids: set[str] = set()
    for i, entry in enumerate(raw.get("deviations") or []):
        line = lines.get(("deviations", i), 0)
        if not isinstance(entry, dict):
            raise DeviationError(f"{path}:{line}: a deviation entry must be a mapping")
        missing = ENTRY_KEYS - set(entry)
        if missing:
            raise DeviationError(f"{path}:{line}: entry {entry.get('id', i + 1)!r} lacks {', '.join(sorted(missing))}")
        unknown = set(entry) - ENTRY_KEYS - set(OPTIONAL_KEYS) - {ALTERNATIVE, PARTNERS}
        if unknown:
            raise DeviationError(f"{path}:{line}: unknown key(s) {', '.join(sorted(unknown))}")
        did = str(entry["id"])
        if did in seen_ids:
            raise DeviationError(f"{path}:{line}: id {did!r} is used twice")
        seen_ids.add(did)
        if entry["side"] not in SIDES:
            raise DeviationError(f"{path}:{line}: side must be server or client, not {entry['side']!r}")
        fails = entry["fails"]
        if not isinstance(fails, dict) or set(fails) - FAILS_KEYS:
            raise DeviationError(f"{path}:{line}: fails takes {', '.join(sorted(FAILS_KEYS))}")
        if not ({"expected", "seen", "reason"} & set(fails)) or not ({"step", "action"} & set(fails)):
            raise DeviationError(
                f"{path}:{line}: {did}: fails must name the step (step or action) and a pattern over "
                "what was expected, what was seen or the failure's reason, so that no other failure is excused"
            )
        limits: dict[str, tuple[str, ...]] = {}
        for key, allowed in OPTIONAL_KEYS.items():
            values = tuple(str(v) for v in _list(entry.get(key) or []))
            bad = [v for v in values if v not in allowed]
            if bad:
                raise DeviationError(f"{path}:{line}: {did}: {key} has no {', '.join(bad)} (known: {', '.join(allowed)})")
            limits[key] = values
        sig = Signature(
            step=None if fails.get("step") is None else str(fails["step"]),
            action=fails.get("action"),
            reason=_pattern(path, line, "fails.reason", fails.get("reason")),
            expected=_pattern(path, line, "fails.expected", fails.get("expected")),
            seen=_pattern(path, line, "fails.seen", fails.get("seen")),
        )
        scenarios = _scenarios(path, line, entry["scenarios"], known_scenarios)
        alternatives = tuple(_list(entry[ALTERNATIVE])) if entry.get(ALTERNATIVE) is not None else ()
        partners = tuple(str(p) for p in _list(entry.get(PARTNERS) or []))
        if PARTNERS in entry and not partners:
            raise DeviationError(f"{path}:{line}: {did}: partners, when given, names at least one peer")
        for peer in _list(entry["peer"]):
            out.append(
                Deviation(
                    did,
                    peer,
                    entry["side"],
                    scenarios,
                    sig,
                    str(entry["reason"]),
                    str(entry["clause"]),
                    str(entry["upstream"]),
                    line,
                    limits["mechanisms"],
                    limits["transports"],
                    alternatives,
                    partners,
                )
            )
    _check_alternatives(path, out)
    return out


def _check_alternatives(path: Path, table: list[Deviation]) -> None:
    """Each `alternative` names another entry of the same implementation and side, sharing a
    scenario with it, that names this one back: a reviewed pair, not a way to silence staleness."""
    by_id: dict[str, list[Deviation]] = {}
    for dev in table:
        by_id.setdefault(dev.id, []).append(dev)
    for did, devs in by_id.items():
        me = devs[0]
        for alt in me.alternatives:
            where = f"{path}:{me.line}: {did}: alternative {alt!r}"
            if alt == did:
                raise DeviationError(f"{where} is the entry itself")
            other = by_id.get(alt)
            if other is None:
                raise DeviationError(f"{where} is no entry of this table")
            them = other[0]
            mine, theirs = {d.peer for d in devs}, {d.peer for d in other}
            if mine != theirs or me.side != them.side:
                raise DeviationError(
                    f"{where} (line {them.line}) is for {', '.join(sorted(theirs))} as {them.side}, this entry for "
                    f"{', '.join(sorted(mine))} as {me.side}: alternatives are ways the same peer fails the same cells"
                )
            if not set(me.scenarios) & set(them.scenarios):
                raise DeviationError(f"{where} (line {them.line}) shares no scenario with this entry")
            if did not in them.alternatives:
                raise DeviationError(
                    f"{where} (line {them.line}) does not name {did!r} back: an alternative is declared on both entries"
                )


def load_wire(path: Path = TABLE, known_scenarios: set[str] | None = None) -> list[WireDeviation]:
    """The table's `wire:` section: what the validator may find in a peer's bytes without failing its cell."""
    raw, lines = _read(path)
    out = []
    for i, entry in enumerate(raw.get("wire") or []):
        line = lines.get(("wire", i), 0)
        missing = {"id", "check", "peer", "reason", "upstream", "octets"} - set(entry or {})
        if missing:
            raise DeviationError(f"{path}:{line}: wire entry lacks {', '.join(sorted(missing))}")
        unknown = set(entry) - WIRE_KEYS
        if unknown:
            raise DeviationError(f"{path}:{line}: unknown key(s) {', '.join(sorted(unknown))}")
        scenarios = _scenarios(path, line, entry["scenarios"], known_scenarios) if "scenarios" in entry else ()
        octets = _pattern(path, line, "octets", entry["octets"])
        for peer in _list(entry["peer"]):
            out.append(
                WireDeviation(
                    str(entry["id"]),
                    str(entry["check"]),
                    peer,
                    str(entry["reason"]),
                    str(entry.get("clause", "")),
                    str(entry["upstream"]),
                    scenarios,
                    octets,
                    line,
                )
            )
    return out


def for_peers(table: list, families: dict[str, str]) -> list:
    """The table with each entry for an implementation also made for every peer that is a version
    of it (peers.yaml `family`), so `libzmq-4.3.4` inherits what is known of `libzmq`."""

    def versions(name: str) -> list[str]:
        return [name, *(peer for peer, family in families.items() if family == name and peer != name)]

    # A partner family stands for each of its versions too.
    table = [
        replace(dev, partners=tuple(dict.fromkeys(v for p in dev.partners for v in versions(p))))
        if getattr(dev, "partners", ())
        else dev
        for dev in table
    ]
    return table + [replace(dev, peer=peer) for dev in table for peer in versions(dev.peer)[1:]]


def find_wire(
    table: list[WireDeviation], check: str, peer: str, scenario_id: str, octets: str = ""
) -> WireDeviation | None:
    return next((d for d in table if d.applies(check, peer, scenario_id, octets)), None)


def find(
    table: list[Deviation],
    scenario_id: str,
    server_peer: str,
    client_peer: str,
    failure: Failure,
    mechanism: str = "",
    transport: str = "",
) -> Deviation | None:
    """The entry that excuses this failure of this cell, if one does."""
    return next(
        (d for d in table if d.excuses(scenario_id, server_peer, client_peer, failure, mechanism, transport)), None
    )


@dataclass
class Use:
    """What one entry did in a run: the cells it spoke of, by outcome, and those it excused."""

    entry: str
    line: int
    cells: dict[str, int] = field(default_factory=dict)
    excused: int = 0
    # Covered cells that ran (not unsupported) with no provisional peer, and covered cells with
    # one: a provisional peer's failures are not yet trusted to repeat, so an entry that spoke of
    # nothing firmer (an entry for JeroMQ 0.6 also covers JeroMQ 0.3.6's unsupported cells) does
    # not gate when stale.
    firm: int = 0
    tentative: int = 0
    # Its alternatives (entries for the other ways the same cells fail), and the cells they excused.
    alternatives: tuple[str, ...] = ()
    excused_by_alternatives: int = 0

    @property
    def stale(self) -> str | None:
        """Why the entry looks stale in this run, or None (also None when none of its cells ran, or
        when one of its alternatives excused a cell: the cells failed the other known way)."""
        if not self.cells:
            return None
        if self.excused or self.excused_by_alternatives:
            return None
        nor = f" (nor did its alternative {', '.join(self.alternatives)})" if self.alternatives else ""
        if set(self.cells) == {"unsupported"}:
            return "every cell it covers was unsupported" + nor
        return f"it excused no cell{nor}: " + ", ".join(f"{n} {o}" for o, n in sorted(self.cells.items()))


def usage(
    table: list[Deviation], records: list[dict[str, Any]], provisional: Collection[str] = ()
) -> dict[str, Use]:
    """For each entry id, the cells of a run (matrix.json records) it covers and how many it excused."""
    uses: dict[str, Use] = {}
    provisional = set(provisional)
    for dev in table:
        uses.setdefault(dev.id, Use(dev.id, dev.line, alternatives=dev.alternatives))
    for r in records:
        # An entry names a family (libzmq) or a version (libzmq-4.3.5): a record carries both, and
        # the table may be expanded per version (for_peers) or not (merge reads it as written).
        names = [(r["server"]["peer"], r["client"]["peer"])]
        names.append((r["server"].get("family") or names[0][0], r["client"].get("family") or names[0][1]))
        where = (r.get("mechanism") or "", r.get("transport") or "")
        covering = {dev.id for dev in table if any(dev.covers(r["scenario"], s, c, *where) for s, c in names)}
        tentative = bool({r["server"]["peer"], r["client"]["peer"]} & provisional)
        firm = not tentative and r["outcome"] != "unsupported"
        for entry in covering:
            use = uses[entry]
            use.cells[r["outcome"]] = use.cells.get(r["outcome"], 0) + 1
            use.firm += firm
            use.tentative += tentative
        excused = (r.get("deviation") or {}).get("id")
        if excused in uses:
            uses[excused].excused += 1
    for use in uses.values():
        use.excused_by_alternatives = sum(uses[a].excused for a in use.alternatives if a in uses)
    return uses


def stale(
    table: list[Deviation], records: list[dict[str, Any]], provisional: Collection[str] = ()
) -> dict[str, str]:
    """Entries that covered cells of a run but excused none of them (or covered only unsupported
    ones). With `provisional` (peer names), an entry that covered only cells of those peers is left
    out: see stale_provisional."""
    uses = usage(table, records, provisional)
    return {entry: use.stale for entry, use in uses.items() if use.stale and (use.firm or not use.tentative)}


def stale_provisional(
    table: list[Deviation], records: list[dict[str, Any]], provisional: Collection[str]
) -> dict[str, str]:
    """Stale entries that covered only cells of provisional peers: reported, not gating."""
    if not provisional:
        return {}
    uses = usage(table, records, provisional)
    return {entry: use.stale for entry, use in uses.items() if use.stale and use.tentative and not use.firm}
