//! The console's pages, each a function returning HTML. Every value from outside goes through
//! [`escape`]; every input has a label; nothing sets a positive tabindex, so the keyboard
//! follows the page from top to bottom.

use chrono::{DateTime, Utc};
use cpreg_proto::pb;

use super::forms::{ChildFields, LookupForm, PhoneForm};
use super::html::{escape, tel};
use crate::lookup::answer::Freshness;
use crate::status::AuthorityStatus;

/// What every page around the main content needs.
pub struct Frame<'a> {
    pub site: &'a str,
    /// The operator signed in, and their session's form token.
    pub operator: Option<(&'a str, &'a str)>,
    /// Where the register copies stand (shown once signed in).
    pub freshness: Option<&'a Freshness>,
    /// The staleness threshold, for the warning's words.
    pub threshold_hours: u64,
}

/// "12:00 on 22 November 2026 (UTC)".
pub fn when(t: DateTime<Utc>) -> String {
    t.format("%H:%M on %-d %B %Y (UTC)").to_string()
}

fn rfc3339_words(text: &str) -> String {
    DateTime::parse_from_rfc3339(text)
        .map(|t| when(t.with_timezone(&Utc)))
        .unwrap_or_else(|_| text.to_owned())
}

fn banner(frame: &Frame) -> String {
    let Some(freshness) = frame.freshness else {
        return String::new();
    };
    match (freshness.as_of, freshness.stale) {
        (None, _) => "<p class=\"banner stale\" role=\"alert\" id=\"register-banner\">Warning: no copy of the register has been received at this site yet, so a lookup cannot find any child. Call the local authority's Emergency Duty Team.</p>".to_owned(),
        (Some(t), true) => format!(
            "<p class=\"banner stale\" role=\"alert\" id=\"register-banner\">Warning: the register here may be out of date. It was last confirmed at {} (more than {} hours ago). Confirm every answer with the local authority's Emergency Duty Team.</p>",
            escape(&when(t)),
            frame.threshold_hours
        ),
        (Some(t), false) => format!(
            "<p class=\"banner fresh\" role=\"status\" id=\"register-banner\">Register as of {}.</p>",
            escape(&when(t))
        ),
    }
}

/// The page around `body`, under a plain heading of `title`.
pub fn layout(frame: &Frame, title: &str, body: &str) -> String {
    layout_headed(frame, title, &format!("<h1>{}</h1>", escape(title)), body)
}

/// The page around `body`, under the given `<h1>` markup.
fn layout_headed(frame: &Frame, title: &str, heading: &str, body: &str) -> String {
    let nav = match frame.operator {
        Some((name, csrf)) => format!(
            "<nav aria-label=\"Console\"><ul>\
             <li><a href=\"/lookup\">Look up a child</a></li>\
             <li><a href=\"/phone\">Phone enquiry</a></li>\
             <li><a href=\"/status\">Status</a></li>\
             <li><form class=\"inline\" method=\"post\" action=\"/signout\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
             <button class=\"link-button\" type=\"submit\">Sign out {}</button></form></li>\
             </ul></nav>",
            escape(csrf),
            escape(name)
        ),
        None => String::new(),
    };
    format!(
        "<!doctype html>\n<html lang=\"en-GB\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} - child protection register, site {site}</title>\
         <link rel=\"stylesheet\" href=\"/console.css\"></head>\n<body>\
         <a class=\"skip\" href=\"#main\">Skip to the main content</a>\
         <header><p class=\"brand\">Child protection register: duty console, site {site}</p>{nav}</header>\
         {banner}<main id=\"main\">{heading}\n{body}</main></body></html>\n",
        title = escape(title),
        site = escape(frame.site),
        banner = banner(frame),
    )
}

/// A refusal or problem shown above a form.
fn problem(heading: &str, message: Option<&str>) -> String {
    match message {
        Some(m) => format!(
            "<div class=\"problem\" role=\"alert\" id=\"problem\"><h2>{}</h2><p>{}</p></div>",
            escape(heading),
            escape(m)
        ),
        None => String::new(),
    }
}

/// A labelled one-line text input; `hint` is part of the label so it is read with it.
fn text(name: &str, label: &str, hint: &str, value: &str, attrs: &str) -> String {
    let hint = if hint.is_empty() {
        String::new()
    } else {
        format!(" <span class=\"hint\">{}</span>", escape(hint))
    };
    format!(
        "<label for=\"f-{name}\">{label}{hint}</label>\
         <input type=\"text\" id=\"f-{name}\" name=\"{name}\" value=\"{value}\" {attrs}>\n",
        label = escape(label),
        value = escape(value),
    )
}

