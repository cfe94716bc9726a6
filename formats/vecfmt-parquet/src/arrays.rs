//! Arrow arrays to vecfmt's buffers: integer indices of any width, string labels (plain or
//! dictionary-encoded), values converted exactly into the matrix dtype.

use arrow_array::cast::AsArray;
use arrow_array::types::{
    ArrowPrimitiveType, Float16Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type, UInt16Type,
    UInt32Type, UInt64Type, UInt8Type,
};
use arrow_array::Array;
use std::path::Path;

use arrow_schema::DataType;
use vecfmt::{DType, ValueVec};

use crate::Error;

/// How a row or column index column is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IndexKind {
    /// Integers of any width and signedness.
    Int,
    /// Strings (plain or dictionary-encoded): labels.
    Str,
}

/// The kind of an index column of this type, if it can be one.
pub(crate) fn index_kind(dt: &DataType) -> Option<IndexKind> {
    use DataType::*;
    match dt {
        Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32 | UInt64 => Some(IndexKind::Int),
        Utf8 | LargeUtf8 | Utf8View => Some(IndexKind::Str),
        Dictionary(_, v) if matches!(**v, Utf8 | LargeUtf8 | Utf8View) => Some(IndexKind::Str),
        _ => None,
    }
}

/// The matrix dtype that holds every value of this type exactly.
pub(crate) fn value_dtype(dt: &DataType) -> Option<DType> {
    use DataType::*;
    Some(match dt {
        Float16 | Float32 => DType::F32,
        Float64 => DType::F64,
        Int8 | Int16 | Int32 => DType::I32,
        Int64 => DType::I64,
        UInt8 | UInt16 | UInt32 => DType::U32,
        UInt64 => DType::U64,
        _ => return None,
    })
}

/// The smallest dtype holding every value of both, when one exists (files of one dataset
/// may store the value column in different types).
pub(crate) fn promote(a: DType, b: DType) -> Option<DType> {
    use DType::*;
    if a == b {
        return Some(a);
    }
    let (x, y) = if (a as u8) < (b as u8) { (a, b) } else { (b, a) };
    match (x, y) {
        (F32, F64) => Some(F64),
        (F32 | F64, I32 | U32) => Some(F64),
        (I32, I64) | (I32, U32) | (I64, U32) => Some(I64),
        (U32, U64) => Some(U64),
        _ => None,
    }
}

/// What is wrong with an array, before the caller names the file and column.
#[derive(Debug)]
pub(crate) enum Problem {
    /// A null at this position.
    Null(usize),
    /// A negative index at this position.
    Negative(usize, i64),
    /// A type that cannot be used here.
    Type(DataType),
}

impl Problem {
    /// The error naming the file and the column, with positions counted from `first_record`.
    pub fn at(self, path: &Path, column: &str, first_record: u64) -> Error {
        let (path, column) = (path.to_path_buf(), column.to_string());
        match self {
            Problem::Null(k) => Error::Null {
                path,
                column,
                record: first_record + k as u64,
            },
            Problem::Negative(k, value) => Error::NegativeIndex {
                path,
                column,
                record: first_record + k as u64,
                value,
            },
            Problem::Type(data_type) => Error::UnsupportedType {
                path,
                column,
                data_type,
            },
        }
    }
}

fn first_null(a: &dyn Array) -> Result<(), Problem> {
    match a.logical_nulls() {
        Some(n) if n.null_count() > 0 => Err(Problem::Null(n.iter().position(|v| !v).unwrap_or(0))),
        _ => Ok(()),
    }
}

