//! The rules a plan follows from the initial conference to its end (DESIGN section 1, seed 004).
//!
//! Each function checks one step against a record and the day it happens on, and either returns
//! the new plan state or a [`RuleError`] that names the rule broken. They touch no storage.

use chrono::{Datelike, Months, NaiveDate, Weekday};

use crate::record::{Category, ChildRecord, Contact, EndReason, Plan, PlanEnd, Review};

/// A step that breaks a rule of the procedures. Each message names the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RuleError {
    #[error("a plan needs at least one category: neglect, physical, sexual or emotional")]
    NoCategory,
    #[error("the child already has an active plan (started {0}); end it before starting another")]
    AlreadyActive(NaiveDate),
    #[error("the child has no active plan")]
    NoActivePlan,
    #[error("a new plan cannot start ({start}) before the child's previous plan ended ({ended})")]
    OverlapsPrevious { start: NaiveDate, ended: NaiveDate },
    #[error("the plan's start date {0} is in the future: send the date of the conference decision")]
    StartInFuture(NaiveDate),
    #[error("the child is 18 or over on {0}; plans are for children under 18")]
    NotAChild(NaiveDate),
    #[error("a plan for a born child needs the child's date of birth")]
    NoDateOfBirth,
    #[error("the plan starts {start}, before the child was born ({dob})")]
    StartBeforeBirth { start: NaiveDate, dob: NaiveDate },
    #[error("the lead social worker's name and telephone number are needed")]
    NoLeadSocialWorker,
    #[error("the team manager's name is needed")]
    NoTeamManager,
    #[error("the next review {next} must come after {after}")]
    ReviewNotAfter { next: NaiveDate, after: NaiveDate },
    #[error(
        "the first review conference must be within 3 months of the initial conference ({start}): {next} is later than {latest}"
    )]
    FirstReviewTooLate {
        start: NaiveDate,
        next: NaiveDate,
        latest: NaiveDate,
    },
    #[error("review conferences must be at most 6 months apart: {next} is later than {latest}")]
    ReviewTooLate { next: NaiveDate, latest: NaiveDate },
    #[error(
        "the review held on {held} must come after the plan started ({start}) and after the last review ({last})"
    )]
    ReviewOutOfOrder {
        held: NaiveDate,
        start: NaiveDate,
        last: NaiveDate,
    },
    #[error("{what} {date} is in the future")]
    InFuture { what: &'static str, date: NaiveDate },
    #[error("the plan cannot end ({end}) before it started ({start})")]
    EndBeforeStart { end: NaiveDate, start: NaiveDate },
    #[error(
        "a transfer to another authority ends the plan only after the receiving authority's transfer-in conference: send --transfer-in-conference DATE and --receiving-authority NAME"
    )]
    TransferWithoutConference,
    #[error(
        "a transfer ends the plan only after the receiving authority's transfer-in conference ({conference}); {end} is before it"
    )]
    TransferEndsBeforeConference {
        end: NaiveDate,
        conference: NaiveDate,
    },
    #[error("the plan ends for reaching 18 only on or after the 18th birthday ({birthday})")]
    NotYet18 { birthday: NaiveDate },
    #[error(
        "a plan ended because the child became looked after is ended by letter: send --looked-after-from DATE and --letter-date DATE"
    )]
    LookedAfterWithoutLetter,
    #[error(
        "the letter ending the plan must be sent within 10 working days of the child becoming looked after ({from}); {letter} is {days} working days later"
    )]
    LetterTooLate {
        from: NaiveDate,
        letter: NaiveDate,
        days: u32,
    },
    #[error("the letter ({letter}) cannot be before the child became looked after ({from})")]
    LetterBeforeLookedAfter { letter: NaiveDate, from: NaiveDate },
    #[error(
        "ending by letter needs a notice period agreed at the initial conference, and this plan has none; end it at a review conference instead"
    )]
    NoNoticeAgreed,
    #[error("ending by letter needs --letter-date DATE")]
    NoLetterDate,
    #[error(
        "the notice period of {days} days from the letter of {letter} runs to {earliest}; the plan cannot end before then"
    )]
    NoticeNotServed {
        days: u32,
        letter: NaiveDate,
        earliest: NaiveDate,
    },
    #[error("the end date {end} must be on or after the letter's date {letter}")]
    EndBeforeLetter { end: NaiveDate, letter: NaiveDate },
}

/// What the initial conference decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanStart {
    pub categories: Vec<Category>,
    pub start_date: NaiveDate,
    pub lead_social_worker: Contact,
    pub team_manager: Contact,
    pub core_group: Vec<String>,
    pub next_review_date: NaiveDate,
    pub notice_period_days: Option<u32>,
}

/// Changes to an active plan; `None` leaves a field as it is.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PlanChange {
    pub categories: Option<Vec<Category>>,
    pub lead_social_worker: Option<Contact>,
    pub team_manager: Option<Contact>,
    pub core_group: Option<Vec<String>>,
}

fn add_months(date: NaiveDate, months: u32) -> NaiveDate {
    date.checked_add_months(Months::new(months))
        .unwrap_or(NaiveDate::MAX)
}

