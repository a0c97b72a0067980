//! PII discovery: which columns hold personal data, judged from their names, types and
//! comments and from a sample of their values — printed as a ready-to-edit profile, each rule
//! with a confidence and the reasons behind it. The coverage gate (`check`) holds a profile
//! against the same findings.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use confiture_engine::pg::{PgError, Session};
use regex::Regex;
use serde::Serialize;

use super::words::{self, List};
use crate::catalog::model::ident;
use crate::catalog::tables::{Column, Table, Tables};

/// One column that looks like PII.
#[derive(Clone, Debug, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Finding {
    pub table: String,
    pub column: String,
    pub data_type: String,
    /// What it holds: `email`, `phone`, `person-name`, `secret`, …
    pub kind: String,
    /// The strategy the profile gets for it.
    pub strategy: String,
    /// 0 to 1.
    pub confidence: f64,
    /// Why, in words: "name matches `email`", "48 of 50 sampled values are e-mail addresses".
    pub reasons: Vec<String>,
    /// For json/jsonb columns: paths inside the documents and what they hold.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<PathFinding>,
    /// Parameters the rule should have (`keep-domain`, …), as written in KDL.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub params: Vec<(String, String)>,
}

#[derive(Clone, Debug, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct PathFinding {
    pub path: String,
    pub kind: String,
    pub strategy: String,
    pub count: usize,
}

/// The scan's report.
#[derive(Clone, Debug, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct ScanReport {
    pub tables: usize,
    pub columns: usize,
    /// Values sampled per column.
    pub sample: usize,
    pub findings: Vec<Finding>,
}

/// Findings below this confidence are printed commented out, and the coverage gate ignores them.
pub const THRESHOLD: f64 = 0.5;

struct NameRule {
    pattern: &'static str,
    kind: &'static str,
    strategy: &'static str,
    confidence: f64,
}

const NAME_RULES: &[NameRule] = &[
    NameRule { pattern: r"(^|_)(e_?mail|mail)(_|$)|email", kind: "email", strategy: "email", confidence: 0.9 },
    NameRule {
        pattern: r"(^|_)(phone|mobile|cell|tel|telephone|fax|msisdn)(_|$)|phone",
        kind: "phone",
        strategy: "phone",
        confidence: 0.85,
    },
    NameRule {
        pattern: r"^(first_?name|given_?name|fname|forename|prenom|vorname)$",
        kind: "first-name",
        strategy: "first-name",
        confidence: 0.85,
    },
    NameRule {
        pattern: r"^(last_?name|surname|family_?name|lname|nachname)$",
        kind: "last-name",
        strategy: "last-name",
        confidence: 0.85,
    },
    NameRule {
        pattern: r"^(full_?name|name|display_?name|contact_?name|customer_?name|person_?name|nom|holder_?name|owner_?name)$",
        kind: "person-name",
        strategy: "person-name",
        confidence: 0.7,
    },
    NameRule {
        pattern: r"(^|_)(street|address|addr|address_?line\d?)(_|$)",
        kind: "street-address",
        strategy: "street-address",
        confidence: 0.75,
    },
    NameRule { pattern: r"^(city|town|locality|ville|stadt)$", kind: "city", strategy: "city", confidence: 0.6 },
    NameRule {
        pattern: r"(^|_)(zip|zip_?code|post_?code|postal_?code|plz)(_|$)",
        kind: "postcode",
        strategy: "postcode",
        confidence: 0.7,
    },
    NameRule {
        pattern: r"(^|_)(birth|dob|birthday|birth_?date|date_of_birth)(_|$)|birth",
        kind: "date-of-birth",
        strategy: "date-shift",
        confidence: 0.85,
    },
    NameRule {
        pattern: r"(^|_)(ip|ip_?address|ip_?addr|last_?ip|remote_?addr|client_?ip)(_|$)",
        kind: "ip",
        strategy: "ip",
        confidence: 0.8,
    },
    NameRule { pattern: r"(^|_)(mac|mac_?address)(_|$)", kind: "mac", strategy: "mac", confidence: 0.7 },
    NameRule {
        pattern: r"(^|_)(card|card_?number|cc_?number|credit_?card|pan)(_|$)",
        kind: "credit-card",
        strategy: "credit-card",
        confidence: 0.85,
    },
    NameRule {
        pattern: r"(^|_)(iban|bank_?account|account_?number)(_|$)",
        kind: "iban",
        strategy: "iban",
        confidence: 0.85,
    },
    NameRule {
        pattern: r"(^|_)(ssn|social_?security|national_?id|nin|nino|passport|tax_?id|tin|vat_?number|id_?card|driver_?licen[cs]e)(_|$)",
        kind: "national-id",
        strategy: "national-id",
        confidence: 0.85,
    },
    NameRule {
        pattern: r"(^|_)(password|passwd|pwd|secret|token|api_?key|access_?key|private_?key|salt|otp|totp|refresh_?token|session_?key)(_|$)",
        kind: "secret",
        strategy: "redact",
        confidence: 0.9,
    },
    NameRule {
        pattern: r"^(username|user_?name|login|handle|nickname|screen_?name)$",
        kind: "username",
        strategy: "username",
        confidence: 0.7,
    },
    NameRule {
        pattern: r"(^|_)(company|employer|organi[sz]ation|org_?name)(_|$)",
        kind: "company",
        strategy: "company",
        confidence: 0.5,
    },
    NameRule {
        pattern: r"^(lat|lng|lon|latitude|longitude|geo_?lat|geo_?lng)$",
        kind: "location",
        strategy: "numeric-noise",
        confidence: 0.6,
    },
];

