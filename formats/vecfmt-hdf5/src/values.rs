//! Typed reads and writes of HDF5 slabs, dispatched on the vecfmt dtype. HDF5 converts the
//! stored type to the memory type on the way (int16 to int32, float16 to float32, big- to
//! little-endian); only conversions that keep every value exact are asked of it.

use std::ops::Range;

use hdf5::{Dataset, H5Type};
use ndarray::{ArrayView1, ArrayView2};
use vecfmt::{DType, ValueVec, Values};

use crate::raw::TypeClass;

fn vec1<T: H5Type>(ds: &Dataset, r: Range<usize>) -> hdf5::Result<Vec<T>> {
    Ok(ds.read_slice_1d::<T, _>(r)?.into_raw_vec_and_offset().0)
}

fn vec2<T: H5Type>(ds: &Dataset, rows: Range<usize>, cols: Range<usize>) -> hdf5::Result<Vec<T>> {
    Ok(ds.read_slice_2d::<T, _>((rows, cols))?.into_raw_vec_and_offset().0)
}

/// Bool elements (a 1-byte enum or bitfield, [`TypeClass::Bool`]) as u32 0/1, as numpy's
/// `astype(uint32)` gives them: any nonzero byte is 1. HDF5 converts neither an enum nor a
/// bitfield to an integer, so the bytes are read as stored.
fn bools(ds: &Dataset, start: &[u64], count: &[u64]) -> hdf5::Result<ValueVec> {
    let bytes = crate::raw::read_bytes(ds, start, count)?;
    Ok(ValueVec::U32(bytes.into_iter().map(|b| u32::from(b != 0)).collect()))
}

/// Whether a dataset read as u32 stores bools.
fn is_bool(ds: &Dataset, dtype: DType) -> bool {
    dtype == DType::U32 && crate::raw::dataset_type(ds) == TypeClass::Bool
}

/// Elements `r` of a 1-D dataset as `dtype`.
pub(crate) fn read_1d(ds: &Dataset, r: Range<usize>, dtype: DType) -> hdf5::Result<ValueVec> {
    if is_bool(ds, dtype) {
        return bools(ds, &[r.start as u64], &[r.len() as u64]);
    }
    Ok(match dtype {
        DType::F32 => ValueVec::F32(vec1(ds, r)?),
        DType::F64 => ValueVec::F64(vec1(ds, r)?),
        DType::I32 => ValueVec::I32(vec1(ds, r)?),
        DType::I64 => ValueVec::I64(vec1(ds, r)?),
        DType::U32 => ValueVec::U32(vec1(ds, r)?),
        DType::U64 => ValueVec::U64(vec1(ds, r)?),
    })
}

/// The block `rows × cols` of a 2-D dataset as `dtype`, in row-major order.
pub(crate) fn read_2d(ds: &Dataset, rows: Range<usize>, cols: Range<usize>, dtype: DType) -> hdf5::Result<ValueVec> {
    if is_bool(ds, dtype) {
        return bools(
            ds,
            &[rows.start as u64, cols.start as u64],
            &[rows.len() as u64, cols.len() as u64],
        );
    }
    Ok(match dtype {
        DType::F32 => ValueVec::F32(vec2(ds, rows, cols)?),
        DType::F64 => ValueVec::F64(vec2(ds, rows, cols)?),
        DType::I32 => ValueVec::I32(vec2(ds, rows, cols)?),
        DType::I64 => ValueVec::I64(vec2(ds, rows, cols)?),
        DType::U32 => ValueVec::U32(vec2(ds, rows, cols)?),
        DType::U64 => ValueVec::U64(vec2(ds, rows, cols)?),
    })
}

/// Why integers could not be used as indices.
#[derive(Debug)]
pub(crate) enum IndexError {
    Hdf5(hdf5::Error),
    /// A negative value at this position of the slab.
    Negative {
        at: usize,
        value: i64,
    },
    /// Not an integer type at all.
    NotInteger(TypeClass),
}

