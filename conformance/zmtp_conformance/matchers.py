"""Frames in scenarios: building the ones to send, matching the ones received, describing both."""

from __future__ import annotations

from typing import Any

from .cells import StepFailed

DEFAULT_TIMEOUT = 2.0


def frame_bytes(frames: list[Any], vars: dict[str, bytes]) -> list[bytes]:
    out = []
    for f in frames:
        if isinstance(f, str):
            out.append(f.encode())
        elif "hex" in f:
            out.append(bytes.fromhex(f["hex"].replace(" ", "")))
        elif "ref" in f:
            if f["ref"] not in vars:
                raise StepFailed(f"{{ref: {f['ref']}}} used before a {{capture: {f['ref']}}} filled it")
            out.append(vars[f["ref"]])
        elif "repeat" in f:
            out.append((f["repeat"].encode() * (f["count"] // max(1, len(f["repeat"])) + 1))[: f["count"]])
        else:
            raise StepFailed(f"frame {f!r} cannot be sent")
    return out


def describe_matchers(frames: list[Any]) -> str:
    parts = []
    for f in frames:
        if isinstance(f, str):
            parts.append(repr(f))
        elif "hex" in f:
            parts.append(f"hex {f['hex']}")
        elif "any" in f:
            parts.append("<any>")
        elif "capture" in f:
            parts.append(f"<any, as {f['capture']}>")
        elif "ref" in f:
            parts.append(f"<{f['ref']}>")
        elif "prefix" in f:
            parts.append(f"{f['prefix']!r}...")
        elif "repeat" in f:
            parts.append(f"{f['repeat']!r} x {f['count']}")
    return "[" + ", ".join(parts) + "]"


def match(frames_spec: list[Any], got: list[bytes], vars: dict[str, bytes]) -> bool:
    if len(frames_spec) != len(got):
        return False
    captured = {}
    for spec, frame in zip(frames_spec, got, strict=True):
        if isinstance(spec, str):
            ok = frame == spec.encode()
        elif "any" in spec:
            ok = True
        elif "capture" in spec:
            captured[spec["capture"]] = frame
            ok = True
        elif "prefix" in spec:
            ok = frame.startswith(spec["prefix"].encode())
        else:
            ok = frame == frame_bytes([spec], vars)[0]
        if not ok:
            return False
    vars.update(captured)
    return True


def expect_args(arg: Any) -> tuple[list[Any], float]:
    """An `expect` argument is a message, or {message, timeout, ...}."""
    if isinstance(arg, dict):
        return arg["message"], arg.get("timeout", DEFAULT_TIMEOUT)
    return arg, DEFAULT_TIMEOUT


def send_args(arg: Any) -> tuple[list[Any], dict[str, Any]]:
    """A `send` argument is a message, or {message, group, routing_id}: the frames, and the rest."""
    if isinstance(arg, dict):
        return arg["message"], {k: v for k, v in arg.items() if k in ("group", "routing_id")}
    return arg, {}


def describe_event(ev: dict[str, Any]) -> str:
    detail = ", ".join(f"{k}={v}" for k, v in ev.items() if k in ("failure", "reason"))
    return f"{ev['event']}({detail})" if detail else ev["event"]
