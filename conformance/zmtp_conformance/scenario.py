"""Scenarios: YAML files in scenarios/, checked against schema/scenario.schema.json.

A schema error names the file, the line and the field, e.g.

    scenarios/null/ready.yaml:14: steps[2]: 'client.sendd' is not a known action
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from . import requirements, vocabulary, yamltext

HERE = Path(__file__).resolve().parent
SCENARIO_DIR = HERE.parent.parent / "scenarios"
SCHEMA_PATH = vocabulary.SCHEMA_PATH


class ScenarioError(Exception):
    """A scenario file that cannot be used; the message says where and why."""

    def __init__(self, path: Path | str, line: int | None, where: str, message: str) -> None:
        self.path = str(path)
        self.line = line
        self.where = where
        loc = f"{self.path}:{line}" if line else self.path
        super().__init__(f"{loc}: {where + ': ' if where else ''}{message}")


@dataclass(frozen=True)
class Role:
    name: str
    side: str  # "server" binds, "client" connects
    type: str | None = None
    raw: bool = False
    options: dict[str, Any] = field(default_factory=dict)
    connect: tuple[str, ...] = ()  # for clients: which server roles (empty = all)
    # A raw client that connects at its `connect` step, or a peer server that binds at its `bind`
    # step (its clients connected at set-up to the endpoint it will bind), not at set-up.
    deferred: bool = False
    # RFC 37's Resource: the service a server offers at its endpoint, or a client asks for there.
    resource: str = ""
    shares_port_with: str = ""  # a server: bind this earlier server role's host:port, for a second service

    @property
    def deferred_step(self) -> str:
        """The step that ends a deferred role's wait: a raw client connects, a peer server binds."""
        return "connect" if self.raw else "bind"


@dataclass(frozen=True)
class Step:
    role: str | None  # None for harness actions such as wait
    action: str
    arg: Any
    line: int | None = None


@dataclass
class Scenario:
    id: str
    title: str
    rfc: list[str]
    requirement: str
    roles: dict[str, Role]
    steps: list[Step]
    path: str
    level: str = "MUST"
    tags: list[str] = field(default_factory=list)
    transports: list[str] = field(default_factory=lambda: ["tcp", "ipc"])
    mechanisms: list[str] = field(default_factory=lambda: ["NULL"])
    hostile: bool = False
    peers: dict[str, list[str]] = field(default_factory=dict)
    zap_deny_status: int = 400  # how the server side's ZAP handler refuses peers not on its allow list
    min_zmtp: str | None = None  # the ZMTP version both peers must speak (see required_zmtp)
    covers: list[str] | None = None  # requirement ids the steps check; None: not yet reviewed

    @property
    def required_zmtp(self) -> str | None:
        """The ZMTP version a peer must speak for this scenario to apply to it.

        The raw peer plays ZMTP 3 (or deliberately older peers against a ZMTP 3
        implementation), so scenarios with raw roles need ZMTP 3 of the peer under test.
        """
        if self.min_zmtp:
            return self.min_zmtp
        return "3.0" if any(r.raw for r in self.roles.values()) else None

    def sides(self) -> dict[str, bool]:
        """For each side, whether it is played by the raw peer only."""
        out = {}
        for side in ("server", "client"):
            roles = [r for r in self.roles.values() if r.side == side]
            if roles:
                out[side] = all(r.raw for r in roles)
        return out

    @property
    def rfc_number(self) -> str:
        return self.id.split("/", 1)[0]


@cache
def schema() -> dict[str, Any]:
    return vocabulary.scenario_schema()


@cache
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(schema())


def line_index(node: yaml.Node, path: tuple = ()) -> dict[tuple, int]:
    """Map each path (keys and indexes) in the document to its 1-based line."""
    out = {path: node.start_mark.line + 1}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            out[(*path, key.value)] = key.start_mark.line + 1
            for sub, line in line_index(value, (*path, key.value)).items():
                out.setdefault(sub, line)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            out.update(line_index(item, (*path, i)))
    return out


def read_with_lines(path: Path, error: type[Exception]) -> tuple[dict[str, Any], dict[tuple, int]]:
    """A YAML file's document and line_index, for tables whose errors name file and line; a file
    that cannot be read or parsed raises `error` naming it."""
    try:
        text = path.read_text()
        doc, node = yamltext.parse(text)
        return (doc or {}), (line_index(node) if doc and node is not None else {})
    except (OSError, yaml.YAMLError) as exc:
        raise error(f"{path}: {exc}") from None


