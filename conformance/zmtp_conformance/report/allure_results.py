"""What a run writes into allure-results beyond allure-pytest's defaults.

- A deviating cell leaves as status `unknown`, not `skipped`: pytest sees
  it as xfail, which allure-pytest reports as skipped, the same as a cell a
  peer does not support. Its message starts "deviates: PEER" and it carries
  the label DEVIATING_PEER, so the category "Deviates from the RFC" groups
  the deviations by peer.
- A cell's capture is attached only where a reader needs it (failed and
  deviating cells). Every other cell links its pcap, which stays in the
  report folder's captures/ (matrix.html lists them too): attaching every
  pcap made the single-file report weigh 211 MB for a 3,810-cell run. What
  the default report then shows of these results is allure_subset.py's.
- An attached capture weighs at most ATTACH_BOUND: a larger one (the
  drops-queue scenarios push 24 MiB through the proxy) is attached cut, its
  first whole packets up to the bound (still a pcap Wireshark opens), with
  the cut said in the attachment's name and a link to the whole file in
  captures/, which keeps every capture whole for the validator.
- categories.json in the results folder, for Allure 2 (Allure 3 reads its
  categories from the configuration `allure.generate` writes).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEVIATING_PEER = "deviating peer"  # label: the peer whose documented deviation excused the cell
DEVIATION = "deviation"  # label: the deviation table's entry and its reason
DEVIATES_STATUS = "unknown"
DEVIATES_PREFIX = "deviates: "
# The report sits one folder below the report folder (allure-report/, allure-report-single/).
REPORT_TO_RUN = "../"

DEVIATES_CATEGORY = "Deviates from the RFC (documented deviations)"
UNSUPPORTED_CATEGORY = "Unsupported by a peer"
# [\s\S] rather than a DOTALL flag: Allure 2 (Java) and Allure 3 (JavaScript) both read this regex,
# Java matching the whole message and JavaScript searching it.
_CATEGORIES = (
    (DEVIATES_CATEGORY, "unknown", r"deviates: [\s\S]*", DEVIATING_PEER),
    (UNSUPPORTED_CATEGORY, "skipped", r"[\s\S]*unsupported: [\s\S]*", None),
)


def categories(group_by_label: bool = True) -> list[dict[str, Any]]:
    """The categories a reader sorts cells by; with group_by_label (Allure 3), deviations grouped by peer."""
    out = []
    for name, status, regex, label in _CATEGORIES:
        cat: dict[str, Any] = {"name": name, "matchedStatuses": [status], "messageRegex": regex}
        if group_by_label and label:
            cat["groupBy"] = [{"label": label}]
        out.append(cat)
    return out


def deviation_labels(peer: str, entry: str, reason: str) -> list[tuple[str, str]]:
    """The labels a deviating cell carries: which peer deviates, and the table's entry that says how."""
    return [(DEVIATING_PEER, peer), (DEVIATION, f"{entry}: {reason}")]


def capture_link(relative: str) -> str:
    """The URL, from the report's index.html, of a capture at `relative` in the report folder."""
    return REPORT_TO_RUN + Path(relative).as_posix()


# One capture embedded in the single-file report costs 4/3 of its size in base64; past this bound the
# first packets (greetings, handshakes, the first few hundred messages) tell a reader what happened as
# well as the rest would. Measured on a 12,882-cell run: 25 of its 898 failed and deviating cells had
# a capture over 64 KiB, and they weighed 14 of its 18.8 MB of captures (the drops-queue and
# does-not-block scenarios push MiBs through the proxy). At 1 MiB the report of those 898 cells
# weighed 44 MB, at 64 KiB 24 MB.
ATTACH_BOUND = 64 << 10
PCAP_HEADER = 24  # octets of a classic pcap's global header
PCAP_MIME = "application/vnd.tcpdump.pcap"


