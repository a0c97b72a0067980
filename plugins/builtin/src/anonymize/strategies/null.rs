//! null

use super::prelude::*;

declare_strategy! {
    /// Replaces every value with NULL. Refused on a NOT NULL column (use `constant` or `redact`
    /// there).
    ///
    /// ```kdl
    /// column "fax" "null"
    /// ```
    pub struct Null {
        name: "null",
        summary: "replace every value with NULL",
        accepts: ANY,
        deterministic: true,
        uniqueness: Lossy,
        params: [],
    }
}

struct Nulls;

impl Masker for Nulls {
    fn mask(&self, _: &str, _: &dyn Row, _: &mut String) -> Result<Out, String> {
        Ok(Out::Null)
    }
}

impl Strategy for Null {
    fn build(&self, _: &Params, cx: &BuildCx<'_>) -> Result<Box<dyn Masker>, String> {
        if cx.column.not_null {
            return Err("the column is NOT NULL: `null` cannot apply; use `constant` or `redact`".into());
        }
        Ok(Box::new(Nulls))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_becomes_null_and_not_null_columns_are_refused() {
        assert_eq!(masks(&*masker(&Null, &[]), "alice"), None);
        let column = ColumnType { not_null: true, ..ColumnType::text() };
        assert!(masker_with(&Null, &[], column).is_err());
    }
}
