//! Token bytes → word id for the pairs pass of `cooccur`.
//!
//! Every token of the corpus is looked up once, so the lookup is on the hot path. A general
//! hash map keeps its keys behind heap pointers, and following that pointer for the byte
//! comparison missed the cache on most tokens (a sixth of the pairs pass on C1). Here each
//! slot holds the first 16 bytes of its word inline: a word of up to 16 bytes is found by
//! reading one slot, with no pointer to follow. Longer words compare their remaining bytes in
//! an arena.

use vecfmt::accum::HugeBuf;

use crate::{Error, Result};

/// One slot: 32 bytes, two to a cache line.
#[derive(Clone, Copy)]
#[repr(C, align(32))]
struct Slot {
    /// The first 16 bytes of the word, zero padded.
    head: u128,
    /// High bits of the hash.
    tag: u32,
    len: u32,
    /// `EMPTY` when the slot is free.
    id: u32,
    /// Where the word's bytes start in the arena.
    offset: u32,
}

const EMPTY: u32 = u32::MAX;

impl Default for Slot {
    fn default() -> Slot {
        Slot {
            head: 0,
            tag: 0,
            len: 0,
            id: EMPTY,
            offset: 0,
        }
    }
}

/// Word bytes → id, built once from a vocabulary and then only read.
///
/// ```
/// let words = ["the", "cat", "a-word-longer-than-sixteen-bytes"];
/// let map = vecfmt_text::WordMap::new(words.iter().map(|w| w.as_bytes()))?;
/// assert_eq!(map.get(b"cat"), Some(1));
/// assert_eq!(map.get(b"a-word-longer-than-sixteen-bytes"), Some(2));
/// assert_eq!(map.get(b"dog"), None);
/// # Ok::<(), vecfmt_text::Error>(())
/// ```
#[derive(Default)]
pub struct WordMap {
    /// In huge pages where the kernel allows: each token's lookup reads a random slot.
    slots: HugeBuf<Slot>,
    mask: usize,
    arena: Vec<u8>,
    len: usize,
}

impl std::fmt::Debug for WordMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WordMap")
            .field("len", &self.len)
            .field("slots", &(self.mask + 1))
            .finish()
    }
}

#[inline]
fn load_le(b: &[u8]) -> u64 {
    // At most 8 bytes, little endian, zero padded.
    let mut x = [0u8; 8];
    x[..b.len()].copy_from_slice(b);
    u64::from_le_bytes(x)
}

#[inline]
fn head_of(t: &[u8]) -> u128 {
    if t.len() >= 16 {
        u128::from_le_bytes(t[..16].try_into().expect("16 bytes"))
    } else if t.len() > 8 {
        load_le(&t[..8]) as u128 | (load_le(&t[8..]) as u128) << 64
    } else {
        load_le(t) as u128
    }
}

#[inline]
fn hash(t: &[u8]) -> u64 {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut h = (t.len() as u64).wrapping_mul(K);
    let mut chunks = t.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes(c.try_into().expect("8 bytes"));
        h = (h.rotate_left(23) ^ w).wrapping_mul(K);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        h = (h.rotate_left(23) ^ load_le(rest)).wrapping_mul(K);
    }
    // Mix the high bits down: the slot index takes the low bits.
    h ^ (h >> 29)
}

