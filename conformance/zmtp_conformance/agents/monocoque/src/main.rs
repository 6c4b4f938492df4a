//! Agent for Monocoque (crate monocoque-rs, feature zmq), speaking the
//! harness's control protocol: JSON lines on stdin and stdout
//! (docs/agent-protocol.md).
//!
//! Built twice, once per runtime backend (the features exclude each other);
//! the launcher script picks the io_uring one when io_uring works here.
//! `--probe` only starts the runtime and exits, for that choice.

mod conn;
mod socket;
mod util;
mod zap;

use conn::{Bench, Kind};
use monocoque::{Bytes, SocketOptions};
use serde_json::{Map, Value, json};
use socket::AgentSocket;
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, Write};
use std::time::Duration;
use util::{Fault, apply_option, frames_from, frames_to, hex, unhex, z85_key};

#[cfg(feature = "rt-compio")]
const RUNTIME: &str = "compio (io_uring)";
#[cfg(not(feature = "rt-compio"))]
const RUNTIME: &str = "tokio (epoll)";

fn main() {
    let rt = match monocoque::rt::LocalRuntime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("monocoque agent: cannot start the {RUNTIME} runtime: {e}");
            std::process::exit(3);
        }
    };
    if std::env::args().any(|a| a == "--probe") {
        // Starting the runtime is not enough for io_uring: do one real operation.
        let r = rt.block_on(async {
            let l = monocoque::rt::TcpListener::bind("127.0.0.1:0").await?;
            monocoque::rt::sleep(Duration::from_millis(1)).await;
            l.local_addr().map(|_| ())
        });
        if let Err(e) = r {
            eprintln!("monocoque agent: {RUNTIME} runtime does not work: {e}");
            std::process::exit(3);
        }
        return;
    }
    // Reading stdin blocks, so a thread does it and hands lines over.
    let (lines_tx, lines_rx) = flume::unbounded::<String>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    rt.block_on(async move {
        let mut agent = Agent::default();
        while let Ok(line) = lines_rx.recv_async().await {
            if line.trim().is_empty() {
                continue;
            }
            let (id, op, answer) = match serde_json::from_str::<Value>(&line) {
                Ok(Value::Object(req)) => {
                    let id = req.get("id").cloned().unwrap_or(Value::Null);
                    let op = req.get("op").and_then(Value::as_str).unwrap_or("").to_owned();
                    let answer = agent.handle(&op, &req).await;
                    (id, op, answer)
                }
                _ => (Value::Null, String::new(), Err(Fault::Invalid(format!("bad request line: {line}")))),
            };
            let mut out = match answer {
                Ok(fields) => fields,
                Err(f) => {
                    let mut m = Map::new();
                    m.insert("ok".into(), Value::Bool(false));
                    m.insert("error".into(), json!({"kind": f.kind(), "message": f.message()}));
                    m
                }
            };
            out.insert("id".into(), id);
            out.entry("ok").or_insert(Value::Bool(true));
            let mut stdout = std::io::stdout().lock();
            let _ = writeln!(stdout, "{}", Value::Object(out));
            let _ = stdout.flush();
            if op == "quit" {
                break;
            }
        }
        for s in agent.sockets.values() {
            s.close();
        }
    });
}

#[derive(Default)]
struct Agent {
    sockets: HashMap<String, AgentSocket>,
    count: u64,
    zap: zap::Zap,
}

fn field<'a>(req: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    req.get(name).filter(|v| !v.is_null())
}

fn seconds(req: &Map<String, Value>, name: &str, default: f64) -> Duration {
    Duration::from_secs_f64(field(req, name).and_then(Value::as_f64).unwrap_or(default).max(0.0))
}

fn number(req: &Map<String, Value>, name: &str) -> Result<usize, Fault> {
    field(req, name)
        .and_then(Value::as_u64)
        .map(|n| n as usize)
        .ok_or_else(|| Fault::Invalid(format!("{name} must be a non-negative integer")))
}

