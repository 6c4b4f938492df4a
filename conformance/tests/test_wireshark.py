"""The Wireshark dissector (wireshark/zmtp.lua), run through tshark, reads captures as the harness does."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from test_capture import conversation, corrupt, null_pair, traffic

from zmtp_conformance import golden
from zmtp_conformance.capture import pcap, synth, tcp
from zmtp_conformance.capture.validator import decode_stream

ROOT = Path(__file__).resolve().parents[2]
LUA = ROOT / "wireshark" / "zmtp.lua"
pytestmark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")


def tshark(path: Path, *args: str) -> str:
    # Heuristics first: an ephemeral port may be some other protocol's registered one.
    cmd = ["tshark", "-X", f"lua_script:{LUA}", "-o", "tcp.try_heuristic_first:TRUE", "-r", str(path), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "Lua" not in proc.stderr and "error" not in proc.stderr.lower(), proc.stderr
    return proc.stdout


def per_direction(path: Path) -> dict[int, tuple[int, list[str], list[str]]]:
    """By source port: (greetings, one entry per PDU's flags, command names) as tshark's dissector shows them."""
    out = tshark(
        path,
        "-Y", "zmtp",
        "-T", "fields",
        "-e", "tcp.srcport", "-e", "zmtp.mechanism", "-e", "zmtp.flags", "-e", "zmtp.command",
        "-E", "separator=|", "-E", "aggregator=,",
    )  # fmt: skip
    seen: dict[int, tuple[int, list[str], list[str]]] = {}
    for line in out.splitlines():
        port, mech, flags, commands = line.split("|")
        greetings, fl, names = seen.get(int(port), (0, [], []))
        seen[int(port)] = (
            greetings + (1 if mech else 0),
            fl + [f for f in flags.split(",") if f],
            names + [c for c in commands.split(",") if c],
        )
    return seen


def harness_view(path: Path) -> dict[int, tuple[int, list[str], list[str]]]:
    header, records = pcap.read(path)
    out = {}
    for st in tcp.streams(records, header.linktype):
        c, s = decode_stream(st)
        for port, dec in ((st.client[1], c), (st.server[1], s)):
            items = dec.items
            out[port] = (
                sum(1 for it in items if it.kind == "greeting"),
                [f"0x{it.flags:02x}" for it in items if it.kind in ("command", "frame")],
                [it.name for it in items if it.kind == "command" or (it.kind == "frame" and it.name == "MESSAGE")],
            )
    return out


@pytest.mark.parametrize("name", sorted(golden.load_manifest()))
def test_the_lua_dissector_reads_each_golden_capture_like_the_harness(name):
    path = golden.CAPTURES / name
    assert per_direction(path) == harness_view(path)


def test_the_lua_dissector_shows_metadata_and_messages():
    out = tshark(golden.CAPTURES / "libzmq-req-rep-plain.pcap", "-Y", "zmtp")
    for text in ("Greeting 3.1 PLAIN", "HELLO username=admin", "INITIATE Socket-Type=REQ", "READY Socket-Type=REP"):
        assert text in out
    assert "Frame 5: hello" in out and "Frame 5: world" in out
    assert "secret" not in out  # the password is not shown


def test_frames_over_64k_are_reassembled(tmp_path):
    client, server = null_pair("PUSH", "PULL")
    chunks = conversation(client, server, after=lambda c, s: c.send_message([b"x" * 200_000, b"tail"]))
    path = tmp_path / "big.pcap"
    synth.write_conversation(path, chunks)
    assert per_direction(path) == harness_view(path)
    assert "Frame MORE 200000" in tshark(path, "-Y", "zmtp")


def test_the_lua_dissector_flags_what_is_wrong(tmp_path):
    chunks = conversation(*null_pair(), after=traffic)
    path = tmp_path / "bad.pcap"
    synth.write_conversation(path, corrupt(chunks, "c", 64, 0x0C))  # reserved flag bit 3 on READY
    out = tshark(path, "-q", "-z", "expert")
    assert "Reserved flag bits set" in out
