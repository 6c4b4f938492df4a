"""The benchmark harness: agents time their own loops, figures become ratios, regressions get flagged.

Nothing here asserts a timing: the end-to-end test checks that figures exist
and reports are written, and the comparison is tested on made-up numbers.
"""

from __future__ import annotations

import asyncio
import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest

from zmtp_conformance import bench, peers
from zmtp_conformance.peers import AgentPool

ROOT = Path(__file__).resolve().parents[2]


def tiny_plan(peer_names: list[str]) -> bench.Plan:
    return bench.Plan(
        peer_names, transports=["tcp"], mechanisms=["NULL"], sizes=[64], reps=2, budget=64 * 500, rtt_count=50
    )


@pytest.fixture(scope="module")
def doc() -> dict:
    async def go():
        pool = AgentPool(peers.load_registry())
        try:
            return await bench.run(tiny_plan(["impl", "libzmq"]), pool)
        finally:
            await pool.close()

    return asyncio.run(go())


def test_every_pairing_gets_figures_from_its_agents(doc):
    rows = bench.load_rows(doc)
    assert {(r.server, r.client) for r in rows} == {(a, b) for a in ("impl", "libzmq") for b in ("impl", "libzmq")}
    assert not [r.key for r in rows if r.error]
    for r in rows:
        assert len(r.reps) == 2 and r.figure() > 0, r.key
    lat = next(r for r in rows if r.kind == "latency")
    assert lat.reps[0]["p50"] <= lat.reps[0]["p95"] <= lat.reps[0]["p99"]
    assert doc["meta"]["peer_versions"]["libzmq"]["libzmq"]


def test_ratios_are_against_libzmq_in_the_same_run(doc):
    rows = bench.load_rows(doc)
    q = bench.ratios(rows)
    ref = [k for k in q if "|libzmq|libzmq|" in k]
    assert ref and all(q[k] == pytest.approx(1.0) for k in ref)
    assert any("|impl|impl|" in k for k in q)


def test_reports_are_written_and_the_allure_result_carries_the_plots(doc, tmp_path):
    (tmp_path / "allure-results").mkdir()
    files = bench.write(doc, tmp_path)
    names = {f.name for f in files}
    assert {"bench.json", "bench.html", "bench-throughput-tcp-NULL.png", "bench-latency-tcp-NULL.png"} <= names
    page = (tmp_path / "bench.html").read_text()
    assert "impl -&gt; libzmq" in page and "x)" in page  # figures with their ratios
    (result,) = (tmp_path / "allure-results").glob("*-result.json")
    attached = json.loads(result.read_text())["attachments"]
    assert {a["type"] for a in attached} >= {"image/png", "application/json"}
    for a in attached:
        assert (tmp_path / "allure-results" / a["source"]).exists()


def test_a_regression_beyond_the_noise_is_flagged(doc):
    assert bench.compare(doc, doc) == []
    worse = copy.deepcopy(doc)
    for row in worse["rows"]:
        if row["server"] == "impl" and row["client"] == "impl" and row["kind"] == "throughput":
            for rep in row["reps"]:
                rep["msgs_per_s"] /= 3  # a third of what it was, far beyond any noise
    flagged = bench.compare(worse, doc)
    assert flagged and all("impl impl" in line for line in flagged)


def test_noise_widens_what_counts_as_a_regression():
    def doc_with(ratio_reps: list[float], ref_reps: list[float]) -> dict:
        def row(server: str, values: list[float]) -> dict:
            return {"kind": "throughput", "pattern": "PUSH/PULL", "server": server, "client": server,
                    "transport": "tcp", "mechanism": "NULL", "size": 64,
                    "reps": [{"msgs_per_s": v} for v in values]}  # fmt: skip

        return {"rows": [row("impl", ratio_reps), row("libzmq", ref_reps)]}

    base = doc_with([100, 100, 100], [200, 200, 200])
    # 20% lower with quiet repetitions: flagged; the same drop with repetitions spread by 40%: noise.
    assert bench.compare(doc_with([80, 80, 80], [200, 200, 200]), base)
    assert not bench.compare(doc_with([60, 80, 100], [200, 200, 200]), base)


def test_the_cli_compares_a_saved_run(doc, tmp_path):
    saved, worse = tmp_path / "base.json", tmp_path / "new.json"
    saved.write_text(json.dumps(doc))
    bad = copy.deepcopy(doc)
    for row in bad["rows"]:
        if row["server"] == "impl" and row["kind"] == "throughput":
            for rep in row["reps"]:
                rep["msgs_per_s"] /= 3
    worse.write_text(json.dumps(bad))
    run = [sys.executable, "-m", "zmtp_conformance.cli", "bench", "--compare-only"]
    ok = subprocess.run([*run, str(saved), "--baseline", str(saved)], capture_output=True, text=True, cwd=ROOT)
    assert ok.returncode == 0 and "no regression" in ok.stdout
    flagged = subprocess.run([*run, str(worse), "--baseline", str(saved)], capture_output=True, text=True, cwd=ROOT)
    assert flagged.returncode == 1 and "regression:" in flagged.stdout
