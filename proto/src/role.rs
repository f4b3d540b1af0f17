//! The roles a client certificate can carry, and how they are written into it.
//!
//! A certificate issued by the authority's CA names its holder in the subject's common name (CN),
//! the role in the organisational unit (OU), the authority in the organisation (O), and the site
//! (for replicas and terminals) in the locality (L). A terminal's certificate also names the
//! directory organisation it belongs to, as a subject alternative name URI
//! `urn:cpreg:organisation:<id>`. The primary and replicas read exactly these; `cpreg pki`
//! writes them.

use std::fmt;
use std::str::FromStr;

/// Who a certificate lets its holder act as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// The Safeguarding Unit: keeps the record.
    Custodian,
    /// Reads the record and the audit chain; changes nothing.
    Auditor,
    /// A site's replica: subscribes to snapshots and reports enquiries.
    Replica,
    /// A registered terminal or duty worker at a site: makes lookups and enquiries.
    Terminal,
    /// A server's own certificate (primary or replica).
    Server,
}

impl Role {
    /// Every role, in a stable order.
    pub const ALL: [Role; 5] = [
        Role::Custodian,
        Role::Auditor,
        Role::Replica,
        Role::Terminal,
        Role::Server,
    ];

    /// The spelling written into certificates and profiles.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Custodian => "custodian",
            Role::Auditor => "auditor",
            Role::Replica => "replica",
            Role::Terminal => "terminal",
            Role::Server => "server",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role name that is not one of [`Role::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?}: use one of custodian, auditor, replica, terminal, server")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownRole(s.to_owned()))
    }
}

/// The URI prefix naming a terminal's organisation in its certificate.
pub const ORGANISATION_URI_PREFIX: &str = "urn:cpreg:organisation:";

/// The holder of a verified client certificate, as its subject and names say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateHolder {
    pub role: Role,
    pub name: String,
    pub authority: String,
    pub site: Option<String>,
    /// For terminals: the directory organisation the terminal belongs to.
    pub organisation: Option<String>,
}

impl CertificateHolder {
    /// How the holder appears in records and the audit chain: "custodian:Jo Bloggs".
    pub fn label(&self) -> String {
        format!("{}:{}", self.role, self.name)
    }

    /// Reads the role encoding from a DER certificate (already verified by TLS).
    pub fn from_der(der: &[u8]) -> Result<CertificateHolder, String> {
        use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};
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
        let organisation = cert
            .subject_alternative_name()
            .ok()
            .flatten()
            .and_then(|san| {
                san.value.general_names.iter().find_map(|name| match name {
                    GeneralName::URI(uri) => {
                        uri.strip_prefix(ORGANISATION_URI_PREFIX).map(str::to_owned)
                    }
                    _ => None,
                })
            });
        Ok(CertificateHolder {
            role,
            name: first(Box::new(subject.iter_common_name())).unwrap_or_default(),
            authority: first(Box::new(subject.iter_organization())).unwrap_or_default(),
            site: first(Box::new(subject.iter_locality())),
            organisation,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_role_round_trips_through_its_name() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        assert!("admin".parse::<Role>().is_err());
    }
}
