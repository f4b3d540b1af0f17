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
    /// Where the primary's notifications go; without it they stay queued in the register.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notifications: Option<Notifications>,
    /// How long records made from enquiries are kept.
    #[serde(default)]
    pub retention: Retention,
    /// The signing key's file, when it is not `data_dir/signing.key` (a credential store, say).
    /// Rotation writes the next and retired keys beside it, so its folder must be writable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_key: Option<PathBuf>,
    /// Where Prometheus scrapes the primary; no listener without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<MetricsConfig>,
    /// Logs as human-readable lines or as JSON, one object a line.
    #[serde(default)]
    pub log_format: LogFormat,
}

/// The plain-HTTP listener serving `GET /metrics` in the Prometheus text format. It carries no
/// personal data, but bind it to loopback or a management network all the same.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Like `127.0.0.1:9464`; port 0 picks a free one.
    pub listen: SocketAddr,
}

/// How log lines are written (to standard error).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Text for a person reading a terminal or the journal.
    #[default]
    Human,
    /// One JSON object a line, for a log collector.
    Json,
}

/// How long what enquiries leave behind is kept, as the authority's retention schedule says.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Retention {
    /// Contacts (enquiries about children without a plan) are removed this many days after
    /// they were recorded; 0 keeps them for ever.
    pub contacts_days: u32,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            contacts_days: 2 * 365,
        }
    }
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

/// Where notifications are delivered (DESIGN section 6): a webhook, e-mail, or both. Each is
/// retried with backoff until it takes the notification.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Notifications {
    /// The duty team's shared inbox: e-mail for notifications that name nobody.
    pub duty_inbox: String,
    /// The first retry comes after about this long; each later one after twice the last.
    #[serde(default = "default_retry_base_seconds")]
    pub retry_base_seconds: f64,
    /// No wait between retries is longer than this.
    #[serde(default = "default_retry_cap_seconds")]
    pub retry_cap_seconds: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<WebhookConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp: Option<SmtpConfig>,
}

/// The authority's integration endpoint, which gets each notification as JSON.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// `https://...`; `http://` only with `allow_http`.
    pub url: String,
    /// The only CA trusted for the endpoint's certificate; the system's trust store without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// Allows a plain `http://` URL: for a relay on the same machine, or local testing.
    #[serde(default)]
    pub allow_http: bool,
    /// Connecting, sending and the answer together may take no longer than this.
    #[serde(default = "default_webhook_timeout_seconds")]
    pub timeout_seconds: u64,
}

/// The mail relay notifications are sent through.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    pub host: String,
    /// 25 without TLS, 587 with STARTTLS, 465 with TLS unless given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// The sender of every notification ("Children's Services <cpreg@borough.gov.uk>").
    pub from: String,
    pub tls: SmtpTls,
    /// A CA to trust for the relay's certificate besides the built-in (Mozilla) roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// A file holding the user name on its first line and the password on its second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_file: Option<PathBuf>,
    /// Each step of the conversation with the relay may take no longer than this.
    #[serde(default = "default_smtp_timeout_seconds")]
    pub timeout_seconds: u64,
}

/// How the connection to the mail relay is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain SMTP: only for a relay on the same machine or network segment.
    None,
    /// Plain connection upgraded with STARTTLS, which the relay must offer.
    Starttls,
    /// TLS from the first byte (SMTPS).
    Tls,
}

impl SmtpConfig {
    /// The configured port, or the usual one for the TLS mode.
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(match self.tls {
            SmtpTls::None => 25,
            SmtpTls::Starttls => 587,
            SmtpTls::Tls => 465,
        })
    }
}

/// The longest a notification may wait between two attempts: a day.
const MAX_RETRY_CAP_SECONDS: f64 = 24.0 * 60.0 * 60.0;

fn default_retry_base_seconds() -> f64 {
    1.0
}

fn default_retry_cap_seconds() -> f64 {
    15.0 * 60.0
}

fn default_webhook_timeout_seconds() -> u64 {
    10
}

fn default_smtp_timeout_seconds() -> u64 {
    30
}

/// A setting that parses but cannot be used, named by its full key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct InvalidSetting {
    /// The key as written in the file ("notifications.webhook.url").
    pub key: &'static str,
    pub message: String,
}

fn invalid(key: &'static str, message: impl Into<String>) -> InvalidSetting {
    InvalidSetting {
        key,
        message: message.into(),
    }
}

