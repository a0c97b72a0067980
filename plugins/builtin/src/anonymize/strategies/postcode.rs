//! postcode

use super::prelude::*;
use crate::anonymize::key::Prf;

declare_strategy! {
    /// Replaces a postcode with another of the same shape: every ASCII digit becomes a keyed
    /// digit, every ASCII letter a keyed letter of the same case, and everything else (spaces,
    /// dashes, other characters) stays where it is — `SW1A 1AA` becomes something like
    /// `KQ7Z 3BX`, `75008` something like `31942`. The replacement depends on the whole value,
    /// so the same postcode always gives the same result with the same key. The result is not
    /// checked against real postcodes (it may not exist), and distinct postcodes usually stay
    /// distinct, with no guarantee: `not-guaranteed`.
    ///
    /// ```kdl
    /// column "zip" "postcode"
    /// ```
    pub struct Postcode {
        name: "postcode",
        summary: "postcode with its digits and letters replaced, format kept",
        accepts: &[TypeClass::Text],
        deterministic: true,
        uniqueness: NotGuaranteed,
        params: [],
    }
}

struct Shaped {
    prf: Prf,
}

impl Masker for Shaped {
    fn mask(&self, input: &str, _: &dyn Row, out: &mut String) -> Result<Out, String> {
        let mut s = self.prf.stream(input.as_bytes());
        out.extend(input.chars().map(|c| match c {
            '0'..='9' => char::from(b'0' + s.below(10) as u8),
            'a'..='z' => char::from(b'a' + s.below(26) as u8),
            'A'..='Z' => char::from(b'A' + s.below(26) as u8),
            c => c,
        }));
        Ok(Out::Value)
    }
}

impl Strategy for Postcode {
    fn build(&self, _: &Params, cx: &BuildCx<'_>) -> Result<Box<dyn Masker>, String> {
        Ok(Box::new(Shaped { prf: cx.prf() }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `9` for a digit, `a`/`A` for a letter, the character itself otherwise.
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
    fn postcodes_keep_their_shape_and_are_stable() {
        let m = masker(&Postcode, &[]);
        for code in ["75008", "SW1A 1AA", "1012 ab", "H0H-0H0", "00-950", "〒100-0001", ""] {
            let a = masks(&*m, code).unwrap();
            assert_eq!(shape(&a), shape(code), "{code} -> {a}");
            assert_eq!(masks(&*m, code).unwrap(), a);
        }
        assert!(masks(&*m, "〒100-0001").unwrap().starts_with('〒'));
    }

    #[test]
    fn distinct_postcodes_usually_stay_distinct() {
        let m = masker(&Postcode, &[]);
        let outputs: std::collections::HashSet<_> =
            (0..1000).map(|i| masks(&*m, &format!("{:05}", i * 37)).unwrap()).collect();
        // 1000 draws among 100,000 codes: a few collisions at most.
        assert!(outputs.len() > 980, "{}", outputs.len());
        assert_ne!(masks(&*m, "75008").unwrap(), "75008");
    }
}
