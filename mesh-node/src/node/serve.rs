//! Answering action requests (the counterparty's side of every co-signed
//! record), witnessing peers' checkpoints, and checkpointing our own log.

use mesh_delegation::{Decision, Request, SignedGrant, verify_revocation};
use mesh_iatp::{CapabilityPattern, Did};
use mesh_ledger::checkpoint::{Checkpoint, log_verifier, verify_cosignature, witness_verifier};
use mesh_ledger::merkle::Hash;
use mesh_ledger::note::Note;
use mesh_ledger::record::{ActionKind, ActionRecord, ActorSigned};
use mesh_ledger::witness::WitnessError;
use mesh_trust::{Evidence, EvidenceKind};
use serde_bytes::ByteBuf;
use sha2::{Digest, Sha256};

use super::gossip::Topic;
use super::protocol::{
    ActionContext, ActionRequest, ActionResponse, MAX_PAYLOAD, MAX_PROOF_HASHES, Task, TaskOutcome,
};
use super::state::GateView;
use super::swarm::Shared;
use super::{NodeError, NodeEvent, digest_of};

/// A refusal: rule and reason.
type Refusal = (&'static str, String);

fn refusal(rule: &'static str, reason: impl Into<String>) -> Refusal {
    (rule, reason.into())
}

/// Answer one action request from the authenticated agent `remote`.
pub async fn serve(shared: &Shared, remote: Did, request: ActionRequest) -> ActionResponse {
    let result = match request {
        ActionRequest::CoSign { record, context } => {
            cosign(shared, &remote, &record, context).await
        }
        ActionRequest::Consistency { old, new } => consistency(shared, old, new).await,
        ActionRequest::Inclusion { index, size } => inclusion(shared, index, size).await,
        ActionRequest::Cosignature { note } => cosignature(shared, &remote, &note).await,
    };
    result.unwrap_or_else(|(rule, reason)| {
        tracing::info!(peer = %remote, rule, %reason, "action request refused");
        ActionResponse::refused(rule, reason)
    })
}

/// The checks the counterparty makes on the leaf grant of a chain handed
/// to it: it names this record's grant, was issued by the actor, to us.
fn check_leaf(
    chain: &[SignedGrant],
    record: &ActionRecord,
    local: &Did,
) -> Result<[u8; 32], Refusal> {
    let leaf = chain
        .last()
        .ok_or_else(|| refusal("bad_chain", "the grant chain is empty"))?;
    let hash = leaf.hash();
    if record.grant != Some(hash) {
        return Err(refusal(
            "context_mismatch",
            "the record does not name the chain's last grant",
        ));
    }
    let grant = leaf
        .open()
        .map_err(|e| refusal("bad_chain", format!("last grant: {e}")))?;
    if &grant.audience != local {
        return Err(refusal("bad_chain", "the last grant is not to this agent"));
    }
    if grant.issuer != record.actor {
        return Err(refusal(
            "bad_chain",
            "the last grant was not issued by the actor",
        ));
    }
    Ok(hash)
}

fn gate_refusal(
    shared: &Shared,
    request: &'static str,
    what: &str,
    decision: Decision,
) -> Result<(), Refusal> {
    shared.metrics.gate(request, &decision);
    match decision {
        Decision::Allow => Ok(()),
        Decision::Deny(denial) => {
            shared.emit(NodeEvent::GateDenied {
                what: what.into(),
                rule: denial.rule().into(),
                reason: denial.to_string(),
            });
            Err(refusal(
                "gate_denied",
                format!("{}: {denial}", denial.rule()),
            ))
        }
    }
}

/// What accepting a context leaves to do after countersigning.
enum After {
    Nothing,
    HoldGrant(Vec<SignedGrant>),
    RunTask(Task),
}

/// Check that `context` justifies `record` (under the state lock: pure).
fn check_context(
    shared: &Shared,
    record: &ActionRecord,
    context: ActionContext,
) -> Result<After, Refusal> {
    let now = shared.now();
    let local = &shared.did;
    let mut guard = shared.state();
    let st = &mut *guard;
    let view = GateView {
        trust: &st.trust,
        orgs: &st.orgs,
        now,
    };
    match (record.kind, context) {
        (ActionKind::Invoke | ActionKind::Result, ActionContext::Plain { payload }) => {
            if payload.len() > MAX_PAYLOAD {
                return Err(refusal(
                    "too_large",
                    format!("payload over {MAX_PAYLOAD} bytes"),
                ));
            }
            if <[u8; 32]>::from(Sha256::digest(&payload)) != record.payload_digest {
                return Err(refusal(
                    "digest_mismatch",
                    "payload_digest is not SHA-256 of the payload",
                ));
            }
            Ok(After::Nothing)
        }
        (ActionKind::Delegate, ActionContext::Grant { chain }) => {
            let hash = check_leaf(&chain, record, local)?;
            if record.payload_digest != hash {
                return Err(refusal(
                    "digest_mismatch",
                    "payload_digest is not the grant's hash",
                ));
            }
            let d = st.gate.decide(
                Request::Delegate { chain: &chain },
                &view,
                &st.revocations,
                now,
            );
            gate_refusal(shared, "accept_grant", "accept a grant", d)?;
            Ok(After::HoldGrant(chain))
        }
        (ActionKind::Delegate, ActionContext::Task { chain, task }) => {
            check_leaf(&chain, record, local)?;
            if task.input.len() > MAX_PAYLOAD {
                return Err(refusal(
                    "too_large",
                    format!("task input over {MAX_PAYLOAD} bytes"),
                ));
            }
            let digest = digest_of(&task).map_err(|e| refusal("malformed", e.to_string()))?;
            if digest != record.payload_digest {
                return Err(refusal(
                    "digest_mismatch",
                    "payload_digest is not the task's digest",
                ));
            }
            let resource = CapabilityPattern::parse(&task.resource)
                .map_err(|e| refusal("malformed", format!("task resource: {e}")))?;
            let d = st.gate.decide(
                Request::Use {
                    requester: local,
                    resource: &resource,
                    action: &task.action,
                    chain: &chain,
                },
                &view,
                &st.revocations,
                now,
            );
            gate_refusal(shared, "run_task", "run a delegated task", d)?;
            Ok(After::RunTask(task))
        }
        (ActionKind::Result, ActionContext::Outcome { outcome }) => {
            let digest = digest_of(&outcome).map_err(|e| refusal("malformed", e.to_string()))?;
            if digest != record.payload_digest {
                return Err(refusal(
                    "digest_mismatch",
                    "payload_digest is not the outcome's digest",
                ));
            }
            if !st.take_outcome(&digest, &record.actor) {
                return Err(refusal(
                    "unexpected_outcome",
                    "this agent returned no such outcome to the actor",
                ));
            }
            Ok(After::Nothing)
        }
        (ActionKind::Revoke, ActionContext::Revoke { revocation }) => {
            let v = verify_revocation(&revocation)
                .map_err(|e| refusal("bad_revocation", e.to_string()))?;
            if v.revoker != record.actor || record.grant != Some(v.target) {
                return Err(refusal(
                    "context_mismatch",
                    "the record does not match the revocation",
                ));
            }
            if <[u8; 32]>::from(Sha256::digest(&revocation)) != record.payload_digest {
                return Err(refusal(
                    "digest_mismatch",
                    "payload_digest is not SHA-256 of the revocation",
                ));
            }
            let (revoker, target) = (v.revoker.clone(), v.target);
            if st.revocations.insert(v) {
                shared.emit(NodeEvent::Revocation { revoker, target });
            }
            Ok(After::Nothing)
        }
        (kind, _) => Err(refusal(
            "context_mismatch",
            format!("a {kind:?} record cannot be justified by this context"),
        )),
    }
}

async fn cosign(
    shared: &Shared,
    remote: &Did,
    bytes: &[u8],
    context: ActionContext,
) -> Result<ActionResponse, Refusal> {
    let half =
        ActorSigned::from_bytes(bytes).map_err(|e| refusal("malformed_record", e.to_string()))?;
    let record = half.record().clone();
    if &record.actor != remote {
        return Err(refusal(
            "wrong_actor",
            "the record's actor is not the requesting agent",
        ));
    }
    if record.counterparty != shared.did {
        return Err(refusal(
            "wrong_counterparty",
            "the record's counterparty is not this agent",
        ));
    }
    let now = shared.now();
    let skew = shared.handshake.max_skew_secs;
    if record.timestamp < now.minus_secs(skew) || record.timestamp > now.plus_secs(skew) {
        return Err(refusal(
            "stale_record",
            format!(
                "timestamp {} is more than {skew} s from now",
                record.timestamp.0
            ),
        ));
    }
    let after = check_context(shared, &record, context)?;
    let co = half
        .countersign(shared.local.identity())
        .map_err(|e| refusal("bad_signature", e.to_string()))?;
    if !shared.state().remember_record(co.leaf_hash()) {
        return Err(refusal("replayed", "this record was already co-signed"));
    }
    let index = shared
        .append_record(&co)
        .await
        .map_err(|e| refusal("ledger", e.to_string()))?;
    shared.emit(NodeEvent::Recorded {
        index,
        kind: kind_name(record.kind).into(),
        with: remote.clone(),
    });
    let outcome = match after {
        After::Nothing => None,
        After::HoldGrant(chain) => {
            if let Some(leaf) = chain.last() {
                let hash = leaf.hash();
                shared.state().held.insert(hash, chain);
            }
            None
        }
        After::RunTask(task) => {
            let handler = shared.handler.clone();
            let delegator = remote.clone();
            let t = task.clone();
            let outcome = tokio::task::spawn_blocking(move || handler.handle(&delegator, &t))
                .await
                .unwrap_or_else(|_| TaskOutcome {
                    success: false,
                    output: ByteBuf::from(b"the task handler panicked".to_vec()),
                });
            let digest = digest_of(&outcome).map_err(|e| refusal("malformed", e.to_string()))?;
            shared.state().expect_outcome(digest, remote.clone());
            shared.emit(NodeEvent::TaskDone {
                delegator: remote.clone(),
                task,
                success: outcome.success,
            });
            Some(outcome)
        }
    };
    Ok(ActionResponse::CoSigned {
        record: ByteBuf::from(co.bytes().to_vec()),
        outcome,
    })
}

/// The name of a record kind as LEDGER.md writes it.
pub fn kind_name(kind: ActionKind) -> &'static str {
    match kind {
        ActionKind::Delegate => "delegate",
        ActionKind::Invoke => "invoke",
        ActionKind::Result => "result",
        ActionKind::Spawn => "spawn",
        ActionKind::Revoke => "revoke",
    }
}

