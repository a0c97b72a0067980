//! adding-serial-primary-key

use super::prelude::*;

declare_rule! {
    /// ## What it does
    /// Flags adding a `serial`/`bigserial` or identity column, or a primary key column, to an
    /// existing table.
    ///
    /// ## Why is this bad?
    /// Every existing row needs its own value, so the table is rewritten under an `ACCESS
    /// EXCLUSIVE` lock; a primary key also builds its unique index under that lock.
    ///
    /// ## Example
    /// ```sql
    /// ALTER TABLE events ADD COLUMN id bigserial PRIMARY KEY;
    /// ```
    ///
    /// ## Use instead
    /// ```sql
    /// ALTER TABLE events ADD COLUMN id bigint;
    /// -- backfill in batches, then:
    /// CREATE UNIQUE INDEX CONCURRENTLY events_id_key ON events (id);
    /// ALTER TABLE events ADD CONSTRAINT events_pkey PRIMARY KEY USING INDEX events_id_key;
    /// ```
    pub struct AddingSerialPrimaryKey {
        id: "adding-serial-primary-key",
        category: Locks,
        severity: Warning,
        summary: "serial, identity or primary key column added to an existing table",
    }
}

impl Rule for AddingSerialPrimaryKey {
    fn check(&self, s: &Stmt<'_>, cx: &mut Cx<'_>) {
        let NodeEnum::AlterTableStmt(a) = s.node else { return };
        for col in ast::added_columns(a) {
            let serial = col.type_name.as_ref().is_some_and(|t| ast::type_of(t).name.ends_with("serial"));
            let identity = ast::column_constraints(col).any(|c| ast::is(c, ConstrType::ConstrIdentity));
            let primary = ast::column_constraints(col).any(|c| ast::is(c, ConstrType::ConstrPrimary));
            if !serial && !identity && !primary {
                continue;
            }
            let Some(t) = cx.existing(&a.relation) else { return };
            let what = if primary {
                "a primary key column"
            } else if serial {
                "a serial column"
            } else {
                "an identity column"
            };
            cx.report_lock(
                s,
                col.location,
                &t,
                format!("adding {what} ({}) rewrites {} under an ACCESS EXCLUSIVE lock", col.colname, t.shown()),
                "add a plain column, backfill it in batches, build a unique index CONCURRENTLY and attach it with USING INDEX",
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
            &AddingSerialPrimaryKey,
            &[
                ("ALTER TABLE t ADD COLUMN id bigserial PRIMARY KEY;", 1),
                ("ALTER TABLE t ADD COLUMN id bigint GENERATED ALWAYS AS IDENTITY;", 1),
                ("ALTER TABLE t ADD COLUMN id bigint;", 0),
                ("CREATE TABLE t (a int); ALTER TABLE t ADD COLUMN id serial;", 0),
            ],
        );
    }
}
