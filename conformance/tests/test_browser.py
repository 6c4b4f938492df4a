"""matrix.html and the Allure report, opened in a real browser (headless Chromium through Selenium).

A small run with a peer broken on purpose gives one failing pair, and
libzmq a documented deviation; the test checks the pairing matrix's cells
and colours, follows the failing cell to its details, and reads the Allure
report the two ways a person opens it: the single file by double-click
(file://), the multi-file report through `zmtp-conformance report --open`.
Screenshots go to reports/screenshots/. On CI (CI=true) a missing browser
fails the test rather than skipping it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "reports" / "screenshots"
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
# Without the background-networking flags Chromium keeps calling Google's hosts, which this network refuses.
FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1000",
]
GREEN, RED, AMBER = "rgba(191, 232, 191, 1)", "rgba(244, 180, 180, 1)", "rgba(247, 225, 161, 1)"


def need(what: str, ok: bool) -> None:
    if ok:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{what} is missing on CI, where scripts/debian-packages installs it")
    pytest.skip(f"{what} is not installed")


@pytest.fixture(scope="module")
def browser():
    need("chromium and chromedriver (Debian packages chromium, chromium-driver)", bool(CHROMIUM and CHROMEDRIVER))
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in FLAGS:
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A run where impl skips the socket-type check: its PULL-vs-SUB cells fail, libzmq's deviate (a documented
    deviation), the REQ/REP ones pass."""
    out = tmp_path_factory.mktemp("run") / "reports"
    cmd = [
        sys.executable, "-m", "zmtp_conformance.cli", "run",
        "--peers", "impl,libzmq", "--backend", "local",
        "--scenario", "28/req-rep/round-trip",
        "--scenario", "37/socket-type/mismatch-error-command/pull-vs-sub",
        "--peer-args", "impl=--bug=skip_socket_type_check",
        "--report-dir", str(out), "--no-progress", "--pcap", "proxy",
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]  # the broken cells fail the run
    return out


def shot(driver, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(SHOTS / name))


def test_the_matrix_page_shows_each_pair_in_its_colour_and_links_failures_to_details(browser, run):
    from selenium.webdriver.common.by import By

    browser.get((run / "matrix.html").as_uri())
    pairs = browser.find_elements(By.CSS_SELECTOR, "td.pair")
    by_pair = {(td.get_attribute("data-server"), td.get_attribute("data-client")): td for td in pairs}
    assert set(by_pair) == {(s, c) for s in ("impl", "libzmq") for c in ("impl", "libzmq", "raw")}
    assert by_pair["impl", "impl"].value_of_css_property("background-color") == GREEN
    assert by_pair["libzmq", "raw"].value_of_css_property("background-color") == AMBER
    bad = by_pair["impl", "raw"]
    assert bad.value_of_css_property("background-color") == RED
    assert bad.get_attribute("data-failed") == "2"
    shot(browser, "matrix.png")
    bad.find_element(By.TAG_NAME, "a").click()
    assert browser.current_url.endswith("#pair-impl-raw")
    failed = browser.find_elements(By.CSS_SELECTOR, "details.outcome-failed")
    assert len(failed) == 2
    failed[0].find_element(By.TAG_NAME, "summary").click()
    text = failed[0].text
    assert "pull-vs-sub" in text and "expected:" in text and "ERROR" in text
    assert failed[0].find_element(By.CSS_SELECTOR, "a[href$='.pcap']")  # its capture is linked
    shot(browser, "matrix-failure.png")


def rendered(browser, timeout: float = 30) -> str:
    """The report's text once Allure has drawn it (the tree by RFC, the run's variables), not its loading spinner.
    The report holds the failed and deviating cells (RFC 37's here) and counts the others at its top."""
    from selenium.webdriver.support.ui import WebDriverWait

    def drawn(d) -> bool:
        text = d.find_element("tag name", "body").text
        return all(s in text for s in ("RFC 37", "peer libzmq", "cells in the run"))

    WebDriverWait(browser, timeout).until(drawn)
    assert not browser.find_elements("css selector", "[data-testid='loader']")
    return browser.find_element("tag name", "body").text


def test_the_single_file_report_opens_from_disk_and_shows_the_run(browser, run):
    need("Node.js (for Allure 3)", shutil.which("node") is not None and shutil.which("npm") is not None)
    cmd = [sys.executable, "-m", "zmtp_conformance.cli", "report", "--report-dir", str(run), "--single-file"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    index = run / "allure-report-single" / "index.html"
    page = index.read_text()
    assert "googletagmanager" not in page  # opened from disk, it asks nothing of the network
    # The failed and deviating cells are inside with their captures (4 of them); the 24 passing cells are
    # counted, and listed in matrix.html.
    assert len(re.findall(r'd\("data/attachments/[^"]+\.pcap"', page)) == 4
    assert "REQ and REP exchange" not in page  # 28/req-rep/round-trip passed everywhere
    browser.get(index.as_uri())  # what a double-click does
    text = rendered(browser)
    assert re.search(r"Failed\s*2", text) and "28: 2 failed, 2 deviates, 24 passed" in text, text[:800]
    assert re.search(r"Unknown\s*2", text), text[:800]  # the deviations: not skipped, not failed
    shot(browser, "allure.png")
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.find_element(By.XPATH, "//span[starts-with(normalize-space(text()), 'Categories')]").click()
    WebDriverWait(browser, 10).until(lambda d: "Deviates from the RFC" in d.find_element("tag name", "body").text)
    assert re.search(r"Deviates from the RFC \(documented deviations\)\s*2", browser.find_element("tag name", "body").text)
    shot(browser, "allure-categories.png")


def test_report_open_serves_the_multi_file_report_which_renders(browser, run):
    import signal

    need("Node.js (for Allure 3)", shutil.which("node") is not None and shutil.which("npm") is not None)
    cmd = [sys.executable, "-m", "zmtp_conformance.cli", "report", "--report-dir", str(run), "--open", "--no-browser"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        url = None
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("serving "):
                url = line.split(" at ")[1].split()[0]
                break
        assert url and url.startswith("http://127.0.0.1:"), proc.stderr.read() if proc.stderr else ""
        browser.get(url)
        text = rendered(browser)
        assert re.search(r"Failed\s*2", text) and re.search(r"Unknown\s*2", text), text[:800]
        shot(browser, "allure-served.png")
    finally:
        proc.send_signal(signal.SIGINT)  # Ctrl-C
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "stopped" in out


def test_the_report_command_says_what_to_install_without_node(run, monkeypatch, capsys):
    from zmtp_conformance import cli
    from zmtp_conformance.report import allure

    monkeypatch.setattr(allure.shutil, "which", lambda name: None)
    assert cli.main(["report", "--report-dir", str(run)]) == 2
    assert "apt-get install nodejs npm" in capsys.readouterr().err
