//! The `.npy` header: magic, version, and the Python dict literal that names the dtype,
//! the memory order and the shape.
//!
//! ### Specification
//! numpy's `numpy/lib/format.py` ("NPY format"): the magic `\x93NUMPY`, a major and minor
//! version byte, the header length (u16 little-endian for version 1.0, u32 for 2.0 and 3.0),
//! then an ASCII (3.0: UTF-8) dict literal `{'descr': '<f8', 'fortran_order': False,
//! 'shape': (3, 4), }` padded with spaces and ended by `\n`, so that the data starts at a
//! multiple of 64 bytes.

use std::io::Read;

use crate::dtype::{DtypeError, NpyDtype};

/// The magic bytes every `.npy` file starts with.
pub const MAGIC: &[u8; 6] = b"\x93NUMPY";
/// The data of a file we write starts at a multiple of this.
pub const ALIGN: usize = 64;
/// Longest header we parse; numpy itself refuses headers past 10,000 bytes unless told.
pub const MAX_HEADER_LEN: usize = 1 << 20;

/// A parsed `.npy` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NpyHeader {
    /// Format version (major, minor).
    pub version: (u8, u8),
    /// The element dtype.
    pub dtype: NpyDtype,
    /// Whether the data is in Fortran (column-major) order.
    pub fortran_order: bool,
    /// The array's shape.
    pub shape: Vec<u64>,
    /// Bytes before the data: preamble plus dict.
    pub data_offset: u64,
}

impl NpyHeader {
    /// Number of elements: the product of the shape, or `None` on overflow.
    pub fn n_elements(&self) -> Option<u64> {
        self.shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d))
    }
    /// Bytes of data the header declares, or `None` on overflow.
    pub fn data_len(&self) -> Option<u64> {
        self.n_elements()?.checked_mul(self.dtype.size() as u64)
    }
    /// The shape written the way numpy prints it: `(3, 4)`, `(5,)`, `()`.
    pub fn shape_str(&self) -> String {
        shape_str(&self.shape)
    }
}

