//! A profile checked against a database: every rule resolved to a column and a built masker,
//! foreign keys followed, unique indexes checked — all problems reported at once, with spans,
//! before any data is touched.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use confiture_engine::diag::{Diagnostic, Diagnostics};
use confiture_engine::kdl::decode::one_of;
use miette::SourceSpan;
use serde::Serialize;

use super::key::Keyring;
use super::mask::ColumnMasker;
use super::profile::{KeySetting, Profile, RawParam, RawValue, Rule};
use super::strategies;
use super::strategy::{BuildCx, ColumnType, Param, Params, TypeClass, Uniqueness};
use crate::catalog::tables::{ForeignKey, Table, Tables, UniqueIndex};

/// What a run will do.
pub struct Plan {
    pub profile: String,
    pub keys: Keyring,
    pub batch_rows: usize,
    pub tables: Vec<TablePlan>,
    /// Warnings (rules that follow foreign keys, weak Python strategies).
    pub notes: Diagnostics,
}

/// One table's masking.
pub struct TablePlan {
    pub table: Table,
    /// In the order they are computed: `template` columns last, so they see masked values.
    pub columns: Vec<ColumnPlan>,
    /// Unique indexes that cover a masked column: dropped for the rewrite and rebuilt after
    /// (a permutation's output may equal another row's not-yet-masked input).
    pub unique_touched: Vec<UniqueIndex>,
    /// Foreign keys (anywhere) whose columns on either side are masked: dropped and re-added
    /// (validated) around the rewrite, as pg_restore does.
    pub foreign_keys_touched: Vec<(String, ForeignKey)>,
}

#[derive(Clone)]
pub struct ColumnPlan {
    pub column: String,
    pub masker: Arc<ColumnMasker>,
    /// `table.column` whose rule this one follows through a foreign key.
    pub follows: Option<String>,
}

/// The JSON view of one masked column, for reports.
#[derive(Clone, Debug, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct MaskedColumn {
    pub table: String,
    pub column: String,
    pub strategy: String,
    pub uniqueness: Uniqueness,
    /// `table.column` whose rule this column follows through a foreign key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub follows: Option<String>,
    /// Rows rewritten (in a run's report).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
}

impl Plan {
    /// The masking of table `name`, or of `root`, the partitioned table it is a partition of.
    pub fn table(&self, name: &str, root: &str) -> Option<&TablePlan> {
        self.tables.iter().find(|tp| {
            let q = tp.table.qualified();
            q == name || q == root
        })
    }

    pub fn masked_columns(&self) -> Vec<MaskedColumn> {
        self.tables
            .iter()
            .flat_map(|t| {
                t.columns.iter().map(|c| MaskedColumn {
                    table: t.table.qualified(),
                    column: c.column.clone(),
                    strategy: c.masker.strategy.clone(),
                    uniqueness: c.masker.uniqueness,
                    follows: c.follows.clone(),
                    rows: None,
                })
            })
            .collect()
    }
}

/// The key a profile names, or why there is none (exit 5).
pub fn keys(profile: &Profile) -> Result<Keyring, String> {
    match &profile.key {
        KeySetting::Text(s, _) if s.is_empty() => Err(format!("profile `{}`: the key is empty", profile.name)),
        KeySetting::Text(s, _) => Keyring::from_secret(s),
        KeySetting::Env(var, _) => match std::env::var(var) {
            Ok(s) if !s.is_empty() => Keyring::from_secret(&s),
            _ => Err(format!(
                "profile `{}` takes its key from ${var}, which is not set: export it (e.g. from your secret store), \
                 or say `deterministic #false` in the profile for a random key per run",
                profile.name
            )),
        },
        KeySetting::Random => Ok(Keyring::random()),
        KeySetting::Missing => Err(format!(
            "profile `{}` has no key: add `key env=\"CONFITURE_ANON_KEY\"` (deterministic masking: the same value \
             masks alike on every run and in every table), or `deterministic #false` for a random key per run",
            profile.name
        )),
    }
}

