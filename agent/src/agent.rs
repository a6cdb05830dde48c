//! [`Agent`]: the whole protocol brain of one mesh agent, as a
//! deterministic state machine. The driver hands it [`Input`]s with the
//! time ([`Agent::handle`]) and carries out the [`Effect`]s it returns; the
//! same inputs at the same times give the same effects, byte for byte.
//!
//! The agent's modules each hold one protocol, both of its sides:
//! `handshake` (IATP over a connection), `cosign` (co-signed records: actor
//! and counterparty), `gossip` (validating what peers publish), `witness`
//! (checkpoints: log owner and witness).

use std::collections::HashMap;
use std::time::Duration;

use crate::aggregate::AfterAggregation;
pub use crate::config::{AgentConfig, Settings};
use mesh_delegation::{Gate, GateConfig};
use mesh_iatp::handshake::{HandshakeConfig, LocalAgent, NonceCache, Session};
use mesh_iatp::{Did, RevokedCredentials, Score, Timestamp, TrustBundle};
use mesh_ledger::merkle::{CompactRange, Hash};
use mesh_ledger::witness::{MemoryWitnessStore, Witness};
use mesh_trust::{ConfigError, Evidence, EvidenceKind, Explanation, Tier, TrustEngine};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use crate::api::Outcome;
use crate::conversation::{Awaited, Pending, Phase, RunningTask};
use crate::durable::Fact;
use crate::io::{Command, Effect, Event, Input, OpId, RequestId, TaskId};
use crate::knowledge::Knowledge;
use crate::limits::RateLimiter;
use crate::schedule::ReportSchedule;
use crate::time::{Millis, Now};

/// How many peers may hold strikes at once (an outsider can make keys).
const MAX_STRIKERS: usize = 4096;

/// The state of one agent.
pub struct Agent {
    pub(crate) local: LocalAgent,
    pub(crate) did: Did,
    pub(crate) bundle: TrustBundle,
    pub(crate) revoked_credentials: RevokedCredentials,
    pub(crate) handshake: HandshakeConfig,
    pub(crate) settings: Settings,
    pub(crate) k: Knowledge,
    pub(crate) rng: ChaCha20Rng,
    pub(crate) nonces: NonceCache,
    /// Connections by peer, and where their handshake stands.
    pub(crate) peers: HashMap<Did, Phase>,
    /// When each connected peer without a session connected, and from
    /// which IP (one entry per connected peer at most, so bounded by the
    /// connection limits).
    pub(crate) handshaking: HashMap<Did, (Millis, Option<std::net::IpAddr>)>,
    /// Authenticated peers.
    pub(crate) sessions: HashMap<Did, Session>,
    /// Our log's right edge (size and root), advanced as we emit appends.
    pub(crate) log: CompactRange,
    /// Our latest checkpoint note, with cosignatures gathered.
    pub(crate) own_note: Option<Vec<u8>>,
    /// The size of our latest checkpoint.
    pub(crate) checkpointed: u64,
    next_request: u64,
    pub(crate) pending: HashMap<RequestId, Pending>,
    next_task: u64,
    pub(crate) tasks: HashMap<TaskId, RunningTask>,
    /// Tasks we delegated that were accepted, by grant, awaiting answers.
    /// One per delegation command in flight.
    pub(crate) awaited: HashMap<mesh_delegation::LinkHash, Awaited>,
    /// Answers that overtook their task's acceptance (bounded by the
    /// delegations in flight: only those are answered).
    pub(crate) early_answers:
        HashMap<mesh_delegation::LinkHash, (crate::wire::TaskOutcome, crate::api::Recorded)>,
    /// Our answers to tasks that did not reach their delegator yet.
    pub(crate) answers_due: Vec<crate::conversation::Answer>,
    /// Whether delegated tasks are run at all ([`AgentConfig::runs_tasks`]).
    pub(crate) runs_tasks: bool,
    pub(crate) requests: RateLimiter<Did>,
    pub(crate) gossip_rate: RateLimiter<Did>,
    /// Hellos by initiator, kept across its connections (pruned on ticks
    /// once quiet), so reconnecting does not refill the bucket.
    pub(crate) hello_rate: RateLimiter<Did>,
    strikes: HashMap<Did, u32>,
    pub(crate) banned: HashMap<Did, Millis>,
    pub(crate) now: Now,
    /// When to aggregate and publish our report.
    pub(crate) reports: ReportSchedule,
    last_checkpoint: Millis,
    report_epoch: u64,
    report_sequence: u64,
    /// When the aggregation out with the driver ([`Effect::Aggregate`])
    /// was handed out, if one is.
    pub(crate) aggregating: Option<Millis>,
    /// What to do with it when it returns.
    pub(crate) on_return: AfterAggregation,
    out: Vec<Effect>,
}

