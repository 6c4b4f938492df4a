"""Known stalls: declared per peer, recognised in a cell's capture, run again, never excused."""

from __future__ import annotations

import asyncio
import functools
import json
from pathlib import Path

import pytest

from zmtp_conformance import peers, wire
from zmtp_conformance.capture import synth
from zmtp_conformance.cells import Cell, CellResult
from zmtp_conformance.containers import images
from zmtp_conformance.plugin import run_attempts
from zmtp_conformance.report import findings, flakiness, jsonfile
from zmtp_conformance.scenario import load_all
from zmtp_conformance.vocabulary import Outcome

STALL = (
    "    known_stalls:\n"
    "      - id: poller-race\n"
    "        side: client\n"
    "        upstream: upstream PR 1\n"
    "        cause: the poller cancels the key the new connection registers\n"
)
SIGNATURE = b"\xff" + bytes(8) + b"\x7f"
GREETING = SIGNATURE + b"\x03\x00NULL" + bytes(16) + b"\x00" + bytes(31)


# -- the declaration -------------------------------------------------------------------------


def registry(tmp_path: Path, stalls: str = STALL) -> Path:
    reg = tmp_path / "peers.yaml"
    reg.write_text("peers:\n  slowjava:\n    command: [x]\n" + stalls + "  other:\n    command: [y]\n")
    return reg


def test_a_peer_declares_its_known_stalls(tmp_path):
    specs = peers.load_registry(registry(tmp_path))
    (stall,) = specs["slowjava"].known_stalls
    assert (stall.id, stall.side, stall.upstream) == ("poller-race", "client", "upstream PR 1")
    assert specs["other"].known_stalls == ()


@pytest.mark.parametrize(
    "change, message",
    [
        (("        side: client\n", "        side: server\n"), "side must be client, not 'server'"),
        (("        upstream: upstream PR 1\n", ""), "lacks upstream"),
        (("        cause: the poller", "        colour: red\n        cause: the poller"), "unknown key(s) colour"),
        (("        cause: the poller cancels the key the new connection registers\n", '        cause: "a\\nb"\n'), "one non-empty line"),
        (("      - id: poller-race\n", "      - id: ''\n"), "id must be one non-empty line"),
    ],
)
def test_a_bad_known_stall_is_refused_naming_the_file_and_peer(tmp_path, change, message):
    reg = registry(tmp_path, STALL.replace(*change))
    with pytest.raises(SystemExit) as exc:
        peers.load_registry(reg)
    assert str(reg) in str(exc.value) and "'slowjava'" in str(exc.value) and message in str(exc.value)


def test_known_stalls_must_be_a_list_and_ids_unique(tmp_path):
    with pytest.raises(SystemExit, match="known_stalls must be a list"):
        peers.load_registry(registry(tmp_path, "    known_stalls: {id: x}\n"))
    twice = STALL + STALL.replace("    known_stalls:\n", "")
    with pytest.raises(SystemExit, match="id 'poller-race' is used twice"):
        peers.load_registry(registry(tmp_path, twice))


def test_the_version_matrix_checks_known_stalls_too(tmp_path):
    good = tmp_path / "versions.yaml"
    entry = '{image: "x:1", family: jeromq, known_stalls: [{id: r, side: client, upstream: u, cause: c}]}'
    good.write_text(f"peers:\n  jeromq-0.6.0: {entry}\n")
    assert [s.id for s in images.registry(good)["jeromq-0.6.0"].known_stalls] == ["r"]
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"peers:\n  jeromq-0.6.0: {entry.replace('side: client', 'side: both')}\n")
    with pytest.raises(images.ImageError) as exc:
        images.load(bad)
    assert str(bad) in str(exc.value) and "side must be client" in str(exc.value)


def test_jeromq_0_6_declares_its_connect_stall_under_both_backends():
    local = peers.load_registry()["jeromq"].known_stalls
    docker = images.registry()
    assert [s.id for s in local] == ["jeromq-poller-connect-race"]
    assert docker["jeromq-0.6.0"].known_stalls == local
    assert "1022" in local[0].upstream
    # JeroMQ 0.3.6 (ZMTP 2.0, another code base) has no such stall, and no other peer declares one.
    assert [n for n, spec in docker.items() if spec.known_stalls] == ["jeromq-0.6.0"]


# -- the classification, from a capture ------------------------------------------------------


