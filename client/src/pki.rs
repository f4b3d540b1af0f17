//! The development PKI behind `cpreg pki` and `cpreg demo`: one self-signed CA per authority,
//! which issues server certificates and role-bearing client certificates.
//!
//! Client certificates carry their role exactly as [`cpreg_proto::role`] describes: the holder's
//! name in CN, the role in OU, the authority id in O and, for replicas and terminals, the site in
//! L. The primary and replicas authorise on these attributes alone, so this module is the only
//! place that writes them.
//!
//! This is a development CA: its key sits unencrypted in a file (mode 0600). A real deployment
//! would issue the same attributes from the authority's own CA.

use std::fmt;
use std::fs::{self, OpenOptions, Permissions};
use std::io::{self, Write};
use std::net::IpAddr;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cpreg_proto::role::Role;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// The extended key usages a certificate may name ([`DevCa::issue_client_with_usages`]).
pub use rcgen::ExtendedKeyUsagePurpose;

/// File name of the CA certificate inside a CA directory.
const CA_CERT_FILE: &str = "ca.pem";
/// File name of the CA private key inside a CA directory.
const CA_KEY_FILE: &str = "ca.key";
/// File name of the authority id inside a CA directory.
const AUTHORITY_FILE: &str = "authority";

const HOUR: Duration = Duration::from_secs(60 * 60);
const DAY: Duration = Duration::from_secs(24 * 60 * 60);
/// How long the dev CA lives: long enough never to expire under a developer.
const CA_DAYS: u32 = 3650;
/// How long a server certificate lives.
const SERVER_DAYS: u32 = 730;
/// How far back `not_before` is set, so a peer whose clock runs a little slow still accepts a
/// certificate issued a moment ago.
const CLOCK_SKEW: Duration = HOUR;
/// 9999-12-31T23:59:59Z, the last instant an X.509 validity field can express.
const MAX_X509_UNIX_SECONDS: u64 = 253_402_300_799;

/// A development certificate authority for one authority id.
///
/// Only the CA certificate, its key and the authority id are stored. rcgen 0.14 can only rebuild
/// an issuer from a certificate with its `x509-parser` feature, which this workspace does not
/// enable, so the issuer's name is rebuilt from the authority id and [`DevCa::load`] checks that
/// the rebuilt name (and the key) match the stored certificate byte for byte.
#[derive(Debug)]
pub struct DevCa {
    ca_pem: String,
    /// The CA's own parameters; signing only uses its name, key usages and key id method.
    params: CertificateParams,
    key: KeyPair,
    authority: String,
}

/// A freshly issued certificate and its private key, both PEM.
#[derive(Clone)]
pub struct Issued {
    /// The certificate (one PEM block, without the CA).
    pub cert_pem: String,
    /// The certificate's private key (PKCS#8 PEM). Keep it 0600: see [`write_issued`].
    pub key_pem: String,
}

impl fmt::Debug for Issued {
    /// Leaves the private key out, so an `Issued` can be logged safely.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Issued")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"[private key elided]")
            .finish()
    }
}