fn textarea(name: &str, label: &str, hint: &str, value: &str) -> String {
    format!(
        "<label for=\"f-{name}\">{label} <span class=\"hint\">{hint}</span></label>\
         <textarea id=\"f-{name}\" name=\"{name}\" rows=\"3\">{value}</textarea>\n",
        label = escape(label),
        hint = escape(hint),
        value = escape(value),
    )
}

fn hidden(name: &str, value: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"{name}\" value=\"{}\">",
        escape(value)
    )
}

const DATE_HINT: &str = "day/month/year, like 23/04/2019";

/// The child's details, in the order people are asked for them.
fn child_fields(child: &ChildFields, autofocus: bool) -> String {
    let focus = if autofocus {
        "autocomplete=\"off\" autofocus"
    } else {
        "autocomplete=\"off\""
    };
    let gender = [
        ("", "Not given"),
        ("female", "Female"),
        ("male", "Male"),
        ("unknown", "Not known"),
    ]
    .iter()
    .map(|(value, words)| {
        format!(
            "<option value=\"{value}\"{}>{words}</option>",
            if child.gender == *value {
                " selected"
            } else {
                ""
            }
        )
    })
    .collect::<String>();
    format!(
        "<fieldset><legend>The child</legend>\n{}{}{}\
         <label for=\"f-gender\">Gender <span class=\"hint\">optional</span></label>\
         <select id=\"f-gender\" name=\"gender\">{gender}</select>\n{}{}</fieldset>\n\
         <fieldset><legend>Or, for an unborn child: the mother</legend>\n{}{}{}{}</fieldset>\n",
        text(
            "given_names",
            "Given name",
            "the whole name, not an initial",
            &child.given_names,
            focus
        ),
        text(
            "surname",
            "Surname",
            "",
            &child.surname,
            "autocomplete=\"off\""
        ),
        text(
            "date_of_birth",
            "Date of birth",
            DATE_HINT,
            &child.date_of_birth,
            "class=\"narrow\" inputmode=\"numeric\" autocomplete=\"off\""
        ),
        text(
            "nhs_number",
            "NHS number",
            "optional: 10 digits",
            &child.nhs_number,
            "class=\"narrow\" inputmode=\"numeric\" autocomplete=\"off\""
        ),
        text(
            "postcode",
            "Postcode",
            "optional",
            &child.postcode,
            "class=\"narrow\" autocomplete=\"off\""
        ),
        text(
            "mother_given_names",
            "Mother's given name",
            "",
            &child.mother_given_names,
            "autocomplete=\"off\""
        ),
        text(
            "mother_surname",
            "Mother's surname",
            "",
            &child.mother_surname,
            "autocomplete=\"off\""
        ),
        text(
            "mother_date_of_birth",
            "Mother's date of birth",
            DATE_HINT,
            &child.mother_date_of_birth,
            "class=\"narrow\" inputmode=\"numeric\" autocomplete=\"off\""
        ),
        text(
            "expected_delivery_date",
            "Expected date of delivery",
            DATE_HINT,
            &child.expected_delivery_date,
            "class=\"narrow\" inputmode=\"numeric\" autocomplete=\"off\""
        ),
    )
}

const ENOUGH: &str = "Give the child's given name, surname and date of birth; or the NHS number with the surname or date of birth; or, for an unborn child, the mother's name with her date of birth or the expected date of delivery.";

/// The sign-in page.
pub fn sign_in(frame: &Frame, csrf: &str, username: &str, message: Option<&str>) -> String {
    let body = format!(
        "{}<form method=\"post\" action=\"/signin\">{}\n{}\
         <label for=\"f-password\">Password</label>\
         <input type=\"password\" id=\"f-password\" name=\"password\" autocomplete=\"current-password\">\n\
         <button type=\"submit\">Sign in</button></form>\
         <p>Accounts are given by the site's duty manager. Every lookup is recorded against your name.</p>",
        problem("You are not signed in", message),
        hidden("csrf", csrf),
        text(
            "username",
            "Username",
            "",
            username,
            "autocomplete=\"username\" autocapitalize=\"none\" spellcheck=\"false\" autofocus"
        ),
    );
    layout(frame, "Sign in", &body)
}