/// Why an agent could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The trust parameters are inconsistent.
    #[error("trust: {0}")]
    Trust(#[from] ConfigError),
}

impl Agent {
    /// An agent from its configuration, at `now`.
    pub fn new(config: AgentConfig, now: Now) -> Result<Agent, SetupError> {
        let did = config.local.identity().did().clone();
        let mut trust = TrustEngine::new(did.clone(), config.trust)?;
        let own_org = config
            .local
            .card()
            .credential
            .verify_signature()
            .ok()
            .and_then(|c| config.bundle.policy_for(&c.org).cloned());
        let mut gate_config = GateConfig::new([did.clone()]);
        gate_config.spawn = config.spawn;
        gate_config.clock_skew_secs = config.handshake.max_skew_secs;
        // The witness resumes from what it cosigned before a restart.
        let witness = Witness::new(
            did.as_str(),
            config.local.identity().clone(),
            MemoryWitnessStore::from_held(config.witnessed),
        );
        if let Some(policy) = &own_org {
            trust.register_from_policy(did.clone(), policy);
        }
        let mut k = Knowledge::new(trust, Gate::new(gate_config), witness);
        if let Some(policy) = own_org {
            k.orgs.insert(did.clone(), policy);
        }
        // A spawned agent's own lineage, for the gate's checks of its spawns
        // and grants.
        let own = crate::lineage::own_certificates(&config.local.card().lineage);
        if !own.is_empty() {
            k.lineages
                .insert(did.clone(), own.iter().map(|c| c.hash()).collect());
        }
        for leaf in &config.recent_records {
            k.remember_record(*leaf);
        }
        let restored = config.restored;
        let limits = &config.settings.limits;
        let mut agent = Agent {
            requests: RateLimiter::new(limits.requests_per_sec, limits.request_burst),
            gossip_rate: RateLimiter::new(limits.gossip_per_sec, limits.gossip_burst),
            hello_rate: RateLimiter::new(limits.hellos_per_sec, limits.hello_burst),
            nonces: NonceCache::new(65_536, config.handshake.max_skew_secs),
            local: config.local,
            did,
            bundle: config.bundle,
            revoked_credentials: config.revoked_credentials,
            handshake: config.handshake,
            settings: config.settings,
            k,
            rng: ChaCha20Rng::from_seed(config.seed),
            peers: HashMap::new(),
            handshaking: HashMap::new(),
            sessions: HashMap::new(),
            log: config.log,
            own_note: config.latest_checkpoint,
            checkpointed: 0,
            next_request: 0,
            pending: HashMap::new(),
            next_task: 0,
            tasks: HashMap::new(),
            awaited: HashMap::new(),
            early_answers: HashMap::new(),
            answers_due: Vec::new(),
            runs_tasks: config.runs_tasks,
            strikes: HashMap::new(),
            banned: HashMap::new(),
            now,
            reports: ReportSchedule::new(now.mono),
            last_checkpoint: now.mono,
            report_epoch: now.wall.0,
            report_sequence: 0,
            aggregating: None,
            on_return: AfterAggregation::Install,
            out: Vec::new(),
        };
        agent.restore(restored);
        Ok(agent)
    }

