//! The case system's CSV export as the primary's import reads it (`cpreg_primary::import`).
//!
//! The first byte chooses between the input as a whole file (header included) and the input as
//! rows under a header naming every recognised column. Properties: the reader ends; every line is
//! yielded at most once and in order, as a row or a rejection; an accepted row has a record id and
//! a line number within the file; a rejection says why.

#![no_main]

use chrono::NaiveDate;
use cpreg_primary::import::{COLUMNS, ReadRow, RowReader};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let file = if selector & 1 == 0 {
        let mut file = COLUMNS.join(",").into_bytes();
        file.push(b'\n');
        file.extend_from_slice(rest);
        file
    } else {
        rest.to_vec()
    };
    let lines = file.split(|&b| b == b'\n').count() as u64;
    let today = NaiveDate::from_ymd_opt(2026, 11, 22).expect("a date");
    let Ok(mut reader) = RowReader::new(file.as_slice(), today) else {
        return;
    };
    let mut last = 1;
    let mut count = 0u64;
    while let Some(read) = reader.next_row().expect("reading from memory") {
        count += 1;
        assert!(count <= lines, "more rows than lines");
        let line = match &read {
            ReadRow::Row(row) => {
                assert!(!row.record_id.is_empty(), "a row without a record id");
                row.line
            }
            ReadRow::Rejected(rejection) => {
                assert!(!rejection.reason.is_empty(), "a rejection without a reason");
                rejection.line
            }
        };
        assert!(line > last, "line {line} after line {last}");
        assert!(line <= lines, "line {line} of a file of {lines} lines");
        last = line;
    }
});
