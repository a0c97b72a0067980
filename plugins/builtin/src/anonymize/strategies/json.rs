//! json

use super::prelude::*;
use crate::anonymize::strategy::NoRow;

declare_strategy! {
    /// Masks values inside a json or jsonb document by path, each path with a strategy of its
    /// own (and its parameters as properties). A path is `$` followed by `.key`, `["key"]`,
    /// `[*]` (every element) or `[N]`. The strategy applies to the string (or number) at the
    /// path; at an array, to each of its elements; objects, booleans and nulls there are left as
    /// they are, and so is a document where the path leads nowhere. The same value masked in a
    /// document and in a column with the same strategy gives the same output. The document is
    /// written back compactly.
    ///
    /// ```kdl
    /// column "profile" "json" {
    ///     path "$.email" "email"
    ///     path "$.address.street" "street-address" locale="fr"
    ///     path "$.phones[*]" "phone"
    /// }
    /// ```
    pub struct Json {
        name: "json",
        summary: "mask values inside json/jsonb documents by path",
        accepts: &[TypeClass::Json],
        deterministic: true,
        uniqueness: NotGuaranteed,
        params: [],
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Step {
    Key(String),
    Index(usize),
    All,
}

/// Parse `$.a.b[*]["c d"][0]`.
fn parse_path(path: &str) -> Result<Vec<Step>, String> {
    let bad = || format!("`{path}` is not a path: write `$.key`, `$.a.b`, `$.items[*].email` or `$[\"odd key\"]`");
    let rest = path.strip_prefix('$').ok_or_else(bad)?;
    let mut steps = Vec::new();
    let mut chars = rest.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '.' => {
                let mut key = String::new();
                while let Some(&n) = chars.peek() {
                    if n == '.' || n == '[' {
                        break;
                    }
                    key.push(n);
                    chars.next();
                }
                if key.is_empty() {
                    return Err(bad());
                }
                steps.push(Step::Key(key));
            }
            '[' => {
                let mut inner = String::new();
                for n in chars.by_ref() {
                    if n == ']' {
                        break;
                    }
                    inner.push(n);
                }
                let inner = inner.trim();
                if inner == "*" {
                    steps.push(Step::All);
                } else if let Ok(i) = inner.parse() {
                    steps.push(Step::Index(i));
                } else if inner.len() >= 2
                    && (inner.starts_with('"') && inner.ends_with('"')
                        || inner.starts_with('\'') && inner.ends_with('\''))
                {
                    steps.push(Step::Key(inner[1..inner.len() - 1].to_string()));
                } else {
                    return Err(bad());
                }
            }
            _ => return Err(bad()),
        }
    }
    if steps.is_empty() {
        return Err(format!("`{path}` names the whole document: give a path inside it, such as `$.email`"));
    }
    Ok(steps)
}

/// The strings (and numbers, as text) at `paths` in a document: what the leak check looks
/// for, and what it finds masked there. A path that does not parse or leads nowhere gives none.
pub fn values_at(document: &str, paths: &[String]) -> Vec<String> {
    let Ok(doc) = serde_json::from_str::<serde_json::Value>(document) else { return Vec::new() };
    let mut out = Vec::new();
    for p in paths {
        if let Ok(steps) = parse_path(p) {
            collect(&doc, &steps, &mut out);
        }
    }
    out
}

fn collect(value: &serde_json::Value, steps: &[Step], out: &mut Vec<String>) {
    use serde_json::Value as V;
    let Some((first, rest)) = steps.split_first() else {
        match value {
            V::String(s) => out.push(s.clone()),
            V::Number(n) => out.push(n.to_string()),
            V::Array(items) => items.iter().for_each(|i| collect(i, &[], out)),
            _ => {}
        }
        return;
    };
    match (first, value) {
        (Step::Key(k), V::Object(map)) => map.get(k).into_iter().for_each(|v| collect(v, rest, out)),
        (Step::Index(i), V::Array(items)) => items.get(*i).into_iter().for_each(|v| collect(v, rest, out)),
        (Step::All, V::Array(items)) => items.iter().for_each(|v| collect(v, rest, out)),
        (Step::All, V::Object(map)) => map.values().for_each(|v| collect(v, rest, out)),
        _ => {}
    }
}

struct Document {
    paths: Vec<(Vec<Step>, Box<dyn Masker>)>,
}

fn apply(value: &mut serde_json::Value, steps: &[Step], m: &dyn Masker) -> Result<(), String> {
    use serde_json::Value as V;
    let Some((first, rest)) = steps.split_first() else {
        return match value {
            V::Array(items) => items.iter_mut().try_for_each(|i| leaf(i, m)),
            other => leaf(other, m),
        };
    };
    match (first, value) {
        (Step::Key(k), V::Object(map)) => map.get_mut(k).map_or(Ok(()), |v| apply(v, rest, m)),
        (Step::Index(i), V::Array(items)) => items.get_mut(*i).map_or(Ok(()), |v| apply(v, rest, m)),
        (Step::All, V::Array(items)) => items.iter_mut().try_for_each(|v| apply(v, rest, m)),
        (Step::All, V::Object(map)) => map.values_mut().try_for_each(|v| apply(v, rest, m)),
        _ => Ok(()),
    }
}

