//! The IATP handshake as a sans-IO state machine.
//!
//! ```text
//! initiator                                   responder
//! Initiator::start ── Hello ──────────────▶  Responder::on_hello
//!                  ◀───────────── Response ── (AwaitingConfirm)
//! AwaitingResponse::on_response
//!   → Session      ── Confirm ────────────▶  AwaitingConfirm::on_confirm → Session
//! ```
//!
//! Nothing here touches a socket or a clock: the caller passes received
//! bytes, the transport-authenticated PeerIds, `now` and an RNG, and gets
//! back bytes to send and the next state, or a [`Refused`]. Each state is its
//! own type and is consumed by the step that leaves it (rustls style), so a
//! message can be processed at most once per handshake.
//!
//! Security properties (each has a test in `tests/handshake_attacks.rs`):
//! - *replay*: Hello nonces are remembered for twice the skew window and
//!   message times must be within the skew; Response and Confirm must echo
//!   this handshake's fresh nonces;
//! - *reflection*: a message claiming to come from our own PeerId is refused,
//!   and each message type is only accepted in its one state;
//! - *relay*: every message names both PeerIds, which must match the
//!   transport-authenticated connection, and the card's DID must be the key
//!   of the remote PeerId;
//! - *credentials*: the peer's org credential must be signed by an org root
//!   in our trust bundle, name this agent, be inside its window and not be
//!   revoked; the card may only offer what the org's policy allows; the
//!   peer's trust must reach our floor.

mod lineage;
mod messages;
mod refusal;
mod replay;

pub use lineage::{
    LineageCheck, LineageRefusal, MAX_CERTIFICATE_BYTES, MAX_LINEAGE, NoLineage, Spawned,
};
pub use messages::{Confirm, Hello, MAX_HANDSHAKE_MESSAGE, Response};
pub use refusal::{Refusal, Refused};
pub use replay::{HELLOS_PER_INITIATOR, NonceCache};

use rand_core::CryptoRng;
use sha2::{Digest, Sha256};

use crate::bundle::{OrgPolicy, TrustBundle};
use crate::capability::allowed_by;
use crate::credential::{AgentCard, OrgCredential, RevokedCredentials};
use crate::envelope::{self, PROTOCOL_VERSION, Unverified};
use crate::{Did, Identity, PeerId, Score, Timestamp};

/// Tunables of the handshake. Defaults are documented in docs/PROTOCOL.md.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeConfig {
    /// Largest accepted difference between a message's time and ours.
    pub max_skew_secs: u64,
    /// Peers scoring below this are refused before any session exists.
    pub trust_floor: Score,
    /// How long the responder waits for the Confirm.
    pub confirm_timeout_secs: u64,
}

impl Default for HandshakeConfig {
    fn default() -> Self {
        HandshakeConfig {
            max_skew_secs: 60,
            trust_floor: Score::saturating(100),
            confirm_timeout_secs: 30,
        }
    }
}

/// How the handshake learns a peer's current trust score (for the floor).
/// `mesh-trust` implements this over its live view; [`InitialTrust`] is the
/// answer for a node that has no history yet.
pub trait PeerTrust {
    /// The score of `peer`, an agent of the org described by `policy`.
    fn score(&self, peer: &Did, policy: &OrgPolicy) -> Score;
}

/// Every peer is at its org's initial trust (capped by the ceiling).
#[derive(Debug, Clone, Copy, Default)]
pub struct InitialTrust;

impl PeerTrust for InitialTrust {
    fn score(&self, _peer: &Did, policy: &OrgPolicy) -> Score {
        policy.initial_trust.min(policy.trust_ceiling)
    }
}

/// This node's side: its identity and the card it presents.
#[derive(Debug, Clone)]
pub struct LocalAgent {
    identity: Identity,
    peer_id: PeerId,
    card: AgentCard,
}

impl LocalAgent {
    /// Pair an identity with its card. The card must describe that identity.
    pub fn new(identity: Identity, card: AgentCard) -> Result<Self, Refusal> {
        if card.did != *identity.did() {
            return Err(Refusal::InvalidCard("card DID is not this identity's DID"));
        }
        card.check_limits().map_err(Refusal::InvalidCard)?;
        Ok(LocalAgent {
            peer_id: identity.peer_id(),
            identity,
            card,
        })
    }

    /// The identity.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The PeerId (same key as the DID).
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// The card presented to peers.
    pub fn card(&self) -> &AgentCard {
        &self.card
    }
}

