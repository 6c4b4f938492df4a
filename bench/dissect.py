"""How fast the dissector reads a real capture.

    python bench/dissect.py [--mb 1024] [--size 65536] [--keep FILE]

Records a zmtp PUSH -> libzmq PULL stream of --mb megabytes on loopback
with tcpdump (root needed), then reads it back: pcap records, TCP
reassembly, ZMTP decoding and validation, and prints MB/s of capture file.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import zmq
import zmq.asyncio

import zmtp
from zmtp_conformance.capture import pcap, tcp
from zmtp_conformance.capture.validator import validate_stream


async def stream(total: int, size: int) -> int:
    ctx, zctx = zmtp.Context(), zmq.asyncio.Context()
    pull = zctx.socket(zmq.PULL)
    port = pull.bind_to_random_port("tcp://127.0.0.1")
    push = ctx.socket(zmtp.PUSH)
    await push.connect(f"tcp://127.0.0.1:{port}")
    n = total // size
    payload = b"z" * size

    async def drain() -> None:
        for _ in range(n):
            await pull.recv()

    reader = asyncio.create_task(drain())
    for _ in range(n):
        await push.send_multipart([payload])
    await reader
    await push.close()
    pull.close(0)
    zctx.term()
    await ctx.term()
    return port


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=int, default=1024, help="megabytes of messages to stream (default 1024)")
    ap.add_argument("--size", type=int, default=65536, help="message size in octets (default 64 KiB)")
    ap.add_argument("--keep", help="keep the capture at this path")
    args = ap.parse_args()
    if shutil.which("tcpdump") is None or os.geteuid() != 0:
        sys.exit("bench/dissect.py records with tcpdump on lo: run it as root with tcpdump installed")
    path = Path(args.keep or tempfile.mktemp(suffix=".pcap"))
    td = subprocess.Popen(
        ["tcpdump", "-i", "lo", "-U", "-s", "0", "-B", "65536", "-w", str(path), "tcp"],
        stderr=subprocess.PIPE,
        text=True,
    )
    assert td.stderr is not None
    td.stderr.readline()
    t = time.perf_counter()
    port = asyncio.run(stream(args.mb * 1_000_000, args.size))
    sent = time.perf_counter() - t
    time.sleep(0.5)
    td.terminate()
    report = td.communicate(timeout=10)[1].strip().replace("\n", "; ")
    size = path.stat().st_size
    print(f"recorded {size / 1e6:.0f} MB in {sent:.1f}s ({report})")

    t = time.perf_counter()
    header, records = pcap.read(path)
    t_read = time.perf_counter() - t
    streams = [s for s in tcp.streams(records, header.linktype) if port in (s.client[1], s.server[1])]
    t_tcp = time.perf_counter() - t
    violations = [v for s in streams for v in validate_stream(s)]
    t_all = time.perf_counter() - t
    payload = sum(len(s.to_server.data) + len(s.to_client.data) for s in streams)
    print(
        f"packets: {len(records)}  streams: {len(streams)}  payload: {payload / 1e6:.0f} MB  violations: {len(violations)}"
    )
    print(f"read pcap:          {t_read:6.2f}s  {size / 1e6 / t_read:8.0f} MB/s")
    print(f"+ TCP reassembly:   {t_tcp:6.2f}s  {size / 1e6 / t_tcp:8.0f} MB/s")
    print(f"+ dissect+validate: {t_all:6.2f}s  {size / 1e6 / t_all:8.0f} MB/s  ({len(records) / t_all:,.0f} packets/s)")
    if not args.keep:
        path.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
