//! template

use super::prelude::*;

declare_strategy! {
    /// Builds the value from other columns of the same row with a minijinja template, e.g. an
    /// e-mail address from the (masked) name and the id. Columns masked by the profile are seen
    /// **masked** — a template never copies an original value of a masked column — and the
    /// others as they are; a NULL column is an empty string. Template columns are computed
    /// after the table's other rules.
    ///
    /// ```kdl
    /// column "email" "template" template="{{ first_name|lower }}.{{ id }}@example.com"
    /// ```
    pub struct Template {
        name: "template",
        summary: "build the value from other columns of the row (minijinja)",
        accepts: &[TypeClass::Text],
        deterministic: true,
        uniqueness: NotGuaranteed,
        params: [("template", Text, None, "the template; `{{ column }}` is that column's value in the row")],
    }
}

struct Rendered {
    env: minijinja::Environment<'static>,
    columns: Vec<String>,
}

impl Masker for Rendered {
    fn mask(&self, _: &str, row: &dyn Row, out: &mut String) -> Result<Out, String> {
        let context: std::collections::BTreeMap<&str, String> =
            self.columns.iter().map(|c| (c.as_str(), row.get(c).flatten().unwrap_or("").to_string())).collect();
        let t = self.env.get_template("t").map_err(|e| e.to_string())?;
        out.push_str(&t.render(context).map_err(|e| format!("the template failed: {e}"))?);
        Ok(Out::Value)
    }

    fn reads(&self) -> Vec<String> {
        self.columns.clone()
    }
}

impl Strategy for Template {
    fn build(&self, params: &Params, cx: &BuildCx<'_>) -> Result<Box<dyn Masker>, String> {
        let mut env = minijinja::Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        env.add_template_owned("t", params.text("template").to_string())
            .map_err(|e| format!("the template does not parse: {e}"))?;
        let t = env.get_template("t").map_err(|e| e.to_string())?;
        let mut columns: Vec<String> = t.undeclared_variables(false).into_iter().collect();
        columns.sort();
        if !cx.row_columns.is_empty()
            && let Some(missing) = columns.iter().find(|c| !cx.row_columns.contains(c))
        {
            return Err(format!("the template names `{missing}`, which is not a column of the table"));
        }
        Ok(Box::new(Rendered { env, columns }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Cols(&'static [(&'static str, Option<&'static str>)]);
    impl Row for Cols {
        fn get(&self, column: &str) -> Option<Option<&str>> {
            self.0.iter().find(|(c, _)| *c == column).map(|(_, v)| *v)
        }
    }

    #[test]
    fn the_template_sees_the_row() {
        let m = masker(&Template, &[("template", "{{ first_name|lower }}.{{ id }}@example.com")]);
        assert_eq!(m.reads(), vec!["first_name".to_string(), "id".to_string()]);
        let mut out = String::new();
        m.mask("old", &Cols(&[("first_name", Some("Zoë")), ("id", Some("42"))]), &mut out).unwrap();
        assert_eq!(out, "zoë.42@example.com");
        out.clear();
        m.mask("old", &Cols(&[("first_name", None), ("id", Some("7"))]), &mut out).unwrap();
        assert_eq!(out, ".7@example.com");
        assert!(masker_with(&Template, &[("template", "{{ oops")], ColumnType::text()).is_err());
    }
}
