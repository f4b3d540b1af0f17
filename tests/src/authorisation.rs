//! The verdict of one cell of an authorisation matrix: who called which RPC, and whether they
//! may.

use std::fmt::Display;

use tonic::{Code, Status};

/// Checks the `result` of `rpc` called by `who`: a call `allowed` may fail for other reasons (a
/// record that is not there) but is never refused PERMISSION_DENIED; any other is refused so.
/// Returns the refusal, for what the caller checks of its message.
pub fn judged(
    rpc: &str,
    who: impl Display,
    allowed: bool,
    result: Result<(), Status>,
) -> Option<Status> {
    if allowed {
        if let Err(e) = &result {
            assert_ne!(
                e.code(),
                Code::PermissionDenied,
                "{rpc} wrongly refused {who}: {}",
                e.message()
            );
        }
        return None;
    }
    let e = result.expect_err(&format!("{rpc} let {who} through"));
    assert_eq!(
        e.code(),
        Code::PermissionDenied,
        "{rpc} for {who}: {}",
        e.message()
    );
    Some(e)
}
