//! The `cpreg.v1.Lookup` service at a site: registered terminals ask directly, duty workers take
//! phone enquiries and release the answer only after calling the organisation's verified number
//! back. Every enquiry, refused or answered, is recorded with its outbox entry before any answer
//! leaves.
//!
//! # Layout
//! - [`answer`]: the answer and its plain-words advice.
//! - [`fields`]: how long each field may be.
//! - [`journal`]: recording enquiries, many to a commit, before they are answered.
//! - [`limits`]: rate limits per operator, terminal and site, and the watch for enumeration.

pub mod answer;
pub mod fields;
pub mod journal;
pub mod limits;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use cpreg_proto::criteria::{self, Criteria};
use cpreg_proto::pb::{self, lookup_server::Lookup};
use cpreg_proto::role::{CertificateHolder, Role};
use cpreg_proto::snapshot::{ORGANISATION_PREFIX, TrustedState};
use prost::Message;
use tokio::sync::Mutex;
use tonic::{Request, Response, Status};

use crate::clock::Clock;
use crate::config::{Config, LookupConfig};
use crate::matching::{Matcher, MotherQuery, Query};
use crate::status::HeldVersion;
use crate::store::{Enquiry, EnquiryPath, EnquiryState, Store};
use answer::Freshness;
use journal::Journal;
use limits::{PatternWatch, RateLimiter};

/// What lookups read of the registers held, kept in memory while the store does not change
/// (`Store::changes`): each authority's trusted state and numbers, and the directory's
/// organisations as they are asked for. Every lookup would otherwise read them again.
struct Held {
    changes: u64,
    states: Vec<(String, TrustedState)>,
    numbers: Arc<BTreeMap<String, pb::AuthorityInfo>>,
    /// Organisations found so far (ids not found are read again each time, so a terminal
    /// sending made-up ids cannot grow this).
    organisations: std::sync::Mutex<HashMap<String, pb::Organisation>>,
}

/// The matcher over the versions it was built from; rebuilt when any authority moves on.
#[derive(Default)]
struct MatcherCache {
    versions: Vec<(String, u64)>,
    matcher: Option<Arc<Matcher>>,
}

/// Who is asking, once authenticated: a terminal's certificate checked by the gRPC service, or
/// the duty console with an operator signed in (DESIGN section 5: both go through the same
/// criteria, limits and recording).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Terminal {
    /// The terminal's name: its certificate's holder, or "web console".
    pub name: String,
    /// The directory organisation it belongs to; it must be listed at this site.
    pub organisation: Option<String>,
}

impl From<CertificateHolder> for Terminal {
    fn from(holder: CertificateHolder) -> Self {
        Terminal {
            name: holder.name,
            organisation: holder.organisation,
        }
    }
}

/// The lookup service over the replica's store.
pub struct LookupService {
    store: Arc<Store>,
    config: Arc<Config>,
    lookups: LookupConfig,
    clock: Arc<dyn Clock>,
    journal: Journal,
    matcher: Mutex<MatcherCache>,
    held: std::sync::Mutex<Option<Arc<Held>>>,
    limiter: std::sync::Mutex<RateLimiter>,
    watch: std::sync::Mutex<PatternWatch>,
}

impl std::fmt::Debug for LookupService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LookupService")
            .field("site", &self.config.site)
            .finish_non_exhaustive()
    }
}

fn internal(e: impl std::fmt::Display) -> Status {
    tracing::error!(error = %e, "lookup failed");
    Status::internal(
        "the lookup could not be completed; nothing was answered. Try again, or call the Emergency Duty Team",
    )
}

/// "Amelia Evans, born 2019-04-23": what was searched, for the record and the enquirer.
fn describe(query: &pb::ChildQuery) -> String {
    let mut parts = Vec::new();
    let name = format!("{} {}", query.given_names.trim(), query.surname.trim())
        .trim()
        .to_owned();
    if !name.is_empty() {
        parts.push(name);
    }
    if !query.date_of_birth.is_empty() {
        parts.push(format!("born {}", query.date_of_birth));
    }
    if !query.nhs_number.is_empty() {
        parts.push(format!("NHS number {}", query.nhs_number));
    }
    if !query.postcode.is_empty() {
        parts.push(format!("postcode {}", query.postcode));
    }
    if !query.mother_surname.is_empty() {
        parts.push(format!(
            "unborn child of {} {}",
            query.mother_given_names, query.mother_surname
        ));
    }
    parts.join(", ")
}

