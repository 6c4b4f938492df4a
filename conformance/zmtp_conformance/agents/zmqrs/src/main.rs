//! Agent for zmq.rs (crate `zeromq`, pure Rust on tokio), speaking the
//! harness's control protocol: JSON lines on stdin and stdout
//! (docs/agent-protocol.md).
//!
//! zeromq 0.7.0 speaks ZMTP 3.0 with the NULL mechanism only, has no ZAP, no
//! heartbeats, no PAIR socket and few socket options. The agent answers
//! "unsupported" for those, citing the crate's source, so the report shows
//! what this peer cannot do rather than failures.

mod events;
mod sockets;

use std::collections::HashMap;
use std::io::Write;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{json, Map, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::oneshot;
use tokio::time::Instant;

use sockets::{Handle, Op, Request};

pub enum AgentError {
    Timeout(String),
    Unsupported(String),
    Invalid(String),
    Failed(String),
}

impl AgentError {
    fn kind(&self) -> &'static str {
        match self {
            Self::Timeout(_) => "timeout",
            Self::Unsupported(_) => "unsupported",
            Self::Invalid(_) => "invalid",
            Self::Failed(_) => "failed",
        }
    }

    fn message(&self) -> &str {
        match self {
            Self::Timeout(m) | Self::Unsupported(m) | Self::Invalid(m) | Self::Failed(m) => m,
        }
    }
}

pub type Reply = Result<Map<String, Value>, AgentError>;

pub mod hex {
    use crate::AgentError;

    pub fn encode(data: &[u8]) -> String {
        data.iter().map(|b| format!("{b:02x}")).collect()
    }

    pub fn decode(text: &str) -> Result<Vec<u8>, AgentError> {
        let bad = || AgentError::Invalid(format!("not hex: {text:?}"));
        if text.len() % 2 != 0 || !text.is_ascii() {
            return Err(bad());
        }
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).map_err(|_| bad()))
            .collect()
    }
}

/// The version of a package as the lock file this agent was built with pins it.
fn locked_version(name: &str) -> String {
    let lock = include_str!("../Cargo.lock");
    let mut lines = lock.lines();
    let wanted = format!("name = \"{name}\"");
    while let Some(line) = lines.next() {
        if line == wanted {
            if let Some(v) = lines.next().and_then(|l| l.strip_prefix("version = \"")) {
                return v.trim_end_matches('"').to_string();
            }
        }
    }
    "unknown".into()
}

fn field<'a>(req: &'a Value, key: &str) -> Result<&'a str, AgentError> {
    req[key].as_str().ok_or_else(|| AgentError::Invalid(format!("missing or non-text field {key}")))
}

fn seconds(req: &Value, key: &str, default: f64) -> Duration {
    Duration::from_secs_f64(req[key].as_f64().unwrap_or(default).max(0.0))
}

fn count(req: &Value, key: &str) -> Result<u64, AgentError> {
    req[key].as_u64().ok_or_else(|| AgentError::Invalid(format!("missing or bad field {key}")))
}

struct Agent {
    sockets: HashMap<String, Handle>,
    counter: u64,
}

impl Agent {
    fn handle(&self, req: &Value) -> Result<&Handle, AgentError> {
        let name = field(req, "socket")?;
        self.sockets.get(name).ok_or_else(|| AgentError::Invalid(format!("no socket {name:?}")))
    }

    /// Hands a request to the socket's task and waits for its answer. With a
    /// timeout, the wait is bounded even if the task is still busy connecting.
    async fn call(&self, req: &Value, op: Op, wait: Option<Duration>) -> Reply {
        let handle = self.handle(req)?;
        let per_op = wait.unwrap_or(Duration::from_secs(3600));
        let deadline = Instant::now() + per_op;
        let (tx, rx) = oneshot::channel();
        let request = Request { op, deadline, per_op, reply: Some(tx) };
        handle.requests.send(request).map_err(|_| AgentError::Failed("the socket's task has ended".into()))?;
        let answer = match wait {
            // A bench op applies its timeout to each step: wait as long as it runs.
            Some(w) if !is_bench(req) => tokio::time::timeout(w + Duration::from_millis(500), rx)
                .await
                .map_err(|_| AgentError::Timeout("the socket is still busy connecting".into()))?,
            _ => rx.await,
        };
        answer.map_err(|_| AgentError::Failed("the socket's task has ended".into()))?
    }

