"""Flaky cells: recorded per run in matrix.json, lined up over runs by `zmtp-conformance flaky`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from zmtp_conformance.report import flakiness, jsonfile

ROOT = Path(__file__).resolve().parents[2]


def cell(cid: str, outcome: str = "passed", flaky: bool = False) -> dict:
    side = {"peer": "impl", "versions": {}, "family": "impl"}
    rec = {
        "id": cid, "scenario": cid.split("[")[0], "title": "t", "rfc": [], "level": "MUST",
        "server": side, "client": side, "transport": "tcp", "mechanism": "NULL",
        "outcome": outcome, "reason": "why" if flaky else "", "expected": None, "seen": None,
        "step": None, "action": None, "deviation": None, "duration": 0.1, "capture": None, "measurements": {},
    }
    if flaky:
        rec["flaky"] = True
    return rec


def write_run(d: Path, generated: str, flaky: list[str], cells: int = 3) -> Path:
    d.mkdir(parents=True)
    records = [cell(f"23/x/{i}[impl-impl-tcp-NULL]", flaky=f"23/x/{i}[impl-impl-tcp-NULL]" in flaky) for i in range(cells)]
    jsonfile.write(d / "matrix.json", {"generated": generated, "backend": "local", "peers": ["impl"]}, records)
    return d


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "zmtp_conformance.cli", *args], capture_output=True, text=True, cwd=ROOT)


def test_matrix_json_lists_the_flaky_cells_and_follows_its_schema(tmp_path):
    d = write_run(tmp_path / "a", "2026-01-01T00:00:00Z", ["23/x/1[impl-impl-tcp-NULL]"])
    doc = json.loads((d / "matrix.json").read_text())
    assert doc["meta"]["flaky"] == ["23/x/1[impl-impl-tcp-NULL]"]
    assert jsonfile.problems(doc) == []
    doc["meta"]["flaky"] = "23/x/1"  # not a list
    assert jsonfile.problems(doc)


def test_trend_orders_runs_by_time_and_marks_each_flaky_cell(tmp_path):
    late = write_run(tmp_path / "late", "2026-01-03T00:00:00Z", [])
    early = write_run(tmp_path / "early", "2026-01-01T00:00:00Z", ["23/x/2[impl-impl-tcp-NULL]"])
    runs = [flakiness.read_run(late), flakiness.read_run(early)]
    lines = flakiness.trend(runs)
    assert lines[0].startswith("run 1: 2026-01-01") and "1 flaky of 3" in lines[0]
    assert lines[1].startswith("run 2: 2026-01-03") and "0 flaky" in lines[1]
    row = next(line for line in lines if "23/x/2" in line)
    assert row.split("\n")[0].split() == ["x", ".", "23/x/2[impl-impl-tcp-NULL]"]
    assert row.split("\n")[1].strip() == "why"  # the reason of its last flaky attempt
    assert flakiness.clean_streak(runs) == 1


def test_flaky_require_fails_until_enough_clean_runs_in_a_row(tmp_path):
    a = write_run(tmp_path / "a", "2026-01-01T00:00:00Z", ["23/x/0[impl-impl-tcp-NULL]"])
    b = write_run(tmp_path / "b", "2026-01-02T00:00:00Z", [])
    c = write_run(tmp_path / "c", "2026-01-03T00:00:00Z", [])
    proc = cli("flaky", str(a), str(b), str(c), "--require", "3")
    assert proc.returncode == 1 and "2 clean run(s) in a row at the end, 3 required" in proc.stderr
    assert cli("flaky", str(a), str(b), str(c), "--require", "2").returncode == 0
    doc = json.loads(cli("flaky", str(a), str(b), "--json").stdout)
    assert doc["clean_streak"] == 1 and doc["runs"][0]["flaky"] == ["23/x/0[impl-impl-tcp-NULL]"]


def test_a_matrix_json_that_is_not_one_is_named(tmp_path):
    bad = tmp_path / "matrix.json"
    bad.write_text("{}")
    proc = cli("flaky", str(bad))
    assert proc.returncode == 2 and str(bad) in proc.stderr
