//! Python arguments into library options: sizes ("8G" or an int of bytes), durations ("60s"
//! or seconds), dtypes, codecs, shards. Parsing is the library's (`vecfmt_text::parse_bytes`
//! and friends); this only accepts the Python spellings.

use std::path::PathBuf;
use std::time::Duration;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyString, PyTuple};

use crate::errors;

/// A byte count: an int, or a string such as "256M" or "8G".
pub(crate) fn bytes(name: &str, v: &Bound<'_, PyAny>) -> PyResult<u64> {
    if let Ok(s) = v.cast::<PyString>() {
        return vecfmt_text::parse_bytes(s.to_str()?).map_err(|e| PyValueError::new_err(format!("{name}: {e}")));
    }
    if let Ok(n) = v.extract::<i64>() {
        return u64::try_from(n).map_err(|_| PyValueError::new_err(format!("{name}: {n} is negative")));
    }
    Err(PyTypeError::new_err(format!(
        "{name}: expected a number of bytes or a size such as \"8G\", got {}",
        v.get_type().name()?
    )))
}

/// An optional byte count (None keeps the library's default).
pub(crate) fn opt_bytes(name: &str, v: Option<&Bound<'_, PyAny>>) -> PyResult<Option<u64>> {
    match v {
        None => Ok(None),
        Some(v) if v.is_none() => Ok(None),
        Some(v) => bytes(name, v).map(Some),
    }
}

/// A duration: seconds as a number, or a string such as "60s", "5m".
pub(crate) fn duration(name: &str, v: &Bound<'_, PyAny>) -> PyResult<Duration> {
    if let Ok(s) = v.cast::<PyString>() {
        return vecfmt_text::parse_duration(s.to_str()?).map_err(|e| PyValueError::new_err(format!("{name}: {e}")));
    }
    let secs: f64 = v
        .extract()
        .map_err(|_| PyTypeError::new_err(format!("{name}: expected seconds or a duration such as \"60s\"")))?;
    Duration::try_from_secs_f64(secs).map_err(|_| PyValueError::new_err(format!("{name}: {secs} is not a duration")))
}

/// When to commit: None or "never" for never, a duration, or a byte count ("1G" of input).
pub(crate) fn checkpoint(v: Option<&Bound<'_, PyAny>>) -> PyResult<vecfmt_text::Checkpoint> {
    use vecfmt_text::Checkpoint;
    let Some(v) = v.filter(|v| !v.is_none()) else {
        return Ok(Checkpoint::Never);
    };
    if let Ok(s) = v.cast::<PyString>() {
        return s
            .to_str()?
            .parse()
            .map_err(|e| PyValueError::new_err(format!("checkpoint: {e}")));
    }
    duration("checkpoint", v).map(Checkpoint::Every)
}

pub(crate) fn dtype(v: &str) -> PyResult<vecfmt::DType> {
    v.parse().map_err(errors::core)
}

pub(crate) fn codec(v: &str) -> PyResult<vecfmt::Codec> {
    v.parse().map_err(errors::core)
}

/// A shard: "k/n" or a tuple (k, n), numbered from 1 as the CLI's.
pub(crate) fn shard(v: Option<&Bound<'_, PyAny>>) -> PyResult<Option<vecfmt_text::Shard>> {
    let Some(v) = v.filter(|v| !v.is_none()) else {
        return Ok(None);
    };
    if let Ok(s) = v.cast::<PyString>() {
        return s.to_str()?.parse().map(Some).map_err(errors::text);
    }
    if let Ok(t) = v.cast::<PyTuple>() {
        let (k, n): (u64, u64) = t.extract()?;
        return vecfmt_text::Shard::new(k, n).map(Some).map_err(errors::text);
    }
    Err(PyTypeError::new_err("shard: expected \"k/n\" or a tuple (k, n)"))
}

/// One path or a sequence of paths (str or os.PathLike).
pub(crate) fn paths(v: &Bound<'_, PyAny>) -> PyResult<Vec<PathBuf>> {
    if let Ok(p) = v.extract::<PathBuf>() {
        return Ok(vec![p]);
    }
    let mut out = Vec::new();
    for item in v
        .try_iter()
        .map_err(|_| PyTypeError::new_err("expected a path or a sequence of paths"))?
    {
        out.push(
            item?
                .extract::<PathBuf>()
                .map_err(|_| PyTypeError::new_err("expected a path or a sequence of paths"))?,
        );
    }
    Ok(out)
}
