//! The distributed vocabulary: each shard of a corpus counts its own words into a part
//! ([`vocab_part`]), and the parts are summed and cut once ([`vocab_merge`]) into the
//! vocabulary a single pass ([`count_vocab`](crate::count_vocab)) gives: the same words,
//! counts and order.
//!
//! A part keeps every word of its shard with its count: cutting by min-count or max-vocab per
//! shard would lose the counts of words that pass the cut only in the sum. Parts are
//! vocabulary files as [`write_vocab`](crate::write_vocab) writes them (`label<TAB>count`
//! per line), so [`read_vocab`](crate::read_vocab) reads one, and
//! [`read_vocab_counts`] reads its counts too.

use std::collections::HashSet;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::fx::FxMap;
use crate::vocab::{count_words, rank, write_words};
use crate::{CooccurOptions, Error, Input, Result, Shard, Vocab};

/// Counts the words of `opts`' shard of the inputs (all of them without one), every word
/// kept with its count, in the vocabulary's order (count descending, ties in byte order).
/// `opts`' min-count and max-vocab are not applied: [`vocab_merge`] applies them to the sum.
/// A shard has the lines the pairs pass of [`cooccur`](crate::cooccur) gives it (a byte
/// range of plain files cut at line starts; every N-th block of lines when an input is
/// compressed or a stream), so the shards' counts sum to the whole input's. Streams can be
/// counted: this is the only pass.
///
/// ```
/// use vecfmt_text::{count_vocab_part, CooccurOptions, Input};
/// let corpus = Input::reader("corpus", std::io::Cursor::new(b"the cat\nThe dog\n".to_vec()));
/// // min_count(2) would keep only "the"; a part keeps every word.
/// let v = count_vocab_part(&[corpus], &CooccurOptions::new().lowercase(true).min_count(2))?;
/// assert_eq!(v.words, [("the".to_string(), 2), ("cat".to_string(), 1), ("dog".to_string(), 1)]);
/// # Ok::<(), vecfmt_text::Error>(())
/// ```
pub fn count_vocab_part(inputs: &[Input], opts: &CooccurOptions) -> Result<Vocab> {
    let (words, invalid) = count_words(inputs, opts.shard, opts)?;
    Ok(Vocab {
        words: rank(words, 0, None),
        invalid_utf8_tokens: invalid,
    })
}

/// What [`vocab_part`] did.
#[non_exhaustive]
#[derive(Debug, Clone)]
pub struct VocabPartSummary {
    pub output: PathBuf,
    /// The shard counted; `None` for the whole input.
    pub shard: Option<Shard>,
    /// Distinct words in the part.
    pub words: usize,
    /// Tokens counted: the sum of the part's counts.
    pub tokens: u64,
    /// Tokens that were not valid UTF-8, counted by their lossy decoding.
    pub invalid_utf8_tokens: u64,
}

/// Counts the words of `opts`' shard of the inputs ([`count_vocab_part`]) and writes them to
/// `output`, one `label<TAB>count` line per word, for [`vocab_merge`]. The file appears
/// complete or not at all (written to a temporary file, then renamed), and replaces an
/// existing `output`, as a saved vocabulary does: a task run again writes the same part.
///
/// ```
/// use vecfmt_text::{vocab_part, CooccurOptions, Input, Shard};
/// let dir = tempfile::tempdir()?;
/// let corpus = dir.path().join("corpus.txt");
/// std::fs::write(&corpus, "the cat\nthe dog\n")?;
/// let part = dir.path().join("part2.tsv");
/// let opts = CooccurOptions::new().shard(Shard::new(2, 2)?);
/// let s = vocab_part(&[Input::path(&corpus)], &part, &opts)?;
/// assert_eq!((s.words, s.tokens), (2, 2));
/// assert_eq!(std::fs::read_to_string(&part)?, "dog\t1\nthe\t1\n"); // the second line only
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn vocab_part(inputs: &[Input], output: impl AsRef<Path>, opts: &CooccurOptions) -> Result<VocabPartSummary> {
    let output = output.as_ref();
    let v = count_vocab_part(inputs, opts)?;
    publish_vocab(output, &v.words)?;
    opts.progress.0.vocab_saved(output, v.len());
    Ok(VocabPartSummary {
        output: output.to_owned(),
        shard: opts.shard,
        words: v.len(),
        tokens: v.words.iter().map(|(_, c)| c).sum(),
        invalid_utf8_tokens: v.invalid_utf8_tokens,
    })
}

