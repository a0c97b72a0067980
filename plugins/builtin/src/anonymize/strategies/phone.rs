//! phone

use super::prelude::*;
use crate::anonymize::key::Prf;
use crate::anonymize::prp::Prp;

declare_strategy! {
    /// Replaces the digits of a phone number and keeps its format: every character that is not
    /// a digit (`+`, spaces, dashes, parentheses, `ext.`) stays where it is, and the number
    /// keeps as many digits. With `keep-country=#true` (the default) a number written with a
    /// leading `+` keeps its country calling code (`+33 6 12 34 56 78` stays `+33 …`): 1 digit
    /// for codes starting with 1 or 7, 2 digits for the two-digit codes (20, 27, 30–34, 36,
    /// 39, 40, 41, 43–49, 51–58, 60–66, 81, 82, 84, 86, 90–95, 98), 3 otherwise.
    ///
    /// The new digits are derived from the original digits only, so `+1 (555) 010-9999` and
    /// `+1 555 010 9999` get the same new digits, in their own layouts. By default two numbers
    /// may come out the same (`not-guaranteed`); with `unique=#true` the digits are a keyed
    /// permutation instead, so distinct numbers of the same layout stay distinct (`preserved`),
    /// at the cost of a slower mask.
    ///
    /// ```kdl
    /// column "phone" "phone"
    /// column "mobile" "phone" keep-country=#false unique=#true
    /// ```
    pub struct Phone {
        name: "phone",
        summary: "phone number with new digits in the same format, country code kept",
        accepts: &[TypeClass::Text],
        deterministic: true,
        uniqueness: NotGuaranteed,
        params: [
            ("keep-country", Bool, Some("true"), "keep the country calling code of numbers starting with `+`"),
            ("unique", Bool, Some("false"), "permute the digits so distinct numbers stay distinct (`preserved`)"),
        ],
    }
}

struct Digits {
    prf: Prf,
    prp: Prp,
    keep_country: bool,
    unique: bool,
}

/// Digits held on the stack; longer values use the heap.
const STACK_DIGITS: usize = 48;

/// How many leading digits the calling code of `digits` has (ITU-T E.164 zones).
fn country_len(digits: &[u8]) -> usize {
    let two = match digits {
        [] => return 0,
        [b'1' | b'7', ..] => return 1,
        [a, b, ..] => (a - b'0') * 10 + (b - b'0'),
        [_] => return 1,
    };
    let len = match two {
        20 | 27 | 30..=34 | 36 | 39 | 40 | 41 | 43..=49 | 51..=58 | 60..=66 | 81 | 82 | 84 | 86 | 90..=95 | 98 => 2,
        _ => 3,
    };
    len.min(digits.len())
}

impl Digits {
    fn replace(&self, digits: &mut [u8], starts_with_plus: bool) {
        let kept = if self.keep_country && starts_with_plus { country_len(digits) } else { 0 };
        if self.unique {
            self.prp.digits(&mut digits[kept..], 0);
        } else {
            let mut s = self.prf.stream(digits);
            for d in &mut digits[kept..] {
                *d = b'0' + s.below(10) as u8;
            }
        }
    }
}

impl Masker for Digits {
    fn mask(&self, input: &str, _: &dyn Row, out: &mut String) -> Result<Out, String> {
        let bytes = input.as_bytes();
        let count = bytes.iter().filter(|b| b.is_ascii_digit()).count();
        let mut stack = [0u8; STACK_DIGITS];
        let mut heap = Vec::new();
        let digits: &mut [u8] = if count <= STACK_DIGITS {
            &mut stack[..count]
        } else {
            heap.resize(count, 0);
            &mut heap
        };
        for (slot, &b) in digits.iter_mut().zip(bytes.iter().filter(|b| b.is_ascii_digit())) {
            *slot = b;
        }
        self.replace(digits, input.trim_start().starts_with('+'));
        // Digits are ASCII, so every digit is a character boundary: copy the runs between
        // digits as they are.
        out.reserve(input.len());
        let mut next = digits.iter();
        let mut run = 0;
        for (i, b) in bytes.iter().enumerate() {
            if b.is_ascii_digit() {
                out.push_str(&input[run..i]);
                out.push(char::from(*next.next().expect("as many digits as counted")));
                run = i + 1;
            }
        }
        out.push_str(&input[run..]);
        Ok(Out::Value)
    }

