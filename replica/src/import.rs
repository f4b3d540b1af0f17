//! Importing a snapshot file at a site with no link (DESIGN section 4, air gap). The authority
//! exports its signed snapshot encrypted to this site's age recipient (`cpreg-primary export`);
//! the site decrypts it with its identity (made by `cpreg-replica keygen`) and feeds the frames,
//! one at a time, through the same [`Intake`] a subscription goes through: the same checks in
//! the same order, the same apply. Encryption keeps the register private on the way; the
//! signatures, not the encryption, are what make it trusted.
//!
//! The file is read one frame ahead of the intake, so a file that fails to decrypt or ends
//! short after a version's last chunk is found before that version is applied.

use std::io::Read;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use cpreg_proto::pb;
use cpreg_proto::snapshot::file::{SnapshotFileError, SnapshotFileReader};
use cpreg_proto::snapshot::{IntakeError, TrustedState};
use tokio::sync::mpsc;

use crate::intake::{FrameError, Intake, Progress};
use crate::store::StoreError;

/// Why a snapshot file was not imported. The version held is unchanged.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    /// The site's identity file cannot be used.
    #[error("identity file {path}: {message}")]
    Identity { path: PathBuf, message: String },
    /// The snapshot file cannot be opened.
    #[error("cannot open {path}: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Encrypted for another site (or with another identity of this one).
    #[error(
        "the file was not encrypted for this site's identity: ask the authority to export it again to the recipient `cpreg-replica keygen` printed for this site"
    )]
    NotForThisSite,
    /// Not an age file.
    #[error("the file cannot be decrypted ({0}): check it is the file the authority exported")]
    Decrypt(String),
    /// The encryption's authentication fails, or the file ends early: damaged or cut short on
    /// the way.
    #[error(
        "the file is damaged or was cut short ({0}): nothing of it was applied; ask the authority for a new copy"
    )]
    Damaged(String),
    /// The decrypted contents cannot be read as a snapshot file.
    #[error(transparent)]
    File(#[from] SnapshotFileError),
    /// A frame failed an intake check: the same refusal a subscription would get.
    #[error("the snapshot was refused: {0}")]
    Refused(IntakeError),
    /// The file held no complete version (rotations, or nothing, only).
    #[error("the file holds no snapshot: it is not an export, or it was cut short")]
    NoVersion,
    /// The authority is not one this replica follows.
    #[error("authority {0:?} is not in the configuration: enrol it under [[authority]] first")]
    UnknownAuthority(String),
    /// The local store failed.
    #[error("the replica's store: {0}")]
    Store(#[from] StoreError),
}

impl From<FrameError> for ImportError {
    fn from(e: FrameError) -> Self {
        match e {
            FrameError::Refused(e) => ImportError::Refused(e),
            FrameError::Store(e) => ImportError::Store(e),
        }
    }
}

/// Makes this site's age identity at `path` (mode 0600, never replacing a file) and returns its
/// recipient, which the site gives the authority to export to.
pub fn generate_identity(path: &Path) -> Result<String, ImportError> {
    use age::secrecy::ExposeSecret;
    let identity = age::x25519::Identity::generate();
    let recipient = identity.to_public().to_string();
    let text = format!(
        "# cpreg-replica site identity: keep it private; give the authority the recipient below\n# created: {}\n# public key: {recipient}\n{}\n",
        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        identity.to_string().expose_secret()
    );
    let fail = |source: std::io::Error| ImportError::Identity {
        path: path.to_owned(),
        message: if source.kind() == std::io::ErrorKind::AlreadyExists {
            "already exists, and an identity is never replaced: files exported to its recipient need it".into()
        } else {
            source.to_string()
        },
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(fail)?;
    std::io::Write::write_all(&mut file, text.as_bytes()).map_err(fail)?;
    file.sync_all().map_err(fail)?;
    Ok(recipient)
}

/// Reads the site's identity, refusing a file others could read.
pub fn load_identity(path: &Path) -> Result<age::x25519::Identity, ImportError> {
    let bad = |message: String| ImportError::Identity {
        path: path.to_owned(),
        message,
    };
    let mode = std::fs::metadata(path)
        .map_err(|e| bad(e.to_string()))?
        .permissions()
        .mode()
        & 0o777;
    if mode & 0o077 != 0 {
        return Err(bad(format!(
            "readable by others (mode {mode:o}); run `chmod 600 {}`",
            path.display()
        )));
    }
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .ok_or_else(|| bad("holds no key: make one with `cpreg-replica keygen`".into()))?;
    line.parse().map_err(|_| {
        bad("is not an age X25519 identity (AGE-SECRET-KEY-1...): make one with `cpreg-replica keygen`".into())
    })
}

/// Opens and decrypts a snapshot file, positioned at its first frame.
pub fn open_snapshot_file(
    path: &Path,
    identity: &age::x25519::Identity,
) -> Result<SnapshotFileReader<impl Read + use<>>, ImportError> {
    let file = std::fs::File::open(path).map_err(|source| ImportError::Open {
        path: path.to_owned(),
        source,
    })?;
    let decryptor = age::Decryptor::new(std::io::BufReader::new(file)).map_err(|e| match e {
        age::DecryptError::Io(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            ImportError::Damaged("it ends inside the encryption header".into())
        }
        other => ImportError::Decrypt(other.to_string()),
    })?;
    let plaintext = decryptor
        .decrypt(std::iter::once(identity as &dyn age::Identity))
        .map_err(|e| match e {
            age::DecryptError::NoMatchingKeys => ImportError::NotForThisSite,
            other => ImportError::Decrypt(other.to_string()),
        })?;
    SnapshotFileReader::open(plaintext).map_err(read_error)
}

/// Decrypts the file at `path` and feeds it through `intake`. Returns what is held afterwards:
/// the version the file carried, proved and applied.
pub async fn import_file(
    intake: &mut Intake,
    path: &Path,
    identity: age::x25519::Identity,
) -> Result<TrustedState, ImportError> {
    // Reading and decrypting are blocking: they run on the blocking pool, a few frames ahead.
    let (tx, mut rx) = mpsc::channel::<Result<pb::SnapshotFrame, ImportError>>(2);
    let path = path.to_owned();
    let reader = tokio::task::spawn_blocking(move || {
        let frames = match open_snapshot_file(&path, &identity) {
            Ok(frames) => frames,
            Err(e) => {
                let _ = tx.blocking_send(Err(e));
                return;
            }
        };
        for frame in frames {
            let failed = frame.is_err();
            if tx.blocking_send(frame.map_err(read_error)).is_err() || failed {
                return;
            }
        }
    });
    let result = feed(intake, &mut rx).await;
    drop(rx);
    let _ = reader.await;
    result
}

/// A decrypting stream reports a chunk that fails authentication as invalid data: the file was
/// altered or cut inside a chunk.
fn read_error(error: SnapshotFileError) -> ImportError {
    match error {
        SnapshotFileError::Io(e) if e.kind() == std::io::ErrorKind::InvalidData => {
            ImportError::Damaged(format!("decrypting it fails: {e}"))
        }
        other => ImportError::File(other),
    }
}

/// Feeds frames to the intake one behind the reader.
async fn feed(
    intake: &mut Intake,
    frames: &mut mpsc::Receiver<Result<pb::SnapshotFrame, ImportError>>,
) -> Result<TrustedState, ImportError> {
    let mut applied = None;
    let mut current = next(intake, frames).await?;
    while let Some(frame) = current {
        let following = next(intake, frames).await?;
        if let Progress::Applied(state) = intake.frame(frame).await? {
            applied = Some(state);
        }
        current = following;
    }
    intake.end_of_input()?;
    applied.ok_or(ImportError::NoVersion)
}

/// The next frame, or `None` at a clean end; a read failure is shown in the status.
async fn next(
    intake: &mut Intake,
    frames: &mut mpsc::Receiver<Result<pb::SnapshotFrame, ImportError>>,
) -> Result<Option<pb::SnapshotFrame>, ImportError> {
    match frames.recv().await.transpose() {
        Ok(frame) => Ok(frame),
        Err(error) => {
            intake.input_failed(format!("snapshot file: {error}"));
            Err(error)
        }
    }
}

#[cfg(test)]
mod tests;