/// The matcher's query from a checked one.
fn to_query(child: &pb::ChildQuery, criteria: &Criteria) -> Query {
    let date = |s: &str| cpreg_proto::ident::optional_date("date", s).ok().flatten();
    let mut query = Query {
        given: child.given_names.trim_end_matches('*').to_owned(),
        surname: child.surname.trim_end_matches('*').to_owned(),
        dob: date(&child.date_of_birth),
        nhs: cpreg_proto::ident::nhs_number(&child.nhs_number).ok(),
        postcode: cpreg_proto::ident::postcode(&child.postcode).ok(),
        gender: pb::Gender::try_from(child.gender)
            .ok()
            .filter(|g| *g != pb::Gender::Unspecified),
        ..Query::default()
    };
    if let Criteria::Unborn {
        mother_given,
        mother_surname,
        mother_date_of_birth,
        ..
    } = criteria
    {
        query.mother = Some(MotherQuery {
            given: mother_given.clone(),
            surname: mother_surname.clone(),
            dob: *mother_date_of_birth,
            nhs: None,
        });
    }
    query
}

impl LookupService {
    pub fn new(
        store: Arc<Store>,
        config: Arc<Config>,
        lookups: LookupConfig,
        clock: Arc<dyn Clock>,
    ) -> Self {
        LookupService {
            journal: Journal::start(store.clone()),
            store,
            config,
            lookups,
            clock,
            matcher: Mutex::new(MatcherCache::default()),
            held: std::sync::Mutex::new(None),
            limiter: std::sync::Mutex::new(RateLimiter::default()),
            watch: std::sync::Mutex::new(PatternWatch::default()),
        }
    }

    fn authorities(&self) -> Vec<String> {
        self.config
            .authorities
            .iter()
            .map(|a| a.id.clone())
            .collect()
    }

    /// A terminal of one of the authorities this replica follows, at this site.
    fn terminal<T>(&self, request: &Request<T>) -> Result<CertificateHolder, Status> {
        let leaf = request
            .peer_certs()
            .and_then(|certs| certs.first().cloned())
            .ok_or_else(|| Status::unauthenticated("a terminal certificate is required"))?;
        let holder =
            CertificateHolder::from_der(leaf.as_ref()).map_err(Status::permission_denied)?;
        if holder.role != Role::Terminal {
            return Err(Status::permission_denied(format!(
                "lookups need a terminal certificate; this one is for {}",
                holder.role
            )));
        }
        if holder.site.as_deref() != Some(self.config.site.as_str()) {
            return Err(Status::permission_denied(format!(
                "this terminal belongs to site {:?}, not {:?}",
                holder.site.unwrap_or_default(),
                self.config.site
            )));
        }
        if !self.authorities().contains(&holder.authority) {
            return Err(Status::permission_denied(format!(
                "authority {:?} is not one this replica follows",
                holder.authority
            )));
        }
        Ok(holder)
    }

    /// What is held now, read again only when the store has changed since it was last read.
    fn held(&self) -> Result<Arc<Held>, Status> {
        // Read before what it labels: a copy read after it is at least as new.
        let changes = self.store.changes();
        if let Some(held) = self
            .held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .filter(|held| held.changes == changes)
        {
            return Ok(held.clone());
        }
        let mut states = Vec::new();
        let mut numbers = BTreeMap::new();
        for authority in self.authorities() {
            let state = self.store.trusted_state(&authority).map_err(internal)?;
            let info = answer::authority_info(&self.store, &authority).map_err(internal)?;
            numbers.insert(authority.clone(), info);
            states.push((authority, state));
        }
        let held = Arc::new(Held {
            changes,
            states,
            numbers: Arc::new(numbers),
            organisations: std::sync::Mutex::new(HashMap::new()),
        });
        *self.held.lock().unwrap_or_else(|p| p.into_inner()) = Some(held.clone());
        Ok(held)
    }

    /// The organisation from the signed directory of any authority followed.
    fn organisation(&self, id: &str) -> Result<Option<pb::Organisation>, Status> {
        let held = self.held()?;
        let mut known = held.organisations.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(organisation) = known.get(id) {
            return Ok(Some(organisation.clone()));
        }
        for authority in self.authorities() {
            if let Some(bytes) = self
                .store
                .get(&authority, &format!("{ORGANISATION_PREFIX}{id}"))
                .map_err(internal)?
            {
                let organisation = pb::Organisation::decode(bytes.as_slice()).ok();
                if let Some(found) = &organisation {
                    known.insert(id.to_owned(), found.clone());
                }
                return Ok(organisation);
            }
        }
        Ok(None)
    }

