"""Requirement coverage: the counts, the gate, levels against covered keywords, outcomes per peer, the page."""

from __future__ import annotations

import json

from zmtp_conformance import coverage
from zmtp_conformance import requirements as q
from zmtp_conformance.cli import main
from zmtp_conformance.report import coveragepage
from zmtp_conformance.scenario import Scenario, load_all

# Scenarios whose level the requirements they cover do not back, reviewed: each says why it stays.
# The level test fails on a mismatch not listed here and on an entry here that no longer mismatches.
LEVEL_EXCEPTIONS = {
    "26/curve/unknown-client-key-refused": (
        "RFC 26 states client authentication only as a MAY (26/the-initiate-command/11); the refusal the "
        "scenario checks has no MUST sentence of its own, and 26/the-initiate-command/12 (no reply but the "
        "close) is more than it checks"
    ),
}


def req(rid: str, keyword: str, untestable: str | None = None) -> q.Requirement:
    rfc_number, section, _ = rid.split("/")
    return q.Requirement(
        rid, rfc_number, section, section.title(), keyword, f"it {keyword} hold", ("peer",), untestable
    )


def scenario(sid: str, covers: list[str] | None, level: str = "MUST", tags: list[str] | None = None) -> Scenario:
    return Scenario(
        id=sid,
        title=sid,
        rfc=["99/TEST"],
        requirement="x",
        roles={},
        steps=[],
        path=f"{sid}.yaml",
        level=level,
        tags=tags or [],
        covers=covers,
    )


INVENTORY = {
    r.id: r
    for r in (
        req("99/a/1", "MUST"),
        req("99/a/2", "SHALL NOT"),
        req("99/a/3", "SHOULD"),
        req("99/b/1", "MAY"),
        req("99/b/2", "REQUIRED", untestable="an API rule"),
        req("98/c/1", "MUST"),
    )
}


def test_counts_for_a_tiny_inventory():
    scenarios = [
        scenario("99/x/one", ["99/a/1", "99/a/3"]),
        scenario("99/x/two", ["99/a/1"], tags=["corpus:3"]),
        scenario("99/x/bare", []),
        scenario("99/x/unreviewed", None),
    ]
    cov = coverage.collect(INVENTORY, scenarios, {"99/a/2": "a scenario sending twice", "98/c/1": "later"})
    doc = cov.to_dict()
    assert doc["totals"]["requirements"] == 6
    assert {k: doc["rfcs"]["99"][k] for k in ("requirements", "covered", "untestable", "uncovered", "known_gaps")} == {
        "requirements": 5,
        "covered": 2,
        "untestable": 1,
        "uncovered": 2,
        "known_gaps": 1,
    }
    assert doc["rfcs"]["99"]["by_force"]["MUST"] == {
        "requirements": 3,
        "covered": 1,
        "untestable": 1,
        "uncovered": 1,
        "known_gaps": 1,
    }
    assert doc["rfcs"]["99"]["by_force"]["SHOULD"]["covered"] == 1
    assert doc["rfcs"]["99"]["by_force"]["MAY"]["uncovered"] == 1
    by_id = {r["id"]: r for r in doc["requirements"]}
    assert by_id["99/a/1"]["scenarios"] == ["99/x/one", "99/x/two"]
    assert by_id["99/a/2"]["status"] == "uncovered" and by_id["99/a/2"]["known_gap"] == "a scenario sending twice"
    assert by_id["99/b/2"]["status"] == "untestable"
    assert doc["corpus"]["3"] == ["99/x/two"] and doc["corpus"]["1"] == [] and len(doc["corpus"]) == 31
    assert doc["scenarios_without_covers"] == ["99/x/unreviewed"]
    assert doc["must_scenarios_covering_nothing"] == ["99/x/bare"]
    assert doc["problems"] == []


def test_the_gate_fails_on_an_uncovered_must_that_is_not_a_known_gap():
    cov = coverage.collect(INVENTORY, [scenario("99/x/one", ["99/a/1"])], {"98/c/1": "later"})
    problems = cov.problems()
    assert len(problems) == 1
    assert problems[0].startswith("99/a/2 (SHALL NOT) is neither covered by a scenario nor marked untestable")


def test_the_gate_fails_on_a_stale_known_gap():
    gaps = {"99/a/1": "old note", "99/a/2": "x", "98/c/1": "x", "99/zz/1": "gone", "99/a/3": "a SHOULD"}
    problems = coverage.collect(INVENTORY, [scenario("99/x/one", ["99/a/1"])], gaps).problems()
    assert "known gap 99/a/1 is now covered by 99/x/one: remove it from known_gaps in overrides.yaml" in problems
    assert any(p.startswith("known gap 99/zz/1 is not a requirement") for p in problems)
    assert any(p.startswith("known gap 99/a/3 is a SHOULD") for p in problems)
    assert len(problems) == 3


def test_the_gate_fails_on_a_covered_requirement_marked_untestable():
    cov = coverage.collect(INVENTORY, [scenario("99/x/api", ["99/b/2"])], {"99/a/1": "x", "99/a/2": "x", "98/c/1": "x"})
    assert cov.problems() == [
        "99/b/2 is marked untestable (an API rule) but 99/x/api cover it: "
        "remove the untestable entry from overrides.yaml or the id from the scenario"
    ]


def test_the_gate_passes_on_the_committed_inventory_and_scenarios():
    """CI fails here on a new uncovered MUST/SHALL, or on a known gap a scenario now covers."""
    overrides = q.Overrides.load()
    cov = coverage.collect(q.load(), load_all(), overrides.known_gaps)
    assert cov.problems() == []


