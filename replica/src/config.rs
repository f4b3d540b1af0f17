//! The replica's configuration: one TOML file naming the site and every authority it trusts,
//! unknown keys refused, command-line flags win.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};

/// Everything a replica needs to start.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The site this replica serves ("ae", "edt", "cait"): for logs and status reports; the
    /// primary learns it from the replica's certificate (L), not from here.
    pub site: String,
    /// Where the replica's redb file lives (created 0700, the file 0600).
    pub data_dir: PathBuf,
    /// Past this many hours since the primary last vouched for the version held, answers are
    /// marked stale and advise confirming with the authority's EDT.
    #[serde(default = "default_staleness_threshold_hours")]
    pub staleness_threshold_hours: u64,
    /// The largest payload a manifest may declare: the bound on endless data.
    #[serde(default = "default_max_snapshot_bytes")]
    pub max_snapshot_bytes: u64,
    /// If set, a subscription that brings no frame at all for this many seconds is taken as a
    /// dead link and redialled; set it above the primary's freshness interval.
    #[serde(default)]
    pub freshness_check_seconds: Option<u64>,
    /// Every authority whose register this replica holds (a London A&E sees many boroughs).
    #[serde(rename = "authority")]
    pub authorities: Vec<AuthorityConfig>,
    /// Where the site's terminals and duty workers reach the replica; without it the replica
    /// follows its primaries but answers no lookups.
    #[serde(default)]
    pub lookups: Option<LookupConfig>,
    /// Enquiries the primary has acknowledged are kept this many days for the site's own
    /// record, then removed; those not yet acknowledged are kept however old they are.
    #[serde(default = "default_delivered_retention_days")]
    pub delivered_retention_days: u32,
    /// The duty console: a web page on the site's network for the people on shift; it needs
    /// `[lookups]`, whose limits and call-back time it shares.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub console: Option<ConsoleConfig>,
    /// Where Prometheus scrapes the replica; no listener without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<MetricsConfig>,
    /// Logs as human-readable lines or as JSON, one object a line.
    #[serde(default)]
    pub log_format: LogFormat,
}

/// The plain-HTTP listener serving `GET /metrics` in the Prometheus text format. It carries no
/// personal data, but bind it to loopback or a management network all the same.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Like `127.0.0.1:9465`; port 0 picks a free one.
    pub listen: std::net::SocketAddr,
}

/// How log lines are written (to standard error).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Text for a person reading a terminal or the journal.
    #[default]
    Human,
    /// One JSON object a line, for a log collector.
    Json,
}

/// The duty console at the site (HTTPS, operator accounts, see `docs/console.md`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleConfig {
    /// Where browsers on the site's network reach it.
    pub listen: std::net::SocketAddr,
    /// The console's server certificate and key (PEM).
    pub cert: PathBuf,
    pub key: PathBuf,
    /// The directory organisation that the console's direct lookups are made for: it must be
    /// listed at this site, as a terminal's would be.
    pub organisation: String,
    /// The operator accounts (`cpreg-replica operator add`); default `operators.json` in the
    /// data folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operators_file: Option<PathBuf>,
    /// A session ends after this many minutes without a request.
    #[serde(default = "default_session_minutes")]
    pub session_minutes: u64,
    /// This many failed sign-ins in a row lock the account, and the address they came from...
    #[serde(default = "default_lockout_attempts")]
    pub lockout_attempts: u32,
    /// ...for this many minutes.
    #[serde(default = "default_lockout_minutes")]
    pub lockout_minutes: u64,
    /// If set, browsers must also present a client certificate issued by this CA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ca: Option<PathBuf>,
}

fn default_session_minutes() -> u64 {
    15
}

fn default_lockout_attempts() -> u32 {
    5
}

fn default_lockout_minutes() -> u64 {
    15
}

/// The lookup service at the site.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LookupConfig {
    /// gRPC over mutual TLS, for terminals' and duty workers' certificates.
    pub listen: std::net::SocketAddr,
    /// The replica's server certificate and key.
    pub cert: PathBuf,
    pub key: PathBuf,
    /// The CA that issued the site's terminal certificates (the home authority's).
    pub client_ca: PathBuf,
    /// Lookups each operator may make in an hour; 0 lifts the limit (load tests only).
    #[serde(default = "default_rate_limit_per_hour")]
    pub rate_limit_per_hour: u32,
    /// Lookups the whole site may make in an hour; 0 lifts the limit.
    #[serde(default = "default_site_rate_limit_per_hour")]
    pub site_rate_limit_per_hour: u32,
    /// Lookups one terminal may make in an hour, whatever operator names are typed at it: an
    /// operator's name is free text, so the per-operator limit alone is got round by typing
    /// new ones. At least `rate_limit_per_hour`; 0 lifts the limit.
    #[serde(default = "default_terminal_rate_limit_per_hour")]
    pub terminal_rate_limit_per_hour: u32,
    /// After a sweep (lookups from one terminal alike but for one part, like one name with date
    /// after date of birth), lookups continuing it are refused for this many minutes, at most a
    /// day; 0 looks for no sweeps (load tests only).
    #[serde(default = "default_sweep_hold_minutes")]
    pub sweep_hold_minutes: u64,
    /// How long a call-back ticket waits for the duty worker to confirm the enquirer.
    #[serde(default = "default_callback_minutes")]
    pub callback_ticket_minutes: u64,
}

