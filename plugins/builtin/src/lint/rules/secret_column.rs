//! secret-column-without-comment

use super::prelude::*;

/// Words (of a snake_case name) that say a column holds a secret or sensitive personal data.
const SECRET: &[&[&str]] = &[
    &["password"],
    &["passwd"],
    &["secret"],
    &["token"],
    &["api", "key"],
    &["apikey"],
    &["private", "key"],
    &["ssn"],
    &["social", "security"],
    &["credit", "card"],
    &["card", "number"],
    &["cvv"],
    &["iban"],
    &["tax", "id"],
];

/// Words that may follow one of those and still name the secret itself (in some form), rather
/// than something about it (`password_changed_at`, `token_expires_at`).
const FORMS: &[&str] = &[
    "hash",
    "hashed",
    "digest",
    "enc",
    "encrypted",
    "ciphertext",
    "cipher",
    "salt",
    "plain",
    "plaintext",
    "number",
    "value",
];

/// Whether a column name looks like it holds a secret: a secret's words, at the end of the
/// name or followed only by words for its stored form (`access_token`, `password_hash`,
/// `social_security_number`; not `prompt_tokens`, `password_changed_at`, `secretary`).
pub fn looks_secret(name: &str) -> bool {
    // camelCase words too: AccessToken → access_token.
    let mut snake = String::with_capacity(name.len() + 4);
    let mut prev_lower = false;
    for c in name.chars() {
        if c.is_uppercase() && prev_lower {
            snake.push('_');
        }
        prev_lower = c.is_lowercase() || c.is_ascii_digit();
        snake.push(c);
    }
    let lower = snake.to_lowercase();
    let words: Vec<&str> = lower.split(['_', '-', ' ']).filter(|w| !w.is_empty()).collect();
    SECRET.iter().any(|term| {
        words
            .windows(term.len())
            .enumerate()
            .any(|(i, w)| w == *term && words[i + term.len()..].iter().all(|rest| FORMS.contains(rest)))
    })
}

declare_rule! {
    /// ## What it does
    /// Flags columns named like secrets or sensitive data (`password`, `token`, `ssn`,
    /// `api_key`, …) that have no `COMMENT ON COLUMN` among the files linted.
    ///
    /// ## Why is this bad?
    /// Whether `password_hash` holds a hash or a password, and whether `ssn` is encrypted, should
    /// not be guesswork for the next reader, the anonymizer or an auditor. A comment says how the
    /// value is protected.
    ///
    /// ## Example
    /// ```sql
    /// CREATE TABLE users (id bigint PRIMARY KEY, password text);
    /// ```
    ///
    /// ## Use instead
    /// ```sql
    /// CREATE TABLE users (id bigint PRIMARY KEY, password_hash text);
    /// COMMENT ON COLUMN users.password_hash IS 'argon2id hash; never the password itself';
    /// ```
    pub struct SecretColumn {
        id: "secret-column-without-comment",
        category: Security,
        severity: Warning,
        summary: "column named like a secret without a comment on how it is protected",
    }
}

/// Columns named like secrets (and where), and the columns that have comments.
#[derive(Clone, Default)]
struct Seen {
    secret: Vec<(String, String, At)>,
    commented: std::collections::HashSet<(String, String)>,
}

impl Rule for SecretColumn {
    fn check(&self, s: &Stmt<'_>, cx: &mut Cx<'_>) {
        match s.node {
            NodeEnum::CreateStmt(_) | NodeEnum::AlterTableStmt(_) => {
                for (table, c) in ast::new_columns(s.node) {
                    if looks_secret(&c.colname) {
                        let offset = usize::try_from(c.location).unwrap_or(s.offset);
                        let at = At { offset, len: c.colname.len().max(1), ..s.at() };
                        cx.state::<Seen>().secret.push((table, c.colname.clone(), at));
                    }
                }
            }
            NodeEnum::CommentStmt(c) if c.objtype == ObjectType::ObjectColumn as i32 => {
                if let Some(parts) = c.object.as_deref().and_then(ast::dotted)
                    && parts.len() >= 2
                {
                    let column = parts[parts.len() - 1].clone();
                    let table = ast::dotted_rel(&parts[..parts.len() - 1]);
                    cx.state::<Seen>().commented.insert((table, column));
                }
            }
            _ => {}
        }
    }

    fn finish(&self, cx: &mut Cx<'_>) {
        let seen = std::mem::take(cx.state::<Seen>());
        for (table, column, at) in seen.secret {
            if seen.commented.contains(&(table.clone(), column.clone())) {
                continue;
            }
            cx.report_at(
                at,
                format!("{table}.{column} looks like it holds a secret, and no comment says how it is protected"),
                format!("add COMMENT ON COLUMN {table}.{column} IS '…' saying how it is stored (hashed, encrypted, …)"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases() {
        check_rule(
            &SecretColumn,
            &[
                ("CREATE TABLE u (id bigint, password text);", 1),
                ("CREATE TABLE u (id bigint, password_hash text); COMMENT ON COLUMN u.password_hash IS 'argon2id';", 0),
                ("ALTER TABLE u ADD COLUMN api_key text;", 1),
                ("CREATE TABLE u (id bigint, email text);", 0),
                ("CREATE TABLE u (id bigint, access_token text, social_security_number text);", 2),
                ("CREATE TABLE u (id bigint, prompt_tokens int, password_changed_at timestamptz);", 0),
                ("CREATE TABLE u (id bigint, classname text, secretary text, token_expires_at timestamptz);", 0),
                ("CREATE TABLE u (id bigint, \"AccessToken\" text);", 1),
            ],
        );
    }

    #[test]
    fn points_at_the_column() {
        let got =
            crate::lint::testing::findings(&SecretColumn, "CREATE TABLE u (\n    id bigint,\n    api_key text\n);");
        assert_eq!((got[0].line, got[0].column), (3, 5), "{got:?}");
    }
}
