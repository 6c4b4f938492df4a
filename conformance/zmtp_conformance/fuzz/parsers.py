"""Coverage-guided fuzzing (atheris, libFuzzer for Python) of the parsers that read untrusted bytes:
the pcap and pcapng readers, TCP reassembly with the validator on top, the dissector, impl's sans-I/O
connection (the bytes a network peer sends it), and the scenario loader (user YAML).

Each target documents the errors it may raise on bad input; anything else is a bug. Inputs that
found one are kept in conformance/tests/fuzz-regressions/<target>/ and replayed by the tests.

    python -m zmtp_conformance.fuzz.parsers --target dissect --seconds 600
"""

from __future__ import annotations

import argparse
import io
import os
import struct
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REGRESSIONS = HERE.parents[1] / "tests" / "fuzz-regressions"
CAPTURES = HERE.parents[2] / "captures"
SCENARIOS = HERE.parents[2] / "scenarios"


@dataclass(frozen=True)
class ParserTarget:
    name: str
    run: Callable[[bytes], None]
    allowed: Callable[[], tuple[type[BaseException], ...]]  # the documented errors (imported late)
    doc: str


def _pcap(data: bytes) -> None:
    from ..capture import pcap

    f = io.BytesIO(data)
    header = pcap.read_header(f, "fuzz")
    for _ in pcap.iter_records(f, header, "fuzz"):
        pass


_TMP = Path(tempfile.gettempdir()) / f"zmtp-fuzz-{os.getpid()}"


def _as_file(data: bytes, suffix: str) -> Path:
    _TMP.mkdir(exist_ok=True)
    path = _TMP / f"input{suffix}"
    path.write_bytes(data)
    return path


def _pcapng(data: bytes) -> None:
    from ..capture import pcapng

    pcapng.read_any(_as_file(data, ".pcapng"))


def _records(data: bytes) -> tuple[int, list]:  # type: ignore[type-arg]
    """Fuzz bytes as a linktype and a list of packets (each prefixed by a 2-octet length)."""
    from ..capture import pcap

    linktype = [pcap.LINKTYPE_ETHERNET, pcap.LINKTYPE_RAW, pcap.LINKTYPE_LINUX_SLL, pcap.LINKTYPE_IPV4, 0][
        data[0] % 5 if data else 0
    ]
    out, pos = [], 1
    while pos + 2 <= len(data):
        (n,) = struct.unpack_from("!H", data, pos)
        pos += 2
        out.append(pcap.Record(float(len(out)), data[pos : pos + n], n))
        pos += n
    return linktype, out


def _tcp(data: bytes) -> None:
    from ..capture import tcp, validator

    linktype, records = _records(data)
    for stream in tcp.streams(records, linktype):
        validator.validate_stream(stream)


def _dissect(data: bytes) -> None:
    from ..capture import dissect

    # The first octet says where the two directions part, so that each can meet the other's greeting.
    cut = data[0] * len(data) // 256 if data else 0
    c, s = dissect.Decoder(), dissect.Decoder()
    c.peer_major, s.peer_major = dissect.greeting_major(data[cut:]), dissect.greeting_major(data[:cut])
    for dec, part in ((c, data[1:cut]), (s, data[cut:])):
        items = dec.decode(part)
        for item in items:
            dissect.describe(item)
        dissect.messages(items)


