//! username

use super::prelude::*;
use crate::anonymize::prp::Prp;
use crate::anonymize::value::{base32, pad};

declare_strategy! {
    /// Replaces a user name with `prefix` followed by a keyed permutation of the original
    /// written in base32 (`user_nfxgq4dl…`): lower-case letters and digits only, valid as a
    /// login, a handle or a URL segment. It is `preserved`: distinct user names stay distinct,
    /// so a unique index on the column keeps holding, and the same name gives the same result
    /// in every table and on every run with the same key. The output is longer than the input
    /// (about 1.6×, plus the prefix): on a short `varchar(n)` a value that does not fit is an
    /// error, never cut (cutting would break uniqueness).
    ///
    /// ```kdl
    /// column "login" "username"
    /// column "handle" "username" prefix="u"
    /// ```
    pub struct Username {
        name: "username",
        summary: "user name replaced by a keyed permutation in base32, after a prefix",
        accepts: &[TypeClass::Text],
        deterministic: true,
        uniqueness: Preserved,
        params: [("prefix", Text, Some("user_"), "text put before the permuted name")],
    }
}

struct Permuted {
    prp: Prp,
    prefix: String,
}

impl Masker for Permuted {
    fn mask(&self, input: &str, _: &dyn Row, out: &mut String) -> Result<Out, String> {
        let mut buf = Vec::with_capacity(input.len() + 2);
        pad(input.as_bytes(), &mut buf);
        self.prp.bytes(&mut buf);
        out.push_str(&self.prefix);
        base32(&buf, out);
        Ok(Out::Value)
    }
}

impl Strategy for Username {
    fn build(&self, params: &Params, cx: &BuildCx<'_>) -> Result<Box<dyn Masker>, String> {
        Ok(Box::new(Permuted { prp: cx.prp(), prefix: params.text("prefix").to_string() }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_names_are_permuted_after_the_prefix_and_stay_distinct() {
        let m = masker(&Username, &[]);
        let a = masks(&*m, "alice").unwrap();
        let rest = a.strip_prefix("user_").unwrap();
        assert!(!rest.is_empty() && rest.chars().all(|c| c.is_ascii_lowercase() || ('2'..='7').contains(&c)), "{a}");
        assert!(!a.contains("alice"));
        assert_eq!(masks(&*m, "alice").unwrap(), a);
        let mut seen = std::collections::HashSet::new();
        for i in 0..20_000 {
            assert!(seen.insert(masks(&*m, &format!("user{i}")).unwrap()), "user{i}");
        }
        for short in ["", "a", "b", "ab"] {
            assert!(seen.insert(masks(&*m, short).unwrap()), "{short:?}");
        }
    }

    #[test]
    fn the_prefix_is_configurable() {
        let m = masker(&Username, &[("prefix", "u")]);
        let a = masks(&*m, "bob").unwrap();
        assert!(a.starts_with('u') && !a.starts_with("user_"), "{a}");
        assert!(
            masks(&*masker(&Username, &[("prefix", "")]), "bob").unwrap().chars().all(|c| c.is_ascii_alphanumeric())
        );
    }
}