    /// Where the copies held stand now: the as-of time every answer carries, and staleness.
    pub fn freshness(&self) -> Result<Freshness, Status> {
        let now = self.clock.now();
        let mut as_of: Option<DateTime<Utc>> = None;
        let mut stale = false;
        let mut held_any = true;
        let copies = self.held()?;
        for (authority, held) in &copies.states {
            let view = HeldVersion::new(authority, held, now, self.config.staleness_threshold());
            stale |= view.stale;
            match view.as_of {
                Some(t) => as_of = Some(as_of.map_or(t, |a| a.min(t))),
                None => held_any = false,
            }
        }
        Ok(Freshness {
            as_of: as_of.filter(|_| held_any),
            stale,
            authorities: self.authorities(),
            site: self.config.site.clone(),
            numbers: copies.numbers.clone(),
        })
    }

    /// The matcher over the versions held now.
    async fn matcher(&self) -> Result<Arc<Matcher>, Status> {
        let versions: Vec<(String, u64)> = self
            .held()?
            .states
            .iter()
            .map(|(authority, held)| (authority.clone(), held.version))
            .collect();
        let mut cache = self.matcher.lock().await;
        if cache.versions != versions || cache.matcher.is_none() {
            let (store, authorities) = (self.store.clone(), self.authorities());
            let matcher =
                tokio::task::spawn_blocking(move || Matcher::from_store(&store, &authorities))
                    .await
                    .map_err(internal)?
                    .map_err(internal)?;
            cache.matcher = Some(Arc::new(matcher));
            cache.versions = versions;
        }
        cache.matcher.clone().ok_or_else(|| internal("no matcher"))
    }

    /// Writes an enquiry (and its outbox entry) before anything is answered.
    async fn record(&self, enquiry: Enquiry) -> Result<Enquiry, Status> {
        self.journal.record(enquiry).await.map_err(internal)
    }

    async fn update(
        &self,
        reference: &str,
        state: EnquiryState,
    ) -> Result<Option<Enquiry>, Status> {
        let (store, reference, at) = (self.store.clone(), reference.to_owned(), self.clock.now());
        tokio::task::spawn_blocking(move || store.update_enquiry(&reference, state, at))
            .await
            .map_err(internal)?
            .map_err(internal)
    }

    fn enquiry(
        &self,
        path: EnquiryPath,
        reason: &str,
        query: &pb::ChildQuery,
        state: EnquiryState,
    ) -> Enquiry {
        Enquiry {
            reference: String::new(),
            at: self.clock.now(),
            site: self.config.site.clone(),
            path,
            reason: reason.trim().to_owned(),
            searched: serde_json::to_value(query).unwrap_or_default(),
            query: hex::encode(query.encode_to_vec()),
            state,
            alert: None,
            history: Vec::new(),
        }
    }

    /// Notes a lookup by `asker` and returns its alert, if any: a run of misses by the operator
    /// or at the terminal, many operator names at the terminal, or a sweep that `refusal` (the
    /// lookup's refusal, if it was refused) carries from [`Self::admit`].
    fn watch(
        &self,
        asker: limits::Asker<'_>,
        missed: bool,
        refusal: Option<&Status>,
    ) -> Option<String> {
        let noted = self.watch.lock().unwrap_or_else(|p| p.into_inner()).note(
            asker,
            missed,
            self.clock.now(),
        );
        limits::joined([refusal.and_then(limits::Alert::carried_by), noted])
    }

    /// Refuses with `status`, after recording the refusal.
    async fn refuse(
        &self,
        asker: limits::Asker<'_>,
        path: EnquiryPath,
        reason: &str,
        query: &pb::ChildQuery,
        status: Status,
    ) -> Status {
        let refused = EnquiryState::Refused {
            why: status.message().to_owned(),
        };
        let mut enquiry = self.enquiry(path, reason, query, refused);
        enquiry.alert = self.watch(asker, true, Some(&status));
        match self.record(enquiry).await {
            Ok(recorded) => Status::new(
                status.code(),
                format!(
                    "{} (enquiry {} recorded)",
                    status.message(),
                    recorded.reference
                ),
            ),
            Err(e) => e,
        }
    }

