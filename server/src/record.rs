//! The domain types of the register: a child's record, its plans and the organisation directory,
//! as the store keeps them. Proto types are converted to these at the edge (`convert`).

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

/// A child's gender as the record holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Gender {
    Male,
    Female,
    #[default]
    Unknown,
}

/// The category of abuse or neglect a plan is under (census codes in [`Category::code`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Category {
    Neglect,
    Physical,
    Sexual,
    Emotional,
}

impl Category {
    /// The census code; a plan under several categories is `MUL` (see [`Plan::census_code`]).
    pub fn code(self) -> &'static str {
        match self {
            Category::Neglect => "NEG",
            Category::Physical => "PHY",
            Category::Sexual => "SAB",
            Category::Emotional => "EMO",
        }
    }

    /// The spelling used in CSV files and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Neglect => "neglect",
            Category::Physical => "physical",
            Category::Sexual => "sexual",
            Category::Emotional => "emotional",
        }
    }

    /// Parses `neglect|physical|sexual|emotional` (or the census code).
    pub fn parse(s: &str) -> Option<Category> {
        match s.trim().to_ascii_lowercase().as_str() {
            "neglect" | "neg" => Some(Category::Neglect),
            "physical" | "phy" => Some(Category::Physical),
            "sexual" | "sab" => Some(Category::Sexual),
            "emotional" | "emo" => Some(Category::Emotional),
            _ => None,
        }
    }
}

/// Why a plan ended (DESIGN section 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EndReason {
    NoLongerAtRisk,
    Transferred,
    Reached18,
    Died,
    LeftUk,
    LookedAfter,
    LetterAfterNotice,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::NoLongerAtRisk => "no-longer-at-risk",
            EndReason::Transferred => "transferred",
            EndReason::Reached18 => "reached-18",
            EndReason::Died => "died",
            EndReason::LeftUk => "left-uk",
            EndReason::LookedAfter => "looked-after",
            EndReason::LetterAfterNotice => "letter-after-notice",
        }
    }
}

/// A name, address and telephone number: GP, health visitor, lead social worker, team manager.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Contact {
    pub name: String,
    pub address: String,
    pub phone: String,
    /// Where notifications about the child go (a lead social worker's work e-mail).
    pub email: String,
}

/// A parent, a person with parental responsibility, or another adult of the household.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Person {
    pub full_name: String,
    pub other_names: Vec<String>,
    pub address: String,
    pub relationship: String,
    pub parental_responsibility: bool,
    /// Relevant offences: kept at the primary only, never in a snapshot.
    pub offences: Vec<String>,
    pub regular_visitor: bool,
}

/// Another child in the household.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct HouseholdChild {
    pub full_name: String,
    pub date_of_birth: Option<NaiveDate>,
    pub gender: Gender,
    pub legal_status: String,
    /// The child's own record id, where the child is on the register too.
    pub record_id: String,
}

/// A professional or agency involved with the child and family.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Professional {
    pub name: String,
    pub role: String,
    pub agency: String,
    pub phone: String,
    pub core_group: bool,
}

/// The child's school, playgroup, nursery or childminder.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct School {
    pub name: String,
    pub address: String,
    pub phone: String,
    pub designated_teacher: String,
}

/// An unborn child is identified through the mother.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unborn {
    pub expected_delivery_date: NaiveDate,
    pub mother_given_names: String,
    pub mother_surname: String,
    pub mother_date_of_birth: Option<NaiveDate>,
    pub mother_nhs_number: Option<String>,
}

/// What the record holds about a child apart from plans (seed 004, "Information to be recorded").
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ChildDetails {
    pub given_names: String,
    pub surname: String,
    pub other_names: Vec<String>,
    pub date_of_birth: Option<NaiveDate>,
    pub gender: Gender,
    pub nhs_number: Option<String>,
    pub ethnicity: String,
    pub legal_status: String,
    pub home_address: String,
    pub home_postcode: Option<String>,
    pub current_address: String,
    pub current_postcode: Option<String>,
    pub unborn: Option<Unborn>,
    pub parents: Vec<Person>,
    pub household_adults: Vec<Person>,
    pub household_children: Vec<HouseholdChild>,
    pub first_referral_date: Option<NaiveDate>,
    pub first_referral_source: String,
    pub professionals: Vec<Professional>,
    pub gp: Option<Contact>,
    pub health_visitor: Option<Contact>,
    pub school: Option<School>,
}

