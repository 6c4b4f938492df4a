"""The plugin end to end (pytester) and the report writers."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from zmtp_conformance.plugin import RECORD_KEY, Recorder
from zmtp_conformance.report import html, jsonfile

ROOT = Path(__file__).resolve().parents[2]


def record(sid: str, server: str, client: str, outcome: str) -> dict:
    return {
        "id": f"{sid}[{server}-{client}-tcp-NULL]",
        "scenario": sid,
        "title": "t",
        "rfc": ["37/ZMTP"],
        "level": "MUST",
        "server": {"peer": server, "versions": {}},
        "client": {"peer": client, "versions": {}},
        "transport": "tcp",
        "mechanism": "NULL",
        "outcome": outcome,
        "reason": "because" if outcome != "passed" else "",
        "expected": "x" if outcome == "failed" else None,
        "seen": "y" if outcome == "failed" else None,
        "step": "1" if outcome == "failed" else None,
        "action": "expect" if outcome == "failed" else None,
        "deviation": None,
        "duration": 0.1,
        "capture": None,
        "measurements": {},
    }


def test_html_matrix_cells_and_colours(tmp_path):
    recs = [
        record("a", "impl", "impl", "passed"),
        record("a", "impl", "libzmq", "failed"),
        record("a", "libzmq", "impl", "deviates"),
        record("b", "libzmq", "impl", "passed"),
    ]
    out = tmp_path / "m.html"
    html.write(out, {"generated": "now", "machine": {}}, recs)
    page = out.read_text()
    cells = re.findall(r"<td class='pair (\w+)' data-server='(\w+)' data-client='(\w+)'", page)
    assert sorted(cells) == [("amber", "libzmq", "impl"), ("green", "impl", "impl"), ("red", "impl", "libzmq")]
    assert "href='#pair-impl-libzmq'" in page and "id='pair-impl-libzmq'" in page
    assert "expected: x" in page


def test_json_roundtrip(tmp_path):
    out = tmp_path / "m.json"
    jsonfile.write(out, {"k": 1}, [record("a", "impl", "impl", "passed")])
    meta, cells = jsonfile.read(out)
    assert meta == {"k": 1} and cells[0]["outcome"] == "passed"


def test_plugin_runs_a_scenario_dir_and_writes_reports(pytester):
    d = pytester.path / "scenarios"
    d.mkdir()
    shutil.copy(ROOT / "scenarios/28/req-rep-round-trip.yaml", d / "a.yaml")
    shutil.copy(ROOT / "scenarios/37/greeting/staged-signature.yaml", d / "b.yaml")
    result = pytester.runpytest("scenarios", "--peers", "impl", "--report-dir", "out", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=8)  # 2 transports x (3 mechanisms + 1 raw probe)
    doc = json.loads((pytester.path / "out/matrix.json").read_text())
    assert {c["outcome"] for c in doc["cells"]} == {"passed"}
    assert len(doc["cells"]) == 8
    assert {c["mechanism"] for c in doc["cells"]} == {"NULL", "PLAIN", "CURVE"}
    assert doc["meta"]["peer_versions"]["impl"]["zmtp"]
    result.stdout.fnmatch_lines(["*ZMTP conformance matrix*", "passed: 8*"])


def test_plugin_reports_a_missing_peer_as_skipped(pytester):
    d = pytester.path / "scenarios"
    d.mkdir()
    shutil.copy(ROOT / "scenarios/28/req-rep-round-trip.yaml", d / "a.yaml")
    reg = pytester.path / "peers.yaml"
    reg.write_text("peers:\n  ghost:\n    command: [nowhere]\n    requires: {commands: [no-such-command-here]}\n")
    result = pytester.runpytest(
        "scenarios", "--peers", "ghost", "--report-dir", "out", "-p", "no:cacheprovider", "--registry", str(reg)
    )
    result.assert_outcomes(skipped=6)
    doc = json.loads((pytester.path / "out/matrix.json").read_text())
    assert {c["outcome"] for c in doc["cells"]} == {"skipped"}
    assert "no-such-command-here" in doc["cells"][0]["reason"]


def test_plugin_names_a_bad_scenario_file(pytester):
    d = pytester.path / "scenarios"
    d.mkdir()
    (d / "bad.yaml").write_text("id: 1/x\ntitle: t\n")
    result = pytester.runpytest("scenarios", "--peers", "impl", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["*bad.yaml:1*required property*"])
    assert result.ret != 0


def test_progress_bar_replaces_the_dots(pytester):
    d = pytester.path / "scenarios"
    d.mkdir()
    shutil.copy(ROOT / "scenarios/37/greeting/staged-signature.yaml", d / "b.yaml")
    result = pytester.runpytest(
        "scenarios", "--peers", "impl", "--report-dir", "out", "-p", "no:cacheprovider", "--progress"
    )
    result.assert_outcomes(passed=2)  # pytest's own counts are intact
    assert "matrix" in result.stderr.str() and "2/2" in result.stderr.str() and "passed 2" in result.stderr.str()
    assert ".." not in "".join(line for line in result.stdout.lines if "b.yaml" in line)


class FakeReport:
    def __init__(self, rec: dict, outcome: str) -> None:
        self.user_properties = [(RECORD_KEY, json.dumps(rec))]
        self.when = "call"
        self.skipped = False
        self.outcome = outcome


def test_recorder_marks_a_cell_that_passed_on_rerun_as_flaky():
    rec = Recorder.__new__(Recorder)
    rec.records = {}
    first = {"id": "c1", "outcome": "failed", "reason": "timeout"}
    second = {"id": "c1", "outcome": "passed", "reason": ""}
    steady = {"id": "c2", "outcome": "passed", "reason": ""}
    for r, outcome in ((first, "rerun"), (second, "passed"), (steady, "passed")):
        rec.pytest_runtest_logreport(FakeReport(r, outcome))
    assert rec.records["c1"]["outcome"] == "passed"
    assert rec.records["c1"]["flaky"] is True
    assert "earlier attempt failed: timeout" in rec.records["c1"]["reason"]
    assert "flaky" not in rec.records["c2"]
