//! The head of a Matrix Market file: its lines read with their numbers and bounded in
//! length, the banner (`%%MatrixMarket matrix <format> <field> <symmetry>`), the comment
//! lines and the size line, checked against the file's length before anything is sized by
//! it.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use crate::error::{BannerError, Error};
use crate::{io_err, Banner, Field, Symmetry};

/// Longest line we read (a line is three numbers; anything near this is not an .mtx).
pub(crate) const MAX_LINE: usize = 1 << 16;

/// Lines of a file with their numbers, bounded in length.
pub(crate) struct Lines {
    reader: BufReader<File>,
    line: Vec<u8>,
    /// The number of the last line read (from 1).
    pub(crate) number: u64,
    /// Bytes read so far.
    pub(crate) read: u64,
    /// Byte offset of the start of the last line read.
    pub(crate) start: u64,
}

impl Lines {
    pub(crate) fn new(file: File) -> Self {
        Lines {
            reader: BufReader::with_capacity(1 << 20, file),
            line: Vec::new(),
            number: 0,
            read: 0,
            start: 0,
        }
    }

    /// The next line without its newline, or `None` at the end.
    pub(crate) fn next(&mut self, path: &Path) -> vecfmt::Result<Option<&str>> {
        self.line.clear();
        let n = (&mut self.reader)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut self.line)
            .map_err(io_err(path, "read"))?;
        if n == 0 {
            return Ok(None);
        }
        self.number += 1;
        self.start = self.read;
        self.read += n as u64;
        if self.line.len() > MAX_LINE {
            return Err(Error::LineTooLong {
                path: path.to_path_buf(),
                line: self.number,
                offset: self.start,
                max: MAX_LINE,
            }
            .into());
        }
        while matches!(self.line.last(), Some(b'\n' | b'\r')) {
            self.line.pop();
        }
        match std::str::from_utf8(&self.line) {
            Ok(s) => Ok(Some(s)),
            Err(_) => Err(Error::NotText {
                path: path.to_path_buf(),
                line: self.number,
                offset: self.start,
            }
            .into()),
        }
    }
}

/// Parses the banner line.
pub(crate) fn parse_banner(line: &str) -> Result<(bool, Field, Symmetry), BannerError> {
    let words: Vec<String> = line.split_whitespace().map(str::to_ascii_lowercase).collect();
    if words.first().map(String::as_str) != Some("%%matrixmarket") {
        return Err(BannerError::NotMatrixMarket);
    }
    if words.len() != 5 {
        return Err(BannerError::WordCount {
            banner: line.to_string(),
        });
    }
    if words[1] != "matrix" {
        return Err(BannerError::Object(words[1].clone()));
    }
    let coordinate = match words[2].as_str() {
        "coordinate" => true,
        "array" => false,
        f => return Err(BannerError::Format(f.to_string())),
    };
    let field = match words[3].as_str() {
        "real" | "double" => Field::Real,
        "integer" => Field::Integer,
        "pattern" => Field::Pattern,
        "complex" => return Err(BannerError::Complex),
        f => return Err(BannerError::Field(f.to_string())),
    };
    let symmetry = match words[4].as_str() {
        "general" => Symmetry::General,
        "symmetric" => Symmetry::Symmetric,
        "skew-symmetric" => Symmetry::SkewSymmetric,
        "hermitian" if field != Field::Pattern => Symmetry::Symmetric,
        s => return Err(BannerError::Symmetry(s.to_string())),
    };
    if !coordinate && field == Field::Pattern {
        return Err(BannerError::ArrayPattern);
    }
    if !coordinate && symmetry != Symmetry::General {
        return Err(BannerError::ArraySymmetric);
    }
    Ok((coordinate, field, symmetry))
}

/// Reads the banner, the comments and the size line of a file `total` bytes long, leaving
/// `lines` at the first entry.
pub(crate) fn read_head(p: &Path, lines: &mut Lines, total: u64) -> vecfmt::Result<Banner> {
    let path = || p.to_path_buf();
    let first = lines.next(p)?.ok_or_else(|| Error::Empty { path: path() })?;
    let (coordinate, field, symmetry) =
        parse_banner(first).map_err(|problem| Error::Banner { path: path(), problem })?;
    let size = loop {
        let Some(l) = lines.next(p)? else {
            return Err(Error::NoSizeLine { path: path() }.into());
        };
        let t = l.trim();
        if !t.is_empty() && !t.starts_with('%') {
            break t.to_string();
        }
    };
    let line = lines.number;
    let nums: Vec<u64> = match size.split_whitespace().map(|w| w.parse::<u64>()).collect() {
        Ok(v) => v,
        Err(_) => {
            return Err(Error::BadSizeLine {
                path: path(),
                line,
                text: size,
            }
            .into())
        }
    };
    let want = if coordinate { 3 } else { 2 };
    if nums.len() != want {
        return Err(Error::SizeLineFields {
            path: path(),
            line,
            text: size,
            coordinate,
        }
        .into());
    }
    let (n_rows, n_cols) = (nums[0], nums[1]);
    let entries = if coordinate {
        nums[2]
    } else {
        n_rows.checked_mul(n_cols).ok_or_else(|| Error::SizeOverflow {
            path: path(),
            line,
            n_rows,
            n_cols,
        })?
    };
    // Every entry takes a line of at least 2 bytes (`v` and a newline, in an array
    // file) or 4 (`i j` and a newline): a size line that declares more entries than the
    // rest of the file can hold is refused before anything is sized by it.
    let min_line = if !coordinate {
        2
    } else if field == Field::Pattern {
        4
    } else {
        6
    };
    let bytes_after = total.saturating_sub(lines.read);
    if entries > bytes_after / min_line + 1 {
        return Err(Error::DeclaresTooMany {
            path: path(),
            line,
            entries,
            bytes_after,
        }
        .into());
    }
    if symmetry != Symmetry::General && n_rows != n_cols {
        return Err(Error::NotSquare {
            path: path(),
            line,
            n_rows,
            n_cols,
        }
        .into());
    }
    Ok(Banner {
        coordinate,
        field,
        symmetry,
        n_rows,
        n_cols,
        entries,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn banners() {
        assert_eq!(
            parse_banner("%%MatrixMarket matrix coordinate real general").unwrap(),
            (true, Field::Real, Symmetry::General)
        );
        assert_eq!(
            parse_banner("%%matrixmarket MATRIX Coordinate Pattern Symmetric").unwrap(),
            (true, Field::Pattern, Symmetry::Symmetric)
        );
        assert_eq!(
            parse_banner("%%MatrixMarket matrix array integer general").unwrap(),
            (false, Field::Integer, Symmetry::General)
        );
        let err = |l: &str| parse_banner(l).unwrap_err();
        assert_eq!(err("hello"), BannerError::NotMatrixMarket);
        assert!(err("hello").to_string().contains("not a Matrix Market file"));
        assert_eq!(
            err("%%MatrixMarket matrix coordinate complex general"),
            BannerError::Complex
        );
        assert!(err("%%MatrixMarket matrix coordinate complex general")
            .to_string()
            .contains("complex"));
        assert!(err("%%MatrixMarket vector coordinate real general")
            .to_string()
            .contains("object"));
        assert!(err("%%MatrixMarket matrix coordinate real")
            .to_string()
            .contains("5 words"));
        assert_eq!(
            err("%%MatrixMarket matrix array real symmetric"),
            BannerError::ArraySymmetric
        );
        assert!(err("%%MatrixMarket matrix array real symmetric")
            .to_string()
            .contains("symmetric dense"));
    }
}
