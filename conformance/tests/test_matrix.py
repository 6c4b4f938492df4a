"""Matrix expansion, sharding and the deviation table."""

from __future__ import annotations

import re

import pytest
from scenario_samples import GOOD, write

from zmtp_conformance import deviations, matrix
from zmtp_conformance.scenario import load_file

RAW_SCENARIO = """\
id: 99/test/raw
title: raw probe
rfc: ["37/ZMTP#framing"]
requirement: something that must hold for this test
transports: [tcp]
roles:
  server: {side: server, type: PULL}
  probe: {side: client, raw: true}
steps:
  - probe.expect_raw: "ff"
"""


def test_peer_pairs_times_transports(tmp_path):
    sc = load_file(write(tmp_path, GOOD))
    cells = matrix.expand([sc], ["impl", "libzmq", "czmq"])
    assert len(cells) == 3 * 3 * 2
    assert {(c.server, c.client) for c in cells} == {
        (a, b) for a in ("impl", "libzmq", "czmq") for b in ("impl", "libzmq", "czmq")
    }


def test_raw_side_pairs_only_the_other_side(tmp_path):
    sc = load_file(write(tmp_path, RAW_SCENARIO))
    cells = matrix.expand([sc], ["impl", "libzmq"])
    assert [(c.server, c.client, c.transport) for c in cells] == [("impl", "raw", "tcp"), ("libzmq", "raw", "tcp")]
    assert cells[0].id == "99/test/raw[impl-raw-tcp-NULL]"


def test_peer_filter(tmp_path):
    sc = load_file(write(tmp_path, GOOD + "peers:\n  server: [impl]\n"))
    cells = matrix.expand([sc], ["impl", "libzmq"])
    assert {c.server for c in cells} == {"impl"}


def test_shards_partition_the_matrix(tmp_path):
    sc = load_file(write(tmp_path, GOOD))
    cells = matrix.expand([sc], ["a", "b", "c"])
    shards = [matrix.shard(cells, f"{i}/3") for i in (1, 2, 3)]
    ids = [c.id for s in shards for c in s]
    assert sorted(ids) == sorted(c.id for c in cells)
    assert len(ids) == len(set(ids))
    with pytest.raises(ValueError, match="i/n"):
        matrix.shard(cells, "x")
    with pytest.raises(ValueError, match="between 1 and n"):
        matrix.shard(cells, "4/3")


ENTRY = """
  - id: {id}
    peer: {peer}
    side: {side}
    scenarios: {scenarios}
    fails: {fails}
    clause: 37/ZMTP#x
    upstream: src/x.cpp f
    reason: r
"""


def _table(tmp_path, *entries: dict) -> list:
    text = "deviations:" + "".join(ENTRY.format(**e) for e in entries)
    path = tmp_path / "dev.yaml"
    path.write_text(text)
    return deviations.load(path)


CLOSE = "{step: 3, action: expect_close, expected: '^close$'}"


def _fail(step="3", action="expect_close", expected="close", seen="(empty)", reason="kept open"):
    return deviations.Failure(step, action, reason, expected, seen)


def test_deviation_excuses_only_its_signature(tmp_path):
    devs = _table(tmp_path, dict(id="a", peer="libzmq", side="server", scenarios="['37/x/a']", fails=CLOSE))
    assert deviations.find(devs, "37/x/a", "libzmq", "impl", _fail()).id == "a"
    assert deviations.find(devs, "37/x/a", "impl", "libzmq", _fail()) is None  # wrong side
    assert deviations.find(devs, "37/x/b", "libzmq", "impl", _fail()) is None  # another scenario
    # The same cell failing another way is a failure: another step, another action, another expectation.
    assert deviations.find(devs, "37/x/a", "libzmq", "impl", _fail(step="4")) is None
    assert deviations.find(devs, "37/x/a", "libzmq", "impl", _fail(action="expect")) is None
    assert deviations.find(devs, "37/x/a", "libzmq", "impl", _fail(expected="a PONG")) is None
    assert deviations.find(devs, "37/x/a", "libzmq", "impl", _fail(step="setup", action="setup")) is None


