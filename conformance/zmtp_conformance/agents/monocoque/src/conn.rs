//! One ZMTP connection, as Monocoque models it: every socket object wraps a
//! single stream (monocoque-rs 0.4.2 src/zmq/dealer.rs: `bind` "accepts the
//! first connection", more peers get their own socket via `from_tcp`). A
//! task owns each such object and keeps it reading between requests.

use crate::util::Fault;
use monocoque::rt::{TcpStream, UnixStream};
use monocoque::zmq::{
    DealerSocket, PairSocket, PullSocket, PushSocket, RepSocket, ReqSocket, RouterSocket,
    SocketMonitor, SubSocket, XSubSocket,
};
use monocoque::{Bytes, SocketOptions};
use std::io;
use std::time::{Duration, Instant};

pub type Msg = Vec<Bytes>;

pub const XSUB_SENDS_ONLY_SUBSCRIPTIONS: &str = "monocoque-rs-zmtp 0.4.2 XSubSocket (src/xsub.rs) can send only \
     subscriptions (subscribe/unsubscribe/send_subscription_event), no other message";

/// What an XSUB message asks for, if it is a subscription (RFC 29: one frame,
/// 01 + topic to subscribe, 00 + topic to cancel): the topic and whether it is wanted.
pub fn xsub_subscription(msg: &Msg) -> Option<(Bytes, bool)> {
    match msg.as_slice() {
        [f] if matches!(f.first(), Some(0 | 1)) => Some((f.slice(1..), f[0] == 1)),
        _ => None,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Req,
    Rep,
    Dealer,
    Router,
    Pub,
    Sub,
    XPub,
    XSub,
    Push,
    Pull,
    Pair,
}

impl Kind {
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name.to_ascii_uppercase().as_str() {
            "REQ" => Self::Req,
            "REP" => Self::Rep,
            "DEALER" => Self::Dealer,
            "ROUTER" => Self::Router,
            "PUB" => Self::Pub,
            "SUB" => Self::Sub,
            "XPUB" => Self::XPub,
            "XSUB" => Self::XSub,
            "PUSH" => Self::Push,
            "PULL" => Self::Pull,
            "PAIR" => Self::Pair,
            _ => return None,
        })
    }
}

/// A library socket on one stream. SUB, PUSH, PULL and REQ use the facade
/// types (they carry `monitor()`); PAIR and XSUB exist only in the protocol crate.
pub enum Conn<S>
where
    S: compio_io::AsyncRead + compio_io::AsyncWrite + Unpin + 'static,
{
    Req(ReqSocket<S>),
    Rep(RepSocket<S>),
    Dealer(DealerSocket<S>),
    Router(RouterSocket<S>),
    Sub(SubSocket<S>),
    XSub(XSubSocket<S>),
    Push(PushSocket<S>),
    Pull(PullSocket<S>),
    Pair(PairSocket<S>),
}

/// Wraps an accepted or connected stream: the handshake runs in here.
macro_rules! build {
    ($kind:expr, $ctor:ident, $stream:expr, $opts:expr) => {
        Ok(match $kind {
            Kind::Req => Conn::Req(ReqSocket::$ctor($stream, $opts).await?),
            Kind::Rep => Conn::Rep(RepSocket::$ctor($stream, $opts).await?),
            Kind::Dealer => Conn::Dealer(DealerSocket::$ctor($stream, $opts).await?),
            Kind::Router => Conn::Router(RouterSocket::$ctor($stream, $opts).await?),
            Kind::Sub => Conn::Sub(SubSocket::$ctor($stream, $opts).await?),
            Kind::XSub => Conn::XSub(XSubSocket::with_options($stream, $opts).await?),
            Kind::Push => Conn::Push(PushSocket::$ctor($stream, $opts).await?),
            Kind::Pull => Conn::Pull(PullSocket::$ctor($stream, $opts).await?),
            Kind::Pair => Conn::Pair(PairSocket::$ctor($stream, $opts).await?),
            Kind::Pub | Kind::XPub => unreachable!("PUB and XPUB are not per-stream sockets"),
        })
    };
}

