//! numpy dtypes (`descr` strings such as `<f8`, `>i4`, `|b1`) and how their elements
//! become vecfmt values.
//!
//! vecfmt holds f32, f64, i32, i64, u32 and u64. Those numpy dtypes map one to one. The
//! narrower integers widen losslessly to the nearest vecfmt dtype: int8 and int16 to i32;
//! uint8, uint16 and bool to u32. float16 widens to f32 (or f64) only when the caller asks
//! for it ([`ReadOptions::half_as`](crate::ReadOptions)). Everything else (complex, strings, datetimes,
//! objects, records, long double) is refused with a message naming the dtype.

use vecfmt::{DType, Element, ValueVec};

/// A numpy dtype vecfmt does not read. The reader that names the file (and, in a `.npz`,
/// the member) wraps it in [`crate::Error::Dtype`].
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DtypeError {
    /// Python objects (`|O`), which numpy pickles.
    #[error("pickled object array, not supported (dtype '{descr}' holds Python objects that numpy pickles; save a numeric array instead)")]
    Pickled { descr: String },
    /// A dtype that is not one of the numeric ones vecfmt reads; `what` says what it is.
    #[error(
        "unsupported dtype '{descr}' ({what}); vecfmt reads float16/32/64, int8/16/32/64, uint8/16/32/64 and bool"
    )]
    Unsupported { descr: String, what: &'static str },
    /// float16, without a target dtype for it ([`ReadOptions::half_as`](crate::ReadOptions)).
    #[error("unsupported dtype float16: vecfmt has no 16-bit float; it reads float16 only when told to widen it to f32 or f64")]
    Float16,
}

/// What kind of number a numpy dtype holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Float,
    Int,
    UInt,
    Bool,
}

/// A numeric numpy dtype: kind, bytes per element and byte order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NpyDtype {
    kind: Kind,
    size: usize,
    big_endian: bool,
}

impl NpyDtype {
    /// A dtype; single-byte dtypes have no byte order.
    pub fn new(kind: Kind, size: usize, big_endian: bool) -> Self {
        NpyDtype {
            kind,
            size,
            big_endian: big_endian && size > 1,
        }
    }

    /// The little-endian numpy dtype that holds a vecfmt dtype exactly.
    pub fn of(d: DType) -> Self {
        let kind = match d {
            DType::F32 | DType::F64 => Kind::Float,
            DType::I32 | DType::I64 => Kind::Int,
            DType::U32 | DType::U64 => Kind::UInt,
        };
        NpyDtype::new(kind, d.size(), false)
    }

