//! Meta pages (FORMAT.md §2), the catalog (§3) and section references: parsing and
//! serialising the fixed-size structures. Every parse checks sizes against the file length
//! before anything is allocated.

use crate::consts::*;
use crate::dtype::DType;
use crate::error::Malformed;

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(b[at..at + 2].try_into().expect("2 bytes"))
}
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
pub(crate) fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// Rounds `x` up to a multiple of `align` (a power of two). For sizes the writer computes;
/// sizes read from a file go through [`checked_align_up`].
pub(crate) fn align_up(x: u64, align: u64) -> u64 {
    (x + align - 1) & !(align - 1)
}

/// Rounds `x` up to a multiple of `align` (a power of two), or `None` past `u64::MAX`.
pub(crate) fn checked_align_up(x: u64, align: u64) -> Option<u64> {
    Some(x.checked_add(align - 1)? & !(align - 1))
}

/// One commit: the contents of a valid meta page (FORMAT.md §2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    /// Which meta page (0 = A at byte 0, 1 = B at byte 4096) holds it.
    pub slot: u8,
    /// Commit counter; the valid page with the highest generation is the current commit.
    pub generation: u64,
    pub dtype: DType,
    /// Width in bytes of stored column indices: 4 or 8.
    pub index_width: u8,
    pub n_rows: u64,
    pub n_cols: u64,
    pub nnz: u64,
    pub catalog_offset: u64,
    pub catalog_length: u64,
    pub catalog_crc: u32,
    /// End of the space in use at this commit; the file is at least this long.
    pub data_end: u64,
    /// Wall-clock time of the commit, nanoseconds since the Unix epoch (informative).
    pub commit_time_ns: u64,
}

impl Commit {
    /// Serialises the page: 128 meaningful bytes, then zeros up to 4096.
    pub fn to_page(&self) -> Vec<u8> {
        let mut p = vec![0u8; META_PAGE_SIZE as usize];
        p[0..8].copy_from_slice(&MAGIC);
        p[8..10].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        p[10..12].copy_from_slice(&(self.slot as u16).to_le_bytes());
        p[12..16].copy_from_slice(&(META_USED as u32).to_le_bytes());
        p[16..24].copy_from_slice(&self.generation.to_le_bytes());
        p[24] = self.dtype.code();
        p[25] = self.index_width;
        p[32..40].copy_from_slice(&self.n_rows.to_le_bytes());
        p[40..48].copy_from_slice(&self.n_cols.to_le_bytes());
        p[48..56].copy_from_slice(&self.nnz.to_le_bytes());
        p[56..64].copy_from_slice(&self.catalog_offset.to_le_bytes());
        p[64..72].copy_from_slice(&self.catalog_length.to_le_bytes());
        p[72..76].copy_from_slice(&self.catalog_crc.to_le_bytes());
        p[80..88].copy_from_slice(&self.data_end.to_le_bytes());
        p[88..96].copy_from_slice(&self.commit_time_ns.to_le_bytes());
        let crc = crc32c::crc32c(&p[..META_CRC_OFFSET]);
        p[META_CRC_OFFSET..META_USED].copy_from_slice(&crc.to_le_bytes());
        p
    }
}

/// Why a meta page is not a valid commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageProblem {
    /// The magic bytes are wrong (page never written, or not a vfm file).
    BadMagic,
    /// Written by a newer format version.
    NewerVersion(u16),
    /// Anything else: checksum mismatch or an impossible field.
    Invalid(Malformed),
}

