//! `anonymize`: mask PII with a profile (docs/anonymize.md). Modes:
//! - `run` (default): rewrite the database **in place** — for a copy restored from a backup —
//!   in committed batches, resumable after a kill; refuses a protected database;
//! - `check`: the coverage gate — every column the scan classifies as PII has a rule (or
//!   `keep` with a reason), else exit 7;
//! - `scan`: PII discovery, written as a profile to edit;
//! - `preview`: original and masked values of one table side by side;
//! - `verify`: the leak check — no original value of a masked column (of `source`) is left
//!   anywhere in the database, else exit 7.
//!
//! ```kdl
//! stage "mask" uses="anonymize" {
//!     database "staging"        // or env "staging"
//!     profile "staging"         // `anonymize "staging" { … }` in confiture.kdl, or a .kdl/.yaml file
//!     mode "run"                // run | check | scan | preview | verify
//!     dry-run #true             // run: check the profile against the database, change nothing
//!     sample 100                // check, scan: values sampled per column
//!     table "public.users"      // preview: the table; limit 10
//!     source "production"       // verify: where the original values are (or source-env "prod")
//!     allow-protected #true     // preview: read a protected database (never for run)
//! }
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use confiture_engine::ExitCode;
use confiture_engine::diag::{Diagnostic, Diagnostics};
use confiture_engine::event::EventKind;
use confiture_engine::kdl::decode::{self, Fields};
use confiture_engine::kdl::node::Node;
use confiture_engine::pg;
use confiture_engine::stage::{ConfigureCx, DatabaseRef, Outputs, Paint, Stage, StageContext, StageError, StageType};
use serde::{Deserialize, Serialize};

use crate::anonymize::inplace::{self, RunResult};
use crate::anonymize::plan::{self, MaskedColumn};
use crate::anonymize::preview::Preview;
use crate::anonymize::scan::{self, Finding, ScanReport};
use crate::anonymize::verify::VerifyReport;
use crate::anonymize::{preview, profile, verify};
use crate::catalog::tables;

/// The `anonymize` stage type.
pub struct Anonymize;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Run,
    Check,
    Scan,
    Preview,
    Verify,
}

const MODES: &[(&str, Mode)] = &[
    ("run", Mode::Run),
    ("check", Mode::Check),
    ("scan", Mode::Scan),
    ("preview", Mode::Preview),
    ("verify", Mode::Verify),
];

/// What an anonymize stage produced (`schemas/stages/anonymize.json`).
#[derive(Debug, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[schemars(title = "outputs of an anonymize stage")]
pub struct AnonymizeOutputs {
    /// run, check, scan, preview or verify.
    pub mode: String,
    /// The profile's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// Identifies the key (never the key itself).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_fingerprint: Option<String>,
    /// Every masked column with its strategy, uniqueness class and (after a run) row count.
    #[serde(default)]
    pub masked_columns: Vec<MaskedColumn>,
    /// `run`: what was rewritten.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<RunResult>,
    /// `scan` and `check`: the columns that look like PII.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scan: Option<ScanReport>,
    /// `check`: findings the profile has no rule for.
    #[serde(default)]
    pub uncovered: Vec<Finding>,
    /// `scan`: the findings as a profile to edit (KDL).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suggested_profile: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preview: Option<Preview>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verify: Option<VerifyReport>,
    /// `run` with `dry-run`: nothing was changed.
    #[serde(default)]
    pub dry_run: bool,
}

#[derive(Debug)]
struct Settings {
    mode: Mode,
    database: DatabaseRef,
    profile: Option<String>,
    dry_run: bool,
    sample: usize,
    table: Option<String>,
    limit: usize,
    source: Option<DatabaseRef>,
    allow_protected: bool,
}

/// A configured anonymize stage.
#[derive(Debug)]
pub struct AnonymizeStage(Settings);

