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
    more_flag_on_last_frame: bool = False  # the last frame of a message keeps MORE: it never ends
    # Metadata (the two malformed ones in NULL's READY only; lowercase names under every mechanism)
    metadata_value_overrun: bool = False  # the last property's value size claims one octet more than follows
    metadata_names_lowercase: bool = False  # "socket-type", not "Socket-Type" (legal: names ignore case)
    metadata_bad_name: bool = False  # "Socket Type" with a space, outside the name grammar
    # Patterns
    req_no_delimiter: bool = False  # REQ sends the request without the empty delimiter frame
    req_accepts_any_reply: bool = False  # REQ takes a reply from a peer it did not send the request to
    rep_takes_request_without_delimiter: bool = False  # REP hands up a request that has no envelope
    rep_drop_envelope: bool = False  # REP replies without the envelope the request came with
    router_no_routing_id: bool = False  # ROUTER hands messages up without the routing id frame
    router_mandatory_ignored: bool = False  # with router_mandatory, an unroutable message is still dropped silently
    no_round_robin: bool = False  # DEALER, PUSH, REQ, CLIENT and SCATTER always send to their first peer
    pub_ignore_subscriptions: bool = False  # PUB sends every message to every subscriber
    pair_accept_second_peer: bool = False  # PAIR takes a second peer while it has one
    sub_no_resubscribe: bool = False  # SUB sends its subscriptions only when made, not to publishers that come later
    xpub_keeps_gone_subscriptions: bool = False  # XPUB tells its application nothing when a subscriber disconnects
    no_fair_queue: bool = False  # recv drains one peer's queue before it reads the next peer's
    server_ignores_routing_id: bool = False  # SERVER sends every message to its first CLIENT, whatever id it names
    radio_ignores_joins: bool = False  # RADIO sends every group's messages to every DISH
    dish_never_joins: bool = False  # DISH keeps its joins to itself: no JOIN or LEAVE reaches a RADIO
    # Heartbeats
    empty_pong: bool = False  # answer PING with an empty PONG (libzmq 4.2)
    ignore_ping: bool = False  # never answer a PING
    ignore_ping_ttl: bool = False  # a PING's TTL never closes an idle connection
    pong_context_reversed: bool = False  # PONG carries the PING's context, octets reversed
    # Subscriptions
    legacy_subscriptions_always: bool = False  # send 01/00 frames even to 3.1 peers
    cancel_never_sent: bool = False  # unsubscribing tells the publisher nothing
    # PLAIN
    plain_hello_trailing_octet: bool = False  # the client's HELLO has one octet after the password
    plain_initiate_early: bool = False  # the client sends INITIATE with HELLO, before WELCOME
    plain_welcome_with_body: bool = False  # the server's WELCOME carries an octet; it has no body
    # CURVE
    curve_repeat_nonce: bool = False
    curve_message_command_frame: bool = False  # MESSAGE in a command frame, as RFC 25 has it (legal)
    curve_vouch_wrong_key: bool = False  # the client boxes its vouch to the long-term server key, not S'
    curve_hello_padding_70: bool = False  # HELLO with 70 zero octets of padding, as RFC 26's prose says (198 octets)
    curve_nonce_unchecked: bool = False  # a short nonce that does not increase is taken (a replay is delivered)
    curve_transient_reused: bool = False  # one transient key pair for all connections (C' or S')
    curve_welcome_nonce_fixed: bool = False  # the server's WELCOME long nonce is 16 zero octets every time
    curve_vouch_nonce_fixed: bool = False  # the client's vouch long nonce is 16 zero octets every time
    curve_cookie_replay_accepted: bool = False  # the server takes a cookie an earlier valid INITIATE used
    # ZAP (RFC 27), on a server
    zap_ignore_refusal: bool = False  # a 300/400/500 answer is taken as 200: the handshake completes
    zap_error_on_temporary: bool = False  # 300 is answered with ERROR, like a definitive refusal
    zap_no_error_on_refusal: bool = False  # 400 and 500 close without an ERROR

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    def active(self) -> dict[str, object]:
        default = ProtocolBugs()
        return {n: getattr(self, n) for n in self.names() if getattr(self, n) != getattr(default, n)}


NO_BUGS = ProtocolBugs()
