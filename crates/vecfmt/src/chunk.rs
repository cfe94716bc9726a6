//! Chunks (FORMAT.md §4): a contiguous range of rows stored as CSR. This module encodes a
//! chunk for each codec, decodes it, and checks its structure.

use std::cell::RefCell;
use std::ops::Range;

use crate::dtype::{DType, IndexVec, Indices, ValueVec, Values};
use crate::layout::{align_up, checked_align_up, ChunkEntry, Codec, RowLayout, ValueEncoding};

/// Width of local row numbers in a sparse row section (FORMAT.md §4.1).
pub(crate) fn row_id_width(row_count: u64) -> usize {
    if row_count <= 1 << 32 {
        4
    } else {
        8
    }
}

/// Width of local row offsets (FORMAT.md §4.1).
pub(crate) fn offset_width(nnz: u64) -> usize {
    if nnz <= u32::MAX as u64 {
        4
    } else {
        8
    }
}

/// Byte positions inside a chunk's (decoded) payload, all checked against overflow.
#[derive(Debug, Clone)]
struct Geometry {
    row_ids: Range<u64>,
    offsets: Range<u64>,
    /// End of the row section, 8-aligned: where indices begin.
    rows_end: u64,
}

fn geometry(layout: RowLayout, n_listed: u64, row_count: u64, nnz: u64) -> Option<Geometry> {
    let rw = row_id_width(row_count) as u64;
    let ow = offset_width(nnz) as u64;
    let ids_len = match layout {
        RowLayout::Dense => 0,
        RowLayout::Sparse => n_listed.checked_mul(rw)?,
    };
    // Counts come from the file: every step is checked, so that a hostile count fails here
    // instead of wrapping into a small size that passes the length checks.
    let off_start = checked_align_up(ids_len, 8)?;
    let off_end = off_start.checked_add(n_listed.checked_add(1)?.checked_mul(ow)?)?;
    Some(Geometry {
        row_ids: 0..ids_len,
        offsets: off_start..off_end,
        rows_end: checked_align_up(off_end, 8)?,
    })
}

/// Exact stored length of a raw chunk (FORMAT.md §4.2), or `None` on overflow.
pub(crate) fn raw_len(
    layout: RowLayout,
    n_listed: u64,
    row_count: u64,
    nnz: u64,
    iw: usize,
    dtype: DType,
) -> Option<u64> {
    let g = geometry(layout, n_listed, row_count, nnz)?;
    let idx_end = g.rows_end.checked_add(nnz.checked_mul(iw as u64)?)?;
    checked_align_up(idx_end, 8)?.checked_add(nnz.checked_mul(dtype.size() as u64)?)
}

/// A borrowed CSR chunk: from the map (raw codec) or from a decoded [`ChunkData`].
#[derive(Debug, Clone, Copy)]
pub struct CsrView<'a> {
    pub row_start: u64,
    pub row_end: u64,
    /// Local row numbers of the listed rows (sparse layout); `None` for the dense layout.
    pub rows: Option<Indices<'a>>,
    /// `n_listed + 1` offsets into `indices` and `values`.
    pub offsets: Indices<'a>,
    pub indices: Indices<'a>,
    pub values: Values<'a>,
}

impl<'a> CsrView<'a> {
    /// Number of rows with an entry in the row section.
    pub fn n_listed(&self) -> usize {
        self.offsets.len() - 1
    }
    /// The position in the row section of absolute row `row`, if listed.
    #[inline]
    pub fn find(&self, row: u64) -> Option<usize> {
        if row < self.row_start || row >= self.row_end {
            return None;
        }
        let local = row - self.row_start;
        match self.rows {
            None => Some(local as usize),
            Some(ids) => ids.binary_search(local).ok(),
        }
    }
    /// The absolute row id of listed position `k`.
    #[inline]
    pub fn row_id(&self, k: usize) -> u64 {
        match self.rows {
            None => self.row_start + k as u64,
            Some(ids) => self.row_start + ids.get(k),
        }
    }
    /// The range of `indices`/`values` that listed position `k` holds.
    #[inline]
    pub fn range(&self, k: usize) -> Range<usize> {
        // Clamped to the entries: a validated raw chunk is read in place, and if another
        // process changes the file under the map its offsets may no longer be monotone; that
        // must give wrong rows (which the reader reports), never an out-of-bounds panic.
        let n = self.indices.len();
        let a = (self.offsets.get(k) as usize).min(n);
        a..(self.offsets.get(k + 1) as usize).clamp(a, n)
    }

