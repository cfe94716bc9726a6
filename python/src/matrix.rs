//! `vecfmt.open(path) -> Matrix`: the reader (`vecfmt::Matrix`) as a Python class.
//!
//! Rows come out as read-only numpy views. A view of a raw chunk points into the file's
//! map; its numpy `base` is a [`MapOwner`] that holds an `Arc` of the reader, so neither
//! `close()` nor the death of the Python `Matrix` unmaps memory a view still shows. A view
//! of a compressed chunk points into the decoded chunk, kept alive by a [`ChunkOwner`].
//! Blocks of rows are gathered into fresh CSR arrays in one call, with the GIL released.
//! The Python class `vecfmt.Matrix` (`vecfmt/_matrix.py`) subclasses [`PyMatrix`] and adds
//! the conveniences that need scipy, pandas or anndata.

use std::os::raw::c_void;
use std::path::PathBuf;
use std::sync::{Arc, RwLock, RwLockReadGuard};

use numpy::npyffi::{self, npy_intp, PY_ARRAY_API};
use numpy::{PyArray1, PyArrayDescrMethods, PyReadonlyArray1, PyUntypedArrayMethods};
use pyo3::exceptions::{PyIndexError, PyMemoryError, PyOverflowError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyList;
use vecfmt::{Axis, ChunkRef, Codec, Indices, Matrix, OpenOptions, Scalar, ValueVec, Values};

use crate::{args, errors};

/// The numpy base object of views into a reader's map: holds the reader (and so its map and
/// its shared lock) for as long as a view exists.
#[pyclass(module = "vecfmt._native", name = "_MapOwner", frozen)]
struct MapOwner {
    _matrix: Arc<Matrix>,
}

/// The numpy base object of views into a decoded (compressed) chunk.
#[pyclass(module = "vecfmt._native", name = "_ChunkOwner", frozen)]
struct ChunkOwner {
    _chunk: Arc<vecfmt::ChunkData>,
}

/// An open reader and the owner object its map views share.
struct Open {
    matrix: Arc<Matrix>,
    owner: Py<MapOwner>,
}

/// A `.vfm` matrix opened for reading: the native half of `vecfmt.Matrix`.
#[pyclass(module = "vecfmt._native", name = "_Matrix", frozen, subclass)]
pub(crate) struct PyMatrix {
    /// The path as given, for messages once closed.
    path: PathBuf,
    /// `None` once closed.
    open: RwLock<Option<Open>>,
}

/// Parses a size the way `vecfmt.open(cache=...)` does: an int of bytes, or `"256M"`, `"1G"`.
#[pyfunction]
#[pyo3(name = "_size_in_bytes")]
fn size_in_bytes(size: &Bound<'_, PyAny>) -> PyResult<u64> {
    args::bytes("size", size)
}

/// A read-only 1-D numpy array over `data`, whose base object is `owner`.
///
/// # Safety
/// `data` must stay valid and unchanged for as long as `owner` is alive.
unsafe fn readonly_view<'py, T: numpy::Element>(
    py: Python<'py>,
    data: &[T],
    owner: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let mut dims = [data.len() as npy_intp];
    // SAFETY: the descriptor reference is stolen by PyArray_NewFromDescr; `dims` outlives the
    // call; a null strides pointer asks for C order; `data` is aligned for T and holds
    // `data.len()` elements (an empty slice's dangling pointer is aligned and never read).
    // Without NPY_ARRAY_WRITEABLE in the flags numpy refuses writes (the map is read-only:
    // a write would fault), and refuses to set the flag later because the base object
    // exports no writable buffer.
    let array = unsafe {
        PY_ARRAY_API.PyArray_NewFromDescr(
            py,
            npyffi::get_type_object(py, npyffi::NpyTypes::PyArray_Type),
            T::get_dtype(py).into_dtype_ptr(),
            1,
            dims.as_mut_ptr(),
            std::ptr::null_mut(),
            data.as_ptr() as *mut c_void,
            npyffi::NPY_ARRAY_ALIGNED,
            std::ptr::null_mut(),
        )
    };
    if array.is_null() {
        return Err(PyErr::fetch(py));
    }
    // SAFETY: `array` is a new, owned array object; from here its reference is managed.
    let array = unsafe { Bound::from_owned_ptr(py, array) };
    // SAFETY: `array` is an ndarray; SetBaseObject steals the new reference to `owner`
    // (also on failure), which keeps `data` alive for the array's life (the caller's promise).
    let r = unsafe {
        PY_ARRAY_API.PyArray_SetBaseObject(
            py,
            array.as_ptr() as *mut npyffi::PyArrayObject,
            owner.clone().into_ptr(),
        )
    };
    if r < 0 {
        return Err(PyErr::fetch(py));
    }
    Ok(array)
}