/// The column type a strategy is built for.
pub fn column_type(c: &crate::catalog::tables::Column) -> ColumnType {
    ColumnType {
        display: c.data_type.clone(),
        class: TypeClass::of(&c.type_name, &c.category),
        array: c.array,
        max_len: c.max_len,
        not_null: c.not_null,
        int_max: match c.type_name.as_str() {
            "int2" => Some(i64::from(i16::MAX)),
            "int4" => Some(i64::from(i32::MAX)),
            "int8" => Some(i64::MAX),
            _ => None,
        },
    }
}

/// Check `profile` against `tables` and build every masker. Without `need_key` (the coverage
/// gate and a dry run, which mask nothing), a missing key is not an error and a random one
/// stands in.
pub fn plan(profile: &Profile, tables: &Tables, root: &Path, need_key: bool) -> Result<Plan, Diagnostics> {
    let mut d = Diagnostics::default();
    let error = |code: &'static str, span: SourceSpan, message: String, label: &str, help: String| {
        let diag = Diagnostic::error(code, span, message).with_label(label).with_help(help);
        match &profile.source {
            Some(s) => diag.with_source(s),
            None => diag,
        }
    };
    let keys = match keys(profile) {
        Ok(k) => Some(k),
        Err(_) if !need_key => Some(Keyring::random()),
        Err(message) => {
            let span = match &profile.key {
                KeySetting::Text(_, s) | KeySetting::Env(_, s) => *s,
                _ => (0..0).into(),
            };
            let diag = error(
                "anonymize::missing-key",
                span,
                message,
                "key",
                "keys are never printed; reports show a fingerprint".into(),
            );
            // A key written in the file is never shown in a code frame, even a bad one.
            d.push(if matches!(profile.key, KeySetting::Text(..)) {
                Diagnostic { source: None, ..diag }
            } else {
                diag
            });
            None
        }
    };
    // Resolve tables and columns first: rules on unknown ones are reported and skipped.
    let names: Vec<&str> = tables.tables.keys().map(String::as_str).collect();
    let mut rules: BTreeMap<String, Vec<Resolved<'_>>> = BTreeMap::new();
    for t in &profile.tables {
        let name = if t.name.contains('.') { t.name.clone() } else { format!("public.{}", t.name) };
        let Some(table) = tables.tables.get(&name) else {
            d.push(error(
                "anonymize::unknown-table",
                t.span,
                format!("the database has no table `{name}`"),
                "not in the database",
                one_of("tables", &names, &name),
            ));
            continue;
        };
        if let Some(parent) = &table.partition_of {
            d.push(error(
                "anonymize::partition",
                t.span,
                format!("`{name}` is a partition of `{parent}`"),
                "a partition",
                format!("write the rules for `{parent}`: they apply to all its partitions"),
            ));
            continue;
        }
        for r in &t.columns {
            match table.column(&r.column) {
                None => {
                    let cols: Vec<&str> = table.columns.iter().map(|c| c.name.as_str()).collect();
                    d.push(error(
                        "anonymize::unknown-column",
                        r.span,
                        format!("`{name}` has no column `{}`", r.column),
                        "not a column",
                        one_of("columns", &cols, &r.column),
                    ));
                }
                Some(c) if c.generated => d.push(error(
                    "anonymize::generated-column",
                    r.span,
                    format!("`{name}.{}` is a generated column", r.column),
                    "generated",
                    "it is computed from other columns: mask those instead".into(),
                )),
                Some(_) => rules.entry(name.clone()).or_default().push((r.column.clone(), r, None)),
            }
        }
    }
    // Foreign keys: a rule on a referenced column applies to every referencing column — and
    // on through their own referencing columns, until nothing more follows. A followed column
    // is keyed like the column the rule was written for (its root), so values match.
    let mut notes = Diagnostics::default();
    for w in &profile.warnings {
        notes.push(w.clone());
    }
    loop {
        let mut follows: Vec<(String, &Rule, String, String)> = Vec::new();
        for (child_name, child) in &tables.tables {
            for fk in &child.foreign_keys {
                let Some(parent_rules) = rules.get(&fk.references) else { continue };
                for (i, parent_col) in fk.referenced_columns.iter().enumerate() {
                    if let Some((_, rule, root)) = parent_rules.iter().find(|(c, _, _)| c == parent_col) {
                        let root = root.clone().unwrap_or_else(|| format!("{}.{parent_col}", fk.references));
                        follows.push((child_name.clone(), rule, fk.columns[i].clone(), root));
                    }
                }
            }
        }
        let mut added = false;
        for (child, rule, column, root) in follows {
            let list = rules.entry(child.clone()).or_default();
            match list.iter_mut().find(|(c, _, _)| *c == column) {
                Some((_, own, _))
                    if own.strategy != rule.strategy || canonical(&own.params) != canonical(&rule.params) =>
                {
                    d.push(error(
                        "anonymize::foreign-key-mismatch",
                        own.span,
                        format!(
                            "`{child}.{column}` references `{root}` but is masked differently (`{}` vs `{}`)",
                            own.strategy, rule.strategy
                        ),
                        "differs from the referenced column",
                        "give both the same strategy and parameters, or drop this rule: it follows the referenced column's"
                            .into(),
                    ));
                }
                // Its own rule is the same: keyed like the root all the same.
                Some((_, _, follows @ None)) if format!("{child}.{column}") != root => {
                    *follows = Some(root);
                    added = true;
                }
                Some(_) => {}
                None => {
                    notes.push(
                        Diagnostic::warning(
                            "anonymize::follows-foreign-key",
                            rule.span,
                            format!(
                                "`{child}.{column}` references `{root}`: masked with the same rule, so the join still matches"
                            ),
                        )
                        .with_label("followed through a foreign key"),
                    );
                    list.push((column, rule, Some(root)));
                    added = true;
                }
            }
        }
        if !added || d.has_errors() {
            break;
        }
    }
    // A masked referencing column whose referenced column is not masked would no longer join.
    for (name, list) in &rules {
        let table = &tables.tables[name];
        for fk in &table.foreign_keys {
            for (i, col) in fk.columns.iter().enumerate() {
                let Some((_, rule, None)) = list.iter().find(|(c, _, _)| c == col) else { continue };
                if rule.strategy == "keep" {
                    continue;
                }
                let parent_masked =
                    rules.get(&fk.references).is_some_and(|l| l.iter().any(|(c, _, _)| *c == fk.referenced_columns[i]));
                if !parent_masked {
                    d.push(error(
                        "anonymize::foreign-key-mismatch",
                        rule.span,
                        format!(
                            "`{name}.{col}` references `{}.{}`, which is not masked: the masked values would not match it",
                            fk.references, fk.referenced_columns[i]
                        ),
                        "references an unmasked column",
                        format!("put the rule on `{}.{}`; referencing columns follow it", fk.references, fk.referenced_columns[i]),
                    ));
                }
            }
        }
    }
    // Without a key (already reported), build with a stand-in to report every other problem.
    let keys = keys.unwrap_or_else(Keyring::random);
    let mut plans = Vec::new();
    for (name, list) in &rules {
        let table = &tables.tables[name];
        let column_names: Vec<String> = table.columns.iter().map(|c| c.name.clone()).collect();
        let mut columns = Vec::new();
        for (column_name, rule, parent) in list {
            let column = table.column(column_name).expect("resolved above");
            let ty = column_type(column);
            // A followed rule is keyed like the column it follows, so the values match.
            let scope_column = parent.clone().unwrap_or_else(|| format!("{name}.{column_name}"));
            match build(rule, &ty, &keys, profile.key_per_column, &scope_column, &column_names, root) {
                Ok(masker) => {
                    // Unique indexes: only a `preserved` strategy keeps them holding.
                    for u in table.unique.iter().filter(|u| u.columns.contains(column_name)) {
                        if masker.uniqueness != Uniqueness::Preserved && !rule.allow_collisions {
                            d.push(error(
                                "anonymize::unique-not-preserved",
                                rule.strategy_span,
                                format!(
                                    "`{name}.{}` is covered by the unique index `{}`, and `{}` is `{}`: masked values could collide",
                                    column_name,
                                    u.name,
                                    rule.strategy,
                                    masker.uniqueness.as_str()
                                ),
                                "not preserved",
                                "use a `preserved` strategy (email, username, uuid, national-id, …), or say `allow-collisions=#true` if the index may fail to rebuild".into(),
                            ));
                        }
                    }
                    columns.push(ColumnPlan {
                        column: column_name.clone(),
                        masker: Arc::new(masker),
                        follows: parent.clone(),
                    });
                }
                Err((span, message, help)) => d.push(error(
                    "anonymize::invalid-rule",
                    span.unwrap_or(rule.strategy_span),
                    format!("`{name}.{column_name}`: {message}"),
                    "in this rule",
                    help,
                )),
            }
        }
        // Template columns read masked values: compute them last.
        columns.sort_by_key(|c| !c.masker.reads().is_empty());
        let masked: Vec<&str> = columns.iter().map(|c| c.column.as_str()).collect();
        let unique_touched =
            table.unique.iter().filter(|u| u.columns.iter().any(|c| masked.contains(&c.as_str()))).cloned().collect();
        plans.push(TablePlan { table: table.clone(), columns, unique_touched, foreign_keys_touched: Vec::new() });
    }
    // Foreign keys whose columns are masked on either side.
    let masked_of = |t: &str| -> Vec<String> {
        plans
            .iter()
            .find(|p| p.table.qualified() == t)
            .map_or_else(Vec::new, |p| p.columns.iter().map(|c| c.column.clone()).collect())
    };
    let mut touched: Vec<(String, String, ForeignKey)> = Vec::new();
    for (child_name, child) in &tables.tables {
        for fk in &child.foreign_keys {
            let child_masked = masked_of(child_name);
            let parent_masked = masked_of(&fk.references);
            if fk.columns.iter().any(|c| child_masked.contains(c))
                || fk.referenced_columns.iter().any(|c| parent_masked.contains(c))
            {
                touched.push((child_name.clone(), fk.references.clone(), fk.clone()));
            }
        }
    }
    for (child, _, fk) in touched {
        if let Some(p) = plans.iter_mut().find(|p| p.table.qualified() == child) {
            p.foreign_keys_touched.push((child.clone(), fk));
        } else if let Some(p) = plans.iter_mut().find(|p| p.table.qualified() == fk.references) {
            p.foreign_keys_touched.push((child.clone(), fk));
        }
    }
    if d.has_errors() {
        return Err(d);
    }
    Ok(Plan { profile: profile.name.clone(), keys, batch_rows: profile.batch_rows, tables: plans, notes })
}

