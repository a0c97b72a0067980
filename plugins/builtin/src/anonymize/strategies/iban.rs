//! iban

use super::prelude::*;
use crate::anonymize::prp::Prp;

declare_strategy! {
    /// Replaces an IBAN with another of the same country and layout whose check digits are
    /// right (ISO 13616, mod 97), so validation code still accepts it. The country code is
    /// kept; in the rest (the BBAN: bank, branch and account), digits stay digits and letters
    /// stay letters, each set replaced by a keyed permutation, so distinct valid IBANs stay
    /// distinct (`preserved`). The output is in upper case; written with spaces, it comes out
    /// grouped by four (`GB82 WEST 1234 …`), otherwise in one block. The bank code changes too,
    /// so the output names no real bank. Check digits are recomputed: an input with wrong check
    /// digits comes out like the valid IBAN it is a typo of.
    ///
    /// ```kdl
    /// column "iban" "iban"
    /// ```
    pub struct Iban {
        name: "iban",
        summary: "IBAN with a new valid account number in the same country and layout",
        accepts: &[TypeClass::Text],
        deterministic: true,
        uniqueness: Preserved,
        params: [],
    }
}

struct Accounts {
    prp: Prp,
}

/// The longest IBAN (ISO 13616: 34 characters).
const MAX_LEN: usize = 34;
/// Letters permuted together: 26¹³ < 2⁶⁴.
const LETTER_CHUNK: usize = 13;
/// Tweaks of the letter chunks: apart from the digits' (small country numbers).
const LETTER_TWEAK: u64 = 1 << 62;

/// The check digits of `country` (2 upper-case letters) and `bban` (upper-case letters and
/// digits): 98 − (BBAN + country + "00" as a number, letters as 10–35) mod 97.
fn check_digits(country: &[u8], bban: &[u8]) -> u32 {
    let mut rem = 0u32;
    for &c in bban.iter().chain(country).chain(b"00") {
        rem = match c {
            b'0'..=b'9' => (rem * 10 + u32::from(c - b'0')) % 97,
            _ => (rem * 100 + u32::from(c - b'A') + 10) % 97,
        };
    }
    98 - rem
}

impl Accounts {
    fn permute(&self, country: &[u8], bban: &mut [u8]) {
        let tweak = u64::from(country[0] - b'A') * 26 + u64::from(country[1] - b'A');
        let mut digits = [0u8; MAX_LEN];
        let mut letters = [0u8; MAX_LEN];
        let (mut nd, mut nl) = (0, 0);
        for &c in bban.iter() {
            if c.is_ascii_digit() {
                digits[nd] = c;
                nd += 1;
            } else {
                letters[nl] = c - b'A';
                nl += 1;
            }
        }
        self.prp.digits(&mut digits[..nd], tweak);
        for (i, chunk) in letters[..nl].chunks_mut(LETTER_CHUNK).enumerate() {
            let n = 26u64.pow(chunk.len() as u32);
            let x = chunk.iter().fold(0u64, |acc, &l| acc * 26 + u64::from(l));
            let mut y = self.prp.below(n, x, LETTER_TWEAK | tweak << 8 | i as u64);
            for l in chunk.iter_mut().rev() {
                *l = (y % 26) as u8;
                y /= 26;
            }
        }
        let (mut d, mut l) = (digits[..nd].iter(), letters[..nl].iter());
        for c in bban.iter_mut() {
            *c = if c.is_ascii_digit() { *d.next().expect("counted") } else { b'A' + l.next().expect("counted") };
        }
    }
}

