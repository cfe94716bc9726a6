//! One `add` call's arguments: ids (numpy integer arrays, a Python int, labels) and values
//! (numpy arrays or a scalar), borrowed from Python, checked as a whole before anything is
//! added, then converted slice by slice into the buffers the producers read.
//!
//! Arrays are read through their strides (an `ArrayView`), so a strided view is read as
//! the elements it shows, never as the memory under it; contiguous arrays take the fast path
//! of a plain slice.

use numpy::ndarray::{s, ArrayView1};
use numpy::{PyArrayDescrMethods, PyReadonlyArray1, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyFloat, PyInt, PyList, PyString, PyTuple};
use vecfmt::{Axis, DType};

use super::Fail;

/// The element types of the numpy arrays `add` reads.
pub(super) trait Num: numpy::Element + Copy + Sync + std::fmt::Display {
    /// The value as a float.
    fn to_f64(self) -> f64;
    /// The value as an integer, when it is a whole number (not a NaN, an infinity or a float
    /// with a fraction).
    fn to_int(self) -> Option<i128>;
}

macro_rules! int_num {
    ($($t:ty),*) => {$(
        impl Num for $t {
            #[inline]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline]
            fn to_int(self) -> Option<i128> {
                Some(self as i128)
            }
        }
    )*};
}
int_num!(i8, i16, i32, i64, u8, u16, u32, u64);

macro_rules! float_num {
    ($($t:ty),*) => {$(
        impl Num for $t {
            #[inline]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline]
            fn to_int(self) -> Option<i128> {
                // Beyond 2^100 no dtype holds it anyway; the bound keeps the cast exact.
                (self.is_finite() && self.fract() == 0.0 && self.abs() < 1e30).then(|| self as i128)
            }
        }
    )*};
}
float_num!(f32, f64);