/// The direct lookup form (the terminal path), with a refusal if the last try was refused.
pub fn lookup(frame: &Frame, form: &LookupForm, message: Option<&str>) -> String {
    let csrf = frame.operator.map(|(_, c)| c).unwrap_or_default();
    let body = format!(
        "{}<p>{ENOUGH} Every lookup is recorded, with your name and reason, before the answer is shown.</p>\
         <form method=\"post\" action=\"/lookup\">{}\n{}{}<button type=\"submit\">Look up</button></form>",
        problem("The lookup was not made", message),
        hidden("csrf", csrf),
        child_fields(&form.child, message.is_none()),
        textarea(
            "reason",
            "Why you suspect the child is suffering, or likely to suffer, significant harm",
            "required: this is recorded and sent to the local authority",
            &form.reason
        ),
    );
    layout(frame, "Look up a child", &body)
}

/// The phone enquiry form: who is calling, from which organisation in the directory.
pub fn phone(
    frame: &Frame,
    form: &PhoneForm,
    organisations: &[pb::Organisation],
    message: Option<&str>,
) -> String {
    let csrf = frame.operator.map(|(_, c)| c).unwrap_or_default();
    let options =
        std::iter::once("<option value=\"\">Choose the caller's organisation</option>".to_owned())
            .chain(organisations.iter().map(|o| {
                format!(
                    "<option value=\"{}\"{}>{}</option>",
                    escape(&o.id),
                    if form.organisation_id == o.id {
                        " selected"
                    } else {
                        ""
                    },
                    escape(&o.name)
                )
            }))
            .collect::<String>();
    let body = format!(
        "{}<p>Take the caller's details. You will then ring the organisation back on the number in the directory, never the number the caller gives, and the answer is shown only once you have confirmed who they are.</p>\
         <form method=\"post\" action=\"/phone\">{}\n<fieldset><legend>The caller</legend>\n{}{}\
         <label for=\"f-organisation_id\">Organisation <span class=\"hint\">from the directory; if it is not listed, refuse the enquiry</span></label>\
         <select id=\"f-organisation_id\" name=\"organisation_id\">{options}</select>\n{}</fieldset>\n{}{}\
         <button type=\"submit\">Record and get the number to ring</button></form>",
        problem("The enquiry was not opened", message),
        hidden("csrf", csrf),
        text(
            "enquirer_name",
            "Caller's name",
            "",
            &form.enquirer_name,
            if message.is_none() {
                "autocomplete=\"off\" autofocus"
            } else {
                "autocomplete=\"off\""
            }
        ),
        text(
            "enquirer_role",
            "Caller's role",
            "like GP, paramedic, police officer",
            &form.enquirer_role,
            "autocomplete=\"off\""
        ),
        text(
            "number_given",
            "Number the caller gave",
            "recorded, never rung",
            &form.number_given,
            "class=\"narrow\" autocomplete=\"off\""
        ),
        child_fields(&form.child, false),
        textarea(
            "reason",
            "Why the caller suspects the child is suffering, or likely to suffer, significant harm",
            "required",
            &form.reason
        ),
    );
    layout(frame, "Phone enquiry", &body)
}

/// What the call-back page shows of an open enquiry.
pub struct Ticket<'a> {
    pub reference: &'a str,
    pub organisation_name: &'a str,
    pub callback_number: &'a str,
    pub enquirer: &'a str,
    pub enquirer_role: &'a str,
    pub number_given: &'a str,
    pub expires_at: DateTime<Utc>,
}

/// Step two of a phone enquiry: the number to ring, then what happened.
pub fn ticket(frame: &Frame, t: &Ticket, message: Option<&str>) -> String {
    let csrf = frame.operator.map(|(_, c)| c).unwrap_or_default();
    let choices = [
        (
            "confirmed",
            "I rang the number above and confirmed who the caller is",
        ),
        ("no-answer", "No answer"),
        (
            "not-confirmed",
            "Answered, but I could not confirm the caller",
        ),
        ("abandoned", "Abandoned"),
    ]
    .iter()
    .map(|(value, words)| {
        format!(
            "<div class=\"choice\"><input type=\"radio\" id=\"outcome-{value}\" name=\"outcome\" value=\"{value}\" required>\
             <label for=\"outcome-{value}\">{words}</label></div>"
        )
    })
    .collect::<String>();
    let body = format!(
        "{problem}<p>Enquiry reference <strong id=\"reference\">{reference}</strong> is recorded. Nothing about the child is shown until you have called back.</p>\
         <h2>Ring {org}</h2>\
         <p class=\"ring\">On <a id=\"callback-number\" href=\"tel:{tel}\">{number}</a></p>\
         <p>This is the number in the signed directory. Do not ring the number the caller gave ({given}). Ask for {enquirer} ({role}) and confirm who they are.</p>\
         <p>Call back before {expires}; after that this enquiry expires and you must open a new one.</p>\
         <form method=\"post\" action=\"/phone/callback\">{csrf}{reference_field}\n\
         <fieldset><legend>What happened when you rang back?</legend>{choices}</fieldset>\
         <button type=\"submit\">Record the call-back</button></form>",
        problem = problem("The call-back was not recorded", message),
        reference = escape(t.reference),
        org = escape(t.organisation_name),
        tel = tel(t.callback_number),
        number = escape(t.callback_number),
        given = escape(if t.number_given.is_empty() {
            "none given"
        } else {
            t.number_given
        }),
        enquirer = escape(t.enquirer),
        role = escape(t.enquirer_role),
        expires = escape(&t.expires_at.format("%H:%M (UTC)").to_string()),
        csrf = hidden("csrf", csrf),
        reference_field = hidden("reference", t.reference),
    );
    layout(frame, "Call back before you answer", &body)
}

