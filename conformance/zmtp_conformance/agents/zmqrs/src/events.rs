//! A socket's connection events, fed from zmq.rs's socket monitor and handed
//! out by the `events` op (docs/agent-protocol.md, "Events").

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::channel::mpsc;
use futures::StreamExt;
use serde_json::{json, Value};
use tokio::time::Instant;
use zeromq::util::PeerIdentity;
use zeromq::{SocketEvent, ZmqError};

#[derive(Default)]
pub struct EventLog {
    events: Mutex<VecDeque<Value>>,
    /// The endpoint the socket bound last: zmq.rs names only the remote address
    /// of a connection it accepted, and nothing at all when the accept failed.
    bound: Mutex<Option<String>>,
}

impl EventLog {
    pub fn add(&self, event: Value) {
        self.events.lock().unwrap().push_back(event);
    }

    pub fn set_bound(&self, endpoint: &str) {
        *self.bound.lock().unwrap() = Some(endpoint.to_string());
    }

    fn bound(&self) -> String {
        self.bound.lock().unwrap().clone().unwrap_or_default()
    }

    /// Everything queued, or up to and including the first `until` event, waiting
    /// for it until `timeout`; on timeout the queue is left as it was.
    pub async fn take(&self, until: Option<&str>, timeout: Duration) -> Result<Vec<Value>, String> {
        let deadline = Instant::now() + timeout;
        loop {
            {
                let mut q = self.events.lock().unwrap();
                match until {
                    None => return Ok(q.drain(..).collect()),
                    Some(name) => {
                        if let Some(i) = q.iter().position(|e| e["event"] == name) {
                            return Ok(q.drain(..=i).collect());
                        }
                    }
                }
                if Instant::now() >= deadline {
                    let seen: Vec<&str> = q.iter().filter_map(|e| e["event"].as_str()).collect();
                    let seen = if seen.is_empty() { "no events".to_string() } else { seen.join(", ") };
                    return Err(format!(
                        "no {} event within {:.3}s (saw {seen})",
                        until.unwrap_or_default(),
                        timeout.as_secs_f64()
                    ));
                }
            }
            // Events come from another task; a short poll keeps this simple and is
            // far below the timeouts scenarios use.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

fn event(name: &str, endpoint: &str) -> Value {
    json!({"event": name, "endpoint": endpoint})
}

/// The protocol's failure class for an error that ended a handshake, where the
/// error says (zmq.rs's errors are text; src/util.rs peer_handshake is where they come from).
pub fn failure_class(err: &ZmqError) -> Option<&'static str> {
    match err {
        ZmqError::Network(_) => Some("closed"),
        // The codec's error type is not exported; its Io variant is the one with an io::Error source.
        ZmqError::Codec(e) if std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>()) => {
            Some("closed")
        }
        ZmqError::Codec(_) | ZmqError::UnsupportedVersion(_) | ZmqError::PeerIdentity => Some("protocol"),
        ZmqError::ConnectTimeout(_) => Some("timeout"),
        ZmqError::Other(text) if text.starts_with("No reply") || text.starts_with("Failed Greeting") => {
            Some("closed")
        }
        ZmqError::Other(text)
            if text.contains("not compatible") || text.contains("socket type") || text.contains("ready state") =>
        {
            Some("protocol")
        }
        _ => None,
    }
}

pub fn handshake_failed(endpoint: &str, err: &ZmqError) -> Value {
    let mut ev = event("handshake_failed", endpoint);
    ev["reason"] = json!(err.to_string());
    if let Some(class) = failure_class(err) {
        ev["failure"] = json!(class);
    }
    ev
}

/// Drains the socket's monitor channel into its log until the socket is gone.
pub async fn watch(mut monitor: mpsc::Receiver<SocketEvent>, log: Arc<EventLog>) {
    // zmq.rs names a disconnected peer by identity only; remember where each came from.
    let mut peers: HashMap<PeerIdentity, String> = HashMap::new();
    while let Some(ev) = monitor.next().await {
        match ev {
            SocketEvent::Listening(ep) => log.add(event("listening", &ep.to_string())),
            // zmq.rs reports Accepted and Connected only once the greeting and READY
            // went through (src/lib.rs bind_inner and Socket::connect call
            // util::peer_handshake first), so each also means handshake_succeeded.
            SocketEvent::Accepted(ep, peer) => {
                let remote = ep.to_string();
                let mut accepted = event("accepted", &log.bound());
                accepted["peer"] = json!(remote);
                log.add(accepted);
                let mut done = event("handshake_succeeded", &log.bound());
                done["peer"] = json!(remote);
                log.add(done);
                peers.insert(peer, log.bound());
            }
            SocketEvent::Connected(ep, peer) => {
                let ep = ep.to_string();
                log.add(event("connected", &ep));
                log.add(event("handshake_succeeded", &ep));
                peers.insert(peer, ep);
            }
            SocketEvent::AcceptFailed(err) => log.add(handshake_failed(&log.bound(), &err)),
            SocketEvent::Disconnected(peer) => {
                let ep = peers.remove(&peer).unwrap_or_default();
                log.add(event("disconnected", &ep));
            }
            // ConnectDelayed, ConnectRetried, Closed and CloseFailed are declared in
            // src/lib.rs but zeromq 0.7.0 never sends them.
            _ => {}
        }
    }
}