/// Sorted, without repeats.
fn tidy_categories(mut categories: Vec<Category>) -> Result<Vec<Category>, RuleError> {
    categories.sort();
    categories.dedup();
    if categories.is_empty() {
        return Err(RuleError::NoCategory);
    }
    Ok(categories)
}

/// Checks the first review is after the initial conference and within 3 months of it.
pub fn check_first_review(start: NaiveDate, next: NaiveDate) -> Result<(), RuleError> {
    if next <= start {
        return Err(RuleError::ReviewNotAfter { next, after: start });
    }
    let latest = add_months(start, 3);
    if next > latest {
        return Err(RuleError::FirstReviewTooLate {
            start,
            next,
            latest,
        });
    }
    Ok(())
}

/// Checks a later review is after the one before and at most 6 months from it.
pub fn check_later_review(held: NaiveDate, next: NaiveDate) -> Result<(), RuleError> {
    if next <= held {
        return Err(RuleError::ReviewNotAfter { next, after: held });
    }
    let latest = add_months(held, 6);
    if next > latest {
        return Err(RuleError::ReviewTooLate { next, latest });
    }
    Ok(())
}

/// The next review date as given by an import, where the case system does not say which reviews
/// were held: within 3 months of the start while the first review is still due, otherwise at most
/// 6 months from the day of the import.
pub fn check_imported_review(
    start: NaiveDate,
    next: NaiveDate,
    today: NaiveDate,
) -> Result<(), RuleError> {
    if today <= add_months(start, 3) {
        return check_first_review(start, next);
    }
    // The first review has been held (or is overdue): an overdue date is still a date, but not
    // one before the plan began or more than 6 months ahead.
    if next <= start {
        return Err(RuleError::ReviewNotAfter { next, after: start });
    }
    let latest = add_months(today, 6);
    if next > latest {
        return Err(RuleError::ReviewTooLate { next, latest });
    }
    Ok(())
}

/// A born child under 18 on `today`, born before the plan starts; an unborn child always can.
pub fn check_child_can_have_plan(
    child: &ChildRecord,
    start: NaiveDate,
    today: NaiveDate,
) -> Result<(), RuleError> {
    if child.details.unborn.is_some() {
        return Ok(());
    }
    let dob = child
        .details
        .date_of_birth
        .ok_or(RuleError::NoDateOfBirth)?;
    if start < dob {
        return Err(RuleError::StartBeforeBirth { start, dob });
    }
    let birthday = cpreg_proto::ident::eighteenth_birthday(dob);
    if today >= birthday {
        return Err(RuleError::NotAChild(today));
    }
    Ok(())
}

/// The initial conference decided on a plan: the new plan, to be appended to the child's plans.
pub fn start_plan(
    child: &ChildRecord,
    start: PlanStart,
    today: NaiveDate,
) -> Result<Plan, RuleError> {
    if let Some(active) = child.active_plan() {
        return Err(RuleError::AlreadyActive(active.start_date));
    }
    if let Some(previous) = child.plans.last().and_then(|p| p.end.as_ref())
        && start.start_date < previous.end_date
    {
        return Err(RuleError::OverlapsPrevious {
            start: start.start_date,
            ended: previous.end_date,
        });
    }
    let categories = tidy_categories(start.categories)?;
    if start.start_date > today {
        return Err(RuleError::StartInFuture(start.start_date));
    }
    check_child_can_have_plan(child, start.start_date, today)?;
    if start.lead_social_worker.name.trim().is_empty() || start.lead_social_worker.phone.is_empty()
    {
        return Err(RuleError::NoLeadSocialWorker);
    }
    if start.team_manager.name.trim().is_empty() {
        return Err(RuleError::NoTeamManager);
    }
    check_first_review(start.start_date, start.next_review_date)?;
    Ok(Plan {
        number: child.plans.len() as u32 + 1,
        categories,
        start_date: start.start_date,
        lead_social_worker: start.lead_social_worker,
        team_manager: start.team_manager,
        core_group: start.core_group,
        next_review_date: start.next_review_date,
        reviews: Vec::new(),
        notice_period_days: start.notice_period_days,
        end: None,
        documents: Vec::new(),
    })
}

/// A change of category, lead social worker, team manager or core group.
pub fn change_plan(plan: &Plan, change: PlanChange) -> Result<Plan, RuleError> {
    let mut next = plan.clone();
    if let Some(categories) = change.categories {
        next.categories = tidy_categories(categories)?;
    }
    if let Some(lsw) = change.lead_social_worker {
        if lsw.name.trim().is_empty() || lsw.phone.is_empty() {
            return Err(RuleError::NoLeadSocialWorker);
        }
        next.lead_social_worker = lsw;
    }
    if let Some(tm) = change.team_manager {
        if tm.name.trim().is_empty() {
            return Err(RuleError::NoTeamManager);
        }
        next.team_manager = tm;
    }
    if let Some(core_group) = change.core_group {
        next.core_group = core_group;
    }
    Ok(next)
}

