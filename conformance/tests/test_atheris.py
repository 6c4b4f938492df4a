"""Coverage-guided fuzzing of the harness's parsers (and impl's decoder): each target replays the
inputs that once broke it, and runs under atheris for a few seconds."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from zmtp_conformance.capture.pcap import PcapError
from zmtp_conformance.fuzz import parsers

ROOT = Path(__file__).resolve().parents[2]
SECONDS = int(os.environ.get("ZMTP_FUZZ_SECONDS", "3"))


def regression_inputs() -> list[tuple[str, Path]]:
    return [
        (target, path)
        for target in sorted(parsers.TARGETS)
        for path in sorted((parsers.REGRESSIONS / target).glob("*"))
        if path.is_file()
    ]


@pytest.mark.parametrize(("target", "path"), regression_inputs(), ids=lambda v: getattr(v, "name", v))
def test_regression_inputs_raise_only_documented_errors(target: str, path: Path) -> None:
    parsers.check(target, path.read_bytes())


def test_there_are_regression_inputs() -> None:
    found = {t for t, _ in regression_inputs()}
    assert {"scenario", "tcp"} <= found


def test_a_documented_error_passes_and_any_other_propagates(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(PcapError):
        parsers.TARGETS["pcap"].run(b"not a pcap at all, just text")
    parsers.check("pcap", b"not a pcap at all, just text")

    def broken(data: bytes) -> None:
        raise IndexError("a parser that trusts a length field")

    monkeypatch.setitem(
        parsers.TARGETS, "pcap", parsers.ParserTarget("pcap", broken, parsers.TARGETS["pcap"].allowed, "")
    )
    with pytest.raises(IndexError):
        parsers.check("pcap", b"")


def test_a_non_utf8_scenario_is_a_scenario_error(tmp_path: Path) -> None:
    from zmtp_conformance.scenario import ScenarioError, load_file

    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"id: 23/x\ntitle: caf\xe9\n")
    with pytest.raises(ScenarioError, match=r"latin1.yaml:2: not UTF-8"):
        load_file(path)


def test_truncated_ip_headers_are_not_tcp_segments() -> None:
    from zmtp_conformance.capture import pcap, tcp

    ipv6_cut = b"\x60" + bytes(25)  # version 6, 26 octets: the addresses are cut
    assert tcp.parse(ipv6_cut, pcap.LINKTYPE_RAW) is None
    vlan_cut = bytes(12) + b"\x81\x00\x00\x00"  # an Ethernet VLAN tag without its ethertype
    assert tcp.parse(vlan_cut, pcap.LINKTYPE_ETHERNET) is None


@pytest.mark.skipif(
    importlib.util.find_spec("atheris") is None, reason="atheris is not installed (pip install atheris)"
)
@pytest.mark.parametrize("target", sorted(parsers.TARGETS))
def test_short_atheris_run(target: str, tmp_path: Path) -> None:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "conformance"), str(ROOT / "impl"), env.get("PYTHONPATH", "")])
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "zmtp_conformance.fuzz.parsers",
            "--target",
            target,
            "--seconds",
            str(SECONDS),
            "--artifacts",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=SECONDS + 120,
    )
    crashes = sorted(p.name for p in tmp_path.glob(f"{target}-*"))
    assert proc.returncode == 0 and not crashes, (
        f"atheris found an input that raises an undocumented error in {target} (kept in {tmp_path}: {crashes}); "
        f"copy it to conformance/tests/fuzz-regressions/{target}/ and fix the parser:\n{proc.stderr[-3000:]}"
    )
