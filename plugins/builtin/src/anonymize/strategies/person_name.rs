//! person-name

use super::prelude::*;
use crate::anonymize::key::Prf;
use crate::anonymize::words::List;

declare_strategy! {
    /// Replaces a person's full name with a made-up one, "First Last" from the word lists of
    /// `locale` (`mixed`: any locale; Japanese names are written family name first). The same
    /// name gives the same replacement with the same key. Names repeat: it is `lossy`.
    ///
    /// ```kdl
    /// column "full_name" "person-name"
    /// column "nom" "person-name" locale="fr"
    /// ```
    pub struct PersonName {
        name: "person-name",
        summary: "full name from word lists (several locales)",
        accepts: &[TypeClass::Text],
        deterministic: true,
        uniqueness: Lossy,
        params: [("locale", Text, Some("en"), "where names come from: en, fr, de, es, it, pt, nl, pl, ja, or mixed")],
    }
}

struct Names {
    prf: Prf,
    first: &'static [&'static str],
    last: &'static [&'static str],
    family_first: bool,
}

impl Masker for Names {
    fn mask(&self, input: &str, _: &dyn Row, out: &mut String) -> Result<Out, String> {
        let mut s = self.prf.stream(input.as_bytes());
        let (first, last) = (s.pick(self.first), s.pick(self.last));
        if self.family_first {
            out.push_str(last);
            out.push(' ');
            out.push_str(first);
        } else {
            out.push_str(first);
            out.push(' ');
            out.push_str(last);
        }
        Ok(Out::Value)
    }
}

impl Strategy for PersonName {
    fn build(&self, params: &Params, cx: &BuildCx<'_>) -> Result<Box<dyn Masker>, String> {
        Ok(Box::new(Names {
            prf: cx.prf(),
            first: super::locale_list(params, List::First)?,
            last: super::locale_list(params, List::Last)?,
            family_first: params.text("locale") == "ja",
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::anonymize::words;

    #[test]
    fn names_come_from_the_lists_and_are_stable() {
        let m = masker(&PersonName, &[]);
        let a = masks(&*m, "Alice Martin").unwrap();
        let (first, last) = a.split_once(' ').unwrap();
        assert!(words::list("en", List::First).contains(&first));
        assert!(words::list("en", List::Last).contains(&last));
        assert_eq!(masks(&*m, "Alice Martin").unwrap(), a);
        let distinct: std::collections::HashSet<_> = (0..200).map(|i| masks(&*m, &format!("p{i}")).unwrap()).collect();
        assert!(distinct.len() > 150);
        let ja = masks(&*masker(&PersonName, &[("locale", "ja")]), "Alice").unwrap();
        assert!(!ja.is_ascii());
        assert!(masker_with(&PersonName, &[("locale", "xx")], ColumnType::text()).is_err());
    }
}
