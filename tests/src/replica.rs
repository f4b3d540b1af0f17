//! Replicas for the end-to-end tests: a site's configuration, certificate and enrolled key
//! written beside the primary's (by the same code the demo uses), and a replica started in this
//! process with its own clock.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use cpreg_replica::Replica;
use cpreg_replica::clock::FixedClock;
use cpreg_replica::config::{AuthorityConfig, Config};

use crate::{AUTHORITY, TestPki};

/// The primary's public key, read from its key file as an operator enrolling a replica would.
pub fn primary_public_key(pki: &TestPki) -> String {
    let config = cpreg_primary::config::Config::load(&pki.primary_dir().join("primary.toml"))
        .expect("primary config");
    cpreg::local::primary_public_key(&config).expect("primary's public key")
}

/// Writes the site's certificate for `pki`'s authority and returns its entry in a replica config.
pub fn authority_entry(pki: &TestPki, site: &str, primary_url: &str) -> AuthorityConfig {
    cpreg::local::replica_authority(
        &site_dir(pki, site),
        site,
        &pki.ca,
        primary_url,
        &primary_public_key(pki),
    )
    .expect("replica certificate")
}

pub fn site_dir(pki: &TestPki, site: &str) -> PathBuf {
    pki.path().join("replicas").join(site)
}

/// A replica configuration for `site` trusting the given authorities.
pub fn replica_config(pki: &TestPki, site: &str, authorities: Vec<AuthorityConfig>) -> Config {
    let mut config = cpreg::local::replica_config(&site_dir(pki, site), site, authorities)
        .expect("replica config");
    config.max_snapshot_bytes = 64 * 1024 * 1024;
    config
}

/// A replica running in this process.
pub struct TestReplica {
    pub replica: Replica,
    pub clock: Arc<FixedClock>,
}

impl TestReplica {
    /// Starts a replica of the test authority at `site`, dialling `primary_url`.
    pub async fn start(pki: &TestPki, site: &str, primary_url: &str) -> TestReplica {
        let config = replica_config(pki, site, vec![authority_entry(pki, site, primary_url)]);
        Self::start_with(config).await
    }

    pub async fn start_with(config: Config) -> TestReplica {
        let clock = Arc::new(FixedClock::new(crate::now()));
        let replica = Replica::start(config, clock.clone())
            .await
            .expect("replica starts");
        TestReplica { replica, clock }
    }

    /// The version held of the test authority.
    pub fn version(&self) -> u64 {
        self.status(AUTHORITY).version
    }

    pub fn status(&self, authority: &str) -> cpreg_replica::status::AuthorityStatus {
        self.replica
            .status()
            .into_iter()
            .find(|s| s.authority == authority)
            .expect("authority followed")
    }

    /// Waits until the replica holds `version` of `authority` (or newer).
    pub async fn wait_for(&self, authority: &str, version: u64) {
        for _ in 0..600 {
            if self.status(authority).version >= version {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "replica never reached version {version} of {authority}: {:?}",
            self.status(authority)
        );
    }

    /// An entry of the projection held, decoded by the caller.
    pub fn entry(&self, authority: &str, key: &str) -> Option<Vec<u8>> {
        self.replica.store().get(authority, key).expect("read")
    }
}

/// A lookup service for a replica of `pki`'s authority at `site` (the demo's set-up).
pub fn lookup_config(pki: &TestPki, site: &str) -> cpreg_replica::config::LookupConfig {
    cpreg::local::lookup_config(
        &site_dir(pki, site),
        &pki.ca,
        "127.0.0.1:0".parse().expect("addr"),
        60,
    )
    .expect("lookup config")
}

/// A terminal profile of `organisation` at `site`, dialling the replica at `replica_addr`.
pub fn terminal_profile(
    pki: &TestPki,
    name: &str,
    site: &str,
    organisation: &str,
    replica_addr: std::net::SocketAddr,
) -> cpreg::profile::Profile {
    let dir = pki.path().join("profiles").join(format!(
        "terminal-{site}-{organisation}-{}",
        name.replace(' ', "-")
    ));
    let replica = format!("https://127.0.0.1:{}", replica_addr.port());
    cpreg::local::terminal_profile(
        &dir,
        &pki.ca,
        name,
        site,
        organisation,
        "https://127.0.0.1:1",
        &replica,
    )
    .expect("terminal profile")
}

/// Lists organisations in the directory, each `(id, name, call-back number, site)`, as the
/// custodian does before their terminals can ask.
pub async fn list_organisations(
    custodian: &mut cpreg_proto::pb::register_client::RegisterClient<tonic::transport::Channel>,
    organisations: &[(&str, &str, &str, &str)],
) {
    use cpreg_proto::pb;
    for (id, name, number, site) in organisations {
        custodian
            .put_organisation(pb::PutOrganisationRequest {
                organisation: Some(pb::Organisation {
                    id: (*id).into(),
                    name: (*name).into(),
                    kind: pb::OrganisationKind::EmergencyDepartment.into(),
                    callback_number: (*number).into(),
                    site: (*site).into(),
                    ..Default::default()
                }),
            })
            .await
            .expect("organisation listed");
    }
}

/// A duty console for a replica of `pki`'s authority at `site`, its lookups made for
/// `organisation`, on a free loopback port (the demo's set-up).
pub fn console_config(
    pki: &TestPki,
    site: &str,
    organisation: &str,
) -> cpreg_replica::config::ConsoleConfig {
    cpreg::local::console_config(
        &site_dir(pki, site),
        &pki.ca,
        "127.0.0.1:0".parse().expect("addr"),
        organisation,
    )
    .expect("console config")
}
