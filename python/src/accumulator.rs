//! `vecfmt._native.Accumulator`: the core [`vecfmt::Accumulator`] fed by numpy batches.
//! The Python class `vecfmt.Accumulator` (`vecfmt/_accumulator.py`) wraps it: it adds the
//! context manager, the normalisation of odd inputs (lists of ints, non-native byte order)
//! and `finish() -> Matrix`.
//!
//! Threads: every `add` holds a read lock on the accumulator and takes a producer from a
//! pool (one per concurrent call); `commit`, `finish` and `close` take the write lock, so
//! every producer is back in the pool and can be flushed. A batch is therefore in a commit
//! whole or not at all. Every lock is taken with the GIL released, so that a thread waiting
//! for one never holds the GIL that the holder may need (to check for Ctrl-C).

mod batch;

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyFloat, PyInt, PyString, PyType};
use vecfmt::{Accumulator, AccumulatorOptions, AccumulatorStats, Axis, DType, Matrix, Producer};

use crate::errors;
use batch::{fill_axis, fill_floats, fill_ints, Batch, IdArg, Limits, ValArg};

/// Updates converted and added per step. The buffers of one step (ids and values) stay in
/// the second-level cache, and Ctrl-C is looked for every [`SIGNAL_STEPS`] steps.
const STEP: usize = 1 << 15;
/// Steps between two looks for Ctrl-C: about a million updates, some tens of milliseconds.
const SIGNAL_STEPS: usize = 32;
/// The fewest updates of a batch worth a thread of their own.
const PER_THREAD: usize = 1 << 17;
/// Names the method (`add`, `commit`, `finish`, `close`) that panics on purpose, for the
/// test that a panic in vecfmt becomes a `RuntimeError`.
const PANIC_FOR_TESTS: &str = "VECFMT_TEST_ACCUMULATOR_PANIC";

/// Why a call failed, built without the GIL and turned into a Python exception after.
pub(crate) enum Fail {
    Core(vecfmt::Error),
    Text(vecfmt_text::Error),
    /// Bad input: a `vecfmt.InvalidInputError` (a `ValueError`).
    Invalid(String),
    /// A value the dtype cannot take: a `vecfmt.DTypeError`.
    DType(String),
    /// Labels for an axis that has none: a `vecfmt.LabelError`.
    Label(String),
    Closed,
    /// A panic in vecfmt (a bug): a `RuntimeError`, not PyO3's `PanicException`, which
    /// `except Exception` does not catch.
    Panic(String),
    Py(PyErr),
}

impl From<Fail> for PyErr {
    fn from(f: Fail) -> PyErr {
        match f {
            Fail::Core(e) => errors::core(e),
            Fail::Text(e) => errors::text(e),
            Fail::Invalid(m) => errors::invalid(m),
            Fail::DType(m) => errors::dtype(m),
            Fail::Label(m) => Python::attach(|py| {
                match py
                    .import("vecfmt._errors")
                    .and_then(|e| Ok(e.getattr("LabelError")?.cast_into::<PyType>()?))
                {
                    Ok(cls) => PyErr::from_type(cls, m),
                    Err(_) => pyo3::exceptions::PyKeyError::new_err(m),
                }
            }),
            Fail::Closed => {
                PyValueError::new_err("the accumulator is closed: it was finished, closed, or left by an exception")
            }
            Fail::Panic(m) => pyo3::exceptions::PyRuntimeError::new_err(m),
            Fail::Py(e) => e,
        }
    }
}

impl From<PyErr> for Fail {
    fn from(e: PyErr) -> Fail {
        Fail::Py(e)
    }
}

/// `path: message` for the errors the binding raises itself.
fn at(path: &Path, f: Fail) -> Fail {
    match f {
        Fail::Invalid(m) => Fail::Invalid(format!("{}: {m}", path.display())),
        Fail::DType(m) => Fail::DType(format!("{}: {m}", path.display())),
        Fail::Label(m) => Fail::Label(format!("{}: {m}", path.display())),
        f => f,
    }
}

/// The open accumulator and its idle producers.
struct Open {
    acc: Accumulator,
    pool: Mutex<Vec<Producer>>,
}

impl Open {
    fn flush_all(&self) -> Result<(), Fail> {
        let mut pool = self.pool.lock().unwrap_or_else(|e| e.into_inner());
        for p in pool.iter_mut() {
            p.flush().map_err(Fail::Core)?;
        }
        Ok(())
    }
}