def capture(tmp_path: Path, name: str, chunks: list[tuple[str, bytes, float]], client: str) -> wire.WireResult:
    path = tmp_path / f"{name}.pcap"
    synth.write_conversation(path, chunks, client=("127.0.0.1", 40001), server=("127.0.0.1", 5555))
    result = wire.WireResult("proxy", str(path))
    result.streams, result.findings, result.incomplete, result.silent = wire.check(
        path, {}, {0: client, 5555: "impl"}, "28/x", []
    )
    return result


def declared(tmp_path: Path) -> dict[str, peers.PeerSpec]:
    return peers.load_registry(registry(tmp_path))


def test_a_silent_client_of_a_declared_peer_is_its_known_stall(tmp_path):
    specs = declared(tmp_path)
    silent = capture(tmp_path, "silent", [("s", GREETING, 1.0)], "slowjava")
    assert wire.declared_stall("slowjava", silent, specs["slowjava"]).id == "poller-race"


def test_a_silent_client_of_a_raw_server_that_waits_for_it_is_its_known_stall(tmp_path):
    # The raw server was scripted to wait for the client's first octets (37/legacy scenarios), so
    # no signature reached the client; it still owed its greeting on connecting.
    specs = declared(tmp_path)
    path = tmp_path / "waiting.pcap"
    synth.write_conversation(path, [], client=("127.0.0.1", 40001), server=("127.0.0.1", 5555))
    result = wire.WireResult("proxy", str(path))
    result.streams, result.findings, result.incomplete, result.silent = wire.check(
        path, {}, {0: "slowjava", 5555: wire.HARNESS}, "37/x", []
    )
    assert wire.declared_stall("slowjava", result, specs["slowjava"]).id == "poller-race"
    # Against a peer server that sent nothing either, the silence proves nothing of the client.
    assert capture(tmp_path, "both-mute", [], "slowjava").silent == []


def test_a_partial_greeting_is_not_a_stall(tmp_path):
    specs = declared(tmp_path)
    partial = capture(tmp_path, "partial", [("s", GREETING, 1.0), ("c", SIGNATURE[:5], 1.1)], "slowjava")
    assert partial.silent == [] and wire.declared_stall("slowjava", partial, specs["slowjava"]) is None


def test_a_client_that_spoke_only_as_the_cell_gave_up_is_its_known_stall(tmp_path):
    # Seen with JeroMQ 0.6.0: its first 11 octets 2.1 s after the server's signature, at teardown.
    specs = declared(tmp_path)
    late = capture(tmp_path, "late", [("s", GREETING, 1.0), ("c", SIGNATURE + b"\x03", 3.1)], "slowjava")
    assert wire.declared_stall("slowjava", late, specs["slowjava"]).id == "poller-race"
    # just under SILENT_FOR: an answer, if a slow one
    slow = capture(tmp_path, "slow", [("s", GREETING, 1.0), ("c", SIGNATURE, 1.0 + wire.SILENT_FOR - 0.1)], "slowjava")
    assert slow.silent == [] and wire.declared_stall("slowjava", slow, specs["slowjava"]) is None


def test_a_silent_server_is_not_a_stall(tmp_path):
    specs = declared(tmp_path)
    # The declared peer connected and greeted; the other side never answered.
    mute = capture(tmp_path, "mute", [("c", GREETING, 1.0)], "slowjava")
    assert mute.silent == [] and wire.declared_stall("slowjava", mute, specs["slowjava"]) is None


def test_a_silent_client_of_an_undeclared_peer_is_not_a_known_stall(tmp_path):
    specs = declared(tmp_path)
    silent = capture(tmp_path, "other", [("s", GREETING, 1.0)], "other")
    assert silent.silent == ["other"]  # seen, and a finding (findings.py), but nothing to rerun
    assert wire.declared_stall("other", silent, specs["other"]) is None


def test_without_a_capture_there_is_no_stall_to_see(tmp_path):
    specs = declared(tmp_path)
    assert wire.declared_stall("slowjava", None, specs["slowjava"]) is None  # --pcap off
    lost = wire.WireResult("tcpdump", error="tcpdump died", silent=["slowjava"])
    assert wire.declared_stall("slowjava", lost, specs["slowjava"]) is None


# -- the reruns -------------------------------------------------------------------------------


@functools.cache
def cell() -> Cell:
    sc = next(s for s in load_all() if s.id == "28/req-rep/round-trip")
    return Cell(sc, "impl", "slowjava", "tcp", "NULL")