/// Reads a vocabulary file with its counts: per line a label, a tab (or spaces) and a count,
/// as [`write_vocab`](crate::write_vocab) and [`vocab_part`] write it. Labels must be unique.
///
/// ```
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("vocab.tsv");
/// std::fs::write(&path, "the\t10\ncat 3\n")?;
/// assert_eq!(vecfmt_text::read_vocab_counts(&path)?, [("the".to_string(), 10), ("cat".to_string(), 3)]);
/// std::fs::write(&path, "the\t10\ncat\n")?;
/// let e = vecfmt_text::read_vocab_counts(&path).unwrap_err();
/// assert!(matches!(e, vecfmt_text::Error::VocabBadCount { line: 2, .. }), "{e}");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn read_vocab_counts(path: &Path) -> Result<Vec<(String, u64)>> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for_each_count(path, |line, label, count| {
        if !seen.insert(label.to_owned()) {
            return Err(Error::VocabDuplicate {
                path: path.to_owned(),
                line,
                label: label.to_owned(),
            });
        }
        out.push((label.to_owned(), count));
        Ok(())
    })?;
    Ok(out)
}

/// Options of [`vocab_merge`]: the cut applied once to the summed counts.
///
/// ```
/// let opts = vecfmt_text::VocabMergeOptions::new().min_count(5).max_vocab(400_000).replace(true);
/// # let _ = opts;
/// ```
#[derive(Debug, Clone)]
pub struct VocabMergeOptions {
    min_count: u64,
    max_vocab: Option<usize>,
    replace: bool,
}

impl Default for VocabMergeOptions {
    fn default() -> Self {
        VocabMergeOptions::new()
    }
}

impl VocabMergeOptions {
    /// Min-count 1, every word, an existing output refused.
    pub fn new() -> Self {
        VocabMergeOptions {
            min_count: 1,
            max_vocab: None,
            replace: false,
        }
    }
    /// Drop words seen fewer than `k` times in all the parts together.
    pub fn min_count(mut self, k: u64) -> Self {
        self.min_count = k;
        self
    }
    /// Keep only the `v` most frequent words (ties in byte order, as a single pass).
    pub fn max_vocab(mut self, v: usize) -> Self {
        self.max_vocab = Some(v);
        self
    }
    /// Replace the output if it exists (otherwise an existing output is an error).
    pub fn replace(mut self, yes: bool) -> Self {
        self.replace = yes;
        self
    }
}

/// What [`vocab_merge`] did.
#[non_exhaustive]
#[derive(Debug, Clone)]
pub struct VocabMergeSummary {
    pub output: PathBuf,
    /// Parts read.
    pub parts: usize,
    /// Words written: those that passed min-count and max-vocab.
    pub words: usize,
    /// Distinct words in all the parts, before the cut.
    pub distinct_words: usize,
    /// Tokens the parts counted: the sum of their counts.
    pub tokens: u64,
}

