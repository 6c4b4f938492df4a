"""RFC 37's Resource: endpoint syntax, the property a client sends, and services sharing one port."""

from __future__ import annotations

import asyncio
import errno
import struct

import pytest

import zmtp
from zmtp.connection import Connection
from zmtp.endpoint import Endpoint
from zmtp.events import HandshakeComplete, ServiceRequested
from zmtp.zap import ZapResponse

from .helpers import pump
from .rawpeer import RawPeer

T = 5.0
RULE = "all services that use the same endpoint SHALL use the same security credentials"


def port_of(endpoint: str) -> int:
    return int(endpoint.removeprefix("tcp://").split("/", 1)[0].rsplit(":", 1)[1])


def base(endpoint: str) -> str:
    """The endpoint without its resource (what RawPeer.open takes)."""
    return "tcp://" + endpoint.removeprefix("tcp://").split("/", 1)[0]


# -- endpoint syntax -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "resource"),
    [
        ("tcp://eth0:6000/system/name-service/test", "system/name-service/test"),  # RFC 37's example
        ("tcp://127.0.0.1:5555/a", "a"),
        ("tcp://127.0.0.1:5555/Az09$-_@.&+", "Az09$-_@.&+"),
        ("tcp://[::1]:5555/x/y", "x/y"),
        ("tcp://127.0.0.1:5555", ""),
    ],
)
def test_endpoint_resource_round_trips(text, resource):
    ep = Endpoint.parse(text)
    assert ep.resource == resource
    assert str(ep) == text
    assert Endpoint.parse(str(ep)) == ep


@pytest.mark.parametrize(
    ("text", "expect"),
    [
        ("tcp://h:1/a//b", "resource-name number 2 (at offset 2) is empty"),
        ("tcp://h:1//a", "resource-name first (at offset 0) is empty"),
        ("tcp://h:1/a/", "resource-name last (at offset 2) is empty"),
        ("tcp://h:1/", "a resource must follow the '/'"),
        ("tcp://h:1/a b", "character ' ' at offset 1 is not a resource-char"),
        ("tcp://h:1/caf\u00e9", "character '\u00e9' at offset 3"),  # ALPHA is ASCII only
        ("tcp://h:1/a%20b", "character '%' at offset 1"),
        ("tcp://h:1/a?b", "character '?'"),
    ],
)
def test_endpoint_refuses_resources_off_the_grammar(text, expect):
    with pytest.raises(ValueError) as info:
        Endpoint.parse(text)
    message = str(info.value)
    assert expect in message
    assert 'resource = resource-name *("/" resource-name)' in message


def test_ipc_paths_keep_their_slashes():
    ep = Endpoint.parse("ipc:///tmp/some/dir/sock")
    assert (ep.path, ep.resource, str(ep)) == ("/tmp/some/dir/sock", "", "ipc:///tmp/some/dir/sock")
    with pytest.raises(ValueError, match="only tcp"):
        Endpoint("ipc", path="/tmp/x", resource="a")
    with pytest.raises(ValueError, match="not a resource-char"):
        Endpoint("tcp", host="h", port=1, resource="a b")


# -- the client's READY / INITIATE -----------------------------------------------

NULL_SERVER_GREETING = b"\xff" + bytes(8) + b"\x7f" + b"\x03\x01" + b"NULL".ljust(20, b"\x00") + b"\x00" + bytes(31)


async def read_ready_properties(reader: asyncio.StreamReader) -> dict[str, bytes]:
    """Read a NULL client's greeting and READY off the wire, and decode the READY by hand."""
    greeting = await reader.readexactly(64)
    assert greeting[0] == 0xFF and greeting[12:16] == b"NULL"
    flags, size = await reader.readexactly(2)
    assert flags == 0x04  # a short command frame
    body = await reader.readexactly(size)
    assert body[:6] == b"\x05READY"
    props, pos = {}, 6
    while pos < len(body):
        n = body[pos]
        name = body[pos + 1 : pos + 1 + n].decode()
        (vlen,) = struct.unpack(">I", body[pos + 1 + n : pos + 5 + n])
        props[name] = body[pos + 5 + n : pos + 5 + n + vlen]
        pos += 5 + n + vlen
    return props


async def test_client_ready_carries_the_resource_and_keeps_it_on_reconnect(ctx):
    accepted: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()

    async def on_connect(reader, writer):
        writer.write(NULL_SERVER_GREETING)
        await accepted.put((reader, writer))

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        dealer = ctx.socket(zmtp.DEALER, zmtp.SocketOptions(reconnect_ivl=0.05, routing_id=b"me"))
        await dealer.connect(f"tcp://127.0.0.1:{port}/system/name-service/test")
        for _ in range(2):  # the first connection, then the one after it drops
            reader, writer = await asyncio.wait_for(accepted.get(), T)
            props = await asyncio.wait_for(read_ready_properties(reader), T)
            assert props == {"Socket-Type": b"DEALER", "Identity": b"me", "Resource": b"system/name-service/test"}
            writer.close()
        # Without a resource, nothing changes: no Resource property at all.
        push = ctx.socket(zmtp.PUSH)
        await push.connect(f"tcp://127.0.0.1:{port}")
        reader, _ = await asyncio.wait_for(accepted.get(), T)
        assert await asyncio.wait_for(read_ready_properties(reader), T) == {"Socket-Type": b"PUSH"}
    finally:
        server.close()


