"""Frames per second through the capture path, on a synthetic capture of small messages.

    python bench/dissector.py [--frames 1000000] [--size 64] [--per-packet 1,40] [--reps 3] [--keep FILE]

Writes a pcap of one NULL connection (greetings, READY both ways) whose
client then sends --frames single-frame messages of --size octets, packed
--per-packet frames to a TCP segment (1: one send per packet; 40: what a
batching sender puts in a loopback segment), and reads it back the way
`zmtp-conformance dissect --check` does: pcap records, TCP reassembly,
ZMTP decoding, validation. Prints each stage's cumulative time and frames/s,
the median of --reps runs (the machine is shared: repeat, take medians).

No root, no network, no peer: unlike bench/dissect.py, which records a real
zmtp -> libzmq stream with tcpdump and measures MB/s on large frames.
"""

from __future__ import annotations

import argparse
import statistics
import struct
import sys
import tempfile
import time
from pathlib import Path

from zmtp_conformance.capture import pcap, synth, tcp
from zmtp_conformance.capture.validator import decode_stream, validate_stream

CLIENT, SERVER = ("127.0.0.1", 40000), ("127.0.0.1", synth.SERVER_PORT)


def greeting() -> bytes:
    return b"\xff" + bytes(8) + b"\x7f" + bytes([3, 1]) + b"NULL".ljust(20, b"\x00") + b"\x00" + bytes(31)


def ready(socket_type: bytes) -> bytes:
    body = b"\x05READY" + b"\x0bSocket-Type" + struct.pack("!I", len(socket_type)) + socket_type
    return bytes([0x04, len(body)]) + body


def write_capture(path: Path, frames: int, size: int, per_packet: int) -> int:
    """The capture; returns how many ZMTP frames (greetings aside) it holds."""
    seq = {"c": 1000, "s": 5000}
    ends = {"c": (CLIENT, SERVER), "s": (SERVER, CLIENT)}
    t = [1.7e9]

    def emit(w: pcap.Writer, who: str, flags: str, payload: bytes = b"") -> None:
        src, dst = ends[who]
        for i in range(0, max(len(payload), 1), synth.MSS):  # segments no larger than loopback's
            piece = payload[i : i + synth.MSS]
            w.write(synth.frame(src, dst, flags, seq[who], 0, piece, t[0]))
            seq[who] = (seq[who] + len(piece) + (1 if "S" in flags or "F" in flags else 0)) & 0xFFFFFFFF
            t[0] += 1e-6

    frame = bytes([0x00, size]) + b"z" * size if size < 256 else b"\x02" + struct.pack("!Q", size) + b"z" * size
    with pcap.Writer(path) as w:
        emit(w, "c", "S")
        emit(w, "s", "SA")
        emit(w, "c", "A")
        emit(w, "c", "PA", greeting())
        emit(w, "s", "PA", greeting())
        emit(w, "c", "PA", ready(b"PUSH"))
        emit(w, "s", "PA", ready(b"PULL"))
        batch = frame * per_packet
        full, rest = divmod(frames, per_packet)
        for _ in range(full):
            emit(w, "c", "PA", batch)
        if rest:
            emit(w, "c", "PA", frame * rest)
        emit(w, "c", "FA")
        emit(w, "s", "FA")
    return frames + 2


def measure(path: Path) -> dict[str, float]:
    """Cumulative seconds after each stage, and the frames and violations found."""
    t0 = time.perf_counter()
    header, records = pcap.read(path)
    t_read = time.perf_counter()
    (stream,) = tcp.streams(records, header.linktype)
    t_tcp = time.perf_counter()
    client, server = decode_stream(stream)
    t_dissect = time.perf_counter()
    violations = validate_stream(stream)
    t_all = time.perf_counter()
    # validate_stream decodes again: its own time is the last stage minus one decoding
    return {
        "read": t_read - t0,
        "tcp": t_tcp - t0,
        "dissect": t_dissect - t0,
        "validate": t_tcp - t0 + (t_all - t_dissect),
        "items": len(client.items) + len(server.items),
        "violations": len(violations),
        "packets": len(records),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=1_000_000, help="messages the client sends (default 1,000,000)")
    ap.add_argument("--size", type=int, default=64, help="octets per message (default 64)")
    ap.add_argument("--per-packet", default="1,40", help="frames per TCP segment, comma-separated (default 1,40)")
    ap.add_argument("--reps", type=int, default=3, help="runs per capture; the median is printed (default 3)")
    ap.add_argument("--keep", help="keep the capture (the last one written) at this path")
    args = ap.parse_args()
    for per_packet in (int(x) for x in args.per_packet.split(",")):
        path = Path(args.keep or tempfile.mktemp(suffix=".pcap"))
        frames = write_capture(path, args.frames, args.size, per_packet)
        runs = [measure(path) for _ in range(args.reps)]
        first = runs[0]
        if first["violations"] or first["items"] != frames + 2:  # + the two greetings
            sys.exit(f"{path}: {first['items']} items and {first['violations']} violations; expected {frames + 2}, 0")
        mb = path.stat().st_size / 1e6
        print(
            f"{args.frames:,} messages of {args.size} B, {per_packet} per packet: {first['packets']:,} packets, "
            f"{mb:.0f} MB (median of {args.reps})"
        )
        for stage, label in (
            ("read", "read pcap"),
            ("tcp", "+ TCP reassembly"),
            ("dissect", "+ dissect"),
            ("validate", "+ dissect and validate"),
        ):
            t = statistics.median(r[stage] for r in runs)
            print(f"  {label:24} {t:6.2f} s  {frames / t / 1e6:6.2f} M frames/s  {mb / t:6.0f} MB/s")
        if not args.keep:
            path.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
