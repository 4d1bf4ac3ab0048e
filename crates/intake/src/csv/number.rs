//! Decimal scanning for float cells.
//!
//! One pass over the digits gives the cell's extent, its validity, and its
//! value. The value is exact for whole numbers whose significand is at most
//! 2^53 and whose power of ten is at most 10^22 (one exact integer times
//! one exact power of ten, rounded once). Otherwise, down to 10^-22, it is
//! within a relative error of 2^-51, and the exact value comes from a full
//! parse (`fast-float2`, Eisel-Lemire) only where it matters: extrema and
//! distinct values. Most cells never need that second parse.

/// A scanned decimal.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Decimal {
    /// The value: exact when `exact`, else within a relative error of
    /// 2^-51 (three roundings of at most 2^-53 each). `None` when the
    /// exponent is out of the fast range and only a full parse can tell
    /// (it may even overflow to infinity).
    pub value: Option<f64>,
    /// `value` is the correctly rounded value of the text.
    pub exact: bool,
    /// Bytes taken.
    pub len: usize,
}

/// 10^0 ..= 10^22, each exactly representable as an f64.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// 10^-0 ..= 10^-22, rounded to the nearest f64.
const INV_POW10: [f64; 23] = [
    1e0, 1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-9, 1e-10, 1e-11, 1e-12, 1e-13, 1e-14,
    1e-15, 1e-16, 1e-17, 1e-18, 1e-19, 1e-20, 1e-21, 1e-22,
];

/// Scan `[+-]?(digits[.digits?]|.digits)([eE][+-]?digits)?` at the start
/// of `b`; `None` when no number starts there (or an exponent marker has
/// no digits). This grammar is the whole of what a float cell may hold:
/// no `inf`, `nan`, hex, spaces or underscores.
#[inline]
pub(super) fn scan_float(b: &[u8]) -> Option<Decimal> {
    let mut i = 0usize;
    let negative = match b.first() {
        Some(b'-') => {
            i = 1;
            true
        }
        Some(b'+') => {
            i = 1;
            false
        }
        _ => false,
    };
    let mut w: u64 = 0;
    let mut significant = 0u32;
    let mut digits = 0u32;
    let mut exp: i64 = 0;
    let mut truncated = false;
    // Integer part.
    loop {
        if let Some(v) = eight_digits(b, i, w, significant) {
            w = w.wrapping_mul(100_000_000).wrapping_add(v);
            significant += 8;
            digits = digits.saturating_add(8);
            i += 8;
            continue;
        }
        let Some(&c) = b.get(i) else { break };
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        digits = digits.saturating_add(1);
        if w != 0 || d != 0 {
            if significant < 19 {
                w = w.wrapping_mul(10).wrapping_add(u64::from(d));
                significant += 1;
            } else {
                truncated = true;
                exp = exp.saturating_add(1);
            }
        }
        i += 1;
    }
    // Fraction.
    if b.get(i) == Some(&b'.') {
        i += 1;
        loop {
            if let Some(v) = eight_digits(b, i, w, significant) {
                w = w.wrapping_mul(100_000_000).wrapping_add(v);
                significant += 8;
                exp = exp.saturating_sub(8);
                digits = digits.saturating_add(8);
                i += 8;
                continue;
            }
            let Some(&c) = b.get(i) else { break };
            let d = c.wrapping_sub(b'0');
            if d > 9 {
                break;
            }
            digits = digits.saturating_add(1);
            if w == 0 && d == 0 {
                exp = exp.saturating_sub(1);
            } else if significant < 19 {
                w = w.wrapping_mul(10).wrapping_add(u64::from(d));
                significant += 1;
                exp = exp.saturating_sub(1);
            } else {
                truncated = true;
            }
            i += 1;
        }
    }
    if digits == 0 {
        return None;
    }
    // Exponent.
    if matches!(b.get(i), Some(b'e' | b'E')) {
        let mut j = i + 1;
        let negative_exp = match b.get(j) {
            Some(b'-') => {
                j += 1;
                true
            }
            Some(b'+') => {
                j += 1;
                false
            }
            _ => false,
        };
        let start = j;
        let mut e: i64 = 0;
        while let Some(&c) = b.get(j) {
            let d = c.wrapping_sub(b'0');
            if d > 9 {
                break;
            }
            // Saturates far beyond any finite double's exponent.
            if e < 1_000_000 {
                e = e * 10 + i64::from(d);
            }
            j += 1;
        }
        if j == start {
            return None;
        }
        exp = if negative_exp {
            exp.saturating_sub(e)
        } else {
            exp.saturating_add(e)
        };
        i = j;
    }
    let sign = if negative { -1.0 } else { 1.0 };
    if w == 0 {
        return Some(Decimal {
            value: Some(sign * 0.0),
            exact: true,
            len: i,
        });
    }
    let k = usize::try_from(exp.unsigned_abs()).unwrap_or(usize::MAX);
    let (value, exact) = match (POW10.get(k), INV_POW10.get(k)) {
        (Some(&p), Some(&inv)) => {
            let f = w as f64;
            // A whole number times an exact power of ten is one correctly
            // rounded multiply. A fraction would need a division to be
            // exact; instead it is multiplied by the rounded reciprocal, a
            // fraction of a division's cost and, unlike choosing between
            // the two per cell, free of unpredictable branches.
            if exp >= 0 {
                (Some(sign * f * p), !truncated && w <= 1 << 53)
            } else {
                (Some(sign * f * inv), false)
            }
        }
        _ => (None, false),
    };
    Some(Decimal {
        value,
        exact,
        len: i,
    })
}

