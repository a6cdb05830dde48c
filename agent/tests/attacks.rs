//! Attacks on one agent, each input handed to it directly (as a hostile
//! peer would send it), checking the exact refusal.

use std::time::Duration;

use mesh_agent::sim::{Mesh, NetConfig};
use mesh_agent::wire::{ActionContext, ActionRequest, ActionResponse, IatpRequest, IatpResponse};
use mesh_agent::{
    ActionRefusal, Effect, Event, GossipId, InboundId, Input, Request, Response, Topic, Verdict,
};
use mesh_ledger::record::{ActionKind, ActionRecord};
use serde_bytes::ByteBuf;

fn pair() -> Mesh {
    let mut mesh = Mesh::new(21, NetConfig::default());
    let acme = mesh.add_org("acme");
    mesh.add_agent(acme, "victim");
    mesh.add_agent(acme, "peer");
    mesh.add_agent(acme, "stranger");
    mesh.connect(1, 0);
    assert!(mesh.run_until(Duration::from_secs(5), |m| {
        m.agent(0).session(m.did(1)).is_some()
    }));
    mesh
}

fn refusal_of(effects: &[Effect]) -> Option<u16> {
    effects.iter().find_map(|e| match e {
        Effect::Respond {
            response: Response::Action(ActionResponse::Refused { code, .. }),
            ..
        } => Some(*code),
        _ => None,
    })
}

fn proof_request() -> Request {
    Request::Action(ActionRequest::Consistency { old: 0, new: 0 })
}

#[test]
fn a_stranger_without_a_session_is_refused_and_struck() {
    let mut mesh = pair();
    let stranger = mesh.did(2).clone();
    let effects = mesh.poke(
        0,
        Input::Request {
            from: stranger.clone(),
            id: InboundId(1),
            request: proof_request(),
        },
    );
    assert_eq!(refusal_of(&effects), Some(ActionRefusal::NoSession.code()));
    assert!(!effects.iter().any(|e| matches!(e, Effect::Prove { .. })));
    assert!(effects.iter().any(|e| matches!(e,
        Effect::Event(Event::Throttled { peer, strikes: 1, .. }) if peer == &stranger)));
    // Its gossip is ignored, not judged.
    let effects = mesh.poke(
        0,
        Input::Gossip {
            from: stranger,
            id: GossipId(1),
            topic: Topic::Revocation,
            author: None,
            data: b"junk".to_vec(),
        },
    );
    assert!(effects.iter().any(|e| matches!(
        e,
        Effect::Verdict {
            verdict: Verdict::Ignore,
            ..
        }
    )));
}

#[test]
fn a_flooding_member_is_rate_limited_then_banned_and_kept_out() {
    let mut mesh = pair();
    let peer = mesh.did(1).clone();
    let (mut served, mut limited, mut banned) = (0, 0, false);
    for i in 0..400 {
        let effects = mesh.poke(
            0,
            Input::Request {
                from: peer.clone(),
                id: InboundId(1000 + i),
                request: proof_request(),
            },
        );
        if effects.iter().any(|e| matches!(e, Effect::Prove { .. })) {
            served += 1;
        }
        if refusal_of(&effects) == Some(ActionRefusal::RateLimited.code()) {
            limited += 1;
        }
        if effects.iter().any(|e| matches!(e, Effect::Ban { .. })) {
            banned = true;
            assert!(
                effects
                    .iter()
                    .any(|e| matches!(e, Effect::Disconnect { .. }))
            );
            break;
        }
    }
    assert_eq!(served, 100, "the burst is served");
    assert_eq!(limited, 50, "then 50 strikes");
    assert!(banned);
    assert!(mesh.agent(0).is_banned(&peer));
    // A reconnection while banned is closed at once.
    let effects = mesh.poke(0, Input::Disconnected { peer: peer.clone() });
    assert!(
        effects
            .iter()
            .any(|e| matches!(e, Effect::Event(Event::SessionClosed { .. })))
    );
    let effects = mesh.poke(
        0,
        Input::Connected {
            peer,
            dialer: false,
            ip: None,
        },
    );
    assert!(matches!(effects.as_slice(), [Effect::Disconnect { .. }]));
}

