//! Snapshot files at a site with no link: each scenario ends by checking what is held.

use std::sync::Arc;

use chrono::DateTime;
use cpreg_proto::snapshot::file::SnapshotFileWriter;
use cpreg_proto::snapshot::{rotation_frame, sign_rotation, version_frames};
use ed25519_dalek::SigningKey;

use super::*;
use crate::clock::FixedClock;
use crate::status::LinkState;
use crate::store::Store;
use crate::test_primary::{Snapshot, T0, TestPrimary};

/// A site with no link: a store, its identity, and an intake enrolled with Lambeth's first key.
struct Site {
    dir: tempfile::TempDir,
    store: Arc<Store>,
    link: Arc<LinkState>,
    intake: Intake,
    recipient: String,
}

impl Site {
    async fn new() -> Site {
        let dir = tempfile::tempdir().expect("temporary folder");
        let store = Arc::new(Store::open(&dir.path().join("replica.redb")).expect("store"));
        let recipient = generate_identity(&dir.path().join("site.key")).expect("identity");
        let clock = FixedClock::new(DateTime::from_timestamp(T0, 0).expect("time"));
        let link = Arc::new(LinkState::default());
        let intake = Intake::new(
            "lambeth",
            vec![SigningKey::from_bytes(&[7; 32]).verifying_key()],
            store.clone(),
            Arc::new(clock),
            1 << 20,
            link.clone(),
        )
        .await
        .expect("intake");
        Site {
            dir,
            store,
            link,
            intake,
            recipient,
        }
    }

    /// Writes `bytes` as a file in the site's folder.
    fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, bytes).expect("write file");
        path
    }

    async fn import(&mut self, path: &Path) -> Result<TrustedState, ImportError> {
        let identity = load_identity(&self.dir.path().join("site.key")).expect("identity");
        import_file(&mut self.intake, path, identity).await
    }

    fn version(&self) -> u64 {
        self.store.trusted_state("lambeth").expect("state").version
    }
}

/// A snapshot file's plaintext: the given frames after the magic.
fn plaintext(frames: impl IntoIterator<Item = pb::SnapshotFrame>) -> Vec<u8> {
    let mut writer = SnapshotFileWriter::new(Vec::new()).expect("magic");
    for frame in frames {
        writer.write_frame(&frame).expect("frame");
    }
    writer.into_inner()
}

/// Encrypts a plaintext to an age recipient, as `cpreg-primary export` does.
fn encrypt(plaintext: &[u8], recipient: &str) -> Vec<u8> {
    let recipient: age::x25519::Recipient = recipient.parse().expect("recipient");
    let encryptor =
        age::Encryptor::with_recipients(std::iter::once(&recipient as &dyn age::Recipient))
            .expect("encryptor");
    let mut out = Vec::new();
    let mut writer = encryptor.wrap_output(&mut out).expect("header");
    std::io::Write::write_all(&mut writer, plaintext).expect("write");
    writer.finish().expect("finish");
    out
}

/// An export of `snapshot` for `recipient`, after `rotations`, in 100-byte chunks.
fn export(snapshot: &Snapshot, rotations: &[pb::KeyRotation], recipient: &str) -> Vec<u8> {
    let frames = rotations
        .iter()
        .cloned()
        .map(rotation_frame)
        .chain(version_frames(
            snapshot.signed.clone(),
            &snapshot.payload,
            100,
        ));
    encrypt(&plaintext(frames), recipient)
}

/// Lambeth after a key rotation, with `n` children, and the rotation.
fn rotated_primary(n: usize) -> (TestPrimary, pb::KeyRotation) {
    let mut primary = TestPrimary::new("lambeth");
    let next = SigningKey::from_bytes(&[8; 32]);
    let rotation = sign_rotation("lambeth", &primary.key, &next.verifying_key(), T0);
    primary.key = next;
    primary.add_children(n);
    (primary, rotation)
}

#[tokio::test]
async fn an_exported_file_is_proved_and_applied_following_the_key_chain() {
    let mut site = Site::new().await;
    let (mut primary, rotation) = rotated_primary(40);
    let v1 = primary.full();
    let path = site.file("lambeth.cpreg", &export(&v1, &[rotation], &site.recipient));
    let state = site.import(&path).await.expect("imported");
    assert_eq!((state.version, state.entry_count), (1, 40));
    assert_eq!(state.state_root, primary.root().to_bytes());
    assert_eq!(
        site.store.get("lambeth", "child/C000039").expect("get"),
        Some(b"child 39".to_vec())
    );
    assert_eq!(site.link.rejected(), 0);
}

