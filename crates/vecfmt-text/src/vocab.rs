//! Tokens, their normal form, vocabulary counting, and vocabulary files.

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::fx::FxMap;
use crate::pool::{run_pool_until, Counters};
use crate::progress::{with_progress, Pass};
use crate::{total_size, Checkpoint, CooccurOptions, Error, Input, Result, Shard};

/// Whitespace-separated tokens of a line.
///
/// ```
/// let t: Vec<&[u8]> = vecfmt_text::tokens(b" the\tcat  sat ").collect();
/// assert_eq!(t, [&b"the"[..], b"cat", b"sat"]);
/// ```
#[inline]
pub fn tokens(line: &[u8]) -> impl Iterator<Item = &[u8]> {
    line.split(|c| c.is_ascii_whitespace()).filter(|t| !t.is_empty())
}

/// The token as counted: lowercased when asked; `None` when it is already in that form.
///
/// ```
/// use vecfmt_text::normalise;
/// assert_eq!(normalise(b"Cat", true).as_deref(), Some(&b"cat"[..]));
/// assert_eq!(normalise(b"cat", true), None);
/// assert_eq!(normalise("ÉTÉ".as_bytes(), true).as_deref(), Some("été".as_bytes()));
/// assert_eq!(normalise(b"Cat", false), None);
/// ```
pub fn normalise(t: &[u8], lowercase: bool) -> Option<Vec<u8>> {
    if !lowercase {
        return None;
    }
    if t.is_ascii() {
        return t.iter().any(u8::is_ascii_uppercase).then(|| t.to_ascii_lowercase());
    }
    match std::str::from_utf8(t) {
        Ok(s) => {
            let l = s.to_lowercase();
            (l.as_bytes() != t).then(|| l.into_bytes())
        }
        Err(_) => t.iter().any(u8::is_ascii_uppercase).then(|| t.to_ascii_lowercase()),
    }
}

/// A vocabulary: words with their counts, most frequent first (ties in byte order).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Vocab {
    /// Words and counts; the counts are 0 for a vocabulary read from a file.
    pub words: Vec<(String, u64)>,
    /// Tokens that were not valid UTF-8, counted by their lossy decoding.
    pub invalid_utf8_tokens: u64,
}

impl Vocab {
    /// Words in the vocabulary.
    pub fn len(&self) -> usize {
        self.words.len()
    }

    /// Whether the vocabulary holds no word.
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }
}

struct CountWorker {
    counts: FxMap<WordKey, u64>,
}

/// Bytes of a word kept in the hash table's own bucket.
const INLINE_WORD: usize = 22;

/// A counted word, as the counting table keys it: a word of up to [`INLINE_WORD`] bytes (on
/// C1, nearly all of them) sits in the table's bucket, so that a lookup compares it there
/// instead of following a pointer to it, a second cache miss per token of a table of
/// millions of words. Hashes and compares as its bytes.
#[derive(Debug, Clone)]
enum WordKey {
    Inline(u8, [u8; INLINE_WORD]),
    Heap(Box<[u8]>),
}

impl WordKey {
    fn new(b: &[u8]) -> WordKey {
        if b.len() <= INLINE_WORD {
            let mut a = [0u8; INLINE_WORD];
            a[..b.len()].copy_from_slice(b);
            WordKey::Inline(b.len() as u8, a)
        } else {
            WordKey::Heap(b.into())
        }
    }

    fn as_bytes(&self) -> &[u8] {
        match self {
            WordKey::Inline(n, a) => &a[..*n as usize],
            WordKey::Heap(b) => b,
        }
    }

    fn into_vec(self) -> Vec<u8> {
        match self {
            WordKey::Inline(n, a) => a[..n as usize].to_vec(),
            WordKey::Heap(b) => b.into_vec(),
        }
    }
}

