"""Opening captured CURVE boxes with key logs: zmtp's own, and libzmq's and czmq's through the shim."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
from test_capture import CLIENT, SERVER, conversation, curve_pair, streams_of, traffic

from zmtp_conformance import peers, wire
from zmtp_conformance.capture import keylog, transcript
from zmtp_conformance.capture.curvebox import CurveKeys, open_stream
from zmtp_conformance.capture.validator import decode_stream, validate_stream
from zmtp_conformance.cells import Cell
from zmtp_conformance.peers import AgentPool
from zmtp_conformance.runner import run_cell
from zmtp_conformance.scenario import load_all
from zmtp_conformance.vocabulary import Outcome


@pytest.fixture
def logged(tmp_path, monkeypatch):
    """A CURVE conversation made by zmtp's core while it writes its key log."""
    log = tmp_path / "keys.txt"
    monkeypatch.setenv(keylog.ENV, str(log))
    chunks = conversation(*curve_pair(), after=traffic)
    (st,) = streams_of(tmp_path, chunks)
    return st, log, chunks


def test_zmtp_writes_each_transient_key_pair_and_never_a_long_term_one(logged):
    _, log, _ = logged
    keys = keylog.read(log)
    assert len(keys) == 2  # the client's and the server's transient pairs
    assert SERVER.secret not in keys.values() and CLIENT.secret not in keys.values()


def test_with_the_client_transient_key_every_box_opens(logged):
    st, log, _ = logged
    c, s = decode_stream(st)
    opened = open_stream(c, s, CurveKeys(keylog.read(log), SERVER.public))
    assert opened.failed == 0 and opened.boxes >= 6, opened
    ready = next(it for it in s.items if it.name == "READY")
    assert dict(ready.fields["properties"])[b"Socket-Type"] == b"ROUTER"
    initiate = next(it for it in c.items if it.name == "INITIATE")
    assert initiate.fields["client_key"] == CLIENT.public.hex()
    inner = [it.fields["plaintext"] for it in c.items if it.name == "MESSAGE"]
    assert b"hello" in inner and any(p.startswith(b"\x04PING") for p in inner)


def test_the_server_transient_key_alone_is_found_by_trying(logged):
    st, log, _ = logged
    c, s = decode_stream(st)
    client_transient = bytes(next(it for it in c.items if it.name == "HELLO").body[74:106])
    only_server = {k: v for k, v in keylog.read(log).items() if k != client_transient}
    opened = open_stream(c, s, CurveKeys(only_server))
    assert opened.boxes >= 5 and opened.failed == 0  # all but WELCOME, which needs c' or s


def test_without_the_keys_nothing_opens_and_the_report_says_why(logged, tmp_path):
    st, _, _ = logged
    c, s = decode_stream(st)
    opened = open_stream(c, s, CurveKeys({}, SERVER.public))
    assert opened.boxes == 0 and "not in the key log" in opened.note
    # The long-term server secret opens WELCOME, and nothing after it.
    c, s = decode_stream(st)
    opened = open_stream(c, s, CurveKeys({}, server_secret=SERVER.secret))
    assert opened.boxes == 1


def test_what_is_wrong_inside_a_box_is_found_only_with_the_keys(tmp_path, monkeypatch):
    log = tmp_path / "keys.txt"
    monkeypatch.setenv(keylog.ENV, str(log))

    client, server = curve_pair()
    chunks = conversation(client, server, after=traffic)
    # A frame whose inner flags set a reserved bit: invisible from outside the box.
    chunks.append(("c", client.mechanism.encrypt(0x04, b"oops"), chunks[-1][2] + 1e-3))
    (st,) = streams_of(tmp_path, chunks)
    keys = CurveKeys(keylog.read(log), SERVER.public)
    assert "curve-message-flags" not in {v.check for v in validate_stream(st)}
    found = [v for v in validate_stream(st, keys=keys) if v.check == "curve-message-flags"]
    assert found and found[0].sender == "client" and found[0].clause == "26/CURVEZMQ"