/// The value of the eight ASCII digits at `b[i..i + 8]`, when they are all
/// digits and still fit the 19 significant digits a u64 holds. Only once a
/// non-zero digit has been seen (`w != 0`): leading zeros are counted one
/// by one, so `significant` stays exact and a truncated significand keeps
/// at least 19 real digits.
///
/// Eight digits at once (SWAR): the serial multiply-add chain of a
/// digit-by-digit loop is what limits parsing long fractions.
#[inline(always)]
fn eight_digits(b: &[u8], i: usize, w: u64, significant: u32) -> Option<u64> {
    if w == 0 || significant > 11 {
        return None;
    }
    let chunk: [u8; 8] = b.get(i..i.checked_add(8)?)?.try_into().ok()?;
    let v = u64::from_le_bytes(chunk);
    // Every byte in b'0'..=b'9': no byte below 0x30 (the subtraction
    // would set its top bit) and none above 0x39 (the addition would).
    let all_digits = (v.wrapping_sub(0x3030_3030_3030_3030) | v.wrapping_add(0x4646_4646_4646_4646))
        & 0x8080_8080_8080_8080
        == 0;
    if !all_digits {
        return None;
    }
    // Bytes are digits d0..d7, d0 first (lowest byte). Pairs, then quads,
    // then the whole, each step one multiply over all lanes.
    let d = v.wrapping_sub(0x3030_3030_3030_3030);
    let pairs = (d.wrapping_mul(10).wrapping_add(d >> 8)) & 0x00FF_00FF_00FF_00FF;
    let quads = (pairs.wrapping_mul(100 << 16 | 1) >> 16) & 0x0000_FFFF_0000_FFFF;
    Some((quads.wrapping_mul(10_000 << 32 | 1) >> 32) & 0xFFFF_FFFF)
}

