//! The console's requests: sign-in, the lookup (the terminal path), the phone enquiry with its
//! call-back, and status. Lookups go through [`LookupService`](crate::lookup::LookupService)
//! like a terminal's, as the "web console" terminal of the configured organisation.

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{Extension, Form, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use cpreg_proto::pb;
use cpreg_proto::snapshot::ORGANISATION_PREFIX;
use prost::Message;
use tonic::Code;

use super::forms::{CallbackForm, LookupForm, PhoneForm, SignInForm, TokenForm};
use super::pages::{self, Frame, Ticket};
use super::sessions::{Session, random_token, same_token};
use super::{Console, operators};
use crate::lookup::Terminal;
use crate::store::{EnquiryPath, EnquiryState};

/// The address a request came from, set per connection.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub IpAddr);

/// The name the console's lookups are recorded under, as a terminal's certificate name would be,
/// followed by the operator's account: each signed-in account is a terminal of its own for the
/// limits and the enumeration watch, since accounts, unlike the names typed at a terminal, are
/// real people who signed in.
pub const TERMINAL_NAME: &str = "web console";

const SESSION_COOKIE: &str = "__Host-cpreg_session";
const SIGN_IN_COOKIE: &str = "__Host-cpreg_signin";

type Shared = State<Arc<Console>>;

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

fn set_cookie(name: &str, value: &str, max_age_seconds: u64) -> (header::HeaderName, String) {
    (
        header::SET_COOKIE,
        format!(
            "{name}={value}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={max_age_seconds}"
        ),
    )
}

fn html(status: StatusCode, page: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        page,
    )
        .into_response()
}

fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

impl Console {
    fn frame<'a>(&'a self, session: Option<&'a Session>) -> Frame<'a> {
        Frame {
            site: &self.site,
            operator: session.map(|s| (s.operator.as_str(), s.csrf.as_str())),
            freshness: None,
            threshold_hours: self.threshold_hours,
        }
    }

    /// The session a request carries, if it is open and its operator still has an account.
    fn session(&self, headers: &HeaderMap) -> Option<Session> {
        let id = cookie(headers, SESSION_COOKIE)?;
        let session = self.sessions.touch(&id)?;
        match operators::find(&self.operators_path, &session.operator) {
            Ok(Some(_)) => Some(session),
            Ok(None) => {
                self.sessions.close_operator(&session.operator);
                None
            }
            Err(error) => {
                tracing::error!(%error, "cannot read the operators file");
                None
            }
        }
    }

    /// A page for a signed-in operator, with the register banner.
    fn page(&self, session: &Session, render: impl FnOnce(&Frame) -> String) -> Response {
        let freshness = self.lookups.freshness().ok();
        let mut frame = self.frame(Some(session));
        frame.freshness = freshness.as_ref();
        html(StatusCode::OK, render(&frame))
    }

    fn terminal(&self, session: &Session) -> Terminal {
        Terminal {
            name: format!("{TERMINAL_NAME} ({})", session.operator),
            organisation: Some(self.organisation.clone()),
        }
    }

    /// Every organisation in the signed directories held, by name.
    async fn directory(&self) -> Vec<pb::Organisation> {
        let (store, authorities) = (self.store.clone(), self.authorities.clone());
        let read = tokio::task::spawn_blocking(move || {
            let mut found = Vec::new();
            for authority in &authorities {
                for (key, bytes) in store.entries(authority)? {
                    if key.starts_with(ORGANISATION_PREFIX)
                        && let Ok(o) = pb::Organisation::decode(bytes.as_slice())
                    {
                        found.push(o);
                    }
                }
            }
            Ok::<_, crate::store::StoreError>(found)
        })
        .await;
        let mut found = match read {
            Ok(Ok(found)) => found,
            Ok(Err(error)) => {
                tracing::error!(%error, "cannot read the directory");
                Vec::new()
            }
            Err(error) => {
                tracing::error!(%error, "reading the directory failed");
                Vec::new()
            }
        };
        found.sort_by(|a, b| a.name.cmp(&b.name));
        found.dedup_by(|a, b| a.id == b.id);
        found
    }
}

