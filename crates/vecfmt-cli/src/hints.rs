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

fn hdf5_hint(_e: &Error) -> Option<&'static str> {
    None
}

fn mtx_hint(_e: &Error) -> Option<&'static str> {
    None
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
