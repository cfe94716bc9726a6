//! Value dtypes (FORMAT.md §1) and the typed buffers and views built on them.

use crate::error::{Error, Result};

/// The element type of a matrix's values. The numbers are the codes stored in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum DType {
    F32 = 1,
    F64 = 2,
    I32 = 3,
    I64 = 4,
    U32 = 5,
    U64 = 6,
}

impl DType {
    /// Every dtype, in code order.
    pub const ALL: [DType; 6] = [DType::F32, DType::F64, DType::I32, DType::I64, DType::U32, DType::U64];

    /// The code stored in the file.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The dtype for a stored code, if it is one.
    pub fn from_code(code: u8) -> Option<DType> {
        DType::ALL.into_iter().find(|d| d.code() == code)
    }

    /// Bytes per value.
    pub fn size(self) -> usize {
        match self {
            DType::F32 | DType::I32 | DType::U32 => 4,
            DType::F64 | DType::I64 | DType::U64 => 8,
        }
    }

    /// The numpy-style name: `f32` here is numpy's `float32`.
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F64 => "f64",
            DType::I32 => "i32",
            DType::I64 => "i64",
            DType::U32 => "u32",
            DType::U64 => "u64",
        }
    }

    /// Whether the dtype is a floating-point type.
    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F64)
    }
}

impl std::fmt::Display for DType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for DType {
    type Err = Error;
    fn from_str(s: &str) -> Result<DType> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "f32" | "float32" => DType::F32,
            "f64" | "float64" => DType::F64,
            "i32" | "int32" => DType::I32,
            "i64" | "int64" => DType::I64,
            "u32" | "uint32" => DType::U32,
            "u64" | "uint64" => DType::U64,
            _ => {
                return Err(Error::UnknownName {
                    what: "dtype",
                    name: s.to_string(),
                    expected: "f32, f64, i32, i64, u32, u64",
                })
            }
        })
    }
}

/// A Rust type that can be a matrix value.
pub trait Element: bytemuck::Pod + PartialEq + std::fmt::Debug + std::fmt::Display + Send + Sync + 'static {
    /// The matching dtype.
    const DTYPE: DType;
    /// The value as a [`Scalar`].
    fn scalar(self) -> Scalar;
    /// Borrow a typed slice out of dynamically typed values, if the dtype matches.
    fn slice<'a>(values: &Values<'a>) -> Option<&'a [Self]>;
    /// Wrap an owned vector.
    fn into_vec(v: Vec<Self>) -> ValueVec;
    /// Borrow the typed vector out of an owned buffer, if the dtype matches.
    fn vec_mut(values: &mut ValueVec) -> Option<&mut Vec<Self>>;
    /// `self + other`, or `None` when an integer sum overflows. Float sums never fail.
    fn checked_add(self, other: Self) -> Option<Self>;
}

macro_rules! element {
    ($t:ty, $variant:ident, $kind:ident) => {
        impl Element for $t {
            const DTYPE: DType = DType::$variant;
            fn scalar(self) -> Scalar {
                Scalar::$variant(self)
            }
            fn slice<'a>(values: &Values<'a>) -> Option<&'a [Self]> {
                match values {
                    Values::$variant(s) => Some(s),
                    _ => None,
                }
            }
            fn into_vec(v: Vec<Self>) -> ValueVec {
                ValueVec::$variant(v)
            }
            fn vec_mut(values: &mut ValueVec) -> Option<&mut Vec<Self>> {
                match values {
                    ValueVec::$variant(v) => Some(v),
                    _ => None,
                }
            }
            fn checked_add(self, other: Self) -> Option<Self> {
                element!(@add $kind, self, other)
            }
        }
        impl From<Vec<$t>> for ValueVec {
            fn from(v: Vec<$t>) -> ValueVec {
                ValueVec::$variant(v)
            }
        }
    };
    (@add float, $a:expr, $b:expr) => {
        Some($a + $b)
    };
    (@add int, $a:expr, $b:expr) => {
        $a.checked_add($b)
    };
}
element!(f32, F32, float);
element!(f64, F64, float);
element!(i32, I32, int);
element!(i64, I64, int);
element!(u32, U32, int);
element!(u64, U64, int);

/// Runs `$body` with `$v` bound to the typed slice or vector inside a dtype enum.
#[macro_export]
#[doc(hidden)]
macro_rules! with_values {
    ($e:expr, $v:ident => $body:expr) => {
        match $e {
            $crate::Values::F32($v) => $body,
            $crate::Values::F64($v) => $body,
            $crate::Values::I32($v) => $body,
            $crate::Values::I64($v) => $body,
            $crate::Values::U32($v) => $body,
            $crate::Values::U64($v) => $body,
        }
    };
}

