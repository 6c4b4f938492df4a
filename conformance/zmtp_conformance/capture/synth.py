"""Pcap files made from a recorded conversation, with scapy.

Where no packets can be sniffed (no privileges, or a Unix-domain socket),
what each side sent is still known; this writes it as a TCP stream over
loopback (handshake, data segments with true sequence numbers, FIN) so that
the dissector, the validator, tshark and Wireshark all read it like a real
capture. Tests use it to craft wrong bytes on purpose.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path

# Made-up ports for made-up connections, in the dynamic range where tshark has no
# port-based dissector that would claim the stream before ZMTP's heuristic sees it.
SERVER_PORT = 49555
MSS = 65483  # what a loopback segment carries at MTU 65536

Chunk = tuple[str, bytes, float]  # ("c" or "s": who sent it, the bytes, when)


def packets(
    chunks: Iterable[Chunk],
    client: tuple[str, int] = ("127.0.0.1", 40000),
    server: tuple[str, int] = ("127.0.0.1", SERVER_PORT),
    close: bool = True,
    reset: bool = False,
) -> list:  # list of scapy packets, each with .time set
    """The packets of one TCP connection that carried `chunks`: handshake, data, FIN (or RST)."""
    from scapy.layers.inet import IP, TCP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import Ether

    chunks = list(chunks)
    t = chunks[0][2] if chunks else time.time()
    seq = {"c": 1000, "s": 5000}
    addr = {"c": client, "s": server}
    ip = IPv6 if ":" in client[0] else IP

    def pkt(who: str, flags: str, payload: bytes = b"", ts: float = 0.0):  # type: ignore[no-untyped-def]
        other = "s" if who == "c" else "c"
        ack = 0 if flags == "S" else seq[other]  # a lone SYN acknowledges nothing
        p = (
            Ether(src="00:00:00:00:00:00", dst="00:00:00:00:00:00")
            / ip(src=addr[who][0], dst=addr[other][0])
            / TCP(sport=addr[who][1], dport=addr[other][1], flags=flags, seq=seq[who], ack=ack, window=65535)
        )
        if payload:
            p = p / payload
        p.time = ts
        return p

    out = [pkt("c", "S", ts=t)]
    seq["c"] += 1
    out.append(pkt("s", "SA", ts=t))
    seq["s"] += 1
    out.append(pkt("c", "A", ts=t))
    for who, data, ts in chunks:
        for i in range(0, len(data), MSS):
            piece = data[i : i + MSS]
            out.append(pkt(who, "PA", piece, ts))
            seq[who] += len(piece)
    end = chunks[-1][2] if chunks else t
    if reset:
        out.append(pkt("s", "RA", ts=end))
    elif close:
        for who in ("c", "s"):
            out.append(pkt(who, "FA", ts=end))
            seq[who] += 1
    return out


def write_packets(path: str | Path, pkts: list) -> None:  # type: ignore[type-arg]
    """Packets from several connections into one pcap, in time order."""
    from scapy.utils import PcapWriter

    out = PcapWriter(str(path), linktype=1, sync=False, snaplen=262144)  # as tcpdump -s 0: whole 64 KiB segments
    try:
        for p in sorted(pkts, key=lambda p: float(p.time)):
            out.write(p)
    finally:
        out.close()


def write_conversation(
    path: str | Path,
    chunks: Iterable[Chunk],
    client: tuple[str, int] = ("127.0.0.1", 40000),
    server: tuple[str, int] = ("127.0.0.1", SERVER_PORT),
    close: bool = True,
) -> None:
    write_packets(path, packets(chunks, client, server, close))
