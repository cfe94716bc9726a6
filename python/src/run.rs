//! Long library calls from Python: the call runs on a thread of its own with the GIL
//! released, while the caller's thread wakes every few tens of milliseconds to check for
//! Ctrl-C and to call the progress callback. On KeyboardInterrupt (or an exception from the
//! callback) the call is cancelled through its [`vecfmt::Cancel`], the thread is joined,
//! so that the library has removed its temporaries, and the exception is raised.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use pyo3::prelude::*;
use pyo3::types::PyDict;

/// How often the waiting thread checks for signals and reports progress.
const TICK: Duration = Duration::from_millis(50);
/// The least time between two calls of a progress callback.
const REPORT_EVERY: Duration = Duration::from_millis(200);

/// The latest progress of a long call, as the library's progress hooks report it.
#[derive(Debug, Default, Clone)]
pub(crate) struct Report {
    /// What the call is doing: `vocab`, `cooccur`, `build`, `merge`, `compact`, `convert`.
    pub stage: &'static str,
    /// How far it is, in `unit`s, and of how many when known.
    pub done: u64,
    pub total: Option<u64>,
    pub unit: &'static str,
    /// Tokens or triplets, for the text passes.
    pub items: Option<u64>,
    pub memory_used: Option<u64>,
    pub memory_budget: Option<u64>,
    pub commits: Option<u64>,
    pub evictions: Option<u64>,
}

/// Where the library's threads leave the latest report for the waiting thread.
#[derive(Debug, Default)]
pub(crate) struct Latest(Mutex<Option<Report>>);

impl Latest {
    pub(crate) fn set(&self, r: Report) {
        if let Ok(mut g) = self.0.lock() {
            *g = Some(r);
        }
    }
    fn take(&self) -> Option<Report> {
        self.0.lock().ok().and_then(|mut g| g.take())
    }
}

fn report_dict<'py>(py: Python<'py>, r: &Report, elapsed: Duration) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("stage", r.stage)?;
    d.set_item("done", r.done)?;
    d.set_item("total", r.total)?;
    d.set_item("unit", r.unit)?;
    d.set_item("elapsed", elapsed.as_secs_f64())?;
    for (k, v) in [
        ("items", r.items),
        ("memory_used", r.memory_used),
        ("memory_budget", r.memory_budget),
        ("commits", r.commits),
        ("evictions", r.evictions),
    ] {
        if let Some(v) = v {
            d.set_item(k, v)?;
        }
    }
    Ok(d)
}

/// Runs `work` on a new thread, GIL released, and waits for it as the module doc says.
/// `Ok(result)` is the library call's own result; `Err` is a Python exception raised while
/// waiting (KeyboardInterrupt, or one from `progress`), after the call stopped.
pub(crate) fn run_long<T, E>(
    py: Python<'_>,
    cancel: &vecfmt::Cancel,
    latest: &Arc<Latest>,
    progress: Option<&Bound<'_, PyAny>>,
    work: impl FnOnce() -> Result<T, E> + Send,
) -> PyResult<Result<T, E>>
where
    T: Send,
    E: Send,
{
    let start = Instant::now();
    // Set (and signalled) by the call's thread when it ends, also by a panic (the guard's drop).
    let done = (Mutex::new(false), Condvar::new());
    struct Done<'a>(&'a (Mutex<bool>, Condvar));
    impl Drop for Done<'_> {
        fn drop(&mut self) {
            if let Ok(mut d) = self.0 .0.lock() {
                *d = true;
            }
            self.0 .1.notify_all();
        }
    }
    let wait = |timeout: Duration| -> bool {
        let Ok(d) = done.0.lock() else { return true };
        match done.1.wait_timeout_while(d, timeout, |d| !*d) {
            Ok((d, _)) => *d,
            Err(_) => true,
        }
    };
    std::thread::scope(|s| {
        let handle = s.spawn(|| {
            let _done = Done(&done);
            work()
        });
        let mut last_report = Instant::now() - REPORT_EVERY;
        let outcome: PyResult<()> = loop {
            if py.detach(|| wait(TICK)) {
                break Ok(());
            }
            if let Err(e) = py.check_signals() {
                break Err(e);
            }
            if let Some(cb) = progress {
                if last_report.elapsed() >= REPORT_EVERY {
                    if let Some(r) = latest.take() {
                        last_report = Instant::now();
                        if let Err(e) = report_dict(py, &r, start.elapsed()).and_then(|d| cb.call1((d,))) {
                            break Err(e);
                        }
                    }
                }
            }
        };
        if outcome.is_err() {
            cancel.cancel();
        }
        // The call ends promptly once cancelled; waiting for it means its temporaries are gone.
        let result = py.detach(|| handle.join());
        let result = match result {
            Ok(r) => r,
            Err(panic) => {
                return Err(pyo3::exceptions::PyRuntimeError::new_err(format!(
                    "vecfmt: internal error (a panic): {}",
                    panic_text(panic.as_ref())
                )));
            }
        };
        outcome.map(|()| result)
    })
}

/// The message of a caught panic.
pub(crate) fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown".into())
}
