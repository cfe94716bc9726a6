//! The eviction policy as pure scoring: given what each part holds (sizes and counters),
//! [`plan`] says in which order to drop decoded copies and free pending sums when memory
//! runs out. It reads no lock and does no I/O; `flush.rs` applies the plan, and stops each
//! phase as soon as memory is back under its target (other producers keep adding
//! meanwhile, so the plan lists every candidate rather than guessing where it will stop).

use super::options::EvictionPolicy;

/// What the policy knows of one part when a round of eviction starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Candidate {
    /// The part's index in the parts list.
    pub(super) part: usize,
    /// Bytes of pending sums in memory.
    pub(super) pending: usize,
    /// Bytes of the decoded copy of its chunks (0 without one).
    pub(super) cached: usize,
    /// Its chunks' entries, sized as decoded entries: what a merge reads and rewrites.
    pub(super) disk: u64,
    /// Freeing it spills a run rather than merging into the chunks (not
    /// [`Part::merge_due`](super::part::Part::merge_due)).
    pub(super) spills: bool,
    /// Updates routed to it since the rounds before decayed it.
    pub(super) heat: u64,
    /// The clock tick of its last update.
    pub(super) last_use: u64,
}

/// A part whose pending sums the plan frees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Free {
    pub(super) part: usize,
    /// Its pending bytes when planned (a spill batch is written before it would overflow).
    pub(super) pending: usize,
    /// It is hot: a merge may keep a decoded copy of its new chunks, while the copies stay
    /// under their cap with `cache_size` more bytes.
    pub(super) hot: bool,
    pub(super) cache_size: i64,
}

/// What to do, phase by phase, until memory is under the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Plan {
    /// Decoded copies to drop first, coldest first: that frees memory without I/O.
    pub(super) drop_cold: Vec<usize>,
    /// Parts whose pending sums to free, in this order.
    pub(super) free: Vec<Free>,
    /// Spill the parts of `free` together, one extent per batch (else each alone, dropping
    /// its decoded copy).
    pub(super) batched: bool,
    /// Decoded copies to drop as a last resort (a merge may have made some).
    pub(super) drop_rest: Vec<usize>,
}

/// The heat above which a part is hot: the mean heat of the parts that have any.
pub(super) fn heat_threshold(cands: &[Candidate]) -> u64 {
    let (mut heat_sum, mut hot_n) = (0u64, 0u64);
    for c in cands {
        if c.heat > 0 {
            heat_sum += c.heat;
            hot_n += 1;
        }
    }
    heat_sum / hot_n.max(1)
}

