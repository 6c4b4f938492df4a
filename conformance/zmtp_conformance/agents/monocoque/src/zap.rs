//! ZAP (RFC 27) through Monocoque's own handler hook: a `ZapHandler` served
//! by `spawn_zap_server` on inproc://zeromq.zap.01 (monocoque-rs-zmtp 0.4.2
//! src/security/zap_handler.rs). The policy can change between requests, so
//! the handler reads it from a shared cell. The handler also keeps each
//! request it is asked, for the `zap_requests` op: Monocoque hands it the
//! request's fields (parsed from the frames its server sent), which are
//! listed in RFC 27's frame order for the harness to judge.

use monocoque_zmtp::security::zap::{ZAP_VERSION, ZapMechanism, ZapRequest, ZapResponse, ZapStatus};
use monocoque_zmtp::security::zap_handler::{ZapHandler, spawn_zap_server};
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::sync::Arc;

pub struct Policy {
    pub users: HashMap<String, String>,
    /// None: any CURVE key.
    pub keys: Option<HashSet<[u8; 32]>>,
    pub deny: ZapStatus,
}

/// Each request as its fields in frame order: version, request id, domain, address, identity, mechanism, credentials.
pub type Recorded = Rc<RefCell<Vec<Vec<Vec<u8>>>>>;

struct AgentZap {
    policy: Rc<RefCell<Policy>>,
    recorded: Recorded,
}

#[async_trait::async_trait(?Send)]
impl ZapHandler for AgentZap {
    async fn authenticate(&self, req: &ZapRequest) -> ZapResponse {
        let mut frames = vec![
            req.version.as_bytes().to_vec(),
            req.request_id.as_bytes().to_vec(),
            req.domain.as_bytes().to_vec(),
            req.address.as_bytes().to_vec(),
            req.identity.to_vec(),
            req.mechanism.as_str().as_bytes().to_vec(),
        ];
        frames.extend(req.credentials.iter().map(|c| c.to_vec()));
        self.recorded.borrow_mut().push(frames);
        let policy = self.policy.borrow();
        let (allowed, user) = match req.mechanism {
            ZapMechanism::Plain if req.credentials.len() == 2 => {
                let user = String::from_utf8_lossy(&req.credentials[0]).into_owned();
                let ok = policy.users.get(&user).is_some_and(|p| p.as_bytes() == &req.credentials[1][..]);
                (ok, user)
            }
            ZapMechanism::Curve if req.credentials.len() == 1 => {
                let key = <[u8; 32]>::try_from(&req.credentials[0][..]).ok();
                let ok = match (&policy.keys, key) {
                    (None, Some(_)) => true,
                    (Some(keys), Some(k)) => keys.contains(&k),
                    (_, None) => false,
                };
                (ok, crate::util::hex(&req.credentials[0]))
            }
            ZapMechanism::Null => (true, String::new()),
            _ => (false, String::new()),
        };
        ZapResponse {
            version: ZAP_VERSION.to_string(),
            request_id: req.request_id.clone(),
            status_code: if allowed { ZapStatus::Success } else { policy.deny },
            status_text: if allowed { "OK" } else { "not on the allow list" }.to_string(),
            user_id: if allowed { user } else { String::new() },
            metadata: HashMap::new(),
        }
    }
}

/// The handler is started once, on the first `zap` request; later ones only change the policy.
#[derive(Default)]
pub struct Zap {
    policy: Option<Rc<RefCell<Policy>>>,
    recorded: Recorded,
}

impl Zap {
    /// A new `zap` starts a new record of requests.
    pub fn install(&mut self, policy: Policy) -> std::io::Result<()> {
        self.recorded.borrow_mut().clear();
        if let Some(p) = &self.policy {
            *p.borrow_mut() = policy;
            return Ok(());
        }
        let shared = Rc::new(RefCell::new(policy));
        // Arc because spawn_zap_server takes one; the runtime is single-threaded.
        #[allow(clippy::arc_with_non_send_sync)]
        spawn_zap_server(Arc::new(AgentZap { policy: shared.clone(), recorded: self.recorded.clone() }))?;
        self.policy = Some(shared);
        Ok(())
    }

    /// The requests since the last call; None before any `zap`.
    pub fn take(&self) -> Option<Vec<Vec<Vec<u8>>>> {
        self.policy.as_ref()?;
        Some(std::mem::take(&mut *self.recorded.borrow_mut()))
    }
}
