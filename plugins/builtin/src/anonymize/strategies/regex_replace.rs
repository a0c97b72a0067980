//! regex-replace

use regex::Regex;

use super::prelude::*;

declare_strategy! {
    /// Replaces every match of the regular expression `pattern` with `replacement` and keeps
    /// the rest of the value: a way to scrub one part of a free-text column (card numbers,
    /// phone numbers, e-mail addresses inside notes). `replacement` may refer to groups of the
    /// match (`$1`, `${name}`; `$$` is a literal `$`). The syntax is that of the Rust `regex`
    /// crate (no look-around or back-references); a pattern that does not compile is an error
    /// when the profile is checked. Not keyed: the same value always gives the same output,
    /// whatever the key. Values without a match are kept as they are, and many values can give
    /// one output: it is `lossy`.
    ///
    /// ```kdl
    /// column "notes" "regex-replace" pattern=#"\d{4}-\d{4}-\d{4}-(\d{4})"# replacement="****-****-****-$1"
    /// column "comment" "regex-replace" pattern=#"[\w.+-]+@[\w-]+\.[\w.]+"# replacement="[email]"
    /// ```
    pub struct RegexReplace {
        name: "regex-replace",
        summary: "replace every match of a regular expression, keep the rest",
        accepts: &[TypeClass::Text],
        deterministic: true,
        uniqueness: Lossy,
        params: [
            ("pattern", Text, None, "the regular expression to replace (Rust `regex` syntax)"),
            ("replacement", Text, Some("*"), "what each match becomes (`$1`, `${name}`: a group of the match)"),
        ],
    }
}

struct Replacer {
    pattern: Regex,
    replacement: String,
}

impl Masker for Replacer {
    fn mask(&self, input: &str, _: &dyn Row, out: &mut String) -> Result<Out, String> {
        out.push_str(&self.pattern.replace_all(input, self.replacement.as_str()));
        Ok(Out::Value)
    }
}

impl Strategy for RegexReplace {
    fn build(&self, params: &Params, _: &BuildCx<'_>) -> Result<Box<dyn Masker>, String> {
        let pattern = params.text("pattern");
        if pattern.is_empty() {
            return Err("`pattern` is empty: it would match between every character".into());
        }
        let pattern = Regex::new(pattern).map_err(|e| format!("`pattern` is not a valid regular expression: {e}"))?;
        Ok(Box::new(Replacer { pattern, replacement: params.text("replacement").to_string() }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replaced(params: &[(&str, &str)], input: &str) -> String {
        masks(&*masker(&RegexReplace, params), input).unwrap()
    }

    #[test]
    fn every_match_is_replaced_and_the_rest_kept() {
        let digits = [("pattern", r"\d")];
        assert_eq!(replaced(&digits, "call 555-0142 now"), "call ***-**** now");
        assert_eq!(replaced(&digits, "no digits"), "no digits");
        assert_eq!(replaced(&[("pattern", r"\d+"), ("replacement", "N")], "a1b22c333"), "aNbNcN");
        let card = [("pattern", r"\d{4}-\d{4}-\d{4}-(\d{4})"), ("replacement", "****-****-****-$1")];
        assert_eq!(replaced(&card, "card 1234-5678-9012-3456 ok"), "card ****-****-****-3456 ok");
        let named = [("pattern", r"(?<user>[a-z]+)@[a-z.]+"), ("replacement", "${user}@example.com")];
        assert_eq!(replaced(&named, "mail bob@corp.fr, eve@x.org"), "mail bob@example.com, eve@example.com");
        assert_eq!(replaced(&[("pattern", "é+"), ("replacement", "$$")], "Zoéé"), "Zo$");
    }

    #[test]
    fn output_is_the_same_for_the_same_input_and_bad_patterns_are_refused() {
        let m = masker(&RegexReplace, &[("pattern", "[aeiou]")]);
        assert_eq!(masks(&*m, "anonymize"), masks(&*m, "anonymize"));
        assert_eq!(masks(&*m, "anonymize").unwrap(), "*n*nym*z*");
        let bad = masker_with(&RegexReplace, &[("pattern", "(unclosed")], ColumnType::text()).err().unwrap();
        assert!(bad.contains("not a valid regular expression"), "{bad}");
        assert!(masker_with(&RegexReplace, &[("pattern", "")], ColumnType::text()).is_err());
        assert!(masker_with(&RegexReplace, &[], ColumnType::text()).is_err());
    }
}
