//! The duty console's operator accounts at one site: a JSON file in the data folder (mode 0600),
//! each password kept only as an argon2id hash with a random salt. `cpreg-replica operator`
//! manages the file; the running console reads it at each sign-in, so an account added or
//! removed takes effect without a restart.

use std::path::{Path, PathBuf};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One operator who may sign in to the console.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Operator {
    /// The sign-in name, recorded with every enquiry the operator makes.
    pub name: String,
    /// Their role, recorded as the operator's role ("ED registrar", "EDT duty worker").
    pub role: String,
    /// The argon2id hash in PHC form: never the password.
    pub password_hash: String,
    pub created: DateTime<Utc>,
}

/// The accounts file.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct OperatorsFile {
    operators: Vec<Operator>,
}

/// Why an account could not be read, added or removed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OperatorError {
    /// The file could not be read or written.
    #[error("operators file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file is not an operators file.
    #[error("operators file {path} is unreadable: {message}")]
    Corrupt { path: PathBuf, message: String },
    /// The name is already taken (remove it first, or use `--replace`).
    #[error("operator {0:?} already exists: remove it first, or add it again with --replace")]
    Exists(String),
    /// No such operator.
    #[error("no operator {0:?}")]
    Unknown(String),
    /// The name, role or password is unusable.
    #[error("{0}")]
    Invalid(String),
    /// Hashing failed.
    #[error("hashing the password: {0}")]
    Hash(String),
}

/// The shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 12;

/// Hashes `password` with argon2id and a fresh random salt.
pub fn hash_password(password: &str) -> Result<String, OperatorError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| OperatorError::Hash(e.to_string()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| OperatorError::Hash(e.to_string()))?;
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| OperatorError::Hash(e.to_string()))
}

/// Whether `password` is the one `hash` was made from.
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// A random password for a new account: 20 characters from an alphabet without look-alikes.
pub fn random_password() -> Result<String, OperatorError> {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzACDEFGHJKLMNPQRTUVWXY346789";
    let mut bytes = [0u8; 20];
    getrandom::fill(&mut bytes).map_err(|e| OperatorError::Hash(e.to_string()))?;
    Ok(bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect())
}

/// The accounts at `path`; a missing file holds none.
pub fn load(path: &Path) -> Result<Vec<Operator>, OperatorError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(OperatorError::Io {
                path: path.to_owned(),
                source,
            });
        }
    };
    let file: OperatorsFile = serde_json::from_str(&text).map_err(|e| OperatorError::Corrupt {
        path: path.to_owned(),
        message: e.to_string(),
    })?;
    Ok(file.operators)
}

/// The account called `name`, if any.
pub fn find(path: &Path, name: &str) -> Result<Option<Operator>, OperatorError> {
    Ok(load(path)?.into_iter().find(|o| o.name == name))
}

/// Writes the accounts to a temporary file (0600) beside `path`, then renames it over `path`.
fn save(path: &Path, operators: Vec<Operator>) -> Result<(), OperatorError> {
    let io = |source| OperatorError::Io {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let text = serde_json::to_string_pretty(&OperatorsFile { operators })
        .map_err(|e| OperatorError::Hash(e.to_string()))?;
    let temporary = path.with_extension("json.new");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&temporary).map_err(io)?;
    std::io::Write::write_all(&mut file, text.as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&temporary, path).map_err(io)
}

/// Adds an operator (or, with `replace`, sets a new role and password for an existing one).
pub fn add(
    path: &Path,
    name: &str,
    role: &str,
    password: &str,
    replace: bool,
    now: DateTime<Utc>,
) -> Result<(), OperatorError> {
    let name_ok = (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    if !name_ok {
        return Err(OperatorError::Invalid(format!(
            "operator name {name:?}: use 1 to 64 letters, digits, '.', '-' or '_'"
        )));
    }
    if role.trim().is_empty() {
        return Err(OperatorError::Invalid(
            "give the operator's role, like \"ED registrar\" or \"EDT duty worker\"".into(),
        ));
    }
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(OperatorError::Invalid(format!(
            "the password must have at least {MIN_PASSWORD_CHARS} characters"
        )));
    }
    let mut operators = load(path)?;
    let existing = operators.iter().position(|o| o.name == name);
    if existing.is_some() && !replace {
        return Err(OperatorError::Exists(name.to_owned()));
    }
    operators.retain(|o| o.name != name);
    operators.push(Operator {
        name: name.to_owned(),
        role: role.trim().to_owned(),
        password_hash: hash_password(password)?,
        created: now,
    });
    save(path, operators)
}

/// Removes an operator; their sessions end at their next request.
pub fn remove(path: &Path, name: &str) -> Result<(), OperatorError> {
    let mut operators = load(path)?;
    let before = operators.len();
    operators.retain(|o| o.name != name);
    if operators.len() == before {
        return Err(OperatorError::Unknown(name.to_owned()));
    }
    save(path, operators)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_operator_added_can_sign_in_with_that_password_only_and_the_file_is_private() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("operators.json");
        let now = Utc::now();
        add(
            &path,
            "duty",
            "EDT duty worker",
            "correct horse battery",
            false,
            now,
        )
        .expect("add");
        let duty = find(&path, "duty").expect("read").expect("there");
        assert!(duty.password_hash.starts_with("$argon2id$"));
        assert!(verify_password(
            "correct horse battery",
            &duty.password_hash
        ));
        assert!(!verify_password(
            "correct horse batterY",
            &duty.password_hash
        ));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(!text.contains("correct horse"));
        let err = add(&path, "duty", "x", "another long password", false, now).expect_err("dup");
        assert!(err.to_string().contains("--replace"), "{err}");
        let err = add(&path, "sam", "x", "short", false, now).expect_err("short");
        assert!(err.to_string().contains("12 characters"), "{err}");
        remove(&path, "duty").expect("remove");
        assert!(load(&path).expect("read").is_empty());
        assert!(matches!(
            remove(&path, "duty"),
            Err(OperatorError::Unknown(_))
        ));
    }

    #[test]
    fn two_hashes_of_one_password_differ_by_their_salt() {
        let a = hash_password("the same password").expect("hash");
        let b = hash_password("the same password").expect("hash");
        assert_ne!(a, b);
        assert_eq!(random_password().expect("random").len(), 20);
    }
}