/// Parses one meta page found at byte `base` of a file of `file_len` bytes.
pub fn parse_page(page: &[u8], base: u64, file_len: u64) -> Result<Commit, PageProblem> {
    let bad = |at: usize, d: String| PageProblem::Invalid(Malformed::new(base + at as u64, d));
    if page.len() < META_USED || page[0..8] != MAGIC {
        return Err(PageProblem::BadMagic);
    }
    let stored = u32_at(page, META_CRC_OFFSET);
    let computed = crc32c::crc32c(&page[..META_CRC_OFFSET]);
    if stored != computed {
        return Err(bad(
            META_CRC_OFFSET,
            format!("meta page checksum mismatch: stored {stored:08x}, computed {computed:08x}"),
        ));
    }
    let version = u16_at(page, 8);
    if version > FORMAT_VERSION {
        return Err(PageProblem::NewerVersion(version));
    }
    if version == 0 {
        return Err(bad(8, "format version 0".into()));
    }
    let slot = u16_at(page, 10);
    if u64::from(slot) != base / META_PAGE_SIZE {
        return Err(bad(
            10,
            format!("slot number {slot} does not match the page's position"),
        ));
    }
    if u32_at(page, 12) as usize != META_USED {
        return Err(bad(
            12,
            format!("meta page length {} is not {META_USED}", u32_at(page, 12)),
        ));
    }
    let dtype = DType::from_code(page[24]).ok_or_else(|| bad(24, format!("unknown dtype code {}", page[24])))?;
    let index_width = page[25];
    let c = Commit {
        slot: slot as u8,
        generation: u64_at(page, 16),
        dtype,
        index_width,
        n_rows: u64_at(page, 32),
        n_cols: u64_at(page, 40),
        nnz: u64_at(page, 48),
        catalog_offset: u64_at(page, 56),
        catalog_length: u64_at(page, 64),
        catalog_crc: u32_at(page, 72),
        data_end: u64_at(page, 80),
        commit_time_ns: u64_at(page, 88),
    };
    if c.generation == 0 {
        return Err(bad(16, "generation 0".into()));
    }
    match index_width {
        4 if c.n_cols > 1 << 32 => return Err(bad(25, format!("index width 4 cannot hold {} columns", c.n_cols))),
        4 | 8 => {}
        w => return Err(bad(25, format!("index width {w} is not 4 or 8"))),
    }
    if c.data_end > file_len || c.data_end < SUPERBLOCK_SIZE {
        return Err(bad(
            80,
            format!("data end {} lies outside the file ({file_len} bytes)", c.data_end),
        ));
    }
    let cat_end = c.catalog_offset.checked_add(c.catalog_length);
    if c.catalog_offset < SUPERBLOCK_SIZE
        || !c.catalog_offset.is_multiple_of(SECTION_ALIGN)
        || cat_end.is_none_or(|e| e > c.data_end)
        || c.catalog_length < CATALOG_HEADER_SIZE
    {
        return Err(bad(
            56,
            format!(
                "catalog at {}+{} does not fit in the data area {}..{}",
                c.catalog_offset, c.catalog_length, SUPERBLOCK_SIZE, c.data_end
            ),
        ));
    }
    Ok(c)
}

/// Where an optional section lies (FORMAT.md §3.1). Absent when `length` is 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SectionRef {
    pub offset: u64,
    pub length: u64,
    pub crc: u32,
}

impl SectionRef {
    /// Whether the section is present.
    pub fn is_present(&self) -> bool {
        self.length != 0
    }

    /// Checks the section's bytes against its checksum.
    pub(crate) fn check(&self, bytes: &[u8]) -> Result<(), Malformed> {
        let crc = crc32c::crc32c(bytes);
        if crc != self.crc {
            return Err(Malformed::new(
                self.offset,
                format!("checksum mismatch: stored {:08x}, computed {crc:08x}", self.crc),
            ));
        }
        Ok(())
    }
}

/// Codec of a chunk (FORMAT.md §4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Codec {
    /// Stored as is, readable in place from the map.
    Raw = 0,
    /// Delta-varint indices and byte-planed values, LZ4 block format.
    Lz4 = 1,
    /// Delta-varint indices and byte-planed values, one zstd frame.
    Zstd = 2,
}

impl Codec {
    /// The code stored in the file.
    pub fn code(self) -> u8 {
        self as u8
    }
    /// The codec of a stored code.
    pub fn from_code(c: u8) -> Option<Codec> {
        [Codec::Raw, Codec::Lz4, Codec::Zstd]
            .into_iter()
            .find(|x| x.code() == c)
    }
    /// Its name on the command line and in `inspect`.
    pub fn name(self) -> &'static str {
        match self {
            Codec::Raw => "raw",
            Codec::Lz4 => "lz4",
            Codec::Zstd => "zstd",
        }
    }
}

impl std::fmt::Display for Codec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Codec {
    type Err = crate::Error;
    fn from_str(s: &str) -> crate::Result<Codec> {
        match s.to_ascii_lowercase().as_str() {
            "raw" | "none" => Ok(Codec::Raw),
            "lz4" => Ok(Codec::Lz4),
            "zstd" => Ok(Codec::Zstd),
            _ => Err(crate::Error::UnknownName {
                what: "codec",
                name: s.to_string(),
                expected: "raw, lz4, zstd",
            }),
        }
    }
}

