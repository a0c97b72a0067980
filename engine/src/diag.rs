//! Span-labelled diagnostics: what the pipeline loader (and stages' configure phase) report.
//!
//! Every diagnostic carries a stable `code` (documented in docs/pipelines.md), the span of the
//! offending text in its source file, a label and, where we know one, a help line. They render with
//! miette as a code frame and serialize to JSON for `confiture check --format json`.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use miette::{LabeledSpan, SourceCode, SourceSpan};
use serde::Serialize;

/// A source file that diagnostics point into.
#[derive(Clone, Debug)]
pub struct SourceFile {
    /// The name shown to users: the path as given on the command line, or relative to the project.
    pub name: String,
    pub text: Arc<str>,
    /// The text as code frames show it: passwords in connection strings masked with `*`, byte
    /// for byte (computed on first use).
    shown: std::sync::OnceLock<Arc<str>>,
}

impl SourceFile {
    pub fn new(name: impl Into<String>, text: impl Into<Arc<str>>) -> Self {
        SourceFile { name: name.into(), text: text.into(), shown: std::sync::OnceLock::new() }
    }

    /// The text for display: the same bytes, except that secrets are `*`.
    pub fn shown(&self) -> &Arc<str> {
        self.shown.get_or_init(|| {
            let masked = crate::redact::mask(&self.text);
            if *masked == *self.text { self.text.clone() } else { masked.into() }
        })
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        line_col(&self.text, offset)
    }

    fn named(&self) -> CharColumns<'_> {
        CharColumns(self)
    }
}

/// A source file for miette, which counts columns in bytes; ours (JSON, SARIF, our own messages)
/// count characters, and the code frame's `file:line:column` must agree with them.
struct CharColumns<'a>(&'a SourceFile);

impl SourceCode for CharColumns<'_> {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn miette::SpanContents<'a> + 'a>, miette::MietteError> {
        let inner = self.0.shown().read_span(span, context_lines_before, context_lines_after)?;
        // miette reports a column only without context lines (the frame header asks that way).
        let column = if context_lines_before == 0 { self.0.line_col(span.offset()).1 - 1 } else { inner.column() };
        Ok(Box::new(miette::MietteSpanContents::new_named(
            self.0.name.clone(),
            inner.data(),
            *inner.span(),
            inner.line(),
            column,
            inner.line_count(),
        )))
    }
}

/// 1-based line and column (counted in characters) of a byte offset into `text`.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = floor_char_boundary(text, offset.min(text.len()));
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

fn floor_char_boundary(text: &str, mut offset: usize) -> usize {
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

/// How serious a diagnostic is. Only errors make `check` fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
    Info,
}

/// One problem, pointing at a span of a source file.
#[derive(Clone, Debug)]
pub struct Diagnostic {
    /// Stable identifier, e.g. `pipeline::unknown-node`.
    pub code: Cow<'static, str>,
    pub message: String,
    pub severity: Severity,
    pub source: Option<SourceFile>,
    pub span: SourceSpan,
    pub label: String,
    pub help: Option<String>,
    /// Further spans in the same source, with their labels (e.g. "first declared here").
    pub also: Vec<(SourceSpan, String)>,
}

impl Diagnostic {
    /// A diagnostic. Its texts (message, labels, help) are redacted as they are set: a message that
    /// quotes a connection string the user wrote never shows its password.
    pub fn error(code: impl Into<Cow<'static, str>>, span: SourceSpan, message: impl Into<String>) -> Self {
        Diagnostic {
            code: code.into(),
            message: crate::redact::redact(&message.into()),
            severity: Severity::Error,
            source: None,
            span,
            label: "here".into(),
            help: None,
            also: Vec::new(),
        }
    }

    pub fn with_severity(mut self, severity: Severity) -> Self {
        self.severity = severity;
        self
    }

    pub fn warning(code: impl Into<Cow<'static, str>>, span: SourceSpan, message: impl Into<String>) -> Self {
        Diagnostic { severity: Severity::Warning, ..Diagnostic::error(code, span, message) }
    }

    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = crate::redact::redact(&label.into());
        self
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(crate::redact::redact(&help.into()));
        self
    }

    pub fn with_also(mut self, span: SourceSpan, label: impl Into<String>) -> Self {
        self.also.push((span, crate::redact::redact(&label.into())));
        self
    }

    pub fn with_source(mut self, source: &SourceFile) -> Self {
        self.source = Some(source.clone());
        self
    }

    /// Where the diagnostic points, for machine-readable output.
    pub fn location(&self) -> Option<Location> {
        let source = self.source.as_ref()?;
        let (line, column) = source.line_col(self.span.offset());
        Some(Location { file: source.name.clone(), line, column })
    }

    /// The JSON view of this diagnostic.
    pub fn to_json(&self) -> DiagnosticJson {
        DiagnosticJson {
            code: self.code.to_string(),
            severity: self.severity,
            message: self.message.clone(),
            label: self.label.clone(),
            help: self.help.clone(),
            location: self.location(),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Diagnostic {}

impl miette::Diagnostic for Diagnostic {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.code.as_ref()))
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
            Severity::Info => miette::Severity::Advice,
        })
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help.as_ref().map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        self.source.as_ref().map(|s| s.shown() as &dyn SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        self.source.as_ref()?;
        let main = LabeledSpan::new_with_span(Some(self.label.clone()), self.span);
        let also = self.also.iter().map(|(span, label)| LabeledSpan::new_with_span(Some(label.clone()), *span));
        Some(Box::new(std::iter::once(main).chain(also)))
    }
}

