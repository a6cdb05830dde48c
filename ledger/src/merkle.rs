//! RFC 6962 / RFC 9162 Merkle trees: hashing, an append-only tree with
//! O(log n) appends, and inclusion and consistency proofs.
//!
//! ```text
//! leaf hash  = SHA-256(0x00 ‖ leaf bytes)
//! node hash  = SHA-256(0x01 ‖ left ‖ right)
//! MTH({})    = SHA-256("")
//! MTH(D[n])  = node(MTH(D[0:k]), MTH(D[k:n])), k the largest power of two < n
//! ```
//!
//! The tree keeps, per level, the hashes of the *complete* (power-of-two,
//! aligned) subtrees — exactly what [`NodeSource`] serves. Appending a leaf
//! adds at most one node per level; a root or proof for any size touches
//! O(log n) stored nodes (O(log² n) for ranges on the right edge), so a
//! store-backed source answers proofs for a 10M-leaf log without loading it.
//! rs_merkle is not used: it recomputes the whole tree on commit and has no
//! consistency proofs (DESIGN.md §11).

use sha2::{Digest, Sha256};

/// A SHA-256 hash.
pub type Hash = [u8; 32];

/// RFC 6962 leaf hash.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0x00]);
    h.update(data);
    h.finalize().into()
}

/// RFC 6962 interior node hash.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([0x01]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The root of the empty tree, SHA-256 of nothing.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// Largest power of two strictly below `n` (n ≥ 2).
fn split(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

/// Where complete-subtree hashes come from: `node(level, index)` is the hash
/// of leaves `[index·2^level, (index+1)·2^level)`.
pub trait NodeSource {
    /// Why a node could not be read (I/O for stores; never for memory).
    type Error;
    /// The complete subtree's hash. Callers only ask for subtrees inside
    /// the tree size they work with.
    fn node(&self, level: u32, index: u64) -> Result<Hash, Self::Error>;
}

/// MTH of leaves `[start, start + size)`, from complete-subtree hashes.
pub fn subtree_hash<S: NodeSource + ?Sized>(
    src: &S,
    start: u64,
    size: u64,
) -> Result<Hash, S::Error> {
    if size == 0 {
        return Ok(empty_root());
    }
    if size.is_power_of_two() && start.is_multiple_of(size) {
        return src.node(size.trailing_zeros(), start / size);
    }
    let k = split(size);
    let left = subtree_hash(src, start, k)?;
    let right = subtree_hash(src, start + k, size - k)?;
    Ok(node_hash(&left, &right))
}

/// The root of the first `size` leaves.
pub fn root<S: NodeSource + ?Sized>(src: &S, size: u64) -> Result<Hash, S::Error> {
    subtree_hash(src, 0, size)
}

/// RFC 9162 §2.1.3.1 inclusion proof for leaf `index` in the first `size` leaves.
pub fn inclusion_proof<S: NodeSource + ?Sized>(
    src: &S,
    index: u64,
    size: u64,
) -> Result<Vec<Hash>, S::Error> {
    let mut out = Vec::new();
    path(src, index, 0, size, &mut out)?;
    Ok(out)
}

fn path<S: NodeSource + ?Sized>(
    src: &S,
    m: u64,
    start: u64,
    n: u64,
    out: &mut Vec<Hash>,
) -> Result<(), S::Error> {
    if n <= 1 {
        return Ok(());
    }
    let k = split(n);
    if m < k {
        path(src, m, start, k, out)?;
        out.push(subtree_hash(src, start + k, n - k)?);
    } else {
        path(src, m - k, start + k, n - k, out)?;
        out.push(subtree_hash(src, start, k)?);
    }
    Ok(())
}

/// RFC 9162 §2.1.4.1 consistency proof from size `old` to size `new`
/// (empty when `old` is 0 or equal to `new`).
pub fn consistency_proof<S: NodeSource + ?Sized>(
    src: &S,
    old: u64,
    new: u64,
) -> Result<Vec<Hash>, S::Error> {
    let mut out = Vec::new();
    if old > 0 && old < new {
        subproof(src, old, 0, new, true, &mut out)?;
    }
    Ok(out)
}

fn subproof<S: NodeSource + ?Sized>(
    src: &S,
    m: u64,
    start: u64,
    n: u64,
    complete: bool,
    out: &mut Vec<Hash>,
) -> Result<(), S::Error> {
    if m == n {
        if !complete {
            out.push(subtree_hash(src, start, n)?);
        }
        return Ok(());
    }
    let k = split(n);
    if m <= k {
        subproof(src, m, start, k, complete, out)?;
        out.push(subtree_hash(src, start + k, n - k)?);
    } else {
        subproof(src, m - k, start + k, n - k, false, out)?;
        out.push(subtree_hash(src, start, k)?);
    }
    Ok(())
}

/// Why a proof does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// Index not below size, or old size above new size.
    #[error("index or size out of range")]
    OutOfRange,
    /// Too many or too few proof elements for these sizes.
    #[error("proof has the wrong number of elements")]
    WrongLength,
    /// The recomputed root differs.
    #[error("recomputed root does not match")]
    RootMismatch,
}