/// A borrowed one-dimensional numpy array of one of the element types.
pub(super) enum Arr<'py> {
    I8(PyReadonlyArray1<'py, i8>),
    I16(PyReadonlyArray1<'py, i16>),
    I32(PyReadonlyArray1<'py, i32>),
    I64(PyReadonlyArray1<'py, i64>),
    U8(PyReadonlyArray1<'py, u8>),
    U16(PyReadonlyArray1<'py, u16>),
    U32(PyReadonlyArray1<'py, u32>),
    U64(PyReadonlyArray1<'py, u64>),
    F32(PyReadonlyArray1<'py, f32>),
    F64(PyReadonlyArray1<'py, f64>),
}

/// The elements of an [`Arr`], readable without the GIL.
#[derive(Clone)]
pub(super) enum View<'a> {
    I8(ArrayView1<'a, i8>),
    I16(ArrayView1<'a, i16>),
    I32(ArrayView1<'a, i32>),
    I64(ArrayView1<'a, i64>),
    U8(ArrayView1<'a, u8>),
    U16(ArrayView1<'a, u16>),
    U32(ArrayView1<'a, u32>),
    U64(ArrayView1<'a, u64>),
    F32(ArrayView1<'a, f32>),
    F64(ArrayView1<'a, f64>),
}

/// Runs `$body` with `$v` bound to the typed view inside a [`View`].
macro_rules! each {
    ($view:expr, $v:ident => $body:expr) => {
        match $view {
            View::I8($v) => $body,
            View::I16($v) => $body,
            View::I32($v) => $body,
            View::I64($v) => $body,
            View::U8($v) => $body,
            View::U16($v) => $body,
            View::U32($v) => $body,
            View::U64($v) => $body,
            View::F32($v) => $body,
            View::F64($v) => $body,
        }
    };
}

impl<'py> Arr<'py> {
    /// The array `obj` is, when it is a one-dimensional numpy array of a numeric dtype in
    /// native byte order; `None` when it is no numpy array at all.
    fn of(obj: &Bound<'py, PyAny>, what: &str) -> PyResult<Option<Arr<'py>>> {
        let Ok(a) = obj.cast::<PyUntypedArray>() else {
            return Ok(None);
        };
        if a.ndim() != 1 {
            return Err(Fail::Invalid(format!(
                "{what} must be one-dimensional, got an array of shape {:?}",
                a.shape()
            ))
            .into());
        }
        // Arrays that are not aligned (an unpickled buffer, a view at an odd offset) or not
        // in native byte order are copied into an aligned, native one first: reading them in
        // place would be undefined behaviour.
        let dt = a.dtype();
        let aligned: bool = obj.getattr("flags")?.getattr("aligned")?.extract()?;
        let native = dt.is_native_byteorder().unwrap_or(true);
        if !aligned || !native {
            let native_dt = if native {
                dt.clone().into_any()
            } else {
                dt.call_method1("newbyteorder", ("=",))?
            };
            let copy = obj.call_method1("astype", (native_dt,))?;
            return Arr::of(&copy, what);
        }
        let (kind, size) = (dt.kind(), dt.itemsize());
        let arr = match (kind, size) {
            (b'i', 1) => Arr::I8(obj.extract()?),
            (b'i', 2) => Arr::I16(obj.extract()?),
            (b'i', 4) => Arr::I32(obj.extract()?),
            (b'i', 8) => Arr::I64(obj.extract()?),
            (b'u', 1) => Arr::U8(obj.extract()?),
            (b'u', 2) => Arr::U16(obj.extract()?),
            (b'u', 4) => Arr::U32(obj.extract()?),
            (b'u', 8) => Arr::U64(obj.extract()?),
            (b'f', 4) => Arr::F32(obj.extract()?),
            (b'f', 8) => Arr::F64(obj.extract()?),
            _ => {
                return Err(PyTypeError::new_err(format!(
                    "{what} must be numbers, got an array of dtype {}",
                    dt.str()?
                )))
            }
        };
        Ok(Some(arr))
    }

    fn is_float(&self) -> bool {
        matches!(self, Arr::F32(_) | Arr::F64(_))
    }

    pub(super) fn view(&self) -> View<'_> {
        match self {
            Arr::I8(a) => View::I8(a.as_array()),
            Arr::I16(a) => View::I16(a.as_array()),
            Arr::I32(a) => View::I32(a.as_array()),
            Arr::I64(a) => View::I64(a.as_array()),
            Arr::U8(a) => View::U8(a.as_array()),
            Arr::U16(a) => View::U16(a.as_array()),
            Arr::U32(a) => View::U32(a.as_array()),
            Arr::U64(a) => View::U64(a.as_array()),
            Arr::F32(a) => View::F32(a.as_array()),
            Arr::F64(a) => View::F64(a.as_array()),
        }
    }
}

impl View<'_> {
    fn len(&self) -> usize {
        each!(self, v => v.len())
    }
}

/// The ids of one axis, as given.
pub(super) enum IdArg<'py> {
    /// One id for every update of the batch.
    One(u64),
    OneLabel(String),
    Labels(Vec<String>),
    Array(Arr<'py>),
}

impl<'py> IdArg<'py> {
    /// Reads `obj`: a Python int, a `str`, a list or tuple of `str`, or a one-dimensional
    /// numpy array of integers.
    pub(super) fn new(obj: &Bound<'py, PyAny>, axis: Axis) -> PyResult<IdArg<'py>> {
        let what = format!("{axis} ids");
        if obj.is_instance_of::<PyBool>() || obj.is_instance_of::<PyFloat>() {
            return Err(PyTypeError::new_err(format!(
                "{what} must be integers or labels (str), got {}",
                obj.get_type().name()?
            )));
        }
        if let Ok(i) = obj.cast::<PyInt>() {
            let id: i128 = i
                .extract()
                .map_err(|_| Fail::Invalid(format!("{axis} id {i} is out of range")))?;
            return u64::try_from(id)
                .map(IdArg::One)
                .map_err(|_| Fail::Invalid(format!("{axis} id {id} is negative")).into());
        }
        if let Ok(s) = obj.cast::<PyString>() {
            return Ok(IdArg::OneLabel(s.to_str()?.to_owned()));
        }
        if obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>() {
            return match obj.extract::<Vec<String>>() {
                Ok(labels) => Ok(IdArg::Labels(labels)),
                Err(_) => Err(PyTypeError::new_err(format!(
                    "{what}: a list must hold only labels (str); give integer ids as a numpy array"
                ))),
            };
        }
        match Arr::of(obj, &what)? {
            Some(a) if a.is_float() => Err(PyTypeError::new_err(format!(
                "{what} must be integers, got an array of floats; convert it with .astype(numpy.int64) if its values are whole"
            ))),
            Some(a) => Ok(IdArg::Array(a)),
            None => Err(PyTypeError::new_err(format!(
                "{what} must be an int, a str, a list of str or a numpy array of integers, got {}",
                obj.get_type().name()?
            ))),
        }
    }

    pub(super) fn view(&self) -> Ids<'_> {
        match self {
            IdArg::One(i) => Ids::One(*i),
            IdArg::OneLabel(l) => Ids::OneLabel(l),
            IdArg::Labels(l) => Ids::Labels(l),
            IdArg::Array(a) => Ids::Array(a.view()),
        }
    }
}

/// The ids of one axis, readable without the GIL.
pub(super) enum Ids<'a> {
    One(u64),
    OneLabel(&'a str),
    Labels(&'a [String]),
    Array(View<'a>),
}

impl Ids<'_> {
    /// The number of ids, `None` for one id repeated.
    fn len(&self) -> Option<usize> {
        match self {
            Ids::One(_) | Ids::OneLabel(_) => None,
            Ids::Labels(l) => Some(l.len()),
            Ids::Array(v) => Some(v.len()),
        }
    }

    pub(super) fn is_labels(&self) -> bool {
        matches!(self, Ids::OneLabel(_) | Ids::Labels(_))
    }

    /// Checks every integer id: not negative, and below `limit`.
    fn check(&self, axis: Axis, limit: u64, limit_why: &str) -> Result<(), Fail> {
        let bad = |pos: Option<usize>, id: i128| {
            let at = pos.map_or(String::new(), |k| format!(" (at position {k} of the batch)"));
            if id < 0 {
                Fail::Invalid(format!("{axis} id {id}{at} is negative"))
            } else {
                Fail::Invalid(format!("{axis} id {id}{at} is out of range: {limit_why}"))
            }
        };
        match self {
            Ids::One(i) if *i >= limit => Err(bad(None, *i as i128)),
            Ids::Array(view) => each!(view, v => {
                // One pass for the extremes; the position only when one is out of range.
                let (mut lo, mut hi) = (0i128, 0i128);
                match v.as_slice() {
                    Some(s) => s.iter().for_each(|&x| {
                        let x = x.to_int().unwrap_or(-1);
                        lo = lo.min(x);
                        hi = hi.max(x);
                    }),
                    None => v.iter().for_each(|&x| {
                        let x = x.to_int().unwrap_or(-1);
                        lo = lo.min(x);
                        hi = hi.max(x);
                    }),
                }
                if lo < 0 || hi >= limit as i128 {
                    let (k, x) = v
                        .iter()
                        .enumerate()
                        .map(|(k, &x)| (k, x.to_int().unwrap_or(-1)))
                        .find(|&(_, x)| x < 0 || x >= limit as i128)
                        .unwrap_or((0, lo.min(hi)));
                    return Err(bad(Some(k), x));
                }
                Ok(())
            }),
            _ => Ok(()),
        }
    }
}

/// Appends the ids `range` of `v` to `out`. The ids were checked; an id that changed since
/// (another thread writing the array) becomes one that the producer refuses.
#[inline]
fn fill_ids<T: Num>(v: &ArrayView1<'_, T>, range: std::ops::Range<usize>, out: &mut Vec<u64>) {
    let conv = |&x: &T| x.to_int().and_then(|i| u64::try_from(i).ok()).unwrap_or(u64::MAX);
    let part = v.slice(s![range]);
    match part.as_slice() {
        Some(s) => out.extend(s.iter().map(conv)),
        None => out.extend(part.iter().map(conv)),
    }
}

#[inline]
fn fill_f64<T: Num>(v: &ArrayView1<'_, T>, range: std::ops::Range<usize>, out: &mut Vec<f64>) {
    let part = v.slice(s![range]);
    match part.as_slice() {
        Some(s) => out.extend(s.iter().map(|&x| x.to_f64())),
        None => out.extend(part.iter().map(|&x| x.to_f64())),
    }
}

#[inline]
fn fill_int<T: Num>(v: &ArrayView1<'_, T>, range: std::ops::Range<usize>, out: &mut Vec<i128>) {
    // Checked whole; a value changed since by another thread becomes 0 rather than garbage.
    let part = v.slice(s![range]);
    match part.as_slice() {
        Some(s) => out.extend(s.iter().map(|&x| x.to_int().unwrap_or(0))),
        None => out.extend(part.iter().map(|&x| x.to_int().unwrap_or(0))),
    }
}

/// The values, as given.
pub(super) enum ValArg<'py> {
    Float(f64),
    Int(i128),
    Array(Arr<'py>),
}

impl<'py> ValArg<'py> {
    /// Reads `obj`: a Python int or float, or a one-dimensional numpy array of numbers.
    pub(super) fn new(obj: &Bound<'py, PyAny>) -> PyResult<ValArg<'py>> {
        if obj.is_instance_of::<PyBool>() {
            return Err(PyTypeError::new_err("values must be numbers, got bool"));
        }
        if let Ok(i) = obj.cast::<PyInt>() {
            return i
                .extract::<i128>()
                .map(ValArg::Int)
                .map_err(|_| Fail::DType(format!("value {i} does not fit any dtype")).into());
        }
        if let Ok(f) = obj.cast::<PyFloat>() {
            return Ok(ValArg::Float(f.value()));
        }
        match Arr::of(obj, "values")? {
            Some(a) => Ok(ValArg::Array(a)),
            None => Err(PyTypeError::new_err(format!(
                "values must be a number or a numpy array of numbers, got {}",
                obj.get_type().name()?
            ))),
        }
    }

    pub(super) fn view(&self) -> Vals<'_> {
        match self {
            ValArg::Float(x) => Vals::Float(*x),
            ValArg::Int(x) => Vals::Int(*x),
            ValArg::Array(a) => Vals::Array(a.view()),
        }
    }
}

/// The values, readable without the GIL.
pub(super) enum Vals<'a> {
    Float(f64),
    Int(i128),
    Array(View<'a>),
}

/// The range of values an integer dtype holds.
fn int_range(dtype: DType) -> (i128, i128) {
    match dtype {
        DType::I32 => (i32::MIN as i128, i32::MAX as i128),
        DType::I64 => (i64::MIN as i128, i64::MAX as i128),
        DType::U32 => (0, u32::MAX as i128),
        _ => (0, u64::MAX as i128),
    }
}

impl Vals<'_> {
    fn len(&self) -> Option<usize> {
        match self {
            Vals::Array(v) => Some(v.len()),
            _ => None,
        }
    }

    /// For an integer matrix: every value is a whole number that `dtype` holds.
    fn check(&self, dtype: DType) -> Result<(), Fail> {
        if dtype.is_float() {
            return Ok(());
        }
        let (lo, hi) = int_range(dtype);
        let bad = |pos: Option<usize>, text: String| {
            let at = pos.map_or(String::new(), |k| format!(" (at position {k} of the batch)"));
            Fail::DType(format!(
                "value {text}{at} cannot be added to a {dtype} matrix: {}",
                if text.contains("NaN") || text.contains("inf") {
                    "an integer matrix has no such value".to_owned()
                } else {
                    format!("it is not a whole number from {lo} to {hi}")
                }
            ))
        };
        let ok = |x: Option<i128>| x.is_some_and(|x| (lo..=hi).contains(&x));
        match self {
            Vals::Float(x) if !ok(x.to_int()) => Err(bad(None, x.to_string())),
            Vals::Int(x) if !ok(Some(*x)) => Err(bad(None, x.to_string())),
            Vals::Array(view) => each!(view, v => {
                let all = match v.as_slice() {
                    Some(s) => s.iter().all(|&x| ok(x.to_int())),
                    None => v.iter().all(|&x| ok(x.to_int())),
                };
                match all {
                    true => Ok(()),
                    false => {
                        let (k, x) = v.iter().enumerate().find(|&(_, &x)| !ok(x.to_int())).map_or((0, String::new()), |(k, x)| (k, x.to_string()));
                        Err(bad(Some(k), x))
                    }
                }
            }),
            _ => Ok(()),
        }
    }
}

/// One `add` call's updates: ids of both axes and values, of one length (a scalar is
/// repeated).
pub(super) struct Batch<'a> {
    pub(super) rows: Ids<'a>,
    pub(super) cols: Ids<'a>,
    pub(super) values: Vals<'a>,
    pub(super) len: usize,
}

/// What a batch's ids are checked against, per axis: the largest id plus one, and why.
pub(super) struct Limits {
    pub(super) rows: (u64, String),
    pub(super) cols: (u64, String),
}

impl<'a> Batch<'a> {
    /// The batch, when its lengths agree.
    pub(super) fn new(rows: Ids<'a>, cols: Ids<'a>, values: Vals<'a>) -> Result<Batch<'a>, Fail> {
        let lens = [rows.len(), cols.len(), values.len()];
        let len = lens.iter().flatten().copied().max().unwrap_or(1);
        if lens.iter().flatten().any(|&n| n != len) {
            let show = |n: Option<usize>| n.map_or("a scalar".to_owned(), |n| n.to_string());
            return Err(Fail::Invalid(format!(
                "lengths disagree: {} row ids, {} column ids, {} values (arrays must have one length; a scalar is repeated)",
                show(lens[0]),
                show(lens[1]),
                show(lens[2])
            )));
        }
        Ok(Batch {
            rows,
            cols,
            values,
            len,
        })
    }

    /// Checks the whole batch before anything of it is added.
    pub(super) fn check(&self, dtype: DType, limits: &Limits) -> Result<(), Fail> {
        self.rows.check(Axis::Row, limits.rows.0, &limits.rows.1)?;
        self.cols.check(Axis::Col, limits.cols.0, &limits.cols.1)?;
        self.values.check(dtype)
    }
}

/// Appends the ids `range` of `ids` to `out`, looking labels up through `label_id`.
pub(super) fn fill_axis(
    ids: &Ids<'_>,
    range: std::ops::Range<usize>,
    out: &mut Vec<u64>,
    mut label_id: impl FnMut(&str) -> vecfmt::Result<u64>,
) -> Result<(), Fail> {
    out.clear();
    match ids {
        Ids::One(i) => out.resize(range.len(), *i),
        Ids::OneLabel(l) => {
            let id = label_id(l).map_err(Fail::Core)?;
            out.resize(range.len(), id);
        }
        Ids::Labels(ls) => {
            for l in &ls[range] {
                out.push(label_id(l).map_err(Fail::Core)?);
            }
        }
        Ids::Array(view) => each!(view, v => fill_ids(v, range, out)),
    }
    Ok(())
}

/// Appends the values `range` as floats.
pub(super) fn fill_floats(vals: &Vals<'_>, range: std::ops::Range<usize>, out: &mut Vec<f64>) {
    out.clear();
    match vals {
        Vals::Float(x) => out.resize(range.len(), *x),
        Vals::Int(x) => out.resize(range.len(), *x as f64),
        Vals::Array(view) => each!(view, v => fill_f64(v, range, out)),
    }
}

/// Appends the values `range` as integers (checked whole numbers).
pub(super) fn fill_ints(vals: &Vals<'_>, range: std::ops::Range<usize>, out: &mut Vec<i128>) {
    out.clear();
    match vals {
        Vals::Float(x) => out.resize(range.len(), x.to_int().unwrap_or(0)),
        Vals::Int(x) => out.resize(range.len(), *x),
        Vals::Array(view) => each!(view, v => fill_int(v, range, out)),
    }
}