    /// Runs the search and builds the answer (not yet recorded).
    async fn search(
        &self,
        query: &pb::ChildQuery,
        criteria: &Criteria,
    ) -> Result<(pb::LookupAnswer, Vec<String>, Vec<String>), Status> {
        // Where the copies stood before the matcher is taken: a version applied in between
        // makes the answer's as-of time older than what was searched, never newer.
        let freshness = self.freshness()?;
        let matcher = self.matcher().await?;
        // Matching is CPU work, but short (66 µs on average over 100,000 children, 0.25 ms at
        // p99: `cpreg-bench lookup`, `matching_alone`): run here, it costs less than handing
        // it to a blocking thread and back, two context switches per lookup.
        let candidates = matcher.find(&to_query(query, criteria));
        let answer = answer::build(
            &self.store,
            "",
            &describe(query),
            &candidates,
            &freshness,
            self.clock.now(),
        )
        .map_err(internal)?;
        let ids = candidates
            .iter()
            .map(|c| c.child.record_id.clone())
            .collect();
        let authorities = candidates.iter().map(|c| c.authority.clone()).collect();
        Ok((answer, ids, authorities))
    }

    /// Lets a lookup by `asker` about `child` go ahead, or refuses it: it makes or continues a
    /// sweep at the terminal (the refusal then carries the sweep's alert for [`Self::watch`]),
    /// or the operator, the terminal or the site has made its lookups for the hour.
    fn admit(&self, asker: limits::Asker<'_>, child: &pb::ChildQuery) -> Result<(), Status> {
        let now = self.clock.now();
        let swept = self.watch.lock().unwrap_or_else(|p| p.into_inner()).sweep(
            asker,
            child,
            self.lookups.sweep_hold(),
            now,
        );
        if let Err(swept) = swept {
            let mut status = Status::resource_exhausted(swept.message());
            if let Some(alert) = swept.alert(asker.terminal) {
                status.set_source(Arc::new(limits::Alert(alert)));
            }
            return Err(status);
        }
        let operator_key = format!("operator:{}/{}", asker.terminal, asker.operator);
        let terminal_key = format!("terminal:{}", asker.terminal);
        let keys = [
            (operator_key.as_str(), self.lookups.rate_limit_per_hour),
            (
                terminal_key.as_str(),
                self.lookups.terminal_rate_limit_per_hour,
            ),
            ("site", self.lookups.site_rate_limit_per_hour),
        ];
        let mut limiter = self.limiter.lock().unwrap_or_else(|p| p.into_inner());
        limiter.admit(&keys, now).map_err(|limited| {
            let whose = if limited.key == "site" {
                "this site"
            } else if limited.key == terminal_key {
                "this terminal, whatever operator name is given"
            } else {
                "each operator"
            };
            Status::resource_exhausted(format!(
                "{} lookups an hour is the limit for {whose}; the next is possible after {}. For an emergency call the Emergency Duty Team",
                limited.limit,
                limited.retry_after.format("%H:%M UTC")
            ))
        })
    }
}

/// The outcome as DESIGN section 9 spells it in JSON (`match`, `possible`, `no_record`).
fn outcome_word(answer: &pb::LookupAnswer) -> String {
    pb::LookupOutcome::try_from(answer.outcome)
        .map(|o| {
            o.as_str_name()
                .trim_start_matches("LOOKUP_OUTCOME_")
                .to_ascii_lowercase()
        })
        .unwrap_or_default()
}

fn required(field: &str, value: &str) -> Result<(), Status> {
    if value.trim().is_empty() {
        Err(Status::invalid_argument(format!("{field} is required")))
    } else {
        Ok(())
    }
}

#[tonic::async_trait]
impl Lookup for LookupService {
    async fn lookup(
        &self,
        request: Request<pb::LookupRequest>,
    ) -> Result<Response<pb::LookupAnswer>, Status> {
        let holder = self.terminal(&request)?;
        self.lookup_for(&holder.into(), request.into_inner())
            .await
            .map(Response::new)
    }

    async fn open_enquiry(
        &self,
        request: Request<pb::OpenEnquiryRequest>,
    ) -> Result<Response<pb::CallbackTicket>, Status> {
        let holder = self.terminal(&request)?;
        self.open_enquiry_for(&holder.into(), request.into_inner())
            .await
            .map(Response::new)
    }