    /// Checks everything a reader relies on: offsets start at 0, never decrease and end at
    /// nnz; listed rows increase and lie in range; column indices of each row strictly
    /// increase and are below `n_cols`.
    pub(crate) fn validate(&self, n_cols: u64) -> Result<(), String> {
        let nnz = self.indices.len();
        if self.values.len() != nnz {
            return Err(format!("{} indices but {} values", nnz, self.values.len()));
        }
        let n = self.n_listed();
        if self.offsets.get(0) != 0 || self.offsets.get(n) != nnz as u64 {
            return Err(format!(
                "row offsets run {}..{}, expected 0..{nnz}",
                self.offsets.get(0),
                self.offsets.get(n)
            ));
        }
        let row_count = self.row_end - self.row_start;
        if let Some(ids) = self.rows {
            let mut prev: Option<u64> = None;
            for (k, id) in ids.iter().enumerate() {
                if id >= row_count || prev.is_some_and(|p| id <= p) {
                    return Err(format!(
                        "listed row {k} has local row number {id}, out of order or range"
                    ));
                }
                prev = Some(id);
            }
        }
        for k in 0..n {
            let (a, b) = (self.offsets.get(k), self.offsets.get(k + 1));
            if a > b {
                return Err(format!("row offsets decrease at listed row {k} ({a} > {b})"));
            }
            if b > nnz as u64 {
                return Err(format!(
                    "row offsets pass the {nnz} nonzeros at listed row {k} ({a}..{b})"
                ));
            }
            let mut prev: Option<u64> = None;
            for j in a as usize..b as usize {
                let col = self.indices.get(j);
                if col >= n_cols || prev.is_some_and(|p| col <= p) {
                    return Err(format!(
                        "row {}: column {col} at position {j} is out of order or not below {n_cols}",
                        self.row_id(k)
                    ));
                }
                prev = Some(col);
            }
        }
        Ok(())
    }
}

/// An owned, decoded chunk.
#[derive(Debug, Clone, PartialEq)]
pub struct ChunkData {
    pub row_start: u64,
    pub row_end: u64,
    pub rows: Option<IndexVec>,
    pub offsets: IndexVec,
    pub indices: IndexVec,
    pub values: ValueVec,
}

impl ChunkData {
    /// Borrow as a [`CsrView`].
    pub fn view(&self) -> CsrView<'_> {
        CsrView {
            row_start: self.row_start,
            row_end: self.row_end,
            rows: self.rows.as_ref().map(IndexVec::as_indices),
            offsets: self.offsets.as_indices(),
            indices: self.indices.as_indices(),
            values: self.values.as_values(),
        }
    }
    /// Bytes of memory held, for the cache's budget.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.rows.as_ref().map_or(0, IndexVec::heap_bytes)
            + self.offsets.heap_bytes()
            + self.indices.heap_bytes()
            + self.values.len() * self.values.dtype().size()
            + std::mem::size_of::<Self>()
    }
}

/// Rows gathered for one chunk, in the writer: absolute row ids, offsets, indices, values.
#[derive(Debug)]
pub(crate) struct ChunkBuilder {
    pub rows: Vec<u64>,
    pub offsets: Vec<u64>,
    pub indices: IndexVec,
    pub values: ValueVec,
}

impl ChunkBuilder {
    pub(crate) fn new(index_width: usize, dtype: DType) -> Self {
        ChunkBuilder {
            rows: Vec::new(),
            offsets: vec![0],
            indices: IndexVec::new(index_width),
            values: ValueVec::new(dtype),
        }
    }
    pub(crate) fn nnz(&self) -> u64 {
        *self.offsets.last().expect("offsets start with 0")
    }
    pub(crate) fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
    /// Raw CSR bytes held, against the chunk-size target.
    pub(crate) fn raw_bytes(&self) -> usize {
        self.indices.len() * self.indices.as_indices().width()
            + self.values.len() * self.values.dtype().size()
            + self.rows.len() * 8
    }
}

/// An encoded chunk: its stored bytes and its catalog entry (offset still to be set).
#[derive(Debug)]
pub(crate) struct EncodedChunk {
    pub bytes: Vec<u8>,
    pub entry: ChunkEntry,
}