impl Conn<TcpStream> {
    /// `from_tcp_with_options` rather than the generic constructor: it is the
    /// one that sets TCP_NODELAY and keepalive (monocoque-rs-zmtp src/utils.rs).
    pub async fn over_tcp(kind: Kind, stream: TcpStream, opts: SocketOptions) -> io::Result<Self> {
        build!(kind, from_tcp_with_options, stream, opts)
    }

    /// Connects through the library's own `connect_with_options`, which keeps
    /// the endpoint so `try_reconnect` can come back to it. ROUTER and REP have
    /// no connect in Monocoque: they get a stream connected here.
    pub async fn connect_tcp(kind: Kind, addr: &str, opts: SocketOptions) -> io::Result<Self> {
        Ok(match kind {
            Kind::Req => Conn::Req(ReqSocket::connect_with_options(addr, opts).await?),
            Kind::Dealer => Conn::Dealer(DealerSocket::connect_with_options(addr, opts).await?),
            Kind::Sub => Conn::Sub(SubSocket::connect_with_options(addr, opts).await?),
            Kind::XSub => Conn::XSub(XSubSocket::connect_with_options(addr, opts).await?),
            Kind::Push => Conn::Push(PushSocket::connect_with_options(addr, opts).await?),
            Kind::Pull => Conn::Pull(PullSocket::connect_with_options(addr, opts).await?),
            Kind::Pair => Conn::Pair(PairSocket::connect_with_options(addr, opts).await?),
            Kind::Rep | Kind::Router => Self::over_tcp(kind, TcpStream::connect(addr).await?, opts).await?,
            Kind::Pub | Kind::XPub => unreachable!("PUB and XPUB cannot connect"),
        })
    }
}

impl Conn<UnixStream> {
    pub async fn over_ipc(kind: Kind, stream: UnixStream, opts: SocketOptions) -> io::Result<Self> {
        build!(kind, with_options, stream, opts)
    }
}

/// Coming back after the peer went away: only sockets made by the library's
/// tcp `connect_with_options` keep an endpoint (monocoque-rs-zmtp src/base.rs
/// `with_endpoint`); an ipc connection or an accepted one has none.
pub trait Reconnect {
    async fn reconnect(&mut self) -> Option<io::Result<()>>;
    /// A send that comes back to the endpoint (with the configured backoff)
    /// when the peer has gone: the library's `send_with_reconnect`, where the
    /// type has one.
    async fn send_reconnecting(&mut self, msg: Msg) -> Result<(), Fault>;
}

impl Reconnect for Conn<TcpStream> {
    async fn reconnect(&mut self) -> Option<io::Result<()>> {
        Some(match self {
            Conn::Req(s) => s.try_reconnect().await,
            Conn::Dealer(s) => s.try_reconnect().await,
            Conn::Sub(s) => s.try_reconnect().await,
            Conn::XSub(s) => s.try_reconnect().await,
            Conn::Push(s) => s.try_reconnect().await,
            Conn::Pull(s) => s.try_reconnect().await,
            Conn::Pair(s) => s.try_reconnect().await,
            Conn::Rep(_) | Conn::Router(_) => return None,
        })
    }

    async fn send_reconnecting(&mut self, msg: Msg) -> Result<(), Fault> {
        Ok(match self {
            Conn::Req(s) => s.send_with_reconnect(msg).await?,
            Conn::Dealer(s) => s.send_with_reconnect(msg).await?,
            Conn::Push(s) => s.send_with_reconnect(msg).await?,
            Conn::Pair(s) => s.send_with_reconnect(msg).await?,
            other => return other.send(msg).await,
        })
    }
}

impl Reconnect for Conn<UnixStream> {
    async fn reconnect(&mut self) -> Option<io::Result<()>> {
        None
    }

    async fn send_reconnecting(&mut self, msg: Msg) -> Result<(), Fault> {
        self.send(msg).await
    }
}

