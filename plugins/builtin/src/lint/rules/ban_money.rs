//! ban-money

use super::prelude::*;

declare_rule! {
    /// ## What it does
    /// Flags `money` columns.
    ///
    /// ## Why is this bad?
    /// `money` has a fixed fractional precision that depends on the server's `lc_monetary`, so the
    /// same dump restores differently elsewhere, and it does not record a currency.
    ///
    /// ## Example
    /// ```sql
    /// CREATE TABLE invoices (total money);
    /// ```
    ///
    /// ## Use instead
    /// ```sql
    /// CREATE TABLE invoices (total numeric(14, 2), currency text NOT NULL);
    /// ```
    pub struct BanMoney {
        id: "ban-money",
        category: Types,
        severity: Warning,
        summary: "money column",
    }
}

impl Rule for BanMoney {
    fn check(&self, s: &Stmt<'_>, cx: &mut Cx<'_>) {
        let banned = |ty: &ast::Type| (ty.name == "money").then(|| "money".to_string());
        super::report_types(
            s,
            cx,
            banned,
            "its precision depends on the server's locale",
            "use numeric (and store the currency)",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases() {
        check_rule(&BanMoney, &[("CREATE TABLE t (a money);", 1), ("CREATE TABLE t (a numeric(10,2));", 0)]);
    }
}
