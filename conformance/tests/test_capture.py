"""Captures: pcap reading, TCP reassembly, the ZMTP dissector and the validator.

Good conversations come from impl's sans-I/O core; the validator, which
shares no code with it, must find nothing wrong in them. Then single octets
are corrupted and the validator must name the right check and clause.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
import time
from functools import partial

import pytest

from zmtp.connection import Connection
from zmtp.events import AuthenticationRequested
from zmtp.keys import CurveKeyPair
from zmtp.mechanisms.base import ZapSettings
from zmtp.mechanisms.curve import CurveMechanism
from zmtp.mechanisms.plain import PlainMechanism
from zmtp.zap import ZapResponse
from zmtp_conformance import cli
from zmtp_conformance.capture import pcap, pcapng, synth, tcp, transcript, validator
from zmtp_conformance.capture.validator import validate_stream

SERVER = CurveKeyPair.generate()
CLIENT = CurveKeyPair.generate()


def conversation(client: Connection, server: Connection, after=None) -> list[synth.Chunk]:
    """Run a handshake between two sans-I/O connections; every write becomes a chunk."""
    chunks: list[synth.Chunk] = []
    t = 1_700_000_000.0

    def pump() -> None:
        for _ in range(20):
            a, b = client.data_to_send(), server.data_to_send()
            if not a and not b:
                return
            if a:
                chunks.append(("c", a, t + len(chunks) * 1e-3))
                for ev in server.receive_data(a):
                    if isinstance(ev, AuthenticationRequested):  # a ZAP handler that says yes
                        server.authenticate(ZapResponse.success(ev.request.request_id, "admin"))
            if b:
                chunks.append(("s", b, t + len(chunks) * 1e-3))
                client.receive_data(b)

    pump()
    if after is not None:
        after(client, server)
        pump()
    return chunks


def null_pair(client_type="DEALER", server_type="ROUTER"):
    return Connection(client_type, as_server=False), Connection(server_type, as_server=True)


def plain_pair():
    return (
        Connection("DEALER", as_server=False, mechanism=partial(PlainMechanism, username=b"admin", password=b"secret")),
        Connection("ROUTER", as_server=True, mechanism=PlainMechanism, zap=ZapSettings("global", "127.0.0.1", b"")),
    )


def curve_pair():
    from zmtp.keylog import from_environment

    # The sans-I/O core writes no file itself: the key log ($ZMTP_CURVE_KEYLOG) is handed in.
    keylog = from_environment()
    return (
        Connection(
            "DEALER",
            as_server=False,
            mechanism=partial(CurveMechanism, secret_key=CLIENT.secret, server_key=SERVER.public, keylog=keylog),
        ),
        Connection(
            "ROUTER", as_server=True, mechanism=partial(CurveMechanism, secret_key=SERVER.secret, keylog=keylog)
        ),
    )


def traffic(client: Connection, server: Connection) -> None:
    client.send_message([b"", b"hello"])
    client.send_ping(10, b"ctx")
    server.send_message([b"id", b"", b"world"])


def streams_of(tmp_path, chunks, name="c.pcap") -> list[tcp.Stream]:
    path = tmp_path / name
    synth.write_conversation(path, chunks)
    return transcript.load_streams(path)


def violations(tmp_path, chunks) -> list:
    (st,) = streams_of(tmp_path, chunks)
    return validate_stream(st)


def corrupt(chunks: list[synth.Chunk], who: str, offset: int, value: int) -> list[synth.Chunk]:
    """Replace the octet at `offset` of `who`'s direction."""
    out, pos = [], 0
    for w, data, ts in chunks:
        if w == who and pos <= offset < pos + len(data):
            data = data[: offset - pos] + bytes([value]) + data[offset - pos + 1 :]
        if w == who:
            pos += len(data)
        out.append((w, data, ts))
    return out


def splice(chunks: list[synth.Chunk], who: str, extra: bytes) -> list[synth.Chunk]:
    return [*chunks, (who, extra, chunks[-1][2] + 1e-3)]