#[tokio::test]
async fn a_file_cut_short_anywhere_is_refused_and_the_last_good_version_is_kept() {
    let mut site = Site::new().await;
    let (mut primary, rotation) = rotated_primary(30);
    let v1 = primary.full();
    let first = site.file(
        "v1.cpreg",
        &export(&v1, std::slice::from_ref(&rotation), &site.recipient),
    );
    site.import(&first).await.expect("version 1");
    primary.add_children(60);
    let v2 = primary.full();
    let whole = export(&v2, std::slice::from_ref(&rotation), &site.recipient);
    for cut in [
        0,
        20,
        150,
        whole.len() / 3,
        whole.len() / 2,
        whole.len() - 17,
        whole.len() - 1,
    ] {
        let path = site.file("cut.cpreg", &whole[..cut]);
        let result = site.import(&path).await;
        assert!(
            result.is_err(),
            "cut at {cut} of {}: {result:?}",
            whole.len()
        );
        assert_eq!(site.version(), 1, "cut at {cut}");
    }
    // Whole age encryption of a file that ends between frames, before the payload is complete.
    let mut frames: Vec<_> = std::iter::once(rotation_frame(rotation))
        .chain(version_frames(v2.signed.clone(), &v2.payload, 100))
        .collect();
    frames.pop();
    let short = site.file("short.cpreg", &encrypt(&plaintext(frames), &site.recipient));
    assert!(matches!(
        site.import(&short).await,
        Err(ImportError::Refused(IntakeError::SizeMismatch { .. }))
    ));
    assert_eq!(site.version(), 1);
    assert_eq!(
        site.store.get("lambeth", "child/C000001").expect("get"),
        Some(b"child 1".to_vec())
    );
}

#[tokio::test]
async fn a_file_for_another_site_is_refused() {
    let mut site = Site::new().await;
    let other = tempfile::tempdir().expect("other site");
    let theirs = generate_identity(&other.path().join("site.key")).expect("identity");
    let (mut primary, rotation) = rotated_primary(3);
    let path = site.file(
        "theirs.cpreg",
        &export(&primary.full(), &[rotation], &theirs),
    );
    assert!(matches!(
        site.import(&path).await,
        Err(ImportError::NotForThisSite)
    ));
    assert_eq!(site.version(), 0);
}

#[tokio::test]
async fn an_older_file_is_refused_as_a_rollback() {
    let mut site = Site::new().await;
    let (mut primary, rotation) = rotated_primary(3);
    let v1 = export(
        &primary.full(),
        std::slice::from_ref(&rotation),
        &site.recipient,
    );
    primary.add_children(5);
    let v2 = export(&primary.full(), &[rotation], &site.recipient);
    let newer = site.file("v2.cpreg", &v2);
    site.import(&newer).await.expect("version 2");
    let older = site.file("v1.cpreg", &v1);
    assert!(matches!(
        site.import(&older).await,
        Err(ImportError::Refused(IntakeError::Rollback {
            held: 2,
            offered: 1
        }))
    ));
    assert_eq!(site.version(), 2);
}

#[tokio::test]
async fn a_file_signed_by_a_key_that_does_not_chain_is_refused() {
    let mut site = Site::new().await;
    let mut stranger = TestPrimary::new("lambeth");
    stranger.key = SigningKey::from_bytes(&[9; 32]);
    stranger.add_children(2);
    let path = site.file(
        "stray.cpreg",
        &export(&stranger.full(), &[], &site.recipient),
    );
    assert!(matches!(
        site.import(&path).await,
        Err(ImportError::Refused(IntakeError::UntrustedKey { .. }))
    ));
    // Only rotations and no snapshot: nothing to hold.
    let (_, rotation) = rotated_primary(0);
    let bare = encrypt(&plaintext([rotation_frame(rotation)]), &site.recipient);
    let path = site.file("bare.cpreg", &bare);
    assert!(matches!(
        site.import(&path).await,
        Err(ImportError::NoVersion)
    ));
    assert_eq!(site.version(), 0);
}

#[test]
fn an_identity_is_private_and_not_replaced() {
    let dir = tempfile::tempdir().expect("folder");
    let path = dir.path().join("site.key");
    let recipient = generate_identity(&path).expect("identity");
    assert!(recipient.starts_with("age1"), "{recipient}");
    let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert_eq!(
        load_identity(&path).expect("loads").to_public().to_string(),
        recipient
    );
    assert!(generate_identity(&path).is_err(), "never replaced");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let Err(err) = load_identity(&path) else {
        panic!("an identity readable by others is refused")
    };
    let err = err.to_string();
    assert!(err.contains("chmod 600"), "{err}");
}
