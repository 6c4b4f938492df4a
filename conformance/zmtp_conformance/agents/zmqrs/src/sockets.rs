//! zmq.rs sockets behind one type, their options, and the task that owns each.
//!
//! zmq.rs's `Socket::connect` only returns once the peer is reached and the
//! handshake is done (src/lib.rs; src/util.rs connect_forever retries a refused
//! connection until `connect_timeout`), and every socket method takes `&mut self`.
//! So each socket lives in a task of its own that runs its requests in order:
//! a `connect` request is answered at once, like libzmq's, and what comes after
//! it on that socket waits for the connection, bounded by its own timeout.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{json, Map, Value};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{timeout, timeout_at, Instant};
use zeromq::util::PeerIdentity;
use zeromq::{
    DealerSocket, PubSocket, PullSocket, PushSocket, RepSocket, ReqSocket, RouterSocket, Socket,
    SocketEvent, SocketOptions, SocketRecv, SocketSend, SubSocket, XPubSocket, XSubSocket,
    ZmqError, ZmqMessage,
};

use crate::events::{handshake_failed, EventLog};
use crate::{hex, AgentError, Reply};

const NULL_ONLY: &str = "zeromq 0.7.0 implements only the NULL mechanism: its greeting always names NULL \
     (src/codec/greeting.rs ZmqGreeting::default, sent by src/util.rs greet_exchange) and its codec knows \
     no command but READY (src/codec/command.rs ZmqCommandName), so no PLAIN or CURVE handshake";

pub enum AnySocket {
    Req(ReqSocket),
    Rep(RepSocket),
    Dealer(DealerSocket),
    Router(RouterSocket),
    Pub(PubSocket),
    Sub(SubSocket),
    XPub(XPubSocket),
    XSub(XSubSocket),
    Push(PushSocket),
    Pull(PullSocket),
}

macro_rules! each {
    ($sock:expr, $s:ident => $body:expr) => {
        match $sock {
            AnySocket::Req($s) => $body,
            AnySocket::Rep($s) => $body,
            AnySocket::Dealer($s) => $body,
            AnySocket::Router($s) => $body,
            AnySocket::Pub($s) => $body,
            AnySocket::Sub($s) => $body,
            AnySocket::XPub($s) => $body,
            AnySocket::XSub($s) => $body,
            AnySocket::Push($s) => $body,
            AnySocket::Pull($s) => $body,
        }
    };
}

impl AnySocket {
    fn new(kind: &str, options: SocketOptions) -> Result<Self, AgentError> {
        Ok(match kind {
            "REQ" => Self::Req(ReqSocket::with_options(options)),
            "REP" => Self::Rep(RepSocket::with_options(options)),
            "DEALER" => Self::Dealer(DealerSocket::with_options(options)),
            "ROUTER" => Self::Router(RouterSocket::with_options(options)),
            "PUB" => Self::Pub(PubSocket::with_options(options)),
            "SUB" => Self::Sub(SubSocket::with_options(options)),
            "XPUB" => Self::XPub(XPubSocket::with_options(options)),
            "XSUB" => Self::XSub(XSubSocket::with_options(options)),
            "PUSH" => Self::Push(PushSocket::with_options(options)),
            "PULL" => Self::Pull(PullSocket::with_options(options)),
            "PAIR" => {
                return Err(AgentError::Unsupported(
                    "zeromq 0.7.0 has no PAIR socket: SocketType::PAIR is only a name in its type table \
                     (src/lib.rs), there is no PairSocket (no pair module in src/)"
                        .into(),
                ))
            }
            other => return Err(AgentError::Unsupported(format!("no socket type {other} in zeromq 0.7.0"))),
        })
    }

    fn monitor(&mut self) -> futures::channel::mpsc::Receiver<SocketEvent> {
        each!(self, s => s.monitor())
    }