fn default_rate_limit_per_hour() -> u32 {
    60
}

fn default_site_rate_limit_per_hour() -> u32 {
    1_000
}

/// Twice one operator's: two clinicians at a shared workstation on a busy night, each at their
/// own limit; typing new names at it gains no more than that.
fn default_terminal_rate_limit_per_hour() -> u32 {
    default_rate_limit_per_hour() * 2
}

/// An hour: past the end of the sweep's half-hour window, and short enough that a hold set off
/// by mistake is over before the next patient is.
fn default_sweep_hold_minutes() -> u64 {
    60
}

/// The longest hold on a sweep that the configuration accepts.
const MAX_SWEEP_HOLD_MINUTES: u64 = 24 * 60;

fn default_callback_minutes() -> u64 {
    30
}

/// One trusted authority: where its primary is and which keys it signs with.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorityConfig {
    /// The authority's short id; manifests must name it.
    pub id: String,
    /// The primary's gRPC address, like `https://primary.example.gov.uk:7443`.
    pub primary: String,
    /// The name on the primary's server certificate.
    #[serde(default = "default_server_name")]
    pub server_name: String,
    /// The enrolled Ed25519 public keys (64 hex digits each): the roots of trust that every
    /// rotation must chain to.
    pub public_keys: Vec<String>,
    /// This replica's client certificate for the authority (OU=replica), and its CA.
    pub tls: TlsConfig,
}

/// The replica's client identity towards one authority's primary.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// Client certificate issued by the authority's CA with role `replica`.
    pub cert: PathBuf,
    pub key: PathBuf,
    /// The authority's CA, which must have issued the primary's server certificate.
    pub ca: PathBuf,
}

fn default_staleness_threshold_hours() -> u64 {
    24
}

fn default_delivered_retention_days() -> u32 {
    30
}

fn default_max_snapshot_bytes() -> u64 {
    1 << 30
}

fn default_server_name() -> String {
    "localhost".to_owned()
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file is not valid TOML for this format (toml's message names an unknown key).
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    /// The file parsed but says something unusable.
    #[error("config: {0}")]
    Invalid(String),
}

impl Config {
    /// Reads and checks a TOML file; unknown keys are refused with the key named.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let config: Config = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        config.validate().map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        Ok(config)
    }

    /// Checks what serde cannot: ids, URLs and keys. [`crate::Replica::start`] calls it too, so a
    /// configuration built in code gets the same checks as one read from a file.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |m: String| Err(ConfigError::Invalid(m));
        if self.site.trim().is_empty() {
            return invalid("`site` is empty: name the site, like \"ae\"".into());
        }
        if self.authorities.is_empty() {
            return invalid(
                "no [[authority]]: a replica needs at least one authority to follow".into(),
            );
        }
        if self.max_snapshot_bytes == 0 {
            return invalid("`max_snapshot_bytes` is 0".into());
        }
        if self.freshness_check_seconds == Some(0) {
            return invalid(
                "`freshness_check_seconds` is 0: leave it out or give a number of seconds".into(),
            );
        }
        if let Some(console) = &self.console {
            if self.lookups.is_none() {
                return invalid(
                    "[console] needs [lookups]: the console's lookups share its limits and call-back time".into(),
                );
            }
            if console.organisation.trim().is_empty() {
                return invalid(
                    "[console] `organisation` is empty: give the directory id of the organisation the console serves".into(),
                );
            }
            if console.session_minutes == 0 || console.lockout_attempts == 0 {
                return invalid(
                    "[console] `session_minutes` and `lockout_attempts` must be at least 1".into(),
                );
            }
        }
        if let Some(lookups) = &self.lookups {
            lookups.validate()?;
        }
        let mut seen = HashSet::new();
        for authority in &self.authorities {
            authority.validate()?;
            if !seen.insert(authority.id.as_str()) {
                return invalid(format!("authority {:?} is listed twice", authority.id));
            }
        }
        Ok(())
    }

    /// The replica's database.
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("replica.redb")
    }

    /// The duty console's operator accounts.
    pub fn operators_path(&self) -> PathBuf {
        self.console
            .as_ref()
            .and_then(|c| c.operators_file.clone())
            .unwrap_or_else(|| self.data_dir.join("operators.json"))
    }

    /// The staleness threshold as a duration.
    pub fn staleness_threshold(&self) -> chrono::Duration {
        let hours = i64::try_from(self.staleness_threshold_hours).unwrap_or(i64::MAX / 3_600_000);
        chrono::Duration::try_hours(hours).unwrap_or(chrono::Duration::MAX)
    }
}

