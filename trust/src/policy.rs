//! Where an agent's score starts and how high it may go on this node: from
//! its org's policy in the trust bundle, or a spawn certificate's ceiling.

use mesh_iatp::Score;

/// The starting point and cap of one agent's score on this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AgentPolicy {
    /// Score with no evidence at all.
    pub initial: Score,
    /// Never scored above this.
    pub ceiling: Score,
}