    async fn bind(&mut self, endpoint: &str) -> Result<String, ZmqError> {
        each!(self, s => s.bind(endpoint).await.map(|ep| ep.to_string()))
    }

    async fn connect(&mut self, endpoint: &str) -> Result<(), ZmqError> {
        each!(self, s => s.connect(endpoint).await)
    }

    async fn send(&mut self, msg: ZmqMessage) -> Result<(), ZmqError> {
        match self {
            Self::Req(s) => s.send(msg).await,
            Self::Rep(s) => s.send(msg).await,
            Self::Dealer(s) => s.send(msg).await,
            Self::Router(s) => s.send(msg).await,
            Self::Pub(s) => s.send(msg).await,
            Self::XPub(s) => s.send(msg).await,
            Self::XSub(s) => s.send(msg).await,
            Self::Push(s) => s.send(msg).await,
            Self::Sub(_) => Err(ZmqError::Socket("a SUB socket does not send (zeromq SubSocket has no SocketSend)")),
            Self::Pull(_) => Err(ZmqError::Socket("a PULL socket does not send (zeromq PullSocket has no SocketSend)")),
        }
    }

    async fn recv(&mut self) -> Result<ZmqMessage, ZmqError> {
        match self {
            Self::Req(s) => s.recv().await,
            Self::Rep(s) => s.recv().await,
            Self::Dealer(s) => s.recv().await,
            Self::Router(s) => s.recv().await,
            Self::Sub(s) => s.recv().await,
            Self::XPub(s) => s.recv().await,
            Self::XSub(s) => s.recv().await,
            Self::Pull(s) => s.recv().await,
            Self::Pub(_) => Err(ZmqError::Socket("a PUB socket does not receive (zeromq PubSocket has no SocketRecv)")),
            Self::Push(_) => Err(ZmqError::Socket("a PUSH socket does not receive (zeromq PushSocket has no SocketRecv)")),
        }
    }

    async fn subscribe(&mut self, on: bool, topic: &str) -> Result<(), ZmqError> {
        match (self, on) {
            (Self::Sub(s), true) => s.subscribe(topic).await,
            (Self::Sub(s), false) => s.unsubscribe(topic).await,
            (Self::XSub(s), true) => s.subscribe(topic).await,
            (Self::XSub(s), false) => s.unsubscribe(topic).await,
            _ => Err(ZmqError::Socket("only SUB and XSUB sockets subscribe")),
        }
    }

    fn is_dealer(&self) -> bool {
        matches!(self, Self::Dealer(_))
    }
}

