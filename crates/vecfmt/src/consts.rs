//! Every number the `.vfm` format fixes, in one place. Section numbers refer to
//! `docs/FORMAT.md`, the normative specification.

/// Magic bytes at the start of both meta pages (FORMAT.md §2). PNG-style: a non-ASCII first
/// byte, the name, and CR LF / ^Z / LF to catch text-mode transfers.
pub const MAGIC: [u8; 8] = *b"\x89VFM\r\n\x1a\n";

/// The format version this library writes, and the newest it reads (FORMAT.md §2).
pub const FORMAT_VERSION: u16 = 1;

/// Size of one meta page; the superblock is two of them (FORMAT.md §2).
pub const META_PAGE_SIZE: u64 = 4096;
/// Bytes reserved at the start of the file for the superblock. Data begins here.
pub const SUPERBLOCK_SIZE: u64 = 2 * META_PAGE_SIZE;
/// Bytes of a meta page covered by its checksum; the crc32c sits right after them.
pub const META_CRC_OFFSET: usize = 124;
/// Bytes of a meta page that carry meaning (fields plus the checksum).
pub const META_USED: usize = 128;

/// Magic bytes of the catalog (FORMAT.md §3).
pub const CATALOG_MAGIC: [u8; 8] = *b"VFMCATLG";
/// Size of the catalog's fixed header, before the chunk entries.
pub const CATALOG_HEADER_SIZE: u64 = 152;
/// Size of one chunk entry in the catalog.
pub const CHUNK_ENTRY_SIZE: u64 = 64;
/// Size of one section reference in the catalog header.
pub const SECTION_REF_SIZE: usize = 32;

/// Magic bytes of a labels section (FORMAT.md §5).
pub const LABELS_MAGIC: [u8; 8] = *b"VFMLABEL";
/// Size of the labels section's fixed header.
pub const LABELS_HEADER_SIZE: u64 = 32;

/// zstd level a [`crate::MatrixWriter`] compresses at unless told otherwise.
pub const DEFAULT_ZSTD_LEVEL: i32 = 3;

/// Every chunk starts at a multiple of this (FORMAT.md §4), so that raw chunks can be viewed
/// in place as `&[u32]`/`&[f64]` from a page-aligned map.
pub const CHUNK_ALIGN: u64 = 64;
/// Every other section starts at a multiple of this.
pub const SECTION_ALIGN: u64 = 8;

/// Default target of raw CSR bytes per chunk for the raw codec.
pub const DEFAULT_RAW_CHUNK_BYTES: usize = 1 << 20;
/// Default target of raw CSR bytes per chunk for compressed codecs: small, so that a random
/// row read decompresses kilobytes, not megabytes.
pub const DEFAULT_COMPRESSED_CHUNK_BYTES: usize = 24 << 10;
/// Default cap on one chunk's decoded size; a header that claims more is refused before any
/// allocation. Configurable through `OpenOptions::max_chunk_bytes`.
pub const DEFAULT_MAX_CHUNK_BYTES: u64 = 4 << 30;
/// Default byte budget of the decoded-chunk cache of a reader.
pub const DEFAULT_CACHE_BYTES: usize = 256 << 20;
