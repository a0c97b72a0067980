//! ban-char

use super::prelude::*;

declare_rule! {
    /// ## What it does
    /// Flags `char(n)` / `character(n)` columns.
    ///
    /// ## Why is this bad?
    /// `char(n)` pads values with spaces to the full length, compares ignoring trailing spaces and
    /// is no faster than `text`: its semantics surprise more than they help.
    ///
    /// ## Example
    /// ```sql
    /// CREATE TABLE countries (code char(2));
    /// ```
    ///
    /// ## Use instead
    /// ```sql
    /// CREATE TABLE countries (code text CHECK (length(code) = 2));
    /// ```
    pub struct BanChar {
        id: "ban-char",
        category: Types,
        severity: Warning,
        summary: "char(n) column",
    }
}

impl Rule for BanChar {
    fn check(&self, s: &Stmt<'_>, cx: &mut Cx<'_>) {
        let banned = |ty: &ast::Type| (ty.name == "bpchar").then(|| "char(n)".to_string());
        super::report_types(
            s,
            cx,
            banned,
            "padded with spaces, compared ignoring them",
            "use text (with a CHECK on its length if needed)",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases() {
        check_rule(
            &BanChar,
            &[
                ("CREATE TABLE t (a char(2));", 1),
                ("CREATE TABLE t (a character(3));", 1),
                ("CREATE TABLE t (a text);", 0),
            ],
        );
    }
}
