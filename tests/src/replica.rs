//! Replicas for the end-to-end tests: a site's configuration, certificate and enrolled key
//! written beside the primary's, and a replica started in this process with its own clock.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use cpreg::pki::write_issued;
use cpreg_proto::role::Role;
use cpreg_replica::Replica;
use cpreg_replica::clock::FixedClock;
use cpreg_replica::config::{AuthorityConfig, Config, TlsConfig};
use ed25519_dalek::SigningKey;

use crate::{AUTHORITY, TestPki};

/// The primary's public key, read from its key file as an operator enrolling a replica would.
pub fn primary_public_key(pki: &TestPki) -> String {
    let text = std::fs::read_to_string(pki.primary_dir().join("data").join("signing.key"))
        .expect("primary's signing key");
    let bytes: [u8; 32] = hex::decode(text.trim())
        .expect("hex")
        .try_into()
        .expect("32 bytes");
    hex::encode(SigningKey::from_bytes(&bytes).verifying_key().as_bytes())
}

/// Writes the site's certificate for `pki`'s authority and returns its entry in a replica config.
pub fn authority_entry(pki: &TestPki, site: &str, primary_url: &str) -> AuthorityConfig {
    let dir = site_dir(pki, site).join("tls").join(pki.ca.authority());
    std::fs::create_dir_all(&dir).expect("tls dir");
    let issued = pki
        .ca
        .issue_client(Role::Replica, &format!("Replica {site}"), Some(site), 30)
        .expect("replica certificate");
    write_issued(&issued, &dir.join("cert.pem"), &dir.join("key.pem")).expect("write certificate");
    std::fs::write(dir.join("ca.pem"), pki.ca.ca_pem()).expect("ca");
    AuthorityConfig {
        id: pki.ca.authority().to_owned(),
        primary: primary_url.to_owned(),
        server_name: "localhost".into(),
        public_keys: vec![primary_public_key(pki)],
        tls: TlsConfig {
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
            ca: dir.join("ca.pem"),
        },
    }
}

pub fn site_dir(pki: &TestPki, site: &str) -> PathBuf {
    pki.path().join("replicas").join(site)
}

/// A replica configuration for `site` trusting the given authorities.
pub fn replica_config(pki: &TestPki, site: &str, authorities: Vec<AuthorityConfig>) -> Config {
    Config {
        site: site.to_owned(),
        data_dir: site_dir(pki, site).join("data"),
        staleness_threshold_hours: 24,
        max_snapshot_bytes: 64 * 1024 * 1024,
        freshness_check_seconds: None,
        authorities,
    }
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
