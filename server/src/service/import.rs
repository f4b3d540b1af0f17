//! The streaming CSV import: chunks in, one acknowledgement per row out as soon as its batch
//! has committed, then a summary.

use std::io::{BufReader, Read};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender};

use cpreg_proto::pb;
use futures::StreamExt;
use tokio::sync::mpsc::Sender;
use tonic::{Status, Streaming};

use crate::import::{ImportRow, ReadRow, RowReader};
use crate::store::{ImportOutcome, Store};

/// Rows committed per write transaction: large enough to amortise the commit, small enough that
/// acknowledgements flow steadily and a crash loses little work in progress.
const BATCH_ROWS: usize = 500;

/// A blocking reader over the chunks arriving on the gRPC stream.
struct ChunkReader {
    chunks: Receiver<Result<Vec<u8>, std::io::Error>>,
    current: Vec<u8>,
    pos: usize,
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.pos == self.current.len() {
            match self.chunks.recv() {
                Ok(chunk) => {
                    self.current = chunk?;
                    self.pos = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len() - self.pos);
        buf[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

async fn forward_chunks(
    mut inbound: Streaming<pb::ImportChunk>,
    tx: SyncSender<Result<Vec<u8>, std::io::Error>>,
) {
    while let Some(item) = inbound.next().await {
        let chunk = item
            .map(|c| c.data)
            .map_err(|s| std::io::Error::other(format!("upload interrupted: {}", s.message())));
        let stop = chunk.is_err();
        let tx = tx.clone();
        // The channel is bounded, so a slow import holds back the upload.
        let sent = tokio::task::spawn_blocking(move || tx.send(chunk)).await;
        if stop || !matches!(sent, Ok(Ok(()))) {
            return;
        }
    }
}

type AckSender = Sender<Result<pb::ImportEvent, Status>>;

fn ack(line: u64, record_id: &str, outcome: pb::RowOutcome, reason: &str) -> pb::ImportEvent {
    pb::ImportEvent {
        event: Some(pb::import_event::Event::Row(pb::RowAck {
            line,
            record_id: record_id.to_owned(),
            outcome: outcome.into(),
            reason: reason.to_owned(),
        })),
    }
}

/// Starts an import; the returned receiver yields the acknowledgements.
pub fn start(
    store: Arc<Store>,
    actor: String,
    inbound: Streaming<pb::ImportChunk>,
) -> tokio::sync::mpsc::Receiver<Result<pb::ImportEvent, Status>> {
    let (chunk_tx, chunk_rx) = std::sync::mpsc::sync_channel(8);
    let (ack_tx, ack_rx) = tokio::sync::mpsc::channel(4 * BATCH_ROWS);
    tokio::spawn(forward_chunks(inbound, chunk_tx));
    tokio::task::spawn_blocking(move || {
        let reader = ChunkReader {
            chunks: chunk_rx,
            current: Vec::new(),
            pos: 0,
        };
        if let Err(status) = run(&store, &actor, reader, &ack_tx) {
            let _ = ack_tx.blocking_send(Err(status));
        }
    });
    ack_rx
}

fn run(store: &Store, actor: &str, reader: ChunkReader, acks: &AckSender) -> Result<(), Status> {
    let mut rows = RowReader::new(
        BufReader::with_capacity(256 * 1024, reader),
        store.clock().today(),
    )
    .map_err(|e| Status::invalid_argument(e.to_string()))?;
    let mut summary = pb::ImportSummary {
        ignored_columns: rows.ignored_columns().to_vec(),
        ..Default::default()
    };
    let mut batch = Vec::with_capacity(BATCH_ROWS);
    let mut done = false;
    while !done {
        batch.clear();
        while batch.len() < BATCH_ROWS {
            match rows.next_row() {
                Ok(Some(row)) => batch.push(row),
                Ok(None) => {
                    done = true;
                    break;
                }
                Err(e) => {
                    return Err(Status::aborted(format!(
                        "{e}; rows acknowledged so far are committed, send the file again to finish"
                    )));
                }
            }
        }
        let parsed: Vec<_> = batch
            .iter()
            .filter_map(|r| match r {
                ReadRow::Row(row) => Some(ImportRow::clone(row)),
                ReadRow::Rejected(_) => None,
            })
            .collect();
        let mut outcomes = store
            .import_rows(actor, &parsed)
            .map_err(|e| {
                tracing::error!(error = %e, "import batch failed");
                Status::internal("the register could not store a batch of rows; rows acknowledged so far are committed, send the file again to finish")
            })?
            .into_iter();
        let mut parsed = parsed.iter();
        for item in &batch {
            let event = match item {
                ReadRow::Rejected(r) => {
                    summary.rejected += 1;
                    ack(r.line, &r.record_id, pb::RowOutcome::Rejected, &r.reason)
                }
                ReadRow::Row(_) => {
                    let (row, outcome) = parsed
                        .next()
                        .zip(outcomes.next())
                        .ok_or_else(|| Status::internal("import lost track of a row"))?;
                    let (kind, reason) = match outcome {
                        ImportOutcome::Accepted => (pb::RowOutcome::Accepted, String::new()),
                        ImportOutcome::Updated => (pb::RowOutcome::Updated, String::new()),
                        ImportOutcome::Unchanged => (pb::RowOutcome::Unchanged, String::new()),
                        ImportOutcome::Rejected(reason) => (pb::RowOutcome::Rejected, reason),
                    };
                    match kind {
                        pb::RowOutcome::Accepted => summary.accepted += 1,
                        pb::RowOutcome::Updated => summary.updated += 1,
                        pb::RowOutcome::Unchanged => summary.unchanged += 1,
                        _ => summary.rejected += 1,
                    }
                    ack(row.line, &row.record_id, kind, &reason)
                }
            };
            if acks.blocking_send(Ok(event)).is_err() {
                // The client went away; what was committed stays committed.
                return Ok(());
            }
        }
    }
    let _ = acks.blocking_send(Ok(pb::ImportEvent {
        event: Some(pb::import_event::Event::Summary(summary)),
    }));
    Ok(())
}
