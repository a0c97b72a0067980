//! Every built-in strategy, one file each. Adding one: write `strategies/<name>.rs` with
//! `declare_strategy!` and its tests, add it to [`STRATEGIES`], and run
//! `CONFITURE_UPDATE_DOCS=1 cargo test -p confiture-plugins strategy_docs` to write
//! docs/strategies/NAME.md.

#[allow(unused_imports)]
pub(crate) mod prelude {
    pub use crate::anonymize::strategy::{
        ANY, BuildCx, ColumnType, Masker, Out, Params, Row, Strategy, TypeClass, Uniqueness,
    };
    #[cfg(test)]
    pub use crate::anonymize::testing::{masker, masker_with, masks};
    pub use crate::declare_strategy;
}

mod bytea;
mod choice;
mod city;
mod company;
mod constant;
mod credit_card;
mod date_shift;
mod email;
mod first_name;
mod hash;
mod iban;
mod integer_range;
mod ip;
pub(crate) mod json;
mod keep;
mod last_name;
mod lorem;
mod mac;
mod national_id;
mod null;
mod numeric_noise;
mod partial_mask;
mod person_name;
mod phone;
mod postcode;
mod redact;
mod regex_replace;
mod street_address;
mod template;
mod username;
mod uuid;
mod wasm;

use super::key::Prf;
use super::strategy::{Masker, Meta, Out, Params, Row, Strategy};
use super::words::{self, List};

/// The words of `list` for the `locale` parameter, or why that locale does not exist: what
/// every word-list strategy starts from.
pub(crate) fn locale_list(params: &Params, list: List) -> Result<&'static [&'static str], String> {
    let locale = params.text("locale");
    if !words::known(locale) {
        return Err(format!("unknown `locale` `{locale}`: {}", words::LOCALE_DOC));
    }
    Ok(words::list(locale, list))
}

/// One word of a list, picked by the keyed PRF of the input (`first-name`, `city`, …).
pub(crate) struct Pick {
    pub prf: Prf,
    pub words: &'static [&'static str],
}

impl Masker for Pick {
    fn mask(&self, input: &str, _: &dyn Row, out: &mut String) -> Result<Out, String> {
        out.push_str(self.prf.stream(input.as_bytes()).pick(self.words));
        Ok(Out::Value)
    }
}

/// Every built-in strategy.
pub static STRATEGIES: &[&dyn Strategy] = &[
    &bytea::Bytea,
    &choice::Choice,
    &city::City,
    &company::Company,
    &constant::Constant,
    &credit_card::CreditCard,
    &date_shift::DateShift,
    &email::Email,
    &first_name::FirstName,
    &hash::Hash,
    &iban::Iban,
    &integer_range::IntegerRange,
    &ip::Ip,
    &json::Json,
    &keep::Keep,
    &last_name::LastName,
    &lorem::Lorem,
    &mac::Mac,
    &national_id::NationalId,
    &null::Null,
    &numeric_noise::NumericNoise,
    &partial_mask::PartialMask,
    &person_name::PersonName,
    &phone::Phone,
    &postcode::Postcode,
    &redact::Redact,
    &template::Template,
    &uuid::Uuid,
    &wasm::Wasm,
    &regex_replace::RegexReplace,
    &street_address::StreetAddress,
    &username::Username,
];

/// A strategy by name.
pub fn find(name: &str) -> Option<&'static dyn Strategy> {
    STRATEGIES.iter().copied().find(|s| s.meta().name == name)
}

/// Every declaration, sorted by name.
pub fn all() -> impl Iterator<Item = &'static Meta> {
    let mut metas: Vec<&'static Meta> = STRATEGIES.iter().map(|s| s.meta()).collect();
    metas.sort_by_key(|m| m.name);
    metas.into_iter()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_kebab_case_nouns_and_unique() {
        let mut seen = std::collections::BTreeSet::new();
        for m in all() {
            assert!(seen.insert(m.name), "{} twice", m.name);
            assert!(m.name.chars().all(|c| c.is_ascii_lowercase() || c == '-'), "{}", m.name);
            assert!(!m.summary.ends_with('.'), "{}", m.name);
            assert!(!m.accepts.is_empty(), "{}", m.name);
            assert!(m.doc.contains("```kdl"), "{}: the doc shows a profile line", m.name);
            for p in m.params {
                assert!(
                    p.name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                    "{}.{}",
                    m.name,
                    p.name
                );
                if let Some(d) = p.default {
                    crate::anonymize::strategy::Params::parse(p, d).unwrap();
                }
            }
        }
    }

    /// docs/strategies/NAME.md is generated from each strategy's declaration.
    #[test]
    fn strategy_docs_are_current() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/strategies");
        let mut index = String::from(
            "# Anonymization strategies\n\nGenerated from the strategies' declarations (`confiture anonymize \
             --list-strategies`, `confiture anonymize --explain NAME`). Uniqueness: `preserved` strategies are \
             bijections (distinct inputs stay distinct), `not-guaranteed` usually keep them distinct, `lossy` \
             ones map many inputs to one output. See docs/anonymize.md.\n\n| strategy | types | uniqueness | what it does |\n|---|---|---|---|\n",
        );
        for m in all() {
            let page = m.page();
            index.push_str(&format!(
                "| [{}]({}.md) | {} | {} | {} |\n",
                m.name,
                m.name,
                m.accepts.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(", "),
                m.uniqueness.as_str(),
                m.summary
            ));
            crate::check_generated(&dir.join(format!("{}.md", m.name)), &page);
        }
        crate::check_generated(&dir.join("README.md"), &index);
    }
}