    async fn dispatch(&mut self, op: &str, req: &Value) -> Reply {
        match op {
            "hello" => Ok(json!({
                "peer": "zmqrs",
                "protocol": 1,
                "versions": {
                    "zeromq": locked_version("zeromq"),
                    "tokio": locked_version("tokio"),
                    "rustc": option_env!("ZMQRS_AGENT_RUSTC").unwrap_or("unknown"),
                },
                // zeromq 0.7.0 greets as ZMTP 3.0 (src/codec/greeting.rs ZmqGreeting::default).
                "zmtp": ["3.0"],
                // src/util.rs negotiate_version answers an older peer with UnsupportedVersion
                // ("TODO: implement interoperability with older protocol versions").
                "downgrades": [],
            })
            .as_object()
            .cloned()
            .unwrap_or_default()),
            "socket" => {
                let kind = field(req, "type")?.to_ascii_uppercase();
                let mechanism = req["mechanism"].as_str().unwrap_or("NULL");
                let empty = Map::new();
                let options = req["options"].as_object().unwrap_or(&empty);
                let handle = Handle::open(&kind, mechanism, options)?;
                self.counter += 1;
                let name = format!("s{}", self.counter);
                self.sockets.insert(name.clone(), handle);
                Ok(json!({"socket": name}).as_object().cloned().unwrap_or_default())
            }
            "bind" => self.call(req, Op::Bind(field(req, "endpoint")?.into()), None).await,
            "connect" => {
                let endpoint = field(req, "endpoint")?;
                endpoint
                    .parse::<zeromq::Endpoint>()
                    .map_err(|e| AgentError::Failed(format!("bad endpoint {endpoint}: {e}")))?;
                // Answered at once: the socket's task connects in the background.
                let handle = self.handle(req)?;
                let request = Request {
                    op: Op::Connect(endpoint.into()),
                    deadline: Instant::now(),
                    per_op: Duration::ZERO,
                    reply: None,
                };
                handle.requests.send(request).map_err(|_| AgentError::Failed("the socket's task has ended".into()))?;
                Ok(Map::new())
            }
            "send" => {
                let frames = req["frames"].as_array().ok_or_else(|| AgentError::Invalid("send needs frames".into()))?;
                let frames = frames
                    .iter()
                    .map(|f| f.as_str().map(hex::decode).unwrap_or_else(|| Err(AgentError::Invalid("frame not text".into()))))
                    .map(|f| f.map(Bytes::from))
                    .collect::<Result<Vec<_>, _>>()?;
                self.call(req, Op::Send(frames), Some(seconds(req, "timeout", 5.0))).await
            }
            "recv" => self.call(req, Op::Recv, Some(seconds(req, "timeout", 2.0))).await,
            "subscribe" | "unsubscribe" => {
                let topic = hex::decode(req["topic"].as_str().unwrap_or(""))?;
                // SubSocket::subscribe takes &str (src/sub.rs), so a topic must be UTF-8.
                let topic = String::from_utf8(topic).map_err(|_| {
                    AgentError::Unsupported(
                        "zeromq 0.7.0 takes subscriptions as &str (src/sub.rs SubSocket::subscribe): a topic \
                         that is not UTF-8 cannot be given"
                            .into(),
                    )
                })?;
                self.call(req, Op::Subscribe(op == "subscribe", topic), None).await
            }
            "events" => {
                let handle = self.handle(req)?;
                let until = req["until"].as_str();
                let events = handle.log.take(until, seconds(req, "timeout", 2.0)).await.map_err(AgentError::Timeout)?;
                Ok(json!({"events": events}).as_object().cloned().unwrap_or_default())
            }
            "close" => {
                let name = field(req, "socket")?;
                if let Some(handle) = self.sockets.remove(name) {
                    handle.close();
                }
                Ok(Map::new())
            }
            "quit" => Ok(Map::new()),
            "zap" => Err(AgentError::Unsupported(
                "zeromq 0.7.0 has no ZAP handler or authentication hook: it implements only the NULL \
                 mechanism (src/util.rs peer_handshake goes from greeting straight to READY)"
                    .into(),
            )),
            // A non-blocking send cannot be had from outside zmq.rs: polling the send future once
            // and dropping it when pending would lose the peer, since send_round_robin pops its id
            // off the round-robin queue before awaiting room and pushes it back only after.
            "send_until_full" => Err(AgentError::Unsupported(
                "zeromq 0.7.0 has no non-blocking send: SocketSend::send (src/lib.rs) is its only send, and \
                 it awaits room in the peer's queue (src/backend.rs send_to_peer_queue) with no way to tell \
                 that it would wait; only a PUB never waits (src/pub.rs send_to_subscriber drops for a full \
                 queue), and with no sndhwm its queues hold a fixed 100000 messages (PUB_SEND_QUEUE_CAPACITY)"
                    .into(),
            )),
            "send_more" => Err(AgentError::Unsupported(
                "zeromq 0.7.0 sends whole messages only: SocketSend::send (src/lib.rs) takes a ZmqMessage of \
                 all its frames, and there is no send of one frame with more to come"
                    .into(),
            )),
            "bench_send" => {
                let size = count(req, "size")? as usize;
                let op = Op::BenchSend { size, count: count(req, "count")? };
                self.call(req, op, Some(seconds(req, "timeout", 60.0))).await
            }
            "bench_recv" => {
                let op = Op::BenchRecv { count: count(req, "count")? };
                self.call(req, op, Some(seconds(req, "timeout", 60.0))).await
            }
            "bench_rtt" => {
                let size = count(req, "size")? as usize;
                let op = Op::BenchRtt { size, count: count(req, "count")? };
                self.call(req, op, Some(seconds(req, "timeout", 10.0))).await
            }
            "bench_echo" => {
                let op = Op::BenchEcho { count: count(req, "count")? };
                self.call(req, op, Some(seconds(req, "timeout", 10.0))).await
            }
            other => Err(AgentError::Unsupported(format!("op {other:?} is not supported by the zmq.rs agent"))),
        }
    }
}

