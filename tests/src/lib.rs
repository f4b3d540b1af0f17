//! The shared harness of cpreg's end-to-end tests and benchmarks: a development CA, a primary
//! started for real (in this process on port 0, or as a separate process that can be killed),
//! and profiles for every role, all under one temporary folder.

pub mod authorisation;
pub mod receivers;
pub mod replica;
pub mod replica_process;
pub mod site;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use cpreg::commands::pki::{ProfileTarget, issue_profile};
use cpreg::local::{LocalPrimary, prepare_primary};
use cpreg::pki::DevCa;
use cpreg::profile::Profile;
use cpreg_primary::clock::FixedClock;
use cpreg_proto::pb;
use cpreg_proto::pb::register_client::RegisterClient;
use cpreg_proto::role::Role;
use tonic::transport::Channel;

/// The authority every test register belongs to.
pub const AUTHORITY: &str = "test-borough";

/// The day the tests' clock stands on: every date in the scenarios is relative to it.
pub fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 22).expect("a real date")
}

/// Noon on [`today`].
pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0)
        .single()
        .expect("a real time")
}

/// A date `days` from [`today`] (negative for the past), as the wire spells it.
pub fn day(days: i64) -> String {
    (today() + chrono::Duration::days(days)).to_string()
}

/// A temporary folder with a CA and a profile for each role.
pub struct TestPki {
    pub dir: tempfile::TempDir,
    pub ca: DevCa,
}

impl TestPki {
    pub fn new() -> TestPki {
        Self::for_authority(AUTHORITY)
    }

    /// A folder and CA for another authority (a replica may trust several).
    pub fn for_authority(authority: &str) -> TestPki {
        let dir = tempfile::tempdir().expect("temporary folder");
        let ca = DevCa::create(authority).expect("CA");
        ca.save(&dir.path().join("pki")).expect("save CA");
        TestPki { dir, ca }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn primary_dir(&self) -> PathBuf {
        self.path().join("primary")
    }

    /// Writes a profile for `role` dialling `primary_url`.
    pub fn profile(&self, role: Role, primary_url: &str) -> Profile {
        let site = matches!(role, Role::Terminal | Role::Replica).then_some("ae");
        let dir = self.path().join("profiles").join(role.as_str());
        let target = ProfileTarget {
            primary: primary_url,
            replica: None,
            site,
            days: 30,
        };
        issue_profile(&self.ca, role, &format!("Test {role}"), target, &dir).expect("profile");
        Profile::load(Some(&dir)).expect("load profile")
    }
}

impl Default for TestPki {
    fn default() -> Self {
        Self::new()
    }
}

/// A primary running in this process, with the clock at [`now`].
pub struct TestPrimary {
    pub pki: TestPki,
    pub primary: Option<LocalPrimary>,
    pub clock: Arc<FixedClock>,
    pub url: String,
}

impl TestPrimary {
    pub async fn start() -> TestPrimary {
        Self::start_with(TestPki::new()).await
    }

    /// Starts (or restarts) a primary over an existing folder.
    pub async fn start_with(pki: TestPki) -> TestPrimary {
        Self::restart_on_at(pki, std::net::SocketAddr::from(([127, 0, 0, 1], 0)), now()).await
    }

    /// Restarts a primary over an existing folder on a given address (replicas dial it there).
    pub async fn restart_on(pki: TestPki, addr: std::net::SocketAddr) -> TestPrimary {
        Self::restart_on_at(pki, addr, now()).await
    }

    /// Starts a primary on `addr` (port 0 for any) whose clock stands at `at`.
    pub async fn restart_on_at(
        pki: TestPki,
        addr: std::net::SocketAddr,
        at: DateTime<Utc>,
    ) -> TestPrimary {
        Self::start_configured(pki, addr, at, |_| {}).await
    }

    /// Starts (or restarts) a primary over `pki`'s folder on `addr` with its clock at `at`, its
    /// configuration changed by `configure` first (a `[notifications]` section, say).
    pub async fn start_configured(
        pki: TestPki,
        addr: std::net::SocketAddr,
        at: DateTime<Utc>,
        configure: impl FnOnce(&mut cpreg_primary::config::Config),
    ) -> TestPrimary {
        let clock = Arc::new(FixedClock::new(at));
        let primary = LocalPrimary::start_configured(
            &pki.primary_dir(),
            &pki.ca,
            clock.clone(),
            addr,
            configure,
        )
        .await
        .expect("primary starts");
        let url = primary.url.clone();
        let this = TestPrimary {
            pki,
            primary: Some(primary),
            clock,
            url,
        };
        this.wait_ready().await;
        this
    }