/// Appends an integer column's values to `out`, refusing nulls and negative values.
pub(crate) fn append_indices(a: &dyn Array, out: &mut Vec<u64>) -> Result<(), Problem> {
    first_null(a)?;
    fn signed<T>(a: &dyn Array, out: &mut Vec<u64>) -> Result<(), Problem>
    where
        T: ArrowPrimitiveType,
        T::Native: Into<i64>,
    {
        let v = a.as_primitive::<T>().values();
        out.reserve(v.len());
        for (k, &x) in v.iter().enumerate() {
            let x: i64 = x.into();
            if x < 0 {
                return Err(Problem::Negative(k, x));
            }
            out.push(x as u64);
        }
        Ok(())
    }
    fn unsigned<T>(a: &dyn Array, out: &mut Vec<u64>)
    where
        T: ArrowPrimitiveType,
        T::Native: Into<u64>,
    {
        out.extend(a.as_primitive::<T>().values().iter().map(|&x| x.into()));
    }
    match a.data_type() {
        DataType::Int8 => signed::<Int8Type>(a, out)?,
        DataType::Int16 => signed::<Int16Type>(a, out)?,
        DataType::Int32 => signed::<Int32Type>(a, out)?,
        DataType::Int64 => signed::<Int64Type>(a, out)?,
        DataType::UInt8 => unsigned::<UInt8Type>(a, out),
        DataType::UInt16 => unsigned::<UInt16Type>(a, out),
        DataType::UInt32 => unsigned::<UInt32Type>(a, out),
        DataType::UInt64 => unsigned::<UInt64Type>(a, out),
        t => return Err(Problem::Type(t.clone())),
    }
    Ok(())
}

/// Appends a numeric column's values to `out`, converting exactly into `out`'s dtype (the
/// caller chose that dtype with [`value_dtype`] and [`promote`]).
pub(crate) fn append_values(a: &dyn Array, out: &mut ValueVec) -> Result<(), Problem> {
    first_null(a)?;
    fn ext<T, D>(a: &dyn Array, out: &mut Vec<D>)
    where
        T: ArrowPrimitiveType,
        D: From<T::Native>,
    {
        out.extend(a.as_primitive::<T>().values().iter().map(|&x| D::from(x)));
    }
    use DataType as T;
    match (out, a.data_type()) {
        (ValueVec::F32(o), T::Float16) => ext::<Float16Type, _>(a, o),
        (ValueVec::F32(o), T::Float32) => ext::<Float32Type, _>(a, o),
        (ValueVec::F64(o), T::Float16) => ext::<Float16Type, _>(a, o),
        (ValueVec::F64(o), T::Float32) => ext::<Float32Type, _>(a, o),
        (ValueVec::F64(o), T::Float64) => ext::<Float64Type, _>(a, o),
        (ValueVec::F64(o), T::Int8) => ext::<Int8Type, _>(a, o),
        (ValueVec::F64(o), T::Int16) => ext::<Int16Type, _>(a, o),
        (ValueVec::F64(o), T::Int32) => ext::<Int32Type, _>(a, o),
        (ValueVec::F64(o), T::UInt8) => ext::<UInt8Type, _>(a, o),
        (ValueVec::F64(o), T::UInt16) => ext::<UInt16Type, _>(a, o),
        (ValueVec::F64(o), T::UInt32) => ext::<UInt32Type, _>(a, o),
        (ValueVec::I32(o), T::Int8) => ext::<Int8Type, _>(a, o),
        (ValueVec::I32(o), T::Int16) => ext::<Int16Type, _>(a, o),
        (ValueVec::I32(o), T::Int32) => ext::<Int32Type, _>(a, o),
        (ValueVec::I32(o), T::UInt8) => ext::<UInt8Type, _>(a, o),
        (ValueVec::I32(o), T::UInt16) => ext::<UInt16Type, _>(a, o),
        (ValueVec::I64(o), T::Int8) => ext::<Int8Type, _>(a, o),
        (ValueVec::I64(o), T::Int16) => ext::<Int16Type, _>(a, o),
        (ValueVec::I64(o), T::Int32) => ext::<Int32Type, _>(a, o),
        (ValueVec::I64(o), T::Int64) => ext::<Int64Type, _>(a, o),
        (ValueVec::I64(o), T::UInt8) => ext::<UInt8Type, _>(a, o),
        (ValueVec::I64(o), T::UInt16) => ext::<UInt16Type, _>(a, o),
        (ValueVec::I64(o), T::UInt32) => ext::<UInt32Type, _>(a, o),
        (ValueVec::U32(o), T::UInt8) => ext::<UInt8Type, _>(a, o),
        (ValueVec::U32(o), T::UInt16) => ext::<UInt16Type, _>(a, o),
        (ValueVec::U32(o), T::UInt32) => ext::<UInt32Type, _>(a, o),
        (ValueVec::U64(o), T::UInt8) => ext::<UInt8Type, _>(a, o),
        (ValueVec::U64(o), T::UInt16) => ext::<UInt16Type, _>(a, o),
        (ValueVec::U64(o), T::UInt32) => ext::<UInt32Type, _>(a, o),
        (ValueVec::U64(o), T::UInt64) => ext::<UInt64Type, _>(a, o),
        (_, t) => return Err(Problem::Type(t.clone())),
    }
    Ok(())
}

