"""The version matrix (docker/versions.yaml) and the images it names.

One entry per peer version: its image tag, the implementation family it
belongs to, how it exports CURVE keys, and any Python wheels its Dockerfile
installs. Each image is built from `docker/<peer>/Dockerfile` with the
repository as context, on a Debian base that is made locally (debootstrap,
`docker/base-image`) when no registry can supply it.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..peers import KnownStall, KnownStallError, PeerSpec, parse_known_stalls

ROOT = Path(__file__).resolve().parents[3]
DOCKER_DIR = ROOT / "docker"
MATRIX = DOCKER_DIR / "versions.yaml"
LABEL = "org.zmtp-conformance"


class ImageError(Exception):
    """A version matrix that does not parse, or an image that does not build; says which and why."""


@dataclass
class ImageSpec:
    peer: str  # the name cells and reports use, e.g. libzmq-4.3.4
    image: str  # repository:tag
    family: str
    keylog: str = ""
    wheels: list[str] = field(default_factory=list)
    description: str = ""
    agent: str = ""  # a local peer (peers.yaml) whose agent build is copied into the image
    provisional: str = ""  # why its failed cells do not yet fail a run (findings still being triaged)
    known_stalls: tuple[KnownStall, ...] = ()  # reviewed random stalls whose cells are run again

    @property
    def dist_dir(self) -> Path:
        return DOCKER_DIR / self.peer / "dist"

    @property
    def dockerfile(self) -> Path:
        return DOCKER_DIR / self.peer / "Dockerfile"

    @property
    def wheel_dir(self) -> Path:
        return DOCKER_DIR / self.peer / "wheels"

    def peer_spec(self) -> PeerSpec:
        return PeerSpec(
            name=self.peer,
            command=[],
            description=self.description or f"{self.family} in the image {self.image}",
            keylog=self.keylog,
            family=self.family,
            image=self.image,
            provisional=self.provisional,
            known_stalls=self.known_stalls,
        )


@dataclass
class VersionMatrix:
    base: str
    python: str  # the images' Python, for fetching wheels
    images: dict[str, ImageSpec]


def load(path: Path = MATRIX) -> VersionMatrix:
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ImageError(f"cannot read the version matrix {path}: {exc}") from None
    images = {}
    for peer, entry in (raw.get("peers") or {}).items():
        if not isinstance(entry, dict) or "image" not in entry:
            raise ImageError(f"{path}: peer {peer!r} needs at least an image (repository:tag)")
        unknown = set(entry) - {"image", "family", "keylog", "wheels", "description", "agent", "provisional", "known_stalls"}
        if unknown:
            raise ImageError(f"{path}: peer {peer!r} has unknown key(s) {', '.join(sorted(unknown))}")
        spec = ImageSpec(
            peer=peer,
            image=str(entry["image"]),
            family=str(entry.get("family", peer)),
            keylog=str(entry.get("keylog", "")),
            wheels=[str(w) for w in entry.get("wheels", [])],
            description=str(entry.get("description", "")),
            agent=str(entry.get("agent", "")),
            provisional=str(entry.get("provisional", "")),
            known_stalls=_known_stalls(path, peer, entry.get("known_stalls")),
        )
        if not spec.dockerfile.exists():
            raise ImageError(f"{path}: peer {peer!r} has no Dockerfile at {spec.dockerfile}")
        images[peer] = spec
    if not images:
        raise ImageError(f"{path} names no peers")
    return VersionMatrix(
        base=str(raw.get("base", "debian:bookworm-slim")), python=str(raw.get("python", "3.11")), images=images
    )


def _known_stalls(path: Path, peer: str, value: object) -> tuple[KnownStall, ...]:
    try:
        return parse_known_stalls(peer, value)
    except KnownStallError as exc:
        raise ImageError(f"{path}: {exc}") from None


def registry(path: Path = MATRIX) -> dict[str, PeerSpec]:
    """The docker backend's peers, as PeerSpecs the runner uses like local ones."""
    return {name: spec.peer_spec() for name, spec in load(path).images.items()}


def _platforms() -> list[str]:
    # Debian 12's glibc is 2.36: any manylinux wheel up to that runs in its images.
    arch = platform.machine()
    return ["manylinux2014_" + arch, *(f"manylinux_2_{n}_{arch}" for n in range(17, 37))]


def fetch_wheels(spec: ImageSpec, python: str, log=print) -> None:  # type: ignore[no-untyped-def]
    """Download the image's wheels on the host, once, into docker/<peer>/wheels.

    The build then installs from there: a container needs no route to PyPI
    and none of the host's pip settings (proxies, certificates).
    """
    if not spec.wheels:
        return
    spec.wheel_dir.mkdir(parents=True, exist_ok=True)
    have = {
        p.name.split("-")[0].lower().replace("_", "-") + "==" + p.name.split("-")[1]
        for p in spec.wheel_dir.glob("*.whl")
    }
    if all(w.lower() in have for w in spec.wheels):
        return
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:", "--dest", str(spec.wheel_dir)]
    cmd += ["--python-version", python, "--implementation", "cp"]
    for plat in _platforms():
        cmd += ["--platform", plat]
    log(f"fetching wheels for {spec.peer}: {', '.join(spec.wheels)}")
    proc = subprocess.run([*cmd, *spec.wheels], capture_output=True, text=True)
    if proc.returncode != 0:
        raise ImageError(f"pip download {' '.join(spec.wheels)} for {spec.peer} failed: {proc.stderr.strip()[-800:]}")


