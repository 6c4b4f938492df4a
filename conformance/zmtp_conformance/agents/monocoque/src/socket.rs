//! An agent socket: what the harness calls a socket (bind and connect many
//! times, send, recv), built from Monocoque's one-stream socket objects.
//!
//! Monocoque leaves several peers on one endpoint to the application (its
//! `bind` returns `(listener, socket)` for the first peer; more go through
//! `from_tcp`). So the agent accepts, and hands each stream to the library's
//! constructor, which runs the handshake. Messages from all connections are
//! queued in arrival order; outgoing ones go round-robin (DEALER, PUSH, REQ),
//! to every connection for the library to filter (ROUTER: each RouterSocket
//! drops or refuses identities that are not its peer's), or back to the
//! connection the last request came from (REP). An XSUB's subscriptions go to
//! every connection and are replayed to each new one, as SUB's are.

use crate::conn::{
    Bench, Conn, Kind, Msg, Reconnect, XSUB_SENDS_ONLY_SUBSCRIPTIONS, is_poll_timeout, xsub_subscription,
};
use crate::util::Fault;
use monocoque::rt::{TcpListener, sleep, spawn_detached, timeout};
use monocoque::zmq::{SocketEvent, SocketMonitor, XPubSocket};
use monocoque_zmtp::publisher::PubSocket;
use monocoque::{Bytes, SocketOptions};
use serde_json::{Value, json};
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// How long a connection's task blocks in one library `recv` before it looks
/// for requests (sends, subscriptions). Monocoque has no way to wait on both
/// (its sockets take `&mut self` for each), so the library's own
/// `recv_timeout` slices the wait.
pub const POLL: Duration = Duration::from_millis(5);
/// How long an accept loop waits before checking that its socket is still open.
const ACCEPT_POLL: Duration = Duration::from_millis(50);

pub enum Cmd {
    Send(Msg, flume::Sender<Result<(), Fault>>),
    Subscribe(Bytes, bool),
    Bench(Bench, flume::Sender<Result<Value, Fault>>),
    Close,
}

struct Link {
    /// Also where the link stands in the round-robin (links are kept sorted by it): a
    /// connect takes its id when the application calls connect, as libzmq attaches a pipe
    /// then, so connecting to A and then B sends the first message to A whichever handshake
    /// finishes first.
    id: u64,
    cmd: flume::Sender<Cmd>,
}

pub struct Shared {
    pub kind: Kind,
    pub opts: SocketOptions,
    /// NULL, PLAIN or CURVE: named with a failed handshake, so a timeout says which.
    mechanism: String,
    /// Why the last handshake of this socket failed (connect or accept), for
    /// the timeout that follows: "no peer" alone would hide the cause.
    last_failure: RefCell<Option<String>>,
    inbox_tx: flume::Sender<(u64, Msg)>,
    inbox_rx: flume::Receiver<(u64, Msg)>,
    links: RefCell<Vec<Link>>,
    next_link: Cell<u64>,
    /// Subscriptions in force (a multiset), replayed on every new connection.
    subs: RefCell<Vec<Bytes>>,
    monitors: RefCell<Vec<SocketMonitor>>,
    events: RefCell<VecDeque<Value>>,
    closed: Cell<bool>,
    /// A bound PAIR takes one peer, as PairSocket::bind does (monocoque-rs-zmtp src/pair.rs).
    pair_taken: Cell<bool>,
    rr: Cell<usize>,
    last_from: Cell<Option<u64>>,
    /// PUB and XPUB: the one task that owns the library socket.
    owner: RefCell<Option<flume::Sender<Cmd>>>,
}

pub struct AgentSocket {
    pub shared: Rc<Shared>,
}

impl AgentSocket {
    pub fn new(kind: Kind, opts: SocketOptions, mechanism: &str) -> Self {
        let (inbox_tx, inbox_rx) = flume::unbounded();
        Self {
            shared: Rc::new(Shared {
                kind,
                opts,
                mechanism: mechanism.to_owned(),
                last_failure: RefCell::new(None),
                inbox_tx,
                inbox_rx,
                links: RefCell::new(Vec::new()),
                next_link: Cell::new(1),
                subs: RefCell::new(Vec::new()),
                monitors: RefCell::new(Vec::new()),
                events: RefCell::new(VecDeque::new()),
                closed: Cell::new(false),
                pair_taken: Cell::new(false),
                rr: Cell::new(0),
                last_from: Cell::new(None),
                owner: RefCell::new(None),
            }),
        }
    }