/// A refusal's words for the operator: the service's message says what to add or change.
fn refusal(status: &tonic::Status) -> String {
    match status.code() {
        Code::Internal | Code::Unavailable => {
            "The lookup could not be completed and nothing was answered. Try again, or call the Emergency Duty Team.".to_owned()
        }
        _ => {
            let mut m = status.message().to_owned();
            if let Some(first) = m.get(..1) {
                let upper = first.to_uppercase();
                m.replace_range(..1, &upper);
            }
            m
        }
    }
}

pub async fn home(State(console): Shared, headers: HeaderMap) -> Response {
    match console.session(&headers) {
        Some(_) => see_other("/lookup"),
        None => see_other("/signin"),
    }
}

pub async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        super::style::CSS.as_str(),
    )
        .into_response()
}

fn sign_in_page(console: &Console, username: &str, message: Option<&str>) -> Response {
    let token = random_token();
    let page = pages::sign_in(&console.frame(None), &token, username, message);
    let status = if message.is_some() {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::OK
    };
    let mut response = html(status, page);
    let (name, value) = set_cookie(SIGN_IN_COOKIE, &token, 900);
    if let Ok(value) = HeaderValue::from_str(&value) {
        response.headers_mut().append(name, value);
    }
    response
}

pub async fn sign_in_form(State(console): Shared, headers: HeaderMap) -> Response {
    if console.session(&headers).is_some() {
        return see_other("/lookup");
    }
    sign_in_page(&console, "", None)
}

