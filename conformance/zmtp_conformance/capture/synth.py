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

MSS = 65483  # what a loopback segment carries at MTU 65536

Chunk = tuple[str, bytes, float]  # ("c" or "s": who sent it, the bytes, when)


def write_conversation(
    path: str | Path,
    chunks: Iterable[Chunk],
    client: tuple[str, int] = ("127.0.0.1", 40000),
    server: tuple[str, int] = ("127.0.0.1", 5555),
    close: bool = True,
) -> None:
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether
    from scapy.utils import PcapWriter

    chunks = list(chunks)
    t = chunks[0][2] if chunks else time.time()
    seq = {"c": 1000, "s": 5000}
    addr = {"c": client, "s": server}

    def pkt(who: str, flags: str, payload: bytes = b"", ts: float = 0.0):  # type: ignore[no-untyped-def]
        other = "s" if who == "c" else "c"
        p = (
            Ether(src="00:00:00:00:00:00", dst="00:00:00:00:00:00")
            / IP(src=addr[who][0], dst=addr[other][0])
            / TCP(sport=addr[who][1], dport=addr[other][1], flags=flags, seq=seq[who], ack=seq[other], window=65535)
        )
        if payload:
            p = p / payload
        p.time = ts
        return p

    out = PcapWriter(str(path), linktype=1, sync=False)
    try:
        out.write(pkt("c", "S", ts=t))
        seq["c"] += 1
        out.write(pkt("s", "SA", ts=t))
        seq["s"] += 1
        out.write(pkt("c", "A", ts=t))
        for who, data, ts in chunks:
            for i in range(0, len(data), MSS):
                piece = data[i : i + MSS]
                out.write(pkt(who, "PA", piece, ts))
                seq[who] += len(piece)
        if close:
            end = chunks[-1][2] if chunks else t
            for who in ("c", "s"):
                out.write(pkt(who, "FA", ts=end))
                seq[who] += 1
    finally:
        out.close()
