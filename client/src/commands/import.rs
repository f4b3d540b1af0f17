//! `cpreg admin import FILE`: streams the file to the primary in chunks and prints each row's
//! acknowledgement as it arrives, with progress on the terminal for large files.

use std::path::Path;

use cpreg_proto::pb;
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use tokio::io::AsyncReadExt;

use crate::output::{CliError, Output};
use crate::profile::Profile;

const CHUNK_BYTES: usize = 256 * 1024;

/// What `--json` prints.
#[derive(Debug, Default, Serialize)]
pub struct ImportReport {
    pub rows: Vec<pb::RowAck>,
    pub accepted: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub rejected: u64,
    /// Header columns the primary did not recognise and ignored.
    pub ignored_columns: Vec<String>,
}

/// Streams `file` to the primary; returns the acknowledgements and totals.
pub async fn import_file(
    profile: &Profile,
    file: &Path,
    progress: &ProgressBar,
) -> Result<ImportReport, CliError> {
    let io = |source| CliError::Io {
        what: "import file",
        path: file.to_owned(),
        source,
    };
    let input = tokio::fs::File::open(file).await.map_err(io)?;
    // A read error ends the upload early; it is kept here so the command fails afterwards
    // instead of reporting a partial import as complete.
    let read_error: std::sync::Arc<std::sync::Mutex<Option<std::io::Error>>> = Default::default();
    let slot = read_error.clone();
    let upload = futures::stream::unfold(
        (input, vec![0u8; CHUNK_BYTES]),
        move |(mut input, mut buf)| {
            let slot = slot.clone();
            async move {
                loop {
                    match input.read(&mut buf).await {
                        Ok(0) => return None,
                        Ok(n) => {
                            return Some((
                                pb::ImportChunk {
                                    data: buf[..n].to_vec(),
                                },
                                (input, buf),
                            ));
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                        Err(e) => {
                            *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                            return None;
                        }
                    }
                }
            }
        },
    );
    let mut client = profile.register().await?;
    let mut acks = client.import(upload).await?.into_inner();
    let mut report = ImportReport::default();
    let mut summarised = false;
    while let Some(event) = acks.next().await {
        match event?.event {
            Some(pb::import_event::Event::Row(row)) => {
                progress.inc(1);
                if row.outcome == i32::from(pb::RowOutcome::Rejected) {
                    progress.suspend(|| {
                        eprintln!(
                            "line {}: {} rejected: {}",
                            row.line, row.record_id, row.reason
                        )
                    });
                }
                report.rows.push(row);
            }
            Some(pb::import_event::Event::Summary(s)) => {
                report.accepted = s.accepted;
                report.updated = s.updated;
                report.unchanged = s.unchanged;
                report.rejected = s.rejected;
                report.ignored_columns = s.ignored_columns;
                summarised = true;
            }
            None => {}
        }
    }
    progress.finish_and_clear();
    if let Some(e) = read_error.lock().unwrap_or_else(|p| p.into_inner()).take() {
        return Err(CliError::Io {
            what: "reading the import file stopped part-way (the rows acknowledged are committed; send the file again)",
            path: file.to_owned(),
            source: e,
        });
    }
    if !summarised {
        return Err(CliError::Invalid(format!(
            "the primary ended the import without its summary after {} rows; the rows acknowledged are committed, send the file again",
            report.rows.len()
        )));
    }
    Ok(report)
}

pub async fn run(profile: &Profile, file: &Path, out: Output) -> Result<(), CliError> {
    let rows = count_rows(file)?;
    let progress = if out.json || rows < 5_000 {
        ProgressBar::hidden()
    } else {
        let bar = ProgressBar::new(rows);
        bar.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} rows  {per_sec}  eta {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    };
    let report = import_file(profile, file, &progress).await?;
    if !report.ignored_columns.is_empty() {
        eprintln!(
            "warning: columns not recognised and ignored: {}",
            report.ignored_columns.join(", ")
        );
    }
    out.emit(&report, || {
        format!(
            "{} accepted, {} updated, {} unchanged, {} rejected",
            report.accepted, report.updated, report.unchanged, report.rejected
        )
    })
}

/// Lines after the header, for the progress bar.
fn count_rows(file: &Path) -> Result<u64, CliError> {
    use std::io::Read;
    let io = |source| CliError::Io {
        what: "import file",
        path: file.to_owned(),
        source,
    };
    let mut input = std::fs::File::open(file).map_err(io)?;
    let mut buf = vec![0u8; CHUNK_BYTES];
    let mut lines = 0u64;
    loop {
        match input.read(&mut buf).map_err(io)? {
            0 => return Ok(lines.saturating_sub(1)),
            n => lines += buf[..n].iter().filter(|b| **b == b'\n').count() as u64,
        }
    }
}