    pub async fn bind(&self, endpoint: &str) -> Result<String, Fault> {
        let sh = &self.shared;
        match (sh.kind, parse_endpoint(endpoint)?) {
            (Kind::Pub, Endpoint::Tcp(addr)) => {
                // The protocol crate's PubSocket with a listener the agent owns (the
                // facade keeps its listener private), so run_pub can see a connection
                // waiting before it calls accept_subscriber.
                let std_listener = std::net::TcpListener::bind(addr.as_str())?;
                std_listener.set_nonblocking(true)?;
                let local = std_listener.local_addr()?;
                // Adopting the listener keeps its fd, which lives as long as `listener`.
                let fd = std::os::fd::AsRawFd::as_raw_fd(&std_listener);
                let listener = TcpListener::from_std(std_listener)?;
                let workers = PubSocket::default_worker_count();
                let p = PubSocket::with_workers_opts(workers, sh.opts.clone())?;
                let (tx, rx) = flume::unbounded();
                *sh.owner.borrow_mut() = Some(tx);
                let ep = format!("tcp://{local}");
                sh.event("listening", &ep, None);
                spawn_detached(run_pub(sh.clone(), p, listener, fd, rx, ep.clone()));
                Ok(ep)
            }
            (Kind::XPub, Endpoint::Tcp(addr)) => {
                let x = XPubSocket::bind_with_options(&addr, sh.opts.clone()).await?;
                let local = x.local_addr()?;
                let fd = listening_fd(local).ok_or_else(|| {
                    Fault::Failed(format!("XPUB bound {local} but no listening socket of this process has that address"))
                })?;
                let (tx, rx) = flume::unbounded();
                *sh.owner.borrow_mut() = Some(tx);
                let ep = format!("tcp://{local}");
                sh.event("listening", &ep, None);
                spawn_detached(run_xpub(sh.clone(), x, fd, rx, ep.clone()));
                Ok(ep)
            }
            (Kind::Pub | Kind::XPub, Endpoint::Ipc(_)) => Err(Fault::Unsupported(format!(
                "{:?} over ipc: Monocoque's PubSocket::accept_subscriber takes a TcpListener and \
                 XPubSocket::bind_with_options binds TCP only (monocoque-rs-zmtp 0.4.2 src/publisher.rs, src/xpub.rs)",
                sh.kind
            ))),
            (_, Endpoint::Tcp(addr)) => {
                let listener = TcpListener::bind(addr.as_str()).await?;
                let local = listener.local_addr()?;
                let ep = format!("tcp://{local}");
                sh.event("listening", &ep, None);
                spawn_detached(accept_tcp(sh.clone(), listener, ep.clone()));
                Ok(ep)
            }
            (_, Endpoint::Ipc(path)) => {
                let listener = monocoque::zmq::ipc::bind(&path).await?;
                let ep = format!("ipc://{path}");
                sh.event("listening", &ep, None);
                spawn_detached(accept_ipc(sh.clone(), listener, ep.clone()));
                Ok(ep)
            }
        }
    }

    pub fn connect(&self, endpoint: &str) -> Result<(), Fault> {
        let sh = self.shared.clone();
        if matches!(sh.kind, Kind::Pub | Kind::XPub) {
            return Err(Fault::Unsupported(format!(
                "{:?} cannot connect in Monocoque: PubSocket and XPubSocket only bind and accept \
                 (monocoque-rs-zmtp 0.4.2 src/publisher.rs, src/xpub.rs; XPubSocket::connect_upstream is a proxy hop, not a peer)",
                sh.kind
            )));
        }
        let ep = parse_endpoint(endpoint)?;
        let name = endpoint.to_owned();
        let id = sh.take_link_id();
        // Connecting is asynchronous, as in libzmq: the request returns and the
        // connection comes up behind it; a refused connect is tried again.
        spawn_detached(async move {
            let mut attempt = 0u32;
            while !sh.closed.get() {
                let result = match &ep {
                    Endpoint::Tcp(addr) => match Conn::connect_tcp(sh.kind, addr, sh.opts.clone()).await {
                        Ok(c) => {
                            sh.handshake_done("connected", &name);
                            add_link(&sh, c, true, name.clone(), true, id);
                            return;
                        }
                        Err(e) => e,
                    },
                    Endpoint::Ipc(path) => match monocoque::zmq::ipc::connect(path).await {
                        Ok(stream) => match Conn::over_ipc(sh.kind, stream, sh.opts.clone()).await {
                            Ok(c) => {
                                sh.handshake_done("connected", &name);
                                add_link(&sh, c, false, name.clone(), true, id);
                                return;
                            }
                            Err(e) => e,
                        },
                        Err(e) => e,
                    },
                };
                eprintln!("monocoque agent: connect {ep:?}: {result}");
                if sh.note_failure(&name, &result) {
                    return; // the peer refused us; do not hammer it
                }
                sh.event("connect_retried", &name, Some(result.to_string()));
                sleep(sh.opts.next_reconnect_ivl(attempt)).await;
                attempt = attempt.saturating_add(1);
            }
        });
        Ok(())
    }

