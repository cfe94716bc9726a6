//! Page headers checked before the parquet crate reads a column chunk.
//!
//! The parquet crate sizes buffers by what a page header declares: a page's uncompressed
//! size (it allocates, and for some codecs zero-fills, that many bytes before decompressing)
//! and a dictionary's value count (it resizes the dictionary to that count before decoding).
//! Fuzzing found both: a 967-byte file whose dictionary claimed 1.2 billion values made it
//! zero 4.8 GB, and a page claiming 1.4 GB uncompressed from a few hundred bytes. So before
//! a column chunk is read, its page headers are walked here (a few KiB read per page, nothing
//! decompressed) and each declared size is checked against the bytes that hold it.
//!
//! ### Specification
//! `parquet.thrift` (`PageHeader`, `DictionaryPageHeader`) in the Thrift compact protocol:
//! a field is a byte of id delta (high nibble) and type (low nibble), a zero delta followed
//! by a zigzag varint id; integers are zigzag varints; binary is a varint length and bytes;
//! a list is a byte of size (high nibble, 15 for a varint size after it) and element type.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use parquet::basic::{Compression, Type as Physical};
use parquet::file::metadata::{ColumnChunkMetaData, ParquetMetaData};
use vecfmt::Result;

use crate::Error;

/// Largest page header read: Thrift headers are small, but statistics may hold long values.
const MAX_HEADER: u64 = 1 << 20;
/// Nesting deeper than this is not a page header.
const MAX_DEPTH: u32 = 32;

/// How much larger than its stored bytes a page can decode, by codec: deflate at most
/// 1032×, lz4 about 255×, snappy about 22×; zstd and brotli can encode runs in a few
/// bytes each, so they get a loose bound. Plus 1 MiB of slack for tiny pages.
fn max_uncompressed(codec: Compression, compressed: u64) -> u64 {
    let ratio = match codec {
        Compression::UNCOMPRESSED => 1,
        Compression::SNAPPY => 32,
        Compression::GZIP(_) => 1040,
        Compression::LZ4 | Compression::LZ4_RAW | Compression::LZO => 256,
        _ => 1 << 16,
    };
    compressed.saturating_mul(ratio).saturating_add(1 << 20)
}

/// What the walk needs of one page header.
#[derive(Debug, Default)]
struct Header {
    len: u64,
    page_type: i64,
    uncompressed: i64,
    compressed: i64,
    dict_values: Option<i64>,
}

/// A Thrift compact-protocol reader over a byte window, bounded everywhere.
struct Thrift<'a> {
    b: &'a [u8],
    at: usize,
}

/// The window ended inside the header (read a larger one), or the header is malformed.
enum Stop {
    Short,
    Bad(String),
}

type Parsed<T> = std::result::Result<T, Stop>;

impl Thrift<'_> {
    fn byte(&mut self) -> Parsed<u8> {
        let x = *self.b.get(self.at).ok_or(Stop::Short)?;
        self.at += 1;
        Ok(x)
    }
    fn varint(&mut self) -> Parsed<u64> {
        let mut v = 0u64;
        for shift in (0..70).step_by(7) {
            let x = self.byte()?;
            if shift == 63 && x > 1 {
                return Err(Stop::Bad("a varint overflows 64 bits".into()));
            }
            v |= u64::from(x & 0x7f) << shift;
            if x & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(Stop::Bad("a varint is longer than 10 bytes".into()))
    }
    fn zigzag(&mut self) -> Parsed<i64> {
        let v = self.varint()?;
        Ok((v >> 1) as i64 ^ -((v & 1) as i64))
    }
    fn skip(&mut self, n: u64) -> Parsed<()> {
        let n = usize::try_from(n).map_err(|_| Stop::Short)?;
        if self.b.len() - self.at < n {
            return Err(Stop::Short);
        }
        self.at += n;
        Ok(())
    }
    /// A collection of `n` elements needs at least `n` bytes (or none, for elements of no
    /// size); a larger count is malformed or lies beyond the window.
    fn count(&self, n: u64) -> Parsed<u64> {
        if n > (self.b.len() - self.at) as u64 {
            return Err(if n > MAX_HEADER {
                Stop::Bad(format!("a collection of {n} elements"))
            } else {
                Stop::Short
            });
        }
        Ok(n)
    }
    /// Skips a value of compact type `t`.
    fn skip_value(&mut self, t: u8, depth: u32) -> Parsed<()> {
        if depth > MAX_DEPTH {
            return Err(Stop::Bad("nested too deeply".into()));
        }
        match t {
            1 | 2 => Ok(()),
            3 => self.skip(1),
            4..=6 => self.varint().map(drop),
            7 => self.skip(8),
            8 => {
                let n = self.varint()?;
                self.skip(n)
            }
            9 | 10 => {
                let h = self.byte()?;
                let size = if h >> 4 == 15 {
                    self.varint()?
                } else {
                    u64::from(h >> 4)
                };
                let et = h & 0x0f;
                let size = self.count(size)?;
                for _ in 0..size {
                    // Booleans inside a collection take a byte each.
                    if et == 1 || et == 2 {
                        self.skip(1)?;
                    } else {
                        self.skip_value(et, depth + 1)?;
                    }
                }
                Ok(())
            }
            11 => {
                let size = self.varint()?;
                if size == 0 {
                    return Ok(());
                }
                let kv = self.byte()?;
                let size = self.count(size)?;
                for _ in 0..size {
                    self.skip_value(kv >> 4, depth + 1)?;
                    self.skip_value(kv & 0x0f, depth + 1)?;
                }
                Ok(())
            }
            12 => self.skip_struct(depth + 1, |_, _, _| Ok(false)),
            13 => self.skip(16),
            other => Err(Stop::Bad(format!("unknown Thrift type {other}"))),
        }
    }
    /// Walks a struct's fields; `field(thrift, id, type)` reads a field it wants and says so,
    /// the others are skipped.
    fn skip_struct(&mut self, depth: u32, mut field: impl FnMut(&mut Self, i16, u8) -> Parsed<bool>) -> Parsed<()> {
        let mut last = 0i16;
        loop {
            let h = self.byte()?;
            let t = h & 0x0f;
            if t == 0 {
                return Ok(());
            }
            let delta = h >> 4;
            let id = if delta == 0 {
                i16::try_from(self.zigzag()?).map_err(|_| Stop::Bad("a field id past i16".into()))?
            } else {
                last.wrapping_add(i16::from(delta))
            };
            last = id;
            if !field(self, id, t)? {
                self.skip_value(t, depth)?;
            }
        }
    }
}

