//! Who is calling: the role, name and site carried by the client certificate (see
//! `cpreg_proto::role`), and the check each RPC makes before it does anything.

use cpreg_proto::role::Role;
use tonic::{Request, Status};

/// The holder of a verified client certificate (see `cpreg_proto::role`).
pub type Caller = cpreg_proto::role::CertificateHolder;

/// Checks the caller holds one of `allowed` roles for this authority. Anything else is
/// PERMISSION_DENIED, and logged.
pub fn require<T>(
    request: &Request<T>,
    authority: &str,
    allowed: &[Role],
    rpc: &str,
) -> Result<Caller, Status> {
    let certs = request
        .peer_certs()
        .ok_or_else(|| Status::unauthenticated("a client certificate is required"))?;
    let leaf = certs
        .first()
        .ok_or_else(|| Status::unauthenticated("a client certificate is required"))?;
    let caller = Caller::from_der(leaf.as_ref()).map_err(|why| {
        tracing::warn!(rpc, %why, "refused a certificate without a usable role");
        Status::permission_denied(why)
    })?;
    if caller.authority != authority {
        tracing::warn!(rpc, caller = %caller.label(), their = %caller.authority, "refused a certificate for another authority");
        return Err(Status::permission_denied(format!(
            "this certificate is for authority {:?}, not {authority:?}",
            caller.authority
        )));
    }
    if !allowed.contains(&caller.role) {
        tracing::warn!(rpc, caller = %caller.label(), "refused: wrong role");
        let roles: Vec<&str> = allowed.iter().map(|r| r.as_str()).collect();
        return Err(Status::permission_denied(format!(
            "{rpc} needs the {} role; this certificate is for {}",
            roles.join(" or "),
            caller.role
        )));
    }
    Ok(caller)
}