def test_deviation_seen_pattern_must_match(tmp_path):
    fails = "{action: expect_raw, expected: '^ERROR$', seen: '^04 09 5e'}"
    devs = _table(tmp_path, dict(id="e", peer="[libzmq, czmq]", side="server", scenarios="['24/p']", fails=fails))
    ok = _fail(action="expect_raw", expected="ERROR", seen="04 09 5e 52 52 4f 52")
    assert deviations.find(devs, "24/p", "czmq", "raw", ok).id == "e"
    other = _fail(action="expect_raw", expected="ERROR", seen="04 1a 05 52 45 41 44 59")
    assert deviations.find(devs, "24/p", "czmq", "raw", other) is None


def test_a_failed_send_is_matched_by_its_reason(tmp_path):
    # A send that failed has nothing "seen": its reason is the signature.
    fails = "{step: 4, action: send, reason: 'connection refused'}"
    devs = _table(tmp_path, dict(id="s", peer="mono", side="client", scenarios="['30/f']", fails=fails))
    sent = _fail(step="4", action="send", expected=None, seen=None, reason="mono/client: failed: connection refused")
    assert deviations.find(devs, "30/f", "impl", "mono", sent).id == "s"
    other = _fail(step="4", action="send", expected=None, seen=None, reason="mono/client: timeout")
    assert deviations.find(devs, "30/f", "impl", "mono", other) is None


def test_an_entry_limited_to_a_mechanism_covers_only_its_cells(tmp_path):
    path = tmp_path / "dev.yaml"
    path.write_text(
        "deviations:" + ENTRY.format(id="c", peer="mono", side="server", scenarios="['37/x/a']", fails=CLOSE)
        + "    mechanisms: [CURVE]\n    transports: [tcp]\n"
    )  # fmt: skip
    devs = deviations.load(path)
    assert deviations.find(devs, "37/x/a", "mono", "impl", _fail(), "CURVE", "tcp").id == "c"
    assert deviations.find(devs, "37/x/a", "mono", "impl", _fail(), "NULL", "tcp") is None
    assert deviations.find(devs, "37/x/a", "mono", "impl", _fail(), "CURVE", "ipc") is None
    # Staleness counts only the cells it covers: a NULL cell that passed says nothing of it.
    null = {**_record("37/x/a", "mono", "impl", "passed"), "mechanism": "NULL", "transport": "tcp"}
    curve = {**_record("37/x/a", "mono", "impl", "deviates", "c"), "mechanism": "CURVE", "transport": "tcp"}
    assert deviations.usage(devs, [null, curve])["c"].cells == {"deviates": 1}
    path.write_text(path.read_text().replace("[CURVE]", "[CURVE, GSSAPI]"))
    with pytest.raises(deviations.DeviationError, match="mechanisms has no GSSAPI"):
        deviations.load(path)


def test_deviation_table_errors(tmp_path):
    bad = dict(id="a", peer="libzmq", side="server", scenarios="['37/x/a']", fails=CLOSE)
    with pytest.raises(deviations.DeviationError, match="side must be"):
        _table(tmp_path, {**bad, "side": "left"})
    with pytest.raises(deviations.DeviationError, match="globs are not allowed"):
        _table(tmp_path, {**bad, "scenarios": "['37/x/*']"})
    with pytest.raises(deviations.DeviationError, match="must name the step"):
        _table(tmp_path, {**bad, "fails": "{expected: close}"})
    with pytest.raises(deviations.DeviationError, match="must name the step"):
        _table(tmp_path, {**bad, "fails": "{step: 3}"})
    with pytest.raises(deviations.DeviationError, match="used twice"):
        _table(tmp_path, bad, bad)
    with pytest.raises(deviations.DeviationError, match="not a regular expression"):
        _table(tmp_path, {**bad, "fails": "{step: 3, seen: '('}"})
    (tmp_path / "short.yaml").write_text("deviations:\n  - {id: x, peer: b}\n")
    with pytest.raises(deviations.DeviationError, match=r"short.yaml:2: .*lacks clause, fails"):
        deviations.load(tmp_path / "short.yaml")
    _table(tmp_path, bad)
    with pytest.raises(deviations.DeviationError, match="does not exist"):
        deviations.load(tmp_path / "dev.yaml", known_scenarios={"37/x/b"})


