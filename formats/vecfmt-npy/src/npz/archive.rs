//! The members of a `.npz` archive: found through the zip directory, each checked against
//! the bytes it occupies before anything is sized by its claims, and each streamed by its own
//! decoder ([`MemberReader`]), as a numeric array ([`Array`]) or whole (the small `format`
//! and `shape` members).

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use vecfmt::{Result, ValueVec};
use zip::CompressionMethod;

use super::{MAX_DEFLATE_RATIO, MAX_SMALL_MEMBER};
use crate::dtype::{Decoder, NpyDtype};
use crate::header::{read_header, read_raw_header, shape_str, NpyHeader};
use crate::output::io_err;
use crate::{Error, MAX_MEMBERS};

/// The member count the archive's end record declares (the zip64 record's, when the
/// archive has one), read before the zip library sizes anything by it. `None` when no end
/// record is found: the zip library then says what is wrong.
fn declared_members(file: &File, len: u64) -> std::io::Result<Option<u64>> {
    use std::os::unix::fs::FileExt;
    // The end record is 22 bytes plus a comment of at most 65,535; a zip64 locator (20) and
    // record (56) come before it.
    let tail_len = len.min(22 + 65_535);
    let mut tail = vec![0u8; tail_len as usize];
    file.read_exact_at(&mut tail, len - tail_len)?;
    let Some(at) = (0..tail.len().saturating_sub(21))
        .rev()
        .find(|&i| tail[i..i + 4] == *b"PK\x05\x06")
    else {
        return Ok(None);
    };
    let u16_at = |b: &[u8], i: usize| u16::from_le_bytes([b[i], b[i + 1]]) as u64;
    let count = u16_at(&tail, at + 10).max(u16_at(&tail, at + 8));
    if count != 0xffff {
        return Ok(Some(count));
    }
    // Zip64: the locator just before the end record points at the zip64 record.
    let eocd = len - tail_len + at as u64;
    if eocd < 20 {
        return Ok(Some(count));
    }
    let mut loc = [0u8; 20];
    file.read_exact_at(&mut loc, eocd - 20)?;
    if loc[..4] != *b"PK\x06\x07" {
        return Ok(Some(count));
    }
    let rec = u64::from_le_bytes(loc[8..16].try_into().expect("8 bytes"));
    let mut z64 = [0u8; 56];
    if rec.checked_add(56).is_none_or(|e| e > len)
        || file.read_exact_at(&mut z64, rec).is_err()
        || z64[..4] != *b"PK\x06\x06"
    {
        return Ok(Some(count));
    }
    let n = |i: usize| u64::from_le_bytes(z64[i..i + 8].try_into().expect("8 bytes"));
    Ok(Some(n(24).max(n(32))))
}
/// Where one member's bytes are in the archive.
#[derive(Debug, Clone)]
pub(super) struct Member {
    name: String,
    data_start: u64,
    pub(super) compressed_size: u64,
    size: u64,
    crc32: u32,
    deflated: bool,
}

/// A member's uncompressed bytes as a stream, checked against its declared size and CRC.
pub(super) struct MemberReader {
    inner: Box<dyn Read + Send>,
    name: String,
    /// Uncompressed bytes not yet read.
    left: u64,
    crc: crc32fast::Hasher,
    expected_crc: u32,
    /// Whether this reader reads the member to its end (and can check the CRC).
    pub(super) whole: bool,
}

impl MemberReader {
    fn open(path: &Path, m: &Member) -> Result<Self> {
        let mut f = File::open(path).map_err(io_err(path, "open"))?;
        f.seek(SeekFrom::Start(m.data_start)).map_err(io_err(path, "seek"))?;
        let raw = BufReader::with_capacity(256 << 10, f.take(m.compressed_size));
        let inner: Box<dyn Read + Send> = if m.deflated {
            Box::new(flate2::bufread::DeflateDecoder::new(raw))
        } else {
            Box::new(raw)
        };
        Ok(MemberReader {
            inner,
            name: m.name.clone(),
            left: m.size,
            crc: crc32fast::Hasher::new(),
            expected_crc: m.crc32,
            whole: true,
        })
    }

