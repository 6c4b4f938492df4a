"""Throughput and latency of zmtp against libzmq (pyzmq), measured in the same run.

    python bench/throughput.py [--quick] [--transport tcp|ipc]

Sender and receiver run in separate processes for both implementations, so
each side gets a core, as it would in production. Every row prints the
figure for each implementation and the zmtp/libzmq ratio; machines are
noisy, so compare ratios, not absolute numbers. This is a script, not a
test: nothing asserts a timing.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "impl"))

SIZES = [64, 1024, 64 * 1024, 1024 * 1024]


def count_for(size: int, quick: bool) -> int:
    budget = (64 if quick else 256) * 1024 * 1024  # bytes per run
    return max(200, min(200_000 if not quick else 50_000, budget // size))


def endpoint(transport: str) -> str:
    if transport == "ipc":
        return f"ipc://{tempfile.gettempdir()}/zmtp-bench-{os.getpid()}-{time.monotonic_ns()}.ipc"
    return "tcp://127.0.0.1:0"


# -- libzmq ------------------------------------------------------------------------


# libzmq's documented test keys: benchmarks only, never for real traffic.
SERVER_PUBLIC = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"
SERVER_SECRET = "JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6"
CLIENT_PUBLIC = "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID"
CLIENT_SECRET = "D:)Q[IlAW!ahhC2ac:9*A}h:p?([4%wOTJ%JR%cs"


def zmq_pull(ep: str, count: int, q: mp.Queue, curve: bool = False) -> None:
    import zmq

    ctx = zmq.Context()
    s = ctx.socket(zmq.PULL)
    s.rcvhwm = 10000
    if curve:
        s.curve_server, s.curve_secretkey = True, SERVER_SECRET.encode()
    s.bind(ep)
    q.put(s.last_endpoint.decode())
    s.recv()
    t0 = time.perf_counter()
    for _ in range(count - 1):
        s.recv(copy=False)
    q.put(time.perf_counter() - t0)
    s.close(0)
    ctx.term()


def zmq_push(ep: str, count: int, size: int, batch: bool, curve: bool = False) -> None:
    import zmq

    ctx = zmq.Context()
    s = ctx.socket(zmq.PUSH)
    s.sndhwm = 10000
    if curve:
        s.curve_secretkey, s.curve_publickey = CLIENT_SECRET.encode(), CLIENT_PUBLIC.encode()
        s.curve_serverkey = SERVER_PUBLIC.encode()
    s.connect(ep)
    msg = b"x" * size
    for _ in range(count):
        s.send(msg, copy=size < 65536)
    s.close(linger=-1)
    ctx.term()


def zmq_rep(ep: str, q: mp.Queue) -> None:
    import zmq

    ctx = zmq.Context()
    s = ctx.socket(zmq.REP)
    s.bind(ep)
    q.put(s.last_endpoint.decode())
    while True:
        m = s.recv()
        if m == b"STOP":
            s.send(b"")
            break
        s.send(m)
    s.close(0)
    ctx.term()


def zmq_req_latencies(ep: str, count: int, size: int) -> list[float]:
    import zmq

    ctx = zmq.Context()
    s = ctx.socket(zmq.REQ)
    s.connect(ep)
    msg = b"x" * size
    out = []
    for _ in range(count):
        t0 = time.perf_counter()
        s.send(msg)
        s.recv()
        out.append(time.perf_counter() - t0)
    s.send(b"STOP")
    s.recv()
    s.close(0)
    ctx.term()
    return out


# -- zmtp ----------------------------------------------------------------------------


def impl_pull(ep: str, count: int, q: mp.Queue, batch: bool, curve: bool = False) -> None:
    import zmtp

    sec = {"curve_server": True, "curve_secretkey": SERVER_SECRET} if curve else {}

    async def main() -> None:
        ctx = zmtp.Context()
        s = ctx.socket(zmtp.PULL, zmtp.SocketOptions(rcvhwm=10000, recv_buffer_size=256 * 1024, linger=0, **sec))
        q.put(await s.bind(ep))
        await s.recv_multipart()
        t0 = time.perf_counter()
        left = count - 1
        if batch:
            while left > 0:
                left -= len(await s.recv_many(min(left, 4096)))
        else:
            for _ in range(left):
                await s.recv_multipart()
        q.put(time.perf_counter() - t0)
        await ctx.term()

    asyncio.run(main())


def impl_push(ep: str, count: int, size: int, batch: bool, curve: bool = False) -> None:
    import zmtp

    sec = {"curve_secretkey": CLIENT_SECRET, "curve_serverkey": SERVER_PUBLIC} if curve else {}

    async def main() -> None:
        ctx = zmtp.Context()
        s = ctx.socket(zmtp.PUSH, zmtp.SocketOptions(sndhwm=10000, send_buffer_size=64 * 1024, linger=None, **sec))
        await s.connect(ep)
        msg = [b"x" * size]
        if batch:
            sent = 0
            while sent < count:
                n = min(1024, count - sent)
                await s.send_many([msg] * n)
                sent += n
        else:
            for _ in range(count):
                await s.send_multipart(msg)
        await s.close()

    asyncio.run(main())


def impl_rep(ep: str, q: mp.Queue) -> None:
    import zmtp

    async def main() -> None:
        ctx = zmtp.Context()
        s = ctx.socket(zmtp.REP, zmtp.SocketOptions(linger=1.0))
        q.put(await s.bind(ep))
        while True:
            m = await s.recv_multipart()
            await s.send_multipart(m if m != [b"STOP"] else [b""])
            if m == [b"STOP"]:
                break
        await ctx.term()

    asyncio.run(main())


def impl_req_latencies(ep: str, count: int, size: int) -> list[float]:
    import zmtp

    async def main() -> list[float]:
        ctx = zmtp.Context()
        s = ctx.socket(zmtp.REQ, zmtp.SocketOptions(linger=0))
        await s.connect(ep)
        msg = [b"x" * size]
        out = []
        for _ in range(count):
            t0 = time.perf_counter()
            await s.send_multipart(msg)
            await s.recv_multipart()
            out.append(time.perf_counter() - t0)
        await s.send_multipart([b"STOP"])
        await s.recv_multipart()
        await ctx.term()
        return out

    return asyncio.run(main())


# -- runner -----------------------------------------------------------------------------


def throughput(kind: str, size: int, count: int, transport: str, batch: bool, curve: bool = False) -> float:
    """Messages per second seen by the receiver."""
    q: mp.Queue = mp.Queue()
    pull = zmq_pull if kind == "libzmq" else impl_pull
    push = zmq_push if kind == "libzmq" else impl_push
    ep0 = endpoint(transport)
    args = (ep0, count, q, curve) if kind == "libzmq" else (ep0, count, q, batch, curve)
    rx = mp.Process(target=pull, args=args)
    rx.start()
    ep = q.get(timeout=30)
    tx = mp.Process(target=push, args=(ep, count, size, batch, curve))
    tx.start()
    elapsed = q.get(timeout=600)
    tx.join(60)
    rx.join(60)
    return (count - 1) / elapsed


def latency(kind: str, size: int, count: int, transport: str) -> list[float]:
    q: mp.Queue = mp.Queue()
    server = mp.Process(target=zmq_rep if kind == "libzmq" else impl_rep, args=(endpoint(transport), q))
    server.start()
    ep = q.get(timeout=30)
    lat = (zmq_req_latencies if kind == "libzmq" else impl_req_latencies)(ep, count, size)
    server.join(30)
    return lat


KINDS = (("libzmq", False), ("impl", False), ("impl", True))


def interleaved(size: int, count: int, transport: str, reps: int, curve: bool) -> dict[tuple[str, bool], list[float]]:
    """Each repetition runs libzmq, zmtp per-message and zmtp batch back to back, so that the
    machine's drift (other load, frequency) touches all three alike; ratios are taken per repetition."""
    row: dict[tuple[str, bool], list[float]] = {k: [] for k in KINDS}
    for _ in range(reps):
        for kind, batch in KINDS:
            row[kind, batch].append(throughput(kind, size, count, transport, batch, curve))
    return row