/// An axis: labelled or not, and how many ids it takes so far.
struct AxisState {
    labelled: bool,
    /// Ids below this are valid: the number of labels (it grows), the fixed length, or the
    /// format's limit of 2^32 - 1.
    limit: AtomicU64,
    fixed: bool,
}

impl AxisState {
    fn limit(&self, axis: Axis) -> (u64, String) {
        let n = self.limit.load(Ordering::Relaxed);
        let why = if self.labelled {
            format!("the {axis}s have {n} labels so far; use labels to add new {axis}s")
        } else if self.fixed {
            format!("the matrix has {n} {axis}s")
        } else {
            format!("{axis} ids must be below {n}")
        };
        (n, why)
    }
}

/// The accumulator behind `vecfmt.Accumulator`. See the Python class for the documentation.
#[pyclass(name = "Accumulator", module = "vecfmt._native", frozen)]
pub(crate) struct NativeAccumulator {
    path: PathBuf,
    dtype: DType,
    budget: u64,
    state: RwLock<Option<Open>>,
    rows: AxisState,
    cols: AxisState,
    checkpoint: Option<Duration>,
    start: Instant,
    /// Milliseconds from `start` to the last commit.
    last_commit: AtomicU64,
    /// An automatic commit is under way (one at a time).
    auto_committing: AtomicBool,
    /// Threads that add one batch; `None`: one per core.
    threads: Option<usize>,
    /// The counters at the end, once finished or closed.
    last_stats: Mutex<Option<AccumulatorStats>>,
}

fn read(lock: &RwLock<Option<Open>>) -> RwLockReadGuard<'_, Option<Open>> {
    // A panic in another call cannot leave the state half-changed: take it as it is.
    lock.read().unwrap_or_else(|e| e.into_inner())
}

fn write(lock: &RwLock<Option<Open>>) -> RwLockWriteGuard<'_, Option<Open>> {
    lock.write().unwrap_or_else(|e| e.into_inner())
}

/// A size in bytes: an int, or a string such as `"8G"`.
fn parse_memory(obj: &Bound<'_, PyAny>) -> PyResult<u64> {
    if let Ok(s) = obj.cast::<PyString>() {
        return vecfmt_text::parse_bytes(s.to_str()?).map_err(|e| Fail::Text(e).into());
    }
    if obj.is_instance_of::<PyInt>() {
        return obj
            .extract::<u64>()
            .map_err(|_| errors::invalid(format!("memory must be a positive number of bytes, got {obj}")));
    }
    Err(PyTypeError::new_err(format!(
        "memory must be a size such as \"8G\" or a number of bytes, got {}",
        obj.get_type().name()?
    )))
}