/// Why zmq.rs cannot honour an option (or this value of it), from its source.
fn option_unsupported(name: &str) -> String {
    let why = match name {
        "sndhwm" | "rcvhwm" => {
            "zeromq 0.7.0 has no high-water marks: SocketOptions (src/lib.rs) has no such field and each \
             peer's send queue is a fixed 100000 messages (src/backend.rs PEER_SEND_QUEUE_CAPACITY)"
        }
        "handshake_timeout" => {
            "zeromq 0.7.0 has no handshake timeout: SocketOptions::connect_timeout (src/lib.rs) bounds only \
             an outgoing connect together with its retries, and accepted connections (src/lib.rs bind_inner) \
             have no limit at all"
        }
        "heartbeat_ivl" | "heartbeat_ttl" | "heartbeat_timeout" => {
            "zeromq 0.7.0 has no heartbeats: it speaks ZMTP 3.0 and its codec knows no command but READY \
             (src/codec/command.rs ZmqCommandName), so no PING or PONG"
        }
        "reconnect_ivl" | "reconnect_ivl_max" => {
            "zeromq 0.7.0 cannot set reconnect intervals: SocketOptions (src/lib.rs) has no such field, \
             SUB and XSUB reconnect with ReconnectConfig::default() (src/sub_backend.rs \
             connect_with_reconnect) and the other socket types do not reconnect"
        }
        "linger" => "zeromq 0.7.0 has no linger option (SocketOptions in src/lib.rs)",
        "max_msg_size" => {
            "zeromq 0.7.0 has no message size limit: SocketOptions (src/lib.rs) has none, and its \
             read_buffer setting is documented there as not a message-size limit"
        }
        "router_mandatory" => {
            "zeromq 0.7.0's ROUTER always fails a send to an unknown routing id \
             (src/backend.rs GenericSocketBackend::send_to_peer); it cannot drop it silently"
        }
        "router_handover" => "zeromq 0.7.0 has no router_handover option (SocketOptions in src/lib.rs)",
        "req_relaxed" => {
            "zeromq 0.7.0's REQ is always strict: ReqSocket::send refuses while a request is in progress \
             (src/req.rs)"
        }
        "req_correlate" => "zeromq 0.7.0's REQ sends no request ids (src/req.rs ReqSocket::send)",
        "xpub_verbose" => {
            "zeromq 0.7.0's XPUB hands every subscription message up, duplicates included \
             (src/xpub.rs XPubSocket::recv); it cannot filter them"
        }
        "immediate" => "zeromq 0.7.0 has no immediate option (SocketOptions in src/lib.rs)",
        "plain_server" | "plain_username" | "plain_password" | "curve_server" | "curve_secretkey"
        | "curve_publickey" | "curve_serverkey" | "zap_domain" => NULL_ONLY,
        _ => return format!("option {name} is unknown to this agent"),
    };
    format!("option {name}: {why}")
}

/// The options of docs/agent-protocol.md as zmq.rs's SocketOptions. Where zmq.rs
/// has one fixed behaviour, asking for exactly that behaviour is honoured.
fn socket_options(kind: &str, opts: &Map<String, Value>) -> Result<SocketOptions, AgentError> {
    let mut out = SocketOptions::default();
    for (name, value) in opts {
        let honoured = match (name.as_str(), value) {
            ("routing_id", Value::String(text)) => {
                let id = hex::decode(text)?;
                // An empty routing id means none; zmq.rs would make a random one and send it.
                if !id.is_empty() {
                    let id = PeerIdentity::try_from(id).map_err(|e| AgentError::Failed(e.to_string()))?;
                    out.peer_identity(id);
                }
                true
            }
            (_, Value::Null) => true, // unset: the library's default
            ("max_msg_size", v) => v.as_i64().is_some_and(|n| n < 0),
            ("router_mandatory", Value::Bool(b)) => *b && kind == "ROUTER",
            ("req_relaxed" | "req_correlate", Value::Bool(b)) => !*b,
            ("xpub_verbose", Value::Bool(b)) => *b && kind == "XPUB",
            _ => false,
        };
        if !honoured {
            return Err(AgentError::Unsupported(option_unsupported(name)));
        }
    }
    Ok(out)
}

pub fn check_mechanism(mechanism: &str) -> Result<(), AgentError> {
    match mechanism {
        "NULL" => Ok(()),
        "PLAIN" | "CURVE" => Err(AgentError::Unsupported(format!("mechanism {mechanism}: {NULL_ONLY}"))),
        other => Err(AgentError::Unsupported(format!("no mechanism {other}"))),
    }
}

pub enum Op {
    Bind(String),
    Connect(String),
    Send(Vec<Bytes>),
    Recv,
    Subscribe(bool, String),
    BenchSend { size: usize, count: u64 },
    BenchRecv { count: u64 },
    BenchRtt { size: usize, count: u64 },
    BenchEcho { count: u64 },
}

pub struct Request {
    pub op: Op,
    /// When a send or recv gives up (the request's timeout); for a bench op, the
    /// timeout of each of its sends and receives.
    pub deadline: Instant,
    pub per_op: Duration,
    pub reply: Option<oneshot::Sender<Reply>>,
}

