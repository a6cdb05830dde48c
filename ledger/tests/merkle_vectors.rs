//! RFC 6962 reference tree and the transparency-dev/merkle proof vectors,
//! with their mutated negative cases.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use mesh_ledger::merkle::{
    Hash, MemoryTree, NodeSource, ProofError, consistency_proof, empty_root, inclusion_proof,
    infallible, leaf_hash, root, verify_consistency, verify_inclusion,
};
use proptest::prelude::*;

fn h(s: &str) -> Hash {
    hex::decode(s).unwrap().try_into().unwrap()
}

const LEAVES: [&str; 8] = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
];

/// Roots of the reference tree by size 0..=8.
const ROOTS: [&str; 9] = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

fn tree() -> MemoryTree {
    let mut t = MemoryTree::new();
    for l in LEAVES {
        t.append(leaf_hash(&hex::decode(l).unwrap()));
    }
    t
}

#[test]
fn reference_roots_for_every_size() {
    assert_eq!(empty_root(), h(ROOTS[0]));
    let mut t = MemoryTree::new();
    assert_eq!(t.root(), h(ROOTS[0]));
    for (i, l) in LEAVES.iter().enumerate() {
        t.append(leaf_hash(&hex::decode(l).unwrap()));
        assert_eq!(t.root(), h(ROOTS[i + 1]), "size {}", i + 1);
    }
    // The same roots for smaller sizes from the full tree (historic roots).
    for (size, r) in ROOTS.iter().enumerate() {
        assert_eq!(infallible(root(&t, size as u64)), h(r));
    }
}

#[test]
fn complete_subtree_nodes_match_the_reference() {
    let t = tree();
    let nodes = [
        (
            1,
            0,
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        ),
        (
            1,
            3,
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        ),
        (
            2,
            1,
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ),
        (
            3,
            0,
            "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
        ),
    ];
    for (level, index, hash) in nodes {
        assert_eq!(infallible(t.node(level, index)), h(hash));
    }
}

