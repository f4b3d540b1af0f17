//! A site as most lookup scenarios find it: a primary with Amelia Evans on a plan and the
//! organisations of the directory, and a replica at the site serving lookups that already holds
//! the primary's newest version.

use cpreg_proto::pb::{self, Category};
use cpreg_proto::role::Role;
use cpreg_replica::config::Config;

use crate::replica::{
    TestReplica, authority_entry, list_organisations, lookup_config, replica_config,
    terminal_profile,
};
use crate::{AUTHORITY, TestPki, TestPrimary, child_details, plan_start};

/// An organisation as [`list_organisations`] takes it: `(id, name, call-back number, site)`.
pub type Listing = (&'static str, &'static str, &'static str, &'static str);

/// The emergency department whose terminals ask at site `ae`.
pub const ST_ELSEWHERE_AE: Listing = (
    "st-elsewhere-ae",
    "St Elsewhere Emergency Department",
    "01632 960 100",
    "ae",
);

/// The emergency duty team at site `edt`, which takes enquiries by phone.
pub const DEMO_EDT: Listing = (
    "demo-edt",
    "Demo Emergency Duty Team",
    "01632 960 200",
    "edt",
);

/// Another organisation listed at site `edt`, whose call-backs the EDT makes.
pub const GP_OUT_OF_HOURS: Listing = ("gp-ooh", "GP Out of Hours", "01632 960 400", "edt");

/// Enters Amelia Evans (record `C1`, born 2019-04-23) with a neglect plan that started ten days
/// ago, and lists `organisations` in the directory, as the custodian.
pub async fn amelia_on_a_plan(primary: &TestPrimary, organisations: &[Listing]) {
    let mut custodian = primary.client(Role::Custodian).await;
    custodian
        .create_child(pb::CreateChildRequest {
            record_id: "C1".into(),
            details: Some(child_details("Amelia", "Evans", "2019-04-23")),
        })
        .await
        .expect("child");
    custodian
        .start_plan(plan_start("C1", -10, 60, &[Category::Neglect]))
        .await
        .expect("plan");
    list_organisations(&mut custodian, organisations).await;
}

/// Starts a replica of `primary`'s authority at `site` serving lookups (the demo's set-up), its
/// configuration changed by `configure` first (a console, other limits), and waits until it
/// holds the primary's newest version.
pub async fn lookup_replica(
    primary: &TestPrimary,
    site: &str,
    configure: impl FnOnce(&TestPki, &mut Config),
) -> TestReplica {
    let pki = &primary.pki;
    let mut config = replica_config(pki, site, vec![authority_entry(pki, site, &primary.url)]);
    config.lookups = Some(lookup_config(pki, site));
    configure(pki, &mut config);
    let replica = TestReplica::start_with(config).await;
    replica.wait_for(AUTHORITY, primary.head().await.0).await;
    replica
}

/// A new primary with [`amelia_on_a_plan`] and `organisations` listed, and a
/// [`lookup_replica`] at `site` configured by `configure`.
pub async fn lookup_site(
    site: &str,
    organisations: &[Listing],
    configure: impl FnOnce(&TestPki, &mut Config),
) -> (TestPrimary, TestReplica) {
    let primary = TestPrimary::start().await;
    amelia_on_a_plan(&primary, organisations).await;
    let replica = lookup_replica(&primary, site, configure).await;
    (primary, replica)
}

/// The lookup service of a configuration made by [`lookup_replica`], for `configure` to change.
pub fn lookups(config: &mut Config) -> &mut cpreg_replica::config::LookupConfig {
    config
        .lookups
        .as_mut()
        .expect("a lookup replica serves lookups")
}

/// The terminal profile of the first A&E workstation at [`ST_ELSEWHERE_AE`], dialling
/// `replica`'s lookups.
pub fn ae_terminal(primary: &TestPrimary, replica: &TestReplica) -> cpreg::profile::Profile {
    let (organisation, _, _, site) = ST_ELSEWHERE_AE;
    let addr = replica.replica.lookup_addr().expect("lookups served");
    terminal_profile(&primary.pki, "A&E workstation 1", site, organisation, addr)
}

/// A query for the child named, born on `dob` (empty for a query without it).
pub fn child_query(given: &str, surname: &str, dob: &str) -> pb::ChildQuery {
    pb::ChildQuery {
        given_names: given.into(),
        surname: surname.into(),
        date_of_birth: dob.into(),
        ..Default::default()
    }
}

/// A lookup of `child` by the A&E registrar, Dr Asha Patel, about unexplained bruising.
pub fn registrar_lookup(child: pb::ChildQuery) -> pb::LookupRequest {
    pb::LookupRequest {
        child: Some(child),
        operator_name: "Dr Asha Patel".into(),
        operator_role: "ED registrar".into(),
        reason: "Unexplained bruising on a toddler".into(),
    }
}