pub async fn sign_in(
    State(console): Shared,
    Extension(Peer(address)): Extension<Peer>,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Response {
    let username = form.username.trim().to_owned();
    // The sign-in form's token must match its cookie: no other site can sign someone in.
    let token_ok = cookie(&headers, SIGN_IN_COOKIE).is_some_and(|c| same_token(&c, &form.csrf));
    if !token_ok {
        return sign_in_page(
            &console,
            &username,
            Some("The sign-in form had expired. Enter your username and password again."),
        );
    }
    if let Err(locked) = console.lockout.check(&username, address) {
        tracing::warn!(operator = %username, %address, "sign-in refused: locked");
        let minutes = locked.remaining.as_secs().div_ceil(60);
        return sign_in_page(
            &console,
            &username,
            Some(&format!(
                "Too many failed sign-ins: this account, or this computer, is locked for {minutes} more minute(s). If you need the register now, call the Emergency Duty Team."
            )),
        );
    }
    let account = match operators::find(&console.operators_path, &username) {
        Ok(account) => account,
        Err(error) => {
            tracing::error!(%error, "cannot read the operators file");
            return sign_in_page(
                &console,
                &username,
                Some("Sign-in is not working at the moment. Call the Emergency Duty Team."),
            );
        }
    };
    let password = form.password;
    let hash = account.as_ref().map(|a| a.password_hash.clone());
    // Hashing is deliberately slow: keep it off the threads that serve other requests. An
    // unknown name is checked against a dummy hash so it takes as long as a wrong password.
    let dummy = console.dummy_hash.clone();
    let verified = tokio::task::spawn_blocking(move || {
        let checked = operators::verify_password(&password, hash.as_deref().unwrap_or(&dummy));
        checked && hash.is_some()
    })
    .await
    .unwrap_or(false);
    match (verified, account) {
        (true, Some(account)) => {
            console.lockout.succeeded(&username, address);
            let id = console.sessions.open(&account.name, &account.role);
            tracing::info!(operator = %account.name, %address, "signed in to the console");
            let mut response = see_other("/lookup");
            for (name, value) in [
                set_cookie(SESSION_COOKIE, &id, console.session_minutes * 60),
                set_cookie(SIGN_IN_COOKIE, "", 0),
            ] {
                if let Ok(value) = HeaderValue::from_str(&value) {
                    response.headers_mut().append(name, value);
                }
            }
            response
        }
        _ => {
            let left = console.lockout.failed(&username, address);
            tracing::warn!(operator = %username, %address, left, "failed sign-in");
            let message = if left == 0 {
                format!(
                    "The username or password is wrong. Too many failed sign-ins: this account, or this computer, is locked for {} minutes.",
                    console.lockout_minutes
                )
            } else {
                format!(
                    "The username or password is wrong. {left} more failed attempt(s) will lock the account for {} minutes.",
                    console.lockout_minutes
                )
            };
            sign_in_page(&console, &username, Some(&message))
        }
    }
}

pub async fn sign_out(
    State(console): Shared,
    headers: HeaderMap,
    Form(form): Form<TokenForm>,
) -> Response {
    if let (Some(id), Some(session)) = (cookie(&headers, SESSION_COOKIE), console.session(&headers))
        && same_token(&session.csrf, &form.csrf)
    {
        console.sessions.close(&id);
        tracing::info!(operator = %session.operator, "signed out of the console");
    }
    let mut response = see_other("/signin");
    let (name, value) = set_cookie(SESSION_COOKIE, "", 0);
    if let Ok(value) = HeaderValue::from_str(&value) {
        response.headers_mut().append(name, value);
    }
    response
}

/// The session for a POST whose form token matches, or the response to send instead.
fn checked(console: &Console, headers: &HeaderMap, csrf: &str) -> Result<Session, Box<Response>> {
    let session = console
        .session(headers)
        .ok_or_else(|| Box::new(see_other("/signin")))?;
    if !same_token(&session.csrf, csrf) {
        tracing::warn!(operator = %session.operator, "form refused: wrong or missing form token");
        return Err(Box::new(html(
            StatusCode::FORBIDDEN,
            pages::layout(
                &console.frame(Some(&session)),
                "The form had expired",
                "<p>Nothing was sent. Go back, reload the page and try again.</p>",
            ),
        )));
    }
    Ok(session)
}

pub async fn lookup_form(State(console): Shared, headers: HeaderMap) -> Response {
    let Some(session) = console.session(&headers) else {
        return see_other("/signin");
    };
    console.page(&session, |f| pages::lookup(f, &LookupForm::default(), None))
}

pub async fn lookup(
    State(console): Shared,
    headers: HeaderMap,
    Form(form): Form<LookupForm>,
) -> Response {
    let session = match checked(&console, &headers, &form.csrf) {
        Ok(s) => s,
        Err(response) => return *response,
    };
    let request = pb::LookupRequest {
        child: Some(form.child.query()),
        operator_name: session.operator.clone(),
        operator_role: session.role.clone(),
        reason: form.reason.clone(),
    };
    match console
        .lookups
        .lookup_for(&console.terminal(&session), request)
        .await
    {
        Ok(answer) => console.page(&session, |f| pages::answer(f, &answer)),
        Err(status) => {
            let message = refusal(&status);
            console.page(&session, |f| pages::lookup(f, &form, Some(&message)))
        }
    }
}

pub async fn phone_form(State(console): Shared, headers: HeaderMap) -> Response {
    let Some(session) = console.session(&headers) else {
        return see_other("/signin");
    };
    let directory = console.directory().await;
    console.page(&session, |f| {
        pages::phone(f, &PhoneForm::default(), &directory, None)
    })
}

pub async fn phone(
    State(console): Shared,
    headers: HeaderMap,
    Form(form): Form<PhoneForm>,
) -> Response {
    let session = match checked(&console, &headers, &form.csrf) {
        Ok(s) => s,
        Err(response) => return *response,
    };
    let request = pb::OpenEnquiryRequest {
        child: Some(form.child.query()),
        enquirer_name: form.enquirer_name.clone(),
        enquirer_role: form.enquirer_role.clone(),
        organisation_id: form.organisation_id.clone(),
        number_given: form.number_given.clone(),
        reason: form.reason.clone(),
        duty_worker: session.operator.clone(),
    };
    match console
        .lookups
        .open_enquiry_for(&console.terminal(&session), request)
        .await
    {
        // Post, then redirect: reloading the ticket page does not open a second enquiry.
        Ok(ticket) => see_other(&format!("/phone/{}", ticket.enquiry_reference)),
        Err(status) => {
            let message = refusal(&status);
            let directory = console.directory().await;
            console.page(&session, |f| {
                pages::phone(f, &form, &directory, Some(&message))
            })
        }
    }
}

/// The ticket page of an enquiry waiting for its call-back, from what was recorded.
async fn ticket_page(
    console: &Console,
    session: &Session,
    reference: &str,
    message: Option<&str>,
) -> Response {
    let enquiry = {
        let (store, reference) = (console.store.clone(), reference.to_owned());
        tokio::task::spawn_blocking(move || store.enquiry(&reference)).await
    };
    let enquiry = match enquiry {
        Ok(Ok(Some(e))) => e,
        _ => {
            return html(
                StatusCode::NOT_FOUND,
                pages::not_found(&console.frame(Some(session))),
            );
        }
    };
    let (
        EnquiryPath::Callback {
            enquirer,
            enquirer_role,
            organisation_id,
            number_given,
            callback_number,
            ..
        },
        EnquiryState::AwaitingCallback { expires_at },
    ) = (&enquiry.path, &enquiry.state)
    else {
        return console.page(session, |f| {
            pages::nothing_released(
                f,
                &format!("Enquiry {reference} is not waiting for a call-back any more."),
            )
        });
    };
    let directory = console.directory().await;
    let organisation_name = directory
        .iter()
        .find(|o| &o.id == organisation_id)
        .map_or(organisation_id.as_str(), |o| o.name.as_str());
    let ticket = Ticket {
        reference,
        organisation_name,
        callback_number,
        enquirer,
        enquirer_role,
        number_given,
        expires_at: *expires_at,
    };
    console.page(session, |f| pages::ticket(f, &ticket, message))
}

pub async fn ticket(
    State(console): Shared,
    headers: HeaderMap,
    Path(reference): Path<String>,
) -> Response {
    let Some(session) = console.session(&headers) else {
        return see_other("/signin");
    };
    ticket_page(&console, &session, &reference, None).await
}

pub async fn callback(
    State(console): Shared,
    headers: HeaderMap,
    Form(form): Form<CallbackForm>,
) -> Response {
    let session = match checked(&console, &headers, &form.csrf) {
        Ok(s) => s,
        Err(response) => return *response,
    };
    let outcome = match form.outcome.as_str() {
        "confirmed" => pb::CallbackOutcome::Confirmed,
        "no-answer" => pb::CallbackOutcome::NoAnswer,
        "not-confirmed" => pb::CallbackOutcome::NotConfirmed,
        "abandoned" => pb::CallbackOutcome::Abandoned,
        _ => {
            return ticket_page(
                &console,
                &session,
                &form.reference,
                Some("Choose what happened when you rang back."),
            )
            .await;
        }
    };
    let request = pb::RecordCallbackRequest {
        enquiry_reference: form.reference.clone(),
        outcome: outcome.into(),
        note: format!("recorded at the web console by {}", session.operator),
    };
    match console.lookups.record_callback_for(request).await {
        Ok(answer) => console.page(&session, |f| pages::answer(f, &answer)),
        Err(status) => {
            let message = refusal(&status);
            console.page(&session, |f| pages::nothing_released(f, &message))
        }
    }
}

pub async fn status(State(console): Shared, headers: HeaderMap) -> Response {
    let Some(session) = console.session(&headers) else {
        return see_other("/signin");
    };
    let statuses = console.statuses();
    let store = console.store.clone();
    let counts = tokio::task::spawn_blocking(move || {
        Ok::<_, crate::store::StoreError>((store.outbox_backlog()?, store.enquiries_recorded()?))
    })
    .await;
    let (backlog, recorded) = match counts {
        Ok(Ok(counts)) => counts,
        _ => (0, 0),
    };
    console.page(&session, |f| {
        pages::status(f, &statuses, backlog, recorded, &console.organisation)
    })
}

pub async fn not_found(State(console): Shared, headers: HeaderMap) -> Response {
    let session = console.session(&headers);
    html(
        StatusCode::NOT_FOUND,
        pages::not_found(&console.frame(session.as_ref())),
    )
}

/// Headers on every response: nothing cached, nothing framed, nothing loaded from elsewhere.
pub async fn protect(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::STRICT_TRANSPORT_SECURITY, "max-age=31536000"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}
