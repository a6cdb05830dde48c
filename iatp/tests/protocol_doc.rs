//! The worked examples in docs/PROTOCOL.md are real: rebuilding them from
//! the stated keys and fields must give exactly the documented bytes.

// Test code: a failed expectation should stop it loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use mesh_iatp::envelope::{self, SIGNATURE_DOMAIN};
use mesh_iatp::handshake::Confirm;
use mesh_iatp::{Did, Identity, OrgCredential, Timestamp};

const DOC: &str = include_str!("../../docs/PROTOCOL.md");

/// The hex in the fenced block that follows the line `<!-- example: NAME -->`.
fn documented_hex(name: &str) -> Vec<u8> {
    let marker = format!("<!-- example: {name} -->");
    let after = DOC
        .split_once(&marker)
        .unwrap_or_else(|| panic!("PROTOCOL.md lacks {marker}"))
        .1;
    let block = after
        .split("```")
        .nth(1)
        .unwrap_or_else(|| panic!("no block after {marker}"));
    let hex: String = block
        .lines()
        .skip(1)
        .flat_map(|l| l.split_whitespace())
        .collect();
    (0..hex.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(&hex[i..i + 2], 16).unwrap_or_else(|_| panic!("bad hex in {name}"))
        })
        .collect()
}

fn seed(last: u8) -> Identity {
    let mut s = [0u8; 32];
    s[31] = last;
    Identity::from_secret_bytes(&s)
}

fn credential() -> OrgCredential {
    OrgCredential {
        org: seed(0).did().clone(),
        agent: seed(1).did().clone(),
        roles: vec!["worker".into()],
        not_before: Timestamp(1_767_225_600),
        expires: Timestamp(1_769_817_600),
    }
}

fn confirm() -> Confirm {
    Confirm {
        from: seed(1).peer_id(),
        to: seed(2).peer_id(),
        transcript_hash: [0x11; 32],
        initiator_nonce: [0x22; 32],
        responder_nonce: [0x33; 32],
    }
}

#[test]
fn credential_example_matches_the_document() {
    assert_eq!(
        seed(0).did(),
        &Did::parse("did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp")
            .expect("W3C vector")
    );
    let ours = credential().sign(&seed(0)).expect("signs").0;
    if std::env::var_os("PRINT_EXAMPLES").is_some() {
        println!("credential {}", hex::encode(&ours));
    }
    assert_eq!(ours, documented_hex("org-credential"));
}

#[test]
fn credential_signing_input_matches_the_document() {
    let env = envelope::seal(&credential(), &seed(0)).expect("seals");
    // Signing input = domain ‖ A3 ‖ env[1..sig] ‖ env[sig+70..]
    let doc = documented_hex("org-credential-signing-input");
    assert!(doc.starts_with(SIGNATURE_DOMAIN));
    let sig_at = env
        .windows(4)
        .position(|w| w == [0x63, b's', b'i', b'g'])
        .expect("sig key");
    let mut input = SIGNATURE_DOMAIN.to_vec();
    input.push(0xa3);
    input.extend_from_slice(&env[1..sig_at]);
    input.extend_from_slice(&env[sig_at + 70..]);
    if std::env::var_os("PRINT_EXAMPLES").is_some() {
        println!("signing-input {}", hex::encode(&input));
    }
    assert_eq!(input, doc);
    assert!(seed(0).did().verify(
        &doc,
        &mesh_iatp::Signature::from_bytes(
            env[sig_at + 6..sig_at + 70].try_into().expect("64 bytes")
        )
    ));
}

#[test]
fn confirm_example_matches_the_document() {
    let ours = envelope::seal(&confirm(), &seed(1)).expect("seals");
    if std::env::var_os("PRINT_EXAMPLES").is_some() {
        println!("confirm {}", hex::encode(&ours));
        println!(
            "peer1 {} {}",
            seed(1).peer_id(),
            hex::encode(seed(1).peer_id().as_bytes())
        );
    }
    assert_eq!(ours, documented_hex("confirm"));
    let opened = envelope::open::<Confirm>(&ours).expect("opens");
    assert_eq!(opened.verify(seed(1).did()).expect("verifies"), confirm());
    assert_eq!(
        seed(1).peer_id().to_base58(),
        "12D3KooWEyoppNCUx8Yx66oV9fJnriXwCcXwDDUA2kj6vnc6iDEp"
    );
}