/// A checkpoint interval: seconds (int or float), or a duration string such as `"60s"`,
/// `"5m"`; `None`, `0`, `"never"` and `"off"` mean commits only when asked.
fn parse_checkpoint(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Duration>> {
    let Some(obj) = obj.filter(|o| !o.is_none()) else {
        return Ok(None);
    };
    let d = if let Ok(s) = obj.cast::<PyString>() {
        let s = s.to_str()?.trim();
        if s == "never" || s == "off" {
            return Ok(None);
        }
        vecfmt_text::parse_duration(s).map_err(Fail::Text)?
    } else if obj.is_instance_of::<PyInt>() || obj.is_instance_of::<PyFloat>() {
        let secs: f64 = obj.extract()?;
        if !secs.is_finite() || secs < 0.0 {
            return Err(errors::invalid(format!(
                "checkpoint must be a number of seconds ≥ 0, got {secs}"
            )));
        }
        Duration::from_secs_f64(secs)
    } else {
        return Err(PyTypeError::new_err(format!(
            "checkpoint must be a duration such as \"60s\", a number of seconds, or None, got {}",
            obj.get_type().name()?
        )));
    };
    Ok((!d.is_zero()).then_some(d))
}

/// Whether the calling thread is Python's main thread, the only one that runs signal
/// handlers: other threads need not look for Ctrl-C (and wait for the GIL to do it).
fn on_main_thread(py: Python<'_>) -> PyResult<bool> {
    static MAIN: PyOnceLock<u64> = PyOnceLock::new();
    let threading = py.import("threading")?;
    let main = *MAIN.get_or_try_init(py, || {
        threading.call_method0("main_thread")?.getattr("ident")?.extract()
    })?;
    Ok(threading.call_method0("get_ident")?.extract::<u64>()? == main)
}

/// Per axis: whether it is labelled, and how many ids it has.
type AxisShape = (bool, u64);

/// What the file at `path` holds already, for mode `"a"`: its final dtype, and its axes.
fn existing(path: &Path) -> Result<(DType, AxisShape, AxisShape), Fail> {
    let m = Matrix::open(path).map_err(Fail::Core)?;
    let target = m
        .metadata()
        .and_then(|v| v.get(vecfmt::accum::WORKING_KEY))
        .and_then(|w| w.get("dtype"))
        .and_then(|d| d.as_str())
        .and_then(|d| d.parse::<DType>().ok())
        .unwrap_or(m.dtype());
    Ok((
        target,
        (m.row_labels().is_some(), m.n_rows()),
        (m.col_labels().is_some(), m.n_cols()),
    ))
}

#[pymethods]
impl NativeAccumulator {
    #[new]
    #[pyo3(signature = (path, dtype=None, memory=None, checkpoint=None, mode="w", row_labels=false, col_labels=false, n_rows=None, n_cols=None, threads=None))]
    #[expect(
        clippy::too_many_arguments,
        reason = "the keyword arguments of the Python constructor"
    )]
    fn new(
        py: Python<'_>,
        path: PathBuf,
        dtype: Option<&str>,
        memory: Option<&Bound<'_, PyAny>>,
        checkpoint: Option<&Bound<'_, PyAny>>,
        mode: &str,
        row_labels: bool,
        col_labels: bool,
        n_rows: Option<u64>,
        n_cols: Option<u64>,
        threads: Option<usize>,
    ) -> PyResult<NativeAccumulator> {
        if threads == Some(0) {
            return Err(errors::invalid("threads must be at least 1"));
        }
        let dtype: Option<DType> = dtype.map(|d| d.parse().map_err(Fail::Core)).transpose()?;
        let budget = match memory.filter(|m| !m.is_none()) {
            Some(m) => parse_memory(m)?,
            None => vecfmt::accum::default_memory_budget(),
        };
        let checkpoint = parse_checkpoint(checkpoint)?;
        if !matches!(mode, "w" | "a" | "x") {
            return Err(errors::invalid(format!(
                "mode must be \"w\" (create or replace), \"a\" (add to the file) or \"x\" (create, refuse an existing file), got {mode:?}"
            )));
        }
        for (axis, labels, n) in [(Axis::Row, row_labels, n_rows), (Axis::Col, col_labels, n_cols)] {
            if labels && n.is_some() {
                return Err(errors::invalid(format!(
                    "{axis}s cannot both have labels and a fixed number: a labelled axis grows with its labels"
                )));
            }
        }
        let open = py.detach(|| -> Result<_, Fail> {
            let append = mode == "a" && path.exists();
            if mode == "x" {
                vecfmt_text::prepare_output(&path, false, false).map_err(Fail::Text)?;
            }
            let (dtype, rows, cols) = if append {
                let (held, rows, cols) = existing(&path)?;
                if let Some(d) = dtype.filter(|&d| d != held) {
                    return Err(Fail::Core(vecfmt::Error::DTypeMismatch {
                        actual: held,
                        requested: d,
                    }));
                }
                // An axis keeps the labels it has; an axis with ids cannot take labels now.
                for (axis, asked, (has, n)) in [("row", row_labels, rows), ("column", col_labels, cols)] {
                    if asked && !has && n > 0 {
                        return Err(Fail::Label(format!(
                            "{}: the file's {axis}s have ids, not labels, so labels cannot be added to them",
                            path.display()
                        )));
                    }
                }
                let rows = (rows.0 || row_labels, rows.1);
                let cols = (cols.0 || col_labels, cols.1);
                (held, rows, cols)
            } else {
                (dtype.unwrap_or(DType::F32), (row_labels, 0), (col_labels, 0))
            };
            let mut opts = AccumulatorOptions::new(dtype)
                .memory(budget)
                .row_labels(rows.0)
                .col_labels(cols.0)
                .overwrite(mode == "w");
            if let Some(n) = n_rows {
                opts = opts.n_rows(n);
            }
            if let Some(n) = n_cols {
                opts = opts.n_cols(n);
            }
            if let Some(n) = threads {
                opts = opts.threads(n);
            }
            let acc = if append {
                Accumulator::open(&path, opts)
            } else {
                Accumulator::create(&path, opts)
            }
            .map_err(Fail::Core)?;
            Ok((acc, dtype, rows, cols))
        });
        let (acc, dtype, rows, cols) = open?;
        let axis = |(labelled, n): (bool, u64), fixed: Option<u64>| AxisState {
            labelled,
            limit: AtomicU64::new(if labelled { n } else { fixed.unwrap_or(u32::MAX as u64) }),
            fixed: fixed.is_some(),
        };
        Ok(NativeAccumulator {
            budget: acc.memory_budget(),
            state: RwLock::new(Some(Open {
                acc,
                pool: Mutex::new(Vec::new()),
            })),
            rows: axis(rows, n_rows),
            cols: axis(cols, n_cols),
            path,
            dtype,
            checkpoint,
            threads,
            start: Instant::now(),
            last_commit: AtomicU64::new(0),
            auto_committing: AtomicBool::new(false),
            last_stats: Mutex::new(None),
        })
    }

    /// Adds `values` at `(rows, cols)`; see `vecfmt.Accumulator.add`.
    #[pyo3(signature = (rows, cols, values=None))]
    fn add(
        &self,
        py: Python<'_>,
        rows: &Bound<'_, PyAny>,
        cols: &Bound<'_, PyAny>,
        values: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let rows = IdArg::new(rows, Axis::Row)?;
        let cols = IdArg::new(cols, Axis::Col)?;
        let values = match values {
            Some(v) => ValArg::new(v)?,
            None => ValArg::Int(1),
        };
        let main = on_main_thread(py)?;
        let batch = Batch::new(rows.view(), cols.view(), values.view()).map_err(|f| at(&self.path, f))?;
        py.detach(|| self.guarded("add", || self.add_batch(&batch, main)))
            .map_err(|f| at(&self.path, f))?;
        self.auto_commit(py)
    }

    /// Makes everything added so far durable.
    fn commit(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| self.guarded("commit", || self.commit_now()))?;
        Ok(())
    }

    /// Commits, writes the finished file and closes the accumulator.
    fn finish(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| {
            self.guarded("finish", || {
                let open = write(&self.state).take().ok_or(Fail::Closed)?;
                let flushed = open.flush_all();
                // Every producer goes before `finish`, which needs the accumulator alone.
                drop(open.pool);
                if let Err(f) = flushed {
                    self.keep_stats(&open.acc);
                    return Err(f);
                }
                let summary = open.acc.finish().map_err(Fail::Core)?;
                *self.last_stats.lock().unwrap_or_else(|e| e.into_inner()) = Some(summary.stats);
                Ok(())
            })
        })?;
        Ok(())
    }

    /// Closes without committing: the file stays at its last commit.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| {
            self.guarded("close", || {
                if let Some(open) = write(&self.state).take() {
                    self.keep_stats(&open.acc);
                    // Producers dropped unflushed discard what they hold; nothing more is written.
                    drop(open);
                }
                Ok(())
            })
        })?;
        Ok(())
    }

    /// Whether `finish` or `close` ran.
    #[getter]
    fn closed(&self, py: Python<'_>) -> bool {
        py.detach(|| read(&self.state).is_none())
    }

    #[getter]
    fn path(&self) -> PathBuf {
        self.path.clone()
    }

    #[getter]
    fn dtype(&self) -> &'static str {
        self.dtype.name()
    }

    /// The cache's counters, as a dict.
    #[getter]
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = py.detach(|| match read(&self.state).as_ref() {
            Some(open) => {
                let mut s = open.acc.stats();
                s.memory_used = open.acc.memory_used();
                s
            }
            None => self
                .last_stats
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .unwrap_or_default(),
        });
        let d = stats_dict(py, &s)?;
        d.set_item("memory_budget", self.budget)?;
        Ok(d)
    }
}