/// Everything a handshake step consults. Borrowed per call, so the node can
/// update its bundle, revocations and trust between handshakes.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    /// Who we are.
    pub local: &'a LocalAgent,
    /// Which orgs we accept.
    pub bundle: &'a TrustBundle,
    /// Credentials we no longer accept.
    pub revoked: &'a RevokedCredentials,
    /// Current trust scores.
    pub trust: &'a dyn PeerTrust,
    /// Tunables.
    pub config: &'a HandshakeConfig,
    /// Verifies spawned agents' lineages ([`NoLineage`] accepts none).
    pub lineage: &'a dyn LineageCheck,
}

/// Which side of the handshake a session was on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Sent the Hello.
    Initiator,
    /// Answered it.
    Responder,
}

/// An authenticated peer: the result of a completed handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Our role.
    pub role: Role,
    /// The peer's DID (proven by signature over this transcript).
    pub remote: Did,
    /// The peer's PeerId (same key).
    pub remote_peer: PeerId,
    /// The card the peer presented.
    pub remote_card: AgentCard,
    /// The peer's verified org credential.
    pub credential: OrgCredential,
    /// Our bundle's policy for the peer's org.
    pub policy: OrgPolicy,
    /// The peer's trust score when admitted.
    pub admitted_score: Score,
    /// For a spawned peer, what its verified lineage admits.
    pub spawned: Option<Spawned>,
    /// Protocol version agreed.
    pub version: u64,
    /// SHA-256(Hello ‖ Response): identical on both sides; names the session.
    pub transcript_hash: [u8; 32],
}

/// Initiator, before sending the Hello.
pub struct Initiator;

/// Initiator, Hello sent, waiting for the Response.
#[derive(Debug, Clone)]
pub struct AwaitingResponse {
    remote_peer: PeerId,
    nonce: [u8; 32],
    hello_bytes: Vec<u8>,
}

/// Responder, Response sent, waiting for the Confirm.
#[derive(Debug, Clone)]
pub struct AwaitingConfirm {
    remote_peer: PeerId,
    initiator_nonce: [u8; 32],
    nonce: [u8; 32],
    transcript_hash: [u8; 32],
    sent_at: Timestamp,
    admitted: Admitted,
}

/// What a verified card admits.
#[derive(Debug, Clone)]
struct Admitted {
    card: AgentCard,
    credential: OrgCredential,
    policy: OrgPolicy,
    score: Score,
    spawned: Option<Spawned>,
}

fn refused(refusal: Refusal) -> Refused {
    Refused {
        refusal,
        accountable: None,
    }
}

fn blame(peer: &Did) -> impl Fn(Refusal) -> Refused + Copy + '_ {
    move |refusal| Refused {
        refusal,
        accountable: Some(peer.clone()),
    }
}

fn fresh_nonce<R: CryptoRng + ?Sized>(rng: &mut R) -> [u8; 32] {
    let mut nonce = [0u8; 32];
    rng.fill_bytes(&mut nonce);
    nonce
}