def test_shipped_deviation_table_names_real_scenarios():
    from zmtp_conformance.scenario import load_all

    ids = {s.id for s in load_all()}
    assert deviations.load(known_scenarios=ids)
    deviations.load_wire(known_scenarios=ids)


def _record(scenario, server, client, outcome, deviation=None):
    return {
        "scenario": scenario,
        "server": {"peer": server},
        "client": {"peer": client},
        "outcome": outcome,
        "deviation": {"id": deviation} if deviation else None,
    }


def test_an_entry_that_excuses_nothing_is_stale(tmp_path):
    devs = _table(tmp_path, dict(id="a", peer="libzmq", side="server", scenarios="['37/x/a']", fails=CLOSE))
    used = [_record("37/x/a", "libzmq", "raw", "deviates", "a"), _record("37/x/a", "libzmq", "raw", "passed")]
    assert not deviations.usage(devs, used)["a"].stale
    passed = [_record("37/x/a", "libzmq", "raw", "passed")]
    assert "excused no cell: 1 passed" in deviations.usage(devs, passed)["a"].stale
    unsupported = [_record("37/x/a", "libzmq", "raw", "unsupported")]
    assert "unsupported" in deviations.usage(devs, unsupported)["a"].stale
    # None of its cells ran (another peer, another scenario): nothing to say.
    assert deviations.usage(devs, [_record("37/x/a", "czmq", "raw", "passed")])["a"].stale is None


def test_staleness_is_judged_by_family_in_a_table_read_as_written(tmp_path):
    # merge reads the table without expanding it per version: a libzmq entry still covers libzmq-4.3.5's cells.
    devs = _table(tmp_path, dict(id="a", peer="libzmq", side="server", scenarios="['37/x/a']", fails=CLOSE))
    passed = _record("37/x/a", "libzmq-4.3.5", "raw", "passed")
    passed["server"]["family"] = "libzmq"
    assert "excused no cell: 1 passed" in deviations.stale(devs, [passed])["a"]
    # The same record under the table expanded per version is counted once, not once per copy.
    expanded = deviations.for_peers(devs, {"libzmq": "libzmq", "libzmq-4.3.5": "libzmq"})
    assert deviations.usage(expanded, [passed])["a"].cells == {"passed": 1}


def test_sharding_by_pairing_partitions_the_matrix_and_keeps_each_shard_to_few_peers(tmp_path):
    peers = ["impl", "libzmq", "a", "b", "c", "d"]
    anchors = {"impl", "libzmq", "raw"}
    scs = [load_file(write(tmp_path, GOOD)), load_file(write(tmp_path, RAW_SCENARIO, "raw.yaml"))]
    cells = [c for c in matrix.expand(scs, peers) if {c.server, c.client} & anchors]
    keys = matrix.pairings(peers, anchors)
    assert {matrix.pairing(c) for c in cells} <= set(keys)
    shards = [matrix.shard(cells, f"{i}/4", keys, anchors) for i in (1, 2, 3, 4)]
    ids = [c.id for s in shards for c in s]
    assert sorted(ids) == sorted(c.id for c in cells) and len(ids) == len(set(ids))
    for i, part in enumerate(shards, 1):
        started = set(matrix.shard_peers(keys, f"{i}/4", anchors))
        assert {p for c in part for p in matrix.pairing(c)} <= started
        # Each shard starts the anchors and one or two of the others, not every peer.
        assert len(started - anchors) <= 2, started
    # Every other peer is some shard's.
    assert set().union(*(matrix.shard_peers(keys, f"{i}/4", anchors) for i in (1, 2, 3, 4))) == set(peers)