impl Masker for Accounts {
    fn mask(&self, input: &str, _: &dyn Row, out: &mut String) -> Result<Out, String> {
        let bad = || "not an IBAN".to_string();
        let mut iban = [0u8; MAX_LEN];
        let mut n = 0;
        for b in input.bytes().filter(|&b| b != b' ') {
            if !b.is_ascii_alphanumeric() {
                return Err(bad());
            }
            *iban.get_mut(n).ok_or_else(bad)? = b.to_ascii_uppercase();
            n += 1;
        }
        let iban = &mut iban[..n];
        if n < 5 || !iban[..2].iter().all(u8::is_ascii_uppercase) || !iban[2..4].iter().all(u8::is_ascii_digit) {
            return Err(bad());
        }
        let (country, rest) = iban.split_at_mut(2);
        let (check, bban) = rest.split_at_mut(2);
        self.permute(country, bban);
        let c = check_digits(country, bban);
        check.copy_from_slice(&[b'0' + (c / 10) as u8, b'0' + (c % 10) as u8]);
        let grouped = input.contains(' ');
        for (i, &b) in iban.iter().enumerate() {
            if grouped && i > 0 && i % 4 == 0 {
                out.push(' ');
            }
            out.push(char::from(b));
        }
        Ok(Out::Value)
    }
}

impl Strategy for Iban {
    fn build(&self, _: &Params, cx: &BuildCx<'_>) -> Result<Box<dyn Masker>, String> {
        Ok(Box::new(Accounts { prp: cx.prp() }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ISO 13616 validation: the rearranged number mod 97 is 1.
    fn valid(iban: &str) -> bool {
        let b: Vec<u8> = iban.bytes().filter(|&b| b != b' ').collect();
        let mut rem = 0u32;
        for &c in b[4..].iter().chain(&b[..4]) {
            rem = match c {
                b'0'..=b'9' => (rem * 10 + u32::from(c - b'0')) % 97,
                b'A'..=b'Z' => (rem * 100 + u32::from(c - b'A') + 10) % 97,
                _ => return false,
            };
        }
        rem == 1
    }

    fn shape(s: &str) -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_digit() {
                    '9'
                } else if c.is_ascii_alphabetic() {
                    'A'
                } else {
                    c
                }
            })
            .collect()
    }

    #[test]
    fn outputs_validate_and_keep_the_country_and_layout() {
        let m = masker(&Iban, &[]);
        for input in [
            "GB82 WEST 1234 5698 7654 32",
            "DE89370400440532013000",
            "FR7630006000011234567890189",
            "NL91ABNA0417164300",
        ] {
            assert!(valid(input), "the test input {input}");
            let out = masks(&*m, input).unwrap();
            assert!(valid(&out), "{input} -> {out}");
            assert_eq!(out[..2], input[..2]);
            assert_eq!(shape(&out[4..]), shape(&input[4..]), "{out}");
            assert_ne!(out, input);
            assert_eq!(masks(&*m, input).unwrap(), out);
        }
        assert_eq!(
            masks(&*m, "gb82 west 1234 5698 7654 32").unwrap(),
            masks(&*m, "GB82 WEST 1234 5698 7654 32").unwrap()
        );
        assert!(!masks(&*m, "GB82WEST12345698765432").unwrap().contains(' '));
        for bad in [
            "",
            "GB82",
            "1B82WEST12345698765432",
            "GBX2WEST12345698765432",
            "GB82-WEST-1234",
            "GB82WEST1234569876543212345678901234",
        ] {
            let mut out = String::new();
            assert!(m.mask(bad, &crate::anonymize::strategy::NoRow, &mut out).is_err(), "{bad}");
        }
    }

    #[test]
    fn distinct_ibans_stay_distinct() {
        let m = masker(&Iban, &[]);
        let mut seen = std::collections::HashSet::new();
        for i in 0..5000u64 {
            let bban = format!("{}{}12345698{:06}", char::from(b'A' + (i % 26) as u8), "EST", i / 26);
            let c = check_digits(b"GB", bban.as_bytes());
            let out = masks(&*m, &format!("GB{c:02}{bban}")).unwrap();
            assert!(valid(&out), "{out}");
            assert!(seen.insert(out));
        }
    }
}
