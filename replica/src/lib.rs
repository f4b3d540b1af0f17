//! `cpreg-replica`: the read-only copy of one or more authorities' registers at an A&E, EDT or
//! CAIT site. It takes signed snapshots from the primaries, answers call-back-verified lookups
//! and reports every enquiry back.
//!
//! Snapshot intake, lookups and the enquiry outbox are built in the issues that follow the
//! primary register; until then this crate holds only the command line's shape.
