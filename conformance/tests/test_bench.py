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
import yaml

from zmtp_conformance import bench, benchclaims, peers
from zmtp_conformance.peers import AgentPool

ROOT = Path(__file__).resolve().parents[2]


def tiny_plan(peer_names: list[str]) -> bench.Plan:
    return bench.Plan(
        peer_names,
        transports=["tcp"],
        mechanisms=["NULL"],
        sizes=[64],
        reps=2,
        budget=64 * 500,
        rtt_count=50,
        pairings="all",
    )


@pytest.fixture(scope="module")
def doc() -> dict:
    async def go():
        pool = AgentPool(peers.load_registry())
        try:
            return await bench.run(tiny_plan(["impl", "czmq"]), pool)
        finally:
            await pool.close()

    return asyncio.run(go())


def test_every_pairing_gets_figures_from_its_agents(doc):
    rows = bench.load_rows(doc)
    assert {(r.server, r.client) for r in rows} == {(a, b) for a in ("impl", "czmq") for b in ("impl", "czmq")}
    assert not [r.key for r in rows if r.error]
    for r in rows:
        assert len(r.reps) == 2 and r.figure() > 0, r.key
    lat = next(r for r in rows if r.kind == "latency")
    assert lat.reps[0]["p50"] <= lat.reps[0]["p95"] <= lat.reps[0]["p99"]
    assert doc["meta"]["peer_versions"]["czmq"]["libzmq"]


def test_ratios_are_against_libzmq_driven_from_c_in_the_same_run(doc):
    meta = doc["meta"]
    assert meta["reference"] == "czmq" == bench.REFERENCE
    # The output names the library and version the reference is, and what each loop runs in.
    assert meta["reference_is"].startswith(f"libzmq {meta['peer_versions']['czmq']['libzmq']} driven from C")
    assert meta["loops"]["czmq"].startswith("C loop over libzmq") and meta["loops"]["impl"].startswith("Python")
    rows = bench.load_rows(doc)
    q = bench.ratios(rows)
    ref = [k for k in q if "|czmq|czmq|" in k]
    assert ref and all(q[k] == pytest.approx(1.0) for k in ref)
    assert any("|impl|impl|" in k for k in q)


def test_reports_are_written_and_the_allure_result_carries_the_plots(doc, tmp_path):
    (tmp_path / "allure-results").mkdir()
    files = bench.write(doc, tmp_path)
    names = {f.name for f in files}
    assert {"bench.json", "bench.html", "bench-throughput-tcp-NULL.png", "bench-latency-tcp-NULL.png"} <= names
    page = (tmp_path / "bench.html").read_text()
    assert "impl -&gt; czmq" in page and "x)" in page  # figures with their ratios
    assert "driven from C" in page and "Published claims" in page
    (result,) = (tmp_path / "allure-results").glob("*-result.json")
    attached = json.loads(result.read_text())["attachments"]
    assert {a["type"] for a in attached} >= {"image/png", "application/json"}
    for a in attached:
        assert (tmp_path / "allure-results" / a["source"]).exists()


def test_a_regression_beyond_the_noise_is_flagged(doc):
    assert bench.compare(doc, doc) == []
    # The measured run's repetitions can spread widely on a loaded machine, and noise that wide
    # excuses even a drop to a third: the run's rows with each repetition at its row's mean keep
    # the shape of a real document without its noise.
    doc = copy.deepcopy(doc)
    for row in doc["rows"]:
        for key in ("msgs_per_s", "mb_per_s", "p50", "p95", "p99", "mean"):
            values = [rep[key] for rep in row["reps"] if key in rep]
            for rep in row["reps"]:
                if key in rep:
                    rep[key] = sum(values) / len(values)
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


def test_a_saved_run_against_another_reference_is_not_compared():
    def doc(reference: str) -> dict:
        row = {"kind": "throughput", "pattern": "PUSH/PULL", "server": "impl", "client": "impl", "transport": "tcp",
               "mechanism": "NULL", "size": 64, "reps": [{"msgs_per_s": 100.0}]}  # fmt: skip
        return {"meta": {"reference": reference}, "rows": [row]}

    (line,) = bench.compare(doc("czmq"), doc("libzmq"))
    assert "cannot be compared" in line and "libzmq" in line
    assert bench.compare(doc("czmq"), doc("czmq")) == []


