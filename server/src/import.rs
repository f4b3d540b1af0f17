//! Import of the case-management system's CSV export (DESIGN section 9).
//!
//! The file is read as a stream of physical lines, so that one broken row (an unclosed quote, a
//! stray quote, the wrong number of fields, a bad value) is rejected with its line number and the
//! rows after it are still read. A row names a child by `record_id`; an empty cell means the case
//! system does not know, so the register keeps what it has.

use std::collections::{HashMap, VecDeque};
use std::io::BufRead;

use chrono::NaiveDate;
use cpreg_proto::ident;

use crate::lifecycle;
use crate::record::{Category, ChildDetails, ChildRecord, Contact, Gender, Plan, Unborn};

/// A quoted field may run over at most this many physical lines before the row is judged broken.
const MAX_LINES_PER_ROW: usize = 8;

/// The columns the import recognises.
pub const COLUMNS: [&str; 20] = [
    "record_id",
    "given_names",
    "surname",
    "other_names",
    "date_of_birth",
    "gender",
    "nhs_number",
    "address",
    "postcode",
    "category",
    "plan_start_date",
    "lead_social_worker",
    "lead_social_worker_phone",
    "next_review_date",
    "lead_social_worker_email",
    "expected_delivery_date",
    "mother_given_names",
    "mother_surname",
    "mother_date_of_birth",
    "mother_nhs_number",
];

/// A plan as the case system exports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedPlan {
    pub categories: Vec<Category>,
    pub start_date: NaiveDate,
    pub lead_social_worker: Contact,
    pub next_review_date: NaiveDate,
}

/// One row of the file, parsed and with every identifier checked. `None` is an empty cell.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ImportRow {
    pub line: u64,
    pub record_id: String,
    pub given_names: Option<String>,
    pub surname: Option<String>,
    pub other_names: Option<Vec<String>>,
    pub date_of_birth: Option<NaiveDate>,
    pub gender: Option<Gender>,
    pub nhs_number: Option<String>,
    pub address: Option<String>,
    pub postcode: Option<String>,
    pub plan: Option<ImportedPlan>,
    pub unborn: Option<Unborn>,
}

/// A row that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowRejection {
    pub line: u64,
    pub record_id: String,
    pub reason: String,
}

/// What the reader yields, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadRow {
    Row(Box<ImportRow>),
    Rejected(RowRejection),
}

/// Why the whole file cannot be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    #[error("the file is empty: send a CSV file with a header line naming the columns")]
    Empty,
    #[error("the header has no record_id column; recognised columns are: {}", COLUMNS.join(", "))]
    NoRecordId,
    #[error("the header names column {0:?} twice: send each column once")]
    DuplicateColumn(String),
    #[error("the header line is not valid CSV: {0}")]
    BadHeader(String),
    #[error("reading the file: {0}")]
    Io(#[from] std::io::Error),
}

/// Splits one CSV record. `Ok(None)` means a quoted field is still open at the end of `text`.
fn split_record(text: &str) -> Result<Option<Vec<String>>, &'static str> {
    let mut fields = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    None => return Ok(None),
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                }
            }
            match chars.next() {
                None => {
                    fields.push(field);
                    return Ok(Some(fields));
                }
                Some(',') => fields.push(field),
                Some(_) => {
                    return Err(
                        "broken quoting: text after a closing quote; quote the whole field and double any quote inside it",
                    );
                }
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        fields.push(field);
                        return Ok(Some(fields));
                    }
                    Some(',') => {
                        fields.push(field);
                        break;
                    }
                    Some('"') => {
                        return Err(
                            "broken quoting: a quote inside an unquoted field; quote the whole field and double any quote inside it",
                        );
                    }
                    Some(c) => field.push(c),
                }
            }
        }
    }
}

/// One line of the file: its number, and its text if it is UTF-8.
type PhysicalLine = (u64, Option<String>);

