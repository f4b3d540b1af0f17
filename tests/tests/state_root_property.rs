//! Property: whatever sequence of changes the custodian makes, a replica that follows by
//! deltas and one that takes a single full snapshot both end with exactly the state root the
//! primary signed.

use std::sync::Arc;

use cpreg_primary::clock::FixedClock;
use cpreg_primary::lifecycle::{PlanChange, PlanStart};
use cpreg_primary::record::{
    Category, ChildDetails, Contact, EndReason, Organisation, OrganisationKind, PlanEnd,
};
use cpreg_primary::store::{Outgoing, Store};
use cpreg_proto::pb;
use cpreg_proto::snapshot::{
    TrustedKeys, TrustedState, check_manifest, check_payload, payload_digest, sign_manifest,
};
use ed25519_dalek::SigningKey;
use proptest::prelude::*;

const AUTHORITY: &str = "prop-borough";

#[derive(Debug, Clone)]
enum Op {
    AddChild(u8),
    StartPlan(u8, u8),
    ChangeCategory(u8, u8),
    Rename(u8, u8),
    EndPlan(u8),
    PutOrganisation(u8),
    RemoveOrganisation(u8),
    /// Deliver what the replica lacks now (several versions merge into one delta).
    Sync,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        any::<u8>().prop_map(|c| Op::AddChild(c % 12)),
        (any::<u8>(), any::<u8>()).prop_map(|(c, k)| Op::StartPlan(c % 12, k)),
        (any::<u8>(), any::<u8>()).prop_map(|(c, k)| Op::ChangeCategory(c % 12, k)),
        (any::<u8>(), any::<u8>()).prop_map(|(c, n)| Op::Rename(c % 12, n)),
        any::<u8>().prop_map(|c| Op::EndPlan(c % 12)),
        any::<u8>().prop_map(|o| Op::PutOrganisation(o % 4)),
        any::<u8>().prop_map(|o| Op::RemoveOrganisation(o % 4)),
        Just(Op::Sync),
    ]
}

fn category(k: u8) -> Category {
    [
        Category::Neglect,
        Category::Physical,
        Category::Sexual,
        Category::Emotional,
    ][usize::from(k % 4)]
}

fn today() -> chrono::NaiveDate {
    cpreg_tests::today()
}

/// Applies one operation at the primary; refusals by the rules are part of the sequence too.
fn apply(store: &Store, op: &Op) {
    let actor = "custodian:Property";
    let id = |c: &u8| format!("P{c}");
    let _ = match op {
        Op::AddChild(c) => store
            .create_child(
                actor,
                &id(c),
                ChildDetails {
                    given_names: format!("Child{c}"),
                    surname: "Prop".into(),
                    date_of_birth: Some(today() - chrono::Duration::days(1000 + i64::from(*c))),
                    ..Default::default()
                },
            )
            .map(drop),
        Op::StartPlan(c, k) => store
            .start_plan(
                actor,
                &id(c),
                PlanStart {
                    categories: vec![category(*k)],
                    start_date: today(),
                    lead_social_worker: Contact {
                        name: "Sam".into(),
                        address: String::new(),
                        phone: "02079460123".into(),
                        ..Default::default()
                    },
                    team_manager: Contact {
                        name: "Priya".into(),
                        ..Default::default()
                    },
                    core_group: vec![],
                    next_review_date: today() + chrono::Duration::days(30),
                    notice_period_days: None,
                },
            )
            .map(drop),
        Op::ChangeCategory(c, k) => store
            .change_plan(
                actor,
                &id(c),
                PlanChange {
                    categories: Some(vec![category(*k)]),
                    ..Default::default()
                },
            )
            .map(drop),
        Op::Rename(c, n) => store.get_child(&id(c)).and_then(|mut r| {
            r.details.surname = format!("Prop{n}");
            store.update_child(actor, &id(c), r.details, None).map(drop)
        }),
        Op::EndPlan(c) => store
            .end_plan(
                actor,
                &id(c),
                PlanEnd {
                    reason: EndReason::NoLongerAtRisk,
                    end_date: today(),
                    receiving_authority: String::new(),
                    transfer_in_conference_date: None,
                    looked_after_from: None,
                    letter_date: None,
                    note: String::new(),
                },
            )
            .map(drop),
        Op::PutOrganisation(o) => store
            .put_organisation(
                actor,
                Organisation {
                    id: format!("org-{o}"),
                    name: format!("Organisation {o}"),
                    kind: OrganisationKind::EmergencyDepartment,
                    callback_number: "01632960100".into(),
                    site: "ae".into(),
                    verified_on: today(),
                    verified_by: actor.into(),
                },
            )
            .map(drop),
        Op::RemoveOrganisation(o) => store
            .remove_organisation(actor, &format!("org-{o}"))
            .map(drop),
        Op::Sync => Ok(()),
    };
}