impl StageType for Anonymize {
    fn name(&self) -> &'static str {
        "anonymize"
    }

    fn summary(&self) -> &'static str {
        "mask PII in place with a keyed profile; scan, coverage gate, preview, leak check"
    }

    fn outputs_schema(&self) -> Option<schemars::Schema> {
        Some(schemars::schema_for!(AnonymizeOutputs))
    }

    fn events(&self) -> &'static [EventKind] {
        &[inplace::BEFORE_TABLE, inplace::AFTER_TABLE]
    }

    fn text_report(&self, outputs: &BTreeMap<String, serde_json::Value>, _paint: Paint<'_>) -> Option<Vec<String>> {
        let o: AnonymizeOutputs =
            serde_json::from_value(serde_json::Value::Object(outputs.clone().into_iter().collect())).ok()?;
        let mut lines = Vec::new();
        if let Some(p) = &o.profile {
            lines.push(format!(
                "profile {p}{}",
                o.key_fingerprint.as_deref().map(|f| format!(", key {f}")).unwrap_or_default()
            ));
        }
        for c in &o.masked_columns {
            lines.push(format!(
                "{}.{}: {} ({}){}{}",
                c.table,
                c.column,
                c.strategy,
                c.uniqueness.as_str(),
                c.follows.as_deref().map(|f| format!(", follows {f}")).unwrap_or_default(),
                c.rows.map(|r| format!(", {r} rows")).unwrap_or_default()
            ));
        }
        if let Some(r) = &o.run {
            for t in &r.tables {
                lines.push(format!("{}: {} rows in {} batches ({})", t.table, t.rows, t.batches, t.status));
            }
            if !r.rebuilt.is_empty() {
                lines.push(format!("rebuilt {} indexes and constraints", r.rebuilt.len()));
            }
        }
        if let Some(scan) = &o.scan {
            lines.push(format!(
                "scanned {} columns of {} tables: {} look like PII",
                scan.columns,
                scan.tables,
                scan.findings.iter().filter(|f| f.confidence >= scan::THRESHOLD).count()
            ));
        }
        for f in &o.uncovered {
            lines.push(format!(
                "not covered: {}.{} ({}, {:.0}%: {})",
                f.table,
                f.column,
                f.kind,
                f.confidence * 100.0,
                f.reasons.join("; ")
            ));
        }
        if let Some(r) = &o.verify {
            lines.push(format!(
                "searched {} original values in {} values of {} tables ({} left out as outputs the masking itself makes)",
                r.originals, r.values_read, r.tables_read, r.ambiguous
            ));
            for l in &r.leaks {
                lines.push(format!(
                    "leak: {} holds {} original values of {} ({} as the whole value)",
                    l.found_in, l.values, l.from, l.whole
                ));
            }
        }
        Some(lines)
    }

    fn configure(&self, node: &Node, cx: &ConfigureCx<'_>, d: &mut Diagnostics) -> Option<Arc<dyn Stage>> {
        let mut f = Fields::new(node, format!("stage `{}` (anonymize)", cx.stage));
        let mode = match f.setting("mode", d) {
            Some(e) => {
                let m = decode::static_text(e, d)?;
                match MODES.iter().find(|(n, _)| *n == m) {
                    Some((_, mode)) => *mode,
                    None => {
                        let names: Vec<&str> = MODES.iter().map(|(n, _)| *n).collect();
                        d.push(
                            Diagnostic::error(
                                "pipeline::unknown-mode",
                                e.span,
                                format!("unknown anonymize mode `{m}`"),
                            )
                            .with_label("not a mode")
                            .with_help(decode::one_of("modes", &names, &m)),
                        );
                        return None;
                    }
                }
            }
            None => Mode::Run,
        };
        let database = f.setting("database", d).map(|e| cx.database_ref(e, d));
        let env = f.setting("env", d).map(|e| cx.environment(e, d));
        let profile_entry = f.setting("profile", d);
        let profile = profile_entry.and_then(|e| decode::static_text(e, d));
        let dry_run = f.setting_bool("dry-run", d).unwrap_or(false);
        let sample = f.setting("sample", d).and_then(|e| decode::integer(e, d)).unwrap_or(100) as usize;
        let table = f.setting("table", d).and_then(|e| decode::static_text(e, d));
        let limit = f.setting("limit", d).and_then(|e| decode::integer(e, d)).unwrap_or(10) as usize;
        let source = match (f.setting("source", d), f.setting("source-env", d)) {
            (Some(e), _) => Some(cx.database_ref(e, d)),
            (None, Some(e)) => Some(cx.environment(e, d).map(DatabaseRef::Environment)),
            (None, None) => None,
        };
        let allow_protected = f.setting_bool("allow-protected", d).unwrap_or(false);
        f.finish(d);
        let database = match (database, env) {
            (Some(r), _) => r?,
            (None, Some(env)) => DatabaseRef::Environment(env?),
            (None, None) => {
                d.push(
                    Diagnostic::error(
                        "anonymize::no-database",
                        node.span,
                        format!("stage `{}` has no database", cx.stage),
                    )
                    .with_label("no target")
                    .with_help("add `database \"NAME\"` (a declared database or a DSN) or `env \"NAME\"`"),
                );
                return None;
            }
        };
        if mode != Mode::Scan && profile.is_none() {
            d.push(
                Diagnostic::error("anonymize::no-profile", node.span, format!("stage `{}` names no profile", cx.stage))
                    .with_label("no profile")
                    .with_help(
                        "add `profile \"NAME\"`: an `anonymize \"NAME\" { … }` block in confiture.kdl, or a file",
                    ),
            );
            return None;
        }
        if mode == Mode::Preview && table.is_none() {
            d.push(
                Diagnostic::error(
                    "anonymize::no-table",
                    node.span,
                    "`preview` shows one table: add `table \"schema.table\"`",
                )
                .with_label("no table")
                .with_help("e.g. `table \"public.users\"`"),
            );
            return None;
        }
        let source = match (mode, source) {
            (Mode::Verify, Some(s)) => Some(s?),
            (Mode::Verify, None) => {
                d.push(
                    Diagnostic::error(
                        "anonymize::no-source",
                        node.span,
                        "`verify` compares with the original data: add `source \"…\"`",
                    )
                    .with_label("no source")
                    .with_help("the database the masked copy was made from (it is only read)"),
                );
                return None;
            }
            (_, s) => s.flatten(),
        };
        Some(Arc::new(AnonymizeStage(Settings {
            mode,
            database,
            profile,
            dry_run,
            sample,
            table,
            limit,
            source,
            allow_protected,
        })))
    }
}

