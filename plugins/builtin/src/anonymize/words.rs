//! The word lists names, streets, cities and companies are picked from (`words/`, CC0; see
//! words/LICENSE). Each locale has five lists; `mixed` draws from all locales.

use std::sync::OnceLock;

/// Which list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum List {
    First,
    Last,
    Street,
    City,
    Company,
}

macro_rules! locales {
    ($($code:literal),* $(,)?) => {
        /// Every locale, by code.
        pub const LOCALES: &[&str] = &[$($code),*];

        fn raw(locale: &str, list: List) -> Option<&'static str> {
            match locale {
                $($code => Some(match list {
                    List::First => include_str!(concat!("words/", $code, "/first.txt")),
                    List::Last => include_str!(concat!("words/", $code, "/last.txt")),
                    List::Street => include_str!(concat!("words/", $code, "/street.txt")),
                    List::City => include_str!(concat!("words/", $code, "/city.txt")),
                    List::Company => include_str!(concat!("words/", $code, "/company.txt")),
                }),)*
                _ => None,
            }
        }
    };
}

locales!("en", "fr", "de", "es", "it", "pt", "nl", "pl", "ja");

/// The help for a `locale` parameter.
pub const LOCALE_DOC: &str = "en, fr, de, es, it, pt, nl, pl, ja, or mixed (all of them)";

/// Whether `locale` names a locale (or `mixed`).
pub fn known(locale: &str) -> bool {
    locale == "mixed" || LOCALES.contains(&locale)
}

/// The words of a list for a locale (`mixed`: every locale's), split once and kept.
pub fn list(locale: &str, list: List) -> &'static [&'static str] {
    type Cache = std::sync::Mutex<Vec<((String, u8), &'static [&'static str])>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let key = (locale.to_string(), list as u8);
    let mut guard = cache.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, words)) = guard.iter().find(|(k, _)| *k == key) {
        return words;
    }
    let locales: Vec<&str> = if locale == "mixed" { LOCALES.to_vec() } else { vec![locale] };
    let words: Vec<&'static str> = locales
        .iter()
        .filter_map(|l| raw(l, list))
        .flat_map(|text| text.lines().map(str::trim).filter(|l| !l.is_empty()))
        .collect();
    let words: &'static [&'static str] = Box::leak(words.into_boxed_slice());
    guard.push((key, words));
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_locale_has_every_list() {
        for l in LOCALES {
            for kind in [List::First, List::Last, List::Street, List::City, List::Company] {
                let words = list(l, kind);
                assert!(words.len() >= 50, "{l} {kind:?}: {}", words.len());
                assert!(words.iter().all(|w| !w.contains(['\t', '\\', '"', ','])), "{l} {kind:?}");
            }
        }
        assert!(list("mixed", List::First).len() > list("en", List::First).len());
    }
}
