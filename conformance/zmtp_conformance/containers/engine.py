"""Is there a Docker engine, and what does it hold? (docker-py, which testcontainers brings)"""

from __future__ import annotations

import functools
import os
from typing import Any

# Ryuk (testcontainers' reaper) is an image from Docker Hub; where none can be
# pulled it would fail every start. Containers here remove themselves instead
# (see agent.py and cleanup.py).
RYUK_IMAGE_ENV = "TESTCONTAINERS_RYUK_DISABLED"


class EngineError(Exception):
    """No Docker engine to talk to; the message says what was tried."""


@functools.cache
def client() -> Any:
    """A docker-py client for the engine at DOCKER_HOST (or the default socket)."""
    try:
        import docker
    except ImportError:
        raise EngineError("the docker backend needs testcontainers (pip install 'zmtp-conformance[docker]')") from None
    try:
        c = docker.from_env(timeout=60)
        c.ping()
    except Exception as exc:  # docker raises several types for "nobody is listening"
        where = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
        raise EngineError(f"no Docker engine answers at {where} ({exc.__class__.__name__}: {exc})") from None
    return c


def available() -> str | None:
    """None when an engine answers, else why not."""
    try:
        client()
        return None
    except EngineError as exc:
        return str(exc)


def image_missing(image: str) -> str | None:
    """None when the engine has `image`, else why this peer cannot run."""
    why = available()
    if why:
        return why
    import docker.errors

    try:
        client().images.get(image)
    except docker.errors.ImageNotFound:
        return f"image {image} is not built (zmtp-conformance images build)"
    return None


def image_config(image: str) -> dict[str, Any]:
    """The image's config (Cmd, Env, Labels)."""
    return client().images.get(image).attrs.get("Config") or {}


def disable_ryuk_unless_present() -> None:
    """Use Ryuk only when its image is already here and the user has not said otherwise."""
    if RYUK_IMAGE_ENV in os.environ:
        return
    import docker.errors
    from testcontainers.core.config import testcontainers_config

    try:
        client().images.get(testcontainers_config.ryuk_image)
    except (docker.errors.ImageNotFound, EngineError):
        os.environ[RYUK_IMAGE_ENV] = "true"
        testcontainers_config.ryuk_disabled = True


def choose_backend(asked: str) -> str:
    """docker or local, for --backend auto|docker|local; EngineError when docker is asked and absent."""
    if asked == "local":
        return "local"
    why = available()
    if asked == "docker" and why:
        raise EngineError(f"--backend docker: {why}")
    return "docker" if why is None else "local"
