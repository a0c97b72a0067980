//! secret-column-without-comment

use super::prelude::*;

/// Name fragments that suggest a column holds a secret or sensitive personal data.
const SECRET: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "private_key",
    "ssn",
    "social_security",
    "credit_card",
    "card_number",
    "cvv",
    "iban",
    "tax_id",
];

/// Whether a column name looks like it holds a secret.
pub fn looks_secret(name: &str) -> bool {
    let n = name.to_lowercase();
    SECRET.iter().any(|s| n.contains(s))
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

impl Rule for SecretColumn {
    fn meta(&self) -> &'static Meta {
        &Self::META
    }

    fn finish(&self, cx: &mut Cx<'_>) {
        let missing: Vec<_> = cx
            .facts
            .secret_columns
            .iter()
            .filter(|(t, c, _)| !cx.facts.commented_columns.contains(&(t.clone(), c.clone())))
            .cloned()
            .collect();
        for (table, column, at) in missing {
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
            ],
        );
    }
}