    pub async fn send(&self, msg: Msg, wait: Duration) -> Result<(), Fault> {
        let sh = &self.shared;
        let deadline = Instant::now() + wait;
        match sh.kind {
            Kind::Sub | Kind::Pull => {
                return Err(Fault::Failed(format!("a {:?} socket cannot send (Monocoque's {:?}Socket has no send)", sh.kind, sh.kind)));
            }
            Kind::Pub | Kind::XPub => {
                let owner = sh.owner.borrow().clone();
                let Some(owner) = owner else {
                    // Nobody to publish to yet: a PUB drops the message.
                    return Ok(());
                };
                return ask(&owner, |tx| Cmd::Send(msg, tx), deadline).await?;
            }
            Kind::Router => {
                let links = self.link_senders();
                if links.is_empty() {
                    return if sh.opts.router_mandatory {
                        Err(Fault::Failed("ROUTER mandatory: no peer connected".into()))
                    } else {
                        Ok(())
                    };
                }
                let mut last_err = None;
                let mut delivered = false;
                for l in links {
                    match ask(&l, |tx| Cmd::Send(msg.clone(), tx), deadline).await? {
                        Ok(()) => delivered = true,
                        Err(e) => last_err = Some(e),
                    }
                }
                return match (delivered, last_err) {
                    (false, Some(e)) => Err(e),
                    _ => Ok(()),
                };
            }
            Kind::XSub => {
                // An XSUB sends to every publisher (RFC 29), and what Monocoque's XSUB can send is a
                // subscription, kept and replayed to publishers that connect later as libzmq's
                // XSUB does: so it needs no publisher yet, and goes the way subscribe() does.
                return match xsub_subscription(&msg) {
                    Some((topic, on)) => self.subscribe(topic, on),
                    None => Err(Fault::Unsupported(XSUB_SENDS_ONLY_SUBSCRIPTIONS.into())),
                };
            }
            _ => {}
        }
        // One connection gets it: the one the request came from (REP), or the next in turn.
        loop {
            let target = {
                let links = sh.links.borrow();
                let from = sh.last_from.get().filter(|_| sh.kind == Kind::Rep);
                match from.and_then(|id| links.iter().find(|l| l.id == id)) {
                    Some(l) => Some(l.cmd.clone()),
                    None if links.is_empty() => None,
                    None => {
                        let i = sh.rr.get() % links.len();
                        sh.rr.set(i + 1);
                        Some(links[i].cmd.clone())
                    }
                }
            };
            if let Some(link) = target {
                return ask(&link, |tx| Cmd::Send(msg, tx), deadline).await?;
            }
            if Instant::now() >= deadline {
                return Err(Fault::Timeout(format!("no peer to send to within the timeout{}", sh.why_none())));
            }
            sleep(POLL).await;
        }
    }

    pub async fn recv(&self, wait: Duration) -> Result<Msg, Fault> {
        let sh = &self.shared;
        if matches!(sh.kind, Kind::Push | Kind::Pub) {
            return Err(Fault::Failed(format!("a {:?} socket cannot receive", sh.kind)));
        }
        match timeout(wait, sh.inbox_rx.recv_async()).await {
            Ok(Ok((from, msg))) => {
                sh.last_from.set(Some(from));
                Ok(msg)
            }
            Ok(Err(_)) => Err(Fault::Failed("socket closed".into())),
            Err(_) => Err(Fault::Timeout(format!("nothing arrived in time{}", sh.why_none()))),
        }
    }

    pub fn subscribe(&self, topic: Bytes, on: bool) -> Result<(), Fault> {
        let sh = &self.shared;
        if !matches!(sh.kind, Kind::Sub | Kind::XSub) {
            return Err(Fault::Invalid(format!("subscribe on a {:?} socket", sh.kind)));
        }
        {
            let mut subs = sh.subs.borrow_mut();
            if on {
                subs.push(topic.clone());
            } else if let Some(i) = subs.iter().position(|t| *t == topic) {
                subs.remove(i);
            }
        }
        for l in self.link_senders() {
            let _ = l.send(Cmd::Subscribe(topic.clone(), on));
        }
        Ok(())
    }