/// The order in which `policy` frees memory among `cands`, parts of heat `threshold` or
/// more being hot ([`heat_threshold`]).
pub(super) fn plan(policy: EvictionPolicy, cands: &[Candidate], threshold: u64) -> Plan {
    match policy {
        EvictionPolicy::Lru => {
            let mut by_age: Vec<&Candidate> = cands.iter().collect();
            by_age.sort_by_key(|c| c.last_use);
            Plan {
                drop_cold: Vec::new(),
                free: by_age
                    .into_iter()
                    .filter(|c| c.pending > 0 || c.cached > 0)
                    .map(|c| Free {
                        part: c.part,
                        pending: c.pending,
                        hot: false,
                        cache_size: 0,
                    })
                    .collect(),
                batched: false,
                drop_rest: Vec::new(),
            }
        }
        EvictionPolicy::Scored => {
            // Cold decoded copies go first: dropping them costs no I/O now.
            let mut cold: Vec<&Candidate> = cands.iter().filter(|c| c.cached > 0 && c.heat < threshold).collect();
            cold.sort_by_key(|c| c.heat);
            // Then the merges that free the most memory per byte rewritten.
            let score = |c: &Candidate| {
                let cost = match (c.spills, c.cached > 0) {
                    (true, _) => 0,
                    (false, true) => c.disk,
                    (false, false) => 2 * c.disk,
                };
                c.pending as f64 / (c.pending as u64 + cost + 4096) as f64
            };
            let mut flush: Vec<&Candidate> = cands.iter().filter(|c| c.pending > 0).collect();
            flush.sort_by(|a, b| score(b).total_cmp(&score(a)));
            Plan {
                drop_cold: cold.into_iter().map(|c| c.part).collect(),
                free: flush
                    .into_iter()
                    .map(|c| Free {
                        part: c.part,
                        pending: c.pending,
                        hot: c.heat >= threshold && c.heat > 0,
                        cache_size: c.disk as i64 + c.pending as i64,
                    })
                    .collect(),
                batched: true,
                // Last resort: every decoded copy.
                drop_rest: cands.iter().map(|c| c.part).collect(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(
        part: usize,
        pending: usize,
        cached: usize,
        disk: u64,
        spills: bool,
        heat: u64,
        last_use: u64,
    ) -> Candidate {
        Candidate {
            part,
            pending,
            cached,
            disk,
            spills,
            heat,
            last_use,
        }
    }

    #[test]
    fn the_threshold_is_the_mean_heat_of_the_parts_that_have_any() {
        let cands = [
            cand(0, 0, 0, 0, true, 0, 0),
            cand(1, 0, 0, 0, true, 10, 0),
            cand(2, 0, 0, 0, true, 30, 0),
        ];
        assert_eq!(heat_threshold(&cands), 20);
        assert_eq!(heat_threshold(&[]), 0);
        assert_eq!(heat_threshold(&[cand(0, 0, 0, 0, true, 0, 0)]), 0);
    }

    #[test]
    fn scored_drops_cold_copies_first_coldest_first() {
        let cands = [
            cand(0, 0, 1000, 1000, true, 5, 0),
            cand(1, 0, 1000, 1000, true, 1, 0),
            // Hot: its copy stays until the last resort.
            cand(2, 0, 1000, 1000, true, 50, 0),
            // No copy to drop.
            cand(3, 100, 0, 1000, true, 0, 0),
        ];
        let p = plan(EvictionPolicy::Scored, &cands, heat_threshold(&cands));
        assert_eq!(p.drop_cold, vec![1, 0]);
        assert_eq!(p.drop_rest, vec![0, 1, 2, 3]);
        assert!(p.batched);
    }

    #[test]
    fn scored_frees_most_memory_per_byte_rewritten_first() {
        let cands = [
            // A merge into 1 MB of uncached chunks: rewrites twice its chunks (read + write).
            cand(0, 4096, 0, 1 << 20, false, 1, 0),
            // The same with a decoded copy: nothing to read back.
            cand(1, 4096, 10, 1 << 20, false, 1, 0),
            // A spill rewrites no chunk at all.
            cand(2, 4096, 0, 1 << 20, true, 1, 0),
            // Nothing pending: nothing to free.
            cand(3, 0, 10, 1 << 20, false, 1, 0),
            // A big spill frees more per byte written than a small one.
            cand(4, 1 << 20, 0, 0, true, 1, 0),
        ];
        let p = plan(EvictionPolicy::Scored, &cands, 1);
        let order: Vec<usize> = p.free.iter().map(|f| f.part).collect();
        assert_eq!(order, vec![4, 2, 1, 0]);
        assert_eq!(p.free[1].pending, 4096);
        assert_eq!(p.free[3].cache_size, (1 << 20) + 4096);
    }

    #[test]
    fn scored_marks_parts_at_or_above_the_threshold_hot() {
        let cands = [
            cand(0, 100, 0, 0, true, 9, 0),
            cand(1, 100, 0, 0, true, 10, 0),
            cand(2, 100, 0, 0, true, 0, 0),
        ];
        let p = plan(EvictionPolicy::Scored, &cands, 10);
        let hot: Vec<(usize, bool)> = p.free.iter().map(|f| (f.part, f.hot)).collect();
        // Equal scores keep their order (a stable sort).
        assert_eq!(hot, vec![(0, false), (1, true), (2, false)]);
        // A threshold of 0 makes no part without heat hot.
        let p = plan(EvictionPolicy::Scored, &cands, 0);
        assert!(!p.free[2].hot && p.free[0].hot);
    }

    #[test]
    fn lru_frees_the_least_recently_used_parts_alone_and_keeps_no_copies() {
        let cands = [
            cand(0, 100, 0, 0, true, 99, 30),
            cand(1, 0, 0, 0, true, 0, 10),
            cand(2, 0, 500, 0, true, 0, 20),
            cand(3, 100, 500, 0, false, 99, 5),
        ];
        let p = plan(EvictionPolicy::Lru, &cands, heat_threshold(&cands));
        let order: Vec<usize> = p.free.iter().map(|f| f.part).collect();
        // Part 1 holds nothing to free.
        assert_eq!(order, vec![3, 2, 0]);
        assert!(p.free.iter().all(|f| !f.hot));
        assert!(!p.batched && p.drop_cold.is_empty() && p.drop_rest.is_empty());
    }
}
