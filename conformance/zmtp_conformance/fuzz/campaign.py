"""The fuzz loop: inputs from the grammar and from mutated captures, each played on a fresh connection
against the peer, judged by every oracle; the first input of each distinct failure (oracle and input
family) is minimised and written as a reproducer. The sequence of inputs depends only on the seed.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import protocol, rawcodec
from ..peers import AgentPool
from ..rawpeer import RawFailure
from . import findings, grammar, mutate
from .inputs import Context, FuzzInput
from .minimise import minimise
from .oracles import ORACLES, Failure, judge
from .target import Played, Target

# How often an input comes from a mutated capture rather than from the grammar.
MUTATION_SHARE = 0.3
# Oracles after which the agent starts afresh, so the next input meets a clean peer.
RESTART_AFTER = {"crash", "hang", "sanity", "rss", "phantom"}


@dataclass
class Settings:
    peer: str
    side: str = "server"
    mechanism: str = "NULL"
    inputs: int | None = 200  # budget in inputs, or
    seconds: float | None = None  # budget in seconds (whichever ends first)
    seed: int = 0
    out: Path = Path("reports/fuzz")
    rss_limit: int = 256 << 20
    minimise_runs: int = 40


@dataclass
class Summary:
    peer: str
    side: str
    mechanism: str
    seed: int
    inputs: int = 0
    seconds: float = 0.0
    failures: Counter[str] = field(default_factory=Counter)
    distinct: dict[str, str] = field(default_factory=dict)  # "oracle family" -> reproducer file
    causes: dict[str, int] = field(default_factory=dict)  # failure signature -> inputs that showed it
    baseline: list[str] = field(default_factory=list)  # signatures a clean exchange shows too
    restarts: int = 0
    stalls: int = 0  # sanity exchanges run again after the peer's declared stall (peers.yaml known_stalls)
    versions: dict[str, str] = field(default_factory=dict)
    families: Counter[str] = field(default_factory=Counter)
    digests: set[str] = field(default_factory=set)  # the inputs sent, by content: the distinct ones
    rss: tuple[int, int] = (0, 0)  # the agent's memory: the first baseline, and the most seen, in octets

    def line(self) -> str:
        rate = self.inputs / self.seconds if self.seconds else 0.0
        mib = 1 << 20
        by = ", ".join(f"{o} {self.failures[o]}" for o in ORACLES if self.failures[o]) or "none"
        return (
            f"{self.peer} {self.mechanism} as {self.side}, seed {self.seed}: {self.inputs} inputs "
            f"({len(self.digests)} distinct) in "
            f"{self.seconds:.0f}s ({rate:.1f}/s); failures by oracle: {by}; "
            f"{len(self.distinct)} distinct finding(s) (oracle and input family), {len(self.causes)} distinct "
            f"failure signature(s); {self.restarts} agent restart(s)"
            + (f"; {self.stalls} sanity exchange(s) run again after the peer's known stall" if self.stalls else "")
            + (
                f"; memory {self.rss[0] / mib:.1f} MiB at first, at most {self.rss[1] / mib:.1f} MiB"
                if self.rss[1]
                else ""
            )
            + (f"; the clean exchange itself fails: {'; '.join(self.baseline)}" if self.baseline else "")
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "peer": self.peer,
            "side": self.side,
            "mechanism": self.mechanism,
            "seed": self.seed,
            "inputs": self.inputs,
            "distinct_inputs": len(self.digests),
            "seconds": round(self.seconds, 2),
            "failures": dict(self.failures),
            "distinct": self.distinct,
            "causes": self.causes,
            "baseline": self.baseline,
            "restarts": self.restarts,
            "stalls": self.stalls,
            "versions": self.versions,
            "families": dict(self.families),
            "rss_baseline_mib": round(self.rss[0] / (1 << 20), 1),
            "rss_max_mib": round(self.rss[1] / (1 << 20), 1),
        }


def signature(failure: Failure) -> str:
    """What stays the same when one cause fails again: the oracle and its detail without numbers."""
    return failure.oracle + ": " + re.sub(r"(0x)?[0-9a-f]{6,}|\d+", "#", failure.detail)[:100]


def control(mechanism: str) -> FuzzInput:
    """The exchange every hostile input is measured against: a good handshake, one message, a close."""
    raw = [] if mechanism == "CURVE" else [("raw", rawcodec.message([b"control"]))]
    boxed = [("curve", {"kind": "good", "frames": [b"control"]})] if mechanism == "CURVE" else []
    return FuzzInput("control.clean", "PULL", [("handshake", None), *raw, *boxed], "23/ZMTP#framing")


class InputStream:
    """The campaign's inputs, in order: a pure function of the seed and the context."""

    def __init__(self, seed: int, ctx: Context) -> None:
        self.rng = random.Random(seed)
        self.ctx = ctx
        self.generators = [
            (g, w) for g, mechs, sides, w in grammar.GENERATORS if ctx.mechanism in mechs and ctx.side in sides
        ]

    def next(self) -> FuzzInput:
        if self.ctx.seeds and self.rng.random() < MUTATION_SHARE:
            inp = mutate.mutated(self.rng, self.ctx)
            if inp is not None:
                return inp
        gen = self.rng.choices([g for g, _ in self.generators], weights=[w for _, w in self.generators])[0]
        return gen(self.rng, self.ctx)


