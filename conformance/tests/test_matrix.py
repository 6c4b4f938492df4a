"""Matrix expansion, sharding and the deviation table."""

from __future__ import annotations

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


def test_deviation_matching(tmp_path):
    table = tmp_path / "dev.yaml"
    table.write_text(
        "deviations:\n"
        "  - {scenario: '37/x/*', peer: libzmq, side: server, reason: r}\n"
        "  - {scenario: '28/y', peer: libzmq, side: client, reason: q}\n"
        "  - {scenario: '29/z', peer: [libzmq, czmq], reason: both}\n"
        "  - {scenario: ['30/a', '30/b'], peer: czmq, side: server, reason: one cause}\n"
    )
    devs = deviations.load(table)
    assert deviations.find(devs, "37/x/a", "libzmq", "impl").reason == "r"
    assert deviations.find(devs, "37/x/a", "impl", "libzmq") is None  # wrong side
    assert deviations.find(devs, "28/y", "impl", "libzmq").reason == "q"
    assert deviations.find(devs, "28/z", "libzmq", "libzmq") is None
    assert deviations.find(devs, "29/z", "impl", "czmq").reason == "both"
    assert deviations.find(devs, "29/z", "impl", "impl") is None
    assert deviations.find(devs, "30/b", "czmq", "impl").reason == "one cause"
    assert deviations.find(devs, "30/c", "czmq", "impl") is None


def test_deviation_table_errors(tmp_path):
    table = tmp_path / "dev.yaml"
    table.write_text("deviations:\n  - {scenario: a, peer: b}\n")
    with pytest.raises(SystemExit, match="lacks reason"):
        deviations.load(table)
    table.write_text("deviations:\n  - {scenario: a, peer: b, reason: c, side: left}\n")
    with pytest.raises(SystemExit, match="side must be"):
        deviations.load(table)


def test_shipped_deviation_table_names_real_scenarios():
    from zmtp_conformance.scenario import load_all

    ids = [s.id for s in load_all()]
    import fnmatch

    for dev in deviations.load():
        assert any(fnmatch.fnmatchcase(i, dev.scenario) for i in ids), dev.scenario


def test_a_version_of_a_peer_inherits_its_deviations(tmp_path):
    table = [deviations.Deviation("23/framing/*", "libzmq", "server", "no reserved-bit check")]
    wire = [deviations.WireDeviation("curve-message-frame", "libzmq", "MESSAGE in a data frame")]
    families = {"libzmq": "libzmq", "libzmq-4.3.4": "libzmq", "czmq": "czmq", "impl": "impl"}
    table, wire = deviations.for_peers(table, families), deviations.for_peers(wire, families)
    assert deviations.find(table, "23/framing/x", "libzmq-4.3.4", "impl") is not None
    assert deviations.find(table, "23/framing/x", "czmq", "impl") is None  # another implementation
    assert deviations.find_wire(wire, "curve-message-frame", "libzmq-4.3.4", "28/x") is not None
    assert deviations.find_wire(wire, "curve-message-frame", "impl", "28/x") is None


def test_the_registry_gives_each_peer_a_family(tmp_path):
    from zmtp_conformance import peers

    reg = tmp_path / "peers.yaml"
    reg.write_text("peers:\n  libzmq:\n    command: [x]\n  libzmq-4.3.4:\n    command: [y]\n    family: libzmq\n")
    specs = peers.load_registry(reg)
    assert (specs["libzmq"].family, specs["libzmq-4.3.4"].family) == ("libzmq", "libzmq")