impl WordMap {
    /// A map of `words` to their positions. A word given twice maps to its last position.
    /// Fails past 4 GiB of word bytes (slots address the arena with 32 bits).
    pub fn new<'a>(words: impl ExactSizeIterator<Item = &'a [u8]>) -> Result<WordMap> {
        let n = words.len();
        let cap = (n * 2).next_power_of_two().max(16);
        let mut m = WordMap {
            slots: HugeBuf::new(cap, Slot::default()),
            mask: cap - 1,
            arena: Vec::new(),
            len: 0,
        };
        for (i, w) in words.enumerate() {
            if m.arena.len() + w.len() > u32::MAX as usize {
                return Err(Error::VocabTooLarge);
            }
            m.insert(w, i as u32);
        }
        Ok(m)
    }

    fn insert(&mut self, w: &[u8], id: u32) {
        let h = hash(w);
        let (head, tag) = (head_of(w), (h >> 32) as u32);
        let mut i = h as usize & self.mask;
        loop {
            let s = self.slots[i];
            if s.id == EMPTY {
                let offset = self.arena.len() as u32;
                if w.len() > 16 {
                    self.arena.extend_from_slice(&w[16..]);
                }
                self.slots[i] = Slot {
                    head,
                    tag,
                    len: w.len() as u32,
                    id,
                    offset,
                };
                self.len += 1;
                return;
            }
            if self.matches(&s, w, head, tag) {
                self.slots[i].id = id;
                return;
            }
            i = (i + 1) & self.mask;
        }
    }

    #[inline]
    fn matches(&self, s: &Slot, t: &[u8], head: u128, tag: u32) -> bool {
        s.tag == tag
            && s.head == head
            && s.len as usize == t.len()
            && (t.len() <= 16 || self.arena[s.offset as usize..s.offset as usize + t.len() - 16] == t[16..])
    }

    /// The id of the word `t`, if it is in the map.
    #[inline]
    pub fn get(&self, t: &[u8]) -> Option<u32> {
        self.get_hashed(t, hash(t))
    }

    /// The hash [`WordMap::get_hashed`] takes; [`WordMap::prefetch`] asks for its slot.
    #[inline]
    pub fn hash(&self, t: &[u8]) -> u64 {
        hash(t)
    }

    /// Starts loading the slot where a lookup of hash `h` begins. The table of a large
    /// vocabulary is far bigger than the caches: hashing a line's tokens and prefetching
    /// their slots first lets the lookups' cache misses overlap.
    #[inline]
    pub fn prefetch(&self, h: u64) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the address is inside `slots`; a prefetch never faults anyway.
        unsafe {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            _mm_prefetch::<_MM_HINT_T0>(self.slots.as_ptr().add(h as usize & self.mask) as *const i8);
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = h;
    }

    /// [`WordMap::get`] with the hash computed already.
    #[inline]
    pub fn get_hashed(&self, t: &[u8], h: u64) -> Option<u32> {
        let (head, tag) = (head_of(t), (h >> 32) as u32);
        let mut i = h as usize & self.mask;
        loop {
            let s = &self.slots[i];
            if s.id == EMPTY {
                return None;
            }
            if self.matches(s, t, head, tag) {
                return Some(s.id);
            }
            i = (i + 1) & self.mask;
        }
    }

    /// Bytes the table holds.
    pub fn heap_bytes(&self) -> usize {
        self.slots.allocated_bytes() + self.arena.capacity()
    }

    /// Words in the map.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the map holds no word.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_every_word_and_no_other() {
        let mut words: Vec<Vec<u8>> = Vec::new();
        let mut x = 1u64;
        for i in 0..5000 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let len = 1 + (x >> 59) as usize + (i % 3) * 7;
            words.push((0..len).map(|k| b'a' + ((x >> (k % 50)) % 26) as u8).collect());
        }
        words.push("naïve".as_bytes().to_vec());
        words.push(vec![0xff, 0xfe]);
        words.push(b"exactly-16-bytes".to_vec());
        words.push(b"exactly-17-bytes!".to_vec());
        let m = WordMap::new(words.iter().map(|w| w.as_slice())).unwrap();
        let mut model = std::collections::HashMap::new();
        for (i, w) in words.iter().enumerate() {
            model.insert(w.clone(), i as u32);
        }
        assert_eq!(m.len(), model.len());
        for (w, id) in &model {
            assert_eq!(m.get(w), Some(*id), "{:?}", String::from_utf8_lossy(w));
        }
        for probe in [
            &b"absent"[..],
            b"",
            b"exactly-16-byteS",
            b"exactly-17-bytes?",
            b"naive",
            b"\xff",
        ] {
            assert_eq!(m.get(probe), model.get(probe).copied());
        }
        // A prefix or an extension of a long word is another word.
        assert_eq!(m.get(b"exactly-17-bytes"), None);
        assert_eq!(m.get(b"exactly-17-bytes!!"), None);
    }
}