fn category_words(categories: &[i32]) -> String {
    let words: Vec<&str> = categories
        .iter()
        .map(|c| match pb::Category::try_from(*c) {
            Ok(pb::Category::Neglect) => "neglect",
            Ok(pb::Category::Physical) => "physical abuse",
            Ok(pb::Category::Sexual) => "sexual abuse",
            Ok(pb::Category::Emotional) => "emotional abuse",
            _ => "not recorded",
        })
        .collect();
    if words.is_empty() {
        "not recorded".to_owned()
    } else {
        words.join(", ")
    }
}

fn phone_link(number: &str) -> String {
    if number.is_empty() {
        "not recorded".to_owned()
    } else {
        format!("<a href=\"tel:{}\">{}</a>", tel(number), escape(number))
    }
}

fn candidate(i: usize, c: &pb::Candidate) -> String {
    let confidence = if c.confidence == i32::from(pb::Confidence::Match) {
        "Match"
    } else {
        "Possible match: check before acting"
    };
    let authority = if c.authority_name.is_empty() {
        &c.authority
    } else {
        &c.authority_name
    };
    let recent = if c.recent_enquiries == 0 {
        "No other enquiries in the last 30 days".to_owned()
    } else {
        format!(
            "{} time(s) in the last 30 days, from {} site(s): repeated attendance is a warning sign",
            c.recent_enquiries, c.recent_sites
        )
    };
    let reasons = c
        .reasons
        .iter()
        .map(|r| format!("<li>{}</li>", escape(r)))
        .collect::<String>();
    format!(
        "<section class=\"candidate\" aria-labelledby=\"candidate-{i}\"><h2 id=\"candidate-{i}\">{name}</h2>\
         <p><strong>{confidence}</strong></p><dl>\
         <dt>Lead social worker</dt><dd class=\"lead\">{lead}</dd>\
         <dt>Ring</dt><dd class=\"ring\">{lead_phone}</dd>\
         <dt>Plan</dt><dd>{status}, since {start}</dd>\
         <dt>Category</dt><dd>{categories}</dd>\
         <dt>Date of birth</dt><dd>{dob}</dd>\
         <dt>Local authority</dt><dd>{authority}</dd>\
         <dt>Office</dt><dd>{office}</dd>\
         <dt>Emergency Duty Team</dt><dd>{edt}</dd>\
         <dt>Asked about</dt><dd>{recent}</dd>\
         <dt>Record</dt><dd>{record}</dd></dl>\
         <h3>Why this child was found</h3><ul>{reasons}</ul></section>",
        name = escape(&c.name),
        lead = escape(if c.lead_social_worker.is_empty() {
            "not recorded"
        } else {
            &c.lead_social_worker
        }),
        lead_phone = phone_link(&c.lead_social_worker_phone),
        status = escape(&c.plan_status),
        start = escape(&c.plan_start_date),
        categories = escape(&category_words(&c.categories)),
        dob = escape(&c.date_of_birth),
        authority = escape(authority),
        office = phone_link(&c.office_phone),
        edt = phone_link(&c.edt_phone),
        recent = escape(&recent),
        record = escape(&format!("{} {}", c.authority, c.record_id)),
    )
}