def level_problems(cov: coverage.Coverage) -> list[str]:
    mismatched = {line.split(":", 1)[0]: line for line in cov.level_mismatches()}
    by_path = {sc.path: sc.id for sc in cov.scenarios}
    out = [line for path, line in mismatched.items() if by_path[path] not in LEVEL_EXCEPTIONS]
    listed = {by_path[p] for p in mismatched}
    out += [
        f"{sid} is listed in LEVEL_EXCEPTIONS but its level now matches"
        for sid in LEVEL_EXCEPTIONS
        if sid not in listed
    ]
    return out


def test_every_level_is_a_force_of_the_requirements_the_scenario_covers():
    """A scenario at MUST/SHALL covers a MUST/SHALL requirement, at SHOULD a SHOULD, at MAY a MAY; interop is exempt."""
    cov = coverage.collect(q.load(), load_all())
    assert level_problems(cov) == []


def test_the_level_check_can_fail():
    scenarios = [
        scenario("99/x/must-on-may", ["99/b/1"], level="MUST"),
        scenario("99/x/shall-on-must", ["99/a/1"], level="SHALL"),
        scenario("99/x/should-on-must", ["99/a/1"], level="SHOULD"),
        scenario("99/x/interop", ["99/b/1"], level="interop"),
    ]
    lines = coverage.collect(INVENTORY, scenarios).level_mismatches()
    assert lines == [
        "99/x/must-on-may.yaml: level MUST, but the requirements it covers say only MAY",
        "99/x/should-on-must.yaml: level SHOULD, but the requirements it covers say only MUST",
    ]


def cell(sid: str, server: str, client: str, outcome: str) -> dict:
    return {"scenario": sid, "server": {"peer": server}, "client": {"peer": client}, "outcome": outcome}


def test_outcomes_per_peer_come_from_the_covering_scenarios_cells():
    records = [
        cell("99/x/one", "libzmq-4.3.5", "raw", "passed"),
        cell("99/x/one", "impl", "libzmq-4.3.5", "passed"),
        cell("99/x/two", "impl", "impl", "deviates"),
        cell("99/x/two", "impl", "raw", "failed"),
        cell("99/x/other", "impl", "raw", "failed"),
    ]
    scenarios = [scenario("99/x/one", ["99/a/1"]), scenario("99/x/two", ["99/a/1", "99/a/3"])]
    cov = coverage.collect(INVENTORY, scenarios, records=records)
    by_id = {r["id"]: r for r in cov.to_dict()["requirements"]}
    assert by_id["99/a/1"]["outcomes"] == {
        "impl": {"passed": 1, "failed": 1, "deviates": 1},
        "libzmq-4.3.5": {"passed": 2},
    }
    assert by_id["99/a/3"]["outcomes"] == {"impl": {"failed": 1, "deviates": 1}}
    assert "outcomes" not in by_id["99/b/1"]


def test_the_page_shows_known_gaps_as_uncovered_and_links_the_matrix(tmp_path):
    records = [cell("99/x/one", "impl", "raw", "passed")]
    cov = coverage.collect(
        INVENTORY, [scenario("99/x/one", ["99/a/1"])], {"99/a/2": "a scenario <sending> twice"}, records
    )
    (tmp_path / "matrix.html").write_text("<html></html>")
    page = tmp_path / "coverage.html"
    coveragepage.write(page, cov.to_dict())
    text = page.read_text()
    assert "<tr class='uncovered' id='99/a/2'><td class='status'>known gap</td>" in text
    assert "known gap: a scenario &lt;sending&gt; twice" in text
    assert "<tr class='covered' id='99/a/1'>" in text and "1 passed" in text
    assert "href='matrix.html'" in text
    assert "98/c/1 (MUST) is neither covered" in text  # the gate's failure is on the page
    assert "<script" not in text and "src=" not in text and "http" not in text  # opens from file://, no assets


def test_the_cli_writes_coverage_json_and_html_and_gates(tmp_path, capsys):
    assert main(["coverage", "--report-dir", str(tmp_path), "--check"]) == 0
    doc = json.loads((tmp_path / "coverage.json").read_text())
    assert doc["problems"] == [] and doc["totals"]["requirements"] == len(q.load())
    assert (tmp_path / "coverage.html").read_text().startswith("<!doctype html>")
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == [
        "RFC",
        "force",
        "reqs",
        "covered",
        "untestable",
        "uncovered",
        "known",
        "gaps",
    ]
    assert main(["coverage", "--report-dir", str(tmp_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["totals"] == doc["totals"]


def test_a_mechanism_rfc_requirement_counts_only_cells_under_that_mechanism_and_needs_it():
    inventory = {"26/hello/1": req("26/hello/1", "SHALL"), "99/a/1": req("99/a/1", "MUST")}
    both = scenario("99/x/both", ["26/hello/1", "99/a/1"])
    both.mechanisms = ["NULL", "CURVE"]
    records = [
        {**cell("99/x/both", "impl", "libzmq", "passed"), "mechanism": "NULL"},
        {**cell("99/x/both", "impl", "libzmq", "failed"), "mechanism": "CURVE"},
    ]
    by_id = {r["id"]: r for r in coverage.collect(inventory, [both], records=records).to_dict()["requirements"]}
    assert by_id["26/hello/1"]["outcomes"] == {"impl": {"failed": 1}, "libzmq": {"failed": 1}}
    assert by_id["99/a/1"]["outcomes"] == {"impl": {"passed": 1, "failed": 1}, "libzmq": {"passed": 1, "failed": 1}}
    null_only = scenario("99/x/null", ["26/hello/1", "99/a/1"])
    assert coverage.collect(inventory, [null_only]).problems() == [
        "99/x/null.yaml: covers 26/hello/1, a CURVE requirement, but runs only under NULL"
    ]
