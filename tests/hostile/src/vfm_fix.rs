//! Recomputes the checksums of a `.vfm` image, so that a fuzzer's mutations reach the field
//! checks behind them instead of stopping at a CRC mismatch.

use vecfmt::consts::{CATALOG_HEADER_SIZE, CHUNK_ENTRY_SIZE, MAGIC, META_CRC_OFFSET, META_PAGE_SIZE, SUPERBLOCK_SIZE};

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

fn put_u32(b: &mut [u8], at: usize, x: u32) {
    b[at..at + 4].copy_from_slice(&x.to_le_bytes());
}

/// A copy of `image` in which every checksum that can be located is made to match: each
/// chunk's and section's CRC in the catalog, the catalog's CRC in the meta page, and the
/// meta page's own CRC (FORMAT.md §2.1, §3). Fields that point outside the image are left
/// alone.
pub fn fix_checksums(image: &[u8]) -> Vec<u8> {
    let mut v = image.to_vec();
    let len = v.len() as u64;
    for base in [0, META_PAGE_SIZE as usize] {
        if v.len() < base + 128 || v[base..base + 8] != MAGIC {
            continue;
        }
        let (off, clen) = (u64_at(&v, base + 56), u64_at(&v, base + 64));
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
                    let e = c0 + CATALOG_HEADER_SIZE as usize + i * CHUNK_ENTRY_SIZE as usize;
                    let (o, l) = (u64_at(&v, e + 24), u64_at(&v, e + 32));
                    if let Some(end) = o.checked_add(l).filter(|&end| end <= len) {
                        let crc = crc32c::crc32c(&v[o as usize..end as usize]);
                        put_u32(&mut v, e + 60, crc);
                    }
                }
            }
            for s in 0..4 {
                let at = c0 + 24 + 32 * s;
                let (o, l) = (u64_at(&v, at), u64_at(&v, at + 8));
                if l > 0 {
                    if let Some(end) = o.checked_add(l).filter(|&end| end <= len) {
                        let crc = crc32c::crc32c(&v[o as usize..end as usize]);
                        put_u32(&mut v, at + 16, crc);
                    }
                }
            }
            let crc = crc32c::crc32c(&v[c0..c1]);
            put_u32(&mut v, base + 72, crc);
        }
        let crc = crc32c::crc32c(&v[base..base + META_CRC_OFFSET]);
        put_u32(&mut v, base + META_CRC_OFFSET, crc);
    }
    v
}
