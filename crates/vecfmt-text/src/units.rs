//! Sizes and durations as users type them: `512M`, `4G`, `1.5GiB`, `30s`, `5m`.

use crate::{Error, Result};

/// Parses a byte count: a number with an optional K/M/G/T suffix (powers of 1024; `B`,
/// `iB` and `B` tails are accepted, so `4G`, `4GB` and `4GiB` are the same).
///
/// ```
/// assert_eq!(vecfmt_text::parse_bytes("512M")?, 512 << 20);
/// assert_eq!(vecfmt_text::parse_bytes("1.5K")?, 1536);
/// assert!(vecfmt_text::parse_bytes("lots").is_err());
/// # Ok::<(), vecfmt_text::Error>(())
/// ```
pub fn parse_bytes(s: &str) -> Result<u64> {
    let t = s.trim();
    let upper = t.to_ascii_uppercase();
    let body = upper
        .strip_suffix("IB")
        .or_else(|| upper.strip_suffix('B'))
        .unwrap_or(&upper);
    let (num, mult) = match body.chars().last() {
        Some('K') => (&body[..body.len() - 1], 1u64 << 10),
        Some('M') => (&body[..body.len() - 1], 1 << 20),
        Some('G') => (&body[..body.len() - 1], 1 << 30),
        Some('T') => (&body[..body.len() - 1], 1 << 40),
        _ => (body, 1),
    };
    let bad = || Error::BadSize { text: s.to_owned() };
    let x: f64 = num.trim().parse().map_err(|_| bad())?;
    if !x.is_finite() || x < 0.0 {
        return Err(bad());
    }
    Ok((x * mult as f64) as u64)
}

/// Parses a duration: a number with s, m or h (`30s`, `5m`, `1h`); a bare number is seconds.
///
/// ```
/// assert_eq!(vecfmt_text::parse_duration("5m")?.as_secs(), 300);
/// # Ok::<(), vecfmt_text::Error>(())
/// ```
pub fn parse_duration(s: &str) -> Result<std::time::Duration> {
    let t = s.trim();
    let (num, mult) = match t.chars().last() {
        Some('s') => (&t[..t.len() - 1], 1.0),
        Some('m') => (&t[..t.len() - 1], 60.0),
        Some('h') => (&t[..t.len() - 1], 3600.0),
        _ => (t, 1.0),
    };
    let bad = || Error::BadDuration { text: s.to_owned() };
    let x: f64 = num.trim().parse().map_err(|_| bad())?;
    if !x.is_finite() || x < 0.0 {
        return Err(bad());
    }
    Ok(std::time::Duration::from_secs_f64(x * mult))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("512M").unwrap(), 512 << 20);
        assert_eq!(parse_bytes("4G").unwrap(), 4 << 30);
        assert_eq!(parse_bytes("4GiB").unwrap(), 4 << 30);
        assert_eq!(parse_bytes("4gb").unwrap(), 4 << 30);
        assert_eq!(parse_bytes("1.5K").unwrap(), 1536);
        assert_eq!(parse_bytes("1000").unwrap(), 1000);
        assert!(parse_bytes("lots").is_err());
        assert!(parse_bytes("-1G").is_err());
        assert_eq!(
            parse_bytes("lots").unwrap_err().to_string(),
            "\"lots\" is not a size; use a number with K, M, G or T, like 512M or 4G"
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s").unwrap().as_secs(), 30);
        assert_eq!(parse_duration("5m").unwrap().as_secs(), 300);
        assert_eq!(parse_duration("2").unwrap().as_secs(), 2);
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("-1s").is_err());
    }
}
