//! The frames the parent and an HDF5 worker process exchange over pipes.
//!
//! Every frame starts with a one-byte tag; numbers are little-endian, and arrays are sent as
//! they are in memory (vecfmt runs on little-endian targets only):
//!
//! | tag | direction | body |
//! |---|---|---|
//! | `Q` | parent → worker, first | u32 length + JSON request |
//! | `H` | either, the matrix header | u32 length + JSON header |
//! | `R` | rows | (reader only: u64 bytes read so far) + u64 rows + u64 entries + `rows`, `indptr`, `indices` as u64s + the values in the header's dtype |
//! | `T` | reader → parent, triplets | u64 bytes read so far + u64 triplets + u64 columns + `rows`, `cols` as u64s + the values |
//! | `N` | reader → parent, a note | u32 length + JSON `{message}` |
//! | `E` | worker → parent, an error | u32 length + JSON `{message, os_error, hint}` |
//! | `K` | writer → parent | ready (after the header), or finished (after `Z`) |
//! | `Z` | the end of the blocks | |

use std::io::{Read, Write};

use serde_json::{json, Value};
use vecfmt::stream::{Block, MatrixHeader, RowBlock, TripletBlock};
use vecfmt::{DType, ValueVec};

/// The request, first on the worker's stdin.
pub(crate) const REQUEST: u8 = b'Q';
/// The matrix header.
pub(crate) const HEADER: u8 = b'H';
/// A row block.
pub(crate) const ROWS: u8 = b'R';
/// A triplet block.
pub(crate) const TRIPLETS: u8 = b'T';
/// A note of the reader (for the parent's [`Progress`](crate::Progress)).
pub(crate) const NOTE: u8 = b'N';
/// An error the worker reports.
pub(crate) const ERROR: u8 = b'E';
/// The writer is ready, or has finished.
pub(crate) const OK: u8 = b'K';
/// No more blocks.
pub(crate) const END: u8 = b'Z';

/// A JSON frame: the tag, the length, the text.
pub(crate) fn write_json(out: &mut impl Write, tag: u8, v: &Value) -> std::io::Result<()> {
    let text = serde_json::to_vec(v).map_err(std::io::Error::other)?;
    let len = u32::try_from(text.len()).map_err(|_| std::io::Error::other("a JSON frame over 4 GiB"))?;
    out.write_all(&[tag])?;
    out.write_all(&len.to_le_bytes())?;
    out.write_all(&text)
}

/// The array's bytes as they are in memory.
pub(crate) fn put_u64s(out: &mut impl Write, v: &[u64]) -> std::io::Result<()> {
    out.write_all(bytemuck::cast_slice(v))
}

/// A block of a reader, with the bytes of input read so far (for the parent's progress).
pub(crate) fn write_source_block(out: &mut impl Write, read: u64, block: &Block) -> std::io::Result<()> {
    match block {
        Block::Rows(b) => {
            out.write_all(&[ROWS])?;
            put_u64s(out, &[read, b.rows.len() as u64, b.indices.len() as u64])?;
            put_u64s(out, &b.rows)?;
            put_u64s(out, &b.indptr)?;
            put_u64s(out, &b.indices)?;
            out.write_all(b.values.as_values().as_bytes())
        }
        Block::Triplets(t) => {
            out.write_all(&[TRIPLETS])?;
            put_u64s(out, &[read, t.rows.len() as u64, t.cols.len() as u64])?;
            put_u64s(out, &t.rows)?;
            put_u64s(out, &t.cols)?;
            out.write_all(t.values.as_values().as_bytes())
        }
    }
}

/// A row block for the writer (lengths checked by the caller).
pub(crate) fn write_row_block(out: &mut impl Write, b: &RowBlock) -> std::io::Result<()> {
    out.write_all(&[ROWS])?;
    put_u64s(out, &[b.rows.len() as u64, b.indices.len() as u64])?;
    put_u64s(out, &b.rows)?;
    put_u64s(out, &b.indptr)?;
    put_u64s(out, &b.indices)?;
    out.write_all(b.values.as_values().as_bytes())
}

/// A header frame's JSON as sent: the labels serialized straight from the header, never
/// built as a `serde_json::Value` (a `Value` per label takes several times the labels' size:
/// 30 MiB per axis at 219,000 words).
#[derive(serde::Serialize)]
struct HeaderOut<'a> {
    dtype: &'a str,
    n_rows: u64,
    n_cols: u64,
    row_labels: Option<&'a [String]>,
    col_labels: Option<&'a [String]>,
    metadata: &'a Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    total: Option<u64>,
}

/// A header frame's JSON as received, parsed straight into the header's types.
#[derive(serde::Deserialize)]
struct HeaderIn {
    dtype: String,
    n_rows: u64,
    n_cols: u64,
    #[serde(default)]
    row_labels: Option<Vec<String>>,
    #[serde(default)]
    col_labels: Option<Vec<String>>,
    #[serde(default)]
    metadata: Option<Value>,
    #[serde(default)]
    total: Option<u64>,
}