/// Parses the page header at the start of `b`.
fn parse_header(b: &[u8]) -> Parsed<Header> {
    let mut h = Header {
        page_type: -1,
        uncompressed: -1,
        compressed: -1,
        ..Header::default()
    };
    let mut t = Thrift { b, at: 0 };
    t.skip_struct(0, |t, id, ty| {
        Ok(match (id, ty) {
            (1, 5) => {
                h.page_type = t.zigzag()?;
                true
            }
            (2, 5) => {
                h.uncompressed = t.zigzag()?;
                true
            }
            (3, 5) => {
                h.compressed = t.zigzag()?;
                true
            }
            (7, 12) => {
                t.skip_struct(1, |t, id, ty| {
                    Ok(if (id, ty) == (1, 5) {
                        h.dict_values = Some(t.zigzag()?);
                        true
                    } else {
                        false
                    })
                })?;
                true
            }
            _ => false,
        })
    })?;
    h.len = t.at as u64;
    Ok(h)
}

/// Bytes per dictionary value at the least, in a PLAIN dictionary of `cc`'s type.
fn value_width(cc: &ColumnChunkMetaData) -> u64 {
    match cc.column_type() {
        Physical::BOOLEAN => 1,
        Physical::INT32 | Physical::FLOAT | Physical::BYTE_ARRAY => 4,
        Physical::INT64 | Physical::DOUBLE => 8,
        Physical::INT96 => 12,
        Physical::FIXED_LEN_BYTE_ARRAY => cc.column_descr().type_length().max(1) as u64,
    }
}

