//! The notification outbox (DESIGN section 6): what the primary has to tell people, kept until
//! every sink has taken it. A notification is queued inside the write transaction of whatever
//! caused it, so a crash keeps both or neither; [`crate::notify`] delivers it and marks each sink
//! separately. Delivery state changes nothing in the register, so it is not audited.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use redb::{ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use super::{Store, StoreError, decode, encode};

/// Every notification ever queued, by id, with its delivery state.
const NOTIFICATIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("notifications");
/// What the webhook still owes, by notification id: unix milliseconds of the next attempt (0 for
/// at once). One table per sink keeps each delivery pass to what is owed, however long the
/// history grows.
const OWED_WEBHOOK: TableDefinition<&str, i64> = TableDefinition::new("notifications_owed_webhook");
/// What the e-mail sink still owes, as [`OWED_WEBHOOK`].
const OWED_EMAIL: TableDefinition<&str, i64> = TableDefinition::new("notifications_owed_email");
/// The sinks the primary delivers to, as of its last start: what the backlog is counted against.
const SINKS: TableDefinition<&str, &[u8]> = TableDefinition::new("notification_sinks");

/// Longest notification id: it travels as a header (`Idempotency-Key`, `X-Cpreg-Notification`).
const MAX_ID_LEN: usize = 200;
/// Longest error kept per sink; a TLS or SMTP error chain can run long.
const MAX_ERROR_LEN: usize = 1000;

/// Where a notification goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sink {
    /// An HTTPS POST of the notification as JSON to the authority's integration.
    Webhook,
    /// An e-mail over SMTP to the people it names, or the duty inbox.
    Email,
}

impl Sink {
    pub const ALL: [Sink; 2] = [Sink::Webhook, Sink::Email];

    pub fn as_str(self) -> &'static str {
        match self {
            Sink::Webhook => "webhook",
            Sink::Email => "email",
        }
    }

    fn owed(self) -> TableDefinition<'static, &'static str, i64> {
        match self {
            Sink::Webhook => OWED_WEBHOOK,
            Sink::Email => OWED_EMAIL,
        }
    }
}

impl std::fmt::Display for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How far one sink has got with one notification.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SinkDelivery {
    /// When the sink took it; set once and never changed.
    pub delivered_at: Option<DateTime<Utc>>,
    /// Attempts so far, the successful one included.
    pub attempts: u32,
    /// No attempt before this; `None` for at once.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The latest failure, kept after delivery for the record.
    pub last_error: Option<String>,
}

impl SinkDelivery {
    pub fn is_delivered(&self) -> bool {
        self.delivered_at.is_some()
    }
}

/// One thing to tell someone: a lead social worker of an enquiry, the custodian of an alert.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// Stable and unique, given by the code that queues it ("enquiry:<ref>:lsw:<record id>"), so
    /// queuing the same thing twice keeps one. It is the webhook's idempotency key.
    pub id: String,
    /// What happened: "enquiry.lead_social_worker", "contact.created", "alert.second_enquiry",
    /// "alert.same_address", "alert.custodian".
    pub kind: String,
    pub created_at: DateTime<Utc>,
    /// E-mail recipients; none means the duty inbox.
    pub to: Vec<String>,
    pub subject: String,
    /// Plain text a social worker reads.
    pub body: String,
    /// What the webhook gets besides the text, for systems to act on.
    pub payload: serde_json::Value,
    #[serde(default)]
    pub webhook: SinkDelivery,
    #[serde(default)]
    pub email: SinkDelivery,
}

impl Notification {
    /// A notification with nobody named yet (so the duty inbox) and nothing delivered.
    pub fn new(
        id: impl Into<String>,
        kind: impl Into<String>,
        created_at: DateTime<Utc>,
        subject: impl Into<String>,
        body: impl Into<String>,
    ) -> Notification {
        Notification {
            id: id.into(),
            kind: kind.into(),
            created_at,
            subject: subject.into(),
            body: body.into(),
            ..Notification::default()
        }
    }