#[test]
fn a_hello_on_a_live_session_is_refused_without_touching_the_session() {
    let mut mesh = pair();
    let peer = mesh.did(1).clone();
    let effects = mesh.poke(
        0,
        Input::Request {
            from: peer.clone(),
            id: InboundId(7),
            request: Request::Iatp(IatpRequest::Hello(ByteBuf::from(vec![0xa0]))),
        },
    );
    assert!(effects.iter().any(|e| matches!(
        e,
        Effect::Respond {
            response: Response::Iatp(IatpResponse::Refused { .. }),
            ..
        }
    )));
    assert!(
        !effects
            .iter()
            .any(|e| matches!(e, Effect::Disconnect { .. }))
    );
    assert!(mesh.agent(0).session(&peer).is_some());
}

#[test]
fn records_that_do_not_fit_are_refused_precisely() {
    let mut mesh = pair();
    let victim = mesh.did(0).clone();
    let peer_did = mesh.did(1).clone();
    let peer_key = mesh.agent(1).local().identity().clone();
    let now = mesh.agent_now().wall;
    let record = |actor: &mesh_iatp::Did, counterparty: &mesh_iatp::Did, kind, ts| ActionRecord {
        kind,
        actor: actor.clone(),
        counterparty: counterparty.clone(),
        grant: None,
        payload_digest: sha2_of(b"payload"),
        timestamp: ts,
        nonce: [1; 16],
    };
    let ask = |mesh: &mut Mesh, rec: ActionRecord, payload: &[u8], id: u64| {
        let bytes = rec
            .sign(&peer_key)
            .and_then(|h| h.to_bytes())
            .unwrap_or_else(|e| panic!("{e}"));
        let effects = mesh.poke(
            0,
            Input::Request {
                from: peer_did.clone(),
                id: InboundId(id),
                request: Request::Action(ActionRequest::CoSign {
                    record: ByteBuf::from(bytes),
                    context: ActionContext::Plain {
                        payload: ByteBuf::from(payload.to_vec()),
                    },
                }),
            },
        );
        refusal_of(&effects)
    };
    let ok = record(&peer_did, &victim, ActionKind::Invoke, now);
    assert_eq!(
        ask(&mut mesh, ok.clone(), b"payload", 1),
        None,
        "a fitting record is co-signed"
    );
    assert_eq!(
        ask(&mut mesh, ok, b"payload", 2),
        Some(ActionRefusal::Replayed.code())
    );
    let stranger = mesh.did(2).clone();
    let wrong_cp = record(&peer_did, &stranger, ActionKind::Invoke, now);
    assert_eq!(
        ask(&mut mesh, wrong_cp, b"payload", 3),
        Some(ActionRefusal::WrongCounterparty.code())
    );
    let stale = record(&peer_did, &victim, ActionKind::Invoke, now.minus_secs(3600));
    assert_eq!(
        ask(&mut mesh, stale, b"payload", 4),
        Some(
            ActionRefusal::StaleRecord {
                timestamp: 0,
                skew: 0
            }
            .code()
        )
    );
    let mut other = record(&peer_did, &victim, ActionKind::Invoke, now);
    other.nonce = [2; 16];
    assert_eq!(
        ask(&mut mesh, other, b"another payload", 5),
        Some(ActionRefusal::DigestMismatch("").code())
    );
    let mut result = record(&peer_did, &victim, ActionKind::Delegate, now);
    result.nonce = [3; 16];
    assert_eq!(
        ask(&mut mesh, result, b"payload", 6),
        Some(ActionRefusal::ContextMismatch(String::new()).code())
    );
}

