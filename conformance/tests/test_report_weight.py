"""What a cell's Allure result carries of its capture: a bounded copy, never a whole 24 MiB pcap."""

from __future__ import annotations

import io
import struct
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from zmtp_conformance.capture import pcap
from zmtp_conformance.report import allure_results as ar

BOUND = 1 << 20


def write_pcap(path: Path, count: int, size: int) -> list[pcap.Record]:
    records = [pcap.Record(1700000000 + i / 1000, bytes([i % 251]) * size, size) for i in range(count)]
    with pcap.Writer(path, linktype=pcap.LINKTYPE_IPV4) as w:
        for r in records:
            w.write(r)
    return records


def parse(body: bytes) -> tuple[pcap.Header, list[pcap.Record]]:
    f = io.BytesIO(body)
    header = pcap.read_header(f, "attachment")
    records = list(pcap.iter_records(f, header, "attachment"))
    assert f.tell() == len(body), "the attachment ends inside a record"
    return header, records


def test_a_capture_over_the_bound_is_cut_to_its_first_whole_packets_and_still_parses(tmp_path):
    path = tmp_path / "big.pcap"
    records = write_pcap(path, 20, 100_000)  # 2,000,344 octets
    att = ar.capture_attachment(path, BOUND)
    assert att.cut and att.size == path.stat().st_size
    assert len(att.body) <= BOUND
    # Ten records of 16 + 100,000 octets fit after the 24-octet header; an eleventh would not.
    assert att.packets == 10 and len(att.body) == 24 + 10 * 100_016
    assert att.body == path.read_bytes()[: len(att.body)]
    header, got = parse(att.body)
    assert header.linktype == pcap.LINKTYPE_IPV4
    assert [r.data for r in got] == [r.data for r in records[:10]]
    name = att.name("proxy", "captures/big.pcap")
    assert "CUT" in name and "first 10 packets" in name and "captures/big.pcap" in name


def test_a_capture_under_the_bound_stays_whole(tmp_path):
    path = tmp_path / "small.pcap"
    write_pcap(path, 5, 1000)
    att = ar.capture_attachment(path, BOUND)
    assert not att.cut
    assert att.body == path.read_bytes()
    assert len(parse(att.body)[1]) == 5
    assert att.name("proxy", "captures/small.pcap") == "capture (proxy)"


def test_a_cut_keeps_the_header_as_it_was_big_endian_nanoseconds(tmp_path):
    path = tmp_path / "ns.pcap"
    with open(path, "wb") as f:
        f.write(struct.pack(">IHHiIII", pcap.MAGIC_NS, 2, 4, 0, 0, 262144, pcap.LINKTYPE_RAW))
        for i in range(4):
            f.write(struct.pack(">IIII", 1700000000, 5 * i, 300, 300) + b"x" * 300)
    att = ar.capture_attachment(path, 24 + 2 * 316 + 10)
    header, got = parse(att.body)
    assert att.cut and att.packets == 2 and len(got) == 2
    assert header.endian == ">" and header.nanoseconds and header.linktype == pcap.LINKTYPE_RAW


def test_a_file_too_large_to_attach_that_is_no_pcap_is_refused(tmp_path):
    path = tmp_path / "junk.pcap"
    path.write_bytes(b"not a capture" * 100)
    with pytest.raises(pcap.PcapError, match="not a pcap file"):
        ar.capture_attachment(path, 100)


class FakeAllure:
    def __init__(self) -> None:
        self.attached: list[tuple[bytes, str]] = []
        self.links: list[tuple[str, str]] = []
        self.dynamic = SimpleNamespace(link=lambda url, name: self.links.append((url, name)))

    def attach(self, body: Any, name: str, attachment_type: str, extension: str) -> None:
        assert attachment_type == ar.PCAP_MIME and extension == "pcap"
        self.attached.append((body, name))


def test_a_failed_cells_big_capture_is_attached_cut_and_linked_whole(tmp_path):
    path = tmp_path / "captures" / "big.pcap"
    path.parent.mkdir()
    write_pcap(path, 20, 100_000)
    allure = FakeAllure()
    att = ar.attach_capture(allure, path, "proxy", "captures/big.pcap", embed=True)
    assert att is not None and att.cut
    ((body, name),) = allure.attached
    assert len(body) <= ar.ATTACH_BOUND and "CUT" in name
    assert allure.links == [("../captures/big.pcap", "capture (proxy): captures/big.pcap")]


def test_a_failed_cells_small_capture_is_attached_whole_and_a_passed_cells_only_linked(tmp_path):
    path = tmp_path / "small.pcap"
    write_pcap(path, 3, 100)
    failed = FakeAllure()
    ar.attach_capture(failed, path, "tcpdump", "captures/small.pcap", embed=True)
    assert failed.attached == [(path.read_bytes(), "capture (tcpdump)")] and failed.links == []
    passed = FakeAllure()
    assert ar.attach_capture(passed, path, "tcpdump", "captures/small.pcap", embed=False) is None
    assert passed.attached == [] and passed.links == [
        ("../captures/small.pcap", "capture (tcpdump): captures/small.pcap")
    ]


def test_an_unreadable_capture_too_large_to_embed_is_only_linked(tmp_path):
    path = tmp_path / "junk.pcap"
    path.write_bytes(b"\0" * 200)
    allure = FakeAllure()
    assert ar.attach_capture(allure, path, "proxy", "captures/junk.pcap", embed=True, bound=100) is None
    assert allure.attached == [] and len(allure.links) == 1
