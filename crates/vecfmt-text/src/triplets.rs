//! Parsing a line of update triplets: `row<TAB>col<TAB>value`, or comma- or space-separated,
//! with ids or labels.

use vecfmt::Axis;

use crate::error::LineProblem;

/// A triplet's value, as the matrix's dtype wants it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Value {
    Int(i64),
    Float(f64),
}

/// Why a line gave no triplet.
#[derive(Debug)]
pub(crate) enum LineError {
    /// The value field is not a number: a header on line 1, a bad line elsewhere.
    Header,
    Bad(LineProblem),
    /// The accumulator failed (not the line's fault).
    Fatal(vecfmt::Error),
}

fn trim_field(f: &[u8]) -> &[u8] {
    let f = f.trim_ascii();
    f.strip_prefix(b"\"").and_then(|x| x.strip_suffix(b"\"")).unwrap_or(f)
}

fn text_of(b: &[u8]) -> Result<&str, LineError> {
    std::str::from_utf8(b).map_err(|_| LineError::Bad(LineProblem::NotUtf8))
}

/// The fields of a line: split at tabs if it has any, else at commas, else at runs of
/// spaces; tab and comma fields are trimmed and lose one pair of double quotes.
pub(crate) fn fields(line: &[u8]) -> Vec<&[u8]> {
    let trim = trim_field;
    if line.contains(&b'\t') {
        line.split(|&c| c == b'\t').map(trim).collect()
    } else if line.contains(&b',') {
        line.split(|&c| c == b',').map(trim).collect()
    } else {
        line.split(|c| c.is_ascii_whitespace())
            .filter(|f| !f.is_empty())
            .collect()
    }
}