/// RFC 9162 §2.1.3.2: does `proof` show leaf hash `leaf` at `index` in the
/// tree of `size` leaves with root `root`?
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::OutOfRange);
    }
    let (mut fn_, mut sn) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if sn == 0 {
            return Err(ProofError::WrongLength);
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(ProofError::WrongLength);
    }
    if r != *root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// RFC 9162 §2.1.4.2: does `proof` show the tree of `old` leaves with root
/// `old_root` is a prefix of the tree of `new` leaves with root `new_root`?
pub fn verify_consistency(
    old: u64,
    new: u64,
    proof: &[Hash],
    old_root: &Hash,
    new_root: &Hash,
) -> Result<(), ProofError> {
    if old > new {
        return Err(ProofError::OutOfRange);
    }
    if old == new {
        if !proof.is_empty() {
            return Err(ProofError::WrongLength);
        }
        return if old_root == new_root {
            Ok(())
        } else {
            Err(ProofError::RootMismatch)
        };
    }
    if old == 0 {
        return if proof.is_empty() {
            Ok(())
        } else {
            Err(ProofError::WrongLength)
        };
    }
    if proof.is_empty() {
        return Err(ProofError::WrongLength);
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if old.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);
    let (mut fn_, mut sn) = (old - 1, new - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let (mut fr, mut sr) = (path[0], path[0]);
    for c in &path[1..] {
        if sn == 0 {
            return Err(ProofError::WrongLength);
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(ProofError::WrongLength);
    }
    if fr != *old_root || sr != *new_root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// An in-memory append-only tree of complete-subtree hashes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryTree {
    levels: Vec<Vec<Hash>>,
}

impl MemoryTree {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.levels.first().map_or(0, |l| l.len() as u64)
    }

    /// Append a leaf hash; returns the complete-subtree nodes it created,
    /// as `(level, index, hash)` (what a store must persist).
    pub fn append(&mut self, leaf: Hash) -> Vec<(u32, u64, Hash)> {
        let mut created = Vec::with_capacity(4);
        let mut hash = leaf;
        let mut level = 0usize;
        loop {
            if self.levels.len() == level {
                self.levels.push(Vec::new());
            }
            let index = self.levels[level].len() as u64;
            self.levels[level].push(hash);
            created.push((level as u32, index, hash));
            if index.is_multiple_of(2) {
                break;
            }
            let left = self.levels[level][index as usize - 1];
            hash = node_hash(&left, &hash);
            level += 1;
        }
        created
    }

    /// The current root.
    pub fn root(&self) -> Hash {
        match root(self, self.size()) {
            Ok(h) => h,
            Err(never) => match never {},
        }
    }
}

impl NodeSource for MemoryTree {
    type Error = std::convert::Infallible;
    fn node(&self, level: u32, index: u64) -> Result<Hash, Self::Error> {
        // Callers stay inside the tree (see the trait); a miss is a bug.
        Ok(self.levels[level as usize][index as usize])
    }
}

/// `Result<T, Infallible>` into `T`.
pub fn infallible<T>(r: Result<T, std::convert::Infallible>) -> T {
    match r {
        Ok(v) => v,
        Err(never) => match never {},
    }
}

/// The right edge of a tree: the complete subtrees of its size's binary
/// decomposition, largest first. Enough to append and to compute the root,
/// in O(log n) space — what a store keeps in memory between appends.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactRange {
    size: u64,
    nodes: Vec<(u32, Hash)>,
}

