"""CURVE MESSAGE in the RFC's command frame (the `curve_message_command_frame` knob).

RFC 25/26 make MESSAGE a command; libzmq sends it in a data frame and the
validator's `curve-message-frame` convention accepts both forms. The kill
matrix lists the knob as legal; these tests show what the two forms do:
impl reads both (a raw CURVE client, the judge's own codec, sends each), and
libzmq drops a MESSAGE whose frame has the COMMAND flag, which is the libzmq
deviation drafted for conformance/deviations.yaml.
"""

from __future__ import annotations

import asyncio

import pytest
import zmq
import zmq.asyncio

import zmtp
from zmtp_conformance import rawcodec
from zmtp_conformance.credentials import (
    CURVE_CLIENT_SECRET,
    CURVE_SERVER_PUBLIC,
    CURVE_SERVER_SECRET,
    client_mechanism,
)

T = 5.0


def as_command_frame(data_frames: bytes) -> bytes:
    """The same MESSAGE boxes, each re-framed with the COMMAND flag (RFC 25's form); MORE goes only inside."""
    out = bytearray()
    for f in rawcodec.FrameReader().feed(data_frames):
        assert f.body.startswith(b"\x07MESSAGE"), f.body[:16].hex(" ")
        out += rawcodec.frame(f.body, rawcodec.COMMAND)
    return bytes(out)


async def raw_curve_push(endpoint: str, frames: list[bytes], rfc_form: bool) -> asyncio.StreamWriter:
    host, port = endpoint.removeprefix("tcp://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    codec = rawcodec.Codec("PUSH", as_server=False, mechanism=client_mechanism("CURVE"))
    writer.write(codec.data_to_send())
    while not codec.ready:
        data = await asyncio.wait_for(reader.read(4096), T)
        assert data, "impl closed the connection during the CURVE handshake"
        codec.receive(data)
        writer.write(codec.data_to_send())
    codec.send_message(frames)
    wire = codec.data_to_send()
    writer.write(as_command_frame(wire) if rfc_form else wire)
    await writer.drain()
    return writer


@pytest.mark.parametrize("rfc_form", [False, True], ids=["data-frame", "command-frame"])
async def test_impl_reads_message_in_either_frame(ctx, rfc_form):
    pull = ctx.socket(zmtp.PULL, zmtp.SocketOptions(linger=0, curve_server=True, curve_secretkey=CURVE_SERVER_SECRET))
    ep = await pull.bind("tcp://127.0.0.1:0")
    writer = await raw_curve_push(ep, [b"first", b"second"], rfc_form)
    try:
        assert await asyncio.wait_for(pull.recv_multipart(), T) == [b"first", b"second"]
    finally:
        writer.close()


def test_command_frame_rewrite_sets_the_flag_and_keeps_the_box():
    """The helper the test above relies on: a data-frame MESSAGE becomes the same body with COMMAND set."""
    body = b"\x07MESSAGE" + bytes(8) + bytes(17)
    rewritten = as_command_frame(rawcodec.frame(body, rawcodec.MORE))
    assert rewritten == bytes((rawcodec.COMMAND, len(body))) + body
    with pytest.raises(AssertionError):
        as_command_frame(rawcodec.frame(b"\x04PING\x00\x00"))


async def impl_push_to_libzmq(ctx, zctx, bugs: zmtp.ProtocolBugs) -> tuple[zmq.asyncio.Socket, zmtp.Socket]:
    pull = zctx.socket(zmq.PULL)
    pull.curve_server, pull.curve_secretkey, pull.linger = True, CURVE_SERVER_SECRET.encode(), 0
    pull.bind("tcp://127.0.0.1:0")
    push = ctx.socket(
        zmtp.PUSH,
        zmtp.SocketOptions(
            linger=0,
            curve_secretkey=CURVE_CLIENT_SECRET,
            curve_serverkey=CURVE_SERVER_PUBLIC,
            reconnect_ivl=0,
            bugs=bugs,
        ),
    )
    await push.connect(pull.last_endpoint.decode())
    return pull, push


async def test_libzmq_reads_the_data_frame_form(ctx, zctx):
    pull, push = await impl_push_to_libzmq(ctx, zctx, zmtp.ProtocolBugs())
    await push.send_multipart([b"hello", b"world"])
    assert await asyncio.wait_for(pull.recv_multipart(), T) == [b"hello", b"world"]


async def test_libzmq_drops_the_rfc_command_frame_form(ctx, zctx):
    """libzmq's decode keeps the outer COMMAND flag on the decrypted frame and handles it as a command:
    the application never sees the message (libzmq deviates from RFC 25/26 here)."""
    pull, push = await impl_push_to_libzmq(ctx, zctx, zmtp.ProtocolBugs(curve_message_command_frame=True))
    for i in range(3):
        await push.send_multipart([b"hello %d" % i])
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(pull.recv_multipart(), 1.0)