    /// Parses a `descr` string. Unsupported dtypes give a message that names them.
    pub fn parse(descr: &str) -> Result<Self, DtypeError> {
        let unsupported = |what: &'static str| DtypeError::Unsupported {
            descr: descr.to_string(),
            what,
        };
        let (order, rest) = match descr.as_bytes().first() {
            Some(b'<' | b'|' | b'=') => (false, &descr[1..]),
            Some(b'>') => (true, &descr[1..]),
            _ => (false, descr),
        };
        if rest.starts_with('O') {
            return Err(DtypeError::Pickled {
                descr: descr.to_string(),
            });
        }
        let mut chars = rest.chars();
        let code = chars.next().ok_or_else(|| unsupported("empty"))?;
        if matches!(code, 'M' | 'm') {
            return Err(unsupported("datetime"));
        }
        let size: usize = match chars.as_str().parse() {
            Ok(s) => s,
            Err(_) => return Err(unsupported("not a plain numeric dtype")),
        };
        let kind = match (code, size) {
            ('f', 2 | 4 | 8) => Kind::Float,
            ('i', 1 | 2 | 4 | 8) => Kind::Int,
            ('u', 1 | 2 | 4 | 8) => Kind::UInt,
            ('b', 1) => Kind::Bool,
            ('f', _) => return Err(unsupported("long double")),
            ('c', _) => return Err(unsupported("complex")),
            ('U' | 'S' | 'a', _) => return Err(unsupported("strings")),
            ('V', _) => return Err(unsupported("raw bytes or records")),
            ('M' | 'm', _) => return Err(unsupported("datetime")),
            _ => return Err(unsupported("not a numeric dtype")),
        };
        Ok(NpyDtype::new(kind, size, order))
    }

    /// The `descr` string numpy writes for this dtype.
    pub fn descr(&self) -> String {
        let code = match self.kind {
            Kind::Float => 'f',
            Kind::Int => 'i',
            Kind::UInt => 'u',
            Kind::Bool => 'b',
        };
        let order = if self.size == 1 {
            '|'
        } else if self.big_endian {
            '>'
        } else {
            '<'
        };
        format!("{order}{code}{}", self.size)
    }

    /// numpy's name for it: `float32`, `uint8`, `bool`.
    pub fn name(&self) -> String {
        match self.kind {
            Kind::Float => format!("float{}", self.size * 8),
            Kind::Int => format!("int{}", self.size * 8),
            Kind::UInt => format!("uint{}", self.size * 8),
            Kind::Bool => "bool".into(),
        }
    }

    /// The kind of number.
    pub fn kind(&self) -> Kind {
        self.kind
    }
    /// Bytes per element.
    pub fn size(&self) -> usize {
        self.size
    }
    /// Whether the bytes are big-endian (`>` in the descr).
    pub fn is_big_endian(&self) -> bool {
        self.big_endian
    }
    /// Whether this is an integer dtype (usable for indices).
    pub fn is_integer(&self) -> bool {
        matches!(self.kind, Kind::Int | Kind::UInt)
    }

    /// The vecfmt dtype the values become. `half_as` is where float16 goes (f32 or f64), when
    /// the caller allows it. The flag says whether the values are widened.
    pub fn target(&self, half_as: Option<DType>) -> Result<(DType, bool), DtypeError> {
        Ok(match (self.kind, self.size) {
            (Kind::Float, 4) => (DType::F32, false),
            (Kind::Float, 8) => (DType::F64, false),
            (Kind::Int, 4) => (DType::I32, false),
            (Kind::Int, 8) => (DType::I64, false),
            (Kind::UInt, 4) => (DType::U32, false),
            (Kind::UInt, 8) => (DType::U64, false),
            (Kind::Int, _) => (DType::I32, true),
            (Kind::UInt | Kind::Bool, _) => (DType::U32, true),
            (Kind::Float, _) => match half_as {
                Some(d @ (DType::F32 | DType::F64)) => (d, true),
                _ => return Err(DtypeError::Float16),
            },
        })
    }

    /// The element decoder from this dtype into `target` (as given by [`NpyDtype::target`]).
    pub(crate) fn decoder(&self, target: DType) -> Option<Box<dyn Decoder>> {
        let big = self.big_endian;
        macro_rules! conv {
            ($s:ty, $d:ty, $f:expr) => {
                Some(Box::new(Conv::<$s, $d> { big, f: $f }) as Box<dyn Decoder>)
            };
        }
        match (self.kind, self.size, target) {
            (Kind::Float, 4, DType::F32) => conv!(f32, f32, |x| x),
            (Kind::Float, 8, DType::F64) => conv!(f64, f64, |x| x),
            (Kind::Int, 4, DType::I32) => conv!(i32, i32, |x| x),
            (Kind::Int, 8, DType::I64) => conv!(i64, i64, |x| x),
            (Kind::UInt, 4, DType::U32) => conv!(u32, u32, |x| x),
            (Kind::UInt, 8, DType::U64) => conv!(u64, u64, |x| x),
            (Kind::Int, 1, DType::I32) => conv!(i8, i32, i32::from),
            (Kind::Int, 2, DType::I32) => conv!(i16, i32, i32::from),
            (Kind::UInt, 1, DType::U32) => conv!(u8, u32, u32::from),
            (Kind::Bool, 1, DType::U32) => conv!(u8, u32, |x| u32::from(x != 0)),
            (Kind::UInt, 2, DType::U32) => conv!(u16, u32, u32::from),
            (Kind::Float, 2, DType::F32) => conv!(F16, f32, |x: F16| x.to_f32()),
            (Kind::Float, 2, DType::F64) => conv!(F16, f64, |x: F16| f64::from(x.to_f32())),
            _ => None,
        }
    }

    /// Decodes integer elements as u64 indices. `Err` carries the first negative value.
    pub(crate) fn decode_indices(&self, bytes: &[u8], out: &mut Vec<u64>) -> Result<(), i64> {
        let big = self.big_endian;
        macro_rules! go {
            ($t:ty) => {{
                for c in bytes.chunks_exact(<$t as Raw>::SIZE) {
                    let x = <$t as Raw>::read(c, big);
                    #[allow(unused_comparisons, reason = "the macro covers unsigned types too")]
                    if x < 0 {
                        return Err(x as i64);
                    }
                    out.push(x as u64);
                }
            }};
        }
        match (self.kind, self.size) {
            (Kind::Int, 1) => go!(i8),
            (Kind::Int, 2) => go!(i16),
            (Kind::Int, 4) => go!(i32),
            (Kind::Int, 8) => go!(i64),
            (Kind::UInt | Kind::Bool, 1) => go!(u8),
            (Kind::UInt, 2) => go!(u16),
            (Kind::UInt, 4) => go!(u32),
            (Kind::UInt, 8) => go!(u64),
            _ => unreachable!("callers check is_integer"),
        }
        Ok(())
    }
}

