//! A KDL document converted into plain nodes whose string values are already templated.
//!
//! Stages and the project file decode these nodes (through [`super::decode`]) instead of raw
//! `kdl` types, so templating, spans and diagnostics work the same everywhere.

use miette::SourceSpan;

use crate::diag::{Diagnostic, Diagnostics, SourceFile};
use crate::template::{StageRef, TemplateError, Templates};

/// A node: `name arg… key=value… { children }`.
#[derive(Clone, Debug)]
pub struct Node {
    pub name: String,
    pub name_span: SourceSpan,
    /// The whole node, children included.
    pub span: SourceSpan,
    pub args: Vec<Entry>,
    pub props: Vec<Prop>,
    pub children: Vec<Node>,
}

/// A `key=value` property.
#[derive(Clone, Debug)]
pub struct Prop {
    pub key: String,
    pub value: Entry,
}

/// A value with the span it came from.
#[derive(Clone, Debug)]
pub struct Entry {
    pub value: Value,
    pub span: SourceSpan,
}

#[derive(Clone, Debug)]
pub enum Value {
    Text(Text),
    Int(i128),
    Float(f64),
    Bool(bool),
    Null,
}

impl Value {
    /// The KDL type name, for "expected X, found Y" messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Text(_) => "a string",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Bool(_) => "a boolean",
            Value::Null => "#null",
        }
    }
}

/// A string value: the text as written and, unless it waits for stage outputs, its rendering.
#[derive(Clone, PartialEq, Eq)]
pub struct Text {
    pub raw: String,
    /// `None` while the template is deferred (it names `stages.…`).
    pub rendered: Option<String>,
    /// How the value is displayed when it differs from `rendered`: environment variables as
    /// `***` (they may be secrets). See [`Text::shown`].
    pub shown: Option<String>,
    pub stage_refs: Vec<StageRef>,
    pub span: SourceSpan,
    /// The template failed to render (already reported): decoders treat the value as absent.
    pub broken: bool,
}

impl std::fmt::Debug for Text {
    /// Never the secret: the rendering is shown as [`Text::shown`] would show it, redacted.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Text")
            .field("raw", &crate::redact::redact(&self.raw))
            .field("shown", &crate::redact::redact(self.shown()))
            .field("deferred", &self.rendered.is_none())
            .finish()
    }
}

impl Text {
    /// A text with no template in it (for nodes built in code, e.g. by `confiture build`).
    pub fn literal(value: impl Into<String>) -> Self {
        let raw = value.into();
        Text {
            rendered: Some(raw.clone()),
            shown: None,
            raw,
            stage_refs: Vec::new(),
            span: SourceSpan::from(0..0),
            broken: false,
        }
    }

    /// The value as plan, reports and messages show it: rendered with environment variables as
    /// `***`, or the raw template when it is deferred.
    pub fn shown(&self) -> &str {
        self.shown.as_deref().unwrap_or_else(|| self.display())
    }

    /// The parts of the rendered value that came from the environment (where `shown` has `***`),
    /// so that output which may echo them (a hook's) can be masked too.
    pub fn secrets(&self) -> Vec<String> {
        let (Some(shown), Some(rendered)) = (&self.shown, &self.rendered) else { return Vec::new() };
        let fragments: Vec<&str> = shown.split(crate::template::MASK).collect();
        let mut out = Vec::new();
        let Some(mut rest) = rendered.strip_prefix(fragments[0]) else { return vec![rendered.clone()] };
        for (i, next) in fragments.iter().enumerate().skip(1) {
            let end = if i + 1 == fragments.len() {
                rest.len().saturating_sub(next.len())
            } else if next.is_empty() {
                rest.len()
            } else {
                match rest.find(next) {
                    Some(e) => e,
                    None => return vec![rendered.clone()],
                }
            };
            out.push(rest[..end].to_string());
            rest = &rest[end + next.len().min(rest.len() - end)..];
        }
        out.retain(|s| !s.is_empty());
        out
    }

    /// The rendered value, or the raw template when it is deferred.
    pub fn display(&self) -> &str {
        self.rendered.as_deref().unwrap_or(&self.raw)
    }
}

impl Node {
    /// A node built in code rather than parsed (its spans are empty).
    pub fn synthetic(name: &str) -> Self {
        let span = SourceSpan::from(0..0);
        Node { name: name.into(), name_span: span, span, args: Vec::new(), props: Vec::new(), children: Vec::new() }
    }

    /// Builder: add a string argument.
    pub fn arg(mut self, value: impl Into<String>) -> Self {
        self.args.push(Entry { value: Value::Text(Text::literal(value)), span: self.span });
        self
    }

    /// Builder: add an integer argument.
    pub fn arg_int(mut self, value: i128) -> Self {
        self.args.push(Entry { value: Value::Int(value), span: self.span });
        self
    }

    /// Builder: add a boolean argument.
    pub fn arg_bool(mut self, value: bool) -> Self {
        self.args.push(Entry { value: Value::Bool(value), span: self.span });
        self
    }

    /// Builder: add a string property.
    pub fn prop(mut self, key: &str, value: impl Into<String>) -> Self {
        self.props
            .push(Prop { key: key.into(), value: Entry { value: Value::Text(Text::literal(value)), span: self.span } });
        self
    }

