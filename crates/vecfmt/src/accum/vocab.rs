//! A label vocabulary that grows as new labels arrive: label ↔ id.

use std::collections::HashMap;

/// Labels of one axis, ids in order of first appearance.
#[derive(Debug, Default)]
pub(crate) struct Vocab {
    ids: HashMap<Box<str>, u32>,
    names: Vec<Box<str>>,
    /// How many labels the last commit wrote.
    pub committed: usize,
    /// When set, unknown labels are an error instead of new ids.
    pub frozen: bool,
    bytes: usize,
}

/// Bytes one label costs beyond its text: the map slot, the box and the names entry.
const PER_LABEL: usize = 64;

impl Vocab {
    pub(crate) fn from_labels(labels: Vec<String>) -> Vocab {
        let mut v = Vocab::default();
        for l in labels {
            v.insert(&l);
        }
        v.committed = v.names.len();
        v
    }

    pub(crate) fn get(&self, label: &str) -> Option<u32> {
        self.ids.get(label).copied()
    }

    /// The id of `label`, adding it when new; `None` when the vocabulary is full (2^32 - 1).
    pub(crate) fn insert(&mut self, label: &str) -> Option<u32> {
        if let Some(&id) = self.ids.get(label) {
            return Some(id);
        }
        let id = u32::try_from(self.names.len()).ok().filter(|&i| i < u32::MAX)?;
        let b: Box<str> = label.into();
        self.ids.insert(b.clone(), id);
        self.names.push(b);
        self.bytes += 2 * label.len() + PER_LABEL;
        Some(id)
    }

    pub(crate) fn len(&self) -> usize {
        self.names.len()
    }

    pub(crate) fn names(&self) -> &[Box<str>] {
        &self.names
    }

    /// Heap bytes held, approximately.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.bytes
    }

    pub(crate) fn is_dirty(&self) -> bool {
        self.committed != self.names.len()
    }
}