def test_sans_io_server_waits_for_its_service_before_ready():
    client = Connection("REQ", as_server=False, resource="echo")
    server = Connection("ROUTER", as_server=True, serve_by_resource=True)
    ec, es = pump(client, server)
    assert es[-1] == ServiceRequested("echo")
    assert not any(isinstance(e, HandshakeComplete) for e in ec + es)
    assert server.data_to_send() == b""  # no READY before the service is known
    events = server.serve_as("REP")
    assert any(isinstance(e, HandshakeComplete) for e in events)
    ec2, _ = pump(client, server)
    done = [e for e in ec2 if isinstance(e, HandshakeComplete)]
    assert done and done[0].peer_socket_type == "REP"  # the serving socket's type, not the first one's


def test_sans_io_serving_socket_type_is_checked():
    client = Connection("PUSH", as_server=False, resource="echo")
    server = Connection("PULL", as_server=True, serve_by_resource=True)  # PUSH-PULL would pass
    pump(client, server)
    with pytest.raises(zmtp.HandshakeError, match="REP cannot talk to 'PUSH'"):
        server.serve_as("REP")
    assert b"Invalid-socket-type" in server.data_to_send()


# -- services sharing a port ---------------------------------------------------


class AllowAll:
    async def authenticate(self, request: zmtp.ZapRequest) -> ZapResponse:
        return ZapResponse.success(request.request_id, user_id=request.username or "")


SERVER_KEYS = zmtp.CurveKeyPair.generate()
CLIENT_KEYS = zmtp.CurveKeyPair.generate()


def security(mechanism: str) -> tuple[zmtp.SocketOptions, zmtp.SocketOptions]:
    """Options for a binding server and a connecting client under `mechanism`."""
    if mechanism == "PLAIN":
        return (
            zmtp.SocketOptions(plain_server=True, linger=0),
            zmtp.SocketOptions(plain_username="user", plain_password="pw", linger=0),
        )
    if mechanism == "CURVE":
        return (
            zmtp.SocketOptions(curve_server=True, curve_secretkey=SERVER_KEYS.secret, linger=0),
            zmtp.SocketOptions(curve_secretkey=CLIENT_KEYS.secret, curve_serverkey=SERVER_KEYS.public, linger=0),
        )
    if mechanism == "NULL+ZAP":  # ZAP runs before the service is chosen, then the handshake waits for it
        return zmtp.SocketOptions(zap_domain="global", linger=0), zmtp.SocketOptions(linger=0)
    return zmtp.SocketOptions(linger=0), zmtp.SocketOptions(linger=0)


async def recv_all(sock: zmtp.Socket, n: int) -> list[bytes]:
    return [await asyncio.wait_for(sock.recv(), T) for _ in range(n)]


async def nothing_arrives(sock: zmtp.Socket, wait: float = 0.3) -> bool:
    try:
        await asyncio.wait_for(sock.recv(), wait)
    except TimeoutError:
        return True
    return False


@pytest.mark.parametrize("mechanism", ["NULL", "NULL+ZAP", "PLAIN", "CURVE"])
async def test_services_behind_one_port_each_get_their_own_clients(ctx, mechanism):
    ctx.set_zap_handler(AllowAll() if mechanism in ("PLAIN", "NULL+ZAP") else None)
    server_opts, client_opts = security(mechanism)
    rep = ctx.socket(zmtp.REP, server_opts)
    echo = await rep.bind("tcp://127.0.0.1:0/echo")
    port = port_of(echo)
    assert echo == f"tcp://127.0.0.1:{port}/echo"
    # Two services of one type too: only the Resource can tell them apart.
    pull_a, pull_b = ctx.socket(zmtp.PULL, server_opts), ctx.socket(zmtp.PULL, server_opts)
    assert await pull_a.bind(f"tcp://127.0.0.1:{port}/queue/a") == f"tcp://127.0.0.1:{port}/queue/a"
    assert await pull_b.bind(f"tcp://127.0.0.1:{port}/queue/b") == f"tcp://127.0.0.1:{port}/queue/b"

    req = ctx.socket(zmtp.REQ, client_opts)
    push_a, push_b = ctx.socket(zmtp.PUSH, client_opts), ctx.socket(zmtp.PUSH, client_opts)
    await req.connect(echo)
    await push_a.connect(f"tcp://127.0.0.1:{port}/queue/a")
    await push_b.connect(f"tcp://127.0.0.1:{port}/queue/b")

    for i in range(3):
        await push_a.send(b"a%d" % i)
        await push_b.send(b"b%d" % i)
    await req.send(b"ping")
    assert await asyncio.wait_for(rep.recv(), T) == b"ping"
    await rep.send(b"pong")
    assert await asyncio.wait_for(req.recv(), T) == b"pong"
    assert await recv_all(pull_a, 3) == [b"a0", b"a1", b"a2"]
    assert await recv_all(pull_b, 3) == [b"b0", b"b1", b"b2"]
    assert await nothing_arrives(pull_a, 0.1) and await nothing_arrives(pull_b, 0.1)
    # Each service holds exactly its own client.
    assert [len(s.peers) for s in (rep, pull_a, pull_b)] == [1, 1, 1]
    if mechanism == "PLAIN":  # ZAP's verdict reaches the serving socket's messages
        await push_a.send(b"who")
        msg = await asyncio.wait_for(pull_a.recv_message(), T)
        assert msg.properties["User-Id"] == b"user" and msg.properties["Resource"] == b"queue/a"


