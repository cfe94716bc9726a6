//! Row and column labels (FORMAT.md §5): an offsets table for id → string, and an
//! open-addressing hash table for string → id, both readable in place from the map.

use crate::consts::{LABELS_HEADER_SIZE, LABELS_MAGIC};
use crate::error::{Axis, Error, Malformed, Result};
use crate::layout::{checked_align_up, u64_at};

/// FNV-1a, 64-bit: the hash of a label's UTF-8 bytes (FORMAT.md §5.2).
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn slot_width(count: u64) -> u64 {
    if count < u32::MAX as u64 {
        4
    } else {
        8
    }
}

/// Number of hash slots the writer uses: a power of two, at least 1.5 × count, so probes
/// stay short.
fn slots_for(count: u64) -> u64 {
    (count + count / 2 + 1).next_power_of_two()
}

/// Labels kept as one text buffer and where each ends: a million words take about 16 MB,
/// against about 56 MB as a `Vec<String>` (a heap block and its overhead per label).
#[derive(Debug, Default, Clone)]
pub(crate) struct LabelList {
    text: String,
    ends: Vec<u64>,
}

impl LabelList {
    pub(crate) fn push(&mut self, label: &str) {
        self.text.push_str(label);
        self.ends.push(self.text.len() as u64);
    }
    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }
    pub(crate) fn get(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.text[start..self.ends[i] as usize]
    }
    /// Room for `n` more labels of `bytes` bytes in all.
    pub(crate) fn reserve(&mut self, n: usize, bytes: usize) {
        self.text.reserve_exact(bytes);
        self.ends.reserve_exact(n);
    }
    pub(crate) fn heap_bytes(&self) -> usize {
        self.text.capacity() + self.ends.capacity() * 8
    }
    /// Serialises the labels as a section (the text and its offsets are this list's own).
    /// Besides the section it allocates only the hash slots, 4 bytes per slot below 2^32 - 1
    /// labels (a million labels: 8 MB). Fails on a duplicate label.
    pub(crate) fn build(&self, axis: Axis) -> Result<Vec<u8>> {
        let count = self.len() as u64;
        let bytes_len = self.text.len() as u64;
        let n_slots = slots_for(count);
        let sw = slot_width(count);
        let mut out =
            Vec::with_capacity((LABELS_HEADER_SIZE + (count + 1) * 8 + bytes_len + 8 + n_slots * sw) as usize);
        out.extend_from_slice(&LABELS_MAGIC);
        out.extend_from_slice(&count.to_le_bytes());
        out.extend_from_slice(&bytes_len.to_le_bytes());
        out.extend_from_slice(&n_slots.to_le_bytes());
        out.extend_from_slice(&0u64.to_le_bytes());
        for &end in &self.ends {
            out.extend_from_slice(&end.to_le_bytes());
        }
        out.extend_from_slice(self.text.as_bytes());
        while !out.len().is_multiple_of(8) {
            out.push(0);
        }
        if sw == 4 {
            let slots = fill_slots::<u32>(self, n_slots, axis)?;
            out.extend(slots.iter().flat_map(|v| v.to_le_bytes()));
        } else {
            let slots = fill_slots::<u64>(self, n_slots, axis)?;
            out.extend(slots.iter().flat_map(|v| v.to_le_bytes()));
        }
        Ok(out)
    }
}

impl<S: AsRef<str>> FromIterator<S> for LabelList {
    fn from_iter<I: IntoIterator<Item = S>>(iter: I) -> Self {
        let mut l = LabelList::default();
        for s in iter {
            l.push(s.as_ref());
        }
        l
    }
}

/// The hash slots of a labels section: `id + 1` of the label that hashes there (linear
/// probing), 0 when empty. Fails on a duplicate label.
fn fill_slots<T: Copy + Default + PartialEq + TryFrom<u64> + Into<u64>>(
    labels: &LabelList,
    n_slots: u64,
    axis: Axis,
) -> Result<Vec<T>> {
    let mut slots = vec![T::default(); n_slots as usize];
    let mask = n_slots - 1;
    for id in 0..labels.len() {
        let s = labels.get(id);
        let mut i = fnv1a64(s.as_bytes()) & mask;
        loop {
            let v: u64 = slots[i as usize].into();
            if v == 0 {
                slots[i as usize] = T::try_from(id as u64 + 1).ok().expect("slot width fits the count");
                break;
            }
            if labels.get((v - 1) as usize) == s {
                return Err(Error::DuplicateLabel {
                    axis,
                    label: s.to_string(),
                    first: v - 1,
                    second: id as u64,
                });
            }
            i = (i + 1) & mask;
        }
    }
    Ok(slots)
}

/// A labels section inside a mapped file, checked for size at open.
#[derive(Debug, Clone, Copy)]
pub struct Labels<'a> {
    bytes: &'a [u8],
    /// File offset of the section, for error messages.
    base: u64,
    count: u64,
    strings_at: u64,
    strings_len: u64,
    slots_at: u64,
    n_slots: u64,
    sw: u64,
}

