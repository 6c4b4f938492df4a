"""Reading and writing classic pcap files, record by record, without decoding.

Reading is done here rather than with scapy: scapy builds a full object per
packet and manages a few thousand packets a second, far too slow for a
capture of a long stream. Only the pcap framing is parsed; `tcp` parses the
headers it needs. pcapng (Wireshark's format) is read by `pcapng`.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

MAGIC_US = 0xA1B2C3D4
MAGIC_NS = 0xA1B23C4D
LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228


class PcapError(Exception):
    """A file that is not a readable pcap; the message names the file and the offset."""


@dataclass(frozen=True, slots=True)
class Record:
    timestamp: float
    data: bytes  # the captured bytes (possibly cut at the snap length)
    orig_len: int  # the packet's length on the wire


@dataclass(frozen=True)
class Header:
    endian: str  # "<" or ">"
    nanoseconds: bool
    snaplen: int
    linktype: int


def read_header(f: BinaryIO, name: str = "") -> Header:
    raw = f.read(24)
    if len(raw) < 24:
        raise PcapError(f"{name or 'capture'}: {len(raw)} bytes, too short for a pcap header (24 bytes)")
    for endian in "<>":
        magic = struct.unpack(endian + "I", raw[:4])[0]
        if magic in (MAGIC_US, MAGIC_NS):
            _, _, _, _, snaplen, linktype = struct.unpack(endian + "HHiIII", raw[4:])
            return Header(endian, magic == MAGIC_NS, snaplen, linktype & 0xFFFF)
    if raw[:4] == b"\x0a\x0d\x0d\x0a":
        raise PcapError(
            f"{name or 'capture'} is pcapng, which this reader of classic pcap does not read; "
            "pcapng.read_any reads both (as `zmtp-conformance dissect` and `replay` do)"
        )
    raise PcapError(f"{name or 'capture'}: not a pcap file (magic {raw[:4].hex()}, expected a1b2c3d4 or a1b23c4d)")


def iter_records(f: BinaryIO, header: Header, name: str = "") -> Iterator[Record]:
    """Records from the current position; stops quietly at a record cut short (a file still being written)."""
    rec_hdr = struct.Struct(header.endian + "IIII")
    scale = 1e-9 if header.nanoseconds else 1e-6
    while True:
        start = f.tell()
        raw = f.read(16)
        if len(raw) < 16:
            f.seek(start)
            return
        sec, frac, incl, orig = rec_hdr.unpack(raw)
        if incl > max(header.snaplen, 1 << 18) * 4:
            raise PcapError(f"{name or 'capture'}: record at offset {start} claims {incl} bytes; the file is corrupt")
        data = f.read(incl)
        if len(data) < incl:
            f.seek(start)
            return
        yield Record(sec + frac * scale, data, orig)


def read(path: str | Path) -> tuple[Header, list[Record]]:
    with open(path, "rb") as f:
        header = read_header(f, str(path))
        return header, list(iter_records(f, header, str(path)))


class Writer:
    """Writes records (microsecond timestamps) to a new pcap file."""

    def __init__(self, path: str | Path, linktype: int = LINKTYPE_ETHERNET, snaplen: int = 262144) -> None:
        self.f = open(path, "wb")
        self.f.write(struct.pack("<IHHiIII", MAGIC_US, 2, 4, 0, 0, snaplen, linktype))

    def write(self, rec: Record) -> None:
        sec = int(rec.timestamp)
        usec = round((rec.timestamp - sec) * 1e6)
        if usec >= 1_000_000:
            sec, usec = sec + 1, usec - 1_000_000
        self.f.write(struct.pack("<IIII", sec, usec, len(rec.data), rec.orig_len))
        self.f.write(rec.data)

    def close(self) -> None:
        self.f.close()

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