def test_every_pairing_is_dealt_evenly_to_more_shards_than_peers():
    peers = [f"p{i:02}" for i in range(10)]
    keys = matrix.pairings(peers)  # no anchors: every pairing, 10 alone and 45 pairs
    shards = matrix.deal(keys, 12)
    assert sorted(k for s in shards for k in s) == sorted(keys)
    sizes = [len(s) for s in shards]
    assert min(sizes) >= 1 and max(sizes) - min(sizes) <= 1, sizes
    # A shard starts a handful of peers, not the ten.
    assert max(len(matrix.shard_peers(keys, f"{i}/12")) for i in range(1, 13)) <= 6


def test_a_stale_entry_gates_unless_it_spoke_only_of_provisional_peers(tmp_path):
    devs = _table(tmp_path, dict(id="a", peer="zmq4", side="server", scenarios="['37/x/a']", fails=CLOSE))
    only_new = [_record("37/x/a", "zmq4-0.17.0", "raw", "passed")]
    only_new[0]["server"]["family"] = "zmq4"
    assert "excused no cell" in deviations.stale(devs, only_new)["a"]
    # Its peer is provisional: reported apart, not among the entries that fail the run.
    assert deviations.stale(devs, only_new, {"zmq4-0.17.0"}) == {}
    assert "excused no cell" in deviations.stale_provisional(devs, only_new, {"zmq4-0.17.0"})["a"]
    # Once the peer is no longer provisional (another one is), its stale entry gates again.
    assert "a" in deviations.stale(devs, only_new, {"jeromq-0.6.0"})
    assert deviations.stale_provisional(devs, only_new, {"jeromq-0.6.0"}) == {}
    # An older version of the family whose cells were all unsupported adds nothing firmer...
    older = {**_record("37/x/a", "zmq4-0.1", "raw", "unsupported"), "server": {"peer": "zmq4-0.1", "family": "zmq4"}}
    assert deviations.stale(devs, [*only_new, older], {"zmq4-0.17.0"}) == {}
    # ...but a cell that ran without a provisional peer does, and so does a run with none of them.
    ran = {**older, "outcome": "passed"}
    assert "a" in deviations.stale(devs, [*only_new, ran], {"zmq4-0.17.0"})
    assert "a" in deviations.stale(devs, [older], {"zmq4-0.17.0"})


def test_a_version_of_a_peer_inherits_its_deviations(tmp_path):
    table = _table(tmp_path, dict(id="a", peer="libzmq", side="server", scenarios="['23/framing/x']", fails=CLOSE))
    wire = [deviations.WireDeviation("w", "frame-malformed", "libzmq", "bad ERROR", octets=re.compile("^04095e"))]
    families = {"libzmq": "libzmq", "libzmq-4.3.4": "libzmq", "czmq": "czmq", "impl": "impl"}
    table, wire = deviations.for_peers(table, families), deviations.for_peers(wire, families)
    assert deviations.find(table, "23/framing/x", "libzmq-4.3.4", "impl", _fail()) is not None
    assert deviations.find(table, "23/framing/x", "czmq", "impl", _fail()) is None  # another implementation
    assert deviations.find_wire(wire, "frame-malformed", "libzmq-4.3.4", "28/x", "04 09 5e 52") is not None
    assert deviations.find_wire(wire, "frame-malformed", "libzmq-4.3.4", "28/x", "04 1a 05 52") is None
    assert deviations.find_wire(wire, "frame-malformed", "impl", "28/x", "04 09 5e 52") is None


def test_the_registry_gives_each_peer_a_family(tmp_path):
    from zmtp_conformance import peers

    reg = tmp_path / "peers.yaml"
    reg.write_text("peers:\n  libzmq:\n    command: [x]\n  libzmq-4.3.4:\n    command: [y]\n    family: libzmq\n")
    specs = peers.load_registry(reg)
    assert (specs["libzmq"].family, specs["libzmq-4.3.4"].family) == ("libzmq", "libzmq")
