//! The roles a client certificate can carry, and how they are written into it.
//!
//! A certificate issued by the authority's CA names its holder in the subject's common name (CN),
//! the role in the organisational unit (OU), and the site (for replicas and terminals) in the
//! locality (L). The primary and replicas read exactly these attributes; `cpreg pki` writes them.

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
