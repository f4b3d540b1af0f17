//! Intake scenarios, one per attack on signed snapshots (TUF's list) and per procedure of the
//! replica. Each ends by checking that the last good version is still what is held and read.

use std::sync::Arc;

use chrono::DateTime;
use cpreg_proto::snapshot::sign_rotation;
use ed25519_dalek::SigningKey;

use super::*;
use crate::clock::FixedClock;
use crate::status::HeldVersion;
use crate::test_primary::{Snapshot, T0, TestPrimary, VALID_FOR};

/// A replica's intake for one authority, on a temporary store, with a clock the test moves.
struct Site {
    _dir: tempfile::TempDir,
    store: Arc<Store>,
    clock: FixedClock,
    link: Arc<LinkState>,
    intake: Intake,
}

impl Site {
    async fn new(primary: &TestPrimary) -> Site {
        let dir = tempfile::tempdir().expect("temporary folder");
        let store = Arc::new(Store::open(&dir.path().join("replica.redb")).expect("store"));
        let clock = FixedClock::new(DateTime::from_timestamp(T0, 0).expect("time"));
        let link = Arc::new(LinkState::default());
        let intake = Site::intake(primary, &store, &clock, &link).await;
        Site {
            _dir: dir,
            store,
            clock,
            link,
            intake,
        }
    }

    async fn intake(
        primary: &TestPrimary,
        store: &Arc<Store>,
        clock: &FixedClock,
        link: &Arc<LinkState>,
    ) -> Intake {
        let enrolled = vec![SigningKey::from_bytes(&[7; 32]).verifying_key()];
        Intake::new(
            &primary.authority,
            enrolled,
            store.clone(),
            Arc::new(clock.clone()),
            1 << 20,
            link.clone(),
        )
        .await
        .expect("intake")
    }

    /// Feeds a version's frames in 7-byte chunks; the first refusal, or the last progress.
    async fn feed(&mut self, snapshot: &Snapshot) -> Result<Progress, FrameError> {
        let mut last = Ok(Progress::Gathering);
        for frame in snapshot.frames(7) {
            last = self.intake.frame(frame).await;
            if last.is_err() {
                break;
            }
        }
        last
    }

