//! A thread-safe, byte-budgeted LRU cache of decoded chunks, sharded so that readers on
//! different chunks rarely meet on one lock.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::chunk::ChunkData;

/// At most this many shards, and at least 1 MiB of budget per shard: a small budget split
/// sixteen ways would keep no chunk at all.
const MAX_SHARDS: usize = 16;

#[derive(Debug, Default)]
struct Shard {
    /// chunk → (data, last-use tick, bytes)
    entries: HashMap<usize, (Arc<ChunkData>, u64, usize)>,
    /// last-use tick → chunk, oldest first
    order: BTreeMap<u64, usize>,
    bytes: usize,
    tick: u64,
}

/// The decoded-chunk cache of one reader.
#[derive(Debug)]
pub(crate) struct ChunkCache {
    shards: Vec<Mutex<Shard>>,
    shard_budget: usize,
}

impl ChunkCache {
    pub(crate) fn new(budget: usize) -> Self {
        let n = (budget >> 20).clamp(1, MAX_SHARDS);
        ChunkCache {
            shards: (0..n).map(|_| Mutex::new(Shard::default())).collect(),
            shard_budget: budget / n,
        }
    }

    fn shard(&self, chunk: usize) -> MutexGuard<'_, Shard> {
        // A panic while holding the lock cannot leave the map inconsistent in a way that
        // matters for a cache: recover the guard.
        self.shards[chunk % self.shards.len()]
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn get(&self, chunk: usize) -> Option<Arc<ChunkData>> {
        let mut s = self.shard(chunk);
        s.tick += 1;
        let tick = s.tick;
        let (data, old) = {
            let e = s.entries.get_mut(&chunk)?;
            let old = e.1;
            e.1 = tick;
            (e.0.clone(), old)
        };
        s.order.remove(&old);
        s.order.insert(tick, chunk);
        Some(data)
    }

    /// Inserts a decoded chunk, evicting the least recently used ones beyond the budget.
    /// A chunk larger than a shard's budget is not kept.
    pub(crate) fn insert(&self, chunk: usize, data: Arc<ChunkData>) {
        let bytes = data.heap_bytes();
        if bytes > self.shard_budget {
            return;
        }
        let mut s = self.shard(chunk);
        s.tick += 1;
        let tick = s.tick;
        if let Some((_, old, b)) = s.entries.insert(chunk, (data, tick, bytes)) {
            s.order.remove(&old);
            s.bytes -= b;
        }
        s.order.insert(tick, chunk);
        s.bytes += bytes;
        while s.bytes > self.shard_budget {
            let Some((_, victim)) = s.order.pop_first() else {
                break;
            };
            if let Some((_, _, b)) = s.entries.remove(&victim) {
                s.bytes -= b;
            }
        }
    }

    /// Bytes currently held.
    pub(crate) fn bytes(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).bytes)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dtype::{IndexVec, ValueVec};

    fn chunk(n: usize) -> Arc<ChunkData> {
        Arc::new(ChunkData {
            row_start: 0,
            row_end: 1,
            rows: None,
            offsets: IndexVec::U32(vec![0, n as u32]),
            indices: IndexVec::U32((0..n as u32).collect()),
            values: ValueVec::F32(vec![1.0; n]),
        })
    }

    #[test]
    fn a_small_budget_still_caches_and_stays_within_budget() {
        // 64 KiB budget, 8 KiB chunks: once split sixteen ways this cached nothing.
        let cache = ChunkCache::new(64 << 10);
        for c in 0..20 {
            cache.insert(c, chunk(1000));
            assert!(cache.bytes() <= 64 << 10);
        }
        assert!(cache.get(19).is_some(), "the most recent chunk is kept");
        assert!(cache.get(0).is_none(), "the oldest chunks are evicted");
    }
}