/// Why a PKI operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PkiError {
    /// A file could not be read, written or created.
    #[error("cannot {action} {}", .path.display())]
    Io {
        /// What was being attempted ("read", "write", "create directory").
        action: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// rcgen refused to generate a key or certificate.
    #[error("certificate generation failed")]
    Rcgen(#[from] rcgen::Error),
    /// The directory holds no CA certificate.
    #[error("no CA in {dir}: run `cpreg pki init --dir {dir}` first", dir = .dir.display())]
    MissingCa {
        /// The directory that was searched.
        dir: PathBuf,
    },
    /// A CA file exists but is unusable (bad PEM, or the files do not belong together).
    #[error("{}: {reason}", .path.display())]
    BadFile {
        /// The file concerned.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// An argument cannot go into a certificate (empty name, inverted validity, ...).
    #[error("{0}")]
    Invalid(String),
}

impl DevCa {
    /// Creates a new self-signed CA for `authority`, valid for ten years.
    ///
    /// Its subject is CN "cpreg dev CA (<authority>)", O = authority, so a glance at any issued
    /// certificate's issuer tells which authority's dev CA made it.
    pub fn create(authority: &str) -> Result<DevCa, PkiError> {
        check_text("authority id", authority)?;
        let mut params = ca_params(authority);
        let now = SystemTime::now();
        set_validity(&mut params, backdate(now), add_days(now, CA_DAYS)?)?;
        let key = KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        Ok(DevCa {
            ca_pem: cert.pem(),
            params,
            key,
            authority: authority.to_owned(),
        })
    }

    /// Writes `dir/ca.pem`, `dir/ca.key` (mode 0600) and `dir/authority`, creating `dir`.
    ///
    /// Existing files are overwritten: certificates issued by a previous CA in `dir` stop
    /// verifying against the new `ca.pem`.
    pub fn save(&self, dir: &Path) -> Result<(), PkiError> {
        fs::create_dir_all(dir).map_err(|e| io_error("create directory", dir, e))?;
        write_secret(&dir.join(CA_KEY_FILE), &self.key.serialize_pem())?;
        write_public(&dir.join(CA_CERT_FILE), &self.ca_pem)?;
        write_public(&dir.join(AUTHORITY_FILE), &format!("{}\n", self.authority))?;
        Ok(())
    }

    /// Loads a CA written by [`DevCa::save`].
    ///
    /// Fails with [`PkiError::MissingCa`] when `dir/ca.pem` does not exist, and with
    /// [`PkiError::BadFile`] when the key or authority id do not belong to the certificate
    /// (certificates issued from a mismatched CA would never verify).
    pub fn load(dir: &Path) -> Result<DevCa, PkiError> {
        let cert_path = dir.join(CA_CERT_FILE);
        let ca_pem = match fs::read_to_string(&cert_path) {
            Ok(pem) => pem,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(PkiError::MissingCa {
                    dir: dir.to_owned(),
                });
            }
            Err(e) => return Err(io_error("read", &cert_path, e)),
        };
        let key_path = dir.join(CA_KEY_FILE);
        let key_pem = fs::read_to_string(&key_path).map_err(|e| io_error("read", &key_path, e))?;
        let authority_path = dir.join(AUTHORITY_FILE);
        let authority = fs::read_to_string(&authority_path)
            .map_err(|e| io_error("read", &authority_path, e))?;
        let authority = authority.trim_end_matches(['\n', '\r']).to_owned();
        check_text("authority id", &authority).map_err(|e| bad_file(&authority_path, e))?;

        let key = KeyPair::from_pem(&key_pem)
            .map_err(|e| bad_file(&key_path, format!("not a private key: {e}")))?;
        let stored = CertificateDer::from_pem_slice(ca_pem.as_bytes())
            .map_err(|e| bad_file(&cert_path, format!("not a PEM certificate: {e}")))?;
        let (stored_subject, stored_spki) = subject_and_spki(&stored)
            .ok_or_else(|| bad_file(&cert_path, "not an X.509 certificate"))?;

        // Rebuild the CA's name and self-sign it with the loaded key: if the result's subject
        // and public key match the stored certificate's, everything issued from here chains.
        let params = ca_params(&authority);
        let rebuilt = params.self_signed(&key)?;
        let (rebuilt_subject, rebuilt_spki) = subject_and_spki(rebuilt.der())
            .ok_or_else(|| PkiError::Invalid("rcgen produced unparseable DER".to_owned()))?;
        if rebuilt_spki != stored_spki {
            return Err(bad_file(
                &key_path,
                format!("this key does not belong to {}", cert_path.display()),
            ));
        }
        if rebuilt_subject != stored_subject {
            return Err(bad_file(
                &authority_path,
                format!(
                    "authority {authority:?} is not the one {} was made for",
                    cert_path.display()
                ),
            ));
        }
        Ok(DevCa {
            ca_pem,
            params,
            key,
            authority,
        })
    }

    /// The authority id: the O attribute of every certificate this CA issues.
    pub fn authority(&self) -> &str {
        &self.authority
    }

    /// The CA certificate, PEM: the trust anchor servers and clients are configured with.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// Server certificate: SANs for every name (DNS names, and IP addresses where the name
    /// parses as one), OU=server, extended key usage serverAuth (+ clientAuth so a replica
    /// server can also dial the primary), valid 2 years.
    ///
    /// TLS clients check the SANs, not the CN, so `names` must hold every name and address the
    /// server is dialled by; it may not be empty.
    pub fn issue_server(&self, common_name: &str, names: &[String]) -> Result<Issued, PkiError> {
        check_text("server common name", common_name)?;
        if names.is_empty() {
            return Err(PkiError::Invalid(
                "a server certificate needs at least one DNS name or IP address".to_owned(),
            ));
        }
        let mut params = leaf_params(common_name, Role::Server, &self.authority);
        params.subject_alt_names = names
            .iter()
            .map(|name| san(name))
            .collect::<Result<_, _>>()?;
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let now = SystemTime::now();
        set_validity(&mut params, backdate(now), add_days(now, SERVER_DAYS)?)?;
        self.sign(&params)
    }

    /// Client certificate with the role encoding above, EKU clientAuth, valid `days` days
    /// (not_before = now - 1 hour to absorb clock skew).
    ///
    /// `site` goes into L and is only accepted for replica and terminal certificates; server
    /// certificates come from [`DevCa::issue_server`] because they need SANs.
    pub fn issue_client(
        &self,
        role: Role,
        name: &str,
        site: Option<&str>,
        days: u32,
    ) -> Result<Issued, PkiError> {
        let now = SystemTime::now();
        self.issue_client_valid(role, name, site, backdate(now), add_days(now, days)?)
    }

    /// Same as [`DevCa::issue_client`] but with an explicit validity window, so tests can make
    /// expired (or not yet valid) certificates.
    ///
    /// Takes [`SystemTime`] so callers need neither `time` nor `chrono` to match rcgen:
    /// `chrono::DateTime<Utc>` converts with `.into()`. Times are truncated to whole seconds and
    /// must lie between 1970 and 9999, with `not_before < not_after`.
    pub fn issue_client_valid(
        &self,
        role: Role,
        name: &str,
        site: Option<&str>,
        not_before: SystemTime,
        not_after: SystemTime,
    ) -> Result<Issued, PkiError> {
        match role {
            Role::Server => {
                return Err(PkiError::Invalid(
                    "server certificates need SANs: issue them with `issue_server`".to_owned(),
                ));
            }
            Role::Custodian | Role::Auditor if site.is_some() => {
                return Err(PkiError::Invalid(format!(
                    "a {role} certificate carries no site: only replica and terminal ones do"
                )));
            }
            _ => {}
        }
        check_text("holder name", name)?;
        let mut params = leaf_params(name, role, &self.authority);
        if let Some(site) = site {
            check_text("site", site)?;
            params.distinguished_name.push(DnType::LocalityName, site);
        }
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        set_validity(&mut params, not_before, not_after)?;
        self.sign(&params)
    }

    /// A client certificate like [`DevCa::issue_client`] whose extended key usages are `usages`
    /// instead of clientAuth (empty: no such extension at all), so tests can show what the
    /// servers make of a certificate not issued for clients. cpreg itself never issues one.
    pub fn issue_client_with_usages(
        &self,
        role: Role,
        name: &str,
        usages: &[ExtendedKeyUsagePurpose],
        days: u32,
    ) -> Result<Issued, PkiError> {
        check_text("holder name", name)?;
        let now = SystemTime::now();
        let mut params = leaf_params(name, role, &self.authority);
        params.extended_key_usages = usages.to_vec();
        set_validity(&mut params, backdate(now), add_days(now, days)?)?;
        self.sign(&params)
    }

    /// A terminal's certificate: role terminal at `site`, belonging to the directory
    /// organisation `organisation` (named in a SAN URI, see `cpreg_proto::role`).
    pub fn issue_terminal(
        &self,
        name: &str,
        site: &str,
        organisation: &str,
        days: u32,
    ) -> Result<Issued, PkiError> {
        check_text("holder name", name)?;
        check_text("site", site)?;
        check_text("organisation", organisation)?;
        let now = SystemTime::now();
        let mut params = leaf_params(name, Role::Terminal, &self.authority);
        params.distinguished_name.push(DnType::LocalityName, site);
        let uri = format!(
            "{}{organisation}",
            cpreg_proto::role::ORGANISATION_URI_PREFIX
        );
        params
            .subject_alt_names
            .push(SanType::URI(uri.as_str().try_into()?));
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        set_validity(&mut params, backdate(now), add_days(now, days)?)?;
        self.sign(&params)
    }

    /// Generates a fresh key and signs `params` for it with the CA key.
    fn sign(&self, params: &CertificateParams) -> Result<Issued, PkiError> {
        let key = KeyPair::generate()?;
        let issuer = Issuer::from_params(&self.params, &self.key);
        let cert = params.signed_by(&key, &issuer)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// Writes an issued certificate and its key: the key with mode 0600 from the moment it is
/// created (so it is never readable by others, even briefly), the certificate normally.
///
/// A key file that already existed is also chmodded to 0600, because `OpenOptionsExt::mode`
/// only applies to files the call creates. Parent directories must exist.
pub fn write_issued(issued: &Issued, cert_path: &Path, key_path: &Path) -> Result<(), PkiError> {
    write_secret(key_path, &issued.key_pem)?;
    write_public(cert_path, &issued.cert_pem)
}

/// The CA's parameters without validity: everything an [`Issuer`] takes from them is a pure
/// function of the authority id, which is what lets [`DevCa::load`] rebuild them.
fn ca_params(authority: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, format!("cpreg dev CA ({authority})"));
    dn.push(DnType::OrganizationName, authority);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params
}

/// Parameters shared by every end-entity certificate: CN, OU = role, O = authority, CA:FALSE,
/// digitalSignature (what an ECDSA TLS handshake uses) and an authority key identifier.
fn leaf_params(common_name: &str, role: Role, authority: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn.push(DnType::OrganizationalUnitName, role.as_str());
    dn.push(DnType::OrganizationName, authority);
    params.distinguished_name = dn;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.use_authority_key_identifier_extension = true;
    params
}

/// A SAN for `name`: an IP address if it parses as one, a DNS name otherwise.
fn san(name: &str) -> Result<SanType, PkiError> {
    match name.parse::<IpAddr>() {
        Ok(ip) => Ok(SanType::IpAddress(ip)),
        Err(_) if name.is_empty() => Err(PkiError::Invalid("empty server name".to_owned())),
        Err(_) => Ok(SanType::DnsName(name.try_into()?)),
    }
}

/// Rejects text that would make a confusing or unparseable certificate attribute.
fn check_text(what: &str, value: &str) -> Result<(), PkiError> {
    if value.trim().is_empty() {
        return Err(PkiError::Invalid(format!("{what} is empty")));
    }
    if value.trim() != value || value.chars().any(char::is_control) {
        return Err(PkiError::Invalid(format!(
            "{what} {value:?} has surrounding spaces or control characters"
        )));
    }
    Ok(())
}

/// `now` minus [`CLOCK_SKEW`] (or `now` itself on a clock too close to 1970 to subtract).
fn backdate(now: SystemTime) -> SystemTime {
    now.checked_sub(CLOCK_SKEW).unwrap_or(now)
}

/// `start` plus `days` days, or an error if that overflows the clock.
fn add_days(start: SystemTime, days: u32) -> Result<SystemTime, PkiError> {
    DAY.checked_mul(days)
        .and_then(|span| start.checked_add(span))
        .ok_or_else(|| PkiError::Invalid(format!("{days} days is too long a validity")))
}

/// Sets the validity window, converting to the `time` crate's type that rcgen uses.
///
/// rcgen does not re-export `time`; starting from its `date_time_ymd` and adding a
/// `std::time::Duration` reaches `OffsetDateTime` without depending on `time` directly.
fn set_validity(
    params: &mut CertificateParams,
    not_before: SystemTime,
    not_after: SystemTime,
) -> Result<(), PkiError> {
    let start = unix_seconds(not_before)?;
    let end = unix_seconds(not_after)?;
    if start >= end {
        return Err(PkiError::Invalid(
            "a certificate's validity must end after it starts".to_owned(),
        ));
    }
    let epoch = rcgen::date_time_ymd(1970, 1, 1);
    params.not_before = epoch + Duration::from_secs(start);
    params.not_after = epoch + Duration::from_secs(end);
    Ok(())
}

/// Whole seconds since 1970, within what X.509 can express (so the addition above cannot
/// overflow).
fn unix_seconds(t: SystemTime) -> Result<u64, PkiError> {
    t.duration_since(UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs())
        .filter(|&s| s <= MAX_X509_UNIX_SECONDS)
        .ok_or_else(|| {
            PkiError::Invalid("certificate validity must lie between 1970 and 9999".to_owned())
        })
}

/// The encoded subject Name and SubjectPublicKeyInfo of a DER certificate, or `None` if it is
/// not shaped like one. Just enough DER to compare two certificates' names and keys.
fn subject_and_spki(cert: &[u8]) -> Option<(&[u8], &[u8])> {
    const SEQUENCE: u8 = 0x30;
    const VERSION: u8 = 0xa0; // [0] EXPLICIT
    let (_, certificate, _) = der_element(cert, SEQUENCE)?;
    let (_, tbs, _) = der_element(certificate, SEQUENCE)?;
    let mut rest = tbs;
    if rest.first() == Some(&VERSION) {
        rest = der_element(rest, VERSION)?.2;
    }
    let (_, _serial, rest) = der_element(rest, 0x02)?;
    let (_, _signature, rest) = der_element(rest, SEQUENCE)?;
    let (_, _issuer, rest) = der_element(rest, SEQUENCE)?;
    let (_, _validity, rest) = der_element(rest, SEQUENCE)?;
    let (subject, _, rest) = der_element(rest, SEQUENCE)?;
    let (spki, _, _) = der_element(rest, SEQUENCE)?;
    Some((subject, spki))
}

/// Splits the DER element at the start of `input`, which must have tag `tag`, into
/// (whole element, contents, remainder).
fn der_element(input: &[u8], tag: u8) -> Option<(&[u8], &[u8], &[u8])> {
    let (&first, after_tag) = input.split_first()?;
    if first != tag {
        return None;
    }
    let (&len_byte, mut after_len) = after_tag.split_first()?;
    let len = if len_byte < 0x80 {
        usize::from(len_byte)
    } else {
        let count = usize::from(len_byte & 0x7f);
        if count == 0 || count > 4 || after_len.len() < count {
            return None;
        }
        let (bytes, rest) = after_len.split_at(count);
        after_len = rest;
        bytes
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b))
    };
    if after_len.len() < len {
        return None;
    }
    let header = input.len() - after_len.len();
    let (whole, rest) = input.split_at(header + len);
    Some((whole, &after_len[..len], rest))
}