impl<'a> Labels<'a> {
    /// Parses the header and checks that every declared size fits in the section.
    pub(crate) fn parse(bytes: &'a [u8], base: u64) -> Result<Labels<'a>, Malformed> {
        let bad = |at: u64, d: String| Malformed::new(base + at, d);
        if bytes.len() < LABELS_HEADER_SIZE as usize || bytes[0..8] != LABELS_MAGIC {
            return Err(bad(0, "labels magic bytes are wrong".into()));
        }
        let count = u64_at(bytes, 8);
        let strings_len = u64_at(bytes, 16);
        let n_slots = u64_at(bytes, 24);
        let sw = slot_width(count);
        if !n_slots.is_power_of_two() || n_slots <= count {
            return Err(bad(
                24,
                format!("{n_slots} hash slots for {count} labels: must be a power of two above the count"),
            ));
        }
        let strings_at = count
            .checked_add(1)
            .and_then(|n| n.checked_mul(8))
            .and_then(|n| n.checked_add(LABELS_HEADER_SIZE));
        let slots_at = strings_at
            .and_then(|s| s.checked_add(strings_len))
            .and_then(|e| checked_align_up(e, 8));
        let total = slots_at.and_then(|s| n_slots.checked_mul(sw).and_then(|n| n.checked_add(s)));
        match (strings_at, slots_at, total) {
            (Some(strings_at), Some(slots_at), Some(total)) if total == bytes.len() as u64 => Ok(Labels {
                bytes,
                base,
                count,
                strings_at,
                strings_len,
                slots_at,
                n_slots,
                sw,
            }),
            _ => Err(bad(
                8,
                format!(
                    "{count} labels of {strings_len} bytes with {n_slots} slots do not fit in a {}-byte section",
                    bytes.len()
                ),
            )),
        }
    }

    /// Number of labels.
    pub fn len(&self) -> u64 {
        self.count
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The label of id `i`, checked: offsets in order and in range, valid UTF-8.
    pub fn get(&self, i: u64) -> Result<&'a str, Malformed> {
        if i >= self.count {
            return Err(Malformed::new(
                self.base,
                format!("label {i} requested of {}", self.count),
            ));
        }
        let at = (LABELS_HEADER_SIZE + i * 8) as usize;
        let (a, b) = (u64_at(self.bytes, at), u64_at(self.bytes, at + 8));
        if a > b || b > self.strings_len {
            return Err(Malformed::new(
                self.base + at as u64,
                format!("label {i} has offsets {a}..{b}, outside 0..{}", self.strings_len),
            ));
        }
        let s = &self.bytes[(self.strings_at + a) as usize..(self.strings_at + b) as usize];
        std::str::from_utf8(s)
            .map_err(|_| Malformed::new(self.base + self.strings_at + a, format!("label {i} is not valid UTF-8")))
    }

    /// The id of `label`, if present. Probes the hash table; a corrupt table can make a
    /// present label unfindable, which `verify` reports.
    pub fn lookup(&self, label: &str) -> Option<u64> {
        let mask = self.n_slots - 1;
        let mut i = fnv1a64(label.as_bytes()) & mask;
        for _ in 0..self.n_slots {
            let at = (self.slots_at + i * self.sw) as usize;
            let v = if self.sw == 4 {
                u32::from_le_bytes(self.bytes[at..at + 4].try_into().expect("4")) as u64
            } else {
                u64_at(self.bytes, at)
            };
            if v == 0 {
                return None;
            }
            if v <= self.count && self.get(v - 1).is_ok_and(|s| s == label) {
                return Some(v - 1);
            }
            i = (i + 1) & mask;
        }
        None
    }

    /// Iterates over every label in id order.
    pub fn iter(&self) -> impl Iterator<Item = Result<&'a str, Malformed>> + '_ {
        (0..self.count).map(move |i| self.get(i))
    }

    /// Full check for `verify`, linear in the section's size: every label decodes, labels
    /// are unique, every id sits in exactly one slot, and each slot is reachable from its
    /// label's home slot without crossing an empty one (so lookup finds it).
    pub(crate) fn check(&self) -> Result<(), Malformed> {
        let mut seen = std::collections::HashSet::with_capacity(self.count.min(1 << 24) as usize);
        for i in 0..self.count {
            if !seen.insert(self.get(i)?) {
                return Err(Malformed::new(
                    self.base,
                    format!("label {i} ({:?}) occurs twice", self.get(i)?),
                ));
            }
        }
        let n = self.n_slots as usize;
        let slot = |i: usize| -> u64 {
            let at = (self.slots_at + i as u64 * self.sw) as usize;
            if self.sw == 4 {
                u32::from_le_bytes(self.bytes[at..at + 4].try_into().expect("4")) as u64
            } else {
                u64_at(self.bytes, at)
            }
        };
        let bad = |i: usize, d: String| Malformed::new(self.base + self.slots_at + i as u64 * self.sw, d);
        // Start right after an empty slot, so that every probe run is seen whole.
        let Some(empty) = (0..n).find(|&i| slot(i) == 0) else {
            return Err(bad(0, "the hash table has no empty slot".into()));
        };
        let mut placed = vec![false; self.count as usize];
        let mut run_start = empty;
        for step in 1..=n {
            let i = (empty + step) % n;
            let v = slot(i);
            if v == 0 {
                run_start = i;
                continue;
            }
            let id = v - 1;
            if id >= self.count || std::mem::replace(&mut placed[id as usize], true) {
                return Err(bad(i, format!("slot {i} holds id {id}, out of range or placed twice")));
            }
            let home = (fnv1a64(self.get(id)?.as_bytes()) & (self.n_slots - 1)) as usize;
            // Distance walked from the home slot, and the length of the run up to here.
            let walked = (i + n - home) % n;
            let run = (i + n - run_start) % n;
            if walked >= run {
                return Err(bad(
                    i,
                    format!("label {id} sits in slot {i}, unreachable from its home slot {home}"),
                ));
            }
        }
        if let Some(id) = placed.iter().position(|p| !p) {
            return Err(bad(0, format!("label {id} has no hash slot")));
        }
        Ok(())
    }
}