fn push_uint(out: &mut Vec<u8>, x: u64, width: usize) {
    if width == 4 {
        out.extend_from_slice(&(x as u32).to_le_bytes());
    } else {
        out.extend_from_slice(&x.to_le_bytes());
    }
}

fn pad8(out: &mut Vec<u8>) {
    while !out.len().is_multiple_of(8) {
        out.push(0);
    }
}

/// Writes the row section (FORMAT.md §4.1) and picks the smaller layout.
fn write_row_section(b: &ChunkBuilder, out: &mut Vec<u8>) -> (RowLayout, u64, u64, u64) {
    let row_start = b.rows[0];
    let row_end = *b.rows.last().expect("nonempty") + 1;
    let row_count = row_end - row_start;
    let n_listed = b.rows.len() as u64;
    let nnz = b.nnz();
    let ow = offset_width(nnz);
    let dense_len = geometry(RowLayout::Dense, row_count, row_count, nnz).map(|g| g.rows_end);
    let sparse_len = geometry(RowLayout::Sparse, n_listed, row_count, nnz).map(|g| g.rows_end);
    let dense = matches!((dense_len, sparse_len), (Some(d), Some(s)) if d <= s);
    if dense {
        let mut k = 0;
        for local in 0..row_count {
            // Rows between listed ones are empty: their offset repeats.
            if k < b.rows.len() && b.rows[k] - row_start == local {
                push_uint(out, b.offsets[k], ow);
                k += 1;
            } else {
                push_uint(out, b.offsets[k], ow);
            }
        }
        push_uint(out, nnz, ow);
        pad8(out);
        (RowLayout::Dense, row_count, row_start, row_end)
    } else {
        let rw = row_id_width(row_count);
        for &r in &b.rows {
            push_uint(out, r - row_start, rw);
        }
        pad8(out);
        for &o in &b.offsets {
            push_uint(out, o, ow);
        }
        pad8(out);
        (RowLayout::Sparse, n_listed, row_start, row_end)
    }
}

thread_local! {
    static ZSTD_COMPRESSOR: RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> = const { RefCell::new(None) };
    static ZSTD_DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { RefCell::new(None) };
}

/// Encodes a chunk with a codec (FORMAT.md §4.2, §4.3).
pub(crate) fn encode(b: &ChunkBuilder, codec: Codec, zstd_level: i32) -> std::io::Result<EncodedChunk> {
    let nnz = b.nnz();
    let iw = b.indices.as_indices().width();
    let vw = b.values.dtype().size();
    let mut out = Vec::with_capacity(b.raw_bytes() + b.rows.len() * 8 + 64);
    let (layout, n_listed, row_start, row_end) = write_row_section(b, &mut out);
    let bytes = match codec {
        Codec::Raw => {
            out.extend_from_slice(b.indices.as_indices().as_bytes());
            pad8(&mut out);
            out.extend_from_slice(b.values.as_values().as_bytes());
            out
        }
        Codec::Lz4 | Codec::Zstd => {
            // Indices: per row, the first absolute, then the gaps, as LEB128 varints.
            let idx = b.indices.as_indices();
            for k in 0..b.rows.len() {
                let mut prev = 0u64;
                for j in b.offsets[k] as usize..b.offsets[k + 1] as usize {
                    let col = idx.get(j);
                    let mut d = col - prev;
                    prev = col;
                    while d >= 0x80 {
                        out.push((d as u8) | 0x80);
                        d >>= 7;
                    }
                    out.push(d as u8);
                }
            }
            // Values: byte planes, so that the sign/exponent bytes sit together; whole-number
            // floats as planes of i32.
            let integral = integral_i32(&b.values);
            let (vb, w, encoding): (&[u8], usize, ValueEncoding) = match &integral {
                Some(ints) => (bytemuck::cast_slice(ints), 4, ValueEncoding::IntegralI32),
                None => (b.values.as_values().as_bytes(), vw, ValueEncoding::Planes),
            };
            let n = nnz as usize;
            let base = out.len();
            out.resize(base + vb.len(), 0);
            for plane in 0..w {
                let dst = &mut out[base + plane * n..base + (plane + 1) * n];
                for (d, word) in dst.iter_mut().zip(vb.chunks_exact(w)) {
                    *d = word[plane];
                }
            }
            let decoded_len = out.len() as u64;
            let compressed = if codec == Codec::Zstd {
                ZSTD_COMPRESSOR.with(|c| -> std::io::Result<Vec<u8>> {
                    let mut c = c.borrow_mut();
                    if c.as_ref().is_none_or(|(l, _)| *l != zstd_level) {
                        *c = Some((zstd_level, zstd::bulk::Compressor::new(zstd_level)?));
                    }
                    let (_, comp) = c.as_mut().expect("set above");
                    comp.compress(&out)
                })?
            } else {
                lz4_flex::block::compress(&out)
            };
            let mut enc = finish(
                compressed,
                codec,
                layout,
                row_start,
                row_end,
                nnz,
                n_listed,
                decoded_len,
            );
            enc.entry.values = encoding;
            return Ok(enc);
        }
    };
    let len = bytes.len() as u64;
    debug_assert_eq!(
        Some(len),
        raw_len(layout, n_listed, row_end - row_start, nnz, iw, b.values.dtype())
    );
    Ok(finish(bytes, codec, layout, row_start, row_end, nnz, n_listed, len))
}