/// A member cannot slip a `result` record into our log: we countersign an
/// answer only for a task we delegated to that member and still await.
#[test]
fn an_answer_to_a_task_never_delegated_is_refused() {
    use mesh_agent::wire::TaskOutcome;

    let mut mesh = pair();
    let victim = mesh.did(0).clone();
    let peer_did = mesh.did(1).clone();
    let peer_key = mesh.agent(1).local().identity().clone();
    let outcome = TaskOutcome {
        success: true,
        output: ByteBuf::from(b"praise me".to_vec()),
        stopped: None,
    };
    let digest = mesh_agent::digest_of(&outcome).unwrap_or_else(|e| panic!("{e}"));
    let record = ActionRecord {
        kind: ActionKind::Result,
        actor: peer_did.clone(),
        counterparty: victim,
        grant: Some([9; 32]),
        payload_digest: digest,
        timestamp: mesh.agent_now().wall,
        nonce: [4; 16],
    };
    let bytes = record
        .sign(&peer_key)
        .and_then(|h| h.to_bytes())
        .unwrap_or_else(|e| panic!("{e}"));
    let effects = mesh.poke(
        0,
        Input::Request {
            from: peer_did,
            id: InboundId(1),
            request: Request::Action(ActionRequest::CoSign {
                record: ByteBuf::from(bytes),
                context: ActionContext::Outcome { outcome },
            }),
        },
    );
    assert_eq!(
        refusal_of(&effects),
        Some(ActionRefusal::UnexpectedOutcome.code())
    );
    assert!(!effects.iter().any(|e| matches!(e, Effect::Append { .. })));
}

fn sha2_of(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).into()
}

#[test]
fn a_peer_that_never_says_hello_loses_its_connection_at_the_deadline() {
    let mut mesh = pair();
    mesh.record_events(true);
    let stranger = mesh.did(2).clone();
    let deadline = mesh_agent::Limits::default().handshake_deadline;
    // A listener waits for the dialer's Hello; this dialer never sends it.
    let effects = mesh.poke(
        0,
        Input::Connected {
            peer: stranger.clone(),
            dialer: false,
            ip: None,
        },
    );
    assert!(effects.is_empty(), "nothing happens at once: {effects:?}");
    mesh.run_for(deadline - Duration::from_secs(1));
    let rejected = |mesh: &Mesh| {
        mesh.events().iter().any(|(_, n, e)| {
            *n == 0
                && matches!(e, Event::Rejected { peer, what: "connection", .. } if peer == &stranger)
        })
    };
    assert!(!rejected(&mesh), "closed before its deadline");
    mesh.run_for(Duration::from_secs(2));
    assert!(rejected(&mesh), "still connected past its deadline");
    // The member with a session is untouched.
    assert!(mesh.agent(0).session(mesh.did(1)).is_some());
    assert!(
        !mesh
            .events()
            .iter()
            .any(|(_, _, e)| matches!(e, Event::SessionClosed { .. }))
    );
}

/// Strangers from one IP displace only each other: a flood from one host
/// cannot close a stranger from another that is still handshaking.
#[test]
fn strangers_from_one_ip_displace_only_each_other() {
    let mut mesh = pair();
    let per_ip = mesh_agent::Limits::default().max_strangers_per_ip as usize;
    let flooder: std::net::IpAddr = "203.0.113.9".parse().unwrap();
    let member: std::net::IpAddr = "198.51.100.1".parse().unwrap();
    let did = |i: usize| {
        mesh_iatp::testing::identity(&format!("ip stranger {i}"))
            .did()
            .clone()
    };
    let connect = |mesh: &mut Mesh, peer: mesh_iatp::Did, ip| {
        let effects = mesh.poke(
            0,
            Input::Connected {
                peer,
                dialer: false,
                ip: Some(ip),
            },
        );
        mesh.run_for(Duration::from_millis(10));
        effects
            .into_iter()
            .filter_map(|e| match e {
                Effect::Disconnect { peer, after } if after.is_zero() => Some(peer),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    // One from elsewhere, waiting longest of all.
    assert!(connect(&mut mesh, did(1000), member).is_empty());
    for i in 0..per_ip {
        assert!(connect(&mut mesh, did(i), flooder).is_empty());
    }
    // The flooder's next connections close its own oldest, never the
    // member's, although the member has waited longer.
    for i in per_ip..per_ip + 5 {
        assert_eq!(connect(&mut mesh, did(i), flooder), [did(i - per_ip)]);
    }
}

#[test]
fn strangers_beyond_the_bound_make_way_oldest_first() {
    let mut mesh = pair();
    let max = mesh_agent::Limits::default().max_strangers as usize;
    let strangers: Vec<_> = (0..max + 2)
        .map(|i| {
            mesh_iatp::testing::identity(&format!("stranger {i}"))
                .did()
                .clone()
        })
        .collect();
    let connect = |mesh: &mut Mesh, peer: &mesh_iatp::Did| {
        let effects = mesh.poke(
            0,
            Input::Connected {
                peer: peer.clone(),
                dialer: false,
                ip: None,
            },
        );
        mesh.run_for(Duration::from_millis(10));
        effects
    };
    for s in &strangers[..max] {
        assert!(connect(&mut mesh, s).is_empty(), "within the bound");
    }
    let closed = |effects: &[Effect]| -> Vec<mesh_iatp::Did> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Disconnect { peer, after } if after.is_zero() => Some(peer.clone()),
                _ => None,
            })
            .collect()
    };
    // Each newcomer over the bound closes the stranger waiting longest.
    assert_eq!(
        closed(&connect(&mut mesh, &strangers[max])),
        [strangers[0].clone()]
    );
    assert_eq!(
        closed(&connect(&mut mesh, &strangers[max + 1])),
        [strangers[1].clone()]
    );
    // A member already in session is never counted or closed.
    assert!(mesh.agent(0).session(mesh.did(1)).is_some());
    // A stranger that leaves frees its slot: the next one closes nobody.
    mesh.poke(
        0,
        Input::Disconnected {
            peer: strangers[5].clone(),
        },
    );
    let again = mesh_iatp::testing::identity("stranger again").did().clone();
    assert!(closed(&connect(&mut mesh, &again)).is_empty());
}