impl ChildDetails {
    /// "Given Surname", or "Unborn child of <mother>".
    pub fn display_name(&self) -> String {
        match (&self.unborn, self.given_names.trim().is_empty()) {
            (Some(u), true) => format!(
                "Unborn child of {} {}",
                u.mother_given_names, u.mother_surname
            ),
            _ => format!("{} {}", self.given_names, self.surname)
                .trim()
                .to_owned(),
        }
    }
}

/// A review conference held, and the next one it set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Review {
    pub held_on: NaiveDate,
    pub next_review_date: NaiveDate,
}

/// How and when a plan ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanEnd {
    pub reason: EndReason,
    pub end_date: NaiveDate,
    pub receiving_authority: String,
    pub transfer_in_conference_date: Option<NaiveDate>,
    pub looked_after_from: Option<NaiveDate>,
    pub letter_date: Option<NaiveDate>,
    pub note: String,
}

/// A copy of the plan pro forma sent by the lead social worker after a core group meeting. The
/// bytes are kept in their own table, keyed by digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanDocument {
    pub core_group_date: NaiveDate,
    pub received_at: DateTime<Utc>,
    pub sha256: String,
    pub size: u64,
    pub file_name: String,
}

/// One Child Protection Plan, from the conference decision to its end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// 1 for the child's first plan, and so on.
    pub number: u32,
    pub categories: Vec<Category>,
    /// The date the conference decided the child needed a plan.
    pub start_date: NaiveDate,
    pub lead_social_worker: Contact,
    pub team_manager: Contact,
    pub core_group: Vec<String>,
    pub next_review_date: NaiveDate,
    pub reviews: Vec<Review>,
    /// Notice agreed at the initial conference for ending the plan by letter.
    pub notice_period_days: Option<u32>,
    pub end: Option<PlanEnd>,
    pub documents: Vec<PlanDocument>,
}

impl Plan {
    /// The census code: the category's, or `MUL` for several.
    pub fn census_code(&self) -> &'static str {
        match self.categories.as_slice() {
            [one] => one.code(),
            _ => "MUL",
        }
    }

    pub fn is_active(&self) -> bool {
        self.end.is_none()
    }
}

/// The current state of one child's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChildRecord {
    /// The case-management system's id.
    pub record_id: String,
    pub revision: u32,
    pub details: ChildDetails,
    /// Every plan the child has had, oldest first; at most one active.
    pub plans: Vec<Plan>,
    pub updated_at: DateTime<Utc>,
    pub updated_by: String,
}

impl ChildRecord {
    pub fn active_plan(&self) -> Option<&Plan> {
        self.plans.last().filter(|p| p.is_active())
    }

    pub fn active_plan_mut(&mut self) -> Option<&mut Plan> {
        self.plans.last_mut().filter(|p| p.is_active())
    }

    /// "active", "unborn", "ended on <date>" or "no plan".
    pub fn plan_status(&self) -> String {
        match self.plans.last() {
            Some(p) if p.is_active() && self.details.unborn.is_some() => "unborn".into(),
            Some(p) if p.is_active() => "active".into(),
            Some(Plan { end: Some(end), .. }) => format!("ended on {}", end.end_date),
            _ => "no plan".into(),
        }
    }
}

/// One revision of a child's record: who changed what, when, and the record as it then stood.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revision {
    pub revision: u32,
    pub at: DateTime<Utc>,
    pub by: String,
    pub action: String,
    /// Paths of the fields that changed ("details.surname", "plans[0].next_review_date").
    pub changed: Vec<String>,
    pub record: ChildRecord,
}

/// The kind of an organisation in the directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OrganisationKind {
    EmergencyDepartment,
    EmergencyDutyTeam,
    PoliceCait,
    GpOutOfHours,
    Ambulance,
    Police,
    ChildrensSocialCare,
    Other,
}

/// An organisation that may enquire, with its verified number to call back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Organisation {
    pub id: String,
    pub name: String,
    pub kind: OrganisationKind,
    pub callback_number: String,
    pub site: String,
    pub verified_on: NaiveDate,
    pub verified_by: String,
}

/// Whether a historic release was approved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReleaseStatus {
    Pending,
    Approved,
    Refused,
}

/// Another authority's request for a child's ended plans (seed 004, last part).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoricRelease {
    pub id: String,
    pub record_id: String,
    pub requesting_authority: String,
    pub requester: String,
    pub reason: String,
    pub requested_at: DateTime<Utc>,
    pub recorded_by: String,
    pub status: ReleaseStatus,
    pub decided_at: Option<DateTime<Utc>>,
    pub decided_by: String,
    pub decision_note: String,
}
