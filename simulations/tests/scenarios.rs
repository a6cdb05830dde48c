//! Every shipped scenario is valid, and covers every adversary model;
//! EigenTrust's threat models have theirs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use mesh_sim::scenario::{Scenario, Strategy};

#[test]
fn every_shipped_scenario_validates_and_every_strategy_has_one() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut seen = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let text = std::fs::read_to_string(&path).unwrap();
            let s = Scenario::from_toml_str(&text)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            // The headline sweep's values are all accepted.
            for v in ["0", "0.2", "0.4", "0.6", "0.7"] {
                Scenario::from_toml_str_with(&text, &[("adversary.fraction", v)])
                    .unwrap_or_else(|e| panic!("{} at {v}: {e}", path.display()));
            }
            seen.push(s.adversary.unwrap().strategy);
        }
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen, Strategy::ALL.to_vec());
    for m in ["a", "b", "c", "d"] {
        assert!(
            dir.join(format!("eigentrust_{m}.toml")).exists(),
            "threat model {m}"
        );
    }
}