/// `readonly_view` for each index width.
///
/// # Safety
/// As [`readonly_view`].
unsafe fn indices_view<'py>(
    py: Python<'py>,
    ix: Indices<'_>,
    owner: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    // SAFETY: forwarded from the caller.
    unsafe {
        match ix {
            Indices::U32(s) => readonly_view(py, s, owner),
            Indices::U64(s) => readonly_view(py, s, owner),
        }
    }
}

/// `readonly_view` for each value dtype.
///
/// # Safety
/// As [`readonly_view`].
unsafe fn values_view<'py>(py: Python<'py>, v: Values<'_>, owner: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    // SAFETY: forwarded from the caller.
    unsafe {
        match v {
            Values::F32(s) => readonly_view(py, s, owner),
            Values::F64(s) => readonly_view(py, s, owner),
            Values::I32(s) => readonly_view(py, s, owner),
            Values::I64(s) => readonly_view(py, s, owner),
            Values::U32(s) => readonly_view(py, s, owner),
            Values::U64(s) => readonly_view(py, s, owner),
        }
    }
}

fn scalar_to_py<'py>(py: Python<'py>, s: Scalar) -> PyResult<Bound<'py, PyAny>> {
    Ok(match s {
        Scalar::F32(v) => (v as f64).into_pyobject(py)?.into_any(),
        Scalar::F64(v) => v.into_pyobject(py)?.into_any(),
        Scalar::I32(v) => v.into_pyobject(py)?.into_any(),
        Scalar::I64(v) => v.into_pyobject(py)?.into_any(),
        Scalar::U32(v) => v.into_pyobject(py)?.into_any(),
        Scalar::U64(v) => v.into_pyobject(py)?.into_any(),
    })
}