/// How a chunk lists its rows (FORMAT.md §4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum RowLayout {
    /// One offset per row of the chunk's range.
    Dense = 0,
    /// Only the listed rows, with their local row numbers.
    Sparse = 1,
}

/// How a compressed chunk stores its values (FORMAT.md §4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ValueEncoding {
    /// Byte planes of the dtype's own little-endian bytes.
    Planes = 0,
    /// Float values that are all whole numbers, stored as byte planes of `i32`: counts stored
    /// as f32 or f64 shrink by a tenth and decode faster.
    IntegralI32 = 1,
}

/// One entry of the catalog: where a chunk is and what it holds (FORMAT.md §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkEntry {
    pub row_start: u64,
    pub row_end: u64,
    pub nnz: u64,
    pub offset: u64,
    pub stored_len: u64,
    pub decoded_len: u64,
    /// Rows with an entry in the row section: `row_end - row_start` for the dense layout.
    pub n_listed: u64,
    pub codec: Codec,
    pub layout: RowLayout,
    /// Always `Planes` for the raw codec.
    pub values: ValueEncoding,
    pub crc: u32,
}

impl ChunkEntry {
    fn write(&self, out: &mut Vec<u8>) {
        for x in [
            self.row_start,
            self.row_end,
            self.nnz,
            self.offset,
            self.stored_len,
            self.decoded_len,
            self.n_listed,
        ] {
            out.extend_from_slice(&x.to_le_bytes());
        }
        out.push(self.codec.code());
        out.push(self.layout as u8);
        out.push(self.values as u8);
        out.push(0);
        out.extend_from_slice(&self.crc.to_le_bytes());
    }
}

/// The catalog of one commit (FORMAT.md §3).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Catalog {
    pub row_labels: SectionRef,
    pub col_labels: SectionRef,
    pub metadata: SectionRef,
    /// Extents freed by copy-on-write updates, kept for reuse (FORMAT.md §6).
    pub free_extents: SectionRef,
    pub chunks: Vec<ChunkEntry>,
}

impl Catalog {
    /// Serialises the catalog.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity((CATALOG_HEADER_SIZE + CHUNK_ENTRY_SIZE * self.chunks.len() as u64) as usize);
        out.extend_from_slice(&CATALOG_MAGIC);
        out.extend_from_slice(&(self.chunks.len() as u64).to_le_bytes());
        out.extend_from_slice(&(CHUNK_ENTRY_SIZE as u32).to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        for s in [self.row_labels, self.col_labels, self.metadata, self.free_extents] {
            out.extend_from_slice(&s.offset.to_le_bytes());
            out.extend_from_slice(&s.length.to_le_bytes());
            out.extend_from_slice(&s.crc.to_le_bytes());
            out.extend_from_slice(&[0u8; 12]);
        }
        debug_assert_eq!(out.len() as u64, CATALOG_HEADER_SIZE);
        for e in &self.chunks {
            e.write(&mut out);
        }
        out
    }