def attempts(*outcomes: str) -> tuple[list[int], object]:
    """An attempt function playing these outcomes in turn: 'stall', 'failed', 'deviates', 'passed'."""
    made: list[int] = []

    async def attempt(n: int) -> CellResult:
        made.append(n)
        what = outcomes[n - 1]
        r = CellResult(cell(), Outcome.PASSED if what == "stall" else Outcome(what))
        r.wire = wire.WireResult("proxy", f"/tmp/c{n}.pcap")
        if what == "stall":
            r.outcome, r.reason = Outcome.FAILED, "step 1 expect: received nothing within 2s"
            r.wire.silent = ["slowjava"]
        elif what != "passed":
            r.reason = f"step 3 {what} another way"
        return r

    return made, attempt


def rerun(tmp_path: Path, *outcomes: str) -> tuple[list[int], CellResult]:
    spec = declared(tmp_path)["slowjava"]
    made, attempt = attempts(*outcomes)
    result = asyncio.run(run_attempts(attempt, lambda r: wire.declared_stall("slowjava", r.wire, spec)))
    return made, result


def test_a_stalled_cell_that_passes_on_its_rerun_is_passed_with_the_stall_named(tmp_path):
    made, r = rerun(tmp_path, "stall", "passed")
    assert made == [1, 2] and r.outcome == Outcome.PASSED
    assert (r.stall, r.attempts, r.stalled_attempts) == ("poller-race", 2, 1)
    assert "after the known stall poller-race" in r.reason and "c1.stalled-1.pcap" in r.reason
    rec = r.record()
    assert (rec["stall"], rec["attempts"], rec["stalled_attempts"]) == ("poller-race", 2, 1)


def test_a_stall_on_every_attempt_fails_the_cell(tmp_path):
    made, r = rerun(tmp_path, "stall", "stall", "stall")
    assert made == [1, 2, 3] and r.outcome == Outcome.FAILED
    assert (r.attempts, r.stalled_attempts) == (3, 3) and "all 3 attempts stalled" in r.reason


def test_a_rerun_that_fails_another_way_is_judged_as_it_failed(tmp_path):
    made, r = rerun(tmp_path, "stall", "failed")
    assert made == [1, 2] and r.outcome == Outcome.FAILED and r.reason.startswith("step 3 failed another way")
    assert (r.stall, r.stalled_attempts) == ("poller-race", 1)
    made, r = rerun(tmp_path, "stall", "stall", "deviates")
    assert made == [1, 2, 3] and r.outcome == Outcome.DEVIATES and r.stalled_attempts == 2


def test_a_failure_without_a_stall_is_not_run_again(tmp_path):
    made, r = rerun(tmp_path, "failed", "passed")
    assert made == [1] and r.outcome == Outcome.FAILED and r.stall == ""
    assert "stall" not in r.record()
    made, r = rerun(tmp_path, "passed")
    assert made == [1] and r.outcome == Outcome.PASSED and r.reason == ""


# -- the reports -------------------------------------------------------------------------------


def record(cid: str, client: str, outcome: str, *, stall: tuple[int, int] | None = None, silent=False, capture=True):
    rec = {
        "id": f"{cid}[impl-{client}-tcp-NULL]", "scenario": cid, "title": "t", "rfc": [], "level": "MUST",
        "server": {"peer": "impl", "versions": {}, "family": "impl"},
        "client": {"peer": client, "versions": {}, "family": client.split("-")[0]},
        "transport": "tcp", "mechanism": "NULL", "outcome": outcome, "reason": "", "expected": None,
        "seen": None, "step": None, "action": None, "deviation": None, "duration": 0.1,
        "capture": {"method": "proxy", "file": "x.pcap", "streams": 1, "violations": [], "incomplete": [],
                    "silent": [client] if silent else [], "error": None} if capture else None,
        "measurements": {},
    }
    if stall:
        rec.update(stall="jeromq-poller-connect-race", attempts=stall[0], stalled_attempts=stall[1])
    return rec


RUN = [
    record("28/a", "jeromq-0.6.0", "passed"),
    record("28/b", "jeromq-0.6.0", "passed", stall=(2, 1)),
    record("28/c", "jeromq-0.6.0", "failed", stall=(3, 3), silent=True),
    record("28/d", "jeromq-0.6.0", "unsupported"),
    # Stalled, then its rerun got as far as an op the agent lacks: it connected all the same.
    record("28/f", "jeromq-0.6.0", "unsupported", stall=(2, 1)),
    # Stalled on a connection the scenario did not need: counted, though the cell passed.
    record("28/g", "jeromq-0.6.0", "passed", silent=True),
    record("28/e", "jeromq-0.6.0", "failed", capture=False),  # --pcap off: nothing to tell
    record("28/a", "zmq4", "failed", silent=True),
    record("28/b", "zmq4", "passed"),
    record("28/a", "libzmq", "passed"),
]