def _where(path: tuple) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _explain(err: jsonschema.ValidationError) -> str:
    if err.validator == "additionalProperties" and isinstance(err.instance, dict):
        extra = [k for k in err.instance if k not in err.schema.get("properties", {})]
        path = list(err.path)
        if len(path) == 2 and path[0] == "steps":
            known = ", ".join(sorted(vocabulary.ACTIONS))
            return f"{', '.join(map(repr, extra))} is not a known action (role.ACTION with ACTION one of: {known})"
        if path and path[-1] == "options":
            known = ", ".join(sorted(vocabulary.OPTIONS))
            return f"{', '.join(map(repr, extra))} is not a known option (one of: {known})"
    return err.message


def _deepest(err: jsonschema.ValidationError) -> jsonschema.ValidationError:
    """Inside oneOf/anyOf, the alternative that got furthest names the real problem."""
    while err.context:
        deeper = max(err.context, key=lambda e: len(e.absolute_path))
        if len(deeper.absolute_path) <= len(err.absolute_path):
            break
        err = deeper
    return err


def _check_resources(path: Path, data: dict[str, Any], roles: dict[str, Role], lines: dict[Any, int]) -> None:
    """Roles that name a resource or share a port: peers over tcp, sharing an earlier server that binds at set-up."""
    uses = [r for r in roles.values() if r.resource or r.shares_port_with]
    if not uses:
        return
    order = list(roles)
    for role in uses:
        where = f"roles.{role.name}"
        line = lines.get(("roles", role.name))
        if role.raw:
            raise ScenarioError(
                path, line, where, "a raw role asks for a resource in its handshake (properties: {Resource: ...})"
            )
        if role.shares_port_with:
            other = roles.get(role.shares_port_with)
            if role.side != "server" or not role.resource:
                raise ScenarioError(
                    path, line, where, "shares_port_with is for a server role with a resource: the second service"
                )
            if (
                other is None
                or other.side != "server"
                or other.raw
                or other.deferred
                or other.shares_port_with
                or order.index(other.name) > order.index(role.name)
            ):
                raise ScenarioError(
                    path,
                    line,
                    where,
                    f"shares_port_with: {role.shares_port_with!r} is not an earlier peer server role that binds its"
                    " own port at set-up",
                )
    transports = data.get("transports") or list(vocabulary.TRANSPORTS)
    if transports != ["tcp"]:
        raise ScenarioError(
            path,
            lines.get(("transports",)) or lines.get(("roles", uses[0].name)),
            "transports",
            "a scenario with resources runs over tcp only (RFC 37 puts them in tcp://host:port/resource): transports: [tcp]",
        )


def topic_bytes(a: str | dict[str, str]) -> bytes:
    """A topic as scenarios write it: text, or {hex: ...}."""
    return a.encode() if isinstance(a, str) else bytes.fromhex(a["hex"])


class _Subscriptions:
    """What each subscriber role has subscribed to, step by step, as far as the loader can tell: for
    holding an await_subscription step to what its probe can prove.

    A probe that arrives proves that the subscription it matched reached the publisher, and with
    it every command sent before that subscription on the same connection; so the probed topic
    must be the role's last (un)subscribe, and new: a subscription held before, or an earlier one
    that is a prefix of the topic, would let the probe through while later commands are in flight.
    """

    UNKNOWN = b"\0unknown"  # a command the loader cannot read: raw octets, an XSUB's own message

    def __init__(self, roles: dict[str, Role]) -> None:
        self.roles = roles
        self.held: dict[str, list[bytes]] = {}
        self.last: dict[str, tuple[str, bytes]] = {}

    def step(self, role: str, action: str, arg: Any) -> None:
        if action == "fault" and arg in ("kill", "restart"):
            side = self.roles[role].side
            for name in list(self.held):
                subscriber = self.roles[name]
                if subscriber.raw or subscriber.side == side:
                    # A raw connection is gone for good; a restarted socket starts with no subscriptions.
                    self.held.pop(name)
                    self.last.pop(name, None)
                elif len(self.held[name]) == 1:
                    # The SUB subscribes again on its new connection: one topic, the one command there.
                    self.last[name] = ("subscribe", self.held[name][0])
                else:
                    self.last.pop(name, None)  # several, in an order of the implementation's choosing
        elif action in ("handshake", "disconnect", "connect"):
            self.held.pop(role, None)  # a raw role's new connection
            self.last.pop(role, None)
        elif action in ("subscribe", "unsubscribe"):
            topic = topic_bytes(arg)
            held = self.held.setdefault(role, [])
            if action == "subscribe":
                held.append(topic)
            elif topic in held:
                held.remove(topic)
            self.last[role] = (action, topic)
        elif action in ("send_raw", "send"):
            self.last[role] = ("send", self.UNKNOWN)  # may carry a (un)subscribe the loader cannot read

    def unproven(self, role: str, topic: bytes) -> str | None:
        """Why a probe on `topic` for `role` here would prove nothing, or None."""
        action, last = self.last.get(role, ("", b""))
        shown = repr(topic) if len(topic) <= 24 else f"{topic[:16]!r}... ({len(topic)} octets)"
        if last == self.UNKNOWN:
            return None  # the scenario's own octets: its author vouches for them
        if (action, last) != ("subscribe", topic):
            return (
                f"await_subscription on {shown}: the role's last (un)subscribe before it must be the subscribe of"
                " that topic, whose probe then proves every command sent before it"
            )
        earlier = list(self.held.get(role, []))
        earlier.remove(topic)
        covering = [t for t in earlier if topic.startswith(t)]
        if covering:
            return (
                f"await_subscription on {shown}: the earlier subscription {covering[0]!r} matches its probes too,"
                " so one arriving would not show that the new subscription reached the publisher"
            )
        return None