    /// Parses and checks a catalog whose bytes start at file offset `base`. `commit` is the
    /// commit that points at it. The checksum has been checked by the caller.
    pub fn parse(bytes: &[u8], base: u64, commit: &Commit) -> Result<Catalog, Malformed> {
        let bad = |at: u64, d: String| Malformed::new(base + at, d);
        if bytes.len() < CATALOG_HEADER_SIZE as usize || bytes[0..8] != CATALOG_MAGIC {
            return Err(bad(0, "catalog magic bytes are wrong".into()));
        }
        let n_chunks = u64_at(bytes, 8);
        if u32_at(bytes, 16) as u64 != CHUNK_ENTRY_SIZE {
            return Err(bad(
                16,
                format!("chunk entry size {} is not {CHUNK_ENTRY_SIZE}", u32_at(bytes, 16)),
            ));
        }
        // Check the declared count against the bytes actually present before allocating.
        let expected_len = n_chunks
            .checked_mul(CHUNK_ENTRY_SIZE)
            .and_then(|x| x.checked_add(CATALOG_HEADER_SIZE));
        if expected_len != Some(bytes.len() as u64) {
            return Err(bad(
                8,
                format!("catalog declares {n_chunks} chunks but is {} bytes long", bytes.len()),
            ));
        }
        let data = SUPERBLOCK_SIZE..commit.data_end;
        let section = |i: usize| -> Result<SectionRef, Malformed> {
            let at = 24 + i * SECTION_REF_SIZE;
            let s = SectionRef {
                offset: u64_at(bytes, at),
                length: u64_at(bytes, at + 8),
                crc: u32_at(bytes, at + 16),
            };
            if s.is_present() {
                let end = s.offset.checked_add(s.length);
                if s.offset < data.start || !s.offset.is_multiple_of(SECTION_ALIGN) || end.is_none_or(|e| e > data.end)
                {
                    return Err(bad(
                        at as u64,
                        format!("section at {}+{} lies outside the data area", s.offset, s.length),
                    ));
                }
            }
            Ok(s)
        };
        let mut cat = Catalog {
            row_labels: section(0)?,
            col_labels: section(1)?,
            metadata: section(2)?,
            free_extents: section(3)?,
            chunks: Vec::with_capacity(n_chunks as usize),
        };
        let mut nnz_total: u64 = 0;
        let mut prev_end = 0u64;
        for i in 0..n_chunks as usize {
            let at = CATALOG_HEADER_SIZE as usize + i * CHUNK_ENTRY_SIZE as usize;
            let e = &bytes[at..at + CHUNK_ENTRY_SIZE as usize];
            let here = |field: usize| at as u64 + field as u64;
            let codec = Codec::from_code(e[56])
                .ok_or_else(|| bad(here(56), format!("chunk {i}: unknown codec code {}", e[56])))?;
            let layout = match e[57] {
                0 => RowLayout::Dense,
                1 => RowLayout::Sparse,
                x => return Err(bad(here(57), format!("chunk {i}: unknown row layout {x}"))),
            };
            let values = match e[58] {
                0 => ValueEncoding::Planes,
                1 if codec != Codec::Raw && commit.dtype.is_float() => ValueEncoding::IntegralI32,
                x => {
                    return Err(bad(
                        here(58),
                        format!(
                            "chunk {i}: value encoding {x} is not valid for a {codec} chunk of {}",
                            commit.dtype
                        ),
                    ))
                }
            };
            let c = ChunkEntry {
                row_start: u64_at(e, 0),
                row_end: u64_at(e, 8),
                nnz: u64_at(e, 16),
                offset: u64_at(e, 24),
                stored_len: u64_at(e, 32),
                decoded_len: u64_at(e, 40),
                n_listed: u64_at(e, 48),
                codec,
                layout,
                values,
                crc: u32_at(e, 60),
            };
            if c.row_start >= c.row_end || c.row_end > commit.n_rows || (i > 0 && c.row_start < prev_end) {
                return Err(bad(
                    here(0),
                    format!(
                        "chunk {i}: row range {}..{} is empty, overlaps the previous chunk or exceeds {} rows",
                        c.row_start, c.row_end, commit.n_rows
                    ),
                ));
            }
            prev_end = c.row_end;
            let row_count = c.row_end - c.row_start;
            let listed_ok = match layout {
                RowLayout::Dense => c.n_listed == row_count,
                RowLayout::Sparse => c.n_listed >= 1 && c.n_listed <= row_count,
            };
            if !listed_ok || c.nnz == 0 {
                return Err(bad(
                    here(16),
                    format!(
                        "chunk {i}: {} listed rows and {} nonzeros do not fit its layout",
                        c.n_listed, c.nnz
                    ),
                ));
            }
            let end = c.offset.checked_add(c.stored_len);
            if c.offset < data.start || !c.offset.is_multiple_of(CHUNK_ALIGN) || end.is_none_or(|e| e > data.end) {
                return Err(bad(
                    here(24),
                    format!(
                        "chunk {i}: bytes {}+{} lie outside the data area",
                        c.offset, c.stored_len
                    ),
                ));
            }
            if codec == Codec::Raw && c.decoded_len != c.stored_len {
                return Err(bad(
                    here(40),
                    format!("chunk {i}: raw chunk with decoded length != stored length"),
                ));
            }
            nnz_total = nnz_total
                .checked_add(c.nnz)
                .ok_or_else(|| bad(here(16), "total nonzeros overflow".into()))?;
            cat.chunks.push(c);
        }
        if nnz_total != commit.nnz {
            return Err(bad(
                8,
                format!("chunks hold {nnz_total} nonzeros but the commit says {}", commit.nnz),
            ));
        }
        Ok(cat)
    }
}