    async fn record_callback(
        &self,
        request: Request<pb::RecordCallbackRequest>,
    ) -> Result<Response<pb::LookupAnswer>, Status> {
        self.terminal(&request)?;
        self.record_callback_for(request.into_inner())
            .await
            .map(Response::new)
    }
}

impl LookupService {
    /// A direct lookup by an authenticated terminal (DESIGN section 5, first way in): checked,
    /// limited, searched, and recorded before the answer is returned.
    pub async fn lookup_for(
        &self,
        holder: &Terminal,
        req: pb::LookupRequest,
    ) -> Result<pb::LookupAnswer, Status> {
        let (req, too_long) = fields::clip_lookup(req);
        let child = req.child.clone().unwrap_or_default();
        let asker = limits::Asker {
            terminal: &holder.name,
            operator: req.operator_name.trim(),
        };
        let path = EnquiryPath::Terminal {
            terminal: holder.name.clone(),
            organisation: holder.organisation.clone().unwrap_or_default(),
            operator: req.operator_name.trim().to_owned(),
            operator_role: req.operator_role.trim().to_owned(),
        };
        // The terminal must belong to an organisation of the signed directory at this site.
        let listed = match holder.organisation.as_deref() {
            Some(id) => self
                .organisation(id)?
                .filter(|o| o.site == self.config.site),
            None => None,
        };
        if listed.is_none() {
            let status = Status::permission_denied(format!(
                "this terminal's organisation {:?} is not in the directory at site {:?}: ask the Safeguarding Unit to list it",
                holder.organisation.clone().unwrap_or_default(),
                self.config.site
            ));
            return Err(self.refuse(asker, path, &req.reason, &child, status).await);
        }
        let checked = too_long
            .map_or(Ok(()), Err)
            .and(required("operator_name", &req.operator_name))
            .and(required("operator_role", &req.operator_role))
            .and(required(
                "reason (the cause to suspect significant harm)",
                &req.reason,
            ))
            .and_then(|()| {
                criteria::check(&child, self.clock.now().date_naive())
                    .map_err(|e| Status::invalid_argument(e.0))
            })
            .and_then(|criteria| self.admit(asker, &child).map(|()| criteria));
        let criteria = match checked {
            Ok(criteria) => criteria,
            Err(status) => {
                return Err(self.refuse(asker, path, &req.reason, &child, status).await);
            }
        };
        let (mut answer, record_ids, authorities) = self.search(&child, &criteria).await?;
        let state = EnquiryState::Answered {
            outcome: outcome_word(&answer),
            record_ids,
            authorities,
            advice: answer.advice.clone(),
        };
        let mut enquiry = self.enquiry(path, &req.reason, &child, state);
        let missed = answer.outcome == i32::from(pb::LookupOutcome::NoRecord);
        enquiry.alert = self.watch(asker, missed, None);
        let recorded = self.record(enquiry).await?;
        answer.enquiry_reference = recorded.reference;
        Ok(answer)
    }

