//! Who is calling: the role, name and site carried by the client certificate (see
//! `cpreg_proto::role`), and the check each RPC makes before it does anything.

use cpreg_proto::role::Role;
use tonic::{Request, Status};
use x509_parser::prelude::{FromDer, X509Certificate};

/// The holder of a verified client certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub role: Role,
    pub name: String,
    pub authority: String,
    pub site: Option<String>,
}

impl Caller {
    /// How the caller appears in revisions and the audit chain: "custodian:Jo Bloggs".
    pub fn label(&self) -> String {
        format!("{}:{}", self.role, self.name)
    }

    /// Reads the role encoding from a DER certificate.
    pub fn from_certificate(der: &[u8]) -> Result<Caller, String> {
        let (_, cert) =
            X509Certificate::from_der(der).map_err(|e| format!("unreadable certificate: {e}"))?;
        let subject = cert.subject();
        let first = |mut it: Box<
            dyn Iterator<Item = &x509_parser::x509::AttributeTypeAndValue<'_>> + '_,
        >| { it.next().and_then(|a| a.as_str().ok()).map(str::to_owned) };
        let role = first(Box::new(subject.iter_organizational_unit()))
            .ok_or("the certificate names no role (OU)")?
            .parse::<Role>()
            .map_err(|e| e.to_string())?;
        Ok(Caller {
            role,
            name: first(Box::new(subject.iter_common_name())).unwrap_or_default(),
            authority: first(Box::new(subject.iter_organization())).unwrap_or_default(),
            site: first(Box::new(subject.iter_locality())),
        })
    }
}

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
    let caller = Caller::from_certificate(leaf.as_ref()).map_err(|why| {
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
