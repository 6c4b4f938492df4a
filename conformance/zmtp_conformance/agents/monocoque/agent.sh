#!/bin/sh
# Launcher for the Monocoque agent: runs the io_uring (compio) build when
# io_uring works here (seccomp or the kernel may refuse it), else the tokio
# build. ZMTP_MONOCOQUE_RUNTIME=tokio|compio forces one.
dir=$(dirname "$0")
case "${ZMTP_MONOCOQUE_RUNTIME:-auto}" in
    tokio)
        ZMTP_MONOCOQUE_RUNTIME_NOTE="chosen by ZMTP_MONOCOQUE_RUNTIME=tokio" exec "$dir/agent-tokio" "$@" ;;
    compio)
        exec "$dir/agent-compio" "$@" ;;
esac
if why=$("$dir/agent-compio" --probe 2>&1); then
    exec "$dir/agent-compio" "$@"
fi
ZMTP_MONOCOQUE_RUNTIME_NOTE="io_uring refused: $(printf '%s' "$why" | tail -n 1)"
export ZMTP_MONOCOQUE_RUNTIME_NOTE
exec "$dir/agent-tokio" "$@"