#[async_trait]
impl Stage for AnonymizeStage {
    fn settings(&self) -> serde_json::Value {
        let s = &self.0;
        serde_json::json!({
            "mode": MODES.iter().find(|(_, m)| *m == s.mode).map(|(n, _)| *n),
            "database": s.database.describe(),
            "profile": s.profile,
            "dry_run": s.dry_run,
            "source": s.source.as_ref().map(DatabaseRef::describe),
        })
    }

    async fn run(&self, cx: &StageContext) -> Result<Outputs, StageError> {
        let s = &self.0;
        let mode_name = MODES.iter().find(|(_, m)| *m == s.mode).map_or("run", |(n, _)| *n);
        let mut out = AnonymizeOutputs { mode: mode_name.into(), dry_run: s.dry_run, ..AnonymizeOutputs::default() };
        let info = match s.mode {
            Mode::Run if !s.dry_run => cx.destructive_target(&s.database, "anonymize it in place", false).await?,
            Mode::Preview if !s.allow_protected => {
                cx.destructive_target(&s.database, "show its original values (say `allow-protected #true`)", false)
                    .await?
            }
            _ => cx.database(&s.database).await?,
        };
        let session = pg::connect(&info, &format!("confiture anonymize {mode_name}")).await?;
        let loaded = match &s.profile {
            // `scan` writes a profile of that name; it reads none.
            Some(_) if s.mode == Mode::Scan => None,
            Some(name) => {
                Some(profile::load(&cx.project, name).map_err(|d| profile::problems(d, "nothing was changed"))?)
            }
            None => None,
        };
        let mut tables = tables::read(&session).await?;
        // A run that was killed resumes from the catalog it started with (it dropped
        // constraints, which the plan follows).
        if s.mode == Mode::Run
            && let Some(p) = &loaded
            && let Some(saved) = inplace::saved_catalog(&session, &p.name).await?
        {
            tracing::info!("resuming the unfinished run of profile `{}`", p.name);
            tables = saved;
        }
        // A dry run reports a missing key like the run would; the coverage gate and the scan
        // mask nothing and run in CI without it.
        let need_key = matches!(s.mode, Mode::Run | Mode::Preview | Mode::Verify);
        let built = match &loaded {
            Some(p) => {
                for w in &p.warnings {
                    tracing::warn!("{}", w.message);
                }
                Some(
                    plan::plan(p, &tables, &cx.project.root, need_key)
                        .map_err(|d| profile::problems(d, "nothing was changed"))?,
                )
            }
            None => None,
        };
        if let Some(p) = &built {
            out.profile = Some(p.profile.clone());
            if need_key {
                out.key_fingerprint = Some(p.keys.fingerprint());
            }
            out.masked_columns = p.masked_columns();
            for n in p.notes.iter() {
                tracing::info!("{}", n.message);
            }
        }
        let mut outputs = Outputs::default();
        match s.mode {
            Mode::Run if s.dry_run => {}
            Mode::Run => {
                let p = built.as_ref().expect("run has a profile");
                let result = inplace::run(p, &tables, &session, cx).await?;
                for c in &mut out.masked_columns {
                    c.rows = result.tables.iter().find(|t| t.table == c.table).map(|t| t.rows);
                }
                out.run = Some(result);
            }
            Mode::Scan | Mode::Check => {
                let report = scan::scan(&session, &tables, s.sample).await?;
                if s.mode == Mode::Scan {
                    out.suggested_profile = Some(scan::as_profile(&report, s.profile.as_deref().unwrap_or("staging")));
                } else {
                    let p = built.as_ref().expect("check has a profile");
                    out.uncovered = scan::uncovered(&report, p);
                }
                out.scan = Some(report);
                if !out.uncovered.is_empty() {
                    let n = out.uncovered.len();
                    outputs.extend_from(&out);
                    return Err(StageError::new(
                        ExitCode::Drift,
                        format!(
                            "{n} column{} look like PII and have no rule (add one, or `keep` with a reason)",
                            if n == 1 { "" } else { "s" }
                        ),
                    )
                    .with_outputs(outputs));
                }
            }
            Mode::Preview => {
                let p = built.as_ref().expect("preview has a profile");
                let wanted = s.table.as_deref().unwrap_or_default();
                let wanted = if wanted.contains('.') { wanted.to_string() } else { format!("public.{wanted}") };
                let Some(t) = p.tables.iter().find(|t| t.table.qualified() == wanted) else {
                    return Err(StageError::new(
                        ExitCode::Config,
                        format!("profile `{}` masks nothing in {wanted}", p.profile),
                    ));
                };
                let view =
                    preview::preview(t, &session, s.limit).await?.map_err(|e| StageError::new(ExitCode::Failure, e))?;
                out.preview = Some(view);
            }
            Mode::Verify => {
                let p = built.as_ref().expect("verify has a profile");
                let source_info = cx.database(s.source.as_ref().expect("verify has a source")).await?;
                let source = pg::connect(&source_info, "confiture anonymize verify").await?;
                let report = verify::verify(p, &source, &session, &tables).await?;
                let leaks = report.leaks.len();
                out.verify = Some(report);
                if leaks > 0 {
                    outputs.extend_from(&out);
                    return Err(StageError::new(
                        ExitCode::Drift,
                        format!(
                            "original values were found in {leaks} place{} of the target",
                            if leaks == 1 { "" } else { "s" }
                        ),
                    )
                    .with_outputs(outputs));
                }
            }
        }
        outputs.extend_from(&out);
        Ok(outputs)
    }
}