fn name_rules() -> &'static [(Regex, &'static NameRule)] {
    static RULES: OnceLock<Vec<(Regex, &'static NameRule)>> = OnceLock::new();
    RULES.get_or_init(|| NAME_RULES.iter().map(|r| (Regex::new(r.pattern).expect("valid pattern"), r)).collect())
}

struct Patterns {
    email: Regex,
    phone: Regex,
    digits: Regex,
    iban: Regex,
    token: Regex,
    date: Regex,
}

fn patterns() -> &'static Patterns {
    static P: OnceLock<Patterns> = OnceLock::new();
    P.get_or_init(|| Patterns {
        email: Regex::new(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$").expect("valid"),
        phone: Regex::new(r"^\+?[\d\s().-]{7,20}$").expect("valid"),
        digits: Regex::new(r"^[\d\s-]{12,23}$").expect("valid"),
        iban: Regex::new(r"^[A-Z]{2}\d{2}[A-Z0-9 ]{10,32}$").expect("valid"),
        token: Regex::new(r"^(eyJ[\w-]+\.[\w-]+\.[\w-]+|[A-Fa-f0-9]{32,}|[A-Za-z0-9+/_-]{24,}={0,2}|(sk|pk|ghp|xox[bp])_[A-Za-z0-9_]{16,})$").expect("valid"),
        date: Regex::new(r"^(\d{4})-\d{2}-\d{2}").expect("valid"),
    })
}

fn luhn(digits: &[u8]) -> bool {
    let mut sum = 0u32;
    for (i, d) in digits.iter().rev().enumerate() {
        let mut v = u32::from(*d);
        if i % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    sum.is_multiple_of(10)
}

fn iban_valid(s: &str) -> bool {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    if s.len() < 15 || s.len() > 34 {
        return false;
    }
    let (head, tail) = s.split_at(4);
    let mut rem = 0u32;
    for c in tail.chars().chain(head.chars()) {
        let v = match c {
            '0'..='9' => c as u32 - '0' as u32,
            'A'..='Z' => c as u32 - 'A' as u32 + 10,
            _ => return false,
        };
        rem = if v >= 10 { (rem * 100 + v) % 97 } else { (rem * 10 + v) % 97 };
    }
    rem == 1
}

/// What one value looks like, if it looks like PII.
pub fn classify_value(v: &str) -> Option<&'static str> {
    let p = patterns();
    let v = v.trim();
    // Too long to be one value of a kind; a date alone identifies nobody (the column's name says
    // whether it is a date of birth).
    if v.len() > 200 || v.is_empty() || p.date.is_match(v) {
        return None;
    }
    if p.email.is_match(v) {
        return Some("email");
    }
    if p.iban.is_match(v) && iban_valid(v) {
        return Some("iban");
    }
    if p.digits.is_match(v) {
        let d: Vec<u8> = v.bytes().filter(u8::is_ascii_digit).map(|b| b - b'0').collect();
        if (13..=19).contains(&d.len()) && luhn(&d) {
            return Some("credit-card");
        }
    }
    if v.parse::<std::net::IpAddr>().is_ok() {
        return Some("ip");
    }
    // E.164: at most 15 digits.
    if p.phone.is_match(v)
        && (8..=15).contains(&v.bytes().filter(u8::is_ascii_digit).count())
        && (v.starts_with('+') || v.contains([' ', '-', '.', '(']))
    {
        return Some("phone");
    }
    if p.token.is_match(v) && v.chars().any(|c| c.is_ascii_digit()) && v.chars().any(|c| c.is_ascii_alphabetic()) {
        return Some("secret");
    }
    if is_name(v) {
        return Some("person-name");
    }
    None
}

fn is_name(v: &str) -> bool {
    static FIRST: OnceLock<std::collections::HashSet<String>> = OnceLock::new();
    let first = FIRST.get_or_init(|| words::list("mixed", List::First).iter().map(|w| w.to_lowercase()).collect());
    let mut parts = v.split_whitespace();
    match (parts.next(), parts.next()) {
        (Some(a), Some(_)) if v.split_whitespace().count() <= 4 => first.contains(&a.to_lowercase()),
        _ => false,
    }
}

fn strategy_for(kind: &str) -> &'static str {
    match kind {
        "email" => "email",
        "phone" => "phone",
        "credit-card" => "credit-card",
        "iban" => "iban",
        "ip" => "ip",
        "secret" => "redact",
        "person-name" => "person-name",
        "date-of-birth" => "date-shift",
        _ => "redact",
    }
}

