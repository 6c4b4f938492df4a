//! Encodings the control protocol uses, and the mapping of its option names
//! onto Monocoque's `SocketOptions`.

use monocoque::{Bytes, SocketOptions};
use serde_json::Value;
use std::time::Duration;

/// Why a request could not be served, as the protocol's error kinds.
#[derive(Debug)]
pub enum Fault {
    Timeout(String),
    Unsupported(String),
    Invalid(String),
    Failed(String),
}

impl Fault {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Timeout(_) => "timeout",
            Self::Unsupported(_) => "unsupported",
            Self::Invalid(_) => "invalid",
            Self::Failed(_) => "failed",
        }
    }
    pub fn message(&self) -> &str {
        match self {
            Self::Timeout(m) | Self::Unsupported(m) | Self::Invalid(m) | Self::Failed(m) => m,
        }
    }
}

impl From<std::io::Error> for Fault {
    fn from(e: std::io::Error) -> Self {
        Self::Failed(e.to_string())
    }
}

pub fn hex(data: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(data.len() * 2);
    for b in data {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 15) as usize] as char);
    }
    out
}

pub fn unhex(text: &str) -> Result<Vec<u8>, Fault> {
    let bad = || Fault::Invalid(format!("not hex: {text:?}"));
    if text.len() % 2 != 0 {
        return Err(bad());
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2).ok_or_else(bad)?, 16).map_err(|_| bad()))
        .collect()
}

pub fn frames_from(value: Option<&Value>) -> Result<Vec<Bytes>, Fault> {
    let list = value
        .and_then(Value::as_array)
        .filter(|l| !l.is_empty())
        .ok_or_else(|| Fault::Invalid("frames must be a non-empty list of hex strings".into()))?;
    list.iter()
        .map(|f| {
            let text = f.as_str().ok_or_else(|| Fault::Invalid("a frame is not a string".into()))?;
            Ok(Bytes::from(unhex(text)?))
        })
        .collect()
}

pub fn frames_to(msg: &[Bytes]) -> Value {
    Value::Array(msg.iter().map(|f| Value::String(hex(f))).collect())
}

/// Z85 (RFC 32) text of a 32-octet CURVE key. Monocoque takes raw key bytes
/// only (SocketOptions::curve_publickey is `[u8; 32]`), so the agent decodes.
pub fn z85_key(text: &str) -> Result<[u8; 32], Fault> {
    const ALPHABET: &[u8] =
        b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";
    let bad = || Fault::Invalid(format!("not a 40-character Z85 key: {text:?}"));
    if text.len() != 40 {
        return Err(bad());
    }
    let mut out = [0u8; 32];
    for (chunk, dest) in text.as_bytes().chunks(5).zip(out.chunks_mut(4)) {
        let mut value: u64 = 0;
        for c in chunk {
            let digit = ALPHABET.iter().position(|a| a == c).ok_or_else(bad)?;
            value = value * 85 + digit as u64;
        }
        if value > u64::from(u32::MAX) {
            return Err(bad());
        }
        dest.copy_from_slice(&(value as u32).to_be_bytes());
    }
    Ok(out)
}

fn seconds(key: &str, v: &Value) -> Result<Duration, Fault> {
    v.as_f64()
        .filter(|s| *s >= 0.0)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| Fault::Invalid(format!("option {key} wants seconds, got {v}")))
}

fn count(key: &str, v: &Value) -> Result<usize, Fault> {
    v.as_u64()
        .map(|n| n as usize)
        .ok_or_else(|| Fault::Invalid(format!("option {key} wants a count, got {v}")))
}

fn text<'a>(key: &str, v: &'a Value) -> Result<&'a str, Fault> {
    v.as_str().ok_or_else(|| Fault::Invalid(format!("option {key} wants text, got {v}")))
}

fn flag(v: &Value) -> bool {
    v.as_bool().unwrap_or_else(|| v.as_i64().unwrap_or(0) != 0)
}

/// Applies one protocol option to Monocoque's options.
pub fn apply_option(o: &mut SocketOptions, key: &str, v: &Value) -> Result<(), Fault> {
    match key {
        "routing_id" => o.routing_id = Some(Bytes::from(unhex(text(key, v)?)?)),
        "max_msg_size" => o.max_msg_size = if v.is_null() { None } else { Some(count(key, v)?) },
        "sndhwm" => o.send_hwm = count(key, v)?,
        "rcvhwm" => o.recv_hwm = count(key, v)?,
        "handshake_timeout" => o.handshake_timeout = seconds(key, v)?,
        "heartbeat_ivl" => o.heartbeat_ivl = Some(seconds(key, v)?).filter(|d| !d.is_zero()),
        "heartbeat_ttl" => o.heartbeat_ttl = Some(seconds(key, v)?).filter(|d| !d.is_zero()),
        "heartbeat_timeout" => o.heartbeat_timeout = Some(seconds(key, v)?).filter(|d| !d.is_zero()),
        "reconnect_ivl" => o.reconnect_ivl = seconds(key, v)?,
        "reconnect_ivl_max" => o.reconnect_ivl_max = seconds(key, v)?,
        "linger" => o.linger = Some(seconds(key, v)?),
        "router_mandatory" => o.router_mandatory = flag(v),
        "req_relaxed" => o.req_relaxed = flag(v),
        "req_correlate" => o.req_correlate = flag(v),
        "xpub_verbose" => o.xpub_verbose = flag(v),
        "tcp_keepalive" => o.tcp_keepalive = i32::from(flag(v)),
        "plain_server" => o.plain_server = flag(v),
        "plain_username" => o.plain_username = Some(text(key, v)?.to_owned()),
        "plain_password" => {
            o.plain_password = Some(monocoque_zeroize(text(key, v)?.to_owned()));
        }
        "zap_domain" => o.zap_domain = text(key, v)?.to_owned(),
        "curve_server" => o.curve_server = flag(v),
        "curve_secretkey" => o.curve_secretkey = Some(z85_key(text(key, v)?)?.into()),
        "curve_publickey" => o.curve_publickey = Some(z85_key(text(key, v)?)?),
        "curve_serverkey" => o.curve_serverkey = Some(z85_key(text(key, v)?)?),
        // SocketOptions has these fields, but nothing in monocoque-rs-zmtp 0.4.2
        // reads them, so setting them would change nothing.
        "router_handover" | "immediate" | "connect_timeout" => {
            return Err(Fault::Unsupported(format!(
                "option {key}: SocketOptions has the field (monocoque-rs-core 0.4.2 src/options.rs) \
                 but no code in monocoque-rs-zmtp 0.4.2 or monocoque-rs 0.4.2 reads it"
            )));
        }
        _ => {
            return Err(Fault::Unsupported(format!(
                "option {key} has no counterpart in Monocoque's SocketOptions (monocoque-rs-core 0.4.2 src/options.rs)"
            )));
        }
    }
    Ok(())
}

/// SocketOptions keeps the password in a `Zeroizing` wrapper; `.into()` builds it
/// without naming the zeroize crate here.
fn monocoque_zeroize<T: Into<U>, U>(s: T) -> U {
    s.into()
}