    async fn wait_ready(&self) {
        let profile = self.profile(Role::Custodian);
        for _ in 0..200 {
            if let Ok(mut c) = profile.register().await
                && c.get_authority(pb::GetAuthorityRequest {}).await.is_ok()
            {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("primary at {} never answered", self.url);
    }

    pub fn profile(&self, role: Role) -> Profile {
        self.pki.profile(role, &self.url)
    }

    /// A register client holding a certificate for `role`.
    pub async fn client(&self, role: Role) -> RegisterClient<Channel> {
        self.profile(role).register().await.expect("connect")
    }

    /// Stops the primary, waiting until it has closed the register, and gives the folder back.
    pub async fn stop(mut self) -> TestPki {
        if let Some(p) = self.primary.take() {
            p.stop().await.expect("primary stops cleanly");
        }
        self.pki
    }

    pub fn database_path(&self) -> PathBuf {
        self.pki.primary_dir().join("data").join("register.redb")
    }

    /// The enquiries the primary has received from its replicas, as the auditor lists them.
    pub async fn enquiries(&self) -> Vec<pb::ReceivedEnquiry> {
        self.profile(Role::Auditor)
            .replication()
            .await
            .expect("connect")
            .list_enquiries(pb::ListEnquiriesRequest::default())
            .await
            .expect("list")
            .into_inner()
            .enquiries
    }

    /// The newest published version, its state root (hex) and entry count.
    pub async fn head(&self) -> (u64, String, u64) {
        let mut c = self.client(Role::Auditor).await;
        let a = c
            .get_authority(pb::GetAuthorityRequest {})
            .await
            .expect("authority")
            .into_inner();
        (a.published_version, a.state_root, a.entry_count)
    }
}

/// A primary in its own process (the real `cpreg-primary` command line), so a test can kill it.
pub struct PrimaryProcess {
    pub child: Child,
    pub url: String,
}

impl PrimaryProcess {
    /// Starts `cpreg-primary serve` over `pki`'s primary folder and waits for it to listen.
    /// `exe` is `env!("CARGO_BIN_EXE_cpreg-primary-under-test")`, which only tests can name.
    pub fn spawn(exe: &str, pki: &TestPki) -> PrimaryProcess {
        Self::spawn_on(exe, pki, "127.0.0.1:0".parse().expect("addr"))
    }

    /// As [`PrimaryProcess::spawn`], listening on `addr`: a primary restarted after a kill comes
    /// back where its replicas dial it.
    pub fn spawn_on(exe: &str, pki: &TestPki, addr: std::net::SocketAddr) -> PrimaryProcess {
        use std::io::BufRead;
        prepare_primary(&pki.primary_dir(), &pki.ca, addr).expect("config");
        let mut child = Command::new(exe)
            .args(["serve", "--config"])
            .arg(pki.primary_dir().join("primary.toml"))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn cpreg-primary");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read listening line");
        let addr = line
            .trim()
            .strip_prefix("cpreg-primary listening on ")
            .unwrap_or_else(|| panic!("unexpected first line from cpreg-primary: {line:?}"))
            .to_owned();
        PrimaryProcess {
            child,
            url: format!("https://{addr}"),
        }
    }

    /// SIGKILL: no chance to flush or close anything.
    pub fn kill_9(mut self) {
        // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

/// A free loopback address: bound, read and released, for a server that must come back on the
/// same port after it is killed.
pub fn free_loopback_addr() -> std::net::SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
}

/// Opens a stopped (or killed) primary's register in this process, with its own signing key.
pub fn open_register(pki: &TestPki) -> cpreg_primary::store::Store {
    let data = pki.primary_dir().join("data");
    let key = cpreg_primary::keys::load_or_generate(&data.join("signing.key"))
        .expect("the primary's signing key");
    cpreg_primary::store::Store::open(
        &data.join("register.redb"),
        AUTHORITY,
        key,
        Arc::new(FixedClock::new(now())),
    )
    .expect("open the primary's register")
}

/// A child's details as the custodian would send them.
pub fn child_details(given: &str, surname: &str, dob: &str) -> pb::ChildDetails {
    pb::ChildDetails {
        given_names: given.into(),
        surname: surname.into(),
        date_of_birth: dob.into(),
        gender: pb::Gender::Female.into(),
        nhs_number: "9434765919".into(),
        home_address: "14 Alder Road, Croydon".into(),
        home_postcode: "CR0 1AA".into(),
        ..Default::default()
    }
}

/// The work e-mail of the lead social worker that [`plan_start`] names.
pub const LEAD_SOCIAL_WORKER_EMAIL: &str = "sam.okafor@social-care.example";

/// The initial conference's decision, starting `start_days` from today.
pub fn plan_start(
    record_id: &str,
    start_days: i64,
    review_days: i64,
    categories: &[pb::Category],
) -> pb::StartPlanRequest {
    pb::StartPlanRequest {
        record_id: record_id.into(),
        categories: categories.iter().map(|c| (*c).into()).collect(),
        start_date: day(start_days),
        lead_social_worker: Some(pb::Contact {
            name: "Sam Okafor".into(),
            address: String::new(),
            phone: "020 7946 0123".into(),
            email: LEAD_SOCIAL_WORKER_EMAIL.into(),
        }),
        team_manager: Some(pb::Contact {
            name: "Priya Shah".into(),
            address: String::new(),
            phone: "020 7946 0124".into(),
            email: String::new(),
        }),
        core_group: vec!["Health visitor".into(), "Class teacher".into()],
        next_review_date: day(review_days),
        notice_period_days: 0,
    }
}

/// The review conference's decision that the child is no longer at risk, `days` from today.
pub fn ended_at_review(record_id: &str, days: i64) -> pb::EndPlanRequest {
    pb::EndPlanRequest {
        record_id: record_id.into(),
        end: Some(pb::PlanEnd {
            reason: pb::EndReason::NoLongerAtRisk.into(),
            end_date: day(days),
            ..Default::default()
        }),
    }
}

/// Writes `n` synthetic children as a register CSV under `dir`.
pub fn synthetic_csv(
    dir: &Path,
    name: &str,
    n: usize,
    seed: u64,
) -> (PathBuf, Vec<cpreg::synthetic::SyntheticChild>) {
    let children = cpreg::synthetic::Generator::new(seed, today()).children(n);
    let path = dir.join(name);
    let file = std::fs::File::create(&path).expect("create csv");
    cpreg::synthetic::write_csv(std::io::BufWriter::new(file), &children).expect("write csv");
    (path, children)
}