fn hash_concat(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

impl Initiator {
    /// Begin a handshake with `remote_peer` (the PeerId the transport dialled).
    /// Returns the Hello bytes to send and the next state.
    pub fn start<R: CryptoRng + ?Sized>(
        ctx: Context<'_>,
        remote_peer: PeerId,
        now: Timestamp,
        rng: &mut R,
    ) -> Result<(AwaitingResponse, Vec<u8>), Refused> {
        let nonce = fresh_nonce(rng);
        let hello = Hello {
            from: ctx.local.peer_id,
            to: remote_peer,
            nonce,
            time: now,
            card: ctx.local.card.clone(),
        };
        let hello_bytes =
            envelope::seal(&hello, &ctx.local.identity).map_err(|e| refused(e.into()))?;
        Ok((
            AwaitingResponse {
                remote_peer,
                nonce,
                hello_bytes: hello_bytes.clone(),
            },
            hello_bytes,
        ))
    }
}

impl AwaitingResponse {
    /// Process the responder's Response. On success returns the session and
    /// the Confirm bytes to send.
    pub fn on_response(
        self,
        ctx: Context<'_>,
        bytes: &[u8],
        now: Timestamp,
    ) -> Result<(Session, Vec<u8>), Refused> {
        let unverified: Unverified<Response> =
            envelope::open(bytes).map_err(|e| refused(e.into()))?;
        let claimed = unverified.claimed();
        check_binding(
            ctx.local.peer_id,
            self.remote_peer,
            claimed.from,
            claimed.to,
        )
        .map_err(refused)?;
        let remote = check_card_key(&claimed.card, self.remote_peer).map_err(refused)?;
        let policy = screen(&ctx, &claimed.card).map_err(refused)?;
        let response = unverified.verify(&remote).map_err(|e| refused(e.into()))?;
        let blame = blame(&remote);

        if response.hello_hash != hash_concat(&[&self.hello_bytes]) {
            return Err(blame(Refusal::TranscriptMismatch(
                "Response answers a different Hello",
            )));
        }
        if response.initiator_nonce != self.nonce {
            return Err(blame(Refusal::TranscriptMismatch(
                "Response echoes a different nonce",
            )));
        }
        check_time(response.time, now, ctx.config.max_skew_secs).map_err(blame)?;
        let admitted = admit(ctx, response.card, policy, now).map_err(blame)?;
        let transcript_hash = hash_concat(&[&self.hello_bytes, bytes]);
        let confirm = Confirm {
            from: ctx.local.peer_id,
            to: self.remote_peer,
            transcript_hash,
            initiator_nonce: self.nonce,
            responder_nonce: response.nonce,
        };
        let confirm_bytes =
            envelope::seal(&confirm, &ctx.local.identity).map_err(|e| refused(e.into()))?;
        Ok((
            session(
                Role::Initiator,
                remote,
                self.remote_peer,
                admitted,
                transcript_hash,
            ),
            confirm_bytes,
        ))
    }
}

/// The responder's entry point.
pub struct Responder;

impl Responder {
    /// Process a Hello received on a connection whose transport-authenticated
    /// remote is `remote_peer`. Returns the Response bytes to send and the
    /// state awaiting the Confirm.
    pub fn on_hello<R: CryptoRng + ?Sized>(
        ctx: Context<'_>,
        remote_peer: PeerId,
        bytes: &[u8],
        now: Timestamp,
        nonces: &mut NonceCache,
        rng: &mut R,
    ) -> Result<(AwaitingConfirm, Vec<u8>), Refused> {
        let unverified: Unverified<Hello> = envelope::open(bytes).map_err(|e| refused(e.into()))?;
        let claimed = unverified.claimed();
        check_binding(ctx.local.peer_id, remote_peer, claimed.from, claimed.to).map_err(refused)?;
        let remote = check_card_key(&claimed.card, remote_peer).map_err(refused)?;
        let policy = screen(&ctx, &claimed.card).map_err(refused)?;
        let hello = unverified.verify(&remote).map_err(|e| refused(e.into()))?;
        let blame = blame(&remote);

        check_time(hello.time, now, ctx.config.max_skew_secs).map_err(blame)?;
        let admitted = admit(ctx, hello.card, policy, now).map_err(blame)?;
        nonces
            .check_and_insert(&remote, hello.nonce, now)
            .map_err(blame)?;

        let nonce = fresh_nonce(rng);
        let response = Response {
            from: ctx.local.peer_id,
            to: remote_peer,
            hello_hash: hash_concat(&[bytes]),
            initiator_nonce: hello.nonce,
            nonce,
            time: now,
            card: ctx.local.card.clone(),
        };
        let response_bytes =
            envelope::seal(&response, &ctx.local.identity).map_err(|e| refused(e.into()))?;
        Ok((
            AwaitingConfirm {
                remote_peer,
                initiator_nonce: hello.nonce,
                nonce,
                transcript_hash: hash_concat(&[bytes, &response_bytes]),
                sent_at: now,
                admitted,
            },
            response_bytes,
        ))
    }
}

impl AwaitingConfirm {
    /// Process the initiator's Confirm; on success the peer is authenticated.
    pub fn on_confirm(
        self,
        ctx: Context<'_>,
        bytes: &[u8],
        now: Timestamp,
    ) -> Result<Session, Refused> {
        if now > self.sent_at.plus_secs(ctx.config.confirm_timeout_secs) {
            return Err(refused(Refusal::TimedOut {
                started: self.sent_at,
                now,
            }));
        }
        let unverified: Unverified<Confirm> =
            envelope::open(bytes).map_err(|e| refused(e.into()))?;
        let claimed = unverified.claimed();
        check_binding(
            ctx.local.peer_id,
            self.remote_peer,
            claimed.from,
            claimed.to,
        )
        .map_err(refused)?;
        let remote = self.admitted.card.did.clone();
        let confirm = unverified.verify(&remote).map_err(|e| refused(e.into()))?;
        let blame = blame(&remote);
        if confirm.transcript_hash != self.transcript_hash {
            return Err(blame(Refusal::TranscriptMismatch(
                "Confirm covers a different transcript",
            )));
        }
        if confirm.initiator_nonce != self.initiator_nonce || confirm.responder_nonce != self.nonce
        {
            return Err(blame(Refusal::TranscriptMismatch(
                "Confirm carries different nonces",
            )));
        }
        Ok(session(
            Role::Responder,
            remote,
            self.remote_peer,
            self.admitted,
            self.transcript_hash,
        ))
    }

    /// The DID that sent the Hello (authenticated by its signature, not yet
    /// by the Confirm).
    pub fn remote(&self) -> &Did {
        &self.admitted.card.did
    }
}

fn session(
    role: Role,
    remote: Did,
    remote_peer: PeerId,
    admitted: Admitted,
    transcript_hash: [u8; 32],
) -> Session {
    Session {
        role,
        remote,
        remote_peer,
        remote_card: admitted.card,
        credential: admitted.credential,
        policy: admitted.policy,
        admitted_score: admitted.score,
        spawned: admitted.spawned,
        version: PROTOCOL_VERSION,
        transcript_hash,
    }
}

/// Reflection and relay checks on a message's (from, to) against the
/// connection's (remote, local).
fn check_binding(local: PeerId, remote: PeerId, from: PeerId, to: PeerId) -> Result<(), Refusal> {
    if from == local {
        return Err(Refusal::Reflected);
    }
    if from != remote {
        return Err(Refusal::ChannelBinding {
            field: "from",
            expected: remote,
            found: from,
        });
    }
    if to != local {
        return Err(Refusal::ChannelBinding {
            field: "to",
            expected: local,
            found: to,
        });
    }
    Ok(())
}

/// The card's DID must be the key behind the connection's PeerId.
fn check_card_key(card: &AgentCard, remote: PeerId) -> Result<Did, Refusal> {
    if PeerId::from_did(&card.did) != remote {
        return Err(Refusal::PeerIdMismatch {
            claimed: card.did.clone(),
            connection: remote,
        });
    }
    Ok(card.did.clone())
}

fn check_time(sent: Timestamp, now: Timestamp, skew_secs: u64) -> Result<(), Refusal> {
    if sent.abs_diff(now) > skew_secs {
        return Err(Refusal::TimestampOutsideWindow {
            sent,
            now,
            skew_secs,
        });
    }
    Ok(())
}

/// The checks that cost no signature: the card's limits and version, its
/// credential's revocation, and its claimed org's place in the bundle. Run
/// before the message's own signature, so a message failing them costs no
/// verification at all — and, unverified, is attributed to nobody.
fn screen<'a>(ctx: &Context<'a>, card: &AgentCard) -> Result<&'a OrgPolicy, Refusal> {
    card.check_limits().map_err(Refusal::InvalidCard)?;
    if !card.versions.contains(&PROTOCOL_VERSION) {
        return Err(Refusal::NoCommonVersion {
            offered: card.versions.clone(),
        });
    }
    if ctx.revoked.is_revoked(&card.credential.digest()) {
        return Err(Refusal::CredentialRevoked);
    }
    let claimed_org = card.credential.claimed_org()?;
    ctx.bundle
        .policy_for(&claimed_org)
        .ok_or(Refusal::OrgNotInBundle { org: claimed_org })
}