impl<S> Conn<S>
where
    S: compio_io::AsyncRead + compio_io::AsyncWrite + Unpin + 'static,
{
    pub fn monitor(&mut self) -> Option<SocketMonitor> {
        Some(match self {
            Conn::Req(s) => s.monitor(),
            Conn::Rep(s) => s.monitor(),
            Conn::Dealer(s) => s.monitor(),
            Conn::Router(s) => s.monitor(),
            Conn::Sub(s) => s.monitor(),
            Conn::Push(s) => s.monitor(),
            Conn::Pull(s) => s.monitor(),
            Conn::XSub(_) | Conn::Pair(_) => return None,
        })
    }

    /// Whether a recv now would be legal: PUSH never receives, a REQ only
    /// while it waits for a reply and a REP only while it owes none
    /// (monocoque-rs-zmtp src/req.rs and src/rep.rs `recv` refuse otherwise).
    /// `turn` is true after a REQ sent or a REP received.
    pub fn may_recv(&self, turn: bool) -> bool {
        match self {
            Conn::Push(_) => false,
            Conn::Req(_) => turn,
            Conn::Rep(_) => !turn,
            _ => true,
        }
    }

    pub async fn recv(&mut self) -> io::Result<Option<Msg>> {
        match self {
            Conn::Push(_) => Err(io::Error::new(io::ErrorKind::Unsupported, "PUSH cannot receive")),
            Conn::Sub(s) => s.recv().await,
            Conn::Pull(s) => s.recv().await,
            Conn::XSub(s) => s.recv().await,
            Conn::Req(s) => s.recv().await,
            Conn::Rep(s) => s.recv().await,
            Conn::Dealer(s) => s.recv().await,
            Conn::Router(s) => s.recv().await,
            Conn::Pair(s) => s.recv().await,
        }
    }

    pub async fn send(&mut self, msg: Msg) -> Result<(), Fault> {
        Ok(match self {
            Conn::Req(s) => s.send(msg).await?,
            Conn::Rep(s) => s.send(msg).await?,
            Conn::Dealer(s) => s.send(msg).await?,
            Conn::Router(s) => s.send(msg).await?,
            Conn::Push(s) => s.send(msg).await?,
            Conn::Pair(s) => s.send(msg).await?,
            // XSUB sends subscriptions as messages (RFC 29): 01 + topic, 00 + topic.
            Conn::XSub(s) => match xsub_subscription(&msg) {
                Some((topic, true)) => s.subscribe(topic).await?,
                Some((topic, false)) => s.unsubscribe(topic).await?,
                None => return Err(Fault::Unsupported(XSUB_SENDS_ONLY_SUBSCRIPTIONS.into())),
            },
            Conn::Sub(_) | Conn::Pull(_) => {
                return Err(Fault::Failed("this socket type cannot send".into()));
            }
        })
    }

    pub async fn subscribe(&mut self, topic: &[u8], on: bool) -> io::Result<()> {
        match (self, on) {
            (Conn::Sub(s), true) => s.subscribe(topic).await,
            (Conn::Sub(s), false) => s.unsubscribe(topic).await,
            (Conn::XSub(s), true) => s.subscribe(Bytes::copy_from_slice(topic)).await,
            (Conn::XSub(s), false) => s.unsubscribe(Bytes::copy_from_slice(topic)).await,
            _ => Ok(()),
        }
    }

    /// Sets how long one library `recv` may block: the link task reads in
    /// slices of this so it can serve requests in between.
    pub fn set_recv_timeout(&mut self, t: Option<Duration>) {
        let opts = match self {
            Conn::XSub(_) => return, // no options_mut; it was built with the poll slice
            Conn::Req(s) => s.options_mut(),
            Conn::Rep(s) => s.options_mut(),
            Conn::Dealer(s) => s.options_mut(),
            Conn::Router(s) => s.options_mut(),
            Conn::Sub(s) => s.options_mut(),
            Conn::Push(s) => s.options_mut(),
            Conn::Pull(s) => s.options_mut(),
            Conn::Pair(s) => s.options_mut(),
        };
        opts.recv_timeout = t;
    }
}

