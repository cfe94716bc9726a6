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
        Error::OutputExists { .. } => "pass --force to replace it",
        Error::MergeDTypes { .. } => "pass --dtype to choose the result's dtype",
        Error::MergeValueNotInteger { .. } => "pass --dtype f64 to sum the values as floats",
        Error::SumOutOfRange { .. } => "pass --dtype with a wider type (f64, i64)",
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

fn npy_hint(_e: &Error) -> Option<&'static str> {
    None
}

fn parquet_hint(_e: &Error) -> Option<&'static str> {
    None
}
