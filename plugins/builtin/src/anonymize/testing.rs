//! Helpers for the strategies' unit tests: a masker built with a fixed test key.

use super::key::Keyring;
use super::strategy::{BuildCx, ColumnType, Masker, NoRow, Out, Params, Strategy};

/// The key the unit tests mask with.
pub fn keys() -> Keyring {
    Keyring::from_secret("unit-test key: not a secret").expect("long enough")
}

/// A masker for a `text` column with `params` (name, value as written in a profile).
pub fn masker(strategy: &dyn Strategy, params: &[(&str, &str)]) -> Box<dyn Masker> {
    masker_with(strategy, params, ColumnType::text()).expect("the strategy builds")
}

/// A masker for `column`, or the error building it gave.
pub fn masker_with(
    strategy: &dyn Strategy,
    params: &[(&str, &str)],
    column: ColumnType,
) -> Result<Box<dyn Masker>, String> {
    let meta = strategy.meta();
    let mut p = Params::default();
    for (name, value) in params {
        let spec = meta.param(name).unwrap_or_else(|| panic!("{} has no param `{name}`", meta.name));
        p.insert(name, Params::parse(spec, value)?);
    }
    p.complete(meta)?;
    let keys = keys();
    let cx = BuildCx {
        keys: &keys,
        scope: format!("{}/{}", meta.name, p.canonical()),
        column: &column,
        row_columns: &[],
        root: std::path::Path::new("."),
    };
    strategy.build(&p, &cx)
}

/// The masked value of `input` (`None`: NULL); panics on a masking error.
pub fn masks(m: &dyn Masker, input: &str) -> Option<String> {
    let mut out = String::new();
    match m.mask(input, &NoRow, &mut out).unwrap_or_else(|e| panic!("masking {input:?}: {e}")) {
        Out::Value => Some(out),
        Out::Null => None,
    }
}
