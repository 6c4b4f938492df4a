"""Each cell's traffic as evidence: captured, written to a pcap, and every peer's bytes validated.

A cell runs with a `CellCapture` that learns, as the cell sets up, which
server endpoints belong to which peer and which connections the harness
itself made (raw roles, the sanity check). At the end it writes the cell's
pcap and validates the directions the peers under test sent; what the
harness sent on purpose (malformed greetings, garbage) is not judged.

Two ways to capture, same pcap either way:
- `SnifferCapture`: tcp cells, when tcpdump can run (root): the packets as
  they crossed `lo`, cut out of the process's running capture by port.
- `ProxyCapture`: ipc cells, and tcp cells without root: a recording proxy
  in front of each server, the recording written as a pcap by scapy.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .capture import pcap, tcp
from .capture.curvebox import CurveKeys
from .capture.proxy import RecordingProxy
from .capture.sniffer import Sniffer
from .capture.validator import Violation, validate_stream
from .deviations import WireDeviation, find_wire
from .endpoints import UNIX

if TYPE_CHECKING:
    from .peers import KnownStall, PeerSpec

HARNESS = None  # owner of a stream side the harness drives: not validated
SIGNATURE = 10  # octets of the greeting's signature, the first thing every ZMTP 3 peer sends
# A client that sends nothing for this long after it owed its greeting counts as silent, also if
# something follows: JeroMQ's stalled connect sent its first octets only as the cell gave up, 2.1 s
# on. Below the 2 s a step waits by default, so the silence is over before the step fails.
SILENT_FOR = 1.5


@dataclass
class Finding:
    """A check that failed for one peer in one cell: the first violation, and how many there were."""

    peer: str
    violation: Violation
    count: int = 1
    deviation: WireDeviation | None = None

    def record(self) -> dict[str, Any]:
        v = self.violation
        return {
            "peer": self.peer,
            "check": v.check,
            "clause": v.clause,
            "level": v.level,
            "sender": v.sender,
            "stream": v.stream,
            "offset": v.offset,
            "message": v.message,
            "octets": v.octets,
            "count": self.count,
            "deviation": None
            if self.deviation is None
            else {"id": self.deviation.id, "reason": self.deviation.reason, "reference": self.deviation.reference},
        }

    def __str__(self) -> str:
        more = f" (and {self.count - 1} more)" if self.count > 1 else ""
        return f"{self.peer} as {self.violation.sender}: {self.violation}{more}"


@dataclass
class WireResult:
    method: str
    file: str | None = None
    streams: int = 0
    findings: list[Finding] = field(default_factory=list)
    incomplete: list[str] = field(default_factory=list)  # streams with bytes the capture lost
    # Peers that connected and sent nothing at all, not even the greeting, though the server's
    # signature reached them: a stall before the handshake (JeroMQ 0.6's Poller race), which a
    # step sees only as "nothing arrived" far later.
    silent: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def unknown(self) -> list[Finding]:
        return [f for f in self.findings if f.deviation is None]

    def record(self, base: Path | None = None) -> dict[str, Any]:
        file = self.file
        if file and base is not None:
            try:
                file = os.path.relpath(file, base)
            except ValueError:
                pass
        return {
            "method": self.method,
            "file": file,
            "streams": self.streams,
            "violations": [f.record() for f in self.findings],
            "incomplete": self.incomplete,
            "silent": self.silent,
            "error": self.error,
        }


def file_name(cell_id: str) -> str:
    """A cell id as a file name: `37/null/ready[impl-libzmq-tcp-NULL]` -> `37_null_ready__impl-libzmq-tcp-NULL.pcap`."""
    return re.sub(r"[^A-Za-z0-9._\-]+", "_", cell_id.replace("[", "__").rstrip("]")) + ".pcap"


def stalled_file_name(name: str, attempt: int) -> str:
    """Where a stalled attempt's pcap is kept when its cell is run again: `X.pcap` -> `X.stalled-1.pcap`."""
    return f"{name.removesuffix('.pcap')}.stalled-{attempt}.pcap"


def rerun_file_name(name: str, run: int) -> str:
    """Where the pcap of a run that --reruns repeated is kept: `X.pcap` -> `X.rerun-1.pcap`."""
    return f"{name.removesuffix('.pcap')}.rerun-{run}.pcap"