def test_matrix_json_lists_cells_passed_after_a_stall_apart_from_flaky_ones(tmp_path):
    jsonfile.write(tmp_path / "matrix.json", {"generated": "2026-01-01T00:00:00Z"}, RUN)
    doc = json.loads((tmp_path / "matrix.json").read_text())
    assert doc["meta"]["stalls"] == {"28/b[impl-jeromq-0.6.0-tcp-NULL]": "jeromq-poller-connect-race"}
    assert doc["meta"]["flaky"] == [] and jsonfile.problems(doc) == []
    doc["cells"][1]["stall"] = ""  # a stall must name its id
    assert jsonfile.problems(doc)
    run = flakiness.read_run(tmp_path)
    lines = flakiness.trend([run])
    assert "0 flaky of 10 cells, 1 passed after a known stall" in lines[0]
    assert "known stall jeromq-poller-connect-race, cells that passed on a rerun: r1: 1" in lines
    # A reviewed upstream stall does not break the streak of runs without a flaky cell.
    assert flakiness.clean_streak([run]) == 1


def test_findings_show_each_peers_stall_rate():
    rates = {r.peer: r for r in findings.stall_rates(RUN, {"known_stalls": {"jeromq-0.6.0": ["jeromq-poller-connect-race"]}})}
    jeromq = rates["jeromq-0.6.0"]
    # 28/a, b, c, f, g connected (d was unsupported, e had no capture): 1 + 2 + 3 + 2 + 1 attempts,
    # 1 + 3 + 1 + 1 stalled.
    assert (jeromq.cells, jeromq.attempts, jeromq.stalled, jeromq.rescued, jeromq.failed) == (5, 9, 6, 1, 1)
    assert "6 stalled attempt(s) of 9 in the 5 cell(s)" in str(jeromq)
    # A peer that stalled without declaring it is shown too, with its cells; one that never stalled is not.
    assert (rates["zmq4"].declared, rates["zmq4"].cells, rates["zmq4"].stalled) == ([], 2, 1)
    assert "libzmq" not in rates
    # A declared stall that did not show (fixed upstream) reads as zero.
    clean = findings.stall_rates([record("28/a", "jeromq-0.6.0", "passed")], {"known_stalls": {"jeromq-0.6.0": ["x"]}})
    assert [(r.peer, r.stalled, r.cells, r.rate) for r in clean] == [("jeromq-0.6.0", 0, 1, 0.0)]
    # `findings --implementation zmq4` names a family: the rates of that family's peers only.
    known = {"known_stalls": {"jeromq-0.6.0": ["jeromq-poller-connect-race"]}}
    assert [r.peer for r in findings.stall_rates(RUN, known, ["zmq4"])] == ["zmq4"]
    assert [r.peer for r in findings.stall_rates(RUN, known, ["jeromq"])] == ["jeromq-0.6.0"]


def test_the_findings_page_has_the_stall_rates(tmp_path):
    meta = {"generated": "now", "known_stalls": {"jeromq-0.6.0": ["jeromq-poller-connect-race"]}}
    page = tmp_path / "findings.html"
    findings.write_html(page, findings.collect(RUN, meta), meta, RUN)
    text = page.read_text()
    assert "id='stalls'" in text and "<td>jeromq-0.6.0</td><td>jeromq-poller-connect-race</td><td>6</td><td>9</td>" in text


def test_the_matrix_page_shows_a_cell_passed_after_a_stall_like_a_flaky_one(tmp_path):
    from zmtp_conformance.report import html

    html.write(tmp_path / "matrix.html", {"generated": "now", "machine": {}}, RUN)
    page = (tmp_path / "matrix.html").read_text()
    assert "passed (known stall jeromq-poller-connect-race)</b> 28/b[impl-jeromq-0.6.0-tcp-NULL]" in page
    # A plain passed cell gets no such entry.
    assert "<details class='result outcome-passed' id='28/b[impl-jeromq-0.6.0-tcp-NULL]'>" in page
    assert "<details class='result outcome-passed' id='28/a[impl-jeromq-0.6.0-tcp-NULL]'>" not in page
