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

/// The score of a peer that must get nothing and be heard in nothing: a
/// connected stranger, or a member under the trust floor. Far under the
/// graylist threshold whatever its topic bonuses ([`TOPIC_SCORE_CAP`]).
pub const GRAYLISTED: f64 = -1000.0;

/// The most a peer's conduct on our topics (time in the mesh, first
/// deliveries) can add to its score. Small beside what an invalid message
/// takes away (50), so staying in the mesh buys no licence to lie.
pub const TOPIC_SCORE_CAP: f64 = 10.0;

/// What gossipsub adds for a peer on top of its conduct on our topics: a
/// member under the trust floor is graylisted outright ([`GRAYLISTED`]);
/// one at or over it gets 0 (at the floor) to 10 (at 1000), never a
/// negative score, so gossipsub never prunes an honest member from the
/// mesh for being under the neutral 500.
pub fn application_score(trust: Score, floor: Score) -> f64 {
    if trust < floor {
        return GRAYLISTED;
    }
    let above = f64::from(trust.get() - floor.get());
    let range = f64::from(Score::MAX.get() - floor.get()).max(1.0);
    10.0 * above / range
}

fn topic_params() -> TopicScoreParams {
    TopicScoreParams {
        topic_weight: 1.0,
        // P₁: a mesh member earns 0.1 a second, at most 1 (after 10 s).
        time_in_mesh_weight: 0.1,
        time_in_mesh_quantum: Duration::from_secs(1),
        time_in_mesh_cap: 10.0,
        // P₂: each first delivery of a valid message earns 0.5, at most 5.
        first_message_deliveries_weight: 0.5,
        first_message_deliveries_decay: 0.5,
        first_message_deliveries_cap: 10.0,
        // Trust reports and checkpoints are infrequent: a quiet mesh peer
        // is not a bad one, so no mesh-delivery penalties (P₃, P₃b).
        mesh_message_deliveries_weight: 0.0,
        mesh_failure_penalty_weight: 0.0,
        // P₄: gossipsub squares the count of messages that failed
        // verification: one costs 50 (under the gossip threshold from any
        // score), two cost 200 (graylisted); the count decays by a tenth a
        // second.
        invalid_message_deliveries_weight: -50.0,
        invalid_message_deliveries_decay: 0.9,
        ..TopicScoreParams::default()
    }
}

