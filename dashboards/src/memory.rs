//! What the dashboard remembers that the node does not keep: scores over
//! time, agents seen earlier, recent refusals and activity. Bounded.

use std::collections::{BTreeMap, VecDeque};

use serde::Serialize;

use crate::view::{Activity, Peer, Refusal};

/// Recent refusals kept.
pub const REFUSALS_KEPT: usize = 200;
/// Recent activity kept.
pub const ACTIVITY_KEPT: usize = 200;
/// Agents remembered. Past this, the agent gone longest is forgotten first;
/// connected peers are always kept (the node bounds how many there are).
pub const AGENTS_KEPT: usize = 1_000;

/// Every agent's score at one moment.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    /// Unix milliseconds.
    pub t: u64,
    /// Score by DID, for every agent known at that moment.
    pub scores: BTreeMap<String, u16>,
}

/// An agent the dashboard has seen as a peer.
#[derive(Debug, Clone, Serialize)]
pub struct KnownAgent {
    /// Its DID.
    pub did: String,
    /// The name on its card.
    pub name: String,
    /// Its organisation.
    pub org: String,
    /// Our latest score.
    pub score: u16,
    /// Its tier.
    pub tier: String,
    /// Whether it holds a session with the node now.
    pub connected: bool,
    /// When it was last connected (the sample's time): who is forgotten
    /// first.
    #[serde(skip)]
    last_seen: u64,
}

/// The dashboard's bounded memory.
#[derive(Debug)]
pub struct Memory {
    samples: VecDeque<Sample>,
    samples_kept: usize,
    agents: BTreeMap<String, KnownAgent>,
    refusals: VecDeque<Refusal>,
    activity: VecDeque<Activity>,
}

fn push_bounded<T>(queue: &mut VecDeque<T>, item: T, cap: usize) {
    if queue.len() == cap {
        queue.pop_front();
    }
    queue.push_back(item);
}

impl Memory {
    /// Keep `samples_kept` samples (at least one).
    pub fn new(samples_kept: usize) -> Self {
        Memory {
            samples: VecDeque::new(),
            samples_kept: samples_kept.max(1),
            agents: BTreeMap::new(),
            refusals: VecDeque::new(),
            activity: VecDeque::new(),
        }
    }

    /// Take the connected peers at `t`; agents seen before and gone now
    /// keep their row (not connected) with the score `rescore` gives.
    pub fn sample(
        &mut self,
        t: u64,
        peers: &[Peer],
        mut rescore: impl FnMut(&str) -> Option<(u16, String)>,
    ) -> Sample {
        for a in self.agents.values_mut() {
            a.connected = false;
        }
        for p in peers {
            let did = p.did.as_str().to_string();
            self.agents.insert(
                did.clone(),
                KnownAgent {
                    did,
                    name: p.name.clone(),
                    org: p.org.clone(),
                    score: p.score.get(),
                    tier: p.tier.name().to_string(),
                    connected: true,
                    last_seen: t,
                },
            );
        }
        while self.agents.len() > AGENTS_KEPT {
            let Some(oldest) = self
                .agents
                .values()
                .filter(|a| !a.connected)
                .min_by_key(|a| a.last_seen)
                .map(|a| a.did.clone())
            else {
                break;
            };
            self.agents.remove(&oldest);
        }
        for a in self.agents.values_mut().filter(|a| !a.connected) {
            if let Some((score, tier)) = rescore(&a.did) {
                a.score = score;
                a.tier = tier;
            }
        }
        let sample = Sample {
            t,
            scores: self
                .agents
                .values()
                .map(|a| (a.did.clone(), a.score))
                .collect(),
        };
        push_bounded(&mut self.samples, sample.clone(), self.samples_kept);
        sample
    }

    /// Remember something that happened.
    pub fn note(&mut self, activity: &Activity) {
        if let Activity::Refusal(r) = activity {
            push_bounded(&mut self.refusals, r.clone(), REFUSALS_KEPT);
        }
        push_bounded(&mut self.activity, activity.clone(), ACTIVITY_KEPT);
    }