fn leaf(value: &mut serde_json::Value, m: &dyn Masker) -> Result<(), String> {
    use serde_json::Value as V;
    let mut out = String::new();
    match value {
        V::String(s) => {
            *value = match m.mask(s, &NoRow, &mut out)? {
                Out::Value => V::String(out),
                Out::Null => V::Null,
            }
        }
        V::Number(n) => {
            let text = n.to_string();
            *value = match m.mask(&text, &NoRow, &mut out)? {
                Out::Value => serde_json::from_str::<serde_json::Number>(&out).map(V::Number).unwrap_or(V::String(out)),
                Out::Null => V::Null,
            }
        }
        _ => {}
    }
    Ok(())
}

impl Masker for Document {
    fn mask(&self, input: &str, _: &dyn Row, out: &mut String) -> Result<Out, String> {
        let mut doc: serde_json::Value = serde_json::from_str(input)
            .map_err(|e| format!("not a JSON document (line {}, column {})", e.line(), e.column()))?;
        for (steps, m) in &self.paths {
            apply(&mut doc, steps, m.as_ref())?;
        }
        out.push_str(&serde_json::to_string(&doc).map_err(|e| e.to_string())?);
        Ok(Out::Value)
    }
}

impl Strategy for Json {
    fn build(&self, params: &Params, cx: &BuildCx<'_>) -> Result<Box<dyn Masker>, String> {
        if params.paths.is_empty() {
            return Err("`json` needs at least one `path \"$.key\" \"STRATEGY\"` inside the rule".into());
        }
        let mut paths = Vec::new();
        for (path, strategy, sub) in &params.paths {
            let steps = parse_path(path)?;
            let s = super::find(strategy).ok_or_else(|| format!("no strategy named `{strategy}`"))?;
            let text = ColumnType::text();
            // Keyed like the same strategy on a column, so values match across the two.
            let sub_cx = BuildCx {
                keys: cx.keys,
                scope: format!("{strategy}/{}", sub.canonical()),
                column: &text,
                row_columns: cx.row_columns,
                root: cx.root,
            };
            paths.push((steps, s.build(sub, &sub_cx).map_err(|e| format!("path `{path}`: {e}"))?));
        }
        Ok(Box::new(Document { paths }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::anonymize::strategy::Params;
    use crate::anonymize::testing::keys;

    fn document(paths: &[(&str, &str)]) -> Box<dyn Masker> {
        let mut p = Params::default();
        for (path, strategy) in paths {
            let mut sub = Params::default();
            sub.complete(super::super::find(strategy).unwrap().meta()).unwrap();
            p.paths.push((path.to_string(), strategy.to_string(), sub));
        }
        let keys = keys();
        let column = ColumnType { class: TypeClass::Json, ..ColumnType::text() };
        let cx = BuildCx {
            keys: &keys,
            scope: "json/".into(),
            column: &column,
            row_columns: &[],
            root: std::path::Path::new("."),
        };
        Json.build(&p, &cx).unwrap()
    }

    #[test]
    fn paths_are_masked_with_their_strategy_and_the_rest_is_kept() {
        let m = document(&[("$.email", "email"), ("$.address.street", "redact"), ("$.tags[*]", "hash")]);
        let out =
            masks(&*m, r#"{"email":"a@b.fr","address":{"street":"1 Main St","city":"Lyon"},"tags":["x","y"],"n":1}"#)
                .unwrap();
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert!(v["email"].as_str().unwrap().ends_with("@example.com"));
        assert_eq!(v["address"]["street"], "[REDACTED]");
        assert_eq!(v["address"]["city"], "Lyon");
        assert_eq!(v["tags"].as_array().unwrap().len(), 2);
        assert_ne!(v["tags"][0], "x");
        assert_eq!(v["n"], 1);
        // The same address as a column masks alike.
        let column = masker(&super::super::email::Email, &[]);
        assert_eq!(v["email"].as_str(), masks(&*column, "a@b.fr").as_deref());
        // A path that leads nowhere leaves the document as it is.
        assert_eq!(masks(&*m, r#"{"other":1}"#).unwrap(), r#"{"other":1}"#);
    }

    #[test]
    fn paths_parse_and_bad_ones_are_refused() {
        assert_eq!(
            parse_path("$.a[*][\"b c\"][2]").unwrap(),
            vec![Step::Key("a".into()), Step::All, Step::Key("b c".into()), Step::Index(2)]
        );
        assert!(parse_path("a.b").is_err());
        assert!(parse_path("$").is_err());
        assert!(parse_path("$..a").is_err());
        let mut p = Params::default();
        p.complete(&Json::META).unwrap();
        let keys = keys();
        let column = ColumnType::text();
        let cx = BuildCx {
            keys: &keys,
            scope: "json/".into(),
            column: &column,
            row_columns: &[],
            root: std::path::Path::new("."),
        };
        assert!(Json.build(&p, &cx).is_err());
    }
}
