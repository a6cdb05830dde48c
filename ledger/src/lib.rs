//! # mesh-ledger: who did what, with whose consent, provably
//!
//! Every cross-agent action is an [`ActionRecord`] signed by the actor and
//! countersigned by the counterparty, appended to each party's append-only
//! RFC 6962 Merkle log ([`merkle`]). Logs publish C2SP checkpoints
//! ([`checkpoint`], signed notes), peers witness them and cosign
//! ([`witness`]), and two conflicting checkpoints become a self-contained
//! equivocation proof ([`equivocation`]).
#![forbid(unsafe_code)]
#![warn(unnameable_types)]

pub mod audit;
mod batch;
pub mod checkpoint;
pub mod equivocation;
#[cfg(feature = "store")]
pub mod export;
pub mod log_store;
pub mod memory;
pub mod merkle;
pub mod note;
#[cfg(feature = "store")]
pub mod populate;
pub mod record;
#[cfg(feature = "store")]
mod rows;
#[cfg(feature = "store")]
pub mod store;
pub mod testing;
#[cfg(feature = "store")]
pub mod verify;
pub mod witness;

pub use log_store::{LogStore, StoreError};
pub use memory::MemoryLog;
pub use record::{ActionKind, ActionRecord, ActorSigned, CoSignedRecord, RecordError};
