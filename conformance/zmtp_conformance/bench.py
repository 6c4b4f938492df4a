"""Benchmarks across peers: every pairing measured the same way, in the same run.

Each peer's agent runs the hot loop itself with its own fastest public API
(`bench_send` / `bench_recv` / `bench_rtt` / `bench_echo` in
docs/agent-protocol.md) and times it, so the control protocol is never in
the timed path. Rows:

- throughput: PUSH (client) to PULL (server), and PUB to three SUBs (fan-out);
- latency: REQ/REP and DEALER/ROUTER round trips, p50/p95/p99.

Machines are noisy, so every figure is also given as a ratio to the
reference measured in the same run, and every repetition is kept. The
reference is libzmq driven from C: the czmq agent's bench loops call
zmq_send / zmq_msg_recv on the raw libzmq handle. libzmq through pyzmq is an
ordinary row, because its loop is Python's and a ratio against it would
credit every peer with pyzmq's per-call cost. No test asserts a timing;
`compare` checks a run against a saved baseline and flags the rows whose
ratio fell by more than the noise both runs measured.

The default plan answers issue 17's table and Monocoque's published claims
in under ten minutes on a 2-core machine: each peer paired with itself, tcp,
the sizes those rows name. `full_plan` is every pairing, transport,
mechanism and size.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import socket as socketlib
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from . import protocol
from .credentials import CURVE_CLIENT_PUBLIC, MECHANISM_OPTIONS
from .endpoints import UNIX, agents_ipc, endpoint_for, ipc_mismatch
from .peers import AgentPool

SIZES = (64, 1024, 64 * 1024, 1024 * 1024)
LATENCY_SIZES = (64, 1024)
SUBSCRIBERS = 3
# libzmq measured from C (the czmq agent's loops over the raw libzmq handle); runs saved
# before this reference was chosen name theirs ("libzmq", through pyzmq) in meta.reference.
REFERENCE = "czmq"
# What each peer's bench loop is written in and over what, so a row says what it measured.
# Monocoque's runtime backend is not fixed at build time of the harness: its agent names it in hello.
LOOPS = {
    "impl": "Python asyncio loop, zmtp batch API",
    "libzmq": "Python loop over pyzmq",
    "czmq": "C loop over libzmq",
    "monocoque": "Rust loop",
    "zmqrs": "Rust loop (tokio)",
    "zmq4": "Go loop",
    "jeromq": "Java loop",
    "zeromqjs": "Node.js loop over libzmq",
}
# Throughput sockets get deep queues everywhere, and each peer its own best settings where it has
# some: zmtp reads and writes through larger buffers (libzmq and czmq size theirs themselves).
THROUGHPUT_OPTIONS = {"sndhwm": 10000, "rcvhwm": 10000}
# A PUB drops what its queues cannot hold: deep enough for every message of a repetition. Finite,
# not libzmq's 0 for "no limit": Monocoque sizes a bounded channel by it, and a channel of 0 holds nothing.
FANOUT_HWM = 1_000_000
PEER_TUNING: dict[str, dict[str, Any]] = {"impl": {"send_buffer_size": 64 * 1024, "recv_buffer_size": 256 * 1024}}


@dataclass
class Row:
    kind: str  # throughput, latency
    pattern: str  # PUSH/PULL, PUB/SUB x3, REQ/REP, DEALER/ROUTER
    server: str
    client: str
    transport: str
    mechanism: str
    size: int
    reps: list[dict[str, float]] = field(default_factory=list)
    error: str | None = None
    notes: list[str] = field(default_factory=list)  # how this row departs from the others' set-up

    @property
    def key(self) -> str:
        return f"{self.kind}|{self.pattern}|{self.server}|{self.client}|{self.transport}|{self.mechanism}|{self.size}"

    def reference_key(self, reference: str = REFERENCE) -> str:
        return f"{self.kind}|{self.pattern}|{reference}|{reference}|{self.transport}|{self.mechanism}|{self.size}"

    def figure(self) -> float | None:
        """The row's headline: median msgs/s (throughput) or median p50 in microseconds (latency)."""
        values = [r["msgs_per_s"] if self.kind == "throughput" else r["p50"] for r in self.reps]
        return statistics.median(values) if values else None

    def spread(self) -> tuple[float, float] | None:
        values = [r["msgs_per_s"] if self.kind == "throughput" else r["p50"] for r in self.reps]
        return (min(values), max(values)) if values else None