    /// Reads exactly `buf.len()` bytes; a short member is an error naming it.
    fn fill(&mut self, path: &Path, buf: &mut [u8]) -> Result<()> {
        self.read_exact(buf).map_err(|e| {
            let (path, member) = (path.to_path_buf(), self.name.clone());
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                Error::MemberTruncated { path, member }.into()
            } else {
                Error::MemberCorrupt { path, member, error: e }.into()
            }
        })
    }

    /// Skips `n` bytes.
    pub(super) fn skip(&mut self, path: &Path, mut n: u64) -> Result<()> {
        let mut buf = vec![0u8; (64 << 10).min(n as usize)];
        while n > 0 {
            let k = n.min(buf.len() as u64) as usize;
            self.fill(path, &mut buf[..k])?;
            n -= k as u64;
        }
        Ok(())
    }

    /// At the end of the member: checks that nothing is left and that the CRC matches.
    fn check_end(&mut self, path: &Path) -> Result<()> {
        if !self.whole {
            return Ok(());
        }
        if self.left != 0 {
            return Err(Error::TrailingBytes {
                path: path.to_path_buf(),
                member: self.name.clone(),
                left: self.left,
            }
            .into());
        }
        let crc = std::mem::take(&mut self.crc).finalize();
        if crc != self.expected_crc {
            return Err(Error::Crc {
                path: path.to_path_buf(),
                member: self.name.clone(),
                actual: crc,
                expected: self.expected_crc,
            }
            .into());
        }
        self.whole = false;
        Ok(())
    }
}

impl Read for MemberReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        // Never more than the declared size: a member cannot inflate past what it claims.
        let cap = buf.len().min(usize::try_from(self.left).unwrap_or(usize::MAX));
        if cap == 0 {
            return Ok(0);
        }
        let n = self.inner.read(&mut buf[..cap])?;
        self.crc.update(&buf[..n]);
        self.left -= n as u64;
        Ok(n)
    }
}

/// A numeric member: its `.npy` header and a stream positioned at its data.
pub(super) struct Array {
    pub(super) header: NpyHeader,
    pub(super) reader: MemberReader,
    /// Elements not yet read.
    pub(super) left: u64,
    buf: Vec<u8>,
}

impl Array {
    pub(super) fn open(path: &Path, m: &Member) -> Result<Self> {
        let mut reader = MemberReader::open(path, m)?;
        let header = read_header(&mut reader).map_err(|problem| Error::Header {
            path: path.to_path_buf(),
            member: Some(m.name.clone()),
            problem,
        })?;
        let n = header.n_elements().unwrap_or(u64::MAX);
        let need = header.data_len().and_then(|l| l.checked_add(header.data_offset));
        if need != Some(m.size) {
            return Err(Error::MemberSize {
                path: path.to_path_buf(),
                member: m.name.clone(),
                shape: header.shape_str(),
                dtype: header.dtype.name(),
                needed: need,
                size: m.size,
            }
            .into());
        }
        Ok(Array {
            header,
            reader,
            left: n,
            buf: Vec::new(),
        })
    }

    /// The raw bytes of the next `n` elements.
    fn next_bytes(&mut self, path: &Path, n: u64) -> Result<&[u8]> {
        debug_assert!(n <= self.left);
        let len = (n as usize) * self.header.dtype.size();
        // Grow the buffer as the data arrives rather than to the size the header claims.
        self.buf.clear();
        while self.buf.len() < len {
            let at = self.buf.len();
            self.buf.resize(at + (len - at).min(1 << 20), 0);
            self.reader.fill(path, &mut self.buf[at..])?;
        }
        self.left -= n;
        if self.left == 0 {
            self.reader.check_end(path)?;
        }
        Ok(&self.buf)
    }

    /// The next `n` elements as indices (integers; negatives are refused).
    pub(super) fn next_indices(&mut self, path: &Path, n: u64, out: &mut Vec<u64>) -> Result<()> {
        let dtype = self.header.dtype;
        let name = self.reader.name.clone();
        let bytes = self.next_bytes(path, n)?;
        dtype.decode_indices(bytes, out).map_err(|value| {
            Error::NegativeIndex {
                path: path.to_path_buf(),
                member: name,
                value,
            }
            .into()
        })
    }

    /// The next `n` elements as values.
    pub(super) fn next_values(&mut self, path: &Path, n: u64, decoder: &dyn Decoder, out: &mut ValueVec) -> Result<()> {
        let bytes = self.next_bytes(path, n)?;
        decoder.push_all(bytes, out);
        Ok(())
    }
}

/// The members of an archive, found by name.
pub(super) struct Archive {
    pub(super) members: Vec<Member>,
}