fn value_vec_to_py(py: Python<'_>, v: ValueVec) -> Bound<'_, PyAny> {
    match v {
        ValueVec::F32(v) => PyArray1::from_vec(py, v).into_any(),
        ValueVec::F64(v) => PyArray1::from_vec(py, v).into_any(),
        ValueVec::I32(v) => PyArray1::from_vec(py, v).into_any(),
        ValueVec::I64(v) => PyArray1::from_vec(py, v).into_any(),
        ValueVec::U32(v) => PyArray1::from_vec(py, v).into_any(),
        ValueVec::U64(v) => PyArray1::from_vec(py, v).into_any(),
    }
}

/// Gathered CSR arrays in scipy's conventions: `indptr` and `indices` share one signed index
/// dtype, int32 when the column count and the number of entries allow it (as scipy picks).
struct Csr {
    indptr: Vec<i64>,
    indices: Vec<i64>,
    indices32: Vec<i32>,
    narrow: bool,
    values: ValueVec,
}

/// What gathering can fail on: a library error, memory, or a column id that numpy's signed
/// indices cannot hold.
enum GatherError {
    Core(vecfmt::Error),
    Memory(String),
    Overflow(String),
}

impl From<vecfmt::Error> for GatherError {
    fn from(e: vecfmt::Error) -> Self {
        GatherError::Core(e)
    }
}

impl Csr {
    fn new(m: &Matrix, n_rows: usize) -> Result<Csr, GatherError> {
        let mut indptr = Vec::new();
        indptr
            .try_reserve_exact(n_rows + 1)
            .map_err(|_| GatherError::Memory(format!("the row offsets of {n_rows} rows do not fit in memory")))?;
        indptr.push(0);
        Ok(Csr {
            indptr,
            indices: Vec::new(),
            indices32: Vec::new(),
            narrow: m.n_cols() <= i32::MAX as u64,
            values: ValueVec::new(m.dtype()),
        })
    }

    fn nnz(&self) -> usize {
        self.values.len()
    }

    fn push_row(&mut self, ix: Indices<'_>, v: Values<'_>) -> Result<(), GatherError> {
        if self.narrow {
            // Column ids are below n_cols <= i32::MAX: the casts are exact.
            match ix {
                Indices::U32(s) => self.indices32.extend(s.iter().map(|&c| c as i32)),
                Indices::U64(s) => self.indices32.extend(s.iter().map(|&c| c as i32)),
            }
        } else {
            // Column ids are below n_cols, itself below 2^63 for any file a scipy user can
            // index; larger ids would wrap, so they are refused.
            match ix {
                Indices::U32(s) => self.indices.extend(s.iter().map(|&c| c as i64)),
                Indices::U64(s) => {
                    // Sorted: the last id is the largest.
                    if s.last().is_some_and(|&c| c > i64::MAX as u64) {
                        return Err(GatherError::Overflow(format!(
                            "column {} does not fit a signed 64-bit index",
                            s[s.len() - 1]
                        )));
                    }
                    self.indices.extend(s.iter().map(|&c| c as i64))
                }
            }
        }
        self.values.extend_from(v)?;
        self.indptr.push(self.values.len() as i64);
        Ok(())
    }

    fn push_empty(&mut self) {
        self.indptr.push(self.values.len() as i64);
    }

    /// The three numpy arrays.
    fn into_py(self, py: Python<'_>) -> (Bound<'_, PyAny>, Bound<'_, PyAny>, Bound<'_, PyAny>) {
        let nnz = self.nnz();
        let values = value_vec_to_py(py, self.values);
        if self.narrow && nnz <= i32::MAX as usize {
            // Offsets are at most nnz <= i32::MAX.
            let indptr: Vec<i32> = self.indptr.iter().map(|&p| p as i32).collect();
            (
                PyArray1::from_vec(py, indptr).into_any(),
                PyArray1::from_vec(py, self.indices32).into_any(),
                values,
            )
        } else {
            let indices = if self.narrow {
                self.indices32.iter().map(|&c| c as i64).collect()
            } else {
                self.indices
            };
            (
                PyArray1::from_vec(py, self.indptr).into_any(),
                PyArray1::from_vec(py, indices).into_any(),
                values,
            )
        }
    }
}

type CsrArrays<'py> = (Bound<'py, PyAny>, Bound<'py, PyAny>, Bound<'py, PyAny>);