impl Notifications {
    /// Checks what serde cannot: addresses, the URL's scheme, times that make sense.
    pub fn check(&self) -> Result<(), InvalidSetting> {
        check_mailbox("notifications.duty_inbox", &self.duty_inbox)?;
        let base = self.retry_base_seconds;
        let cap = self.retry_cap_seconds;
        if !(base.is_finite() && base > 0.0) {
            return Err(invalid(
                "notifications.retry_base_seconds",
                format!("{base} is not a positive number of seconds"),
            ));
        }
        if !(cap.is_finite() && cap >= base && cap <= MAX_RETRY_CAP_SECONDS) {
            return Err(invalid(
                "notifications.retry_cap_seconds",
                format!(
                    "{cap} must be a number of seconds from retry_base_seconds ({base}) to a day ({MAX_RETRY_CAP_SECONDS})"
                ),
            ));
        }
        if let Some(webhook) = &self.webhook {
            webhook.check()?;
        }
        if let Some(smtp) = &self.smtp {
            smtp.check()?;
        }
        Ok(())
    }
}

impl WebhookConfig {
    fn check(&self) -> Result<(), InvalidSetting> {
        const KEY: &str = "notifications.webhook.url";
        let url = reqwest::Url::parse(&self.url)
            .map_err(|e| invalid(KEY, format!("{:?} is not a URL: {e}", self.url)))?;
        match url.scheme() {
            "https" => {}
            "http" if self.allow_http => {}
            "http" => {
                return Err(invalid(
                    KEY,
                    format!(
                        "{:?} is plain HTTP: use https, or set allow_http = true for a local relay",
                        self.url
                    ),
                ));
            }
            other => {
                return Err(invalid(KEY, format!("{other:?} is not https")));
            }
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(invalid(KEY, format!("{:?} names no host", self.url)));
        }
        if self.timeout_seconds == 0 {
            return Err(invalid(
                "notifications.webhook.timeout_seconds",
                "must be at least 1",
            ));
        }
        Ok(())
    }
}

impl SmtpConfig {
    fn check(&self) -> Result<(), InvalidSetting> {
        if self.host.trim().is_empty() {
            return Err(invalid("notifications.smtp.host", "is empty"));
        }
        if self.port == Some(0) {
            return Err(invalid("notifications.smtp.port", "0 is not a port"));
        }
        check_mailbox("notifications.smtp.from", &self.from)?;
        if self.timeout_seconds == 0 {
            return Err(invalid(
                "notifications.smtp.timeout_seconds",
                "must be at least 1",
            ));
        }
        Ok(())
    }
}

fn check_mailbox(key: &'static str, text: &str) -> Result<(), InvalidSetting> {
    text.parse::<lettre::message::Mailbox>()
        .map(|_| ())
        .map_err(|e| invalid(key, format!("{text:?} is not an e-mail address: {e}")))
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
    #[error("config file {path}: {setting}")]
    Invalid {
        path: PathBuf,
        setting: InvalidSetting,
    },
}

