"""Entries that hold only against some peers on the other side (`partners`)."""

from __future__ import annotations

import pytest

from zmtp_conformance import deviations

FAILS = "{step: 2, action: expect, expected: '^\\[x\\]$', seen: '^nothing$'}"


def table(tmp_path, partners: str = "    partners: [zmqrs]\n") -> list[deviations.Deviation]:
    path = tmp_path / "dev.yaml"
    path.write_text(
        "deviations:\n"
        f"  - id: only-with-zmqrs\n    peer: zmq4\n    side: server\n    scenarios: ['28/x']\n    fails: {FAILS}\n"
        f"{partners}    clause: 28/REQREP#x\n    upstream: zmq4 f.go g\n    reason: r\n"
    )
    return deviations.load(path)


LOST = deviations.Failure("2", "expect", "client received nothing", "[x]", "nothing")
FAMILIES = {"zmq4": "zmq4", "zmq4-0.17.0": "zmq4", "zmqrs": "zmqrs", "zmqrs-0.7.0": "zmqrs", "impl": "impl"}


def cell(client: str, outcome: str, excused: str | None = None) -> dict:
    return {
        "scenario": "28/x",
        "server": {"peer": "zmq4-0.17.0", "family": "zmq4"},
        "client": {"peer": client, "family": FAMILIES[client]},
        "outcome": outcome,
        "deviation": {"id": excused} if excused else None,
    }


def test_the_entry_excuses_the_failure_only_against_its_partners(tmp_path):
    devs = deviations.for_peers(table(tmp_path), FAMILIES)
    assert deviations.find(devs, "28/x", "zmq4-0.17.0", "zmqrs-0.7.0", LOST).id == "only-with-zmqrs"
    assert deviations.find(devs, "28/x", "zmq4", "zmqrs", LOST).id == "only-with-zmqrs"
    # The same failure against another peer is not what the entry documents: it stays a failure.
    assert deviations.find(devs, "28/x", "zmq4-0.17.0", "impl", LOST) is None


def test_a_run_without_its_partners_does_not_call_it_stale(tmp_path):
    devs = table(tmp_path)
    # CI pairs zmq4 with impl only: those cells pass, and they are not this entry's business.
    assert deviations.stale(devs, [cell("impl", "passed"), cell("impl", "passed")]) == {}
    # A run that does pair them and sees them pass finds it stale.
    assert set(deviations.stale(devs, [cell("zmqrs-0.7.0", "passed")])) == {"only-with-zmqrs"}
    assert deviations.stale(devs, [cell("zmqrs-0.7.0", "deviates", "only-with-zmqrs")]) == {}
    # Without partners the entry speaks of every pairing, as before.
    assert set(deviations.stale(table(tmp_path, ""), [cell("impl", "passed")])) == {"only-with-zmqrs"}


def test_empty_partners_is_a_load_error(tmp_path):
    with pytest.raises(deviations.DeviationError, match="partners, when given, names at least one peer"):
        table(tmp_path, "    partners: []\n")