/// (leaf index, tree size, proof) from transparency-dev/merkle proof/verify_test.go.
fn inclusion_vectors() -> Vec<(u64, u64, Vec<Hash>)> {
    vec![
        (
            0,
            8,
            vec![
                h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
                h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
            ],
        ),
        (
            5,
            8,
            vec![
                h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
                h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
                h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
            ],
        ),
        (
            2,
            3,
            vec![h(
                "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            )],
        ),
        (
            1,
            5,
            vec![
                h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
                h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            ],
        ),
        (0, 1, vec![]),
    ]
}

/// (old size, new size, proof).
fn consistency_vectors() -> Vec<(u64, u64, Vec<Hash>)> {
    vec![
        (1, 1, vec![]),
        (
            1,
            8,
            vec![
                h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
                h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
            ],
        ),
        (
            6,
            8,
            vec![
                h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
                h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
                h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
            ],
        ),
        (
            2,
            5,
            vec![
                h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            ],
        ),
        (
            6,
            7,
            vec![
                h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
                h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
                h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
            ],
        ),
    ]
}

/// (what, index, size, leaf, proof, root)
type InclusionProbe = (&'static str, u64, u64, Hash, Vec<Hash>, Hash);
/// (what, old, new, old root, new root, proof)
type ConsistencyProbe = (&'static str, u64, u64, Hash, Hash, Vec<Hash>);

const SOME_HASH: &str = "abacaba000000000000000000000000000000000000000000060061e00123456";

#[test]
fn inclusion_vectors_are_generated_and_verify() {
    let t = tree();
    for (index, size, proof) in inclusion_vectors() {
        assert_eq!(
            infallible(inclusion_proof(&t, index, size)),
            proof,
            "generate {index}/{size}"
        );
        let leaf = leaf_hash(&hex::decode(LEAVES[index as usize]).unwrap());
        let r = h(ROOTS[size as usize]);
        verify_inclusion(index, size, &leaf, &proof, &r).unwrap();
    }
}

#[test]
fn mutated_inclusion_proofs_are_refused() {
    for (index, size, proof) in inclusion_vectors() {
        let leaf = leaf_hash(&hex::decode(LEAVES[index as usize]).unwrap());
        let r = h(ROOTS[size as usize]);
        let mut probes: Vec<InclusionProbe> = vec![
            (
                "index - 1",
                index.wrapping_sub(1),
                size,
                leaf,
                proof.clone(),
                r,
            ),
            ("index + 1", index + 1, size, leaf, proof.clone(), r),
            ("index ^ 2", index ^ 2, size, leaf, proof.clone(), r),
            ("size * 2", index, size * 2, leaf, proof.clone(), r),
            ("size / 2", index, size / 2, leaf, proof.clone(), r),
            (
                "wrong leaf",
                index,
                size,
                leaf_hash(b"WrongLeaf"),
                proof.clone(),
                r,
            ),
            ("empty root", index, size, leaf, proof.clone(), empty_root()),
            (
                "random root",
                index,
                size,
                leaf,
                proof.clone(),
                h(SOME_HASH),
            ),
            (
                "trailing root",
                index,
                size,
                leaf,
                [proof.clone(), vec![r]].concat(),
                r,
            ),
            (
                "preceding root",
                index,
                size,
                leaf,
                [vec![r], proof.clone()].concat(),
                r,
            ),
        ];
        for i in 0..proof.len() {
            let mut p = proof.clone();
            p[i][0] ^= 8;
            probes.push(("flipped bit", index, size, leaf, p, r));
        }
        if !proof.is_empty() {
            probes.push((
                "removed component",
                index,
                size,
                leaf,
                proof[..proof.len() - 1].to_vec(),
                r,
            ));
        }
        if proof.len() > 1 {
            let p = [vec![proof[0], h(SOME_HASH)], proof[1..].to_vec()].concat();
            probes.push(("inserted component", index, size, leaf, p, r));
        }
        for (what, i, s, l, p, rt) in probes {
            assert!(
                verify_inclusion(i, s, &l, &p, &rt).is_err(),
                "{what} accepted for {index}/{size}"
            );
        }
    }
}

#[test]
fn consistency_vectors_are_generated_and_verify() {
    let t = tree();
    for (old, new, proof) in consistency_vectors() {
        assert_eq!(
            infallible(consistency_proof(&t, old, new)),
            proof,
            "generate {old}→{new}"
        );
        verify_consistency(
            old,
            new,
            &proof,
            &h(ROOTS[old as usize]),
            &h(ROOTS[new as usize]),
        )
        .unwrap();
    }
}

#[test]
fn mutated_consistency_proofs_are_refused() {
    for (old, new, proof) in consistency_vectors()
        .into_iter()
        .filter(|(_, _, p)| !p.is_empty())
    {
        let (r1, r2) = (h(ROOTS[old as usize]), h(ROOTS[new as usize]));
        let mut probes: Vec<ConsistencyProbe> = vec![
            ("old - 1", old - 1, new, r1, r2, proof.clone()),
            ("old + 1", old + 1, new, r1, r2, proof.clone()),
            ("old ^ 2", old ^ 2, new, r1, r2, proof.clone()),
            ("new * 2", old, new * 2, r1, r2, proof.clone()),
            ("new / 2", old, new / 2, r1, r2, proof.clone()),
            ("wrong root1", old, new, h(SOME_HASH), r2, proof.clone()),
            ("wrong root2", old, new, r1, h(SOME_HASH), proof.clone()),
            ("swapped roots", old, new, r2, r1, proof.clone()),
            ("empty proof", old, new, r1, r2, vec![]),
            (
                "trailing root1",
                old,
                new,
                r1,
                r2,
                [proof.clone(), vec![r1]].concat(),
            ),
            (
                "trailing root2",
                old,
                new,
                r1,
                r2,
                [proof.clone(), vec![r2]].concat(),
            ),
            (
                "preceding root1",
                old,
                new,
                r1,
                r2,
                [vec![r1], proof.clone()].concat(),
            ),
            (
                "preceding root2",
                old,
                new,
                r1,
                r2,
                [vec![r2], proof.clone()].concat(),
            ),
            (
                "preceding proof[0]",
                old,
                new,
                r1,
                r2,
                [vec![proof[0]], proof.clone()].concat(),
            ),
            (
                "truncated",
                old,
                new,
                r1,
                r2,
                proof[..proof.len() - 1].to_vec(),
            ),
        ];
        for i in 0..proof.len() {
            let mut p = proof.clone();
            p[i][0] ^= 16;
            probes.push(("flipped bit", old, new, r1, r2, p));
        }
        for (what, a, b, x, y, p) in probes {
            assert!(
                verify_consistency(a, b, &p, &x, &y).is_err(),
                "{what} accepted for {old}→{new}"
            );
        }
    }
}

#[test]
fn edge_cases_of_consistency() {
    let (a, b) = (h(ROOTS[1]), h(ROOTS[2]));
    assert_eq!(verify_consistency(0, 0, &[], &a, &a), Ok(()));
    assert_eq!(verify_consistency(0, 1, &[], &a, &b), Ok(()));
    assert_eq!(verify_consistency(1, 1, &[], &b, &b), Ok(()));
    assert_eq!(
        verify_consistency(0, 0, &[], &a, &b),
        Err(ProofError::RootMismatch)
    );
    assert_eq!(
        verify_consistency(1, 0, &[], &a, &b),
        Err(ProofError::OutOfRange)
    );
    assert_eq!(
        verify_consistency(1, 2, &[], &a, &b),
        Err(ProofError::WrongLength)
    );
    assert_eq!(
        verify_consistency(1, 1, &[empty_root()], &a, &a),
        Err(ProofError::WrongLength)
    );
}

proptest! {
    /// Every generated proof verifies, for every index and size pair up to 70.
    #[test]
    fn generated_proofs_verify(n in 1u64..70, pick in any::<prop::sample::Index>(), pick2 in any::<prop::sample::Index>()) {
        let mut t = MemoryTree::new();
        let mut roots = vec![t.root()];
        for i in 0..n {
            t.append(leaf_hash(&i.to_be_bytes()));
            roots.push(t.root());
        }
        let index = pick.index(n as usize) as u64;
        let size = index + 1 + pick2.index((n - index) as usize) as u64;
        let proof = infallible(inclusion_proof(&t, index, size));
        prop_assert!(verify_inclusion(index, size, &leaf_hash(&index.to_be_bytes()), &proof, &roots[size as usize]).is_ok());
        let old = index;
        let cproof = infallible(consistency_proof(&t, old, size));
        prop_assert!(verify_consistency(old, size, &cproof, &roots[old as usize], &roots[size as usize]).is_ok());
    }
}