/// Parses one line (without its newline) into `(row, col, value)`. Labelled axes are
/// resolved with `label_id`; `int` asks for an integer value.
pub(crate) fn parse_triplet(
    line: &[u8],
    int: bool,
    row_labels: bool,
    col_labels: bool,
    label_id: impl Fn(Axis, &str) -> vecfmt::Result<u64>,
) -> Result<(u64, u64, Value), LineError> {
    let f = fields(line);
    if f.len() != 3 {
        return Err(LineError::Bad(LineProblem::FieldCount { found: f.len() }));
    }
    let text = text_of;
    let id = |b: &[u8], labels: bool, axis: Axis| -> Result<u64, LineError> {
        let t = text(b)?;
        if labels {
            return label_id(axis, t).map_err(|e| match e {
                vecfmt::Error::LabelNotFound { .. } => LineError::Bad(LineProblem::UnknownLabel(Box::new(e))),
                e => LineError::Fatal(e),
            });
        }
        t.parse::<u64>().map_err(|_| {
            if t.parse::<f64>().is_err() {
                LineError::Header
            } else {
                LineError::Bad(LineProblem::NotAnId {
                    axis,
                    text: t.to_owned(),
                })
            }
        })
    };
    let value = text(f[2])?;
    let (row, col) = match (id(f[0], row_labels, Axis::Row), id(f[1], col_labels, Axis::Col)) {
        (Ok(r), Ok(c)) => (r, c),
        (Err(LineError::Header), _) | (_, Err(LineError::Header)) if value.parse::<f64>().is_err() => {
            return Err(LineError::Header)
        }
        (Err(LineError::Header), _) | (_, Err(LineError::Header)) => {
            return Err(LineError::Bad(LineProblem::IdsNotNumbers))
        }
        (Err(e), _) | (_, Err(e)) => return Err(e),
    };
    let v = if int {
        match value.parse::<i64>() {
            Ok(v) => Value::Int(v),
            Err(_) if value.parse::<f64>().is_ok() => {
                return Err(LineError::Bad(LineProblem::NotAnInteger {
                    value: value.to_owned(),
                }))
            }
            Err(_) => return Err(LineError::Header),
        }
    } else {
        match value.parse::<f64>() {
            Ok(v) if v.is_finite() => Value::Float(v),
            Ok(v) => return Err(LineError::Bad(LineProblem::NotFinite { value: v })),
            Err(_) => return Err(LineError::Header),
        }
    };
    Ok((row, col, v))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_labels(_: Axis, _: &str) -> vecfmt::Result<u64> {
        unreachable!("no labelled axis")
    }

    fn labels(axis: Axis, l: &str) -> vecfmt::Result<u64> {
        match l {
            "cat" => Ok(0),
            "purr" => Ok(7),
            _ => Err(vecfmt::Error::LabelNotFound {
                axis,
                label: l.to_owned(),
            }),
        }
    }

    fn problem(r: Result<(u64, u64, Value), LineError>) -> String {
        match r {
            Err(LineError::Bad(p)) => p.to_string(),
            other => panic!("expected a bad line, got {other:?}"),
        }
    }

    #[test]
    fn separators_quotes_and_whitespace() {
        for line in [
            &b"3\t4\t1.5"[..],
            b"3,4,1.5",
            b" 3  4 1.5 ",
            b"\"3\", \"4\" ,1.5",
            b"3\t 4 \t1.5",
        ] {
            let got = parse_triplet(line, false, false, false, no_labels).unwrap();
            assert_eq!(got, (3, 4, Value::Float(1.5)), "{:?}", String::from_utf8_lossy(line));
        }
        // A tab wins over commas: "a,b" is one field.
        assert_eq!(fields(b"a,b\tc\td"), [&b"a,b"[..], b"c", b"d"]);
    }

    #[test]
    fn integer_values_for_integer_matrices() {
        assert_eq!(
            parse_triplet(b"1 2 -7", true, false, false, no_labels).unwrap(),
            (1, 2, Value::Int(-7))
        );
        let p = problem(parse_triplet(b"1 2 2.5", true, false, false, no_labels));
        assert_eq!(p, "value 2.5 is not an integer, and the matrix is integer");
    }

    #[test]
    fn headers_and_bad_lines() {
        // A line whose value is not a number may be a header (the caller accepts it on line 1).
        assert!(matches!(
            parse_triplet(b"row,col,value", false, false, false, no_labels),
            Err(LineError::Header)
        ));
        assert!(matches!(
            parse_triplet(b"1,2,x", false, false, false, no_labels),
            Err(LineError::Header)
        ));
        assert_eq!(
            problem(parse_triplet(b"1\t2", false, false, false, no_labels)),
            "expected 3 fields (row, col, value), found 2"
        );
        assert_eq!(
            problem(parse_triplet(b"a b 1", false, false, false, no_labels)),
            "row and column must be non-negative integer ids"
        );
        assert_eq!(
            problem(parse_triplet(b"1 -2 1", false, false, false, no_labels)),
            "column id \"-2\" is not a non-negative integer"
        );
        assert_eq!(
            problem(parse_triplet(b"1 2 inf", false, false, false, no_labels)),
            "value inf is not finite"
        );
        assert_eq!(
            problem(parse_triplet(b"1 2 \xff", false, false, false, no_labels)),
            "not valid UTF-8"
        );
    }

    #[test]
    fn labels_resolve_through_the_lookup() {
        assert_eq!(
            parse_triplet(b"cat\tpurr\t2", false, true, true, labels).unwrap(),
            (0, 7, Value::Float(2.0))
        );
        assert_eq!(
            parse_triplet(b"cat\t9\t2", false, true, false, labels).unwrap(),
            (0, 9, Value::Float(2.0))
        );
        assert_eq!(
            problem(parse_triplet(b"zebra\tpurr\t2", false, true, true, labels)),
            "no row is labelled \"zebra\" (not in the vocabulary)"
        );
        let fatal = |_: Axis, _: &str| -> vecfmt::Result<u64> { Err(vecfmt::Error::NoLabels { axis: Axis::Row }) };
        assert!(matches!(
            parse_triplet(b"a b 1", false, true, true, fatal),
            Err(LineError::Fatal(_))
        ));
    }
}