def ratio(row: dict[tuple[str, bool], list[float]], batch: bool) -> float:
    """The median, over repetitions, of zmtp's figure over libzmq's in the same repetition."""
    return statistics.median(i / z for i, z in zip(row["impl", batch], row["libzmq", False], strict=True))


def cell(runs: list[float]) -> str:
    return f"{statistics.median(runs):.0f} [{min(runs):.0f}-{max(runs):.0f}]".rjust(24)


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


def human(size: int) -> str:
    return f"{size // 1048576} MiB" if size >= 1048576 else f"{size // 1024} KiB" if size >= 1024 else f"{size} B"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer messages, one repetition")
    ap.add_argument("--transport", choices=["tcp", "ipc"], default="tcp")
    ap.add_argument("--repeat", type=int, default=None, help="repetitions per row (median is shown)")
    args = ap.parse_args()
    reps = args.repeat or (1 if args.quick else 3)
    print(
        f"PUSH/PULL throughput over {args.transport}, msgs/s (median of {reps}; spread in brackets; "
        "ratios: median of the per-repetition ratios)"
    )
    print(f"{'size':>8} {'libzmq':>24} {'zmtp per-msg':>24} {'ratio':>6} {'zmtp batch':>24} {'ratio':>6}")
    for size in SIZES:
        row = interleaved(size, count_for(size, args.quick), args.transport, reps, curve=False)
        print(
            f"{human(size):>8} {cell(row[('libzmq', False)])} {cell(row[('impl', False)])} "
            f"{ratio(row, False):>6.2f} {cell(row[('impl', True)])} {ratio(row, True):>6.2f}"
        )
    print()
    print(f"PUSH/PULL throughput with CURVE over {args.transport}, msgs/s")
    print(f"{'size':>8} {'libzmq':>24} {'zmtp per-msg':>24} {'ratio':>6} {'zmtp batch':>24} {'ratio':>6}")
    for size in (1024, 64 * 1024):
        row = interleaved(size, count_for(size, True), args.transport, reps, curve=True)
        print(
            f"{human(size):>8} {cell(row[('libzmq', False)])} {cell(row[('impl', False)])} "
            f"{ratio(row, False):>6.2f} {cell(row[('impl', True)])} {ratio(row, True):>6.2f}"
        )
    print()
    print(f"REQ/REP round trips over {args.transport}, microseconds")
    print(f"{'size':>8} {'impl':>8} {'p50':>8} {'p95':>8} {'p99':>8}   ratio p50 (zmtp/libzmq)")
    count = 2000 if args.quick else 10000
    for size in (64, 1024):
        res = {kind: latency(kind, size, count, args.transport) for kind in ("libzmq", "impl")}
        for kind in ("libzmq", "impl"):
            lat = res[kind]
            extra = f"   {pct(res['impl'], 0.5) / pct(res['libzmq'], 0.5):.2f}" if kind == "impl" else ""
            print(
                f"{human(size):>8} {kind:>8} {pct(lat, 0.5) * 1e6:>8.1f} {pct(lat, 0.95) * 1e6:>8.1f}"
                f" {pct(lat, 0.99) * 1e6:>8.1f}{extra}"
            )


if __name__ == "__main__":
    mp.set_start_method("fork")
    main()
