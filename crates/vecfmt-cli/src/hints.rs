//! Exit-code classes and the one-line hints the CLI prints under an error. The library's
//! errors say what is wrong and where; only here do they meet the flags that fix them.

use std::borrow::Cow;

use vecfmt::Error;

pub(crate) fn is_damage(e: &Error) -> bool {
    matches!(
        e,
        Error::NotVfm { .. } | Error::NoValidCommit { .. } | Error::Corrupt { .. } | Error::CorruptChunk { .. }
    )
}

/// The hint to print under `e`: a flag that changes the outcome, or what to try next. The
/// HDF5 worker's errors bring the hint the worker computed, where their typed error was known.
pub(crate) fn hint(e: &Error) -> Option<Cow<'static, str>> {
    if let Some(vecfmt_convert::Error::Worker { hint: Some(h), .. }) = e.format_error::<vecfmt_convert::Error>() {
        return Some(Cow::Owned(h.clone()));
    }
    static_hint(e).map(Cow::Borrowed)
}

fn static_hint(e: &Error) -> Option<&'static str> {
    Some(match e {
        Error::NotVfm { .. } => "is this a .vfm file? `vecfmt convert` brings in HDF5, .npz, .npy, Parquet and .mtx",
        Error::CorruptChunk { .. } | Error::Corrupt { .. } | Error::NoValidCommit { .. } => {
            "the file is damaged; `vecfmt verify FILE` lists every bad chunk"
        }
        Error::Locked { .. } => "another vecfmt process is updating this file; wait for it to finish",
        Error::UnsupportedVersion { .. } => "this file was written by a newer vecfmt",
        Error::NoLabels { .. } => "use a numeric row id instead of --label",
        Error::OverBudget { .. } => "raise --memory",
        Error::InexactCast { nan: false, .. } => "pass --allow-lossy to convert anyway",
        Error::OutputExists { .. } => "pass --force to replace it",
        Error::MergeDTypes { .. } => "pass --dtype to choose the result's dtype",
        Error::MergeValueNotInteger { .. } => "pass --dtype f64 to sum the values as floats",
        Error::SumOutOfRange { .. } => "pass --dtype with a wider type (f64, i64)",
        Error::Format(_) => return format_hint(e),
        // A stopped accumulator shows the hint of what stopped it.
        Error::Poisoned { cause, .. } => return static_hint(cause),
        _ => return None,
    })
}

/// The hint for a format crate's typed error: the CLI flag that changes the outcome. Library
/// errors never name flags; each format's variants that a flag can fix are matched here.
fn format_hint(e: &Error) -> Option<&'static str> {
    hdf5_hint(e)
        .or_else(|| mtx_hint(e))
        .or_else(|| npy_hint(e))
        .or_else(|| parquet_hint(e))
        .or_else(|| convert_hint(e))
}

fn hdf5_hint(e: &Error) -> Option<&'static str> {
    use vecfmt_hdf5::Error as H5;
    Some(match e.format_error::<H5>()? {
        H5::SeveralCandidates { .. } => "pick one with --dataset PATH",
        H5::DenseOutputTooLarge { .. } => "pass --force to write it anyway, or write a sparse layout (--layout csr)",
        H5::H5adLayout { .. } => "use --layout csr or csc, or a .h5 output",
        H5::EmptyDatasetPath { .. } => "--dataset names the matrix's path inside the output, e.g. --dataset /matrix",
        _ => return None,
    })
}

fn mtx_hint(e: &Error) -> Option<&'static str> {
    use vecfmt_mtx::Error as Mtx;
    Some(match e.format_error::<Mtx>()? {
        Mtx::NotSymmetric { .. } | Mtx::SymmetricNotSquare { .. } => {
            "write the matrix in full with --layout coordinate (or pattern)"
        }
        _ => return None,
    })
}

fn npy_hint(e: &Error) -> Option<&'static str> {
    use vecfmt_npy::{DtypeError, Error as N};
    Some(match e.format_error::<N>()? {
        N::Dtype {
            problem: DtypeError::Float16,
            ..
        } => "pass --dtype f32 to widen it to float32",
        N::DenseTooLarge { .. } => "pass --force to write it anyway, or write a sparse format (.npz, .vfm)",
        _ => return None,
    })
}

fn parquet_hint(e: &Error) -> Option<&'static str> {
    use vecfmt_parquet::Error as P;
    Some(match e.format_error::<P>()? {
        P::MissingColumns { .. } => "name the columns with --row-col, --col-col and --value-col",
        P::LabelsOverBudget { .. } => "raise --memory",
        P::ListColumnLabels { .. } => "write the COO layout (--layout coo)",
        _ => return None,
    })
}

