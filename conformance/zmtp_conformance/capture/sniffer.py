"""Recording loopback traffic with tcpdump while the matrix runs.

One tcpdump per harness process writes the tcp traffic on `lo` to a file
(in a matrix run, only that of the ports where its own cells' servers listen:
endpoints.claim_ports); the harness tails that file and cuts it into one slice
per cell. tcpdump rather
than scapy's sniffer: on `lo` an AF_PACKET socket sees each packet twice
(outgoing and incoming), and a pcap with every segment doubled makes
tshark and Wireshark report retransmissions that never happened.

Cutting needs to know when tcpdump has written everything up to a moment.
A marker does that: a UDP datagram with a fresh token, sent to a port this
process holds, that the capture filter also admits; once the marker is in
the file, so is every packet that went through `lo` before it.

Two things keep a long run from hurting the machine. The part of the file
already read is given back to the file system as it is cut (a hole punched
behind the reader), so a run of an hour occupies megabytes, not the tens of
gigabytes everything on `lo` adds up to. And tcpdump dies with the harness:
it is started under a watchdog that holds the read end of a pipe whose write
end only the harness holds, so a harness killed by SIGKILL, a crash or a
closed terminal takes its tcpdump with it (tcpdump changes credentials when it
starts, which clears a parent-death signal, so prctl cannot do this).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from ..endpoints import PortRange
from .pcap import Header, Record, iter_records, read_header
from .tcp import parse_udp

# The kernel's buffer for tcpdump: a burst of 64 KiB segments overflows the default 2 MiB.
BUFFER_KIB = 32768

# Read data is released in steps of this size: fewer system calls, and a multiple of any block size.
RELEASE_STEP = 64 << 20

# Runs tcpdump and kills it when its standard input reaches end of file, that is when the
# process holding the pipe's write end (the harness) closes it or dies. The watchdog reads a
# copy of stdin (fd 3) because sh gives a background job /dev/null as its stdin. sh exits
# with tcpdump's status, so a tcpdump that fails to start is seen as the child's exit.
WATCHDOG = 'exec 3<&0; tcpdump "$@" & t=$!; (read -r _ <&3; kill -TERM "$t") >/dev/null 2>&1 & wait "$t"'

_FALLOC_FL_KEEP_SIZE = 0x01
_FALLOC_FL_PUNCH_HOLE = 0x02


class SnifferError(Exception):
    """tcpdump could not be started or stopped answering; the message says why."""


def usable() -> str | None:
    """None if tcpdump can capture here, else why not."""
    if shutil.which("tcpdump") is None:
        return "tcpdump is not installed"
    if os.geteuid() != 0:
        return "capturing on lo needs root (CAP_NET_RAW)"
    return None


@functools.cache
def _punch_hole() -> Callable[[int, int, int, int], int] | None:
    """libc's fallocate, where there is one; Python's os module offers none with a mode."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        fn = libc.fallocate
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
    fn.restype = ctypes.c_int
    return fn


def remove_orphans(parent: str | Path | None = None) -> list[Path]:
    """Remove the capture folders of harness processes that are gone; returns what it removed.

    A harness killed before its stop() leaves its folder behind (its tcpdump dies with it). An
    empty folder is left alone for a while: its harness may not have started tcpdump yet.
    """
    removed = []
    for d in Path(parent or tempfile.gettempdir()).glob("zmtp-sniff-*"):
        pids = [f.stem.removeprefix("lo-") for f in d.glob("lo-*.pcap")]
        try:
            stale = not pids and time.time() - d.stat().st_mtime > 600
        except FileNotFoundError:
            continue
        if stale or (pids and all(p.isdigit() and not Path(f"/proc/{p}").exists() for p in pids)):
            shutil.rmtree(d, ignore_errors=True)
            removed.append(d)
    return removed