fn hashes(list: Vec<Hash>) -> Vec<ByteBuf> {
    list.into_iter()
        .map(|h| ByteBuf::from(h.to_vec()))
        .collect()
}

async fn consistency(shared: &Shared, old: u64, new: u64) -> Result<ActionResponse, Refusal> {
    let ledger = shared.ledger.lock().await;
    let size = ledger.log().size();
    if old > new || new > size {
        return Err(refusal("bad_range", format!("need old ≤ new ≤ {size}")));
    }
    let proof = ledger
        .log()
        .consistency_proof(old, new)
        .await
        .map_err(|e| refusal("ledger", e.to_string()))?;
    Ok(ActionResponse::Proof {
        hashes: hashes(proof),
    })
}

async fn inclusion(shared: &Shared, index: u64, size: u64) -> Result<ActionResponse, Refusal> {
    let ledger = shared.ledger.lock().await;
    let have = ledger.log().size();
    if index >= size || size > have {
        return Err(refusal("bad_range", format!("need index < size ≤ {have}")));
    }
    let (record, proof, _) = ledger
        .prove(index, size)
        .await
        .map_err(|e| refusal("ledger", e.to_string()))?;
    Ok(ActionResponse::Included {
        record: ByteBuf::from(record.bytes().to_vec()),
        hashes: hashes(proof),
    })
}

