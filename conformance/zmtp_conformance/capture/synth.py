"""Pcap files made from a recorded conversation.

Where no packets can be sniffed (no privileges, or a Unix-domain socket),
what each side sent is still known; this writes it as a TCP stream over
loopback (handshake, data segments with true sequence numbers, FIN) so that
the dissector, the validator, tshark and Wireshark all read it like a real
capture. Tests use it to craft wrong bytes on purpose.

The headers are packed here rather than built with scapy: every ipc cell of
the matrix is written this way, and scapy's packet objects cost more CPU than
the cell they record. What is built is plain Ethernet/IPv4-or-IPv6/TCP with
correct checksums; test_wire checks that scapy and tshark read it as such.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
import struct
import time
from collections.abc import Iterable
from pathlib import Path

from .pcap import LINKTYPE_ETHERNET, Record, Writer

# Made-up ports for made-up connections, in the dynamic range where tshark has no
# port-based dissector that would claim the stream before ZMTP's heuristic sees it.
SERVER_PORT = 49555
MSS = 65483  # what a loopback segment carries at MTU 65536

Chunk = tuple[str, bytes, float]  # ("c" or "s": who sent it, the bytes, when)

FLAGS = {"F": 0x01, "S": 0x02, "R": 0x04, "P": 0x08, "A": 0x10}
_ETHER = bytes(12)  # both MAC addresses zero, as on lo


def _checksum(*parts: bytes) -> int:
    """The Internet checksum (RFC 1071) of the parts laid end to end; each part but the last is even."""
    data = b"".join(parts)
    if len(data) % 2:
        data += b"\0"
    # 2**16 = 1 (mod 0xFFFF), so the one's-complement sum of the 16-bit words is the number they
    # spell, mod 0xFFFF: one pass in C instead of a Python int per word (a 1 MiB frame took 20 ms).
    # The one's-complement sum of words not all zero is never +0 but 0xFFFF (RFC 1071).
    total = int.from_bytes(data, "big") % 0xFFFF
    if total == 0 and data.strip(b"\0"):
        total = 0xFFFF
    return ~total & 0xFFFF


@functools.lru_cache(maxsize=64)
def _packed(address: str) -> bytes:
    return ipaddress.ip_address(address).packed


def frame(
    src: tuple[str, int], dst: tuple[str, int], flags: str, seq: int, ack: int, payload: bytes = b"", ts: float = 0.0
) -> Record:
    """One Ethernet frame carrying one TCP segment from `src` to `dst`."""
    v6 = ":" in src[0]
    s_ip, d_ip = _packed(src[0]), _packed(dst[0])
    bits = sum(FLAGS[f] for f in flags)
    tcp = struct.pack("!HHIIBBHHH", src[1], dst[1], seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 5 << 4, bits, 65535, 0, 0)
    length = len(tcp) + len(payload)
    if v6:
        pseudo = s_ip + d_ip + struct.pack("!IxxxB", length, socket.IPPROTO_TCP)
    else:
        pseudo = s_ip + d_ip + struct.pack("!xBH", socket.IPPROTO_TCP, length)
    tcp = tcp[:16] + struct.pack("!H", _checksum(pseudo, tcp, payload)) + tcp[18:]
    if v6:
        ip = struct.pack("!IHBB", 6 << 28, length, socket.IPPROTO_TCP, 64) + s_ip + d_ip
        ether = _ETHER + b"\x86\xdd"
    else:
        ip = struct.pack("!BBHHHBBH", 0x45, 0, 20 + length, 1, 0, 64, socket.IPPROTO_TCP, 0) + s_ip + d_ip
        ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
        ether = _ETHER + b"\x08\x00"
    data = ether + ip + tcp + payload
    return Record(ts, data, len(data))


def packets(
    chunks: Iterable[Chunk],
    client: tuple[str, int] = ("127.0.0.1", 40000),
    server: tuple[str, int] = ("127.0.0.1", SERVER_PORT),
    close: bool = True,
    reset: bool = False,
) -> list[Record]:
    """The packets of one TCP connection that carried `chunks`: handshake, data, FIN (or RST)."""
    chunks = list(chunks)
    t = chunks[0][2] if chunks else time.time()
    seq = {"c": 1000, "s": 5000}
    addr = {"c": client, "s": server}

    def pkt(who: str, flags: str, payload: bytes = b"", ts: float = 0.0) -> Record:
        other = "s" if who == "c" else "c"
        ack = 0 if flags == "S" else seq[other]  # a lone SYN acknowledges nothing
        return frame(addr[who], addr[other], flags, seq[who], ack, payload, ts)

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


def write_packets(path: str | Path, pkts: Iterable[Record]) -> None:
    """Packets from several connections into one pcap, in time order."""
    with Writer(path, LINKTYPE_ETHERNET) as out:  # snap length as tcpdump -s 0: whole 64 KiB segments
        for p in sorted(pkts, key=lambda p: p.timestamp):
            out.write(p)


def write_conversation(
    path: str | Path,
    chunks: Iterable[Chunk],
    client: tuple[str, int] = ("127.0.0.1", 40000),
    server: tuple[str, int] = ("127.0.0.1", SERVER_PORT),
    close: bool = True,
) -> None:
    write_packets(path, packets(chunks, client, server, close))
