//! Small typed helpers that decode [`Node`]s and report problems as diagnostics.
//!
//! A decoder never stops at the first problem: each helper records what is wrong and returns
//! `None`, and [`Fields::finish`] reports every property or child that nobody asked for, naming the
//! ones that are allowed.

use std::time::Duration;

use miette::SourceSpan;

use super::node::{Entry, Node, Text, Value};
use crate::diag::{Diagnostic, Diagnostics};

/// Tracks which properties and children of a node were read.
pub struct Fields<'a> {
    node: &'a Node,
    context: String,
    props_seen: Vec<bool>,
    children_seen: Vec<bool>,
    known_props: Vec<&'static str>,
    known_children: Vec<&'static str>,
    args_allowed: usize,
}

impl<'a> Fields<'a> {
    /// Start decoding `node`; `context` names it in messages ("stage `build`", "environment `test`").
    pub fn new(node: &'a Node, context: impl Into<String>) -> Self {
        Fields {
            node,
            context: context.into(),
            props_seen: vec![false; node.props.len()],
            children_seen: vec![false; node.children.len()],
            known_props: Vec::new(),
            known_children: Vec::new(),
            args_allowed: 0,
        }
    }

    pub fn node(&self) -> &'a Node {
        self.node
    }

    /// Properties that the engine handles itself and that the decoder must not report.
    pub fn skip_props(&mut self, keys: &[&str]) {
        for (i, p) in self.node.props.iter().enumerate() {
            if keys.contains(&p.key.as_str()) {
                self.props_seen[i] = true;
            }
        }
    }

    /// The `index`-th argument. Arguments past the last one asked for are reported by `finish`.
    pub fn arg(&mut self, index: usize) -> Option<&'a Entry> {
        self.args_allowed = self.args_allowed.max(index + 1);
        self.node.args.get(index)
    }

    /// A required argument.
    pub fn required_arg(&mut self, index: usize, what: &str, d: &mut Diagnostics) -> Option<&'a Entry> {
        let entry = self.arg(index);
        if entry.is_none() {
            d.push(
                Diagnostic::error(
                    "pipeline::missing-argument",
                    self.node.name_span,
                    format!("`{}` needs {what}", self.node.name),
                )
                .with_label("argument missing")
                .with_help(format!("write it after the node name: `{} \"…\"`", self.node.name)),
            );
        }
        entry
    }

    /// All arguments from `from` on.
    pub fn rest_args(&mut self, from: usize) -> &'a [Entry] {
        self.args_allowed = usize::MAX;
        self.node.args.get(from..).unwrap_or(&[])
    }

    /// A property; duplicates are reported (KDL keeps the last one).
    pub fn prop(&mut self, key: &'static str, d: &mut Diagnostics) -> Option<&'a Entry> {
        self.known_props.push(key);
        let mut found = None;
        for (i, p) in self.node.props.iter().enumerate() {
            if p.key == key {
                if found.is_some() {
                    d.push(
                        Diagnostic::error(
                            "pipeline::duplicate-property",
                            p.value.span,
                            format!("`{key}` is given twice"),
                        )
                        .with_label("again here")
                        .with_help("give each property once; to list several values use a child node"),
                    );
                }
                self.props_seen[i] = true;
                found = Some(&p.value);
            }
        }
        found
    }

    /// The children named `name`.
    pub fn children(&mut self, name: &'static str) -> Vec<&'a Node> {
        self.known_children.push(name);
        let mut out = Vec::new();
        for (i, c) in self.node.children.iter().enumerate() {
            if c.name == name {
                self.children_seen[i] = true;
                out.push(c);
            }
        }
        out
    }

    /// At most one child named `name`.
    pub fn child(&mut self, name: &'static str, d: &mut Diagnostics) -> Option<&'a Node> {
        let all = self.children(name);
        for extra in all.iter().skip(1) {
            d.push(
                Diagnostic::error("pipeline::duplicate-node", extra.name_span, format!("`{name}` is given twice"))
                    .with_label("again here")
                    .with_help(format!("keep one `{name}`")),
            );
        }
        all.first().copied()
    }

    /// A child of the form `name VALUE` (one argument, nothing else): returns the value.
    pub fn child_value(&mut self, name: &'static str, d: &mut Diagnostics) -> Option<&'a Entry> {
        let node = self.child(name, d)?;
        single_value(node, d)
    }

    /// A setting: `name VALUE` as a child, or `name=VALUE` as a property.
    pub fn setting(&mut self, name: &'static str, d: &mut Diagnostics) -> Option<&'a Entry> {
        self.prop(name, d).or_else(|| self.child_value(name, d))
    }

    /// A string setting (see [`Fields::setting`]).
    pub fn setting_text(&mut self, name: &'static str, d: &mut Diagnostics) -> Option<&'a Text> {
        text(self.setting(name, d)?, d)
    }

    /// `name #true` / bare `name` as a child, or `name=#true` as a property.
    pub fn setting_bool(&mut self, name: &'static str, d: &mut Diagnostics) -> Option<bool> {
        if let Some(entry) = self.prop(name, d) {
            return boolean(entry, d);
        }
        let node = self.child(name, d)?;
        if node.args.is_empty() && node.props.is_empty() && node.children.is_empty() {
            return Some(true);
        }
        boolean(single_value(node, d)?, d)
    }

    /// Report unread properties, children and extra arguments.
    pub fn finish(self, d: &mut Diagnostics) {
        let node = self.node;
        for (p, seen) in node.props.iter().zip(&self.props_seen) {
            if !seen {
                d.push(
                    Diagnostic::error(
                        "pipeline::unknown-property",
                        p.value.span,
                        format!("unknown property `{}` on {}", p.key, self.context),
                    )
                    .with_label("not known here")
                    .with_help(one_of("properties allowed here", &self.known_props, &p.key)),
                );
            }
        }
        for (c, seen) in node.children.iter().zip(&self.children_seen) {
            if !seen {
                d.push(
                    Diagnostic::error(
                        "pipeline::unknown-node",
                        c.name_span,
                        format!("unknown node `{}` in {}", c.name, self.context),
                    )
                    .with_label("not known here")
                    .with_help(one_of("children allowed here", &self.known_children, &c.name)),
                );
            }
        }
        for extra in node.args.iter().skip(self.args_allowed) {
            d.push(
                Diagnostic::error(
                    "pipeline::unexpected-argument",
                    extra.span,
                    format!("unexpected argument to `{}`", node.name),
                )
                .with_label("not expected")
                .with_help(match self.args_allowed {
                    0 => format!("`{}` takes no arguments", node.name),
                    1 => format!("`{}` takes one argument", node.name),
                    n => format!("`{}` takes {n} arguments", node.name),
                }),
            );
        }
    }
}

/// "allowed here: a, b, c" (with a did-you-mean when one is close).
pub fn one_of(what: &str, known: &[&str], got: &str) -> String {
    let mut known: Vec<&str> = known.to_vec();
    known.sort_unstable();
    known.dedup();
    if known.is_empty() {
        return "nothing is allowed here".to_string();
    }
    let list = known.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ");
    match closest(got, &known) {
        Some(best) => format!("did you mean `{best}`? {what}: {list}"),
        None => format!("{what}: {list}"),
    }
}

/// The candidate within edit distance 2 of `got`, if any.
pub fn closest<'k>(got: &str, candidates: &[&'k str]) -> Option<&'k str> {
    candidates
        .iter()
        .map(|c| (edit_distance(got, c), *c))
        .filter(|(d, c)| *d <= 2 && *d < c.len())
        .min()
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != cb)).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The value of a node that must be exactly `name VALUE`.
pub fn single_value<'a>(node: &'a Node, d: &mut Diagnostics) -> Option<&'a Entry> {
    let mut f = Fields::new(node, format!("`{}`", node.name));
    let value = f.required_arg(0, "a value", d);
    f.finish(d);
    value
}