/// An accumulator's counters as a dict: `Accumulator.stats`, and the `stats` of the
/// summaries that `cooccur` and `build` return.
pub(crate) fn stats_dict<'py>(py: Python<'py>, s: &vecfmt::AccumulatorStats) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("memory_used", s.memory_used)?;
    d.set_item("memory_peak", s.memory_peak)?;
    d.set_item("evictions", s.evictions)?;
    d.set_item("eviction_rounds", s.eviction_rounds)?;
    d.set_item("spills", s.spills)?;
    d.set_item("reloads", s.reloads)?;
    d.set_item("cache_drops", s.cache_drops)?;
    d.set_item("commits", s.commits)?;
    d.set_item("bytes_written", s.bytes_written)?;
    d.set_item("file_bytes", s.file_bytes)?;
    d.set_item("free_bytes", s.free_bytes)?;
    d.set_item("runs", s.runs)?;
    d.set_item("run_bytes", s.run_bytes)?;
    Ok(d)
}

impl NativeAccumulator {
    /// Runs a method's work, turning a panic in vecfmt into [`Fail::Panic`], which names
    /// the file and the method. The accumulator is closed then: a panic may have left its
    /// state half-changed. The file keeps its last commit.
    fn guarded<T>(&self, method: &str, work: impl FnOnce() -> Result<T, Fail>) -> Result<T, Fail> {
        let run = AssertUnwindSafe(|| {
            if std::env::var_os(PANIC_FOR_TESTS).is_some_and(|m| m == method) {
                panic!("{PANIC_FOR_TESTS} is set to {method:?}");
            }
            work()
        });
        let panic = match std::panic::catch_unwind(run) {
            Ok(r) => return r,
            Err(p) => crate::run::panic_text(p.as_ref()),
        };
        // Dropping what is left may panic again; the state goes either way.
        let _ = std::panic::catch_unwind(AssertUnwindSafe(|| drop(write(&self.state).take())));
        Err(Fail::Panic(format!(
            "{}: internal error in vecfmt (a panic in Accumulator.{method}: {panic}); the accumulator is closed, and the file keeps its last commit",
            self.path.display()
        )))
    }

