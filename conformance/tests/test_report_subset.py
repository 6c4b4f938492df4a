"""The default Allure report's cells: failed, broken and deviating ones with all they attach, every cell counted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from zmtp_conformance.report import allure_subset


class Results:
    """An allure-results folder written the way allure-pytest writes one."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir()
        self.n = 0

    def attachment(self, body: bytes, ext: str) -> str:
        self.n += 1
        name = f"a{self.n:04d}-attachment.{ext}"
        (self.path / name).write_bytes(body)
        return name

    def cell(self, name: str, status: str, *, history: str | None = None, stop: int = 1, pcap: bool = True) -> dict:
        self.n += 1
        atts = [{"name": "transcript", "source": self.attachment(f"transcript of {name}".encode(), "txt")}]
        if pcap:
            atts.append(
                {"name": "capture (proxy)", "source": self.attachment(b"\xd4\xc3\xb2\xa1" + b"\0" * 20, "pcap")}
            )
        doc: dict[str, Any] = {
            "uuid": f"u{self.n:04d}",
            "historyId": history or name,
            "name": name,
            "status": status,
            "stop": stop,
            "attachments": atts,
        }
        (self.path / f"r{self.n:04d}-result.json").write_text(json.dumps(doc))
        return doc


@pytest.fixture
def run(tmp_path: Path) -> tuple[Results, dict[str, dict]]:
    r = Results(tmp_path / "allure-results")
    cells = {
        "passed": r.cell("passed", "passed"),
        "unsupported": r.cell("unsupported", "skipped", pcap=False),
        "deviates": r.cell("deviates", "unknown"),
        "failed": r.cell("failed", "failed"),
        "broken": r.cell("broken", "broken", pcap=False),
        # --reruns: the first attempt failed, the second passed.
        "flaky-1": r.cell("flaky-1", "failed", history="flaky", stop=1),
        "flaky-2": r.cell("flaky-2", "passed", history="flaky", stop=2),
    }
    (r.path / "categories.json").write_text("[]")
    return r, cells


def names(folder: Path) -> set[str]:
    return {json.loads(p.read_text())["name"] for p in folder.glob("*-result.json")}


def test_failed_and_deviating_cells_keep_every_attachment_and_passed_or_unsupported_ones_stay_out(run, tmp_path):
    r, cells = run
    into = tmp_path / "subset"
    subset = allure_subset.select(r.path, into)
    assert names(into) == {"deviates", "failed", "broken", "flaky-1", "flaky-2"}
    for name in ("deviates", "failed", "broken", "flaky-1"):
        for att in cells[name]["attachments"]:
            assert (into / att["source"]).read_bytes() == (r.path / att["source"]).read_bytes(), (name, att)
    for name in ("passed", "unsupported"):
        for att in cells[name]["attachments"]:
            assert not (into / att["source"]).exists(), (name, att)
    assert (into / "categories.json").read_text() == "[]"
    # A cell counts once, by its last attempt: the flaky one as passed.
    assert subset.cells == {"passed": 2, "skipped": 1, "unknown": 1, "failed": 1, "broken": 1}
    assert subset.shown == {"unknown": 1, "failed": 1, "broken": 1, "passed": 1}
    assert subset.results == 5
    assert subset.attachments == 2 + 2 + 1 + 2 + 2
    # The run's own folder is left whole, for a user's own Allure.
    assert len(list(r.path.glob("*-result.json"))) == 7


def test_the_report_says_how_many_cells_the_run_had_and_where_the_others_are(run, tmp_path):
    r, _ = run
    shown = allure_subset.select(r.path, tmp_path / "subset").variables()
    assert shown["cells in the run"] == (
        "6: 1 failed, 1 broken (harness error), 1 deviates, 2 passed, 1 unsupported or skipped"
    )
    assert shown["cells in this report"].startswith("4, the failed, broken and deviating ones")
    assert "matrix.html" in shown["cells in this report"] and "--all-cells" in shown["cells in this report"]


def test_a_fixture_container_goes_with_the_cell_it_wraps(run, tmp_path):
    r, cells = run
    setup = r.attachment(b"agent log", "txt")
    for i, cell in enumerate(("failed", "passed")):
        doc = {"uuid": f"c{i}", "children": [cells[cell]["uuid"]], "befores": [{"name": "peer", "attachments": [
            {"name": "log", "source": setup if cell == "failed" else r.attachment(b"other log", "txt")}
        ]}]}  # fmt: skip
        (r.path / f"c{i}-container.json").write_text(json.dumps(doc))
    into = tmp_path / "subset"
    allure_subset.select(r.path, into)
    assert [p.name for p in into.glob("*-container.json")] == ["c0-container.json"]
    assert (into / setup).read_bytes() == b"agent log"


def test_an_all_green_run_gives_an_empty_subset_that_still_counts_the_cells(tmp_path):
    r = Results(tmp_path / "allure-results")
    r.cell("a", "passed")
    r.cell("b", "skipped")
    subset = allure_subset.select(r.path, tmp_path / "subset")
    assert list((tmp_path / "subset").glob("*-result.json")) == []
    assert subset.variables()["cells in the run"] == "2: 1 passed, 1 unsupported or skipped"


def test_a_result_file_that_is_no_json_is_named(tmp_path):
    r = Results(tmp_path / "allure-results")
    (r.path / "bad-result.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"bad-result\.json: not an Allure result"):
        allure_subset.select(r.path, tmp_path / "subset")


def test_a_container_file_that_is_no_json_is_named(tmp_path):
    r = Results(tmp_path / "allure-results")
    r.cell("a", "failed")
    (r.path / "bad-container.json").write_text("[truncated")
    with pytest.raises(ValueError, match=r"bad-container\.json: not an Allure container"):
        allure_subset.select(r.path, tmp_path / "subset")