/// Whether an error from a library recv is only the poll slice running out.
pub fn is_poll_timeout(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::TimedOut && e.to_string().starts_with("Receive operation timed out")
}

/// The timed loops of the bench ops, run on the connection itself so that
/// no request plumbing sits in the measured path.
pub enum Bench {
    Send { size: usize, count: usize },
    Recv { count: usize, timeout: Duration },
    Rtt { size: usize, count: usize, timeout: Duration },
    Echo { count: usize, timeout: Duration },
}

impl<S> Conn<S>
where
    S: compio_io::AsyncRead + compio_io::AsyncWrite + Unpin + 'static,
{
    async fn recv_required(&mut self) -> Result<Msg, Fault> {
        match self.recv().await {
            Ok(Some(m)) => Ok(m),
            Ok(None) => Err(Fault::Failed("connection closed during the benchmark".into())),
            Err(e) if e.kind() == io::ErrorKind::TimedOut => Err(Fault::Timeout(e.to_string())),
            Err(e) => Err(e.into()),
        }
    }

    /// `early`: messages of this benchmark the link read before the request reached it.
    pub async fn bench(&mut self, b: Bench, early: Vec<Msg>, poll: Duration) -> Result<serde_json::Value, Fault> {
        use serde_json::json;
        let result = match b {
            Bench::Send { size, count } => {
                let body = Bytes::from(vec![0u8; size]);
                let t0 = Instant::now();
                for _ in 0..count {
                    self.send(vec![body.clone()]).await?;
                }
                Ok(json!({"elapsed": t0.elapsed().as_secs_f64()}))
            }
            Bench::Recv { count, timeout } => {
                self.set_recv_timeout(Some(timeout));
                let r = async {
                    // The clock starts once a message is in hand, as in the other agents.
                    let mut got = early.len().min(count);
                    if got == 0 {
                        self.recv_required().await?;
                        got = 1;
                    }
                    let t0 = Instant::now();
                    for _ in got..count {
                        self.recv_required().await?;
                    }
                    Ok(json!({"elapsed": t0.elapsed().as_secs_f64(), "timed": count.saturating_sub(got), "received": count}))
                }
                .await;
                self.set_recv_timeout(Some(poll));
                r
            }
            Bench::Rtt { size, count, timeout } => {
                self.set_recv_timeout(Some(timeout));
                let body = Bytes::from(vec![0u8; size]);
                let dealer = matches!(self, Conn::Dealer(_));
                let r = async {
                    let mut samples = Vec::with_capacity(count);
                    for _ in 0..count {
                        let msg = if dealer { vec![Bytes::new(), body.clone()] } else { vec![body.clone()] };
                        let t = Instant::now();
                        self.send(msg).await?;
                        self.recv_required().await?;
                        samples.push(t.elapsed().as_nanos() as u64);
                    }
                    Ok(latency_summary(samples))
                }
                .await;
                self.set_recv_timeout(Some(poll));
                r
            }
            Bench::Echo { count, timeout } => {
                self.set_recv_timeout(Some(timeout));
                let r = async {
                    let answered = early.len().min(count);
                    for m in early.into_iter().take(count) {
                        self.send(m).await?;
                    }
                    for _ in answered..count {
                        let m = self.recv_required().await?;
                        self.send(m).await?;
                    }
                    Ok(json!({}))
                }
                .await;
                self.set_recv_timeout(Some(poll));
                r
            }
        };
        result
    }
}

fn latency_summary(mut ns: Vec<u64>) -> serde_json::Value {
    ns.sort_unstable();
    if ns.is_empty() {
        return serde_json::json!({"count": 0});
    }
    let pct = |p: f64| ns[((p * ns.len() as f64) as usize).min(ns.len() - 1)] as f64 / 1000.0;
    let mean = ns.iter().sum::<u64>() as f64 / ns.len() as f64 / 1000.0;
    serde_json::json!({"count": ns.len(), "p50": pct(0.50), "p95": pct(0.95), "p99": pct(0.99), "mean": mean})
}