/// A shape written the way numpy prints it.
pub fn shape_str(shape: &[u64]) -> String {
    match shape {
        [] => "()".into(),
        [a] => format!("({a},)"),
        _ => format!("({})", shape.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")),
    }
}

/// What is wrong with a `.npy` header. The reader that names the file (and, in a `.npz`, the
/// member) wraps it in [`crate::Error::Header`].
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum HeaderError {
    /// The magic bytes are missing.
    #[error("not a .npy file (the first 6 bytes are not \\x93NUMPY)")]
    NotNpy,
    /// The input ends inside the preamble or the header.
    #[error("truncated file: it ends inside {what}")]
    Truncated { what: &'static str },
    /// Reading the header failed.
    // The cause is part of the message, as in `vecfmt::Error::Io`.
    #[error("reading {what}: {error}")]
    Read { what: &'static str, error: std::io::Error },
    /// A format version other than 1.0, 2.0 and 3.0.
    #[error("unsupported .npy format version {major}.{minor} (vecfmt reads 1.0, 2.0 and 3.0)")]
    Version { major: u8, minor: u8 },
    /// A header length over [`MAX_HEADER_LEN`].
    #[error("the .npy header claims {len} bytes, over the limit of {MAX_HEADER_LEN}")]
    TooLong { len: usize },
    /// Header bytes that are not ASCII (versions 1 and 2) or UTF-8 (version 3).
    #[error("the .npy header is not {}", if *.utf8 { "valid UTF-8" } else { "ASCII" })]
    NotText { utf8: bool },
    /// The dict literal does not parse, at byte offset `at` of the header text.
    #[error("malformed .npy header {text:?}: {what} at byte {at}")]
    Syntax { text: String, at: usize, what: String },
    /// The literal is not a dict.
    #[error("malformed .npy header {text:?}: it is not a dict")]
    NotADict { text: String },
    /// A field (`descr`, `fortran_order`, `shape`) is missing.
    #[error("malformed .npy header {text:?}: no '{field}' key")]
    MissingField { text: String, field: &'static str },
    /// A field of the wrong type.
    #[error("malformed .npy header {text:?}: '{field}' is not {expected}")]
    FieldType {
        text: String,
        field: &'static str,
        expected: &'static str,
    },
    /// A shape dimension that is not a non-negative integer.
    #[error("malformed .npy header {text:?}: 'shape' holds something other than non-negative integers")]
    BadDimension { text: String },
    /// A shape dimension past 64 bits.
    #[error("malformed .npy header {text:?}: dimension {dim} does not fit 64 bits")]
    DimensionTooLarge { text: String, dim: i128 },
    /// A structured (record) dtype.
    #[error("unsupported dtype: a structured (record) dtype; vecfmt reads plain numeric arrays")]
    Structured,
    /// A dtype vecfmt does not read.
    #[error(transparent)]
    Dtype(#[from] DtypeError),
}

/// A header whose `descr` is kept as text: for the small string members of a `.npz`
/// (`format.npy` holds `|S3`), which are not numeric.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawHeader {
    pub version: (u8, u8),
    pub descr: String,
    pub fortran_order: bool,
    pub shape: Vec<u64>,
    pub data_offset: u64,
}

/// Reads and parses a header from the start of a stream; the stream is left at the data.
pub fn read_header(r: &mut impl Read) -> Result<NpyHeader, HeaderError> {
    let raw = read_raw_header(r)?;
    Ok(NpyHeader {
        version: raw.version,
        dtype: NpyDtype::parse(&raw.descr)?,
        fortran_order: raw.fortran_order,
        shape: raw.shape,
        data_offset: raw.data_offset,
    })
}

/// Like [`read_header`], without interpreting the dtype.
pub fn read_raw_header(r: &mut impl Read) -> Result<RawHeader, HeaderError> {
    let mut pre = [0u8; 8];
    read_full(r, &mut pre, "the .npy preamble")?;
    if &pre[..6] != MAGIC {
        return Err(HeaderError::NotNpy);
    }
    let version = (pre[6], pre[7]);
    let (len, pre_len) = match version.0 {
        1 => {
            let mut b = [0u8; 2];
            read_full(r, &mut b, "the .npy header length")?;
            (u16::from_le_bytes(b) as usize, 10)
        }
        2 | 3 => {
            let mut b = [0u8; 4];
            read_full(r, &mut b, "the .npy header length")?;
            (u32::from_le_bytes(b) as usize, 12)
        }
        _ => {
            return Err(HeaderError::Version {
                major: version.0,
                minor: version.1,
            })
        }
    };
    if len > MAX_HEADER_LEN {
        return Err(HeaderError::TooLong { len });
    }
    // Read what is there rather than allocate what the length claims: a 12-byte file can
    // claim a 1 MiB header.
    let mut text = Vec::with_capacity(len.min(4096));
    r.take(len as u64)
        .read_to_end(&mut text)
        .map_err(|error| HeaderError::Read {
            what: "the .npy header",
            error,
        })?;
    if text.len() < len {
        return Err(HeaderError::Truncated {
            what: "the .npy header",
        });
    }
    let text = if version.0 == 3 {
        String::from_utf8(text).map_err(|_| HeaderError::NotText { utf8: true })?
    } else {
        if !text.is_ascii() {
            return Err(HeaderError::NotText { utf8: false });
        }
        String::from_utf8(text).expect("ASCII is UTF-8")
    };
    let (descr, fortran_order, shape) = parse_dict(&text)?;
    Ok(RawHeader {
        version,
        descr,
        fortran_order,
        shape,
        data_offset: (pre_len + len) as u64,
    })
}

fn read_full(r: &mut impl Read, buf: &mut [u8], what: &'static str) -> Result<(), HeaderError> {
    r.read_exact(buf).map_err(|error| {
        if error.kind() == std::io::ErrorKind::UnexpectedEof {
            HeaderError::Truncated { what }
        } else {
            HeaderError::Read { what, error }
        }
    })
}

/// Parses the header dict into (descr, fortran_order, shape).
fn parse_dict(text: &str) -> Result<(String, bool, Vec<u64>), HeaderError> {
    let t = || text.trim_end().to_string();
    let mut p = Parser {
        s: text.as_bytes(),
        i: 0,
    };
    let syntax = |(at, what): (usize, String)| HeaderError::Syntax { text: t(), at, what };
    let v = p.value().map_err(syntax)?;
    p.ws();
    if p.i != p.s.len() {
        return Err(syntax((p.i, "unexpected text".into())));
    }
    let Py::Dict(items) = v else {
        return Err(HeaderError::NotADict { text: t() });
    };
    let get = |k: &str| items.iter().find(|(key, _)| key == k).map(|(_, v)| v);
    let missing = |field| HeaderError::MissingField { text: t(), field };
    let wrong = |field, expected| HeaderError::FieldType {
        text: t(),
        field,
        expected,
    };
    let descr = match get("descr") {
        Some(Py::Str(s)) => s.clone(),
        Some(Py::List(_)) | Some(Py::Tuple(_)) => return Err(HeaderError::Structured),
        Some(_) => return Err(wrong("descr", "a string")),
        None => return Err(missing("descr")),
    };
    let fortran = match get("fortran_order") {
        Some(Py::Bool(b)) => *b,
        Some(_) => return Err(wrong("fortran_order", "True or False")),
        None => return Err(missing("fortran_order")),
    };
    let shape = match get("shape") {
        Some(Py::Tuple(t)) => t
            .iter()
            .map(|d| match d {
                Py::Int(n) if *n >= 0 => u64::try_from(*n).map_err(|_| HeaderError::DimensionTooLarge {
                    text: text.trim_end().to_string(),
                    dim: *n,
                }),
                _ => Err(HeaderError::BadDimension {
                    text: text.trim_end().to_string(),
                }),
            })
            .collect::<Result<Vec<_>, _>>()?,
        Some(_) => return Err(wrong("shape", "a tuple")),
        None => return Err(missing("shape")),
    };
    Ok((descr, fortran, shape))
}

/// The subset of Python literals a `.npy` header uses.
#[derive(Debug, Clone, PartialEq)]
enum Py {
    Dict(Vec<(String, Py)>),
    Str(String),
    Bool(bool),
    Int(i128),
    Tuple(Vec<Py>),
    List(Vec<Py>),
    None,
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }
    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.s.get(self.i).copied()
    }
    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    /// A value, or what is wrong and the byte offset where.
    fn value(&mut self) -> Result<Py, (usize, String)> {
        // Headers are shallow; a deep nesting is an attack, not a numpy file.
        self.value_at(0)
    }
    fn value_at(&mut self, depth: usize) -> Result<Py, (usize, String)> {
        if depth > 16 {
            return Err((self.i, "nested too deeply".into()));
        }
        match self.peek() {
            Some(b'{') => {
                self.i += 1;
                let mut items = Vec::new();
                loop {
                    if self.eat(b'}') {
                        break;
                    }
                    let Py::Str(k) = self.value_at(depth + 1)? else {
                        return Err((self.i, "a dict key that is not a string".into()));
                    };
                    if !self.eat(b':') {
                        return Err((self.i, "expected ':'".into()));
                    }
                    let v = self.value_at(depth + 1)?;
                    items.push((k, v));
                    if !self.eat(b',') {
                        if self.eat(b'}') {
                            break;
                        }
                        return Err((self.i, "expected ',' or '}'".into()));
                    }
                }
                Ok(Py::Dict(items))
            }
            Some(open @ (b'(' | b'[')) => {
                self.i += 1;
                let close = if open == b'(' { b')' } else { b']' };
                let mut items = Vec::new();
                loop {
                    if self.eat(close) {
                        break;
                    }
                    items.push(self.value_at(depth + 1)?);
                    if !self.eat(b',') {
                        if self.eat(close) {
                            break;
                        }
                        return Err((self.i, format!("expected ',' or '{}'", close as char)));
                    }
                }
                Ok(if open == b'(' {
                    Py::Tuple(items)
                } else {
                    Py::List(items)
                })
            }
            Some(q @ (b'\'' | b'"')) => {
                self.i += 1;
                let start = self.i;
                while self.i < self.s.len() && self.s[self.i] != q {
                    if self.s[self.i] == b'\\' {
                        return Err((self.i, "an escape sequence (not supported in strings)".into()));
                    }
                    self.i += 1;
                }
                if self.i >= self.s.len() {
                    return Err((start, "an unterminated string".into()));
                }
                let s = std::str::from_utf8(&self.s[start..self.i])
                    .map_err(|_| (start, "a string that is not UTF-8".to_string()))?;
                self.i += 1;
                Ok(Py::Str(s.to_string()))
            }
            Some(c) if c.is_ascii_digit() || c == b'-' => {
                let start = self.i;
                self.i += 1;
                while self.i < self.s.len() && self.s[self.i].is_ascii_digit() {
                    self.i += 1;
                }
                let t = std::str::from_utf8(&self.s[start..self.i]).expect("ASCII digits");
                let n: i128 = t.parse().map_err(|_| (start, format!("bad integer {t:?}")))?;
                // Python 2 wrote long integers as `3L`.
                if self.i < self.s.len() && self.s[self.i] == b'L' {
                    self.i += 1;
                }
                Ok(Py::Int(n))
            }
            Some(c) if c.is_ascii_alphabetic() => {
                let start = self.i;
                while self.i < self.s.len() && self.s[self.i].is_ascii_alphanumeric() {
                    self.i += 1;
                }
                match &self.s[start..self.i] {
                    b"True" => Ok(Py::Bool(true)),
                    b"False" => Ok(Py::Bool(false)),
                    b"None" => Ok(Py::None),
                    w => Err((start, format!("unexpected word {:?}", String::from_utf8_lossy(w)))),
                }
            }
            Some(c) => Err((self.i, format!("unexpected character {:?}", c as char))),
            None => Err((self.i, "the header ends early".into())),
        }
    }
}

/// The header bytes (preamble, dict, padding, newline) for an array of `dtype` and `shape`
/// in C order. Version 1.0 unless the dict needs more than 65,535 bytes.
pub fn encode_header(dtype: &NpyDtype, shape: &[u64]) -> Vec<u8> {
    encode_header_descr(&dtype.descr(), shape)
}

/// [`encode_header`] for any `descr` string, such as `|S3`.
pub fn encode_header_descr(descr: &str, shape: &[u64]) -> Vec<u8> {
    let dict = format!(
        "{{'descr': '{descr}', 'fortran_order': False, 'shape': {}, }}",
        shape_str(shape)
    );
    let build = |pre_len: usize| {
        let unpadded = pre_len + dict.len() + 1;
        let total = unpadded.div_ceil(ALIGN) * ALIGN;
        let mut text = dict.clone().into_bytes();
        text.resize(total - pre_len - 1, b' ');
        text.push(b'\n');
        text
    };
    let text = build(10);
    let mut out = Vec::with_capacity(text.len() + 12);
    out.extend_from_slice(MAGIC);
    if let Ok(len) = u16::try_from(text.len()) {
        out.extend_from_slice(&[1, 0]);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&text);
    } else {
        let text = build(12);
        out.extend_from_slice(&[2, 0]);
        out.extend_from_slice(&(text.len() as u32).to_le_bytes());
        out.extend_from_slice(&text);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dtype::Kind;

    fn header(dict: &str, version: u8) -> Vec<u8> {
        let mut v = MAGIC.to_vec();
        v.extend_from_slice(&[version, 0]);
        if version == 1 {
            v.extend_from_slice(&(dict.len() as u16).to_le_bytes());
        } else {
            v.extend_from_slice(&(dict.len() as u32).to_le_bytes());
        }
        v.extend_from_slice(dict.as_bytes());
        v
    }

    #[test]
    fn parses_what_numpy_writes() {
        let dict = "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }\n";
        let h = read_header(&mut &header(dict, 1)[..]).unwrap();
        assert_eq!(h.dtype, NpyDtype::new(Kind::Float, 8, false));
        assert!(!h.fortran_order);
        assert_eq!(h.shape, vec![3, 4]);
        assert_eq!(h.data_offset, 10 + dict.len() as u64);
        assert_eq!(h.data_len(), Some(96));
    }

    #[test]
    fn parses_versions_2_and_3_fortran_and_big_endian() {
        let dict = "{'descr': '>i4', 'fortran_order': True, 'shape': (2,3)}";
        let h = read_header(&mut &header(dict, 2)[..]).unwrap();
        assert_eq!(h.version, (2, 0));
        assert!(h.fortran_order);
        assert_eq!(h.dtype, NpyDtype::new(Kind::Int, 4, true));
        assert_eq!(h.data_offset, 12 + dict.len() as u64);
        let h = read_header(&mut &header("{\"descr\": \"|u1\", \"shape\": (5L, 6L), \"fortran_order\": False}", 3)[..])
            .unwrap();
        assert_eq!(h.shape, vec![5, 6]);
        assert_eq!(h.dtype, NpyDtype::new(Kind::UInt, 1, false));
    }

    #[test]
    fn shapes_of_any_rank() {
        for (t, s) in [("()", vec![]), ("(7,)", vec![7]), ("(1, 2, 3)", vec![1, 2, 3])] {
            let d = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {t}, }}");
            assert_eq!(read_header(&mut &header(&d, 1)[..]).unwrap().shape, s);
            assert_eq!(shape_str(&s), t);
        }
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let e = |b: Vec<u8>| read_header(&mut &b[..]).unwrap_err().to_string();
        assert!(e(b"PK\x03\x04 not npy".to_vec()).contains("not a .npy file"));
        assert!(e(b"\x93NUMPY\x01".to_vec()).contains("truncated"));
        assert!(e(b"\x93NUMPY\x04\x00\x10\x00".to_vec()).contains("version 4.0"));
        let mut short = header("{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }", 1);
        short.truncate(30);
        assert!(e(short).contains("truncated"));
        assert!(
            e(header("{'descr': '|O', 'fortran_order': False, 'shape': (3, 4), }", 1)).contains("pickled object array")
        );
        assert!(e(header(
            "{'descr': [('a', '<f8')], 'fortran_order': False, 'shape': (3,), }",
            1
        ))
        .contains("structured"));
        assert!(
            e(header("{'descr': '<c16', 'fortran_order': False, 'shape': (3,), }", 1)).contains("unsupported dtype")
        );
        assert!(e(header("{'descr': '<f8', 'shape': (3,), }", 1)).contains("fortran_order"));
        assert!(e(header("{'descr': '<f8', 'fortran_order': False, 'shape': (-3,), }", 1)).contains("non-negative"));
        assert!(e(header("{'descr': '<f8', 'fortran_order': Maybe, 'shape': (3,), }", 1)).contains("malformed"));
        assert!(e(header("[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[", 1)).contains("deeply"));
        let mut huge = b"\x93NUMPY\x02\x00".to_vec();
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(e(huge).contains("over the limit"));
    }

    #[test]
    fn encoded_headers_are_aligned_and_parse_back() {
        for shape in [vec![3u64, 4], vec![0, 0], vec![200_000, 4_000_000], vec![7]] {
            let d = NpyDtype::new(Kind::Float, 4, false);
            let bytes = encode_header(&d, &shape);
            assert_eq!(bytes.len() % ALIGN, 0);
            assert_eq!(*bytes.last().unwrap(), b'\n');
            let h = read_header(&mut &bytes[..]).unwrap();
            assert_eq!(h.shape, shape);
            assert_eq!(h.data_offset as usize, bytes.len());
            assert_eq!(h.dtype, d);
        }
    }
}