    pub fn delivery(&self, sink: Sink) -> &SinkDelivery {
        match sink {
            Sink::Webhook => &self.webhook,
            Sink::Email => &self.email,
        }
    }

    fn delivery_mut(&mut self, sink: Sink) -> &mut SinkDelivery {
        match sink {
            Sink::Webhook => &mut self.webhook,
            Sink::Email => &mut self.email,
        }
    }
}

/// Which notifications [`Store::notifications`] lists.
#[derive(Debug, Clone, Default)]
pub struct NotificationFilter {
    /// Only this kind.
    pub kind: Option<String>,
    /// Only ids that start with this ("enquiry:ENQ-1:").
    pub id_prefix: Option<String>,
    /// Only those a delivering sink still owes (see [`Store::notification_backlog`]).
    pub undelivered: bool,
}

/// Queues `notification` inside the caller's write transaction, so it commits (or not) with what
/// caused it; its delivery state starts empty whatever it holds. An id already queued is left as
/// it is and `false` returned. After the commit, call [`Store::announce_notifications`] so
/// delivery starts at once rather than at its next poll.
pub(crate) fn queue_notification(
    txn: &WriteTransaction,
    notification: &Notification,
) -> Result<bool, StoreError> {
    check_id(&notification.id)?;
    let mut table = txn.open_table(NOTIFICATIONS)?;
    if table.get(notification.id.as_str())?.is_some() {
        return Ok(false);
    }
    let fresh = Notification {
        webhook: SinkDelivery::default(),
        email: SinkDelivery::default(),
        ..notification.clone()
    };
    table.insert(fresh.id.as_str(), encode(&fresh)?.as_slice())?;
    for sink in Sink::ALL {
        txn.open_table(sink.owed())?.insert(fresh.id.as_str(), 0)?;
    }
    Ok(true)
}

fn check_id(id: &str) -> Result<(), StoreError> {
    if id.is_empty() || id.len() > MAX_ID_LEN || !id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(StoreError::Invalid(format!(
            "notification id {id:?} must be 1 to {MAX_ID_LEN} printable ASCII characters without spaces: it travels as a header"
        )));
    }
    Ok(())
}

