//! `regex-redact`: replaces every match of the `pattern` params (one or more, Rust regex syntax)
//! with `replacement` (default `[redacted]`; `$1` etc. refer to groups). For free text that may
//! hold phone numbers, card numbers, e-mail addresses. NULL stays NULL.

use std::sync::Mutex;

use regex::Regex;

wit_bindgen::generate!({ path: "../../../wit/confiture-plugin/v0.1", world: "anonymizer-plugin" });

use confiture::plugin::host::{Level, log};
use confiture::plugin::types::Uniqueness;
use exports::confiture::plugin::anonymizer::{Column, Guest, PluginInfo};

static SETTINGS: Mutex<Option<(Vec<Regex>, String)>> = Mutex::new(None);

struct RegexRedact;

impl Guest for RegexRedact {
    fn info() -> PluginInfo {
        PluginInfo {
            name: "regex-redact".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            deterministic: true,
            uniqueness: Uniqueness::Lossy,
        }
    }

    fn configure(params: Vec<(String, String)>) -> Result<(), String> {
        let mut patterns = Vec::new();
        let mut replacement = "[redacted]".to_string();
        for (k, v) in params {
            match k.as_str() {
                "pattern" => patterns.push(Regex::new(&v).map_err(|e| format!("pattern `{v}`: {e}"))?),
                "replacement" => replacement = v,
                other => return Err(format!("unknown param `{other}` (known: pattern, replacement)")),
            }
        }
        if patterns.is_empty() {
            return Err("give at least one `pattern` param".into());
        }
        log(Level::Debug, &format!("{} patterns", patterns.len()));
        *SETTINGS.lock().map_err(|e| e.to_string())? = Some((patterns, replacement));
        Ok(())
    }

    fn transform(_column: Column, values: Vec<Option<String>>) -> Result<Vec<Option<String>>, String> {
        let guard = SETTINGS.lock().map_err(|e| e.to_string())?;
        let (patterns, replacement) = guard.as_ref().ok_or("not configured: `configure` was not called")?;
        Ok(values
            .into_iter()
            .map(|v| {
                v.map(|mut v| {
                    for p in patterns {
                        v = p.replace_all(&v, replacement.as_str()).into_owned();
                    }
                    v
                })
            })
            .collect())
    }
}

export!(RegexRedact);
