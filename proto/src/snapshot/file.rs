//! The snapshot file: the same signed frames a subscription carries, laid out as a file so a site
//! with no link at all can be brought up to date (DESIGN section 4, "air gap").
//!
//! Layout: [`FILE_MAGIC`], then protobuf length-delimited [`pb::SnapshotFrame`]s (a varint
//! length, then that many bytes) exactly as a subscription sends them: the authority's key
//! rotations oldest first, then one FULL manifest and its payload chunks. Nothing in the file is
//! trusted for being in the file: the replica puts every frame through the intake checks a
//! subscription gets. This module only bounds what is read, and tells a file that ends inside a
//! frame from one that ends between frames; whether the frames make a whole version is for the
//! intake to say (a payload shorter than its manifest declares is refused there).
//!
//! The file travels encrypted to the receiving site (age, in the primary and the replica); this
//! format is what is inside.

use std::io::{self, BufRead, BufReader, Read, Write};

use prost::Message;

use crate::pb;

/// The first bytes of every snapshot file.
pub const FILE_MAGIC: &[u8] = b"cpreg-snapshot-file-v1\n";

/// Largest frame a reader accepts: a payload chunk (the primary sends 1 MiB) with room to spare.
pub const MAX_FILE_FRAME_BYTES: u64 = 16 * 1024 * 1024;

/// A varint of a `u64` is at most this long.
const MAX_VARINT_BYTES: usize = 10;

/// Why a snapshot file could not be read. Each says what to do, because the person reading it is
/// at a site with no link, holding a file someone carried in.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotFileError {
    /// The plaintext does not start with [`FILE_MAGIC`].
    #[error(
        "not a cpreg snapshot file (it does not start with \"cpreg-snapshot-file-v1\"): check it is the file the authority exported for this site"
    )]
    NotASnapshotFile,
    /// The file ends inside a frame.
    #[error(
        "the snapshot file is truncated: it ends inside a frame at byte {offset}; ask the authority for a new copy"
    )]
    Truncated { offset: u64 },
    /// A frame declares more bytes than any genuine frame has.
    #[error(
        "the frame at byte {offset} declares {size} bytes, over the limit of {limit}: the file is damaged or not genuine"
    )]
    OversizeFrame { offset: u64, size: u64, limit: u64 },
    /// A frame's length prefix or contents do not decode.
    #[error("the frame at byte {offset} does not decode: the file is damaged or not genuine")]
    Malformed { offset: u64 },
    /// Reading failed (for an encrypted file, this is also where decryption failures appear).
    #[error("reading the snapshot file: {0}")]
    Io(#[from] io::Error),
}

/// Writes a snapshot file's plaintext: the magic, then each frame length-delimited.
#[derive(Debug)]
pub struct SnapshotFileWriter<W: Write> {
    out: W,
}

impl<W: Write> SnapshotFileWriter<W> {
    /// Starts a file by writing the magic.
    pub fn new(mut out: W) -> io::Result<Self> {
        out.write_all(FILE_MAGIC)?;
        Ok(SnapshotFileWriter { out })
    }

    /// Appends one frame. A frame no reader would accept is refused here rather than written.
    pub fn write_frame(&mut self, frame: &pb::SnapshotFrame) -> io::Result<()> {
        let len = frame.encoded_len() as u64;
        if len > MAX_FILE_FRAME_BYTES {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("a frame of {len} bytes is over the limit of {MAX_FILE_FRAME_BYTES}"),
            ));
        }
        self.out.write_all(&frame.encode_length_delimited_to_vec())
    }

    /// The writer, for the caller to flush, finish (an encryption stream) and sync.
    pub fn into_inner(self) -> W {
        self.out
    }
}

/// Reads a snapshot file's plaintext frame by frame, never holding more than one frame, and
/// refusing a frame over the limit before reading it.
#[derive(Debug)]
pub struct SnapshotFileReader<R: Read> {
    input: BufReader<R>,
    /// Bytes consumed so far, for error messages.
    offset: u64,
    limit: u64,
    /// Set after the end or an error: the iterator is fused.
    done: bool,
}