impl Archive {
    pub(super) fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(io_err(path, "open"))?;
        let file_len = file.metadata().map_err(io_err(path, "stat"))?.len();
        if let Some(n) = declared_members(&file, file_len).map_err(io_err(path, "read"))? {
            if n > MAX_MEMBERS as u64 {
                return Err(Error::TooManyMembers {
                    path: path.to_path_buf(),
                    count: n,
                    declared: true,
                }
                .into());
            }
        }
        let mut zip = zip::ZipArchive::new(BufReader::new(file)).map_err(|source| Error::NotZip {
            path: path.to_path_buf(),
            source,
        })?;
        if zip.len() > MAX_MEMBERS {
            return Err(Error::TooManyMembers {
                path: path.to_path_buf(),
                count: zip.len() as u64,
                declared: false,
            }
            .into());
        }
        let mut members = Vec::new();
        for i in 0..zip.len() {
            let f = zip.by_index_raw(i).map_err(|source| Error::MemberUnreadable {
                path: path.to_path_buf(),
                index: i,
                source,
            })?;
            let name = f.name().map(|n| n.into_owned()).unwrap_or_default();
            if f.is_dir() {
                continue;
            }
            if f.encrypted() {
                return Err(Error::Encrypted {
                    path: path.to_path_buf(),
                    member: name,
                }
                .into());
            }
            let deflated = match f.compression() {
                CompressionMethod::Stored => false,
                CompressionMethod::Deflated => true,
                other => {
                    return Err(Error::Compression {
                        path: path.to_path_buf(),
                        member: name,
                        method: format!("{other:?}"),
                    }
                    .into())
                }
            };
            let data_start = f.data_start().ok_or_else(|| Error::NoLocalHeader {
                path: path.to_path_buf(),
                member: name.clone(),
            })?;
            if data_start
                .checked_add(f.compressed_size())
                .is_none_or(|end| end > file_len)
            {
                return Err(Error::MemberPastEnd {
                    path: path.to_path_buf(),
                    member: name,
                }
                .into());
            }
            // What a member claims to hold must be possible from the bytes it occupies: a
            // member's reader is sized by this claim.
            let possible = if deflated {
                f.compressed_size().saturating_mul(MAX_DEFLATE_RATIO).saturating_add(64)
            } else {
                f.compressed_size()
            };
            if f.size() > possible || (!deflated && f.size() != f.compressed_size()) {
                return Err(Error::MemberClaim {
                    path: path.to_path_buf(),
                    member: name,
                    size: f.size(),
                    stored: f.compressed_size(),
                    deflated,
                }
                .into());
            }
            members.push(Member {
                name,
                data_start,
                compressed_size: f.compressed_size(),
                size: f.size(),
                crc32: f.crc32(),
                deflated,
            });
        }
        Ok(Archive { members })
    }

    pub(super) fn get(&self, key: &str) -> Option<&Member> {
        let file = format!("{key}.npy");
        self.members.iter().find(|m| m.name == file)
    }

    pub(super) fn require(&self, path: &Path, key: &str, layout: &'static str) -> Result<&Member> {
        let m = self.get(key).ok_or_else(|| Error::MissingMember {
            path: path.to_path_buf(),
            layout,
            member: format!("{key}.npy"),
            members: self.names(),
        })?;
        Ok(m)
    }

    /// The members' names, for messages.
    fn names(&self) -> Vec<String> {
        self.members.iter().map(|m| m.name.clone()).collect()
    }

    /// The whole (small) data of a member, with its raw header.
    fn small(&self, path: &Path, m: &Member) -> Result<(crate::header::RawHeader, Vec<u8>)> {
        if m.size > MAX_SMALL_MEMBER {
            return Err(Error::MemberTooLarge {
                path: path.to_path_buf(),
                member: m.name.clone(),
                size: m.size,
            }
            .into());
        }
        let mut r = MemberReader::open(path, m)?;
        let h = read_raw_header(&mut r).map_err(|problem| Error::Header {
            path: path.to_path_buf(),
            member: Some(m.name.clone()),
            problem,
        })?;
        let mut rest = vec![0u8; r.left as usize];
        r.fill(path, &mut rest)?;
        r.check_end(path)?;
        Ok((h, rest))
    }
}

