"""Benchmarks across peers: every pairing measured the same way, in the same run.

Each peer's agent runs the hot loop itself with its own fastest public API
(`bench_send` / `bench_recv` / `bench_rtt` / `bench_echo` in
docs/agent-protocol.md) and times it, so the control protocol is never in
the timed path. Rows:

- throughput: PUSH (client) to PULL (server), and PUB to three SUBs (fan-out);
- latency: REQ/REP and DEALER/ROUTER round trips, p50/p95/p99.

Machines are noisy, so every figure is also given as a ratio to libzmq with
libzmq measured in the same run, and every repetition is kept. No test
asserts a timing; `compare` checks a run against a saved baseline and flags
the rows whose ratio fell by more than the noise both runs measured.
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
from .peers import AgentPool, endpoint_for

SIZES = (64, 1024, 64 * 1024, 1024 * 1024)
LATENCY_SIZES = (64, 1024)
SUBSCRIBERS = 3
REFERENCE = "libzmq"
# Throughput sockets get deep queues everywhere, and each peer its own best settings where it has
# some: zmtp reads and writes through larger buffers (libzmq and czmq size theirs themselves).
THROUGHPUT_OPTIONS = {"sndhwm": 10000, "rcvhwm": 10000}
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

    @property
    def key(self) -> str:
        return f"{self.kind}|{self.pattern}|{self.server}|{self.client}|{self.transport}|{self.mechanism}|{self.size}"

    @property
    def reference_key(self) -> str:
        return f"{self.kind}|{self.pattern}|{REFERENCE}|{REFERENCE}|{self.transport}|{self.mechanism}|{self.size}"

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


async def _bind(agent: Any, sock: str, transport: str) -> str:
    """Bind to a fresh endpoint. libzmq now and then answers a port-0 bind with EADDRINUSE in a
    burst of short runs; then a port found free here is named explicitly instead."""
    endpoint = endpoint_for(transport)
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


async def _socket(pool: AgentPool, peer: str, side: str, type: str, mechanism: str, **extra: Any) -> tuple[Any, str]:
    agent = await pool.get(peer, side)
    if mechanism != "NULL" and side == "server":
        await agent.request("zap", users={"admin": "secret"}, curve_keys=[CURVE_CLIENT_PUBLIC])
    options = {
        **MECHANISM_OPTIONS[mechanism]["server" if side == "server" else "client"],
        **PEER_TUNING.get(peer, {}),
        **extra,
    }
    resp = await agent.request("socket", type=type, options=options, mechanism=mechanism)
    return agent, resp["socket"]


async def throughput(pool: AgentPool, row: Row, budget: int, reps: int) -> None:
    count = _counts(row.size, budget)
    server, s = await _socket(pool, row.server, "server", "PULL", row.mechanism, **THROUGHPUT_OPTIONS)
    client, c = await _socket(pool, row.client, "client", "PUSH", row.mechanism, **THROUGHPUT_OPTIONS)
    try:
        ep = await _bind(server, s, row.transport)
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
    server, s = await _socket(pool, row.server, "server", "PUB", row.mechanism, sndhwm=0)
    subs = [await _socket(pool, row.client, f"sub{i}", "SUB", row.mechanism, rcvhwm=0) for i in range(SUBSCRIBERS)]
    try:
        ep = await _bind(server, s, row.transport)
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
        ep = await _bind(server, s, row.transport)
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
    peers: list[str]
    transports: list[str] = field(default_factory=lambda: ["tcp", "ipc"])
    mechanisms: list[str] = field(default_factory=lambda: ["NULL", "CURVE"])
    sizes: list[int] = field(default_factory=lambda: list(SIZES))
    reps: int = 3
    budget: int = 64 * 1024 * 1024  # bytes per throughput repetition
    rtt_count: int = 2000
    fanout: bool = True

    def rows(self) -> list[Row]:
        out = []
        for transport in self.transports:
            for mech in self.mechanisms:
                for server in self.peers:
                    for client in self.peers:
                        for size in self.sizes:
                            out.append(Row("throughput", "PUSH/PULL", server, client, transport, mech, size))
                        if self.fanout and transport == "tcp":
                            for size in (64, 1024):
                                out.append(
                                    Row("throughput", f"PUB/SUB x{SUBSCRIBERS}", server, client, transport, mech, size)
                                )
                        for pattern in ("REQ/REP", "DEALER/ROUTER"):
                            for size in LATENCY_SIZES:
                                out.append(Row("latency", pattern, server, client, transport, mech, size))
        return out


async def run(plan: Plan, pool: AgentPool, progress: Any = None) -> dict[str, Any]:
    rows = plan.rows()
    versions: dict[str, dict[str, str]] = {}
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
            "plan": {k: v for k, v in asdict(plan).items() if k != "peers"} | {"peers": plan.peers},
            "reference": REFERENCE,
        },
        "rows": [asdict(r) | {"figure": r.figure(), "spread": r.spread()} for r in rows],
    }


def load_rows(doc: dict[str, Any]) -> list[Row]:
    keep = {f for f in Row.__dataclass_fields__}
    return [Row(**{k: v for k, v in r.items() if k in keep}) for r in doc["rows"]]


def ratios(rows: list[Row]) -> dict[str, float]:
    """Each row's figure over libzmq's in the same run; for latency, libzmq's over the row's (higher is better)."""
    by_key = {r.key: r for r in rows}
    out = {}
    for r in rows:
        ref = by_key.get(r.reference_key)
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
    """Rows whose ratio to libzmq fell by more than the noise both runs measured (and at least `floor`)."""
    cur, base = load_rows(current), load_rows(baseline)
    cur_r, base_r = ratios(cur), ratios(base)
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

    return [out / "bench.json", *benchpage.write(doc, load_rows(doc), ratios(load_rows(doc)), out)]