    /// Builder: add a boolean property.
    pub fn prop_bool(mut self, key: &str, value: bool) -> Self {
        self.props.push(Prop { key: key.into(), value: Entry { value: Value::Bool(value), span: self.span } });
        self
    }

    /// Builder: add a child node.
    pub fn child(mut self, child: Node) -> Self {
        self.children.push(child);
        self
    }
}

/// Parse KDL text into nodes, templating every string value. Problems go to `diags`.
pub fn parse(source: &SourceFile, templates: &Templates, diags: &mut Diagnostics) -> Option<Vec<Node>> {
    let doc = match kdl::KdlDocument::parse_v2(&source.text) {
        Ok(doc) => doc,
        Err(err) => {
            // One mistake often yields a cascade (an unterminated string, then the block it left
            // open); the innermost diagnostic is the cause, so report that one.
            let innermost = err.diagnostics.into_iter().max_by_key(|d| d.span.offset());
            if let Some(d) = innermost {
                let message = d.message.unwrap_or_else(|| "invalid KDL".into());
                let mut diag = Diagnostic::error("kdl::syntax", d.span, message)
                    .with_label(d.label.unwrap_or_else(|| "here".into()));
                diag.help = Some(d.help.unwrap_or_else(|| {
                    "KDL 2 syntax: `node \"argument\" key=\"value\" { child }`, booleans are #true/#false".into()
                }));
                diags.push(diag);
            }
            return None;
        }
    };
    Some(convert_document(&doc, source, templates, diags))
}

/// Convert an already-parsed document (templating strings with `templates`).
pub fn convert_document(
    doc: &kdl::KdlDocument,
    source: &SourceFile,
    templates: &Templates,
    diags: &mut Diagnostics,
) -> Vec<Node> {
    doc.nodes().iter().map(|n| convert_node(n, source, templates, diags)).collect()
}

pub fn convert_node(node: &kdl::KdlNode, source: &SourceFile, templates: &Templates, diags: &mut Diagnostics) -> Node {
    let mut args = Vec::new();
    let mut props = Vec::new();
    for entry in node.entries() {
        let value = convert_value(entry, source, templates, diags);
        let converted = Entry { value, span: entry.span() };
        match entry.name() {
            Some(key) => props.push(Prop { key: key.value().to_string(), value: converted }),
            None => args.push(converted),
        }
    }
    let children = node
        .children()
        .map(|doc| doc.nodes().iter().map(|n| convert_node(n, source, templates, diags)).collect())
        .unwrap_or_default();
    Node {
        name: node.name().value().to_string(),
        name_span: node.name().span(),
        span: node.span(),
        args,
        props,
        children,
    }
}

fn convert_value(entry: &kdl::KdlEntry, source: &SourceFile, templates: &Templates, diags: &mut Diagnostics) -> Value {
    match entry.value() {
        kdl::KdlValue::String(raw) => Value::Text(template_text(raw, entry.span(), source, templates, diags)),
        kdl::KdlValue::Integer(i) => Value::Int(*i),
        kdl::KdlValue::Float(f) => Value::Float(*f),
        kdl::KdlValue::Bool(b) => Value::Bool(*b),
        kdl::KdlValue::Null => Value::Null,
    }
}

/// Analyze and (unless deferred) render one string value.
pub fn template_text(
    raw: &str,
    span: SourceSpan,
    source: &SourceFile,
    templates: &Templates,
    diags: &mut Diagnostics,
) -> Text {
    let mut text =
        Text { raw: raw.to_string(), rendered: None, shown: None, stage_refs: Vec::new(), span, broken: false };
    let analysis = match templates.analyze(raw) {
        Ok(a) => a,
        Err(e) => {
            diags.push(template_diagnostic(&e, raw, span, source));
            text.rendered = Some(raw.to_string());
            text.broken = true;
            return text;
        }
    };
    if analysis.is_deferred() {
        if let Err(e) = templates.render_with_placeholders(raw, &analysis.stage_refs) {
            diags.push(template_diagnostic(&e, raw, span, source));
            text.broken = true;
        }
        text.stage_refs = analysis.stage_refs;
        return text;
    }
    match templates.render(raw, None) {
        Ok(rendered) => {
            text.shown = templates.render_shown(raw, None);
            text.rendered = Some(rendered);
        }
        Err(e) => {
            diags.push(template_diagnostic(&e, raw, span, source));
            text.rendered = Some(raw.to_string());
            text.broken = true;
        }
    }
    text
}

/// A diagnostic for a template error, pointing inside the string where we can find it.
pub fn template_diagnostic(e: &TemplateError, raw: &str, span: SourceSpan, source: &SourceFile) -> Diagnostic {
    let code = match e.kind {
        crate::template::TemplateErrorKind::Undefined(_) => "template::undefined",
        crate::template::TemplateErrorKind::Syntax => "template::syntax",
        crate::template::TemplateErrorKind::Other => "template::error",
    };
    let inner = e.range.clone().and_then(|range| {
        let window = source.text.get(span.offset()..span.offset() + span.len())?;
        let at = window.find(raw)?;
        Some(SourceSpan::from(span.offset() + at + range.start..span.offset() + at + range.end))
    });
    Diagnostic::error(code, inner.unwrap_or(span), e.message.clone())
        .with_label(match e.kind {
            crate::template::TemplateErrorKind::Undefined(_) => "not defined",
            _ => "in this template",
        })
        .with_help(e.help())
}
