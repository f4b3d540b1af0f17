//! The authority's Ed25519 signing key: generated on first start, kept in a file of mode 0600,
//! and replaced by `cpreg-primary rotate-key`, which announces the new key in a statement signed
//! by the old one (DESIGN section 4) before swapping the files.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cpreg_proto::snapshot::sign_rotation;
use ed25519_dalek::{SigningKey, VerifyingKey};

use crate::clock::Clock;
use crate::config::Config;
use crate::store::{KeyInForce, Store, StoreError};

/// Why the signing key could not be had.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    #[error("cannot read or write the signing key {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the signing key {path} is readable by others (mode {mode:o}); run `chmod 600 {path}`")]
    Permissions { path: PathBuf, mode: u32 },
    #[error("the signing key {path} is not 32 bytes of hex")]
    Malformed { path: PathBuf },
    #[error(
        "the register exists but its signing key {path} is missing: restore the key from the backup taken with the register"
    )]
    Missing { path: PathBuf },
    #[error("no randomness for a new key: {0}")]
    Random(String),
    #[error(
        "{path} already holds another key: move it aside (it may be a retired key worth keeping), then run rotate-key again"
    )]
    Clash { path: PathBuf },
}

/// Loads the key at `path`, or makes one there if there is none.
pub fn load_or_generate(path: &Path) -> Result<SigningKey, KeyError> {
    match std::fs::metadata(path) {
        Ok(_) => load(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = generate()?;
            write_new(path, &key)?;
            Ok(key)
        }
        Err(e) => Err(io_error(path)(e)),
    }
}

/// Loads an existing key, refusing one that others could read.
pub fn load(path: &Path) -> Result<SigningKey, KeyError> {
    let io = io_error(path);
    let mode = std::fs::metadata(path).map_err(io)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyError::Permissions {
            path: path.to_owned(),
            mode,
        });
    }
    let text = std::fs::read_to_string(path).map_err(io_error(path))?;
    let bytes: [u8; 32] = hex::decode(text.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| KeyError::Malformed {
            path: path.to_owned(),
        })?;
    Ok(SigningKey::from_bytes(&bytes))
}

/// A fresh key from the operating system's randomness.
fn generate() -> Result<SigningKey, KeyError> {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| KeyError::Random(e.to_string()))?;
    Ok(SigningKey::from_bytes(&secret))
}

/// Writes a key to a file that must not exist yet, mode 0600, and syncs it.
fn write_new(path: &Path, key: &SigningKey) -> Result<(), KeyError> {
    let io = io_error(path);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io_error(path))?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io_error(path))?;
    writeln!(file, "{}", hex::encode(key.to_bytes())).map_err(io_error(path))?;
    file.sync_all().map_err(io)
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> KeyError {
    let path = path.to_owned();
    move |source| KeyError::Io { path, source }
}

/// A short, stable name for a public key (see `cpreg_proto::snapshot::key_id`).
pub fn key_id(key: &VerifyingKey) -> String {
    cpreg_proto::snapshot::key_id(key)
}

/// Where a new key waits between its statement being stored and it being swapped in.
pub fn next_key_path(key_path: &Path) -> PathBuf {
    sibling(key_path, "next")
}

/// Where a retired key is kept: `signing.key.retired-<key id>`.
pub fn retired_key_path(key_path: &Path, retired: &VerifyingKey) -> PathBuf {
    sibling(key_path, &format!("retired-{}", key_id(retired)))
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let name = path.file_name().map_or_else(
        || "signing.key".into(),
        |n| n.to_string_lossy().into_owned(),
    );
    path.with_file_name(format!("{name}.{suffix}"))
}

/// What `rotate-key` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotated {
    pub old_key_id: String,
    pub new_key_id: String,
    /// Where the retired key is kept (mode 0600).
    pub retired: PathBuf,
    /// This run finished a rotation an interrupted run had already announced.
    pub resumed: bool,
}

/// Why `rotate-key` did not rotate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RotateError {
    #[error(
        "there is no register at {path}: rotate-key replaces the key of an existing register (a new one makes its key on first start)"
    )]
    NoRegister { path: PathBuf },
    #[error(
        "the register {path} is open in a running cpreg-primary: stop it, run rotate-key, then start it again"
    )]
    InUse { path: PathBuf },
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("the register: {0}")]
    Store(StoreError),
}