    pub async fn bench(&self, b: Bench, wait: Duration) -> Result<Value, Fault> {
        let deadline = Instant::now() + wait;
        // PUB and XPUB: the owner task holds the library socket, not a link.
        let owner = self.shared.owner.borrow().clone();
        let link = loop {
            if let Some(o) = owner.clone() {
                break o;
            }
            if let Some(l) = self.link_senders().into_iter().next() {
                break l;
            }
            if Instant::now() >= deadline {
                return Err(Fault::Timeout("no peer connected for the benchmark".into()));
            }
            sleep(POLL).await;
        };
        let (tx, rx) = flume::bounded(1);
        link.send(Cmd::Bench(b, tx)).map_err(|_| Fault::Failed("connection gone".into()))?;
        // The loop bounds itself by its own timeouts; wait for it however long it takes.
        rx.recv_async().await.map_err(|_| Fault::Failed("connection gone during the benchmark".into()))?
    }

    pub async fn events(&self, until: Option<&str>, wait: Duration) -> Result<Value, Fault> {
        let sh = &self.shared;
        let deadline = Instant::now() + wait;
        loop {
            drain_monitors(sh);
            let mut events = sh.events.borrow_mut();
            let upto = match until {
                None => Some(events.len()),
                Some(name) => events.iter().position(|e| e["event"] == name).map(|i| i + 1),
            };
            if let Some(n) = upto {
                return Ok(Value::Array(events.drain(..n).collect()));
            }
            if Instant::now() >= deadline {
                // A failed handshake with its socket's mechanism and the library's words,
                // so a report tells a CURVE refusal from any other.
                let seen: Vec<String> = events
                    .iter()
                    .map(|e| {
                        let name = e["event"].as_str().unwrap_or("?");
                        match e["reason"].as_str() {
                            Some(r) if name == "handshake_failed" => format!("{name} ({}: {r})", sh.mechanism),
                            _ => name.to_owned(),
                        }
                    })
                    .collect();
                return Err(Fault::Timeout(format!(
                    "no {} event within the timeout (saw {})",
                    until.unwrap_or("?"),
                    if seen.is_empty() { "nothing".into() } else { seen.join(", ") }
                )));
            }
            drop(events);
            sleep(Duration::from_millis(10)).await;
        }
    }

    pub fn close(&self) {
        let sh = &self.shared;
        sh.closed.set(true);
        for l in self.link_senders() {
            let _ = l.send(Cmd::Close);
        }
        if let Some(owner) = sh.owner.borrow_mut().take() {
            let _ = owner.send(Cmd::Close);
        }
    }

    fn link_senders(&self) -> Vec<flume::Sender<Cmd>> {
        self.shared.links.borrow().iter().map(|l| l.cmd.clone()).collect()
    }
}

// Monocoque's monitor has no handshake events (monocoque-rs-core 0.4.2
// src/monitor.rs SocketEvent: Connected, Disconnected, Bound, BindFailed,
// ConnectFailed, Listening, Accepted), and its sockets emit Connected only
// inside the connect constructors, before monitor() can be attached
// (monocoque-rs src/zmq/dealer.rs `connect_with_options`, `emit_event`). The
// handshake runs inside each socket's constructor, so the constructor's answer
// is the report, as the zmq.rs agent does for its connect.
impl Shared {
    fn take_link_id(&self) -> u64 {
        let id = self.next_link.get();
        self.next_link.set(id + 1);
        id
    }

    pub fn event(&self, name: &str, endpoint: &str, reason: Option<String>) {
        let mut ev = json!({"event": name, "endpoint": endpoint});
        if let Some(r) = reason {
            ev["reason"] = json!(r);
        }
        self.events.borrow_mut().push_back(ev);
    }

    /// `first`: the event that comes before it ("connected"), if any.
    fn handshake_done(&self, first: &str, endpoint: &str) {
        if !first.is_empty() {
            self.event(first, endpoint, None);
        }
        self.event("handshake_succeeded", endpoint, None);
    }

    /// Records a failed handshake (true), or nothing for a failed connect
    /// (false: that one is retried and says nothing of the peer).
    fn note_failure(&self, endpoint: &str, e: &std::io::Error) -> bool {
        let text = e.to_string();
        if !text.starts_with("Handshake failed") {
            return false;
        }
        let mut ev = json!({"event": "handshake_failed", "endpoint": endpoint, "reason": text});
        // The library's handshake errors are ZmtpError (src/codec.rs): AuthenticationFailed
        // is the only one that names a cause; a handshake timeout and a peer that
        // closes both come out as "Protocol violation" (src/handshake.rs
        // perform_handshake_with_options), so no `failure` is claimed for those.
        if text.ends_with("Authentication failed") {
            ev["failure"] = json!("auth");
        }
        self.events.borrow_mut().push_back(ev);
        *self.last_failure.borrow_mut() = Some(text);
        true
    }