#[expect(clippy::too_many_arguments, reason = "one call site per codec, fields of one entry")]
fn finish(
    bytes: Vec<u8>,
    codec: Codec,
    layout: RowLayout,
    row_start: u64,
    row_end: u64,
    nnz: u64,
    n_listed: u64,
    decoded_len: u64,
) -> EncodedChunk {
    let entry = ChunkEntry {
        row_start,
        row_end,
        nnz,
        offset: 0,
        stored_len: bytes.len() as u64,
        decoded_len,
        n_listed,
        codec,
        layout,
        values: ValueEncoding::Planes,
        crc: crc32c::crc32c(&bytes),
    };
    EncodedChunk { bytes, entry }
}

/// Views a raw chunk in place. `bytes` are exactly its stored bytes, 8-aligned in memory.
/// Returns `Err` when the length is wrong or the bytes are misaligned.
pub(crate) fn view_raw<'a>(bytes: &'a [u8], e: &ChunkEntry, iw: usize, dtype: DType) -> Result<CsrView<'a>, String> {
    let row_count = e.row_end - e.row_start;
    let g = geometry(e.layout, e.n_listed, row_count, e.nnz).ok_or("chunk sizes overflow")?;
    let expected = raw_len(e.layout, e.n_listed, row_count, e.nnz, iw, dtype).ok_or("chunk sizes overflow")?;
    if expected != bytes.len() as u64 {
        return Err(format!(
            "raw chunk is {} bytes but its {} rows and {} nonzeros need {expected}",
            bytes.len(),
            e.n_listed,
            e.nnz
        ));
    }
    let slice = |r: Range<u64>| &bytes[r.start as usize..r.end as usize];
    let misaligned = || "raw chunk is not aligned in memory".to_string();
    let rows = match e.layout {
        RowLayout::Dense => None,
        RowLayout::Sparse => {
            Some(Indices::from_bytes(row_id_width(row_count), slice(g.row_ids)).ok_or_else(misaligned)?)
        }
    };
    let offsets = Indices::from_bytes(offset_width(e.nnz), slice(g.offsets)).ok_or_else(misaligned)?;
    let idx_end = g.rows_end + e.nnz * iw as u64;
    let indices = Indices::from_bytes(iw, slice(g.rows_end..idx_end)).ok_or_else(misaligned)?;
    let values = Values::from_bytes(dtype, slice(align_up(idx_end, 8)..expected)).ok_or_else(misaligned)?;
    Ok(CsrView {
        row_start: e.row_start,
        row_end: e.row_end,
        rows,
        offsets,
        indices,
        values,
    })
}

fn read_uints(bytes: &[u8], width: usize) -> IndexVec {
    if width == 4 {
        IndexVec::U32(
            bytes
                .chunks_exact(4)
                .map(|c| u32::from_le_bytes(c.try_into().expect("4")))
                .collect(),
        )
    } else {
        IndexVec::U64(
            bytes
                .chunks_exact(8)
                .map(|c| u64::from_le_bytes(c.try_into().expect("8")))
                .collect(),
        )
    }
}

/// The values as i32, when every one is a float holding a whole number that converts back
/// bit for bit (so -0.0, NaN and values outside i32 do not qualify).
fn integral_i32(values: &ValueVec) -> Option<Vec<i32>> {
    match values {
        ValueVec::F32(v) => v
            .iter()
            .map(|&x| {
                let i = x as i32;
                ((i as f32).to_bits() == x.to_bits()).then_some(i)
            })
            .collect(),
        ValueVec::F64(v) => v
            .iter()
            .map(|&x| {
                let i = x as i32;
                ((i as f64).to_bits() == x.to_bits()).then_some(i)
            })
            .collect(),
        _ => None,
    }
}