impl std::borrow::Borrow<[u8]> for WordKey {
    fn borrow(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl PartialEq for WordKey {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for WordKey {}

impl std::hash::Hash for WordKey {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        // As `[u8]` hashes: the table looks words up by their bytes.
        self.as_bytes().hash(h)
    }
}

/// Counts the tokens of `inputs` (normalised as `opts` says), keeps the words seen at least
/// `opts`' min-count times and, of those, its max-vocab most frequent. Reads every input
/// once; streams can be counted, but then cannot be read again for the pairs. Reads the
/// whole input even when `opts` names a shard, since every shard's pairs pass needs the same
/// vocabulary; [`count_vocab_part`](crate::count_vocab_part) counts a shard's words alone.
///
/// ```
/// use vecfmt_text::{count_vocab, CooccurOptions, Input};
/// let corpus = Input::reader("corpus", std::io::Cursor::new(b"the cat\nThe dog\n".to_vec()));
/// let v = count_vocab(&[corpus], &CooccurOptions::new().lowercase(true).min_count(2))?;
/// assert_eq!(v.words, [("the".to_string(), 2)]);
/// # Ok::<(), vecfmt_text::Error>(())
/// ```
pub fn count_vocab(inputs: &[Input], opts: &CooccurOptions) -> Result<Vocab> {
    let (words, invalid) = count_words(inputs, None, opts)?;
    Ok(Vocab {
        words: rank(words, opts.min_count, opts.max_vocab),
        invalid_utf8_tokens: invalid,
    })
}

/// Every word of `shard` of the inputs (all of them without one) with its count, normalised
/// as `opts` says, and the number of tokens that were not valid UTF-8. The shard's lines are
/// those of the pairs pass ([`crate::pool::read_blocks`]), so the shards' counts sum to the
/// whole input's.
pub(crate) fn count_words(
    inputs: &[Input],
    shard: Option<Shard>,
    opts: &CooccurOptions,
) -> Result<(FxMap<String, u64>, u64)> {
    let counters = Counters::default();
    let invalid = AtomicU64::new(0);
    let global: Mutex<FxMap<WordKey, u64>> = Mutex::new(FxMap::default());
    let toks = AtomicU64::new(0);
    let progress = &*opts.progress.0;
    with_progress(
        progress,
        Pass::Vocab,
        total_size(inputs),
        &counters,
        None,
        &toks,
        || {
            run_pool_until(
                inputs,
                shard,
                &Default::default(),
                opts.thread_count(),
                Checkpoint::Never,
                &counters,
                &opts.cancel,
                || CountWorker {
                    counts: FxMap::default(),
                },
                |w, b| {
                    let mut n = 0;
                    for t in tokens(&b.data) {
                        n += 1;
                        let norm = normalise(t, opts.lowercase);
                        let t = norm.as_deref().unwrap_or(t);
                        match w.counts.get_mut(t) {
                            Some(c) => *c += 1,
                            None => {
                                w.counts.insert(WordKey::new(t), 1);
                            }
                        }
                    }
                    toks.fetch_add(n, Ordering::Relaxed);
                    Ok(())
                },
                |w| {
                    let local = std::mem::take(&mut w.counts);
                    let mut g = global.lock().expect("vocab lock");
                    if g.is_empty() {
                        *g = local;
                    } else {
                        for (k, v) in local {
                            *g.entry(k).or_insert(0) += v;
                        }
                    }
                    Ok(())
                },
                |_| Ok(()),
            )
        },
    )?;
    // Labels are strings: invalid UTF-8 is decoded lossily, and tokens that decode to the
    // same string are counted as one word.
    let mut words: FxMap<String, u64> = FxMap::default();
    for (k, v) in global.into_inner().expect("vocab lock") {
        let s = match String::from_utf8(k.into_vec()) {
            Ok(s) => s,
            Err(e) => {
                invalid.fetch_add(v, Ordering::Relaxed);
                String::from_utf8_lossy(e.as_bytes()).into_owned()
            }
        };
        *words.entry(s).or_insert(0) += v;
    }
    Ok((words, invalid.into_inner()))
}

/// The vocabulary's order and cut: words seen fewer than `min_count` times dropped, the
/// rest by count, most frequent first, ties in byte order of the word (a total order: the
/// words are unique), then the first `max_vocab` kept. The single pass and
/// [`crate::vocab_merge`] both cut here, so that their ties fall the same way.
pub(crate) fn rank(
    words: impl IntoIterator<Item = (String, u64)>,
    min_count: u64,
    max_vocab: Option<usize>,
) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = words.into_iter().filter(|(_, c)| *c >= min_count).collect();
    v.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    if let Some(m) = max_vocab {
        v.truncate(m);
    }
    v
}

/// Reads a vocabulary file: one label per line, optionally followed by whitespace and a
/// count (ignored). Labels must be unique.
///
/// ```
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("vocab.txt");
/// std::fs::write(&path, "the\t10\ncat 3\ndog\n")?;
/// assert_eq!(vecfmt_text::read_vocab(&path)?, ["the", "cat", "dog"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn read_vocab(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read(path).map_err(Error::io(path.display().to_string(), "cannot read"))?;
    let text = String::from_utf8(text).map_err(|e| Error::VocabNotUtf8 {
        path: path.to_owned(),
        offset: e.utf8_error().valid_up_to() as u64,
    })?;
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (i, line) in text.lines().enumerate() {
        let word = line.split(['\t', ' ']).next().unwrap_or("");
        if word.is_empty() {
            return Err(Error::VocabEmptyLabel {
                path: path.to_owned(),
                line: i as u64 + 1,
            });
        }
        if !seen.insert(word.to_owned()) {
            return Err(Error::VocabDuplicate {
                path: path.to_owned(),
                line: i as u64 + 1,
                label: word.to_owned(),
            });
        }
        out.push(word.to_owned());
    }
    Ok(out)
}