/// Maps every string of a string column to an id with `id_of`, appending the ids to `out`.
/// A dictionary-encoded column calls `id_of` once per dictionary entry used, not once per
/// record. Nulls are refused.
pub(crate) fn append_string_ids<E>(
    a: &dyn Array,
    out: &mut Vec<u64>,
    mut id_of: impl FnMut(&str) -> Result<u64, E>,
) -> Result<Result<(), E>, Problem> {
    first_null(a)?;
    if let Some(d) = a.as_any_dictionary_opt() {
        let values = d.values();
        let mut ids: Vec<Option<u64>> = vec![None; values.len()];
        let keys = d.normalized_keys();
        out.reserve(keys.len());
        let mut err = None;
        if !matches!(
            values.data_type(),
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
        ) {
            return Err(Problem::Type(a.data_type().clone()));
        }
        // Dictionary strings are looked up only when a record uses them, so first-appearance
        // order is that of the records.
        for key in keys {
            let id = match ids[key] {
                Some(id) => id,
                None => {
                    let s = string_at(values.as_ref(), key).ok_or_else(|| Problem::Type(values.data_type().clone()))?;
                    match id_of(s) {
                        Ok(id) => {
                            ids[key] = Some(id);
                            id
                        }
                        Err(e) => {
                            err = Some(e);
                            break;
                        }
                    }
                }
            };
            out.push(id);
        }
        return Ok(err.map_or(Ok(()), Err));
    }
    let mut err = None;
    with_strings(a, |_, s| {
        if err.is_some() {
            return;
        }
        match id_of(s) {
            Ok(id) => out.push(id),
            Err(e) => err = Some(e),
        }
    })?;
    Ok(err.map_or(Ok(()), Err))
}

/// Calls `f(position, string)` for each string of a plain string column.
pub(crate) fn with_strings(a: &dyn Array, mut f: impl FnMut(usize, &str)) -> Result<(), Problem> {
    if let Some(s) = a.as_string_opt::<i32>() {
        s.iter().enumerate().for_each(|(k, v)| f(k, v.unwrap_or("")));
    } else if let Some(s) = a.as_string_opt::<i64>() {
        s.iter().enumerate().for_each(|(k, v)| f(k, v.unwrap_or("")));
    } else if let Some(s) = a.as_string_view_opt() {
        s.iter().enumerate().for_each(|(k, v)| f(k, v.unwrap_or("")));
    } else {
        return Err(Problem::Type(a.data_type().clone()));
    }
    Ok(())
}

fn string_at(a: &dyn Array, k: usize) -> Option<&str> {
    if let Some(s) = a.as_string_opt::<i32>() {
        Some(s.value(k))
    } else if let Some(s) = a.as_string_opt::<i64>() {
        Some(s.value(k))
    } else {
        a.as_string_view_opt().map(|s| s.value(k))
    }
}

