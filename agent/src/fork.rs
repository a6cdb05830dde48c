//! Forks at any size (LEDGER.md §5.1). A witness checks every checkpoint of
//! a log it follows against the one it last cosigned: a larger one by the
//! consistency proof it needs before cosigning (witness.rs), a smaller one
//! by a proof that it is a prefix of the cosigned one. Consistency with the
//! last cosigned checkpoint is consistency with every earlier one, since
//! each was cosigned only after the same check.
//!
//! A failed check is evidence against the owner here, but proves nothing
//! to anyone else. For a proof others can check, after each cosignature the
//! witness keeps an *anchor*: the cosigned note and the inclusion proof of
//! its last leaf. When a later checkpoint fails a check and the owner
//! proves a different leaf at that index under the new root, the two
//! inclusion proofs under two signed roots are a divergent-leaf proof: the
//! owner is zeroed and the proof gossiped like any equivocation.

use mesh_iatp::Did;
use mesh_ledger::checkpoint::{Checkpoint, log_verifier};
use mesh_ledger::equivocation::EquivocationProof;
use mesh_ledger::merkle::{Hash, verify_consistency};
use serde_bytes::ByteArray;

use crate::agent::Agent;
use crate::commands::proof_hashes;
use crate::conversation::{Pending, PrefixCheck};
use crate::io::{Effect, Event, Request};
use crate::knowledge::Anchor;
use crate::wire::{ActionRequest, ActionResponse};

/// An `Included` answer from `peer`: the record's leaf hash and the proof,
/// if it verifies under `root` ([`crate::commands::included`]).
fn included(
    peer: &Did,
    response: ActionResponse,
    index: u64,
    size: u64,
    root: Hash,
) -> Result<(Hash, Vec<Hash>), String> {
    let ActionResponse::Included { record, hashes } = response else {
        return Err("an answer that is not an inclusion proof".into());
    };
    crate::commands::included(peer, index, size, root, &record, &hashes)
        .map(|p| (p.record.leaf_hash(), p.hashes))
        .map_err(|e| format!("an inclusion proof of its own checkpoint: {e}"))
}

impl Agent {
    /// Ask the owner to prove a checkpoint smaller than the cosigned one is
    /// its prefix (one check in flight per log).
    pub(crate) fn check_prefix(
        &mut self,
        peer: Did,
        cp: Checkpoint,
        note: &[u8],
        held: (u64, Hash),
    ) {
        let in_flight = self
            .pending
            .values()
            .any(|p| matches!(p, Pending::Prefix(c) if c.cp.origin == cp.origin));
        if in_flight || cp.size == 0 || cp.size >= held.0 {
            return;
        }
        let id = self.next_request_id();
        let request = ActionRequest::Consistency {
            old: cp.size,
            new: held.0,
        };
        self.pending.insert(
            id,
            Pending::Prefix(Box::new(PrefixCheck {
                peer: peer.clone(),
                cp,
                note: note.to_vec(),
                held,
            })),
        );
        self.emit(Effect::Send {
            to: peer,
            id,
            request: Request::Action(request),
        });
    }

    /// The owner's answer to a prefix check.
    pub(crate) fn on_prefix(&mut self, c: PrefixCheck, response: ActionResponse) {
        let failed = match response {
            ActionResponse::Proof { hashes } => match proof_hashes(&hashes) {
                Ok(proof) => verify_consistency(c.cp.size, c.held.0, &proof, &c.cp.root, &c.held.1)
                    .err()
                    .map(|e| {
                        format!(
                            "its size-{} checkpoint is not a prefix of the size-{} one we cosigned: {e}",
                            c.cp.size, c.held.0
                        )
                    }),
                Err(e) => Some(e),
            },
            ActionResponse::Refused { rule, reason, .. } if crate::refusal::about_the_asker(&rule) => {
                return self.event(Event::Rejected {
                    peer: c.peer,
                    what: "checkpoint",
                    reason: format!("no prefix proof ({rule}): {reason}"),
                });
            }
            ActionResponse::Refused { rule, reason, .. } => Some(format!(
                "no proof that its size-{} checkpoint is a prefix of what we cosigned ({rule}): {reason}",
                c.cp.size
            )),
            _ => Some("an answer that is not a proof".into()),
        };
        if let Some(reason) = failed {
            self.violation(&c.peer, reason);
            self.seek_divergence(c.peer, c.cp, c.note);
        }
    }

