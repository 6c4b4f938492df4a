"""The golden captures in captures/: listed, clean, sensitive to one wrong octet, and replayable."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import pytest

from zmtp_conformance import golden, peers, replay
from zmtp_conformance.capture import pcap, tcp
from zmtp_conformance.capture.dissect import Item
from zmtp_conformance.capture.validator import validate_stream
from zmtp_conformance.credentials import CURVE_CLIENT_PUBLIC, CURVE_SERVER_PUBLIC, PLAIN_USER
from zmtp_conformance.peers import AgentPool

MANIFEST = golden.load_manifest()
FILES = sorted(MANIFEST)


def stream_of(name: str) -> tcp.Stream:
    header, records = pcap.read(golden.CAPTURES / name)
    (st,) = tcp.streams(records, header.linktype)
    return st


def test_the_manifest_lists_every_capture_and_says_what_made_it():
    on_disk = {p.name for p in golden.CAPTURES.glob("*.pcap")}
    assert on_disk == set(MANIFEST), "captures/ and captures/manifest.yaml disagree"
    for name, e in MANIFEST.items():
        assert e["server"]["versions"] and e["client"]["versions"], name
        assert e["server"]["socket"] and e["client"]["socket"] and e["clauses"], name
        if e["mechanism"] == "PLAIN":
            assert e["keys"]["plain"]["username"] == PLAIN_USER
        if e["mechanism"] == "CURVE":
            # Only the harness's published test keys ever go in the repository.
            assert e["keys"]["curve"]["server_public"] == CURVE_SERVER_PUBLIC
            assert e["keys"]["curve"]["client_public"] == CURVE_CLIENT_PUBLIC
            assert (golden.CAPTURES / e["keylog"]).is_file()
    families = {(e["family"], e["mechanism"]) for e in MANIFEST.values()}
    for fam in ("req-rep", "dealer-router", "pub-sub", "push-pull", "pair"):
        assert {(fam, m) for m in ("NULL", "PLAIN", "CURVE")} <= families
    assert {e["server"]["peer"] for e in MANIFEST.values()} >= {"libzmq", "czmq"}


@pytest.mark.parametrize("name", FILES)
def test_each_golden_capture_is_clean_but_for_known_deviations(name):
    assert golden.check_capture(golden.CAPTURES / name, MANIFEST[name]) == []


def test_the_golden_captures_hold_what_the_manifest_says():
    def commands(name: str, direction: str) -> list[str]:
        from zmtp_conformance.capture.validator import decode_stream

        c, s = decode_stream(stream_of(name))
        dec = c if direction == "client" else s
        return [it.name for it in dec.items if it.kind == "command"]

    assert "PING" in commands("libzmq-heartbeat-null.pcap", "client")
    assert "PONG" in commands("czmq-heartbeat-null.pcap", "server")
    assert "SUBSCRIBE" in commands("libzmq-pub-sub-null.pcap", "client")
    # To a 3.0 publisher the subscription is a message frame, not a command.
    assert "SUBSCRIBE" not in commands("libzmq-sub-to-zmtp-3.0-pub.pcap", "client")
    assert commands("czmq-req-rep-curve.pcap", "client")[:2] == ["HELLO", "INITIATE"]


# (capture, direction, offset in that direction, new octet, check the validator must name)
CORRUPTIONS = [
    ("libzmq-req-rep-null.pcap", "server", 9, 0x7D, "greeting-signature"),
    ("libzmq-req-rep-null.pcap", "client", 40, 0x01, "greeting-filler"),
    ("libzmq-req-rep-null.pcap", "server", 64, 0x0C, "frame-reserved-flags"),
    ("czmq-pair-null.pcap", "client", 68, ord("3"), "command-name"),
    ("libzmq-dealer-router-plain.pcap", "client", 67, ord("J"), "handshake-order"),
    ("czmq-push-pull-curve.pcap", "client", 65, 0xC7, "curve-hello-size"),
    ("libzmq-heartbeat-null.pcap", "client", 64, 0x05, "command-more"),
]


@pytest.mark.parametrize(("name", "direction", "offset", "value", "check"), CORRUPTIONS)
def test_one_wrong_octet_in_a_golden_capture_is_named(name, direction, offset, value, check):
    st = stream_of(name)
    data = st.to_server.data if direction == "client" else st.to_client.data
    data[offset] = value
    found = [v for v in validate_stream(st) if v.check == check]
    assert found, f"{check} not found"
    assert found[0].sender == direction and found[0].offset <= offset


# -- replay --------------------------------------------------------------------


def expected_difference(peer: str, entry: dict, play: str, v: replay.Verdict) -> bool:
    """Differences that are right: the live peer is not the one that was recorded."""
    if v.result != replay.DIFFERS or v.captured is None or v.captured.kind != "greeting":
        return False
    if entry["server"].get("args") and play == "client":
        return "version" in v.note  # the recorded publisher spoke ZMTP 3.0; live peers speak 3.1
    # libzmq (and czmq, which links it) greet with as-server 0 as the PLAIN/CURVE server; zmtp with 1.
    return peer == "impl" and play == "client" and entry["mechanism"] != "NULL" and "as_server" in v.note


@pytest.mark.parametrize("peer", ["impl", "libzmq", "czmq"])
def test_every_golden_capture_replays_against_each_peer(peer):
    spec = peers.load_registry()[peer]
    why = spec.missing() or spec.ensure_built()
    if why:
        pytest.skip(f"{peer}: {why}")

    async def go():
        pool = AgentPool(peers.load_registry())
        problems = []
        try:
            for name in FILES:
                for play in ("client", "server"):
                    r = await replay.Replay(golden.CAPTURES / name, peer, pool, play, None, MANIFEST[name]).run()
                    assert any(v.result in (replay.SAME, replay.EQUIVALENT) for v in r.verdicts), r.text()
                    for v in r.verdicts:
                        if v.result in replay.BAD and not expected_difference(peer, MANIFEST[name], play, v):
                            problems.append(f"{name} playing the {play}: {v.result} {v.note}")
        finally:
            await pool.close()
        return problems

    assert asyncio.run(go()) == []


def test_curve_captures_replay_inside_the_boxes_with_their_key_log():
    async def go():
        pool = AgentPool(peers.load_registry())
        try:
            name = "libzmq-req-rep-curve.pcap"
            return await replay.Replay(golden.CAPTURES / name, "libzmq", pool, "client", None, MANIFEST[name]).run()
        finally:
            await pool.close()

    r = asyncio.run(go())
    inside = [v for v in r.verdicts if "inside the box" in v.note]
    assert r.ok and inside and all(v.result == replay.SAME for v in inside), r.text()
    assert not [v for v in r.verdicts if v.result == replay.NOT_REPLAYED]


def item(kind: str, raw: bytes, **kw) -> Item:
    return Item(kind, 0, raw, **kw)


def test_compare_tells_meaning_from_octets():
    from zmtp_conformance.capture.dissect import Decoder

    def ready(*props: tuple[bytes, bytes]) -> Item:
        body = b"".join(bytes([len(k)]) + k + len(v).to_bytes(4, "big") + v for k, v in props)
        data = b"\x05READY" + body
        dec = Decoder()
        dec.mechanism = "NULL"
        greeting = b"\xff" + b"\x00" * 8 + b"\x7f\x03\x01NULL" + b"\x00" * 48
        dec.decode(greeting + b"\x04" + bytes([len(data)]) + data)
        return dec.items[1]

    a = ready((b"Socket-Type", b"REQ"), (b"Identity", b""))
    b = ready((b"socket-type", b"REQ"))
    c = ready((b"Socket-Type", b"DEALER"))
    assert replay.compare(a, a, "NULL")[0] == replay.SAME
    assert replay.compare(a, b, "NULL")[0] == replay.EQUIVALENT
    result, note = replay.compare(a, c, "NULL")
    assert result == replay.DIFFERS and "socket-type" in note and "DEALER" in note


def test_a_replay_that_parts_from_the_capture_says_where(tmp_path):
    # The same capture, but the live peer is told to be something else: a PUSH where a REP was.
    entry = dict(MANIFEST["libzmq-req-rep-null.pcap"])
    path = golden.CAPTURES / "libzmq-req-rep-null.pcap"

    async def go():
        pool = AgentPool(peers.load_registry())
        try:
            r = replay.Replay(path, "impl", pool, "client", None, entry)
            r.peer_type = "ROUTER"  # a ROUTER's READY says ROUTER, and it does not reply by itself
            return await r.run()
        finally:
            await pool.close()

    r = asyncio.run(go())
    assert not r.ok
    bad = next(v for v in r.verdicts if v.result in replay.BAD)
    assert bad.captured is not None and bad.captured.name == "READY"
    text = r.text()
    assert "MISMATCH" in text and "captured 04 19 05 52 45 41 44 59" in text and "^^" in text


def test_replay_cli_and_its_errors(tmp_path):
    run = [sys.executable, "-m", "zmtp_conformance.cli", "replay"]
    ok = subprocess.run(
        [*run, str(golden.CAPTURES / "libzmq-push-pull-null.pcap"), "--against", "impl"], capture_output=True, text=True
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "OK:" in ok.stdout
    # A CURVE capture outside any manifest needs keys, and the error says which.
    lone = tmp_path / "field.pcap"
    lone.write_bytes((golden.CAPTURES / "libzmq-pair-curve.pcap").read_bytes())
    bad = subprocess.run([*run, str(lone), "--against", "impl"], capture_output=True, text=True)
    assert bad.returncode == 2 and "socket type" in bad.stderr
    missing = subprocess.run([*run, str(tmp_path / "nope.pcap"), "--against", "impl"], capture_output=True, text=True)
    assert missing.returncode == 2 and "nope.pcap" in missing.stderr


def test_golden_record_writes_a_validated_capture_and_its_manifest(tmp_path):
    from zmtp_conformance.capture.sniffer import usable

    if usable() is not None:
        pytest.skip(f"recording needs tcpdump as root: {usable()}")
    proc = subprocess.run(
        [sys.executable, "-m", "zmtp_conformance.cli", "golden", "record", "--out", str(tmp_path),
         "--peers", "libzmq", "--only", "libzmq-dealer-router-curve"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    manifest = golden.load_manifest(tmp_path / "manifest.yaml")
    (entry,) = manifest.values()
    assert entry["file"] == "libzmq-dealer-router-curve.pcap" and entry["keylog"] == "curve-keylog.txt"
    assert golden.check_capture(tmp_path / entry["file"], entry) == []
    assert len((tmp_path / "curve-keylog.txt").read_text().splitlines()) >= 2  # both transient pairs


def test_replay_json_says_each_verdict():
    proc = subprocess.run(
        [sys.executable, "-m", "zmtp_conformance.cli", "replay", str(golden.CAPTURES / "czmq-pair-null.pcap"),
         "--against", "libzmq", "--json"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["ok"] and doc["verdicts"] and {v["result"] for v in doc["verdicts"]} <= {"same", "equivalent"}
    assert doc["verdicts"][0]["captured"]["meaning"].startswith("greeting")