/// Reads rows from a CSV stream one at a time.
pub struct RowReader<R> {
    input: R,
    next_line: u64,
    /// Lines read ahead while looking for the end of a quoted field, given back when the row
    /// turned out to be broken.
    pushed_back: VecDeque<PhysicalLine>,
    columns: Vec<Option<usize>>,
    /// Header names that are not recognised columns: reported, so a renamed column is noticed.
    ignored: Vec<String>,
    width: usize,
    today: NaiveDate,
}

impl<R: BufRead> RowReader<R> {
    /// Reads the header line.
    pub fn new(mut input: R, today: NaiveDate) -> Result<Self, FileError> {
        let mut header = String::new();
        if input.read_line(&mut header)? == 0 {
            return Err(FileError::Empty);
        }
        let header = header
            .trim_start_matches('\u{feff}')
            .trim_end_matches(['\r', '\n']);
        let names = split_record(header)
            .map_err(|e| FileError::BadHeader(e.to_owned()))?
            .ok_or_else(|| FileError::BadHeader("unclosed quote".into()))?;
        let mut position: HashMap<String, usize> = HashMap::new();
        let mut ignored = Vec::new();
        for (i, name) in names.iter().enumerate() {
            let name = name.trim().to_ascii_lowercase();
            if !COLUMNS.contains(&name.as_str()) {
                ignored.push(name);
            } else if position.insert(name.clone(), i).is_some() {
                return Err(FileError::DuplicateColumn(name));
            }
        }
        let columns: Vec<Option<usize>> =
            COLUMNS.iter().map(|c| position.get(*c).copied()).collect();
        if columns[0].is_none() {
            return Err(FileError::NoRecordId);
        }
        Ok(RowReader {
            input,
            next_line: 2,
            pushed_back: VecDeque::new(),
            columns,
            ignored,
            width: names.len(),
            today,
        })
    }

    fn physical_line(&mut self) -> Result<Option<PhysicalLine>, std::io::Error> {
        if let Some(line) = self.pushed_back.pop_front() {
            return Ok(Some(line));
        }
        let mut buf = Vec::new();
        if self.input.read_until(b'\n', &mut buf)? == 0 {
            return Ok(None);
        }
        let number = self.next_line;
        self.next_line += 1;
        while matches!(buf.last(), Some(b'\n' | b'\r')) {
            buf.pop();
        }
        Ok(Some((number, String::from_utf8(buf).ok())))
    }

    /// Columns of the header that the import does not recognise, and so ignores.
    pub fn ignored_columns(&self) -> &[String] {
        &self.ignored
    }

    /// The next row, or `None` at the end of the file.
    pub fn next_row(&mut self) -> Result<Option<ReadRow>, std::io::Error> {
        loop {
            let Some((line, text)) = self.physical_line()? else {
                return Ok(None);
            };
            let reject = |reason: &str| {
                Ok(Some(ReadRow::Rejected(RowRejection {
                    line,
                    record_id: String::new(),
                    reason: reason.to_owned(),
                })))
            };
            let Some(mut text) = text else {
                return reject("the line is not UTF-8 text: save the file as UTF-8");
            };
            if text.trim().is_empty() {
                continue;
            }
            let mut extra = Vec::new();
            let fields = loop {
                match split_record(&text) {
                    Ok(Some(fields)) if fields.len() == self.width => break Ok(fields),
                    Ok(Some(fields)) => {
                        break Err(format!(
                            "the row has {} fields but the header has {}: check for a missing or extra comma, or an unquoted comma",
                            fields.len(),
                            self.width
                        ));
                    }
                    Err(e) => break Err(e.to_owned()),
                    Ok(None) if extra.len() + 1 < MAX_LINES_PER_ROW => {
                        match self.physical_line()? {
                            Some((n, Some(more))) => {
                                text.push('\n');
                                text.push_str(&more);
                                extra.push((n, Some(more)));
                            }
                            Some(other) => {
                                extra.push(other);
                                break Err("broken quoting: a quote is never closed".to_owned());
                            }
                            None => break Err("broken quoting: a quote is never closed".to_owned()),
                        }
                    }
                    Ok(None) => break Err("broken quoting: a quote is never closed".to_owned()),
                }
            };
            return match fields {
                Ok(fields) => Ok(Some(self.parse(line, &fields))),
                Err(reason) => {
                    // The lines read ahead belong to the rows after this broken one.
                    for l in extra.into_iter().rev() {
                        self.pushed_back.push_front(l);
                    }
                    reject(&reason)
                }
            };
        }
    }