impl<R: Read> SnapshotFileReader<R> {
    /// Checks the magic and positions the reader at the first frame.
    pub fn open(input: R) -> Result<Self, SnapshotFileError> {
        let mut input = BufReader::new(input);
        // 1. The magic: anything else (say, a file still encrypted) is not read further.
        let mut magic = [0u8; FILE_MAGIC.len()];
        let got = fill(&mut input, &mut magic).map_err(|e| read_error(e, 0))?;
        if got < magic.len() || magic != FILE_MAGIC {
            return Err(SnapshotFileError::NotASnapshotFile);
        }
        Ok(SnapshotFileReader {
            input,
            offset: FILE_MAGIC.len() as u64,
            limit: MAX_FILE_FRAME_BYTES,
            done: false,
        })
    }

    /// Lowers the largest frame accepted (the limit never rises above [`MAX_FILE_FRAME_BYTES`]).
    pub fn with_frame_limit(mut self, limit: u64) -> Self {
        self.limit = limit.min(MAX_FILE_FRAME_BYTES);
        self
    }

    /// Bytes of plaintext consumed so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The next frame; `None` at a clean end, which falls between two frames.
    pub fn next_frame(&mut self) -> Result<Option<pb::SnapshotFrame>, SnapshotFileError> {
        if self.done {
            return Ok(None);
        }
        let result = self.read_frame();
        if !matches!(result, Ok(Some(_))) {
            self.done = true;
        }
        result
    }

    fn read_frame(&mut self) -> Result<Option<pb::SnapshotFrame>, SnapshotFileError> {
        let start = self.offset;
        let Some(len) = self.read_length(start)? else {
            return Ok(None);
        };
        // 2. Endless data: the declared length within the limit, before anything is allocated.
        if len > self.limit {
            return Err(SnapshotFileError::OversizeFrame {
                offset: start,
                size: len,
                limit: self.limit,
            });
        }
        // 3. Truncation: a frame that ends early is an error, never a short frame.
        let mut body = vec![0u8; len as usize];
        let got = fill(&mut self.input, &mut body).map_err(|e| read_error(e, self.offset))?;
        self.offset += got as u64;
        if got < body.len() {
            return Err(SnapshotFileError::Truncated {
                offset: self.offset,
            });
        }
        // 4. The frame decodes; what it says is for the intake to check.
        pb::SnapshotFrame::decode(body.as_slice())
            .map(Some)
            .map_err(|_| SnapshotFileError::Malformed { offset: start })
    }

    /// Reads a varint length; `None` if the file ends cleanly before its first byte.
    fn read_length(&mut self, start: u64) -> Result<Option<u64>, SnapshotFileError> {
        let mut value = 0u64;
        for i in 0..MAX_VARINT_BYTES {
            let mut byte = [0u8; 1];
            let got = fill(&mut self.input, &mut byte).map_err(|e| read_error(e, self.offset))?;
            if got == 0 {
                return if i == 0 {
                    Ok(None)
                } else {
                    Err(SnapshotFileError::Truncated {
                        offset: self.offset,
                    })
                };
            }
            self.offset += 1;
            value |= u64::from(byte[0] & 0x7f) << (7 * i);
            if byte[0] & 0x80 == 0 {
                return Ok(Some(value));
            }
        }
        Err(SnapshotFileError::Malformed { offset: start })
    }
}

impl<R: Read> Iterator for SnapshotFileReader<R> {
    type Item = Result<pb::SnapshotFrame, SnapshotFileError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_frame().transpose()
    }
}

