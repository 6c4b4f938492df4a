"""The docker backend: every peer an image built from docker/, run by testcontainers.

- `images`: the version matrix (docker/versions.yaml), the local base image,
  building the images;
- `engine`: whether a Docker engine answers, and what it has;
- `agent`: a peer's agent in a container, on the same control protocol;
- `cleanup`: labels on every container, and removing what a run left.

Faults (kill, pause, unpause) are ContainerAgent methods, the counterparts of
AgentProcess's signals, so scenarios use them alike on both backends.

Containers share the host's network namespace (loopback only: the daemon
runs with --bridge=none) and the ipc:// directory, so cells, captures and
reports are the same as with local agents.
"""
