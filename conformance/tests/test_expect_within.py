"""`expect` with `within: n`: the expected message among the next n a peer role receives (fair queuing
may hand it another peer's message first), and a clear failure when it is not."""

from __future__ import annotations

import pytest
from scenario_samples import run_one, write

from zmtp_conformance.scenario import load_file
from zmtp_conformance.vocabulary import Outcome

BASE = """\
id: 99/test/within
title: reading past messages
rfc: ["30/PIPELINE"]
requirement: the expected message comes among the next few
roles:
  server: {side: server, type: PULL}
  client: {side: client, raw: true}
steps:
  - client.handshake: {type: PUSH}
  - client.send: [a]
  - client.send: [b]
  - client.send: [c]
"""


def _run(tmp_path, steps: str):
    return run_one(load_file(write(tmp_path, BASE + steps)))


def test_the_message_among_the_next_n_passes_and_those_before_it_are_read_past(tmp_path):
    r = _run(tmp_path, "  - server.expect: {message: [b], within: 2}\n  - server.expect: [c]\n")
    assert r.outcome == Outcome.PASSED, r.reason + "\n" + r.transcript
    assert "(read past)" in r.transcript


@pytest.mark.parametrize(
    "steps, reason",
    [
        ("  - server.expect: {message: [c], within: 2}\n", "received 2 messages, none of them the one expected"),
        ("  - server.expect: {message: [b], within: 1}\n", "received a different message"),
        ("  - server.expect: {message: [z], within: 5, timeout: 0.3}\n", "nothing within 0.3s after 3 other"),
    ],
)
def test_the_message_not_among_the_next_n_fails_naming_what_came(tmp_path, steps, reason):
    r = _run(tmp_path, steps)
    assert r.outcome == Outcome.FAILED and reason in r.reason, r.reason


def test_within_on_a_raw_role_is_refused(tmp_path):
    r = _run(tmp_path, "  - client.expect: {message: [x], within: 2}\n")
    assert r.outcome == Outcome.FAILED and "within is for peer roles" in r.reason, r.reason