    /// Feed one input at `now`; the effects to carry out, in order.
    pub fn handle(&mut self, input: Input, now: Now) -> Vec<Effect> {
        self.now = now;
        match input {
            Input::Connected { peer, dialer, ip } => self.connected(peer, dialer, ip),
            Input::Disconnected { peer } => self.disconnected(&peer),
            Input::Request { from, id, request } => match request {
                crate::io::Request::Iatp(r) => self.on_iatp_request(from, id, r),
                crate::io::Request::Action(r) => self.on_action_request(from, id, r),
            },
            Input::Response { from, id, response } => self.on_response(from, id, response),
            Input::RequestFailed { id, error } => self.on_request_failed(id, error),
            Input::Malformed { from, what, error } => self.strike(&from, what, &error),
            Input::Gossip {
                from,
                id,
                topic,
                author,
                data,
            } => self.on_gossip(from, id, topic, author, &data),
            Input::TaskDone { id, outcome } => self.on_task_done(id, outcome),
            Input::Command { op, command } => self.command(op, command),
            Input::Tick => self.tick(),
            Input::Aggregated(done) => self.aggregated(*done),
        }
        std::mem::take(&mut self.out)
    }

    fn command(&mut self, op: OpId, command: Command) {
        match command {
            Command::Record {
                counterparty,
                kind,
                payload,
            } => self.record_action(op, counterparty, kind, payload),
            Command::Grant { audience, options } => self.grant(op, audience, options),
            Command::Delegate {
                delegatee,
                task,
                options,
            } => self.delegate(op, delegatee, task, options),
            Command::Cancel { grant } => self.cancel(op, grant),
            Command::Spawn(options) => self.spawn(op, options),
            Command::Revoke { target, reason } => self.revoke(op, target, &reason),
            Command::FetchProof {
                agent,
                index,
                size,
                root,
            } => self.fetch_proof(op, agent, index, size, root),
            Command::Checkpoint { force } => {
                let note = self.checkpoint(force);
                self.done(op, Ok(Outcome::Checkpoint(note)));
            }
            Command::PublishReport => {
                self.refresh_in_place();
                self.publish_report();
                self.done(op, Ok(Outcome::Done));
            }
            Command::RecordEvidence(evidence) => {
                self.record(evidence);
                self.done(op, Ok(Outcome::Done));
            }
            Command::RefreshTrust => {
                self.refresh_in_place();
                self.done(op, Ok(Outcome::Done));
            }
            Command::SetRevokedCredentials(revoked) => {
                self.set_revoked_credentials(revoked);
                self.done(op, Ok(Outcome::Done));
            }
            Command::PublishRaw { topic, data } => {
                self.emit(Effect::Publish { topic, data });
                self.done(op, Ok(Outcome::Done));
            }
        }
    }

    /// Periodic work: ban expiry, trust reports, checkpoints.
    fn tick(&mut self) {
        let mono = self.now.mono;
        self.hello_rate.prune(mono);
        // Revocations of links that have expired protect nothing any more.
        let skew = self.handshake.max_skew_secs;
        self.k.revocations.prune(self.now.wall, skew);
        let mut expired: Vec<Did> = self
            .banned
            .iter()
            .filter(|(_, until)| **until <= mono)
            .map(|(d, _)| d.clone())
            .collect();
        expired.sort();
        for peer in expired {
            self.banned.remove(&peer);
            self.emit(Effect::Unban { peer });
        }
        let due = self.reports.tick(
            mono,
            self.settings.report_interval,
            self.settings.report_refresh,
        );
        if due.aggregate {
            self.aggregate();
        }
        if due.publish {
            self.publish_report();
        }
        if mono.since(self.last_checkpoint) >= self.settings.checkpoint_interval {
            self.last_checkpoint = mono;
            self.checkpoint(false);
        }
        self.tend_handshakes();
        self.tend_tasks();
    }

    /// Publish our signed report (our direct opinions: it does not wait
    /// for an aggregation).
    fn publish_report(&mut self) {
        self.reports.published(self.now.mono);
        let now = self.now.wall;
        self.report_sequence += 1;
        // Signing our own report fails only with a broken encoder: then
        // there is nothing to publish.
        if let Ok(data) = self.k.trust.make_report(
            self.local.identity(),
            self.report_epoch,
            self.report_sequence,
            now,
        ) {
            self.emit(Effect::Publish {
                topic: crate::topic::Topic::Trust,
                data,
            });
            self.event(Event::ReportPublished {
                sequence: self.report_sequence,
            });
        }
    }

