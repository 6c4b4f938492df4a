"""PLAIN (RFC 24) with ZAP (RFC 27), against libzmq in both roles."""

from __future__ import annotations

import asyncio

import pytest
import zmq
import zmq.asyncio

import zmtp
from zmtp import command
from zmtp.connection import Connection
from zmtp.errors import AuthenticationFailed, PeerRefused, ProtocolError
from zmtp.events import AuthenticationRequested, HandshakeComplete
from zmtp.mechanisms.base import ZapSettings
from zmtp.mechanisms.plain import PlainMechanism
from zmtp.zap import ZapResponse

from .helpers import pump

T = 5.0


class Users:
    """A ZAP handler with a password table; records every request."""

    def __init__(self, table: dict[str, str], status_for_bad: int = 400) -> None:
        self.table = table
        self.status_for_bad = status_for_bad
        self.requests: list[zmtp.ZapRequest] = []

    async def authenticate(self, request: zmtp.ZapRequest) -> ZapResponse:
        self.requests.append(request)
        if self.table.get(request.username or "") == request.password:
            return ZapResponse.success(request.request_id, user_id=f"user:{request.username}")
        return ZapResponse.failure(request.request_id, "no such user", self.status_for_bad)


def plain_pair(user=b"admin", password=b"secret"):
    from functools import partial

    client = Connection("DEALER", as_server=False, mechanism=partial(PlainMechanism, username=user, password=password))
    server = Connection("ROUTER", as_server=True, mechanism=PlainMechanism, zap=ZapSettings("global", "127.0.0.1", b""))
    return client, server


def test_sans_io_plain_handshake_with_zap():
    client, server = plain_pair()
    ec, es = pump(client, server)
    assert isinstance(es[-1], AuthenticationRequested)
    req = es[-1].request
    assert (req.mechanism, req.username, req.password, req.domain) == ("PLAIN", "admin", "secret", "global")
    assert "secret" not in repr(req)  # never print a password
    events = server.authenticate(ZapResponse.success(req.request_id, "admin-id"))
    ec2, es2 = pump(client, server)
    done = [e for e in events + es2 if isinstance(e, HandshakeComplete)]
    assert done and done[0].user_id == "admin-id"
    assert any(isinstance(e, HandshakeComplete) for e in ec + ec2)


@pytest.mark.parametrize("status,error_sent", [(400, True), (500, True), (300, False)])
def test_sans_io_plain_refusal(status, error_sent):
    client, server = plain_pair()
    _, es = pump(client, server)
    with pytest.raises(AuthenticationFailed):
        server.authenticate(ZapResponse.failure(es[-1].request.request_id, "no", status))
    out = server.data_to_send()
    assert (command.error(str(status)) in out) is error_sent
    if error_sent:
        with pytest.raises(PeerRefused, match=str(status)):
            client.receive_data(out)


def test_plain_hello_with_trailing_bytes_is_refused():
    server = Connection("ROUTER", as_server=True, mechanism=PlainMechanism, zap=ZapSettings("", "", b""))
    from zmtp.frame import encode_command
    from zmtp.greeting import Greeting

    server.receive_data(Greeting(mechanism="PLAIN").encode())
    with pytest.raises(ProtocolError, match="after the password"):
        server.receive_data(encode_command(b"HELLO", b"\x01a\x01bEXTRA"))


async def test_impl_plain_server_with_libzmq_client(ctx, zctx):
    users = Users({"admin": "secret"})
    ctx.set_zap_handler(users)
    server = ctx.socket(zmtp.REP, zmtp.SocketOptions(linger=0, plain_server=True, zap_domain="test"))
    ep = await server.bind("tcp://127.0.0.1:0")
    good = zctx.socket(zmq.REQ)
    good.plain_username, good.plain_password, good.linger = b"admin", b"secret", 0
    good.connect(ep)
    await good.send(b"hello")
    assert await asyncio.wait_for(server.recv_multipart(), T) == [b"hello"]
    await server.send(b"welcome")
    assert await asyncio.wait_for(good.recv(), T) == b"welcome"
    bad = zctx.socket(zmq.REQ)
    bad.plain_username, bad.plain_password, bad.linger = b"admin", b"wrong", 0
    bad.connect(ep)
    await bad.send(b"let me in")
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(server.recv_multipart(), 0.5)
    assert [r.password for r in users.requests] == ["secret", "wrong"]
    assert users.requests[0].domain == "test" and users.requests[0].address == "127.0.0.1"