/// Everything about a signature-verified card that [`screen`] did not
/// check (`policy` is what it found).
fn admit(
    ctx: Context<'_>,
    card: AgentCard,
    policy: &OrgPolicy,
    now: Timestamp,
) -> Result<Admitted, Refusal> {
    // Verified under the claimed org's key, so `credential.org` is the
    // org whose policy this is.
    let credential = card.credential.verify_signature()?;
    credential.check_window(now, ctx.config.max_skew_secs)?;
    // An agent with its own credential, or a spawned one whose lineage
    // runs from the credential's agent down to it.
    let spawned = if card.lineage.is_empty() {
        if credential.agent != card.did {
            return Err(Refusal::CredentialSubjectMismatch {
                credential_agent: credential.agent,
                card_agent: card.did.clone(),
            });
        }
        None
    } else {
        let spawned =
            ctx.lineage
                .check(&card.lineage, &credential.agent, &card.did, policy, now)?;
        Some(spawned)
    };
    let not_allowed = |c: &&crate::CapabilityPattern| {
        !allowed_by(c, &policy.capabilities)
            || spawned
                .as_ref()
                .is_some_and(|s| !allowed_by(c, &s.capabilities))
    };
    if let Some(cap) = card.capabilities.iter().find(not_allowed) {
        return Err(Refusal::CapabilityNotAllowed {
            org: policy.name.clone(),
            capability: cap.to_string(),
        });
    }
    let ceiling = spawned.as_ref().map_or(policy.trust_ceiling, |s| {
        s.trust_ceiling.min(policy.trust_ceiling)
    });
    let score = ctx.trust.score(&card.did, policy).min(ceiling);
    if score < ctx.config.trust_floor {
        return Err(Refusal::BelowTrustFloor {
            score,
            floor: ctx.config.trust_floor,
        });
    }
    Ok(Admitted {
        card,
        credential,
        policy: policy.clone(),
        score,
        spawned,
    })
}
