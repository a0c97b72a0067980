//! identifier-too-long

use super::prelude::*;

declare_rule! {
    /// ## What it does
    /// Flags table, column, index and constraint names longer than 63 bytes.
    ///
    /// ## Why is this bad?
    /// PostgreSQL silently truncates identifiers to 63 bytes: two long names that differ only at the
    /// end collide, and the name in the catalog is not the one in your files.
    ///
    /// ## Example
    /// ```sql
    /// CREATE INDEX orders_customer_id_placed_at_status_shipping_country_partial_idx ON orders (customer_id);
    /// ```
    ///
    /// ## Use instead
    /// ```sql
    /// CREATE INDEX orders_customer_placed_idx ON orders (customer_id);
    /// ```
    pub struct IdentifierTooLong {
        id: "identifier-too-long",
        category: Types,
        severity: Error,
        summary: "identifier longer than 63 bytes (PostgreSQL truncates it)",
    }
}

impl Rule for IdentifierTooLong {
    fn check(&self, s: &Stmt<'_>, cx: &mut Cx<'_>) {
        // The parser has already truncated names in the tree; the scanner sees them as written.
        let text = s.text();
        let mut run = 0usize;
        let long_run = text.bytes().any(|b| {
            run = if b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80 { run + 1 } else { 0 };
            run > 63
        });
        if !long_run && !text.contains('"') {
            return;
        }
        let Ok(scan) = confiture_engine::pg_query::scan(text) else { return };
        for t in scan.tokens {
            let Some(token) = text.get(t.start as usize..t.end as usize) else { continue };
            let name =
                if token.starts_with('"') { token.trim_matches('"').replace("\"\"", "\"") } else { token.to_string() };
            let is_ident = t.token == confiture_engine::pg_query::protobuf::Token::Ident as i32;
            if is_ident && name.len() > 63 {
                cx.report(
                    s,
                    (s.offset + t.start as usize) as i32,
                    format!(
                        "`{}…` is {} bytes; PostgreSQL truncates it to 63",
                        &name[..name.floor_char_boundary(40)],
                        name.len()
                    ),
                    "shorten it to at most 63 bytes",
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases() {
        let long = "x".repeat(64);
        let ok = "y".repeat(63);
        check_rule(
            &IdentifierTooLong,
            &[
                (&format!("CREATE TABLE {long} (a int);"), 1),
                (&format!("CREATE TABLE t ({long} int, {ok} int);"), 1),
                (&format!("CREATE INDEX {long} ON t (a);"), 1),
                (&format!("ALTER TABLE t ADD CONSTRAINT {long} CHECK (a > 0);"), 1),
                ("CREATE TABLE t (a int);", 0),
            ],
        );
    }
}
