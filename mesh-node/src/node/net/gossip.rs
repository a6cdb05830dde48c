//! Gossip over gossipsub as its own `NetworkBehaviour`: the agent's four
//! topics, how the node builds gossipsub, how trust scores become
//! gossipsub's application-specific peer score, and messages handed to the
//! agent by [`Did`] and [`GossipId`], held until it gives its verdict.
//!
//! Messages are signed by their libp2p author (strict validation), named by
//! the SHA-256 of their data (so the same report re-published by anyone is
//! one message), and validated by the node before they are forwarded: a
//! message that fails verification is rejected, which costs its sender
//! gossipsub score (P₄) and trust.

use std::collections::{HashMap, HashSet};
use std::task::{Context, Poll};
use std::time::Duration;

use libp2p::PeerId;
use libp2p::gossipsub::{
    self, IdentTopic, MessageAcceptance, MessageAuthenticity, MessageId, PeerScoreParams,
    PeerScoreThresholds, PublishError, TopicScoreParams, ValidationMode,
};
use libp2p::identity::Keypair;
use libp2p::swarm::behaviour::ConnectionEstablished;
use libp2p::swarm::{ConnectionClosed, FromSwarm, NetworkBehaviour, THandlerInEvent, ToSwarm};
use mesh_agent::{GossipId, Input, Verdict};
use mesh_iatp::{Did, Score};
use sha2::{Digest, Sha256};

use super::super::{did_of, peer_of};

pub use mesh_agent::gossip::{
    CHECKPOINT_TOPIC, EQUIVOCATION_TOPIC, MAX_GOSSIP_BYTES, REVOCATION_TOPIC, TRUST_TOPIC, Topic,
};

/// Every topic a node joins.
pub const TOPICS: [&str; 4] = [
    TRUST_TOPIC,
    REVOCATION_TOPIC,
    CHECKPOINT_TOPIC,
    EQUIVOCATION_TOPIC,
];

/// The gossipsub topic of `topic`.
pub fn ident(topic: Topic) -> IdentTopic {
    IdentTopic::new(topic.name())
}

/// Which of ours a gossipsub topic hash is.
pub fn topic_of(hash: &gossipsub::TopicHash) -> Option<Topic> {
    Topic::ALL.into_iter().find(|t| ident(*t).hash() == *hash)
}

/// gossipsub's score thresholds: below -10 a peer gets no gossip, below -50
/// its publications are ignored, below -80 everything from it is.
pub fn thresholds() -> PeerScoreThresholds {
    PeerScoreThresholds::default()
}

/// What gossipsub adds for a peer on top of its delivery behaviour: a
/// peer under the trust floor is graylisted outright (-100); otherwise the
/// score moves ±10 around the neutral 500.
pub fn application_score(trust: Score, floor: Score) -> f64 {
    if trust < floor {
        -100.0
    } else {
        (f64::from(trust.get()) - 500.0) / 50.0
    }
}

fn topic_params() -> TopicScoreParams {
    TopicScoreParams {
        // Trust reports and checkpoints are infrequent: a quiet mesh peer
        // is not a bad one, so no mesh-delivery penalties (P₃, P₃b).
        mesh_message_deliveries_weight: 0.0,
        mesh_failure_penalty_weight: 0.0,
        // A message that fails verification costs 50 points squared-ish
        // (gossipsub squares the counter): two put a peer under the gossip
        // threshold, and the penalty decays by a tenth per decay interval.
        invalid_message_deliveries_weight: -50.0,
        invalid_message_deliveries_decay: 0.9,
        topic_weight: 1.0,
        ..TopicScoreParams::default()
    }
}

fn score_params() -> PeerScoreParams {
    let mut params = PeerScoreParams {
        app_specific_weight: 1.0,
        // Many honest agents share a host (and every test runs on
        // loopback); sybils are the trust engine's business, not the IP's.
        ip_colocation_factor_weight: 0.0,
        ..PeerScoreParams::default()
    };
    for t in TOPICS {
        params
            .topics
            .insert(IdentTopic::new(t).hash(), topic_params());
    }
    params
}

