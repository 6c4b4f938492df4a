"""One replay: set the live peer up as the capture shows, play one side, compare the other."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from .. import protocol, rawcodec
from ..capture.dissect import Decoder, Item
from ..capture.transcript import load_streams, timeline
from ..capture.validator import decode_stream
from ..credentials import z85_decode
from ..peers import AgentPool
from .application import PeerApplication
from .live import LiveSide, inner_item
from .verdict import (
    DIFFERS,
    EXTRA,
    MISSING,
    NOT_REPLAYED,
    TIMING,
    ReplayReport,
    Verdict,
    compare,
    is_heartbeat,
    properties,
)

PATIENCE = 0.2  # how long to wait for the live peer before suspecting it waits for the harness


class ReplayError(Exception):
    """The capture cannot be replayed as asked; the message says why and what to give instead."""


def parse_key(text: str, what: str = "key") -> bytes:
    """A CURVE key as manifests and users give it: 40 Z85 characters or 64 hex digits."""
    try:
        if len(text) == 40:
            return z85_decode(text)
        if len(text) == 64:
            return bytes.fromhex(text)
    except ValueError as exc:
        raise ReplayError(f"{what}: {exc}") from None
    raise ReplayError(f"{what}: {len(text)} characters; a CURVE key is 40 Z85 characters or 64 hex digits")


def _socket_type(items: list[Item]) -> str | None:
    for it in items:
        if it.kind == "command" and it.name in ("READY", "INITIATE") and "properties" in it.fields:
            st = properties(it).get("socket-type")
            if st:
                return st.decode(errors="replace")
    return None


def _plain_credentials(items: list[Item]) -> tuple[str, str] | None:
    for it in items:
        if it.kind == "command" and it.name == "HELLO":
            data = bytes(it.body)
            u = data[0]
            p = data[1 + u]
            return data[1 : 1 + u].decode(), data[2 + u : 2 + u + p].decode()
    return None


class Replay:
    def __init__(
        self,
        path: Path,
        against: str,
        pool: AgentPool,
        play: str = "client",
        stream: int | None = None,
        entry: dict[str, Any] | None = None,
        keys: dict[str, str] | None = None,
        timeout: float = 2.0,
        keylog: Path | None = None,
    ) -> None:
        if play not in ("client", "server"):
            raise ReplayError(f"--play must be client or server, not {play!r}")
        streams = [s for s in load_streams(path) if s.to_server.data and s.to_client.data]
        if not streams:
            raise ReplayError(f"{path}: no TCP stream with data both ways")
        if stream is None:
            self.stream = streams[0]
        else:
            found = [s for s in streams if s.index == stream]
            if not found:
                raise ReplayError(f"{path}: no stream {stream}; it has {', '.join(str(s.index) for s in streams)}")
            self.stream = found[0]
        self.path, self.against, self.pool, self.play = path, against, pool, play
        self.peer_side = "server" if play == "client" else "client"
        self.entry = entry or {}
        self.timeout = timeout
        c, s = decode_stream(self.stream)
        self.harness_dec, self.peer_dec = (c, s) if play == "client" else (s, c)
        self.mechanism = c.mechanism or s.mechanism or "NULL"
        self.keys = {**((self.entry.get("keys") or {}).get("curve") or {}), **(keys or {})}
        if self.mechanism == "CURVE":
            self._open_boxes(keylog)
        self.peer_type = self._type(self.peer_side, self.peer_dec)
        self.harness_type = self._type(play, self.harness_dec)

    def _open_boxes(self, keylog: Path | None) -> None:
        """Open the captured boxes, where a key log (given, named by the manifest, or beside the file) allows."""
        from ..capture.curvebox import CurveKeys, open_stream
        from ..capture.keylog import KeylogError, read

        if keylog is None and self.entry.get("keylog"):
            keylog = self.path.parent / self.entry["keylog"]
        if keylog is None and (self.path.parent / "curve-keylog.txt").exists():
            keylog = self.path.parent / "curve-keylog.txt"
        if keylog is None:
            return
        try:
            transient = read(keylog)
        except KeylogError as exc:
            raise ReplayError(str(exc)) from None
        server = parse_key(self.keys["server_public"], "server_public") if self.keys.get("server_public") else None
        c, s = (self.harness_dec, self.peer_dec) if self.play == "client" else (self.peer_dec, self.harness_dec)
        open_stream(c, s, CurveKeys(transient, server))

    def _type(self, side: str, dec: Decoder) -> str:
        t = _socket_type(dec.items) or (self.entry.get(side) or {}).get("socket")
        if not t:
            raise ReplayError(
                f"{self.path}: the {side}'s socket type is not in the capture (CURVE hides it) "
                "and no manifest entry names it; list the capture in a manifest with its socket types"
            )
        return t

    # -- set-up --------------------------------------------------------------

    def _options(self) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """The live peer's socket options, and the ZAP set-up its server side needs."""
        side = self.peer_side
        opts: dict[str, Any] = dict((self.entry.get(side) or {}).get("options") or {})
        zap = None
        if self.mechanism == "PLAIN":
            creds = _plain_credentials(self.stream_items("client"))
            if creds is None:
                raise ReplayError(f"{self.path}: a PLAIN stream without the client's HELLO")
            if side == "server":
                opts["plain_server"] = True
                zap = {"users": {creds[0]: creds[1]}, "curve_keys": None}
            else:
                opts["plain_username"], opts["plain_password"] = creds
        elif self.mechanism == "CURVE":
            need = ("server_secret",) if side == "server" else ("client_secret", "client_public", "server_public")
            missing = [k for k in need + (("server_public",) if side == "server" else ()) if not self.keys.get(k)]
            if missing:
                raise ReplayError(
                    f"{self.path}: replaying CURVE needs the keys {', '.join(missing)} "
                    "(from the manifest entry, or --curve-key NAME=Z85)"
                )
            if side == "server":
                opts["curve_server"], opts["curve_secretkey"] = True, self.keys["server_secret"]
                zap = {"users": {}, "curve_keys": None}
            else:
                opts["curve_secretkey"] = self.keys["client_secret"]
                opts["curve_publickey"] = self.keys["client_public"]
                opts["curve_serverkey"] = self.keys["server_public"]
        elif self.mechanism != "NULL":
            raise ReplayError(f"{self.path}: mechanism {self.mechanism!r} cannot be replayed")
        return opts, zap

    def stream_items(self, side: str) -> list[Item]:
        return (self.harness_dec if side == self.play else self.peer_dec).items

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, Any, str]:
        agent = await self.pool.get(self.against, self.peer_side)
        opts, zap = self._options()
        if zap is not None:
            await agent.request("zap", **zap)
        sock = (await agent.request("socket", type=self.peer_type, options=opts, mechanism=self.mechanism))["socket"]
        if self.peer_side == "server":
            ep = (await agent.request("bind", socket=sock, endpoint="tcp://127.0.0.1:0"))["endpoint"]
            reader, writer = await asyncio.open_connection("127.0.0.1", int(ep.rsplit(":", 1)[1]))
            return reader, writer, agent, sock
        accepted: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
        server = await asyncio.start_server(lambda r, w: accepted.put_nowait((r, w)), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        await agent.request("connect", socket=sock, endpoint=f"tcp://127.0.0.1:{port}")
        try:
            reader, writer = await asyncio.wait_for(accepted.get(), 5)
        except TimeoutError:
            raise ReplayError(f"{self.against} did not connect to the harness within 5 s") from None
        finally:
            server.close()
        return reader, writer, agent, sock

    # -- the replay ------------------------------------------------------------

    async def run(self) -> ReplayReport:
        report = ReplayReport(str(self.path), self.stream.name, self.against, self.play, self.mechanism, self.peer_type)
        reader, writer, agent, sock = await self._connect()
        live = LiveSide(reader)
        try:
            if self.mechanism == "CURVE":
                await self._curve(report, live, writer, agent, sock)
            else:
                await self._verbatim(report, live, writer, agent, sock)
            # Whatever else the live peer sends is more than the capture holds; heartbeats
            # only mean that the live connection lasted longer than the recorded one.
            beats = 0
            loop = asyncio.get_running_loop()
            until = loop.time() + 1.0  # a peer that keeps pinging is not waited out
            while loop.time() < until and (extra := await live.next(0.2)) is not None:
                if is_heartbeat(extra) or (self.mechanism == "CURVE" and extra.kind == "frame"):
                    beats += 1  # (under CURVE, heartbeats travel in MESSAGE boxes too)
                else:
                    report.verdicts.append(Verdict(EXTRA, None, extra, "the capture has nothing here"))
            if beats:
                report.verdicts.append(
                    Verdict(TIMING, None, None, f"{beats} more heartbeats after the capture ended (timing)")
                    if self.mechanism != "CURVE"
                    else Verdict(
                        NOT_REPLAYED, None, None, f"{beats} more MESSAGE boxes after the capture ended (not compared)"
                    )
                )
        finally:
            writer.close()
            try:
                await agent.request("close", socket=sock)
            except protocol.AgentError:
                pass
        return report

    def _order(self) -> list[tuple[str, Item]]:
        c, s = (self.harness_dec, self.peer_dec) if self.play == "client" else (self.peer_dec, self.harness_dec)
        mine = "C" if self.play == "client" else "S"
        return [("harness" if who == mine else "peer", it) for _, who, it in timeline(self.stream, c, s)]

    async def _verbatim(self, report: ReplayReport, live: LiveSide, writer: Any, agent: Any, sock: str) -> None:
        app = PeerApplication(agent, sock, self.peer_type)
        seq = self._order()
        sent: set[int] = set()

        async def send(k: int) -> None:
            writer.write(bytes(seq[k][1].raw))
            await writer.drain()
            app.saw_from_harness(seq[k][1])
            sent.add(k)

        for idx, (who, it) in enumerate(seq):
            if who == "harness":
                if idx not in sent:
                    await send(idx)
                continue
            await app.before(it, self.peer_dec.items)
            got = await live.next(PATIENCE)
            ahead = idx + 1
            while got is None:
                # The live peer may wait for bytes that the captured one did not wait for: the
                # rest of a staged greeting, or the other READY first (either order is allowed).
                # Send the played side's next handshake item early; never its messages.
                k = next(
                    (k for k in range(ahead, len(seq)) if seq[k][0] == "harness" and k not in sent),
                    None,
                )
                if k is None or seq[k][1].kind not in ("greeting", "command"):
                    got = await live.next(self.timeout)
                    break
                await send(k)
                ahead = k + 1
                got = await live.next(PATIENCE)
            while got is not None and is_heartbeat(got) and not is_heartbeat(it):
                # Heartbeats follow the clock, not the conversation: one may come at another moment.
                report.verdicts.append(Verdict(TIMING, None, got, "a heartbeat at another moment than in the capture"))
                got = await live.next(self.timeout)
            if got is None:
                report.verdicts.append(Verdict(MISSING, it, None, f"nothing within {self.timeout:g} s"))
                return
            result, note = compare(it, got, self.mechanism)
            report.verdicts.append(Verdict(result, it, got, note))

    async def _curve(self, report: ReplayReport, live: LiveSide, writer: Any, agent: Any, sock: str) -> None:
        # The harness's side of the handshake is the raw peer's own codec (rawcodec), not impl's:
        # replay judges the live peer, and impl may be that peer.
        if self.play == "client":
            need = ("client_secret", "server_public")
            missing = [k for k in need if not self.keys.get(k)]
            if missing:
                raise ReplayError(f"replaying the CURVE client needs the keys {', '.join(missing)}")
            secret = parse_key(self.keys["client_secret"], "client_secret")
            server = parse_key(self.keys["server_public"], "server_public")

            def mech(st: str, ident: bytes) -> rawcodec.Mechanism:
                return rawcodec.Curve(st, ident, secret, server)
        else:
            if not self.keys.get("server_secret"):
                raise ReplayError("replaying the CURVE server needs the key server_secret")
            server_secret = parse_key(self.keys["server_secret"], "server_secret")

            def mech(st: str, ident: bytes) -> rawcodec.Mechanism:
                return rawcodec.CurveServer(st, ident, server_secret)

        core = rawcodec.Codec(self.harness_type, as_server=self.play == "server", mechanism=mech)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 5
        pos = 0
        handshake = [it for it in self.peer_dec.items if it.kind == "greeting" or it.kind == "command"]
        handshake = handshake[: 1 + 2]  # greeting and the two commands each side sends
        try:
            for want in handshake:
                while True:
                    if out := core.data_to_send():
                        writer.write(out)
                        await writer.drain()
                    got = await live.next(0.05)
                    if got is not None:
                        break
                    # Nothing complete yet: what has come is part of the handshake item awaited.
                    pos = live.feed_core(core, pos)
                    if loop.time() > deadline or live.closed:
                        report.verdicts.append(Verdict(MISSING, want, None, "the CURVE handshake stalled"))
                        return
                # Up to the end of this item only: what follows READY is for the message phase.
                pos = live.feed_core(core, pos, got.end)
                result, note = compare(want, got, "CURVE")
                report.verdicts.append(Verdict(result, want, got, note))
        except rawcodec.CodecError as exc:
            report.verdicts.append(Verdict(DIFFERS, None, None, f"the CURVE handshake failed: {exc}"))
            return
        if out := core.data_to_send():
            writer.write(out)
            await writer.drain()
        if not core.ready:
            report.verdicts.append(Verdict(MISSING, None, None, "the CURVE handshake did not complete"))
            return
        if core.peer_socket_type != self.peer_type:
            report.verdicts[-1] = Verdict(
                DIFFERS, handshake[-1], report.verdicts[-1].live, f"Socket-Type {core.peer_socket_type}"
            )
        after = [(who, it) for who, it in self._order() if it.name == "MESSAGE" and it.kind in ("frame", "command")]
        if not after:
            return
        if any("plaintext" not in it.fields for _, it in after):
            report.verdicts.append(
                Verdict(
                    NOT_REPLAYED,
                    None,
                    None,
                    f"{len(after)} MESSAGE boxes after the CURVE handshake: they open only with the "
                    "connection's transient keys (a key log, see docs/captures.md), which this capture lacks",
                )
            )
            live.skip_received()  # not compared, so nothing left over is extra
            return
        assert isinstance(core.mech, rawcodec._CurveBoxes)
        await self._curve_messages(report, live, writer, core.mech, agent, sock, after)

    async def _curve_messages(
        self,
        report: ReplayReport,
        live: LiveSide,
        writer: Any,
        mechanism: Any,
        agent: Any,
        sock: str,
        after: list[tuple[str, Item]],
    ) -> None:
        """The message phase of a CURVE capture whose boxes opened: the played side's plaintexts go
        out in fresh boxes, and what the live peer sends is opened and compared with the captured
        plaintexts."""
        app = PeerApplication(agent, sock, self.peer_type)
        peer_inner = [inner_item(it) for who, it in after if who == "peer"]
        k = 0
        for who, it in after:
            if who == "harness":
                writer.write(mechanism.box(it.fields["inner_flags"], bytes(it.fields["plaintext"])))
                await writer.drain()
                app.saw_from_harness(inner_item(it))
                continue
            want = peer_inner[k]
            k += 1
            await app.before(want, peer_inner)
            while True:
                got = await live.next(self.timeout)
                if got is None:
                    report.verdicts.append(Verdict(MISSING, want, None, f"nothing within {self.timeout:g} s"))
                    return
                try:
                    # A MESSAGE in a data frame or as a command: the box is what follows its name.
                    inner = mechanism.unwrap(
                        rawcodec.Frame(0, b"\x07MESSAGE" + bytes(got.body[8:] if got.kind == "frame" else got.body))
                    )
                    flags, body = (
                        (0x01 if inner.flags & rawcodec.MORE else 0) | (0x02 if inner.is_command else 0),
                        inner.body,
                    )
                except rawcodec.CodecError as exc:  # the live peer's box does not open: that is the finding
                    report.verdicts.append(Verdict(DIFFERS, want, got, f"the live MESSAGE does not open: {exc}"))
                    return
                live_inner = inner_item(got, flags, body)
                if is_heartbeat(live_inner) and not is_heartbeat(want):
                    report.verdicts.append(Verdict(TIMING, None, live_inner, "a heartbeat at another moment"))
                    continue
                break
            result, note = compare(want, live_inner, "NULL")
            note = "inside the box" + (f"; {note}" if note else "")
            report.verdicts.append(Verdict(result, want, live_inner, note))
        live.skip_received()  # what follows are boxes of heartbeats, or of nothing captured


async def replay(
    path: Path,
    against: str,
    play: str = "client",
    stream: int | None = None,
    entry: dict[str, Any] | None = None,
    keys: dict[str, str] | None = None,
    pool: AgentPool | None = None,
    keylog: Path | None = None,
) -> ReplayReport:
    from ..peers import load_registry

    own = pool is None
    if pool is None:
        registry = load_registry()
        if against not in registry:
            raise ReplayError(f"unknown peer {against!r}; peers.yaml has {', '.join(registry)}")
        why = registry[against].missing() or registry[against].ensure_built()
        if why:
            raise ReplayError(f"peer {against} is not available here: {why}")
        pool = AgentPool(registry)
    try:
        return await Replay(path, against, pool, play, stream, entry, keys, keylog=keylog).run()
    finally:
        if own:
            await pool.close()