fn text<'a>(req: &'a Map<String, Value>, name: &str) -> Result<&'a str, Fault> {
    field(req, name).and_then(Value::as_str).ok_or_else(|| Fault::Invalid(format!("{name} must be text")))
}

fn ok(fields: Value) -> Result<Map<String, Value>, Fault> {
    match fields {
        Value::Object(m) => Ok(m),
        _ => Ok(Map::new()),
    }
}

impl Agent {
    fn sock(&self, req: &Map<String, Value>) -> Result<&AgentSocket, Fault> {
        let name = text(req, "socket")?;
        self.sockets.get(name).ok_or_else(|| Fault::Invalid(format!("no socket {name:?}")))
    }

    async fn handle(&mut self, op: &str, req: &Map<String, Value>) -> Result<Map<String, Value>, Fault> {
        match op {
            "hello" => ok(json!({
                "peer": "monocoque",
                "protocol": 1,
                "versions": {
                    "monocoque-rs": env!("ZMTP_MONOCOQUE_VERSION"),
                    "runtime": std::env::var("ZMTP_MONOCOQUE_RUNTIME_NOTE")
                        .map(|note| format!("{RUNTIME}, {note}"))
                        .unwrap_or_else(|_| RUNTIME.to_owned()),
                    "async-runtime-crate": env!("ZMTP_MONOCOQUE_RT_CRATE"),
                    "rustc": env!("ZMTP_MONOCOQUE_RUSTC"),
                },
                // monocoque-rs-zmtp 0.4.2 src/greeting.rs ZmtpGreeting::parse refuses a major
                // version below 3 as a protocol error: it never downgrades.
                "downgrades": [],
            })),
            "socket" => self.socket(req),
            "bind" => {
                let endpoint = self.sock(req)?.bind(text(req, "endpoint")?).await?;
                ok(json!({"endpoint": endpoint}))
            }
            "connect" => {
                self.sock(req)?.connect(text(req, "endpoint")?)?;
                ok(json!({}))
            }
            "send" => {
                let frames = frames_from(req.get("frames"))?;
                self.sock(req)?.send(frames, seconds(req, "timeout", 5.0)).await?;
                ok(json!({}))
            }
            "send_more" => Err(Fault::Unsupported(
                "Monocoque 0.4 sends whole messages only: every socket's send (src/zmq/dealer.rs and the rest) \
                 takes a Vec<Bytes> of all the message's frames, and there is no send of one frame with more to come"
                    .into(),
            )),
            "recv" => {
                let msg = self.sock(req)?.recv(seconds(req, "timeout", 2.0)).await?;
                ok(json!({"frames": frames_to(&msg)}))
            }
            "subscribe" | "unsubscribe" => {
                let topic = Bytes::from(unhex(field(req, "topic").and_then(Value::as_str).unwrap_or(""))?);
                self.sock(req)?.subscribe(topic, op == "subscribe")?;
                ok(json!({}))
            }
            "events" => {
                let until = field(req, "until").and_then(Value::as_str);
                let events = self.sock(req)?.events(until, seconds(req, "timeout", 2.0)).await?;
                ok(json!({"events": events}))
            }
            "zap" => self.zap(req),
            "zap_requests" => {
                let requests = self
                    .zap
                    .take()
                    .ok_or_else(|| Fault::Invalid("no ZAP handler is installed: op zap first".into()))?;
                let requests: Vec<Value> =
                    requests.iter().map(|r| Value::Array(r.iter().map(|f| Value::String(hex(f))).collect())).collect();
                ok(json!({"handler": "callback", "requests": requests}))
            }
            "close" => {
                let name = text(req, "socket")?;
                if let Some(s) = self.sockets.remove(name) {
                    s.close();
                }
                ok(json!({}))
            }
            "quit" => ok(json!({})),
            "bench_send" => {
                let b = Bench::Send { size: number(req, "size")?, count: number(req, "count")? };
                let s = self.sock(req)?;
                ok(s.bench(b, seconds(req, "timeout", 60.0)).await?)
            }
            "bench_recv" => {
                let t = seconds(req, "timeout", 60.0);
                let b = Bench::Recv { count: number(req, "count")?, timeout: t };
                ok(self.sock(req)?.bench(b, t).await?)
            }
            "bench_rtt" => {
                let t = seconds(req, "timeout", 10.0);
                let b = Bench::Rtt { size: number(req, "size")?, count: number(req, "count")?, timeout: t };
                ok(self.sock(req)?.bench(b, t).await?)
            }
            "bench_echo" => {
                let t = seconds(req, "timeout", 10.0);
                let b = Bench::Echo { count: number(req, "count")?, timeout: t };
                ok(self.sock(req)?.bench(b, t).await?)
            }
            _ => Err(Fault::Unsupported(format!("op {op:?} is not supported by this agent"))),
        }
    }