impl CompactRange {
    /// The empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// `(level, index)` of the complete subtrees making up a tree of `size`
    /// leaves, largest first.
    pub fn positions(size: u64) -> Vec<(u32, u64)> {
        let mut out = Vec::new();
        let mut start = 0u64;
        for level in (0..64u32).rev() {
            if size >> level & 1 == 1 {
                out.push((level, start >> level));
                start += 1 << level;
            }
        }
        out
    }

    /// Rebuild from the hashes at [`CompactRange::positions`] of `size`.
    pub fn from_hashes(size: u64, hashes: &[Hash]) -> Option<Self> {
        let positions = Self::positions(size);
        if positions.len() != hashes.len() {
            return None;
        }
        Some(CompactRange {
            size,
            nodes: positions
                .iter()
                .zip(hashes)
                .map(|((l, _), h)| (*l, *h))
                .collect(),
        })
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Append a leaf hash; returns the complete-subtree nodes created, as
    /// `(level, index, hash)`.
    pub fn append(&mut self, leaf: Hash) -> Vec<(u32, u64, Hash)> {
        let index = self.size;
        let mut created = vec![(0, index, leaf)];
        let mut hash = leaf;
        let mut level = 0u32;
        while let Some(&(l, left)) = self.nodes.last() {
            if l != level {
                break;
            }
            self.nodes.pop();
            hash = node_hash(&left, &hash);
            level += 1;
            created.push((level, index >> level, hash));
        }
        self.nodes.push((level, hash));
        self.size += 1;
        created
    }

    /// The root.
    pub fn root(&self) -> Hash {
        let mut iter = self.nodes.iter().rev();
        let Some(&(_, mut acc)) = iter.next() else {
            return empty_root();
        };
        for (_, left) in iter {
            acc = node_hash(left, &acc);
        }
        acc
    }
}

/// A [`NodeSource`] that records which nodes are asked for (answering
/// zeros), so a store can fetch exactly those before computing a proof.
#[derive(Debug, Default)]
pub struct NodeRecorder(std::cell::RefCell<std::collections::BTreeSet<(u32, u64)>>);

impl NodeRecorder {
    /// The positions asked for so far.
    pub fn positions(self) -> Vec<(u32, u64)> {
        self.0.into_inner().into_iter().collect()
    }
}

impl NodeSource for NodeRecorder {
    type Error = std::convert::Infallible;
    fn node(&self, level: u32, index: u64) -> Result<Hash, Self::Error> {
        self.0.borrow_mut().insert((level, index));
        Ok([0; 32])
    }
}

/// Nodes fetched from somewhere, by position.
#[derive(Debug, Default, Clone)]
pub struct NodeMap(pub std::collections::HashMap<(u32, u64), Hash>);

/// A node a [`NodeMap`] was asked for but does not hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("missing Merkle node at level {0}, index {1}")]
pub struct MissingNode(pub u32, pub u64);

impl NodeSource for NodeMap {
    type Error = MissingNode;
    fn node(&self, level: u32, index: u64) -> Result<Hash, Self::Error> {
        self.0
            .get(&(level, index))
            .copied()
            .ok_or(MissingNode(level, index))
    }
}

#[cfg(test)]
mod compact_tests {
    use super::*;

    #[test]
    fn compact_range_matches_the_full_tree_and_reloads() {
        let mut full = MemoryTree::new();
        let mut compact = CompactRange::new();
        for i in 0u64..300 {
            let leaf = leaf_hash(&i.to_be_bytes());
            let a = full.append(leaf);
            let b = compact.append(leaf);
            assert_eq!(a, b, "created nodes at {i}");
            assert_eq!(full.root(), compact.root());
            let size = i + 1;
            let hashes: Vec<Hash> = CompactRange::positions(size)
                .into_iter()
                .map(|(l, ix)| infallible(full.node(l, ix)))
                .collect();
            assert_eq!(
                CompactRange::from_hashes(size, &hashes).as_ref(),
                Some(&compact)
            );
        }
    }

    #[test]
    fn a_recorded_proof_needs_only_logarithmically_many_nodes() {
        let rec = NodeRecorder::default();
        infallible(inclusion_proof(&rec, 123_456, 10_000_000));
        let n = rec.positions().len();
        assert!(n <= 2 * 24, "{n} nodes for a 10M-leaf inclusion proof");
    }
}
