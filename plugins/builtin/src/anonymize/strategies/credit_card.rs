//! credit-card

use super::prelude::*;
use crate::anonymize::prp::Prp;

declare_strategy! {
    /// Replaces a payment card number (12 to 19 digits, spaces and dashes kept where they are)
    /// with another that passes the Luhn check, so validation code still accepts it. The first
    /// `keep-first` digits are kept (the default 1 keeps the brand: 4 for Visa, 5 for
    /// Mastercard); with `keep-last-four=#true` the last four digits are kept too, as receipts
    /// show them, and the digit before them is chosen so that the number stays Luhn-valid.
    /// The digits in between are a keyed permutation, so distinct valid numbers stay distinct
    /// (`preserved`). A number that fails the Luhn check still comes out valid, and then it may
    /// meet the output of the valid number it differs from only in its check digit. `keep-first`
    /// is lowered on numbers too short to leave a digit to mask.
    ///
    /// ```kdl
    /// column "card_number" "credit-card"
    /// column "pan" "credit-card" keep-first=6 keep-last-four=#true
    /// ```
    pub struct CreditCard {
        name: "credit-card",
        summary: "card number with new Luhn-valid digits, brand and last four optionally kept",
        accepts: &[TypeClass::Text],
        deterministic: true,
        uniqueness: Preserved,
        params: [
            ("keep-first", Int, Some("1"), "leading digits kept (0–8; 6 keeps the issuer's BIN)"),
            ("keep-last-four", Bool, Some("false"), "keep the last four digits"),
        ],
    }
}

struct Cards {
    prp: Prp,
    keep_first: usize,
    keep_last_four: bool,
}

/// The Luhn sum of `digits`, leaving out the digit at `skip`.
fn luhn_sum(digits: &[u8], skip: usize) -> u32 {
    let n = digits.len();
    let mut sum = 0;
    for (i, d) in digits.iter().enumerate() {
        if i != skip {
            sum += weight(u32::from(d - b'0'), n - 1 - i);
        }
    }
    sum
}

/// A digit's contribution at `from_right` places from the last digit (doubled every other).
fn weight(d: u32, from_right: usize) -> u32 {
    if from_right % 2 == 1 {
        let x = 2 * d;
        if x > 9 { x - 9 } else { x }
    } else {
        d
    }
}

/// Set the digit at `at` so that `digits` pass the Luhn check (one digit always does: a
/// digit's contribution is a bijection of 0..=9).
fn fix(digits: &mut [u8], at: usize) {
    let rest = luhn_sum(digits, at);
    let from_right = digits.len() - 1 - at;
    let d = (0..10).find(|&d| (rest + weight(d, from_right)).is_multiple_of(10)).expect("a digit fits");
    digits[at] = b'0' + d as u8;
}

impl Masker for Cards {
    fn mask(&self, input: &str, _: &dyn Row, out: &mut String) -> Result<Out, String> {
        let bad = || "not a card number (12 to 19 digits, spaces or dashes)".to_string();
        let mut digits = [0u8; 19];
        let mut n = 0;
        for b in input.bytes() {
            match b {
                b'0'..=b'9' => {
                    *digits.get_mut(n).ok_or_else(bad)? = b;
                    n += 1;
                }
                b' ' | b'-' => {}
                _ => return Err(bad()),
            }
        }
        if n < 12 {
            return Err(bad());
        }
        let digits = &mut digits[..n];
        // The digit computed for the check: the last one, or the one before the kept four.
        let computed = if self.keep_last_four { n - 5 } else { n - 1 };
        let first = self.keep_first.min(computed);
        self.prp.digits(&mut digits[first..computed], n as u64);
        fix(digits, computed);
        let mut next = digits.iter();
        for c in input.chars() {
            out.push(if c.is_ascii_digit() { char::from(*next.next().expect("counted")) } else { c });
        }
        Ok(Out::Value)
    }
}

