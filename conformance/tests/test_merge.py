"""`zmtp-conformance merge`: shards of one run merge into the whole; anything else is refused."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# The pipeline scenarios without the fault ones, which spend seconds waiting for reconnections.
SELECT = ["--peers", "impl,libzmq", "--scenario", "28/req-rep", "--scenario", "30/p*"]
# The module's fixture runs the matrix four times (three shards and the whole).
pytestmark = pytest.mark.timeout(300)


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "zmtp_conformance.cli", *args], capture_output=True, text=True, cwd=ROOT
    )


def run(out: Path, *extra: str) -> None:
    proc = cli("run", *SELECT, *extra, "--report-dir", str(out), "--no-progress", "--pcap", "proxy")
    assert proc.returncode == 0, proc.stdout[-1500:] + proc.stderr[-1500:]


def outcomes(d: Path) -> dict[str, str]:
    return {c["id"]: c["outcome"] for c in json.loads((d / "matrix.json").read_text())["cells"]}


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> tuple[Path, list[Path]]:
    base = tmp_path_factory.mktemp("shards")
    parts = [base / f"shard-{i}" for i in (1, 2, 3)]
    for i, d in enumerate(parts, 1):
        run(d, "--shard", f"{i}/3")
    run(base / "whole")
    return base, parts


def test_three_shards_merged_equal_the_whole_run(shards):
    base, parts = shards
    proc = cli("merge", *map(str, parts), "--output", str(base / "merged"))
    assert proc.returncode == 0, proc.stderr
    merged, whole = outcomes(base / "merged"), outcomes(base / "whole")
    assert merged == whole and len(merged) > 20
    assert all(outcomes(p) for p in parts)  # every shard had cells of its own
    meta = json.loads((base / "merged" / "matrix.json").read_text())["meta"]
    assert [m["shard"] for m in meta["merged_from"]] == ["1/3", "2/3", "3/3"]
    # Allure results and captures of every shard come along.
    n_results = sum(len(list((p / "allure-results").glob("*-result.json"))) for p in parts)
    assert len(list((base / "merged" / "allure-results").glob("*-result.json"))) == n_results
    assert len(list((base / "merged" / "captures").glob("*.pcap"))) == len(merged)
    assert (base / "merged" / "matrix.html").exists()


def test_runs_of_different_scenario_sets_are_refused(shards, tmp_path):
    _, parts = shards
    other = tmp_path / "other"
    proc = cli(
        "run", "--peers", "impl", "--scenario", "31", "--report-dir", str(other), "--no-progress", "--pcap", "off"
    )
    assert proc.returncode == 0
    proc = cli("merge", str(parts[0]), str(other), "--output", str(tmp_path / "m"))
    assert proc.returncode == 2 and "different scenario sets" in proc.stderr


def test_a_cell_in_two_folders_is_refused(shards, tmp_path):
    base, parts = shards
    proc = cli("merge", str(parts[0]), str(base / "whole"), "--output", str(tmp_path / "m"))
    assert proc.returncode == 2 and "is in both" in proc.stderr


def test_a_folder_without_a_matrix_is_named(tmp_path):
    proc = cli("merge", str(tmp_path), "--output", str(tmp_path / "m"))
    assert proc.returncode == 2 and "has no matrix.json" in proc.stderr


def test_a_failed_cell_fails_the_merge(tmp_path):
    proc = cli(
        "run", "--peers", "impl", "--scenario", "37/socket-type/mismatch-error-command/pull-vs-sub",
        "--peer-args", "impl=--bug=skip_socket_type_check", "--report-dir", str(tmp_path / "a"),
        "--no-progress", "--pcap", "off",
    )  # fmt: skip
    assert proc.returncode == 1
    proc = cli("merge", str(tmp_path / "a"), "--output", str(tmp_path / "m"))
    assert proc.returncode == 1 and "failed: 37/socket-type" in proc.stderr


def test_runs_on_different_backends_are_refused(tmp_path):
    from zmtp_conformance.report import jsonfile, merge

    meta = {"scenario_set": {"count": 1}, "peers": ["impl"], "backend": "local"}
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
    jsonfile.write(tmp_path / "a" / "matrix.json", meta, [])
    jsonfile.write(tmp_path / "b" / "matrix.json", {**meta, "backend": "docker"}, [])
    with pytest.raises(merge.MergeError, match="different backends"):
        merge.merge([tmp_path / "a", tmp_path / "b"], tmp_path / "out")


def test_pair_with_keeps_only_cells_with_one_of_those_peers(tmp_path):
    proc = cli(
        "run", "--peers", "impl,libzmq", "--pair-with", "libzmq", "--scenario", "28/req-rep/round-trip",
        "--report-dir", str(tmp_path / "p"), "--no-progress", "--pcap", "off",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-1500:]
    pairs = {
        (c["server"]["peer"], c["client"]["peer"])
        for c in json.loads((tmp_path / "p/matrix.json").read_text())["cells"]
    }
    assert pairs == {("impl", "libzmq"), ("libzmq", "impl"), ("libzmq", "libzmq")}


def test_a_provisional_peers_failures_show_but_do_not_fail_the_run(tmp_path):
    registry = tmp_path / "peers.yaml"
    registry.write_text(
        "peers:\n"
        "  impl:\n    command: ['{python}', '-m', 'zmtp_conformance.agents.impl_agent']\n"
        "  newcomer:\n    command: ['{python}', '-m', 'zmtp_conformance.agents.impl_agent', '--bug', 'skip_socket_type_check']\n"
        "    provisional: findings being triaged\n"
    )
    args = ["--scenario", "37/socket-type/mismatch-error-command/pull-vs-sub", "--no-progress", "--pcap", "off"]
    proc = cli(
        "run", "--peers", "newcomer", *args, "--report-dir", str(tmp_path / "a"), "--", "--registry", str(registry),
        "--reruns", "1",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-1500:]
    assert "rerun" not in proc.stdout  # a newcomer's failures are findings, not flakes to retry
    doc = json.loads((tmp_path / "a/matrix.json").read_text())
    assert {c["outcome"] for c in doc["cells"]} == {"failed"}  # still failed in the record
    assert doc["meta"]["provisional_peers"] == {"newcomer": "findings being triaged"}
    # The same misbehaviour in a peer that is not provisional fails the run.
    proc = cli("run", "--peers", "impl", *args, "--peer-args", "impl=--bug=skip_socket_type_check",
               "--report-dir", str(tmp_path / "b"), "--", "--registry", str(registry))  # fmt: skip
    assert proc.returncode == 1


def test_a_runs_matrix_json_follows_its_schema_and_a_wrong_one_is_named(shards, tmp_path):
    from zmtp_conformance.report import jsonfile

    base, _ = shards
    doc = json.loads((base / "whole" / "matrix.json").read_text())
    assert jsonfile.problems(doc) == []
    doc["cells"][0]["outcome"] = "sort of passed"
    doc["cells"][1]["server"]["colour"] = "red"
    found = jsonfile.problems(doc)
    assert any("cells/0/outcome" in p for p in found) and any("cells/1/server" in p for p in found)
    bad = tmp_path / "matrix.json"
    bad.write_text(json.dumps(doc))
    with pytest.raises(SystemExit, match=r"is not a matrix\.json this version writes"):
        jsonfile.read(bad)