# -- good conversations ----------------------------------------------------------


@pytest.mark.parametrize("pair", [null_pair, plain_pair], ids=["NULL", "PLAIN"])
def test_good_handshakes_have_no_violations(tmp_path, pair):
    chunks = conversation(*pair(), after=traffic)
    assert violations(tmp_path, chunks) == []


def test_good_curve_is_clean_with_message_in_data_frames(tmp_path):
    # MESSAGE in a data frame is what libzmq does and every peer must do to talk to it: a
    # convention of the validator (validator.CONVENTIONS), accepted from every peer alike.
    chunks = conversation(*curve_pair(), after=traffic)
    assert violations(tmp_path, chunks) == []
    assert any(c.id == "curve-message-frame" for c in validator.CONVENTIONS)


def test_dissector_reads_the_handshake(tmp_path):
    (st,) = streams_of(tmp_path, conversation(*null_pair(), after=traffic))
    text = transcript.render([st])
    assert "greeting ZMTP 3.1 mechanism NULL as-server 0" in text
    assert "command READY" in text and "Socket-Type=b'DEALER'" in text
    assert "command PING" in text and "ttl=10 context=637478" in text
    assert "frame 5 octets 68 65 6c 6c 6f |hello|" in text
    doc = transcript.to_json([st])
    first = doc["streams"][0]["client_to_server"]
    assert [i["kind"] for i in first[:2]] == ["greeting", "command"]
    assert first[1]["fields"]["properties"]["Socket-Type"] == b"DEALER".hex()


# -- one wrong octet, the right clause -------------------------------------------

# (who, offset in that direction, new value, check, clause); offsets in a NULL
# DEALER/ROUTER handshake: greeting 0-63, READY from 64 (flags 64, size 65,
# name size 66, name 67-71, first property name size 72, name 73-83).
CORRUPTIONS = [
    ("c", 9, 0x7D, "greeting-signature", "37/ZMTP#formal-grammar"),  # (7E would mean a ZMTP 1.0 peer)
    ("s", 12, ord("n"), "greeting-mechanism", "37/ZMTP#formal-grammar"),
    ("c", 32, 0x02, "greeting-as-server", "37/ZMTP#formal-grammar"),
    ("s", 50, 0x01, "greeting-filler", "37/ZMTP#formal-grammar"),
    ("s", 32, 0x01, "greeting-as-server-role", "37/ZMTP#the-null-security-mechanism"),
    ("c", 64, 0x0C, "frame-reserved-flags", "37/ZMTP#framing"),
    ("s", 64, 0x05, "command-more", "37/ZMTP#framing"),
    ("c", 70, ord("1"), "command-name", "37/ZMTP#formal-grammar"),
    ("s", 75, ord(" "), "property-name", "37/ZMTP#connection-metadata"),
    ("c", 67, ord("X"), "handshake-order", "37/ZMTP#the-null-security-mechanism"),
    ("c", 73, ord("X"), "ready-socket-type", "37/ZMTP#the-socket-type-property"),
]


@pytest.mark.parametrize(("who", "offset", "value", "check", "clause"), CORRUPTIONS, ids=[c[3] for c in CORRUPTIONS])
def test_one_wrong_octet_is_named(tmp_path, who, offset, value, check, clause):
    chunks = conversation(*null_pair())
    bad = corrupt(chunks, who, offset, value)
    found = violations(tmp_path, bad)
    assert any(v.check == check and v.clause == clause for v in found), found
    hit = next(v for v in found if v.check == check)
    assert hit.sender == ("client" if who == "c" else "server")
    assert hit.offset <= offset and hit.octets


@pytest.mark.parametrize(
    ("make", "clause"), [(lambda: plain_pair(), "24/ZMTP-PLAIN"), (lambda: curve_pair(), "25/CURVEZMQ")]
)
def test_a_secure_server_must_greet_as_server(tmp_path, make, clause):
    chunks = conversation(*make())
    assert not [v for v in violations(tmp_path, chunks) if v.check == "greeting-as-server-role"]
    # libzmq's habit: as-server 0 from the PLAIN or CURVE server.
    found = violations(tmp_path, corrupt(chunks, "s", 32, 0x00))
    (v,) = [v for v in found if v.check == "greeting-as-server-role"]
    assert (v.sender, v.clause, v.offset) == ("server", clause, 0)


