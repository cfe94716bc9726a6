//! Exit-code classes and the one-line hints the CLI prints under an error. The library's
//! errors say what is wrong and where; only here do they meet the flags that fix them.

use vecfmt::Error;

pub(crate) fn is_damage(e: &Error) -> bool {
    matches!(
        e,
        Error::NotVfm { .. } | Error::NoValidCommit { .. } | Error::Corrupt { .. } | Error::CorruptChunk { .. }
    )
}

pub(crate) fn hint(e: &Error) -> Option<&'static str> {
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
        Error::Format(_) => return format_hint(e),
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

fn npy_hint(_e: &Error) -> Option<&'static str> {
    None
}

fn parquet_hint(_e: &Error) -> Option<&'static str> {
    None
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