    fn why_none(&self) -> String {
        match self.last_failure.borrow().as_deref() {
            Some(f) if f.starts_with("Handshake failed") => format!("; the last {} handshake failed: {f}", self.mechanism),
            Some(f) => format!("; {f}"),
            None => String::new(),
        }
    }
}

/// Sends a command that answers on a channel, and waits for the answer until `deadline`.
async fn ask<T>(
    to: &flume::Sender<Cmd>,
    make: impl FnOnce(flume::Sender<T>) -> Cmd,
    deadline: Instant,
) -> Result<T, Fault> {
    let (tx, rx) = flume::bounded(1);
    to.send(make(tx)).map_err(|_| Fault::Failed("connection gone".into()))?;
    let left = deadline.saturating_duration_since(Instant::now());
    match timeout(left, rx.recv_async()).await {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(_)) => Err(Fault::Failed("connection gone before the send completed".into())),
        Err(_) => Err(Fault::Timeout("the send did not complete in time".into())),
    }
}

#[derive(Debug)]
enum Endpoint {
    Tcp(String),
    Ipc(String),
}

fn parse_endpoint(endpoint: &str) -> Result<Endpoint, Fault> {
    if let Some(addr) = endpoint.strip_prefix("tcp://") {
        Ok(Endpoint::Tcp(addr.to_owned()))
    } else if let Some(path) = endpoint.strip_prefix("ipc://") {
        Ok(Endpoint::Ipc(path.to_owned()))
    } else {
        Err(Fault::Unsupported(format!("endpoint {endpoint}: Monocoque's transports are tcp and ipc (and inproc, in-process only)")))
    }
}

fn drain_monitors(sh: &Shared) {
    for m in sh.monitors.borrow().iter() {
        while let Ok(ev) = m.try_recv() {
            sh.events.borrow_mut().push_back(event_json(&ev));
        }
    }
}

fn event_json(ev: &SocketEvent) -> Value {
    match ev {
        SocketEvent::Connected(ep) => json!({"event": "connected", "endpoint": ep.to_string()}),
        SocketEvent::Disconnected(ep) => json!({"event": "disconnected", "endpoint": ep.to_string()}),
        SocketEvent::Bound(ep) | SocketEvent::Listening(ep) => json!({"event": "listening", "endpoint": ep.to_string()}),
        SocketEvent::Accepted(ep) => json!({"event": "accepted", "endpoint": ep.to_string()}),
        SocketEvent::BindFailed { endpoint, reason } => {
            json!({"event": "bind_failed", "endpoint": endpoint.to_string(), "reason": reason})
        }
        SocketEvent::ConnectFailed { endpoint, reason } => {
            json!({"event": "connect_retried", "endpoint": endpoint.to_string(), "reason": reason})
        }
    }
}

/// `reconnects`: made by the library's `connect_with_options`, so it keeps
/// its endpoint and `try_reconnect` can work.
fn add_link<S>(sh: &Rc<Shared>, mut conn: Conn<S>, reconnects: bool, endpoint: String, connected: bool, id: u64)
where
    S: compio_io::AsyncRead + compio_io::AsyncWrite + Unpin + 'static,
    Conn<S>: Reconnect,
{
    if sh.closed.get() {
        return;
    }
    if let Some(m) = conn.monitor() {
        sh.monitors.borrow_mut().push(m);
    }
    let (tx, rx) = flume::unbounded();
    let mut links = sh.links.borrow_mut();
    let at = links.iter().position(|l| l.id > id).unwrap_or(links.len());
    links.insert(at, Link { id, cmd: tx });
    drop(links);
    spawn_detached(run_link(sh.clone(), id, conn, rx, reconnects, endpoint, connected));
}

async fn accept_tcp(sh: Rc<Shared>, listener: TcpListener, bound: String) {
    while !sh.closed.get() {
        if sh.pair_taken.get() {
            // Keep the port (PairSocket::bind hands the listener back) but take nobody else.
            sleep(ACCEPT_POLL).await;
            continue;
        }
        match timeout(ACCEPT_POLL, listener.accept()).await {
            Ok(Ok((stream, _))) => handshake_accepted(&sh, &bound, Conn::over_tcp(sh.kind, stream, sh.opts.clone())),
            Ok(Err(e)) => {
                eprintln!("monocoque agent: accept: {e}");
                sleep(ACCEPT_POLL).await;
            }
            Err(_) => {}
        }
    }
}