/// Writes an `H` frame: the header, and for a reader the bytes of its input (`total`).
pub(crate) fn write_header(out: &mut impl Write, h: &MatrixHeader, total: Option<u64>) -> std::io::Result<()> {
    let text = serde_json::to_vec(&HeaderOut {
        dtype: h.dtype.name(),
        n_rows: h.n_rows,
        n_cols: h.n_cols,
        row_labels: h.row_labels.as_deref(),
        col_labels: h.col_labels.as_deref(),
        metadata: &h.metadata,
        total,
    })
    .map_err(std::io::Error::other)?;
    let len = u32::try_from(text.len()).map_err(|_| std::io::Error::other("a JSON frame over 4 GiB"))?;
    out.write_all(&[HEADER])?;
    out.write_all(&len.to_le_bytes())?;
    out.write_all(&text)
}

/// The header and `total` of a header frame's JSON text; what is wrong when it is not JSON
/// or not a header.
fn parse_header(text: &[u8]) -> Result<(MatrixHeader, Option<u64>), &'static str> {
    let malformed = "a malformed header";
    let h: HeaderIn = serde_json::from_slice(text).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => malformed,
        _ => "malformed JSON",
    })?;
    let header = MatrixHeader {
        dtype: h.dtype.parse().map_err(|_| malformed)?,
        n_rows: h.n_rows,
        n_cols: h.n_cols,
        row_labels: h.row_labels.map(Into::into),
        col_labels: h.col_labels.map(Into::into),
        metadata: h.metadata.filter(|m| !m.is_null()),
    };
    Ok((header, h.total))
}

/// An error as it crosses the pipe: its whole message, the operating-system error under it,
/// and the host's hint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WireError {
    pub message: String,
    pub os_error: Option<i32>,
    pub hint: Option<String>,
}

impl WireError {
    /// The worker's error `e`, with the hint its host gives.
    pub(crate) fn new(e: &vecfmt::Error, hint: Option<String>) -> WireError {
        WireError {
            message: full_message(e),
            os_error: os_error_of(e),
            hint,
        }
    }

    pub(crate) fn to_json(&self) -> Value {
        json!({ "message": self.message, "os_error": self.os_error, "hint": self.hint })
    }

    pub(crate) fn from_json(v: &Value) -> Option<WireError> {
        Some(WireError {
            message: v["message"].as_str()?.to_string(),
            os_error: v["os_error"].as_i64().and_then(|c| i32::try_from(c).ok()),
            hint: v["hint"].as_str().map(str::to_owned),
        })
    }

    /// The message less the file's name in front (`PATH: `) and the format's (`HDF5: `),
    /// which the parent's error puts back, naming the user's file.
    pub(crate) fn detail(&self, path_shown: &str) -> String {
        let m = self.message.as_str();
        let m = m
            .strip_prefix(path_shown)
            .and_then(|r| r.strip_prefix(": "))
            .unwrap_or(m);
        m.strip_prefix("HDF5: ").unwrap_or(m).to_string()
    }
}

/// `e`'s message followed by each of its sources' (as `{:#}` prints a chain), so that what
/// a C library said under a typed error (HDF5's "File too large") reaches the parent. A
/// source whose text the message already holds is not repeated.
fn full_message(e: &vecfmt::Error) -> String {
    let mut m = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        let s = c.to_string();
        if !m.contains(&s) {
            m.push_str(": ");
            m.push_str(&s);
        }
        cause = c.source();
    }
    m
}

/// The operating-system error code under `e`: a core I/O error's, or the first
/// `std::io::Error` in its chain of sources.
fn os_error_of(e: &vecfmt::Error) -> Option<i32> {
    if let vecfmt::Error::Io { error, .. } = e {
        return error.raw_os_error();
    }
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            if let Some(code) = io.raw_os_error() {
                return Some(code);
            }
        }
        if let Some(vecfmt::Error::Io { error, .. }) = c.downcast_ref::<vecfmt::Error>() {
            return error.raw_os_error();
        }
        cause = c.source();
    }
    None
}

/// What went wrong reading frames.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum FrameError {
    /// The stream ended inside a frame, or before one: the other side died.
    Ended,
    /// Bytes that are not a frame, at this byte offset of the stream.
    Malformed { offset: u64, what: &'static str },
}

/// Reads frames, counting the bytes read so that a malformed frame is reported with its
/// offset.
#[derive(Debug)]
pub(crate) struct FrameReader<R> {
    inner: R,
    offset: u64,
}

impl<R: Read> FrameReader<R> {
    pub(crate) fn new(inner: R) -> Self {
        FrameReader { inner, offset: 0 }
    }