fn io_error(action: &'static str, path: &Path, source: io::Error) -> PkiError {
    PkiError::Io {
        action,
        path: path.to_owned(),
        source,
    }
}

fn bad_file(path: &Path, reason: impl fmt::Display) -> PkiError {
    PkiError::BadFile {
        path: path.to_owned(),
        reason: reason.to_string(),
    }
}

/// Writes a private key: created 0600, and forced to 0600 if it already existed wider.
fn write_secret(path: &Path, contents: &str) -> Result<(), PkiError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| io_error("write", path, e))?;
    file.set_permissions(Permissions::from_mode(0o600))
        .map_err(|e| io_error("set permissions on", path, e))?;
    file.write_all(contents.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| io_error("write", path, e))
}

/// Writes a public file (certificate, authority id) with the default mode.
fn write_public(path: &Path, contents: &str) -> Result<(), PkiError> {
    fs::write(path, contents).map_err(|e| io_error("write", path, e))
}

#[cfg(test)]
mod terminal_tests {
    use super::*;

    #[test]
    fn a_terminal_certificate_names_its_organisation_and_site() {
        let ca = DevCa::create("demo-borough").expect("ca");
        let issued = ca
            .issue_terminal("A&E workstation 1", "ae", "st-elsewhere-ae", 30)
            .expect("issued");
        let (_, pem) = x509_parser::pem::parse_x509_pem(issued.cert_pem.as_bytes()).expect("pem");
        let der = pem.contents;
        let holder = cpreg_proto::role::CertificateHolder::from_der(&der).expect("parses");
        assert_eq!(holder.role, Role::Terminal);
        assert_eq!(holder.site.as_deref(), Some("ae"));
        assert_eq!(holder.organisation.as_deref(), Some("st-elsewhere-ae"));
        assert_eq!(holder.authority, "demo-borough");
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rustls::client::danger::ServerCertVerifier;
    use rustls::pki_types::{ServerName, UnixTime};
    use x509_parser::certificate::X509Certificate;
    use x509_parser::extensions::GeneralName;
    use x509_parser::pem::Pem;

    use super::*;

    fn pem(text: &str) -> Pem {
        x509_parser::pem::parse_x509_pem(text.as_bytes())
            .expect("PEM")
            .1
    }

    fn strings<'a>(
        attrs: impl Iterator<Item = &'a x509_parser::x509::AttributeTypeAndValue<'a>>,
    ) -> Vec<String> {
        attrs
            .map(|a| a.as_str().expect("string attribute").to_owned())
            .collect()
    }