def make_inputs(seed: int, ctx: Context, count: int) -> list[FuzzInput]:
    stream = InputStream(seed, ctx)
    return [stream.next() for _ in range(count)]


class Campaign:
    def __init__(self, settings: Settings, pool: AgentPool, log: Any = print) -> None:
        self.s = settings
        self.target = Target(pool, settings.peer, settings.side, settings.mechanism)
        self.baseline = 0
        # Since the agent started: what the wire carried and what the application received. A socket
        # may deliver a message from a closed connection long after it arrived (fair queuing), so
        # the phantom oracle compares everything, not one input's share.
        self.evidence: list[Played] = []
        self.received: list[list[bytes]] = []
        self.log = log
        self.rss_seen = (0, 0)  # first baseline, highest reading

    async def _fresh(self) -> None:
        """A running agent with a measured memory baseline."""
        if self.target.agent is None:
            await self.target.start()
        elif not self.target.alive:
            await self.target.restart()
        if not self.baseline:
            # Outside the oracles: a peer that lacks the mechanism says so here, and is skipped.
            await self.target.socket("PULL")
            await self.target.sanity("PULL")
            self.baseline = self.target.rss()
            self.rss_seen = (self.rss_seen[0] or self.baseline, max(self.rss_seen[1], self.baseline))
            self.evidence, self.received = [], []

    async def execute(self, inp: FuzzInput, rng: random.Random) -> list[Failure]:
        """Play one input and judge it with every oracle; restarts the agent after a crash or hang."""
        await self._fresh()
        t = self.target
        try:
            played = await t.play(inp, rng)
        except (OSError, TimeoutError, RawFailure, protocol.AgentError) as exc:
            played = Played(detail=f"{type(exc).__name__}: {exc}")
        rss = t.rss()
        sanity = await t.sanity(inp.socket_type)
        rss = max(rss, t.rss())
        self.rss_seen = (self.rss_seen[0], max(self.rss_seen[1], rss))
        if not sanity.ok and t.agent is not None and t.agent.proc is not None:
            try:  # a dying agent's exit status may lag its closed pipe
                await asyncio.wait_for(t.agent.proc.wait(), 0.5)
            except TimeoutError:
                pass
        alive = t.alive
        code = t.agent.proc.returncode if t.agent is not None and t.agent.proc is not None else None
        exit_detail = f"the agent exited with status {code}: {t.last_words()}"
        hung = "no answer to" in sanity.detail
        self.evidence.append(played)
        self.received += sanity.received
        failures = judge(
            alive=alive,
            exit_detail=exit_detail,
            hung=hung,
            sanity=sanity,
            rss=rss,
            rss_baseline=self.baseline,
            rss_limit=self.s.rss_limit,
            played=played,
            received=self.received,
            evidence=self.evidence,
            mechanism=self.s.mechanism,
        )
        if {f.oracle for f in failures} & RESTART_AFTER:
            await t.restart()
            self.baseline = 0
        return failures

    async def run(self) -> Summary:
        s = self.s
        ctx = Context(s.mechanism, s.side, mutate.load_seeds(s.mechanism, side=s.side))
        stream = InputStream(s.seed, ctx)
        summary = Summary(s.peer, s.side, s.mechanism, s.seed)
        start = time.monotonic()
        await self._fresh()
        summary.versions = self.target.agent.versions if self.target.agent else {}
        for note in dict.fromkeys(self.target.notes):
            self.log(f"  note: {note}")
        try:
            # A failure that the clean exchange shows too is the peer's, but not the hostile input's:
            # it is recorded once, as the control's finding, and not again for each input family.
            control_failed = 0
            for attempt in range(3):
                failures = await self.execute(control(s.mechanism), random.Random(f"{s.seed}:control:{attempt}"))
                control_failed += any(f.oracle in RESTART_AFTER for f in failures)
                for f in failures:
                    sig = signature(f)
                    if sig not in summary.baseline:
                        summary.baseline.append(sig)
                        self.log(f"  the clean exchange fails: {f.oracle}: {f.detail[:200]}")
                        summary.distinct[f"{f.oracle} control.clean"] = str(
                            await self.record(control(s.mechanism), f, -1, summary.versions, minimise_it=False)
                        )
            index = 0
            minimised: set[str] = set()
            if control_failed == 3:
                # Every clean exchange failed: hostile input could teach nothing the control has not.
                self.log("  the clean exchange failed every time: no hostile input sent")
            while control_failed < 3:
                if s.inputs is not None and index >= s.inputs:
                    break
                if s.seconds is not None and time.monotonic() - start >= s.seconds:
                    break
                inp = stream.next()
                failures = await self.execute(inp, random.Random(f"{s.seed}:{index}"))
                summary.inputs += 1
                summary.digests.add(inp.digest())
                summary.families[inp.family.split(".")[0]] += 1
                for f in failures:
                    summary.failures[f.oracle] += 1
                    sig = signature(f)
                    summary.causes[sig] = summary.causes.get(sig, 0) + 1
                    key = f"{f.oracle} {inp.family}"
                    if key in summary.distinct or sig in summary.baseline:
                        continue
                    summary.distinct[key] = ""
                    self.log(f"  input {index}: {f.oracle} after {inp.family}: {f.detail[:200]}")
                    # Minimising costs up to minimise_runs runs: once per signature is enough to see the cause.
                    fresh = sig not in minimised
                    minimised.add(sig)
                    summary.distinct[key] = str(await self.record(inp, f, index, summary.versions, fresh))
                index += 1
        finally:
            summary.seconds = time.monotonic() - start
            summary.restarts = self.target.restarts
            summary.stalls = self.target.stalls
            summary.rss = self.rss_seen
            await self.target.close()
        s.out.mkdir(parents=True, exist_ok=True)
        name = f"fuzz-{s.peer}-{s.mechanism.lower()}-{s.side}.json"
        (s.out / name).write_text(json.dumps(summary.to_dict(), indent=1) + "\n")
        return summary

    async def still_fails(self, inp: FuzzInput, oracle: str, index: int) -> bool:
        failures = await self.execute(inp, random.Random(f"{self.s.seed}:{index}"))
        return any(f.oracle == oracle for f in failures)

    async def record(
        self, inp: FuzzInput, failure: Failure, index: int, versions: dict[str, str], minimise_it: bool = True
    ) -> Path:
        small, attempts = inp, 0
        # Whether the RFC requires a close depends on the whole input (a greeting cut to one octet
        # requires nothing yet), so a must-close finding is kept as it was found.
        if failure.oracle == "must-close":
            minimise_it = False
        detail = failure.detail
        if self.s.minimise_runs > 0 and minimise_it:
            # A failure that does not come back on a second run is reported as such, not shrunk.
            if await self.still_fails(inp, failure.oracle, index):
                small, attempts = await minimise(
                    inp, lambda c: self.still_fails(c, failure.oracle, index), self.s.minimise_runs
                )
            else:
                detail += " (did not fail again when replayed at once: flaky, or caused by an earlier input)"
        return findings.write(
            self.s.out,
            small,
            peer=self.s.peer,
            side=self.s.side,
            mechanism=self.s.mechanism,
            oracle=failure.oracle,
            detail=detail,
            original=inp,
            seed=self.s.seed,
            index=index,
            attempts=attempts,
            versions=versions,
        )


async def replay(path: Path, pool: AgentPool, peer: str | None = None, rss_limit: int = 256 << 20) -> list[Failure]:
    """Play a finding's JSON record once against its peer (or another) with every oracle."""
    record = json.loads(path.read_text())
    settings = Settings(
        peer=peer or record["peer"], side=record["side"], mechanism=record["mechanism"], rss_limit=rss_limit
    )
    campaign = Campaign(settings, pool)
    try:
        return await campaign.execute(
            FuzzInput.from_json(record["input"]), random.Random(f"{record['seed']}:{record['index']}")
        )
    finally:
        await campaign.target.close()
