//! An editor of `.vfm` bytes at the offsets FORMAT.md documents (§2–§5; `layout.rs`), for
//! tests that build malformed files on purpose: the bad-file registry of
//! `crates/vecfmt/tests/bad_files.rs`, the commit-slot tests, and the fuzzers of
//! `vecfmt-hostile`, which recompute checksums so that a mutation reaches the field checks
//! behind them instead of stopping at a CRC mismatch.
//!
//! [`Vfm`] edits one field and reseals what covers it (chunk or section CRC, catalog CRC,
//! meta page CRC); [`fix_checksums`] reseals everything that can be located, leaving fields
//! that point outside the image alone.
//!
//! ```
//! use vecfmt::{DType, Matrix, MatrixWriter, WriterOptions};
//! use vecfmt_testkit::vfm::{meta, Vfm};
//!
//! let dir = vecfmt_testkit::tempdir();
//! let path = dir.path().join("m.vfm");
//! let mut w = MatrixWriter::create(&path, WriterOptions::new(DType::F32, 10))?;
//! w.push_row(2, &[3u32], &[1.5f32])?;
//! w.finish()?;
//!
//! // Declare a row count smaller than the rows stored: the meta page still verifies, and
//! // the catalog check catches the lie.
//! let mut v = Vfm::read(&path);
//! v.set_meta(meta::N_ROWS, 1);
//! std::fs::write(&path, &v.bytes)?;
//! assert!(Matrix::open(&path).is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::ops::Range;
use std::path::Path;

use vecfmt::consts::{
    CATALOG_HEADER_SIZE, CHUNK_ENTRY_SIZE, MAGIC, META_CRC_OFFSET, META_PAGE_SIZE, META_USED, SUPERBLOCK_SIZE,
};

/// Meta page fields: byte offsets within a page (FORMAT.md §2.1). Fields are u64 unless
/// marked.
pub mod meta {
    pub const VERSION: usize = 8; // u16
    pub const SLOT: usize = 10; // u16
    pub const USED: usize = 12; // u32
    pub const GENERATION: usize = 16;
    pub const DTYPE: usize = 24; // u8
    pub const INDEX_WIDTH: usize = 25; // u8
    pub const N_ROWS: usize = 32;
    pub const N_COLS: usize = 40;
    pub const NNZ: usize = 48;
    pub const CATALOG_OFFSET: usize = 56;
    pub const CATALOG_LENGTH: usize = 64;
    pub const CATALOG_CRC: usize = 72; // u32
    pub const DATA_END: usize = 80;
    /// u32, crc32c of bytes `0..CRC`.
    pub const CRC: usize = vecfmt::consts::META_CRC_OFFSET;
    pub const PAGE: usize = vecfmt::consts::META_PAGE_SIZE as usize;
}

/// Chunk entry fields: byte offsets within a 64-byte catalog entry (FORMAT.md §3). Fields
/// are u64 unless marked.
pub mod entry {
    pub const ROW_START: usize = 0;
    pub const ROW_END: usize = 8;
    pub const NNZ: usize = 16;
    pub const OFFSET: usize = 24;
    pub const STORED_LEN: usize = 32;
    pub const DECODED_LEN: usize = 40;
    pub const N_LISTED: usize = 48;
    pub const CODEC: usize = 56; // u8
    pub const LAYOUT: usize = 57; // u8
    pub const VALUE_ENCODING: usize = 58; // u8
    pub const CRC: usize = 60; // u32
}

/// Size of the catalog's fixed header, before the chunk entries.
pub const CATALOG_HEADER: usize = CATALOG_HEADER_SIZE as usize;
/// Size of one chunk entry.
pub const ENTRY_SIZE: usize = CHUNK_ENTRY_SIZE as usize;
/// Where the section references start in the catalog header; each is offset, length and
/// crc (at +16), 32 bytes.
pub const SECTIONS_AT: usize = 24;
/// Section numbers, in catalog order.
pub const ROW_LABELS: usize = 0;
pub const COL_LABELS: usize = 1;
pub const METADATA: usize = 2;
pub const FREE_EXTENTS: usize = 3;

/// The bytes of a `.vfm` file, with accessors for its fields. Every setter reseals the
/// checksums that cover what it changed, up to meta page A.
#[derive(Debug, Clone)]
pub struct Vfm {
    pub bytes: Vec<u8>,
}

/// Positions inside a chunk's (decoded) payload (FORMAT.md §4.1, §4.2).
#[derive(Debug, Clone, Copy)]
pub struct Geometry {
    /// Start of the offsets table.
    pub offsets: usize,
    /// Width of an offset.
    pub ow: usize,
    /// End of the row section: where indices (raw) or varints (compressed) begin.
    pub rows_end: usize,
}