/// Writes a vocabulary file, `word<TAB>count` per line, in the order given; [`read_vocab`]
/// reads it back.
///
/// ```
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("vocab.txt");
/// vecfmt_text::write_vocab(&path, &[("the".into(), 10), ("cat".into(), 3)])?;
/// assert_eq!(std::fs::read_to_string(&path)?, "the\t10\ncat\t3\n");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn write_vocab(path: &Path, words: &[(String, u64)]) -> Result<()> {
    let name = || path.display().to_string();
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).map_err(Error::io(name(), "cannot create"))?);
    write_words(&mut f, words)
        .and_then(|()| f.flush())
        .map_err(Error::io(name(), "write error"))?;
    Ok(())
}

/// The lines of a vocabulary file: `word<TAB>count`.
pub(crate) fn write_words(f: &mut impl Write, words: &[(String, u64)]) -> std::io::Result<()> {
    for (w, c) in words {
        writeln!(f, "{w}\t{c}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vocab_files_round_trip_and_bad_ones_name_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.txt");
        let words = vec![("naïve".to_string(), 5), ("cat".to_string(), 2)];
        write_vocab(&path, &words).unwrap();
        assert_eq!(read_vocab(&path).unwrap(), ["naïve", "cat"]);
        std::fs::write(&path, "a\n\nb\n").unwrap();
        assert!(matches!(read_vocab(&path), Err(Error::VocabEmptyLabel { line: 2, .. })));
        std::fs::write(&path, "a 1\nb 2\na 3\n").unwrap();
        let e = read_vocab(&path).unwrap_err();
        assert!(
            matches!(&e, Error::VocabDuplicate { line: 3, label, .. } if label == "a"),
            "{e}"
        );
        std::fs::write(&path, b"ab\n\xffc\n").unwrap();
        assert!(matches!(read_vocab(&path), Err(Error::VocabNotUtf8 { offset: 3, .. })));
        let missing = dir.path().join("missing.txt");
        assert!(matches!(read_vocab(&missing), Err(Error::Io { op: "cannot read", .. })));
    }

    #[test]
    fn counting_sorts_by_count_then_word_and_decodes_invalid_utf8_lossily() {
        let text = b"b a b\nc b a\n\xff \xfe\n".to_vec();
        let v = count_vocab(
            &[Input::reader("t", std::io::Cursor::new(text))],
            &CooccurOptions::new(),
        )
        .unwrap();
        assert_eq!(
            v.words,
            [
                ("b".into(), 3),
                ("a".into(), 2),
                ("\u{fffd}".into(), 2),
                ("c".into(), 1)
            ]
        );
        assert_eq!(v.invalid_utf8_tokens, 2);
        let text = b"b a b\nc b a\n".to_vec();
        let opts = CooccurOptions::new().min_count(2).max_vocab(1);
        let v = count_vocab(&[Input::reader("t", std::io::Cursor::new(text))], &opts).unwrap();
        assert_eq!(v.words, [("b".into(), 3)]);
    }
}