/// Turns runs of numpy elements into vecfmt values.
pub(crate) trait Decoder: Send + Sync {
    /// Appends every element of `bytes` whose bit pattern is not all zero, with its position
    /// plus `base` as the column. Only all-zero bits are dropped, so `-0.0` and NaN stay.
    fn push_nonzero(&self, bytes: &[u8], base: u64, cols: &mut Vec<u64>, values: &mut ValueVec);
    /// Appends every element of `bytes`.
    fn push_all(&self, bytes: &[u8], values: &mut ValueVec);
}

struct Conv<S, D> {
    big: bool,
    f: fn(S) -> D,
}

impl<S: Raw, D: Element> Decoder for Conv<S, D> {
    fn push_nonzero(&self, bytes: &[u8], base: u64, cols: &mut Vec<u64>, values: &mut ValueVec) {
        let out = D::vec_mut(values).expect("the decoder is made for this dtype");
        for (k, c) in bytes.chunks_exact(S::SIZE).enumerate() {
            if c.iter().any(|&b| b != 0) {
                cols.push(base + k as u64);
                out.push((self.f)(S::read(c, self.big)));
            }
        }
    }
    fn push_all(&self, bytes: &[u8], values: &mut ValueVec) {
        let out = D::vec_mut(values).expect("the decoder is made for this dtype");
        out.extend(bytes.chunks_exact(S::SIZE).map(|c| (self.f)(S::read(c, self.big))));
    }
}

/// A fixed-size element read from bytes in either byte order.
pub(crate) trait Raw: Copy + Send + 'static {
    const SIZE: usize;
    fn read(b: &[u8], big: bool) -> Self;
}

macro_rules! raw {
    ($($t:ty),*) => {$(
        impl Raw for $t {
            const SIZE: usize = std::mem::size_of::<$t>();
            #[inline]
            fn read(b: &[u8], big: bool) -> Self {
                let a: [u8; std::mem::size_of::<$t>()] = b.try_into().expect("chunks of the element size");
                if big { <$t>::from_be_bytes(a) } else { <$t>::from_le_bytes(a) }
            }
        }
    )*};
}
raw!(u8, i8, u16, i16, u32, i32, u64, i64, f32, f64);

/// An IEEE 754 half-precision float, as numpy's float16 stores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct F16(pub u16);

impl Raw for F16 {
    const SIZE: usize = 2;
    fn read(b: &[u8], big: bool) -> Self {
        F16(u16::read(b, big))
    }
}

