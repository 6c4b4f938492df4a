"""ipc:// reached two ways: a Unix socket, or JeroMQ's tcp emulation (a loopback port hashed from the
path). An ipc cell runs only when all its parties go one way, and the harness then goes that way too."""

from __future__ import annotations

import asyncio
import socket
from types import SimpleNamespace

import pytest
from scenario_samples import push_pull, write

from zmtp_conformance import endpoints
from zmtp_conformance.capture.proxy import RecordingProxy
from zmtp_conformance.cells import Cell, Unsupported
from zmtp_conformance.endpoints import JEROMQ, UNIX
from zmtp_conformance.runner import CellRun
from zmtp_conformance.scenario import load_file


@pytest.mark.parametrize(
    "text, expected",
    [
        ("", 0),
        ("hello", 99162322),  # the value Java's documentation examples give
        ("polygenelubricants", -(1 << 31)),  # the well-known string whose hash is Integer.MIN_VALUE
        ("é", 233),
        ("\U0001f600", 0xD83D * 31 + 0xDE00),  # two UTF-16 code units, as Java counts them
    ],
)
def test_the_hash_is_javas_string_hashcode(text, expected):
    assert endpoints.java_string_hash(text) == expected


def test_jeromqs_port_is_10000_plus_the_hash_modulo_55536_with_javas_signs():
    assert endpoints.jeromq_port("hello") == 99162322 % 55536 + 10000
    negative = "/tmp/zmtp-conformance/cell-1-abc.ipc"
    assert endpoints.java_string_hash(negative) < 0
    assert endpoints.jeromq_port(negative) == -endpoints.java_string_hash(negative) % 55536 + 10000
    # -MIN_VALUE overflows to itself in Java, and the remainder keeps its sign: no usable port.
    assert endpoints.jeromq_port("polygenelubricants") == -(2**31 % 55536) + 10000 < 10000


def test_a_jeromq_path_names_a_free_port_below_the_ephemeral_range():
    for _ in range(20):
        port = endpoints.jeromq_port(endpoints.ipc_path("cell", JEROMQ))
        assert 10000 <= port < endpoints.ephemeral_floor()


def test_parties_that_go_different_ways_cannot_meet():
    assert endpoints.ipc_mismatch({"jeromq-0.6.0": JEROMQ}) is None
    assert endpoints.ipc_mismatch({"libzmq-4.3.5": UNIX, "impl": UNIX}) is None
    why = endpoints.ipc_mismatch({"jeromq-0.6.0": JEROMQ, "libzmq-4.3.5": UNIX})
    assert why and "jeromq-0.6.0: JeroMQ's emulation" in why and "libzmq-4.3.5: a Unix-domain socket" in why


def test_an_unknown_way_in_a_hello_is_an_error_naming_the_peer():
    assert endpoints.ipc_kind("zmq4", {}) == UNIX
    with pytest.raises(ValueError, match="zmq4's hello says ipc 'tcp'"):
        endpoints.ipc_kind("zmq4", {"ipc": "tcp"})


def test_the_recording_proxy_stands_in_front_of_a_jeromq_ipc_server_the_jeromq_way():
    async def go() -> None:
        target = f"ipc://{endpoints.ipc_path('cell', JEROMQ)}"

        async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(await reader.readexactly(5))
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(echo, "127.0.0.1", endpoints.jeromq_port(target[6:]))
        proxy = RecordingProxy(target, JEROMQ)
        try:
            ep = await proxy.start()
            assert ep.startswith("ipc://") and ep != target
            # A JeroMQ client given the proxy's path connects to the port hashed from it.
            reader, writer = await asyncio.open_connection("127.0.0.1", endpoints.jeromq_port(ep[6:]))
            writer.write(b"hello")
            assert await reader.readexactly(5) == b"hello"
            writer.close()
            await asyncio.sleep(0.05)
            (conv,) = proxy.conversations
            assert isinstance(conv.client, tuple)  # a tcp conversation, with the client's real port
            assert b"".join(d for who, d, _ in conv.chunks if who == "c") == b"hello"
        finally:
            await proxy.close()
            server.close()

    asyncio.run(go())


def test_a_deferred_proxy_for_jeromq_listens_only_when_told():
    async def go() -> None:
        proxy = RecordingProxy(f"ipc://{endpoints.ipc_path('cell', JEROMQ)}", JEROMQ)
        ep = await proxy.start(listen=False)
        port = endpoints.jeromq_port(ep[6:])
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", port)) != 0  # nothing there yet
        await proxy.listen()
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
        finally:
            await proxy.close()

    asyncio.run(go())


class HelloPool:
    """Agents that are only their hellos: all CellRun.ipc_way asks of them."""

    def __init__(self, hellos: dict[str, dict]) -> None:
        self.hellos = hellos

    async def get(self, peer: str, side: str) -> SimpleNamespace:
        return SimpleNamespace(name=f"{peer}/{side}", hello=self.hellos[peer])


def _way(tmp_path, server: str, client: str, hellos: dict[str, dict], roles: str = "") -> str:
    text = push_pull("ipc-ways", "  - client.send: [a]\n  - server.expect: [a]\n").replace("[tcp]", "[ipc]")
    if roles:
        text = text.replace("roles:\n", f"roles:\n{roles}")
    sc = load_file(write(tmp_path, text))
    run = CellRun(Cell(sc, server, client, "ipc", "NULL"), HelloPool(hellos))  # type: ignore[arg-type]
    ordered = sorted(sc.roles.values(), key=lambda r: r.side != "server")
    return asyncio.run(run.ipc_way(ordered))


def test_two_jeromq_peers_meet_over_ipc_the_jeromq_way(tmp_path):
    hellos = {"jeromq-0.6.0": {"ipc": "jeromq"}}
    assert _way(tmp_path, "jeromq-0.6.0", "jeromq-0.6.0", hellos) == JEROMQ


def test_jeromq_and_a_unix_socket_peer_share_no_ipc_in_either_order(tmp_path):
    hellos = {"jeromq-0.6.0": {"ipc": "jeromq"}, "impl": {}}
    for server, client in (("jeromq-0.6.0", "impl"), ("impl", "jeromq-0.6.0")):
        with pytest.raises(Unsupported, match="none reaches the other"):
            _way(tmp_path, server, client, hellos)
    assert _way(tmp_path, "impl", "impl", hellos) == UNIX


def test_a_raw_role_opens_a_unix_socket_so_jeromq_cannot_meet_it(tmp_path):
    hellos = {"jeromq-0.6.0": {"ipc": "jeromq"}}
    with pytest.raises(Unsupported, match="the raw peer: a Unix-domain socket"):
        _way(tmp_path, "jeromq-0.6.0", "jeromq-0.6.0", hellos, roles="  watcher: {side: client, raw: true}\n")