impl Config {
    /// Reads a TOML file; unknown keys are refused with the key named.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let config: Config = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        if let Some(notifications) = &config.notifications {
            notifications
                .check()
                .map_err(|setting| ConfigError::Invalid {
                    path: path.to_owned(),
                    setting,
                })?;
        }
        Ok(config)
    }

    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("register.redb")
    }

    pub fn signing_key_path(&self) -> PathBuf {
        self.signing_key
            .clone()
            .unwrap_or_else(|| self.data_dir.join("signing.key"))
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

    const BASE: &str = "authority = \"x\"\ndata_dir = \"/tmp\"\n[tls]\ncert = \"a\"\nkey = \"b\"\nclient_ca = \"c\"\n";

    fn load_text(text: &str) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().expect("folder");
        let path = dir.path().join("primary.toml");
        std::fs::write(&path, text).expect("write");
        Config::load(&path)
    }

    #[test]
    fn the_commented_notifications_example_in_deploy_loads_once_uncommented() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/primary.toml");
        let text = std::fs::read_to_string(&path).expect("example");
        // Settings are commented as "# key = value" and tables as "# [table]"; prose never
        // holds " = ".
        let uncommented: String = text
            .lines()
            .map(|line| match line.strip_prefix("# ") {
                Some(rest) if rest.starts_with("[notifications") || rest.contains(" = ") => rest,
                _ => line,
            })
            .map(|line| format!("{line}\n"))
            .collect();
        let config = load_text(&uncommented).expect("the example loads");
        let notifications = config.notifications.expect("a [notifications] section");
        let webhook = notifications.webhook.expect("a webhook");
        assert!(webhook.url.starts_with("https://"), "{}", webhook.url);
        let smtp = notifications.smtp.expect("an SMTP relay");
        assert_eq!((smtp.tls, smtp.port()), (SmtpTls::Starttls, 587));
        assert_eq!(notifications.retry_cap_seconds, 900.0);
    }

    #[test]
    fn a_notifications_section_needs_a_duty_inbox_and_knows_its_keys() {
        let err = load_text(&format!("{BASE}[notifications]\nretry_base_seconds = 2\n"))
            .expect_err("no duty inbox")
            .to_string();
        assert!(err.contains("duty_inbox"), "{err}");
        let err = load_text(&format!(
            "{BASE}[notifications]\nduty_inbox = \"duty@x.example\"\n[notifications.smtp]\nhost = \"mail\"\nfrom = \"cpreg@x.example\"\ntls = \"none\"\nhostname = \"y\"\n"
        ))
        .expect_err("unknown key")
        .to_string();
        assert!(err.contains("hostname"), "{err}");
        let err = load_text(&format!(
            "{BASE}[notifications]\nduty_inbox = \"duty@x.example\"\n[notifications.smtp]\nhost = \"mail\"\nfrom = \"cpreg@x.example\"\ntls = \"ssl\"\n"
        ))
        .expect_err("unknown TLS mode")
        .to_string();
        assert!(err.contains("ssl") && err.contains("starttls"), "{err}");
        let config = load_text(&format!(
            "{BASE}[notifications]\nduty_inbox = \"Duty Team <duty@x.example>\"\nretry_base_seconds = 2\n"
        ))
        .expect("integers are seconds too");
        assert_eq!(
            config.notifications.map(|n| n.retry_base_seconds),
            Some(2.0)
        );
    }

    #[test]
    fn a_config_with_notifications_written_by_the_tools_loads_back() {
        let mut config = load_text(BASE).expect("base");
        config.notifications = Some(Notifications {
            duty_inbox: "duty@x.example".into(),
            retry_base_seconds: 0.2,
            retry_cap_seconds: 1.0,
            webhook: Some(WebhookConfig {
                url: "https://127.0.0.1:9443/hook".into(),
                ca_file: Some("/tmp/ca.pem".into()),
                allow_http: false,
                timeout_seconds: 5,
            }),
            smtp: Some(SmtpConfig {
                host: "127.0.0.1".into(),
                port: Some(2525),
                from: "cpreg@x.example".into(),
                tls: SmtpTls::None,
                ca_file: None,
                credentials_file: None,
                timeout_seconds: 5,
            }),
        });
        let text = toml::to_string(&config).expect("written");
        let loaded = load_text(&text).expect("loads back");
        let notifications = loaded.notifications.expect("kept");
        assert_eq!(notifications.retry_base_seconds, 0.2);
        assert_eq!(notifications.smtp.map(|s| s.port()), Some(2525));
        assert_eq!(
            notifications.webhook.and_then(|w| w.ca_file),
            Some(PathBuf::from("/tmp/ca.pem"))
        );
    }

    #[test]
    fn unusable_notification_settings_are_refused_by_key() {
        let cases = [
            (
                "duty_inbox = \"the duty team\"\n",
                "notifications.duty_inbox",
            ),
            (
                "duty_inbox = \"d@x.example\"\nretry_base_seconds = 0\n",
                "notifications.retry_base_seconds",
            ),
            (
                "duty_inbox = \"d@x.example\"\nretry_base_seconds = 10\nretry_cap_seconds = 5\n",
                "notifications.retry_cap_seconds",
            ),
            (
                "duty_inbox = \"d@x.example\"\n[notifications.webhook]\nurl = \"http://hooks.x.example/cpreg\"\n",
                "notifications.webhook.url",
            ),
            (
                "duty_inbox = \"d@x.example\"\n[notifications.webhook]\nurl = \"not a url\"\n",
                "notifications.webhook.url",
            ),
            (
                "duty_inbox = \"d@x.example\"\n[notifications.webhook]\nurl = \"https://hooks.x.example\"\ntimeout_seconds = 0\n",
                "notifications.webhook.timeout_seconds",
            ),
            (
                "duty_inbox = \"d@x.example\"\n[notifications.smtp]\nhost = \"mail\"\nfrom = \"cpreg at x\"\ntls = \"tls\"\n",
                "notifications.smtp.from",
            ),
        ];
        for (section, key) in cases {
            let err = load_text(&format!("{BASE}[notifications]\n{section}"))
                .expect_err(key)
                .to_string();
            assert!(err.contains(key), "{key}: {err}");
        }
        load_text(&format!(
            "{BASE}[notifications]\nduty_inbox = \"d@x.example\"\n[notifications.webhook]\nurl = \"http://127.0.0.1:9000/hook\"\nallow_http = true\n"
        ))
        .expect("plain HTTP when allowed");
    }
}