    fn keep_stats(&self, acc: &Accumulator) {
        *self.last_stats.lock().unwrap_or_else(|e| e.into_inner()) = Some(acc.stats());
    }

    fn axis(&self, axis: Axis) -> &AxisState {
        match axis {
            Axis::Row => &self.rows,
            Axis::Col => &self.cols,
        }
    }

    /// Checks the whole batch, then adds it step by step through a pooled producer.
    fn add_batch(&self, batch: &Batch<'_>, main_thread: bool) -> Result<(), Fail> {
        for (axis, ids) in [(Axis::Row, &batch.rows), (Axis::Col, &batch.cols)] {
            if ids.is_labels() && !self.axis(axis).labelled {
                return Err(Fail::Label(format!(
                    "labels were given for the {axis}s, but the {axis}s have no labels (open the accumulator with {axis}_labels=True, or give ids)",
                    axis = match axis {
                        Axis::Row => "row",
                        Axis::Col => "col",
                    }
                )));
            }
        }
        let limits = Limits {
            rows: self.rows.limit(Axis::Row),
            cols: self.cols.limit(Axis::Col),
        };
        batch.check(self.dtype, &limits)?;

        let guard = read(&self.state);
        let open = guard.as_ref().ok_or(Fail::Closed)?;
        let parts = self.parallelism(batch);
        if parts <= 1 {
            return self.add_range(open, batch, 0..batch.len, main_thread, &AtomicBool::new(false));
        }
        // A large batch of ids is cut among threads, each with its own producer. A labelled
        // batch is not: its new labels get ids in the order they come.
        let per = batch.len.div_ceil(parts);
        let stop = AtomicBool::new(false);
        std::thread::scope(|s| {
            let workers: Vec<_> = (1..parts)
                .map(|t| {
                    let range = (t * per).min(batch.len)..((t + 1) * per).min(batch.len);
                    let stop = &stop;
                    s.spawn(move || self.add_range(open, batch, range, false, stop))
                })
                .collect();
            let mut result = self.add_range(open, batch, 0..per.min(batch.len), main_thread, &stop);
            if result.is_err() {
                stop.store(true, Ordering::Relaxed);
            }
            for w in workers {
                let r = w
                    .join()
                    .unwrap_or_else(|_| Err(Fail::Invalid("a thread adding the batch panicked".into())));
                if result.is_ok() {
                    result = r;
                }
            }
            result
        })
    }