/// One socket of the agent's table: the task that owns it and its event log.
pub struct Handle {
    pub requests: mpsc::UnboundedSender<Request>,
    pub log: Arc<EventLog>,
    owner: tokio::task::JoinHandle<()>,
    watcher: tokio::task::JoinHandle<()>,
}

impl Handle {
    pub fn open(kind: &str, mechanism: &str, opts: &Map<String, Value>) -> Result<Self, AgentError> {
        check_mechanism(mechanism)?;
        let options = socket_options(kind, opts)?;
        let mut socket = AnySocket::new(kind, options)?;
        let log = Arc::new(EventLog::default());
        // The monitor is set before anything else, so no event of the socket is missed.
        let watcher = tokio::spawn(crate::events::watch(socket.monitor(), log.clone()));
        let (requests, rx) = mpsc::unbounded_channel();
        let owner = tokio::spawn(serve(socket, rx, log.clone()));
        Ok(Self { requests, log, owner, watcher })
    }

    /// Drops the socket at once, wherever its task is (no linger): zmq.rs's Drop
    /// shuts the backend, its listeners and reconnect tasks down.
    pub fn close(self) {
        self.owner.abort();
        self.watcher.abort();
    }
}

async fn serve(mut socket: AnySocket, mut rx: mpsc::UnboundedReceiver<Request>, log: Arc<EventLog>) {
    while let Some(req) = rx.recv().await {
        let result = run(&mut socket, req.op, req.deadline, req.per_op, &log).await;
        if let Some(reply) = req.reply {
            let _ = reply.send(result);
        }
    }
}

fn message(frames: Vec<Bytes>) -> Result<ZmqMessage, AgentError> {
    ZmqMessage::try_from(frames).map_err(|_| AgentError::Invalid("send needs at least one frame".into()))
}

