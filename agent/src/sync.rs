//! Anti-entropy, both sides. Gossip is fire-and-forget: an agent offline
//! during a revocation never hears of it, and a record co-signed just
//! before a connection dropped may stand in one party's log only. So when
//! a session is established, each side sends a digest of what it holds —
//! revoked links, offenders it holds equivocation proofs against, the
//! latest records it shares with the other, its latest checkpoint — and the
//! other answers with what the first lacks, within a byte budget; the
//! first asks again while more remains (a bounded number of rounds).
//! Everything received is verified as if it came by gossip.

use std::collections::BTreeSet;

use mesh_iatp::Did;
use mesh_ledger::record::CoSignedRecord;
use serde_bytes::ByteBuf;

use crate::agent::Agent;
use crate::conversation::Pending;
use crate::io::{Effect, InboundId, Request, Response};
use crate::wire::{
    ActionRefusal, ActionRequest, ActionResponse, MAX_SYNC_DIGEST, MAX_SYNC_RECORDS,
    SYNC_ITEMS_BUDGET, SyncDigest, SyncItems,
};

/// Most Sync rounds per session (each round answers up to the budget).
pub const MAX_SYNC_ROUNDS: u32 = 8;

impl Agent {
    /// Send `peer` our digest (a session was just established, or the last
    /// answer said there is more).
    pub(crate) fn start_sync(&mut self, peer: Did, round: u32) {
        if round >= MAX_SYNC_ROUNDS || !self.usable(&peer) {
            return;
        }
        let digest = SyncDigest {
            revocations: self
                .k
                .revocations
                .targets()
                .into_iter()
                .rev()
                .take(MAX_SYNC_DIGEST)
                .map(|h| ByteBuf::from(h.to_vec()))
                .collect(),
            offenders: self
                .k
                .proofs
                .keys()
                .take(MAX_SYNC_DIGEST)
                .cloned()
                .collect(),
            records: self
                .k
                .shared
                .get(&peer)
                .map(|w| {
                    w.iter()
                        .map(|r| ByteBuf::from(r.leaf_hash().to_vec()))
                        .collect()
                })
                .unwrap_or_default(),
            checkpoint: self.own_note.clone().map(ByteBuf::from),
        };
        let id = self.next_request_id();
        self.pending.insert(
            id,
            Pending::Sync {
                to: peer.clone(),
                round,
            },
        );
        self.emit(Effect::Send {
            to: peer,
            id,
            request: Request::Action(ActionRequest::Sync(digest)),
        });
    }

    /// A peer's digest: answer with what it lacks; witness its checkpoint.
    pub(crate) fn answer_sync(
        &mut self,
        peer: &Did,
        id: InboundId,
        digest: SyncDigest,
    ) -> Result<(), ActionRefusal> {
        if digest.revocations.len() > MAX_SYNC_DIGEST
            || digest.offenders.len() > MAX_SYNC_DIGEST
            || digest.records.len() > MAX_SYNC_RECORDS
        {
            return Err(ActionRefusal::TooLarge {
                what: "sync digest",
                limit: MAX_SYNC_DIGEST,
            });
        }
        let theirs: BTreeSet<&[u8]> = digest.revocations.iter().map(|b| b.as_slice()).collect();
        let offenders: BTreeSet<&Did> = digest.offenders.iter().collect();
        let records: BTreeSet<&[u8]> = digest.records.iter().map(|b| b.as_slice()).collect();
        let mut items = SyncItems {
            revocations: Vec::new(),
            proofs: Vec::new(),
            records: Vec::new(),
            more: false,
        };
        let mut budget = SYNC_ITEMS_BUDGET;
        let mut take = |bytes: &[u8], into: &mut Vec<ByteBuf>, more: &mut bool| {
            if bytes.len() > budget {
                *more = true;
                return;
            }
            budget -= bytes.len();
            into.push(ByteBuf::from(bytes.to_vec()));
        };
        for target in self.k.revocations.targets() {
            if !theirs.contains(target.as_slice())
                && let Some(bytes) = self.k.revocations.signed_for(&target)
            {
                take(bytes, &mut items.revocations, &mut items.more);
            }
        }
        for (offender, proof) in &self.k.proofs {
            if !offenders.contains(offender) {
                take(proof, &mut items.proofs, &mut items.more);
            }
        }
        if let Some(window) = self.k.shared.get(peer) {
            for r in window {
                if !records.contains(r.leaf_hash().as_slice()) {
                    take(r.bytes(), &mut items.records, &mut items.more);
                }
            }
        }
        self.emit(Effect::Respond {
            to: peer.clone(),
            id,
            response: Response::Action(ActionResponse::Synced(items)),
        });
        // Its checkpoint: witnessed as if gossiped.
        if let Some(note) = digest.checkpoint
            && let Ok((origin, cp)) = crate::witness::open_log_checkpoint(&note)
            && &origin == peer
        {
            self.on_checkpoint(origin, cp, &note);
        }
        Ok(())
    }

    /// The answer to our digest: take in what we lacked.
    pub(crate) fn on_synced(&mut self, peer: Did, round: u32, response: ActionResponse) {
        let ActionResponse::Synced(items) = response else {
            return; // refused (e.g. rate-limited): gossip goes on
        };
        for bytes in &items.revocations {
            match mesh_delegation::verify_revocation(bytes) {
                Ok(v) => {
                    self.learn_revocation(v);
                }
                Err(e) => return self.sync_violation(&peer, format!("revocation: {e}")),
            }
        }
        for proof in &items.proofs {
            match crate::witness::verify_equivocation(proof) {
                Ok(offender) => self.punish_equivocation(&offender, proof.to_vec(), false),
                Err(e) => return self.sync_violation(&peer, format!("equivocation proof: {e}")),
            }
        }
        for bytes in &items.records {
            match CoSignedRecord::from_bytes(bytes) {
                Ok(co) => self.take_missing_record(&peer, co),
                Err(e) => return self.sync_violation(&peer, format!("record: {e}")),
            }
        }
        if items.more {
            self.start_sync(peer, round + 1);
        }
    }

    /// A co-signed record `peer` holds and we lack: ours too if we are the
    /// other party and have not appended it.
    fn take_missing_record(&mut self, peer: &Did, co: CoSignedRecord) {
        let r = co.record();
        let ours = (r.actor == self.did && &r.counterparty == peer)
            || (&r.actor == peer && r.counterparty == self.did);
        if !ours {
            return self.sync_violation(peer, "a record we are not a party to".into());
        }
        if self.k.knows_record(&co.leaf_hash()) {
            return;
        }
        // Our request for its countersignature is still out (the sync
        // overtook the answer): the answer appends it, once.
        let asked = self.pending.values().any(|p| {
            matches!(p, crate::conversation::Pending::CoSign { record, .. } if record.record() == r)
        });
        if asked {
            return;
        }
        self.append(co);
    }

    fn sync_violation(&mut self, peer: &Did, reason: String) {
        self.observe(peer.clone(), mesh_trust::EvidenceKind::ProtocolViolation);
        self.event(crate::Event::Rejected {
            peer: peer.clone(),
            what: "sync",
            reason,
        });
    }
}
