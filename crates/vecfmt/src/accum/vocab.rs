//! A label vocabulary that grows as new labels arrive: label ↔ id.
//!
//! The labels' text is kept in one buffer, and the index from label to id is an open-addressing
//! table of ids that compares against that buffer. A vocabulary of a million words then
//! takes about 30 MB; with a `HashMap<Box<str>, u32>` and a `Vec<Box<str>>` it took about
//! 100 MB (two allocations per label, each with the allocator's overhead), which at
//! `vecfmt cooccur --memory 256M` left little room for the sums themselves.

use crate::labels::{fnv1a64, LabelList};

/// Labels of one axis, ids in order of first appearance.
#[derive(Debug)]
pub(crate) struct Vocab {
    names: LabelList,
    /// Open addressing, linear probing: `id + 1` per slot, 0 when empty. A power of two
    /// in length, at most half full.
    slots: Vec<u32>,
    /// How many labels the last commit wrote.
    pub committed: usize,
    /// When set, unknown labels are an error instead of new ids.
    pub frozen: bool,
}

impl Default for Vocab {
    fn default() -> Self {
        Vocab {
            names: LabelList::default(),
            slots: vec![0; 16],
            committed: 0,
            frozen: false,
        }
    }
}

impl Vocab {
    pub(crate) fn from_labels(labels: Vec<String>) -> Vocab {
        let mut v = Vocab::default();
        v.reserve(labels.len(), labels.iter().map(String::len).sum());
        for l in labels {
            v.insert(&l);
        }
        v.committed = v.names.len();
        v
    }

    /// Room for `n` more labels of `bytes` bytes in all.
    pub(crate) fn reserve(&mut self, n: usize, bytes: usize) {
        self.names.reserve(n, bytes);
        let want = ((self.names.len() + n) * 2).next_power_of_two().max(16);
        if want > self.slots.len() {
            self.rehash(want);
        }
    }

    pub(crate) fn names(&self) -> &LabelList {
        &self.names
    }

    /// The slot holding `label`, or the empty slot where it would go.
    fn find(&self, label: &str) -> (usize, Option<u32>) {
        let mask = self.slots.len() - 1;
        let mut i = fnv1a64(label.as_bytes()) as usize & mask;
        loop {
            match self.slots[i] {
                0 => return (i, None),
                s if self.names.get(s as usize - 1) == label => return (i, Some(s - 1)),
                _ => i = (i + 1) & mask,
            }
        }
    }

    fn rehash(&mut self, len: usize) {
        let mut slots = vec![0u32; len];
        let mask = len - 1;
        for id in 0..self.names.len() {
            let mut i = fnv1a64(self.names.get(id).as_bytes()) as usize & mask;
            while slots[i] != 0 {
                i = (i + 1) & mask;
            }
            slots[i] = id as u32 + 1;
        }
        self.slots = slots;
    }

    pub(crate) fn get(&self, label: &str) -> Option<u32> {
        self.find(label).1
    }

    /// The id of `label`, adding it when new; `None` when the vocabulary is full (2^32 - 1).
    pub(crate) fn insert(&mut self, label: &str) -> Option<u32> {
        let (mut slot, found) = self.find(label);
        if found.is_some() {
            return found;
        }
        let id = u32::try_from(self.names.len()).ok().filter(|&i| i < u32::MAX)?;
        if (self.names.len() + 1) * 2 > self.slots.len() {
            self.rehash(self.slots.len() * 2);
            slot = self.find(label).0;
        }
        self.names.push(label);
        self.slots[slot] = id + 1;
        Some(id)
    }

    pub(crate) fn len(&self) -> usize {
        self.names.len()
    }

    /// Heap bytes held.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.names.heap_bytes() + self.slots.capacity() * 4
    }

    pub(crate) fn is_dirty(&self) -> bool {
        self.committed != self.names.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_first_appearance_and_survive_growth() {
        let mut v = Vocab::default();
        let words: Vec<String> = (0..5000).map(|i| format!("w{}", i * 7919 % 5000)).collect();
        for (i, w) in words.iter().enumerate() {
            assert_eq!(v.insert(w), Some(i as u32));
        }
        for (i, w) in words.iter().enumerate() {
            assert_eq!(v.insert(w), Some(i as u32), "a known label keeps its id");
            assert_eq!(v.get(w), Some(i as u32));
            assert_eq!(v.names().get(i), w);
        }
        assert_eq!(v.get("absent"), None);
        assert_eq!(v.get(""), None);
        assert_eq!(v.insert(""), Some(5000), "the empty label is a label");
        assert_eq!(v.names().get(5000), "");
        assert_eq!(v.len(), 5001);
        assert!(v.slots.len() >= 2 * v.len());
    }

    #[test]
    fn from_labels_is_committed() {
        let v = Vocab::from_labels(vec!["b".into(), "a".into(), "é".into()]);
        assert!(!v.is_dirty());
        assert_eq!(v.get("é"), Some(2));
        assert_eq!(v.names().get(1), "a");
    }
}