/// Issue 14: 1,500 padded checkpoints for made-up logs grew a node by
/// 200 MB. Notes are kept only for logs the agent follows.
#[test]
fn checkpoints_of_made_up_logs_are_passed_on_but_not_kept() {
    use mesh_ledger::checkpoint::Checkpoint;
    let mut mesh = pair();
    let peer = mesh.did(1).clone();
    let note = |who: &mesh_iatp::Identity, size: u64| {
        Checkpoint {
            origin: who.did().as_str().to_string(),
            size,
            root: [size as u8; 32],
        }
        .sign(who)
        .unwrap()
        .to_bytes()
    };
    let before = mesh.agent(0).noted_logs();
    for i in 0..50u64 {
        let fresh = mesh_iatp::testing::identity(&format!("made-up log {i}"));
        let effects = mesh.poke(
            0,
            Input::Gossip {
                from: peer.clone(),
                id: GossipId(100 + i),
                topic: Topic::Checkpoint,
                author: Some(peer.clone()),
                data: note(&fresh, i + 1),
            },
        );
        assert!(
            effects.iter().any(|e| matches!(
                e,
                Effect::Verdict {
                    verdict: Verdict::Accept,
                    ..
                }
            )),
            "a valid checkpoint is passed on: {effects:?}"
        );
    }
    assert_eq!(mesh.agent(0).noted_logs(), before, "no made-up log is kept");
}

#[test]
fn a_credential_revoked_while_in_session_cuts_the_agent_off() {
    let mut mesh = pair();
    let peer = mesh.did(1).clone();
    let digest = mesh.agent(1).local().card().credential.digest();
    let mut revoked = mesh_iatp::RevokedCredentials::default();
    revoked.revoke(digest);
    let done = mesh.run_command(
        0,
        mesh_agent::Command::SetRevokedCredentials(revoked),
        Duration::from_secs(1),
    );
    assert!(matches!(done, Some(Ok(_))), "{done:?}");
    assert!(
        mesh.agent(0).session(&peer).is_none(),
        "the session is closed"
    );
    let refusals = |m: &Mesh| {
        m.events()
            .iter()
            .filter(|(_, n, e)| {
                *n == 0
                    && matches!(e, Event::RefusedPeer { peer: p, refusal }
                        if p == &peer && refusal.code() == 16)
            })
            .count()
    };
    assert_eq!(refusals(&mesh), 1);
    // Coming back does not help: the handshake refuses the credential.
    mesh.run_until(Duration::from_secs(2), |_| false);
    mesh.connect(1, 0);
    assert!(!mesh.run_until(Duration::from_secs(5), |m| {
        m.agent(0).session(m.did(1)).is_some()
    }));
    assert!(refusals(&mesh) >= 2, "the new handshake was refused too");
}