def stage_agent(spec: ImageSpec, log=print) -> None:  # type: ignore[no-untyped-def]
    """Build the image's agent on the host (its local peer's build) and stage it in docker/<peer>/dist.

    Compilers and package registries are on the host, not in the containers:
    the image only copies what the host built (Debian 12 on both, so one glibc).
    """
    if not spec.agent:
        return
    from ..peers import load_registry

    local = load_registry().get(spec.agent)
    if local is None or not local.build:
        raise ImageError(f"{spec.peer}: agent {spec.agent!r} is no peer with a build in conformance/peers.yaml")
    for cmd in local.requires_commands:
        if shutil.which(cmd) is None:
            raise ImageError(f"{spec.peer}: building its agent on the host needs {cmd!r}, which is not on PATH")
    why = local.ensure_built()
    if why:
        raise ImageError(f"{spec.peer}: {why}")
    built = Path(local.argv()[0]).parent
    if spec.dist_dir.exists():
        shutil.rmtree(spec.dist_dir)
    shutil.copytree(built, spec.dist_dir, symlinks=True, ignore=shutil.ignore_patterns(".*.lock", "*.tmp"))
    log(f"agent for {spec.peer} built on the host ({spec.agent}) and staged in {spec.dist_dir.relative_to(ROOT)}")


def ensure_base(base: str, log=print) -> None:  # type: ignore[no-untyped-def]
    """The base image, pulled or else made by docker/base-image (debootstrap)."""
    if subprocess.run(["docker", "image", "inspect", base], capture_output=True).returncode == 0:
        return
    log(f"base image {base} is not here: pulling it, or making it with debootstrap (about a minute)")
    proc = subprocess.run([str(DOCKER_DIR / "base-image"), base], capture_output=True, text=True)
    if proc.returncode != 0:
        raise ImageError(f"docker/base-image {base} failed: {(proc.stderr or proc.stdout).strip()[-800:]}")


def build(spec: ImageSpec, log=print) -> float:  # type: ignore[no-untyped-def]
    """docker build one image (docker's layer cache makes a repeat take seconds); the time it took."""
    started = time.monotonic()
    cmd = [
        "docker", "build", "--network", "host", "--quiet",
        "-f", str(spec.dockerfile), "-t", spec.image,
        "--label", f"{LABEL}.peer={spec.peer}", "--label", f"{LABEL}.family={spec.family}",
        str(ROOT),
    ]  # fmt: skip
    # The classic builder: BuildKit is a separate package on Debian and needs no part here.
    env = {**os.environ, "DOCKER_BUILDKIT": "0"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        out = (proc.stdout + proc.stderr).strip().splitlines()
        raise ImageError(f"building {spec.image} from {spec.dockerfile} failed:\n" + "\n".join(out[-30:]))
    took = time.monotonic() - started
    log(f"image {spec.image:<32} ready ({took:.1f}s)")
    return took


def build_all(names: list[str] | None = None, path: Path = MATRIX, log=print) -> VersionMatrix:  # type: ignore[no-untyped-def]
    """Make the base image if needed, fetch wheels, build every image named (default: all)."""
    matrix = load(path)
    wanted = names or list(matrix.images)
    unknown = [n for n in wanted if n not in matrix.images]
    if unknown:
        raise ImageError(f"no image for {', '.join(unknown)} in {path} (it has {', '.join(matrix.images)})")
    ensure_base(matrix.base, log)
    for name in wanted:
        spec = matrix.images[name]
        fetch_wheels(spec, matrix.python, log)
        stage_agent(spec, log)
        build(spec, log)
    return matrix


def save(names: list[str], folder: Path, path: Path = MATRIX, log=print) -> list[Path]:  # type: ignore[no-untyped-def]
    """Write each named image (built already) to folder/<peer>.tar.gz, so one CI job builds an
    image and the shard jobs that start it load it instead of building it again."""
    matrix = load(path)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for name in names:
        spec = _spec_of(matrix, name, path)
        target = folder / f"{name}.tar.gz"
        with open(target, "wb") as f:
            docker = subprocess.Popen(["docker", "save", spec.image], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            gz = subprocess.run(["gzip", "-1"], stdin=docker.stdout, stdout=f)
            err = docker.communicate()[1]
        if docker.returncode or gz.returncode:
            target.unlink(missing_ok=True)
            raise ImageError(f"docker save {spec.image} failed: {err.decode(errors='replace').strip() or 'gzip failed'}")
        log(f"saved {spec.image} to {target}")
        out.append(target)
    return out


def load_saved(names: list[str], folder: Path, path: Path = MATRIX, log=print) -> None:  # type: ignore[no-untyped-def]
    """docker load folder/<peer>.tar.gz for each named peer (written by `save`)."""
    matrix = load(path)
    for name in names:
        spec = _spec_of(matrix, name, path)
        source = folder / f"{name}.tar.gz"
        if not source.exists():
            raise ImageError(f"no saved image for {name}: {source} does not exist (zmtp-conformance images save {name})")
        with open(source, "rb") as f:
            proc = subprocess.run(["docker", "load", "--quiet"], stdin=f, capture_output=True, text=True)
        if proc.returncode:
            raise ImageError(f"docker load {source} failed: {proc.stderr.strip()}")
        if subprocess.run(["docker", "image", "inspect", spec.image], capture_output=True).returncode:
            raise ImageError(f"{source} did not hold {spec.image} (it loaded: {proc.stdout.strip()})")
        log(f"loaded {spec.image} from {source}")


def _spec_of(matrix: VersionMatrix, name: str, path: Path) -> ImageSpec:
    try:
        return matrix.images[name]
    except KeyError:
        raise ImageError(f"no image for {name} in {path} (it has {', '.join(matrix.images)})") from None
