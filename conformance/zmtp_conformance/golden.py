"""Golden captures: real libzmq and czmq exchanges, recorded once, kept in captures/ with a manifest.

`zmtp-conformance golden record` drives two agents of the same peer through
one exchange per socket-type family and mechanism (plus heartbeats and the
ZMTP 3.0 subscription form), sniffs `lo` with tcpdump, checks each capture
with the validator, and writes the pcaps and `captures/manifest.yaml`. The
keys are the harness's test keys (libzmq's documented ones), never real ones.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from . import protocol
from .capture import pcap, tcp
from .capture.sniffer import Sniffer
from .capture.validator import validate_stream
from .credentials import (
    CURVE_CLIENT_PUBLIC,
    CURVE_CLIENT_SECRET,
    CURVE_SERVER_PUBLIC,
    CURVE_SERVER_SECRET,
    MECHANISM_OPTIONS,
    PLAIN_PASSWORD,
    PLAIN_USER,
)
from .deviations import find_wire, load_wire
from .peers import AgentPool, AgentProcess, load_registry

ROOT = Path(__file__).resolve().parents[2]
CAPTURES = ROOT / "captures"
MANIFEST = CAPTURES / "manifest.yaml"
KEYLOG = "curve-keylog.txt"  # the agents' CURVE transient keys, beside the captures

Exchange = Callable[["Side", "Side"], Awaitable[None]]


@dataclass
class Side:
    agent: AgentProcess
    socket: str

    async def send(self, *frames: bytes) -> None:
        await self.agent.request("send", socket=self.socket, frames=protocol.encode_frames(list(frames)), timeout=2)

    async def recv(self) -> list[bytes]:
        resp = await self.agent.request("recv", socket=self.socket, timeout=2)
        return protocol.decode_frames(resp["frames"])


async def request_reply(server: Side, client: Side) -> None:
    await client.send(b"hello")
    assert await server.recv() == [b"hello"]
    await server.send(b"world")
    assert await client.recv() == [b"world"]


async def routed(server: Side, client: Side) -> None:
    await client.send(b"hello")
    rid, body = await server.recv()
    assert body == b"hello"
    await server.send(rid, b"world")
    assert await client.recv() == [b"world"]


async def publish(server: Side, client: Side) -> None:
    await client.agent.request("subscribe", socket=client.socket, topic=b"weather.".hex())
    await asyncio.sleep(0.3)  # the subscription travels before the first message
    await server.send(b"weather.paris", b"sunny")
    await server.send(b"sport.tennis", b"0-15")  # filtered out by the publisher
    await server.send(b"weather.oslo", b"snow")
    assert await client.recv() == [b"weather.paris", b"sunny"]
    assert await client.recv() == [b"weather.oslo", b"snow"]


async def pipeline(server: Side, client: Side) -> None:
    await client.send(b"job", b"1")
    await client.send(b"job", b"2")
    assert await server.recv() == [b"job", b"1"]
    assert await server.recv() == [b"job", b"2"]


async def heartbeats(server: Side, client: Side) -> None:
    await routed(server, client)
    await asyncio.sleep(0.35)  # three heartbeat intervals: PINGs and PONGs


@dataclass(frozen=True)
class Plan:
    name: str
    peer: str
    family: str
    server_type: str
    client_type: str
    mechanism: str
    exchange: Exchange
    description: str
    clauses: tuple[str, ...]
    client_options: dict[str, Any] = field(default_factory=dict)
    server_peer: str = ""  # another peer for the server side (default: `peer`)
    server_args: tuple[str, ...] = ()

    @property
    def file(self) -> str:
        return f"{self.name}.pcap"


FAMILIES = (
    ("req-rep", "REP", "REQ", request_reply, "28/REQREP"),
    ("dealer-router", "ROUTER", "DEALER", routed, "28/REQREP"),
    ("pub-sub", "PUB", "SUB", publish, "29/PUBSUB"),
    ("push-pull", "PULL", "PUSH", pipeline, "30/PIPELINE"),
    ("pair", "PAIR", "PAIR", request_reply, "31/EXPAIR"),
)
MECHANISM_CLAUSES = {"NULL": "37/ZMTP#the-null-security-mechanism", "PLAIN": "24/ZMTP-PLAIN", "CURVE": "26/CURVEZMQ"}
HEARTBEAT = {"heartbeat_ivl": 0.1, "heartbeat_ttl": 1.0, "heartbeat_timeout": 1.0}


def plans(peers: tuple[str, ...] = ("libzmq", "czmq")) -> list[Plan]:
    out = []
    for peer in peers:
        for family, stype, ctype, exchange, clause in FAMILIES:
            for mech in ("NULL", "PLAIN", "CURVE"):
                out.append(
                    Plan(
                        f"{peer}-{family}-{mech.lower()}",
                        peer,
                        family,
                        stype,
                        ctype,
                        mech,
                        exchange,
                        f"{peer} {ctype} connects to {peer} {stype} under {mech}: handshake, then "
                        f"{exchange.__name__.replace('_', ' ')}",
                        ("37/ZMTP#the-greeting", MECHANISM_CLAUSES[mech], clause),
                    )
                )
        for mech in ("NULL", "CURVE"):
            out.append(
                Plan(
                    f"{peer}-heartbeat-{mech.lower()}",
                    peer,
                    "heartbeat",
                    "ROUTER",
                    "DEALER",
                    mech,
                    heartbeats,
                    f"{peer} DEALER with heartbeat_ivl 100 ms, ttl 1 s to {peer} ROUTER under {mech}: PING and PONG",
                    ("37/ZMTP#connection-heartbeating", MECHANISM_CLAUSES[mech]),
                    client_options=HEARTBEAT,
                )
            )
        out.append(
            Plan(
                f"{peer}-sub-to-zmtp-3.0-pub",
                peer,
                "pub-sub",
                "PUB",
                "SUB",
                "NULL",
                publish,
                f"{peer} SUB connects to a PUB that greets as ZMTP 3.0 (zmtp with greeting_minor=0): "
                "the subscription goes as a 0x01 message frame, not a SUBSCRIBE command",
                ("23/ZMTP#the-publish-subscribe-pattern", "37/ZMTP#the-publish-subscribe-pattern"),
                server_peer="impl",
                server_args=("--bug", "greeting_minor=0"),
            )
        )
    return out


def keys_for(mechanism: str) -> dict[str, Any]:
    if mechanism == "PLAIN":
        return {"plain": {"username": PLAIN_USER, "password": PLAIN_PASSWORD}}
    if mechanism == "CURVE":
        return {
            "curve": {
                "server_public": CURVE_SERVER_PUBLIC,
                "server_secret": CURVE_SERVER_SECRET,
                "client_public": CURVE_CLIENT_PUBLIC,
                "client_secret": CURVE_CLIENT_SECRET,
            }
        }
    return {}


async def record_one(plan: Plan, pool: AgentPool, sniffer: Sniffer, out: Path) -> dict[str, Any]:
    server_peer = plan.server_peer or plan.peer
    srv_agent = await pool.get(server_peer, "server")
    cli_agent = await pool.get(plan.peer, "client")
    sniffer.sync()
    if plan.mechanism != "NULL":
        await srv_agent.request("zap", users={PLAIN_USER: PLAIN_PASSWORD}, curve_keys=[CURVE_CLIENT_PUBLIC])
    s_opts = MECHANISM_OPTIONS[plan.mechanism]["server"]
    c_opts = {**MECHANISM_OPTIONS[plan.mechanism]["client"], **plan.client_options}
    srv = (await srv_agent.request("socket", type=plan.server_type, options=s_opts, mechanism=plan.mechanism))["socket"]
    cli = (await cli_agent.request("socket", type=plan.client_type, options=c_opts, mechanism=plan.mechanism))["socket"]
    ep = (await srv_agent.request("bind", socket=srv, endpoint="tcp://127.0.0.1:0"))["endpoint"]
    port = int(ep.rsplit(":", 1)[1])
    await cli_agent.request("connect", socket=cli, endpoint=ep)
    try:
        await plan.exchange(Side(srv_agent, srv), Side(cli_agent, cli))
    finally:
        await cli_agent.request("close", socket=cli)
        await asyncio.sleep(0.05)  # let the close reach the wire before the server goes
        await srv_agent.request("close", socket=srv)
        await asyncio.sleep(0.05)
    records = sniffer.sync()
    path = out / plan.file
    with pcap.Writer(path, sniffer.linktype) as w:
        for rec in records:
            ports = tcp.ports(rec.data, sniffer.linktype)
            if ports and port in ports:
                w.write(rec)
    return {
        "file": plan.file,
        "description": plan.description,
        "family": plan.family,
        "mechanism": plan.mechanism,
        "server": {
            "peer": server_peer,
            "socket": plan.server_type,
            "versions": srv_agent.versions,
            "args": list(plan.server_args) or None,
        },
        "client": {
            "peer": plan.peer,
            "socket": plan.client_type,
            "versions": cli_agent.versions,
            "options": plan.client_options or None,
        },
        "keys": keys_for(plan.mechanism) or None,
        "keylog": KEYLOG if plan.mechanism == "CURVE" else None,
        "clauses": list(plan.clauses),
    }


def check_capture(path: Path, entry: dict[str, Any]) -> list[str]:
    """Violations in a golden capture that the wire table does not excuse (there should be none)."""
    header, records = pcap.read(path)
    streams = tcp.streams(records, header.linktype)
    table = load_wire()
    problems = []
    if len(streams) != 1:
        problems.append(f"{path.name}: {len(streams)} TCP streams, expected 1")
    for st in streams:
        for v in validate_stream(st):
            peer = entry[v.sender]["peer"]
            # A golden capture belongs to no scenario: only entries for every scenario excuse it.
            if find_wire(table, v.check, peer, "", v.octets) is None:
                problems.append(f"{path.name}: {v}")
    return problems


async def record(out: Path = CAPTURES, peers: tuple[str, ...] = ("libzmq", "czmq"), only: str = "") -> list[str]:
    """Record every plan; writes the pcaps and the manifest. Returns the problems found (empty when all is well)."""
    registry = load_registry()
    extra: dict[str, list[str]] = {}
    todo = [p for p in plans(peers) if only in p.name]
    for p in todo:
        if p.server_args:
            extra.setdefault(p.server_peer, []).extend(p.server_args)
    for name in {p.peer for p in todo} | {p.server_peer for p in todo if p.server_peer}:
        why = registry[name].missing() or registry[name].ensure_built()
        if why:
            raise SystemExit(f"cannot record golden captures with {name}: {why}")
    out.mkdir(parents=True, exist_ok=True)
    sniffer = Sniffer()
    sniffer.start()
    entries, problems = [], []
    # The 3.0-greeting server runs in an agent of its own: its bug must not leak into other plans.
    keylog = out / KEYLOG
    keylog.unlink(missing_ok=True)
    pool = AgentPool(registry, {}, keylog=keylog)
    bug_pool = AgentPool(registry, extra, keylog=keylog)
    try:
        for plan in todo:
            use = bug_pool if plan.server_args else pool
            entry = await record_one(plan, use, sniffer, out)
            problems += check_capture(out / plan.file, entry)
            entries.append(entry)
            print(f"recorded {plan.file}")
    finally:
        await pool.close()
        await bug_pool.close()
        sniffer.stop()
    manifest = {
        "about": (
            "Golden ZMTP captures recorded from real peers on loopback with tcpdump by "
            "`zmtp-conformance golden record`. Each was validated when recorded. Keys are the harness's "
            "test keys (libzmq's documented ones): never use them for anything real. curve-keylog.txt holds "
            "the CURVE connections' transient keys (each used once), so their boxes can be opened."
        ),
        "recorded": time.strftime("%Y-%m-%d", time.gmtime()),
        "captures": entries,
    }
    (out / "manifest.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False, width=100))
    return problems


def load_manifest(path: Path = MANIFEST) -> dict[str, dict[str, Any]]:
    """Manifest entries by file name."""
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except OSError as exc:
        raise SystemExit(f"cannot read the capture manifest {path}: {exc}") from None
    return {e["file"]: e for e in doc.get("captures") or []}