async def _together(waiters: list[Any], driver: Any) -> tuple[Any, list[Any]]:
    """Start `waiters` (requests that wait for traffic), run `driver`, then collect them all.
    A failure anywhere is raised after every request has finished, so none is left dangling."""
    tasks = [asyncio.ensure_future(w) for w in waiters]
    try:
        driven = await driver
    finally:
        got = await asyncio.gather(*tasks, return_exceptions=True)
    for g in got:
        if isinstance(g, BaseException):
            raise g
    return driven, got


async def _bind(agent: Any, sock: str, transport: str, clients: list[Any]) -> str:
    """Bind to a fresh endpoint the clients can reach. libzmq now and then answers a port-0 bind
    with EADDRINUSE in a burst of short runs; then a port found free here is named explicitly instead."""
    ipc = UNIX
    if transport == "ipc":
        parties = agents_ipc([agent, *clients])
        why = ipc_mismatch(parties)
        if why:
            raise ValueError(why)
        ipc = parties[agent.name.split("/")[0]]
    endpoint = endpoint_for(transport, ipc)
    for attempt in range(4):
        try:
            return (await agent.request("bind", socket=sock, endpoint=endpoint))["endpoint"]
        except protocol.AgentError as exc:
            if "in use" not in exc.message or attempt == 3 or transport != "tcp":
                raise
            with socketlib.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                endpoint = f"tcp://127.0.0.1:{probe.getsockname()[1]}"
    raise AssertionError("unreachable")


