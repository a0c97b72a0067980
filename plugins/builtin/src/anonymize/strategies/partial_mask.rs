//! partial-mask

use super::prelude::*;

declare_strategy! {
    /// Keeps the first `keep-first` and the last `keep-last` characters of the value and
    /// replaces every character between them with `mask`: `4111111111111111` becomes
    /// `************1111` with the defaults, so a support screen can still show "the card
    /// ending in 1111". Lengths count characters, not bytes. A value that is not longer than
    /// `keep-first + keep-last` is masked whole, so a short value never comes out unchanged.
    /// Not keyed; the output keeps the length and the kept characters, and many values give
    /// one output: it is `lossy`.
    ///
    /// ```kdl
    /// column "card_number" "partial-mask"
    /// column "phone" "partial-mask" keep-first=3 keep-last=2 mask="x"
    /// ```
    pub struct PartialMask {
        name: "partial-mask",
        summary: "keep the first and last characters, mask the ones between",
        accepts: &[TypeClass::Text],
        deterministic: true,
        uniqueness: Lossy,
        params: [
            ("keep-first", Int, Some("0"), "characters kept at the start"),
            ("keep-last", Int, Some("4"), "characters kept at the end"),
            ("mask", Text, Some("*"), "the character that replaces the others"),
        ],
    }
}

struct Partial {
    keep_first: usize,
    keep_last: usize,
    mask: char,
}

impl Masker for Partial {
    fn mask(&self, input: &str, _: &dyn Row, out: &mut String) -> Result<Out, String> {
        let length = input.chars().count();
        if length <= self.keep_first.saturating_add(self.keep_last) {
            out.extend(std::iter::repeat_n(self.mask, length));
        } else {
            let last_start = length - self.keep_last;
            out.extend(
                input.chars().enumerate().map(
                    |(i, c)| {
                        if i < self.keep_first || i >= last_start { c } else { self.mask }
                    },
                ),
            );
        }
        Ok(Out::Value)
    }
}

impl Strategy for PartialMask {
    fn build(&self, params: &Params, _: &BuildCx<'_>) -> Result<Box<dyn Masker>, String> {
        let count = |name: &str| {
            let n = params.int(name);
            usize::try_from(n).map_err(|_| format!("`{name}` is a number of characters (0 or more), not {n}"))
        };
        let (keep_first, keep_last) = (count("keep-first")?, count("keep-last")?);
        let mut mask = params.text("mask").chars();
        let (Some(mask), None) = (mask.next(), mask.next()) else {
            return Err("`mask` is one character".into());
        };
        Ok(Box::new(Partial { keep_first, keep_last, mask }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parameters as written in a profile.
    type Settings = &'static [(&'static str, &'static str)];

    fn masked(params: Settings, input: &str) -> String {
        masks(&*masker(&PartialMask, params), input).unwrap()
    }

    #[test]
    fn the_ends_are_kept_and_the_middle_masked() {
        let cases: &[(Settings, &str, &str)] = &[
            (&[], "4111111111111111", "************1111"),
            (&[], "12345", "*2345"),
            (&[], "1234", "****"),
            (&[], "12", "**"),
            (&[], "", ""),
            (&[("keep-first", "3"), ("keep-last", "2"), ("mask", "x")], "0612345678", "061xxxxx78"),
            (&[("keep-first", "2"), ("keep-last", "0")], "secret", "se****"),
            (&[("keep-first", "1"), ("keep-last", "1")], "Zoë Ünal", "Z******l"),
            (&[("keep-first", "1"), ("keep-last", "1")], "Zö", "**"),
            (&[("keep-last", "2"), ("mask", "•")], "東京都港区", "•••港区"),
        ];
        for (params, input, expected) in cases {
            assert_eq!(masked(params, input), *expected, "{params:?} {input}");
        }
    }

    #[test]
    fn negative_counts_and_bad_masks_are_refused() {
        for bad in [&[("keep-first", "-1")][..], &[("keep-last", "-4")], &[("mask", "")], &[("mask", "**")]] {
            assert!(masker_with(&PartialMask, bad, ColumnType::text()).is_err(), "{bad:?}");
        }
        let m = masker(&PartialMask, &[("keep-first", "9223372036854775807"), ("keep-last", "5")]);
        assert_eq!(masks(&*m, "abc").unwrap(), "***");
    }
}