impl LookupConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        let (operator, terminal) = (self.rate_limit_per_hour, self.terminal_rate_limit_per_hour);
        if operator != 0 && terminal != 0 && terminal < operator {
            return Err(ConfigError::Invalid(format!(
                "[lookups] `terminal_rate_limit_per_hour` ({terminal}) is below `rate_limit_per_hour` ({operator}): a terminal is shared by its operators, so give it at least as many, or 0 to lift it"
            )));
        }
        if self.sweep_hold_minutes > MAX_SWEEP_HOLD_MINUTES {
            return Err(ConfigError::Invalid(format!(
                "[lookups] `sweep_hold_minutes` ({}) is more than a day ({MAX_SWEEP_HOLD_MINUTES}): a longer hold only keeps the next shift from asking",
                self.sweep_hold_minutes
            )));
        }
        Ok(())
    }

    /// How long lookups continuing a sweep are refused; zero looks for no sweeps.
    pub fn sweep_hold(&self) -> chrono::Duration {
        let minutes = self.sweep_hold_minutes.min(MAX_SWEEP_HOLD_MINUTES);
        chrono::Duration::minutes(i64::try_from(minutes).unwrap_or(0))
    }
}

impl AuthorityConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        let id_ok = !self.id.is_empty()
            && self.id.len() <= 64
            && self
                .id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !id_ok {
            return Err(ConfigError::Invalid(format!(
                "authority id {:?}: use 1 to 64 letters, digits, '-' or '_'",
                self.id
            )));
        }
        if !self.primary.starts_with("https://") {
            return Err(ConfigError::Invalid(format!(
                "authority {}: `primary` must be an https:// address, not {:?}",
                self.id, self.primary
            )));
        }
        self.enrolled_keys().map(|_| ())
    }

    /// The enrolled keys, decoded; at least one.
    pub fn enrolled_keys(&self) -> Result<Vec<VerifyingKey>, ConfigError> {
        if self.public_keys.is_empty() {
            return Err(ConfigError::Invalid(format!(
                "authority {}: `public_keys` is empty: enrol at least one of its signing keys",
                self.id
            )));
        }
        self.public_keys
            .iter()
            .map(|text| {
                let bad = |why: &str| {
                    ConfigError::Invalid(format!(
                        "authority {}: public key {text:?} {why}: give 64 hex digits of an Ed25519 public key",
                        self.id
                    ))
                };
                let bytes: [u8; 32] = hex::decode(text.trim())
                    .map_err(|_| bad("is not hex"))?
                    .try_into()
                    .map_err(|_| bad("is not 32 bytes"))?;
                let key = VerifyingKey::from_bytes(&bytes).map_err(|_| bad("is not a valid key"))?;
                if key.is_weak() {
                    return Err(bad("is a weak (small-order) key that anyone could sign for"));
                }
                Ok(key)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, text: &str) -> PathBuf {
        let path = dir.join("replica.toml");
        std::fs::write(&path, text).expect("write config");
        path
    }

    #[test]
    fn the_example_config_loads_with_its_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/replica.toml");
        let config = Config::load(&path).expect("example loads");
        assert_eq!(config.site, "ae");
        assert_eq!(config.staleness_threshold_hours, 24);
        assert_eq!(config.max_snapshot_bytes, 1 << 30);
        assert_eq!(config.authorities.len(), 2);
        assert_eq!(config.authorities[0].server_name, "localhost");
        assert_eq!(
            config.authorities[0].enrolled_keys().expect("keys").len(),
            1
        );
    }

    #[test]
    fn an_unknown_key_is_refused_by_name_with_the_file() {
        let dir = tempfile::tempdir().expect("dir");
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/replica.toml"),
        )
        .expect("example");
        let path = write(
            dir.path(),
            &text.replace("[authority.tls]", "[authority.tls]\nclient_ca = \"x\""),
        );
        let err = Config::load(&path).expect_err("refused").to_string();
        assert!(
            err.contains("client_ca") && err.contains("replica.toml"),
            "{err}"
        );
        let err = Config::load(&dir.path().join("missing.toml"))
            .expect_err("missing")
            .to_string();
        assert!(err.contains("missing.toml"), "{err}");
    }

    #[test]
    fn a_console_needs_lookups_and_an_organisation_and_refuses_unknown_keys() {
        let dir = tempfile::tempdir().expect("dir");
        let key = hex::encode([1u8; 32]);
        let base = format!(
            "site = \"ae\"\ndata_dir = \"/tmp/r\"\n[[authority]]\nid = \"lambeth\"\nprimary = \"https://x\"\npublic_keys = [\"{key}\"]\n[authority.tls]\ncert = \"c\"\nkey = \"k\"\nca = \"a\"\n"
        );
        let console = "[console]\nlisten = \"127.0.0.1:0\"\ncert = \"c\"\nkey = \"k\"\norganisation = \"st-elsewhere-ae\"\n";
        let lookups =
            "[lookups]\nlisten = \"127.0.0.1:0\"\ncert = \"c\"\nkey = \"k\"\nclient_ca = \"a\"\n";
        let err = Config::load(&write(dir.path(), &format!("{base}{console}")))
            .expect_err("no lookups")
            .to_string();
        assert!(err.contains("[console] needs [lookups]"), "{err}");
        let config = Config::load(&write(dir.path(), &format!("{base}{lookups}{console}")))
            .expect("console with lookups");
        let console_config = config.console.as_ref().expect("console");
        assert_eq!(
            (
                console_config.session_minutes,
                console_config.lockout_attempts
            ),
            (15, 5)
        );
        assert_eq!(config.operators_path(), Path::new("/tmp/r/operators.json"));
        let err = Config::load(&write(
            dir.path(),
            &format!("{base}{lookups}{console}session_hours = 8\n"),
        ))
        .expect_err("unknown key")
        .to_string();
        assert!(err.contains("session_hours"), "{err}");
    }

    #[test]
    fn a_terminal_limit_and_sweep_hold_default_and_are_checked() {
        let dir = tempfile::tempdir().expect("dir");
        let key = hex::encode([1u8; 32]);
        let base = format!(
            "site = \"ae\"\ndata_dir = \"/tmp/r\"\n[[authority]]\nid = \"lambeth\"\nprimary = \"https://x\"\npublic_keys = [\"{key}\"]\n[authority.tls]\ncert = \"c\"\nkey = \"k\"\nca = \"a\"\n[lookups]\nlisten = \"127.0.0.1:0\"\ncert = \"c\"\nkey = \"k\"\nclient_ca = \"a\"\n"
        );
        let config = Config::load(&write(dir.path(), &base)).expect("defaults");
        let lookups = config.lookups.expect("lookups");
        assert_eq!(
            (
                lookups.rate_limit_per_hour,
                lookups.terminal_rate_limit_per_hour,
                lookups.sweep_hold_minutes
            ),
            (60, 120, 60)
        );
        assert_eq!(lookups.sweep_hold(), chrono::Duration::hours(1));
        let lifted = format!(
            "{base}rate_limit_per_hour = 0\nterminal_rate_limit_per_hour = 0\nsweep_hold_minutes = 0\n"
        );
        let lifted = Config::load(&write(dir.path(), &lifted)).expect("0 lifts them");
        assert_eq!(
            lifted.lookups.expect("lookups").sweep_hold(),
            chrono::Duration::zero()
        );
        for (extra, expected) in [
            (
                "terminal_rate_limit_per_hour = 10\n",
                "below `rate_limit_per_hour` (60)",
            ),
            ("sweep_hold_minutes = 10000\n", "more than a day"),
        ] {
            let err = Config::load(&write(dir.path(), &format!("{base}{extra}")))
                .expect_err("refused")
                .to_string();
            assert!(err.contains(expected), "{err}");
        }
    }

    #[test]
    fn a_bad_key_or_address_is_refused_with_what_to_give() {
        let dir = tempfile::tempdir().expect("dir");
        let base = "site = \"ae\"\ndata_dir = \"/tmp/r\"\n[[authority]]\nid = \"lambeth\"\n";
        let tls = "[authority.tls]\ncert = \"c\"\nkey = \"k\"\nca = \"a\"\n";
        let key = hex::encode([1u8; 32]);
        let cases = [
            (
                format!("primary = \"http://x\"\npublic_keys = [\"{key}\"]\n"),
                "https://",
            ),
            (
                "primary = \"https://x\"\npublic_keys = [\"zz\"]\n".to_owned(),
                "64 hex digits",
            ),
            (
                "primary = \"https://x\"\npublic_keys = []\n".to_owned(),
                "at least one",
            ),
        ];
        for (middle, expected) in cases {
            let path = write(dir.path(), &format!("{base}{middle}{tls}"));
            let err = Config::load(&path).expect_err("refused").to_string();
            assert!(err.contains(expected), "{err}");
        }
    }
}