def check(
    path: Path,
    owners: dict[tuple[int, int], tuple[str | None, str | None]],
    server_owner: dict[int, str | None],
    scenario_id: str,
    table: list[WireDeviation],
    keylog: Path | None = None,
) -> tuple[int, list[Finding], list[str], list[str]]:
    """Validate the pcap at `path`. A stream's (client, server) owners come from its ports:
    `owners` by (client port, server port), else `server_owner` by server port with the
    client side taken to be the cell's client peer (given under key 0). With a key log, CURVE
    boxes are opened and checked inside too. Returns the number of streams, the violations,
    the streams the capture lost bytes of or began after (those are not judged), and the peers
    that connected and stayed silent (for SILENT_FOR seconds at least)."""
    header, records = pcap.read(path)
    streams = tcp.streams(records, header.linktype)
    keys = None
    found: dict[tuple[str, str], Finding] = {}
    incomplete = []
    silent: list[str] = []
    for st in streams:
        cport, sport = st.client[1], st.server[1]
        if (cport, sport) in owners:
            c_owner, s_owner = owners[cport, sport]
        elif sport in server_owner:
            c_owner, s_owner = server_owner.get(0), server_owner[sport]
        else:
            continue
        if not st.saw_syn:
            # The capture began after this connection did (tcpdump starting late): its first bytes
            # are not a greeting, and judging them as one blamed a peer for a frame cut in half.
            incomplete.append(st.name)
            continue
        if st.to_server.gap is not None or st.to_client.gap is not None:
            incomplete.append(st.name)
        # A client owes its greeting (or its first 11 octets) as soon as it connects, whatever the
        # server does; a peer server's signature is the proof that nothing on that side held it up,
        # and a raw server that sent nothing was scripted to wait for the client's first octets.
        if c_owner is not HARNESS and c_owner not in silent:
            if len(st.to_client.data) >= SIGNATURE:
                owed: float | None = max(t for off, t in st.to_client.times if off < SIGNATURE)
            elif s_owner is HARNESS and not st.to_client.data:
                owed = st.first_seen
            else:
                owed = None
            if owed is not None and (not st.to_server.data or st.to_server.times[0][1] - owed >= SILENT_FOR):
                silent.append(c_owner)
        skip = tuple(side for side, owner in (("client", c_owner), ("server", s_owner)) if owner is HARNESS)
        if len(skip) == 2:
            continue
        if keys is None and keylog is not None and _is_curve(st):
            keys = _curve_keys(keylog)
        for v in validate_stream(st, skip=skip, keys=keys):
            peer = c_owner if v.sender == "client" else s_owner
            assert peer is not None
            key = (peer, v.check)
            if key in found:
                found[key].count += 1
            else:
                found[key] = Finding(peer, v, deviation=find_wire(table, v.check, peer, scenario_id, v.octets))
    return len(streams), list(found.values()), incomplete, silent


def declared_stall(client: str, wire: WireResult | None, spec: PeerSpec | None) -> KnownStall | None:
    """The reviewed stall of the cell's client peer that this capture shows, if any: that peer
    connected, the other side's signature reached it (or the other side is the raw peer, waiting for
    the client's first octets), and it sent nothing, or nothing for SILENT_FOR seconds (`silent`), and its
    registry entry declares a stall on the client side. No capture (--pcap off), a capture that
    failed, a peer that spoke at all, or a peer that declares nothing: None, and the cell's
    verdict is the ordinary one."""
    if wire is None or wire.error or spec is None or client not in wire.silent:
        return None
    return next((s for s in spec.known_stalls if s.side == "client"), None)


def _is_curve(st: tcp.Stream) -> bool:
    return bytes(st.to_server.data[12:17]) == b"CURVE"


def _curve_keys(keylog: Path) -> CurveKeys | None:
    from .capture.keylog import KeylogError, read
    from .credentials import CURVE_SERVER_PUBLIC, z85_decode

    try:
        transient = read(keylog) if keylog.exists() else {}
    except KeylogError:
        return None  # a damaged key log costs the look inside the boxes, not the verdict
    return CurveKeys(transient, z85_decode(CURVE_SERVER_PUBLIC))