fn is_bench(req: &Value) -> bool {
    req["op"].as_str().is_some_and(|op| op.starts_with("bench_"))
}

fn respond(id: &Value, reply: Reply) -> Value {
    match reply {
        Ok(mut fields) => {
            fields.insert("id".into(), id.clone());
            fields.insert("ok".into(), json!(true));
            Value::Object(fields)
        }
        Err(e) => json!({"id": id, "ok": false, "error": {"kind": e.kind(), "message": e.message()}}),
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut agent = Agent { sockets: HashMap::new(), counter: 0 };
    let stdout = std::io::stdout();
    loop {
        let line = match lines.next_line().await {
            Ok(Some(line)) => line,
            Ok(None) => break,
            Err(e) => {
                eprintln!("zmqrs agent: stdin: {e}");
                break;
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        let (resp, quit) = match serde_json::from_str::<Value>(&line) {
            Ok(req) if req["op"].is_string() => {
                let op = req["op"].as_str().unwrap_or_default().to_string();
                let reply = agent.dispatch(&op, &req).await;
                (respond(&req["id"], reply), op == "quit")
            }
            Ok(req) => (respond(&req["id"], Err(AgentError::Invalid("request has no op".into()))), false),
            Err(e) => (respond(&Value::Null, Err(AgentError::Invalid(format!("bad request line: {e}")))), false),
        };
        let mut out = stdout.lock();
        if writeln!(out, "{resp}").and_then(|_| out.flush()).is_err() {
            break; // nobody is listening any more
        }
        if quit {
            break;
        }
    }
    // Sockets are dropped without linger. Their listeners remove their ipc files
    // in tasks of their own (src/transport/ipc.rs); give those a moment, as a
    // socket file left behind would refuse the next bind of that path.
    for (_, handle) in agent.sockets.drain() {
        handle.close();
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    std::process::exit(0);
}
