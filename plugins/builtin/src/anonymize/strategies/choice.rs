//! choice

use super::prelude::*;
use crate::anonymize::key::Prf;

declare_strategy! {
    /// Replaces every value with one of `values`, picked by the key from the original: the
    /// same value always gets the same pick with the same key, and the picks are spread evenly
    /// over the list. Useful for categories, statuses and enums (`values` must be valid for the
    /// column's type: PostgreSQL refuses the row otherwise). Empty entries of the list are
    /// ignored; at least one must be left. Many values map to one: it is `lossy`.
    ///
    /// ```kdl
    /// column "gender" "choice" values="female,male,other"
    /// ```
    pub struct Choice {
        name: "choice",
        summary: "one of a list of values, picked by the key",
        accepts: ANY,
        deterministic: true,
        uniqueness: Lossy,
        params: [("values", List, None, "the values to pick from")],
    }
}

struct Picker {
    prf: Prf,
    values: Vec<String>,
}

impl Masker for Picker {
    fn mask(&self, input: &str, _: &dyn Row, out: &mut String) -> Result<Out, String> {
        let i = self.prf.below(input.as_bytes(), self.values.len() as u64) as usize;
        out.push_str(&self.values[i]);
        Ok(Out::Value)
    }
}

impl Strategy for Choice {
    fn build(&self, params: &Params, cx: &BuildCx<'_>) -> Result<Box<dyn Masker>, String> {
        let values: Vec<String> = params.list("values").iter().filter(|v| !v.is_empty()).cloned().collect();
        if values.is_empty() {
            return Err("`values` needs at least one value that is not empty".into());
        }
        Ok(Box::new(Picker { prf: cx.prf(), values }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_come_from_the_list_are_stable_and_spread() {
        let m = masker(&Choice, &[("values", "red, green,blue,")]);
        let mut counts = std::collections::BTreeMap::new();
        for i in 0..3000 {
            let input = format!("item {i}");
            let a = masks(&*m, &input).unwrap();
            assert_eq!(masks(&*m, &input).unwrap(), a);
            *counts.entry(a).or_insert(0) += 1;
        }
        assert_eq!(counts.keys().map(String::as_str).collect::<Vec<_>>(), ["blue", "green", "red"]);
        assert!(counts.values().all(|&n| n > 800), "{counts:?}");
        assert_eq!(masks(&*masker(&Choice, &[("values", "only")]), "x").unwrap(), "only");
    }

    #[test]
    fn an_empty_list_is_refused() {
        for bad in [&[("values", "")][..], &[("values", " , ,")], &[]] {
            assert!(masker_with(&Choice, bad, ColumnType::text()).is_err(), "{bad:?}");
        }
    }
}
