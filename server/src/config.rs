//! The primary's configuration: one TOML file, unknown keys refused, command-line flags win.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Everything a primary needs to start.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The authority's short id ("southwark"); certificates' O must match it.
    pub authority: String,
    /// Where the register, the signing key and other state live.
    pub data_dir: PathBuf,
    /// The address to listen on for gRPC over mTLS.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    pub tls: TlsConfig,
    /// What every lookup answer says about the authority.
    #[serde(default)]
    pub contact: AuthorityContact,
    /// How replicas are kept up to date.
    #[serde(default)]
    pub publishing: Publishing,
}

/// The authority's name and numbers, published to every replica.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorityContact {
    pub name: String,
    /// Children's services office number (working hours).
    pub office_phone: String,
    /// The Emergency Duty Team's number (out of hours).
    pub edt_phone: String,
}

/// Timings of snapshot publishing.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Publishing {
    /// How often a connected replica gets a freshly signed freshness statement.
    pub freshness_interval_seconds: u64,
    /// How long a signed manifest stays valid; an older one is refused as frozen.
    pub manifest_lifetime_hours: u64,
}

impl Default for Publishing {
    fn default() -> Self {
        Publishing {
            freshness_interval_seconds: 60,
            manifest_lifetime_hours: 7 * 24,
        }
    }
}

/// The server's certificate and the CA whose client certificates it accepts.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: PathBuf,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 7443))
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
}

impl Config {
    /// Reads a TOML file; unknown keys are refused with the key named.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })
    }

    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("register.redb")
    }

    pub fn signing_key_path(&self) -> PathBuf {
        self.data_dir.join("signing.key")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_config_in_deploy_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/primary.toml");
        let config = Config::load(&path).expect("example loads");
        assert_eq!(config.authority, "demo-borough");
        assert_eq!(
            config.signing_key_path(),
            Path::new("/var/lib/cpreg-primary/signing.key")
        );
    }

    #[test]
    fn an_unknown_key_is_refused_by_name() {
        let dir = std::env::temp_dir().join(format!("cpreg-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("bad.toml");
        std::fs::write(&path, "authority = \"x\"\ndata_dir = \"/tmp\"\nlisten_on = \"1\"\n[tls]\ncert=\"a\"\nkey=\"b\"\nclient_ca=\"c\"\n").expect("write");
        let err = Config::load(&path).expect_err("refused").to_string();
        assert!(err.contains("listen_on"), "{err}");
        let err = Config::load(&dir.join("missing.toml"))
            .expect_err("missing")
            .to_string();
        assert!(err.contains("missing.toml"), "{err}");
    }
}
