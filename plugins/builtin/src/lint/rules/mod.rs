//! Every lint rule, one file each. Adding one: write `rules/<rule>.rs` with `declare_rule!`, add
//! it to [`RULES`], run `CONFITURE_UPDATE_DOCS=1 cargo test -p confiture-plugins` to write
//! docs/rules/RULE.md.

pub(crate) mod prelude {
    pub use crate::declare_rule;
    pub use crate::lint::stmt::At;
    #[cfg(test)]
    pub use crate::lint::testing::{check_rule, findings};
    pub use crate::lint::{Cx, Meta, Rule, Stmt, ast};
    pub use confiture_engine::pg_query::NodeEnum;
    pub use confiture_engine::pg_query::protobuf::{AlterTableType, ConstrType, ObjectType};
}

mod adding_exclusion_constraint;
mod adding_not_null_column;
mod adding_serial_primary_key;
mod adding_stored_generated_column;
mod ban_char;
mod ban_money;
mod cluster;
mod column_type_change;
mod concurrently_in_transaction;
mod constraint_missing_not_valid;
mod delete_without_where;
mod detach_partition_without_concurrently;
mod domain_with_constraints;
mod drop_column;
mod drop_database;
mod drop_not_null;
mod drop_schema;
mod drop_table;
mod enum_value_without_position;
mod foreign_key_missing_not_valid;
mod foreign_key_without_index;
mod grant_to_public;
mod identifier_too_long;
mod ignore_without_reason;
mod mixed_non_transactional;
mod prefer_bigint_keys;
mod prefer_identity;
mod prefer_jsonb;
mod prefer_text_over_varchar;
mod prefer_timestamptz;
mod primary_key_without_index;
mod refresh_matview_without_concurrently;
mod reindex_without_concurrently;
mod rename_column;
mod rename_table;
mod require_concurrent_index_creation;
mod require_concurrent_index_deletion;
mod require_if_exists;
mod require_if_not_exists;
mod require_lock_timeout;
mod require_primary_key;
mod require_statement_timeout;
mod rls_without_policy;
mod secret_column;
mod security_definer_search_path;
mod set_not_null;
mod snake_case_names;
mod transaction_control;
mod truncate_cascade;
mod unique_constraint_without_index;
mod unused_ignore;
mod update_without_where;
mod vacuum_full;
mod volatile_default;

use super::{Cx, Meta, Rule, Stmt, ast};

/// What the type rules share: report every column `stmt` defines or retypes whose type `banned`
/// picks out, as "`table.column` is `what`: `why`" — `banned` gives `what`, from the type.
pub(crate) fn report_types(
    stmt: &Stmt<'_>,
    cx: &mut Cx<'_>,
    banned: impl Fn(&ast::Type) -> Option<String>,
    why: &str,
    help: &str,
) {
    for (table, col) in ast::defined_columns(stmt.node) {
        let Some(ty) = col.type_name.as_ref().map(ast::type_of) else { continue };
        if let Some(what) = banned(&ty) {
            cx.report(
                stmt,
                col.type_name.as_ref().map_or(col.location, |t| t.location),
                format!("{table}.{} is {what}: {why}", ast::column_name(stmt.node, col)),
                help,
            );
        }
    }
}

pub use ignore_without_reason::META as IGNORE_WITHOUT_REASON_META;
pub use unused_ignore::META as UNUSED_IGNORE_META;