def test_subscribe_command_to_a_3_0_peer(tmp_path):
    # The server greets as 3.0; a SUBSCRIBE command is then the wrong form.
    chunks = corrupt(conversation(*null_pair("SUB", "PUB")), "s", 11, 0x00)
    cmd = b"\x04\x0b\x09SUBSCRIBEt"
    found = violations(tmp_path, splice(chunks, "c", cmd))
    assert [v.check for v in found] == ["subscription-form"]
    assert found[0].clause == "37/ZMTP#the-publish-subscribe-pattern"


def test_long_ping_context_and_data_after_error(tmp_path):
    chunks = conversation(*null_pair())
    ping = b"\x04\x18\x04PING\x00\x0a" + b"c" * 17
    assert {v.check for v in violations(tmp_path, splice(chunks, "c", ping))} == {"ping-context"}
    after = splice(splice(chunks, "s", b"\x04\x07\x05ERROR\x00"), "s", b"\x00\x01x")
    assert [v.check for v in violations(tmp_path, after)] == ["after-error"]


def test_libzmq_plain_error_is_malformed(tmp_path):
    # What libzmq's PLAIN server sends on a ZAP refusal (deviations.yaml).
    client, server = plain_pair()
    chunks = conversation(client, server)
    client_bytes = b"".join(c[1] for c in chunks if c[0] == "c")
    server_greeting = b"".join(c[1] for c in chunks if c[0] == "s")[:64]
    hello = client_bytes[64:84]
    assert hello[3:8] == b"HELLO"
    t = chunks[0][2]
    bad = [
        ("c", client_bytes[:64], t),
        ("s", server_greeting, t),
        ("c", hello, t),
        ("s", bytes.fromhex("04095e52524f5203343030"), t),
    ]
    found = violations(tmp_path, bad)
    assert any(v.check == "frame-malformed" and v.sender == "server" for v in found), found


def test_curve_nonce_must_increase(tmp_path):
    def twice(client, server):
        client.send_message([b"a"])
        first = client.data_to_send()
        chunks.append(("c", first, 1_800_000_000.0))
        chunks.append(("c", first, 1_800_000_000.1))  # the same MESSAGE, same nonce, again

    chunks: list[synth.Chunk] = []
    c, s = curve_pair()
    chunks[:0] = conversation(c, s)
    twice(c, s)
    found = violations(tmp_path, chunks)
    assert "curve-nonce-order" in {v.check for v in found}


def test_curve_hello_size(tmp_path):
    chunks = conversation(*curve_pair())
    # Cut HELLO's size octet from 200 to 199: the dissector sees a 199-octet HELLO.
    bad = corrupt(chunks, "c", 65, 199)
    found = violations(tmp_path, bad)
    assert "curve-hello-size" in {v.check for v in found}


# -- pcap and TCP -------------------------------------------------------------


def test_reassembly_survives_reordering_and_retransmission(tmp_path):
    chunks = conversation(*null_pair(), after=traffic)
    path = tmp_path / "a.pcap"
    synth.write_conversation(path, chunks)
    _, records = pcap.read(path)
    data = records[3:-2]
    shuffled = [*records[:3], data[1], data[0], data[0], *data[2:], *records[-2:]]  # swap, and resend one
    out = tmp_path / "b.pcap"
    with pcap.Writer(out) as w:
        for r in shuffled:
            w.write(r)
    (a,) = transcript.load_streams(path)
    (b,) = transcript.load_streams(out)
    assert bytes(a.to_server.data) == bytes(b.to_server.data)
    assert bytes(a.to_client.data) == bytes(b.to_client.data)
    assert b.to_server.retransmissions + b.to_client.retransmissions == 1


