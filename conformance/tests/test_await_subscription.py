"""`await_subscription`: a subscriber's subscriptions have reached the publisher, shown by a probe that
got through instead of a pause; the loader refuses the steps whose probe would prove nothing."""

from __future__ import annotations

import pytest
from scenario_samples import run_one, write

from zmtp_conformance.scenario import ScenarioError, load_file
from zmtp_conformance.vocabulary import Outcome

HEAD = """\
id: 99/test/await-subscription
title: probes instead of a pause
rfc: ["29/PUBSUB"]
requirement: the subscription reaches the publisher
roles:
  server: {side: server, type: PUB}
  client: {side: client, type: SUB}
  probe: {side: client, raw: true}
steps:
  - probe.handshake: {type: SUB}
"""


def _scenario(tmp_path, steps: str):
    return load_file(write(tmp_path, HEAD + steps))


def test_a_peer_subscriber_gets_a_probe_and_reads_the_rest(tmp_path):
    r = run_one(
        _scenario(
            tmp_path,
            "  - client.subscribe: A\n"
            "  - client.await_subscription: {publisher: server, topic: A}\n"
            "  - server.send: [A-1]\n"
            "  - client.expect: [A-1]\n"  # not a probe: every probe was read by the step
            "  - client.expect_nothing: 0.2\n",
        )
    )
    assert r.outcome == Outcome.PASSED, r.reason + "\n" + r.transcript
    assert "arrived, the rest read" in r.transcript


def test_a_raw_subscriber_gets_a_probe_too(tmp_path):
    r = run_one(
        _scenario(
            tmp_path,
            "  - probe.subscribe: B\n"
            "  - probe.await_subscription: {publisher: server, topic: B}\n"
            "  - server.send: [B-1]\n"
            "  - probe.expect: [B-1]\n",
        )
    )
    assert r.outcome == Outcome.PASSED, r.reason + "\n" + r.transcript


def test_a_subscription_that_never_arrives_fails_the_step(tmp_path):
    # The raw role's octets subscribe to Z (the loader cannot read them, and trusts them): probes on A
    # are dropped by the publisher, as they would be by one that ignored the subscription.
    r = run_one(
        _scenario(
            tmp_path,
            '  - probe.send_raw: {command: SUBSCRIBE, data: "5a"}\n'
            "  - probe.await_subscription: {publisher: server, topic: A, timeout: 0.5}\n",
        )
    )
    assert r.outcome == Outcome.FAILED, r.transcript
    assert r.action == "await_subscription" and r.step == "2", (r.step, r.action)
    assert "probes server published on 41 |A| reached probe within 0.5s" in r.reason, r.reason
    assert r.seen == "nothing"


def test_another_message_in_the_subscribers_queue_fails_the_step(tmp_path):
    r = run_one(
        _scenario(
            tmp_path,
            "  - probe.subscribe: A\n"
            "  - probe.await_subscription: {publisher: server, topic: A}\n"
            "  - server.send: [A-stray]\n"
            "  - probe.subscribe: B\n"
            "  - probe.await_subscription: {publisher: server, topic: B}\n",
        )
    )
    assert r.outcome == Outcome.FAILED, r.transcript
    assert "received something other than the publisher's probe" in r.reason, r.reason
    assert "A-stray" in (r.seen or ""), r.seen


@pytest.mark.parametrize(
    "steps, error",
    [
        # The probe on A gets through on the first subscription while the second is still on its way.
        (
            "  - client.subscribe: A\n  - client.subscribe: A\n  - client.await_subscription: {publisher: server, topic: A}\n",
            "the earlier subscription b'A' matches its probes too",
        ),
        # A held before the cancel: its probe arrives whether or not the cancel has.
        (
            "  - client.subscribe: A\n  - client.subscribe: B\n  - client.unsubscribe: B\n"
            "  - client.await_subscription: {publisher: server, topic: A}\n",
            "last (un)subscribe before it must be the subscribe of that topic",
        ),
        (
            '  - client.subscribe: ""\n  - client.subscribe: A\n  - client.await_subscription: {publisher: server, topic: A}\n',
            "the earlier subscription b'' matches its probes too",
        ),
        ("  - client.await_subscription: {publisher: server, topic: A}\n", "must be the subscribe of that topic"),
        (
            "  - client.subscribe: A\n  - client.await_subscription: {publisher: probe, topic: A}\n",
            "'probe' is not a PUB or XPUB peer role",
        ),
        (
            "  - client.subscribe: A\n  - server.await_subscription: {publisher: server, topic: A}\n",
            "await_subscription is for subscribers; 'server' is a PUB",
        ),
    ],
)
def test_a_probe_that_would_prove_nothing_is_a_load_error(tmp_path, steps, error):
    with pytest.raises(ScenarioError, match=error.replace("(", r"\(").replace(")", r"\)")) as exc:
        _scenario(tmp_path, steps)
    assert "s.yaml" in str(exc.value)


def test_a_restart_starts_the_subscriptions_afresh(tmp_path):
    # After the publisher's restart the SUB subscribes again on its new connection; the probe shows that.
    sc = _scenario(
        tmp_path,
        "  - client.subscribe: A\n"
        "  - client.await_subscription: {publisher: server, topic: A}\n"
        "  - server.fault: kill\n"
        "  - server.fault: restart\n"
        "  - client.await_subscription: {publisher: server, topic: A, timeout: 4}\n",
    )
    assert [s.action for s in sc.steps][-1] == "await_subscription"