/// Runs `$body` with `$v` bound to the typed vector inside a [`ValueVec`].
#[macro_export]
#[doc(hidden)]
macro_rules! with_value_vec {
    ($e:expr, $v:ident => $body:expr) => {
        match $e {
            $crate::ValueVec::F32($v) => $body,
            $crate::ValueVec::F64($v) => $body,
            $crate::ValueVec::I32($v) => $body,
            $crate::ValueVec::I64($v) => $body,
            $crate::ValueVec::U32($v) => $body,
            $crate::ValueVec::U64($v) => $body,
        }
    };
}

/// One value of any dtype, exactly as stored.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scalar {
    F32(f32),
    F64(f64),
    I32(i32),
    I64(i64),
    U32(u32),
    U64(u64),
}

impl Scalar {
    /// The zero of a dtype: what an absent entry holds.
    pub fn zero(dtype: DType) -> Scalar {
        match dtype {
            DType::F32 => Scalar::F32(0.0),
            DType::F64 => Scalar::F64(0.0),
            DType::I32 => Scalar::I32(0),
            DType::I64 => Scalar::I64(0),
            DType::U32 => Scalar::U32(0),
            DType::U64 => Scalar::U64(0),
        }
    }

    /// The value as f64 (exact for every f32 and i32/u32; rounded for large 64-bit integers).
    pub fn to_f64(self) -> f64 {
        match self {
            Scalar::F32(v) => v as f64,
            Scalar::F64(v) => v,
            Scalar::I32(v) => v as f64,
            Scalar::I64(v) => v as f64,
            Scalar::U32(v) => v as f64,
            Scalar::U64(v) => v as f64,
        }
    }

    /// The value as a JSON number (integers stay exact).
    pub fn to_json(self) -> serde_json::Value {
        match self {
            Scalar::I32(v) => v.into(),
            Scalar::I64(v) => v.into(),
            Scalar::U32(v) => v.into(),
            Scalar::U64(v) => v.into(),
            // JSON has no NaN or infinity: they become null, as in Python's json with allow_nan off.
            f => serde_json::Number::from_f64(f.to_f64()).map_or(serde_json::Value::Null, Into::into),
        }
    }
}

impl std::fmt::Display for Scalar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scalar::F32(v) => write!(f, "{v}"),
            Scalar::F64(v) => write!(f, "{v}"),
            Scalar::I32(v) => write!(f, "{v}"),
            Scalar::I64(v) => write!(f, "{v}"),
            Scalar::U32(v) => write!(f, "{v}"),
            Scalar::U64(v) => write!(f, "{v}"),
        }
    }
}