class Sniffer:
    def __init__(self, directory: str | Path | None = None, ports: PortRange | None = None) -> None:
        if directory is None:
            remove_orphans()
        self.own_dir = directory is None
        self.dir = Path(directory or tempfile.mkdtemp(prefix="zmtp-sniff-"))
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path = self.dir / f"lo-{os.getpid()}.pcap"
        self.marker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.marker.bind(("127.0.0.1", 0))
        self.marker.setblocking(False)
        self.port = self.marker.getsockname()[1]
        self.ports = ports  # record tcp to and from these ports only (None: all tcp on lo)
        self.proc: subprocess.Popen[bytes] | None = None
        self.f = None
        self.header: Header | None = None
        self.pending: list[Record] = []
        self.released = 0  # octets at the start of the file given back to the file system
        self._hole_fd: int | None = None

    def start(self, timeout: float = 10.0) -> None:
        why = usable()
        if why:
            raise SnifferError(why)
        args = [
            "-i", "lo", "-U", "--immediate-mode", "-s", "0", "-B", str(BUFFER_KIB),
            "-w", str(self.path), f"({self.ports.bpf if self.ports else 'tcp'}) or (udp and dst port {self.port})",
        ]  # fmt: skip
        self.proc = subprocess.Popen(
            ["sh", "-c", WATCHDOG, "sh", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        # tcpdump takes a moment to open lo; until the first marker shows up nothing is recorded.
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                assert self.proc.stdin is not None
                self.proc.stdin.close()  # the watchdog outlives a tcpdump that failed; end it too
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

    def sync(self, timeout: float = 30.0) -> list[Record]:
        """Every TCP packet captured since the last sync, up to now.

        Each worker's tcpdump records all of `lo`, so on a loaded machine it can fall seconds behind,
        or drop a marker when its buffer overflows: a fresh marker goes out every second until one is
        read back (any of them ends the wait; those of earlier syncs are skipped as before).
        """
        assert self.f is not None and self.header is not None
        tokens: set[bytes] = set()
        deadline = time.monotonic() + timeout
        resend = 0.0
        while True:
            if time.monotonic() >= resend:
                token = uuid.uuid4().bytes
                tokens.add(token)
                self.marker.sendto(token, ("127.0.0.1", self.port))
                resend = time.monotonic() + 1.0
            for rec in iter_records(self.f, self.header, str(self.path)):
                udp = parse_udp(rec.data, self.header.linktype)
                if udp is None:
                    self.pending.append(rec)
                elif udp in tokens:
                    out, self.pending = self.pending, []
                    self._drain()
                    self._release()
                    return out
            if time.monotonic() > deadline:
                raise SnifferError(
                    f"tcpdump recorded none of {len(tokens)} markers within {timeout:g}s ({self.path})"
                )
            time.sleep(0.002)

    def _release(self) -> None:
        """Give back the file system blocks of what has been read; the file keeps its size."""
        assert self.f is not None
        upto = self.f.tell() // RELEASE_STEP * RELEASE_STEP
        if upto <= self.released:
            return
        fallocate = _punch_hole()
        if fallocate is None:
            return
        if self._hole_fd is None:
            self._hole_fd = os.open(self.path, os.O_WRONLY)
        if fallocate(self._hole_fd, _FALLOC_FL_PUNCH_HOLE | _FALLOC_FL_KEEP_SIZE, self.released, upto - self.released):
            return  # a file system without holes: the file grows as it always did
        self.released = upto

    def _drain(self) -> None:
        try:
            while True:
                self.marker.recv(64)
        except BlockingIOError:
            pass

    def stop(self) -> None:
        if self.proc is not None:
            if self.proc.stdin is not None:
                self.proc.stdin.close()  # the watchdog's cue to stop tcpdump
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            if self.proc.stderr is not None:
                self.proc.stderr.close()
        self.proc = None
        if self._hole_fd is not None:
            os.close(self._hole_fd)
            self._hole_fd = None
        if self.f is not None:
            self.f.close()
            self.f = None
        self.marker.close()
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
        if self.own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)
