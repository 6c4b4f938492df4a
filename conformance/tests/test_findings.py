"""Findings: failures grouped by implementation, attributed to the right side, and proposed entries that fit."""

from __future__ import annotations

import yaml

from zmtp_conformance import deviations
from zmtp_conformance.report import findings


def rec(scenario, server, client, outcome, *, step="2", action="expect_close", seen="(empty)", fam=None, dev=None):
    fam = fam or {}
    return {
        "id": f"{scenario}[{server}-{client}-tcp-NULL]",
        "scenario": scenario,
        "title": "t",
        "rfc": ["37/ZMTP#framing"],
        "level": "MUST",
        "server": {"peer": server, "family": fam.get(server, server)},
        "client": {"peer": client, "family": fam.get(client, client)},
        "outcome": outcome,
        "reason": "probe: the peer kept the connection open for 3s",
        "expected": "close",
        "seen": seen,
        "step": step,
        "action": action,
        "deviation": {"id": dev} if dev else None,
    }


def test_failures_count_against_the_implementation_not_impl_or_raw():
    records = [
        rec("23/a", "zmq4", "raw", "failed"),
        rec("23/a", "zmq4", "impl", "failed"),
        rec("23/a", "impl", "raw", "passed"),
        rec("23/b", "impl", "zmq4", "failed", step="1", action="expect"),
    ]
    found = findings.collect(records)
    assert set(found) == {"zmq4"}
    by_scenario = {(f.scenario, f.side): f for f in found["zmq4"]}
    assert len(by_scenario["23/a", "server"].cells) == 2  # one finding, seen against raw and impl
    assert by_scenario["23/a", "server"].against == {"raw", "impl"}
    assert by_scenario["23/b", "client"].step == "1"
    assert by_scenario["23/a", "server"].reproduce.endswith("--peers zmq4,impl --scenario 23/a")


def test_interop_with_libzmq_is_flagged_and_versions_group_by_family():
    fam = {"libzmq-4.3.5": "libzmq", "zmqrs-0.7.0": "zmqrs"}
    found = findings.collect([rec("28/x", "libzmq-4.3.5", "zmqrs-0.7.0", "failed", fam=fam)])
    (f,) = found["zmqrs"]
    assert f.breaks_libzmq and f.peers == {"zmqrs-0.7.0"}
    # libzmq is not the reference: the same cell counts against it too.
    assert found["libzmq"][0].against == {"zmqrs-0.7.0"}


def test_known_deviations_are_listed_but_not_open():
    found = findings.collect([rec("23/a", "czmq", "raw", "deviates", dev="libzmq-x")])
    (f,) = found["czmq"]
    assert f.outcome == "deviates" and f.deviation == "libzmq-x"
    assert "0 open finding(s), 1 reviewed" in findings.text(found)


def test_proposed_entries_load_and_fit_every_cell_they_came_from(tmp_path):
    records = [
        rec("23/a", "zmq4", "raw", "failed", seen="04 1a 05 52 45 41 44 59 aa"),
        rec("23/a", "zmq4", "impl", "failed", seen="04 1a 05 52 45 41 44 59 bb"),
    ]
    text = findings.propose(findings.collect(records))
    entries = yaml.safe_load(text)["deviations"]
    (entry,) = entries
    assert entry["upstream"].startswith("TO REVIEW")  # never pasted blind
    table = tmp_path / "d.yaml"
    table.write_text(text)
    devs = deviations.load(table)
    for r in records:
        failure = deviations.Failure(r["step"], r["action"], r["reason"], r["expected"], r["seen"])
        assert deviations.find(devs, "23/a", "zmq4", r["client"]["peer"], failure) is not None
    other = deviations.Failure("2", "expect_close", "x", "close", "ff 00")
    assert deviations.find(devs, "23/a", "zmq4", "raw", other) is None