    /// Bytes read so far.
    pub(crate) fn offset(&self) -> u64 {
        self.offset
    }

    pub(crate) fn malformed(&self, what: &'static str) -> FrameError {
        FrameError::Malformed {
            offset: self.offset,
            what,
        }
    }

    /// Exactly `buf.len()` bytes.
    pub(crate) fn fill(&mut self, buf: &mut [u8]) -> Result<(), FrameError> {
        self.inner.read_exact(buf).map_err(|_| FrameError::Ended)?;
        self.offset += buf.len() as u64;
        Ok(())
    }

    /// The next frame's tag.
    pub(crate) fn tag(&mut self) -> Result<u8, FrameError> {
        let mut t = [0u8; 1];
        self.fill(&mut t)?;
        Ok(t[0])
    }

    /// The body of a JSON frame (after its tag).
    pub(crate) fn json(&mut self) -> Result<Value, FrameError> {
        let start = self.offset;
        serde_json::from_slice(&self.json_text()?).map_err(|_| FrameError::Malformed {
            offset: start,
            what: "malformed JSON",
        })
    }

    fn json_text(&mut self) -> Result<Vec<u8>, FrameError> {
        let mut len = [0u8; 4];
        self.fill(&mut len)?;
        let mut text = vec![0u8; u32::from_le_bytes(len) as usize];
        self.fill(&mut text)?;
        Ok(text)
    }

    /// The body of an `H` frame (after its tag): the header, and a reader's `total`.
    pub(crate) fn header_body(&mut self) -> Result<(MatrixHeader, Option<u64>), FrameError> {
        let start = self.offset;
        parse_header(&self.json_text()?).map_err(|what| FrameError::Malformed { offset: start, what })
    }

    /// `n` elements, read straight into their memory.
    pub(crate) fn array<T: bytemuck::Pod>(&mut self, n: u64) -> Result<Vec<T>, FrameError> {
        let mut v = Vec::new();
        self.array_into(&mut v, n)?;
        Ok(v)
    }

    /// `n` elements into `v`, reusing its allocation.
    pub(crate) fn array_into<T: bytemuck::Pod>(&mut self, v: &mut Vec<T>, n: u64) -> Result<(), FrameError> {
        let n = usize::try_from(n)
            .ok()
            .filter(|&n| {
                n.checked_mul(std::mem::size_of::<T>())
                    .is_some_and(|b| b <= isize::MAX as usize)
            })
            .ok_or_else(|| self.malformed("an impossible count"))?;
        v.clear();
        v.resize(n, T::zeroed());
        self.fill(bytemuck::cast_slice_mut(v))
    }

    fn values(&mut self, dtype: DType, n: u64) -> Result<ValueVec, FrameError> {
        Ok(match dtype {
            DType::F32 => ValueVec::F32(self.array(n)?),
            DType::F64 => ValueVec::F64(self.array(n)?),
            DType::I32 => ValueVec::I32(self.array(n)?),
            DType::I64 => ValueVec::I64(self.array(n)?),
            DType::U32 => ValueVec::U32(self.array(n)?),
            DType::U64 => ValueVec::U64(self.array(n)?),
        })
    }

    /// A reader's `R` or `T` frame after its tag: the bytes of input it had read, and the
    /// block.
    pub(crate) fn source_block(&mut self, tag: u8, dtype: DType) -> Result<(u64, Block), FrameError> {
        let head: Vec<u64> = self.array(3)?;
        let (read, n, m) = (head[0], head[1], head[2]);
        let block = if tag == ROWS {
            let rows = self.array(n)?;
            let indptr = self.array(n.saturating_add(1))?;
            let indices = self.array(m)?;
            let values = self.values(dtype, m)?;
            Block::Rows(RowBlock {
                rows,
                indptr,
                indices,
                values,
            })
        } else {
            let rows = self.array(n)?;
            let cols = self.array(m)?;
            let values = self.values(dtype, n)?;
            Block::Triplets(TripletBlock { rows, cols, values })
        };
        Ok((read, block))
    }

    /// The writer's `R` frame after its tag, into `b`, reusing its buffers (and its dtype).
    pub(crate) fn row_block_into(&mut self, b: &mut RowBlock) -> Result<(), FrameError> {
        let mut head = [0u64; 2];
        self.fill(bytemuck::cast_slice_mut(&mut head))?;
        let [n, m] = head;
        self.array_into(&mut b.rows, n)?;
        self.array_into(&mut b.indptr, n.saturating_add(1))?;
        self.array_into(&mut b.indices, m)?;
        match &mut b.values {
            ValueVec::F32(v) => self.array_into(v, m),
            ValueVec::F64(v) => self.array_into(v, m),
            ValueVec::I32(v) => self.array_into(v, m),
            ValueVec::I64(v) => self.array_into(v, m),
            ValueVec::U32(v) => self.array_into(v, m),
            ValueVec::U64(v) => self.array_into(v, m),
        }
    }

