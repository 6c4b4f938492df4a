"""The plugin end to end (pytester) and the report writers."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

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
    assert meta == {"k": 1, "flaky": [], "stalls": {}} and cells[0]["outcome"] == "passed"


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


def test_cells_are_run_pairing_by_pairing(pytester):
    d = pytester.path / "scenarios"
    d.mkdir()
    shutil.copy(ROOT / "scenarios/28/req-rep-round-trip.yaml", d / "a.yaml")
    shutil.copy(ROOT / "scenarios/30/push-pull-order.yaml", d / "b.yaml")
    args = ("scenarios", "--peers", "impl,libzmq", "--collect-only", "-q", "-p", "no:cacheprovider")
    ids = [ln for ln in pytester.runpytest(*args).outlines if "::" in ln]
    pairings = [re.search(r"\[(\w+-\w+)-", ln).group(1) for ln in ids]
    # collected file by file, the cells run pairing by pairing, each pairing's files in collection order
    assert pairings == sorted(pairings) and set(pairings) == {"impl-impl", "impl-libzmq", "libzmq-impl", "libzmq-libzmq"}
    files = [ln.split("::")[0] for ln in ids if "[impl-libzmq-" in ln]
    assert files == sorted(files) and set(files) == {"scenarios/a.yaml", "scenarios/b.yaml"}


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


# -- Allure: deviations, categories, captures -----------------------------------


def allure_result(status: str, labels: dict[str, str]):
    from allure_commons.model2 import Label, StatusDetails, TestResult

    return TestResult(
        status=status,
        statusDetails=StatusDetails(message="XFAIL known deviation: x"),
        labels=[Label(name=k, value=v) for k, v in labels.items()],
    )


def test_a_deviating_cell_leaves_as_unknown_with_its_peer_and_other_cells_keep_their_status():
    from zmtp_conformance.report import allure_results as ar

    labels = dict(ar.deviation_labels("libzmq", "libzmq-socket-type", "closes without ERROR"))
    deviating = allure_result("skipped", {"epic": "RFC 37", **labels})
    assert ar.mark_deviation(deviating)
    assert deviating.status == "unknown"
    assert deviating.statusDetails.message == "deviates: libzmq: libzmq-socket-type: closes without ERROR"
    unsupported = allure_result("skipped", {"epic": "RFC 37"})
    assert not ar.mark_deviation(unsupported) and unsupported.status == "skipped"
    # A cell that failed in another way than its entry excuses is a failure, whatever its labels.
    failed = allure_result("failed", labels)
    assert not ar.mark_deviation(failed) and failed.status == "failed"


def test_categories_sort_deviations_and_unsupported_cells_apart_in_both_allures():
    from zmtp_conformance.report import allure_results as ar

    messages = {
        "deviates: libzmq: libzmq-socket-type: closes without ERROR": ("unknown", ar.DEVIATES_CATEGORY),
        "Skipped: unsupported: czmq has no RADIO socket\nmore": ("skipped", ar.UNSUPPORTED_CATEGORY),
        "Skipped: peer ghost is not available: no such command": ("skipped", None),
        "AssertionError: deviates: from what was expected": ("failed", None),
    }

    def category(status: str, message: str, whole: bool) -> str | None:
        for cat in ar.categories(group_by_label=False):
            # Allure 2 (Java) matches the whole message; Allure 3 (JavaScript) searches it.
            match = re.fullmatch if whole else re.search
            if status in cat["matchedStatuses"] and match(cat["messageRegex"], message):
                return cat["name"]
        return None

    for message, (status, expected) in messages.items():
        assert category(status, message, whole=True) == expected, message
        assert category(status, message, whole=False) == expected, message
    grouped = {c["name"]: c for c in ar.categories()}
    assert grouped[ar.DEVIATES_CATEGORY]["groupBy"] == [{"label": ar.DEVIATING_PEER}]


def test_allure_results_attach_captures_of_failed_and_deviating_cells_and_link_the_others(pytester):
    """libzmq deviates on pull-vs-sub (documented), impl with its socket-type check off fails it, and both
    pass the staged-signature greeting."""
    d = pytester.path / "scenarios"
    d.mkdir()
    shutil.copy(ROOT / "scenarios/37/null/socket-type-mismatch-pull-sub.yaml", d / "a.yaml")
    shutil.copy(ROOT / "scenarios/37/greeting/staged-signature.yaml", d / "b.yaml")
    result = pytester.runpytest(
        "scenarios", "--peers", "impl,libzmq", "--report-dir", "out", "-p", "no:cacheprovider", "--pcap", "proxy",
        "--peer-args", "impl=--bug=skip_socket_type_check", "--alluredir", "out/allure-results", "--backend", "local", "-p", "no:asyncio",
    )  # fmt: skip
    result.assert_outcomes(passed=4, failed=2, xfailed=2)
    results = pytester.path / "out/allure-results"
    by_status: dict[str, list[dict]] = {}
    for f in results.glob("*-result.json"):
        doc = json.loads(f.read_text())
        by_status.setdefault(doc["status"], []).append(doc)
    assert sorted((s, len(v)) for s, v in by_status.items()) == [("failed", 2), ("passed", 4), ("unknown", 2)]

    def pcaps(doc: dict) -> list[dict]:
        return [a for a in doc.get("attachments", []) if a["source"].endswith(".pcap")]

    for doc in by_status["failed"] + by_status["unknown"]:
        (pcap_attachment,) = pcaps(doc)
        assert (results / pcap_attachment["source"]).stat().st_size > 0
    for doc in by_status["unknown"]:
        assert doc["statusDetails"]["message"].startswith("deviates: libzmq: libzmq-socket-type-mismatch")
        assert {"name": "deviating peer", "value": "libzmq"} in doc["labels"]
    for doc in by_status["passed"]:
        assert pcaps(doc) == []
        (link,) = [x for x in doc["links"] if x["name"].startswith("capture")]
        assert link["url"].startswith("../captures/") and link["url"].endswith(".pcap")
        # The link resolves from a report one folder below the report folder, e.g. out/allure-report/.
        assert (pytester.path / "out/allure-report" / link["url"]).resolve().is_file()
    assert len(list(results.glob("*.pcap"))) == 4  # only the failed and deviating cells' captures were copied
    cats = json.loads((results / "categories.json").read_text())
    assert cats[0]["name"].startswith("Deviates from the RFC")
    # matrix.html lists the linked captures, each with an anchor named after its cell.
    page = (pytester.path / "out/matrix.html").read_text()
    for doc in by_status["passed"]:
        link = next(x for x in doc["links"] if x["name"].startswith("capture"))
        assert f"href='{link['url'].removeprefix('../')}'" in page
    # The default report's cells (report/allure_subset.py): the failed and deviating ones, each with its
    # transcript and capture; the passed ones only counted.
    from zmtp_conformance.report import allure_subset

    subset = allure_subset.select(results, pytester.path / "subset")
    kept = [json.loads(p.read_text()) for p in (pytester.path / "subset").glob("*-result.json")]
    assert sorted(doc["status"] for doc in kept) == ["failed", "failed", "unknown", "unknown"]
    for doc in kept:
        assert {"transcript", "capture"} <= {a["name"].split(" ")[0] for a in doc["attachments"]}
        assert all((pytester.path / "subset" / a["source"]).is_file() for a in doc["attachments"])
    assert subset.cells == {"passed": 4, "failed": 2, "unknown": 2}


def test_the_matrix_page_lists_the_captures_of_passing_cells(tmp_path):
    ok = record("a", "impl", "impl", "passed") | {"capture": {"file": "captures/a.pcap", "method": "proxy"}}
    bad = record("b", "impl", "impl", "failed") | {"capture": {"file": "captures/b.pcap", "method": "proxy"}}
    bare = record("c", "impl", "impl", "passed")
    out = tmp_path / "m.html"
    html.write(out, {"generated": "now", "machine": {}}, [ok, bad, bare])
    page = out.read_text()
    assert "captures of the other 1 cells" in page
    assert f"<li id='{ok['id']}'><a href='captures/a.pcap'>" in page
    assert page.count("href='captures/b.pcap'") == 1  # the failed cell's capture is in its details, once
    assert f"id='{bare['id']}'" not in page  # a passing cell without a capture is not listed


# -- the single-file report's weight, the analytics tag, --open -----------------


def test_the_analytics_tag_is_removed_from_a_report_and_nothing_else(tmp_path):
    from zmtp_conformance.report import allure

    index = tmp_path / "index.html"
    page = (
        "<html><body><div id='app'></div>\n    <script>window.allure = {};</script>\n"
        '    <script async src="https://www.googletagmanager.com/gtag/js?id=G-X"></script>\n'
        "    <script>\n        window.dataLayer = window.dataLayer || [];\n        function gtag(){dataLayer.push(arguments);}\n"
        "        gtag('config', 'G-X', {\"single_file\": \"true\"});\n    </script>\n"
        "    <script async>window.allureReportDataReady = true;</script>\n</body></html>"
    )
    index.write_text(page)
    assert allure.strip_analytics(index)
    text = index.read_text()
    assert "googletagmanager" not in text and "gtag" not in text
    assert "window.allure = {};" in text and "allureReportDataReady" in text
    assert not allure.strip_analytics(index)  # nothing left to remove


def test_report_open_serves_the_report_folder_on_localhost_until_stopped(tmp_path):
    import threading
    import urllib.request

    from zmtp_conformance.report import serve

    report_dir = tmp_path / "reports"
    (report_dir / "allure-report").mkdir(parents=True)
    (report_dir / "captures").mkdir()
    (report_dir / "allure-report" / "index.html").write_text("<html>the report</html>")
    (report_dir / "captures" / "a.pcap").write_bytes(b"\xd4\xc3\xb2\xa1")
    said: list[str] = []
    stop = threading.Event()
    t = threading.Thread(
        target=serve.serve,
        args=(report_dir / "allure-report" / "index.html", report_dir),
        kwargs={"open_browser": False, "announce": said.append, "stop": stop},
    )
    t.start()
    try:
        for _ in range(100):
            if said:
                break
            time.sleep(0.05)
        url = said[0].split(" at ")[1].split()[0]
        assert url.startswith("http://127.0.0.1:") and url.endswith("/allure-report/index.html")
        with urllib.request.urlopen(url, timeout=5) as r:
            assert r.read() == b"<html>the report</html>"
        # The report's links to ../captures/ resolve: the whole report folder is served.
        with urllib.request.urlopen(url.replace("allure-report/index.html", "captures/a.pcap"), timeout=5) as r:
            assert r.read() == b"\xd4\xc3\xb2\xa1"
    finally:
        stop.set()
        t.join(10)
    assert not t.is_alive()
    with pytest.raises(OSError):
        urllib.request.urlopen(url, timeout=2)  # stopped: nothing listens there any more
    # A report outside the report folder is served from its own folder.
    assert serve.root_for(tmp_path / "elsewhere" / "index.html", report_dir) == tmp_path / "elsewhere"


# -- the conformance job's output ----------------------------------------------


def test_a_clean_matrix_run_prints_no_warnings(tmp_path):
    """The conformance environment installs neither pytest-asyncio nor pytest-timeout, whose options the
    project's pytest configuration sets for the unit tests. The run switches pytest-asyncio off itself;
    pytest-timeout is switched off here, so both are absent as there."""
    cmd = [
        sys.executable, "-m", "zmtp_conformance.cli", "run", "--peers", "impl", "--backend", "local",
        "--scenario", "37/greeting/staged-signature", "--pcap", "off", "--no-progress",
        "--report-dir", str(tmp_path / "reports"), "--", "-p", "no:timeout",
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "passed: 2" in out
    assert "warning" not in out.lower(), out[-3000:]
    assert (tmp_path / "reports/allure-results").is_dir()  # allure-pytest was on, and did not warn either


# -- bench plots ------------------------------------------------------------------


def bench_rows(peers: list[str], speed: dict[str, float]):
    """Made-up bench records: each pairing as fast as its slower side, libzmq -> libzmq the 1.0."""
    from zmtp_conformance.bench import Row

    out = []
    for s in peers:
        for c in peers:
            f = min(speed[s], speed[c])
            for size in (64, 1024, 65536):
                out.append(Row("throughput", "PUSH/PULL", s, c, "tcp", "NULL", size, [{"msgs_per_s": 1e6 * f}]))
            out.append(Row("throughput", "PUB/SUB x3", s, c, "tcp", "NULL", 64, [{"msgs_per_s": 3e5 * f}]))
            out.append(Row("latency", "REQ/REP", s, c, "tcp", "NULL", 64, [{"p50": 40 / f, "p95": 60, "p99": 80}]))
    return out


def test_bench_charts_show_each_pairings_ratio_to_libzmq_by_size(tmp_path):
    from zmtp_conformance.bench import ratios
    from zmtp_conformance.report import benchpage

    rows = bench_rows(["impl", "libzmq"], {"impl": 0.5, "libzmq": 1.0})
    q = ratios(rows, "libzmq")
    table = benchpage.ratio_table(rows, q, "throughput", "tcp", "NULL", "libzmq")
    assert set(table) == {"PUSH/PULL", "PUB/SUB x3"}
    # libzmq -> libzmq is the 1.0 line, not a bar; the others are their ratio, size by size.
    assert set(table["PUSH/PULL"]) == {"impl -> impl", "impl -> libzmq", "libzmq -> impl"}
    assert table["PUSH/PULL"]["impl -> libzmq"] == pytest.approx({64: 0.5, 1024: 0.5, 65536: 0.5})
    latency = benchpage.ratio_table(rows, q, "latency", "tcp", "NULL", "libzmq")
    assert latency["REQ/REP"]["impl -> impl"] == pytest.approx({64: 0.5})  # slower round trips: below 1.0 too
    files = benchpage.plots(rows, tmp_path, q, "libzmq")
    assert sorted(f.name for f in files) == ["bench-latency-tcp-NULL.png", "bench-throughput-tcp-NULL.png"]
    for f in files:
        assert f.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f.stat().st_size > 10_000
    # Many pairings: a pairing-by-size table of colours instead of a thicket of bars.
    many = bench_rows(["impl", "libzmq", "czmq", "zmq4"], {"impl": 0.5, "libzmq": 1.0, "czmq": 0.9, "zmq4": 2.0})
    pairings = benchpage.ratio_table(many, ratios(many, "libzmq"), "throughput", "tcp", "NULL", "libzmq")["PUSH/PULL"]
    assert len(pairings) == 15 > benchpage.MAX_BARS
    assert pairings["zmq4 -> czmq"][64] == pytest.approx(0.9) and pairings["zmq4 -> zmq4"][64] == pytest.approx(2.0)
    out = tmp_path / "many"
    out.mkdir()
    assert [f.name for f in benchpage.plots(many, out, reference="libzmq")] == ["bench-latency-tcp-NULL.png", "bench-throughput-tcp-NULL.png"]
