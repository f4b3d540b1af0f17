//! `cpreg lookup` (a registered terminal asks the site's replica) and `cpreg enquiry open |
//! callback` (a duty worker's phone enquiry, released only after calling the organisation's
//! verified number back).

use clap::{Args, Subcommand};
use cpreg_proto::pb;

use crate::output::{CliError, Output};
use crate::profile::Profile;

/// What the enquirer knows of the child.
#[derive(Debug, Args, Clone)]
pub struct ChildArgs {
    #[arg(long)]
    pub given: Option<String>,
    #[arg(long)]
    pub surname: Option<String>,
    /// Date of birth, YYYY-MM-DD.
    #[arg(long)]
    pub dob: Option<String>,
    /// male, female or unknown.
    #[arg(long)]
    pub gender: Option<String>,
    #[arg(long)]
    pub nhs: Option<String>,
    #[arg(long)]
    pub postcode: Option<String>,
    /// For an unborn child: the mother's names, with her date of birth or the due date.
    #[arg(long)]
    pub mother_given: Option<String>,
    #[arg(long)]
    pub mother_surname: Option<String>,
    #[arg(long)]
    pub mother_dob: Option<String>,
    #[arg(long)]
    pub expected_delivery: Option<String>,
}

impl ChildArgs {
    fn query(self) -> Result<pb::ChildQuery, CliError> {
        let gender = match self
            .gender
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None => pb::Gender::Unspecified,
            Some("male") => pb::Gender::Male,
            Some("female") => pb::Gender::Female,
            Some("unknown") => pb::Gender::Unknown,
            Some(other) => {
                return Err(CliError::Invalid(format!(
                    "--gender {other:?}: use male, female or unknown"
                )));
            }
        };
        Ok(pb::ChildQuery {
            given_names: self.given.unwrap_or_default(),
            surname: self.surname.unwrap_or_default(),
            date_of_birth: self.dob.unwrap_or_default(),
            gender: gender.into(),
            nhs_number: self.nhs.unwrap_or_default(),
            postcode: self.postcode.unwrap_or_default(),
            mother_given_names: self.mother_given.unwrap_or_default(),
            mother_surname: self.mother_surname.unwrap_or_default(),
            mother_date_of_birth: self.mother_dob.unwrap_or_default(),
            expected_delivery_date: self.expected_delivery.unwrap_or_default(),
        })
    }
}

#[derive(Debug, Args)]
pub struct LookupArgs {
    #[command(flatten)]
    pub child: ChildArgs,
    /// Why: the cause to suspect the child is suffering or likely to suffer significant harm.
    #[arg(long)]
    pub reason: String,
    /// Who is asking at the terminal (default: the profile's holder).
    #[arg(long)]
    pub operator: Option<String>,
    /// Their role, like "ED registrar".
    #[arg(long, default_value = "terminal operator")]
    pub operator_role: String,
}

// Parsed once per run: the size of a variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum EnquiryCommand {
    /// Record a phone enquiry; prints the reference and the directory number to call back.
    Open {
        #[command(flatten)]
        child: ChildArgs,
        #[arg(long)]
        enquirer: String,
        #[arg(long)]
        enquirer_role: String,
        /// The enquirer's organisation, from the directory (`cpreg orgs list`).
        #[arg(long)]
        organisation: String,
        /// The number the caller gave: recorded, never called.
        #[arg(long, default_value = "")]
        number_given: String,
        #[arg(long)]
        reason: String,
    },
    /// Record the call-back: `confirmed` releases the answer; anything else releases nothing.
    Callback {
        reference: String,
        /// confirmed, no-answer, not-confirmed or abandoned.
        #[arg(long)]
        outcome: String,
        #[arg(long, default_value = "")]
        note: String,
    },
}

/// The answer as people read it.
pub fn describe(answer: &pb::LookupAnswer) -> String {
    let mut text = format!("enquiry {}\n", answer.enquiry_reference);
    if answer.stale {
        text += "WARNING: the register copy here may be out of date\n";
    }
    for c in &answer.candidates {
        let confidence = if c.confidence == i32::from(pb::Confidence::Match) {
            "MATCH"
        } else {
            "possible"
        };
        text += &format!(
            "{confidence}: {} (born {}), {} — plan {}; lead social worker {} {}; {} EDT {}\n",
            c.name,
            c.date_of_birth,
            c.record_id,
            c.plan_status,
            c.lead_social_worker,
            c.lead_social_worker_phone,
            c.authority_name,
            c.edt_phone
        );
        if !c.reasons.is_empty() {
            text += &format!("    because: {}\n", c.reasons.join("; "));
        }
    }
    text += &format!("register as of {}\n{}\n", answer.as_of, answer.advice);
    text
}

pub async fn lookup(profile: &Profile, args: LookupArgs, out: Output) -> Result<(), CliError> {
    let request = pb::LookupRequest {
        child: Some(args.child.query()?),
        operator_name: args.operator.unwrap_or_else(|| profile.file.name.clone()),
        operator_role: args.operator_role,
        reason: args.reason,
    };
    let answer = profile.lookup().await?.lookup(request).await?.into_inner();
    out.emit(&answer, || describe(&answer))
}

pub async fn enquiry(
    profile: &Profile,
    command: EnquiryCommand,
    out: Output,
) -> Result<(), CliError> {
    let mut client = profile.lookup().await?;
    match command {
        EnquiryCommand::Open {
            child,
            enquirer,
            enquirer_role,
            organisation,
            number_given,
            reason,
        } => {
            let ticket = client
                .open_enquiry(pb::OpenEnquiryRequest {
                    child: Some(child.query()?),
                    enquirer_name: enquirer,
                    enquirer_role,
                    organisation_id: organisation,
                    number_given,
                    reason,
                    duty_worker: profile.file.name.clone(),
                })
                .await?
                .into_inner();
            out.emit(&ticket, || {
                format!(
                    "enquiry {}: call {} back on {} (from the directory; not the number the caller gave), then record the outcome with\n  cpreg enquiry callback {} --outcome confirmed\nThe ticket expires at {}.",
                    ticket.enquiry_reference, ticket.organisation_name, ticket.callback_number, ticket.enquiry_reference, ticket.expires_at
                )
            })
        }
        EnquiryCommand::Callback {
            reference,
            outcome,
            note,
        } => {
            let outcome = match outcome.as_str() {
                "confirmed" => pb::CallbackOutcome::Confirmed,
                "no-answer" => pb::CallbackOutcome::NoAnswer,
                "not-confirmed" => pb::CallbackOutcome::NotConfirmed,
                "abandoned" => pb::CallbackOutcome::Abandoned,
                other => {
                    return Err(CliError::Invalid(format!(
                        "--outcome {other:?}: use confirmed, no-answer, not-confirmed or abandoned"
                    )));
                }
            };
            let answer = client
                .record_callback(pb::RecordCallbackRequest {
                    enquiry_reference: reference,
                    outcome: outcome.into(),
                    note,
                })
                .await?
                .into_inner();
            out.emit(&answer, || describe(&answer))
        }
    }
}