/// Walk a JSON document's string leaves with their paths.
fn json_leaves(v: &serde_json::Value, path: &mut String, out: &mut Vec<(String, String)>) {
    match v {
        serde_json::Value::String(s) => out.push((path.clone(), s.clone())),
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                let len = path.len();
                if k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    path.push('.');
                    path.push_str(k);
                } else {
                    path.push_str(&format!("[{k:?}]"));
                }
                json_leaves(v, path, out);
                path.truncate(len);
            }
        }
        serde_json::Value::Array(items) => {
            let len = path.len();
            path.push_str("[*]");
            for i in items {
                json_leaves(i, path, out);
            }
            path.truncate(len);
        }
        _ => {}
    }
}

/// Judge one column from its name, type, comment and sampled values.
pub fn judge(table: &Table, column: &Column, samples: &[String]) -> Option<Finding> {
    let mut best: Option<(f64, &'static str, &'static str)> = None;
    let mut reasons = Vec::new();
    let lname = column.name.to_lowercase();
    for (re, rule) in name_rules() {
        if re.is_match(&lname) {
            reasons.push(format!("its name matches `{}`", rule.kind));
            best = Some((rule.confidence, rule.kind, rule.strategy));
            break;
        }
    }
    match column.type_name.as_str() {
        "inet" | "cidr" => {
            reasons.push("its type is inet".into());
            best = Some((best.map_or(0.8, |b| b.0.max(0.8)), "ip", "ip"));
        }
        "macaddr" | "macaddr8" => {
            reasons.push("its type is macaddr".into());
            best = Some((0.7, "mac", "mac"));
        }
        _ => {}
    }
    if let Some(comment) = &column.comment {
        let c = comment.to_lowercase();
        if ["pii", "personal", "gdpr", "sensitive", "confidential"].iter().any(|w| c.contains(w)) {
            reasons.push("its comment calls it personal or sensitive".into());
            best = Some(best.map_or((0.7, "pii", "redact"), |b| (b.0.max(0.8), b.1, b.2)));
        }
    }
    let mut paths = Vec::new();
    if !samples.is_empty() {
        if column.type_name == "json" || column.type_name == "jsonb" {
            let mut by_path: BTreeMap<String, BTreeMap<&'static str, usize>> = BTreeMap::new();
            for s in samples {
                let Ok(doc) = serde_json::from_str::<serde_json::Value>(s) else { continue };
                let mut leaves = Vec::new();
                json_leaves(&doc, &mut "$".to_string(), &mut leaves);
                for (path, value) in leaves {
                    if let Some(kind) = classify_value(&value) {
                        *by_path.entry(path).or_default().entry(kind).or_default() += 1;
                    }
                }
            }
            for (path, kinds) in by_path {
                let (kind, count) = kinds.into_iter().max_by_key(|(_, n)| *n).expect("not empty");
                if count * 5 >= samples.len() || count >= 3 {
                    paths.push(PathFinding { path, kind: kind.into(), strategy: strategy_for(kind).into(), count });
                }
            }
            if !paths.is_empty() {
                reasons.push(format!(
                    "sampled documents hold {}",
                    paths.iter().map(|p| format!("{} at {}", p.kind, p.path)).collect::<Vec<_>>().join(", ")
                ));
                best = Some((0.85, "json", "json"));
            }
        } else {
            let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
            for s in samples {
                let mut one = |v: &str| {
                    if let Some(k) = classify_value(v) {
                        *counts.entry(k).or_default() += 1;
                    }
                };
                if column.array {
                    let _ = super::value::map_array(s, |e, _| {
                        one(e);
                        Ok(Some(()))
                    });
                } else {
                    one(s);
                }
            }
            if let Some((kind, n)) = counts.into_iter().max_by_key(|(_, n)| *n) {
                let share = n as f64 / samples.len() as f64;
                if share >= 0.3 {
                    reasons.push(format!("{n} of {} sampled values look like {kind}", samples.len()));
                    let conf = (0.5 + share * 0.45).min(0.95);
                    match best {
                        Some((c, k, s)) if k == kind || (k == "pii" && s == "redact") => {
                            best = Some((
                                c.max(conf) + 0.05,
                                if k == "pii" { kind } else { k },
                                if k == "pii" { strategy_for(kind) } else { s },
                            ))
                        }
                        Some((c, _, _)) if c >= conf => {}
                        _ => best = Some((conf, kind, strategy_for(kind))),
                    }
                }
            }
            // Dates of birth: a date column with a birth-like name, or dates of people's ages.
            if column.type_name == "date" && best.is_none() {
                let years: Vec<i32> = samples
                    .iter()
                    .filter_map(|s| patterns().date.captures(s).and_then(|c| c[1].parse().ok()))
                    .collect();
                if !years.is_empty()
                    && years.iter().all(|y| (1900..=2015).contains(y))
                    && years.len() * 2 >= samples.len()
                {
                    reasons.push("sampled dates are all between 1900 and 2015 (people's birth dates?)".into());
                    best = Some((0.4, "date-of-birth", "date-shift"));
                }
            }
        }
    }
    let (confidence, kind, strategy) = best?;
    // A strategy must take the column's type; otherwise redact (text) or null.
    let class = super::strategy::TypeClass::of(&column.type_name, &column.category);
    let strategy = match super::strategies::find(strategy) {
        Some(s) if s.meta().accepts.contains(&class) => strategy,
        _ if class == super::strategy::TypeClass::Text => "redact",
        _ if !column.not_null => "null",
        _ => "constant",
    };
    let unique = table.unique.iter().any(|u| u.columns.contains(&column.name));
    let strategy = if unique && strategy == "redact" { "hash" } else { strategy };
    Some(Finding {
        table: table.qualified(),
        column: column.name.clone(),
        data_type: column.data_type.clone(),
        kind: kind.into(),
        strategy: strategy.into(),
        confidence: (confidence.min(0.99) * 100.0).round() / 100.0,
        reasons,
        paths,
        params: if strategy == "constant" { vec![("value".into(), "\"0\"".into())] } else { Vec::new() },
    })
}