    /// How many threads add `batch`: one per core, each with at least [`PER_THREAD`]
    /// updates, at most `threads` if it was set.
    fn parallelism(&self, batch: &Batch<'_>) -> usize {
        if batch.rows.is_labels() || batch.cols.is_labels() || batch.len < 2 * PER_THREAD {
            return 1;
        }
        // Asked once: it reads the cgroup's CPU quota, some tens of microseconds.
        static CORES: OnceLock<usize> = OnceLock::new();
        let cores = self
            .threads
            .unwrap_or_else(|| *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get())));
        cores.min(batch.len / PER_THREAD).max(1)
    }

    /// Adds the updates `range` of `batch` through a producer of the pool, step by step;
    /// stops early, without an error, when `stop` is set (another thread failed).
    fn add_range(
        &self,
        open: &Open,
        batch: &Batch<'_>,
        range: std::ops::Range<usize>,
        main_thread: bool,
        stop: &AtomicBool,
    ) -> Result<(), Fail> {
        let mut p = {
            let mut pool = open.pool.lock().unwrap_or_else(|e| e.into_inner());
            pool.pop().unwrap_or_else(|| open.acc.producer())
        };
        let r = self.add_steps(open, &mut p, batch, range, main_thread, stop);
        if r.is_err() {
            stop.store(true, Ordering::Relaxed);
        }
        // Back to the pool even after an error: what it holds was added before the error.
        open.pool.lock().unwrap_or_else(|e| e.into_inner()).push(p);
        r
    }

    fn add_steps(
        &self,
        open: &Open,
        p: &mut Producer,
        batch: &Batch<'_>,
        range: std::ops::Range<usize>,
        main_thread: bool,
        stop: &AtomicBool,
    ) -> Result<(), Fail> {
        let (mut r, mut c) = (Vec::with_capacity(STEP), Vec::with_capacity(STEP));
        let (mut fv, mut iv) = (Vec::new(), Vec::new());
        let float = self.dtype.is_float();
        let label = |axis: Axis| {
            let state = self.axis(axis);
            let acc = &open.acc;
            move |l: &str| -> vecfmt::Result<u64> {
                let id = match axis {
                    Axis::Row => acc.row_id(l)?,
                    Axis::Col => acc.col_id(l)?,
                };
                state.limit.fetch_max(id + 1, Ordering::Relaxed);
                Ok(id)
            }
        };
        for (k, start) in range.clone().step_by(STEP).enumerate() {
            if stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            if main_thread && k > 0 && k % SIGNAL_STEPS == 0 {
                Python::attach(|py| py.check_signals())?;
            }
            let range = start..(start + STEP).min(range.end);
            fill_axis(&batch.rows, range.clone(), &mut r, label(Axis::Row))?;
            fill_axis(&batch.cols, range.clone(), &mut c, label(Axis::Col))?;
            if float {
                fill_floats(&batch.values, range, &mut fv);
                for ((&r, &c), &v) in r.iter().zip(&c).zip(&fv) {
                    p.add(r, c, v).map_err(Fail::Core)?;
                }
            } else {
                fill_ints(&batch.values, range, &mut iv);
                for ((&r, &c), &v) in r.iter().zip(&c).zip(&iv) {
                    p.add_int(r, c, v).map_err(Fail::Core)?;
                }
            }
        }
        Ok(())
    }

    /// Flushes every producer and commits.
    fn commit_now(&self) -> Result<(), Fail> {
        let guard = write(&self.state);
        let open = guard.as_ref().ok_or(Fail::Closed)?;
        open.flush_all()?;
        open.acc.commit().map_err(Fail::Core)?;
        self.last_commit
            .store(self.start.elapsed().as_millis() as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Commits when the checkpoint interval has passed since the last commit (one thread
    /// does it; the others go on).
    fn auto_commit(&self, py: Python<'_>) -> PyResult<()> {
        let Some(every) = self.checkpoint else { return Ok(()) };
        let now = self.start.elapsed().as_millis() as u64;
        if now < self.last_commit.load(Ordering::Relaxed) + every.as_millis() as u64 {
            return Ok(());
        }
        if self.auto_committing.swap(true, Ordering::Acquire) {
            return Ok(());
        }
        let r = py.detach(|| self.commit_now());
        self.auto_committing.store(false, Ordering::Release);
        Ok(r?)
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<NativeAccumulator>()
}