/// Reads the `format` member: a 0-d bytes (`|S3`) or str (`<U3`) array.
pub(super) fn read_format(path: &Path, a: &Archive) -> Result<String> {
    let m = a.get("format").ok_or_else(|| Error::NotScipy {
        path: path.to_path_buf(),
        members: a.names(),
    })?;
    let (h, bytes) = a.small(path, m)?;
    let bad = || -> vecfmt::Error {
        Error::FormatMember {
            path: path.to_path_buf(),
            descr: h.descr.clone(),
            shape: shape_str(&h.shape),
        }
        .into()
    };
    if !h.shape.is_empty() {
        return Err(bad());
    }
    let d = h.descr.trim_start_matches(['|', '<', '>', '=']);
    let text = if d.starts_with('S') {
        String::from_utf8_lossy(&bytes).trim_end_matches('\0').to_string()
    } else if d.starts_with('U') {
        let big = h.descr.starts_with('>');
        let chars: Option<String> = bytes
            .chunks_exact(4)
            .map(|c| {
                let a: [u8; 4] = c.try_into().expect("chunks of 4");
                char::from_u32(if big {
                    u32::from_be_bytes(a)
                } else {
                    u32::from_le_bytes(a)
                })
            })
            .collect();
        chars.ok_or_else(bad)?.trim_end_matches('\0').to_string()
    } else {
        return Err(bad());
    };
    Ok(text)
}

/// Reads the `shape` member: two non-negative integers.
pub(super) fn read_shape(path: &Path, a: &Archive) -> Result<(u64, u64)> {
    let m = a.require(path, "shape", "scipy.sparse")?;
    let (h, bytes) = a.small(path, m)?;
    let member = || Some("shape.npy".to_string());
    let bad = || -> vecfmt::Error {
        Error::ShapeMember {
            path: path.to_path_buf(),
            descr: h.descr.clone(),
            shape: shape_str(&h.shape),
        }
        .into()
    };
    let dtype = NpyDtype::parse(&h.descr).map_err(|problem| Error::Dtype {
        path: path.to_path_buf(),
        member: member(),
        problem,
    })?;
    if !dtype.is_integer() || h.shape != [2] {
        return Err(bad());
    }
    let mut v = Vec::new();
    dtype
        .decode_indices(&bytes, &mut v)
        .map_err(|value| Error::NegativeIndex {
            path: path.to_path_buf(),
            member: "shape.npy".to_string(),
            value,
        })?;
    if v.len() != 2 {
        return Err(bad());
    }
    Ok((v[0], v[1]))
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::header::encode_header_descr;
    use crate::HeaderError;

    /// A stored zip archive of these members.
    fn archive(path: &Path, members: &[(&str, Vec<u8>)]) {
        let mut zip = zip::ZipWriter::new(File::create(path).unwrap());
        for (name, bytes) in members {
            let o = zip::write::SimpleFileOptions::default().compression_method(CompressionMethod::Stored);
            zip.start_file(*name, o).unwrap();
            zip.write_all(bytes).unwrap();
        }
        zip.finish().unwrap();
    }

    fn format_member(descr: &str, shape: &[u64], data: &[u8]) -> Vec<u8> {
        let mut v = encode_header_descr(descr, shape);
        v.extend_from_slice(data);
        v
    }

    #[test]
    fn a_format_member_that_is_not_a_string_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.npz");
        archive(&path, &[("format.npy", format_member("|S3", &[1], b"csr"))]);
        let a = Archive::open(&path).unwrap();
        let err = read_format(&path, &a).unwrap_err();
        assert!(
            matches!(err.format_error::<Error>(), Some(Error::FormatMember { shape, .. }) if shape == "(1,)"),
            "{err}"
        );
        assert!(
            err.to_string()
                .contains("f.npz: npz: member format.npy holds dtype '|S3'"),
            "{err}"
        );
    }

    #[test]
    fn a_malformed_member_header_names_the_member_and_the_byte() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.npz");
        let mut bad = b"\x93NUMPY\x01\x00".to_vec();
        let dict = b"{'descr' '<i8'}\n";
        bad.extend_from_slice(&(dict.len() as u16).to_le_bytes());
        bad.extend_from_slice(dict);
        archive(
            &path,
            &[("format.npy", format_member("|S3", &[], b"csr")), ("shape.npy", bad)],
        );
        let a = Archive::open(&path).unwrap();
        assert_eq!(read_format(&path, &a).unwrap(), "csr");
        let err = read_shape(&path, &a).unwrap_err();
        assert!(
            matches!(
                err.format_error::<Error>(),
                Some(Error::Header {
                    member: Some(m),
                    problem: HeaderError::Syntax { at: 9, .. },
                    ..
                }) if m == "shape.npy"
            ),
            "{err}"
        );
        assert!(
            err.to_string()
                .contains("h.npz: npz: member shape.npy: malformed .npy header"),
            "{err}"
        );
    }
}