@dataclass(frozen=True)
class CaptureAttachment:
    """What a cell attaches of its capture: the bytes, and whether (and how far) they were cut."""

    body: bytes
    packets: int | None  # packets in a cut `body` (a whole one is not parsed)
    size: int  # octets of the whole capture file
    cut: bool

    def name(self, method: str, relative: str) -> str:
        if not self.cut:
            return f"capture ({method})"
        return (
            f"capture ({method}), CUT to its first {self.packets} packets ({len(self.body):,} of "
            f"{self.size:,} octets); whole: {Path(relative).as_posix()}"
        )


def capture_attachment(path: Path | str, bound: int = ATTACH_BOUND) -> CaptureAttachment:
    """The capture at `path` as a cell attaches it: whole up to `bound` octets, else its global
    header and as many whole leading packets as fit in `bound`, octet for octet (the header's
    byte order, time resolution and link type stay as they were). A file too large to attach
    whole that is no readable pcap raises capture.pcap.PcapError."""
    from ..capture import pcap

    size = os.path.getsize(path)
    with open(path, "rb") as f:
        if size <= bound:
            return CaptureAttachment(f.read(), None, size, False)
        header = pcap.read_header(f, str(path))
        end, packets = PCAP_HEADER, 0
        for _ in pcap.iter_records(f, header, str(path)):
            if f.tell() > bound:
                break
            end, packets = f.tell(), packets + 1
        f.seek(0)
        return CaptureAttachment(f.read(end), packets, size, True)


def attach_capture(
    allure: Any, path: Path | str, method: str, relative: str, embed: bool, bound: int = ATTACH_BOUND
) -> CaptureAttachment | None:
    """A cell's capture in its Allure result: with `embed` (failed and deviating cells) attached,
    cut to `bound`; linked where it is not embedded whole. Returns what was attached, if anything."""
    from ..capture.pcap import PcapError

    att = None
    if embed:
        try:
            att = capture_attachment(path, bound)
        except (PcapError, OSError):
            att = None  # unreadable and too large to embed as it is: the link still leads to it
        if att is not None:
            allure.attach(att.body, name=att.name(method, relative), attachment_type=PCAP_MIME, extension="pcap")
    if att is None or att.cut:
        allure.dynamic.link(capture_link(relative), name=f"capture ({method}): {Path(relative).as_posix()}")
    return att


def write_categories(results: Path) -> None:
    """categories.json in an allure-results folder (replaced whole, as several workers may write it)."""
    results.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=results, prefix=".categories-", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(categories(group_by_label=False), f, indent=1)
    os.replace(tmp, results / "categories.json")


def mark_deviation(result: Any) -> bool:
    """A deviating cell's result (allure_commons' TestResult) as status unknown with its peer in the message."""
    labels = {label.name: label.value for label in result.labels}
    peer = labels.get(DEVIATING_PEER)
    if peer is None or result.status != "skipped":
        return False
    from allure_commons.model2 import StatusDetails

    result.status = DEVIATES_STATUS
    result.statusDetails = StatusDetails(message=f"{DEVIATES_PREFIX}{peer}: {labels.get(DEVIATION, '')}")
    return True


def install(results: Path) -> Any:
    """Registers, ahead of allure's file logger, a plugin that marks deviations and writes categories.json;
    returns what `uninstall` takes."""
    import allure_commons

    class DeviationStatus:
        def __init__(self) -> None:
            self.wrote_categories = False

        # tryfirst: the status changes before the file logger (another report_result) writes the result.
        @allure_commons.hookimpl(tryfirst=True)
        def report_result(self, result: Any) -> None:
            if not self.wrote_categories:
                write_categories(results)
                self.wrote_categories = True
            mark_deviation(result)

    plugin = DeviationStatus()
    allure_commons.plugin_manager.register(plugin)
    return plugin


def uninstall(plugin: Any) -> None:
    import allure_commons

    if allure_commons.plugin_manager.is_registered(plugin):
        allure_commons.plugin_manager.unregister(plugin)
