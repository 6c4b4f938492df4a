"""The GitHub Actions workflow: valid against GitHub's schema, and its shards and merge agree."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / ".github" / "workflows" / "conformance.yml"


def check(path: Path) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("check-jsonschema") or str(Path(sys.executable).parent / "check-jsonschema")
    if not Path(exe).exists():
        pytest.skip("check-jsonschema is not installed (pip install check-jsonschema)")
    # The schema ships inside check-jsonschema: no network needed.
    return subprocess.run(
        [exe, "--builtin-schema", "vendor.github-workflows", str(path)], capture_output=True, text=True
    )


def test_the_workflow_is_valid():
    proc = check(WORKFLOW)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_a_typo_in_the_workflow_is_caught(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text(WORKFLOW.read_text().replace("runs-on:", "run-on:", 1))
    assert check(bad).returncode != 0


def test_every_shard_is_run_and_merged():
    wf = yaml.safe_load(WORKFLOW.read_text())
    shards = wf["jobs"]["matrix"]["strategy"]["matrix"]["shard"]
    n = len(shards)
    assert shards == list(range(1, n + 1)) and str(n) == str(wf["env"]["SHARDS"])
    run = " ".join(step.get("run", "") for step in wf["jobs"]["matrix"]["steps"])
    assert f"--shard ${{{{ matrix.shard }}}}/{n} --shard-by pairing" in run
    # The images a shard loads are the ones its pairings start, for the same --pair-with.
    assert f'images needed --pair-with "$PAIR_WITH" --shard ${{{{ matrix.shard }}}}/{n}' in run
    assert run.count('--pair-with "$PAIR_WITH"') == 2
    merge = " ".join(step.get("run", "") for step in wf["jobs"]["merge"]["steps"])
    assert all(f"reports/shard-{i}" in merge for i in shards)
    assert f"reports/shard-{n + 1}" not in merge
    assert wf["jobs"]["merge"]["if"] == "always()"  # a failing shard is still merged and reported


def test_every_image_is_built_once_and_shared_with_the_shards():
    wf = yaml.safe_load(WORKFLOW.read_text())
    jobs = wf["jobs"]
    # The docker backend runs on the runners' own engine: no job container in between.
    assert "container" not in jobs["images"] and "container" not in jobs["matrix"]
    assert jobs["images"]["strategy"]["matrix"]["peer"] == "${{ fromJSON(needs.plan.outputs.peers) }}"
    build = " ".join(step.get("run", "") for step in jobs["images"]["steps"])
    assert "images build ${{ matrix.peer }}" in build and "images save ${{ matrix.peer }}" in build
    upload = next(s for s in jobs["images"]["steps"] if s.get("uses", "").startswith("actions/upload-artifact"))
    download = next(s for s in jobs["matrix"]["steps"] if s.get("uses", "").startswith("actions/download-artifact"))
    assert upload["with"]["name"] == "image-${{ matrix.peer }}" and download["with"]["pattern"] == "image-*"
    assert "--no-build" in " ".join(step.get("run", "") for step in jobs["matrix"]["steps"])
    assert set(jobs["matrix"]["needs"]) >= {"images", "tests"}


def test_the_plan_lists_every_version_of_the_version_matrix():
    from zmtp_conformance.cli import main

    wf = yaml.safe_load(WORKFLOW.read_text())
    plan = " ".join(step.get("run", "") for step in wf["jobs"]["plan"]["steps"])
    assert "zmtp-conformance images needed --json" in plan
    versions = yaml.safe_load((ROOT / "docker" / "versions.yaml").read_text())["peers"]
    import contextlib
    import io
    import json

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["images", "needed", "--json"]) == 0
    assert json.loads(out.getvalue()) == sorted(versions)


def test_a_bench_job_records_the_benchmarks_as_an_artifact():
    wf = yaml.safe_load(WORKFLOW.read_text())
    job = wf["jobs"]["bench"]
    run = " ".join(step.get("run", "") for step in job["steps"])
    # Both option sets of zmtp's own rows, and the harness's bench against the C reference.
    assert "bench/throughput.py |" in run and "bench/throughput.py --options default" in run
    assert "zmtp-conformance bench --peers czmq," in run and "--report-dir reports" in run
    upload = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/upload-artifact"))
    kept = upload["with"]["path"].split()
    assert {"reports/bench.json", "reports/bench.html", "reports/throughput-tuned.txt"} <= set(kept)
    assert upload["with"]["if-no-files-found"] == "error"
    # A record, not a gate: nothing in it compares a timing.
    assert "--baseline" not in run