impl PyMatrix {
    /// The open reader, or a `ValueError` once closed (as a closed file raises).
    fn guard(&self) -> PyResult<RwLockReadGuard<'_, Option<Open>>> {
        let g = self.open.read().unwrap_or_else(|p| p.into_inner());
        if g.is_none() {
            return Err(PyValueError::new_err(format!(
                "{}: the matrix is closed",
                self.path.display()
            )));
        }
        Ok(g)
    }

    fn matrix(&self) -> PyResult<Arc<Matrix>> {
        Ok(self.guard()?.as_ref().map(|o| o.matrix.clone()).expect("checked open"))
    }

    /// A core error as its Python exception, with the file's path in front when the
    /// library's message does not name it (row and label errors).
    fn error(&self, py: Python<'_>, e: vecfmt::Error) -> PyErr {
        let path = self.path.display().to_string();
        let named = e.to_string().contains(&path);
        let err = errors::core(e);
        if named {
            return err;
        }
        let msg = format!("{path}: {}", err.value(py));
        PyErr::from_type(err.get_type(py), msg)
    }

    fn gather_error(&self, py: Python<'_>, e: GatherError) -> PyErr {
        match e {
            GatherError::Core(e) => self.error(py, e),
            GatherError::Memory(msg) => PyMemoryError::new_err(format!("{}: {msg}", self.path.display())),
            GatherError::Overflow(msg) => PyOverflowError::new_err(format!("{}: {msg}", self.path.display())),
        }
    }

    /// Row id `i` from a Python int, negative ids counting from the end as numpy's do.
    fn row_index(&self, py: Python<'_>, m: &Matrix, i: i64) -> PyResult<u64> {
        let n = m.n_rows();
        let id = if i < 0 {
            n.checked_sub(i.unsigned_abs())
        } else {
            Some(i as u64)
        };
        match id {
            Some(id) if id < n => Ok(id),
            _ => Err(self.row_out_of_range(py, i, n)),
        }
    }

    /// Row id from a Python int (or anything with `__index__`); a bool, a float or a str is a
    /// `TypeError`, an int beyond 64 bits is out of range.
    fn row_arg(&self, py: Python<'_>, m: &Matrix, i: &Bound<'_, PyAny>) -> PyResult<u64> {
        if i.is_instance_of::<pyo3::types::PyBool>() {
            return Err(PyTypeError::new_err("a row id is an int, not a bool"));
        }
        match i.extract::<i64>() {
            Ok(i) => self.row_index(py, m, i),
            Err(e) if e.is_instance_of::<pyo3::exceptions::PyOverflowError>(py) => {
                Err(self.row_out_of_range(py, i, m.n_rows()))
            }
            Err(e) => Err(e),
        }
    }

    fn row_out_of_range(&self, py: Python<'_>, i: impl std::fmt::Display, n: u64) -> PyErr {
        match errors_class_of_index(py) {
            Some(cls) => PyErr::from_type(
                cls,
                format!(
                    "{}: row {i} is out of range: the matrix has {n} rows",
                    self.path.display()
                ),
            ),
            None => PyIndexError::new_err(format!("row {i} is out of range: the matrix has {n} rows")),
        }
    }

    /// Row `id` as read-only views.
    fn row_views<'py>(
        &self,
        py: Python<'py>,
        open: &Open,
        id: u64,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
        let m = &open.matrix;
        let compressed = m.chunk_of(id).filter(|&c| m.chunks()[c].codec != Codec::Raw);
        if let Some(c) = compressed {
            // The decoded chunk itself, so that the owner keeps exactly the buffers the
            // views show (a second lookup could decode it again if the cache dropped it).
            let chunk = m.chunk(c).map_err(|e| self.error(py, e))?;
            if let ChunkRef::Decoded(d) = chunk {
                let view = d.view();
                let owner = Bound::new(py, ChunkOwner { _chunk: d.clone() })?.into_any();
                let (ix, v) = match view.find(id) {
                    Some(k) => {
                        let r = view.range(k);
                        (view.indices.slice(r.clone()), view.values.slice(r))
                    }
                    None => (view.indices.slice(0..0), view.values.slice(0..0)),
                };
                // SAFETY: `ix` and `v` borrow the heap buffers of `d`, which `owner` holds
                // (an Arc, never mutated) for as long as the arrays exist.
                return unsafe { Ok((indices_view(py, ix, &owner)?, values_view(py, v, &owner)?)) };
            }
        }
        let row = m.row(id).map_err(|e| self.error(py, e))?;
        let owner = open.owner.bind(py).clone().into_any();
        // SAFETY: the row borrows the map of `m` (or static empty slices); `owner` holds an
        // Arc of `m`, so the map stays mapped while the arrays exist. The file's contents
        // do not change under the shared lock the reader holds; if a process ignoring the
        // lock truncates it, the guarded map turns the pages into zeros (never a fault), and
        // the reader's next call raises.
        unsafe {
            Ok((
                indices_view(py, row.indices(), &owner)?,
                values_view(py, row.values(), &owner)?,
            ))
        }
    }
}

impl PyMatrix {
    fn labels_or_error<'m>(&self, py: Python<'_>, m: &'m Matrix, axis: u8) -> PyResult<vecfmt::Labels<'m>> {
        let axis = axis_of(axis)?;
        labels_of(m, axis).ok_or_else(|| self.error(py, vecfmt::Error::NoLabels { axis }))
    }

    fn label_at<'m>(&self, py: Python<'_>, labels: &vecfmt::Labels<'m>, i: u64) -> PyResult<&'m str> {
        labels.get(i).map_err(|mal| {
            self.error(
                py,
                vecfmt::Error::Corrupt {
                    path: self.path.clone(),
                    what: "labels",
                    offset: mal.offset,
                    detail: mal.detail,
                },
            )
        })
    }
}

