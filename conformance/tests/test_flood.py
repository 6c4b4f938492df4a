"""The raw `flood` step: a peer that reads on while its full queue discards passes, one that stops
reading (pushes back) fails with how much it left untaken; and `expect_numbered` on a raw role
counts what the peer's queue kept."""

from __future__ import annotations

from scenario_samples import run_one, write

from zmtp_conformance.scenario import load_file
from zmtp_conformance.vocabulary import Outcome

FLOOD = """\
id: 99/test/flood
title: flooding a receiver
rfc: ["29/PUBSUB"]
requirement: a full queue discards what arrives
mechanisms: ["NULL"]
roles:
  server: {{side: server, type: {kind}, options: {{rcvhwm: 10}}}}
  client: {{side: client, raw: true}}
steps:
  - client.handshake: {{type: {peer}}}
  - wait: 0.2
  - client.flood: {{message: [{{repeat: "x", count: 262144}}], count: 200, drained: 2}}
  - server.expect_numbered: {{sent_by: client, must_lose: true}}
"""


def _run(tmp_path, text: str):
    return run_one(load_file(write(tmp_path, text)))


def test_a_receiver_that_discards_takes_every_octet_and_loses_the_surplus(tmp_path):
    r = _run(tmp_path, FLOOD.format(kind="XSUB", peer="PUB").replace("  - wait", '  - server.send: [{hex: "01"}]\n  - wait'))
    assert r.outcome == Outcome.PASSED, r.reason + "\n" + r.transcript
    assert "the peer took all" in r.transcript and r.measurements["lost"] > 0


def test_a_receiver_that_pushes_back_fails_the_flood(tmp_path):
    # A PULL's full queue stops it reading the connection (RFC 30 has it block the sender).
    r = _run(tmp_path, FLOOD.format(kind="PULL", peer="PUSH"))
    assert r.outcome == Outcome.FAILED, r.transcript
    assert "stopped reading the connection (pushed back)" in r.reason and "left unread" in r.seen, r.reason


UPSTREAM = """\
id: 99/test/upstream
title: counting at a raw peer
rfc: ["29/PUBSUB"]
requirement: a full outgoing queue drops
mechanisms: ["NULL"]
roles:
  server: {{side: server, type: {kind}, options: {{sndhwm: 10}}}}
  client: {{side: client, raw: true}}
steps:
  - client.handshake: {{type: {peer}}}
  - server.send_until_full: {{message: [{{repeat: "x", count: 262144}}], max: {count}, full: false}}
  - client.expect_numbered: {{sent_by: server, must_lose: {lose}}}
"""


def test_a_raw_role_counts_numbered_messages_in_order(tmp_path):
    # Ten small messages all fit: every one arrives, so must_lose fails and may_lose-free counting passes.
    r = _run(tmp_path, UPSTREAM.format(kind="XSUB", peer="PUB", count=5, lose="false"))
    assert r.outcome == Outcome.PASSED, r.reason + "\n" + r.transcript
    assert r.measurements["received"] == 5
    r = _run(tmp_path, UPSTREAM.format(kind="XSUB", peer="PUB", count=5, lose="true"))
    assert r.outcome == Outcome.FAILED and "received all 5 numbered messages" in r.reason, r.reason
