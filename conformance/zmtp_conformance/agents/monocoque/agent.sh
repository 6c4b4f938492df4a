#!/bin/sh
# Launcher for the Monocoque agent: runs the tokio (epoll) build unless
# ZMTP_MONOCOQUE_RUNTIME=compio asks for the io_uring one.
#
# Why not io_uring by default: the agent reads each connection in 5 ms slices
# of Monocoque's own recv_timeout (its sockets take &mut self for both send
# and recv, so there is no other way to serve sends while waiting). Under
# compio, monocoque-rs-zmtp 0.4.2 src/base.rs SocketBase::read_raw runs that
# timeout by dropping the in-flight io_uring read, and compio's Submit drop
# only cancels the op: bytes the kernel already read are thrown away with the
# buffer, so a message arriving as the slice ends is lost (about 15 NULL/PLAIN
# cells a run; none under tokio, whose reads are readiness-based). A reader
# task that never times out would need the stream split from the library
# socket, and Monocoque's reconnect (try_reconnect, send_with_reconnect) works
# only on a library-owned TcpStream.
dir=$(dirname "$0")
case "${ZMTP_MONOCOQUE_RUNTIME:-tokio}" in
    compio)
        if why=$("$dir/agent-compio" --probe 2>&1); then
            ZMTP_MONOCOQUE_RUNTIME_NOTE="chosen by ZMTP_MONOCOQUE_RUNTIME=compio; recv_timeout drops io_uring reads, so messages may be lost"
            export ZMTP_MONOCOQUE_RUNTIME_NOTE
            exec "$dir/agent-compio" "$@"
        fi
        echo "monocoque agent: io_uring refused here: $(printf '%s' "$why" | tail -n 1)" >&2
        exit 3 ;;
esac
ZMTP_MONOCOQUE_RUNTIME_NOTE="the default: under compio, recv_timeout drops in-flight io_uring reads and loses messages"
export ZMTP_MONOCOQUE_RUNTIME_NOTE
exec "$dir/agent-tokio" "$@"