/// `x` rounded up to a multiple of 8: where sections and payload parts start.
pub fn align8(x: usize) -> usize {
    x.div_ceil(8) * 8
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

fn put_u32(b: &mut [u8], at: usize, x: u32) {
    b[at..at + 4].copy_from_slice(&x.to_le_bytes());
}

/// Recomputes the crc32c of one meta page (its first [`META_CRC_OFFSET`] bytes) in place.
pub fn reseal_page(page: &mut [u8]) {
    let crc = crc32c::crc32c(&page[..META_CRC_OFFSET]);
    put_u32(page, META_CRC_OFFSET, crc);
}

impl Vfm {
    pub fn new(bytes: Vec<u8>) -> Vfm {
        Vfm { bytes }
    }

    /// The bytes of a file.
    pub fn read(path: impl AsRef<Path>) -> Vfm {
        let path = path.as_ref();
        Vfm::new(std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display())))
    }

    pub fn u16(&self, at: usize) -> u16 {
        u16::from_le_bytes(self.bytes[at..at + 2].try_into().unwrap())
    }
    pub fn u32(&self, at: usize) -> u32 {
        u32::from_le_bytes(self.bytes[at..at + 4].try_into().unwrap())
    }
    pub fn u64(&self, at: usize) -> u64 {
        u64_at(&self.bytes, at)
    }
    pub fn put16(&mut self, at: usize, v: u16) {
        self.bytes[at..at + 2].copy_from_slice(&v.to_le_bytes());
    }
    pub fn put32(&mut self, at: usize, v: u32) {
        put_u32(&mut self.bytes, at, v);
    }
    pub fn put64(&mut self, at: usize, v: u64) {
        self.bytes[at..at + 8].copy_from_slice(&v.to_le_bytes());
    }

    // Meta page A.
    pub fn meta(&self, field: usize) -> u64 {
        self.u64(field)
    }
    /// Sets a u64 field of meta page A and reseals the page.
    pub fn set_meta(&mut self, field: usize, v: u64) {
        self.put64(field, v);
        self.fix_meta();
    }
    /// Reseals meta page `page` (0 or 1).
    pub fn fix_meta_page(&mut self, page: usize) {
        let base = page * meta::PAGE;
        reseal_page(&mut self.bytes[base..base + meta::PAGE]);
    }
    pub fn fix_meta(&mut self) {
        self.fix_meta_page(0);
    }

    // Catalog.
    pub fn catalog(&self) -> Range<usize> {
        let off = self.meta(meta::CATALOG_OFFSET) as usize;
        off..off + self.meta(meta::CATALOG_LENGTH) as usize
    }
    /// Reseals the catalog, then meta page A.
    pub fn fix_catalog(&mut self) {
        let crc = crc32c::crc32c(&self.bytes[self.catalog()]);
        self.put32(meta::CATALOG_CRC, crc);
        self.fix_meta();
    }
    pub fn n_chunks(&self) -> usize {
        self.u64(self.catalog().start + 8) as usize
    }

    // Chunk entries and chunks.
    pub fn entry_at(&self, chunk: usize) -> usize {
        self.catalog().start + CATALOG_HEADER + chunk * ENTRY_SIZE
    }
    pub fn entry(&self, chunk: usize, field: usize) -> u64 {
        self.u64(self.entry_at(chunk) + field)
    }
    pub fn set_entry(&mut self, chunk: usize, field: usize, v: u64) {
        let at = self.entry_at(chunk) + field;
        self.put64(at, v);
        self.fix_catalog();
    }
    pub fn set_entry_u8(&mut self, chunk: usize, field: usize, v: u8) {
        let at = self.entry_at(chunk) + field;
        self.bytes[at] = v;
        self.fix_catalog();
    }
    pub fn chunk(&self, chunk: usize) -> Range<usize> {
        let off = self.entry(chunk, entry::OFFSET) as usize;
        off..off + self.entry(chunk, entry::STORED_LEN) as usize
    }
    /// Reseals a chunk, then the catalog and meta page A.
    pub fn fix_chunk(&mut self, chunk: usize) {
        let crc = crc32c::crc32c(&self.bytes[self.chunk(chunk)]);
        let at = self.entry_at(chunk) + entry::CRC;
        self.put32(at, crc);
        self.fix_catalog();
    }
    /// Whether a chunk uses the sparse row layout.
    pub fn is_sparse(&self, chunk: usize) -> bool {
        self.bytes[self.entry_at(chunk) + entry::LAYOUT] == 1
    }
    /// Byte positions inside chunk `chunk`'s payload (FORMAT.md §4.1, §4.2), for small
    /// matrices: row counts and nnz are small, so row ids and offsets are 4 bytes wide.
    pub fn geometry(&self, chunk: usize) -> Geometry {
        let n_listed = self.entry(chunk, entry::N_LISTED) as usize;
        let ids = if self.is_sparse(chunk) { n_listed * 4 } else { 0 };
        let offsets = align8(ids);
        let rows_end = align8(offsets + (n_listed + 1) * 4);
        Geometry {
            offsets,
            ow: 4,
            rows_end,
        }
    }
    pub fn index_width(&self) -> usize {
        self.bytes[meta::INDEX_WIDTH] as usize
    }
    /// The first chunk with the sparse row layout.
    pub fn sparse_chunk(&self) -> usize {
        (0..self.n_chunks())
            .find(|&c| self.is_sparse(c))
            .expect("a sparse chunk")
    }

    // Sections.
    pub fn section_at(&self, k: usize) -> usize {
        self.catalog().start + SECTIONS_AT + 32 * k
    }
    pub fn section(&self, k: usize) -> Range<usize> {
        let at = self.section_at(k);
        let off = self.u64(at) as usize;
        off..off + self.u64(at + 8) as usize
    }
    pub fn set_section(&mut self, k: usize, offset: u64, length: u64) {
        let at = self.section_at(k);
        self.put64(at, offset);
        self.put64(at + 8, length);
        self.fix_section(k);
    }
    /// Reseals a section, then the catalog and meta page A.
    pub fn fix_section(&mut self, k: usize) {
        let crc = crc32c::crc32c(&self.bytes[self.section(k)]);
        let at = self.section_at(k) + 16;
        self.put32(at, crc);
        self.fix_catalog();
    }

    /// Appends `data` at the end of the file, aligned, and moves the commit's data end past
    /// it. Returns its offset.
    pub fn append(&mut self, data: &[u8], align: usize) -> u64 {
        let at = self.bytes.len().div_ceil(align) * align;
        self.bytes.resize(at, 0);
        self.bytes.extend_from_slice(data);
        let end = self.bytes.len() as u64;
        self.set_meta(meta::DATA_END, end);
        at as u64
    }

    /// Replaces an lz4 chunk's payload with an edited one, stored at the end of the file.
    pub fn edit_lz4_payload(&mut self, chunk: usize, edit: impl FnOnce(&mut Vec<u8>, Geometry)) {
        let decoded_len = self.entry(chunk, entry::DECODED_LEN) as usize;
        let mut payload = lz4_flex::block::decompress(&self.bytes[self.chunk(chunk)], decoded_len).expect("lz4");
        assert_eq!(payload.len(), decoded_len);
        edit(&mut payload, self.geometry(chunk));
        let stored = lz4_flex::block::compress(&payload);
        let at = self.append(&stored, 64);
        let e = self.entry_at(chunk);
        self.put64(e + entry::OFFSET, at);
        self.put64(e + entry::STORED_LEN, stored.len() as u64);
        self.put64(e + entry::DECODED_LEN, payload.len() as u64);
        self.fix_chunk(chunk);
    }
}

