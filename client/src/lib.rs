//! `cpreg`: the command line for every role (custodian, auditor, duty worker, terminal), the
//! development PKI and the demo.
//!
//! # Layout
//! - [`cli`]: the clap command tree and dispatch.
//! - [`commands`]: one module per area (children, plans, directory, import, audit, pki, demo).
//! - [`local`]: a primary started in this process, for the demo and tests.
//! - [`profile`]: profile folders and the mTLS channel they open.
//! - [`output`]: JSON or text output, and the command line's error type.
//! - [`pki`]: the development certificate authority.
//! - [`synthetic`]: a realistic synthetic register for the demo, tests and benchmarks.

pub mod cli;
pub mod commands;
pub mod local;
pub mod output;
pub mod pki;
pub mod profile;
pub mod synthetic;
