//! IATP over one connection, both sides: the dialer sends Hello and
//! Confirm, the listener answers Response and Accepted. A completed
//! handshake makes the peer a session (its org becomes a root of authority
//! for the gate, and a good observation); a refusal is evidence only
//! against a peer whose signature verified.

use std::time::Duration;

use mesh_iatp::handshake::{Context, Initiator, Refusal, Refused, Responder, Session};
use mesh_iatp::{Did, RevokedCredentials};
use mesh_trust::EvidenceKind;
use serde_bytes::ByteBuf;

use crate::agent::Agent;
use crate::conversation::Phase;
use crate::io::{Effect, Event, InboundId, Request, RequestId, Response};
use crate::lineage::LineageVerifier;
use crate::wire::{IatpRequest, IatpResponse};

/// How long a refused peer may keep its connection to read the refusal.
pub const REFUSED_GRACE: Duration = Duration::from_secs(1);

/// How long a listener waits for the dialer's Hello before sending its own
/// (either side may start IATP).
pub const LISTENER_STARTS_AFTER: Duration = Duration::from_secs(2);

impl Agent {
    fn context<'a>(
        &'a self,
        trust: &'a dyn mesh_iatp::handshake::PeerTrust,
        lineage: &'a LineageVerifier<'a>,
    ) -> Context<'a> {
        Context {
            local: &self.local,
            bundle: &self.bundle,
            revoked: &self.revoked_credentials,
            trust,
            config: &self.handshake,
            lineage,
        }
    }

    fn lineage_verifier(&self) -> LineageVerifier<'_> {
        LineageVerifier {
            revocations: &self.k.revocations,
            skew_secs: self.handshake.max_skew_secs,
        }
    }

    /// A transport connection opened.
    pub(crate) fn connected(&mut self, peer: Did, dialer: bool, ip: Option<std::net::IpAddr>) {
        if self.is_banned(&peer) {
            self.emit(Effect::Disconnect {
                peer,
                after: Duration::ZERO,
            });
            return;
        }
        if self.peers.contains_key(&peer) {
            return; // another connection to a peer we already handle
        }
        let limits = &self.settings.limits;
        let (overall, per_ip) = (
            limits.max_strangers as usize,
            limits.max_strangers_per_ip as usize,
        );
        if !dialer
            && let Some(ip) = ip
            && self
                .handshaking
                .values()
                .filter(|(_, i)| *i == Some(ip))
                .count()
                >= per_ip
        {
            self.evict_oldest_stranger(Some(ip), per_ip);
        }
        if !dialer && self.handshaking.len() >= overall {
            self.evict_oldest_stranger(None, overall);
        }
        self.peers.insert(peer.clone(), Phase::Connected);
        self.handshaking.insert(peer.clone(), (self.now.mono, ip));
        if dialer {
            self.start_handshake(peer);
        }
    }

    /// The last connection to `peer` closed.
    pub(crate) fn disconnected(&mut self, peer: &Did) {
        self.peers.remove(peer);
        self.handshaking.remove(peer);
        self.requests.forget(peer);
        self.gossip_rate.forget(peer);
        self.fail_requests_to(peer);
        if self.sessions.remove(peer).is_some() {
            self.event(Event::SessionClosed { peer: peer.clone() });
        }
    }

    fn start_handshake(&mut self, peer: Did) {
        let remote = mesh_iatp::PeerId::from_did(&peer);
        let now = self.now.wall;
        let started = {
            let view = self.k.trust.view(now);
            let lineage = LineageVerifier {
                revocations: &self.k.revocations,
                skew_secs: self.handshake.max_skew_secs,
            };
            let ctx = Context {
                local: &self.local,
                bundle: &self.bundle,
                revoked: &self.revoked_credentials,
                trust: &view,
                config: &self.handshake,
                lineage: &lineage,
            };
            Initiator::start(ctx, remote, now, &mut self.rng)
        };
        match started {
            Ok((waiting, hello)) => {
                let id = self.next_request_id();
                self.peers
                    .insert(peer.clone(), Phase::Initiating(id, Box::new(waiting)));
                self.emit(Effect::Send {
                    to: peer,
                    id,
                    request: Request::Iatp(IatpRequest::Hello(ByteBuf::from(hello))),
                });
            }
            Err(refused) => self.refuse_peer(peer, refused, None),
        }
    }

    /// We refuse `peer`: tell it (if it asked), record what it provably
    /// did, and close.
    fn refuse_peer(&mut self, peer: Did, refused: Refused, answer: Option<InboundId>) {
        if let Some(culprit) = &refused.accountable {
            self.observe(culprit.clone(), EvidenceKind::HandshakeFailure);
        }
        if let Some(id) = answer {
            self.emit(Effect::Respond {
                to: peer.clone(),
                id,
                response: Response::Iatp(IatpResponse::Refused {
                    code: refused.refusal.code(),
                    reason: refused.refusal.name().into(),
                }),
            });
        }
        self.peers.insert(peer.clone(), Phase::Closed);
        self.handshaking.remove(&peer);
        if self.sessions.remove(&peer).is_some() {
            self.event(Event::SessionClosed { peer: peer.clone() });
        }
        self.event(Event::RefusedPeer {
            peer: peer.clone(),
            refusal: refused.refusal,
        });
        self.emit(Effect::Disconnect {
            peer,
            after: if answer.is_some() {
                REFUSED_GRACE
            } else {
                Duration::ZERO
            },
        });
    }

    /// Hold `revoked` as the credentials refused, and close every session
    /// whose peer's credential it names, refusing it as a handshake would
    /// (`credential_revoked`).
    pub(crate) fn set_revoked_credentials(&mut self, revoked: RevokedCredentials) {
        self.revoked_credentials = revoked;
        let cut: Vec<Did> = self
            .sessions
            .iter()
            .filter(|(_, s)| {
                self.revoked_credentials
                    .is_revoked(&s.remote_card.credential.digest())
            })
            .map(|(peer, _)| peer.clone())
            .collect();
        for peer in cut {
            let refused = Refused {
                refusal: Refusal::CredentialRevoked,
                accountable: None,
            };
            self.refuse_peer(peer, refused, None);
        }
    }

    /// Make room for a new connection when strangers (from `ip`, or from
    /// anywhere) hold every one of their `slots`: the one waiting longest
    /// goes. A member's handshake takes a round trip or two, so flooders
    /// would have to open connections faster than that many per round trip
    /// to keep it out, instead of holding the slots with a few idle ones;
    /// and flooders from one IP only displace each other.
    fn evict_oldest_stranger(&mut self, ip: Option<std::net::IpAddr>, slots: usize) {
        let Some(oldest) = self
            .handshaking
            .iter()
            .filter(|(_, (_, from))| ip.is_none() || *from == ip)
            .min_by(|a, b| (a.1).0.cmp(&(b.1).0).then_with(|| a.0.cmp(b.0)))
            .map(|(peer, _)| peer.clone())
        else {
            return;
        };
        let whence = ip.map(|ip| format!(" from {ip}")).unwrap_or_default();
        self.close_stranger(
            oldest,
            format!("{slots} peers were connected{whence} without a session; the oldest goes"),
        );
    }

    fn close_stranger(&mut self, peer: Did, reason: String) {
        self.handshaking.remove(&peer);
        self.peers.insert(peer.clone(), Phase::Closed);
        self.event(Event::Rejected {
            peer: peer.clone(),
            what: "connection",
            reason,
        });
        self.emit(Effect::Disconnect {
            peer,
            after: Duration::ZERO,
        });
    }

    /// Start the handshakes a dialer has not started (we listened, and no
    /// Hello came within [`LISTENER_STARTS_AFTER`]); close the connections
    /// whose handshake missed its deadline (see
    /// [`crate::Limits::handshake_deadline`]).
    pub(crate) fn tend_handshakes(&mut self) {
        let deadline = self.settings.limits.handshake_deadline;
        let mono = self.now.mono;
        let mut silent: Vec<Did> = self
            .handshaking
            .iter()
            .filter(|(peer, (since, _))| {
                mono.since(*since) >= LISTENER_STARTS_AFTER
                    && matches!(self.peers.get(*peer), Some(Phase::Connected))
            })
            .map(|(peer, _)| peer.clone())
            .collect();
        silent.sort();
        for peer in silent {
            self.start_handshake(peer);
        }
        let mut late: Vec<Did> = self
            .handshaking
            .iter()
            .filter(|(_, (since, _))| mono.since(*since) >= deadline)
            .map(|(peer, _)| peer.clone())
            .collect();
        late.sort();
        for peer in late {
            self.close_stranger(peer, format!("no handshake completed within {deadline:?}"));
        }
    }

    /// A completed handshake: the peer's org, a root of authority for the
    /// gate, a good observation, and the session.
    fn learn_session(&mut self, session: &Session) {
        let remote = session.remote.clone();
        self.handshaking.remove(&remote);
        // A spawned peer gets its certificate's ceiling and capabilities,
        // and its lineage goes to the gate.
        let policy = match &session.spawned {
            Some(spawned) => {
                self.k
                    .lineages
                    .insert(remote.clone(), spawned.lineage.clone());
                let parent = self
                    .k
                    .orgs
                    .contains_key(&spawned.parent)
                    .then(|| self.k.trust.score(&spawned.parent, self.now.wall));
                crate::lineage::narrowed(&session.policy, spawned, parent)
            }
            None => {
                self.k.lineages.remove(&remote);
                session.policy.clone()
            }
        };
        self.k.trust.register_from_policy(remote.clone(), &policy);
        self.k.orgs.insert(remote.clone(), policy);
        self.k.gate.add_root(remote.clone());
        self.sessions.insert(remote.clone(), session.clone());
        let spawned = session.spawned.as_ref();
        self.emit(Effect::Persist(crate::Fact::Met {
            agent: remote.clone(),
            org: session.credential.org.clone(),
            lineage: spawned
                .map(|s| {
                    s.lineage
                        .iter()
                        .map(|h| ByteBuf::from(h.to_vec()))
                        .collect()
                })
                .unwrap_or_default(),
            ceiling: spawned.map(|s| s.trust_ceiling),
        }));
        self.observe(remote, EvidenceKind::HandshakeCompleted);
    }

    /// A peer's IATP request.
    pub(crate) fn on_iatp_request(&mut self, peer: Did, id: InboundId, request: IatpRequest) {
        let now = self.now.wall;
        let remote = mesh_iatp::PeerId::from_did(&peer);
        let phase = self.peers.remove(&peer);
        let outcome: Result<(IatpResponse, Phase, Option<Session>), Refused> =
            match (request, phase) {
                // Both sides dialled at once (two connections, each side's
                // first one its own): the agent with the higher DID answers
                // the other's Hello and drops its own; the lower one keeps its
                // own and turns the other's Hello away without closing.
                (
                    IatpRequest::Hello(_),
                    Some(held @ (Phase::Initiating(..) | Phase::Confirming(_))),
                ) if self.did < peer => {
                    self.peers.insert(peer.clone(), held);
                    self.emit(Effect::Respond {
                        to: peer,
                        id,
                        response: Response::Iatp(IatpResponse::SimultaneousOpen),
                    });
                    return;
                }
                // Over its Hello rate: refused before any signature is
                // checked (the session-less arm below would verify two).
                (
                    IatpRequest::Hello(_),
                    Some(phase @ (Phase::Connected | Phase::Initiating(..))),
                ) if !self.hello_rate.allow(&peer, self.now.mono) => {
                    self.peers.insert(peer.clone(), phase);
                    self.strike(&peer, "iatp request", Refusal::RateLimited.name());
                    Err(Refused {
                        refusal: Refusal::RateLimited,
                        accountable: None,
                    })
                }
                (IatpRequest::Hello(bytes), Some(Phase::Connected | Phase::Initiating(..))) => {
                    let view = self.k.trust.view(now);
                    let lineage = LineageVerifier {
                        revocations: &self.k.revocations,
                        skew_secs: self.handshake.max_skew_secs,
                    };
                    let ctx = Context {
                        local: &self.local,
                        bundle: &self.bundle,
                        revoked: &self.revoked_credentials,
                        trust: &view,
                        config: &self.handshake,
                        lineage: &lineage,
                    };
                    Responder::on_hello(ctx, remote, &bytes, now, &mut self.nonces, &mut self.rng)
                        .map(|(pending, response)| {
                            (
                                IatpResponse::Response(ByteBuf::from(response)),
                                Phase::Responding(Box::new(pending)),
                                None,
                            )
                        })
                }
                (IatpRequest::Confirm(bytes), Some(Phase::Responding(pending))) => {
                    let view = self.k.trust.view(now);
                    let lineage = self.lineage_verifier();
                    let ctx = self.context(&view, &lineage);
                    pending
                        .on_confirm(ctx, &bytes, now)
                        .map(|session| (IatpResponse::Accepted, Phase::Established, Some(session)))
                }
                (request, phase) => {
                    // Out of order, a second Hello on a live session, or a peer
                    // the driver never announced: refused, nothing processed.
                    let found = match request {
                        IatpRequest::Hello(_) => "iatp/hello",
                        IatpRequest::Confirm(_) => "iatp/confirm",
                    };
                    let expected = match &phase {
                        Some(Phase::Responding(_)) => "iatp/confirm",
                        _ => "iatp/hello",
                    };
                    if let Some(phase) = phase {
                        self.peers.insert(peer.clone(), phase);
                    }
                    Err(Refused {
                        refusal: Refusal::UnexpectedMessage {
                            expected,
                            found: found.into(),
                        },
                        accountable: None,
                    })
                }
            };
        match outcome {
            Ok((response, phase, session)) => {
                let peer_for_sync = peer.clone();
                self.peers.insert(peer.clone(), phase);
                self.emit(Effect::Respond {
                    to: peer,
                    id,
                    response: Response::Iatp(response),
                });
                if let Some(session) = session {
                    self.learn_session(&session);
                    self.event(Event::SessionEstablished(Box::new(session)));
                    self.reports.session_established();
                    self.resend_answers(&peer_for_sync);
                    self.start_sync(peer_for_sync, 0);
                }
            }
            Err(refused) => {
                if self.peers.contains_key(&peer) && self.sessions.contains_key(&peer) {
                    // A stray message on a live session is answered, not
                    // fatal to the session.
                    self.emit(Effect::Respond {
                        to: peer.clone(),
                        id,
                        response: Response::Iatp(IatpResponse::Refused {
                            code: refused.refusal.code(),
                            reason: refused.refusal.name().into(),
                        }),
                    });
                    self.strike(&peer, "iatp request", refused.refusal.name());
                } else {
                    self.refuse_peer(peer, refused, Some(id));
                }
            }
        }
    }

    /// The answer to our Hello or Confirm.
    pub(crate) fn on_iatp_response(&mut self, peer: Did, id: RequestId, response: IatpResponse) {
        let phase = self.peers.remove(&peer);
        let current = matches!(
            &phase,
            Some(Phase::Initiating(sent, _) | Phase::Confirming(sent)) if *sent == id
        );
        if !current {
            // The answer to a Hello we dropped for the peer's (a
            // simultaneous open), or to nothing we still wait for.
            if let Some(phase) = phase {
                self.peers.insert(peer, phase);
            }
            return;
        }
        match (response, phase) {
            (IatpResponse::Response(bytes), Some(Phase::Initiating(sent, waiting)))
                if sent == id =>
            {
                let now = self.now.wall;
                let outcome = {
                    let view = self.k.trust.view(now);
                    let lineage = self.lineage_verifier();
                    waiting.on_response(self.context(&view, &lineage), &bytes, now)
                };
                match outcome {
                    Ok((session, confirm)) => {
                        self.learn_session(&session);
                        let id = self.next_request_id();
                        self.peers.insert(peer.clone(), Phase::Confirming(id));
                        self.emit(Effect::Send {
                            to: peer,
                            id,
                            request: Request::Iatp(IatpRequest::Confirm(ByteBuf::from(confirm))),
                        });
                    }
                    Err(refused) => self.refuse_peer(peer, refused, None),
                }
            }
            (IatpResponse::Accepted, Some(Phase::Confirming(sent))) if sent == id => {
                self.peers.insert(peer.clone(), Phase::Established);
                if let Some(session) = self.sessions.get(&peer).cloned() {
                    self.event(Event::SessionEstablished(Box::new(session)));
                    self.reports.session_established();
                    self.resend_answers(&peer);
                    self.start_sync(peer, 0);
                }
            }
            // The peer keeps its own Hello: drop ours and wait for its Hello
            // (if it came already, we answered it as responder).
            (IatpResponse::SimultaneousOpen, Some(Phase::Initiating(sent, _)))
                if sent == id && peer < self.did =>
            {
                self.peers.insert(peer, Phase::Connected);
            }
            (IatpResponse::Refused { code, reason }, _) => {
                self.peers.insert(peer.clone(), Phase::Closed);
                if self.sessions.remove(&peer).is_some() {
                    self.event(Event::SessionClosed { peer: peer.clone() });
                }
                self.event(Event::RefusedByPeer {
                    peer: peer.clone(),
                    code,
                    reason,
                });
                self.emit(Effect::Disconnect {
                    peer,
                    after: Duration::ZERO,
                });
            }
            (_, phase) => {
                // An answer we did not ask for: the peer is not speaking
                // IATP as we do.
                if let Some(phase) = phase {
                    self.peers.insert(peer.clone(), phase);
                }
                self.strike(&peer, "iatp response", "unexpected answer");
            }
        }
    }
}
