//! Entry points for the fuzz targets (`fuzz/`) and the hostile-input tests
//! (`tests/hostile`): thin wrappers over crate-private parsers, so that they can be driven
//! with arbitrary bytes. Not part of the stable API.

use crate::chunk::{self, ChunkData};
use crate::dtype::DType;
use crate::error::Malformed;
use crate::labels::Labels;
use crate::layout::{ChunkEntry, Codec};

/// Decodes one chunk's stored bytes the way the reader does: a raw chunk is viewed in place
/// and validated (FORMAT.md §4.4), a compressed one is decoded with `max_decoded` as the
/// limit. `entry` must have passed [`crate::Catalog::parse`]. The stored bytes' checksum is
/// not checked. The result is an owned copy in both cases.
pub fn decode_chunk(
    stored: &[u8],
    entry: &ChunkEntry,
    index_width: usize,
    dtype: DType,
    n_cols: u64,
    max_decoded: u64,
) -> Result<ChunkData, String> {
    if entry.codec != Codec::Raw {
        return chunk::decode(stored, entry, index_width, dtype, n_cols, max_decoded);
    }
    // The map gives raw chunks 64-byte alignment; copy into 8-aligned memory as the map would.
    let mut words = vec![0u64; stored.len().div_ceil(8)];
    bytemuck::cast_slice_mut::<u64, u8>(&mut words)[..stored.len()].copy_from_slice(stored);
    let aligned = &bytemuck::cast_slice::<u64, u8>(&words)[..stored.len()];
    let view = chunk::view_raw(aligned, entry, index_width, dtype)?;
    view.validate(n_cols)?;
    let mut values = crate::ValueVec::new(dtype);
    values.extend_from(view.values).map_err(|e| e.to_string())?;
    Ok(ChunkData {
        row_start: view.row_start,
        row_end: view.row_end,
        rows: view.rows.map(owned_indices),
        offsets: owned_indices(view.offsets),
        indices: owned_indices(view.indices),
        values,
    })
}

fn owned_indices(ix: crate::Indices<'_>) -> crate::IndexVec {
    match ix {
        crate::Indices::U32(s) => crate::IndexVec::U32(s.to_vec()),
        crate::Indices::U64(s) => crate::IndexVec::U64(s.to_vec()),
    }
}

/// Parses a labels section (FORMAT.md §5.1) found at file offset `base`.
pub fn parse_labels(bytes: &[u8], base: u64) -> Result<Labels<'_>, Malformed> {
    Labels::parse(bytes, base)
}

/// The full check `verify` runs on a labels section.
pub fn check_labels(labels: &Labels<'_>) -> Result<(), Malformed> {
    labels.check()
}
