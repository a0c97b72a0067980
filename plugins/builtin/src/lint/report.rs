//! Lint results as stage outputs (`schemas/stages/lint.json`), SARIF 2.1.0 and JUnit XML.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::Finding;
use super::{Severity, rules};

/// The outputs of a `lint` stage.
#[derive(Clone, Debug, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[schemars(title = "outputs of a lint stage")]
pub struct LintOutputs {
    /// Files linted, in order.
    pub files: Vec<String>,
    pub statements: usize,
    pub counts: LintCounts,
    /// Findings in file order.
    pub findings: Vec<Finding>,
    /// Whether table sizes from a live database informed the lock rules.
    pub database_sizes: bool,
    /// Whether warnings fail the stage, as errors do (`deny-warnings`).
    pub deny_warnings: bool,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LintCounts {
    pub error: usize,
    pub warning: usize,
    pub info: usize,
}

impl LintOutputs {
    /// `2 errors, 1 warning, 0 notes in 3 files (12 statements)`.
    pub fn summary(&self) -> String {
        let s = |n: usize| if n == 1 { "" } else { "s" };
        let c = &self.counts;
        format!(
            "{} error{}, {} warning{}, {} note{} in {} file{} ({} statement{})",
            c.error,
            s(c.error),
            c.warning,
            s(c.warning),
            c.info,
            s(c.info),
            self.files.len(),
            s(self.files.len()),
            self.statements,
            s(self.statements)
        )
    }
}

impl LintCounts {
    pub fn of(findings: &[Finding]) -> Self {
        let n = |s| findings.iter().filter(|f| f.severity == s).count();
        LintCounts { error: n(Severity::Error), warning: n(Severity::Warning), info: n(Severity::Info) }
    }
}

fn sarif_level(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info | Severity::Off => "note",
    }
}

/// A file name as a SARIF artifact URI: a relative reference for a path in the project (what
/// code scanning resolves against the repository), a `file://` URI for an absolute one;
/// percent-encoded either way.
fn uri(file: &str) -> String {
    use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
    const SEGMENT: &AsciiSet =
        &CONTROLS.add(b' ').add(b'"').add(b'#').add(b'%').add(b'<').add(b'>').add(b'?').add(b'`').add(b'{').add(b'}');
    let file = file.replace('\\', "/");
    let encoded = file.split('/').map(|s| utf8_percent_encode(s, SEGMENT).to_string()).collect::<Vec<_>>().join("/");
    if file.starts_with('/') { format!("file://{encoded}") } else { encoded }
}

/// SARIF 2.1.0 for code-scanning tools (GitHub, GitLab, Azure DevOps). `failure`: why the run
/// could not check everything (a file that does not parse, a path that does not exist); the
/// invocation is then marked unsuccessful, so code scanning does not take the missing results
/// as fixed.
pub fn sarif(outputs: &LintOutputs, failure: Option<&str>) -> serde_json::Value {
    let rules: Vec<serde_json::Value> = rules::all()
        .map(|m| {
            json!({
                "id": m.id,
                "name": m.id,
                "shortDescription": { "text": m.summary },
                "fullDescription": { "text": m.summary },
                "help": { "text": m.summary, "markdown": m.markdown() },
                "helpUri": format!("https://github.com/confiture-rs/confiture/blob/main/docs/rules/{}.md", m.id),
                "defaultConfiguration": { "enabled": m.severity != Severity::Off, "level": sarif_level(m.severity) },
                "properties": { "category": m.category.as_str() },
            })
        })
        .collect();
    let index_of = |id: &str| rules::all().position(|m| m.id == id);
    let results: Vec<serde_json::Value> = outputs
        .findings
        .iter()
        .map(|f| {
            let mut r = json!({
                "ruleId": f.rule,
                "level": sarif_level(f.severity),
                "message": { "text": format!("{} — {}", f.message, f.help) },
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": { "uri": uri(&f.file) },
                        "region": {
                            "startLine": f.line,
                            "startColumn": f.column,
                            "endLine": f.end_line,
                            "endColumn": f.end_column.max(f.column + 1),
                        }
                    }
                }],
            });
            if let Some(i) = index_of(&f.rule) {
                r["ruleIndex"] = json!(i);
            }
            r
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {
                "driver": {
                    "name": "confiture",
                    "semanticVersion": env!("CARGO_PKG_VERSION"),
                    "informationUri": "https://github.com/confiture-rs/confiture",
                    "rules": rules,
                }
            },
            "columnKind": "unicodeCodePoints",
            "invocations": [{
                "executionSuccessful": failure.is_none(),
                "toolExecutionNotifications": failure
                    .map(|m| vec![json!({ "level": "error", "message": { "text": m } })])
                    .unwrap_or_default(),
            }],
            "results": results,
            "artifacts": outputs.files.iter().map(|f| json!({ "location": { "uri": uri(f) } })).collect::<Vec<_>>(),
        }]
    })
}

fn xml_escape(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '&' => "&amp;".to_string(),
            '<' => "&lt;".to_string(),
            '>' => "&gt;".to_string(),
            '"' => "&quot;".to_string(),
            '\'' => "&apos;".to_string(),
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => " ".to_string(),
            c => c.to_string(),
        })
        .collect()
}

/// JUnit XML, as CI systems show test results: a test suite per file, a test case per finding
/// (failed for errors, and warnings with `deny-warnings`; passed with the finding in `system-out`
/// otherwise), and one passed test case for a file without findings.
pub fn junit(outputs: &LintOutputs) -> String {
    let failing =
        |f: &Finding| f.severity == Severity::Error || (outputs.deny_warnings && f.severity == Severity::Warning);
    let mut by_file: BTreeMap<&str, Vec<&Finding>> = BTreeMap::new();
    for f in &outputs.findings {
        by_file.entry(f.file.as_str()).or_default().push(f);
    }
    let failures = outputs.findings.iter().filter(|f| failing(f)).count();
    let tests: usize = outputs.files.iter().map(|file| by_file.get(file.as_str()).map_or(1, Vec::len)).sum();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str(&format!("<testsuites name=\"confiture lint\" tests=\"{tests}\" failures=\"{failures}\">\n"));
    for file in &outputs.files {
        let name = xml_escape(file);
        let Some(findings) = by_file.get(file.as_str()) else {
            out.push_str(&format!(
                "  <testsuite name=\"{name}\" tests=\"1\" failures=\"0\">\n    <testcase classname=\"{name}\" name=\"no findings\"/>\n  </testsuite>\n"
            ));
            continue;
        };
        let failed = findings.iter().filter(|f| failing(f)).count();
        out.push_str(&format!("  <testsuite name=\"{name}\" tests=\"{}\" failures=\"{failed}\">\n", findings.len()));
        for f in findings {
            let body = format!("{}:{}:{}: {} [{}]\n{}", f.file, f.line, f.column, f.message, f.rule, f.help);
            out.push_str(&format!(
                "    <testcase classname=\"{name}\" name=\"{} (line {}, column {})\">\n",
                xml_escape(&f.rule),
                f.line,
                f.column
            ));
            if failing(f) {
                out.push_str(&format!(
                    "      <failure type=\"{}\" message=\"{}\">{}</failure>\n",
                    xml_escape(&f.rule),
                    xml_escape(&f.message),
                    xml_escape(&body)
                ));
            } else {
                out.push_str(&format!(
                    "      <system-out>{}: {}</system-out>\n",
                    f.severity.as_str(),
                    xml_escape(&body)
                ));
            }
            out.push_str("    </testcase>\n");
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}
