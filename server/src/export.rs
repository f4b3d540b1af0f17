//! The air-gap export (DESIGN section 4): the signed full snapshot of the current version, after
//! the authority's key rotations, written as a snapshot file (`cpreg_proto::snapshot::file`) and
//! encrypted with age to one receiving site's X25519 recipient. The frames are those a
//! subscription sends, signed by the same code ([`crate::replication::sign_version`]), so the
//! site checks them exactly as it checks a subscription.
//!
//! The register is opened the way `serve` opens it, and redb lets one process hold the file, so
//! the export runs with the server stopped.

use std::io::{BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cpreg_proto::snapshot::file::SnapshotFileWriter;
use cpreg_proto::snapshot::{rotation_frame, version_frames};

use crate::clock::Clock;
use crate::config::{Config, Publishing};
use crate::replication::{CHUNK_BYTES, sign_version};
use crate::store::{Store, StoreError};

/// Why no snapshot file was written. Nothing is left at the output path.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    #[error("there is no register at {path}: check --config (and --data-dir)")]
    NoRegister { path: PathBuf },
    #[error(
        "the register {path} is open in a running cpreg-primary: stop it, export, then start it again"
    )]
    InUse { path: PathBuf },
    #[error(
        "{given:?} is not an age X25519 recipient: give the line starting \"age1\" that the site's `cpreg-replica keygen` printed"
    )]
    Recipient { given: String },
    #[error("the register has published nothing yet: there is no snapshot to export")]
    NothingPublished,
    #[error("{path} already exists: choose another name, or remove it first")]
    Exists { path: PathBuf },
    #[error("opening the register: {0}")]
    Open(#[from] crate::ServeError),
    #[error("reading the register: {0}")]
    Store(#[from] StoreError),
    #[error("encrypting for the recipient: {0}")]
    Encrypt(String),
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What was exported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exported {
    pub version: u64,
    /// Hex, as `GetAuthority` and the replica's status show it.
    pub state_root: String,
    pub entry_count: u64,
    /// Key rotations written before the snapshot.
    pub rotations: usize,
    pub path: PathBuf,
}

/// Parses an age X25519 recipient (`age1...`).
pub fn parse_recipient(text: &str) -> Result<age::x25519::Recipient, ExportError> {
    text.trim().parse().map_err(|_| ExportError::Recipient {
        given: text.to_owned(),
    })
}

/// Opens the register described by `config` (the server must be stopped) and writes its current
/// version to `out`, encrypted to `recipient`.
pub fn export_snapshot(
    config: &Config,
    clock: Arc<dyn Clock>,
    recipient: &str,
    out: &Path,
) -> Result<Exported, ExportError> {
    let recipient = parse_recipient(recipient)?;
    let db = config.database_path();
    if !db.exists() {
        return Err(ExportError::NoRegister { path: db });
    }
    let store = crate::open_store(config, clock).map_err(|e| match e {
        crate::ServeError::Store(e) if e.is_in_use() => ExportError::InUse { path: db.clone() },
        other => ExportError::Open(other),
    })?;
    write_snapshot_file(&store, &config.publishing, &recipient, out)
}

/// Writes the store's current version as an encrypted snapshot file at `out` (mode 0600). The
/// file is written beside `out` under a temporary name and linked into place only once whole
/// and synced, so a file at `out` is never a partial one, and an existing file is never
/// replaced.
pub fn write_snapshot_file(
    store: &Store,
    publishing: &Publishing,
    recipient: &age::x25519::Recipient,
    out: &Path,
) -> Result<Exported, ExportError> {
    if out.exists() {
        return Err(ExportError::Exists {
            path: out.to_owned(),
        });
    }
    let rotations = store.rotations()?;
    let outgoing = store
        .outgoing(0, &[])?
        .ok_or(ExportError::NothingPublished)?;
    let signed = sign_version(store, publishing, &outgoing);
    let (partial, file) = Partial::create(out)?;
    let write_error = |source| ExportError::Write {
        path: partial.path.clone(),
        source,
    };
    let encryptor =
        age::Encryptor::with_recipients(std::iter::once(recipient as &dyn age::Recipient))
            .map_err(|e| ExportError::Encrypt(e.to_string()))?;
    let stream = encryptor
        .wrap_output(BufWriter::new(file))
        .map_err(write_error)?;
    let mut writer = SnapshotFileWriter::new(stream).map_err(write_error)?;
    let rotation_count = rotations.len();
    for rotation in rotations {
        writer
            .write_frame(&rotation_frame(rotation))
            .map_err(write_error)?;
    }
    for frame in version_frames(signed, &outgoing.payload, CHUNK_BYTES) {
        writer.write_frame(&frame).map_err(write_error)?;
    }
    let mut buffered = writer.into_inner().finish().map_err(write_error)?;
    buffered.flush().map_err(write_error)?;
    buffered.get_ref().sync_all().map_err(write_error)?;
    partial.publish()?;
    Ok(Exported {
        version: outgoing.head.version,
        state_root: outgoing.head.state_root.clone(),
        entry_count: outgoing.head.entry_count,
        rotations: rotation_count,
        path: out.to_owned(),
    })
}

/// The file being written, removed if the export stops before it is whole.
struct Partial {
    path: PathBuf,
    out: PathBuf,
    published: bool,
}

impl Partial {
    fn create(out: &Path) -> Result<(Partial, std::fs::File), ExportError> {
        let name = out
            .file_name()
            .map_or_else(|| "snapshot".into(), |n| n.to_string_lossy().into_owned());
        let path = out.with_file_name(format!(".{name}.partial"));
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|source| ExportError::Write {
                path: path.clone(),
                source,
            })?;
        let partial = Partial {
            path,
            out: out.to_owned(),
            published: false,
        };
        Ok((partial, file))
    }

    /// Links the whole file into place (failing, not replacing, if `out` appeared meanwhile),
    /// then drops the temporary name.
    fn publish(mut self) -> Result<(), ExportError> {
        std::fs::hard_link(&self.path, &self.out).map_err(|source| {
            if source.kind() == std::io::ErrorKind::AlreadyExists {
                ExportError::Exists {
                    path: self.out.clone(),
                }
            } else {
                ExportError::Write {
                    path: self.out.clone(),
                    source,
                }
            }
        })?;
        self.published = true;
        let _ = std::fs::remove_file(&self.path);
        let dir = match self.out.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|source| ExportError::Write {
                path: dir.to_owned(),
                source,
            })
    }
}

impl Drop for Partial {
    fn drop(&mut self) {
        if !self.published {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}