/// Walks the page headers of the column chunks of `leaves` in every row group and checks
/// each declared size: the page lies inside its chunk, its uncompressed size is possible
/// from its stored bytes with its codec, and a dictionary's value count fits the page.
pub(crate) fn check(path: &Path, file: &File, file_len: u64, md: &ParquetMetaData, leaves: &[usize]) -> Result<()> {
    for (g, rg) in md.row_groups().iter().enumerate() {
        for &l in leaves {
            let Some(cc) = rg.columns().get(l) else { continue };
            // As `ColumnChunkMetaData::byte_range`, which panics on negative values.
            let start = cc.dictionary_page_offset().unwrap_or(cc.data_page_offset());
            let len = cc.compressed_size();
            let (Ok(start), Ok(len)) = (u64::try_from(start), u64::try_from(len)) else {
                return Err(Error::NegativeChunk {
                    path: path.to_path_buf(),
                    row_group: g,
                    column: cc.column_path().to_string(),
                    start,
                    len,
                }
                .into());
            };
            let end = start
                .checked_add(len)
                .filter(|&e| e <= file_len)
                .ok_or_else(|| Error::ChunkPastEnd {
                    path: path.to_path_buf(),
                    row_group: g,
                    column: cc.column_path().to_string(),
                    start,
                    len,
                    file_len,
                })?;
            let bad = |offset: u64, detail: String| -> vecfmt::Error {
                Error::BadPage {
                    path: path.to_path_buf(),
                    row_group: g,
                    column: cc.column_path().to_string(),
                    offset,
                    detail,
                }
                .into()
            };
            let mut pos = start;
            let mut window = Vec::new();
            while pos < end {
                let mut want = (end - pos).min(4 << 10);
                let h = loop {
                    window.resize(want as usize, 0);
                    file.read_exact_at(&mut window, pos)
                        .map_err(crate::io_err(path, "read"))?;
                    match parse_header(&window) {
                        Ok(h) => break h,
                        Err(Stop::Bad(d)) => return Err(bad(pos, d)),
                        Err(Stop::Short) if want < (end - pos).min(MAX_HEADER) => {
                            want = (want * 16).min((end - pos).min(MAX_HEADER));
                        }
                        Err(Stop::Short) => return Err(bad(pos, "the page header runs past its chunk".into())),
                    }
                };
                let (u, c) = (h.uncompressed, h.compressed);
                if h.page_type < 0 || u < 0 || c < 0 {
                    return Err(bad(pos, "a page header without its type or sizes".into()));
                }
                let (u, c) = (u as u64, c as u64);
                if pos + h.len + c > end {
                    return Err(bad(pos, format!("{c} stored bytes run past the end of the chunk")));
                }
                let max = max_uncompressed(cc.compression(), c);
                if u > max {
                    return Err(bad(
                        pos,
                        format!(
                            "{u} bytes declared from {c} stored bytes, more than {:?} can produce",
                            cc.compression()
                        ),
                    ));
                }
                if let Some(n) = h.dict_values {
                    if n < 0 || (n as u64).saturating_mul(value_width(cc)) > u {
                        return Err(bad(pos, format!("the dictionary declares {n} values in {u} bytes")));
                    }
                }
                pos += h.len + c;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zigzag(v: i64) -> Vec<u8> {
        let mut z = ((v << 1) ^ (v >> 63)) as u64;
        let mut out = Vec::new();
        loop {
            let b = (z & 0x7f) as u8;
            z >>= 7;
            if z == 0 {
                out.push(b);
                return out;
            }
            out.push(b | 0x80);
        }
    }

    /// A page header: type, sizes, then a dictionary page header, or a data page header
    /// with a statistics struct holding a binary value and a list.
    fn header(page_type: i64, uncompressed: i64, compressed: i64, dict: Option<i64>) -> Vec<u8> {
        let mut h = Vec::new();
        for v in [page_type, uncompressed, compressed] {
            h.push(0x15);
            h.extend(zigzag(v));
        }
        match dict {
            Some(n) => {
                h.push(0x4c); // field 7 (delta 4): struct
                h.push(0x15); // num_values
                h.extend(zigzag(n));
                h.push(0x15); // encoding
                h.push(0);
                h.push(0x11); // is_sorted: true
                h.push(0);
            }
            None => {
                h.push(0x2c); // field 5 (delta 2): the data page header
                h.push(0x15); // num_values
                h.extend(zigzag(10));
                h.push(0x4c); // field 5: statistics
                h.push(0x18); // a binary value
                h.push(3);
                h.extend_from_slice(b"abc");
                h.push(0x19); // a list of three i32
                h.push(0x35);
                h.extend(zigzag(1));
                h.extend(zigzag(2));
                h.extend(zigzag(3));
                h.push(0);
                h.push(0);
            }
        }
        h.push(0);
        h
    }

    #[test]
    fn headers_parse_with_their_sizes() {
        let b = header(0, 2_000_000_000, 100, None);
        let Ok(h) = parse_header(&b) else { panic!("parses") };
        assert_eq!(
            (h.page_type, h.uncompressed, h.compressed, h.len),
            (0, 2_000_000_000, 100, b.len() as u64)
        );
        assert_eq!(h.dict_values, None);
        let b = header(2, 64, 64, Some(16));
        let Ok(h) = parse_header(&b) else { panic!("parses") };
        assert_eq!((h.page_type, h.dict_values), (2, Some(16)));
    }

    #[test]
    fn a_cut_header_asks_for_more_and_a_malformed_one_is_refused() {
        let b = header(0, 10, 10, None);
        for cut in 0..b.len() {
            assert!(matches!(parse_header(&b[..cut]), Err(Stop::Short)), "cut at {cut}");
        }
        // Field 1 as a list of 2^40 i32: far more elements than any header holds.
        let mut b = vec![0x19, 0xf5];
        b.extend([0x80, 0x80, 0x80, 0x80, 0x80, 0x20]);
        assert!(matches!(parse_header(&b), Err(Stop::Bad(_))));
        // An unknown type.
        assert!(matches!(parse_header(&[0x1e, 0]), Err(Stop::Bad(_))));
    }

    #[test]
    fn declared_sizes_are_bounded_by_the_stored_bytes() {
        assert!(max_uncompressed(Compression::UNCOMPRESSED, 100) < 2 << 20);
        assert!(max_uncompressed(Compression::SNAPPY, 1000) < 2_000_000_000);
        assert!(max_uncompressed(Compression::GZIP(Default::default()), 1000) >= 1_032_000);
        assert_eq!(
            max_uncompressed(Compression::ZSTD(Default::default()), u64::MAX),
            u64::MAX
        );
    }
}