impl From<hdf5::Error> for IndexError {
    fn from(e: hdf5::Error) -> Self {
        IndexError::Hdf5(e)
    }
}

/// Elements `r` of a 1-D integer dataset (any width, signed or not) as u64; a negative value
/// is an error.
pub(crate) fn read_index_1d(ds: &Dataset, r: Range<usize>, class: TypeClass) -> Result<Vec<u64>, IndexError> {
    match class {
        TypeClass::Uint(_) => Ok(vec1::<u64>(ds, r)?),
        TypeClass::Int(_) => {
            let v = vec1::<i64>(ds, r)?;
            if let Some(at) = v.iter().position(|&x| x < 0) {
                return Err(IndexError::Negative { at, value: v[at] });
            }
            // Checked non-negative just above.
            Ok(v.into_iter().map(|x| x as u64).collect())
        }
        other => Err(IndexError::NotInteger(other)),
    }
}

/// Writes `values` into a 1-D dataset at `start` (the dataset is already large enough).
pub(crate) fn write_1d(ds: &Dataset, start: usize, values: Values<'_>) -> hdf5::Result<()> {
    let end = start + values.len();
    vecfmt::with_values!(values, v => ds.write_slice(ArrayView1::from(v), start..end))
}

/// Writes a row-major `rows × n_cols` block into a 2-D dataset at row `start`.
pub(crate) fn write_2d(ds: &Dataset, start: usize, n_cols: usize, values: Values<'_>) -> hdf5::Result<()> {
    let rows = values.len().checked_div(n_cols).unwrap_or(0);
    vecfmt::with_values!(values, v => {
        let view = ArrayView2::from_shape((rows, n_cols), v).map_err(|e| hdf5::Error::from(e.to_string()))?;
        ds.write_slice(view, (start..start + rows, 0..n_cols))
    })
}

/// Creates an empty, resizable, chunked 1-D dataset of a vecfmt dtype with the shuffle
/// and deflate filters (in that order: shuffle helps deflate only when it runs first).
pub(crate) fn create_1d(
    group: &hdf5::Group,
    name: &str,
    dtype: DType,
    chunk: usize,
    deflate: u8,
) -> hdf5::Result<Dataset> {
    fn make<T: H5Type>(group: &hdf5::Group, name: &str, chunk: usize, deflate: u8) -> hdf5::Result<Dataset> {
        let b = group.new_dataset::<T>().chunk(chunk).shape(0..);
        if deflate > 0 {
            b.shuffle().deflate(deflate).create(name)
        } else {
            b.create(name)
        }
    }
    match dtype {
        DType::F32 => make::<f32>(group, name, chunk, deflate),
        DType::F64 => make::<f64>(group, name, chunk, deflate),
        DType::I32 => make::<i32>(group, name, chunk, deflate),
        DType::I64 => make::<i64>(group, name, chunk, deflate),
        DType::U32 => make::<u32>(group, name, chunk, deflate),
        DType::U64 => make::<u64>(group, name, chunk, deflate),
    }
}

/// Whether a value is zero (and so not stored in a sparse matrix). For floats only +0.0
/// is: -0.0 and NaN are kept, so every stored value survives bit for bit.
pub(crate) trait IsZero: Copy {
    fn is_zero(self) -> bool;
}

macro_rules! is_zero {
    ($($t:ty => |$x:ident| $e:expr),*) => {$(
        impl IsZero for $t {
            #[inline]
            fn is_zero(self) -> bool {
                let $x = self;
                $e
            }
        }
    )*};
}
is_zero!(
    f32 => |x| x.to_bits() == 0,
    f64 => |x| x.to_bits() == 0,
    i32 => |x| x == 0,
    i64 => |x| x == 0,
    u32 => |x| x == 0,
    u64 => |x| x == 0
);