    fn uniqueness(&self) -> Option<Uniqueness> {
        self.unique.then_some(Uniqueness::Preserved)
    }
}

impl Strategy for Phone {
    fn build(&self, params: &Params, cx: &BuildCx<'_>) -> Result<Box<dyn Masker>, String> {
        Ok(Box::new(Digits {
            prf: cx.prf(),
            prp: cx.prp(),
            keep_country: params.bool("keep-country"),
            unique: params.bool("unique"),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The layout of a number: its non-digit characters, digits shown as `#`.
    fn layout(s: &str) -> String {
        s.chars().map(|c| if c.is_ascii_digit() { '#' } else { c }).collect()
    }

    #[test]
    fn the_format_and_the_country_code_are_kept() {
        let m = masker(&Phone, &[]);
        for (input, country) in [
            ("+33 6 12 34 56 78", "+33 "),
            ("+1 (555) 010-9999", "+1 "),
            ("+7 912 345 67 89", "+7 "),
            ("+353 87 123 4567", "+353 "),
            ("+44 20 7946 0958", "+44 "),
            ("+2", "+2"),
        ] {
            let out = masks(&*m, input).unwrap();
            assert_eq!(layout(&out), layout(input), "{input} -> {out}");
            assert!(out.starts_with(country), "{input} -> {out}");
            assert_eq!(masks(&*m, input).unwrap(), out);
        }
        let out = masks(&*m, "06 12 34 56 78 poste 12").unwrap();
        assert_eq!(layout(&out), "## ## ## ## ## poste ##");
        assert_ne!(out, "06 12 34 56 78 poste 12");
        assert_eq!(masks(&*m, "n/a – ☎").unwrap(), "n/a – ☎");
        let long = "1".repeat(100);
        assert_eq!(masks(&*m, &long).unwrap().len(), 100);
    }

    #[test]
    fn country_codes_have_their_length() {
        for (digits, len) in [("1555", 1), ("7912", 1), ("33612", 2), ("4420", 2), ("98", 2), ("35387", 3), ("2", 1)] {
            assert_eq!(country_len(digits.as_bytes()), len, "{digits}");
        }
        let m = masker(&Phone, &[("keep-country", "false")]);
        let outs: std::collections::HashSet<_> =
            (0..50).map(|i| masks(&*m, &format!("+33 6 12 34 56 {i:02}")).unwrap()[..3].to_string()).collect();
        assert!(outs.len() > 1, "the country code is masked too");
    }

    #[test]
    fn the_same_digits_in_another_layout_get_the_same_digits() {
        let m = masker(&Phone, &[]);
        let digits = |s: String| s.chars().filter(char::is_ascii_digit).collect::<String>();
        assert_eq!(digits(masks(&*m, "+1 (555) 010-9999").unwrap()), digits(masks(&*m, "+1 555 010 9999").unwrap()));
        assert_ne!(masks(&*m, "+1 555 010 9999").unwrap(), masks(&*m, "+1 555 010 9998").unwrap());
    }

    #[test]
    fn unique_keeps_distinct_numbers_distinct() {
        let m = masker(&Phone, &[("unique", "true")]);
        assert_eq!(m.uniqueness(), Some(Uniqueness::Preserved));
        assert_eq!(masker(&Phone, &[]).uniqueness(), None);
        let mut seen = std::collections::HashSet::new();
        for i in 0..10_000 {
            let out = masks(&*m, &format!("+33 6 12 3{i:04}")).unwrap();
            assert_eq!(layout(&out), "+## # ## #####", "{out}");
            assert!(out.starts_with("+33 "), "{out}");
            assert!(seen.insert(out));
        }
    }
}
