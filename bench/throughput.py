"""Throughput and latency of zmtp against libzmq (pyzmq), measured in the same run.

    python bench/throughput.py [--quick] [--transport tcp|ipc] [--options tuned|default] [--loop asyncio|uvloop]
                               [--rows ...]

Sender and receiver run in separate processes for both implementations, so
each side gets a core, as it would in production. Every row prints the
figure for each implementation and the zmtp/libzmq ratio; machines are
noisy, so compare ratios, not absolute numbers. This is a script, not a
test: nothing asserts a timing.

--options default runs both implementations as a user who never tunes
anything would (SocketOptions() and libzmq's defaults); tuned (the default)
gives both the larger high-water marks and zmtp the larger buffers below.
The REQ/REP rows also count event-loop wakeups per round trip on each
zmtp side (selector polls that returned something).
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
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "impl"))

SIZES = [64, 1024, 64 * 1024, 1024 * 1024]
TUNED = True  # set from --options before any process is forked
LOOP = "asyncio"  # zmtp's event loop, set from --loop before any process is forked


def run_zmtp(main: Any) -> Any:
    """Run a zmtp side's coroutine on the event loop --loop names."""
    if LOOP == "uvloop":
        import uvloop

        return uvloop.run(main)
    return asyncio.run(main)


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
    if TUNED:
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
    if TUNED:
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


class LoopTurns:
    """Counts the event loop's iterations (one selector poll each) from now on."""

    def __init__(self) -> None:
        self.turns = 0
        self.woken = 0  # polls that returned I/O events
        selector = getattr(asyncio.get_running_loop(), "_selector", None)
        if selector is None:  # uvloop polls inside libuv, out of Python's sight
            self.turns = self.woken = -1
            return
        poll = selector.select

        def select(timeout: float | None = None) -> list:  # type: ignore[type-arg]
            events = poll(timeout)
            self.turns += 1
            if events:
                self.woken += 1
            return events

        selector.select = select


def impl_pull(ep: str, count: int, q: mp.Queue, batch: bool, curve: bool = False) -> None:
    import zmtp

    sec = {"curve_server": True, "curve_secretkey": SERVER_SECRET} if curve else {}

    async def main() -> None:
        ctx = zmtp.Context()
        tuned = {"rcvhwm": 10000, "recv_buffer_size": 256 * 1024} if TUNED else {}
        s = ctx.socket(zmtp.PULL, zmtp.SocketOptions(linger=0, **tuned, **sec))
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

    run_zmtp(main())


def impl_push(ep: str, count: int, size: int, batch: bool, curve: bool = False) -> None:
    import zmtp

    sec = {"curve_secretkey": CLIENT_SECRET, "curve_serverkey": SERVER_PUBLIC} if curve else {}

    async def main() -> None:
        ctx = zmtp.Context()
        tuned = {"sndhwm": 10000, "send_buffer_size": 64 * 1024} if TUNED else {}
        s = ctx.socket(zmtp.PUSH, zmtp.SocketOptions(linger=None, **tuned, **sec))
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

    run_zmtp(main())


def impl_rep(ep: str, q: mp.Queue) -> None:
    import zmtp

    async def main() -> None:
        ctx = zmtp.Context()
        s = ctx.socket(zmtp.REP, zmtp.SocketOptions(linger=1.0))
        q.put(await s.bind(ep))
        turns = None
        while True:
            m = await s.recv_multipart()
            if turns is None:
                turns = LoopTurns()  # from the first request on (the handshake is not counted)
            await s.send_multipart(m if m != [b"STOP"] else [b""])
            if m == [b"STOP"]:
                break
        q.put((turns.turns, turns.woken))
        await ctx.term()

    run_zmtp(main())


def impl_req_latencies(ep: str, count: int, size: int, turns: list[int]) -> list[float]:
    import zmtp

    async def main() -> list[float]:
        ctx = zmtp.Context()
        s = ctx.socket(zmtp.REQ, zmtp.SocketOptions(linger=0))
        await s.connect(ep)
        msg = [b"x" * size]
        out = []
        await s.send_multipart(msg)  # the first round trip waits for the handshake: not counted
        await s.recv_multipart()
        counter = LoopTurns()
        for _ in range(count):
            t0 = time.perf_counter()
            await s.send_multipart(msg)
            await s.recv_multipart()
            out.append(time.perf_counter() - t0)
        turns[:] = [counter.turns, counter.woken]
        await s.send_multipart([b"STOP"])
        await s.recv_multipart()
        await ctx.term()
        return out

    return run_zmtp(main())


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


