//! `deny-drop`: a `before-migration` hook that denies a migration which drops a protected table
//! (`DROP TABLE`) or column (`ALTER TABLE … DROP COLUMN`).
//!
//! Params, repeatable: `table=users` or `table=billing.invoices` protects a table;
//! `column=users.email` or `column=public.users.email` a column. A name without a schema matches
//! in any schema. Names compare as PostgreSQL does: unquoted ones case-insensitively.
//!
//! The SQL is read with a small tokenizer (comments, quoted identifiers and strings, dollar
//! quotes), not PostgreSQL's parser, which a plugin cannot carry cheaply: DDL built dynamically
//! inside `DO` blocks is not seen.

use std::sync::Mutex;

wit_bindgen::generate!({ path: "../../../wit/confiture-plugin/v0.1", world: "hook-plugin" });

use confiture::plugin::types::{Decision, Event};
use exports::confiture::plugin::hook::Guest;

#[derive(Default)]
struct Protected {
    tables: Vec<Vec<String>>,
    columns: Vec<Vec<String>>,
}

static PROTECTED: Mutex<Option<Protected>> = Mutex::new(None);

/// Split `a.b.c` into parts, unquoting `"A"` (kept as is) and lower-casing the rest.
fn name_parts(name: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = name.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            '.' if !quoted => parts.push(std::mem::take(&mut cur)),
            c if quoted => cur.push(c),
            c => cur.extend(c.to_lowercase()),
        }
    }
    parts.push(cur);
    parts
}

#[derive(Debug, PartialEq)]
enum Token {
    Word(String),
    Ident(String),
    Punct(char),
}

/// Tokens of `sql`, without comments, string literals or dollar-quoted bodies.
fn tokens(sql: &str) -> Vec<Token> {
    let s: Vec<char> = sql.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        if c == '-' && s.get(i + 1) == Some(&'-') {
            while i < s.len() && s[i] != '\n' && s[i] != '\r' {
                i += 1;
            }
        } else if c == '/' && s.get(i + 1) == Some(&'*') {
            // Block comments nest in PostgreSQL.
            let mut depth = 1;
            i += 2;
            while i < s.len() && depth > 0 {
                if s[i] == '/' && s.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if s[i] == '*' && s.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                } else {
                    i += 1;
                }
            }
        } else if c == '\'' {
            // E'…' strings take backslash escapes: the `E` was read as a word just before.
            let escapes = matches!(out.last(), Some(Token::Word(w)) if w.eq_ignore_ascii_case("e"))
                && i > 0
                && matches!(s[i - 1], 'e' | 'E');
            if escapes {
                out.pop();
            }
            i += 1;
            while i < s.len() {
                if escapes && s[i] == '\\' {
                    i += 2;
                } else if s[i] == '\'' && s.get(i + 1) == Some(&'\'') {
                    i += 2;
                } else if s[i] == '\'' {
                    break;
                } else {
                    i += 1;
                }
            }
            i += 1;
        } else if c == '$' {
            // $tag$ … $tag$
            let start = i;
            let mut j = i + 1;
            while j < s.len() && (s[j].is_alphanumeric() || s[j] == '_') {
                j += 1;
            }
            if j < s.len() && s[j] == '$' {
                let tag: String = s[start..=j].iter().collect();
                let rest: String = s[j + 1..].iter().collect();
                i = match rest.find(&tag) {
                    Some(k) => j + 1 + rest[..k].chars().count() + tag.chars().count(),
                    None => s.len(),
                };
            } else {
                i += 1;
            }
        } else if c == '"' {
            let mut name = String::from('"');
            i += 1;
            while i < s.len() {
                if s[i] == '"' && s.get(i + 1) == Some(&'"') {
                    name.push_str("\"\"");
                    i += 2;
                } else if s[i] == '"' {
                    break;
                } else {
                    name.push(s[i]);
                    i += 1;
                }
            }
            name.push('"');
            i += 1;
            out.push(Token::Ident(name));
        } else if c.is_alphanumeric() || c == '_' {
            let mut w = String::new();
            while i < s.len() && (s[i].is_alphanumeric() || s[i] == '_' || s[i] == '$') {
                w.push(s[i]);
                i += 1;
            }
            out.push(Token::Word(w));
        } else {
            if !c.is_whitespace() {
                out.push(Token::Punct(c));
            }
            i += 1;
        }
    }
    out
}

fn is(t: Option<&Token>, word: &str) -> bool {
    matches!(t, Some(Token::Word(w)) if w.eq_ignore_ascii_case(word))
}

/// A possibly qualified name starting at `i`: its parts and the index after it.
fn qualified(t: &[Token], mut i: usize) -> Option<(Vec<String>, usize)> {
    let mut text = String::new();
    loop {
        match t.get(i)? {
            Token::Word(w) => text.push_str(w),
            Token::Ident(q) => text.push_str(q),
            Token::Punct(_) => return None,
        }
        i += 1;
        if t.get(i) == Some(&Token::Punct('.')) {
            text.push('.');
            i += 1;
        } else {
            return Some((name_parts(&text), i));
        }
    }
}