/// Reads until `buf` is full or the input ends; returns how many bytes were read.
fn fill(input: &mut impl BufRead, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match input.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// A decrypting stream reports a file cut short as `UnexpectedEof` (age does, when the last
/// chunk never came): that is a truncated file, even where the plaintext so far ends between
/// frames, and it must not be taken for a clean end.
fn read_error(error: io::Error, offset: u64) -> SnapshotFileError {
    if error.kind() == io::ErrorKind::UnexpectedEof {
        SnapshotFileError::Truncated { offset }
    } else {
        SnapshotFileError::Io(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{rotation_frame, sign_rotation, version_frames};
    use ed25519_dalek::SigningKey;

    fn frames() -> Vec<pb::SnapshotFrame> {
        let old = SigningKey::from_bytes(&[1; 32]);
        let new = SigningKey::from_bytes(&[2; 32]);
        let signed = pb::SignedManifest {
            key_id: "k".into(),
            manifest: vec![1, 2, 3],
            signature: vec![4; 64],
        };
        let payload: Vec<u8> = (0..=255).cycle().take(700).collect();
        std::iter::once(rotation_frame(sign_rotation(
            "lambeth",
            &old,
            &new.verifying_key(),
            5,
        )))
        .chain(version_frames(signed, &payload, 300))
        .collect()
    }

    fn file(frames: &[pb::SnapshotFrame]) -> Vec<u8> {
        let mut writer = SnapshotFileWriter::new(Vec::new()).expect("magic");
        for frame in frames {
            writer.write_frame(frame).expect("frame");
        }
        writer.into_inner()
    }

    fn read_all(bytes: &[u8]) -> Result<Vec<pb::SnapshotFrame>, SnapshotFileError> {
        SnapshotFileReader::open(bytes)?.collect()
    }

    #[test]
    fn frames_round_trip_through_a_file() {
        let frames = frames();
        assert_eq!(frames.len(), 5, "a rotation, a manifest and three chunks");
        assert_eq!(read_all(&file(&frames)).expect("reads"), frames);
    }

    #[test]
    fn a_file_cut_inside_a_frame_is_truncated_and_between_frames_is_short() {
        let frames = frames();
        let bytes = file(&frames);
        let mut boundaries = vec![FILE_MAGIC.len()];
        for frame in &frames {
            let last = *boundaries.last().expect("one");
            boundaries.push(last + frame.encode_length_delimited_to_vec().len());
        }
        for cut in FILE_MAGIC.len()..bytes.len() {
            let result = read_all(&bytes[..cut]);
            if let Some(n) = boundaries.iter().position(|&b| b == cut) {
                // A clean end: fewer frames, which the intake refuses as an incomplete version.
                assert_eq!(result.expect("whole frames").len(), n, "cut at {cut}");
            } else {
                assert!(
                    matches!(result, Err(SnapshotFileError::Truncated { .. })),
                    "cut at {cut}: {result:?}"
                );
            }
        }
    }

    #[test]
    fn a_stream_that_reports_a_premature_end_is_truncated_even_between_frames() {
        /// What a decrypting reader does when the file was cut: the bytes so far, then an error.
        struct CutShort(std::io::Cursor<Vec<u8>>);
        impl Read for CutShort {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                match self.0.read(buf)? {
                    0 => Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "age file is truncated",
                    )),
                    n => Ok(n),
                }
            }
        }
        let bytes = file(&frames());
        let result: Result<Vec<_>, _> =
            SnapshotFileReader::open(CutShort(std::io::Cursor::new(bytes)))
                .expect("magic")
                .collect();
        assert!(
            matches!(result, Err(SnapshotFileError::Truncated { .. })),
            "{result:?}"
        );
    }

    #[test]
    fn a_file_without_the_magic_is_not_read() {
        for bytes in [
            &b""[..],
            b"cpreg-snapshot-file-v2\n",
            b"age-encryption.org/v1\n",
        ] {
            assert!(matches!(
                read_all(bytes),
                Err(SnapshotFileError::NotASnapshotFile)
            ));
        }
    }

    #[test]
    fn an_oversize_frame_is_refused_before_it_is_read() {
        let mut bytes = FILE_MAGIC.to_vec();
        // A varint of 2^40: a terabyte frame, which must not be allocated.
        bytes.extend_from_slice(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x20]);
        assert!(matches!(
            read_all(&bytes),
            Err(SnapshotFileError::OversizeFrame { .. })
        ));
        let frames = frames();
        let limited: Result<Vec<_>, _> = SnapshotFileReader::open(file(&frames).as_slice())
            .expect("magic")
            .with_frame_limit(200)
            .collect();
        assert!(matches!(
            limited,
            Err(SnapshotFileError::OversizeFrame { limit: 200, .. })
        ));
    }

    #[test]
    fn a_garbled_frame_or_length_is_malformed() {
        let mut bytes = FILE_MAGIC.to_vec();
        bytes.extend_from_slice(&[0xff; 11]);
        assert!(matches!(
            read_all(&bytes),
            Err(SnapshotFileError::Malformed { .. })
        ));
        let mut bytes = FILE_MAGIC.to_vec();
        bytes.extend_from_slice(&[3, 0xff, 0xff, 0xff]);
        assert!(matches!(
            read_all(&bytes),
            Err(SnapshotFileError::Malformed { .. })
        ));
    }
}