/// Sums the counts of vocabulary parts ([`vocab_part`], one per shard), then keeps the words
/// seen at least min-count times and, of those, the max-vocab most frequent, ordered and
/// tie-broken as a single pass orders them (count descending, then byte order of the word),
/// and writes them to `output` as `label<TAB>count` lines. The result equals
/// [`count_vocab`](crate::count_vocab) of the whole input with the same min-count and
/// max-vocab. The output appears complete or not at all. Errors name the part and line:
/// a missing or bad count, a label given twice in a part, a part given twice.
///
/// ```
/// use vecfmt_text::{count_vocab, vocab_merge, vocab_part, CooccurOptions, Input, Shard, VocabMergeOptions};
/// let dir = tempfile::tempdir()?;
/// let corpus = dir.path().join("corpus.txt");
/// std::fs::write(&corpus, "the cat sat\nthe dog sat\nthe cat ran\n")?;
/// let inputs = [Input::path(&corpus)];
/// let mut parts = Vec::new();
/// for k in 1..=3 {
///     let part = dir.path().join(format!("part{k}.tsv"));
///     vocab_part(&inputs, &part, &CooccurOptions::new().shard(Shard::new(k, 3)?))?;
///     parts.push(part);
/// }
/// let out = dir.path().join("vocab.tsv");
/// let s = vocab_merge(&parts, &out, &VocabMergeOptions::new().min_count(2))?;
/// assert_eq!((s.parts, s.words, s.distinct_words, s.tokens), (3, 3, 5, 9));
/// assert_eq!(std::fs::read_to_string(&out)?, "the\t3\ncat\t2\nsat\t2\n");
/// let single = count_vocab(&inputs, &CooccurOptions::new().min_count(2))?;
/// assert_eq!(vecfmt_text::read_vocab_counts(&out)?, single.words);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn vocab_merge<P: AsRef<Path>>(
    parts: &[P],
    output: impl AsRef<Path>,
    opts: &VocabMergeOptions,
) -> Result<VocabMergeSummary> {
    let output = output.as_ref();
    if parts.is_empty() {
        return Err(Error::NoVocabParts);
    }
    // Refused before reading the parts; an output that is also a part is read before the
    // new one is renamed over it.
    if !opts.replace && output.exists() {
        return Err(Error::OutputExists {
            path: output.to_owned(),
        });
    }
    let mut seen = HashSet::new();
    for p in parts {
        let p = p.as_ref();
        // A part that cannot be resolved fails below, where it is read.
        if !seen.insert(std::fs::canonicalize(p).unwrap_or_else(|_| p.to_owned())) {
            return Err(Error::VocabPartTwice { path: p.to_owned() });
        }
    }
    // Each word's sum and the last part that added to it (to find a label twice in a part).
    let mut sums: FxMap<String, (u64, usize)> = FxMap::default();
    let mut tokens = 0u64;
    for (k, part) in parts.iter().enumerate() {
        let part = part.as_ref();
        for_each_count(part, |line, label, count| {
            match sums.get_mut(label) {
                Some((sum, last)) => {
                    if *last == k {
                        return Err(Error::VocabDuplicate {
                            path: part.to_owned(),
                            line,
                            label: label.to_owned(),
                        });
                    }
                    *sum = sum.checked_add(count).ok_or_else(|| Error::VocabCountOverflow {
                        path: part.to_owned(),
                        line,
                        label: label.to_owned(),
                    })?;
                    *last = k;
                }
                None => {
                    sums.insert(label.to_owned(), (count, k));
                }
            }
            tokens = tokens.saturating_add(count);
            Ok(())
        })?;
    }
    let distinct_words = sums.len();
    let words = rank(
        sums.into_iter().map(|(w, (c, _))| (w, c)),
        opts.min_count,
        opts.max_vocab,
    );
    publish_vocab(output, &words)?;
    Ok(VocabMergeSummary {
        output: output.to_owned(),
        parts: parts.len(),
        words: words.len(),
        distinct_words,
        tokens,
    })
}

/// Calls `f` with the line number, label and count of each line of the vocabulary file at
/// `path`.
fn for_each_count(path: &Path, mut f: impl FnMut(u64, &str, u64) -> Result<()>) -> Result<()> {
    let text = std::fs::read(path).map_err(Error::io(path.display().to_string(), "cannot read"))?;
    let text = String::from_utf8(text).map_err(|e| Error::VocabNotUtf8 {
        path: path.to_owned(),
        offset: e.utf8_error().valid_up_to() as u64,
    })?;
    for (i, line) in text.lines().enumerate() {
        let line_no = i as u64 + 1;
        let (label, rest) = line.split_once(['\t', ' ']).unwrap_or((line, ""));
        if label.is_empty() {
            return Err(Error::VocabEmptyLabel {
                path: path.to_owned(),
                line: line_no,
            });
        }
        let count = rest.trim_matches([' ', '\t']);
        let count = count.parse::<u64>().map_err(|_| Error::VocabBadCount {
            path: path.to_owned(),
            line: line_no,
            text: count.to_owned(),
        })?;
        f(line_no, label, count)?;
    }
    Ok(())
}