fn wrong_type(entry: &Entry, expected: &str) -> Diagnostic {
    Diagnostic::error(
        "pipeline::wrong-type",
        entry.span,
        format!("expected {expected}, found {}", entry.value.type_name()),
    )
    .with_label(format!("should be {expected}"))
    .with_help(match expected {
        "a boolean" => "write #true or #false".to_string(),
        "a string" => "put the value in double quotes".to_string(),
        _ => format!("write {expected}"),
    })
}

/// A string value.
pub fn text<'a>(entry: &'a Entry, d: &mut Diagnostics) -> Option<&'a Text> {
    match &entry.value {
        Value::Text(t) if t.broken => None,
        Value::Text(t) => Some(t),
        _ => {
            d.push(wrong_type(entry, "a string"));
            None
        }
    }
}

/// A string value that must be known when the file is loaded (not wait for stage outputs).
pub fn static_text(entry: &Entry, d: &mut Diagnostics) -> Option<String> {
    let t = text(entry, d)?;
    match &t.rendered {
        Some(s) => Some(s.clone()),
        None => {
            d.push(
                Diagnostic::error(
                    "template::deferred-not-allowed",
                    entry.span,
                    "this value must be known before the pipeline runs",
                )
                .with_label("refers to stage outputs")
                .with_help("stage outputs can be used in stage settings that are strings, not here"),
            );
            None
        }
    }
}