async fn accept_ipc(sh: Rc<Shared>, listener: monocoque::zmq::ipc::IpcListener, bound: String) {
    while !sh.closed.get() {
        if sh.pair_taken.get() {
            sleep(ACCEPT_POLL).await;
            continue;
        }
        match timeout(ACCEPT_POLL, monocoque::zmq::ipc::accept(&listener)).await {
            Ok(Ok(stream)) => handshake_accepted(&sh, &bound, Conn::over_ipc(sh.kind, stream, sh.opts.clone())),
            Ok(Err(e)) => {
                eprintln!("monocoque agent: accept: {e}");
                sleep(ACCEPT_POLL).await;
            }
            Err(_) => {}
        }
    }
}

/// An accepted stream's handshake (tcp or ipc), in a task of its own so the accept loop goes on.
fn handshake_accepted<S, F>(sh: &Rc<Shared>, bound: &str, handshake: F)
where
    S: compio_io::AsyncRead + compio_io::AsyncWrite + Unpin + 'static,
    Conn<S>: Reconnect,
    F: std::future::Future<Output = std::io::Result<Conn<S>>> + 'static,
{
    let sh = sh.clone();
    let bound = bound.to_string();
    sh.event("accepted", &bound, None);
    spawn_detached(async move {
        match handshake.await {
            Ok(c) => {
                sh.handshake_done("", &bound);
                accepted(&sh, c, bound);
            }
            Err(e) => {
                eprintln!("monocoque agent: accepted connection failed: {e}");
                sh.note_failure(&bound, &e);
            }
        }
    });
}

fn accepted<S>(sh: &Rc<Shared>, conn: Conn<S>, endpoint: String)
where
    S: compio_io::AsyncRead + compio_io::AsyncWrite + Unpin + 'static,
    Conn<S>: Reconnect,
{
    if sh.kind == Kind::Pair {
        if sh.pair_taken.get() {
            return; // a second handshake finished first; PAIR keeps one peer
        }
        sh.pair_taken.set(true);
    }
    add_link(sh, conn, false, endpoint, false, sh.take_link_id());
}