/// A table that may not exist yet: the outbox's tables are made by the first write to them.
fn open_existing<V: redb::Value + 'static>(
    txn: &ReadTransaction,
    table: TableDefinition<&'static str, V>,
) -> Result<Option<redb::ReadOnlyTable<&'static str, V>>, StoreError> {
    match txn.open_table(table) {
        Ok(table) => Ok(Some(table)),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

/// Delivery tasks waiting for news of their store, by the store's address. A task holds its
/// store, so while its `Notify` lives that address cannot belong to another store.
impl Store {
    /// Queues notifications in a transaction of their own, wakes delivery, and returns how many
    /// were new: for tools and tests. The register's own notifications are queued with what
    /// caused them, by [`queue_notification`].
    pub fn queue_notifications(
        &self,
        notifications: Vec<Notification>,
    ) -> Result<usize, StoreError> {
        let txn = self.db.begin_write()?;
        let mut queued = 0;
        for notification in &notifications {
            queued += usize::from(queue_notification(&txn, notification)?);
        }
        txn.commit()?;
        if queued > 0 {
            self.announce_notifications();
        }
        Ok(queued)
    }

    pub fn notification(&self, id: &str) -> Result<Option<Notification>, StoreError> {
        let txn = self.db.begin_read()?;
        let Some(table) = open_existing(&txn, NOTIFICATIONS)? else {
            return Ok(None);
        };
        table.get(id)?.map(|v| decode(v.value())).transpose()
    }

    /// Notifications newest first, at most `limit` of them (0 for all).
    pub fn notifications(
        &self,
        filter: &NotificationFilter,
        limit: usize,
    ) -> Result<Vec<Notification>, StoreError> {
        let txn = self.db.begin_read()?;
        let Some(table) = open_existing(&txn, NOTIFICATIONS)? else {
            return Ok(Vec::new());
        };
        let owed = if filter.undelivered {
            Some(self.owed_ids(&txn)?)
        } else {
            None
        };
        let mut all = Vec::new();
        for row in table.iter()? {
            let (id, value) = row?;
            if filter
                .id_prefix
                .as_deref()
                .is_some_and(|p| !id.value().starts_with(p))
                || owed.as_ref().is_some_and(|o| !o.contains(id.value()))
            {
                continue;
            }
            let notification: Notification = decode(value.value())?;
            if filter.kind.as_ref().is_none_or(|k| *k == notification.kind) {
                all.push(notification);
            }
        }
        all.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        if limit > 0 {
            all.truncate(limit);
        }
        Ok(all)
    }

    /// How many notifications a sink still owes: counted against the sinks the primary delivers
    /// to as of its last start (see [`Store::record_notification_sinks`]), or every sink when it
    /// delivers to none, since those then wait for one to be configured.
    pub fn notification_backlog(&self) -> Result<u64, StoreError> {
        let txn = self.db.begin_read()?;
        Ok(self.owed_ids(&txn)?.len() as u64)
    }

    fn owed_ids(
        &self,
        txn: &ReadTransaction,
    ) -> Result<std::collections::BTreeSet<String>, StoreError> {
        let mut sinks = self.notification_sinks_in(txn)?;
        if sinks.is_empty() {
            sinks = Sink::ALL.to_vec();
        }
        let mut ids = std::collections::BTreeSet::new();
        for sink in sinks {
            if let Some(owed) = open_existing(txn, sink.owed())? {
                for row in owed.iter()? {
                    ids.insert(row?.0.value().to_owned());
                }
            }
        }
        Ok(ids)
    }

    /// Records the sinks the primary delivers to, which the backlog is counted against. The
    /// delivery task records them as it starts.
    pub fn record_notification_sinks(&self, sinks: &[Sink]) -> Result<(), StoreError> {
        let txn = self.db.begin_write()?;
        txn.open_table(SINKS)?
            .insert("sinks", encode(&sinks)?.as_slice())?;
        txn.commit()?;
        Ok(())
    }

    /// The sinks recorded by [`Store::record_notification_sinks`]; none before the first start.
    pub fn notification_sinks(&self) -> Result<Vec<Sink>, StoreError> {
        self.notification_sinks_in(&self.db.begin_read()?)
    }

    fn notification_sinks_in(&self, txn: &ReadTransaction) -> Result<Vec<Sink>, StoreError> {
        let Some(table) = open_existing(txn, SINKS)? else {
            return Ok(Vec::new());
        };
        table
            .get("sinks")?
            .map(|v| decode(v.value()))
            .transpose()
            .map(Option::unwrap_or_default)
    }

    /// What `sink` owes and may try now, oldest first, at most `limit` of them.
    pub fn due_notifications(
        &self,
        sink: Sink,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Notification>, StoreError> {
        let txn = self.db.begin_read()?;
        let (Some(owed), Some(table)) = (
            open_existing(&txn, sink.owed())?,
            open_existing(&txn, NOTIFICATIONS)?,
        ) else {
            return Ok(Vec::new());
        };
        let now = millis(now);
        let mut due = Vec::new();
        for row in owed.iter()? {
            let (id, next) = row?;
            if next.value() <= now
                && let Some(value) = table.get(id.value())?
            {
                due.push(decode::<Notification>(value.value())?);
            }
        }
        due.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        due.truncate(limit);
        Ok(due)
    }

    /// When `sink` next has something to try: `None` when it owes nothing.
    pub fn next_notification_attempt(
        &self,
        sink: Sink,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let txn = self.db.begin_read()?;
        let Some(owed) = open_existing(&txn, sink.owed())? else {
            return Ok(None);
        };
        let mut earliest: Option<i64> = None;
        for row in owed.iter()? {
            let next = row?.1.value();
            earliest = Some(earliest.map_or(next, |e| e.min(next)));
        }
        Ok(earliest.and_then(DateTime::from_timestamp_millis))
    }

    /// Records that `sink` took notification `id` at `at`. Returns false when there is no such
    /// notification or the sink had already taken it (the first delivery time stays).
    pub fn notification_delivered(
        &self,
        id: &str,
        sink: Sink,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.update_delivery(id, sink, |delivery| {
            delivery.delivered_at = Some(at);
            delivery.next_attempt_at = None;
            None
        })
    }

    /// Records a failed attempt of `sink` at notification `id` and when to try again. Returns
    /// false when there is no such notification or the sink had already taken it.
    pub fn notification_failed(
        &self,
        id: &str,
        sink: Sink,
        error: &str,
        next_attempt_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut error = error.to_owned();
        if error.len() > MAX_ERROR_LEN {
            let mut end = MAX_ERROR_LEN;
            while !error.is_char_boundary(end) {
                end -= 1;
            }
            error.truncate(end);
        }
        self.update_delivery(id, sink, |delivery| {
            delivery.last_error = Some(error);
            delivery.next_attempt_at = Some(next_attempt_at);
            Some(millis(next_attempt_at))
        })
    }

    /// Counts an attempt of `sink` at `id` and applies `change`, which says when the sink owes it
    /// next (`None`: no longer owed).
    fn update_delivery(
        &self,
        id: &str,
        sink: Sink,
        change: impl FnOnce(&mut SinkDelivery) -> Option<i64>,
    ) -> Result<bool, StoreError> {
        let txn = self.db.begin_write()?;
        let changed = {
            let mut table = txn.open_table(NOTIFICATIONS)?;
            let held: Option<Notification> =
                table.get(id)?.map(|v| decode(v.value())).transpose()?;
            match held {
                Some(mut notification) if !notification.delivery(sink).is_delivered() => {
                    let delivery = notification.delivery_mut(sink);
                    delivery.attempts += 1;
                    let mut owed = txn.open_table(sink.owed())?;
                    match change(delivery) {
                        Some(next) => owed.insert(id, next)?,
                        None => owed.remove(id)?,
                    };
                    table.insert(id, encode(&notification)?.as_slice())?;
                    true
                }
                _ => false,
            }
        };
        if changed {
            txn.commit()?;
        } else {
            txn.abort()?;
        }
        Ok(changed)
    }

    /// A `Notify` that [`Store::announce_notifications`] pokes, for a delivery task to wait on.
    pub fn notification_waker(&self) -> Arc<Notify> {
        let notify = Arc::new(Notify::new());
        let mut waiting = self
            .delivery_wakers
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        waiting.retain(|w| w.strong_count() > 0);
        waiting.push(Arc::downgrade(&notify));
        notify
    }

    /// Wakes this store's delivery tasks: call it after committing a transaction that queued a
    /// notification. Without it delivery still comes, at its next poll.
    pub fn announce_notifications(&self) {
        let waiting = self
            .delivery_wakers
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        for notify in waiting.iter().filter_map(std::sync::Weak::upgrade) {
            notify.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::TimeZone;
    use ed25519_dalek::SigningKey;

    use super::*;
    use crate::clock::SystemClock;

    fn open(dir: &tempfile::TempDir) -> Store {
        Store::open(
            &dir.path().join("register.redb"),
            "lambeth",
            SigningKey::from_bytes(&[1; 32]),
            Arc::new(SystemClock),
        )
        .expect("open")
    }

    fn at(minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 22, 12, minute, 0)
            .single()
            .expect("time")
    }

    fn note(id: &str, minute: u32) -> Notification {
        Notification {
            to: vec!["sam.okafor@lambeth.example".into()],
            payload: serde_json::json!({ "record_id": "R1" }),
            ..Notification::new(
                id,
                "enquiry.lead_social_worker",
                at(minute),
                "Enquiry about Ada Moss",
                "An A&E nurse asked about Ada Moss.",
            )
        }
    }

    #[test]
    fn a_notification_commits_with_its_cause_and_an_id_is_queued_once() {
        let dir = tempfile::tempdir().expect("folder");
        let store = open(&dir);
        let txn = store.db.begin_write().expect("txn");
        assert!(queue_notification(&txn, &note("enquiry:E1:lsw:R1", 0)).expect("queued"));
        txn.abort().expect("abort");
        assert_eq!(store.notification("enquiry:E1:lsw:R1").expect("read"), None);
        assert_eq!(store.notification_backlog().expect("backlog"), 0);

        let txn = store.db.begin_write().expect("txn");
        assert!(queue_notification(&txn, &note("enquiry:E1:lsw:R1", 0)).expect("queued"));
        txn.commit().expect("commit");
        let mut changed = note("enquiry:E1:lsw:R1", 5);
        changed.subject = "Something else".into();
        changed.webhook.delivered_at = Some(at(5));
        assert_eq!(store.queue_notifications(vec![changed]).expect("queue"), 0);
        let held = store
            .notification("enquiry:E1:lsw:R1")
            .expect("read")
            .expect("held");
        assert_eq!(held, note("enquiry:E1:lsw:R1", 0), "left untouched");
        assert_eq!(store.notification_backlog().expect("backlog"), 1);
    }

    #[test]
    fn an_id_that_cannot_travel_as_a_header_is_refused() {
        let dir = tempfile::tempdir().expect("folder");
        let store = open(&dir);
        for id in ["", "enquiry E1", "enquiry:É1", &"x".repeat(201)] {
            let err = store
                .queue_notifications(vec![note(id, 0)])
                .expect_err("refused");
            assert!(err.to_string().contains("printable ASCII"), "{err}");
        }
        assert!(
            store
                .notifications(&NotificationFilter::default(), 0)
                .expect("list")
                .is_empty()
        );
    }

    #[test]
    fn each_sink_is_marked_on_its_own_and_retried_when_due() {
        let dir = tempfile::tempdir().expect("folder");
        let store = open(&dir);
        store.record_notification_sinks(&Sink::ALL).expect("sinks");
        store
            .queue_notifications(vec![note("b", 2), note("a", 1)])
            .expect("queue");
        let due = store
            .due_notifications(Sink::Webhook, at(3), 10)
            .expect("due");
        assert_eq!(
            due.iter().map(|n| n.id.as_str()).collect::<Vec<_>>(),
            ["a", "b"],
            "oldest first"
        );
        assert_eq!(
            store
                .due_notifications(Sink::Webhook, at(3), 1)
                .expect("due")
                .len(),
            1
        );

        assert!(
            store
                .notification_delivered("a", Sink::Webhook, at(3))
                .expect("mark")
        );
        assert!(
            !store
                .notification_delivered("a", Sink::Webhook, at(4))
                .expect("again")
        );
        assert!(
            !store
                .notification_delivered("zzz", Sink::Webhook, at(4))
                .expect("none")
        );
        assert!(
            store
                .notification_failed("b", Sink::Webhook, "the webhook answered 500", at(10))
                .expect("failed")
        );
        assert!(
            !store
                .notification_failed("a", Sink::Webhook, "late", at(10))
                .expect("already delivered")
        );

        let a = store.notification("a").expect("read").expect("held");
        assert_eq!(a.webhook.delivered_at, Some(at(3)));
        assert_eq!(a.webhook.attempts, 1);
        assert_eq!(
            a.email,
            SinkDelivery::default(),
            "the e-mail sink is untouched"
        );
        let b = store.notification("b").expect("read").expect("held");
        assert_eq!(
            (
                b.webhook.attempts,
                b.webhook.next_attempt_at,
                b.webhook.last_error.as_deref()
            ),
            (1, Some(at(10)), Some("the webhook answered 500"))
        );
        assert!(
            store
                .due_notifications(Sink::Webhook, at(9), 10)
                .expect("due")
                .is_empty()
        );
        assert_eq!(
            store
                .due_notifications(Sink::Webhook, at(10), 10)
                .expect("due")
                .len(),
            1
        );
        assert_eq!(
            store
                .next_notification_attempt(Sink::Webhook)
                .expect("next"),
            Some(at(10))
        );
        assert_eq!(
            store
                .due_notifications(Sink::Email, at(3), 10)
                .expect("due")
                .len(),
            2
        );
        assert_eq!(store.notification_backlog().expect("backlog"), 2);

        store
            .notification_delivered("b", Sink::Webhook, at(10))
            .expect("mark");
        store
            .notification_delivered("a", Sink::Email, at(10))
            .expect("mark");
        store
            .notification_delivered("b", Sink::Email, at(10))
            .expect("mark");
        let b = store.notification("b").expect("read").expect("held");
        assert_eq!((b.webhook.attempts, b.webhook.next_attempt_at), (2, None));
        assert_eq!(store.notification_backlog().expect("backlog"), 0);
        assert_eq!(
            store
                .next_notification_attempt(Sink::Webhook)
                .expect("next"),
            None
        );
    }

    #[test]
    fn the_backlog_counts_only_the_sinks_the_primary_delivers_to() {
        let dir = tempfile::tempdir().expect("folder");
        let store = open(&dir);
        store
            .queue_notifications(vec![note("a", 1)])
            .expect("queue");
        store.record_notification_sinks(&[]).expect("no sinks");
        assert_eq!(
            store.notification_backlog().expect("backlog"),
            1,
            "waiting for a sink"
        );
        store
            .record_notification_sinks(&[Sink::Webhook])
            .expect("sinks");
        assert_eq!(store.notification_sinks().expect("sinks"), [Sink::Webhook]);
        store
            .notification_delivered("a", Sink::Webhook, at(2))
            .expect("mark");
        assert_eq!(store.notification_backlog().expect("backlog"), 0);
        let filter = NotificationFilter {
            undelivered: true,
            ..NotificationFilter::default()
        };
        assert!(store.notifications(&filter, 0).expect("list").is_empty());
    }

    #[test]
    fn the_list_is_newest_first_and_filtered() {
        let dir = tempfile::tempdir().expect("folder");
        let store = open(&dir);
        assert!(
            store
                .notifications(&NotificationFilter::default(), 0)
                .expect("empty")
                .is_empty()
        );
        let mut alert = note("alert:R1:second", 3);
        alert.kind = "alert.second_enquiry".into();
        store
            .queue_notifications(vec![
                note("enquiry:E1:lsw:R1", 1),
                alert,
                note("enquiry:E2:lsw:R1", 2),
            ])
            .expect("queue");
        let ids = |filter: &NotificationFilter, limit| {
            store
                .notifications(filter, limit)
                .expect("list")
                .into_iter()
                .map(|n| n.id)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            ids(&NotificationFilter::default(), 0),
            ["alert:R1:second", "enquiry:E2:lsw:R1", "enquiry:E1:lsw:R1"]
        );
        assert_eq!(ids(&NotificationFilter::default(), 1), ["alert:R1:second"]);
        let enquiries = NotificationFilter {
            id_prefix: Some("enquiry:".into()),
            ..NotificationFilter::default()
        };
        assert_eq!(
            ids(&enquiries, 0),
            ["enquiry:E2:lsw:R1", "enquiry:E1:lsw:R1"]
        );
        let alerts = NotificationFilter {
            kind: Some("alert.second_enquiry".into()),
            ..NotificationFilter::default()
        };
        assert_eq!(ids(&alerts, 0), ["alert:R1:second"]);
    }

    #[tokio::test]
    async fn announcing_wakes_the_delivery_of_this_store_only() {
        let dir = tempfile::tempdir().expect("folder");
        let other_dir = tempfile::tempdir().expect("folder");
        let store = Arc::new(open(&dir));
        let other = Arc::new(open(&other_dir));
        let waker = store.notification_waker();
        let other_waker = other.notification_waker();
        store
            .queue_notifications(vec![note("a", 1)])
            .expect("queue");
        tokio::time::timeout(std::time::Duration::from_secs(1), waker.notified())
            .await
            .expect("woken");
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(50), other_waker.notified())
                .await
                .is_err(),
            "another register's delivery sleeps on"
        );
    }
}