/// A boolean value (`#true` / `#false`).
pub fn boolean(entry: &Entry, d: &mut Diagnostics) -> Option<bool> {
    match &entry.value {
        Value::Bool(b) => Some(*b),
        Value::Text(t) if matches!(t.rendered.as_deref(), Some("true") | Some("false")) && t.raw.contains("{{") => {
            t.rendered.as_deref().map(|s| s == "true")
        }
        _ => {
            d.push(wrong_type(entry, "a boolean"));
            None
        }
    }
}

/// A non-negative integer (a templated string that renders to one is accepted too).
pub fn integer(entry: &Entry, d: &mut Diagnostics) -> Option<u64> {
    let parsed = match &entry.value {
        Value::Int(i) => u64::try_from(*i).ok(),
        Value::Text(t) if t.raw.contains("{{") => t.rendered.as_deref().and_then(|s| s.trim().parse().ok()),
        _ => None,
    };
    if parsed.is_none() {
        d.push(wrong_type(entry, "a non-negative integer"));
    }
    parsed
}

/// A duration written as a string: `"5s"`, `"250ms"`, `"2m"`, `"1h 30m"`.
pub fn duration(entry: &Entry, d: &mut Diagnostics) -> Option<Duration> {
    let raw = static_text(entry, d)?;
    match humantime::parse_duration(&raw) {
        Ok(v) => Some(v),
        Err(e) => {
            d.push(
                Diagnostic::error("pipeline::wrong-type", entry.span, format!("invalid duration `{raw}`: {e}"))
                    .with_label("not a duration")
                    .with_help("write a duration such as \"500ms\", \"5s\", \"2m\" or \"1h 30m\""),
            );
            None
        }
    }
}

/// A duration for one of PostgreSQL's timeouts (`lock_timeout`, `statement_timeout`, …), which
/// are whole milliseconds in an `int`: at most 2147483647 ms (about 24.8 days). Anything longer
/// is refused here rather than by the server halfway through a run.
pub fn pg_timeout(entry: &Entry, d: &mut Diagnostics) -> Option<Duration> {
    let t = duration(entry, d)?;
    if t.as_millis() > i32::MAX as u128 {
        d.push(
            Diagnostic::error(
                "pipeline::out-of-range",
                entry.span,
                format!("`{}` is longer than PostgreSQL allows for a timeout", humantime::format_duration(t)),
            )
            .with_label("too long")
            .with_help("PostgreSQL's timeouts are at most 2147483647 ms (about 24 days); write a shorter duration"),
        );
        return None;
    }
    Some(t)
}

/// A span covering a node's name, for messages about the node as a whole.
pub fn name_span(node: &Node) -> SourceSpan {
    node.name_span
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names() {
        let cases = [
            ("contine-on-error", Some("continue-on-error")),
            ("needz", Some("needs")),
            ("zzz", None),
            ("uses", Some("uses")),
        ];
        for (got, want) in cases {
            assert_eq!(closest(got, &["uses", "needs", "continue-on-error"]), want, "{got}");
        }
    }
}