/// Sample up to `n` non-NULL values of every column of `table` (as text), from a random
/// sample of its pages when it is large.
async fn sample(session: &Session, table: &Table, n: usize) -> Result<BTreeMap<String, Vec<String>>, PgError> {
    let cols: Vec<&Column> = table.columns.iter().filter(|c| !c.generated).collect();
    let mut out = BTreeMap::new();
    if cols.is_empty() || n == 0 {
        return Ok(out);
    }
    let rows_wanted = (n * 4) as i64;
    let sampling = if table.estimated_rows > rows_wanted * 10 {
        let pct = ((rows_wanted as f64 * 100.0) / table.estimated_rows as f64 * 4.0).clamp(0.01, 100.0);
        format!(" TABLESAMPLE SYSTEM ({pct:.4}) REPEATABLE (7)")
    } else {
        String::new()
    };
    let list = cols.iter().map(|c| format!("{}::text", ident(&c.name))).collect::<Vec<_>>().join(", ");
    let q = format!("SELECT {list} FROM {}{sampling} LIMIT {rows_wanted}", table.sql_name());
    let rows = session.client().query(&q, &[]).await?;
    for (i, c) in cols.iter().enumerate() {
        let values: Vec<String> = rows.iter().filter_map(|r| r.get::<_, Option<String>>(i)).take(n).collect();
        out.insert(c.name.clone(), values);
    }
    Ok(out)
}