/// Sends, waiting for a peer when there is none yet: zmq.rs then answers at once
/// with the message handed back (src/backend.rs send_round_robin, src/req.rs),
/// which RFC 28 allows as much as blocking; the protocol's send blocks until its timeout.
async fn send_until(socket: &mut AnySocket, mut msg: ZmqMessage, deadline: Instant) -> Result<(), AgentError> {
    loop {
        match timeout_at(deadline, socket.send(msg)).await {
            Err(_) => return Err(AgentError::Timeout("send did not complete in time".into())),
            Ok(Ok(())) => return Ok(()),
            Ok(Err(ZmqError::ReturnToSender { reason, message })) if reason.starts_with("Not connected") => {
                if Instant::now() + Duration::from_millis(5) >= deadline {
                    return Err(AgentError::Timeout(format!("no peer to send to in time ({reason})")));
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
                msg = message;
            }
            Ok(Err(e)) => return Err(AgentError::Failed(e.to_string())),
        }
    }
}

async fn recv_by(socket: &mut AnySocket, deadline: Instant) -> Result<ZmqMessage, AgentError> {
    match timeout_at(deadline, socket.recv()).await {
        Err(_) => Err(AgentError::Timeout("nothing arrived in time".into())),
        Ok(Err(e)) => Err(AgentError::Failed(e.to_string())),
        Ok(Ok(m)) => Ok(m),
    }
}

fn frames_json(msg: ZmqMessage) -> Value {
    Value::Array(msg.into_vec().iter().map(|f| json!(hex::encode(f))).collect())
}

fn ok(fields: Value) -> Reply {
    match fields {
        Value::Object(map) => Ok(map),
        _ => Ok(Map::new()),
    }
}

async fn run(socket: &mut AnySocket, op: Op, deadline: Instant, per_op: Duration, log: &EventLog) -> Reply {
    let stale = Instant::now() >= deadline;
    match op {
        Op::Bind(endpoint) => {
            let bound = socket.bind(&endpoint).await.map_err(|e| AgentError::Failed(e.to_string()))?;
            log.set_bound(&bound);
            ok(json!({"endpoint": bound}))
        }
        Op::Connect(endpoint) => {
            if let Err(e) = socket.connect(&endpoint).await {
                // zmq.rs does not put a failed connect on the monitor; its answer is the report.
                eprintln!("zmqrs agent: connect to {endpoint} failed: {e}");
                log.add(handshake_failed(&endpoint, &e));
            }
            ok(json!({}))
        }
        // A request that waited past its own timeout behind a slow connect is not
        // carried out late: the harness has been answered "timeout" already.
        Op::Send(_) | Op::Recv if stale => Err(AgentError::Timeout("the socket was still connecting".into())),
        Op::Send(frames) => {
            send_until(socket, message(frames)?, deadline).await?;
            ok(json!({}))
        }
        Op::Recv => {
            let msg = recv_by(socket, deadline).await?;
            ok(json!({"frames": frames_json(msg)}))
        }
        Op::Subscribe(on, topic) => {
            socket.subscribe(on, &topic).await.map_err(|e| AgentError::Failed(e.to_string()))?;
            ok(json!({}))
        }
        Op::BenchSend { size, count } => {
            let msg = ZmqMessage::from(vec![0u8; size]);
            let t0 = std::time::Instant::now();
            for _ in 0..count {
                send_until(socket, msg.clone(), Instant::now() + per_op).await?;
            }
            ok(json!({"elapsed": t0.elapsed().as_secs_f64()}))
        }
        Op::BenchRecv { count } => {
            if count == 0 {
                return ok(json!({"elapsed": 0.0, "timed": 0, "received": 0}));
            }
            // The clock starts at the first arrival, so the wait for the sender is not timed.
            bench_recv_one(socket, per_op, count).await?;
            let t0 = std::time::Instant::now();
            for _ in 1..count {
                bench_recv_one(socket, per_op, count).await?;
            }
            ok(json!({"elapsed": t0.elapsed().as_secs_f64(), "timed": count - 1, "received": count}))
        }
        Op::BenchRtt { size, count } => {
            let mut frames = vec![Bytes::from(vec![0u8; size])];
            if socket.is_dealer() {
                frames.insert(0, Bytes::new()); // the delimiter a REQ would add
            }
            let msg = message(frames)?;
            let mut samples = Vec::with_capacity(count as usize);
            for _ in 0..count {
                let t = std::time::Instant::now();
                send_until(socket, msg.clone(), Instant::now() + per_op).await?;
                recv_by(socket, Instant::now() + per_op).await?;
                samples.push(t.elapsed().as_nanos() as u64);
            }
            ok(latency_summary(samples))
        }
        Op::BenchEcho { count } => {
            for _ in 0..count {
                let msg = recv_by(socket, Instant::now() + per_op).await?;
                send_until(socket, msg, Instant::now() + per_op).await?;
            }
            ok(json!({}))
        }
    }
}

async fn bench_recv_one(socket: &mut AnySocket, per_op: Duration, count: u64) -> Result<(), AgentError> {
    match timeout(per_op, socket.recv()).await {
        Err(_) => Err(AgentError::Timeout(format!(
            "fewer than {count} messages within {:.3}s of each other",
            per_op.as_secs_f64()
        ))),
        Ok(Err(e)) => Err(AgentError::Failed(e.to_string())),
        Ok(Ok(_)) => Ok(()),
    }
}

/// Round-trip times as bench_rtt reports them: microseconds, percentiles by rank.
fn latency_summary(mut samples: Vec<u64>) -> Value {
    if samples.is_empty() {
        return json!({"count": 0});
    }
    samples.sort_unstable();
    let n = samples.len();
    let pct = |p: f64| samples[((p * n as f64) as usize).min(n - 1)] as f64 / 1000.0;
    let mean = samples.iter().map(|&s| s as f64).sum::<f64>() / n as f64 / 1000.0;
    json!({"count": n, "p50": pct(0.50), "p95": pct(0.95), "p99": pct(0.99), "mean": mean})
}
