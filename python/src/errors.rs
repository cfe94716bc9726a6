//! Library errors as Python exceptions: the classes of `vecfmt/_errors.py`, chosen by the
//! typed error's variant. The message is the error with its chain of causes.

use std::error::Error as StdError;
use std::io;

use pyo3::exceptions::{PyFileNotFoundError, PyRuntimeError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

/// The exception classes, by name in `vecfmt._errors`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Base,
    Damaged,
    Locked,
    Unsupported,
    DType,
    Io,
    NotFound,
    OutputExists,
    Label,
    Invalid,
    Budget,
    Index,
}

impl Kind {
    fn class_name(self) -> &'static str {
        match self {
            Kind::Base => "Error",
            Kind::Damaged => "DamagedFileError",
            Kind::Locked => "LockedError",
            Kind::Unsupported => "UnsupportedError",
            Kind::DType => "DTypeError",
            Kind::Io => "IOError",
            Kind::OutputExists => "OutputExistsError",
            Kind::Label => "LabelError",
            Kind::Invalid | Kind::NotFound => "InvalidInputError",
            Kind::Index => "RowIndexError",
            Kind::Budget => "MemoryBudgetError",
        }
    }
}

/// The class object of `vecfmt._errors.<name>`, looked up once per name.
fn class(py: Python<'_>, kind: Kind) -> PyResult<Bound<'_, PyType>> {
    static MODULE: PyOnceLock<Py<PyModule>> = PyOnceLock::new();
    let module = MODULE.get_or_try_init(py, || py.import("vecfmt._errors").map(Bound::unbind))?;
    Ok(module.bind(py).getattr(kind.class_name())?.cast_into::<PyType>()?)
}

/// `error: cause: cause ...`, skipping a cause whose text the error already shows.
pub(crate) fn message(e: &(dyn StdError + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let t = s.to_string();
        if !text.contains(&t) {
            text.push_str(": ");
            text.push_str(&t);
        }
        source = s.source();
    }
    text
}

/// The first `io::Error` in the chain, with the path of a core I/O error when there is one.
fn io_cause(e: &(dyn StdError + 'static)) -> Option<(io::ErrorKind, Option<std::path::PathBuf>)> {
    let mut cur: Option<&(dyn StdError + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(vecfmt::Error::Io { path, error, .. }) = err.downcast_ref::<vecfmt::Error>() {
            return Some((error.kind(), Some(path.clone())));
        }
        if let Some(vecfmt_text::Error::Io { file, error, .. }) = err.downcast_ref::<vecfmt_text::Error>() {
            return Some((error.kind(), Some(file.into())));
        }
        if let Some(io) = err.downcast_ref::<io::Error>() {
            return Some((io.kind(), None));
        }
        cur = err.source();
    }
    None
}

fn core_kind(e: &vecfmt::Error) -> Kind {
    use vecfmt::Error as E;
    match e {
        E::Io { error, .. } if error.kind() == io::ErrorKind::NotFound => Kind::NotFound,
        E::Io { .. } => Kind::Io,
        E::NotVfm { .. } | E::NoValidCommit { .. } | E::Corrupt { .. } | E::CorruptChunk { .. } => Kind::Damaged,
        E::Locked { .. } => Kind::Locked,
        E::UnsupportedVersion { .. } => Kind::Unsupported,
        E::RowOutOfRange { .. } => Kind::Index,
        E::LabelNotFound { .. } | E::NoLabels { .. } => Kind::Label,
        E::DTypeMismatch { .. }
        | E::Overflow { .. }
        | E::InexactCast { .. }
        | E::MergeDTypes { .. }
        | E::MergeValueNotInteger { .. }
        | E::SumOutOfRange { .. } => Kind::DType,
        E::OverBudget { .. } => Kind::Budget,
        E::OutputExists { .. } => Kind::OutputExists,
        E::Poisoned { cause, .. } => match core_kind(cause) {
            // The accumulator stopped on this cause; the class says what the cause was.
            k @ (Kind::DType | Kind::Io | Kind::Damaged | Kind::Budget) => k,
            _ => Kind::Base,
        },
        E::Format(inner) => format_kind(inner.as_ref()),
        _ => Kind::Invalid,
    }
}

/// A format crate's error, by its variant's name (each format crate has its own enum; the
/// names follow one vocabulary) and by an I/O cause.
fn format_kind(e: &(dyn StdError + Send + Sync + 'static)) -> Kind {
    if let Some((kind, _)) = io_cause(e) {
        return if kind == io::ErrorKind::NotFound {
            Kind::NotFound
        } else {
            Kind::Io
        };
    }
    let name = format!("{e:?}");
    let name = name.split(|c: char| !c.is_alphanumeric()).next().unwrap_or("");
    if [
        "Unsupported",
        "Filter",
        "Encrypted",
        "Compression",
        "Complex",
        "NotScipy",
        "DenseInputTooLarge",
    ]
    .iter()
    .any(|w| name.contains(w))
    {
        Kind::Unsupported
    } else if ["Overflow", "ValueTooLarge", "Dtype"].iter().any(|w| name.contains(w)) {
        Kind::DType
    } else if ["UnknownLabel", "LabelCount", "MissingLabel"]
        .iter()
        .any(|w| name.contains(w))
    {
        Kind::Label
    } else if [
        "MissingColumn",
        "NotAList",
        "IndexType",
        "ValueTypes",
        "NotNumeric",
        "TypeDiffers",
    ]
    .iter()
    .any(|w| name.contains(w))
    {
        Kind::Unsupported
    } else {
        Kind::Damaged
    }
}

fn text_kind(e: &vecfmt_text::Error) -> Kind {
    use vecfmt_text::Error as E;
    match e {
        E::Core(c) => core_kind(c),
        E::Io { error, .. } if error.kind() == io::ErrorKind::NotFound => Kind::NotFound,
        E::Io { .. } => Kind::Io,
        E::OutputExists { .. } => Kind::OutputExists,
        E::AppendDType { .. } | E::ValueTooLarge { .. } => Kind::DType,
        E::VocabWithoutLabels => Kind::Label,
        E::Stopped { cause, .. } => text_kind(cause),
        _ => Kind::Invalid,
    }
}

fn convert_kind(e: &vecfmt_convert::Error) -> Kind {
    use vecfmt_convert::Error as E;
    match e {
        E::Core(c) => core_kind(c),
        E::UnknownFormat { .. } | E::UnknownExtension { .. } | E::UnknownLayout { .. } => Kind::Unsupported,
        E::GzipLevelOutOfRange { .. } => Kind::Invalid,
        E::ReaderDied { .. } => Kind::Damaged,
        E::WriterDied { .. } => Kind::Io,
        E::Worker { os_error: Some(_), .. } => Kind::Io,
        _ => match io_cause(e) {
            Some((io::ErrorKind::NotFound, _)) => Kind::NotFound,
            Some(_) => Kind::Io,
            None => Kind::Base,
        },
    }
}

fn plot_kind(e: &vecfmt_plot::Error) -> Kind {
    use vecfmt_plot::Error as E;
    match e {
        E::Vfm(c) => core_kind(c),
        E::OverBudget { .. } => Kind::Budget,
        E::OutputExists { .. } => Kind::OutputExists,
        E::Encode { .. } => match io_cause(e) {
            Some((io::ErrorKind::NotFound, _)) => Kind::NotFound,
            _ => Kind::Io,
        },
        E::Draw { .. } => Kind::Base,
        _ => Kind::Invalid,
    }
}

/// Builds the exception of `kind` with `msg`; a missing file is the built-in
/// `FileNotFoundError(errno, message, filename)`, as `open()` raises it.
fn raise(py: Python<'_>, kind: Kind, msg: String, e: &(dyn StdError + 'static)) -> PyErr {
    if kind == Kind::NotFound {
        let path = io_cause(e).and_then(|(_, p)| p).map(|p| p.display().to_string());
        return PyFileNotFoundError::new_err((libc_enoent(), msg, path));
    }
    match class(py, kind) {
        Ok(cls) => PyErr::from_type(cls, msg),
        Err(e) => PyRuntimeError::new_err(format!("{msg} (and vecfmt._errors failed to load: {e})")),
    }
}

const fn libc_enoent() -> i32 {
    2
}

/// A core error as a Python exception.
pub(crate) fn core(e: vecfmt::Error) -> PyErr {
    Python::attach(|py| raise(py, core_kind(&e), message(&e), &e))
}

/// A text engine's error as a Python exception. A run stopped after a commit says its cause
/// first, then what the output keeps.
pub(crate) fn text(e: vecfmt_text::Error) -> PyErr {
    let msg = match &e {
        vecfmt_text::Error::Stopped {
            output,
            committed_lines,
            cause,
        } => format!(
            "{}; {} keeps its last commit ({committed_lines} lines of input)",
            message(cause.as_ref()),
            output.display()
        ),
        _ => message(&e),
    };
    Python::attach(|py| raise(py, text_kind(&e), msg, &e))
}

/// A conversion's error as a Python exception.
pub(crate) fn convert(e: vecfmt_convert::Error) -> PyErr {
    Python::attach(|py| raise(py, convert_kind(&e), message(&e), &e))
}

/// A plot's error as a Python exception.
pub(crate) fn plot(e: vecfmt_plot::Error) -> PyErr {
    Python::attach(|py| raise(py, plot_kind(&e), message(&e), &e))
}

/// A `ValueError` of class `vecfmt.InvalidInputError`, for arguments the binding itself
/// refuses (mismatched lengths, negative ids).
pub(crate) fn invalid(msg: impl Into<String>) -> PyErr {
    let msg = msg.into();
    Python::attach(|py| match class(py, Kind::Invalid) {
        Ok(cls) => PyErr::from_type(cls, msg),
        Err(_) => pyo3::exceptions::PyValueError::new_err(msg),
    })
}

/// A `vecfmt.DTypeError` raised by the binding (a NaN for an integer matrix, say).
pub(crate) fn dtype(msg: impl Into<String>) -> PyErr {
    let msg = msg.into();
    Python::attach(|py| match class(py, Kind::DType) {
        Ok(cls) => PyErr::from_type(cls, msg),
        Err(_) => pyo3::exceptions::PyValueError::new_err(msg),
    })
}
