//! `cpreg demo --dir D`: a development CA, a primary on loopback with a synthetic register loaded
//! through the real import, the organisation directory, and a profile per role under
//! `D/profiles/`. Ctrl-C or SIGTERM stops it cleanly.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;
use cpreg_primary::clock::SystemClock;
use cpreg_proto::pb;
use cpreg_proto::role::Role;
use indicatif::ProgressBar;

use crate::commands::pki::{ProfileTarget, issue_profile};
use crate::local::LocalPrimary;
use crate::output::{CliError, Output};
use crate::pki::DevCa;
use crate::profile::Profile;
use crate::synthetic::{Generator, write_csv};

/// The demo's authority id.
pub const DEMO_AUTHORITY: &str = "demo-borough";

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Keep everything here: data, keys, configs, profiles.
    #[arg(long)]
    pub dir: PathBuf,
    /// Start with an empty register.
    #[arg(long)]
    pub no_seed: bool,
    /// How many synthetic children to load.
    #[arg(long, default_value_t = 2_000)]
    pub records: usize,
    /// Lookups per operator per hour at the replicas, twice that per terminal (0 lifts every
    /// limit: operator, terminal and site, and the hold on sweeps).
    #[arg(long, default_value_t = 60)]
    pub rate_limit_per_hour: u32,
    /// Seed for the synthetic register.
    #[arg(long, default_value_t = 2026)]
    pub seed: u64,
}

/// The custodian's and auditor's profiles: folder name, role, holder.
const ADMIN_PROFILES: [(&str, Role, &str); 2] = [
    ("custodian", Role::Custodian, "Safeguarding Unit (demo)"),
    ("auditor", Role::Auditor, "Internal Audit (demo)"),
];

/// Each site's replica and the terminal profile that asks it: folder, holder, site,
/// directory organisation.
const TERMINALS: [(&str, &str, &str, &str); 3] = [
    (
        "ae-terminal",
        "St Elsewhere A&E workstation 1",
        "ae",
        "st-elsewhere-ae",
    ),
    ("edt-duty", "EDT duty worker", "edt", "demo-edt"),
    (
        "cait-terminal",
        "CAIT officer terminal",
        "cait",
        "demo-cait",
    ),
];

/// All the profiles the demo writes.
fn profile_folders() -> Vec<&'static str> {
    ADMIN_PROFILES
        .iter()
        .map(|(f, ..)| *f)
        .chain(TERMINALS.iter().map(|(f, ..)| *f))
        .collect()
}

/// The organisations the demo's directory holds (numbers are Ofcom drama numbers).
const ORGANISATIONS: [(&str, &str, &str, &str, &str); 5] = [
    (
        "st-elsewhere-ae",
        "St Elsewhere Hospital Emergency Department",
        "emergency-department",
        "01632 960 100",
        "ae",
    ),
    (
        "demo-edt",
        "Demo Borough Emergency Duty Team",
        "emergency-duty-team",
        "01632 960 200",
        "edt",
    ),
    (
        "demo-cait",
        "Demo Police Child Abuse Investigation Team",
        "police-cait",
        "020 7946 0300",
        "cait",
    ),
    (
        "demo-gp-ooh",
        "Demo GP Out-of-Hours Service",
        "gp-out-of-hours",
        "01632 960 400",
        "edt",
    ),
    (
        "demo-ambulance",
        "Demo Ambulance Service Clinical Hub",
        "ambulance",
        "01632 960 500",
        "edt",
    ),
];

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> CliError {
    let path = path.to_owned();
    move |source| CliError::Io { what, path, source }
}

