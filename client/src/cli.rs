//! The `cpreg` command line: one tree of subcommands for every role. Every command takes
//! `--profile DIR` (or `CPREG_PROFILE`) and `--json`; in JSON mode it prints exactly one JSON
//! document on stdout, and errors go to stderr with a non-zero exit.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::commands;
use crate::output::{CliError, Output};
use crate::profile::Profile;

/// The out-of-hours child protection register, for every role.
#[derive(Debug, Parser)]
#[command(name = "cpreg", version)]
pub struct Cli {
    /// The profile folder to act as (certificate, key, CA, addresses).
    #[arg(long, global = true, env = "CPREG_PROFILE")]
    pub profile: Option<PathBuf>,
    /// Print exactly one JSON document on stdout.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Children on the register (custodian; show, list and history also for auditors).
    #[command(subcommand)]
    Children(ChildrenCommand),
    /// Child Protection Plans: start, change, review, end (custodian).
    #[command(subcommand)]
    Plans(PlansCommand),
    /// The organisation directory and its verified call-back numbers (custodian).
    #[command(subcommand, name = "orgs")]
    Organisations(OrgsCommand),
    /// Requests from other authorities for a child's historic plans (custodian).
    #[command(subcommand)]
    Historic(HistoricCommand),
    /// Import, audit, the replicas' reports, Contacts and alerts (custodian; auditors read the
    /// audit, replicas and enquiries).
    #[command(subcommand)]
    Admin(AdminCommand),
    /// A development certificate authority and role certificates.
    #[command(subcommand)]
    Pki(PkiCommand),
    /// Ask the site's replica whether a child has a plan (a terminal profile).
    Lookup(commands::lookup::LookupArgs),
    /// Phone enquiries with call-back verification (a duty profile).
    #[command(subcommand)]
    Enquiry(commands::lookup::EnquiryCommand),
    /// Start a primary with a synthetic register and profiles for every role, on loopback.
    Demo(commands::demo::DemoArgs),
}