/// Reassembles `w`-byte little-endian words from `w` byte planes of `n` bytes each.
fn unplane(planes: &[u8], n: usize, w: usize, out: &mut [u8]) {
    debug_assert_eq!(planes.len(), n * w);
    debug_assert_eq!(out.len(), n * w);
    match w {
        4 => {
            let (p0, r) = planes.split_at(n);
            let (p1, r) = r.split_at(n);
            let (p2, p3) = r.split_at(n);
            for ((((o, a), b), c), d) in out.chunks_exact_mut(4).zip(p0).zip(p1).zip(p2).zip(p3) {
                o.copy_from_slice(&[*a, *b, *c, *d]);
            }
        }
        _ => {
            for plane in 0..w {
                let src = &planes[plane * n..(plane + 1) * n];
                for (o, &s) in out.chunks_exact_mut(w).zip(src) {
                    o[plane] = s;
                }
            }
        }
    }
}

/// Decodes the delta-varint index stream (FORMAT.md §4.3) into `out`, checking order and
/// range as it goes. Returns the bytes consumed.
fn decode_indices<T: TryFrom<u64>>(
    stream: &[u8],
    offsets: Indices<'_>,
    n_cols: u64,
    out: &mut Vec<T>,
) -> Result<usize, String> {
    let mut pos = 0usize;
    for k in 0..offsets.len() - 1 {
        let (a, b) = (offsets.get(k), offsets.get(k + 1));
        let mut prev = 0u64;
        for j in a..b {
            let first = *stream.get(pos).ok_or("index stream ends early")?;
            pos += 1;
            let mut d = (first & 0x7f) as u64;
            if first & 0x80 != 0 {
                let mut shift = 7u32;
                loop {
                    let byte = *stream.get(pos).ok_or("index stream ends early")?;
                    pos += 1;
                    if shift >= 64 || (shift == 63 && byte > 1) {
                        return Err("varint overflows 64 bits".into());
                    }
                    d |= ((byte & 0x7f) as u64) << shift;
                    shift += 7;
                    if byte & 0x80 == 0 {
                        break;
                    }
                }
            }
            if j > a && d == 0 {
                return Err(format!("listed row {k}: repeated column index {prev}"));
            }
            let col = prev
                .checked_add(d)
                .filter(|&c| c < n_cols)
                .ok_or_else(|| format!("listed row {k}: column index {}+{d} is not below {n_cols}", prev))?;
            out.push(T::try_from(col).map_err(|_| format!("column index {col} does not fit the index width"))?);
            prev = col;
        }
    }
    Ok(pos)
}

