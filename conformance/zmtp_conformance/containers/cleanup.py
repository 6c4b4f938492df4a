"""Containers never outlive their run.

Three layers, since any one can be cut short:
- a container's agent exits when the harness's control connection closes
  (docker/agent-relay), and the container was started with auto_remove;
- each harness process removes the containers it started, at exit (atexit:
  normal ends, failures, Ctrl-C);
- every container carries labels naming the host and process that started
  it, and `sweep()` removes those whose process is gone (a harness killed
  with SIGKILL); the docker backend sweeps before each run.
"""

from __future__ import annotations

import atexit
import os
import socket
import threading
from typing import Any

from .images import LABEL

OWNER = f"{LABEL}.owner"  # host:pid of the harness process that started the container
AGENT = f"{LABEL}.agent"  # peer/side

_tracked: dict[int, Any] = {}
_lock = threading.Lock()


def labels(agent: str) -> dict[str, str]:
    return {LABEL: "agent", AGENT: agent, OWNER: f"{socket.gethostname()}:{os.getpid()}"}


def track(container: Any) -> None:
    with _lock:
        if not _tracked:
            atexit.register(remove_tracked)
        _tracked[id(container)] = container


def untrack(container: Any) -> None:
    with _lock:
        _tracked.pop(id(container), None)


def remove_tracked() -> None:
    with _lock:
        left = list(_tracked.values())
        _tracked.clear()
    for container in left:
        try:
            container.get_wrapped_container().remove(force=True)
        except Exception:  # gone already, or the engine went first: nothing more to do
            pass


def _owner_alive(owner: str) -> bool:
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname():
        return True  # another machine's run on a shared engine: not ours to judge
    try:
        os.kill(int(pid), 0)
        return True
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True


def sweep(everything: bool = False) -> list[str]:
    """Remove the harness's containers whose process is gone (or all of them); their names."""
    from . import engine

    removed = []
    for c in engine.client().containers.list(all=True, filters={"label": f"{LABEL}=agent"}):
        owner = c.labels.get(OWNER, "")
        if everything or not _owner_alive(owner):
            try:
                c.remove(force=True)
                removed.append(f"{c.name} ({c.labels.get(AGENT, '?')}, started by {owner})")
            except Exception:
                pass  # removed itself meanwhile
    return removed