def test_the_default_plan_pairs_each_peer_with_itself_and_the_reference_and_the_full_plan_every_pairing():
    assert bench.Plan(["czmq", "impl", "monocoque"]).pairs() == [
        ("czmq", "czmq"), ("impl", "impl"), ("monocoque", "monocoque"),
        ("czmq", "impl"), ("czmq", "monocoque"), ("impl", "czmq"), ("monocoque", "czmq"),
    ]  # fmt: skip
    assert bench.Plan(["czmq", "impl"], pairings="same").pairs() == [("czmq", "czmq"), ("impl", "impl")]
    short = bench.Plan(["czmq", "monocoque"], pairings="same").rows()
    assert {(r.server, r.client) for r in short} == {("czmq", "czmq"), ("monocoque", "monocoque")}
    assert {r.transport for r in short} == {"tcp"}
    assert {(r.pattern, r.size) for r in short if r.mechanism == "NULL"} >= {
        ("PUSH/PULL", 64), ("PUSH/PULL", 1024), ("REQ/REP", 64), ("REQ/REP", 1024), ("PUB/SUB x3", 64)
    }  # fmt: skip
    full = bench.full_plan(["czmq", "monocoque"]).rows()
    assert len({(r.server, r.client) for r in full}) == 4
    assert {r.transport for r in full} == {"tcp", "ipc"} and {r.mechanism for r in full} == {"NULL", "PLAIN", "CURVE"}
    assert len(full) > 3 * len(short)


def claims_doc(runtime: str, mono_p50: float, ref_p50: float) -> dict:
    rows = [
        {"kind": "latency", "pattern": "REQ/REP", "server": p, "client": p, "transport": "tcp", "mechanism": "NULL",
         "size": 64, "reps": [{"p50": v}]}
        for p, v in (("monocoque", mono_p50), ("czmq", ref_p50))
    ]  # fmt: skip
    meta = {
        "reference": "czmq",
        "reference_is": "libzmq 4.3.4 driven from C",
        "peer_versions": {"monocoque": {"runtime": runtime}, "czmq": {"libzmq": "4.3.4"}},
        "families": {"monocoque": "monocoque", "czmq": "czmq"},
        "loops": {"monocoque": f"Rust loop, runtime {runtime}", "czmq": "C loop over libzmq 4.3.4"},
    }
    return {"meta": meta, "rows": rows}


def test_a_claim_gets_our_ratio_for_its_row_only_under_the_runtime_it_names():
    entries = benchclaims.table(claims_doc("tokio (epoll)", mono_p50=40.0, ref_p50=30.0))
    tokio = next(e for e in entries if e["row"].startswith("REQ/REP latency 64 B") and e["claimed_runtime"] == "tokio")
    # The reference's p50 over Monocoque's: a slower Monocoque is below 1, whatever the claim says.
    assert tokio["measured"] == pytest.approx(0.75) and "median" in tokio["how"] and "4.3.4" in tokio["how"]
    compio = next(e for e in entries if e["claimed_runtime"] == "compio")
    assert compio["measured"] is None and "tokio" in compio["how"]
    coalesced = next(e for e in entries if "coalescing" in e["says"])
    assert coalesced["measured"] is None and coalesced["how"].startswith("not measured")
    # A run without the row says so instead of inventing a figure.
    fanout = next(e for e in entries if e["row"].startswith("PUB/SUB"))
    assert fanout["measured"] is None and "not in this run" in fanout["how"]
    lines = benchclaims.text(entries)
    assert len(lines) == len(benchclaims.load()) and "claimed 3.45x (tokio), measured 0.75x" in lines[0]


def test_published_claims_load_from_their_table_with_ratios_from_the_figures():
    claims = benchclaims.load()
    tokio = next(c for c in claims if c.kind == "latency" and c.runtime == "tokio" and c.size == 64)
    # Latency: libzmq's time over the implementation's (33.8 us / 9.8 us).
    assert tokio.low == tokio.high == pytest.approx(3.45)
    coalesced = next(c for c in claims if c.unmeasured)
    assert (coalesced.low, coalesced.high) == (pytest.approx(3.02), pytest.approx(3.85))
    assert next(c for c in claims if c.high is None).low == 1.0


@pytest.mark.parametrize(
    "claim, message",
    [
        ({"figures": {"it": 1.0, "libzmq": 2.0}, "at_least": 1.0}, "exactly one of them"),
        ({"figures": {"it": 1.0}}, "figures needs `it` and `libzmq`"),
        ({"figures": {"it": 1.0, "libzmq": 2.0}, "row": {"kind": "latency", "pattern": "PUB/SUB", "size": 64}},
         "row needs kind"),
        ({"figures": {"it": 1.0, "libzmq": 2.0}, "sayz": "typo"}, "unknown key sayz"),
        ({"figures": {"it": 1.0, "libzmq": 2.0}, "source": ["blog", "x"]}, "source names document 'blog'"),
    ],
)
def test_a_wrong_published_claim_is_an_error_naming_file_and_line(tmp_path, claim, message):
    entry = {"source": ["bench", "Latency"], "says": "fast", "row": {"kind": "latency", "pattern": "REQ/REP", "size": 64},
             "runtime": "tokio"} | claim  # fmt: skip
    path = tmp_path / "bench-claims.yaml"
    doc = {"implementations": {"x": {"documents": {"bench": "x 1.0 BENCH.md"}, "claims": [entry]}}}
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    with pytest.raises(benchclaims.BenchClaimsError, match=message) as err:
        benchclaims.load(path)
    assert f"{path}:" in str(err.value) and not str(err.value).startswith(f"{path}:0:")
