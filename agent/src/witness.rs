//! Checkpoints, both sides. As a log owner the agent signs checkpoints of
//! its log, gossips them and merges the cosignatures witnesses return. As a
//! witness it follows the logs of agents it holds sessions with: asks for a
//! consistency proof from the size it last cosigned, checks it, persists
//! what it vouches for, then cosigns. Two signed checkpoints of one size
//! with different roots are an equivocation: the proof is gossiped and the
//! offender's trust goes to the floor.

use mesh_iatp::Did;
use mesh_ledger::checkpoint::{
    Checkpoint, log_verifier, open_checkpoint, verify_cosignature, witness_verifier,
};
use mesh_ledger::equivocation::{self, EquivocationProof};
use mesh_ledger::note::Note;
use mesh_ledger::witness::WitnessError;
use mesh_trust::{Evidence, EvidenceKind, Proof};
use serde_bytes::ByteBuf;

use crate::agent::Agent;
use crate::commands::proof_hashes;
use crate::conversation::{Pending, Witnessing};
use crate::io::{Effect, Event, Request, Verdict};
use crate::topic::Topic;
use crate::wire::{ActionRefusal, ActionRequest, ActionResponse};

/// Open a gossiped checkpoint: its origin is an agent's DID, whose key
/// must have signed it.
pub fn open_log_checkpoint(note: &[u8]) -> Result<(Did, Checkpoint), String> {
    let parsed = Note::parse(note).map_err(|e| e.to_string())?;
    let claimed = Checkpoint::parse_body(&parsed.text).map_err(|e| e.to_string())?;
    let origin =
        Did::parse(&claimed.origin).map_err(|e| format!("origin is not an agent's DID: {e}"))?;
    let verifier = log_verifier(&claimed.origin, origin.clone()).map_err(|e| e.to_string())?;
    let (cp, _) = open_checkpoint(note, &verifier).map_err(|e| e.to_string())?;
    Ok((origin, cp))
}

/// Verify a gossiped equivocation proof; the offender.
pub fn verify_equivocation(bytes: &[u8]) -> Result<Did, String> {
    let proof = EquivocationProof::from_bytes(bytes).map_err(|e| e.to_string())?;
    let first = match &proof {
        EquivocationProof::SameSize { first, .. }
        | EquivocationProof::DivergentLeaf { first, .. } => first,
    };
    let (offender, _) = open_log_checkpoint(first)?;
    let verifier = log_verifier(offender.as_str(), offender.clone()).map_err(|e| e.to_string())?;
    proof.verify(&verifier).map_err(|e| e.to_string())?;
    Ok(offender)
}

impl Agent {
    /// Sign a checkpoint of our log if it grew (or `force`), store and
    /// gossip it; the note.
    pub(crate) fn checkpoint(&mut self, force: bool) -> Option<Vec<u8>> {
        let size = self.log.size();
        if size == self.checkpointed && !force {
            return None;
        }
        let note = Checkpoint {
            origin: self.did.as_str().to_string(),
            size,
            root: self.log.root(),
        }
        .sign(self.local.identity())
        .ok()?
        .to_bytes();
        self.checkpointed = size;
        self.own_note = Some(note.clone());
        self.emit(Effect::StoreCheckpoint { note: note.clone() });
        self.emit(Effect::Publish {
            topic: Topic::Checkpoint,
            data: note.clone(),
        });
        self.event(Event::CheckpointSigned { size });
        Some(note)
    }

    /// A witness returns our checkpoint with its cosignature line.
    pub(crate) fn accept_cosignature(
        &mut self,
        witness: &Did,
        note: &[u8],
    ) -> Result<(), ActionRefusal> {
        let parsed = Note::parse(note).map_err(|e| ActionRefusal::MalformedNote(e.to_string()))?;
        let verifier = witness_verifier(witness.as_str(), witness.clone())
            .map_err(|e| ActionRefusal::MalformedNote(e.to_string()))?;
        verify_cosignature(&parsed, &verifier)
            .map_err(|e| ActionRefusal::BadCosignature(e.to_string()))?;
        let ours = self
            .own_note
            .as_deref()
            .and_then(|n| Note::parse(n).ok())
            .ok_or_else(|| ActionRefusal::NotOurCheckpoint("we hold no checkpoint".into()))?;
        if ours.text != parsed.text {
            return Err(ActionRefusal::NotOurCheckpoint(
                "the cosigned note's text is not our latest checkpoint".into(),
            ));
        }
        let size = Checkpoint::parse_body(&parsed.text)
            .map_err(|e| ActionRefusal::MalformedNote(e.to_string()))?
            .size;
        // Keep only this witness's line: our own signature is held.
        let mut merged = ours;
        for line in parsed.lines_for(&verifier) {
            if !merged.signatures.contains(line) {
                merged.signatures.push(line.clone());
            }
        }
        let bytes = merged.to_bytes();
        self.own_note = Some(bytes.clone());
        self.emit(Effect::StoreCheckpoint { note: bytes });
        self.event(Event::Cosigned {
            witness: witness.clone(),
            size,
        });
        Ok(())
    }

