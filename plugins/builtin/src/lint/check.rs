//! The lint driver: parse (parse.rs), walk statements in order with what is known so far
//! (facts.rs, scope.rs), hand each to every enabled rule, apply ignore comments (ignores.rs),
//! collect findings (findings.rs).

use confiture_engine::diag::SourceFile;

use super::facts::{self, Facts};
use super::findings::{Cx, Finding, RuleState, clone_states};
use super::ignores::{FileIgnores, leading_comments_len};
use super::live::Live;
use super::parse::{FileKind, Input, for_each_parsed};
use super::scope::Scope;
use super::stmt::first_line_len;
use super::stmt::{At, Stmt};
use super::{Config, Rule, Severity, ast};

/// Everything a lint run found.
#[derive(Debug, Default)]
pub struct LintResult {
    pub findings: Vec<Finding>,
    /// Files that do not parse (also in `findings`, as rule `syntax-error`).
    pub syntax_errors: Vec<Finding>,
    pub sources: Vec<SourceFile>,
    pub statements: usize,
}

/// Lint `inputs` in order (order matters: a table created in an earlier file is new in a later one).
///
/// The rules walk parse trees recursively, and SQL may nest a few hundred levels deep (as deep
/// as libpg_query accepts): they run on a stack of their own, large and committed only as used,
/// whatever thread calls this.
pub fn lint(inputs: Vec<Input>, config: &Config, live: Option<&Live>) -> LintResult {
    confiture_engine::sql::stack::run(|| lint_here(inputs, config, live))
}