/// Borrowed values of a row or chunk, in the matrix's dtype.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Values<'a> {
    F32(&'a [f32]),
    F64(&'a [f64]),
    I32(&'a [i32]),
    I64(&'a [i64]),
    U32(&'a [u32]),
    U64(&'a [u64]),
}

impl<'a> Values<'a> {
    /// The dtype of the values.
    pub fn dtype(&self) -> DType {
        with_values!(self, v => element_dtype(v))
    }
    /// Number of values.
    pub fn len(&self) -> usize {
        with_values!(self, v => v.len())
    }
    /// Whether there are no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The value at `i` (panics past the end, like slice indexing).
    pub fn get(&self, i: usize) -> Scalar {
        with_values!(self, v => v[i].scalar())
    }
    /// A sub-range, like slice indexing.
    pub fn slice(&self, range: std::ops::Range<usize>) -> Values<'a> {
        match *self {
            Values::F32(v) => Values::F32(&v[range]),
            Values::F64(v) => Values::F64(&v[range]),
            Values::I32(v) => Values::I32(&v[range]),
            Values::I64(v) => Values::I64(&v[range]),
            Values::U32(v) => Values::U32(&v[range]),
            Values::U64(v) => Values::U64(&v[range]),
        }
    }
    /// The raw little-endian bytes.
    pub fn as_bytes(&self) -> &'a [u8] {
        with_values!(*self, v => bytemuck::cast_slice(v))
    }
    /// The values as f64, one by one.
    pub fn iter_f64(&self) -> impl Iterator<Item = f64> + 'a {
        let v = *self;
        (0..v.len()).map(move |i| v.get(i).to_f64())
    }
    /// Typed access: `Some` when `T` is the dtype.
    pub fn typed<T: Element>(&self) -> Option<&'a [T]> {
        T::slice(self)
    }
    /// Parse a dtype's little-endian bytes; `None` when misaligned or of a bad length.
    pub(crate) fn from_bytes(dtype: DType, bytes: &'a [u8]) -> Option<Values<'a>> {
        Some(match dtype {
            DType::F32 => Values::F32(bytemuck::try_cast_slice(bytes).ok()?),
            DType::F64 => Values::F64(bytemuck::try_cast_slice(bytes).ok()?),
            DType::I32 => Values::I32(bytemuck::try_cast_slice(bytes).ok()?),
            DType::I64 => Values::I64(bytemuck::try_cast_slice(bytes).ok()?),
            DType::U32 => Values::U32(bytemuck::try_cast_slice(bytes).ok()?),
            DType::U64 => Values::U64(bytemuck::try_cast_slice(bytes).ok()?),
        })
    }
}

fn element_dtype<T: Element>(_: &[T]) -> DType {
    T::DTYPE
}

/// Owned values in one dtype.
#[derive(Debug, Clone, PartialEq)]
pub enum ValueVec {
    F32(Vec<f32>),
    F64(Vec<f64>),
    I32(Vec<i32>),
    I64(Vec<i64>),
    U32(Vec<u32>),
    U64(Vec<u64>),
}

impl ValueVec {
    /// An empty buffer of a dtype.
    pub fn new(dtype: DType) -> ValueVec {
        Self::with_capacity(dtype, 0)
    }
    /// An empty buffer of a dtype with room for `n` values.
    pub fn with_capacity(dtype: DType, n: usize) -> ValueVec {
        match dtype {
            DType::F32 => ValueVec::F32(Vec::with_capacity(n)),
            DType::F64 => ValueVec::F64(Vec::with_capacity(n)),
            DType::I32 => ValueVec::I32(Vec::with_capacity(n)),
            DType::I64 => ValueVec::I64(Vec::with_capacity(n)),
            DType::U32 => ValueVec::U32(Vec::with_capacity(n)),
            DType::U64 => ValueVec::U64(Vec::with_capacity(n)),
        }
    }
    /// Borrow as [`Values`].
    pub fn as_values(&self) -> Values<'_> {
        match self {
            ValueVec::F32(v) => Values::F32(v),
            ValueVec::F64(v) => Values::F64(v),
            ValueVec::I32(v) => Values::I32(v),
            ValueVec::I64(v) => Values::I64(v),
            ValueVec::U32(v) => Values::U32(v),
            ValueVec::U64(v) => Values::U64(v),
        }
    }
    /// The dtype.
    pub fn dtype(&self) -> DType {
        self.as_values().dtype()
    }
    /// Number of values.
    pub fn len(&self) -> usize {
        with_value_vec!(self, v => v.len())
    }
    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Forget all values, keeping the allocation.
    pub fn clear(&mut self) {
        with_value_vec!(self, v => v.clear())
    }
    /// Append values of the same dtype.
    pub fn extend_from(&mut self, values: Values<'_>) -> Result<()> {
        let (actual, requested) = (self.dtype(), values.dtype());
        let mismatch = || Error::DTypeMismatch { actual, requested };
        match (self, values) {
            (ValueVec::F32(a), Values::F32(b)) => a.extend_from_slice(b),
            (ValueVec::F64(a), Values::F64(b)) => a.extend_from_slice(b),
            (ValueVec::I32(a), Values::I32(b)) => a.extend_from_slice(b),
            (ValueVec::I64(a), Values::I64(b)) => a.extend_from_slice(b),
            (ValueVec::U32(a), Values::U32(b)) => a.extend_from_slice(b),
            (ValueVec::U64(a), Values::U64(b)) => a.extend_from_slice(b),
            _ => return Err(mismatch()),
        }
        Ok(())
    }
    /// `n` zeros of a dtype.
    pub(crate) fn zeroed(dtype: DType, n: usize) -> ValueVec {
        match dtype {
            DType::F32 => ValueVec::F32(vec![0.0; n]),
            DType::F64 => ValueVec::F64(vec![0.0; n]),
            DType::I32 => ValueVec::I32(vec![0; n]),
            DType::I64 => ValueVec::I64(vec![0; n]),
            DType::U32 => ValueVec::U32(vec![0; n]),
            DType::U64 => ValueVec::U64(vec![0; n]),
        }
    }
    /// The values' bytes, writable.
    pub(crate) fn bytes_mut(&mut self) -> &mut [u8] {
        with_value_vec!(self, v => bytemuck::cast_slice_mut(v.as_mut_slice()))
    }
}

/// Borrowed unsigned integers stored 4 or 8 bytes wide: column indices, row offsets, row ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Indices<'a> {
    U32(&'a [u32]),
    U64(&'a [u64]),
}

impl<'a> Indices<'a> {
    /// Number of entries.
    pub fn len(&self) -> usize {
        match self {
            Indices::U32(s) => s.len(),
            Indices::U64(s) => s.len(),
        }
    }
    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Entry `i` (panics past the end, like slice indexing).
    #[inline]
    pub fn get(&self, i: usize) -> u64 {
        match self {
            Indices::U32(s) => s[i] as u64,
            Indices::U64(s) => s[i],
        }
    }
    /// A sub-range, like slice indexing.
    pub fn slice(&self, range: std::ops::Range<usize>) -> Indices<'a> {
        match *self {
            Indices::U32(s) => Indices::U32(&s[range]),
            Indices::U64(s) => Indices::U64(&s[range]),
        }
    }
    /// Every entry as u64.
    pub fn iter(&self) -> impl Iterator<Item = u64> + 'a {
        let s = *self;
        (0..s.len()).map(move |i| s.get(i))
    }
    /// Binary search for `x`; `Ok(position)` when present.
    pub fn binary_search(&self, x: u64) -> std::result::Result<usize, usize> {
        match self {
            Indices::U32(s) => match u32::try_from(x) {
                Ok(x) => s.binary_search(&x),
                Err(_) => Err(s.len()),
            },
            Indices::U64(s) => s.binary_search(&x),
        }
    }
    /// The raw little-endian bytes.
    pub fn as_bytes(&self) -> &'a [u8] {
        match *self {
            Indices::U32(s) => bytemuck::cast_slice(s),
            Indices::U64(s) => bytemuck::cast_slice(s),
        }
    }
    /// Width in bytes of one entry.
    pub fn width(&self) -> usize {
        match self {
            Indices::U32(_) => 4,
            Indices::U64(_) => 8,
        }
    }
    /// Parse little-endian bytes of the given width; `None` when misaligned or of a bad length.
    pub(crate) fn from_bytes(width: usize, bytes: &'a [u8]) -> Option<Indices<'a>> {
        match width {
            4 => bytemuck::try_cast_slice(bytes).ok().map(Indices::U32),
            8 => bytemuck::try_cast_slice(bytes).ok().map(Indices::U64),
            _ => None,
        }
    }
}

