"""A matrix cell (one scenario, one pairing of peers, one transport and mechanism) and its result."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .scenario import Scenario
from .vocabulary import Outcome

if TYPE_CHECKING:
    from .deviations import Deviation
    from .wire import WireResult

RAW = "raw"  # the side the harness plays byte by byte


@dataclass(frozen=True)
class Cell:
    scenario: Scenario
    server: str  # peer name, or "raw"
    client: str
    transport: str
    mechanism: str

    @property
    def params(self) -> str:
        return f"{self.server}-{self.client}-{self.transport}-{self.mechanism}"

    @property
    def id(self) -> str:
        return f"{self.scenario.id}[{self.params}]"


@dataclass
class CellResult:
    cell: Cell
    outcome: Outcome
    reason: str = ""
    duration: float = 0.0
    transcript: str = ""
    expected: str | None = None
    seen: str | None = None
    versions: dict[str, dict[str, str]] = field(default_factory=dict)
    deviation: Deviation | None = None
    wire: WireResult | None = None
    measurements: dict[str, int] = field(default_factory=dict)  # e.g. {"lost": 3} after a fault
    # Seconds per phase (trace.Stopwatch): "agents", "setup", "step:<action>", "teardown", "wire", ...
    phases: dict[str, float] = field(default_factory=dict)
    step: str = ""  # where a failed cell failed: the step's index, or setup / sanity
    action: str = ""  # that step's action
    # A declared stall of a peer (peers.yaml known_stalls) seen in this cell: its id, how many
    # attempts were made and how many of them stalled (plugin.py runs such a cell again).
    stall: str = ""
    attempts: int = 1
    stalled_attempts: int = 0

    def record(self) -> dict[str, Any]:
        c = self.cell
        stall = {"stall": self.stall, "attempts": self.attempts, "stalled_attempts": self.stalled_attempts}
        return {
            "id": c.id,
            "scenario": c.scenario.id,
            "title": c.scenario.title,
            "rfc": c.scenario.rfc,
            "level": c.scenario.level,
            "server": {"peer": c.server, "versions": self.versions.get("server", {})},
            "client": {"peer": c.client, "versions": self.versions.get("client", {})},
            "transport": c.transport,
            "mechanism": c.mechanism,
            "outcome": self.outcome,
            "reason": self.reason,
            "expected": self.expected,
            "seen": self.seen,
            "step": self.step or None,
            "action": self.action or None,
            "deviation": None
            if self.deviation is None
            else {"id": self.deviation.id, "reason": self.deviation.reason, "reference": self.deviation.reference},
            "duration": round(self.duration, 4),
            "capture": None if self.wire is None else self.wire.record(),
            "measurements": self.measurements,
            "phases": {k: round(v, 4) for k, v in sorted(self.phases.items(), key=lambda kv: -kv[1])},
            **(stall if self.stall else {}),
        }


class StepFailed(Exception):
    def __init__(self, message: str, expected: str | None = None, seen: str | None = None) -> None:
        self.expected = expected
        self.seen = seen
        super().__init__(message)


class Unsupported(Exception):
    """An agent said its implementation lacks something the cell needs."""

    def __init__(self, message: str, agent: str = "") -> None:
        self.agent = agent  # the agent that said so, e.g. "impl/server"
        super().__init__(message)