async def test_impl_plain_client_with_libzmq_server(ctx, zctx):
    zap = zctx.socket(zmq.REP)
    zap.bind("inproc://zeromq.zap.01")

    async def handler():
        while True:
            frames = await zap.recv_multipart()
            version, rid, *_, user, pw = frames
            ok = (user, pw) == (b"admin", b"secret")
            await zap.send_multipart([version, rid, b"200" if ok else b"400", b"", b"", b""])

    task = asyncio.get_running_loop().create_task(handler())
    try:
        server = zctx.socket(zmq.REP)
        server.plain_server, server.linger = True, 0
        server.bind("tcp://127.0.0.1:0")
        ep = server.last_endpoint.decode()
        client = ctx.socket(zmtp.REQ, zmtp.SocketOptions(linger=0, plain_username="admin", plain_password="secret"))
        await client.connect(ep)
        await client.send(b"hi")
        assert await asyncio.wait_for(server.recv(), T) == b"hi"
        await server.send(b"yo")
        assert await asyncio.wait_for(client.recv_multipart(), T) == [b"yo"]
        denied = ctx.socket(zmtp.REQ, zmtp.SocketOptions(linger=0, plain_username="admin", plain_password="no"))
        await denied.connect(ep)
        await denied.send(b"hi")
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(server.recv(), 0.5)
    finally:
        task.cancel()
        zap.close(0)


async def test_zap_handler_that_raises_counts_as_500(ctx, zctx, caplog):
    class Broken:
        async def authenticate(self, request):
            raise RuntimeError("database down")

    ctx.set_zap_handler(Broken())
    server = ctx.socket(zmtp.PULL, zmtp.SocketOptions(linger=0, plain_server=True))
    ep = await server.bind("tcp://127.0.0.1:0")
    client = ctx.socket(
        zmtp.PUSH, zmtp.SocketOptions(linger=0, plain_username="u", plain_password="p", reconnect_ivl=0)
    )
    await client.connect(ep)
    await client.send(b"x")
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(server.recv_multipart(), 0.5)
    assert "database down" in caplog.text and "status=500" in caplog.text
    assert "'p'" not in caplog.text  # the password never reaches the log


async def test_null_with_zap_domain_filters_by_address(ctx):
    class DenyAll:
        def __init__(self):
            self.seen = []

        async def authenticate(self, request):
            self.seen.append(request)
            return ZapResponse.failure(request.request_id, "go away")

    deny = DenyAll()
    ctx.set_zap_handler(deny)
    server = ctx.socket(zmtp.PULL, zmtp.SocketOptions(linger=0, zap_domain="strict"))
    ep = await server.bind("tcp://127.0.0.1:0")
    client = ctx.socket(zmtp.PUSH, zmtp.SocketOptions(linger=0, reconnect_ivl=0))
    await client.connect(ep)
    await client.send(b"x")
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(server.recv_multipart(), 0.5)
    assert deny.seen and deny.seen[0].mechanism == "NULL" and deny.seen[0].domain == "strict"


async def test_user_id_and_zap_metadata_reach_the_application(ctx):
    class WithMetadata(Users):
        async def authenticate(self, request):
            resp = await super().authenticate(request)
            return ZapResponse.success(request.request_id, resp.user_id, {"X-Role": b"admin"}) if resp.ok else resp

    ctx.set_zap_handler(WithMetadata({"admin": "secret"}))
    server = ctx.socket(zmtp.PULL, zmtp.SocketOptions(linger=0, plain_server=True))
    ep = await server.bind("tcp://127.0.0.1:0")
    client = ctx.socket(zmtp.PUSH, zmtp.SocketOptions(linger=0, plain_username="admin", plain_password="secret"))
    await client.connect(ep)
    await client.send(b"who am i")
    msg = await asyncio.wait_for(server.recv_message(), T)
    assert msg.frames == [b"who am i"]
    assert msg.properties["User-Id"] == b"user:admin"
    assert msg.properties["x-role"] == b"admin"
    assert msg.properties["Socket-Type"] == b"PUSH"
    assert msg.properties["Peer-Address"] == b"127.0.0.1"


def test_error_from_a_plain_client_is_a_protocol_error():
    from zmtp.greeting import Greeting

    server = Connection("ROUTER", as_server=True, mechanism=PlainMechanism, zap=ZapSettings("", "", b""))
    server.receive_data(Greeting(mechanism="PLAIN").encode())
    with pytest.raises(ProtocolError, match="never sends ERROR"):
        server.receive_data(command.error("nope"))