    /// A phone enquiry taken by a duty worker at an authenticated terminal (DESIGN section 5,
    /// call-back): recorded with the directory's number to ring, nothing answered yet.
    pub async fn open_enquiry_for(
        &self,
        holder: &Terminal,
        req: pb::OpenEnquiryRequest,
    ) -> Result<pb::CallbackTicket, Status> {
        let (req, too_long) = fields::clip_enquiry(req);
        let child = req.child.clone().unwrap_or_default();
        let asker = limits::Asker {
            terminal: &holder.name,
            operator: req.duty_worker.trim(),
        };
        let organisation = self.organisation(req.organisation_id.trim())?;
        let path = EnquiryPath::Callback {
            duty_worker: if req.duty_worker.trim().is_empty() {
                holder.name.clone()
            } else {
                req.duty_worker.trim().to_owned()
            },
            enquirer: req.enquirer_name.trim().to_owned(),
            enquirer_role: req.enquirer_role.trim().to_owned(),
            organisation_id: req.organisation_id.trim().to_owned(),
            number_given: req.number_given.trim().to_owned(),
            callback_number: organisation
                .as_ref()
                .map(|o| o.callback_number.clone())
                .unwrap_or_default(),
        };
        let checked = too_long
            .map_or(Ok(()), Err)
            .and(required("enquirer_name", &req.enquirer_name))
            .and(required("enquirer_role", &req.enquirer_role))
            .and(required("reason (the cause to suspect significant harm)", &req.reason))
            .and_then(|()| match &organisation {
                Some(_) => Ok(()),
                None => Err(Status::not_found(format!(
                    "organisation {:?} is not in the directory: choose the enquirer's organisation from the directory, or refuse the enquiry",
                    req.organisation_id
                ))),
            })
            .and_then(|()| criteria::check(&child, self.clock.now().date_naive()).map_err(|e| Status::invalid_argument(e.0)))
            .and_then(|_| self.admit(asker, &child));
        if let Err(status) = checked {
            return Err(self.refuse(asker, path, &req.reason, &child, status).await);
        }
        let organisation = organisation.unwrap_or_default();
        let expires_at = self.clock.now()
            + chrono::Duration::minutes(self.lookups.callback_ticket_minutes as i64);
        let mut enquiry = self.enquiry(
            path,
            &req.reason,
            &child,
            EnquiryState::AwaitingCallback { expires_at },
        );
        enquiry.alert = self.watch(asker, false, None);
        let recorded = self.record(enquiry).await?;
        Ok(pb::CallbackTicket {
            enquiry_reference: recorded.reference,
            organisation_name: organisation.name,
            callback_number: organisation.callback_number,
            expires_at: expires_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        })
    }

    /// The duty worker's call-back to the directory's number: only `confirmed` releases the
    /// answer; anything else, or a ticket past its time, is recorded and releases nothing.
    pub async fn record_callback_for(
        &self,
        req: pb::RecordCallbackRequest,
    ) -> Result<pb::LookupAnswer, Status> {
        let reference = req.enquiry_reference.trim().to_owned();
        let enquiry = {
            let store = self.store.clone();
            let reference = reference.clone();
            tokio::task::spawn_blocking(move || store.enquiry(&reference))
                .await
                .map_err(internal)?
                .map_err(internal)?
        }
        .ok_or_else(|| {
            Status::not_found(format!(
                "no enquiry {reference:?} at this site: check the reference on the ticket"
            ))
        })?;
        let EnquiryState::AwaitingCallback { expires_at } = enquiry.state else {
            return Err(Status::failed_precondition(format!(
                "enquiry {reference} is not waiting for a call-back"
            )));
        };
        let now = self.clock.now();
        if now > expires_at {
            self.update(
                &reference,
                EnquiryState::CallbackFailed {
                    outcome: "expired".into(),
                    at: now,
                },
            )
            .await?;
            return Err(Status::failed_precondition(format!(
                "the call-back ticket {reference} expired at {}: nothing is released; open a new enquiry",
                expires_at.format("%H:%M UTC")
            )));
        }
        let outcome =
            pb::CallbackOutcome::try_from(req.outcome).unwrap_or(pb::CallbackOutcome::Unspecified);
        if outcome != pb::CallbackOutcome::Confirmed {
            let word = match outcome {
                pb::CallbackOutcome::NoAnswer => "no-answer",
                pb::CallbackOutcome::NotConfirmed => "not-confirmed",
                pb::CallbackOutcome::Abandoned => "abandoned",
                _ => {
                    return Err(Status::invalid_argument(
                        "outcome is required: confirmed, no-answer, not-confirmed or abandoned",
                    ));
                }
            };
            self.update(
                &reference,
                EnquiryState::CallbackFailed {
                    outcome: word.into(),
                    at: now,
                },
            )
            .await?;
            return Err(Status::failed_precondition(format!(
                "call-back {word}: nothing is released, and the enquiry {reference} is recorded as such"
            )));
        }
        let child = hex::decode(&enquiry.query)
            .ok()
            .and_then(|bytes| pb::ChildQuery::decode(bytes.as_slice()).ok())
            .ok_or_else(|| internal(format!("enquiry {reference} holds no query")))?;
        let criteria =
            criteria::check(&child, now.date_naive()).map_err(|e| Status::invalid_argument(e.0))?;
        let (mut answer, record_ids, authorities) = self.search(&child, &criteria).await?;
        let state = EnquiryState::Answered {
            outcome: outcome_word(&answer),
            record_ids,
            authorities,
            advice: answer.advice.clone(),
        };
        self.update(&reference, state).await?;
        answer.enquiry_reference = reference;
        Ok(answer)
    }
}