async fn cosignature(
    shared: &Shared,
    witness: &Did,
    note: &[u8],
) -> Result<ActionResponse, Refusal> {
    let parsed = Note::parse(note).map_err(|e| refusal("malformed_note", e.to_string()))?;
    let verifier = witness_verifier(witness.as_str(), witness.clone())
        .map_err(|e| refusal("malformed_note", e.to_string()))?;
    verify_cosignature(&parsed, &verifier)
        .map_err(|e| refusal("bad_cosignature", e.to_string()))?;
    // Keep only this witness's line: the log's own signature is stored.
    let theirs = Note {
        text: parsed.text.clone(),
        signatures: parsed.lines_for(&verifier).cloned().collect(),
    };
    let size = Checkpoint::parse_body(&parsed.text)
        .map_err(|e| refusal("malformed_note", e.to_string()))?
        .size;
    shared
        .ledger
        .lock()
        .await
        .add_cosignature(&theirs)
        .await
        .map_err(|e| refusal("not_our_checkpoint", e.to_string()))?;
    shared.emit(NodeEvent::Cosigned {
        witness: witness.clone(),
        size,
    });
    Ok(ActionResponse::Done)
}

fn proof_hashes(list: Vec<ByteBuf>) -> Result<Vec<Hash>, String> {
    if list.len() > MAX_PROOF_HASHES {
        return Err(format!("more than {MAX_PROOF_HASHES} hashes"));
    }
    list.into_iter()
        .map(|h| <Hash>::try_from(h.as_slice()).map_err(|_| "a hash is not 32 bytes".to_string()))
        .collect()
}