    fn roots(ca: &DevCa) -> Arc<rustls::RootCertStore> {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(ca.ca_pem().as_bytes()).expect("CA PEM"))
            .expect("CA accepted as a root");
        Arc::new(roots)
    }

    fn provider() -> Arc<rustls::crypto::CryptoProvider> {
        Arc::new(rustls::crypto::ring::default_provider())
    }

    /// Does rustls (as the primary uses it) accept `issued` as a client certificate?
    fn client_verifies(ca: &DevCa, issued: &Issued) -> Result<(), rustls::Error> {
        let verifier =
            rustls::server::WebPkiClientVerifier::builder_with_provider(roots(ca), provider())
                .build()
                .expect("client verifier");
        let cert = CertificateDer::from_pem_slice(issued.cert_pem.as_bytes()).expect("PEM");
        verifier
            .verify_client_cert(&cert, &[], UnixTime::now())
            .map(|_| ())
    }

    #[test]
    fn ca_saves_loads_and_issues_a_custodian_certificate() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca_dir = dir.path().join("ca");
        DevCa::create("nsw-dcj")
            .expect("create")
            .save(&ca_dir)
            .expect("save");
        let mode = fs::metadata(ca_dir.join("ca.key"))
            .expect("ca.key")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(
            fs::read_to_string(ca_dir.join("authority")).expect("authority"),
            "nsw-dcj\n"
        );

        let ca = DevCa::load(&ca_dir).expect("load");
        assert_eq!(ca.authority(), "nsw-dcj");
        let issued = ca
            .issue_client(Role::Custodian, "Alex Smith", None, 30)
            .expect("issue");

        let ca_pem = pem(ca.ca_pem());
        let ca_cert = ca_pem.parse_x509().expect("CA cert");
        let cert_pem = pem(&issued.cert_pem);
        let cert: X509Certificate<'_> = cert_pem.parse_x509().expect("client cert");
        let subject = cert.subject();
        assert_eq!(strings(subject.iter_common_name()), ["Alex Smith"]);
        assert_eq!(strings(subject.iter_organizational_unit()), ["custodian"]);
        assert_eq!(strings(subject.iter_organization()), ["nsw-dcj"]);
        assert!(strings(subject.iter_locality()).is_empty());
        assert_eq!(cert.issuer().as_raw(), ca_cert.subject().as_raw());
        assert_eq!(
            strings(ca_cert.subject().iter_common_name()),
            ["cpreg dev CA (nsw-dcj)"]
        );
        assert!(ca_cert.is_ca());
        let eku = cert
            .extended_key_usage()
            .expect("EKU parses")
            .expect("EKU present")
            .value;
        assert!(eku.client_auth && !eku.server_auth);
        let days = (cert.validity().not_after.timestamp() - cert.validity().not_before.timestamp())
            / 86_400;
        assert_eq!(days, 30, "30 days plus the hour of backdating");

        // The loaded CA's rebuilt issuer name chains for a real verifier.
        client_verifies(&ca, &issued).expect("rustls accepts the custodian certificate");
    }

    #[test]
    fn replica_certificate_carries_its_site() {
        let ca = DevCa::create("auth").expect("create");
        let issued = ca
            .issue_client(Role::Replica, "replica-west", Some("Dubbo"), 1)
            .expect("issue");
        let cert_pem = pem(&issued.cert_pem);
        let cert = cert_pem.parse_x509().expect("cert");
        assert_eq!(
            strings(cert.subject().iter_organizational_unit()),
            ["replica"]
        );
        assert_eq!(strings(cert.subject().iter_locality()), ["Dubbo"]);
    }

    #[test]
    fn expired_client_certificate_is_rejected_by_rustls() {
        let ca = DevCa::create("auth").expect("create");
        let now = SystemTime::now();
        let issued = ca
            .issue_client_valid(
                Role::Terminal,
                "t1",
                Some("Bourke"),
                now - 3 * DAY,
                now - DAY,
            )
            .expect("issue");
        let err = client_verifies(&ca, &issued).expect_err("expired");
        assert!(
            matches!(
                err,
                rustls::Error::InvalidCertificate(rustls::CertificateError::ExpiredContext { .. })
                    | rustls::Error::InvalidCertificate(rustls::CertificateError::Expired)
            ),
            "{err:?}"
        );
    }

    #[test]
    fn server_certificate_names_its_ip_and_verifies() {
        let ca = DevCa::create("auth").expect("create");
        let names = ["localhost".to_owned(), "127.0.0.1".to_owned()];
        let issued = ca.issue_server("primary", &names).expect("issue");
        let cert_pem = pem(&issued.cert_pem);
        let cert = cert_pem.parse_x509().expect("cert");
        assert_eq!(
            strings(cert.subject().iter_organizational_unit()),
            ["server"]
        );
        let sans = cert
            .subject_alternative_name()
            .expect("SAN parses")
            .expect("SAN present")
            .value
            .general_names
            .clone();
        assert!(sans.contains(&GeneralName::IPAddress(&[127, 0, 0, 1])));
        assert!(sans.contains(&GeneralName::DNSName("localhost")));
        let eku = cert.extended_key_usage().expect("EKU").expect("EKU").value;
        assert!(eku.server_auth && eku.client_auth);

        let verifier =
            rustls::client::WebPkiServerVerifier::builder_with_provider(roots(&ca), provider())
                .build()
                .expect("server verifier");
        let der = CertificateDer::from_pem_slice(issued.cert_pem.as_bytes()).expect("PEM");
        for name in ["127.0.0.1", "localhost"] {
            let server_name = ServerName::try_from(name).expect("server name");
            verifier
                .verify_server_cert(&der, &[], &server_name, &[], UnixTime::now())
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        // A replica's server certificate also works when it dials the primary as a client.
        client_verifies(&ca, &issued).expect("server cert usable as client cert");
    }

    #[test]
    fn write_issued_keeps_the_key_private() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = DevCa::create("auth").expect("create");
        let issued = ca
            .issue_client(Role::Auditor, "Sam", None, 1)
            .expect("issue");
        let (cert_path, key_path) = (dir.path().join("a.pem"), dir.path().join("a.key"));
        fs::write(&key_path, "old").expect("pre-existing key");
        fs::set_permissions(&key_path, Permissions::from_mode(0o644)).expect("chmod");
        write_issued(&issued, &cert_path, &key_path).expect("write");
        let mode = fs::metadata(&key_path).expect("key").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(fs::read_to_string(&key_path).expect("key"), issued.key_pem);
        assert_eq!(
            fs::read_to_string(&cert_path).expect("cert"),
            issued.cert_pem
        );
        assert!(!format!("{issued:?}").contains("PRIVATE KEY"));
    }

    #[test]
    fn load_reports_missing_and_mismatched_cas() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = DevCa::load(dir.path()).expect_err("empty dir");
        assert!(matches!(err, PkiError::MissingCa { .. }), "{err:?}");
        assert!(err.to_string().contains("cpreg pki init --dir"), "{err}");

        let ca = DevCa::create("auth").expect("create");
        ca.save(dir.path()).expect("save");
        fs::write(dir.path().join("authority"), "other\n").expect("edit");
        let err = DevCa::load(dir.path()).expect_err("wrong authority");
        assert!(matches!(err, PkiError::BadFile { .. }), "{err:?}");

        ca.save(dir.path()).expect("save");
        let other = DevCa::create("auth").expect("create");
        fs::write(dir.path().join("ca.key"), other.key.serialize_pem()).expect("swap key");
        let err = DevCa::load(dir.path()).expect_err("wrong key");
        assert!(matches!(err, PkiError::BadFile { .. }), "{err:?}");
    }

    #[test]
    fn bad_arguments_are_refused() {
        let ca = DevCa::create("auth").expect("create");
        assert!(DevCa::create("").is_err());
        assert!(
            ca.issue_client(Role::Custodian, "x", Some("site"), 1)
                .is_err()
        );
        assert!(ca.issue_client(Role::Server, "x", None, 1).is_err());
        assert!(ca.issue_client(Role::Terminal, " x", None, 1).is_err());
        assert!(ca.issue_server("primary", &[]).is_err());
        let now = SystemTime::now();
        assert!(
            ca.issue_client_valid(Role::Auditor, "x", None, now, now - DAY)
                .is_err()
        );
        assert!(ca.issue_client(Role::Auditor, "x", None, u32::MAX).is_err());
    }
}
