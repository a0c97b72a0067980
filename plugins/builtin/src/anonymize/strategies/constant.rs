//! constant

use super::prelude::*;

declare_strategy! {
    /// Replaces every value with the same `value` (in the column type's text form; PostgreSQL
    /// checks it when the value is written).
    ///
    /// ```kdl
    /// column "country" "constant" value="FR"
    /// ```
    pub struct Constant {
        name: "constant",
        summary: "replace every value with one fixed value",
        accepts: ANY,
        deterministic: true,
        uniqueness: Lossy,
        params: [("value", Text, None, "the value every row gets")],
    }
}

struct Fixed(String);

impl Masker for Fixed {
    fn mask(&self, _: &str, _: &dyn Row, out: &mut String) -> Result<Out, String> {
        out.push_str(&self.0);
        Ok(Out::Value)
    }
}

impl Strategy for Constant {
    fn build(&self, params: &Params, _: &BuildCx<'_>) -> Result<Box<dyn Masker>, String> {
        Ok(Box::new(Fixed(params.text("value").to_string())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_becomes_the_constant() {
        let m = masker(&Constant, &[("value", "n/a")]);
        assert_eq!(masks(&*m, "alice"), Some("n/a".into()));
        assert_eq!(masks(&*m, "bob"), Some("n/a".into()));
    }
}