/// (tables dropped, (table, column) dropped) by `sql`.
fn drops(sql: &str) -> (Vec<Vec<String>>, Vec<(Vec<String>, String)>) {
    let t = tokens(sql);
    let (mut tables, mut columns) = (Vec::new(), Vec::new());
    for statement in t.split(|x| *x == Token::Punct(';')) {
        if is(statement.first(), "drop") && is(statement.get(1), "table") {
            let mut i = 2;
            if is(statement.get(i), "if") && is(statement.get(i + 1), "exists") {
                i += 2;
            }
            while let Some((name, next)) = qualified(statement, i) {
                tables.push(name);
                if statement.get(next) != Some(&Token::Punct(',')) {
                    break;
                }
                i = next + 1;
            }
        } else if is(statement.first(), "alter") && is(statement.get(1), "table") {
            let mut i = 2;
            if is(statement.get(i), "if") && is(statement.get(i + 1), "exists") {
                i += 2;
            }
            if is(statement.get(i), "only") {
                i += 1;
            }
            let Some((table, mut i)) = qualified(statement, i) else { continue };
            // `ALTER TABLE name *`: the descendant tables too.
            if statement.get(i) == Some(&Token::Punct('*')) {
                i += 1;
            }
            let first = i;
            // Actions are separated by commas: `DROP [COLUMN] [IF EXISTS] name`.
            while i < statement.len() {
                let action_start = i == first || statement.get(i - 1) == Some(&Token::Punct(','));
                if action_start && is(statement.get(i), "drop") {
                    let mut j = i + 1;
                    if is(statement.get(j), "constraint") {
                        i += 1;
                        continue;
                    }
                    if is(statement.get(j), "column") {
                        j += 1;
                    }
                    if is(statement.get(j), "if") && is(statement.get(j + 1), "exists") {
                        j += 2;
                    }
                    if let Some((col, _)) = qualified(statement, j) {
                        columns.push((table.clone(), col.join(".")));
                    }
                }
                i += 1;
            }
        }
    }
    (tables, columns)
}

/// Whether `name` (as written in the SQL) is `protected` (as given in a param): a protected name
/// without a schema matches in any schema.
fn matches(name: &[String], protected: &[String]) -> bool {
    name.len() >= protected.len() && name[name.len() - protected.len()..] == *protected
}

struct DenyDrop;

impl Guest for DenyDrop {
    fn configure(params: Vec<(String, String)>) -> Result<(), String> {
        let mut p = Protected::default();
        for (k, v) in params {
            let parts = name_parts(&v);
            match k.as_str() {
                "table" if (1..=2).contains(&parts.len()) => p.tables.push(parts),
                "column" if (2..=3).contains(&parts.len()) => p.columns.push(parts),
                "table" | "column" => return Err(format!("`{k}={v}` is not a {k} name")),
                other => return Err(format!("unknown param `{other}` (known: table, column)")),
            }
        }
        if p.tables.is_empty() && p.columns.is_empty() {
            return Err("give `table=NAME` or `column=TABLE.COLUMN` params to protect".into());
        }
        *PROTECTED.lock().map_err(|e| e.to_string())? = Some(p);
        Ok(())
    }

    fn on_event(event: Event) -> Result<Decision, String> {
        let Some(sql) = event.sql.as_deref() else { return Ok(Decision::Allow) };
        let guard = PROTECTED.lock().map_err(|e| e.to_string())?;
        let p = guard.as_ref().ok_or("not configured: `configure` was not called")?;
        let what = event.migration.as_deref().unwrap_or("this step");
        let (tables, columns) = drops(sql);
        for t in &tables {
            if p.tables.iter().any(|prot| matches(t, prot)) {
                return Ok(Decision::Deny(format!("{what} drops table {}, which is protected", t.join("."))));
            }
        }
        for (t, c) in &columns {
            let mut full = t.clone();
            full.push(c.clone());
            if p.columns.iter().any(|prot| matches(&full, prot)) {
                return Ok(Decision::Deny(format!("{what} drops column {}.{c}, which is protected", t.join("."))));
            }
        }
        Ok(Decision::Allow)
    }
}

export!(DenyDrop);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_dropped_tables_and_columns() {
        let (t, c) = drops(
            "-- DROP TABLE commented;\nDROP TABLE IF EXISTS a, public.\"B\";\nSELECT 'drop table s';\n\
             ALTER TABLE ONLY users DROP COLUMN IF EXISTS email, ADD COLUMN x int, DROP name;\n\
             ALTER TABLE t DROP CONSTRAINT k;\nCREATE FUNCTION f() RETURNS void AS $$ DROP TABLE inner_t $$ LANGUAGE sql;",
        );
        assert_eq!(t, vec![vec!["a".to_string()], vec!["public".to_string(), "B".to_string()]]);
        assert_eq!(
            c,
            vec![(vec!["users".to_string()], "email".to_string()), (vec!["users".to_string()], "name".to_string())]
        );
    }

    #[test]
    fn quoting_tricks_do_not_hide_a_drop() {
        for sql in [
            "SELECT E'\\''; DROP TABLE users; --'",
            "/* /* */ ' */ DROP TABLE users; -- '",
            "-- note\rDROP TABLE users;",
        ] {
            assert_eq!(drops(sql).0, vec![vec!["users".to_string()]], "{sql}");
        }
        assert_eq!(
            drops("ALTER TABLE users * DROP COLUMN email;").1,
            vec![(vec!["users".to_string()], "email".to_string())]
        );
        assert!(drops("SELECT E'it''s'; SELECT 'DROP TABLE x';").0.is_empty());
    }

    #[test]
    fn protected_names_match_in_any_schema() {
        assert!(matches(&name_parts("public.users"), &name_parts("users")));
        assert!(matches(&name_parts("Users"), &name_parts("users")));
        assert!(!matches(&name_parts("\"Users\""), &name_parts("users")));
        assert!(!matches(&name_parts("audit.users"), &name_parts("public.users")));
    }
}