/// Replaces the authority's signing key, with the server stopped. In this order, so a crash at
/// any point leaves a register that starts and signs with a key every replica trusts:
///
/// 1. The new key is written to `signing.key.next` (0600, synced). A crash here leaves the old
///    key in force and an unannounced key that the next run replaces.
/// 2. The rotation statement, signed by the old key, is committed to the register in a
///    transaction of its own. From here replicas will trust the new key, but nothing is signed
///    with it yet; a crash here leaves the old key in force (still trusted), and the next run
///    finds the announced key in `signing.key.next` and finishes.
/// 3. The old key is copied to `signing.key.retired-<key id>` (0600, synced).
/// 4. `signing.key.next` is renamed over `signing.key`: atomic, so `signing.key` is always one
///    whole key, the old or the new.
pub fn rotate(config: &Config, clock: Arc<dyn Clock>) -> Result<Rotated, RotateError> {
    let db = config.database_path();
    if !db.exists() {
        return Err(RotateError::NoRegister { path: db });
    }
    let key_path = config.signing_key_path();
    let old = load(&key_path)?;
    let store = Store::open(&db, &config.authority, old.clone(), clock.clone()).map_err(|e| {
        if e.is_in_use() {
            RotateError::InUse { path: db.clone() }
        } else {
            RotateError::Store(e)
        }
    })?;
    let next_path = next_key_path(&key_path);
    let waiting = match store.key_in_force().map_err(RotateError::Store)? {
        KeyInForce::InterruptedRotation { announced } => load(&next_path)
            .ok()
            .filter(|next| key_id(&next.verifying_key()) == announced),
        KeyInForce::Current => None,
    };
    let resumed = waiting.is_some();
    let new = match waiting {
        Some(new) => new,
        None => {
            // 1. A leftover here was never announced (its run stopped before step 2).
            match std::fs::remove_file(&next_path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_error(&next_path)(e).into()),
            }
            let new = generate()?;
            write_new(&next_path, &new)?;
            sync_dir(&next_path)?;
            // 2.
            let rotation = sign_rotation(
                &config.authority,
                &old,
                &new.verifying_key(),
                clock.now().timestamp(),
            );
            store
                .record_rotation(&rotation)
                .map_err(RotateError::Store)?;
            new
        }
    };
    drop(store);
    // 3.
    let retired = retired_key_path(&key_path, &old.verifying_key());
    match load(&retired) {
        Ok(kept) if kept == old => {}
        Ok(_) => return Err(KeyError::Clash { path: retired }.into()),
        Err(KeyError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            write_new(&retired, &old)?;
        }
        Err(e) => return Err(e.into()),
    }
    // 4.
    std::fs::rename(&next_path, &key_path).map_err(|e| io_error(&key_path)(e))?;
    sync_dir(&key_path)?;
    Ok(Rotated {
        old_key_id: key_id(&old.verifying_key()),
        new_key_id: key_id(&new.verifying_key()),
        retired,
        resumed,
    })
}

/// Makes a file's creation or rename durable by syncing the folder that holds it.
fn sync_dir(path: &Path) -> Result<(), KeyError> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error(dir))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;
    use crate::config::{AuthorityContact, Publishing, TlsConfig};

    fn config(dir: &Path) -> Config {
        Config {
            authority: "lambeth".into(),
            data_dir: dir.join("data"),
            listen: "127.0.0.1:0".parse().expect("address"),
            tls: TlsConfig {
                cert: dir.join("cert.pem"),
                key: dir.join("key.pem"),
                client_ca: dir.join("ca.pem"),
            },
            contact: AuthorityContact::default(),
            publishing: Publishing::default(),
            notifications: None,
            retention: Default::default(),
            signing_key: None,
            metrics: None,
            log_format: Default::default(),
        }
    }

    /// A register on disk with its first key, closed.
    fn register(config: &Config) -> SigningKey {
        let key = load_or_generate(&config.signing_key_path()).expect("key");
        Store::open(
            &config.database_path(),
            &config.authority,
            key.clone(),
            Arc::new(SystemClock),
        )
        .expect("register");
        key
    }

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).expect("meta").permissions().mode() & 0o777
    }

    #[test]
    fn a_rotation_announces_the_new_key_keeps_the_old_one_and_swaps_the_files() {
        let dir = tempfile::tempdir().expect("folder");
        let config = config(dir.path());
        assert!(matches!(
            rotate(&config, Arc::new(SystemClock)),
            Err(RotateError::NoRegister { .. })
        ));
        let old = register(&config);
        let rotated = rotate(&config, Arc::new(SystemClock)).expect("rotated");
        let new = load(&config.signing_key_path()).expect("new key");
        assert_ne!(new, old);
        assert_eq!(rotated.new_key_id, key_id(&new.verifying_key()));
        assert_eq!(rotated.old_key_id, key_id(&old.verifying_key()));
        assert!(!rotated.resumed);
        assert_eq!(load(&rotated.retired).expect("retired"), old);
        assert_eq!(mode(&rotated.retired), 0o600);
        assert_eq!(mode(&config.signing_key_path()), 0o600);
        assert!(!next_key_path(&config.signing_key_path()).exists());
        let store = Store::open(
            &config.database_path(),
            "lambeth",
            new.clone(),
            Arc::new(SystemClock),
        )
        .expect("opens with the new key");
        assert_eq!(
            store.key_chain().expect("chain"),
            [old.verifying_key(), new.verifying_key()]
        );
    }

    #[test]
    fn a_rotation_interrupted_after_its_statement_is_finished_by_running_it_again() {
        let dir = tempfile::tempdir().expect("folder");
        let config = config(dir.path());
        let old = register(&config);
        // The state a crash between steps 2 and 4 leaves.
        let waiting = generate().expect("key");
        write_new(&next_key_path(&config.signing_key_path()), &waiting).expect("next");
        Store::open(
            &config.database_path(),
            "lambeth",
            old.clone(),
            Arc::new(SystemClock),
        )
        .expect("open")
        .record_rotation(&sign_rotation("lambeth", &old, &waiting.verifying_key(), 1))
        .expect("announced");
        let rotated = rotate(&config, Arc::new(SystemClock)).expect("finished");
        assert!(rotated.resumed);
        assert_eq!(load(&config.signing_key_path()).expect("key"), waiting);
        assert_eq!(rotated.new_key_id, key_id(&waiting.verifying_key()));
    }
}
