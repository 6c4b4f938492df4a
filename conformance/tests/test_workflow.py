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
    assert f"--shard ${{{{ matrix.shard }}}}/{n}" in run
    merge = " ".join(step.get("run", "") for step in wf["jobs"]["merge"]["steps"])
    assert all(f"reports/shard-{i}" in merge for i in shards)
    assert wf["jobs"]["merge"]["if"] == "always()"  # a failing shard is still merged and reported