/// Every rule, grouped by category.
pub static RULES: &[&dyn Rule] = &[
    // Locks and rewrites on existing tables.
    &require_concurrent_index_creation::RequireConcurrentIndexCreation,
    &require_concurrent_index_deletion::RequireConcurrentIndexDeletion,
    &concurrently_in_transaction::ConcurrentlyInTransaction,
    &constraint_missing_not_valid::ConstraintMissingNotValid,
    &foreign_key_missing_not_valid::ForeignKeyMissingNotValid,
    &set_not_null::SetNotNull,
    &adding_not_null_column::AddingNotNullColumn,
    &volatile_default::VolatileDefault,
    &column_type_change::ColumnTypeChange,
    &adding_serial_primary_key::AddingSerialPrimaryKey,
    &adding_stored_generated_column::AddingStoredGeneratedColumn,
    &unique_constraint_without_index::UniqueConstraintWithoutIndex,
    &primary_key_without_index::PrimaryKeyWithoutIndex,
    &adding_exclusion_constraint::AddingExclusionConstraint,
    &vacuum_full::VacuumFull,
    &cluster::Cluster,
    &reindex_without_concurrently::ReindexWithoutConcurrently,
    &detach_partition_without_concurrently::DetachPartitionWithoutConcurrently,
    &refresh_matview_without_concurrently::RefreshMatviewWithoutConcurrently,
    &require_lock_timeout::RequireLockTimeout,
    &require_statement_timeout::RequireStatementTimeout,
    // Destructive or breaking.
    &drop_table::DropTable,
    &drop_column::DropColumn,
    &drop_schema::DropSchema,
    &drop_database::DropDatabase,
    &drop_not_null::DropNotNull,
    &rename_table::RenameTable,
    &rename_column::RenameColumn,
    &truncate_cascade::TruncateCascade,
    &enum_value_without_position::EnumValueWithoutPosition,
    &update_without_where::UpdateWithoutWhere,
    &delete_without_where::DeleteWithoutWhere,
    // Types and modelling.
    &prefer_bigint_keys::PreferBigintKeys,
    &prefer_identity::PreferIdentity,
    &prefer_text_over_varchar::PreferTextOverVarchar,
    &ban_char::BanChar,
    &prefer_timestamptz::PreferTimestamptz,
    &prefer_jsonb::PreferJsonb,
    &ban_money::BanMoney,
    &require_primary_key::RequirePrimaryKey,
    &foreign_key_without_index::ForeignKeyWithoutIndex,
    &identifier_too_long::IdentifierTooLong,
    &snake_case_names::SnakeCaseNames,
    &domain_with_constraints::DomainWithConstraints,
    // Transactions and robustness.
    &transaction_control::TransactionControl,
    &mixed_non_transactional::MixedNonTransactional,
    &require_if_not_exists::RequireIfNotExists,
    &require_if_exists::RequireIfExists,
    // Security.
    &security_definer_search_path::SecurityDefinerSearchPath,
    &grant_to_public::GrantToPublic,
    &secret_column::SecretColumn,
    &rls_without_policy::RlsWithoutPolicy,
    // About the run.
    &unused_ignore::UnusedIgnore,
    &ignore_without_reason::IgnoreWithoutReason,
];

/// A rule by id.
pub fn find(id: &str) -> Option<&'static dyn Rule> {
    RULES.iter().copied().find(|r| r.meta().id == id)
}

/// Every rule's metadata.
pub fn all() -> impl Iterator<Item = &'static Meta> {
    RULES.iter().map(|r| r.meta())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_are_unique_documented_and_plentiful() {
        let mut ids = std::collections::HashSet::new();
        let mut counted = 0;
        for m in all() {
            assert!(ids.insert(m.id), "duplicate rule {}", m.id);
            assert!(m.id.chars().all(|c| c.is_ascii_lowercase() || c == '-'), "{}", m.id);
            for heading in ["## What it does", "## Why is this bad?", "## Example", "## Use instead"] {
                assert!(m.markdown().contains(heading), "{} lacks `{heading}`", m.id);
            }
            assert!(!m.summary.ends_with('.'), "{}", m.id);
            if m.category != super::super::Category::Meta {
                counted += 1;
            }
        }
        assert!(counted >= 45, "{counted} rules");
    }

    /// docs/rules/RULE.md is generated from each rule's documentation.
    #[test]
    fn rule_docs_are_current() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/rules");
        let mut index = String::from(
            "# Lint rules\n\nGenerated from the rules' documentation (`confiture lint --list-rules`, `confiture lint \
             --explain RULE`). Severity is the default; `off` means opt-in.\n\n| rule | category | severity | what it flags |\n|---|---|---|---|\n",
        );
        for m in all() {
            let page = format!(
                "# {}\n\n*Category: {}. Default severity: {}.*\n\n{}\n",
                m.id,
                m.category.as_str(),
                m.severity.as_str(),
                m.markdown().trim_end()
            );
            index.push_str(&format!(
                "| [{}]({}.md) | {} | {} | {} |\n",
                m.id,
                m.id,
                m.category.as_str(),
                m.severity.as_str(),
                m.summary
            ));
            crate::check_generated(&dir.join(format!("{}.md", m.id)), &page);
        }
        crate::check_generated(&dir.join("README.md"), &index);
    }
}