pub async fn run(args: DemoArgs, out: Output) -> Result<(), CliError> {
    std::fs::create_dir_all(&args.dir).map_err(io("demo folder", &args.dir))?;
    let dir = args
        .dir
        .canonicalize()
        .map_err(io("demo folder", &args.dir))?;
    let pki_dir = dir.join("pki");
    let ca = if pki_dir.join("ca.pem").exists() {
        DevCa::load(&pki_dir)?
    } else {
        let ca = DevCa::create(DEMO_AUTHORITY)?;
        ca.save(&pki_dir)?;
        ca
    };
    let primary = LocalPrimary::start(&dir.join("primary"), &ca, Arc::new(SystemClock)).await?;
    let profiles_dir = dir.join("profiles");
    for (folder, role, name) in ADMIN_PROFILES {
        let target = ProfileTarget {
            primary: &primary.url,
            replica: None,
            site: None,
            days: 30,
        };
        issue_profile(&ca, role, name, target, &profiles_dir.join(folder))?;
    }
    let custodian = Profile::load(Some(&profiles_dir.join("custodian")))?;
    wait_until_serving(&custodian, &primary).await?;

    let seeded = if args.no_seed {
        None
    } else {
        Some(seed(&custodian, &dir, args.records, args.seed, out).await?)
    };
    put_organisations(&custodian).await?;
    let replicas = start_replicas(&dir, &ca, &primary, args.rate_limit_per_hour).await?;
    let consoles = demo_operators(&replicas)?;
    for (folder, name, site, organisation) in TERMINALS {
        let addr = replicas
            .iter()
            .find(|(s, _)| *s == site)
            .and_then(|(_, r)| r.lookup_addr())
            .ok_or_else(|| CliError::Invalid(format!("replica {site} serves no lookups")))?;
        let replica_url = format!("https://127.0.0.1:{}", addr.port());
        crate::local::terminal_profile(
            &profiles_dir.join(folder),
            &ca,
            name,
            site,
            organisation,
            &primary.url,
            &replica_url,
        )?;
    }

    let summary = serde_json::json!({
        "ready": true,
        "dir": dir,
        "primary": primary.url,
        "profiles": profile_folders().iter().map(|f| profiles_dir.join(f)).collect::<Vec<_>>(),
        "seeded": seeded,
        "replicas": replicas.iter().map(|(site, r)| {
            let status = r.status();
            serde_json::json!({ "site": site, "authorities": status })
        }).collect::<Vec<_>>(),
        "rate_limit_per_hour": args.rate_limit_per_hour,
        "consoles": consoles.iter().map(|c| serde_json::json!({
            "site": c.site, "url": c.url, "username": DEMO_OPERATOR, "password": c.password,
        })).collect::<Vec<_>>(),
    });
    let example_field = |field: &str| {
        seeded
            .as_ref()
            .and_then(|s| s["example"][field].as_str().map(str::to_owned))
            .unwrap_or_else(|| match field {
                "given" => "Amelia".into(),
                "surname" => "Evans".into(),
                _ => "2019-04-23".into(),
            })
    };
    out.emit(&summary, || {
        let p = profiles_dir.display();
        format!(
            "cpreg demo ready: primary {url} (authority {DEMO_AUTHORITY})\n\
             {seeded}\
             replicas: {replica_lines}\n\
             profiles in {p}: custodian, auditor, ae-terminal, edt-duty, cait-terminal\n\
             duty consoles (browser; trust the demo CA {dir}/pki/ca.pem or accept the warning):\n{console_lines}\n\n\
             Try:\n\
             \x20 cpreg --profile {p}/custodian children list --active\n\
             \x20 cpreg --profile {p}/custodian children show C0000001\n\
             \x20 cpreg --profile {p}/custodian children history C0000001\n\
             \x20 cpreg --profile {p}/custodian orgs list\n\
             \x20 cpreg --profile {p}/custodian admin import {dir}/seed/register.csv   (again: all unchanged)\n\
             \x20 cpreg --profile {p}/auditor admin audit verify\n\
             \x20 cpreg --profile {p}/custodian admin replicas\n\
             \x20 cpreg --profile {p}/ae-terminal children list   (refused: wrong role)\n\
             \x20 cpreg --profile {p}/ae-terminal lookup --given \"{given}\" --surname \"{surname}\" --dob {dob} --reason \"Unexplained injury\"\n\
             \x20 cpreg --profile {p}/ae-terminal lookup --given \"{given}\" --surname \"{surname}\" --reason \"...\"   (refused: says what is missing)\n\
             \x20 cpreg --profile {p}/edt-duty enquiry open --given \"{given}\" --surname \"{surname}\" --dob {dob} --enquirer \"Dr Lee\" --enquirer-role GP --organisation demo-gp-ooh --reason \"Burns seen at out-of-hours clinic\"\n\
             \x20 cpreg --profile {p}/edt-duty enquiry callback REFERENCE --outcome confirmed\n\n\
             Ctrl-C stops the demo.",
            url = primary.url,
            dir = dir.display(),
            given = example_field("given"),
            surname = example_field("surname"),
            dob = example_field("dob"),
            console_lines = consoles
                .iter()
                .map(|c| format!("  {}  {}  sign in as {DEMO_OPERATOR} / {}", c.site, c.url, c.password))
                .collect::<Vec<_>>()
                .join("\n"),
            replica_lines = replicas
                .iter()
                .map(|(site, r)| format!("{site} (version {})", r.status().first().map(|s| s.version).unwrap_or(0)))
                .collect::<Vec<_>>()
                .join(", "),
            seeded = match &seeded {
                Some(s) => format!("register: {} children loaded, {} plans ended for the demo\n", s["children"], s["ended"]),
                None => "register: empty (--no-seed)\n".into(),
            },
        )
    })?;

    cpreg_primary::cli::shutdown_signal().await;
    if !out.json {
        eprintln!("stopping...");
    }
    for (_, replica) in replicas {
        replica.stop().await;
    }
    primary.stop().await
}

