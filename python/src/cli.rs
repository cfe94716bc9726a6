//! The `vecfmt` console script: the CLI crate run in-process, so that `pip install` puts the
//! same command on PATH as `cargo install` does.

use pyo3::prelude::*;

/// Runs the `vecfmt` command line `argv` (with the program name first) and returns its exit
/// code. The GIL is released while it runs.
#[pyfunction]
fn cli_main(py: Python<'_>, argv: Vec<std::ffi::OsString>) -> u8 {
    py.detach(|| vecfmt_cli::exit_status(vecfmt_cli::main_from(argv)))
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(cli_main, m)?)
}
