//! The contract between cpreg processes.
//!
//! # Layout
//! - [`pb`]: the generated gRPC types of package `cpreg.v1`.
//! - [`FILE_DESCRIPTOR_SET`]: the same contract as descriptors, for gRPC reflection.
//! - [`ident`]: identifier checks both ends share (NHS number, postcode, dates, phone numbers).
//! - [`names`]: how names are normalised before they are compared (case, accents, punctuation).
//! - [`role`]: the roles carried in client certificates and how they are encoded.
//! - [`json`]: how generated messages are written as JSON.
//! - [`snapshot`]: signed snapshots and deltas: manifests, payloads, state roots, checks.
//! - [`criteria`]: the least a lookup must give, so the register cannot be browsed.
//! - [`audit`]: the audit chain's exact bytes, hashing, checkpoints and verification.
//! - [`limits`]: the message sizes, streams and timeouts both servers hold callers to.

pub mod audit;
pub mod criteria;
pub mod ident;
pub mod json;
pub mod limits;
pub mod metrics;
pub mod names;
pub mod role;
pub mod snapshot;

/// The encoded `FileDescriptorSet` of every `.proto` file in package `cpreg.v1`, as `build.rs`
/// compiled it: what each server's reflection service describes, so `grpcurl` needs no copy of
/// the `.proto` files.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/cpreg_descriptor.bin"));

/// Generated code for package `cpreg.v1`.
pub mod pb {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("cpreg.v1");
}