/// Owned unsigned integers stored 4 or 8 bytes wide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexVec {
    U32(Vec<u32>),
    U64(Vec<u64>),
}

impl IndexVec {
    /// An empty buffer of a width (4 or 8).
    pub fn new(width: usize) -> IndexVec {
        if width == 4 {
            IndexVec::U32(Vec::new())
        } else {
            IndexVec::U64(Vec::new())
        }
    }
    /// Borrow as [`Indices`].
    pub fn as_indices(&self) -> Indices<'_> {
        match self {
            IndexVec::U32(v) => Indices::U32(v),
            IndexVec::U64(v) => Indices::U64(v),
        }
    }
    /// Number of entries.
    pub fn len(&self) -> usize {
        self.as_indices().len()
    }
    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Append one entry; the caller has checked that it fits the width.
    #[inline]
    pub(crate) fn push(&mut self, x: u64) {
        match self {
            IndexVec::U32(v) => v.push(x as u32),
            IndexVec::U64(v) => v.push(x),
        }
    }
    /// Bytes held.
    pub(crate) fn heap_bytes(&self) -> usize {
        match self {
            IndexVec::U32(v) => v.capacity() * 4,
            IndexVec::U64(v) => v.capacity() * 8,
        }
    }
}

/// An integer type accepted as a row or column index on input: any primitive integer.
/// Negative values are refused with [`Error::BadIndex`].
pub trait IndexLike: Copy + std::fmt::Display {
    /// The index as u64, or `None` when negative.
    fn to_u64(self) -> Option<u64>;
}

macro_rules! index_like {
    ($($t:ty),*) => {$(
        impl IndexLike for $t {
            #[inline]
            fn to_u64(self) -> Option<u64> {
                u64::try_from(self).ok()
            }
        }
    )*};
}
index_like!(u8, u16, u32, u64, usize, i8, i16, i32, i64, isize);
