//! keep

use super::prelude::*;

declare_strategy! {
    /// Keeps the column as it is. A `reason` is required: the coverage gate
    /// (`confiture anonymize check`) accepts a PII-looking column only with a rule, and `keep`
    /// with a reason is how a reviewed column says "no PII here".
    ///
    /// ```kdl
    /// column "notes" "keep" reason="free text reviewed: no PII"
    /// ```
    pub struct Keep {
        name: "keep",
        summary: "leave the column as it is (with a reason)",
        accepts: ANY,
        deterministic: true,
        uniqueness: Preserved,
        params: [("reason", Text, None, "why the column needs no masking (for reviewers and the coverage gate)")],
    }
}

struct Identity;

impl Masker for Identity {
    fn mask(&self, input: &str, _: &dyn Row, out: &mut String) -> Result<Out, String> {
        out.push_str(input);
        Ok(Out::Value)
    }
}

impl Strategy for Keep {
    fn build(&self, params: &Params, _: &BuildCx<'_>) -> Result<Box<dyn Masker>, String> {
        if params.text("reason").trim().is_empty() {
            return Err("`keep` needs a `reason` that is not empty".into());
        }
        Ok(Box::new(Identity))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_kept_and_a_reason_is_required() {
        assert_eq!(masks(&*masker(&Keep, &[("reason", "reviewed")]), "x y"), Some("x y".into()));
        assert!(masker_with(&Keep, &[("reason", " ")], ColumnType::text()).is_err());
        assert!(masker_with(&Keep, &[], ColumnType::text()).is_err());
    }
}