/// gossipsub for a node with `keypair`, subscribed to every topic,
/// validating messages itself, with peer scoring on.
fn gossipsub(keypair: Keypair, heartbeat: Duration) -> Result<gossipsub::Behaviour, String> {
    let config = gossipsub::ConfigBuilder::default()
        .validation_mode(ValidationMode::Strict)
        .validate_messages()
        .max_transmit_size(MAX_GOSSIP_BYTES)
        .heartbeat_interval(heartbeat)
        .message_id_fn(|m: &gossipsub::Message| {
            gossipsub::MessageId::from(Sha256::digest(&m.data).to_vec())
        })
        .build()
        .map_err(|e| e.to_string())?;
    let mut gossip = gossipsub::Behaviour::new(MessageAuthenticity::Signed(keypair), config)
        .map_err(|e| e.to_string())?;
    gossip.with_peer_score(score_params(), thresholds())?;
    for t in TOPICS {
        gossip
            .subscribe(&IdentTopic::new(t))
            .map_err(|e| e.to_string())?;
    }
    Ok(gossip)
}

/// The gossipsub score of a connected peer without a session: under the
/// graylist threshold, so nothing it sends is handled, it is never grafted,
/// and nothing is published or gossiped to it (PROTOCOL.md §8.1).
const STRANGER_SCORE: f64 = -1000.0;

/// The gossip behaviour.
pub struct Gossip {
    inner: gossipsub::Behaviour,
    /// Connected peers holding a session; every other connected peer is a
    /// stranger ([`STRANGER_SCORE`]). Bounded by the connection limits.
    admitted: HashSet<PeerId>,
    /// Messages awaiting the agent's verdict. gossipsub forwards none of
    /// them before it; the agent gives one for each.
    awaiting: HashMap<GossipId, (MessageId, PeerId)>,
    next: u64,
}

impl Gossip {
    /// Gossip for a node with `keypair`, subscribed to every topic.
    pub fn new(keypair: Keypair, heartbeat: Duration) -> Result<Self, String> {
        Ok(Gossip {
            inner: gossipsub(keypair, heartbeat)?,
            admitted: HashSet::new(),
            awaiting: HashMap::new(),
            next: 0,
        })
    }

    /// Publish `data` on `topic`.
    pub fn publish(&mut self, topic: Topic, data: Vec<u8>) -> Result<(), PublishError> {
        self.inner.publish(ident(topic), data).map(|_| ())
    }

    /// The agent's verdict on message `id`: forward, drop, or drop and
    /// count against the peer that sent it.
    pub fn verdict(&mut self, id: GossipId, verdict: Verdict) {
        if let Some((message_id, source)) = self.awaiting.remove(&id) {
            let acceptance = match verdict {
                Verdict::Accept => MessageAcceptance::Accept,
                Verdict::Ignore => MessageAcceptance::Ignore,
                Verdict::Reject => MessageAcceptance::Reject,
            };
            self.inner
                .report_message_validation_result(&message_id, &source, acceptance);
        }
    }

    /// `peer` holds a session now: gossip flows both ways, scored by its
    /// trust.
    pub fn admit(&mut self, peer: &Did, trust: Score, floor: Score) {
        if let Some(id) = peer_of(peer) {
            self.admitted.insert(id);
            self.set_trust(peer, trust, floor);
        }
    }

    /// `peer` lost its session but may still be connected: a stranger again.
    pub fn exclude(&mut self, peer: &Did) {
        if let Some(id) = peer_of(peer) {
            self.admitted.remove(&id);
            self.inner.set_application_score(&id, STRANGER_SCORE);
        }
    }

    /// Feed an admitted `peer`'s trust into its gossipsub score.
    pub fn set_trust(&mut self, peer: &Did, trust: Score, floor: Score) {
        if let Some(peer) = peer_of(peer).filter(|p| self.admitted.contains(p)) {
            self.inner
                .set_application_score(&peer, application_score(trust, floor));
        }
    }