    /// Record evidence; a significant score change schedules a report.
    pub(crate) fn record(&mut self, evidence: Evidence) {
        let now = self.now.wall;
        let subject = evidence.subject.clone();
        let before = self.k.trust.score(&subject, now).get();
        self.emit(Effect::Persist(Fact::Evidence((&evidence).into())));
        self.k.trust.record(evidence);
        let after = self.k.trust.score(&subject, now).get();
        self.reports
            .evidence(before.abs_diff(after) >= self.settings.significant_change);
    }

    /// Record evidence of `kind` about `subject` now.
    pub(crate) fn observe(&mut self, subject: Did, kind: EvidenceKind) {
        let evidence = Evidence::new(subject, kind, self.now.wall);
        self.record(evidence);
    }

    /// A peer sent something refused: count it, record it, and past the
    /// limit disconnect and ban it.
    pub(crate) fn strike(&mut self, peer: &Did, _what: &str, _why: &str) {
        if !self.strikes.contains_key(peer) && self.strikes.len() >= MAX_STRIKERS {
            // Forget the least-struck peer to make room.
            if let Some(least) = self
                .strikes
                .iter()
                .min_by(|a, b| a.1.cmp(b.1).then_with(|| a.0.cmp(b.0)))
                .map(|(d, _)| d.clone())
            {
                self.strikes.remove(&least);
            }
        }
        let strikes = {
            let s = self.strikes.entry(peer.clone()).or_insert(0);
            *s += 1;
            *s
        };
        let banned = strikes >= self.settings.limits.strikes_before_ban;
        self.emit(Effect::Persist(Fact::Strikes {
            peer: peer.clone(),
            count: if banned { 0 } else { strikes },
        }));
        if self.sessions.contains_key(peer) {
            self.observe(peer.clone(), EvidenceKind::RateLimitExceeded);
        }
        if strikes == 1 || strikes % 10 == 0 || banned {
            self.event(Event::Throttled {
                peer: peer.clone(),
                strikes,
                banned,
            });
        }
        if banned {
            self.strikes.remove(peer);
            let until = self.now.mono.plus(self.settings.limits.ban);
            self.banned.insert(peer.clone(), until);
            self.emit(Effect::Persist(Fact::Ban {
                peer: peer.clone(),
                until: self.now.wall.plus_secs(self.settings.limits.ban.as_secs()),
            }));
            self.emit(Effect::Ban {
                peer: peer.clone(),
                until,
            });
            self.emit(Effect::Disconnect {
                peer: peer.clone(),
                after: Duration::ZERO,
            });
        }
    }

    /// Strikes held against `peer` before a restart.
    pub(crate) fn restore_strikes(&mut self, peer: Did, count: u32) {
        if count == 0 {
            self.strikes.remove(&peer);
        } else if self.strikes.len() < MAX_STRIKERS || self.strikes.contains_key(&peer) {
            self.strikes.insert(peer, count);
        }
    }

    pub(crate) fn emit(&mut self, effect: Effect) {
        self.out.push(effect);
    }

    pub(crate) fn event(&mut self, event: Event) {
        self.out.push(Effect::Event(event));
    }

    pub(crate) fn done(&mut self, op: OpId, result: Result<Outcome, crate::AgentError>) {
        self.out.push(Effect::Done { op, result });
    }

    pub(crate) fn next_request_id(&mut self) -> RequestId {
        self.next_request += 1;
        RequestId(self.next_request)
    }

    pub(crate) fn next_task_id(&mut self) -> TaskId {
        self.next_task += 1;
        TaskId(self.next_task)
    }

    // Reads: what the embedder and its dashboard may look at.

    /// This agent.
    pub fn did(&self) -> &Did {
        &self.did
    }

    /// Who we are (identity and card).
    pub fn local(&self) -> &LocalAgent {
        &self.local
    }