/// Decodes a compressed chunk into owned data, refusing to allocate more than `max_decoded`
/// bytes (raw chunks are viewed in place with [`view_raw`], never decoded). The checksum has been checked by the caller. The result is fully
/// validated (FORMAT.md §4.4).
pub(crate) fn decode(
    stored: &[u8],
    e: &ChunkEntry,
    iw: usize,
    dtype: DType,
    n_cols: u64,
    max_decoded: u64,
) -> Result<ChunkData, String> {
    let row_count = e.row_end - e.row_start;
    let g = geometry(e.layout, e.n_listed, row_count, e.nnz).ok_or("chunk sizes overflow")?;
    // Bytes per stored value in the payload.
    let vw = match e.values {
        ValueEncoding::Planes => dtype.size() as u64,
        ValueEncoding::IntegralI32 => 4,
    };
    if e.codec == Codec::Raw {
        return Err("raw chunks are read in place, not decoded".into());
    }
    let payload = {
        // The decoded size must be possible for the declared counts: each index takes
        // 1 to 10 varint bytes. Checked before allocating.
        let min = g
            .rows_end
            .checked_add(e.nnz.checked_mul(1 + vw).ok_or("chunk sizes overflow")?);
        let max = g
            .rows_end
            .checked_add(e.nnz.checked_mul(10 + vw).ok_or("chunk sizes overflow")?);
        let ok = matches!((min, max), (Some(lo), Some(hi)) if e.decoded_len >= lo && e.decoded_len <= hi);
        if !ok {
            return Err(format!(
                "decoded length {} is impossible for {} rows and {} nonzeros",
                e.decoded_len, e.n_listed, e.nnz
            ));
        }
        if e.decoded_len > max_decoded {
            return Err(format!(
                "decoded length {} exceeds the limit of {max_decoded} bytes",
                e.decoded_len
            ));
        }
        let mut buf = vec![0u8; e.decoded_len as usize];
        let n = if e.codec == Codec::Zstd {
            ZSTD_DECOMPRESSOR.with(|d| -> Result<usize, String> {
                let mut d = d.borrow_mut();
                if d.is_none() {
                    *d = Some(zstd::bulk::Decompressor::new().map_err(|x| x.to_string())?);
                }
                d.as_mut()
                    .expect("set above")
                    .decompress_to_buffer(stored, &mut buf)
                    .map_err(|x| format!("zstd: {x}"))
            })?
        } else {
            lz4_flex::block::decompress_into(stored, &mut buf).map_err(|x| format!("lz4: {x}"))?
        };
        if n as u64 != e.decoded_len {
            return Err(format!("decompressed to {n} bytes, expected {}", e.decoded_len));
        }
        buf
    };
    let p = &payload[..];
    if (p.len() as u64) < g.rows_end {
        return Err("chunk is shorter than its row section".into());
    }
    let rows = match e.layout {
        RowLayout::Dense => None,
        RowLayout::Sparse => Some(read_uints(
            &p[g.row_ids.start as usize..g.row_ids.end as usize],
            row_id_width(row_count),
        )),
    };
    let offsets = read_uints(
        &p[g.offsets.start as usize..g.offsets.end as usize],
        offset_width(e.nnz),
    );
    let nnz = e.nnz as usize;
    let rest = &p[g.rows_end as usize..];
    let (indices, values) = {
        // Row section first: offsets from 0 to nnz, never decreasing; listed rows in order.
        let offs = offsets.as_indices();
        let n_listed = e.n_listed as usize;
        if offs.get(0) != 0 || offs.get(n_listed) != e.nnz {
            return Err(format!(
                "row offsets run {}..{}, expected 0..{}",
                offs.get(0),
                offs.get(n_listed),
                e.nnz
            ));
        }
        if let Some(k) = (0..n_listed).find(|&k| offs.get(k) > offs.get(k + 1)) {
            return Err(format!("row offsets decrease at listed row {k}"));
        }
        if let Some(ids) = rows.as_ref().map(IndexVec::as_indices) {
            let bad = (0..ids.len()).find(|&k| ids.get(k) >= row_count || (k > 0 && ids.get(k) <= ids.get(k - 1)));
            if let Some(k) = bad {
                return Err(format!(
                    "listed row {k} has local row number {}, out of order or range",
                    ids.get(k)
                ));
            }
        }
        let (indices, used) = if iw == 4 {
            let mut v = Vec::<u32>::with_capacity(nnz);
            let used = decode_indices(rest, offs, n_cols, &mut v)?;
            (IndexVec::U32(v), used)
        } else {
            let mut v = Vec::<u64>::with_capacity(nnz);
            let used = decode_indices(rest, offs, n_cols, &mut v)?;
            (IndexVec::U64(v), used)
        };
        let planes = &rest[used..];
        if planes.len() as u64 != e.nnz * vw {
            return Err(format!(
                "value planes are {} bytes, expected {}",
                planes.len(),
                e.nnz * vw
            ));
        }
        let values = match e.values {
            ValueEncoding::Planes => {
                let mut values = ValueVec::zeroed(dtype, nnz);
                unplane(planes, nnz, vw as usize, values.bytes_mut());
                values
            }
            ValueEncoding::IntegralI32 => {
                let mut ints = vec![0i32; nnz];
                unplane(planes, nnz, 4, bytemuck::cast_slice_mut(&mut ints));
                match dtype {
                    DType::F32 => ValueVec::F32(ints.into_iter().map(|i| i as f32).collect()),
                    DType::F64 => ValueVec::F64(ints.into_iter().map(f64::from).collect()),
                    _ => return Err(format!("integral value encoding in a chunk of {dtype}")),
                }
            }
        };
        (indices, values)
    };
    Ok(ChunkData {
        row_start: e.row_start,
        row_end: e.row_end,
        rows,
        offsets,
        indices,
        values,
    })
}
