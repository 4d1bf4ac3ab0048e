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
    let (negative, mut i) = match b.first() {
        Some(b'-') => (true, 1),
        Some(b'+') => (false, 1),
        _ => (false, 0),
    };
    let int_len = digit_run(b, i);
    let mut int_digits = b.get(i..i.saturating_add(int_len)).unwrap_or_default();
    i = i.saturating_add(int_len);
    let mut frac_digits: &[u8] = &[];
    if b.get(i) == Some(&b'.') {
        i = i.saturating_add(1);
        let frac_len = digit_run(b, i);
        frac_digits = b.get(i..i.saturating_add(frac_len)).unwrap_or_default();
        i = i.saturating_add(frac_len);
    }
    if int_digits.is_empty() && frac_digits.is_empty() {
        return None;
    }
    // Exponent.
    let mut exp: i64 = 0;
    if matches!(b.get(i), Some(b'e' | b'E')) {
        let mut j = i.saturating_add(1);
        let negative_exp = match b.get(j) {
            Some(b'-') => {
                j = j.saturating_add(1);
                true
            }
            Some(b'+') => {
                j = j.saturating_add(1);
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
            j = j.saturating_add(1);
        }
        if j == start {
            return None;
        }
        exp = if negative_exp { -e } else { e };
        i = j;
    }
    // The significand: leading zeros skipped (so the 19 digits a u64 holds
    // are all significant) and trailing zeros moved into the exponent, so
    // every spelling of one number (`1.50`, `15e-1`, `0.15E1`) gives the
    // same digits and exponent, and so the same value, exact or not.
    int_digits = strip_leading_zeros(int_digits);
    if int_digits.is_empty() {
        let stripped = strip_leading_zeros(frac_digits);
        exp = exp.saturating_sub((frac_digits.len() - stripped.len()) as i64);
        frac_digits = stripped;
    }
    frac_digits = strip_trailing_zeros(frac_digits);
    if frac_digits.is_empty() {
        let stripped = strip_trailing_zeros(int_digits);
        exp = exp.saturating_add((int_digits.len() - stripped.len()) as i64);
        int_digits = stripped;
    }
    let mut w: u64 = 0;
    let mut significant = 0u32;
    let dropped_int = accumulate(&mut w, &mut significant, int_digits);
    let dropped_frac = accumulate(&mut w, &mut significant, frac_digits);
    exp = exp
        .saturating_add(dropped_int as i64)
        .saturating_sub((frac_digits.len() - dropped_frac) as i64);
    let truncated = dropped_int + dropped_frac > 0;

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

const ASCII_ZEROS: u64 = 0x3030_3030_3030_3030;

/// The top bit of each byte of `v` set where that byte is not an ASCII
/// digit, exact up to and including the first such byte: digits below it
/// neither borrow in the subtraction nor carry in the addition, so the
/// lowest flagged byte is the first non-digit.
#[inline(always)]
fn non_digits(v: u64) -> u64 {
    (v.wrapping_sub(ASCII_ZEROS) | v.wrapping_add(0x4646_4646_4646_4646)) & 0x8080_8080_8080_8080
}

/// Number of ASCII digits at `b[i..]`, eight bytes at a time.
#[inline(always)]
fn digit_run(b: &[u8], i: usize) -> usize {
    let mut n = i;
    loop {
        let Some(chunk) = b.get(n..n.saturating_add(8)) else {
            let rest = b.get(n..).unwrap_or_default();
            return n - i + rest.iter().take_while(|c| c.is_ascii_digit()).count();
        };
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let m = non_digits(u64::from_le_bytes(word));
        if m != 0 {
            return n - i + (m.trailing_zeros() / 8) as usize;
        }
        n = n.saturating_add(8);
    }
}

#[inline(always)]
fn strip_leading_zeros(mut d: &[u8]) -> &[u8] {
    while let [b'0', rest @ ..] = d {
        d = rest;
    }
    d
}

#[inline(always)]
fn strip_trailing_zeros(mut d: &[u8]) -> &[u8] {
    while let [rest @ .., b'0'] = d {
        d = rest;
    }
    d
}

/// Append `digits` (all ASCII digits) to `w` while it holds fewer than 19
/// digits, eight at a time; returns how many digits did not fit.
#[inline(always)]
fn accumulate(w: &mut u64, significant: &mut u32, mut digits: &[u8]) -> usize {
    while *significant <= 11 {
        let Some((chunk, rest)) = digits.split_first_chunk::<8>() else {
            break;
        };
        *w = w
            .wrapping_mul(100_000_000)
            .wrapping_add(eight_digits(*chunk));
        *significant += 8;
        digits = rest;
    }
    let room = 19u32.saturating_sub(*significant) as usize;
    let take = digits.len().min(room);
    for &c in digits.get(..take).unwrap_or_default() {
        *w = w
            .wrapping_mul(10)
            .wrapping_add(u64::from(c.wrapping_sub(b'0')));
    }
    *significant += take as u32;
    digits.len() - take
}

/// The value of eight ASCII digits, first digit most significant, with a
/// few multiplies over all lanes at once (SWAR) instead of a serial
/// multiply-add chain: pairs, then quads, then the whole.
#[inline(always)]
fn eight_digits(chunk: [u8; 8]) -> u64 {
    let d = u64::from_le_bytes(chunk).wrapping_sub(ASCII_ZEROS);
    let pairs = (d.wrapping_mul(10).wrapping_add(d >> 8)) & 0x00FF_00FF_00FF_00FF;
    let quads = (pairs.wrapping_mul(100 << 16 | 1) >> 16) & 0x0000_FFFF_0000_FFFF;
    (quads.wrapping_mul(10_000 << 32 | 1) >> 32) & 0xFFFF_FFFF
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
            "0",
            "-0",
            "+1",
            "1.",
            ".5",
            "1.5",
            "-1.5e3",
            "1E-3",
            "1e+3",
            "00012",
            "0.000",
            "123456789012345678901234567890",
        ] {
            assert!(full(ok).is_some(), "{ok}");
        }
        for bad in [
            "", "-", "+", ".", "e5", "1e", "1e+", "inf", "-inf", "nan", "NaN", "0x10", " 1", "1 ",
            "1_000", "1.5.5", "--1", "∞",
        ] {
            assert!(full(bad).is_none(), "{bad}");
        }
        assert_eq!(scan_float(b"1.5,2").unwrap().len, 3);
        assert_eq!(scan_float(b"-2e-3\n").unwrap().len, 5);
    }

    #[test]
    fn eight_digits_at_once() {
        assert_eq!(eight_digits(*b"12345678"), 12_345_678);
        assert_eq!(eight_digits(*b"00000009"), 9);
        assert_eq!(eight_digits(*b"99999999"), 99_999_999);
        assert_eq!(digit_run(b"12345678901234567,", 0), 17);
        assert_eq!(digit_run(b"x123", 1), 3);
        assert_eq!(digit_run(b"123", 3), 0);
        for (i, bad) in [b'/', b':', 0x80, b' ', b'e', 0xff, 0].iter().enumerate() {
            let mut text = *b"1234567890123456";
            text[i + 3] = *bad;
            assert_eq!(digit_run(&text, 0), i + 3, "{bad}");
        }
        let mut w = 0;
        let mut sig = 0;
        assert_eq!(accumulate(&mut w, &mut sig, b"1234567890123456789012"), 3);
        assert_eq!((w, sig), (1_234_567_890_123_456_789, 19));
        let text = b"0.1234567890123456789012";
        assert_eq!(
            scan_float(text).unwrap().value,
            Some(0.123_456_789_012_345_68)
        );
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

        /// Every spelling of a number scans to the same value.
        #[test]
        fn spellings_agree(f in any::<f64>().prop_filter("finite", |f| f.is_finite())) {
            let debug = format!("{f:?}");
            let padded = if debug.contains('.') && !debug.contains('e') {
                format!("{debug}00")
            } else {
                debug.clone()
            };
            let texts = [
                debug,
                padded,
                format!("{f:e}"),
                format!("{f:E}"),
                format!("{f}"),
                format!("0{f:e}").replace("0-", "-0"),
            ];
            let values: Vec<Option<(Option<f64>, bool)>> = texts
                .iter()
                .map(|t| full(t).map(|d| (d.value, d.exact)))
                .collect();
            for (t, v) in texts.iter().zip(&values) {
                prop_assert_eq!(v, &values[0], "{} vs {}", t, &texts[0]);
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