/// The exact value of a float cell the scanner accepted.
#[inline]
pub(super) fn exact(cell: &[u8]) -> f64 {
    fast_float2::parse(cell).unwrap_or(f64::NAN)
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn full(s: &str) -> Option<Decimal> {
        scan_float(s.as_bytes()).filter(|d| d.len == s.len())
    }

    #[test]
    fn grammar() {
        for ok in [
            "0", "-0", "+1", "1.", ".5", "1.5", "-1.5e3", "1E-3", "1e+3", "00012", "0.000",
            "123456789012345678901234567890",
        ] {
            assert!(full(ok).is_some(), "{ok}");
        }
        for bad in [
            "", "-", "+", ".", "e5", "1e", "1e+", "inf", "-inf", "nan", "NaN", "0x10", " 1",
            "1 ", "1_000", "1.5.5", "--1", "∞",
        ] {
            assert!(full(bad).is_none(), "{bad}");
        }
        assert_eq!(scan_float(b"1.5,2").unwrap().len, 3);
        assert_eq!(scan_float(b"-2e-3\n").unwrap().len, 5);
    }

    #[test]
    fn eight_digits_at_once() {
        assert_eq!(eight_digits(b"12345678", 0, 1, 0), Some(12_345_678));
        assert_eq!(eight_digits(b"x00000009", 1, 1, 0), Some(9));
        assert_eq!(eight_digits(b"99999999", 0, 1, 11), Some(99_999_999));
        assert_eq!(eight_digits(b"99999999", 0, 1, 12), None);
        assert_eq!(eight_digits(b"12345678", 0, 0, 0), None);
        assert_eq!(eight_digits(b"1234567", 0, 1, 0), None);
        for bad in [*b"1234567/", *b"1234567:", *b"\x801234567", *b"1234 678", *b"12345e78"] {
            assert_eq!(eight_digits(&bad, 0, 1, 0), None, "{bad:?}");
        }
        // Agrees with the digit loop on every position.
        let text = b"0.1234567890123456789012";
        assert_eq!(scan_float(text).unwrap().value, Some(0.123_456_789_012_345_68));
    }

    #[test]
    fn exact_when_claimed() {
        let d = full("1500").unwrap();
        assert_eq!((d.value, d.exact), (Some(1500.0), true));
        let d = full("15e2").unwrap();
        assert_eq!((d.value, d.exact), (Some(1500.0), true));
        // Fractions are approximate (a reciprocal multiply), even short ones.
        let d = full("0.5").unwrap();
        assert_eq!((d.value, d.exact), (Some(0.5), false));
        let d = full("-0.0").unwrap();
        assert!(d.exact && d.value.unwrap() == 0.0 && d.value.unwrap().is_sign_negative());
        // 17 significant digits: above 2^53, approximate.
        let d = full("-0.28313985930483983").unwrap();
        assert!(!d.exact);
        // Far exponents: value unknown until the full parse.
        assert_eq!(full("1e400").unwrap().value, None);
        assert_eq!(full("1e-400").unwrap().value, None);
        assert!(exact(b"1e400").is_infinite());
    }

    proptest! {
        /// The shortest round-trip text of any double scans to within a
        /// relative 2^-51, and exactly when it says so.
        #[test]
        fn close_and_exact_when_claimed(f in any::<f64>().prop_filter("finite", |f| f.is_finite())) {
            for text in [format!("{f:?}"), format!("{f:e}"), format!("{f}")] {
                let d = full(&text).unwrap();
                let truth = exact(text.as_bytes());
                prop_assert_eq!(truth, f);
                match d.value {
                    Some(v) if d.exact => prop_assert_eq!(v.to_bits(), truth.to_bits(), "{}", text),
                    Some(v) => {
                        let bound = truth.abs() * (2.0 * f64::EPSILON);
                        prop_assert!((v - truth).abs() <= bound, "{} {} {}", text, v, truth);
                    }
                    None => {}
                }
            }
        }

        /// Accepts exactly the finite decimals fast-float2 accepts.
        #[test]
        fn same_language_as_the_exact_parser(s in "[-+]?[0-9]{0,4}(\\.[0-9]{0,4})?([eE][-+]?[0-9]{0,3})?|[a-z0-9.+-]{0,6}") {
            let ours = full(&s).is_some();
            let theirs = fast_float2::parse::<f64, _>(s.as_bytes()).is_ok_and(|v: f64| v.is_finite())
                || fast_float2::parse::<f64, _>(s.as_bytes()).is_ok_and(|v: f64| v.is_infinite()
                    && !s.to_ascii_lowercase().contains("inf"));
            prop_assert_eq!(ours, theirs, "{:?}", s);
        }
    }
}