def test_pcap_errors_are_clear(tmp_path):
    ng = tmp_path / "x.pcapng"
    ng.write_bytes(b"\x0a\x0d\x0d\x0a" + b"\x00" * 40)
    with pytest.raises(pcap.PcapError, match="pcapng"):
        pcap.read(ng)
    junk = tmp_path / "junk.pcap"
    junk.write_bytes(b"GET / HTTP/1.1\r\n\r\n" + b"\x00" * 10)
    with pytest.raises(pcap.PcapError, match="not a pcap"):
        pcap.read(junk)
    short = tmp_path / "short.pcap"
    short.write_bytes(b"\xd4\xc3")
    with pytest.raises(pcap.PcapError, match="too short"):
        pcap.read(short)


def test_dissect_command_line(tmp_path, capsys):
    good = tmp_path / "good.pcap"
    synth.write_conversation(good, conversation(*null_pair(), after=traffic))
    assert cli.main(["dissect", str(good), "--check"]) == 0
    assert "0 violations" in capsys.readouterr().err
    bad = tmp_path / "bad.pcap"
    synth.write_conversation(bad, corrupt(conversation(*null_pair()), "c", 64, 0x0C))
    assert cli.main(["dissect", str(bad), "--check", "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["streams"][0]["violations"][0]["check"] == "frame-reserved-flags"
    assert cli.main(["dissect", str(tmp_path / "missing.pcap")]) == 2
    assert "missing.pcap" in capsys.readouterr().err


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
def test_tshark_reads_our_pcaps_without_warnings(tmp_path):
    path = tmp_path / "t.pcap"
    synth.write_conversation(path, conversation(*null_pair(), after=traffic))
    out = subprocess.run(["tshark", "-r", str(path), "-q", "-z", "expert"], capture_output=True, text=True, check=True)
    assert "Retransmission" not in out.stdout and "Duplicate" not in out.stdout and "Previous segment" not in out.stdout


@pytest.mark.skipif(
    shutil.which("tcpdump") is None or os.geteuid() != 0, reason="capturing on lo needs tcpdump and root"
)
def test_real_loopback_capture_of_impl_and_libzmq(tmp_path):
    import asyncio

    import zmq
    import zmq.asyncio

    import zmtp

    path = tmp_path / "lo.pcap"
    zctx = zmq.asyncio.Context()
    rep = zctx.socket(zmq.REP)
    port = rep.bind_to_random_port("tcp://127.0.0.1")
    # Only this connection, and a large buffer: other traffic on lo (a benchmark, other tests) would
    # otherwise crowd the kernel's buffer and make tcpdump drop the segments this test reads.
    td = subprocess.Popen(
        ["tcpdump", "-i", "lo", "-U", "--immediate-mode", "-s", "0", "-B", "32768", "-w", str(path), f"tcp port {port}"],
        stderr=subprocess.PIPE,
        text=True,
    )
    assert td.stderr is not None
    line = td.stderr.readline()  # "listening on lo ..." once it captures
    assert "listening" in line, line

    async def exchange() -> int:
        ctx = zmtp.Context()
        req = ctx.socket(zmtp.REQ)
        await req.connect(f"tcp://127.0.0.1:{port}")
        await req.send_multipart([b"x" * 200_000])  # bigger than one loopback segment
        await rep.recv_multipart()
        await rep.send_multipart([b"ok"])
        await req.recv_multipart()
        await req.close()
        rep.close(0)
        zctx.term()
        await ctx.term()
        return port

    port = asyncio.run(exchange())
    time.sleep(0.3)
    td.terminate()
    td.wait(5)
    (st,) = transcript.load_streams(path, port)
    assert validate_stream(st) == []
    c, _ = transcript.decode_stream(st)
    assert any(i.kind == "frame" and i.fields["size"] == 200_000 for i in c.items)


# -- pcapng (Wireshark's format) ----------------------------------------------


def golden_capture(name: str):
    from zmtp_conformance import golden

    return golden.CAPTURES / name


def to_pcapng(src, dst) -> None:
    """A pcap rewritten by scapy as pcapng, as Wireshark would save it."""
    from scapy.layers.l2 import Ether
    from scapy.utils import PcapNgWriter

    _, records = pcap.read(src)
    with PcapNgWriter(str(dst)) as w:
        for r in records:
            packet = Ether(r.data)
            packet.time = r.timestamp
            w.write(packet)


def ng_block(kind: int, body: bytes) -> bytes:
    """One pcapng block, little-endian, padded to 32 bits."""
    body += b"\0" * (-len(body) % 4)
    size = len(body) + 12
    return struct.pack("<II", kind, size) + body + struct.pack("<I", size)


def test_pcapng_gives_the_records_of_the_pcap_it_was_made_from(tmp_path):
    src = golden_capture("libzmq-req-rep-null.pcap")
    ng = tmp_path / "x.pcapng"
    to_pcapng(src, ng)
    assert ng.read_bytes()[:4] == pcapng.MAGIC and pcapng.is_pcapng(ng) and not pcapng.is_pcapng(src)
    header, records = pcap.read(src)
    ng_header, ng_records = pcapng.read_any(ng)
    assert ng_header.linktype == header.linktype == pcap.LINKTYPE_ETHERNET
    assert [r.data for r in ng_records] == [r.data for r in records]
    assert [r.orig_len for r in ng_records] == [r.orig_len for r in records]
    assert [r.timestamp for r in ng_records] == pytest.approx([r.timestamp for r in records], abs=1e-6)
    assert pcapng.read_any(src) == (header, records)  # classic pcap keeps its own reader


@pytest.mark.parametrize("name", ["libzmq-req-rep-null.pcap", "czmq-pub-sub-plain.pcap", "libzmq-pair-curve.pcap"])
def test_dissect_reads_pcapng_as_it_reads_pcap(tmp_path, capsys, name):
    src = golden_capture(name)
    ng = tmp_path / name.replace(".pcap", ".pcapng")
    to_pcapng(src, ng)
    # The CURVE capture's boxes open with the key log beside it, for either format.
    shutil.copy(src.parent / "curve-keylog.txt", tmp_path / "curve-keylog.txt")
    shutil.copy(src, tmp_path / name)
    outputs, codes = [], []
    for path in (tmp_path / name, ng):
        codes.append(cli.main(["dissect", str(path), "--check", "--json"]))
        outputs.append(json.loads(capsys.readouterr().out))
    assert outputs[0] == outputs[1] and codes[0] == codes[1]
    assert outputs[0]["streams"] and outputs[0]["streams"][0]["client_to_server"]


def test_a_wrong_octet_in_a_pcapng_is_found_as_in_a_pcap(tmp_path, capsys):
    bad = tmp_path / "bad.pcap"
    synth.write_conversation(bad, corrupt(conversation(*null_pair()), "c", 64, 0x0C))
    ng = tmp_path / "bad.pcapng"
    to_pcapng(bad, ng)
    assert cli.main(["dissect", str(ng), "--check", "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["streams"][0]["violations"][0]["check"] == "frame-reserved-flags"


def test_pcapng_errors_are_clear(tmp_path):
    shb = ng_block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))

    def idb(linktype: int) -> bytes:
        return ng_block(1, struct.pack("<HHI", linktype, 0, 262144))

    def epb(interface: int, data: bytes) -> bytes:
        return ng_block(6, struct.pack("<IIIII", interface, 0, 1_000_000, len(data), len(data)) + data)

    _, records = pcap.read(golden_capture("libzmq-req-rep-null.pcap"))
    one = records[0].data
    # Two interfaces with different link types: one header cannot describe both.
    mixed = tmp_path / "mixed.pcapng"
    mixed.write_bytes(shb + idb(pcap.LINKTYPE_ETHERNET) + idb(pcap.LINKTYPE_RAW) + epb(0, one) + epb(1, one[14:]))
    with pytest.raises(pcap.PcapError, match=r"mixed.pcapng: .*different link types.*link type 1: 1 packets"):
        pcapng.read_any(mixed)
    # A file cut inside its last block (a capture still being written) stops there, quietly.
    cut = tmp_path / "cut.pcapng"
    whole = shb + idb(pcap.LINKTYPE_ETHERNET) + epb(0, one) + epb(0, records[1].data)
    cut.write_bytes(whole[:-10])
    header, got = pcapng.read_any(cut)
    assert [r.data for r in got] == [one] and header.linktype == pcap.LINKTYPE_ETHERNET
    # The section header's byte-order magic is wrong: not a pcapng file after all.
    junk = tmp_path / "junk.pcapng"
    junk.write_bytes(pcapng.MAGIC + b"\x1c\x00\x00\x00" + b"\x00" * 24)
    with pytest.raises(pcap.PcapError, match=r"junk\.pcapng: not a readable pcapng"):
        pcapng.read_any(junk)
    # The classic reader still names the format it does not read.
    with pytest.raises(pcap.PcapError, match="pcapng"):
        pcap.read(mixed)


def test_replay_reads_pcapng(tmp_path):
    ng = tmp_path / "field.pcapng"
    to_pcapng(golden_capture("libzmq-push-pull-null.pcap"), ng)
    run = [sys.executable, "-m", "zmtp_conformance.cli", "replay", str(ng), "--against", "impl"]
    proc = subprocess.run(run, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "OK:" in proc.stdout


def test_a_resource_outside_rfc_37s_grammar_is_named(tmp_path):
    # The client's READY: Socket-Type at 73-83, its value 88-93, then "Identity" at 95-102 with an
    # empty value. Renamed to "Resource" (as long), it asks for the empty resource, which the grammar
    # (1 or more resource-chars per name) does not allow.
    chunks = conversation(*null_pair())
    assert not [v for v in violations(tmp_path, chunks) if v.check == "resource-grammar"]
    for i, ch in enumerate(b"Resource"):
        chunks = corrupt(chunks, "c", 95 + i, ch)
    found = [v for v in violations(tmp_path, chunks) if v.check == "resource-grammar"]
    assert [(v.sender, v.clause, v.level) for v in found] == [("client", "37/ZMTP#new-the-resource-property", "SHALL")]


def _rfc1071(data: bytes) -> int:
    """The checksum as RFC 1071 spells it out: 16-bit words added with end-around carry."""
    if len(data) % 2:
        data += b"\0"
    total = 0
    for (word,) in struct.iter_unpack("!H", data):
        total += word
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


@pytest.mark.parametrize(
    "data",
    [b"", b"\0" * 6, b"\xff\xff", b"\xff\xff" * 3, b"\x00\x01\xff\xfe", b"\x12", bytes(range(256)) * 41, b"\x80" * 65535],
)
def test_synthesised_checksum_is_rfc_1071s(data):
    # \xff\xff sums to 0 mod 0xFFFF but is not zero: its one's-complement sum is 0xFFFF, checksum 0
    assert synth._checksum(data) == _rfc1071(data)


def test_synthesised_frames_carry_checksums_scapy_accepts():
    from scapy.layers import inet, inet6  # noqa: F401  (binds IPv4, IPv6 and TCP under Ether)
    from scapy.layers.l2 import Ether

    for payload in (b"", b"\x01", b"x" * 1001, os.urandom(4000)):
        for src, dst in ((("127.0.0.1", 40000), ("127.0.0.1", 5555)), (("::1", 40000), ("::1", 5555))):
            pkt = Ether(synth.frame(src, dst, "PA", 7, 9, payload).data)
            ip = pkt.payload
            sent = (pkt["TCP"].chksum, getattr(ip, "chksum", None))
            del pkt["TCP"].chksum
            if hasattr(ip, "chksum"):
                del ip.chksum
            again = Ether(bytes(pkt))  # scapy computes both afresh
            assert sent == (again["TCP"].chksum, getattr(again.payload, "chksum", None))