def _counts(size: int, budget: int) -> int:
    return max(100, min(200_000, budget // size))


async def _socket(
    pool: AgentPool, peer: str, side: str, type: str, mechanism: str, row: Row | None = None, **extra: Any
) -> tuple[Any, str]:
    agent = await pool.get(peer, side)
    if mechanism != "NULL" and side == "server":
        await agent.request("zap", users={"admin": "secret"}, curve_keys=[CURVE_CLIENT_PUBLIC])
    base = {**MECHANISM_OPTIONS[mechanism]["server" if side == "server" else "client"], **PEER_TUNING.get(peer, {})}
    try:
        resp = await agent.request("socket", type=type, options={**base, **extra}, mechanism=mechanism)
    except protocol.AgentError as exc:
        # An implementation without high-water marks (zmq.rs, zmq4) is still measured, with its own
        # fixed queues; the row says so. Any other refusal is the row's error.
        named = [k for k in extra if k in exc.message]
        if exc.kind != "unsupported" or not named:
            raise
        resp = await agent.request("socket", type=type, options=base, mechanism=mechanism)
        if row is not None:
            row.notes.append(f"{peer} {side}: without {', '.join(extra)} ({exc.message})")
    return agent, resp["socket"]


async def throughput(pool: AgentPool, row: Row, budget: int, reps: int) -> None:
    count = _counts(row.size, budget)
    server, s = await _socket(pool, row.server, "server", "PULL", row.mechanism, row, **THROUGHPUT_OPTIONS)
    client, c = await _socket(pool, row.client, "client", "PUSH", row.mechanism, row, **THROUGHPUT_OPTIONS)
    try:
        ep = await _bind(server, s, row.transport, [client])
        await client.request("connect", socket=c, endpoint=ep)
        await _pair_run(server, s, client, c, row.size, min(count, 200))  # warm-up: the handshake is done
        for _ in range(reps):
            got = await _pair_run(server, s, client, c, row.size, count)
            row.reps.append(got)
    finally:
        await client.request("close", socket=c)
        await server.request("close", socket=s)


async def _pair_run(server: Any, s: str, client: Any, c: str, size: int, count: int) -> dict[str, float]:
    deadline = 30 + count * size / 5e6  # generous: a slow pairing is a figure, not a failure
    sent, (got,) = await _together(
        [server.request("bench_recv", socket=s, count=count, timeout=deadline, deadline=deadline + 10)],
        client.request("bench_send", socket=c, size=size, count=count, timeout=deadline, deadline=deadline + 10),
    )
    rate = got["timed"] / got["elapsed"] if got["elapsed"] > 0 else 0.0
    return {"count": count, "elapsed": got["elapsed"], "msgs_per_s": rate, "mb_per_s": rate * size / 1e6,
            "send_elapsed": sent["elapsed"]}  # fmt: skip


async def fanout(pool: AgentPool, row: Row, budget: int, reps: int) -> None:
    """PUB to SUBSCRIBERS SUBs (each in its own agent process); the figure is the slowest subscriber's."""
    count = _counts(row.size, budget // SUBSCRIBERS)
    server, s = await _socket(pool, row.server, "server", "PUB", row.mechanism, row, sndhwm=FANOUT_HWM)
    subs = [await _socket(pool, row.client, f"sub{i}", "SUB", row.mechanism, row, rcvhwm=FANOUT_HWM) for i in range(SUBSCRIBERS)]
    try:
        ep = await _bind(server, s, row.transport, [a for a, _ in subs])
        for agent, sock in subs:
            await agent.request("subscribe", socket=sock, topic="")
            await agent.request("connect", socket=sock, endpoint=ep)
        await asyncio.sleep(0.5)  # subscriptions reach the publisher before anything is sent
        for _ in range(reps):
            deadline = 30 + count * row.size / 2e6
            _, got = await _together(
                [
                    a.request("bench_recv", socket=k, count=count, timeout=deadline, deadline=deadline + 10)
                    for a, k in subs
                ],
                server.request(
                    "bench_send", socket=s, size=row.size, count=count, timeout=deadline, deadline=deadline + 10
                ),
            )
            rates = [g["timed"] / g["elapsed"] if g["elapsed"] > 0 else 0.0 for g in got]
            row.reps.append({"count": count, "msgs_per_s": min(rates), "mb_per_s": min(rates) * row.size / 1e6})
    finally:
        for agent, sock in subs:
            await agent.request("close", socket=sock)
        await server.request("close", socket=s)


async def latency(pool: AgentPool, row: Row, count: int, reps: int) -> None:
    stype, ctype = ("REP", "REQ") if row.pattern == "REQ/REP" else ("ROUTER", "DEALER")
    server, s = await _socket(pool, row.server, "server", stype, row.mechanism)
    client, c = await _socket(pool, row.client, "client", ctype, row.mechanism)
    try:
        ep = await _bind(server, s, row.transport, [client])
        await client.request("connect", socket=c, endpoint=ep)
        for i, n in enumerate([50] + [count] * reps):  # the first run warms up and is not kept
            got, _ = await _together(
                [server.request("bench_echo", socket=s, count=n, timeout=20, deadline=60 + n / 100)],
                client.request("bench_rtt", socket=c, size=row.size, count=n, timeout=20, deadline=60 + n / 100),
            )
            if i:
                row.reps.append({k: got[k] for k in ("count", "p50", "p95", "p99", "mean")})
    finally:
        await client.request("close", socket=c)
        await server.request("close", socket=s)


@dataclass
class Plan:
    """What a run measures. The defaults are the short run (see the module docstring); `full_plan` the long one."""

    peers: list[str]
    transports: list[str] = field(default_factory=lambda: ["tcp"])
    mechanisms: list[str] = field(default_factory=lambda: ["NULL", "CURVE"])
    sizes: list[int] = field(default_factory=lambda: [64, 1024, 64 * 1024])  # PUSH/PULL under NULL
    secure_sizes: list[int] = field(default_factory=lambda: [1024, 64 * 1024])  # PUSH/PULL under PLAIN, CURVE
    fanout_sizes: list[int] = field(default_factory=lambda: [64])
    latency_patterns: list[str] = field(default_factory=lambda: ["REQ/REP"])
    latency_sizes: list[int] = field(default_factory=lambda: list(LATENCY_SIZES))
    secure_rest: bool = False  # fan-out and latency rows under PLAIN and CURVE too
    # same: each peer with itself; reference: that, and each peer to and from the reference; all: every pairing
    pairings: str = "reference"
    reps: int = 3
    budget: int = 16 * 1024 * 1024  # bytes per throughput repetition
    rtt_count: int = 2000

    def pairs(self) -> list[tuple[str, str]]:
        """(server, client) pairs. Same-peer pairs are what published figures and issue 17's table compare;
        a peer against the reference is how it fares with libzmq itself."""
        if self.pairings == "all":
            return [(s, c) for s in self.peers for c in self.peers]
        out = [(p, p) for p in self.peers]
        if self.pairings == "reference" and REFERENCE in self.peers:
            others = [p for p in self.peers if p != REFERENCE]
            out += [(REFERENCE, p) for p in others] + [(p, REFERENCE) for p in others]
        return out

    def rows(self) -> list[Row]:
        out = []
        for transport in self.transports:
            for mech in self.mechanisms:
                secure = mech != "NULL"
                for server, client in self.pairs():
                    for size in self.secure_sizes if secure else self.sizes:
                        out.append(Row("throughput", "PUSH/PULL", server, client, transport, mech, size))
                    if secure and not self.secure_rest:
                        continue
                    if transport == "tcp":
                        for size in self.fanout_sizes:
                            out.append(
                                Row("throughput", f"PUB/SUB x{SUBSCRIBERS}", server, client, transport, mech, size)
                            )
                    for pattern in self.latency_patterns:
                        for size in self.latency_sizes:
                            out.append(Row("latency", pattern, server, client, transport, mech, size))
        return out


def full_plan(peers: list[str]) -> Plan:
    """Every pairing, transport, mechanism and size, both latency patterns: the long run (hours with every peer)."""
    return Plan(
        peers,
        transports=["tcp", "ipc"],
        mechanisms=["NULL", "PLAIN", "CURVE"],
        sizes=list(SIZES),
        secure_sizes=list(SIZES),
        fanout_sizes=[64, 1024],
        latency_patterns=["REQ/REP", "DEALER/ROUTER"],
        secure_rest=True,
        pairings="all",
        budget=64 * 1024 * 1024,
    )


def loop_of(peer: str, family: str, versions: dict[str, str]) -> str:
    """What `peer`'s bench loop runs in, with the runtime its agent reported (Monocoque's backend)."""
    loop = LOOPS.get(family, LOOPS.get(peer, "agent loop"))
    runtime = versions.get("runtime", "")
    if runtime:
        loop += f", runtime {runtime.split(',')[0]}"  # the rest of the note says why that one
    if family in ("czmq", "libzmq", "zeromqjs") and versions.get("libzmq"):
        loop += f" {versions['libzmq']}"
    return loop


def reference_description(versions: dict[str, str]) -> str:
    """The reference as a reader should quote it: which library, which version, driven from what."""
    lib = versions.get("libzmq", "?")
    via = f"czmq {versions['czmq']} agent" if "czmq" in versions else "czmq agent"
    return f"libzmq {lib} driven from C ({via}: zmq_send / zmq_msg_recv loops on the raw handle)"


async def run(plan: Plan, pool: AgentPool, progress: Any = None) -> dict[str, Any]:
    rows = plan.rows()
    versions: dict[str, dict[str, str]] = {}
    families = {name: getattr(spec, "family", name) for name, spec in getattr(pool, "specs", {}).items()}
    start = time.time()
    for i, row in enumerate(rows):
        if progress is not None:
            progress(i, len(rows), row)
        try:
            if row.kind == "latency":
                await latency(pool, row, plan.rtt_count, plan.reps)
            elif row.pattern.startswith("PUB/SUB"):
                await fanout(pool, row, plan.budget, plan.reps)
            else:
                await throughput(pool, row, plan.budget, plan.reps)
        except Exception as exc:  # one pairing that fails is reported in its row; the others still run
            row.error = f"{type(exc).__name__}: {exc}"
        for (peer, _side), agent in pool.agents.items():
            versions[peer] = agent.versions
    return {
        "schema_version": 1,
        "meta": {
            "generated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "wall_time": round(time.time() - start, 1),
            "machine": {
                "node": platform.node(),
                "platform": platform.platform(),
                "python": platform.python_version(),
                "cpus": os.cpu_count(),
                "processor": platform.processor(),
            },
            "peer_versions": versions,
            "families": {p: families.get(p, p) for p in versions},
            "loops": {p: loop_of(p, families.get(p, p), v) for p, v in versions.items()},
            "plan": {k: v for k, v in asdict(plan).items() if k != "peers"} | {"peers": plan.peers},
            "reference": REFERENCE,
            "reference_is": reference_description(versions.get(REFERENCE, {})),
        },
        "rows": [asdict(r) | {"figure": r.figure(), "spread": r.spread()} for r in rows],
    }


def load_rows(doc: dict[str, Any]) -> list[Row]:
    keep = {f for f in Row.__dataclass_fields__}
    return [Row(**{k: v for k, v in r.items() if k in keep}) for r in doc["rows"]]


def reference_of(doc: dict[str, Any]) -> str:
    """The peer a saved run's ratios are against (runs before meta.reference existed used pyzmq's libzmq)."""
    return str(doc.get("meta", {}).get("reference", "libzmq"))


def ratios(rows: list[Row], reference: str = REFERENCE) -> dict[str, float]:
    """Each row's figure over the reference's in the same run; for latency, the reference's over the row's
    (higher is better)."""
    by_key = {r.key: r for r in rows}
    out = {}
    for r in rows:
        ref = by_key.get(r.reference_key(reference))
        mine, theirs = r.figure(), ref.figure() if ref is not None else None
        if mine and theirs:
            out[r.key] = mine / theirs if r.kind == "throughput" else theirs / mine
    return out


def noise(row: Row) -> float:
    """The relative spread of a row's repetitions: how much its figure moved by itself."""
    sp, fig = row.spread(), row.figure()
    if not sp or not fig:
        return 0.0
    return (sp[1] - sp[0]) / fig


def compare(current: dict[str, Any], baseline: dict[str, Any], floor: float = 0.10) -> list[str]:
    """Rows whose ratio to the reference fell by more than the noise both runs measured (and at least `floor`)."""
    ref_c, ref_b = reference_of(current), reference_of(baseline)
    if ref_c != ref_b:
        return [f"the baseline's ratios are against {ref_b}, this run's against {ref_c}: they cannot be compared"]
    cur, base = load_rows(current), load_rows(baseline)
    cur_r, base_r = ratios(cur, ref_c), ratios(base, ref_b)
    by_key_c, by_key_b = {r.key: r for r in cur}, {r.key: r for r in base}
    out = []
    for key, now in cur_r.items():
        before = base_r.get(key)
        if before is None:
            continue
        allowed = max(floor, noise(by_key_c[key]) + noise(by_key_b[key]))
        if now < before * (1 - allowed):
            out.append(f"{key.replace('|', ' ')}: ratio {now:.2f}, was {before:.2f} (noise allows {allowed:.0%})")
    return out


def write(doc: dict[str, Any], out: Path) -> list[Path]:
    """bench.json, the plots and bench.html in `out`; returns the files written."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench.json").write_text(json.dumps(doc, indent=1))
    from .report import benchpage

    rows = load_rows(doc)
    return [out / "bench.json", *benchpage.write(doc, rows, ratios(rows, reference_of(doc)), out)]
