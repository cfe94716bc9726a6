//! The registry of expected outcomes, `testdata/hostile/expectations.tsv`: one line per case
//! family, `family<TAB>expect<TAB>why`. A family the corpus produces without a line, or a
//! line no family matches, fails the hostile suite (after arrow-rs
//! `tests/arrow_reader/bad_data.rs`).
//!
//! Expectations:
//! - `error`: every case is refused with an error that names the file;
//! - `same`: every case reads, with exactly the seed's content;
//! - `error|same`: each case is refused (naming the file) or reads as the seed;
//! - `error|ok`: each case is refused (naming the file) or reads completely, possibly with a
//!   different content (a flipped digit in a text file, a value byte no checksum covers, an
//!   older commit that a damaged newer one falls back to).
//!
//! In every family a panic, an abort, a crash, or an error that does not name the file fails.

use std::collections::BTreeMap;
use std::path::PathBuf;

/// What a family must give.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    Error,
    Same,
    ErrorOrSame,
    ErrorOrOk,
}

impl Expect {
    fn parse(s: &str) -> Option<Expect> {
        Some(match s {
            "error" => Expect::Error,
            "same" => Expect::Same,
            "error|same" => Expect::ErrorOrSame,
            "error|ok" => Expect::ErrorOrOk,
            _ => return None,
        })
    }

    /// Whether an outcome meets the expectation.
    pub fn allows(self, o: Outcome) -> bool {
        match o {
            Outcome::Error => self != Expect::Same,
            Outcome::Same => self != Expect::Error,
            Outcome::Changed => self == Expect::ErrorOrOk,
        }
    }
}

/// What a case gave (panics, crashes and unnamed errors are failures before this).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    /// A clean error naming the file.
    Error,
    /// Read completely, with the seed's content.
    Same,
    /// Read completely, with another content.
    Changed,
}

/// The registry file.
pub fn path() -> PathBuf {
    crate::repo_root().join("testdata/hostile/expectations.tsv")
}

/// Every family's expectation.
pub fn load() -> BTreeMap<String, Expect> {
    let p = path();
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()));
    let mut out = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let mut f = line.split('\t');
        let (Some(family), Some(expect)) = (f.next(), f.next()) else {
            panic!("{}:{}: expected family<TAB>expect<TAB>why", p.display(), i + 1);
        };
        let e = Expect::parse(expect.trim())
            .unwrap_or_else(|| panic!("{}:{}: unknown expectation {expect:?}", p.display(), i + 1));
        if out.insert(family.to_string(), e).is_some() {
            panic!("{}:{}: family {family} listed twice", p.display(), i + 1);
        }
    }
    out
}

/// The families of `produced` that have no expectation, and the registry lines of `reader`
/// (by prefix `reader:`) that match no produced family.
pub fn mismatches(
    registry: &BTreeMap<String, Expect>,
    reader: &str,
    produced: &[String],
) -> (Vec<String>, Vec<String>) {
    let missing = produced
        .iter()
        .filter(|f| !registry.contains_key(*f))
        .cloned()
        .collect();
    let prefix = format!("{reader}:");
    let stale = registry
        .keys()
        .filter(|k| k.starts_with(&prefix) && !produced.contains(k))
        .cloned()
        .collect();
    (missing, stale)
}