impl Strategy for CreditCard {
    fn build(&self, params: &Params, cx: &BuildCx<'_>) -> Result<Box<dyn Masker>, String> {
        let keep_first = params.int("keep-first");
        if !(0..=8).contains(&keep_first) {
            return Err(format!("`keep-first` is between 0 and 8 digits, not {keep_first}"));
        }
        Ok(Box::new(Cards {
            prp: cx.prp(),
            keep_first: keep_first as usize,
            keep_last_four: params.bool("keep-last-four"),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `digits` (ASCII) pass the Luhn check.
    fn luhn_valid(digits: &[u8]) -> bool {
        luhn_sum(digits, usize::MAX).is_multiple_of(10)
    }

    fn digits(s: &str) -> Vec<u8> {
        s.bytes().filter(u8::is_ascii_digit).collect()
    }

    /// A Luhn-valid number of `len` digits starting with `prefix`, from `i`.
    fn valid(prefix: &str, i: u64, len: usize) -> String {
        let mut d = format!("{prefix}{i:0w$}0", w = len - prefix.len() - 1).into_bytes();
        let last = d.len() - 1;
        fix(&mut d, last);
        String::from_utf8(d).unwrap()
    }

    #[test]
    fn luhn_is_computed_right() {
        assert!(luhn_valid(b"4111111111111111"));
        assert!(luhn_valid(b"79927398713"));
        assert!(!luhn_valid(b"4111111111111112"));
        assert_eq!(valid("41111111111111", 1, 16), "4111111111111111");
    }

    #[test]
    fn outputs_are_valid_keep_the_layout_and_the_brand() {
        let m = masker(&CreditCard, &[]);
        for input in [
            "4111 1111 1111 1111",
            "5500-0000-0000-0004",
            "378282246310005",
            "6011000990139424",
            "4111111111111112",
            "123456789012",
        ] {
            let out = masks(&*m, input).unwrap();
            assert!(luhn_valid(&digits(&out)), "{out}");
            assert_eq!(out.len(), input.len());
            assert!(out.chars().zip(input.chars()).all(|(a, b)| a.is_ascii_digit() == b.is_ascii_digit()));
            assert_eq!(out[..1], input[..1]);
            assert_ne!(out, input);
            assert_eq!(masks(&*m, input).unwrap(), out);
        }
        for bad in ["", "4111 1111 111", "4111.1111.1111.1111", "41111111111111111111", "4111 1111 1111 111a"] {
            let mut out = String::new();
            assert!(m.mask(bad, &crate::anonymize::strategy::NoRow, &mut out).is_err(), "{bad}");
        }
    }

    #[test]
    fn distinct_valid_numbers_stay_distinct() {
        for params in [&[][..], &[("keep-first", "6"), ("keep-last-four", "true")][..]] {
            let m = masker(&CreditCard, params);
            let mut seen = std::collections::HashSet::new();
            for i in 0..10_000 {
                let out = masks(&*m, &valid("453201", i * 7, 16)).unwrap();
                assert!(luhn_valid(&digits(&out)), "{out}");
                assert!(seen.insert(out));
            }
        }
    }

    #[test]
    fn keep_last_four_keeps_them() {
        let m = masker(&CreditCard, &[("keep-first", "6"), ("keep-last-four", "true")]);
        for input in ["4532 0151 1283 0366", "4111111111111112", "123456789012"] {
            let out = masks(&*m, input).unwrap();
            assert_eq!(out[out.len() - 4..], input[input.len() - 4..], "{out}");
            assert_eq!(out[..6], input[..6]);
            assert!(luhn_valid(&digits(&out)), "{out}");
        }
        let short = masker(&CreditCard, &[("keep-first", "8"), ("keep-last-four", "true")]);
        assert!(luhn_valid(&digits(&masks(&*short, "123456789012").unwrap())));
        assert!(masker_with(&CreditCard, &[("keep-first", "9")], ColumnType::text()).is_err());
        assert!(masker_with(&CreditCard, &[("keep-first", "-1")], ColumnType::text()).is_err());
    }
}