/// The class `vecfmt.RowIndexError`, if `vecfmt._errors` loads.
fn errors_class_of_index(py: Python<'_>) -> Option<Bound<'_, pyo3::types::PyType>> {
    py.import("vecfmt._errors")
        .and_then(|m| m.getattr("RowIndexError"))
        .and_then(|c| c.cast_into::<pyo3::types::PyType>().map_err(Into::into))
        .ok()
}

fn axis_of(axis: u8) -> PyResult<Axis> {
    match axis {
        0 => Ok(Axis::Row),
        1 => Ok(Axis::Col),
        _ => Err(errors::invalid(format!(
            "axis must be 0 (rows) or 1 (columns), got {axis}"
        ))),
    }
}

fn labels_of(m: &Matrix, axis: Axis) -> Option<vecfmt::Labels<'_>> {
    match axis {
        Axis::Row => m.row_labels(),
        Axis::Col => m.col_labels(),
    }
}

#[pymethods]
impl PyMatrix {
    /// Opens the `.vfm` file at `path` with a decoded-chunk cache of `cache` bytes (an int,
    /// or a size such as `"256M"`).
    #[new]
    #[pyo3(signature = (path, cache = None))]
    fn py_new(py: Python<'_>, path: PathBuf, cache: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let cache_bytes = match cache {
            None => 256 << 20,
            Some(c) => args::bytes("cache", c)?,
        };
        let cache_bytes = usize::try_from(cache_bytes).unwrap_or(usize::MAX);
        let opts = OpenOptions::new().cache_bytes(cache_bytes);
        let p = path.clone();
        let matrix = py.detach(move || opts.open(&p)).map_err(errors::core)?;
        let matrix = Arc::new(matrix);
        let owner = Py::new(
            py,
            MapOwner {
                _matrix: matrix.clone(),
            },
        )?;
        Ok(PyMatrix {
            path,
            open: RwLock::new(Some(Open { matrix, owner })),
        })
    }

    /// The path the matrix was opened from, as a string.
    #[getter]
    fn path(&self) -> String {
        self.path.display().to_string()
    }

    /// Whether `close()` was called.
    #[getter]
    fn closed(&self) -> bool {
        self.open.read().unwrap_or_else(|p| p.into_inner()).is_none()
    }

    /// Closes the matrix. Views already returned stay valid: they hold the map (and the
    /// file's shared lock) until the last of them is gone. Closing twice is allowed.
    fn close(&self) {
        let open = self.open.write().unwrap_or_else(|p| p.into_inner()).take();
        drop(open);
    }

    /// `(rows, columns)`.
    #[getter]
    fn shape(&self) -> PyResult<(u64, u64)> {
        Ok(self.matrix()?.shape())
    }

    /// Number of stored entries.
    #[getter]
    fn nnz(&self) -> PyResult<u64> {
        Ok(self.matrix()?.nnz())
    }

    /// The value dtype's short name: `"f32"`, `"f64"`, `"i32"`, `"i64"`, `"u32"` or `"u64"`.
    #[getter(_dtype_name)]
    fn dtype_name(&self) -> PyResult<&'static str> {
        Ok(self.matrix()?.dtype().name())
    }

    /// Bytes per stored column index: 4 or 8.
    #[getter]
    fn index_width(&self) -> PyResult<u8> {
        Ok(self.matrix()?.index_width())
    }

    /// The metadata as JSON text, or `None`.
    #[getter(_metadata_json)]
    fn metadata_json(&self) -> PyResult<Option<String>> {
        Ok(self.matrix()?.metadata().map(|v| v.to_string()))
    }

    /// `(indices, values)` of row `i` as read-only numpy arrays: views of the file's map for
    /// raw chunks, of the decoded chunk for compressed ones. Negative `i` counts from the end.
    fn row<'py>(&self, py: Python<'py>, i: &Bound<'py, PyAny>) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
        let g = self.guard()?;
        let open = g.as_ref().expect("checked open");
        let id = self.row_arg(py, &open.matrix, i)?;
        self.row_views(py, open, id)
    }

    /// `(indices, values)` of the row labelled `label`, as [`PyMatrix::row`].
    fn row_by_label<'py>(&self, py: Python<'py>, label: &str) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
        let g = self.guard()?;
        let open = g.as_ref().expect("checked open");
        let id = open.matrix.row_id(label).map_err(|e| self.error(py, e))?;
        self.row_views(py, open, id)
    }

    /// Whether the axis (0 rows, 1 columns) has labels.
    #[pyo3(name = "_has_labels")]
    fn has_labels(&self, axis: u8) -> PyResult<bool> {
        let m = self.matrix()?;
        Ok(labels_of(&m, axis_of(axis)?).is_some())
    }

    /// The id of `label` on `axis`; `LabelError` when absent or when the axis has no labels.
    #[pyo3(name = "_label_id")]
    fn label_id(&self, py: Python<'_>, axis: u8, label: &str) -> PyResult<u64> {
        let m = self.matrix()?;
        let r = match axis_of(axis)? {
            Axis::Row => m.row_id(label),
            Axis::Col => m.col_id(label),
        };
        r.map_err(|e| self.error(py, e))
    }

    /// The id of `label` on `axis`, or `None` (also when the axis has no labels).
    #[pyo3(name = "_find_label")]
    fn find_label(&self, axis: u8, label: &str) -> PyResult<Option<u64>> {
        let m = self.matrix()?;
        Ok(labels_of(&m, axis_of(axis)?).and_then(|l| l.lookup(label)))
    }

    /// The ids of `labels` on `axis` as an int64 array, in one call.
    #[pyo3(name = "_label_ids")]
    fn label_ids<'py>(&self, py: Python<'py>, axis: u8, labels: Vec<String>) -> PyResult<Bound<'py, PyArray1<i64>>> {
        let m = self.matrix()?;
        let axis = axis_of(axis)?;
        let mut ids = Vec::with_capacity(labels.len());
        for l in &labels {
            let id = match axis {
                Axis::Row => m.row_id(l),
                Axis::Col => m.col_id(l),
            }
            .map_err(|e| self.error(py, e))?;
            // Label ids index the axis; an axis past 2^63 entries has no numpy index.
            ids.push(i64::try_from(id).map_err(|_| PyIndexError::new_err(format!("id {id} does not fit int64")))?);
        }
        Ok(PyArray1::from_vec(py, ids))
    }

    /// The labels of `axis` at ids `start..stop` (clamped to the axis), as a list of str.
    #[pyo3(name = "_label_range")]
    fn label_range<'py>(&self, py: Python<'py>, axis: u8, start: u64, stop: u64) -> PyResult<Bound<'py, PyList>> {
        let m = self.matrix()?;
        let labels = self.labels_or_error(py, &m, axis)?;
        let out = PyList::empty(py);
        for i in start..stop.min(labels.len()) {
            out.append(self.label_at(py, &labels, i)?)?;
        }
        m.check_unchanged().map_err(|e| self.error(py, e))?;
        Ok(out)
    }

    /// The labels of `axis` at `ids` (an int64 array, in range), as a list of str.
    #[pyo3(name = "_labels_at")]
    fn labels_at<'py>(
        &self,
        py: Python<'py>,
        axis: u8,
        ids: PyReadonlyArray1<'py, i64>,
    ) -> PyResult<Bound<'py, PyList>> {
        let m = self.matrix()?;
        let labels = self.labels_or_error(py, &m, axis)?;
        let out = PyList::empty(py);
        for &i in ids.as_array().iter() {
            match u64::try_from(i) {
                Ok(i) if i < labels.len() => out.append(self.label_at(py, &labels, i)?)?,
                _ => {
                    return Err(PyIndexError::new_err(format!(
                        "{}: label {i} is out of range: the axis has {} labels",
                        self.path.display(),
                        labels.len()
                    )))
                }
            }
        }
        m.check_unchanged().map_err(|e| self.error(py, e))?;
        Ok(out)
    }

    /// Number of labels on `axis` (0 when it has none).
    #[pyo3(name = "_labels_len")]
    fn labels_len(&self, axis: u8) -> PyResult<u64> {
        let m = self.matrix()?;
        Ok(labels_of(&m, axis_of(axis)?).map_or(0, |l| l.len()))
    }

    /// CSR arrays `(indptr, indices, data)` of the rows `ids` (an int64 array; negative ids
    /// count from the end), in the given order, gathered in one call with the GIL released.
    fn rows_csr<'py>(&self, py: Python<'py>, ids: PyReadonlyArray1<'py, i64>) -> PyResult<CsrArrays<'py>> {
        let m = self.matrix()?;
        let ids = ids.as_array();
        let mut rows = Vec::with_capacity(ids.len());
        for &i in ids.iter() {
            rows.push(self.row_index(py, &m, i)?);
        }
        let mm = m.clone();
        let csr = py
            .detach(move || -> Result<Csr, GatherError> {
                let mut csr = Csr::new(&mm, rows.len())?;
                for id in rows {
                    let row = mm.row(id)?;
                    csr.push_row(row.indices(), row.values())?;
                }
                Ok(csr)
            })
            .map_err(|e| self.gather_error(py, e))?;
        Ok(csr.into_py(py))
    }

    /// CSR arrays of rows `start..stop`, read in order (compressed chunks are decoded once
    /// each, without filling the cache), with the GIL released.
    fn range_csr<'py>(&self, py: Python<'py>, start: u64, stop: u64) -> PyResult<CsrArrays<'py>> {
        let m = self.matrix()?;
        let stop = stop.min(m.n_rows());
        let start = start.min(stop);
        let n = usize::try_from(stop - start)
            .map_err(|_| PyMemoryError::new_err(format!("{}: too many rows", self.path.display())))?;
        let mm = m.clone();
        let csr = py
            .detach(move || -> Result<Csr, GatherError> {
                let mut csr = Csr::new(&mm, n)?;
                let mut next = start;
                for row in mm.iter_range(start..stop) {
                    let row = row?;
                    while next < row.id() {
                        csr.push_empty();
                        next += 1;
                    }
                    csr.push_row(row.indices(), row.values())?;
                    next += 1;
                }
                while next < stop {
                    csr.push_empty();
                    next += 1;
                }
                Ok(csr)
            })
            .map_err(|e| self.gather_error(py, e))?;
        Ok(csr.into_py(py))
    }

    /// The `k` largest entries of row `i` as `(column, value)` pairs, largest first (ties:
    /// lower column first; NaN last).
    #[pyo3(name = "_top_entries")]
    fn top_entries<'py>(
        &self,
        py: Python<'py>,
        i: &Bound<'py, PyAny>,
        k: usize,
    ) -> PyResult<Vec<(u64, Bound<'py, PyAny>)>> {
        let m = self.matrix()?;
        let id = self.row_arg(py, &m, i)?;
        let row = m.row(id).map_err(|e| self.error(py, e))?;
        let v = row.values();
        let mut order: Vec<usize> = (0..row.len()).collect();
        let key = |a: usize| v.get(a);
        order.sort_by(|&a, &b| cmp_desc(key(a), key(b)).then(a.cmp(&b)));
        order.truncate(k);
        order
            .into_iter()
            .map(|p| Ok((row.indices().get(p), scalar_to_py(py, v.get(p))?)))
            .collect()
    }

    /// Checks every checksum and every chunk's structure: `(chunks, [problem, ...])`.
    #[pyo3(name = "_verify_problems")]
    fn verify_problems(&self, py: Python<'_>) -> PyResult<(usize, Vec<String>)> {
        let m = self.matrix()?;
        let report = py.detach(move || m.verify());
        Ok((
            report.chunks,
            report.problems.iter().map(|e| errors::message(e)).collect(),
        ))
    }
}