#[test]
fn hellos_beyond_the_per_agent_rate_are_refused_before_any_signature() {
    let mut mesh = pair();
    let stranger = mesh.did(2).clone();
    let burst = mesh_agent::Limits::default().hello_burst as usize;
    let mut codes = Vec::new();
    let mut strikes = 0;
    for i in 0..burst + 2 {
        // A new connection each time: the bucket is the agent's, not the
        // connection's.
        mesh.poke(
            0,
            Input::Connected {
                peer: stranger.clone(),
                dialer: false,
                ip: None,
            },
        );
        let effects = mesh.poke(
            0,
            Input::Request {
                from: stranger.clone(),
                id: InboundId(100 + i as u64),
                request: Request::Iatp(IatpRequest::Hello(ByteBuf::from(vec![0xa0]))),
            },
        );
        codes.push(effects.iter().find_map(|e| match e {
            Effect::Respond {
                response: Response::Iatp(IatpResponse::Refused { code, .. }),
                ..
            } => Some(*code),
            _ => None,
        }));
        strikes += effects
            .iter()
            .filter(|e| {
                matches!(e, Effect::Persist(mesh_agent::Fact::Strikes { peer, .. }) if peer == &stranger)
            })
            .count();
        mesh.poke(
            0,
            Input::Disconnected {
                peer: stranger.clone(),
            },
        );
    }
    // The first `burst` are decoded (and refused as malformed); the rest
    // are refused by rate, each a strike.
    assert!(codes[..burst].iter().all(|c| *c == Some(1)), "{codes:?}");
    assert!(codes[burst..].iter().all(|c| *c == Some(23)), "{codes:?}");
    assert_eq!(strikes, 2, "one strike per Hello over the rate");
}

/// A log owner that will not prove its signed checkpoint grew consistently
/// from what a witness cosigned is held to account: not cosigned, and a
/// protocol violation against it (issue 14: it was only dropped).
#[test]
fn refusing_a_witness_a_consistency_proof_is_evidence_against_the_owner() {
    let mut mesh = pair();
    let (witness, owner) = (mesh.did(0).clone(), mesh.did(1).clone());
    assert!(mesh.run_until(Duration::from_secs(5), |m| {
        m.agent(1).session(m.did(0)).is_some()
    }));
    let recorded = mesh.run_command(
        1,
        mesh_agent::Command::Record {
            counterparty: witness.clone(),
            kind: ActionKind::Invoke,
            payload: b"x".to_vec(),
        },
        Duration::from_secs(5),
    );
    assert!(matches!(recorded, Some(Ok(_))), "{recorded:?}");
    let Some(Ok(mesh_agent::Outcome::Checkpoint(Some(note)))) = mesh.run_command(
        1,
        mesh_agent::Command::Checkpoint { force: true },
        Duration::from_secs(1),
    ) else {
        panic!("the owner signs a checkpoint");
    };
    let effects = mesh.poke(
        0,
        Input::Gossip {
            from: owner.clone(),
            id: GossipId(77),
            topic: Topic::Checkpoint,
            author: Some(owner.clone()),
            data: note,
        },
    );
    let asked = effects.iter().find_map(|e| match e {
        Effect::Send {
            to,
            id,
            request: Request::Action(ActionRequest::Consistency { .. }),
        } if to == &owner => Some(*id),
        _ => None,
    });
    let Some(id) = asked else {
        panic!("the witness asks for a consistency proof: {effects:?}");
    };
    let at = mesh.now().timestamp();
    let before = mesh.agent(0).trust_of(&owner, at);
    let effects = mesh.poke(
        0,
        Input::Response {
            from: owner.clone(),
            id,
            response: Response::Action(ActionResponse::Refused {
                code: 4,
                rule: "bad_range".into(),
                reason: "not telling".into(),
            }),
        },
    );
    assert!(
        effects.iter().any(
            |e| matches!(e, Effect::Event(Event::Rejected { peer, reason, .. })
            if peer == &owner && reason.contains("no consistency proof"))
        ),
        "{effects:?}"
    );
    assert!(
        !effects.iter().any(|e| matches!(
            e,
            Effect::Send {
                request: Request::Action(ActionRequest::Cosignature { .. }),
                ..
            }
        )),
        "not cosigned"
    );
    let after = mesh.agent(0).trust_of(&owner, at);
    assert!(after < before, "trust {before:?} → {after:?}");
}