/// The demo operator at each site's console.
const DEMO_OPERATOR: &str = "duty";

/// A console the demo started, and the demo operator's fresh password there.
struct DemoConsole {
    site: &'static str,
    url: String,
    password: String,
}

/// Gives each replica's console a `duty` operator with a new random password (each run).
fn demo_operators(
    replicas: &[(&'static str, cpreg_replica::Replica)],
) -> Result<Vec<DemoConsole>, CliError> {
    use cpreg_replica::console::operators;
    let mut consoles = Vec::new();
    for (site, replica) in replicas {
        let Some(addr) = replica.console_addr() else {
            continue;
        };
        let password = operators::random_password()
            .map_err(|e| CliError::Invalid(format!("demo operator: {e}")))?;
        let role = if *site == "ae" {
            "ED registrar"
        } else if *site == "edt" {
            "EDT duty worker"
        } else {
            "CAIT officer"
        };
        operators::add(
            &replica.config().operators_path(),
            DEMO_OPERATOR,
            role,
            &password,
            true,
            chrono::Utc::now(),
        )
        .map_err(|e| CliError::Invalid(format!("demo operator at {site}: {e}")))?;
        consoles.push(DemoConsole {
            site,
            url: format!("https://127.0.0.1:{}/", addr.port()),
            password,
        });
    }
    Ok(consoles)
}

/// The demo's replica sites.
const SITES: [&str; 3] = ["ae", "edt", "cait"];

/// Starts a replica for each site, following the primary, and waits until each holds the
/// primary's newest version.
async fn start_replicas(
    dir: &Path,
    ca: &DevCa,
    primary: &LocalPrimary,
    rate_limit_per_hour: u32,
) -> Result<Vec<(&'static str, cpreg_replica::Replica)>, CliError> {
    let public_key = crate::local::primary_public_key(&primary.config)?;
    let mut replicas = Vec::new();
    for site in SITES {
        let site_dir = dir.join("replicas").join(site);
        let authority =
            crate::local::replica_authority(&site_dir, site, ca, &primary.url, &public_key)?;
        let mut config = crate::local::replica_config(&site_dir, site, vec![authority])?;
        let listen = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        config.lookups = Some(crate::local::lookup_config(
            &site_dir,
            ca,
            listen,
            rate_limit_per_hour,
        )?);
        let organisation = TERMINALS
            .iter()
            .find(|(_, _, s, _)| *s == site)
            .map_or(site, |(_, _, _, o)| *o);
        config.console = Some(crate::local::console_config(
            &site_dir,
            ca,
            listen,
            organisation,
        )?);
        let replica =
            cpreg_replica::Replica::start(config, Arc::new(cpreg_replica::clock::SystemClock))
                .await
                .map_err(|e| CliError::Invalid(format!("replica {site} did not start: {e}")))?;
        replicas.push((site, replica));
    }
    let custodian = Profile::load(Some(&dir.join("profiles").join("custodian")))?;
    let head = custodian
        .register()
        .await?
        .get_authority(pb::GetAuthorityRequest {})
        .await?
        .into_inner()
        .published_version;
    for _ in 0..600 {
        if replicas
            .iter()
            .all(|(_, r)| r.status().iter().all(|s| s.version >= head))
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    Ok(replicas)
}

async fn wait_until_serving(profile: &Profile, primary: &LocalPrimary) -> Result<(), CliError> {
    for _ in 0..100 {
        if primary.is_finished() {
            break;
        }
        if let Ok(mut client) = profile.register().await
            && client
                .get_authority(pb::GetAuthorityRequest {})
                .await
                .is_ok()
        {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    Err(CliError::Invalid(format!(
        "the primary at {} did not start; see the log above",
        primary.url
    )))
}

/// Loads a synthetic register through the real import, ends a few plans so the register has
/// history, and fills the organisation directory. Skipped when the register already has children.
async fn seed(
    custodian: &Profile,
    dir: &Path,
    records: usize,
    seed: u64,
    out: Output,
) -> Result<serde_json::Value, CliError> {
    let mut client = custodian.register().await?;
    let existing = client
        .list_children(pb::ListChildrenRequest {
            limit: 1,
            ..Default::default()
        })
        .await?
        .into_inner()
        .total;
    if existing > 0 {
        return Ok(serde_json::json!({ "children": existing, "ended": 0, "kept_existing": true }));
    }
    let today = chrono::Utc::now().date_naive();
    let children = Generator::new(seed, today).children(records);
    let seed_dir = dir.join("seed");
    std::fs::create_dir_all(&seed_dir).map_err(io("folder", &seed_dir))?;
    let csv_path = seed_dir.join("register.csv");
    let file = std::fs::File::create(&csv_path).map_err(io("seed file", &csv_path))?;
    write_csv(std::io::BufWriter::new(file), &children).map_err(io("seed file", &csv_path))?;
    let progress = if out.json {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(records as u64)
    };
    let report = crate::commands::import::import_file(custodian, &csv_path, &progress).await?;

    let mut ended = 0;
    for (i, child) in children
        .iter()
        .enumerate()
        .filter(|(_, c)| !c.plan_start_date.is_empty() && c.expected_delivery_date.is_empty())
    {
        if i % 17 != 3 {
            continue;
        }
        let Ok(start) = chrono::NaiveDate::parse_from_str(&child.plan_start_date, "%Y-%m-%d")
        else {
            continue;
        };
        let end_date = (start + chrono::Duration::days(120)).min(today).to_string();
        let (reason, receiving, conference) = match ended % 3 {
            0 => (pb::EndReason::NoLongerAtRisk, "", ""),
            1 => (
                pb::EndReason::Transferred,
                "Neighbouring Borough Council",
                end_date.as_str(),
            ),
            _ => (pb::EndReason::LeftUk, "", ""),
        };
        let request = pb::EndPlanRequest {
            record_id: child.record_id.clone(),
            end: Some(pb::PlanEnd {
                reason: reason.into(),
                end_date: end_date.clone(),
                receiving_authority: receiving.into(),
                transfer_in_conference_date: conference.into(),
                ..Default::default()
            }),
        };
        if client.end_plan(request).await.is_ok() {
            ended += 1;
        }
    }
    // A child with an active plan, to show a lookup with.
    let example = children
        .iter()
        .find(|c| !c.plan_start_date.is_empty() && !c.date_of_birth.is_empty())
        .map(|c| serde_json::json!({ "given": c.given_names, "surname": c.surname, "dob": c.date_of_birth }));
    Ok(serde_json::json!({
        "children": report.accepted + report.updated + report.unchanged,
        "rejected": report.rejected,
        "ended": ended,
        "csv": csv_path,
        "example": example,
    }))
}

/// The demo's organisation directory (re-verifying the same details changes nothing).
async fn put_organisations(custodian: &Profile) -> Result<(), CliError> {
    let mut client = custodian.register().await?;
    for (id, name, kind, number, site) in ORGANISATIONS {
        let kind = match kind {
            "emergency-department" => pb::OrganisationKind::EmergencyDepartment,
            "emergency-duty-team" => pb::OrganisationKind::EmergencyDutyTeam,
            "police-cait" => pb::OrganisationKind::PoliceCait,
            "gp-out-of-hours" => pb::OrganisationKind::GpOutOfHours,
            _ => pb::OrganisationKind::Ambulance,
        };
        client
            .put_organisation(pb::PutOrganisationRequest {
                organisation: Some(pb::Organisation {
                    id: id.into(),
                    name: name.into(),
                    kind: kind.into(),
                    callback_number: number.into(),
                    site: site.into(),
                    ..Default::default()
                }),
            })
            .await?;
    }
    Ok(())
}