def test_dissect_shows_inside_the_boxes_with_a_keylog_beside_the_file(logged, tmp_path):
    _, log, chunks = logged
    from zmtp_conformance.capture import synth

    (tmp_path / "cap").mkdir()
    synth.write_conversation(tmp_path / "cap" / "c.pcap", chunks)
    (tmp_path / "cap" / "curve-keylog.txt").write_text(log.read_text())
    run = [sys.executable, "-m", "zmtp_conformance.cli", "dissect", str(tmp_path / "cap" / "c.pcap")]
    out = subprocess.run(run, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "-> frame 5 octets |hello|" in out.stdout and "boxes opened" in out.stdout
    bad = tmp_path / "bad.txt"
    bad.write_text("ZMTP_CURVE_TRANSIENT nothex\n")
    out = subprocess.run([*run, "--keylog", str(bad)], capture_output=True, text=True)
    assert out.returncode == 2 and "bad.txt:1" in out.stderr


def test_keylog_lines_are_checked(tmp_path):
    f = tmp_path / "k.txt"
    f.write_text("# comment\nZMTP_CURVE_TRANSIENT " + "ab" * 32 + " " + "cd" * 31 + "\n")
    with pytest.raises(keylog.KeylogError, match=r"k\.txt:2: keys must be 32 octets"):
        keylog.read(f)
    f.write_text("CLIENT_RANDOM x y\n")
    with pytest.raises(keylog.KeylogError, match="expected 'ZMTP_CURVE_TRANSIENT"):
        keylog.read(f)


@pytest.mark.parametrize(("server", "client"), [("libzmq", "czmq"), ("czmq", "libzmq")])
def test_libzmq_and_czmq_boxes_open_through_the_preload_shim(tmp_path, server, client):
    reg = peers.load_registry()
    for p in (server, client):
        why = reg[p].missing() or reg[p].ensure_built()
        if why:
            pytest.skip(f"{p}: {why}")
    if isinstance(keylog.build_shim(), str):
        pytest.skip(str(keylog.build_shim()))
    (sc,) = [s for s in load_all() if s.id == "28/req-rep/round-trip"]
    log = tmp_path / "curve-keylog.txt"

    async def go():
        pool = AgentPool(reg, keylog=log)
        try:
            cap = wire.ProxyCapture(client, log)
            return await run_cell(Cell(sc, server, client, "ipc", "CURVE"), pool, [], cap, tmp_path / "c.pcap", [])
        finally:
            await pool.close()

    r = asyncio.run(go())
    assert r.outcome in (Outcome.PASSED, "failed"), r.reason  # (curve-message-frame is not in this empty wire table)
    assert len(keylog.read(log)) >= 2
    (st,) = transcript.load_streams(tmp_path / "c.pcap")
    c, s = decode_stream(st)
    opened = open_stream(c, s, CurveKeys(keylog.read(log)))
    assert opened.failed == 0 and opened.boxes >= 5
    assert b"hello" in [it.fields.get("plaintext") for it in c.items if it.name == "MESSAGE"]


def test_agents_get_no_keylog_unless_asked(tmp_path, monkeypatch):
    monkeypatch.setenv(keylog.ENV, str(tmp_path / "leak.txt"))
    spec = peers.load_registry()["impl"]

    async def go():
        agent = peers.AgentProcess(spec)  # no keylog given: the variable must not leak through
        await agent.start()
        try:
            sock = (
                await agent.request(
                    "socket",
                    type="REP",
                    options={"curve_server": True, "curve_secretkey": "JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6"},
                    mechanism="CURVE",
                )
            )["socket"]
            await agent.request("close", socket=sock)
        finally:
            await agent.stop()

    asyncio.run(go())
    assert not Path(tmp_path / "leak.txt").exists()


def test_a_welcome_naming_an_unusable_transient_key_is_reported_not_raised(tmp_path):
    # A hostile WELCOME (26/curve/client-refuses-zero-transient-key) names S' = 32 zero octets, with which
    # libsodium makes no shared key: the judge says so instead of failing the whole cell with an exception.
    from zmtp_conformance import rawcodec

    c = rawcodec.Codec(
        "PULL", as_server=False, mechanism=lambda st, i: rawcodec.Curve(st, i, CLIENT.secret, SERVER.public)
    )
    s = rawcodec.Codec(
        "PUSH",
        as_server=True,
        mechanism=lambda st, i: rawcodec.CurveServer(st, i, SERVER.secret),
        corrupt="welcome_zero_key",
    )
    chunks, t = [], 1_700_000_000.0
    out_c = c.data_to_send()
    chunks.append(("c", out_c, t))
    s.receive(out_c)
    out_s = s.data_to_send()
    chunks.append(("s", out_s, t + 1e-3))
    c.receive(out_s[:64])  # the greeting: the client answers with HELLO
    hello = c.data_to_send()
    chunks.append(("c", hello, t + 2e-3))
    s.receive(hello)
    chunks.append(("s", s.data_to_send(), t + 3e-3))
    assert s.mech.corrupted
    (st,) = streams_of(tmp_path, chunks)
    dc, ds = decode_stream(st)
    transient = c.mech.transient
    keys = CurveKeys({bytes(transient.public_key): bytes(transient)}, SERVER.public)
    opened = open_stream(dc, ds, keys)
    assert opened.boxes == 1 and "no shared key can be made with: " + "00" * 32 in opened.note
