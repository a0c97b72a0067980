//! street-address

use std::fmt::Write;

use super::prelude::*;
use crate::anonymize::key::Prf;
use crate::anonymize::words::List;

declare_strategy! {
    /// Replaces a street address with a made-up one: a house number from 1 to 999 and a street
    /// from the word lists of `locale`, in that locale's order — `12 Oak Street`,
    /// `12 Rue de la Paix` (en, fr, es, it, pt, and `mixed`, which draws streets from every
    /// locale), `Hauptstraße 12` (de, nl, pl), `中央通り 12` (ja). Only the street line: no
    /// postcode or city (see `postcode` and `city`). The same address gives the same
    /// replacement with the same key. Addresses repeat: it is `lossy`.
    ///
    /// ```kdl
    /// column "address_line1" "street-address"
    /// column "strasse" "street-address" locale="de"
    /// ```
    pub struct StreetAddress {
        name: "street-address",
        summary: "house number and street from word lists (several locales)",
        accepts: &[TypeClass::Text],
        deterministic: true,
        uniqueness: Lossy,
        params: [("locale", Text, Some("en"), "where streets come from: en, fr, de, es, it, pt, nl, pl, ja, or mixed")],
    }
}

struct Addresses {
    prf: Prf,
    streets: &'static [&'static str],
    /// `Hauptstraße 12` rather than `12 Oak Street`.
    number_last: bool,
}

impl Masker for Addresses {
    fn mask(&self, input: &str, _: &dyn Row, out: &mut String) -> Result<Out, String> {
        let mut s = self.prf.stream(input.as_bytes());
        let number = s.below(999) + 1;
        let street = s.pick(self.streets);
        let written =
            if self.number_last { write!(out, "{street} {number}") } else { write!(out, "{number} {street}") };
        written.expect("writing to a String cannot fail");
        Ok(Out::Value)
    }
}

impl Strategy for StreetAddress {
    fn build(&self, params: &Params, cx: &BuildCx<'_>) -> Result<Box<dyn Masker>, String> {
        Ok(Box::new(Addresses {
            prf: cx.prf(),
            streets: super::locale_list(params, List::Street)?,
            number_last: matches!(params.text("locale"), "de" | "nl" | "pl" | "ja"),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::anonymize::words;

    /// The number and the street of an address, in the locale's order.
    fn split(address: &str, number_last: bool) -> (u32, &str) {
        let (number, street) = if number_last {
            let (street, number) = address.rsplit_once(' ').unwrap();
            (number, street)
        } else {
            address.split_once(' ').unwrap()
        };
        (number.parse().unwrap(), street)
    }

    #[test]
    fn addresses_have_a_number_and_a_street_in_the_locale_order() {
        for (locale, number_last) in [("en", false), ("fr", false), ("mixed", false), ("de", true), ("ja", true)] {
            let m = masker(&StreetAddress, &[("locale", locale)]);
            let streets = words::list(locale, List::Street);
            let mut numbers = std::collections::HashSet::new();
            for i in 0..500 {
                let a = masks(&*m, &format!("{i} Elm Road")).unwrap();
                let (number, street) = split(&a, number_last);
                assert!((1..=999).contains(&number), "{locale}: {a}");
                assert!(streets.contains(&street), "{locale}: {a}");
                numbers.insert(number);
            }
            assert!(numbers.len() > 200, "{locale}: {}", numbers.len());
        }
    }

    #[test]
    fn addresses_are_stable_and_locales_are_checked() {
        let m = masker(&StreetAddress, &[]);
        let a = masks(&*m, "221B Baker Street").unwrap();
        assert_eq!(masks(&*m, "221B Baker Street").unwrap(), a);
        assert_ne!(masks(&*m, "221C Baker Street").unwrap(), a);
        assert!(masker_with(&StreetAddress, &[("locale", "xx")], ColumnType::text()).is_err());
    }
}