def latency(kind: str, size: int, count: int, transport: str) -> tuple[list[float], str]:
    """Round-trip times, and for zmtp the loop turns per round trip on each side."""
    q: mp.Queue = mp.Queue()
    server = mp.Process(target=zmq_rep if kind == "libzmq" else impl_rep, args=(endpoint(transport), q))
    server.start()
    ep = q.get(timeout=30)
    if kind == "libzmq":
        lat = zmq_req_latencies(ep, count, size)
        server.join(30)
        return lat, ""
    turns: list[int] = []
    lat = impl_req_latencies(ep, count, size, turns)
    rep_turns, rep_woken = q.get(timeout=30)
    server.join(30)
    if rep_turns < 0:
        return lat, "loop turns per round trip: not counted on uvloop"
    # The REP counts one request more (STOP) than the REQ's timed loop.
    return lat, (
        f"loop turns per round trip: REQ {turns[0] / count:.2f} ({turns[1] / count:.2f} woken by I/O),"
        f" REP {rep_turns / (count + 1):.2f} ({rep_woken / (count + 1):.2f})"
    )


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
    ap.add_argument(
        "--options",
        choices=["tuned", "default"],
        default="tuned",
        help="socket options of the throughput rows: tuned (larger HWMs and buffers) or everyone's defaults",
    )
    ap.add_argument(
        "--rows",
        nargs="+",
        choices=["null", "curve", "latency"],
        default=["null", "curve", "latency"],
        help="which tables to print (default: all)",
    )
    ap.add_argument("--sizes", type=int, nargs="+", default=None, help="message sizes of the NULL throughput rows")
    ap.add_argument(
        "--loop",
        choices=["asyncio", "uvloop"],
        default="asyncio",
        help="zmtp's event loop: asyncio's own (default) or uvloop (pip install uvloop)",
    )
    args = ap.parse_args()
    global TUNED, LOOP
    TUNED = args.options == "tuned"
    LOOP = args.loop
    reps = args.repeat or (1 if args.quick else 3)
    if "null" in args.rows:
        null_rows(args, reps)
    if "curve" in args.rows:
        curve_rows(args, reps)
    if "latency" in args.rows:
        latency_rows(args)


def null_rows(args: argparse.Namespace, reps: int) -> None:
    print(
        f"PUSH/PULL throughput over {args.transport}, {args.options} options, zmtp on {LOOP}, msgs/s (median of {reps};"
        " spread in brackets; ratios: median of the per-repetition ratios)"
    )
    print(f"{'size':>8} {'libzmq':>24} {'zmtp per-msg':>24} {'ratio':>6} {'zmtp batch':>24} {'ratio':>6}")
    for size in args.sizes or SIZES:
        row = interleaved(size, count_for(size, args.quick), args.transport, reps, curve=False)
        print(
            f"{human(size):>8} {cell(row[('libzmq', False)])} {cell(row[('impl', False)])} "
            f"{ratio(row, False):>6.2f} {cell(row[('impl', True)])} {ratio(row, True):>6.2f}"
        )
    print()


def curve_rows(args: argparse.Namespace, reps: int) -> None:
    print(f"PUSH/PULL throughput with CURVE over {args.transport}, {args.options} options, zmtp on {LOOP}, msgs/s")
    print(f"{'size':>8} {'libzmq':>24} {'zmtp per-msg':>24} {'ratio':>6} {'zmtp batch':>24} {'ratio':>6}")
    for size in (1024, 64 * 1024):
        row = interleaved(size, count_for(size, True), args.transport, reps, curve=True)
        print(
            f"{human(size):>8} {cell(row[('libzmq', False)])} {cell(row[('impl', False)])} "
            f"{ratio(row, False):>6.2f} {cell(row[('impl', True)])} {ratio(row, True):>6.2f}"
        )
    print()


def latency_rows(args: argparse.Namespace) -> None:
    # Rounds alternate libzmq and zmtp, each with fresh processes: a round trip's time on a
    # small machine depends mostly on where the scheduler puts the two processes (on one
    # core a round trip here took half as long as across two), which changes from one pair
    # of processes to the next; a ratio taken within a round compares like with like. A
    # round's ratio still spreads by a third either way, so the median takes eleven of them
    # (a round costs well under a second).
    rounds = 1 if args.quick else 11
    count = 2000
    print(
        f"REQ/REP round trips over {args.transport}, default options, zmtp on {LOOP}, microseconds"
        f" ({rounds} rounds of {count}, alternating; ratio: median of the per-round p50 ratios)"
    )
    print(f"{'size':>8} {'impl':>8} {'p50':>8} {'p95':>8} {'p99':>8}   ratio p50 (zmtp/libzmq)")
    for size in (64, 1024):
        res: dict[str, list[float]] = {"libzmq": [], "impl": []}
        ratios, turns = [], ""
        for _ in range(rounds):
            p50 = {}
            for kind in ("libzmq", "impl"):
                lat, turns_now = latency(kind, size, count, args.transport)
                res[kind] += lat
                p50[kind] = pct(lat, 0.5)
                turns = turns_now or turns
            ratios.append(p50["impl"] / p50["libzmq"])
        for kind in ("libzmq", "impl"):
            lat = res[kind]
            extra = (
                f"   {statistics.median(ratios):.2f} [{min(ratios):.2f}-{max(ratios):.2f}]" if kind == "impl" else ""
            )
            print(
                f"{human(size):>8} {kind:>8} {pct(lat, 0.5) * 1e6:>8.1f} {pct(lat, 0.95) * 1e6:>8.1f}"
                f" {pct(lat, 0.99) * 1e6:>8.1f}{extra}"
            )
        print(f"{'':>8} {turns}")


if __name__ == "__main__":
    mp.set_start_method("fork")
    main()
