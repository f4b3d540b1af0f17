//! The contract between cpreg processes.
//!
//! # Layout
//! - [`pb`]: the generated gRPC types of package `cpreg.v1`.
//! - [`ident`]: identifier checks both ends share (NHS number, postcode, dates, phone numbers).
//! - [`names`]: how names are normalised before they are compared (case, accents, punctuation).
//! - [`role`]: the roles carried in client certificates and how they are encoded.
//! - [`json`]: how generated messages are written as JSON.
//! - [`snapshot`]: signed snapshots and deltas: manifests, payloads, state roots, checks.
//! - [`criteria`]: the least a lookup must give, so the register cannot be browsed.
//! - [`audit`]: the audit chain's exact bytes, hashing, checkpoints and verification.

pub mod audit;
pub mod criteria;
pub mod ident;
pub mod json;
pub mod names;
pub mod role;
pub mod snapshot;

/// Generated code for package `cpreg.v1`.
pub mod pb {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("cpreg.v1");
}