fn lint_here(inputs: Vec<Input>, config: &Config, live: Option<&Live>) -> LintResult {
    let mut sources: Vec<SourceFile> = Vec::with_capacity(inputs.len());
    let rules: Vec<(&'static dyn Rule, Severity)> = super::rules::RULES
        .iter()
        .map(|r| (*r, config.severity_of(r.meta())))
        .filter(|(_, s)| *s != Severity::Off)
        .collect();
    let mut states: Vec<Option<Box<dyn RuleState>>> = rules.iter().map(|_| None).collect();
    let mut facts = Facts::default();
    let mut findings = Vec::new();
    let mut syntax_errors = Vec::new();
    let mut statements = 0;
    let mut kinds = Vec::with_capacity(inputs.len());
    let mut ups: Vec<Option<usize>> = Vec::with_capacity(inputs.len());
    // Per file: the ignore comments, and which statement each is about.
    let mut file_ignores: Vec<FileIgnores> = Vec::with_capacity(inputs.len());
    for_each_parsed(inputs, |fi, p| {
        // A down migration right after its up.
        let up = p.source.name.strip_suffix(".down.sql").and_then(|stem| {
            let prev = sources.last()?;
            (prev.name.strip_suffix(".up.sql") == Some(stem)).then(|| fi - 1)
        });
        ups.push(up);
        sources.push(p.source.clone());
        kinds.push(p.kind);
        facts.lock_timeout = false;
        facts.statement_timeout = false;
        facts.in_transaction = false;
        facts.locking_ddl_seen = false;
        facts.statements_in_file = 0;
        facts.non_transactional_in_file = None;
        facts.transactional_in_file = false;
        facts.search_path = None;
        file_ignores.push(FileIgnores::new(&p.source.text));
        // A down migration is the way back, not a step forward: what it does must not shape
        // how later files are judged.
        let before_down = p.source.name.ends_with(".down.sql").then(|| (facts.clone(), clone_states(&states)));
        let stmts = match &p.statements {
            Ok(s) => s,
            Err(e) => {
                let offset = e.offset.unwrap_or(0);
                let (line, column) = p.source.line_col(offset);
                let mut message = e.message.clone();
                if let Some(h) = e.help(&p.source.text) {
                    message.push_str(&format!(" ({h})"));
                }
                syntax_errors.push(Finding {
                    rule: "syntax-error".into(),
                    severity: Severity::Error,
                    message,
                    help: "fix the SQL so PostgreSQL's parser accepts it; nothing else in this file was checked".into(),
                    file: p.source.name.clone(),
                    line,
                    column,
                    end_line: line,
                    end_column: column + 1,
                    span: (offset, 1),
                    source: fi,
                });
                // Its ignores were not given a chance: do not call them unused.
                file_ignores[fi].excuse();
                return;
            }
        };
        let text = &p.source.text;
        let mut prev_end = 0;
        for (st, node) in stmts {
            statements += 1;
            let Some(node) = node else { continue };
            let scope = Scope {
                facts: &facts,
                live,
                runner_timeouts: config.runner_timeouts,
                file: fi,
                kind: p.kind,
                up: ups[fi],
            };
            let stmt = Stmt {
                node,
                kind: p.kind,
                offset: st.offset,
                len: st.len,
                file: fi,
                text: st.text(text),
                classification: st,
                reindexes_partitioned: scope.reindexes_partitioned(node),
            };
            for ((rule, severity), state) in rules.iter().zip(&mut states) {
                let mut cx = Cx {
                    facts: &facts,
                    scope,
                    meta: rule.meta(),
                    severity: *severity,
                    out: &mut findings,
                    sources: &sources,
                    state,
                };
                rule.check(&stmt, &mut cx);
            }
            let first_token = st.offset + leading_comments_len(stmt.text);
            file_ignores[fi].attach(text, prev_end, st.offset, first_token, st.offset + st.len);
            prev_end = st.offset + st.len;
            let locks = scope.blocking_lock(&stmt).is_some();
            let exists_already = st.creates.as_ref().is_some_and(|c| {
                ast::creates_if_not_exists(node) && scope.known_to_exist(c.strip_prefix("public.").unwrap_or(c))
            });
            facts::learn(&mut facts, &stmt, fi, locks, exists_already);
        }
        if let Some((before, saved)) = before_down {
            facts = before;
            states = saved;
        }
        file_ignores[fi].attach_trailing(text, prev_end);
    });
    let scope_of = |file: usize| Scope {
        facts: &facts,
        live,
        runner_timeouts: config.runner_timeouts,
        file,
        kind: kinds.get(file).copied().unwrap_or(FileKind::Other),
        up: ups.get(file).copied().flatten(),
    };
    let mut finished = Vec::new();
    for ((rule, severity), state) in rules.iter().zip(&mut states) {
        let mut cx = Cx {
            facts: &facts,
            scope: scope_of(usize::MAX),
            meta: rule.meta(),
            severity: *severity,
            out: &mut finished,
            sources: &sources,
            state,
        };
        rule.finish(&mut cx);
    }
    findings.append(&mut finished);
    // Suppress what ignore comments name, per statement (findings of `finish` included).
    findings.retain(|f| !file_ignores[f.source].suppresses(f));
    // Ignore comments that suppressed nothing, or say no why.
    let unused = (&super::rules::UNUSED_IGNORE_META, config.severity_of(super::rules::UNUSED_IGNORE_META));
    let reasonless =
        (&super::rules::IGNORE_WITHOUT_REASON_META, config.severity_of(super::rules::IGNORE_WITHOUT_REASON_META));
    for (fi, list) in file_ignores.iter().enumerate() {
        for i in &list.comments {
            let at = At { file: fi, offset: i.offset, len: first_line_len(&sources[fi].text[i.offset..]) };
            let known = |r: &String| r == "all" || super::rules::find(r).is_some();
            let all_known = !i.rules.is_empty() && i.rules.iter().all(known);
            // A rule turned off finds nothing to suppress; that is not the comment's fault.
            let names_off_rule = i
                .rules
                .iter()
                .any(|r| super::rules::find(r).is_some_and(|rule| config.severity_of(rule.meta()) == Severity::Off));
            if unused.1 != Severity::Off && !i.used && !(all_known && names_off_rule) {
                let mut cx = Cx {
                    facts: &facts,
                    scope: scope_of(fi),
                    meta: unused.0,
                    severity: unused.1,
                    out: &mut findings,
                    sources: &sources,
                    state: &mut None,
                };
                if all_known {
                    cx.report_at(
                        at,
                        "this ignore comment suppresses nothing",
                        "remove it, or move it right above the statement it is about",
                    );
                } else {
                    let bad: Vec<&str> = i.rules.iter().filter(|r| !known(r)).map(String::as_str).collect();
                    cx.report_at(
                        at,
                        if bad.is_empty() {
                            "this ignore comment names no rule".to_string()
                        } else {
                            format!("unknown rule in ignore comment: `{}`", bad.join(","))
                        },
                        "write `-- confiture:ignore RULE reason` with a rule id from `confiture lint --list-rules`",
                    );
                }
            }
            if reasonless.1 != Severity::Off && all_known && !i.reason {
                let mut cx = Cx {
                    facts: &facts,
                    scope: scope_of(fi),
                    meta: reasonless.0,
                    severity: reasonless.1,
                    out: &mut findings,
                    sources: &sources,
                    state: &mut None,
                };
                cx.report_at(
                    at,
                    format!("this ignore of {} does not say why", i.rules.join(",")),
                    "add the reason after the rule: `-- confiture:ignore RULE the table has 40 rows`",
                );
            }
        }
    }
    findings.extend(syntax_errors.iter().cloned());
    findings.sort_by(|a, b| (a.source, a.span.0, &a.rule).cmp(&(b.source, b.span.0, &b.rule)));
    LintResult { findings, syntax_errors, sources, statements }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_from_paths() {
        assert_eq!(FileKind::of("db/migrations/001_a.sql"), FileKind::Migration);
        assert_eq!(FileKind::of("x/002_b.up.sql"), FileKind::Migration);
        assert_eq!(FileKind::of("db/schema/10_tables/users.sql"), FileKind::Schema);
        assert_eq!(FileKind::of("scratch.sql"), FileKind::Other);
    }

    /// Files are parsed ahead on threads but linted in order: each migration widens a column
    /// the one before it created, which the linter knows is not a rewrite only if the earlier
    /// file was linted first. Many more files than the parse-ahead window.
    #[test]
    fn lints_in_order_past_the_parse_window() {
        let n = 500;
        let inputs: Vec<Input> = (0..n)
            .map(|i| Input {
                name: format!("db/migrations/{i:04}_t.sql"),
                text: format!(
                    "{alter}CREATE TABLE t{i} (a bigint PRIMARY KEY, v varchar(10));\n{pad}",
                    alter = if i == 0 {
                        String::new()
                    } else {
                        format!("ALTER TABLE t{} ALTER COLUMN v TYPE varchar(20);\n", i - 1)
                    },
                    pad = "-- padding\n".repeat(i % 7 * 50)
                ),
                kind: FileKind::Migration,
            })
            .collect();
        let result = lint(inputs, &Config::default(), None);
        assert_eq!(result.sources.len(), n);
        assert!(result.sources.iter().enumerate().all(|(i, s)| s.name == format!("db/migrations/{i:04}_t.sql")));
        assert_eq!(result.statements, 2 * n - 1);
        let rewrites = result.findings.iter().filter(|f| f.rule == "column-type-change").count();
        assert_eq!(rewrites, 0, "{:?}", result.findings.iter().take(3).collect::<Vec<_>>());

        // Without the earlier file, the old type is unknown and the change may rewrite.
        let alone = vec![Input {
            name: "db/migrations/0002_t.sql".into(),
            text: "ALTER TABLE t1 ALTER COLUMN v TYPE varchar(20);".into(),
            kind: FileKind::Migration,
        }];
        let result = lint(alone, &Config::default(), None);
        assert!(result.findings.iter().any(|f| f.rule == "column-type-change"));
    }

    /// Without a database, a table created by an earlier migration counts as existing (it may
    /// have been applied long ago); one created in the same file is new; a down migration may
    /// remove what its up created.
    #[test]
    fn what_counts_as_new() {
        let file = |name: &str, text: &str| Input { name: name.into(), text: text.into(), kind: FileKind::of(name) };
        let inputs = vec![
            file("db/migrations/001_t.up.sql", "CREATE TABLE t (id bigint PRIMARY KEY, a int);"),
            file("db/migrations/001_t.down.sql", "DROP TABLE t;"),
            file(
                "db/migrations/002_a.up.sql",
                "SET lock_timeout = '1s'; SET statement_timeout = '1min';\nCREATE INDEX t_a ON t (a);\nALTER TABLE t ADD COLUMN b int;\nCREATE TABLE u (id bigint PRIMARY KEY);\nCREATE INDEX u_id ON u (id);",
            ),
            file("db/migrations/002_a.down.sql", "SET lock_timeout = '1s';\nALTER TABLE t DROP COLUMN b;"),
            file("db/schema/t.sql", "CREATE TABLE t (id bigint PRIMARY KEY, a int);"),
            file("db/schema/t_a.sql", "CREATE INDEX t_a ON t (a);"),
        ];
        let result = lint(inputs, &Config::default(), None);
        let got: Vec<(String, &str)> = result
            .findings
            .iter()
            .filter(|f| f.severity != Severity::Info)
            .map(|f| (format!("{}:{}", f.file.rsplit('/').next().unwrap(), f.line), f.rule.as_str()))
            .collect();
        assert_eq!(
            got,
            [("002_a.up.sql:2".to_string(), "require-concurrent-index-creation")],
            "{:#?}",
            result.findings
        );
    }

    /// Facts learned from a down migration do not carry into later files; a dropped index no
    /// longer serves a foreign key; a moved or renamed new table stays new; ON ONLY on a known
    /// plain table builds a whole index; dropping an index locks its table even if the index
    /// is new.
    #[test]
    fn downs_drops_moves_and_only() {
        let file = |name: &str, text: &str| Input { name: name.into(), text: text.into(), kind: FileKind::of(name) };
        let timeouts = "SET lock_timeout = '1s'; SET statement_timeout = '1min';\n";
        let inputs = vec![
            file(
                "db/migrations/001.up.sql",
                "CREATE TABLE users (id bigint PRIMARY KEY, name varchar(100), org_id bigint);\nCREATE INDEX users_org ON users (org_id);",
            ),
            file(
                "db/migrations/002.up.sql",
                &format!("{timeouts}ALTER TABLE users ALTER COLUMN name TYPE varchar(200);\nDROP INDEX users_org;"),
            ),
            file(
                "db/migrations/002.down.sql",
                &format!(
                    "{timeouts}ALTER TABLE users ALTER COLUMN name TYPE varchar(100);\nCREATE INDEX users_org ON users (org_id);"
                ),
            ),
            file(
                "db/migrations/003.up.sql",
                &format!(
                    "{timeouts}ALTER TABLE users ALTER COLUMN name TYPE varchar(150);\nALTER TABLE users ADD FOREIGN KEY (org_id) REFERENCES orgs (id) NOT VALID;"
                ),
            ),
            file(
                "db/migrations/004.up.sql",
                &format!(
                    "{timeouts}CREATE TABLE w (a int);\nALTER TABLE w SET SCHEMA s;\nCREATE INDEX ON s.w (a);\nALTER TABLE s.w RENAME TO w2;\nCREATE INDEX ON s.w2 (a);\nCREATE INDEX users_name ON ONLY users (name);"
                ),
            ),
            file(
                "db/migrations/005.up.sql",
                &format!("{timeouts}CREATE INDEX users_x ON users (name);\nDROP INDEX users_x;"),
            ),
        ];
        let result = lint(inputs, &Config::default(), None);
        let got: Vec<(String, &str)> = result
            .findings
            .iter()
            .filter(|f| {
                f.severity != Severity::Info
                    && !f.rule.starts_with("require-primary")
                    && f.rule != "prefer-text-over-varchar"
            })
            .map(|f| (format!("{}:{}", f.file.rsplit('/').next().unwrap(), f.line), f.rule.as_str()))
            .collect();
        let want = [
            ("002.up.sql:3", "require-concurrent-index-deletion"),
            ("002.down.sql:2", "column-type-change"),
            ("002.down.sql:3", "require-concurrent-index-creation"),
            ("003.up.sql:2", "column-type-change"),
            ("003.up.sql:3", "foreign-key-without-index"),
            ("004.up.sql:7", "require-concurrent-index-creation"),
            ("005.up.sql:2", "require-concurrent-index-creation"),
            ("005.up.sql:3", "require-concurrent-index-deletion"),
        ];
        let want: Vec<(String, &str)> = want.iter().map(|(a, b)| (a.to_string(), *b)).collect();
        assert_eq!(got, want);
        let narrowing =
            result.findings.iter().find(|f| f.file.ends_with("003.up.sql") && f.rule == "column-type-change").unwrap();
        assert!(narrowing.message.contains("from varchar(200) to varchar(150)"), "{}", narrowing.message);
    }

    #[test]
    fn leading_comments() {
        assert_eq!(leading_comments_len("-- a\n/* b */ CREATE"), "-- a\n/* b */ ".len());
        assert_eq!(leading_comments_len("CREATE"), 0);
    }
}
