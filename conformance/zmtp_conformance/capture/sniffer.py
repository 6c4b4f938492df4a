"""Recording loopback traffic with tcpdump while the matrix runs.

One tcpdump per harness process writes everything on `lo` to a file; the
harness tails that file and cuts it into one slice per cell. tcpdump rather
than scapy's sniffer: on `lo` an AF_PACKET socket sees each packet twice
(outgoing and incoming), and a pcap with every segment doubled makes
tshark and Wireshark report retransmissions that never happened.

Cutting needs to know when tcpdump has written everything up to a moment.
A marker does that: a UDP datagram with a fresh token, sent to a port this
process holds, that the capture filter also admits; once the marker is in
the file, so is every packet that went through `lo` before it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from .pcap import Header, Record, iter_records, read_header
from .tcp import parse_udp

# The kernel's buffer for tcpdump: a burst of 64 KiB segments overflows the default 2 MiB.
BUFFER_KIB = 32768


class SnifferError(Exception):
    """tcpdump could not be started or stopped answering; the message says why."""


def usable() -> str | None:
    """None if tcpdump can capture here, else why not."""
    if shutil.which("tcpdump") is None:
        return "tcpdump is not installed"
    if os.geteuid() != 0:
        return "capturing on lo needs root (CAP_NET_RAW)"
    return None


class Sniffer:
    def __init__(self, directory: str | Path | None = None) -> None:
        self.dir = Path(directory or tempfile.mkdtemp(prefix="zmtp-sniff-"))
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path = self.dir / f"lo-{os.getpid()}.pcap"
        self.marker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.marker.bind(("127.0.0.1", 0))
        self.marker.setblocking(False)
        self.port = self.marker.getsockname()[1]
        self.proc: subprocess.Popen[bytes] | None = None
        self.f = None
        self.header: Header | None = None
        self.pending: list[Record] = []

    def start(self, timeout: float = 10.0) -> None:
        why = usable()
        if why:
            raise SnifferError(why)
        cmd = [
            "tcpdump", "-i", "lo", "-U", "--immediate-mode", "-s", "0", "-B", str(BUFFER_KIB),
            "-w", str(self.path), f"tcp or (udp and dst port {self.port})",
        ]  # fmt: skip
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        # tcpdump takes a moment to open lo; until the first marker shows up nothing is recorded.
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace").strip() if self.proc.stderr else ""
                raise SnifferError(f"tcpdump exited with {self.proc.returncode}: {err}")
            if self.f is None and self.path.exists() and self.path.stat().st_size >= 24:
                self.f = open(self.path, "rb")
                self.header = read_header(self.f, str(self.path))
            if self.f is not None:
                try:
                    self.sync(timeout=0.2)
                    return
                except SnifferError:
                    pass
            if time.monotonic() > deadline:
                self.stop()
                raise SnifferError(f"tcpdump wrote no marker to {self.path} within {timeout:g}s")
            time.sleep(0.05)

    @property
    def linktype(self) -> int:
        assert self.header is not None
        return self.header.linktype

    def sync(self, timeout: float = 5.0) -> list[Record]:
        """Every TCP packet captured since the last sync, up to now."""
        assert self.f is not None and self.header is not None
        token = uuid.uuid4().bytes
        self.marker.sendto(token, ("127.0.0.1", self.port))
        deadline = time.monotonic() + timeout
        while True:
            for rec in iter_records(self.f, self.header, str(self.path)):
                udp = parse_udp(rec.data, self.header.linktype)
                if udp is None:
                    self.pending.append(rec)
                elif udp == token:
                    out, self.pending = self.pending, []
                    self._drain()
                    return out
            if time.monotonic() > deadline:
                raise SnifferError(f"tcpdump did not record the marker within {timeout:g}s ({self.path})")
            time.sleep(0.002)

    def _drain(self) -> None:
        try:
            while True:
                self.marker.recv(64)
        except BlockingIOError:
            pass

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if self.f is not None:
            self.f.close()
            self.f = None
        self.marker.close()
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