/// Scan every table (partitions through their parents; confiture's own tables skipped).
pub async fn scan(session: &Session, tables: &Tables, n: usize) -> Result<ScanReport, PgError> {
    let mut findings = Vec::new();
    let mut columns = 0;
    let mut scanned = 0;
    for t in tables.tables.values() {
        if t.partition_of.is_some() || t.name.starts_with("confiture_") {
            continue;
        }
        scanned += 1;
        let samples = sample(session, t, n).await?;
        for c in &t.columns {
            if c.generated {
                continue;
            }
            columns += 1;
            let s = samples.get(&c.name).map(Vec::as_slice).unwrap_or(&[]);
            if let Some(f) = judge(t, c, s) {
                findings.push(f);
            }
        }
    }
    Ok(ScanReport { tables: scanned, columns, sample: n, findings })
}

/// The findings (above the threshold) that `plan` has no rule for: the coverage gate's
/// failures. A column followed through a foreign key is covered by the rule it follows.
pub fn uncovered(report: &ScanReport, plan: &super::plan::Plan) -> Vec<Finding> {
    report
        .findings
        .iter()
        .filter(|f| f.confidence >= THRESHOLD)
        .filter(|f| {
            !plan
                .tables
                .iter()
                .any(|t| t.table.qualified() == f.table && t.columns.iter().any(|c| c.column == f.column))
        })
        .cloned()
        .collect()
}

/// The findings as a profile to edit: rules above the threshold, the others commented out.
pub fn as_profile(report: &ScanReport, name: &str) -> String {
    let mut s = format!(
        "// Written by `confiture anonymize scan`: {} findings in {} columns of {} tables.\n\
         // Review every rule; columns without PII get `keep` with a reason.\n\
         anonymize \"{name}\" {{\n    key env=\"CONFITURE_ANON_KEY\"\n",
        report.findings.len(),
        report.columns,
        report.tables
    );
    let mut by_table: BTreeMap<&str, Vec<&Finding>> = BTreeMap::new();
    for f in &report.findings {
        by_table.entry(&f.table).or_default().push(f);
    }
    for (table, fs) in by_table {
        s.push_str(&format!("    table \"{table}\" {{\n"));
        for f in fs {
            let comment = if f.confidence >= THRESHOLD { "" } else { "// " };
            s.push_str(&format!("        // {:.0}% {}: {}\n", f.confidence * 100.0, f.kind, f.reasons.join("; ")));
            let params: String = f.params.iter().map(|(k, v)| format!(" {k}={v}")).collect();
            if f.paths.is_empty() {
                s.push_str(&format!("        {comment}column \"{}\" \"{}\"{params}\n", f.column, f.strategy));
            } else {
                s.push_str(&format!("        {comment}column \"{}\" \"json\" {{\n", f.column));
                for p in &f.paths {
                    s.push_str(&format!(
                        "        {comment}    path \"{}\" \"{}\"\n",
                        p.path.replace('"', "\\\""),
                        p.strategy
                    ));
                }
                s.push_str(&format!("        {comment}}}\n"));
            }
        }
        s.push_str("    }\n");
    }
    s.push_str("}\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_recognised() {
        assert_eq!(classify_value("alice@example.com"), Some("email"));
        assert_eq!(classify_value("4111 1111 1111 1111"), Some("credit-card"));
        assert_eq!(classify_value("4111 1111 1111 1112"), None);
        assert_eq!(classify_value("GB82 WEST 1234 5698 7654 32"), Some("iban"));
        assert_eq!(classify_value("+33 6 12 34 56 78"), Some("phone"));
        assert_eq!(classify_value("192.168.1.20"), Some("ip"));
        assert_eq!(classify_value("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc123"), Some("secret"));
        assert_eq!(classify_value("Emma Watson"), Some("person-name"));
        assert_eq!(classify_value("hello world"), None);
        assert_eq!(classify_value("42"), None);
    }
}
