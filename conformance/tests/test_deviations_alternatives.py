"""Entries that mask each other: two known ways the same cells fail, named as each other's `alternative`."""

from __future__ import annotations

from pathlib import Path

import pytest

from zmtp_conformance import deviations

LOST = "{step: 6, action: expect, expected: '^after$', seen: '^nothing$'}"
EOF = "{step: 8, action: expect, reason: 'EOF$'}"


def entry(eid: str, fails: str, alternative: str | None = None, peer: str = "zmq4", side: str = "client",
          scenarios: str = "['37/faults/x']") -> str:
    alt = f"    alternative: {alternative}\n" if alternative is not None else ""
    return (
        f"  - id: {eid}\n    peer: {peer}\n    side: {side}\n    scenarios: {scenarios}\n    fails: {fails}\n"
        f"{alt}    clause: 37/ZMTP#x\n    upstream: zmq4 socket.go f\n    reason: r\n"
    )


def table(tmp_path: Path, *entries: str) -> list[deviations.Deviation]:
    path = tmp_path / "dev.yaml"
    path.write_text("deviations:\n" + "".join(entries))
    return deviations.load(path)


def pair(tmp_path: Path) -> list[deviations.Deviation]:
    return table(tmp_path, entry("lost", LOST, "eof"), entry("eof", EOF, "lost"))


def cell(outcome: str, excused: str | None = None, scenario: str = "37/faults/x", client: str = "zmq4") -> dict:
    return {
        "scenario": scenario,
        "server": {"peer": "libzmq"},
        "client": {"peer": client},
        "outcome": outcome,
        "deviation": {"id": excused} if excused else None,
    }


def test_each_alternative_keeps_its_own_signature(tmp_path):
    devs = pair(tmp_path)
    lost = deviations.Failure("6", "expect", "received nothing", "after", "nothing")
    eof = deviations.Failure("8", "expect", "zmq4/client: failed: EOF", None, None)
    other = deviations.Failure("7", "expect", "received nothing", "after", "nothing")
    assert deviations.find(devs, "37/faults/x", "libzmq", "zmq4", lost).id == "lost"
    assert deviations.find(devs, "37/faults/x", "libzmq", "zmq4", eof).id == "eof"
    assert deviations.find(devs, "37/faults/x", "libzmq", "zmq4", other) is None


def test_a_pair_where_one_excused_a_cell_is_not_stale(tmp_path):
    devs = pair(tmp_path)
    # The run showed only the lost message: the EOF entry excused nothing, but its alternative did.
    run = [cell("deviates", "lost"), cell("deviates", "lost")]
    assert deviations.stale(devs, run) == {}
    uses = deviations.usage(devs, run)
    assert (uses["eof"].excused, uses["eof"].excused_by_alternatives) == (0, 2)
    # And the other way round.
    assert deviations.stale(devs, [cell("deviates", "eof")]) == {}


def test_a_pair_where_neither_excused_a_cell_is_stale_both_ways(tmp_path):
    devs = pair(tmp_path)
    stale = deviations.stale(devs, [cell("passed"), cell("passed")])
    assert set(stale) == {"lost", "eof"}
    assert "nor did its alternative eof" in stale["lost"] and "2 passed" in stale["lost"]
    assert "nor did its alternative lost" in stale["eof"]
    # An entry without an alternative is stale as before, whatever another entry excused.
    alone = table(tmp_path, entry("lost", LOST), entry("eof", EOF))
    assert set(deviations.stale(alone, [cell("deviates", "lost")])) == {"eof"}


def test_the_alternative_of_a_provisional_peer_is_reported_apart_as_before(tmp_path):
    devs = pair(tmp_path)
    run = [cell("passed", client="zmq4-0.17.0")]
    run[0]["client"]["family"] = "zmq4"
    assert deviations.stale(devs, run, {"zmq4-0.17.0"}) == {}
    assert set(deviations.stale_provisional(devs, run, {"zmq4-0.17.0"})) == {"lost", "eof"}


@pytest.mark.parametrize(
    "entries, message",
    [
        ((entry("lost", LOST, "gone"),), r"dev.yaml:2: lost: alternative 'gone' is no entry of this table"),
        ((entry("lost", LOST, "lost"),), "is the entry itself"),
        ((entry("lost", LOST, "eof"), entry("eof", EOF)), r"dev.yaml:2: lost: alternative 'eof' \(line 11\) does not name 'lost' back"),
        ((entry("lost", LOST, "eof"), entry("eof", EOF, "lost", peer="zmqrs")), "is for zmqrs as client, this entry for zmq4 as client"),
        ((entry("lost", LOST, "eof"), entry("eof", EOF, "lost", side="server")), "is for zmq4 as server"),
        ((entry("lost", LOST, "eof"), entry("eof", EOF, "lost", scenarios="['37/faults/y']")), "shares no scenario"),
    ],
)
def test_a_bad_alternative_is_a_load_error_naming_file_and_line(tmp_path, entries, message):
    with pytest.raises(deviations.DeviationError, match=message):
        table(tmp_path, *entries)


def test_the_shipped_zmq4_reconnect_entries_are_each_others_alternative():
    by_id = {d.id: d for d in deviations.load()}
    lost, eof = by_id["zmq4-dealer-drops-while-reconnecting"], by_id["zmq4-dealer-recv-returns-eof-of-dead-connection"]
    assert lost.alternatives == (eof.id,) and eof.alternatives == (lost.id,)
    assert lost.fails.step == "6" and eof.fails.step == "8"
    # Either way, a run of that cell leaves neither entry stale.
    for excused in (lost.id, eof.id):
        run = [{**cell("deviates", excused, "37/faults/reconnect-after-server-restart"), "client": {"peer": "zmq4"}}]
        stale = deviations.stale(list(by_id.values()), run)
        assert lost.id not in stale and eof.id not in stale
