//! last-name

use super::prelude::*;
use crate::anonymize::words::List;

declare_strategy! {
    /// Replaces a family name with a made-up one from the word lists of `locale` (`mixed`: any
    /// locale). The same name gives the same replacement with the same key, in every table and
    /// on every run. Many names map to one: it is `lossy`, so a unique column needs another
    /// strategy.
    ///
    /// ```kdl
    /// column "last_name" "last-name"
    /// column "nachname" "last-name" locale="de"
    /// ```
    pub struct LastName {
        name: "last-name",
        summary: "family name from word lists (several locales)",
        accepts: &[TypeClass::Text],
        deterministic: true,
        uniqueness: Lossy,
        params: [("locale", Text, Some("en"), "where names come from: en, fr, de, es, it, pt, nl, pl, ja, or mixed")],
    }
}

impl Strategy for LastName {
    fn build(&self, params: &Params, cx: &BuildCx<'_>) -> Result<Box<dyn Masker>, String> {
        Ok(Box::new(super::Pick { prf: cx.prf(), words: super::locale_list(params, List::Last)? }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::anonymize::words;

    #[test]
    fn names_come_from_the_locale_list_and_are_stable() {
        for locale in ["en", "fr", "ja", "mixed"] {
            let m = masker(&LastName, &[("locale", locale)]);
            let list = words::list(locale, List::Last);
            let a = masks(&*m, "Martin").unwrap();
            assert!(list.contains(&a.as_str()), "{locale}: {a}");
            assert_eq!(masks(&*m, "Martin").unwrap(), a);
            let distinct: std::collections::HashSet<_> =
                (0..300).map(|i| masks(&*m, &format!("p{i}")).unwrap()).collect();
            assert!(distinct.len() > 30, "{locale}: {}", distinct.len());
            assert!(distinct.iter().all(|n| list.contains(&n.as_str())));
        }
        assert!(!masks(&*masker(&LastName, &[("locale", "ja")]), "Martin").unwrap().is_ascii());
        assert!(masker_with(&LastName, &[("locale", "xx")], ColumnType::text()).is_err());
    }
}