/// The CLI's form of a text-input error (`build`, `cooccur`): the library's message, plus
/// the flag that fixes it where there is one. A core error inside comes out as itself, so
/// that [`hint`] and the exit code see it.
pub(crate) fn text_error(e: vecfmt_text::Error) -> anyhow::Error {
    use vecfmt_text::Error as T;
    match e {
        T::Core(e) => e.into(),
        T::AtLine { file, line, source } => anyhow::Error::new(*source).context(format!("{file}: line {line}")),
        T::AtRecord { file, record, source } => anyhow::Error::new(*source).context(format!("{file}: record {record}")),
        T::TooManyBadLines { limit, last } => {
            text_error(*last).context(format!("more than --skip-bad-lines {limit} bad lines"))
        }
        T::Stopped {
            output,
            committed_lines,
            cause,
        } => text_error(*cause).context(format!(
            "{} keeps its last commit ({committed_lines} lines of input)",
            output.display()
        )),
        T::OutputExists { path } => anyhow::anyhow!(
            "{}: exists; pass --append to add to it, or --force to replace it",
            path.display()
        ),
        T::VocabWithoutLabels => anyhow::anyhow!("--vocab gives labels: use it with --row-labels and/or --col-labels"),
        // The CLI's only stream is stdin.
        T::NeedsVocab { .. } => {
            anyhow::anyhow!("reading the corpus from stdin needs --vocab: the vocabulary pass reads the input twice")
        }
        T::ZeroWindow => anyhow::anyhow!("--window must be at least 1"),
        e @ T::ResumeMismatch { .. } => {
            anyhow::anyhow!("{e}; run the command that started it, or pass --force instead of --resume to start over")
        }
        e @ T::ResumeStream { .. } => {
            anyhow::anyhow!("{e}; save the input to a file to make a run resumable")
        }
        e @ T::BadLine { .. } => anyhow::anyhow!(text_message(&e)),
        e => e.into(),
    }
}

/// A text-input error as one line, a bad line's problem followed by the flag that fixes it.
pub(crate) fn text_message(e: &vecfmt_text::Error) -> String {
    use vecfmt_text::{Error as T, LineProblem as P};
    let T::BadLine {
        file,
        line,
        problem,
        content,
    } = e
    else {
        return e.to_string();
    };
    let problem = match problem {
        P::NotAnId { axis, .. } => {
            let flag = match axis {
                vecfmt::Axis::Row => "--row-labels",
                vecfmt::Axis::Col => "--col-labels",
            };
            format!("{problem} (use {flag} for labels)")
        }
        P::IdsNotNumbers => format!("{problem} (or use --row-labels/--col-labels)"),
        P::UnknownLabel(e) => format!("{e} (not in --vocab)"),
        p => p.to_string(),
    };
    format!("{file}: line {line}: {problem}: {content:?}")
}

/// The hint for a conversion error: the flags that name a format, or the hint the HDF5 worker
/// process sent with its error (this CLI's own, from [`worker_hint`]).
fn convert_hint(e: &Error) -> Option<&'static str> {
    use vecfmt_convert::Error as C;
    match e.format_error::<C>()? {
        C::UnknownExtension { .. } => Some("name the formats with --from and --to"),
        _ => None,
    }
}

/// The hint the HDF5 worker process (`vecfmt __read-hdf5`, `__write-hdf5`) sends with its
/// error: computed there, where the HDF5 crate's typed error is known.
pub(crate) fn worker_hint(e: &Error) -> Option<String> {
    hint(e).map(Cow::into_owned)
}

#[cfg(test)]
mod hdf5_mtx_hint_tests {
    use std::path::PathBuf;

    use super::hint;

    #[test]
    fn format_errors_get_the_flag_that_fixes_them() {
        let path = PathBuf::from("m.h5");
        let several: vecfmt::Error = vecfmt_hdf5::Error::SeveralCandidates {
            path: path.clone(),
            candidates: Vec::new(),
        }
        .into();
        assert!(hint(&several).is_some_and(|h| h.contains("--dataset")));
        let dense: vecfmt::Error = vecfmt_hdf5::Error::DenseOutputTooLarge {
            path: path.clone(),
            n_rows: 1000,
            n_cols: 1000,
            dtype: vecfmt::DType::F64,
            bytes: 8_000_000,
            limit: 1 << 20,
        }
        .into();
        assert!(hint(&dense).is_some_and(|h| h.contains("--force") && h.contains("--layout csr")));
        let h5ad: vecfmt::Error = vecfmt_hdf5::Error::H5adLayout {
            path: path.clone(),
            layout: vecfmt_hdf5::Layout::Dense,
        }
        .into();
        assert!(hint(&h5ad).is_some_and(|h| h.contains("--layout csr or csc")));
        let empty: vecfmt::Error = vecfmt_hdf5::Error::EmptyDatasetPath { path }.into();
        assert!(hint(&empty).is_some_and(|h| h.contains("--dataset")));
        let asym: vecfmt::Error = vecfmt_mtx::Error::NotSymmetric {
            path: PathBuf::from("m.mtx"),
            above: 1,
            below: 0,
        }
        .into();
        assert!(hint(&asym).is_some_and(|h| h.contains("--layout coordinate")));
        // A format error no flag fixes gets no hint.
        let bad: vecfmt::Error = vecfmt_mtx::Error::Empty {
            path: PathBuf::from("m.mtx"),
        }
        .into();
        assert_eq!(hint(&bad), None);
    }
}