    /// A whole `H` frame.
    pub(crate) fn header(&mut self) -> Result<MatrixHeader, FrameError> {
        if self.tag()? != HEADER {
            return Err(self.malformed("no header"));
        }
        Ok(self.header_body()?.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> MatrixHeader {
        MatrixHeader {
            row_labels: Some(vec!["a".to_string(), "b".to_string()].into()),
            metadata: Some(json!({"k": [1, 2]})),
            ..MatrixHeader::new(DType::I32, 2, 5)
        }
    }

    fn rows() -> RowBlock {
        RowBlock {
            rows: vec![0, 1],
            indptr: vec![0, 2, 3],
            indices: vec![1, 4, 0],
            values: ValueVec::I32(vec![7, -1, 3]),
        }
    }

    #[test]
    fn headers_and_blocks_come_back_as_they_were_sent() {
        let mut buf = Vec::new();
        write_header(&mut buf, &header(), None).unwrap();
        write_source_block(&mut buf, 100, &Block::Rows(rows())).unwrap();
        let t = TripletBlock {
            rows: vec![1, 0],
            cols: vec![3, 3],
            values: ValueVec::I32(vec![5, 6]),
        };
        write_source_block(&mut buf, 200, &Block::Triplets(t.clone())).unwrap();
        write_row_block(&mut buf, &rows()).unwrap();
        buf.push(END);
        let mut r = FrameReader::new(&buf[..]);
        assert_eq!(r.header().unwrap(), header());
        let tag = r.tag().unwrap();
        assert_eq!(r.source_block(tag, DType::I32).unwrap(), (100, Block::Rows(rows())));
        let tag = r.tag().unwrap();
        assert_eq!(r.source_block(tag, DType::I32).unwrap(), (200, Block::Triplets(t)));
        assert_eq!(r.tag().unwrap(), ROWS);
        let mut b = RowBlock::new(DType::I32);
        r.row_block_into(&mut b).unwrap();
        assert_eq!(b, rows());
        assert_eq!(r.tag().unwrap(), END);
        assert_eq!(r.offset(), buf.len() as u64);
        assert_eq!(r.tag(), Err(FrameError::Ended));
    }

    #[test]
    fn a_short_stream_is_the_end_and_bad_bytes_are_malformed_at_their_offset() {
        let mut buf = Vec::new();
        write_source_block(&mut buf, 1, &Block::Rows(rows())).unwrap();
        for cut in 1..buf.len() {
            let mut r = FrameReader::new(&buf[..cut]);
            let tag = r.tag().unwrap();
            assert_eq!(r.source_block(tag, DType::I32), Err(FrameError::Ended), "cut at {cut}");
        }
        let mut bad = vec![HEADER];
        bad.extend(3u32.to_le_bytes());
        bad.extend(b"{x}");
        assert_eq!(
            FrameReader::new(&bad[..]).header(),
            Err(FrameError::Malformed {
                offset: 1,
                what: "malformed JSON"
            })
        );
        let mut huge = vec![ROWS];
        huge.extend(bytemuck::cast_slice::<u64, u8>(&[0, u64::MAX, 0]));
        let mut r = FrameReader::new(&huge[..]);
        let tag = r.tag().unwrap();
        assert!(matches!(
            r.source_block(tag, DType::F64),
            Err(FrameError::Malformed {
                what: "an impossible count",
                ..
            })
        ));
    }

    #[test]
    fn errors_keep_their_message_os_error_and_hint() {
        let e = vecfmt::Error::Io {
            path: "/d/m.h5".into(),
            op: "write",
            error: std::io::Error::from_raw_os_error(libc::ENOSPC),
        };
        let w = WireError::new(&e, Some("free some space".into()));
        let back = WireError::from_json(&w.to_json()).unwrap();
        assert_eq!(back, w);
        assert_eq!(back.os_error, Some(libc::ENOSPC));
        assert!(
            back.detail("/d/m.h5").starts_with("write: "),
            "{}",
            back.detail("/d/m.h5")
        );
        let w = WireError {
            message: "/d/m.h5: HDF5: the file holds 2 candidate matrices".into(),
            os_error: None,
            hint: None,
        };
        assert_eq!(w.detail("/d/m.h5"), "the file holds 2 candidate matrices");
        // Under another error, as a format crate's typed error keeps it.
        #[derive(Debug, thiserror::Error)]
        #[error("m.h5: cannot write")]
        struct Wrapped(#[source] std::io::Error);
        let e = vecfmt::Error::Format(Box::new(Wrapped(std::io::Error::from_raw_os_error(libc::EFBIG))));
        assert_eq!(os_error_of(&e), Some(libc::EFBIG));
    }
}
