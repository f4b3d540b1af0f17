//! A client profile: a folder holding the holder's certificate and key, the authority's CA and
//! the addresses to dial (DESIGN section 9). `cpreg pki issue` and `cpreg demo` write them.

use std::path::{Path, PathBuf};

use cpreg_proto::pb::lookup_client::LookupClient;
use cpreg_proto::pb::register_client::RegisterClient;
use cpreg_proto::pb::replication_client::ReplicationClient;
use cpreg_proto::role::Role;
use serde::{Deserialize, Serialize};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

/// The file in a profile folder that says who and where.
pub const PROFILE_FILE: &str = "profile.toml";

/// What `profile.toml` holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileFile {
    pub role: Role,
    pub name: String,
    pub authority: String,
    /// The primary's gRPC address, like `https://127.0.0.1:7443`.
    pub primary: String,
    /// The name on the servers' certificates.
    #[serde(default = "default_server_name")]
    pub server_name: String,
    /// The site's replica, for terminal and duty profiles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
}

fn default_server_name() -> String {
    "localhost".into()
}

/// A loaded profile.
#[derive(Debug, Clone)]
pub struct Profile {
    pub dir: PathBuf,
    pub file: ProfileFile,
}

/// A profile that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProfileError {
    #[error(
        "no profile given: pass --profile DIR or set CPREG_PROFILE (a folder with profile.toml, cert.pem, key.pem, ca.pem)"
    )]
    Missing,
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("cannot connect to {address}: {message}")]
    Connect { address: String, message: String },
}

fn read(path: &Path) -> Result<Vec<u8>, ProfileError> {
    std::fs::read(path).map_err(|source| ProfileError::Read {
        path: path.to_owned(),
        source,
    })
}

impl Profile {
    pub fn load(dir: Option<&Path>) -> Result<Profile, ProfileError> {
        let dir = dir.ok_or(ProfileError::Missing)?;
        let path = dir.join(PROFILE_FILE);
        let text = String::from_utf8_lossy(&read(&path)?).into_owned();
        let file = toml::from_str(&text).map_err(|e| ProfileError::Parse {
            path,
            message: e.to_string(),
        })?;
        Ok(Profile {
            dir: dir.to_owned(),
            file,
        })
    }

    /// Writes `profile.toml` into `dir` (the certificate files are written by the caller).
    pub fn write(dir: &Path, file: &ProfileFile) -> Result<(), ProfileError> {
        let path = dir.join(PROFILE_FILE);
        let text = toml::to_string(file).map_err(|e| ProfileError::Parse {
            path: path.clone(),
            message: e.to_string(),
        })?;
        std::fs::write(&path, text).map_err(|source| ProfileError::Read { path, source })
    }

    fn tls(&self) -> Result<ClientTlsConfig, ProfileError> {
        Ok(ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(read(&self.dir.join("ca.pem"))?))
            .identity(Identity::from_pem(
                read(&self.dir.join("cert.pem"))?,
                read(&self.dir.join("key.pem"))?,
            ))
            .domain_name(self.file.server_name.clone()))
    }

    /// A mutual-TLS channel to `address`.
    pub async fn channel(&self, address: &str) -> Result<Channel, ProfileError> {
        cpreg_primary::install_crypto_provider();
        let connect = |message: String| ProfileError::Connect {
            address: address.to_owned(),
            message,
        };
        Channel::from_shared(address.to_owned())
            .map_err(|e| connect(e.to_string()))?
            .tls_config(self.tls()?)
            .map_err(|e| connect(e.to_string()))?
            .connect_timeout(std::time::Duration::from_secs(10))
            .connect()
            .await
            .map_err(|e| {
                connect(format!(
                    "{e}: {}",
                    std::error::Error::source(&e)
                        .map(|s| s.to_string())
                        .unwrap_or_default()
                ))
            })
    }

    /// The primary's register service.
    pub async fn register(&self) -> Result<RegisterClient<Channel>, ProfileError> {
        let channel = self.channel(&self.file.primary).await?;
        Ok(RegisterClient::new(channel)
            .max_decoding_message_size(cpreg_primary::MAX_MESSAGE_BYTES)
            .max_encoding_message_size(cpreg_primary::MAX_MESSAGE_BYTES))
    }

    /// The primary's replication service (what the custodian sees of the replicas).
    pub async fn replication(&self) -> Result<ReplicationClient<Channel>, ProfileError> {
        Ok(ReplicationClient::new(
            self.channel(&self.file.primary).await?,
        ))
    }

    /// The site replica's lookup service (terminal and duty profiles).
    pub async fn lookup(&self) -> Result<LookupClient<Channel>, ProfileError> {
        let address = self.file.replica.clone().ok_or_else(|| ProfileError::Parse {
            path: self.dir.join(PROFILE_FILE),
            message: "this profile names no replica: lookups go to the site's replica (set `replica = \"https://...\"`)".into(),
        })?;
        Ok(LookupClient::new(self.channel(&address).await?))
    }
}