fn score_params() -> PeerScoreParams {
    let mut params = PeerScoreParams {
        topic_score_cap: TOPIC_SCORE_CAP,
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
        // The first mesh forms one heartbeat after start, not 5 s after.
        .heartbeat_initial_delay(heartbeat)
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

/// The gossip behaviour.
pub struct Gossip {
    inner: gossipsub::Behaviour,
    /// Connected peers holding a session; every other connected peer is a
    /// stranger, [`GRAYLISTED`]: nothing it sends is handled, it is never
    /// grafted, and nothing is published or gossiped to it (PROTOCOL.md
    /// §8.1). Bounded by the connection limits.
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
            self.inner.set_application_score(&id, GRAYLISTED);
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
            self.inner.set_application_score(&peer, GRAYLISTED);
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
    use std::time::Instant;

    use futures::StreamExt;
    use libp2p::Swarm;
    use libp2p::swarm::SwarmEvent;

    use super::super::testing::{memory_addr, memory_swarm};
    use super::*;

    #[test]
    fn topics_round_trip_through_their_hashes() {
        for t in Topic::ALL {
            assert_eq!(topic_of(&ident(t).hash()), Some(t));
        }
        assert_eq!(topic_of(&IdentTopic::new("/other/1").hash()), None);
    }

    #[test]
    fn members_at_or_over_the_floor_never_score_negative() {
        let floor = Score::saturating(100);
        let t = thresholds();
        assert!(application_score(Score::saturating(99), floor) < t.graylist_threshold);
        assert_eq!(application_score(Score::saturating(100), floor), 0.0);
        assert_eq!(application_score(Score::saturating(1000), floor), 10.0);
        for trust in 100..=1000 {
            let s = application_score(Score::saturating(trust), floor);
            assert!((0.0..=10.0).contains(&s), "{trust} scores {s}");
        }
        // A floor of 1000 leaves no range to divide.
        assert_eq!(application_score(Score::MAX, Score::MAX), 0.0);
    }

    const FLOOR: Score = Score::saturating(100);

    fn peer() -> Swarm<Gossip> {
        memory_swarm(|key| Gossip::new(key.clone(), Duration::from_millis(50)).unwrap())
    }

    fn did(swarm: &Swarm<Gossip>) -> Did {
        did_of(swarm.local_peer_id()).unwrap()
    }

    /// Two connected peers, each admitting the other at `trust`.
    async fn pair(trust: u16) -> (Swarm<Gossip>, Swarm<Gossip>) {
        let (mut a, mut b) = (peer(), peer());
        let addr = memory_addr();
        a.listen_on(addr.clone()).unwrap();
        b.dial(addr.with_p2p(*a.local_peer_id()).unwrap()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !(a.is_connected(b.local_peer_id()) && b.is_connected(a.local_peer_id())) {
            assert!(Instant::now() < deadline, "connected within 10 s");
            drive(&mut a, &mut b, Duration::from_millis(20), |_| {
                Verdict::Accept
            })
            .await;
        }
        let (a_did, b_did) = (did(&a), did(&b));
        a.behaviour_mut()
            .admit(&b_did, Score::saturating(trust), FLOOR);
        b.behaviour_mut()
            .admit(&a_did, Score::saturating(trust), FLOOR);
        (a, b)
    }

    /// Run both peers for `time`: `a` judges each message it receives with
    /// `judge` and returns what it received; `b` accepts everything.
    async fn drive(
        a: &mut Swarm<Gossip>,
        b: &mut Swarm<Gossip>,
        time: Duration,
        mut judge: impl FnMut(&[u8]) -> Verdict,
    ) -> Vec<Vec<u8>> {
        let mut got = Vec::new();
        let until = tokio::time::sleep(time);
        tokio::pin!(until);
        loop {
            tokio::select! {
                _ = &mut until => return got,
                e = a.select_next_some() => if let SwarmEvent::Behaviour(Input::Gossip { id, data, .. }) = e {
                    let verdict = judge(&data);
                    a.behaviour_mut().verdict(id, verdict);
                    got.push(data);
                },
                e = b.select_next_some() => if let SwarmEvent::Behaviour(Input::Gossip { id, .. }) = e {
                    b.behaviour_mut().verdict(id, Verdict::Accept);
                },
            }
        }
    }

    fn score(a: &Swarm<Gossip>, b: &Swarm<Gossip>) -> f64 {
        a.behaviour().peer_score(b.local_peer_id()).unwrap()
    }

    fn in_mesh(a: &Swarm<Gossip>, b: &Swarm<Gossip>) -> bool {
        a.behaviour()
            .inner
            .all_mesh_peers()
            .any(|p| p == b.local_peer_id())
    }

    /// `b` publishes `n` distinct messages starting with `tag` and both run
    /// until `a` received them; `a` judges them with `verdict`.
    async fn publish(
        a: &mut Swarm<Gossip>,
        b: &mut Swarm<Gossip>,
        tag: u8,
        n: u8,
        verdict: Verdict,
    ) {
        for i in 0..n {
            b.behaviour_mut()
                .publish(Topic::Trust, vec![tag, i])
                .unwrap();
        }
        let got = drive(a, b, Duration::from_millis(500), |_| verdict).await;
        assert_eq!(got.len(), usize::from(n), "a got b's messages");
    }

    /// Let `b` earn every bonus it can in `a`'s eyes: time in the mesh,
    /// first deliveries of valid messages.
    async fn earn_every_bonus(a: &mut Swarm<Gossip>, b: &mut Swarm<Gossip>) {
        drive(a, b, Duration::from_millis(1500), |_| Verdict::Accept).await;
        publish(a, b, 1, 20, Verdict::Accept).await;
    }

    #[tokio::test]
    async fn honest_members_under_500_stay_in_the_mesh() {
        let (mut a, mut b) = pair(400).await;
        drive(&mut a, &mut b, Duration::from_millis(1500), |_| {
            Verdict::Accept
        })
        .await;
        assert!(score(&a, &b) >= 0.0, "score {}", score(&a, &b));
        assert!(in_mesh(&a, &b) && in_mesh(&b, &a), "grafted both ways");
    }

    #[tokio::test]
    async fn a_member_under_the_floor_is_graylisted_at_once() {
        let (mut a, mut b) = pair(900).await;
        earn_every_bonus(&mut a, &mut b).await;
        assert!(in_mesh(&a, &b));
        let b_did = did(&b);
        a.behaviour_mut()
            .set_trust(&b_did, Score::saturating(99), FLOOR);
        assert!(
            score(&a, &b) < thresholds().graylist_threshold,
            "score {}",
            score(&a, &b)
        );
        b.behaviour_mut().publish(Topic::Trust, vec![2]).unwrap();
        let got = drive(&mut a, &mut b, Duration::from_millis(500), |_| {
            Verdict::Accept
        })
        .await;
        assert!(got.is_empty(), "nothing from a graylisted peer is handled");
    }

    #[tokio::test]
    async fn a_handful_of_invalid_messages_take_any_member_under_the_gossip_threshold() {
        let (mut a, mut b) = pair(1000).await;
        earn_every_bonus(&mut a, &mut b).await;
        assert!(score(&a, &b) > 10.0, "b is in the best standing there is");
        publish(&mut a, &mut b, 2, 1, Verdict::Reject).await;
        let t = thresholds();
        assert!(
            score(&a, &b) < t.gossip_threshold,
            "score {}",
            score(&a, &b)
        );
        publish(&mut a, &mut b, 3, 1, Verdict::Reject).await;
        assert!(
            score(&a, &b) < t.graylist_threshold,
            "score {}",
            score(&a, &b)
        );
    }

    #[test]
    fn the_score_parameters_are_accepted_by_gossipsub() {
        let key = Keypair::generate_ed25519();
        assert!(Gossip::new(key, Duration::from_millis(500)).is_ok());
    }
}