/// Writes a vocabulary file as [`write_vocab`](crate::write_vocab) does, through a temporary
/// file renamed into place, so that a part or a merged vocabulary is complete or absent.
fn publish_vocab(path: &Path, words: &[(String, u64)]) -> Result<()> {
    let mut tmp = vecfmt::publish::temp_file_for(path)?;
    let mut f = BufWriter::new(tmp.as_file_mut());
    write_words(&mut f, words)
        .and_then(|()| f.flush())
        .map_err(Error::io(path.display().to_string(), "write error"))?;
    drop(f);
    vecfmt::publish::persist(tmp, path)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;
    use crate::{count_vocab, write_vocab};

    /// A corpus full of ties: word `w{i}` occurs `scale * (1 + i % 12)` times, with case
    /// variants, tokens that are not UTF-8 (two of which decode to the same lossy word, which
    /// also occurs as valid UTF-8), shuffled into lines of 1 to 14 tokens.
    fn corpus(scale: usize) -> Vec<u8> {
        let mut toks: Vec<Vec<u8>> = Vec::new();
        for i in 0..300 {
            toks.extend(std::iter::repeat_n(format!("w{i}").into_bytes(), scale * (1 + i % 12)));
        }
        let odd: [(&[u8], usize); 9] = [
            (b"Cat", 3),
            (b"CAT", 2),
            (b"cat", 4),
            (b"\xff", 2),
            (b"\xfe", 3),
            ("\u{fffd}".as_bytes(), 1),
            (b"caf\xe9", 5),
            ("ÉTÉ".as_bytes(), 2),
            ("été".as_bytes(), 3),
        ];
        for (t, n) in odd {
            toks.extend(std::iter::repeat_n(t.to_vec(), scale * n));
        }
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut rand = move |n: usize| {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((x >> 33) % n as u64) as usize
        };
        for i in (1..toks.len()).rev() {
            toks.swap(i, rand(i + 1));
        }
        let mut text = Vec::new();
        let mut rest = &toks[..];
        while !rest.is_empty() {
            let (line, tail) = rest.split_at((1 + rand(14)).min(rest.len()));
            for (j, t) in line.iter().enumerate() {
                if j > 0 {
                    text.push(if rand(5) == 0 { b'\t' } else { b' ' });
                }
                text.extend_from_slice(t);
            }
            text.push(b'\n');
            rest = tail;
        }
        text
    }

    /// Cuts `text` at line ends into `n` pieces of about equal size.
    fn pieces(text: &[u8], n: usize) -> Vec<&[u8]> {
        let mut out = Vec::new();
        let mut start = 0;
        for k in 1..=n {
            let mut end = text.len() * k / n;
            while end < text.len() && text[end - 1] != b'\n' {
                end += 1;
            }
            out.push(&text[start..end]);
            start = end;
        }
        out
    }

    /// For each number of shards, the parts merged equal the single pass (same words, counts
    /// and order, and the same file), for cuts that fall inside ties of min-count and of
    /// max-vocab; and the parts' counts and invalid tokens sum to the whole input's.
    /// `scale` is the corpus's.
    fn check(files: &[PathBuf], scale: u64, shard_counts: &[u64], lowercase: bool) {
        let dir = tempfile::tempdir().unwrap();
        let inputs = || files.iter().map(Input::path).collect::<Vec<_>>();
        let base = CooccurOptions::new().lowercase(lowercase).threads(3);
        let all = count_vocab(&inputs(), &base).unwrap();
        // Ties at each cut: words at min-count and just under; the last word kept by
        // max-vocab has the count of the first one dropped.
        let count_of = |i: usize| all.words[i].1;
        assert!(all.words.iter().any(|w| w.1 == 4 * scale) && all.words.iter().any(|w| w.1 == 5 * scale));
        let cut = 40;
        assert_eq!(count_of(cut - 1), count_of(cut));
        let above_min = all.words.iter().filter(|w| w.1 >= 5 * scale).count();
        assert_eq!(count_of(137 - 1), count_of(137));
        assert!(above_min > 137);
        let cuts = [
            (1, None),
            (5 * scale, None),
            (5 * scale, Some(cut)),
            (1, Some(137)),
            (2 * scale, Some(0)),
            (13 * scale, None),
        ];
        // The single pass, once per cut.
        let singles: Vec<(u64, Option<usize>, Vocab)> = cuts
            .iter()
            .map(|&(min, max)| {
                let mut opts = base.clone().min_count(min);
                if let Some(m) = max {
                    opts = opts.max_vocab(m);
                }
                (min, max, count_vocab(&inputs(), &opts).unwrap())
            })
            .collect();
        for n in shard_counts.iter().copied() {
            let mut parts = Vec::new();
            let mut invalid = 0;
            let mut tokens = 0;
            for k in 1..=n {
                let part = dir.path().join(format!("{n}-{k}.tsv"));
                let s = vocab_part(&inputs(), &part, &base.clone().shard(Shard::new(k, n).unwrap())).unwrap();
                assert_eq!(s.words, read_vocab_counts(&part).unwrap().len());
                invalid += s.invalid_utf8_tokens;
                tokens += s.tokens;
                parts.push(part);
            }
            assert_eq!(invalid, all.invalid_utf8_tokens, "{n} shards");
            assert_eq!(tokens, all.words.iter().map(|w| w.1).sum::<u64>(), "{n} shards");
            for (min, max, single) in &singles {
                let mut mopts = VocabMergeOptions::new().min_count(*min).replace(true);
                if let Some(m) = *max {
                    mopts = mopts.max_vocab(m);
                }
                let merged = dir.path().join("merged.tsv");
                let s = vocab_merge(&parts, &merged, &mopts).unwrap();
                let got = read_vocab_counts(&merged).unwrap();
                assert_eq!(got, single.words, "{n} shards, min-count {min}, max-vocab {max:?}");
                assert_eq!((s.words, s.distinct_words), (single.len(), all.len()));
                let reference = dir.path().join("single.tsv");
                write_vocab(&reference, &single.words).unwrap();
                assert_eq!(std::fs::read(&merged).unwrap(), std::fs::read(&reference).unwrap());
            }
        }
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n.to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn merged_parts_of_plain_files_equal_the_single_pass_for_1_to_8_shards() {
        let dir = tempfile::tempdir().unwrap();
        let text = corpus(1);
        let mut files = Vec::new();
        for (i, piece) in pieces(&text, 3).into_iter().enumerate() {
            let f = dir.path().join(format!("c{i}.txt"));
            // The last file ends without a newline.
            let piece = if i == 2 {
                piece.strip_suffix(b"\n").unwrap()
            } else {
                piece
            };
            std::fs::write(&f, piece).unwrap();
            files.push(f);
        }
        for lowercase in [false, true] {
            check(&files, 1, &[1, 2, 3, 4, 5, 6, 7, 8], lowercase);
        }
    }

    #[test]
    fn merged_parts_of_compressed_and_plain_files_equal_the_single_pass() {
        // Compressed inputs are sharded by blocks of lines (1 MiB): enough text for several.
        let dir = tempfile::tempdir().unwrap();
        let text = corpus(200);
        // The .gz input gets three fifths: more than a block.
        let fifths = pieces(&text, 5);
        let (gz_len, plain_len) = (fifths[..3].iter().map(|p| p.len()).sum::<usize>(), fifths[3].len());
        let p = [&text[..gz_len], fifths[3], &text[gz_len + plain_len..]];
        assert!(p[0].len() > crate::pool::BLOCK, "{}", p[0].len());
        let gz = dir.path().join("a.txt.gz");
        let mut e = flate2::write::GzEncoder::new(std::fs::File::create(&gz).unwrap(), flate2::Compression::fast());
        e.write_all(p[0]).unwrap();
        e.finish().unwrap();
        let plain = dir.path().join("b.txt");
        std::fs::write(&plain, p[1]).unwrap();
        let zst = dir.path().join("c.txt.zst");
        std::fs::write(&zst, zstd::encode_all(p[2], 1).unwrap()).unwrap();
        check(&[gz, plain, zst], 200, &[1, 3, 8], true);
    }

    #[test]
    fn a_shard_part_holds_every_word_of_its_lines_unfiltered() {
        let dir = tempfile::tempdir().unwrap();
        let corpus = dir.path().join("c.txt");
        std::fs::write(&corpus, "a b a\nc c c\nb d\n").unwrap();
        let opts = CooccurOptions::new().min_count(3).max_vocab(1);
        // Bytes 6..12 of 16: the line that starts at byte 6 is "c c c".
        let v = count_vocab_part(&[Input::path(&corpus)], &opts.clone().shard(Shard::new(2, 3).unwrap())).unwrap();
        assert_eq!(v.words, [("c".to_string(), 3)]);
        let v = count_vocab_part(&[Input::path(&corpus)], &opts).unwrap();
        let want = [("a", 2), ("b", 2), ("c", 3), ("d", 1)];
        let mut got = v.words.clone();
        got.sort();
        assert_eq!(got, want.map(|(w, c)| (w.to_string(), c)));
        assert_eq!(v.words[0], ("c".to_string(), 3));
        // A stream is counted in its one pass; an empty shard writes an empty part.
        let part = dir.path().join("p.tsv");
        let stream = Input::reader("s", std::io::Cursor::new(b"x y x\n".to_vec()));
        let s = vocab_part(&[stream], &part, &CooccurOptions::new()).unwrap();
        assert_eq!((s.words, s.tokens, s.shard), (2, 3, None));
        assert_eq!(std::fs::read_to_string(&part).unwrap(), "x\t2\ny\t1\n");
        std::fs::write(&corpus, "").unwrap();
        let s = vocab_part(&[Input::path(&corpus)], &part, &opts.shard(Shard::new(3, 3).unwrap())).unwrap();
        assert_eq!(s.words, 0);
        assert_eq!(std::fs::read(&part).unwrap(), b"");
    }

    #[test]
    fn bad_parts_are_errors_naming_the_part_and_line_and_write_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, out) = (
            dir.path().join("a.tsv"),
            dir.path().join("b.tsv"),
            dir.path().join("v.tsv"),
        );
        std::fs::write(&a, "the\t3\ncat\t1\n").unwrap();
        let merge = |b_text: &[u8]| {
            std::fs::write(&b, b_text).unwrap();
            vocab_merge(&[&a, &b], &out, &VocabMergeOptions::new())
        };
        for (text, line, want) in [
            (&b"cat\t1\ndog\n"[..], 2, ""),
            (b"cat\t1\ndog\t-2\n", 2, "-2"),
            (b"cat\t1.5\n", 1, "1.5"),
            (b"cat\t1 2\n", 1, "1 2"),
        ] {
            match merge(text) {
                Err(Error::VocabBadCount { path, line: l, text }) => {
                    assert_eq!((path, l, text.as_str()), (b.clone(), line, want))
                }
                other => panic!("{other:?}"),
            }
        }
        let e = merge(b"cat\t1\ndog\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "{}: line 2: expected a label, a tab and its count, found no count",
                b.display()
            )
        );
        let e = merge(b"cat\tx\n").unwrap_err();
        assert!(e.to_string().ends_with("found count \"x\""), "{e}");
        let e = merge(b"dog\t1\ncat\t2\ndog\t1\n").unwrap_err();
        assert!(
            matches!(&e, Error::VocabDuplicate { path, line: 3, label } if *path == b && label == "dog"),
            "{e}"
        );
        assert_eq!(
            e.to_string(),
            format!("{}: line 3: label \"dog\" occurs twice", b.display())
        );
        assert!(matches!(
            merge(b"x\t1\n\n"),
            Err(Error::VocabEmptyLabel { line: 2, .. })
        ));
        assert!(matches!(
            merge(b"x\t1\n\xff\t1\n"),
            Err(Error::VocabNotUtf8 { offset: 4, .. })
        ));
        let e = merge(format!("cat\t{}\n", u64::MAX).as_bytes()).unwrap_err();
        assert!(
            matches!(&e, Error::VocabCountOverflow { line: 1, label, .. } if label == "cat"),
            "{e}"
        );
        // The same part twice (also by another name), a missing part, no parts.
        std::fs::write(&b, "dog\t1\n").unwrap();
        let again = dir.path().join(".").join("a.tsv");
        let e = vocab_merge(&[&a, &b, &again], &out, &VocabMergeOptions::new()).unwrap_err();
        assert!(matches!(&e, Error::VocabPartTwice { path } if *path == again), "{e}");
        let missing = dir.path().join("missing.tsv");
        let e = vocab_merge(&[&a, &missing], &out, &VocabMergeOptions::new()).unwrap_err();
        assert!(
            matches!(&e, Error::Io { file, op: "cannot read", .. } if file.ends_with("missing.tsv")),
            "{e}"
        );
        assert!(matches!(
            vocab_merge::<PathBuf>(&[], &out, &VocabMergeOptions::new()),
            Err(Error::NoVocabParts)
        ));
        // Nothing was written, not even a temporary file.
        assert!(!out.exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
        // An existing output is kept unless replaced; the output may be one of the parts.
        std::fs::write(&out, "old\n").unwrap();
        let e = vocab_merge(&[&a, &b], &out, &VocabMergeOptions::new()).unwrap_err();
        assert!(matches!(e, Error::OutputExists { .. }), "{e}");
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "old\n");
        let s = vocab_merge(&[&a, &b], &a, &VocabMergeOptions::new().replace(true)).unwrap();
        assert_eq!((s.parts, s.words, s.tokens), (2, 3, 5));
        assert_eq!(std::fs::read_to_string(&a).unwrap(), "the\t3\ncat\t1\ndog\t1\n");
    }
}