def test_the_kill_matrix_names_every_knob_and_refuses_gaps(tmp_path):
    import pytest

    from zmtp_conformance import killmatrix

    knobs = killmatrix.load()
    assert all(k.scenarios or k.legal for k in knobs)
    text = killmatrix.TABLE.read_text()
    gap = tmp_path / "k.yaml"
    gap.write_text(text.replace("  empty_pong:\n    scenarios: [37/heartbeat/ping-echoes-context]\n", ""))
    with pytest.raises(killmatrix.KillMatrixError, match="no entry for ProtocolBugs knob"):
        killmatrix.load(gap)
    silent = tmp_path / "s.yaml"
    silent.write_text(text.replace("scenarios: [37/heartbeat/ping-echoes-context]\n", "value: true\n", 1))
    with pytest.raises(killmatrix.KillMatrixError, match="empty_pong lists no scenario"):
        killmatrix.load(silent)


def test_a_knob_is_caught_by_its_scenarios():
    from zmtp_conformance import killmatrix

    (knob,) = [k for k in killmatrix.load() if k.name == "empty_pong"]
    (r,) = killmatrix.run([knob], [])
    assert r.verdict == "caught" and r.caught


def test_the_findings_page_lists_implementations_most_open_first(tmp_path):
    records = [
        rec("23/a", "zmq4", "raw", "failed"),
        rec("23/b", "zmq4", "raw", "failed", step="1"),
        rec("23/a", "czmq", "raw", "deviates", dev="libzmq-x"),
    ]
    page = tmp_path / "findings.html"
    findings.write_html(page, findings.collect(records), {"provisional_peers": {"zmq4": "new"}})
    text = page.read_text()
    assert text.index("href='#zmq4'>zmq4</a> (provisional)") < text.index("href='#czmq'>czmq</a>")
    assert "zmq4: 2 open, 0 known" in text and "czmq: 0 open, 1 known" in text


def test_a_newcomer_is_the_suspect_against_an_established_peer():
    records = [rec("27/x", "libzmq-4.3.5", "monocoque-0.4.2", "failed")]
    meta = {"provisional_peers": {"monocoque-0.4.2": "new"}}
    assert set(findings.collect(records, meta)) == {"monocoque-0.4.2"}
    assert set(findings.collect(records)) == {"libzmq-4.3.5", "monocoque-0.4.2"}  # no newcomer: both


def test_a_peer_that_connected_and_stayed_silent_is_one_stall_finding_across_scenarios():
    def silent(r, *peers):
        r["capture"] = {"silent": list(peers)}
        return r

    fam = {"jeromq-0.6.0": "jeromq"}
    records = [
        silent(rec("28/a", "impl", "jeromq-0.6.0", "failed", step="1", action="expect", fam=fam), "jeromq-0.6.0"),
        silent(rec("49/b", "libzmq", "jeromq-0.6.0", "failed", step="3", action="expect", fam=fam), "jeromq-0.6.0"),
        rec("28/c", "impl", "jeromq-0.6.0", "failed", step="1", action="expect", fam=fam),  # spoke: its own finding
        # A silent connection in a cell a reviewed entry excused stays with that entry.
        silent(rec("28/d", "impl", "jeromq-0.6.0", "deviates", dev="jeromq-x", fam=fam), "jeromq-0.6.0"),
    ]
    found = findings.collect(records, {"provisional_peers": {"jeromq-0.6.0": "stalls"}})
    stall = [f for f in found["jeromq"] if f.title == findings.STALL_TITLE]
    (f,) = stall
    assert f.side == "client" and len(f.cells) == 2 and f.rfc == [findings.STALL_CLAUSE]
    assert {c.split("[")[0] for c in f.cells} == {"28/a", "49/b"}
    assert {x.scenario for x in found["jeromq"]} >= {"28/c", "28/d"}
    # The server side of a stalled cell is not blamed for the silence.
    assert "libzmq" not in found
    # No entry is drafted for a stall: it does not fail the same way every run.
    assert "stalled" not in findings.propose(found)