/// Signs what the primary would send and takes it through the replica's checks and apply.
fn deliver(
    primary: &Store,
    key: &SigningKey,
    replica: &cpreg_replica::store::Store,
    held: &TrustedState,
) -> TrustedState {
    let Some(Outgoing {
        head,
        base_version,
        payload,
    }) = primary
        .outgoing(held.version, &held.state_root)
        .expect("outgoing")
    else {
        return held.clone();
    };
    let now = chrono::Utc::now().timestamp();
    let manifest = pb::Manifest {
        authority: AUTHORITY.into(),
        version: head.version,
        issued_at: now,
        expires_at: now + 3600,
        key_id: cpreg_proto::snapshot::key_id(&key.verifying_key()),
        kind: if base_version == 0 {
            pb::ManifestKind::Full
        } else {
            pb::ManifestKind::Delta
        }
        .into(),
        base_version,
        payload_digest: payload_digest(&payload),
        payload_size: payload.len() as u64,
        entry_count: head.entry_count,
        state_root: head.root().to_bytes(),
    };
    let signed = sign_manifest(&manifest, key);
    let keys = TrustedKeys::new(AUTHORITY, vec![key.verifying_key()]);
    let checked = check_manifest(&signed, &keys, held, now, 1 << 30)
        .expect("a manifest from the primary passes");
    check_payload(&checked, &payload).expect("its payload matches");
    replica
        .apply(AUTHORITY, &checked, &payload)
        .expect("applies with the signed state root")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn deltas_and_a_full_snapshot_reach_the_primarys_state_root(ops in proptest::collection::vec(op(), 1..40)) {
        let dir = tempfile::tempdir().expect("dir");
        let key = SigningKey::from_bytes(&[5; 32]);
        let clock = Arc::new(FixedClock::new(cpreg_tests::now()));
        let primary = Store::open(&dir.path().join("primary.redb"), AUTHORITY, key.clone(), clock).expect("primary");
        // As a starting primary does: its own numbers are the first version.
        primary.publish_authority_info(&pb::AuthorityInfo { authority: AUTHORITY.into(), ..Default::default() }).expect("publish");
        let by_delta = cpreg_replica::store::Store::open(&dir.path().join("delta.redb")).expect("replica");
        let mut held = TrustedState::default();
        for op in &ops {
            apply(&primary, op);
            if matches!(op, Op::Sync) {
                held = deliver(&primary, &key, &by_delta, &held);
            }
        }
        held = deliver(&primary, &key, &by_delta, &held);
        let head = primary.head().expect("head");
        prop_assert_eq!(held.version, head.version);
        prop_assert_eq!(hex::encode(&held.state_root), head.state_root.clone());

        let by_full = cpreg_replica::store::Store::open(&dir.path().join("full.redb")).expect("replica");
        let full = deliver(&primary, &key, &by_full, &TrustedState::default());
        prop_assert_eq!(hex::encode(&full.state_root), head.state_root);
        prop_assert_eq!(by_full.entries(AUTHORITY).expect("entries"), by_delta.entries(AUTHORITY).expect("entries"));
    }
}