async def test_serving_socket_reports_the_connection(ctx):
    rep = ctx.socket(zmtp.REP)
    echo = await rep.bind("tcp://127.0.0.1:0/echo")
    pull = ctx.socket(zmtp.PULL)
    await pull.bind(base(echo) + "/sink")
    rep_mon, pull_mon = rep.monitor(), pull.monitor()
    push = ctx.socket(zmtp.PUSH)
    await push.connect(base(echo) + "/sink")
    await push.send(b"x")
    assert await asyncio.wait_for(pull.recv(), T) == b"x"
    kinds = [(e.kind, e.endpoint) for e in pull_mon.drain()]
    assert (zmtp.EventKind.ACCEPTED, base(echo) + "/sink") in kinds
    assert (zmtp.EventKind.HANDSHAKE_SUCCEEDED, base(echo) + "/sink") in kinds
    assert not [e for e in rep_mon.drain() if e.kind is not zmtp.EventKind.LISTENING]


async def test_unknown_or_no_resource_goes_to_the_default_service(ctx):
    default = ctx.socket(zmtp.PULL)
    ep = await default.bind("tcp://127.0.0.1:0")
    known = ctx.socket(zmtp.PULL)
    await known.bind(ep + "/known")
    pushes = {}
    for name in ("unknown/thing", "", "known"):
        pushes[name] = ctx.socket(zmtp.PUSH)
        await pushes[name].connect(ep + (f"/{name}" if name else ""))
        await pushes[name].send(name.encode() or b"none")
    assert sorted(await recv_all(default, 2)) == [b"none", b"unknown/thing"]
    assert await recv_all(known, 1) == [b"known"]
    assert await nothing_arrives(known, 0.1)


async def test_a_connection_for_a_resource_bound_later_is_held_then_served(ctx):
    first = ctx.socket(zmtp.PULL)
    ep = base(await first.bind("tcp://127.0.0.1:0/first"))
    push = ctx.socket(zmtp.PUSH)
    await push.connect(ep + "/later")
    await push.send(b"for later")
    await asyncio.sleep(0.3)
    assert push.peers == []  # connected, but the handshake waits for the service
    assert await nothing_arrives(first, 0.05)
    later = ctx.socket(zmtp.PULL)
    await later.bind(ep + "/later")
    assert await asyncio.wait_for(later.recv(), T) == b"for later"
    assert len(push.peers) == 1


async def test_a_held_connection_goes_to_a_default_service_bound_later(ctx):
    first = ctx.socket(zmtp.PULL)
    ep = base(await first.bind("tcp://127.0.0.1:0/first"))
    push = ctx.socket(zmtp.PUSH)
    await push.connect(ep + "/nobody")
    await push.send(b"anyone?")
    await asyncio.sleep(0.2)
    default = ctx.socket(zmtp.PULL)
    await default.bind(ep)
    assert await asyncio.wait_for(default.recv(), T) == b"anyone?"


async def test_a_held_connection_is_closed_when_the_last_service_goes(ctx):
    pull = ctx.socket(zmtp.PULL)
    bound = await pull.bind("tcp://127.0.0.1:0/only")
    peer = await RawPeer.open(base(bound), Connection("PUSH", as_server=False, resource="elsewhere"))
    try:
        with pytest.raises(TimeoutError):  # held: neither served nor refused
            await peer.handshake(timeout=0.3)
        await pull.unbind(bound)
        await peer.closed_by_peer(T)
        # The port is free again: the listener is gone.
        again = ctx.socket(zmtp.PULL)
        assert await again.bind(base(bound)) == base(bound)
    finally:
        peer.close()