    /// The orgs we accept.
    pub fn bundle(&self) -> &TrustBundle {
        &self.bundle
    }

    /// The handshake tunables.
    pub fn handshake_config(&self) -> &HandshakeConfig {
        &self.handshake
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The time of the last input.
    pub fn now(&self) -> Now {
        self.now
    }

    /// Peers whose handshake completed on both sides (usable sessions).
    pub fn sessions(&self) -> impl Iterator<Item = &Session> {
        self.sessions.values().filter(|s| self.usable(&s.remote))
    }

    /// The usable session with `peer`, if any.
    pub fn session(&self, peer: &Did) -> Option<&Session> {
        self.sessions.get(peer).filter(|_| self.usable(peer))
    }

    /// Whether `peer` has work with us in flight: a request of ours
    /// awaiting its answer, a task it delegated running here, or a task we
    /// delegated to it not yet answered. Closing such a session would cut
    /// the work off, so a shell trimming its sessions keeps it.
    pub fn busy_with(&self, peer: &Did) -> bool {
        self.pending.values().any(|p| p.peer() == peer)
            || self.tasks.values().any(|t| &t.delegator == peer)
            || self.awaited.values().any(|a| &a.delegatee == peer)
    }

    /// Whether we may send `peer` requests: both sides hold the session
    /// (an initiator holds it from the Response, so it can already serve
    /// the responder, but waits for `Accepted` before asking anything).
    pub(crate) fn usable(&self, peer: &Did) -> bool {
        matches!(self.peers.get(peer), Some(Phase::Established)) && self.sessions.contains_key(peer)
    }

    /// Our trust in `agent` at wall time `at`.
    pub fn trust_of(&self, agent: &Did, at: Timestamp) -> Score {
        self.k.trust.score(agent, at)
    }

    /// Its tier.
    pub fn tier_of(&self, agent: &Did, at: Timestamp) -> Tier {
        self.k.trust.tier(agent, at)
    }

    /// Everything behind our score for `agent`.
    pub fn explain(&self, agent: &Did, at: Timestamp) -> Explanation {
        self.k.trust.explain(agent, at)
    }

    /// The trust engine (read-only).
    pub fn trust(&self) -> &TrustEngine {
        &self.k.trust
    }

    /// Whether a link is revoked as far as we know.
    pub fn is_revoked(&self, link: &mesh_delegation::LinkHash) -> bool {
        self.k.revocations.is_revoked(link)
    }

    /// The revocations we know.
    pub fn revocations(&self) -> &mesh_delegation::RevocationSet {
        &self.k.revocations
    }

    /// Links we issued.
    pub fn issued(&self) -> &HashMap<mesh_delegation::LinkHash, crate::knowledge::Issued> {
        &self.k.issued
    }

    /// Grant chains given to us, by the hash of their last link.
    pub fn held(&self) -> &HashMap<mesh_delegation::LinkHash, Vec<mesh_delegation::SignedGrant>> {
        &self.k.held
    }

    /// Our log's size as emitted (appends the driver may still be
    /// committing included).
    pub fn log_size(&self) -> u64 {
        self.log.size()
    }

    /// Our log's root at [`Agent::log_size`].
    pub fn log_root(&self) -> Hash {
        self.log.root()
    }

    /// The logs whose checkpoint notes this agent keeps (to prove a fork).
    pub fn noted_logs(&self) -> usize {
        self.k.seen_notes.len()
    }

    /// The lineage (certificate hashes) of a spawned agent met here.
    pub fn lineage_of(&self, agent: &Did) -> &[mesh_delegation::LinkHash] {
        self.k.lineages.get(agent).map_or(&[], Vec::as_slice)
    }

    /// The equivocation proof held against `offender`, if any.
    pub fn equivocation_proof(&self, offender: &Did) -> Option<&[u8]> {
        self.k.proofs.get(offender).map(Vec::as_slice)
    }

    /// Whether `peer` is banned now.
    pub fn is_banned(&self, peer: &Did) -> bool {
        self.banned.get(peer).is_some_and(|u| *u > self.now.mono)
    }
}
