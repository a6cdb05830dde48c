//! Machine-readable test vectors for every message and record type
//! (docs/vectors/README.md): each module builds its cases from fixed keys,
//! runs the reference verifier on each, asserts the verdict the case was
//! written for, and the file it yields must equal the committed one in
//! docs/vectors/. `MESH_BLESS_VECTORS=1` rewrites the files instead.

// Test code: a failed expectation should stop it loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// Case tables are tuples, one case per line.
#![allow(clippy::type_complexity)]

mod action;
mod delegation;
mod envelope;
mod iatp;
mod ledger;
mod trust;

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::path::PathBuf;

use mesh_iatp::Identity;
use mesh_iatp::testing;
use serde_json::{Value, json};

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// How a verifier answered: accepted with what it derived, or refused.
pub type Verdict = Result<Value, Refused>;

/// A refusal: a stable name (and, where the protocol numbers it, a code).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// The protocol's rule name where it has one (IATP §5.1, action §10.1),
    /// else the reference implementation's error, outermost first.
    pub error: String,
    /// The protocol's refusal code, where it numbers refusals.
    pub code: Option<u16>,
}

impl Refused {
    /// A numbered protocol refusal.
    pub fn coded(error: &str, code: u16) -> Self {
        Refused {
            error: error.into(),
            code: Some(code),
        }
    }

    /// A refusal named by the reference implementation's error (see
    /// [`Refused::named`]), with no protocol code.
    pub fn error(name: &str) -> Self {
        Refused {
            error: name.into(),
            code: None,
        }
    }

    /// A refusal named after an error value of the reference
    /// implementation: its variant names, outermost first, snake_case
    /// (`Envelope(BadSignature { … })` is `envelope/bad_signature`).
    pub fn named(error: &impl Debug) -> Self {
        Refused {
            error: variant_path(&format!("{error:?}")),
            code: None,
        }
    }
}

/// `Invalid { link: …, source: BadSignature { … } }` → `invalid/bad_signature`.
fn variant_path(debug: &str) -> String {
    let mut names = Vec::new();
    let mut rest = debug;
    while names.len() < 4 {
        let ident: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        // Values inside an error (a DID, a time) are not part of its name.
        let value_types = ["Did", "PeerId", "Timestamp", "LinkRef", "Score"];
        if !ident.starts_with(|c: char| c.is_ascii_uppercase())
            || value_types.contains(&ident.as_str())
        {
            break;
        }
        names.push(snake(&ident));
        let after = &rest[ident.len()..];
        if let Some(inner) = after.strip_prefix('(') {
            rest = inner;
        } else if let Some(at) = after.find("source: ") {
            rest = &after[at + "source: ".len()..];
        } else {
            break;
        }
    }
    names.join("/")
}

