//! national-id

use super::prelude::*;
use crate::anonymize::prp::Prp;

declare_strategy! {
    /// Replaces an identifier such as a social security or national insurance number
    /// (`123-45-6789`, `1 85 05 78 006 084 36`, `AB123456C`) with another of the same format:
    /// digits stay digits, upper-case letters stay upper-case, lower-case letters stay
    /// lower-case, and every other character is kept in place. All the digits are one keyed
    /// permutation, and all the letters another, so distinct identifiers of the same format
    /// stay distinct (`preserved`). Check digits or keys embedded in the format (the French
    /// NIR's last two digits, for instance) are not recomputed: the output looks right but does
    /// not validate.
    ///
    /// ```kdl
    /// column "ssn" "national-id"
    /// ```
    pub struct NationalId {
        name: "national-id",
        summary: "identifier with its digits and letters permuted, format kept",
        accepts: &[TypeClass::Text],
        deterministic: true,
        uniqueness: Preserved,
        params: [],
    }
}

struct Identifiers {
    prp: Prp,
}

/// Letters permuted together: 26¹³ < 2⁶⁴.
const LETTER_CHUNK: usize = 13;
/// The letters' tweaks, apart from the digits' (0).
const LETTER_TWEAK: u64 = 1 << 62;

impl Masker for Identifiers {
    fn mask(&self, input: &str, _: &dyn Row, out: &mut String) -> Result<Out, String> {
        let bytes = input.as_bytes();
        let mut digits: Vec<u8> = bytes.iter().copied().filter(u8::is_ascii_digit).collect();
        let mut letters: Vec<u8> =
            bytes.iter().filter(|b| b.is_ascii_alphabetic()).map(|b| b.to_ascii_lowercase() - b'a').collect();
        self.prp.digits(&mut digits, 0);
        for (i, chunk) in letters.chunks_mut(LETTER_CHUNK).enumerate() {
            let n = 26u64.pow(chunk.len() as u32);
            let x = chunk.iter().fold(0u64, |acc, &l| acc * 26 + u64::from(l));
            let mut y = self.prp.below(n, x, LETTER_TWEAK | i as u64);
            for l in chunk.iter_mut().rev() {
                *l = (y % 26) as u8;
                y /= 26;
            }
        }
        // ASCII letters and digits are character boundaries: the runs between them are copied.
        out.reserve(input.len());
        let (mut d, mut l) = (digits.iter(), letters.iter());
        let mut run = 0;
        for (i, &b) in bytes.iter().enumerate() {
            let masked = match b {
                b'0'..=b'9' => *d.next().expect("counted"),
                b'a'..=b'z' => b'a' + l.next().expect("counted"),
                b'A'..=b'Z' => b'A' + l.next().expect("counted"),
                _ => continue,
            };
            out.push_str(&input[run..i]);
            out.push(char::from(masked));
            run = i + 1;
        }
        out.push_str(&input[run..]);
        Ok(Out::Value)
    }
}

impl Strategy for NationalId {
    fn build(&self, _: &Params, cx: &BuildCx<'_>) -> Result<Box<dyn Masker>, String> {
        Ok(Box::new(Identifiers { prp: cx.prp() }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(s: &str) -> String {
        s.chars()
            .map(|c| match c {
                '0'..='9' => '9',
                'a'..='z' => 'a',
                'A'..='Z' => 'A',
                c => c,
            })
            .collect()
    }

    #[test]
    fn the_format_is_kept() {
        let m = masker(&NationalId, &[]);
        for input in
            ["123-45-6789", "1 85 05 78 006 084 36", "AB123456C", "x-Ünal/42", "ABCDEFGHIJKLMNOPQRSTUVWXYZ abc", ""]
        {
            let out = masks(&*m, input).unwrap();
            assert_eq!(shape(&out), shape(input), "{input} -> {out}");
            if !input.is_empty() {
                assert_ne!(out, input);
            }
            assert_eq!(masks(&*m, input).unwrap(), out);
        }
        assert_eq!(masks(&*m, "—/—").unwrap(), "—/—");
    }

    #[test]
    fn distinct_identifiers_stay_distinct() {
        let m = masker(&NationalId, &[]);
        let mut seen = std::collections::HashSet::new();
        for i in 0..10_000 {
            assert!(
                seen.insert(masks(&*m, &format!("{:03}-{:02}-{:04}", i % 1000, i / 1000, i * 7 % 10_000)).unwrap())
            );
        }
        let mut seen = std::collections::HashSet::new();
        for i in 0..26 * 26 {
            let id = format!("{}{}1234", char::from(b'A' + (i / 26) as u8), char::from(b'a' + (i % 26) as u8));
            let out = masks(&*m, &id).unwrap();
            assert_eq!(shape(&out), "Aa9999");
            assert!(seen.insert(out));
        }
    }
}
