"""Deliberate protocol bugs, for emulating broken peers.

In the spirit of BoringSSL's ProtocolBugs: every field defaults to the
correct behaviour; the conformance harness switches one on to play a known
broken peer, and its own tests use them to prove that a check can fail.
Nothing in normal use sets these.
"""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True)
class ProtocolBugs:
    # Greeting
    greeting_all_at_once: bool = False  # send all 64 octets at once, no staging
    greeting_minor: int | None = None  # announce this minor version instead of ours
    greeting_as_server: int | None = None  # put this octet in as-server
    greeting_nonzero_filler: bool = False
    # NULL handshake
    ready_command_name: bytes | None = None  # e.g. b"READX" instead of READY
    ready_omit_socket_type: bool = False
    ready_socket_type: str | None = None  # announce this Socket-Type instead of ours
    skip_socket_type_check: bool = False
    # Framing
    long_flag_on_short_frames: bool = False  # send every frame with an 8-octet size
    more_flag_on_commands: bool = False
    reserved_flag_bits: bool = False  # set bit 7 of every message frame flags octet
    # Heartbeats
    empty_pong: bool = False  # answer PING with an empty PONG (libzmq 4.2)
    ignore_ping: bool = False  # never answer a PING
    # Subscriptions
    legacy_subscriptions_always: bool = False  # send 01/00 frames even to 3.1 peers
    # CURVE (used once the CURVE mechanism lands)
    curve_repeat_nonce: bool = False

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    def active(self) -> dict[str, object]:
        default = ProtocolBugs()
        return {n: getattr(self, n) for n in self.names() if getattr(self, n) != getattr(default, n)}


NO_BUGS = ProtocolBugs()
