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
        .or_else(|| convert_hint(e))
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

/// The hint for a conversion error: the flags that name a format, or the hint the HDF5 worker
/// process sent with its error (this CLI's own, from [`worker_hint`]).
fn convert_hint(e: &Error) -> Option<&'static str> {
    use vecfmt_convert::Error as C;
    match e.format_error::<C>()? {
        C::UnknownExtension { .. } => Some("name the formats with --from and --to"),
        // The CLI prints one hint, as it exits: the text would live until then anyway.
        C::Worker { hint: Some(h), .. } => Some(Box::leak(h.clone().into_boxed_str())),
        _ => None,
    }
}

/// The hint the HDF5 worker process (`vecfmt __read-hdf5`, `__write-hdf5`) sends with its
/// error: computed there, where the HDF5 crate's typed error is known.
pub(crate) fn worker_hint(e: &Error) -> Option<String> {
    hint(e).map(str::to_owned)
}
