//! Exact parsing of Kubernetes quantities into whole bytes.
//!
//! The API server stores a custom resource's quantity exactly as written, so
//! `4Gi`, `4096Mi` and `4294967296` arrive as three different strings. The
//! operator converts every size to bytes here, once, and renders children
//! from the byte count, so the same size means the same bytes everywhere.
//! Arithmetic is integer only; fractional bytes are an error, never rounded.

use std::fmt;

/// Why a quantity string could not be turned into bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    #[error(
        "{0:?} is not a quantity (expected a number with an optional suffix such as Mi, Gi, G or e9)"
    )]
    Malformed(String),
    #[error("{0:?} is not a whole number of bytes")]
    Fractional(String),
    #[error("{0:?} is negative")]
    Negative(String),
    #[error("{0:?} is too large")]
    TooLarge(String),
}

const BINARY: [(&str, u32); 6] = [
    ("Ki", 1),
    ("Mi", 2),
    ("Gi", 3),
    ("Ti", 4),
    ("Pi", 5),
    ("Ei", 6),
];
const DECIMAL: [(&str, i32); 7] = [
    ("m", -3),
    ("k", 3),
    ("M", 6),
    ("G", 9),
    ("T", 12),
    ("P", 15),
    ("E", 18),
];

/// Parses a quantity such as `40Gi`, `1.5Gi`, `500M` or `2e9` into bytes.
pub fn parse_bytes(text: &str) -> Result<u64, QuantityError> {
    let malformed = || QuantityError::Malformed(text.to_string());
    let trimmed = text.trim();
    let (negative, body) = match trimmed.as_bytes().first() {
        Some(b'-') => (true, &trimmed[1..]),
        Some(b'+') => (false, &trimmed[1..]),
        _ => (false, trimmed),
    };
    let number_end = body
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(body.len());
    let (number, suffix) = body.split_at(number_end);
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() || number.matches('.').count() > 1 {
        return Err(malformed());
    }
    let digits = format!("{whole}{fraction}");
    let mantissa: i128 = digits.parse().map_err(|_| malformed())?;
    // value = mantissa * 10^(exp10 - fraction digits) * 1024^exp1024
    let mut exp10 = -(fraction.len() as i32);
    let mut exp1024 = 0u32;
    if let Some((_, e)) = BINARY.iter().find(|(s, _)| *s == suffix) {
        exp1024 = *e;
    } else if let Some((_, e)) = DECIMAL.iter().find(|(s, _)| *s == suffix) {
        exp10 += *e;
    } else if let Some(exponent) = suffix.strip_prefix(['e', 'E']) {
        let e: i32 = exponent.parse().map_err(|_| malformed())?;
        exp10 += e;
    } else if !suffix.is_empty() {
        return Err(malformed());
    }
    if negative && mantissa != 0 {
        return Err(QuantityError::Negative(text.to_string()));
    }
    let too_large = || QuantityError::TooLarge(text.to_string());
    let mut value = mantissa
        .checked_mul(1024i128.checked_pow(exp1024).ok_or_else(too_large)?)
        .ok_or_else(too_large)?;
    if exp10 >= 0 {
        let scale = 10i128.checked_pow(exp10 as u32).ok_or_else(too_large)?;
        value = value.checked_mul(scale).ok_or_else(too_large)?;
    } else {
        let scale = 10i128
            .checked_pow(exp10.unsigned_abs())
            .ok_or_else(|| QuantityError::Fractional(text.to_string()))?;
        if value % scale != 0 {
            return Err(QuantityError::Fractional(text.to_string()));
        }
        value /= scale;
    }
    u64::try_from(value).map_err(|_| too_large())
}

/// A byte count rendered in the canonical Kubernetes form: the largest
/// binary suffix that divides it exactly, otherwise plain bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Bytes(pub u64);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            return write!(f, "0");
        }
        for (suffix, exp) in BINARY.iter().rev() {
            let unit = 1024u64.pow(*exp);
            if self.0.is_multiple_of(unit) {
                return write!(f, "{}{}", self.0 / unit, suffix);
            }
        }
        write!(f, "{}", self.0)
    }
}

/// Parses a quantity and returns it in canonical form (`4096Mi` → `4Gi`).
pub fn canonical(text: &str) -> Result<String, QuantityError> {
    parse_bytes(text).map(|b| Bytes(b).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_decimal_and_exponent_forms() {
        assert_eq!(parse_bytes("4Gi"), Ok(4 << 30));
        assert_eq!(parse_bytes("4096Mi"), Ok(4 << 30));
        assert_eq!(parse_bytes("1.5Gi"), Ok(1536 << 20));
        assert_eq!(parse_bytes("500M"), Ok(500_000_000));
        assert_eq!(parse_bytes("2e9"), Ok(2_000_000_000));
        assert_eq!(parse_bytes("2E3"), Ok(2000));
        assert_eq!(parse_bytes("1k"), Ok(1000));
        assert_eq!(parse_bytes("123"), Ok(123));
        assert_eq!(parse_bytes("+7Ki"), Ok(7168));
        assert_eq!(parse_bytes("0"), Ok(0));
        assert_eq!(parse_bytes(".5Ki"), Ok(512));
        assert_eq!(parse_bytes("1000m"), Ok(1));
    }

    #[test]
    fn rejects_what_is_not_a_byte_count() {
        assert!(matches!(
            parse_bytes("1500m"),
            Err(QuantityError::Fractional(_))
        ));
        assert!(matches!(
            parse_bytes("0.1"),
            Err(QuantityError::Fractional(_))
        ));
        assert!(matches!(
            parse_bytes("-1Gi"),
            Err(QuantityError::Negative(_))
        ));
        assert!(matches!(
            parse_bytes("lots"),
            Err(QuantityError::Malformed(_))
        ));
        assert!(matches!(
            parse_bytes("4GB"),
            Err(QuantityError::Malformed(_))
        ));
        assert!(matches!(
            parse_bytes("1.2.3"),
            Err(QuantityError::Malformed(_))
        ));
        assert!(matches!(parse_bytes(""), Err(QuantityError::Malformed(_))));
        assert!(matches!(parse_bytes("."), Err(QuantityError::Malformed(_))));
        assert!(matches!(
            parse_bytes("99Ei"),
            Err(QuantityError::TooLarge(_))
        ));
        assert!(matches!(
            parse_bytes("1e400"),
            Err(QuantityError::TooLarge(_))
        ));
    }

    #[test]
    fn same_size_same_canonical_form() {
        assert_eq!(canonical("4096Mi").unwrap(), "4Gi");
        assert_eq!(canonical("4294967296").unwrap(), "4Gi");
        assert_eq!(canonical("1.5Gi").unwrap(), "1536Mi");
        assert_eq!(canonical("500M").unwrap(), "500000000");
        assert_eq!(canonical("0").unwrap(), "0");
    }
}