def load_file(path: Path, inventory: dict[str, requirements.Requirement] | None = None) -> Scenario:
    """One scenario file; `inventory` (default: the committed one) is what its `covers:` ids are checked against."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ScenarioError(path, None, "", f"cannot read: {exc}") from None
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise ScenarioError(path, line, "", f"not UTF-8 text: octet {exc.object[exc.start]:#04x} at {exc.start}") from None
    try:
        data, node = yamltext.parse(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ScenarioError(path, mark.line + 1 if mark else None, "", f"not valid YAML: {exc}") from None
    if node is None or not isinstance(data, dict):
        raise ScenarioError(path, 1, "", "expected a mapping with id, title, rfc, requirement, roles, steps")
    lines = line_index(node)
    errors = sorted(_validator().iter_errors(data), key=lambda e: (lines.get(tuple(e.absolute_path), 0), e.message))
    if errors:
        err = _deepest(errors[0])
        p = tuple(err.absolute_path)
        raise ScenarioError(path, lines.get(p) or lines.get(p[:-1]), _where(p), _explain(err))
    roles = {
        name: Role(
            name,
            r["side"],
            r.get("type"),
            bool(r.get("raw")),
            dict(r.get("options") or {}),
            tuple(r.get("connect", ())),
            bool(r.get("deferred")),
            r.get("resource", ""),
            r.get("shares_port_with", ""),
        )
        for name, r in data["roles"].items()
    }
    _check_resources(path, data, roles, lines)
    for role in roles.values():
        if role.deferred and (role.raw != (role.side == "client")):
            raise ScenarioError(
                path,
                lines.get(("roles", role.name, "deferred")),
                f"roles.{role.name}.deferred",
                "only a raw client (which then connects at its connect step) or a peer server (which binds at"
                " its bind step) can be deferred: a peer's connect is asynchronous anyway",
            )
        for target in role.connect:
            if target not in roles or roles[target].side != "server":
                raise ScenarioError(
                    path,
                    lines.get(("roles", role.name, "connect")),
                    f"roles.{role.name}.connect",
                    f"{target!r} is not a server role",
                )
    steps = []
    subscriptions = _Subscriptions(roles)
    for i, raw_step in enumerate(data["steps"]):
        ((key, arg),) = raw_step.items()
        line = lines.get(("steps", i))
        if key == "wait":
            steps.append(Step(None, "wait", arg, line))
            continue
        role, action = key.split(".", 1)
        if role not in roles:
            raise ScenarioError(
                path, line, f"steps[{i}]", f"role {role!r} is not declared in roles ({', '.join(roles)})"
            )
        kinds = vocabulary.ACTIONS[action].roles
        kind = vocabulary.RAW if roles[role].raw else vocabulary.PEER
        if kind not in kinds:
            what = "a raw role" if roles[role].raw else f"a {roles[role].type} peer role"
            raise ScenarioError(
                path, line, f"steps[{i}]", f"{action} is for {' and '.join(sorted(kinds))} roles; {role!r} is {what}"
            )
        if action == "send" and isinstance(arg, dict) and "curve_message" in arg and not roles[role].raw:
            raise ScenarioError(
                path, line, f"steps[{i}]", "curve_message is for raw roles; a peer frames MESSAGE its own way"
            )
        for key in ("distinct_from", "replay_initiate_of"):
            if action == "handshake" and isinstance(arg, dict) and key in arg:
                other = roles.get(arg[key])
                if other is None or not other.raw or other.name == role:
                    raise ScenarioError(path, line, f"steps[{i}]", f"{key}: {arg[key]!r} is not another raw role")
        if action == "await_subscription":
            publisher = roles.get(arg["publisher"])
            if publisher is None or publisher.raw or publisher.type not in ("PUB", "XPUB"):
                raise ScenarioError(
                    path, line, f"steps[{i}]", f"publisher: {arg['publisher']!r} is not a PUB or XPUB peer role"
                )
            if not roles[role].raw and roles[role].type not in ("SUB", "XSUB"):
                raise ScenarioError(
                    path, line, f"steps[{i}]", f"await_subscription is for subscribers; {role!r} is a {roles[role].type}"
                )
            why = subscriptions.unproven(role, topic_bytes(arg["topic"]))
            if why:
                raise ScenarioError(path, line, f"steps[{i}]", why)
        subscriptions.step(role, action, arg)
        if action in ("connect", "bind") and not roles[role].deferred:
            raise ScenarioError(
                path,
                line,
                f"steps[{i}]",
                f"{role!r} {action}s at set-up; give the role `deferred: true` to {action} here",
            )
        steps.append(Step(role, action, arg, line))
    for role in roles.values():
        first = next((s for s in steps if s.role == role.name), None)
        if role.deferred and (first is None or first.action != role.deferred_step):
            raise ScenarioError(
                path,
                lines.get(("roles", role.name, "deferred")),
                f"roles.{role.name}.deferred",
                f"a deferred role's first step must be {role.name}.{role.deferred_step}",
            )
    sc = Scenario(
        id=data["id"],
        title=data["title"],
        rfc=list(data["rfc"]),
        requirement=data["requirement"],
        roles=roles,
        steps=steps,
        path=str(path),
        level=data.get("level", "MUST"),
        tags=list(data.get("tags", [])),
        transports=list(data.get("transports", ["tcp", "ipc"])),
        mechanisms=list(data.get("mechanisms", ["NULL"])),
        hostile=bool(data.get("hostile", False)),
        peers={k: list(v) for k, v in (data.get("peers") or {}).items()},
        zap_deny_status=int((data.get("zap") or {}).get("deny_status", 400)),
        min_zmtp=data.get("min_zmtp"),
        covers=list(data["covers"]) if "covers" in data else None,
    )
    if sc.covers:
        known = requirements.inventory() if inventory is None else inventory
        for i, rid in enumerate(sc.covers):
            if rid not in known:
                section = rid.rsplit("/", 1)[0] + "/"
                near = [k for k in known if k.startswith(section)]
                hint = f" (that section has {', '.join(near[:8])}{' ...' if len(near) > 8 else ''})" if near else ""
                raise ScenarioError(
                    path,
                    lines.get(("covers", i)) or lines.get(("covers",)),
                    f"covers[{i}]",
                    f"{rid!r} is not a requirement id of the inventory {requirements.INVENTORY_PATH.name}{hint}",
                )
    if not any(r.side == "server" for r in roles.values()):
        raise ScenarioError(path, lines.get(("roles",)), "roles", "at least one role must have side: server")
    return sc


def load_all(directory: Path = SCENARIO_DIR, select: list[str] | None = None) -> list[Scenario]:
    """Every scenario under `directory`, sorted by id; `select` keeps ids matching any glob."""
    scenarios = []
    seen: dict[str, str] = {}
    for path in sorted(directory.rglob("*.yaml")):
        sc = load_file(path)
        if sc.id in seen:
            raise ScenarioError(path, 1, "id", f"{sc.id!r} is already used by {seen[sc.id]}")
        seen[sc.id] = str(path)
        if select and not any(
            fnmatch.fnmatchcase(sc.id, pat) or sc.id.startswith(pat.rstrip("/") + "/") or sc.id == pat for pat in select
        ):
            continue
        scenarios.append(sc)
    return sorted(scenarios, key=lambda s: s.id)
