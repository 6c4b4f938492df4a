"""Endpoints the harness hands out, and the two ways a peer reaches an `ipc://` endpoint.

Most implementations open a Unix-domain socket at an ipc path. JeroMQ has none (the JVM had no
Unix sockets when it was written) and emulates ipc over tcp on loopback: `zmq.io.net.ipc.IpcAddress
.resolve` turns the path into a port, 10000 + |String.hashCode(path)| mod 55536, on the first
loopback address. Two JeroMQ peers meet that way, and nothing that opens the Unix socket ever
reaches them, nor they it. A peer says which way it goes in its hello (`ipc`, docs/agent-protocol.md);
an ipc cell runs only when every party to it goes the same way, and the harness (its recording
proxy, its choice of paths) then goes that way too.
"""

from __future__ import annotations

import math
import os
import random
import socket
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# ipc:// endpoints live here, so that peers in containers (which mount it) reach them too.
IPC_DIR = Path(tempfile.gettempdir()) / "zmtp-conformance"

UNIX = "unix"  # a Unix-domain socket at the path: libzmq and almost everyone, and the harness itself
JEROMQ = "jeromq"  # JeroMQ's tcp emulation: see jeromq_port
IPC_KINDS = {
    UNIX: "a Unix-domain socket at the path",
    JEROMQ: "JeroMQ's emulation: tcp on 127.0.0.1, port 10000 + |String.hashCode(path)| mod 55536",
}


def ipc_kind(peer: str, hello: dict[str, Any]) -> str:
    """How the peer whose hello this is reaches ipc endpoints (absent: a Unix socket)."""
    kind = hello.get("ipc", UNIX)
    if kind not in IPC_KINDS:
        raise ValueError(f"{peer}'s hello says ipc {kind!r}; expected one of {', '.join(IPC_KINDS)}")
    return kind


def agents_ipc(agents: list[Any]) -> dict[str, str]:
    """Each agent's peer (its name before the "/side") -> how it reaches ipc endpoints."""
    return {agent.name.split("/")[0]: ipc_kind(agent.name, agent.hello) for agent in agents}


def ipc_mismatch(parties: dict[str, str]) -> str | None:
    """Why parties (name -> ipc kind) cannot meet over ipc, or None when they all go one way."""
    if len(set(parties.values())) < 2:
        return None
    ways = "; ".join(f"{name}: {IPC_KINDS[kind]}" for name, kind in parties.items())
    return f"ipc:// is not one transport for this cell's parties ({ways}), so none reaches the other"


def java_string_hash(text: str) -> int:
    """Java's String.hashCode: 31-polynomial over UTF-16 code units, in 32-bit two's complement."""
    units = text.encode("utf-16-be")
    h = 0
    for i in range(0, len(units), 2):
        h = (31 * h + (units[i] << 8 | units[i + 1])) & 0xFFFFFFFF
    return h - (1 << 32) if h & 0x80000000 else h


def jeromq_port(path: str) -> int:
    """The loopback tcp port JeroMQ 0.6 listens on and connects to for `ipc://path`."""
    h = java_string_hash(path)
    # Java's int negation and remainder: -MIN_VALUE overflows back to itself, and % keeps the
    # dividend's sign (as math.fmod does), so that one path gets a port below 10000.
    if h != -(1 << 31):
        h = abs(h)
    return int(math.fmod(h, 55536)) + 10000


def tcp_address(kind: str, path: str) -> tuple[str, int] | None:
    """Where a peer of this kind really listens for `ipc://path` (None: the Unix socket itself)."""
    return ("127.0.0.1", jeromq_port(path)) if kind == JEROMQ else None


def ephemeral_floor() -> int:
    """The lowest port the kernel hands to outgoing connections."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


FIRST_PORT = 10000  # below it, well-known and registered services


@dataclass(frozen=True)
class PortRange:
    """Ports [low, high) on 127.0.0.1 where this process's servers listen."""

    low: int
    high: int

    def __contains__(self, port: object) -> bool:
        return isinstance(port, int) and self.low <= port < self.high

    @property
    def bpf(self) -> str:
        """A capture filter for tcp segments to or from these ports."""
        return f"tcp portrange {self.low}-{self.high - 1}"