    fn socket(&mut self, req: &Map<String, Value>) -> Result<Map<String, Value>, Fault> {
        let type_name = text(req, "type")?;
        let kind = Kind::parse(type_name)
            .ok_or_else(|| Fault::Unsupported(format!("socket type {type_name} is not one of ZMTP's")))?;
        let mechanism = field(req, "mechanism").and_then(Value::as_str).unwrap_or("NULL");
        if !matches!(mechanism, "NULL" | "PLAIN" | "CURVE") {
            return Err(Fault::Unsupported(format!("mechanism {mechanism}: Monocoque has NULL, PLAIN and CURVE")));
        }
        let mut opts = SocketOptions::default();
        // `close` must not linger (SocketOptions::linger drives close() flushing).
        opts.linger = Some(Duration::ZERO);
        if let Some(Value::Object(options)) = field(req, "options") {
            for (key, value) in options {
                apply_option(&mut opts, key, value)?;
            }
        }
        // Monocoque keeps the option but a NULL server never reads it: the ZAP client
        // is called only from the PLAIN and CURVE server exchanges.
        if mechanism == "NULL" && !opts.zap_domain.is_empty() {
            return Err(Fault::Unsupported(
                "zap_domain under NULL: Monocoque asks ZAP only in its PLAIN and CURVE server handshakes \
                 (monocoque-rs-zmtp 0.4.2 src/handshake.rs: run_plain_exchange and run_curve_exchange call it, and \
                 perform_handshake_inner has \"no mechanism-level exchange for NULL\"), so a NULL server cannot \
                 filter clients through ZAP"
                    .into(),
            ));
        }
        // XSubSocket has no options_mut, so its poll slice is set here; the
        // other types get it per connection (socket::POLL).
        if kind == Kind::XSub {
            opts.recv_timeout = Some(socket::POLL);
        }
        self.count += 1;
        let name = format!("s{}", self.count);
        self.sockets.insert(name.clone(), AgentSocket::new(kind, opts, mechanism));
        ok(json!({"socket": name}))
    }

    fn zap(&mut self, req: &Map<String, Value>) -> Result<Map<String, Value>, Fault> {
        use monocoque_zmtp::security::zap::ZapStatus;
        let deny = match field(req, "deny_status").and_then(Value::as_i64).unwrap_or(400) {
            300 => ZapStatus::TemporaryError,
            400 => ZapStatus::Failure,
            500 => ZapStatus::InternalError,
            other => return Err(Fault::Unsupported(format!("ZAP status {other}: Monocoque's ZapStatus has 300, 400 and 500"))),
        };
        let mut users = HashMap::new();
        if let Some(Value::Object(list)) = field(req, "users") {
            for (user, password) in list {
                users.insert(user.clone(), password.as_str().unwrap_or("").to_owned());
            }
        }
        let keys = match field(req, "curve_keys") {
            None => None,
            Some(Value::Array(list)) => Some(
                list.iter()
                    .map(|k| z85_key(k.as_str().unwrap_or("")))
                    .collect::<Result<HashSet<_>, _>>()?,
            ),
            Some(_) => return Err(Fault::Invalid("curve_keys must be a list or null".into())),
        };
        self.zap.install(zap::Policy { users, keys, deny })?;
        ok(json!({}))
    }
}