def _impl(data: bytes) -> None:
    import zmtp
    from zmtp.connection import Connection

    types = ["PULL", "ROUTER", "SUB", "XPUB", "DISH", "REP"]
    conn = Connection(
        types[data[0] % len(types)] if data else "PULL", as_server=bool(data[1] & 1) if len(data) > 1 else True
    )
    conn.data_to_send()
    # The third octet cuts the rest in two reads, as TCP may.
    body = data[3:]
    cut = (data[2] * len(body) // 256) if len(data) > 2 else 0
    for piece in (body[:cut], body[cut:]):
        try:
            conn.receive_data(piece)
        except zmtp.ZMTPError:
            return
        conn.data_to_send()


def _impl_allowed() -> tuple[type[BaseException], ...]:
    return ()  # receive_data's documented errors are caught in the target


def _scenario(data: bytes) -> None:
    from ..scenario import load_file

    load_file(_as_file(data, ".yaml"))


def _pcap_allowed() -> tuple[type[BaseException], ...]:
    from ..capture.pcap import PcapError

    return (PcapError,)


def _scenario_allowed() -> tuple[type[BaseException], ...]:
    from ..scenario import ScenarioError

    return (ScenarioError,)


TARGETS = {
    t.name: t
    for t in [
        ParserTarget("pcap", _pcap, _pcap_allowed, "classic pcap reader: PcapError"),
        ParserTarget("pcapng", _pcapng, _pcap_allowed, "pcapng reader (and read_any): PcapError"),
        ParserTarget("tcp", _tcp, lambda: (), "TCP reassembly of fuzzed packets, then the validator: nothing"),
        ParserTarget("dissect", _dissect, lambda: (), "the dissector on two directions: nothing (it never raises)"),
        ParserTarget("impl", _impl, _impl_allowed, "impl's Connection.receive_data: zmtp.ZMTPError and subclasses"),
        ParserTarget("scenario", _scenario, _scenario_allowed, "the scenario loader on YAML text: ScenarioError"),
    ]
}


def check(name: str, data: bytes) -> None:
    """Run one input through a target; a documented error passes, anything else propagates."""
    target = TARGETS[name]
    try:
        target.run(data)
    except target.allowed():
        pass


def seeds(name: str) -> list[bytes]:
    """A starting corpus: real captures, real streams, real scenarios, and the regression inputs."""
    out: list[bytes] = []
    if name in ("pcap", "pcapng", "tcp", "dissect", "impl"):
        from ..capture import pcap, tcp

        for path in sorted(CAPTURES.glob("*.pcap"))[:8]:
            raw = path.read_bytes()
            if name == "pcap":
                out.append(raw[:4096])
            elif name in ("dissect", "impl"):
                header, records = pcap.read(path)
                for st in tcp.streams(records, header.linktype)[:1]:
                    data = bytes(st.to_server.data[:2048])
                    out.append(b"\x80" + data if name == "dissect" else b"\x00\x01\x80" + data)
            elif name == "tcp":
                header, records = pcap.read(path)
                lt = [pcap.LINKTYPE_ETHERNET, pcap.LINKTYPE_RAW, pcap.LINKTYPE_LINUX_SLL, pcap.LINKTYPE_IPV4]
                blob = bytes((lt.index(header.linktype) if header.linktype in lt else 0,))
                for r in records[:12]:
                    blob += struct.pack("!H", len(r.data)) + r.data
                out.append(blob)
    if name == "scenario":
        out += [p.read_bytes() for p in sorted(SCENARIOS.rglob("*.yaml"))[:20]]
    folder = REGRESSIONS / name
    if folder.is_dir():
        out += [p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m zmtp_conformance.fuzz.parsers", description=__doc__.split("\n\n")[0])
    ap.add_argument("--target", required=True, choices=sorted(TARGETS))
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--runs", type=int, default=-1, help="stop after this many inputs (-1: only the time limit)")
    ap.add_argument("--artifacts", type=Path, default=Path(tempfile.gettempdir()) / "zmtp-fuzz-artifacts")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    import atheris

    with atheris.instrument_imports():
        from .. import scenario  # noqa: F401  (instrumented for coverage)
        from ..capture import dissect, pcap, pcapng, tcp, validator  # noqa: F401

        if args.target == "impl":
            import zmtp.connection  # noqa: F401
    corpus = Path(tempfile.mkdtemp(prefix=f"zmtp-fuzz-{args.target}-"))
    for i, data in enumerate(seeds(args.target)):
        (corpus / f"seed-{i}").write_bytes(data)
    args.artifacts.mkdir(parents=True, exist_ok=True)
    flags = [
        sys.argv[0],
        f"-max_total_time={args.seconds}",
        f"-runs={args.runs}",
        f"-seed={args.seed}",
        f"-artifact_prefix={args.artifacts}/{args.target}-",
        "-max_len=8192",
        str(corpus),
    ]
    atheris.Setup(flags, lambda data: check(args.target, data))
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    sys.exit(main())
