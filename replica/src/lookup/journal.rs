//! Writing enquiries down before answering, for many lookups at once: a lookup hands its
//! enquiry to the journal's thread and waits for the commit that holds it; the thread writes
//! everything that arrived while the last commit was being synced in one transaction. A busy site
//! then pays one sync to disk for many enquiries instead of one each, and no lookup is answered
//! before its own enquiry is on disk.

use std::sync::Arc;
use std::sync::mpsc;

use tokio::sync::oneshot;

use crate::store::{Enquiry, Store};

/// Enquiries written in one transaction at most.
const MOST_PER_COMMIT: usize = 512;

type Reply = oneshot::Sender<Result<Enquiry, String>>;

/// The handle lookups record through. When the last handle is dropped the thread finishes
/// what it holds and ends, and the drop waits for it: the store is closed once the lookup
/// service is gone, so a replica can be opened again at once.
#[derive(Debug, Clone)]
pub struct Journal {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    queue: Option<mpsc::Sender<(Enquiry, Reply)>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.queue.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Journal {
    pub fn start(store: Arc<Store>) -> Journal {
        let (queue, waiting) = mpsc::channel::<(Enquiry, Reply)>();
        let thread = std::thread::Builder::new()
            .name("enquiry-journal".into())
            .spawn(move || write_until_closed(&store, &waiting))
            .expect("start the enquiry journal thread");
        Journal {
            inner: Arc::new(Inner {
                queue: Some(queue),
                thread: Some(thread),
            }),
        }
    }

    /// Records `enquiry` (and its outbox entry); returns it with its reference once committed.
    pub async fn record(&self, enquiry: Enquiry) -> Result<Enquiry, String> {
        let (reply, recorded) = oneshot::channel();
        self.inner
            .queue
            .as_ref()
            .ok_or_else(|| "the enquiry journal has stopped".to_owned())?
            .send((enquiry, reply))
            .map_err(|_| "the enquiry journal has stopped".to_owned())?;
        recorded
            .await
            .map_err(|_| "the enquiry journal stopped before recording".to_owned())?
    }
}

fn write_until_closed(store: &Store, waiting: &mpsc::Receiver<(Enquiry, Reply)>) {
    while let Ok(first) = waiting.recv() {
        let mut batch = vec![first];
        batch.extend(waiting.try_iter().take(MOST_PER_COMMIT - 1));
        let (enquiries, replies): (Vec<Enquiry>, Vec<Reply>) = batch.into_iter().unzip();
        match store.record_enquiries(enquiries) {
            Ok(recorded) => {
                for (enquiry, reply) in recorded.into_iter().zip(replies) {
                    // A caller that gave up still has its enquiry recorded and reported.
                    let _ = reply.send(Ok(enquiry));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "recording enquiries failed; none of them is answered");
                for reply in replies {
                    let _ = reply.send(Err(e.to_string()));
                }
            }
        }
    }
}