/// Descending order of values, exact for each dtype; NaN after every number.
fn cmp_desc(a: Scalar, b: Scalar) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    match (a, b) {
        (Scalar::I32(x), Scalar::I32(y)) => y.cmp(&x),
        (Scalar::I64(x), Scalar::I64(y)) => y.cmp(&x),
        (Scalar::U32(x), Scalar::U32(y)) => y.cmp(&x),
        (Scalar::U64(x), Scalar::U64(y)) => y.cmp(&x),
        _ => {
            let (x, y) = (a.to_f64(), b.to_f64());
            match (x.is_nan(), y.is_nan()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                _ => y.partial_cmp(&x).unwrap_or(Ordering::Equal),
            }
        }
    }
}

/// Writes a small `.vfm` from CSR arrays, for the package's examples and tests (the public
/// way to build a matrix is `vecfmt.Accumulator`). `indptr` and `indices` are int64,
/// `values` any of the six dtypes; `codec` is `"raw"`, `"lz4"` or `"zstd"`.
#[pyfunction]
#[pyo3(name = "_write_csr")]
#[pyo3(signature = (path, n_cols, indptr, indices, values, codec = "raw", row_labels = None, col_labels = None, metadata_json = None, chunk_bytes = None))]
#[allow(clippy::too_many_arguments)]
fn write_csr(
    py: Python<'_>,
    path: PathBuf,
    n_cols: u64,
    indptr: PyReadonlyArray1<'_, i64>,
    indices: PyReadonlyArray1<'_, i64>,
    values: &Bound<'_, PyAny>,
    codec: &str,
    row_labels: Option<Vec<String>>,
    col_labels: Option<Vec<String>>,
    metadata_json: Option<&str>,
    chunk_bytes: Option<usize>,
) -> PyResult<()> {
    let codec = args::codec(codec)?;
    let values = values_arg(values)?;
    let mut opts = vecfmt::WriterOptions::new(values.dtype(), n_cols).codec(codec);
    let n_rows = indptr.len().saturating_sub(1) as u64;
    opts = opts.n_rows(n_rows);
    if let Some(b) = chunk_bytes {
        opts = opts.chunk_bytes(b);
    }
    let (indptr, indices) = (indptr.as_slice()?, indices.as_slice()?);
    let metadata = match metadata_json {
        None => None,
        Some(t) => Some(serde_json::from_str(t).map_err(|e| errors::invalid(format!("metadata: {e}")))?),
    };
    py.detach(|| -> vecfmt::Result<()> {
        let mut w = vecfmt::MatrixWriter::create(&path, opts)?;
        if let Some(l) = row_labels {
            w.set_row_labels(l);
        }
        if let Some(l) = col_labels {
            w.set_col_labels(l);
        }
        if let Some(md) = metadata {
            w.set_metadata(md)?;
        }
        match values.as_values() {
            Values::F32(v) => w.push_csr(0, indptr, indices, v)?,
            Values::F64(v) => w.push_csr(0, indptr, indices, v)?,
            Values::I32(v) => w.push_csr(0, indptr, indices, v)?,
            Values::I64(v) => w.push_csr(0, indptr, indices, v)?,
            Values::U32(v) => w.push_csr(0, indptr, indices, v)?,
            Values::U64(v) => w.push_csr(0, indptr, indices, v)?,
        }
        w.finish().map(drop)
    })
    .map_err(errors::core)
}

/// A 1-D numpy array of one of the six value dtypes, copied.
fn values_arg(obj: &Bound<'_, PyAny>) -> PyResult<ValueVec> {
    macro_rules! try_dtype {
        ($t:ty) => {
            if let Ok(a) = obj.extract::<PyReadonlyArray1<'_, $t>>() {
                return Ok(ValueVec::from(a.as_array().to_vec()));
            }
        };
    }
    try_dtype!(f32);
    try_dtype!(f64);
    try_dtype!(i32);
    try_dtype!(i64);
    try_dtype!(u32);
    try_dtype!(u64);
    Err(PyTypeError::new_err(
        "values must be a 1-D numpy array of float32, float64, int32, int64, uint32 or uint64",
    ))
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyMatrix>()?;
    m.add_class::<MapOwner>()?;
    m.add_class::<ChunkOwner>()?;
    m.add_function(wrap_pyfunction!(size_in_bytes, m)?)?;
    m.add_function(wrap_pyfunction!(write_csr, m)?)?;
    Ok(())
}