fn snake(ident: &str) -> String {
    let mut out = String::new();
    for (i, c) in ident.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// One case as written: what it is, its inputs and bytes, and the verdict
/// it must get.
pub struct Case {
    /// Message or record type (`iatp/hello`, `ledger/record`, …).
    pub kind: &'static str,
    /// Short unique name within the file.
    pub name: String,
    /// What the case shows, for people.
    pub about: String,
    /// What the receiver is given besides the bytes, and how they were made.
    pub input: Value,
    /// The bytes under test.
    pub bytes: Vec<u8>,
}

impl Case {
    /// A case of message type `kind`.
    pub fn new(kind: &'static str, name: &str, about: &str, input: Value, bytes: &[u8]) -> Self {
        Case {
            kind,
            name: name.into(),
            about: about.into(),
            input,
            bytes: bytes.to_vec(),
        }
    }
}

/// One vector file being built.
pub struct VectorFile {
    file: &'static str,
    about: &'static str,
    spec: &'static str,
    keys: BTreeMap<String, Value>,
    shared: BTreeMap<String, Value>,
    cases: Vec<Value>,
}

impl VectorFile {
    /// An empty file named `file`, about `about`, specified in `spec`.
    pub fn new(file: &'static str, about: &'static str, spec: &'static str) -> Self {
        VectorFile {
            file,
            about,
            spec,
            keys: BTreeMap::new(),
            shared: BTreeMap::new(),
            cases: Vec::new(),
        }
    }

    /// The fixture identity named `label`, listed in the file's keys.
    pub fn key(&mut self, label: &str) -> Identity {
        let id = testing::identity(label);
        self.keys.insert(
            label.into(),
            json!({
                "seed": hex(&testing::seed(label)),
                "public": hex(id.did().public_key_bytes()),
                "did": id.did().as_str(),
                "peer_id": hex(id.peer_id().as_bytes()),
                "peer_id_base58": id.peer_id().to_base58(),
            }),
        );
        id
    }

    /// An input every case of the file shares unless its own `input` says
    /// otherwise (a trust bundle, a configuration).
    pub fn shared(&mut self, name: &str, value: Value) {
        self.shared.insert(name.into(), value);
    }

    /// Record a case the verifier must accept; returns what it derived.
    pub fn accepted(&mut self, case: Case, verdict: Verdict) -> Value {
        let output = match verdict {
            Ok(output) => output,
            Err(refused) => panic!("{} {}: refused {refused:?}", self.file, case.name),
        };
        self.push(case, json!({ "accept": true, "output": output.clone() }));
        output
    }

    /// Record a case the verifier must refuse with `expected`.
    pub fn refused(&mut self, case: Case, verdict: Verdict, expected: Refused) {
        match verdict {
            Ok(output) => panic!("{} {}: accepted {output}", self.file, case.name),
            Err(got) => assert_eq!(got, expected, "{} {}", self.file, case.name),
        }
        let mut v = json!({ "accept": false, "error": expected.error });
        if let Some(code) = expected.code {
            v["code"] = json!(code);
        }
        self.push(case, v);
    }

    fn push(&mut self, case: Case, verdict: Value) {
        assert!(
            !self.cases.iter().any(|c| c["name"] == case.name.as_str()),
            "{}: two cases named {}",
            self.file,
            case.name
        );
        self.cases.push(json!({
            "type": case.kind,
            "name": case.name,
            "about": case.about,
            "input": case.input,
            "bytes": hex(&case.bytes),
            "verdict": verdict,
        }));
    }

    fn render(&self) -> String {
        let doc = json!({
            "format": "mesh test vectors 1",
            "about": self.about,
            "spec": self.spec,
            "generated_by": "agent/tests/vectors (cargo test -p mesh-agent --test vectors)",
            "keys": self.keys,
            "shared": self.shared,
            "cases": self.cases,
        });
        let mut text = serde_json::to_string_pretty(&doc).unwrap();
        text.push('\n');
        text
    }
}

fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/vectors")
}

/// Every file, compared with (or, when blessing, written to) docs/vectors.
#[test]
fn the_committed_vectors_are_what_the_reference_implementation_produces() {
    let files = [
        envelope::identities(),
        iatp::credentials(),
        iatp::handshake(),
        delegation::grants(),
        delegation::revocations(),
        delegation::spawn_certificates(),
        trust::reports(),
        ledger::records(),
        ledger::checkpoints(),
        ledger::equivocation_proofs(),
        action::frames(),
    ];
    let dir = vectors_dir();
    let bless = std::env::var_os("MESH_BLESS_VECTORS").is_some();
    let mut stale = Vec::new();
    for file in &files {
        let path = dir.join(file.file);
        let text = file.render();
        if bless {
            std::fs::write(&path, &text).unwrap();
        } else if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            stale.push(file.file);
        }
    }
    assert!(
        stale.is_empty(),
        "docs/vectors/{stale:?} differ from what the code produces; if the change is \
         intended, run MESH_BLESS_VECTORS=1 cargo test -p mesh-agent --test vectors \
         and commit the files"
    );
    // No file in the directory that no test produces.
    let mut listed: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".json"))
        .collect();
    listed.sort();
    let mut produced: Vec<String> = files.iter().map(|f| f.file.to_string()).collect();
    produced.sort();
    assert_eq!(
        listed, produced,
        "docs/vectors holds files no test produces"
    );
}

#[test]
fn error_names_follow_the_variants() {
    assert_eq!(
        variant_path(
            "Invalid { link: LinkRef { index: 0 }, source: BadSignature { signer: Did } }"
        ),
        "invalid/bad_signature"
    );
    assert_eq!(
        variant_path("Envelope(Cbor(NotCanonical))"),
        "envelope/cbor/not_canonical"
    );
    assert_eq!(variant_path("Malformed(\"chain\")"), "malformed");
    assert_eq!(
        variant_path("BadActorSignature(Did(\"did:key:z6Mk\"))"),
        "bad_actor_signature"
    );
}