/// The task that owns one connection: it serves requests and reads in between.
async fn run_link<S>(
    sh: Rc<Shared>,
    id: u64,
    mut conn: Conn<S>,
    cmds: flume::Receiver<Cmd>,
    reconnects: bool,
    endpoint: String,
    connected: bool,
)
where
    S: compio_io::AsyncRead + compio_io::AsyncWrite + Unpin + 'static,
    Conn<S>: Reconnect,
{
    conn.set_recv_timeout(Some(POLL));
    let topics = sh.subs.borrow().clone();
    for t in topics {
        if let Err(e) = conn.subscribe(&t, true).await {
            eprintln!("monocoque agent: subscribe on a new connection: {e}");
        }
    }
    // REQ: a request is out; REP: a request came in (the lockstep both keep).
    let mut turn = false;
    'serve: while !sh.closed.get() {
        // Requests first, without waiting if the connection has reading to do.
        loop {
            let cmd = if conn.may_recv(turn) {
                match cmds.try_recv() {
                    Ok(c) => c,
                    Err(flume::TryRecvError::Empty) => break,
                    Err(flume::TryRecvError::Disconnected) => break 'serve,
                }
            } else {
                match timeout(ACCEPT_POLL, cmds.recv_async()).await {
                    Ok(Ok(c)) => c,
                    Ok(Err(_)) => break 'serve,
                    Err(_) if sh.closed.get() => break 'serve,
                    Err(_) => continue,
                }
            };
            match cmd {
                Cmd::Send(msg, answer) => {
                    let r = if reconnects { conn.send_reconnecting(msg).await } else { conn.send(msg).await };
                    if r.is_ok() {
                        turn = matches!(conn, Conn::Req(_));
                    }
                    let _ = answer.send(r);
                }
                Cmd::Subscribe(topic, on) => {
                    if let Err(e) = conn.subscribe(&topic, on).await {
                        eprintln!("monocoque agent: subscribe: {e}");
                    }
                }
                Cmd::Bench(b, answer) => {
                    // The sender starts as the request is sent, so by the time it reaches this
                    // link the slice reads above may have put messages of the benchmark in the
                    // socket's inbox: they count (a library queue would hold them too), and a
                    // REP echoes them, or its peer would wait for those replies forever.
                    let early = match b {
                        Bench::Recv { .. } | Bench::Echo { .. } => take_inbox(&sh, id),
                        _ => Vec::new(),
                    };
                    let _ = answer.send(conn.bench(b, early, POLL).await);
                    turn = false; // every request of a round trip benchmark was answered
                }
                Cmd::Close => break 'serve,
            }
        }
        // Monocoque reads a connection only when its application asks (SocketBase::recv) and bounds
        // its own queues by recv_hwm (monocoque-rs-zmtp src/stream.rs, monocoque-rs src/zmq/pull_fanin.rs),
        // so a full queue leaves the peer's octets in the kernel: while the inbox holds recv_hwm
        // messages this link reads nothing, and an unbounded inbox does not hide that.
        if sh.opts.recv_hwm > 0 && sh.inbox_rx.len() >= sh.opts.recv_hwm {
            sleep(POLL).await;
            continue;
        }
        let lost = match conn.recv().await {
            Ok(Some(msg)) => {
                turn = matches!(conn, Conn::Rep(_));
                let _ = sh.inbox_tx.send((id, msg));
                None
            }
            Ok(None) => Some("peer closed the connection".to_owned()),
            Err(e) if is_poll_timeout(&e) => None,
            Err(e) => Some(e.to_string()),
        };
        if let Some(why) = lost {
            eprintln!("monocoque agent: connection {id} lost: {why}");
            sh.event("disconnected", &endpoint, Some(why.clone()));
            if connected && !reconnects {
                // Said with the "no peer" timeout that follows: the cause is not the peer.
                *sh.last_failure.borrow_mut() = Some(format!(
                    "{endpoint} was lost ({why}) and is not reconnected: Monocoque stores no endpoint \
                     for an ipc connection (monocoque-rs-zmtp 0.4.2 src/base.rs SocketBase::try_reconnect \
                     exists for TcpStream only)"
                ));
            }
            turn = false;
            // The library's reconnect, with its backoff, where it has one.
            loop {
                if sh.closed.get() || !reconnects {
                    break 'serve;
                }
                match conn.reconnect().await {
                    None => break 'serve,
                    Some(Ok(())) => {
                        sh.handshake_done("connected", &endpoint);
                        conn.set_recv_timeout(Some(POLL));
                        let topics = sh.subs.borrow().clone();
                        for t in topics {
                            let _ = conn.subscribe(&t, true).await;
                        }
                        break;
                    }
                    Some(Err(e)) => {
                        eprintln!("monocoque agent: reconnect: {e}");
                        if !sh.note_failure(&endpoint, &e) {
                            sh.event("connect_retried", &endpoint, Some(e.to_string()));
                        }
                        sleep(sh.opts.reconnect_ivl.max(POLL)).await;
                    }
                }
            }
        }
    }
    sh.links.borrow_mut().retain(|l| l.id != id);
    if sh.kind == Kind::Pair && sh.links.borrow().is_empty() {
        sh.pair_taken.set(false);
    }
}

/// The messages of link `id` waiting in the socket's inbox; the other links' stay, in order.
fn take_inbox(sh: &Shared, id: u64) -> Vec<Msg> {
    let mut mine = Vec::new();
    let mut others = Vec::new();
    while let Ok((from, msg)) = sh.inbox_rx.try_recv() {
        if from == id { mine.push(msg) } else { others.push((from, msg)) }
    }
    for m in others {
        let _ = sh.inbox_tx.send(m);
    }
    mine
}

/// PUB: Monocoque's PubSocket accepts subscribers itself and fans out on worker threads.
///
/// accept_subscriber runs accept and the whole handshake in one future
/// (monocoque-rs-zmtp 0.4.2 src/publisher.rs PubSocket::accept_subscriber), so
/// cutting it short to serve a send would drop a subscriber mid-handshake.
/// It is called only once poll(2) says a connection is waiting, and then runs
/// to its end (bounded by the handshake timeout).
async fn run_pub(
    sh: Rc<Shared>,
    mut p: PubSocket,
    listener: TcpListener,
    fd: std::os::fd::RawFd,
    cmds: flume::Receiver<Cmd>,
    bound: String,
) {
    while !sh.closed.get() {
        while let Ok(cmd) = cmds.try_recv() {
            match cmd {
                Cmd::Send(msg, answer) => {
                    let _ = answer.send(p.send(msg).await.map_err(Fault::from));
                }
                Cmd::Bench(Bench::Send { size, count }, answer) => {
                    let body = Bytes::from(vec![0u8; size]);
                    let t0 = Instant::now();
                    let mut r = Ok(());
                    for _ in 0..count {
                        if let Err(e) = p.send(vec![body.clone()]).await {
                            r = Err(Fault::from(e));
                            break;
                        }
                    }
                    let _ = answer.send(r.map(|()| json!({"elapsed": t0.elapsed().as_secs_f64()})));
                }
                Cmd::Bench(_, answer) => {
                    let _ = answer.send(Err(Fault::Unsupported("PUB only sends".into())));
                }
                Cmd::Subscribe(..) => {}
                Cmd::Close => return,
            }
        }
        if !connection_waiting(fd) {
            sleep(POLL).await;
            continue;
        }
        match p.accept_subscriber(&listener).await {
            Ok(id) => {
                eprintln!("monocoque agent: PUB subscriber {id} joined");
                sh.event("accepted", &bound, None);
                sh.handshake_done("", &bound);
            }
            Err(e) => {
                eprintln!("monocoque agent: PUB accept: {e}");
                sh.note_failure(&bound, &e);
            }
        }
    }
}