impl Diagnostic {
    /// Render with miette into a string (the binary picks the handler; tests use a plain one).
    pub fn render(&self, handler: &miette::GraphicalReportHandler) -> String {
        let mut out = String::new();
        match &self.source {
            Some(source) => {
                let named = NamedDiagnostic { inner: self, source: source.named() };
                let _ = handler.render_report(&mut out, &named);
            }
            None => {
                let _ = handler.render_report(&mut out, self);
            }
        }
        out
    }
}

struct NamedDiagnostic<'a> {
    inner: &'a Diagnostic,
    source: CharColumns<'a>,
}

impl fmt::Debug for NamedDiagnostic<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.inner, f)
    }
}
impl fmt::Display for NamedDiagnostic<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.inner, f)
    }
}
impl std::error::Error for NamedDiagnostic<'_> {}
impl miette::Diagnostic for NamedDiagnostic<'_> {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        miette::Diagnostic::code(self.inner)
    }
    fn severity(&self) -> Option<miette::Severity> {
        miette::Diagnostic::severity(self.inner)
    }
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        miette::Diagnostic::help(self.inner)
    }
    fn source_code(&self) -> Option<&dyn SourceCode> {
        Some(&self.source)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        miette::Diagnostic::labels(self.inner)
    }
}

/// A file, line and column, 1-based.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Location {
    pub file: String,
    pub line: usize,
    pub column: usize,
}

/// The JSON shape of a diagnostic (`schemas/check.json`).
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct DiagnosticJson {
    /// Stable identifier, e.g. `pipeline::unknown-node`.
    pub code: String,
    pub severity: Severity,
    pub message: String,
    pub label: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
}

/// Every problem found while loading something, in source order.
#[derive(Clone, Debug, Default)]
pub struct Diagnostics {
    items: Vec<Diagnostic>,
}

impl Diagnostics {
    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.items.push(diagnostic);
    }

    pub fn extend(&mut self, other: Diagnostics) {
        self.items.extend(other.items);
    }

    pub fn has_errors(&self) -> bool {
        self.items.iter().any(|d| d.severity == Severity::Error)
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items.iter()
    }

    /// Attach a source to every diagnostic that has none, and sort by position.
    pub fn finish(mut self, source: &SourceFile) -> Self {
        for d in &mut self.items {
            if d.source.is_none() {
                d.source = Some(source.clone());
            }
        }
        self.items.sort_by_key(|d| (d.source.as_ref().map(|s| s.name.clone()), d.span.offset()));
        self
    }

    pub fn into_vec(self) -> Vec<Diagnostic> {
        self.items
    }
}

impl From<Diagnostic> for Diagnostics {
    fn from(d: Diagnostic) -> Self {
        Diagnostics { items: vec![d] }
    }
}

impl IntoIterator for Diagnostics {
    type Item = Diagnostic;
    type IntoIter = std::vec::IntoIter<Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.into_iter()
    }
}

/// Render a list of diagnostics with miette's graphical handler, followed by a one-line summary.
pub fn render_all(diagnostics: &Diagnostics, handler: &miette::GraphicalReportHandler) -> String {
    let mut out = String::new();
    for d in diagnostics.iter() {
        out.push_str(&d.render(handler));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The code frame's `file:line:column` counts characters, like `location()` and the JSON.
    #[test]
    fn frame_columns_count_characters() {
        let text = "-- é é é\r\nSELECT 'ééé', 1; CREATE INDEX i ON orders (a);\r\n";
        let offset = text.find("CREATE").unwrap();
        let d = Diagnostic::error("lint::x", (offset, 6).into(), "m").with_source(&SourceFile::new("f.sql", text));
        assert_eq!(d.location().map(|l| (l.line, l.column)), Some((2, 18)));
        let handler = miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor());
        let frame = d.render(&handler);
        assert!(frame.contains("[f.sql:2:18]"), "{frame}");
    }
}