/// The answer: a clear status, whom to ring, the advice, and each candidate.
pub fn answer(frame: &Frame, a: &pb::LookupAnswer) -> String {
    let (band, heading) = match pb::LookupOutcome::try_from(a.outcome) {
        Ok(pb::LookupOutcome::Match) => ("band-match", "Child Protection Plan found"),
        Ok(pb::LookupOutcome::Possible) => (
            "band-possible",
            "Possible match: check the details before acting",
        ),
        _ => ("band-none", "No record found"),
    };
    let ring = a
        .candidates
        .first()
        .filter(|c| c.confidence == i32::from(pb::Confidence::Match))
        .map(|c| {
            format!(
                "<p class=\"ring\">Ring the lead social worker, {}, on {}</p>",
                escape(&c.lead_social_worker),
                phone_link(&c.lead_social_worker_phone)
            )
        })
        .unwrap_or_default();
    let stale = if a.stale {
        "<p><strong>The register here may be out of date: confirm this answer with the Emergency Duty Team.</strong></p>"
    } else {
        ""
    };
    let candidates = a
        .candidates
        .iter()
        .enumerate()
        .map(|(i, c)| candidate(i + 1, c))
        .collect::<String>();
    let body = format!(
        "{ring}\
         <h2>What to do</h2><p id=\"advice\">{advice}</p>{stale}\
         {candidates}\
         <h2>This enquiry</h2><dl><dt>Reference</dt><dd id=\"reference\">{reference}</dd>\
         <dt>Searched</dt><dd>{searched}</dd><dt>Register as of</dt><dd>{as_of}</dd></dl>\
         <p><a href=\"/lookup\">Look up another child</a></p>",
        advice = escape(&a.advice),
        reference = escape(&a.enquiry_reference),
        searched = escape(&a.searched),
        as_of = escape(&rfc3339_words(&a.as_of)),
    );
    let h1 = format!("<h1 class=\"band {band}\" id=\"outcome\">{heading}</h1>");
    layout_headed(frame, heading, &h1, &body)
}

/// A call-back that released nothing.
pub fn nothing_released(frame: &Frame, message: &str) -> String {
    let body = format!(
        "<div class=\"problem\" role=\"alert\" id=\"problem\"><h2>Nothing about the child was released</h2><p>{}</p></div>\
         <p>If the caller is genuine and the child may be at risk, advise them to contact children's social care or the Emergency Duty Team directly.</p>\
         <p><a href=\"/phone\">Take another phone enquiry</a></p>",
        escape(message)
    );
    layout(frame, "Call-back recorded", &body)
}

/// The status page: each authority's copy, the link to its primary, and the outbox.
pub fn status(
    frame: &Frame,
    authorities: &[AuthorityStatus],
    backlog: u64,
    recorded: u64,
    organisation: &str,
) -> String {
    let rows = authorities
        .iter()
        .map(|s| {
            format!(
                "<tr><th scope=\"row\">{}</th><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&s.authority),
                s.version,
                escape(&s.as_of.map_or_else(|| "never".to_owned(), when)),
                if s.stale { "<strong>stale</strong>" } else { "fresh" },
                if s.connected { "connected" } else { "not connected" },
                escape(&s.last_contact.map_or_else(|| "never".to_owned(), when)),
                s.entry_count,
                escape(s.last_error.as_deref().unwrap_or("none")),
            )
        })
        .collect::<String>();
    let body = format!(
        "<h2>Register copies</h2><table><caption>Each local authority's register held at this site</caption>\
         <thead><tr><th scope=\"col\">Authority</th><th scope=\"col\">Version</th><th scope=\"col\">As of</th>\
         <th scope=\"col\">Freshness</th><th scope=\"col\">Link to primary</th><th scope=\"col\">Last contact</th>\
         <th scope=\"col\">Entries</th><th scope=\"col\">Last problem</th></tr></thead><tbody>{rows}</tbody></table>\
         <h2>Enquiries</h2><dl><dt>Waiting to reach the primary</dt><dd id=\"backlog\">{backlog}</dd>\
         <dt>Recorded at this site</dt><dd>{recorded}</dd></dl>\
         <h2>This console</h2><dl><dt>Site</dt><dd>{site}</dd><dt>Lookups made for</dt><dd>{organisation}</dd>\
         <dt>Software</dt><dd>cpreg-replica {version}</dd></dl>",
        site = escape(frame.site),
        organisation = escape(organisation),
        version = env!("CARGO_PKG_VERSION"),
    );
    layout(frame, "Status", &body)
}

/// A page that is not there.
pub fn not_found(frame: &Frame) -> String {
    layout(
        frame,
        "Page not found",
        "<p>There is no such page. <a href=\"/lookup\">Look up a child</a>.</p>",
    )
}