async def test_a_peer_of_the_wrong_type_for_its_service_is_refused(ctx):
    rep = ctx.socket(zmtp.REP)
    echo = await rep.bind("tcp://127.0.0.1:0/echo")
    default = ctx.socket(zmtp.PULL)  # would take a PUSH; the REP must not
    await default.bind(base(echo))
    peer = await RawPeer.open(base(echo), Connection("PUSH", as_server=False, resource="echo"))
    try:
        with pytest.raises(zmtp.PeerRefused) as info:
            await peer.handshake(T)
        assert info.value.reason == "Invalid-socket-type"
    finally:
        peer.close()


async def test_a_bind_with_other_security_fails_quoting_the_rfc(ctx):
    ctx.set_zap_handler(AllowAll())
    rep = ctx.socket(zmtp.REP)
    ep = base(await rep.bind("tcp://127.0.0.1:0/open"))
    plain = ctx.socket(zmtp.PULL, zmtp.SocketOptions(plain_server=True))
    with pytest.raises(zmtp.SecurityMismatch) as info:
        await plain.bind(ep + "/secret")
    assert RULE in str(info.value) and "mechanism 'PLAIN'" in str(info.value) and ep + "/secret" in str(info.value)
    zapped = ctx.socket(zmtp.PULL, zmtp.SocketOptions(zap_domain="other"))
    with pytest.raises(zmtp.SecurityMismatch, match="zap_domain 'other'"):
        await zapped.bind(ep + "/zapped")

    curve = ctx.socket(zmtp.REP, zmtp.SocketOptions(curve_server=True, curve_secretkey=SERVER_KEYS.secret))
    cep = base(await curve.bind("tcp://127.0.0.1:0/a"))
    other_key = ctx.socket(zmtp.PULL, zmtp.SocketOptions(curve_server=True, curve_secretkey=CLIENT_KEYS.secret))
    with pytest.raises(zmtp.SecurityMismatch) as info:
        await other_key.bind(cep + "/b")
    text = str(info.value)
    assert "curve_secretkey" in text and RULE in text
    assert CLIENT_KEYS.secret_z85 not in text and repr(CLIENT_KEYS.secret) not in text  # secrets stay secret
    same_key = ctx.socket(zmtp.PULL, zmtp.SocketOptions(curve_server=True, curve_secretkey=SERVER_KEYS.secret_z85))
    assert await same_key.bind(cep + "/b") == cep + "/b"  # the same key, spelt otherwise, is the same


async def test_a_resource_bound_twice_fails_like_eaddrinuse(ctx):
    a = ctx.socket(zmtp.PULL)
    bound = await a.bind("tcp://127.0.0.1:0/a")
    b = ctx.socket(zmtp.PULL)
    with pytest.raises(OSError) as info:
        await b.bind(bound)
    assert info.value.errno == errno.EADDRINUSE and "'a' is already bound" in str(info.value)
    await b.bind(base(bound))  # the default service is another one
    c = ctx.socket(zmtp.PULL)
    with pytest.raises(OSError) as info:
        await c.bind(base(bound))
    assert info.value.errno == errno.EADDRINUSE


async def test_unbinding_one_service_keeps_the_others(ctx):
    a, b = ctx.socket(zmtp.PULL), ctx.socket(zmtp.PULL)
    bound_a = await a.bind("tcp://127.0.0.1:0/a")
    ep = base(bound_a)
    await b.bind(ep + "/b")
    await a.close()
    push = ctx.socket(zmtp.PUSH)
    await push.connect(ep + "/b")
    await push.send(b"still here")
    assert await asyncio.wait_for(b.recv(), T) == b"still here"
    a2 = ctx.socket(zmtp.PULL)
    assert await a2.bind(bound_a) == bound_a  # its resource is free again


async def test_a_plain_bind_alone_is_served_as_before(ctx):
    """No resource and no other service: the socket owns its connections from the first octet,
    and a peer that asks for a Resource anyway is accepted (RFC 37: "SHALL accept all")."""
    pull = ctx.socket(zmtp.PULL)
    ep = await pull.bind("tcp://127.0.0.1:0")
    assert ep == f"tcp://127.0.0.1:{port_of(ep)}"  # no trailing slash
    peer = await RawPeer.open(ep, Connection("PUSH", as_server=False, resource="system/name-service/test"))
    try:
        await peer.handshake(T)
        peer.conn.send_message([b"hello"])
        await peer.flush()
        msg = await asyncio.wait_for(pull.recv_message(), T)
        assert msg.frames == [b"hello"]
        assert msg.properties["Resource"] == b"system/name-service/test"
        (pipe,) = pull.peers
        assert pipe.engine is not None and pipe.engine.socket is pull and pipe.engine._router is None
    finally:
        peer.close()