/// A copy of `image` in which every checksum that can be located is made to match: each
/// chunk's and section's CRC in the catalog, the catalog's CRC in the meta page, and the
/// meta page's own CRC, for both meta pages (FORMAT.md §2.1, §3). Unlike [`Vfm`]'s setters it
/// trusts nothing: fields that point outside the image are left alone, and nothing panics
/// on arbitrary bytes.
pub fn fix_checksums(image: &[u8]) -> Vec<u8> {
    let mut v = image.to_vec();
    let len = v.len() as u64;
    for base in [0, META_PAGE_SIZE as usize] {
        if v.len() < base + META_USED || v[base..base + 8] != MAGIC {
            continue;
        }
        let (off, clen) = (
            u64_at(&v, base + meta::CATALOG_OFFSET),
            u64_at(&v, base + meta::CATALOG_LENGTH),
        );
        let cat_ok =
            off >= SUPERBLOCK_SIZE && clen >= CATALOG_HEADER_SIZE && off.checked_add(clen).is_some_and(|e| e <= len);
        if cat_ok {
            let (c0, c1) = (off as usize, (off + clen) as usize);
            let n = u64_at(&v, c0 + 8);
            let fits = n
                .checked_mul(CHUNK_ENTRY_SIZE)
                .and_then(|x| x.checked_add(CATALOG_HEADER_SIZE))
                == Some(clen);
            if fits {
                for i in 0..n as usize {
                    let e = c0 + CATALOG_HEADER + i * ENTRY_SIZE;
                    let (o, l) = (u64_at(&v, e + entry::OFFSET), u64_at(&v, e + entry::STORED_LEN));
                    if let Some(end) = o.checked_add(l).filter(|&end| end <= len) {
                        let crc = crc32c::crc32c(&v[o as usize..end as usize]);
                        put_u32(&mut v, e + entry::CRC, crc);
                    }
                }
            }
            for s in 0..4 {
                let at = c0 + SECTIONS_AT + 32 * s;
                let (o, l) = (u64_at(&v, at), u64_at(&v, at + 8));
                if l > 0 {
                    if let Some(end) = o.checked_add(l).filter(|&end| end <= len) {
                        let crc = crc32c::crc32c(&v[o as usize..end as usize]);
                        put_u32(&mut v, at + 16, crc);
                    }
                }
            }
            let crc = crc32c::crc32c(&v[c0..c1]);
            put_u32(&mut v, base + meta::CATALOG_CRC, crc);
        }
        reseal_page(&mut v[base..base + META_USED]);
    }
    v
}