/// XPUB: XPubSocket owns its listener; accepting, reading subscriptions and
/// sending all take `&mut self`, so they take turns.
///
/// XPubSocket::accept (monocoque-rs-zmtp 0.4.2 src/xpub.rs) accepts and runs
/// the whole handshake in one future, as PUB's accept_subscriber does, so it is
/// awaited only once poll(2) says a connection waits on the listener, and then
/// to its end: cutting it short after a slice would drop the accepted stream
/// (a reset) whenever the subscriber's greeting takes longer than the slice.
async fn run_xpub(sh: Rc<Shared>, mut x: XPubSocket, fd: std::os::fd::RawFd, cmds: flume::Receiver<Cmd>, bound: String) {
    while !sh.closed.get() {
        while let Ok(cmd) = cmds.try_recv() {
            match cmd {
                Cmd::Send(msg, answer) => {
                    let _ = answer.send(x.send(msg).await.map_err(Fault::from));
                }
                Cmd::Bench(_, answer) => {
                    let _ = answer.send(Err(Fault::Unsupported("no XPUB benchmark in this agent".into())));
                }
                Cmd::Subscribe(..) => {}
                Cmd::Close => return,
            }
        }
        if connection_waiting(fd) {
            match x.accept().await {
                Err(e) => {
                    eprintln!("monocoque agent: XPUB accept: {e}");
                    sh.note_failure(&bound, &e);
                }
                Ok(()) => sh.handshake_done("accepted", &bound),
            }
        }
        match timeout(POLL, x.recv_subscription()).await {
            Ok(Ok(Some(ev))) => {
                use monocoque::zmq::SubscriptionEvent;
                let (flag, topic) = match ev {
                    SubscriptionEvent::Subscribe(t) => (1u8, t),
                    SubscriptionEvent::Unsubscribe(t) => (0u8, t),
                };
                let mut frame = vec![flag];
                frame.extend_from_slice(&topic);
                let _ = sh.inbox_tx.send((0, vec![Bytes::from(frame)]));
            }
            Ok(Err(e)) => eprintln!("monocoque agent: XPUB recv_subscription: {e}"),
            Ok(Ok(None)) | Err(_) => {}
        }
    }
}

/// The descriptor of this process's listening TCP socket bound to `addr`
/// (XPubSocket keeps its listener private). Looked up right after the bind,
/// when no connection accepted from it shares the address yet.
fn listening_fd(addr: std::net::SocketAddr) -> Option<std::os::fd::RawFd> {
    use std::os::fd::FromRawFd;
    for entry in std::fs::read_dir("/proc/self/fd").ok()?.flatten() {
        let Some(fd) = entry.file_name().to_str().and_then(|n| n.parse::<std::os::fd::RawFd>().ok()) else {
            continue;
        };
        let mut listening: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: SO_ACCEPTCONN writes one c_int; a descriptor that is no socket fails with ENOTSOCK.
        let r = unsafe {
            libc::getsockopt(fd, libc::SOL_SOCKET, libc::SO_ACCEPTCONN, (&raw mut listening).cast(), &mut len)
        };
        if r != 0 || listening == 0 {
            continue;
        }
        // Borrowed, never closed: ManuallyDrop keeps the listener's descriptor open.
        // SAFETY: fd is an open listening socket of this process.
        let l = std::mem::ManuallyDrop::new(unsafe { std::net::TcpListener::from_raw_fd(fd) });
        if l.local_addr().ok() == Some(addr) {
            return Some(fd);
        }
    }
    None
}

/// Whether a connection waits in the listener's backlog, without taking it.
fn connection_waiting(fd: std::os::fd::RawFd) -> bool {
    let mut p = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
    // SAFETY: one valid pollfd, a zero timeout; fd stays open while the listener lives.
    let n = unsafe { libc::poll(&mut p, 1, 0) };
    n > 0 && p.revents & libc::POLLIN != 0
}
