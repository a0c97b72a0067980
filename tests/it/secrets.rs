//! No output of any command contains a password: generated passwords (with `@ : / ' " %`, `?`,
//! `#`, `&`, `=`, backslashes and non-ASCII letters) in every connection-string shape, through
//! connection failures, successful runs, `plan`, `check`, `diff` and hook failures.

use proptest::prelude::*;

use crate::support::{Output, Project, run, server};

/// What a password is made of, in every shape (no whitespace: a URL must percent-encode it); `://`
/// and `@h/` make it look like more than one connection string.
const PIECES: &[&str] = &[
    "a",
    "b",
    "k",
    "Q",
    "Z",
    "7",
    "0",
    "@",
    ":",
    "/",
    "'",
    "\"",
    "%",
    "?",
    "#",
    "&",
    "=",
    "\\",
    "-",
    "_",
    ".",
    "!",
    "é",
    "ü",
    "ß",
    "日",
    "本",
    "🔑",
    "://",
    "@h/",
    ",postgresql://",
];

fn password() -> impl Strategy<Value = String> {
    proptest::collection::vec(proptest::sample::select(PIECES), 10..20).prop_map(|v| v.concat())
}

fn pct(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn kv_quote(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

fn kdl(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// The shapes a user writes a connection string in; some are invalid on purpose.
fn shapes(pw: &str) -> Vec<String> {
    let port = server().get("port").unwrap().to_string();
    vec![
        // Valid, over TCP: the password is checked (and wrong), so authentication fails.
        format!("postgresql://postgres:{}@127.0.0.1:{port}/postgres", pct(pw)),
        format!("host=127.0.0.1 port={port} user=postgres password={} dbname=postgres", kv_quote(pw)),
        // Valid, over the trusting socket: the connection succeeds with the password in it.
        format!("{} password={}", server().to_secret_string(), kv_quote(&format!("{pw} with space"))),
        // As pasted, not encoded: often does not parse.
        format!("postgresql://postgres:{pw}@127.0.0.1:{port}/postgres"),
        // No scheme at all.
        format!("postgres:{pw}@127.0.0.1/postgres"),
    ]
}

fn leaks(out: &Output, pw: &str) -> bool {
    let all = out.all();
    all.contains(pw) || all.contains(&pct(pw)) || all.contains(&format!("{pw} with space"))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn no_command_prints_a_password(pw in password()) {
        let p = Project::new();
        p.write("db/schema/a.sql", "CREATE TABLE a (id int);\n").write("db/migrations/1_a.up.sql", "SELECT 1;\n");
        for dsn in shapes(&pw) {
            let pipeline = format!(
                "database \"prod\" url=\"{}\"\nstage \"m\" uses=\"migrate\" {{ database \"prod\"; mode \"status\"; }}\n\
                 hook \"h\" on=\"stage-failed\" command=\"exit 3 # {{{{ env.HOOK_SECRET }}}}\"\n",
                kdl(&dsn)
            );
            p.write("pipelines/p.kdl", &pipeline);
            let runs: Vec<Vec<&str>> = vec![
                vec!["migrate", "status", "--database-url", &dsn],
                vec!["migrate", "status", "--database-url", &dsn, "--format", "json"],
                vec!["build", "--database-url", &dsn, "--drop-existing"],
                vec!["diff", "--from", &dsn, "--to", &dsn],
                vec!["lint", "--database", &dsn],
                vec!["plan", "pipelines/p.kdl"],
                vec!["plan", "pipelines/p.kdl", "--format", "json"],
                vec!["check", "pipelines/p.kdl", "--format", "json"],
                vec!["-vv", "run", "pipelines/p.kdl"],
                vec!["run", "pipelines/p.kdl", "--format", "json"],
            ];
            for args in runs {
                let out = run(p.cmd(&args).env("HOOK_SECRET", &pw).env("DATABASE_URL", &dsn));
                prop_assert!(!leaks(&out, &pw), "`confiture {}` printed the password {pw:?}:\n{}", args.join(" "), out.all());
            }
        }
    }
}