impl F16 {
    /// Exact conversion (every half is an f32).
    pub(crate) fn to_f32(self) -> f32 {
        let h = self.0 as u32;
        let sign = (h & 0x8000) << 16;
        let exp = (h >> 10) & 0x1f;
        let man = h & 0x3ff;
        let bits = match (exp, man) {
            (0, 0) => sign,
            (0, _) => {
                // Subnormal half: normalise into an f32 exponent.
                let shift = man.leading_zeros() - 21;
                let man = (man << shift) & 0x3ff;
                sign | ((127 - 15 + 1 - shift) << 23) | (man << 13)
            }
            (0x1f, _) => sign | 0x7f80_0000 | (man << 13),
            _ => sign | ((exp + 127 - 15) << 23) | (man << 13),
        };
        f32::from_bits(bits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descr_round_trip() {
        for d in [
            "<f4", "<f8", "<i4", "<i8", "<u4", "<u8", "|i1", "<i2", "|u1", "<u2", "|b1", "<f2", ">f8", ">i2",
        ] {
            assert_eq!(NpyDtype::parse(d).unwrap().descr(), d);
        }
        assert_eq!(NpyDtype::parse("=f8").unwrap().descr(), "<f8");
        assert_eq!(NpyDtype::parse(">u1").unwrap().descr(), "|u1");
        assert_eq!(NpyDtype::parse("<i2").unwrap().name(), "int16");
        assert_eq!(NpyDtype::parse("|b1").unwrap().name(), "bool");
    }

    #[test]
    fn unsupported_dtypes_are_named() {
        assert!(NpyDtype::parse("|O")
            .unwrap_err()
            .to_string()
            .starts_with("pickled object array, not supported"));
        for (d, what) in [
            ("<c8", "complex"),
            ("<U5", "strings"),
            ("|S3", "strings"),
            ("<M8[ns]", "datetime"),
            ("<f16", "long double"),
            ("|V8", "records"),
        ] {
            let e = NpyDtype::parse(d).unwrap_err().to_string();
            assert!(
                e.contains(&format!("unsupported dtype '{d}'")) && e.contains(what),
                "{e}"
            );
        }
    }

    #[test]
    fn targets_and_widening() {
        let t = |d: &str| NpyDtype::parse(d).unwrap().target(None);
        assert_eq!(t("<f4").unwrap(), (DType::F32, false));
        assert_eq!(t(">u8").unwrap(), (DType::U64, false));
        assert_eq!(t("<i2").unwrap(), (DType::I32, true));
        assert_eq!(t("|b1").unwrap(), (DType::U32, true));
        assert_eq!(t("<f2").unwrap_err(), DtypeError::Float16);
        let half = NpyDtype::parse("<f2").unwrap();
        assert_eq!(half.target(Some(DType::F32)).unwrap(), (DType::F32, true));
        assert!(half.target(Some(DType::I32)).is_err());
    }

    #[test]
    fn decoders_swap_bytes_and_drop_only_zero_bits() {
        let d = NpyDtype::parse(">f8").unwrap();
        let mut bytes = Vec::new();
        for x in [0.0f64, -0.0, 1.5, f64::NAN, 0.0] {
            bytes.extend_from_slice(&x.to_be_bytes());
        }
        let dec = d.decoder(DType::F64).unwrap();
        let (mut cols, mut vals) = (Vec::new(), ValueVec::new(DType::F64));
        dec.push_nonzero(&bytes, 10, &mut cols, &mut vals);
        assert_eq!(cols, vec![11, 12, 13]);
        let ValueVec::F64(v) = &vals else { panic!() };
        assert_eq!(v[0].to_bits(), (-0.0f64).to_bits());
        assert_eq!(v[1], 1.5);
        assert!(v[2].is_nan());
        let dec = NpyDtype::parse("<i2").unwrap().decoder(DType::I32).unwrap();
        let mut vals = ValueVec::new(DType::I32);
        dec.push_all(&[0xff, 0xff, 0x02, 0x00], &mut vals);
        assert_eq!(vals, ValueVec::I32(vec![-1, 2]));
        let dec = NpyDtype::parse("|b1").unwrap().decoder(DType::U32).unwrap();
        let mut vals = ValueVec::new(DType::U32);
        dec.push_all(&[0, 1, 1], &mut vals);
        assert_eq!(vals, ValueVec::U32(vec![0, 1, 1]));
    }

    #[test]
    fn half_floats_are_exact() {
        assert_eq!(F16(0x3c00).to_f32(), 1.0);
        assert_eq!(F16(0xc000).to_f32(), -2.0);
        assert_eq!(F16(0x7bff).to_f32(), 65504.0);
        assert_eq!(F16(0x0001).to_f32(), 2f32.powi(-24));
        assert_eq!(F16(0x03ff).to_f32(), 1023.0 * 2f32.powi(-24));
        assert_eq!(F16(0x0400).to_f32(), 2f32.powi(-14));
        assert_eq!(F16(0x7c00).to_f32(), f32::INFINITY);
        assert!(F16(0x7e00).to_f32().is_nan());
        assert_eq!(F16(0x8000).to_f32().to_bits(), (-0.0f32).to_bits());
    }

    #[test]
    fn indices_refuse_negatives() {
        let d = NpyDtype::parse("<i4").unwrap();
        let mut out = Vec::new();
        let bytes: Vec<u8> = [3i32, -7].iter().flat_map(|x| x.to_le_bytes()).collect();
        assert_eq!(d.decode_indices(&bytes, &mut out), Err(-7));
        let d = NpyDtype::parse(">u8").unwrap();
        out.clear();
        d.decode_indices(&(1u64 << 40).to_be_bytes(), &mut out).unwrap();
        assert_eq!(out, vec![1 << 40]);
    }
}
