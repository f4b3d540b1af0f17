//! The air-gap snapshot file's plaintext, as `SnapshotFileReader` reads it after decryption.
//!
//! The first byte chooses whether the file magic is put in front of the rest (so the fuzzer
//! spends its time on frames) and the frame limit. Properties: the reader never claims to have
//! read more than the file holds; after an error or the end it yields nothing more; a file read
//! to a clean end was consumed whole; the frames read, written again by `SnapshotFileWriter`,
//! read back the same.

#![no_main]

use cpreg_proto::pb;
use cpreg_proto::snapshot::file::{FILE_MAGIC, SnapshotFileReader, SnapshotFileWriter};
use libfuzzer_sys::fuzz_target;

/// Enough frames to cover every path; a longer file only repeats them.
const MAX_FRAMES: usize = 256;

/// The frames read, whether the file ended cleanly (`None`: read no further than [`MAX_FRAMES`]),
/// and the offset reached.
fn read_all(file: &[u8], limit: u64) -> (Vec<pb::SnapshotFrame>, Option<bool>, u64) {
    let Ok(mut reader) = SnapshotFileReader::open(file) else {
        return (Vec::new(), Some(false), 0);
    };
    reader = reader.with_frame_limit(limit);
    let mut frames = Vec::new();
    let clean = loop {
        if frames.len() == MAX_FRAMES {
            return (frames, None, reader.offset());
        }
        match reader.next_frame() {
            Ok(Some(frame)) => frames.push(frame),
            Ok(None) => break true,
            Err(_) => break false,
        }
        assert!(reader.offset() <= file.len() as u64, "read past the end");
    };
    assert!(
        matches!(reader.next_frame(), Ok(None)),
        "the reader is fused"
    );
    assert!(reader.next().is_none());
    (frames, Some(clean), reader.offset())
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let file = if selector & 1 == 0 {
        [FILE_MAGIC, rest].concat()
    } else {
        rest.to_vec()
    };
    let limit = if selector & 2 == 0 {
        u64::MAX
    } else {
        u64::from(selector) * 4
    };

    let (frames, clean, offset) = read_all(&file, limit);
    if !file.starts_with(FILE_MAGIC) {
        assert!(SnapshotFileReader::open(file.as_slice()).is_err());
        return;
    }
    let Some(clean) = clean else {
        return;
    };
    if clean {
        assert_eq!(offset, file.len() as u64, "a clean end left bytes unread");
    }

    let mut writer = SnapshotFileWriter::new(Vec::new()).expect("writes to memory");
    for frame in &frames {
        writer
            .write_frame(frame)
            .expect("a frame that was read can be written");
    }
    let written = writer.into_inner();
    let (again, clean_again, _) = read_all(&written, u64::MAX);
    assert_eq!(clean_again, Some(true));
    assert_eq!(again, frames);
});
