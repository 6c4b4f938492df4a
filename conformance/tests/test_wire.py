"""Each cell's capture: the sniffer, the recording proxy, the wire verdict, the reports."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
from test_capture import conversation, null_pair

from zmtp_conformance import deviations, endpoints, peers, wire
from zmtp_conformance.capture import pcap, synth, tcp
from zmtp_conformance.capture.proxy import RecordingProxy
from zmtp_conformance.capture.sniffer import Sniffer, usable
from zmtp_conformance.cells import Cell
from zmtp_conformance.deviations import WireDeviation
from zmtp_conformance.peers import AgentPool
from zmtp_conformance.runner import run_cell
from zmtp_conformance.scenario import load_all
from zmtp_conformance.vocabulary import Outcome

ROOT = Path(__file__).resolve().parents[2]
needs_sniffer = pytest.mark.skipif(usable() is not None, reason=f"no tcpdump capture here: {usable()}")
TSHARK_COMPLAINTS = ("retransmission", "duplicate", "out-of-order", "previous segment", "lost segment")


def scenario(sid: str):
    (sc,) = [s for s in load_all() if s.id == sid]
    return sc


def run(sid, server, client, capture, path, transport="tcp", extra=None, table=None, devs=None, mechanism="NULL"):
    async def go():
        pool = AgentPool(peers.load_registry(), extra)
        try:
            cell = Cell(scenario(sid), server, client, transport, mechanism)
            return await run_cell(cell, pool, devs or [], capture, path, table or [])
        finally:
            await pool.close()

    return asyncio.run(go())


def tshark_complaints(path: Path) -> list[str]:
    out = subprocess.run(
        ["tshark", "-r", str(path), "-q", "-z", "expert,note"], capture_output=True, text=True, check=True
    ).stdout
    lines = [line for line in out.splitlines() if any(w in line.lower() for w in TSHARK_COMPLAINTS)]
    if not written_twice(path):
        # A sniffer fault writes one packet twice, same instant and octets. A retransmission the
        # kernel really sent is traffic, faithfully captured: under load (the suite on two
        # workers) a tail-loss probe resends a READY 5 ms later and the receiver answers D-SACK,
        # which tshark calls a duplicate ACK (seen alone when it files the resend as spurious).
        lines = [
            line for line in lines if "retransmission" not in line.lower() and "duplicate ack" not in line.lower()
        ]
    return lines


def written_twice(path: Path) -> bool:
    _, records = pcap.read(path)
    seen = set()
    for r in records:
        if (r.timestamp, r.data) in seen:
            return True
        seen.add((r.timestamp, r.data))
    return False


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_synthesised_packets_are_what_scapy_builds(host):
    """synth packs its own headers; scapy, an independent builder, must produce the same octets."""
    from scapy.layers.inet import IP, TCP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import Ether

    chunks = [("c", b"\xff" + bytes(8) + b"\x7f", 1.0), ("s", b"\x03", 1.1), ("c", b"z" * 70_001, 1.2)]
    ours = synth.packets(chunks, (host, 40000), (host, 5555))
    assert [len(r.data) - 14 - (40 if ":" in host else 20) - 20 for r in ours] == [0, 0, 0, 10, 1, 65483, 4518, 0, 0]
    for rec in ours:
        seg = tcp.parse(rec.data, 1)
        ip = IPv6(src=seg.src[0], dst=seg.dst[0], hlim=64) if ":" in host else IP(src=seg.src[0], dst=seg.dst[0], id=1)
        flags = "".join(f for f, bit in synth.FLAGS.items() if seg.flags & bit)
        theirs = Ether(src="00:00:00:00:00:00", dst="00:00:00:00:00:00") / ip / TCP(
            sport=seg.src[1], dport=seg.dst[1], seq=seg.seq, ack=Ether(rec.data)[TCP].ack, flags=flags, window=65535
        )
        assert bytes(theirs / bytes(seg.payload)) == rec.data, f"{flags} segment differs from scapy's"


@pytest.mark.skipif(not shutil.which("tshark"), reason="no tshark here")
def test_a_packet_written_twice_is_a_complaint_a_real_retransmission_is_not(tmp_path):
    pkts = synth.packets([("c", b"\xff" + bytes(8) + b"\x7f", time.time()), ("s", b"\x03\x01", time.time() + 0.01)])
    clean = tmp_path / "clean.pcap"
    synth.write_packets(clean, pkts)
    assert tshark_complaints(clean) == []
    # The sniffer's fault: the server's data segment twice, same instant, same octets.
    twice = tmp_path / "twice.pcap"
    synth.write_packets(twice, [*pkts[:5], pkts[4], *pkts[5:]])
    assert written_twice(twice) and any("retransmission" in c.lower() for c in tshark_complaints(twice))
    # The kernel's: the same segment sent again 5 ms later is traffic, not a fault of the capture.
    again = replace(pkts[4], timestamp=pkts[4].timestamp + 0.005)
    resent = tmp_path / "resent.pcap"
    synth.write_packets(resent, [*pkts[:5], again, *pkts[5:]])
    assert not written_twice(resent) and tshark_complaints(resent) == []


# -- the sniffer ---------------------------------------------------------------


@needs_sniffer
def test_sniffer_cuts_the_capture_at_each_sync(tmp_path):
    sn = Sniffer(tmp_path)
    sn.start()
    try:
        srv = socket.create_server(("127.0.0.1", 0))
        port = srv.getsockname()[1]

        def exchange(payload: bytes) -> None:
            c = socket.create_connection(("127.0.0.1", port))
            s, _ = srv.accept()
            c.sendall(payload)
            assert s.recv(100) == payload
            c.close()
            s.close()

        exchange(b"first")
        first = sn.sync()
        exchange(b"second")
        second = sn.sync()
        srv.close()
    finally:
        sn.stop()
    # Only this test's connections: other traffic on lo (other tests, other programs) is in the capture too.
    mine = [[r for r in recs if port in (tcp.ports(r.data, sn.linktype) or ())] for recs in (first, second)]
    payloads = [
        {bytes(seg.payload) for r in recs if (seg := tcp.parse(r.data, sn.linktype)) and seg.payload} for recs in mine
    ]
    assert payloads == [{b"first"}, {b"second"}]
    # Markers are not TCP, and no packet appears twice (scapy on lo would show each twice).
    for recs in mine:
        assert all(tcp.parse(r.data, sn.linktype) for r in recs)
        assert len({r.data for r in recs}) == len(recs)
    assert not sn.path.exists()  # stop() removes the running capture


@needs_sniffer
def test_a_sniffer_given_a_port_range_records_only_connections_to_it(tmp_path):
    # Two shares of the port range, as two workers would hold them: this sniffer holds the first.
    ports = endpoints.PortRange(20000, 20500)
    outside = endpoints.PortRange(20500, 21000)
    sn = Sniffer(tmp_path, ports=ports)
    sn.start()
    try:
        sn.sync()
        for name, share in (("mine", ports), ("other", outside)):
            srv = None
            for port in range(share.low, share.high):
                try:
                    srv = socket.create_server(("127.0.0.1", port))
                    break
                except OSError:
                    continue
            assert srv is not None, f"no free port in {share}"
            c = socket.create_connection(srv.getsockname())
            s, _ = srv.accept()
            c.sendall(name.encode())
            assert s.recv(100) == name.encode()
            for sock in (c, s, srv):
                sock.close()
        recs = sn.sync()
    finally:
        sn.stop()
    payloads = {bytes(seg.payload) for r in recs if (seg := tcp.parse(r.data, sn.linktype)) and seg.payload}
    assert b"mine" in payloads and b"other" not in payloads, payloads
    assert all(any(p in ports for p in tcp.ports(r.data, sn.linktype)) for r in recs if tcp.parse(r.data, sn.linktype))


def test_port_shares_are_disjoint_and_below_the_ephemeral_range(monkeypatch):
    monkeypatch.setattr(endpoints, "_claimed", None)
    monkeypatch.setattr(endpoints, "ephemeral_floor", lambda: 32768)
    shares = [endpoints.claim_ports(i, 4) for i in range(4)]
    assert shares[0].low == endpoints.FIRST_PORT and shares[-1].high <= 32768
    assert all(a.high <= b.low for a, b in itertools.pairwise(shares))
    # The last claim is this process's: endpoints and free ports come from it.
    for _ in range(20):
        assert endpoints.free_tcp_port() in shares[3]
        assert int(endpoints.endpoint_for("tcp").rsplit(":", 1)[1]) in shares[3]
    with pytest.raises(ValueError, match="too few for 200 workers"):
        endpoints.claim_ports(0, 200)


@needs_sniffer
def test_a_lost_marker_is_sent_again(tmp_path):
    # tcpdump drops packets when its buffer overflows on a loaded machine: the first marker of a sync
    # never reaching the file must not fail the cell, the next one a second later ends the wait.
    sn = Sniffer(tmp_path)
    sn.start()
    try:
        sent: list[bytes] = []

        class LosesTheFirst:
            def __init__(self, sock):
                self.sock = sock

            def sendto(self, data, address):
                sent.append(data)
                return len(data) if len(sent) == 1 else self.sock.sendto(data, address)

            def __getattr__(self, name):
                return getattr(self.sock, name)

        sn.marker = LosesTheFirst(sn.marker)
        sn.sync(timeout=5)
        assert len(sent) == 2
    finally:
        sn.stop()


@needs_sniffer
def test_sniffer_gives_back_what_it_has_read(tmp_path, monkeypatch):
    from zmtp_conformance.capture import sniffer

    monkeypatch.setattr(sniffer, "RELEASE_STEP", 1 << 16)
    sn = Sniffer(tmp_path)
    sn.start()
    try:
        srv = socket.create_server(("127.0.0.1", 0))
        c = socket.create_connection(srv.getsockname())
        s, _ = srv.accept()
        for _ in range(8):
            c.sendall(b"x" * (1 << 18))
            got = 0
            while got < 1 << 18:
                got += len(s.recv(1 << 20))
            sn.sync()
        for x in (c, s, srv):
            x.close()
        st = os.stat(sn.path)
        # At least 2 MiB crossed lo (twice, as seen by tcpdump); nearly all of it is released.
        assert st.st_size > 2 << 20
        assert sn.released >= st.st_size - (1 << 17)
        assert st.st_blocks * 512 < st.st_size // 4
    finally:
        sn.stop()


@needs_sniffer
def test_tcpdump_dies_with_a_killed_harness(tmp_path):
    code = (
        "import sys, time; from zmtp_conformance.capture.sniffer import Sniffer; "
        f"s = Sniffer({str(tmp_path)!r}); s.start(); print(s.path, flush=True); time.sleep(60)"
    )
    harness = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    path = harness.stdout.readline().strip()
    assert path

    def tcpdumps() -> list[str]:
        found = []
        for p in Path("/proc").glob("[0-9]*"):
            try:
                argv = (p / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if argv and argv[0].endswith(b"tcpdump") and path.encode() in argv:
                found.append(p.name)
        return found

    assert tcpdumps(), "the harness started no tcpdump writing its capture"
    harness.kill()  # SIGKILL: no stop(), no atexit, no finally
    harness.wait()
    deadline = time.monotonic() + 5
    while tcpdumps() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert tcpdumps() == [], f"tcpdump still writes {path} after its harness was killed"


def test_orphaned_capture_folders_are_removed_and_live_ones_kept(tmp_path):
    from zmtp_conformance.capture.sniffer import remove_orphans

    gone, alive, fresh, old = (tmp_path / f"zmtp-sniff-{n}" for n in ("gone", "alive", "fresh", "old"))
    for d in (gone, alive, fresh, old):
        d.mkdir()
    (gone / "lo-4194305.pcap").write_bytes(b"")  # above the largest pid Linux allows (4194304)
    (alive / f"lo-{os.getpid()}.pcap").write_bytes(b"")
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    assert sorted(remove_orphans(tmp_path)) == [gone, old]
    assert not gone.exists() and not old.exists()
    assert alive.exists() and fresh.exists()  # fresh: its harness has not started tcpdump yet


def test_sniffer_refuses_to_start_without_tcpdump(tmp_path, monkeypatch):
    from zmtp_conformance.capture import sniffer

    monkeypatch.setattr(sniffer.shutil, "which", lambda name: None)
    with pytest.raises(sniffer.SnifferError, match="tcpdump is not installed"):
        Sniffer(tmp_path).start()


# -- the recording proxy --------------------------------------------------------


@pytest.mark.parametrize("transport", ["tcp", "ipc"])
def test_proxy_forwards_both_ways_records_and_passes_on_half_close(tmp_path, transport):
    async def go():
        async def echo_then_close(reader, writer):
            data = await reader.readexactly(5)
            writer.write(data.upper())
            await writer.drain()
            writer.close()  # the server closes first, like a peer refusing a handshake

        if transport == "tcp":
            server = await asyncio.start_server(echo_then_close, "127.0.0.1", 0)
            target = f"tcp://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        else:
            path = str(tmp_path / "s.ipc")
            server = await asyncio.start_unix_server(echo_then_close, path)
            target = f"ipc://{path}"
        proxy = RecordingProxy(target)
        ep = await proxy.start()
        assert ep != target and ep.startswith(transport)
        if transport == "tcp":
            reader, writer = await asyncio.open_connection("127.0.0.1", int(ep.rsplit(":", 1)[1]))
        else:
            reader, writer = await asyncio.open_unix_connection(ep[6:])
        writer.write(b"hello")
        assert await asyncio.wait_for(reader.readexactly(5), 2) == b"HELLO"
        assert await asyncio.wait_for(reader.read(10), 2) == b""  # the server's close came through
        writer.close()
        await proxy.close()
        server.close()
        return proxy

    proxy = asyncio.run(go())
    (conv,) = proxy.conversations
    assert [(who, data) for who, data, _ in conv.chunks] == [("c", b"hello"), ("s", b"HELLO")]
    if transport == "ipc":
        assert conv.client == os.getpid()  # how the harness tells its own ipc connections apart
    else:
        assert conv.client[0] == "127.0.0.1"


def test_proxy_refuses_an_endpoint_it_cannot_serve():
    with pytest.raises(ValueError, match="only tcp:// and ipc://"):
        asyncio.run(RecordingProxy("inproc://x").start())


# -- the verdict on a capture ----------------------------------------------------


def write_null(path: Path, corrupt_server_at: int | None = None) -> None:
    chunks = conversation(*null_pair())
    c = b"".join(d for who, d, _ in chunks if who == "c")
    srv = bytearray(b"".join(d for who, d, _ in chunks if who == "s"))
    if corrupt_server_at is not None:
        srv[corrupt_server_at] ^= 0x01  # e.g. in the greeting filler: only the validator sees it
    synth.write_conversation(
        path, [("c", c, 1.0), ("s", bytes(srv), 1.001)], client=("127.0.0.1", 40001), server=("127.0.0.1", 5555)
    )


def test_check_finds_a_violation_and_names_the_peer(tmp_path):
    p = tmp_path / "bad.pcap"
    write_null(p, corrupt_server_at=40)  # inside the filler
    n, findings, incomplete, _silent = wire.check(p, {}, {0: "libzmq", 5555: "impl"}, "x/y", [])
    assert n == 1 and not incomplete
    (f,) = findings
    assert (f.peer, f.violation.check, f.violation.sender, f.deviation) == ("impl", "greeting-filler", "server", None)


def test_check_names_a_peer_that_connected_and_never_spoke(tmp_path):
    """JeroMQ 0.6's stall: the server's signature arrives, the connecting peer sends nothing."""
    from zmtp_conformance.capture import synth

    server_greeting = b"\xff" + bytes(8) + b"\x7f"
    stalled, spoke, early = tmp_path / "stalled.pcap", tmp_path / "spoke.pcap", tmp_path / "early.pcap"
    synth.write_conversation(
        stalled, [("s", server_greeting, 1.0)], client=("127.0.0.1", 40001), server=("127.0.0.1", 5555)
    )
    synth.write_conversation(
        spoke,
        [("s", server_greeting, 1.0), ("c", b"\xff", 1.1)],
        client=("127.0.0.1", 40001),
        server=("127.0.0.1", 5555),
    )
    synth.write_conversation(early, [("s", b"\xff", 1.0)], client=("127.0.0.1", 40001), server=("127.0.0.1", 5555))
    assert wire.check(stalled, {}, {0: "jeromq-0.6.0", 5555: "impl"}, "x/y", [])[3] == ["jeromq-0.6.0"]
    assert wire.check(spoke, {}, {0: "jeromq-0.6.0", 5555: "impl"}, "x/y", [])[3] == []
    # Too early to tell: the server had not sent its whole signature yet.
    assert wire.check(early, {}, {0: "jeromq-0.6.0", 5555: "impl"}, "x/y", [])[3] == []
    # A raw client's silence is the scenario's own doing.
    assert wire.check(stalled, {}, {0: wire.HARNESS, 5555: "impl"}, "x/y", [])[3] == []


def test_check_does_not_judge_the_harness(tmp_path):
    p = tmp_path / "bad.pcap"
    write_null(p, corrupt_server_at=40)
    # The server side is the harness (a raw role): its bytes are on purpose.
    assert wire.check(p, {}, {0: "libzmq", 5555: wire.HARNESS}, "x/y", [])[1] == []
    # Or the stream is known by its ports.
    assert wire.check(p, {(40001, 5555): ("libzmq", wire.HARNESS)}, {}, "x/y", [])[1] == []


def test_check_matches_the_wire_table_by_check_peer_and_scenario(tmp_path):
    p = tmp_path / "bad.pcap"
    write_null(p, corrupt_server_at=40)
    (first,) = wire.check(p, {}, {0: "libzmq", 5555: "impl"}, "37/null/ready", [])[1]
    octets = first.violation.octets.replace(" ", "").lower()
    entry = WireDeviation(
        "w",
        first.violation.check,
        "impl",
        "pads oddly",
        scenarios=("37/null/ready",),
        octets=re.compile("^" + octets[:8]),
    )
    table = [entry]
    (f,) = wire.check(p, {}, {0: "libzmq", 5555: "impl"}, "37/null/ready", table)[1]
    assert f.deviation is entry
    other_bytes = [replace(entry, octets=re.compile("^" + ("00" if octets[:2] != "00" else "11") + octets[2:8]))]
    (f,) = wire.check(p, {}, {0: "libzmq", 5555: "impl"}, "37/null/ready", other_bytes)[1]
    assert f.deviation is None  # the same check on other octets is not excused
    (f,) = wire.check(p, {}, {0: "libzmq", 5555: "impl"}, "28/req-rep/round-trip", table)[1]
    assert f.deviation is None  # the entry is for other scenarios
    (f,) = wire.check(p, {}, {0: "libzmq", 5555: "czmq"}, "37/null/ready", table)[1]
    assert f.deviation is None  # and for another peer


def test_the_wire_table_loads_and_names_bad_entries(tmp_path):
    table = deviations.load_wire()
    assert any(d.check == "frame-malformed" and d.peer == "libzmq" for d in table)
    assert not any(d.check == "curve-message-frame" for d in table)  # a convention, for every peer
    bad = tmp_path / "d.yaml"
    bad.write_text("wire:\n  - check: frame-malformed\n    peer: libzmq\n")
    with pytest.raises(deviations.DeviationError, match=r"d.yaml:2: wire entry lacks id, octets, reason, upstream"):
        deviations.load_wire(bad)


def test_file_names_are_safe_and_distinct():
    a = wire.file_name("37/null/ready[impl-libzmq-tcp-NULL]")
    assert a == "37_null_ready__impl-libzmq-tcp-NULL.pcap"
    assert a != wire.file_name("37/null/ready[impl-libzmq-ipc-NULL]")


# -- cells with captures ------------------------------------------------------------

BUGGY_FILLER = {"impl": ["--bug", "greeting_nonzero_filler"]}


def test_a_peer_that_passes_its_scenario_with_a_bad_byte_fails_on_the_wire(tmp_path):
    # libzmq ignores the greeting filler, so the exchange works; the capture shows the bad byte.
    sid = "28/req-rep/round-trip"
    good = run(sid, "impl", "libzmq", wire.ProxyCapture("libzmq"), tmp_path / "good.pcap", transport="ipc")
    assert good.outcome == Outcome.PASSED, good.reason
    assert good.wire is not None and good.wire.streams >= 1 and not good.wire.findings
    bad = run(
        sid, "impl", "libzmq", wire.ProxyCapture("libzmq"), tmp_path / "bad.pcap", transport="ipc", extra=BUGGY_FILLER
    )
    assert bad.outcome == Outcome.FAILED
    assert bad.reason.startswith("wire: impl as server") and "greeting-filler" in bad.seen + bad.reason
    assert bad.record()["capture"]["violations"][0]["check"] == "greeting-filler"


def test_a_known_scenario_deviation_does_not_excuse_unknown_bytes(tmp_path):
    from zmtp_conformance.deviations import Deviation, Signature

    sid = "28/req-rep/round-trip"
    sig = Signature(step="0", expected=re.compile("."))
    excuse = [
        Deviation("p", "impl", side, (sid,), sig, "pretend", "37/ZMTP", "nowhere") for side in ("server", "client")
    ]
    r = run(sid, "impl", "libzmq", wire.ProxyCapture("libzmq"), tmp_path / "c.pcap", "ipc", BUGGY_FILLER, devs=excuse)
    assert r.outcome == Outcome.FAILED  # passed on behaviour, failed on the wire: no deviation applies
    table = [WireDeviation("k", "greeting-filler", "impl", "known here")]
    r = run(sid, "impl", "libzmq", wire.ProxyCapture("libzmq"), tmp_path / "d.pcap", "ipc", BUGGY_FILLER, table)
    assert r.outcome == Outcome.PASSED and r.wire.findings[0].deviation is not None


def test_raw_roles_are_not_judged_but_their_partner_is(tmp_path):
    # The raw client sends a malformed frame on purpose; the peer's answer is what counts.
    sid = "23/framing/reserved-flags/bit7"
    r = run(sid, "impl", "raw", wire.ProxyCapture("raw"), tmp_path / "r.pcap", transport="ipc")
    assert r.outcome in (Outcome.PASSED, Outcome.DEVIATES), r.reason
    assert r.wire.streams >= 2 and not r.wire.findings  # the raw stream and the sanity one


@needs_sniffer
def test_tcp_cells_are_sniffed_with_frames_over_64k_intact(tmp_path):
    sn = Sniffer(tmp_path / "run")
    sn.start()
    try:
        r = run(
            "23/framing/short-long-boundary", "libzmq", "impl", wire.SnifferCapture("impl", sn), tmp_path / "t.pcap"
        )
        assert r.outcome == Outcome.PASSED, r.reason
        big = run(
            "23/framing/sizes-between-peers", "impl", "libzmq", wire.SnifferCapture("libzmq", sn), tmp_path / "b.pcap"
        )
        assert big.outcome == Outcome.PASSED, big.reason
    finally:
        sn.stop()
    assert r.wire.method == "tcpdump" and r.wire.streams >= 1 and not r.wire.findings
    header, recs = pcap.read(tmp_path / "b.pcap")
    (st,) = tcp.streams(recs, header.linktype)
    assert len(st.to_server.data) + len(st.to_client.data) > 200_000 and st.to_server.gap is None
    if shutil.which("tshark"):
        assert tshark_complaints(tmp_path / "t.pcap") == []
        assert tshark_complaints(tmp_path / "b.pcap") == []


# -- the plugin and its reports --------------------------------------------------------


def test_a_matrix_run_writes_one_capture_per_cell_referenced_from_the_reports(pytester):
    d = pytester.path / "scenarios"
    d.mkdir()
    shutil.copy(ROOT / "scenarios/28/req-rep-round-trip.yaml", d / "a.yaml")
    shutil.copy(ROOT / "scenarios/23/framing/reserved-flags.yaml", d / "b.yaml")
    result = pytester.runpytest(
        "scenarios", "--peers", "impl,libzmq", "--report-dir", "out", "-p", "no:cacheprovider", "--pcap", "auto"
    )
    assert result.ret == 0, result.stdout.str()
    doc = json.loads((pytester.path / "out/matrix.json").read_text())
    for cell in doc["cells"]:
        cap = cell["capture"]
        assert cap["file"] and (pytester.path / "out" / cap["file"]).is_file(), cell["id"]
        assert cap["method"] == ("proxy" if cell["transport"] == "ipc" or usable() else "tcpdump")
        assert cap["streams"] >= 1, cell["id"]
        if shutil.which("tshark"):
            assert tshark_complaints(pytester.path / "out" / cap["file"]) == [], cell["id"]
    html = (pytester.path / "out/matrix.html").read_text()
    assert "id='wire'" in html


def test_pcap_off_runs_without_captures(pytester):
    d = pytester.path / "scenarios"
    d.mkdir()
    shutil.copy(ROOT / "scenarios/28/req-rep-round-trip.yaml", d / "a.yaml")
    result = pytester.runpytest(
        "scenarios", "--peers", "impl", "--report-dir", "out", "-p", "no:cacheprovider", "--pcap", "off"
    )
    assert result.ret == 0
    doc = json.loads((pytester.path / "out/matrix.json").read_text())
    assert all(c["capture"] is None for c in doc["cells"])
    assert not (pytester.path / "out/captures").exists()


def test_without_root_tcp_cells_go_through_the_recording_proxy(pytester):
    # --pcap proxy is what a machine without capture privileges gets under --pcap auto.
    d = pytester.path / "scenarios"
    d.mkdir()
    shutil.copy(ROOT / "scenarios/28/req-rep-round-trip.yaml", d / "a.yaml")
    result = pytester.runpytest(
        "scenarios", "--peers", "impl,libzmq", "--report-dir", "out", "-p", "no:cacheprovider", "--pcap", "proxy"
    )
    assert result.ret == 0, result.stdout.str()
    doc = json.loads((pytester.path / "out/matrix.json").read_text())
    tcp_cells = [c for c in doc["cells"] if c["transport"] == "tcp"]
    assert tcp_cells and all(c["capture"]["method"] == "proxy" for c in tcp_cells)
    assert all(
        c["capture"]["streams"] >= 1 and not [v for v in c["capture"]["violations"] if not v["deviation"]]
        for c in tcp_cells
    )


def test_a_stream_whose_start_the_capture_missed_is_incomplete_not_judged(tmp_path):
    """tcpdump started after the connection: the first bytes seen are mid-stream, not a greeting."""
    from zmtp_conformance.capture import synth

    whole = synth.packets(
        [("c", b"\xff" + bytes(8) + b"\x7f", 1.0), ("s", b"\x00\x02\x00\x41" * 3, 1.1)],
        client=("127.0.0.1", 40001),
        server=("127.0.0.1", 5555),
    )
    late = tmp_path / "late.pcap"
    synth.write_packets(late, [p for p in whole if not tcp.parse(p.data, 1).flags & tcp.SYN][1:])  # no SYN, SYN-ACK or ACK
    n, findings, incomplete, _silent = wire.check(late, {}, {0: "monocoque", 5555: "impl"}, "x/y", [])
    assert n == 1 and findings == [] and incomplete == ["127.0.0.1:40001 -> 127.0.0.1:5555"]
    # The same bytes with their start: judged, and the server's mid-stream frames are violations.
    full = tmp_path / "full.pcap"
    synth.write_packets(full, whole)
    n, findings, incomplete, _silent = wire.check(full, {}, {0: "monocoque", 5555: "impl"}, "x/y", [])
    assert incomplete == [] and findings


@pytest.mark.parametrize("transport", ["tcp", "ipc"])
def test_a_proxy_for_a_server_that_binds_later_refuses_until_it_listens(transport):
    """Clients of a deferred server must meet a refused connect, as they would without a proxy, not
    a connection accepted and then reset (which looks like a handshake cut short)."""
    async def connect(ep: str):
        if ep.startswith("tcp://"):
            host, port = ep[6:].rsplit(":", 1)
            return await asyncio.open_connection(host, int(port))
        return await asyncio.open_unix_connection(ep[6:])

    async def go() -> None:
        async def echo(reader, writer):
            writer.write(await reader.read(10))
            await writer.drain()
            writer.close()

        if transport == "tcp":
            server = await asyncio.start_server(echo, "127.0.0.1", 0)
            target = f"tcp://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        else:
            target = endpoints.endpoint_for("ipc")
            server = await asyncio.start_unix_server(echo, target[6:])
        proxy = RecordingProxy(target)
        ep = await proxy.start(listen=False)
        try:
            with pytest.raises(OSError):
                await connect(ep)
            await proxy.listen()
            reader, writer = await connect(ep)
            writer.write(b"hello")
            assert await reader.read(10) == b"hello"
            writer.close()
        finally:
            await proxy.close()
            server.close()

    asyncio.run(go())


def test_a_rerun_keeps_the_capture_of_the_run_before(pytester):
    # impl with its socket-type check off accepts the PULL/SUB mismatch: a failure every time, so
    # --reruns 1 runs each cell twice, and the first run's capture must not be overwritten.
    d = pytester.path / "scenarios"
    d.mkdir()
    shutil.copy(ROOT / "scenarios/37/null/socket-type-mismatch-pull-sub.yaml", d / "a.yaml")
    result = pytester.runpytest(
        "scenarios", "--peers", "impl", "--report-dir", "out", "-p", "no:cacheprovider", "--pcap", "proxy",
        "--peer-args", "impl=--bug=skip_socket_type_check", "--reruns", "1", "--backend", "local",
    )  # fmt: skip
    assert result.parseoutcomes().get("rerun") == 2 and result.parseoutcomes().get("failed") == 2
    caps = pytester.path / "out/captures"
    for cell in json.loads((pytester.path / "out/matrix.json").read_text())["cells"]:
        last = pytester.path / "out" / cell["capture"]["file"]
        first = last.with_name(wire.rerun_file_name(last.name, 1))
        assert last.is_file() and first.is_file(), sorted(p.name for p in caps.iterdir())