/// Witness `origin`'s checkpoint `cp` (the signed `note`, already verified):
/// fetch a consistency proof from what we hold, check it, cosign, and give
/// the cosignature to the log's owner.
pub async fn witness(
    shared: &Shared,
    peer: libp2p::PeerId,
    origin: Did,
    cp: Checkpoint,
    note: Vec<u8>,
) {
    let held = {
        let mut st = shared.state();
        if let Ok(v) = log_verifier(&cp.origin, origin.clone()) {
            st.witness.follow(v);
        }
        st.witness.held(&cp.origin).ok().flatten()
    };
    let old = held.map_or(0, |(size, _)| size);
    if cp.size <= old {
        return; // stale or already witnessed
    }
    let proof = match shared
        .request(peer, ActionRequest::Consistency { old, new: cp.size })
        .await
    {
        Ok(ActionResponse::Proof { hashes }) => match proof_hashes(hashes) {
            Ok(p) => p,
            Err(e) => return protocol_violation(shared, peer, &origin, e),
        },
        Ok(other) => {
            tracing::debug!(?other, "no consistency proof");
            return;
        }
        Err(e) => {
            tracing::debug!(error = %e, "consistency proof request failed");
            return;
        }
    };
    let started = std::time::Instant::now();
    let line = shared
        .state()
        .witness
        .add_checkpoint(old, &proof, &note, shared.now());
    shared
        .metrics
        .verify_took("witness_checkpoint", started.elapsed());
    let line = match line {
        Ok(line) => {
            // Persist before the cosignature leaves: a restarted witness
            // must not cosign a fork of what it already vouched for.
            let saved = shared
                .ledger
                .lock()
                .await
                .save_witnessed(&cp.origin, cp.size, &cp.root)
                .await;
            if let Err(e) = saved {
                tracing::warn!(error = %e, "witness state not saved; cosignature withheld");
                return;
            }
            line
        }
        Err(
            WitnessError::InconsistentProof { .. } | WitnessError::RootMismatchAtSameSize { .. },
        ) => {
            return protocol_violation(
                shared,
                peer,
                &origin,
                "its checkpoint is not consistent with what we witnessed".into(),
            );
        }
        Err(e) => {
            tracing::debug!(error = %e, "not cosigned");
            return;
        }
    };
    let Ok(mut cosigned) = Note::parse(&note) else {
        return;
    };
    cosigned.signatures = vec![line];
    match shared
        .request(
            peer,
            ActionRequest::Cosignature {
                note: ByteBuf::from(cosigned.to_bytes()),
            },
        )
        .await
    {
        Ok(ActionResponse::Done) => shared.emit(NodeEvent::Witnessed {
            origin: cp.origin,
            size: cp.size,
        }),
        other => tracing::debug!(?other, "cosignature not taken"),
    }
}

fn protocol_violation(shared: &Shared, peer: libp2p::PeerId, who: &Did, reason: String) {
    tracing::warn!(%who, %reason, "protocol violation");
    shared.record(Evidence::new(
        who.clone(),
        EvidenceKind::ProtocolViolation,
        shared.now(),
    ));
    shared.emit(NodeEvent::Rejected {
        peer,
        what: "checkpoint".into(),
        reason,
    });
}

/// Sign a checkpoint of our log if it grew (or `force`) and gossip it.
pub async fn checkpoint(shared: &Shared, force: bool) -> Result<Option<Vec<u8>>, NodeError> {
    let note = shared
        .ledger
        .lock()
        .await
        .checkpoint(shared.local.identity(), force)
        .await?;
    if let Some(note) = &note {
        shared.publish(Topic::Checkpoint, note.clone()).await;
    }
    Ok(note)
}
