"""ZMTP 2.0 peers: captures where a ZMTP 3 peer downgrades, and scenarios that
need ZMTP 3 of both peers (JeroMQ 0.3.6 speaks 2.0 only)."""

from __future__ import annotations

import asyncio

from scenario_samples import write

from zmtp_conformance.capture import synth, transcript
from zmtp_conformance.capture.dissect import greeting_major
from zmtp_conformance.capture.validator import decode_stream, validate_stream
from zmtp_conformance.cells import Cell
from zmtp_conformance.runner import run_cell
from zmtp_conformance.scenario import load_file
from zmtp_conformance.vocabulary import Outcome

SIGNATURE = bytes.fromhex("ff00000000000000017f")
BODY = b"x" * 80  # long enough that a ZMTP 3 reading of it would find a greeting's fields


def legacy_stream(tmp_path, server_major: int):
    """A ZMTP 3 client (PUSH) that sends its major version, sees the server's greeting and goes
    on in ZMTP 2.0 (socket type, empty identity, one message), as RFC 37 describes."""
    t = 1_700_000_000.0
    if server_major < 3:
        server = SIGNATURE + bytes([server_major, 7]) + b"\x00\x00"  # PULL, empty identity
    else:
        server = SIGNATURE + bytes([3, 1]) + b"NULL".ljust(20, b"\x00") + bytes(32)
    chunks = [
        ("c", SIGNATURE + b"\x03", t),
        ("s", server, t + 0.001),
        ("c", b"\x08" + b"\x00\x00" + b"\x00" + bytes([len(BODY)]) + BODY, t + 0.002),
    ]
    path = tmp_path / "legacy.pcap"
    synth.write_conversation(path, chunks)
    (st,) = transcript.load_streams(path)
    return st


def test_greeting_major():
    assert greeting_major(b"") is None
    assert greeting_major(b"\x01\x00") == 1  # a ZMTP 1.0 identity frame
    assert greeting_major(SIGNATURE) is None
    assert greeting_major(SIGNATURE + b"\x01") == 1  # ZMTP 2.0 sends revision 1
    assert greeting_major(SIGNATURE + b"\x03\x01") == 3


def test_a_zmtp3_peer_downgrading_to_a_2_0_peer_is_decoded_as_2_0(tmp_path):
    st = legacy_stream(tmp_path, server_major=1)
    client, server = decode_stream(st)
    assert client.legacy == 2 and server.legacy == 2
    assert client.items[0].kind == "greeting-2.0" and "continuing in ZMTP 2.0" in client.items[0].note
    frames = [it for it in client.items if it.kind == "frame"]
    assert bytes(frames[-1].body) == BODY
    assert validate_stream(st) == []


def test_the_same_bytes_to_a_zmtp3_peer_are_violations(tmp_path):
    # A client that answers a ZMTP 3 greeting in ZMTP 2.0 is wrong: the validator must say so.
    found = validate_stream(legacy_stream(tmp_path, server_major=3))
    assert any(v.sender == "client" for v in found), found


RAW_SCENARIO = """\
id: 99/test/raw-needs-zmtp3
title: a raw probe against a peer
rfc: ["37/ZMTP#framing"]
requirement: something only a ZMTP 3 peer can show
transports: [tcp]
roles:
  server: {side: server, type: PULL}
  probe: {side: client, raw: true}
steps:
  - probe.expect_raw: {greeting: true}
"""


class TwoZeroAgent:
    """Stands in for an agent whose peer speaks only ZMTP 2.0 (as JeroMQ 0.3.6's does)."""

    name = "old/server"
    hello = {"peer": "old", "protocol": 1, "versions": {"old": "1"}, "zmtp": ["2.0"]}
    versions = hello["versions"]
    alive = False

    async def request(self, op, **fields):  # pragma: no cover - never reached: the cell stops first
        raise AssertionError(f"{op} sent to a peer the scenario does not apply to")


class Pool:
    async def get(self, peer, side):
        return TwoZeroAgent()


def test_scenarios_with_raw_roles_need_zmtp3(tmp_path):
    sc = load_file(write(tmp_path, RAW_SCENARIO))
    assert sc.required_zmtp == "3.0"
    result = asyncio.run(run_cell(Cell(sc, "old", "raw", "tcp", "NULL"), Pool(), []))
    assert result.outcome == Outcome.UNSUPPORTED
    assert "speaks ZMTP 2.0 only" in result.reason and "needs ZMTP 3.0" in result.reason


def test_min_zmtp_applies_between_agents_too(tmp_path):
    text = RAW_SCENARIO.replace("  probe: {side: client, raw: true}\n", "  client: {side: client, type: PUSH}\n")
    text = text.replace("  - probe.expect_raw: {greeting: true}\n", "  - client.send: [x]\n")
    plain = load_file(write(tmp_path, text))
    assert plain.required_zmtp is None
    needs = load_file(write(tmp_path, text + 'min_zmtp: "3.1"\n'))
    assert needs.required_zmtp == "3.1"
    result = asyncio.run(run_cell(Cell(needs, "old", "old", "tcp", "NULL"), Pool(), []))
    assert result.outcome == Outcome.UNSUPPORTED and "needs ZMTP 3.1" in result.reason