/// A child's identifying details; on update, each flag given replaces that field.
#[derive(Debug, Args, Default, Clone)]
pub struct ChildFields {
    #[arg(long)]
    pub given: Option<String>,
    #[arg(long)]
    pub surname: Option<String>,
    /// Another known name (repeat for several); on update, replaces the list.
    #[arg(long = "other-name")]
    pub other_names: Vec<String>,
    /// Date of birth, YYYY-MM-DD.
    #[arg(long)]
    pub dob: Option<String>,
    /// male, female or unknown.
    #[arg(long)]
    pub gender: Option<String>,
    #[arg(long)]
    pub nhs: Option<String>,
    #[arg(long)]
    pub address: Option<String>,
    #[arg(long)]
    pub postcode: Option<String>,
    #[arg(long)]
    pub ethnicity: Option<String>,
    #[arg(long)]
    pub legal_status: Option<String>,
    /// For an unborn child: the expected delivery date, with the mother's details.
    #[arg(long)]
    pub expected_delivery: Option<String>,
    #[arg(long)]
    pub mother_given: Option<String>,
    #[arg(long)]
    pub mother_surname: Option<String>,
    #[arg(long)]
    pub mother_dob: Option<String>,
    #[arg(long)]
    pub mother_nhs: Option<String>,
    /// The rest of the record (parents, household adults and children, professionals, GP,
    /// health visitor, school...) as a JSON file; flags given as well win. See docs/record.md.
    #[arg(long)]
    pub details: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum ChildrenCommand {
    /// Add a child (or an unborn child, through the mother).
    Add {
        /// The case-management system's id.
        record_id: String,
        #[command(flatten)]
        fields: ChildFields,
    },
    /// Change a child's details: a new revision, nothing overwritten.
    Update {
        record_id: String,
        #[command(flatten)]
        fields: ChildFields,
    },
    /// One child's whole record.
    Show { record_id: String },
    /// Children on the register, most recently changed first.
    List {
        /// Only children with a current plan.
        #[arg(long)]
        active: bool,
        /// Part of the surname.
        #[arg(long)]
        surname: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Every revision of a child's record: who changed what, when.
    History { record_id: String },
}

#[derive(Debug, Args, Clone, Default)]
pub struct LeadSocialWorker {
    /// The lead social worker's name.
    #[arg(long = "lead-social-worker")]
    pub name: Option<String>,
    /// The lead social worker's telephone number.
    #[arg(long = "lead-phone")]
    pub phone: Option<String>,
    /// The lead social worker's work e-mail, where enquiries about the child are sent.
    #[arg(long = "lead-email")]
    pub email: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum PlansCommand {
    /// Record the initial conference's decision that the child needs a plan.
    Start {
        record_id: String,
        /// neglect, physical, sexual or emotional; repeat for several.
        #[arg(long = "category", required = true)]
        categories: Vec<String>,
        /// The conference decision date, YYYY-MM-DD.
        #[arg(long)]
        start_date: String,
        #[command(flatten)]
        lead: LeadSocialWorker,
        #[arg(long)]
        team_manager: String,
        #[arg(long)]
        team_manager_phone: Option<String>,
        /// A core group member; repeat for several.
        #[arg(long = "core-group")]
        core_group: Vec<String>,
        /// The first review conference: within 3 months of the start.
        #[arg(long)]
        next_review: String,
        /// Days of notice agreed for ending the plan by letter, if any.
        #[arg(long)]
        notice_days: Option<u32>,
    },
    /// Change the category, lead social worker, team manager or core group.
    Change {
        record_id: String,
        #[arg(long = "category")]
        categories: Vec<String>,
        #[command(flatten)]
        lead: LeadSocialWorker,
        #[arg(long)]
        team_manager: Option<String>,
        #[arg(long)]
        team_manager_phone: Option<String>,
        /// Replaces the core group; repeat for several.
        #[arg(long = "core-group")]
        core_group: Vec<String>,
    },
    /// Record a review conference and the next one it set (at most 6 months later).
    Review {
        record_id: String,
        #[arg(long)]
        held_on: String,
        #[arg(long)]
        next_review: String,
    },
    /// End the active plan for a recorded reason.
    End {
        record_id: String,
        /// no-longer-at-risk, transferred, reached-18, died, left-uk, looked-after,
        /// letter-after-notice.
        #[arg(long)]
        reason: String,
        /// The end date, YYYY-MM-DD.
        #[arg(long)]
        date: String,
        #[arg(long)]
        receiving_authority: Option<String>,
        #[arg(long)]
        transfer_in_conference: Option<String>,
        #[arg(long)]
        looked_after_from: Option<String>,
        #[arg(long)]
        letter_date: Option<String>,
        #[arg(long)]
        note: Option<String>,
    },
    /// Keep a copy of the plan pro forma sent after a core group meeting.
    Document {
        record_id: String,
        file: PathBuf,
        #[arg(long)]
        core_group_date: String,
    },
}

#[derive(Debug, Args, Clone)]
pub struct OrganisationFields {
    /// Short id: lower-case letters, digits and dashes (st-marys-ae).
    pub id: String,
    #[arg(long)]
    pub name: String,
    /// emergency-department, emergency-duty-team, police-cait, gp-out-of-hours, ambulance,
    /// police, childrens-social-care, other.
    #[arg(long)]
    pub kind: String,
    /// The verified switchboard or duty number; call-backs go here.
    #[arg(long)]
    pub callback_number: String,
    /// The site whose replica serves it (ae, edt, cait...).
    #[arg(long)]
    pub site: String,
    /// When the number was verified (default today).
    #[arg(long)]
    pub verified_on: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum OrgsCommand {
    /// Add an organisation, or replace one with the same id.
    Put(OrganisationFields),
    List,
    Remove {
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum HistoricCommand {
    /// Record another authority's request for a child's ended plans, with its reason.
    Request {
        record_id: String,
        #[arg(long)]
        authority: String,
        #[arg(long)]
        requester: String,
        #[arg(long)]
        reason: String,
    },
    Approve {
        id: String,
        #[arg(long, default_value = "")]
        note: String,
    },
    Refuse {
        id: String,
        #[arg(long, default_value = "")]
        note: String,
    },
    List,
    /// The ended plans of an approved request.
    Release {
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Import the case system's CSV export; one acknowledgement per row.
    Import { file: PathBuf },
    /// The audit chain.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Each replica's version, as-of time, staleness, enquiry outbox backlog and last contact.
    Replicas,
    /// The enquiries the replicas reported, newest first.
    Enquiries {
        /// Only enquiries that found this child.
        #[arg(long)]
        record_id: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Contacts recorded for children without a plan, with the advice given, newest first.
    Contacts {
        /// Only Contacts about this child's record.
        #[arg(long)]
        record_id: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Alerts: second enquiries, refused and enumeration-like lookups, newest first.
    ///
    /// `admin alerts ack ID --note TEXT` records that one was seen and what was done about it.
    Alerts(AlertsArgs),
}

/// `admin alerts`: list them, or acknowledge one.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AlertsArgs {
    #[command(subcommand)]
    pub command: Option<AlertsCommand>,
    #[command(flatten)]
    pub filter: AlertsFilter,
}

/// Which alerts `admin alerts` lists.
#[derive(Debug, Args, Clone)]
pub struct AlertsFilter {
    /// Only alerts of this kind.
    #[arg(long, value_parser = ["second-enquiry", "refused", "enumeration"])]
    pub kind: Option<String>,
    /// Only alerts nobody has acknowledged yet.
    #[arg(long)]
    pub unacknowledged: bool,
    /// At most this many.
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
}

#[derive(Debug, Subcommand)]
pub enum AlertsCommand {
    /// Record that an alert was seen and what was done about it.
    #[command(visible_alias = "acknowledge")]
    Ack {
        /// The alert's id, as `admin alerts` shows it (refused:AE-20261122-000001).
        id: String,
        /// What was done about it.
        #[arg(long)]
        note: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Fetch the whole chain and verify it here against the authority's key; names the first
    /// entry altered or removed.
    Verify {
        /// The authority's original public key (hex), if pinned; rotations are followed from it.
        /// Otherwise the original key the primary reports.
        #[arg(long)]
        key: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum PkiCommand {
    /// Create a development CA for an authority in DIR.
    Init {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        authority: String,
    },
    /// Issue a certificate for a role into a new profile folder.
    Issue {
        /// The CA folder.
        #[arg(long)]
        dir: PathBuf,
        /// custodian, auditor, replica, terminal or server.
        #[arg(long)]
        role: String,
        /// Who holds it.
        #[arg(long)]
        name: String,
        #[arg(long)]
        site: Option<String>,
        /// The profile folder to write.
        #[arg(long)]
        out: PathBuf,
        /// The primary's address for the profile, like https://127.0.0.1:7443.
        #[arg(long, default_value = "https://127.0.0.1:7443")]
        primary: String,
        /// Names for a server certificate (repeat).
        #[arg(long = "server-name")]
        server_names: Vec<String>,
        #[arg(long, default_value_t = 365)]
        days: u32,
    },
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> Result<(), CliError> {
    let out = Output { json: cli.json };
    let profile = || Profile::load(cli.profile.as_deref()).map_err(CliError::from);
    match cli.command {
        Command::Children(cmd) => commands::children::run(&profile()?, cmd, out).await,
        Command::Plans(cmd) => commands::plans::run(&profile()?, cmd, out).await,
        Command::Organisations(cmd) => commands::directory::orgs(&profile()?, cmd, out).await,
        Command::Historic(cmd) => commands::directory::historic(&profile()?, cmd, out).await,
        Command::Admin(AdminCommand::Import { file }) => {
            commands::import::run(&profile()?, &file, out).await
        }
        Command::Admin(AdminCommand::Replicas) => commands::replicas::run(&profile()?, out).await,
        Command::Admin(AdminCommand::Enquiries { record_id, limit }) => {
            commands::replicas::enquiries(&profile()?, record_id, limit, out).await
        }
        Command::Admin(AdminCommand::Contacts { record_id, limit }) => {
            commands::follow_up::contacts(&profile()?, record_id, limit, out).await
        }
        Command::Admin(AdminCommand::Alerts(args)) => {
            commands::follow_up::alerts(&profile()?, args, out).await
        }
        Command::Admin(AdminCommand::Audit(AuditCommand::Verify { key })) => {
            commands::audit::verify(&profile()?, key.as_deref(), out).await
        }
        Command::Pki(cmd) => commands::pki::run(cmd, out),
        Command::Lookup(args) => commands::lookup::lookup(&profile()?, args, out).await,
        Command::Enquiry(cmd) => commands::lookup::enquiry(&profile()?, cmd, out).await,
        Command::Demo(args) => commands::demo::run(args, out).await,
    }
}