    /// A verified checkpoint from gossip: equivocation check, then witness
    /// it if we hold a session with its origin.
    pub(crate) fn on_checkpoint(&mut self, origin: Did, cp: Checkpoint, note: &[u8]) -> Verdict {
        // Notes are kept only for logs we follow: our own, those of agents
        // we hold a session with, and those we witness. Anyone can sign a
        // checkpoint of a log of a fresh key; a valid one is still passed
        // on, but keeping it would let a member fill our memory.
        let followed = origin == self.did
            || self.sessions.contains_key(&origin)
            || self.k.witness.held(&cp.origin).ok().flatten().is_some();
        if !followed {
            return Verdict::Accept;
        }
        if let Some(earlier) = self.k.see_note(&cp.origin, cp.size, cp.root, note) {
            // Two signed checkpoints of one size, different roots.
            let proof = log_verifier(&cp.origin, origin.clone())
                .ok()
                .and_then(|v| EquivocationProof::same_size(&earlier, note, &v).ok())
                .and_then(|p| p.to_bytes().ok());
            if let Some(proof) = proof {
                self.punish_equivocation(&origin, proof, true);
                return Verdict::Accept;
            }
        }
        if origin == self.did || !self.usable(&origin) {
            return if origin == self.did {
                Verdict::Ignore
            } else {
                Verdict::Accept
            };
        }
        if let Ok(v) = log_verifier(&cp.origin, origin.clone()) {
            self.k.witness.follow(v);
        }
        let held = self.k.witness.held(&cp.origin).ok().flatten();
        let old = held.map_or(0, |(size, _)| size);
        if let Some(held) = held
            && cp.size < held.0
        {
            self.check_prefix(origin, cp, note, held);
            return Verdict::Accept;
        }
        let in_flight = self.pending.values().any(|p| {
            matches!(p, Pending::Consistency(w) if w.cp.origin == cp.origin && w.cp.size >= cp.size)
        });
        if cp.size > old && !in_flight {
            let id = self.next_request_id();
            let new = cp.size;
            self.pending.insert(
                id,
                Pending::Consistency(Box::new(Witnessing {
                    peer: origin.clone(),
                    cp,
                    note: note.to_vec(),
                    old,
                })),
            );
            self.emit(Effect::Send {
                to: origin,
                id,
                request: Request::Action(ActionRequest::Consistency { old, new }),
            });
        }
        Verdict::Accept
    }

    /// The owner's consistency proof: check, persist, cosign.
    pub(crate) fn on_consistency(&mut self, w: Witnessing, response: ActionResponse) {
        let proof = match response {
            ActionResponse::Proof { hashes } => match proof_hashes(&hashes) {
                Ok(p) => p,
                Err(e) => return self.violation(&w.peer, e),
            },
            // A refused proof: the owner signed a checkpoint it will not
            // show grew consistently from what we witnessed — evidence
            // against it, unless the refusal is about us (no session,
            // our rate), which a later checkpoint retries.
            ActionResponse::Refused { rule, reason, .. } => {
                let why = format!("no consistency proof ({rule}): {reason}");
                if crate::refusal::about_the_asker(&rule) {
                    return self.event(Event::Rejected {
                        peer: w.peer,
                        what: "checkpoint",
                        reason: why,
                    });
                }
                self.violation(&w.peer, why);
                return self.seek_divergence(w.peer, w.cp, w.note);
            }
            _ => return self.violation(&w.peer, "an answer that is not a proof".into()),
        };
        let line = self
            .k
            .witness
            .add_checkpoint(w.old, &proof, &w.note, self.now.wall);
        let line = match line {
            Ok(line) => line,
            Err(
                WitnessError::InconsistentProof { .. }
                | WitnessError::RootMismatchAtSameSize { .. },
            ) => {
                self.violation(
                    &w.peer,
                    "its checkpoint is not consistent with what we witnessed".into(),
                );
                return self.seek_divergence(w.peer, w.cp, w.note);
            }
            // Stale (a newer one was cosigned meanwhile) or not followed.
            Err(_) => return,
        };
        // Persist before the cosignature leaves: a restarted witness must
        // not cosign a fork of what it already vouched for.
        self.emit(Effect::SaveWitnessed {
            origin: w.cp.origin.clone(),
            size: w.cp.size,
            root: w.cp.root,
        });
        let Ok(mut cosigned) = Note::parse(&w.note) else {
            return;
        };
        self.fetch_anchor(w.peer.clone(), &w.cp, w.note.clone());
        cosigned.signatures = vec![line];
        let id = self.next_request_id();
        self.pending.insert(
            id,
            Pending::Cosignature {
                to: w.peer.clone(),
                origin: w.cp.origin,
                size: w.cp.size,
            },
        );
        self.emit(Effect::Send {
            to: w.peer,
            id,
            request: Request::Action(ActionRequest::Cosignature {
                note: ByteBuf::from(cosigned.to_bytes()),
            }),
        });
    }

    pub(crate) fn violation(&mut self, who: &Did, reason: String) {
        self.observe(who.clone(), EvidenceKind::ProtocolViolation);
        self.event(Event::Rejected {
            peer: who.clone(),
            what: "checkpoint",
            reason,
        });
    }

    /// A proven equivocation: the offender's trust goes to the floor here,
    /// and the proof is gossiped if we found it.
    pub(crate) fn punish_equivocation(&mut self, offender: &Did, proof: Vec<u8>, found_here: bool) {
        if self
            .k
            .trust
            .explain(offender, self.now.wall)
            .severe
            .is_some()
        {
            return;
        }
        self.record(
            Evidence::new(
                offender.clone(),
                EvidenceKind::LedgerEquivocation,
                self.now.wall,
            )
            .with_proof(Proof {
                kind: equivocation::PROOF_KIND.into(),
                bytes: proof.clone(),
            }),
        );
        self.k.keep_proof(offender.clone(), proof.clone());
        self.event(Event::Equivocation {
            offender: offender.clone(),
        });
        if found_here {
            self.emit(Effect::Publish {
                topic: Topic::Equivocation,
                data: proof,
            });
        }
    }
}