    /// A refusal for exactly this reason.
    async fn refuses(&mut self, snapshot: &Snapshot) -> IntakeError {
        let before = self.link.rejected();
        match self.feed(snapshot).await {
            Err(FrameError::Refused(error)) => {
                assert_eq!(self.link.rejected(), before + 1, "each refusal is counted");
                error
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    /// The last good version is what is held, and lookups would read its value of `key`.
    fn holds(&self, version: u64, key: &str, value: &[u8]) {
        let state = self.store.trusted_state("lambeth").expect("state");
        assert_eq!(state.version, version);
        assert_eq!(
            self.store.get("lambeth", key).expect("get").as_deref(),
            Some(value)
        );
    }
}

/// A site holding version 1 of a three-child register.
async fn site_at_version_1() -> (TestPrimary, Site, Snapshot) {
    let mut primary = TestPrimary::new("lambeth");
    primary.add_children(3);
    let mut site = Site::new(&primary).await;
    let v1 = primary.full();
    assert!(matches!(site.feed(&v1).await, Ok(Progress::Applied(_))));
    (primary, site, v1)
}

#[tokio::test]
async fn a_full_snapshot_then_a_one_record_delta() {
    let (mut primary, mut site, _) = site_at_version_1().await;
    site.holds(1, "child/C000001", b"child 1");
    let v2 = primary.delta(&[("child/C000001", b"moved to SE11")]);
    let Ok(Progress::Applied(state)) = site.feed(&v2).await else {
        panic!("delta applies")
    };
    assert_eq!((state.version, state.entry_count), (2, 3));
    assert_eq!(state.state_root, primary.root().to_bytes());
    site.holds(2, "child/C000001", b"moved to SE11");
    assert_eq!(site.link.rejected(), 0);
}

#[tokio::test]
async fn a_forged_signature_is_refused() {
    let (mut primary, mut site, _) = site_at_version_1().await;
    let mut forged = primary.delta(&[("child/C000001", b"forged")]);
    forged.signed.signature[0] ^= 1;
    assert_eq!(site.refuses(&forged).await, IntakeError::BadSignature);
    let mut altered = primary.delta(&[("child/C000001", b"altered")]);
    altered.signed.manifest[5] ^= 1;
    assert_eq!(site.refuses(&altered).await, IntakeError::BadSignature);
    site.holds(1, "child/C000001", b"child 1");
}

#[tokio::test]
async fn a_payload_with_one_byte_changed_is_refused() {
    let (mut primary, mut site, _) = site_at_version_1().await;
    let mut tampered = primary.delta(&[("child/C000001", b"moved to SE11")]);
    let last = tampered.payload.len() - 1;
    tampered.payload[last] ^= 1;
    assert_eq!(site.refuses(&tampered).await, IntakeError::DigestMismatch);
    site.holds(1, "child/C000001", b"child 1");
}

#[tokio::test]
async fn a_rolled_back_version_is_refused() {
    let (mut primary, mut site, _) = site_at_version_1().await;
    assert!(
        site.feed(&primary.delta(&[("child/C000001", b"v2")]))
            .await
            .is_ok()
    );
    // A validly signed full snapshot that claims an older version number.
    primary.version = 0;
    primary
        .entries
        .insert("child/C000001".into(), b"rolled back".to_vec());
    let old = primary.full();
    assert_eq!(
        site.refuses(&old).await,
        IntakeError::Rollback {
            held: 2,
            offered: 1
        }
    );
    site.holds(2, "child/C000001", b"v2");
}

#[tokio::test]
async fn a_replayed_old_snapshot_is_refused() {
    let (mut primary, mut site, v1) = site_at_version_1().await;
    assert!(
        site.feed(&primary.delta(&[("child/C000001", b"v2")]))
            .await
            .is_ok()
    );
    assert_eq!(
        site.refuses(&v1).await,
        IntakeError::Rollback {
            held: 2,
            offered: 1
        }
    );
    site.holds(2, "child/C000001", b"v2");
}

#[tokio::test]
async fn an_expired_manifest_is_refused() {
    let (mut primary, mut site, _) = site_at_version_1().await;
    let frozen = primary.delta(&[("child/C000001", b"frozen")]);
    site.clock.advance(chrono::Duration::seconds(VALID_FOR));
    assert!(matches!(
        site.refuses(&frozen).await,
        IntakeError::Expired { .. }
    ));
    site.holds(1, "child/C000001", b"child 1");
}

#[tokio::test]
async fn a_delta_on_the_wrong_base_is_refused() {
    let (mut primary, mut site, _) = site_at_version_1().await;
    let _missed = primary.delta(&[("child/C000002", b"v2")]);
    let v3 = primary.delta(&[("child/C000001", b"v3")]);
    assert_eq!(
        site.refuses(&v3).await,
        IntakeError::WrongBase { held: 1, base: 2 }
    );
    site.holds(1, "child/C000001", b"child 1");
}

#[tokio::test]
async fn a_payload_longer_than_declared_is_refused_as_soon_as_it_overflows() {
    let (mut primary, mut site, _) = site_at_version_1().await;
    let endless = primary.delta(&[("child/C000001", b"endless")]);
    let frame = |bytes: Vec<u8>| pb::SnapshotFrame {
        frame: Some(Frame::Chunk(bytes)),
    };
    let manifest = pb::SnapshotFrame {
        frame: Some(Frame::Manifest(endless.signed.clone())),
    };
    assert_eq!(
        site.intake.frame(manifest).await.ok(),
        Some(Progress::Gathering)
    );
    let declared = endless.payload.len();
    assert_eq!(
        site.intake
            .frame(frame(endless.payload[..declared - 1].to_vec()))
            .await
            .ok(),
        Some(Progress::Gathering)
    );
    let error = site.intake.frame(frame(vec![0; 1 << 16])).await;
    assert!(
        matches!(
            error,
            Err(FrameError::Refused(IntakeError::SizeMismatch { .. }))
        ),
        "{error:?}"
    );
    // Nothing of it was kept: a further chunk has no version to belong to.
    let stray = site.intake.frame(frame(vec![0; 1])).await;
    assert!(
        matches!(stray, Err(FrameError::Refused(IntakeError::Malformed(_)))),
        "{stray:?}"
    );
    site.holds(1, "child/C000001", b"child 1");
}

#[tokio::test]
async fn a_payload_cut_short_by_the_next_manifest_is_refused() {
    let (mut primary, mut site, _) = site_at_version_1().await;
    let v2 = primary.delta(&[("child/C000001", b"v2")]);
    let mut frames = v2.frames(7);
    frames.pop();
    for frame in frames {
        assert!(site.intake.frame(frame).await.is_ok());
    }
    let next = pb::SnapshotFrame {
        frame: Some(Frame::Manifest(v2.signed.clone())),
    };
    let error = site.intake.frame(next).await;
    assert!(
        matches!(
            error,
            Err(FrameError::Refused(IntakeError::SizeMismatch { .. }))
        ),
        "{error:?}"
    );
    site.holds(1, "child/C000001", b"child 1");
}

#[tokio::test]
async fn another_authoritys_manifest_is_refused() {
    let (_, mut site, _) = site_at_version_1().await;
    // Croydon signs with the same key: a replica of Lambeth must still not take it.
    let mut croydon = TestPrimary::new("croydon");
    croydon.add_children(1);
    croydon.version = 5;
    let theirs = croydon.full();
    assert!(matches!(
        site.refuses(&theirs).await,
        IntakeError::WrongAuthority { .. }
    ));
    site.holds(1, "child/C000001", b"child 1");
}

#[tokio::test]
async fn a_key_not_chained_to_the_enrolled_key_is_refused() {
    let (mut primary, mut site, _) = site_at_version_1().await;
    let stranger = SigningKey::from_bytes(&[9; 32]);
    let next = SigningKey::from_bytes(&[10; 32]);
    let rotation = sign_rotation("lambeth", &stranger, &next.verifying_key(), T0);
    let frame = pb::SnapshotFrame {
        frame: Some(Frame::Rotation(rotation)),
    };
    // Not followed and not counted: a rotation from before the enrolled key looks the same. What
    // the stranger then signs is refused and counted.
    assert!(matches!(
        site.intake.frame(frame).await,
        Ok(Progress::RotationNotFollowed(IntakeError::BadSignature))
    ));
    primary.key = next;
    let unchained = primary.delta(&[("child/C000001", b"from a stranger")]);
    assert!(matches!(
        site.refuses(&unchained).await,
        IntakeError::UntrustedKey { .. }
    ));
    assert_eq!(site.link.rejected(), 1);
    site.holds(1, "child/C000001", b"child 1");
}

#[tokio::test]
async fn a_retired_key_signs_nothing_after_the_rotation() {
    let (mut primary, mut site, _) = site_at_version_1().await;
    let old = primary.key.clone();
    let new = SigningKey::from_bytes(&[8; 32]);
    let rotation = sign_rotation("lambeth", &old, &new.verifying_key(), T0);
    let frame = pb::SnapshotFrame {
        frame: Some(Frame::Rotation(rotation)),
    };
    assert!(matches!(
        site.intake.frame(frame).await,
        Ok(Progress::KeyTrusted { .. })
    ));
    // The leaked old key signs a version far ahead, and a fork of the chain: both refused.
    let leaked = primary.delta(&[("child/C000001", b"forged")]);
    assert!(matches!(
        site.refuses(&leaked).await,
        IntakeError::RetiredKey { .. }
    ));
    let fork = sign_rotation(
        "lambeth",
        &old,
        &SigningKey::from_bytes(&[11; 32]).verifying_key(),
        T0 + 1,
    );
    assert!(matches!(
        site.store
            .record_rotation("lambeth", &fork, &[old.verifying_key()]),
        Err(crate::store::ApplyError::Refused(
            IntakeError::RetiredKey { .. }
        ))
    ));
    site.holds(1, "child/C000001", b"child 1");
}

#[tokio::test]
async fn a_key_rotation_is_followed_and_remembered() {
    let (mut primary, mut site, _) = site_at_version_1().await;
    let new = SigningKey::from_bytes(&[8; 32]);
    let rotation = sign_rotation("lambeth", &primary.key, &new.verifying_key(), T0);
    let frame = || pb::SnapshotFrame {
        frame: Some(Frame::Rotation(rotation.clone())),
    };
    assert!(matches!(
        site.intake.frame(frame()).await,
        Ok(Progress::KeyTrusted { .. })
    ));
    // The primary resends rotations on every subscription: harmless.
    assert!(matches!(
        site.intake.frame(frame()).await,
        Ok(Progress::KeyTrusted { .. })
    ));
    primary.key = new;
    assert!(matches!(
        site.feed(&primary.delta(&[("child/C000001", b"v2")])).await,
        Ok(Progress::Applied(_))
    ));
    // After a restart the rotation is replayed from the store.
    site.intake = Site::intake(&primary, &site.store, &site.clock, &site.link).await;
    assert!(matches!(
        site.feed(&primary.delta(&[("child/C000001", b"v3")])).await,
        Ok(Progress::Applied(_))
    ));
    site.holds(3, "child/C000001", b"v3");
}

#[tokio::test]
async fn a_freshness_statement_extends_as_of_once() {
    let (mut primary, mut site, _) = site_at_version_1().await;
    site.clock.advance(chrono::Duration::hours(1));
    let fresh = primary.freshness(3600);
    let Ok(Progress::Refreshed(state)) = site.feed(&fresh).await else {
        panic!("freshness accepted")
    };
    assert_eq!((state.version, state.issued_at), (1, T0 + 3600));
    assert_eq!(state.expires_at, T0 + 3600 + VALID_FOR);
    // The same statement again vouches for nothing new; an older one is a replay.
    assert!(matches!(
        site.feed(&fresh).await,
        Ok(Progress::Refreshed(_))
    ));
    assert_eq!(
        site.refuses(&primary.freshness(-1800)).await,
        IntakeError::FreshnessReplayed
    );
    let held = site.store.trusted_state("lambeth").expect("state");
    let view = HeldVersion::new(
        "lambeth",
        &held,
        site.clock.now(),
        chrono::Duration::hours(24),
    );
    assert_eq!(view.as_of.map(|t| t.timestamp()), Some(T0 + 3600));
    site.holds(1, "child/C000001", b"child 1");
}

#[tokio::test]
async fn staleness_flips_with_the_clock_and_freshness_clears_it() {
    let mut primary = TestPrimary::new("lambeth");
    let mut site = Site::new(&primary).await;
    let threshold = chrono::Duration::hours(24);
    let view = |site: &Site| {
        let held = site.store.trusted_state("lambeth").expect("state");
        HeldVersion::new("lambeth", &held, site.clock.now(), threshold)
    };
    assert!(view(&site).stale, "nothing held is stale");
    primary.add_children(3);
    assert!(site.feed(&primary.full()).await.is_ok());
    assert!(!view(&site).stale);
    site.clock.advance(chrono::Duration::hours(24));
    assert!(
        !view(&site).stale,
        "exactly at the threshold is not yet stale"
    );
    site.clock.advance(chrono::Duration::seconds(1));
    assert!(view(&site).stale);
    assert!(site.feed(&primary.freshness(24 * 3600 + 1)).await.is_ok());
    assert!(!view(&site).stale);
    site.holds(1, "child/C000001", b"child 1");
}

#[tokio::test]
async fn a_site_enrolled_after_a_rotation_skips_the_rotation_to_its_key() {
    let mut primary = TestPrimary::new("lambeth");
    primary.add_children(2);
    let mut site = Site::new(&primary).await;
    // The primary sends its whole chain; the rotation to the key this site was enrolled with was
    // signed by a key it never knew.
    let older = SigningKey::from_bytes(&[6; 32]);
    let rotation = sign_rotation("lambeth", &older, &primary.key.verifying_key(), T0);
    let frame = pb::SnapshotFrame {
        frame: Some(Frame::Rotation(rotation)),
    };
    assert!(matches!(
        site.intake.frame(frame).await,
        Ok(Progress::KeyTrusted { .. })
    ));
    assert_eq!(site.link.rejected(), 0);
    assert!(matches!(
        site.feed(&primary.full()).await,
        Ok(Progress::Applied(_))
    ));
}