class CellCapture:
    """What one cell needs from a capture method; see the subclasses."""

    method = ""

    def __init__(self, client_peer: str, keylog: Path | None = None) -> None:
        self.client_peer = client_peer
        self.keylog = keylog  # the agents' CURVE key log, to look inside boxes
        self.server_owner: dict[int, str | None] = {0: client_peer}
        self.harness_ports: set[int] = set()

    async def begin(self) -> None:
        pass

    async def expose(self, endpoint: str, owner: str | None, later: bool = False, ipc: str = UNIX) -> str:
        """The endpoint clients should connect to, for a server at `endpoint` run by `owner` (None: the harness).

        `later`: the server binds only after its clients connect; `listening(endpoint)` says when it has.
        `ipc`: how the server and its clients reach an ipc endpoint (endpoints.IPC_KINDS).
        """
        raise NotImplementedError

    async def listening(self, endpoint: str) -> None:
        """The server exposed with `later` has bound `endpoint` now."""

    def harness_client(self, writer: Any) -> None:
        """Note a connection the harness made as a client (its bytes are not judged), by its local port;
        ipc connections have none and are told apart by process instead (see ProxyCapture)."""
        name = writer.get_extra_info("sockname")
        if isinstance(name, tuple):
            self.harness_ports.add(name[1])

    async def finish(self, path: Path, scenario_id: str, table: list[WireDeviation]) -> WireResult:
        raise NotImplementedError


def _port(endpoint: str) -> int | None:
    if not endpoint.startswith("tcp://"):
        return None
    return int(endpoint.rsplit(":", 1)[1])


class SnifferCapture(CellCapture):
    method = "tcpdump"

    def __init__(self, client_peer: str, sniffer: Sniffer, keylog: Path | None = None) -> None:
        super().__init__(client_peer, keylog)
        self.sniffer = sniffer

    async def begin(self) -> None:
        self.sniffer.sync()  # drop what came before this cell

    async def expose(self, endpoint: str, owner: str | None, later: bool = False, ipc: str = UNIX) -> str:
        port = _port(endpoint)
        if port is not None:
            self.server_owner[port] = owner
        return endpoint

    async def finish(self, path: Path, scenario_id: str, table: list[WireDeviation]) -> WireResult:
        result = WireResult(self.method, str(path))
        records = self.sniffer.sync()
        servers = {p for p in self.server_owner if p}
        linktype = self.sniffer.linktype
        with pcap.Writer(path, linktype) as out:
            for rec in records:
                ports = tcp.ports(rec.data, linktype)
                if ports and (ports[0] in servers or ports[1] in servers):
                    out.write(rec)
        owners = {}
        for hp in self.harness_ports:
            for sp, owner in self.server_owner.items():
                if sp:
                    owners[hp, sp] = (HARNESS, owner)
        result.streams, result.findings, result.incomplete, result.silent = check(
            path, owners, self.server_owner, scenario_id, table, self.keylog
        )
        return result


class ProxyCapture(CellCapture):
    method = "proxy"

    def __init__(self, client_peer: str, keylog: Path | None = None) -> None:
        super().__init__(client_peer, keylog)
        self.proxies: list[tuple[RecordingProxy, str | None]] = []

    async def expose(self, endpoint: str, owner: str | None, later: bool = False, ipc: str = UNIX) -> str:
        proxy = RecordingProxy(endpoint, ipc)
        ep = await proxy.start(listen=not later)
        self.proxies.append((proxy, owner))
        return ep

    async def listening(self, endpoint: str) -> None:
        for proxy, _ in self.proxies:
            if proxy.target == endpoint and proxy.server is None:
                await proxy.listen()

    async def finish(self, path: Path, scenario_id: str, table: list[WireDeviation]) -> WireResult:
        from .capture import synth

        result = WireResult(self.method, str(path))
        pkts: list[Any] = []
        owners: dict[tuple[int, int], tuple[str | None, str | None]] = {}
        for i, (proxy, owner) in enumerate(self.proxies):
            await proxy.close()
            # Real ports where there are any (tcp), made-up ones for ipc.
            sport = _port(proxy.target) or synth.SERVER_PORT + i
            for j, conv in enumerate(proxy.conversations):
                if isinstance(conv.client, tuple):
                    caddr, harness = conv.client, conv.client[1] in self.harness_ports
                else:  # ipc: the harness's own connections come from this process
                    caddr, harness = ("127.0.0.1", 40000 + 100 * i + j), conv.client == os.getpid()
                saddr = ("::1" if ":" in caddr[0] else "127.0.0.1", sport)
                pkts += synth.packets(conv.chunks, caddr, saddr, reset=conv.reset)
                owners[caddr[1], sport] = (HARNESS if harness else self.client_peer, owner)
        synth.write_packets(path, pkts)
        result.streams, result.findings, result.incomplete, result.silent = check(
            path, owners, {}, scenario_id, table, self.keylog
        )
        return result
