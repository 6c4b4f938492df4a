"""Prometheus metrics for zmtp sockets (prometheus_client, an optional dependency).

    metrics = zmtp.Metrics()                    # registers in prometheus_client's default registry
    ctx = zmtp.Context(metrics=metrics)         # every socket of the context reports
    prometheus_client.start_http_server(9100)   # or serve `generate_latest()` yourself

Names and labels:

    zmtp_connections_active{socket_type}                  gauge: TCP/IPC connections open
    zmtp_handshakes_total{mechanism, outcome}             outcome: succeeded, protocol, auth, timeout, closed
    zmtp_handshake_duration_seconds{mechanism}            histogram, successful handshakes
    zmtp_messages_sent_total{socket_type}                 messages written to connections
    zmtp_messages_received_total{socket_type}             messages read from connections
    zmtp_bytes_sent_total{socket_type}                    message bytes (frame bodies) written
    zmtp_bytes_received_total{socket_type}                message bytes read
    zmtp_messages_dropped_total{socket_type, reason}      reason: hwm (a peer at its high-water mark), unroutable
    zmtp_auth_failures_total{mechanism, status}           ZAP refusals on this side (status 300, 400, 500)

A socket without metrics pays one `is None` test per batch of messages.
"""

from __future__ import annotations

from typing import Any

HANDSHAKE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    def __init__(self, registry: Any = None) -> None:
        try:
            import prometheus_client as pc
        except ImportError:
            raise ImportError("zmtp.Metrics needs prometheus_client: pip install prometheus_client") from None
        reg = pc.REGISTRY if registry is None else registry
        self.registry = reg
        self.connections_active = pc.Gauge(
            "zmtp_connections_active", "Connections open (handshaking or ready)", ["socket_type"], registry=reg
        )
        self.handshakes = pc.Counter(
            "zmtp_handshakes", "Handshakes by mechanism and outcome", ["mechanism", "outcome"], registry=reg
        )
        self.handshake_duration = pc.Histogram(
            "zmtp_handshake_duration_seconds",
            "Time from connection to a completed handshake",
            ["mechanism"],
            buckets=HANDSHAKE_BUCKETS,
            registry=reg,
        )
        self.messages_sent = pc.Counter("zmtp_messages_sent", "Messages written", ["socket_type"], registry=reg)
        self.messages_received = pc.Counter("zmtp_messages_received", "Messages read", ["socket_type"], registry=reg)
        self.bytes_sent = pc.Counter("zmtp_bytes_sent", "Message bytes written", ["socket_type"], registry=reg)
        self.bytes_received = pc.Counter("zmtp_bytes_received", "Message bytes read", ["socket_type"], registry=reg)
        self.messages_dropped = pc.Counter(
            "zmtp_messages_dropped", "Messages dropped by the socket", ["socket_type", "reason"], registry=reg
        )
        self.auth_failures = pc.Counter(
            "zmtp_auth_failures", "ZAP refusals by mechanism and status", ["mechanism", "status"], registry=reg
        )

    def for_socket(self, socket_type: str) -> SocketMetrics:
        return SocketMetrics(self, socket_type)


class SocketMetrics:
    """One socket type's children of each metric, resolved once: the hot path only adds."""

    def __init__(self, m: Metrics, socket_type: str) -> None:
        self.m = m
        self.connections = m.connections_active.labels(socket_type)
        self._sent = m.messages_sent.labels(socket_type)
        self._received = m.messages_received.labels(socket_type)
        self._bytes_sent = m.bytes_sent.labels(socket_type)
        self._bytes_received = m.bytes_received.labels(socket_type)
        self.socket_type = socket_type

    def sent(self, messages: int, size: int) -> None:
        self._sent.inc(messages)
        self._bytes_sent.inc(size)

    def received(self, messages: list[list[bytes]]) -> None:
        size = 0
        for frames in messages:
            for f in frames:
                size += len(f)
        self._received.inc(len(messages))
        self._bytes_received.inc(size)

    def dropped(self, reason: str) -> None:
        self.m.messages_dropped.labels(self.socket_type, reason).inc()

    def handshake(self, mechanism: str, outcome: str, duration: float | None = None) -> None:
        self.m.handshakes.labels(mechanism, outcome).inc()
        if duration is not None:
            self.m.handshake_duration.labels(mechanism).observe(duration)

    def auth_failure(self, mechanism: str, status: int) -> None:
        self.m.auth_failures.labels(mechanism, str(status)).inc()