_claimed: PortRange | None = None


def claim_ports(index: int, count: int) -> PortRange:
    """The index-th of `count` equal shares of the ports below the ephemeral range, this process's
    from now on: its cells' servers listen there and nowhere else.

    Each matrix worker records loopback with its own tcpdump. With the servers of each worker's
    cells in a range of their own, its tcpdump can filter on that range, and records its own
    cells' connections only, instead of every worker's traffic and every agent's control
    connection, each of which it would otherwise copy, write and read back to throw away.
    """
    global _claimed
    floor = ephemeral_floor()
    size = (floor - FIRST_PORT) // max(1, count)
    if not 0 <= index < count or size < 200:
        raise ValueError(
            f"cannot give share {index} of {count} of the ports {FIRST_PORT}-{floor - 1}: too few for {count} workers"
        )
    _claimed = PortRange(FIRST_PORT + index * size, FIRST_PORT + (index + 1) * size)
    return _claimed


def port_range() -> PortRange:
    """Where this process's servers listen: its claimed share, else every port below the ephemeral range."""
    return _claimed or PortRange(FIRST_PORT, ephemeral_floor())


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_tcp_port() -> int:
    """A tcp port on 127.0.0.1 that nothing listens on, below the kernel's ephemeral range.

    For a server that binds after its clients connect: no outgoing connection is given the port
    meanwhile, and a client retrying its connect can never meet itself there (a TCP self-connect,
    when the source port the kernel picks equals the closed destination port).
    """
    ports = port_range()
    for _ in range(100):
        port = random.randrange(ports.low, max(ports.high, ports.low + 1))
        if _port_is_free(port):
            return port
    raise OSError(f"no free tcp port on 127.0.0.1 between {ports.low} and {ports.high - 1}")


def ipc_path(kind: str, ipc: str = UNIX) -> str:
    """A fresh, short socket path in IPC_DIR (sun_path holds 108 bytes).

    Under JeroMQ's emulation the path is a port too: it is drawn again until that port is free and
    in this process's range, for the reasons free_tcp_port and claim_ports give.
    """
    IPC_DIR.mkdir(mode=0o1777, exist_ok=True)
    ports = port_range()
    for _ in range(1000):
        path = str(IPC_DIR / f"{kind}-{os.getpid()}-{uuid.uuid4().hex[:10]}.ipc")
        if ipc != JEROMQ:
            return path
        port = jeromq_port(path)
        if port in ports and _port_is_free(port):
            return path
    raise OSError(f"no ipc path whose JeroMQ port is free and between {ports.low} and {ports.high - 1}")


def without_resource(endpoint: str) -> str:
    """`tcp://host:port/resource` (RFC 37) as the listener's `tcp://host:port`; anything else unchanged."""
    if not endpoint.startswith("tcp://"):
        return endpoint
    return "tcp://" + endpoint[6:].partition("/")[0]


def with_resource(endpoint: str, resource: str) -> str:
    """The endpoint of the service `resource` at the listener of `endpoint` (no resource: the listener's)."""
    base = without_resource(endpoint)
    return f"{base}/{resource}" if resource else base


def listen_port() -> int:
    """The tcp port a server of this process listens on: a free one in its claimed range, else 0
    (any the kernel picks)."""
    return free_tcp_port() if _claimed else 0


def endpoint_for(transport: str, ipc: str = UNIX) -> str:
    """What a server binds: a tcp port as listen_port gives, or a fresh ipc path."""
    if transport == "tcp":
        return f"tcp://127.0.0.1:{listen_port()}"
    return f"ipc://{ipc_path('cell', ipc)}"


def free_endpoint(transport: str, ipc: str = UNIX) -> str:
    """An endpoint nothing listens on yet, for a server that binds after its clients connect."""
    if transport != "tcp":
        return endpoint_for(transport, ipc)
    return f"tcp://127.0.0.1:{free_tcp_port()}"
