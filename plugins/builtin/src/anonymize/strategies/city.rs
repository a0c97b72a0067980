//! city

use super::prelude::*;
use crate::anonymize::words::List;

declare_strategy! {
    /// Replaces a city with one from the word lists of `locale` (`mixed`: any locale). The same
    /// city gives the same replacement with the same key, in every table and on every run, so
    /// grouping by city still groups the same rows together. Many cities map to one: it is
    /// `lossy`.
    ///
    /// ```kdl
    /// column "city" "city"
    /// column "ville" "city" locale="fr"
    /// ```
    pub struct City {
        name: "city",
        summary: "city from word lists (several locales)",
        accepts: &[TypeClass::Text],
        deterministic: true,
        uniqueness: Lossy,
        params: [("locale", Text, Some("en"), "where cities come from: en, fr, de, es, it, pt, nl, pl, ja, or mixed")],
    }
}

impl Strategy for City {
    fn build(&self, params: &Params, cx: &BuildCx<'_>) -> Result<Box<dyn Masker>, String> {
        Ok(Box::new(super::Pick { prf: cx.prf(), words: super::locale_list(params, List::City)? }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::anonymize::words;

    #[test]
    fn cities_come_from_the_locale_list_and_are_stable() {
        for locale in ["en", "fr", "ja", "mixed"] {
            let m = masker(&City, &[("locale", locale)]);
            let list = words::list(locale, List::City);
            let a = masks(&*m, "Lyon").unwrap();
            assert!(list.contains(&a.as_str()), "{locale}: {a}");
            assert_eq!(masks(&*m, "Lyon").unwrap(), a);
            let distinct: std::collections::HashSet<_> =
                (0..300).map(|i| masks(&*m, &format!("p{i}")).unwrap()).collect();
            assert!(distinct.len() > 30, "{locale}: {}", distinct.len());
            assert!(distinct.iter().all(|n| list.contains(&n.as_str())));
        }
        assert!(!masks(&*masker(&City, &[("locale", "ja")]), "Lyon").unwrap().is_ascii());
        assert!(masker_with(&City, &[("locale", "xx")], ColumnType::text()).is_err());
    }
}