    fn parse(&self, line: u64, fields: &[String]) -> ReadRow {
        let cell = |name: &str| -> Option<&str> {
            let i = COLUMNS.iter().position(|c| *c == name)?;
            let value = fields.get(self.columns[i]?)?.trim();
            (!value.is_empty()).then_some(value)
        };
        let record_id = cell("record_id").unwrap_or_default().to_owned();
        let rejected = |reason: String| {
            ReadRow::Rejected(RowRejection {
                line,
                record_id: record_id.clone(),
                reason,
            })
        };
        if record_id.is_empty() {
            return rejected("record_id is empty: every row needs the case system's id".into());
        }
        // The same rule as every other way in, so an imported record can be reached afterwards.
        if let Err(e) = crate::convert::record_id(&record_id) {
            return rejected(e.0);
        }
        match parse_fields(&cell, self.today) {
            Ok(mut row) => {
                row.line = line;
                row.record_id = record_id;
                ReadRow::Row(Box::new(row))
            }
            Err(reason) => rejected(reason),
        }
    }
}

fn parse_fields<'a>(
    cell: &dyn Fn(&str) -> Option<&'a str>,
    today: NaiveDate,
) -> Result<ImportRow, String> {
    let date = |name: &'static str| -> Result<Option<NaiveDate>, String> {
        cell(name)
            .map(|v| ident::date(name, v))
            .transpose()
            .map_err(|e| e.to_string())
    };
    let mut row = ImportRow {
        given_names: cell("given_names").map(str::to_owned),
        surname: cell("surname").map(str::to_owned),
        other_names: cell("other_names").map(|v| {
            v.split(';')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        }),
        address: cell("address").map(str::to_owned),
        ..ImportRow::default()
    };
    row.date_of_birth = date("date_of_birth")?
        .map(|d| ident::born_by(d, today))
        .transpose()
        .map_err(|e| e.to_string())?;
    row.gender = cell("gender")
        .map(|g| match g.to_ascii_lowercase().as_str() {
            "male" => Ok(Gender::Male),
            "female" => Ok(Gender::Female),
            "unknown" => Ok(Gender::Unknown),
            _ => Err(format!("gender {g:?} is not one of male, female, unknown")),
        })
        .transpose()?;
    row.nhs_number = cell("nhs_number")
        .map(ident::nhs_number)
        .transpose()
        .map_err(|e| e.to_string())?;
    row.postcode = cell("postcode")
        .map(ident::postcode)
        .transpose()
        .map_err(|e| e.to_string())?;

    let plan_columns = [
        "category",
        "plan_start_date",
        "lead_social_worker",
        "lead_social_worker_phone",
        "next_review_date",
    ];
    if plan_columns.iter().any(|c| cell(c).is_some()) {
        let missing: Vec<&str> = plan_columns
            .iter()
            .copied()
            .filter(|c| cell(c).is_none())
            .collect();
        if !missing.is_empty() {
            return Err(format!(
                "a plan needs every plan column; missing: {}",
                missing.join(", ")
            ));
        }
        let categories = cell("category")
            .unwrap_or_default()
            .split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|c| {
                Category::parse(c).ok_or_else(|| format!("unknown category {c:?}: use neglect, physical, sexual or emotional, separated by ;"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let phone = ident::phone(cell("lead_social_worker_phone").unwrap_or_default())
            .map_err(|e| e.to_string())?;
        row.plan = Some(ImportedPlan {
            categories,
            start_date: date("plan_start_date")?.unwrap_or_default(),
            lead_social_worker: Contact {
                name: cell("lead_social_worker").unwrap_or_default().to_owned(),
                address: String::new(),
                phone,
                email: ident::email(cell("lead_social_worker_email").unwrap_or_default())
                    .map_err(|e| e.to_string())?,
            },
            next_review_date: date("next_review_date")?.unwrap_or_default(),
        });
    }

    if let Some(edd) = date("expected_delivery_date")? {
        if row.date_of_birth.is_some() {
            return Err("a row gives either date_of_birth (a born child) or expected_delivery_date (an unborn child), not both".into());
        }
        let edd = ident::expected_delivery_date(edd, today).map_err(|e| e.to_string())?;
        let (Some(given), Some(surname)) = (cell("mother_given_names"), cell("mother_surname"))
        else {
            return Err("an unborn child is identified through the mother: send mother_given_names and mother_surname".into());
        };
        row.unborn = Some(Unborn {
            expected_delivery_date: edd,
            mother_given_names: given.to_owned(),
            mother_surname: surname.to_owned(),
            mother_date_of_birth: date("mother_date_of_birth")?,
            mother_nhs_number: cell("mother_nhs_number")
                .map(ident::nhs_number)
                .transpose()
                .map_err(|e| e.to_string())?,
        });
        if row.surname.is_none() {
            row.surname = Some(surname.to_owned());
        }
    }
    Ok(row)
}

/// The record a row leads to, before it is compared with what is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merged {
    pub details: ChildDetails,
    pub plans: Vec<Plan>,
}

/// Applies a row to the child's current record (or to none, for a new child), following the
/// same rules as the custodian's own changes.
pub fn merge_row(
    row: &ImportRow,
    existing: Option<&ChildRecord>,
    today: NaiveDate,
) -> Result<Merged, String> {
    let mut details = existing.map(|r| r.details.clone()).unwrap_or_default();
    let mut plans = existing.map(|r| r.plans.clone()).unwrap_or_default();
    macro_rules! take {
        ($($field:ident),*) => {$(
            if let Some(v) = &row.$field {
                details.$field = v.clone();
            }
        )*};
    }
    take!(given_names, surname, other_names, gender);
    if let Some(address) = &row.address {
        details.home_address = address.clone();
    }
    if row.postcode.is_some() {
        details.home_postcode = row.postcode.clone();
    }
    if row.nhs_number.is_some() {
        details.nhs_number = row.nhs_number.clone();
    }
    if row.date_of_birth.is_some() {
        // A date of birth for a child recorded as unborn records the birth.
        details.date_of_birth = row.date_of_birth;
        details.unborn = None;
    }
    if row.unborn.is_some() {
        if details.date_of_birth.is_some() {
            return Err(
                "the record has a date of birth: a born child cannot be made unborn".into(),
            );
        }
        details.unborn = row.unborn.clone();
    }
    if details.surname.trim().is_empty() {
        return Err("surname is empty: every child needs a surname (for an unborn child, send mother_surname)".into());
    }
    if let (None, Some(dob)) = (existing, row.date_of_birth) {
        ident::child_date_of_birth(dob, today).map_err(|e| e.to_string())?;
    }
    if details.date_of_birth.is_none() && details.unborn.is_none() {
        return Err("date_of_birth is empty: send it, or expected_delivery_date and the mother's details for an unborn child".into());
    }

    if let Some(imported) = &row.plan {
        let child = ChildRecord {
            record_id: row.record_id.clone(),
            revision: 0,
            details: details.clone(),
            plans: plans.clone(),
            updated_at: chrono::DateTime::UNIX_EPOCH,
            updated_by: String::new(),
        };
        let mut categories = imported.categories.clone();
        categories.sort();
        categories.dedup();
        if categories.is_empty() {
            return Err(lifecycle::RuleError::NoCategory.to_string());
        }
        if imported.start_date > today {
            return Err(lifecycle::RuleError::StartInFuture(imported.start_date).to_string());
        }
        lifecycle::check_imported_review(imported.start_date, imported.next_review_date, today)
            .map_err(|e| e.to_string())?;
        if plans
            .iter()
            .any(|p| !p.is_active() && p.start_date == imported.start_date)
        {
            // The register has already ended this plan; an export made before the end does
            // not restart it.
            return Ok(Merged { details, plans });
        }
        match plans.last_mut().filter(|p| p.is_active()) {
            Some(active) if active.start_date == imported.start_date => {
                if let Some(last) = active.reviews.last()
                    && imported.next_review_date <= last.held_on
                {
                    return Err(format!(
                        "the register has a review conference held on {}; the export's next review date {} is before it, so the export is older than the register",
                        last.held_on, imported.next_review_date
                    ));
                }
                active.categories = categories;
                let lsw = &imported.lead_social_worker;
                if (
                    active.lead_social_worker.name.as_str(),
                    active.lead_social_worker.phone.as_str(),
                ) != (lsw.name.as_str(), lsw.phone.as_str())
                {
                    // The export has no address column: a new lead social worker starts without one.
                    active.lead_social_worker = lsw.clone();
                }
                active.next_review_date = imported.next_review_date;
            }
            Some(active) => {
                return Err(format!(
                    "the child already has an active plan started {}; end it in the register before importing a plan started {}",
                    active.start_date, imported.start_date
                ));
            }
            None => {
                if let Some(previous) = plans.last().and_then(|p| p.end.as_ref())
                    && imported.start_date < previous.end_date
                {
                    let overlap = lifecycle::RuleError::OverlapsPrevious {
                        start: imported.start_date,
                        ended: previous.end_date,
                    };
                    return Err(overlap.to_string());
                }
                lifecycle::check_child_can_have_plan(&child, imported.start_date, today)
                    .map_err(|e| e.to_string())?;
                plans.push(Plan {
                    number: plans.len() as u32 + 1,
                    categories,
                    start_date: imported.start_date,
                    lead_social_worker: imported.lead_social_worker.clone(),
                    team_manager: Contact::default(),
                    core_group: Vec::new(),
                    next_review_date: imported.next_review_date,
                    reviews: Vec::new(),
                    notice_period_days: None,
                    end: None,
                    documents: Vec::new(),
                });
            }
        }
    }
    Ok(Merged { details, plans })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(csv: &str) -> Vec<ReadRow> {
        let today = NaiveDate::from_ymd_opt(2026, 11, 22).expect("date");
        let mut reader = RowReader::new(csv.as_bytes(), today).expect("header");
        std::iter::from_fn(|| reader.next_row().expect("read")).collect()
    }

    fn lines(read: &[ReadRow]) -> Vec<(u64, bool)> {
        read.iter()
            .map(|r| match r {
                ReadRow::Row(row) => (row.line, true),
                ReadRow::Rejected(rej) => (rej.line, false),
            })
            .collect()
    }

    #[test]
    fn an_unclosed_quote_rejects_its_line_and_the_next_rows_still_read() {
        let read = rows(
            "record_id,surname,date_of_birth\n\
             A1,\"Smith,2019-01-01\n\
             A2,Jones,2019-01-01\n\
             A3,Khan,2019-01-01\n",
        );
        assert_eq!(lines(&read), vec![(2, false), (3, true), (4, true)]);
    }

    #[test]
    fn a_quoted_field_may_hold_a_newline() {
        let read = rows("record_id,surname,address\nA1,Smith,\"1 High St\nCroydon\"\nA2,Jones,\n");
        assert_eq!(lines(&read), vec![(2, true), (4, true)]);
        let ReadRow::Row(row) = &read[0] else {
            panic!("row")
        };
        assert_eq!(row.address.as_deref(), Some("1 High St\nCroydon"));
    }

    #[test]
    fn a_stray_quote_or_wrong_field_count_is_rejected() {
        let read = rows("record_id,surname\nA1,Sm\"ith\nA2,Jones,extra\nA3,Khan\n");
        assert_eq!(lines(&read), vec![(2, false), (3, false), (4, true)]);
    }

    #[test]
    fn columns_may_come_in_any_order() {
        let read = rows("surname,record_id\nSmith,A1\n");
        let ReadRow::Row(row) = &read[0] else {
            panic!("row")
        };
        assert_eq!(
            (row.record_id.as_str(), row.surname.as_deref()),
            ("A1", Some("Smith"))
        );
    }
}