/// A review conference was held and set the next one.
pub fn record_review(
    plan: &Plan,
    held_on: NaiveDate,
    next_review_date: NaiveDate,
    today: NaiveDate,
) -> Result<Plan, RuleError> {
    if held_on > today {
        return Err(RuleError::InFuture {
            what: "the review conference date",
            date: held_on,
        });
    }
    if plan.reviews.last()
        == Some(&Review {
            held_on,
            next_review_date,
        })
    {
        // The same review sent again (a retry): nothing to change.
        return Ok(plan.clone());
    }
    let last = plan.reviews.last().map_or(plan.start_date, |r| r.held_on);
    if held_on <= last {
        return Err(RuleError::ReviewOutOfOrder {
            held: held_on,
            start: plan.start_date,
            last,
        });
    }
    check_later_review(held_on, next_review_date)?;
    let mut next = plan.clone();
    next.reviews.push(Review {
        held_on,
        next_review_date,
    });
    next.next_review_date = next_review_date;
    Ok(next)
}

/// Working days (Monday to Friday) after `from` up to and including `to`. Bank holidays are not
/// known to the register and count as working days.
pub fn working_days_between(from: NaiveDate, to: NaiveDate) -> u32 {
    from.iter_days()
        .skip(1)
        .take_while(|d| *d <= to)
        .filter(|d| !matches!(d.weekday(), Weekday::Sat | Weekday::Sun))
        .count() as u32
}

/// Ends the active plan for a recorded reason.
pub fn end_plan(
    child: &ChildRecord,
    plan: &Plan,
    end: PlanEnd,
    today: NaiveDate,
) -> Result<Plan, RuleError> {
    if end.end_date > today {
        return Err(RuleError::InFuture {
            what: "the end date",
            date: end.end_date,
        });
    }
    if end.end_date < plan.start_date {
        return Err(RuleError::EndBeforeStart {
            end: end.end_date,
            start: plan.start_date,
        });
    }
    match end.reason {
        EndReason::NoLongerAtRisk | EndReason::Died | EndReason::LeftUk => {}
        EndReason::Transferred => {
            let conference = end
                .transfer_in_conference_date
                .filter(|_| !end.receiving_authority.trim().is_empty())
                .ok_or(RuleError::TransferWithoutConference)?;
            if conference > today {
                return Err(RuleError::InFuture {
                    what: "the transfer-in conference",
                    date: conference,
                });
            }
            if end.end_date < conference {
                return Err(RuleError::TransferEndsBeforeConference {
                    end: end.end_date,
                    conference,
                });
            }
        }
        EndReason::Reached18 => {
            let dob = child
                .details
                .date_of_birth
                .ok_or(RuleError::NoDateOfBirth)?;
            let birthday = cpreg_proto::ident::eighteenth_birthday(dob);
            if end.end_date < birthday {
                return Err(RuleError::NotYet18 { birthday });
            }
        }
        EndReason::LookedAfter => {
            let (Some(from), Some(letter)) = (end.looked_after_from, end.letter_date) else {
                return Err(RuleError::LookedAfterWithoutLetter);
            };
            if letter < from {
                return Err(RuleError::LetterBeforeLookedAfter { letter, from });
            }
            let days = working_days_between(from, letter);
            if days > 10 {
                return Err(RuleError::LetterTooLate { from, letter, days });
            }
            if end.end_date < letter {
                return Err(RuleError::EndBeforeLetter {
                    end: end.end_date,
                    letter,
                });
            }
        }
        EndReason::LetterAfterNotice => {
            let days = plan.notice_period_days.ok_or(RuleError::NoNoticeAgreed)?;
            let letter = end.letter_date.ok_or(RuleError::NoLetterDate)?;
            let earliest = letter
                .checked_add_days(chrono::Days::new(u64::from(days)))
                .unwrap_or(NaiveDate::MAX);
            if end.end_date < earliest {
                return Err(RuleError::NoticeNotServed {
                    days,
                    letter,
                    earliest,
                });
            }
        }
    }
    let mut ended = plan.clone();
    ended.end = Some(end);
    Ok(ended)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("test date")
    }

    #[test]
    fn working_days_skip_weekends() {
        // Friday 2026-11-20 to Friday 2026-11-27: five working days.
        assert_eq!(working_days_between(d("2026-11-20"), d("2026-11-27")), 5);
        assert_eq!(working_days_between(d("2026-11-20"), d("2026-11-22")), 0);
    }

    #[test]
    fn first_review_is_due_within_three_months() {
        assert!(check_first_review(d("2026-01-31"), d("2026-04-30")).is_ok());
        assert!(matches!(
            check_first_review(d("2026-01-31"), d("2026-05-01")),
            Err(RuleError::FirstReviewTooLate { .. })
        ));
    }

    #[test]
    fn imported_review_may_be_overdue_but_not_beyond_six_months() {
        let today = d("2026-11-22");
        assert!(check_imported_review(d("2025-01-10"), d("2026-11-01"), today).is_ok());
        assert!(check_imported_review(d("2025-01-10"), d("2027-05-22"), today).is_ok());
        assert!(check_imported_review(d("2025-01-10"), d("2027-05-23"), today).is_err());
        assert!(check_imported_review(d("2026-10-01"), d("2027-01-02"), today).is_err());
    }
}