    /// Scores over time, oldest first.
    pub fn samples(&self) -> Vec<Sample> {
        self.samples.iter().cloned().collect()
    }

    /// Every agent seen, by DID.
    pub fn agents(&self) -> Vec<KnownAgent> {
        self.agents.values().cloned().collect()
    }

    /// Recent refusals, newest first.
    pub fn refusals(&self) -> Vec<Refusal> {
        self.refusals.iter().rev().cloned().collect()
    }

    /// Recent activity, newest first.
    pub fn activity(&self) -> Vec<Activity> {
        self.activity.iter().rev().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use mesh_iatp::{Identity, Score};
    use mesh_trust::Tier;

    fn peer(n: u8, score: u16) -> Peer {
        let did = Identity::from_secret_bytes(&[n; 32]).did().clone();
        Peer {
            did,
            name: format!("agent-{n}"),
            org: "acme".into(),
            score: Score::saturating(score),
            tier: Tier::Standard,
        }
    }

    #[test]
    fn samples_are_bounded_and_keep_departed_agents() {
        let mut m = Memory::new(3);
        for t in 0..5 {
            m.sample(t, &[peer(1, 500), peer(2, 600)], |_| None);
        }
        assert_eq!(m.samples().len(), 3);
        assert_eq!(m.samples()[0].t, 2);
        // Agent 2 leaves; its row stays, not connected, rescored.
        let s = m.sample(9, &[peer(1, 510)], |_| Some((42, "untrusted".into())));
        assert_eq!(s.scores.len(), 2);
        let gone = m
            .agents()
            .into_iter()
            .find(|a| a.name == "agent-2")
            .unwrap();
        assert!(!gone.connected);
        assert_eq!(gone.score, 42);
        let here = m
            .agents()
            .into_iter()
            .find(|a| a.name == "agent-1")
            .unwrap();
        assert!(here.connected);
        assert_eq!(here.score, 510);
    }

    #[test]
    fn agents_are_bounded_forgetting_the_longest_gone_first() {
        let mut m = Memory::new(1);
        // Agent 1 is seen first and leaves; 2..=AGENTS_KEPT+1 come later.
        m.sample(0, &[peer(1, 500)], |_| None);
        let later: Vec<Peer> = (0..AGENTS_KEPT as u32)
            .map(|i| {
                let mut secret = [0u8; 32];
                secret[..4].copy_from_slice(&(i + 1000).to_le_bytes());
                let did = Identity::from_secret_bytes(&secret).did().clone();
                Peer {
                    did,
                    ..peer(2, 600)
                }
            })
            .collect();
        m.sample(1, &later[..10], |_| None);
        assert_eq!(m.agents().len(), 11);
        // All of them connected at once: agent 1 (gone longest) is dropped,
        // the connected ones all stay.
        m.sample(2, &later, |_| None);
        let agents = m.agents();
        assert_eq!(agents.len(), AGENTS_KEPT);
        assert!(agents.iter().all(|a| a.connected && a.name != "agent-1"));
        // More connected peers than the cap: all are kept.
        let mut more = later.clone();
        more.push(peer(3, 700));
        m.sample(3, &more, |_| None);
        assert_eq!(m.agents().len(), AGENTS_KEPT + 1);
    }

    #[test]
    fn refusals_are_bounded_newest_first() {
        let mut m = Memory::new(1);
        for i in 0..(REFUSALS_KEPT as u64 + 10) {
            m.note(&Activity::Refusal(Refusal {
                at: i,
                kind: "gate_denied",
                subject: "x".into(),
                rule: "r".into(),
                reason: "because".into(),
            }));
        }
        let r = m.refusals();
        assert_eq!(r.len(), REFUSALS_KEPT);
        assert_eq!(r[0].at, REFUSALS_KEPT as u64 + 9);
        assert_eq!(m.activity().len(), ACTIVITY_KEPT);
    }
}