    /// After a cosignature: fetch the inclusion proof of the checkpoint's
    /// last leaf, the anchor a later fork is proven against.
    pub(crate) fn fetch_anchor(&mut self, peer: Did, cp: &Checkpoint, note: Vec<u8>) {
        if cp.size == 0 {
            return;
        }
        let id = self.next_request_id();
        let (index, size) = (cp.size - 1, cp.size);
        self.pending.insert(
            id,
            Pending::Anchor {
                to: peer.clone(),
                cp: Box::new(cp.clone()),
                note,
            },
        );
        self.emit(Effect::Send {
            to: peer,
            id,
            request: Request::Action(ActionRequest::Inclusion { index, size }),
        });
    }

    /// The anchor's inclusion proof (of `cp`'s last leaf).
    pub(crate) fn on_anchor(
        &mut self,
        peer: &Did,
        cp: Checkpoint,
        note: Vec<u8>,
        response: ActionResponse,
    ) {
        if let ActionResponse::Refused { rule, .. } = &response
            && crate::refusal::about_the_asker(rule)
        {
            return;
        }
        let size = cp.size;
        match included(peer, response, size - 1, size, cp.root) {
            Ok((leaf, proof)) => self.k.keep_anchor(
                cp.origin,
                Anchor {
                    note,
                    size,
                    index: size - 1,
                    leaf,
                    proof,
                },
            ),
            Err(reason) => self.violation(peer, reason),
        }
    }

    /// A check of `cp` failed: ask the owner for the anchor's leaf under
    /// `cp`'s root; a different leaf there is a proof of the fork.
    pub(crate) fn seek_divergence(&mut self, peer: Did, cp: Checkpoint, note: Vec<u8>) {
        let Some(anchor) = self.k.anchors.get(&cp.origin) else {
            return;
        };
        if anchor.index >= cp.size || anchor.note == note {
            return;
        }
        let (index, size) = (anchor.index, cp.size);
        let id = self.next_request_id();
        self.pending.insert(
            id,
            Pending::Divergence {
                to: peer.clone(),
                cp: Box::new(cp),
                note,
            },
        );
        self.emit(Effect::Send {
            to: peer,
            id,
            request: Request::Action(ActionRequest::Inclusion { index, size }),
        });
    }

    /// The owner's leaf at the anchor's index under a failed checkpoint.
    pub(crate) fn on_divergence(
        &mut self,
        peer: &Did,
        cp: Checkpoint,
        note: Vec<u8>,
        response: ActionResponse,
    ) {
        let Some(anchor) = self.k.anchors.get(&cp.origin).cloned() else {
            return;
        };
        let (leaf, proof) = match included(peer, response, anchor.index, cp.size, cp.root) {
            Ok(found) => found,
            // Already counted against it when the check failed.
            Err(_) => return,
        };
        if leaf == anchor.leaf {
            return;
        }
        let bytes = |p: &[Hash]| p.iter().map(|h| ByteArray::new(*h)).collect::<Vec<_>>();
        let proof = EquivocationProof::DivergentLeaf {
            first: anchor.note.clone(),
            second: note,
            index: anchor.index,
            first_leaf: anchor.leaf,
            first_proof: bytes(&anchor.proof),
            second_leaf: leaf,
            second_proof: bytes(&proof),
        };
        let checked = log_verifier(&cp.origin, peer.clone())
            .ok()
            .and_then(|v| proof.verify(&v).ok())
            .and_then(|_| proof.to_bytes().ok());
        if let Some(proof) = checked {
            self.punish_equivocation(peer, proof, true);
        }
    }
}