fn canonical(params: &[RawParam]) -> String {
    let mut v: Vec<String> = params
        .iter()
        .map(|p| match &p.value {
            RawValue::One(s) => format!("{}={s}", p.name),
            RawValue::List(l) => format!("{}={l:?}", p.name),
        })
        .collect();
    v.sort();
    v.join(";")
}

/// A rule resolved to a table's column: (column, rule, the `table.column` it follows through a
/// foreign key).
type Resolved<'a> = (String, &'a Rule, Option<String>);

type BuildError = (Option<SourceSpan>, String, String);

/// Check a rule's parameters against its strategy's declaration.
pub fn params_of(
    strategy: &str,
    raw: &[RawParam],
    class: TypeClass,
    column_display: &str,
) -> Result<(&'static dyn super::strategy::Strategy, Params), BuildError> {
    let names: Vec<&str> = strategies::all().map(|m| m.name).collect();
    let s = strategies::find(strategy).ok_or_else(|| {
        (
            None,
            format!("no strategy named `{strategy}`"),
            one_of("strategies (`confiture anonymize --list-strategies`)", &names, strategy),
        )
    })?;
    let meta = s.meta();
    if !meta.accepts.contains(&class) {
        return Err((
            None,
            format!("`{strategy}` does not take {column_display} values"),
            format!(
                "it takes {}; `confiture anonymize --explain {strategy}`",
                meta.accepts.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    let mut params = Params::default();
    for p in raw {
        let Some(spec) = meta.param(&p.name) else {
            let known: Vec<&str> = meta.params.iter().map(|p| p.name).collect();
            return Err((
                Some(p.span),
                format!("`{strategy}` has no parameter `{}`", p.name),
                one_of("its parameters", &known, &p.name),
            ));
        };
        let value = match &p.value {
            RawValue::One(v) => Params::parse(spec, v),
            RawValue::List(l) => Ok(Param::List(l.clone())),
        }
        .map_err(|e| (Some(p.span), e, format!("`confiture anonymize --explain {strategy}`")))?;
        params.insert(&p.name, value);
    }
    params.complete(meta).map_err(|e| (None, e, format!("`confiture anonymize --explain {strategy}`")))?;
    Ok((s, params))
}

/// Build the masker of one rule for a column.
fn build(
    rule: &Rule,
    ty: &ColumnType,
    keys: &Keyring,
    key_per_column: bool,
    scope_column: &str,
    row_columns: &[String],
    root: &Path,
) -> Result<ColumnMasker, BuildError> {
    if !rule.paths.is_empty() && ty.class != TypeClass::Json {
        return Err((
            Some(rule.paths[0].span),
            format!("paths apply to json and jsonb columns, not {}", ty.display),
            "mask the column with a strategy for its type".into(),
        ));
    }
    let (strategy, mut params) = params_of(&rule.strategy, &rule.params, ty.class, &ty.display)?;
    for p in &rule.paths {
        let (_, sub) = params_of(&p.strategy, &p.params, TypeClass::Text, "text")
            .map_err(|(span, m, h)| (span.or(Some(p.strategy_span)), format!("path `{}`: {m}", p.path), h))?;
        params.paths.push((p.path.clone(), p.strategy.clone(), sub));
    }
    params.plugin = rule.plugin_params.clone();
    let per_column = rule.key_per_column.unwrap_or(key_per_column);
    let mut scope = format!("{}/{}", rule.strategy, params.canonical());
    // Paths and a plugin's settings decide the output too (and a run's fingerprint).
    for (path, strategy, sub) in &params.paths {
        scope.push_str(&format!("path {path:?} {strategy}/{};", sub.canonical()));
    }
    for (k, v) in &params.plugin {
        scope.push_str(&format!("param {k:?}={v:?};"));
    }
    if per_column {
        scope.push('/');
        scope.push_str(scope_column);
    }
    let cx = BuildCx { keys, scope: scope.clone(), column: ty, row_columns, root };
    let masker = strategy
        .build(&params, &cx)
        .map_err(|e| (None, e, format!("`confiture anonymize --explain {}`", rule.strategy)))?;
    let uniqueness = masker.uniqueness().unwrap_or(strategy.meta().uniqueness);
    let mut built = ColumnMasker::new(&rule.strategy, uniqueness, ty.clone(), scope, masker);
    built.paths = params.paths.iter().map(|(p, _, _)| p.clone()).collect();
    Ok(built)
}

/// A masker for one column from a strategy name and its parameters as text (what sync's
/// `--anonymize table.column=strategy` and the benchmarks build): checked like a profile's rule.
pub fn masker_for(
    strategy: &str,
    params: &[(&str, &str)],
    column: ColumnType,
    keys: &Keyring,
    root: &Path,
) -> Result<ColumnMasker, String> {
    let raw: Vec<RawParam> = params
        .iter()
        .map(|(k, v)| RawParam { name: k.to_string(), value: RawValue::One(v.to_string()), span: (0..0).into() })
        .collect();
    let rule = Rule {
        column: String::new(),
        span: (0..0).into(),
        strategy: strategy.to_string(),
        strategy_span: (0..0).into(),
        params: raw,
        paths: Vec::new(),
        plugin_params: Vec::new(),
        allow_collisions: false,
        key_per_column: None,
    };
    build(&rule, &column, keys, false, "", &[], root).map_err(|(_, m, h)| format!("{m} ({h})"))
}
