"""The harness's shared vocabularies, each defined once.

Outcomes, the scenario step actions (and which roles may use them), the
socket option names scenarios may set, monitor events, socket types and
requirement levels. The scenario schema (schema/scenario.schema.json is
written from here: `python -m zmtp_conformance.vocabulary`), the loader, the
runner's step dispatch, the reports and the docs all derive from these
tables, so a name cannot mean one thing in the schema and another in the
runner.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

SCHEMA_PATH = Path(__file__).resolve().parent / "schema" / "scenario.schema.json"


class Outcome(StrEnum):
    """What a matrix cell came to. A StrEnum: it is written to matrix.json as its value."""

    PASSED = "passed"
    FAILED = "failed"
    DEVIATES = "deviates"  # failed exactly as a reviewed deviation entry says (deviations.yaml)
    UNSUPPORTED = "unsupported"  # an agent said its implementation lacks a feature the scenario needs
    SKIPPED = "skipped"  # a peer could not run here


# A requirement id as the inventory writes it: <rfc>/<section-slug>/<n>, a split part with a letter after n.
REQUIREMENT_ID = "^[0-9]+/[a-z0-9-]+/[0-9]+[a-z]?$"

# RFC 37's Resource: resource = resource-name *("/" resource-name), resource-name = 1*resource-char,
# resource-char = ALPHA | DIGIT | "$" | "-" | "_" | "@" | "." | "&" | "+". For a role's `resource:`
# and for the capture validator's check of every Resource a peer sends.
RESOURCE = "[A-Za-z0-9$_@.&+-]+(?:/[A-Za-z0-9$_@.&+-]+)*"

# Where an RFC states no keyword but users rely on the behaviour (libzmq does it, applications depend on it).
INTEROP = "interop"
LEVELS = ("MUST", "SHALL", "SHOULD", "MAY", INTEROP)

SOCKET_TYPES = ("REQ", "REP", "DEALER", "ROUTER", "PUB", "SUB", "XPUB", "XSUB", "PUSH", "PULL", "PAIR")
# The draft socket types: CLIENT/SERVER (RFC 47), RADIO/DISH (RFC 48), SCATTER/GATHER (RFC 49).
DRAFT_SOCKET_TYPES = ("CLIENT", "SERVER", "RADIO", "DISH", "SCATTER", "GATHER")
# A scenario's id: the RFC number and the section's words, or corpus/N/... for a case of the
# interop-bug corpus. The schema, the loader and the deviation tables all read it from here.
SCENARIO_ID = r"^([0-9]+|corpus)/[A-Za-z0-9._/-]+$"
MECHANISMS = ("NULL", "PLAIN", "CURVE")
TRANSPORTS = ("tcp", "ipc")
EVENTS = (
    "listening",
    "bind_failed",
    "accepted",
    "connected",
    "connect_retried",
    "handshake_succeeded",
    "handshake_failed",
    "disconnected",
    "closed",
)
FAILURE_CLASSES = ("protocol", "auth", "timeout", "closed")
FAULTS = ("kill", "restart", "pause", "unpause")

# Role kinds an action is for: a peer role (an agent drives an implementation), a raw
# role (the harness plays it byte by byte), or the harness itself (no role).
PEER, RAW, HARNESS = "peer", "raw", "harness"


@dataclass(frozen=True)
class Action:
    name: str
    roles: frozenset[str]
    arg: dict[str, Any]  # JSON schema of the step's argument
    doc: str


def _action(name: str, roles: set[str], arg: dict[str, Any], doc: str) -> Action:
    return Action(name, frozenset(roles), arg, doc)


_SECONDS = {"type": "number", "exclusiveMinimum": 0}


def _seconds_or_with(flag: str) -> dict[str, Any]:
    """Seconds, or {timeout: seconds, <flag>: bool}: a wait that one flag makes stricter or looser."""
    return {
        "oneOf": [
            _SECONDS,
            {
                "type": "object",
                "additionalProperties": False,
                "required": ["timeout"],
                "properties": {"timeout": _SECONDS, flag: {"type": "boolean"}},
            },
        ]
    }

_EVENT = {"enum": list(EVENTS)}
_GROUP = {"type": "string", "maxLength": 255, "description": "RADIO/DISH group (RFC 48)"}
_SEND = {
    "oneOf": [
        {"$ref": "#/$defs/message_out"},
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["message"],
            "properties": {
                "message": {"$ref": "#/$defs/message_out"},
                "group": _GROUP,
                "routing_id": {"$ref": "#/$defs/frame_out", "description": "SERVER: the client to send to"},
                "curve_message": {
                    "enum": ["data", "command"],
                    "description": "a raw role under CURVE: each MESSAGE in a data frame (libzmq's form, the"
                    " default) or in a command frame (RFC 25/26's: MESSAGE is a command)",
                },
            },
        },
    ]
}
_EXPECT = {
    "oneOf": [
        {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/frame_in"}},
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["message"],
            "properties": {
                "message": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/frame_in"}},
                "timeout": {"type": "number", "exclusiveMinimum": 0},
                "group": _GROUP,
                "routing_id": {"$ref": "#/$defs/frame_in", "description": "SERVER: the client it came from"},
                "within": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": 100,
                    "description": "peer roles: the message is one of the next `within` received; those before it"
                    " are read past (fair queuing may deliver another peer's message first)",
                },
            },
        },
    ]
}
# What a raw role's handshake step can spoil (rawcodec keeps which side can spoil which: a vocabulary
# here, so the schema and the codec cannot disagree on the names; test_rawpeer_steps checks they match).
_CORRUPTIONS = (
    "vouch",
    "welcome_box",
    "welcome_size",
    "welcome_zero_key",
    "ready_box",
    "metadata_zero_name",
    "metadata_truncated_size",
)
_Z85_KEY = {"type": "string", "minLength": 40, "maxLength": 40}
_MESSAGE_COUNT = {"type": "integer", "minimum": 1, "maximum": 100000}
_NUMBERED = {"from": {"type": "integer", "minimum": 0}, "count": _MESSAGE_COUNT}

ACTIONS: dict[str, Action] = {
    a.name: a
    for a in (
        _action("wait", {HARNESS}, {"type": "number", "minimum": 0}, "seconds to wait (no role)"),
        _action("send", {PEER, RAW}, _SEND, "send a message: a list of frames, or {message, group, routing_id}"),
        _action(
            "send_more",
            {PEER},
            {"$ref": "#/$defs/message_out"},
            "send these frames as the start of a message, each with more to come (ZMQ_SNDMORE); the role's next"
            " send adds the rest and ends it (agent op `send_more`)",
        ),
        _action(
            "expect",
            {PEER, RAW},
            _EXPECT,
            "receive a message matching this one, or {message, timeout (default 2 s), group, routing_id}",
        ),
        _action("expect_nothing", {PEER, RAW}, _SECONDS, "seconds during which no message may arrive"),
        _action(
            "subscribe",
            {PEER, RAW},
            {"$ref": "#/$defs/text_or_hex"},
            "subscribe to a topic (text or {hex}); a raw role, after handshake, in the form its peer's version takes",
        ),
        _action("unsubscribe", {PEER}, {"$ref": "#/$defs/text_or_hex"}, "cancel a subscription"),
        _action(
            "await_subscription",
            {PEER, RAW},
            {
                "type": "object",
                "additionalProperties": False,
                "required": ["publisher", "topic"],
                "properties": {
                    "publisher": {
                        "type": "string",
                        "pattern": "^[a-z][a-z0-9_]*$",
                        "description": "the PUB or XPUB peer role the subscriptions went to",
                    },
                    "topic": {"$ref": "#/$defs/text_or_hex"},
                    "timeout": _SECONDS,
                },
            },
            "a subscriber role: every (un)subscribe it sent before this step has reached the publisher, known"
            " from the wire rather than from a pause: the publisher sends probes (`topic` then ` probe <n>`)"
            " until one arrives, and the subscriber then reads the rest of them; `topic` must match a"
            " subscription the role holds (default timeout 2 s); the probes use the publisher's queue, so a"
            " scenario about a high-water mark of one or two keeps its pause",
        ),
        _action("join", {PEER}, _GROUP, "DISH: join a group (RFC 48)"),
        _action("leave", {PEER}, _GROUP, "DISH: leave a group (RFC 48)"),
        _action(
            "send_expect_error",
            {PEER},
            {
                "type": "object",
                "additionalProperties": False,
                "required": ["message", "error"],
                "properties": {
                    "message": {"$ref": "#/$defs/message_out"},
                    "error": {"enum": ["failed", "timeout"]},
                    "group": _GROUP,
                    "routing_id": {"$ref": "#/$defs/frame_out"},
                },
            },
            "the send is refused with this error kind (a REQ out of turn, ROUTER mandatory to nobody)",
        ),
        _action(
            "try_send",
            {PEER},
            {"$ref": "#/$defs/message_out"},
            "send, and carry on if the peer cannot (e.g. its only connection was refused)",
        ),
        _action(
            "expect_event",
            {PEER},
            {
                "oneOf": [
                    _EVENT,
                    {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["event"],
                        "properties": {
                            "event": _EVENT,
                            "failure": {
                                "enum": list(FAILURE_CLASSES),
                                "description": "for handshake_failed: the class, checked when the peer reports one",
                            },
                            "absent": {
                                "type": "array",
                                "items": _EVENT,
                                "description": "events that must not come before it",
                            },
                            "timeout": _SECONDS,
                        },
                    },
                ]
            },
            "the peer's socket monitor reports this event (agent op `events`); earlier events are read past",
        ),
        _action(
            "expect_zap",
            {PEER},
            {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "count": {
                        "type": "integer",
                        "minimum": 0,
                        "description": "exactly this many requests since the previous expect_zap (default 1)",
                    },
                    "timeout": _SECONDS,
                    "mechanism": {"type": "string"},
                    "domain": {"type": "string"},
                    "address": {"type": "string", "description": "the client's IP address, as text"},
                    "identity": {"$ref": "#/$defs/frame_in"},
                    "request_id": {"$ref": "#/$defs/frame_in"},
                    "credentials": {"type": "array", "items": {"$ref": "#/$defs/frame_in"}},
                },
            },
            "a server role: the ZAP requests (RFC 27) its implementation sent to the agent's handler, each"
            " checked against RFC 27's format and these values (agent op `zap_requests`)",
        ),
        _action(
            "fault",
            {PEER},
            {"enum": list(FAULTS)},
            "kill, restart, pause or unpause the agent playing this role's side",
        ),
        _action(
            "reopen",
            {PEER},
            {"const": True},
            "close the role's socket and open a new one with the same options and endpoints (a lazy pirate client)",
        ),
        _action(
            "send_numbered",
            {PEER},
            {"type": "object", "additionalProperties": False, "required": ["count"], "properties": _NUMBERED},
            "send count one-frame messages whose text is their number, from `from` on",
        ),
        _action(
            "expect_numbered",
            {PEER, RAW},
            {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    **_NUMBERED,
                    "timeout": _SECONDS,
                    "may_lose": {"type": "boolean"},
                    "must_lose": {
                        "type": "boolean",
                        "description": "fail when every message arrived: the sender's queue had to drop some",
                    },
                    "sent_by": {
                        "type": "string",
                        "pattern": "^[a-z][a-z0-9_]*$",
                        "description": "instead of count: as many as this role's last send_until_full sent",
                    },
                },
                "oneOf": [{"required": ["count"]}, {"required": ["sent_by"]}],
            },
            "receive numbered messages in order, none twice; with may_lose the missing ones are counted",
        ),
        _action(
            "send_until_full",
            {PEER},
            {
                "type": "object",
                "additionalProperties": False,
                "required": ["message", "max", "full"],
                "properties": {
                    "message": {"$ref": "#/$defs/message_out"},
                    "max": _MESSAGE_COUNT,
                    "full": {
                        "type": "boolean",
                        "description": "true: a send must block or be refused before max; false: all max are taken",
                    },
                    "at_least": {"type": "integer", "minimum": 0, "description": "fewest messages the queue took"},
                    "at_most": {"type": "integer", "minimum": 0, "description": "most messages the queue took"},
                    "group": _GROUP,
                    "routing_id": {"$ref": "#/$defs/frame_out"},
                },
            },
            "send message + a frame with its number (0, 1, ...) without waiting until a send would block or is"
            " refused, or max were sent; the count is checked (full, at_least, at_most) and kept for expect_numbered",
        ),
        _action(
            "flood",
            {RAW},
            {
                "type": "object",
                "additionalProperties": False,
                "required": ["message", "count", "drained"],
                "properties": {
                    "message": {"$ref": "#/$defs/message_out"},
                    "count": _MESSAGE_COUNT,
                    "drained": {
                        **_SECONDS,
                        "description": "seconds within which the peer must have taken every octet written",
                    },
                },
            },
            "write count numbered copies of the message (numbered as send_until_full numbers them) at once,"
            " without waiting for the peer, then require that the peer takes every octet within `drained` seconds"
            " while its application reads nothing: a peer that discards what its full queue cannot hold reads on,"
            " one that pushes back leaves them unread; expect_numbered's sent_by counts them",
        ),
        _action("send_raw", {RAW}, {"$ref": "#/$defs/raw_out"}, "octets, or pieces (greeting, ready, command, ...)"),
        _action("expect_raw", {RAW}, {"$ref": "#/$defs/raw_in"}, "octets with ?? wildcards, or a piece to parse"),
        _action(
            "handshake",
            {RAW},
            {
                "type": "object",
                "additionalProperties": False,
                "required": ["type"],
                "properties": {
                    "type": {"enum": [*SOCKET_TYPES, *DRAFT_SOCKET_TYPES]},
                    "minor": {"type": "integer"},
                    "identity": {"type": "string"},
                    "properties": {
                        "type": "object",
                        "additionalProperties": {"type": "string"},
                        "description": "more metadata for READY (or INITIATE), e.g. X-Name: value",
                    },
                    "peer_properties": {
                        "type": "object",
                        "additionalProperties": {"type": "string"},
                        "description": "once the handshake is done, the peer's metadata (READY, or INITIATE under"
                        " PLAIN and CURVE) must carry these properties: names without regard to case, values"
                        " exactly, others allowed",
                    },
                    "lowercase_names": {
                        "type": "boolean",
                        "description": "send the metadata's property names in lower case (socket-type, identity)",
                    },
                    "corrupt": {
                        "enum": sorted(set(_CORRUPTIONS)),
                        "description": "spoil one command this side sends (CURVE client: vouch; CURVE server:"
                        " welcome_box, welcome_size, welcome_zero_key (its box names an all-zero transient key),"
                        " ready_box; any side: metadata_zero_name, metadata_truncated_size); the step ends once it"
                        " is sent",
                    },
                    "distinct_from": {
                        "type": "string",
                        "pattern": "^[a-z][a-z0-9_]*$",
                        "description": "another raw role, handshaken before: the values each CURVE handshake must"
                        " make fresh (transient keys, WELCOME and vouch nonces, cookie) must differ from its",
                    },
                    "replay_initiate_of": {
                        "type": "string",
                        "pattern": "^[a-z][a-z0-9_]*$",
                        "description": "CURVE client: after HELLO and WELCOME, send this other raw client's INITIATE"
                        " verbatim (a replayed handshake); the step ends once it is sent",
                    },
                    "stop_after": {
                        "enum": ["HELLO", "INITIATE", "READY"],
                        "description": "end the step once this side has sent this handshake command; what the peer"
                        " answers is left for raw steps (expect_raw, expect_close)",
                    },
                    "refuse": {
                        "type": "string",
                        "pattern": "^[ -~]{0,255}$",
                        "description": "a raw CURVE server: answer a valid INITIATE with ERROR of this reason instead"
                        " of READY (an explicit rejection); the step ends once it is sent",
                    },
                    "curve_secretkey": {
                        **_Z85_KEY,
                        "description": "a raw CURVE client's long-term secret key (Z85) instead of the test key:"
                        " one the server's ZAP handler does not allow",
                    },
                },
            },
            "greeting and READY (or the mechanism's handshake) as this socket type, under the cell's mechanism",
        ),
        _action(
            "expect_close",
            {RAW},
            _seconds_or_with("silent"),
            "seconds within which the peer must close; {timeout, silent: true} also forbids bytes before it",
        ),
        _action("expect_open", {RAW}, _SECONDS, "seconds during which the peer must keep the connection open"),
        _action(
            "expect_no_connection",
            {RAW},
            _SECONDS,
            "a raw server role: no client connects again within these seconds (one refused with ERROR must not"
            " reconnect with the same credentials); later connections are closed at once",
        ),
        _action(
            "expect_silence",
            {RAW},
            _seconds_or_with("may_close"),
            "seconds during which the peer must send no octet and keep the connection open (it waits for this"
            " side); {timeout, may_close: true} lets it close instead, still without an octet",
        ),
        _action(
            "expect_response",
            {RAW},
            _SECONDS,
            "seconds within which the peer must send more octets or close; staying silent (a stall) fails",
        ),
        _action(
            "disconnect",
            {RAW},
            {"const": True},
            "close this role's connection now, leaving what the peer sent unread: the peer sees it leave",
        ),
        _action(
            "connect",
            {RAW},
            {"const": True},
            "a deferred raw client (role key `deferred: true`) connects to its servers now, not at set-up",
        ),
        _action(
            "bind",
            {PEER},
            {"const": True},
            "a deferred peer server (role key `deferred: true`) makes its socket and binds now, not at set-up;"
            " its clients connected at set-up to the endpoint it now binds, before anything listened there",
        ),
    )
}


@dataclass(frozen=True)
class Option:
    name: str
    schema: dict[str, Any]
    doc: str


_BOOL = {"type": "boolean"}
_COUNT = {"type": "integer", "minimum": 0}
_DURATION = {"type": "number", "minimum": 0}

# The socket options a scenario may set on a peer role, named as zmtp.SocketOptions names them;
# every agent maps them to its implementation (docs/agent-protocol.md) or answers unsupported.
OPTIONS: dict[str, Option] = {
    o.name: o
    for o in (
        Option("routing_id", {"type": "string", "pattern": "^([0-9a-fA-F]{2})*$"}, "the Identity in READY, as hex"),
        Option("max_msg_size", {"oneOf": [_COUNT, {"type": "null"}]}, "largest message accepted; null: no limit"),
        Option("sndhwm", _COUNT, "messages queued per peer before send blocks or drops"),
        Option("rcvhwm", _COUNT, "messages queued per peer before reading pauses"),
        Option("handshake_timeout", _DURATION, "seconds for greeting and security handshake; 0: none"),
        Option("heartbeat_ivl", _DURATION, "seconds between PINGs; 0: no heartbeats"),
        Option("heartbeat_ttl", _DURATION, "the TTL announced in PINGs, in seconds"),
        Option("heartbeat_timeout", _DURATION, "seconds without traffic after a PING before closing"),
        Option("reconnect_ivl", {"type": "number"}, "seconds before reconnecting; 0 or less: never"),
        Option("reconnect_ivl_max", _DURATION, "cap of the reconnect backoff, seconds; 0: no backoff"),
        Option("linger", {"oneOf": [_DURATION, {"type": "null"}]}, "seconds close waits to flush"),
        Option("router_mandatory", _BOOL, "ROUTER: a send to an unknown routing id fails"),
        Option("router_handover", _BOOL, "ROUTER: a new peer with a known routing id takes it over"),
        Option("req_relaxed", _BOOL, "REQ: a new request may be sent before the reply"),
        Option("req_correlate", _BOOL, "REQ: requests carry a request id"),
        Option("xpub_verbose", _BOOL, "XPUB: pass on duplicate subscriptions"),
        Option("immediate", _BOOL, "queue only to completed connections"),
        Option("plain_server", _BOOL, "PLAIN server role"),
        Option("plain_username", {"type": "string"}, "PLAIN client user name"),
        Option("plain_password", {"type": "string"}, "PLAIN client password"),
        Option("zap_domain", {"type": "string"}, "the ZAP domain"),
        Option("curve_server", _BOOL, "CURVE server role"),
        Option("curve_secretkey", _Z85_KEY, "long-term secret key (Z85)"),
        Option("curve_publickey", _Z85_KEY, "long-term public key (Z85)"),
        Option("curve_serverkey", _Z85_KEY, "CURVE client: the server's public key (Z85)"),
    )
}


def step_schema() -> dict[str, Any]:
    """The schema of one step, `role.action: argument` or `wait: seconds`, from ACTIONS."""
    role = "^[a-z][a-z0-9_]*\\."
    return {
        "type": "object",
        "minProperties": 1,
        "maxProperties": 1,
        "additionalProperties": False,
        "properties": {name: dict(a.arg) for name, a in ACTIONS.items() if HARNESS in a.roles},
        "patternProperties": {
            f"{role}{name}$": {**a.arg, "description": a.doc} for name, a in ACTIONS.items() if HARNESS not in a.roles
        },
    }


def options_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": {name: {**o.schema, "description": o.doc} for name, o in OPTIONS.items()},
    }


def scenario_schema() -> dict[str, Any]:
    """The scenario schema: the hand-written structure in the JSON file, its vocabularies from here."""
    doc = json.loads(SCHEMA_PATH.read_text())
    return with_vocabulary(doc)


def with_vocabulary(doc: dict[str, Any]) -> dict[str, Any]:
    props = doc["properties"]
    props["id"]["pattern"] = SCENARIO_ID
    props["level"] = {"enum": list(LEVELS)}
    # Which ids exist is the inventory's business (requirements.py); the loader checks them, the schema their form.
    props["covers"] = {
        "type": "array",
        "uniqueItems": True,
        "items": {"type": "string", "pattern": REQUIREMENT_ID},
        "description": "the requirement ids (conformance/requirements/inventory.json) the steps check",
    }
    props["transports"]["items"] = {"enum": list(TRANSPORTS)}
    props["mechanisms"]["items"] = {"enum": list(MECHANISMS)}
    role = doc["$defs"]["role"]["properties"]
    role["type"] = {"enum": [*SOCKET_TYPES, *DRAFT_SOCKET_TYPES]}
    role["options"] = options_schema()
    role["resource"]["pattern"] = f"^{RESOURCE}$"
    doc["$defs"]["step"] = step_schema()
    return doc


def regenerate(path: Path, wanted: str, argv: list[str] | None, module: str) -> int:
    """Write a file made from the vocabularies when it differs; with `--check` in argv, only say so.
    The command line of every generated file (the schema here, the docs' tables in reference.py)."""
    args = sys.argv[1:] if argv is None else argv
    if path.read_text() == wanted:
        return 0
    if "--check" in args:
        print(f"{path} is not what the vocabularies make: run python -m {module}")
        return 1
    path.write_text(wanted)
    print(f"wrote {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Write the scenario schema file from the vocabularies (`--check`: only say whether it is current)."""
    return regenerate(SCHEMA_PATH, json.dumps(scenario_schema(), indent=1) + "\n", argv, "zmtp_conformance.vocabulary")


if __name__ == "__main__":
    raise SystemExit(main())
