//! `vecfmt._native`: the PyO3 extension behind `import vecfmt`. It binds the library crates
//! (`vecfmt`, `vecfmt-text`, `vecfmt-convert`) and the CLI crate for the console script;
//! it only converts arguments, results and errors. The Python package in `vecfmt/` adds the
//! conveniences that need scipy, pandas or anndata.

use pyo3::prelude::*;

mod accumulator;
mod args;
mod cli;
mod errors;
mod matrix;
mod ops;
mod run;

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    accumulator::register(m)?;
    cli::register(m)?;
    ops::register(m)?;
    matrix::register(m)?;
    Ok(())
}