/// Calls `f(position, string)` for each string of a string column (plain or
/// dictionary-encoded), refusing nulls.
pub(crate) fn each_string(a: &dyn Array, mut f: impl FnMut(usize, &str)) -> Result<(), Problem> {
    first_null(a)?;
    if let Some(d) = a.as_any_dictionary_opt() {
        let values = d.values();
        for (k, key) in d.normalized_keys().into_iter().enumerate() {
            let s = string_at(values.as_ref(), key).ok_or_else(|| Problem::Type(a.data_type().clone()))?;
            f(k, s);
        }
        Ok(())
    } else {
        with_strings(a, f)
    }
}

/// The strings of a string column (plain or dictionary-encoded), nulls refused.
#[cfg(test)]
pub(crate) fn strings(a: &dyn Array) -> Result<Vec<String>, Problem> {
    let mut out = Vec::with_capacity(a.len());
    each_string(a, |_, s| out.push(s.to_owned()))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{DictionaryArray, Float16Array, Int16Array, Int8Array, StringArray, UInt64Array};

    #[test]
    fn every_integer_width_becomes_indices() {
        let mut out = Vec::new();
        append_indices(&Int8Array::from(vec![0i8, 127]), &mut out).unwrap();
        append_indices(&UInt64Array::from(vec![u64::MAX]), &mut out).unwrap();
        assert_eq!(out, [0, 127, u64::MAX]);
        let e = append_indices(&Int16Array::from(vec![1i16, -2]), &mut out).unwrap_err();
        assert!(matches!(e, Problem::Negative(1, -2)));
        let e = append_indices(&Int16Array::from(vec![Some(1i16), None]), &mut out).unwrap_err();
        assert!(matches!(e, Problem::Null(1)));
    }

    #[test]
    fn values_convert_exactly() {
        let mut out = ValueVec::new(DType::F32);
        append_values(&Float16Array::from(vec![half_of(1.5)]), &mut out).unwrap();
        assert_eq!(out, ValueVec::F32(vec![1.5]));
        let mut out = ValueVec::new(DType::I64);
        append_values(&Int8Array::from(vec![-3i8]), &mut out).unwrap();
        assert_eq!(out, ValueVec::I64(vec![-3]));
        let mut out = ValueVec::new(DType::I32);
        assert!(matches!(
            append_values(&UInt64Array::from(vec![1u64]), &mut out),
            Err(Problem::Type(_))
        ));
    }

    fn half_of(x: f32) -> <Float16Type as ArrowPrimitiveType>::Native {
        <Float16Type as ArrowPrimitiveType>::Native::from_f32(x)
    }

    #[test]
    fn promotion_is_lossless_or_refused() {
        assert_eq!(promote(DType::I32, DType::U32), Some(DType::I64));
        assert_eq!(promote(DType::F32, DType::I32), Some(DType::F64));
        assert_eq!(promote(DType::I64, DType::F64), None);
        assert_eq!(promote(DType::U64, DType::I64), None);
    }

    #[test]
    fn dictionary_strings_map_in_record_order() {
        let d: DictionaryArray<Int32Type> = vec!["b", "a", "b", "c"].into_iter().collect();
        let mut seen = Vec::new();
        let mut out = Vec::new();
        append_string_ids::<()>(&d, &mut out, |s| {
            let id = seen.iter().position(|x| x == s).unwrap_or_else(|| {
                seen.push(s.to_owned());
                seen.len() - 1
            });
            Ok(id as u64)
        })
        .unwrap()
        .unwrap();
        assert_eq!(out, [0, 1, 0, 2]);
        assert_eq!(strings(&StringArray::from(vec!["x", "y"])).unwrap(), ["x", "y"]);
        assert_eq!(strings(&d).unwrap(), ["b", "a", "b", "c"]);
    }
}