    /// Take nothing from `peer` and send it nothing.
    pub fn ban(&mut self, peer: &Did) {
        if let Some(peer) = peer_of(peer) {
            self.inner.blacklist_peer(&peer);
        }
    }

    /// Lift a ban.
    pub fn unban(&mut self, peer: &Did) {
        if let Some(peer) = peer_of(peer) {
            self.inner.remove_blacklisted_peer(&peer);
        }
    }

    /// gossipsub's score of `peer`.
    pub fn peer_score(&self, peer: &PeerId) -> Option<f64> {
        self.inner.peer_score(peer)
    }

    /// A message on one of our topics becomes the agent's
    /// [`Input::Gossip`]; it is held until [`Gossip::verdict`].
    fn translate(&mut self, event: gossipsub::Event) -> Option<Input> {
        let gossipsub::Event::Message {
            propagation_source: source,
            message_id,
            message,
        } = event
        else {
            return None;
        };
        let (Some(topic), Some(from)) = (topic_of(&message.topic), did_of(&source)) else {
            self.inner.report_message_validation_result(
                &message_id,
                &source,
                MessageAcceptance::Ignore,
            );
            return None;
        };
        self.next += 1;
        let id = GossipId(self.next);
        self.awaiting.insert(id, (message_id, source));
        let author = message.source.as_ref().and_then(did_of);
        Some(Input::Gossip {
            from,
            id,
            topic,
            author,
            data: message.data,
        })
    }
}

impl NetworkBehaviour for Gossip {
    type ConnectionHandler = <gossipsub::Behaviour as NetworkBehaviour>::ConnectionHandler;
    /// The agent's [`Input::Gossip`].
    type ToSwarm = Input;

    super::delegate_to_inner!(except on_swarm_event);

    fn on_swarm_event(&mut self, event: FromSwarm) {
        let (first, last) = match &event {
            FromSwarm::ConnectionEstablished(ConnectionEstablished {
                peer_id,
                other_established: 0,
                ..
            }) => (Some(*peer_id), None),
            FromSwarm::ConnectionClosed(ConnectionClosed {
                peer_id,
                remaining_established: 0,
                ..
            }) => (None, Some(*peer_id)),
            _ => (None, None),
        };
        self.inner.on_swarm_event(event);
        // gossipsub starts scoring a peer when it connects; from then
        // until its session, it is a stranger.
        if let Some(peer) = first {
            self.admitted.remove(&peer);
            self.inner.set_application_score(&peer, STRANGER_SCORE);
        }
        if let Some(peer) = last {
            self.admitted.remove(&peer);
        }
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<ToSwarm<Input, THandlerInEvent<Self>>> {
        loop {
            match super::polled(self.inner.poll(cx)) {
                Ok(event) => {
                    if let Some(input) = self.translate(event) {
                        return Poll::Ready(ToSwarm::GenerateEvent(input));
                    }
                }
                Err(passed) => return passed,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_round_trip_through_their_hashes() {
        for t in Topic::ALL {
            assert_eq!(topic_of(&ident(t).hash()), Some(t));
        }
        assert_eq!(topic_of(&IdentTopic::new("/other/1").hash()), None);
    }

    #[test]
    fn peers_under_the_floor_fall_below_the_graylist() {
        let floor = Score::saturating(100);
        let t = thresholds();
        assert!(application_score(Score::saturating(99), floor) < t.graylist_threshold);
        assert!(application_score(Score::saturating(100), floor) > t.gossip_threshold);
        assert_eq!(application_score(Score::saturating(1000), floor), 10.0);
    }

    #[test]
    fn the_score_parameters_are_accepted_by_gossipsub() {
        let key = Keypair::generate_ed25519();
        assert!(Gossip::new(key, Duration::from_millis(500)).is_ok());
    }
}
