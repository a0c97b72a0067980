//! `confiture plugin check|test|new` on the example and probe guests.

use std::io::Write;
use std::path::PathBuf;
use std::process::Stdio;

use crate::support::{Output, Project, confiture};

fn guest(name: &str) -> String {
    let dir = std::env::var_os("CONFITURE_GUESTS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("plugins/guests/dist"));
    dir.join(format!("{name}.wasm")).display().to_string()
}

/// Run `confiture ARGS` with `input` on stdin.
fn with_stdin(args: &[&str], input: &str) -> Output {
    let mut child = confiture()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("confiture runs");
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn check_names_the_world_the_info_and_the_imports() {
    let out = crate::support::run(confiture().args(["plugin", "check", &guest("mask_email"), "--format", "json"]));
    assert_eq!(out.code, 0, "{out:?}");
    let v = out.json();
    assert_eq!(v["world"], "anonymizer-plugin");
    assert_eq!(v["info"]["name"], "mask-email");
    assert_eq!(v["info"]["deterministic"], true);
    assert!(v["imports"].as_array().unwrap().iter().any(|i| i.as_str().unwrap().starts_with("wasi:cli/stdout")));
    let hook = crate::support::run(confiture().args(["plugin", "check", &guest("deny_drop")]));
    assert_eq!(hook.code, 0, "{hook:?}");
    assert!(hook.stdout.contains("a hook (world hook-plugin of confiture:plugin@0.1.0)"), "{}", hook.stdout);
}

#[test]
fn check_refuses_what_is_not_a_component_with_a_clear_message() {
    let p = Project::new();
    p.write("junk.wasm", "definitely not wasm");
    let out = p.run(&["plugin", "check", "junk.wasm"]);
    assert_eq!(out.code, 5, "{out:?}");
    assert!(out.stderr.contains("not a WebAssembly component"), "{}", out.stderr);
    let missing = p.run(&["plugin", "check", "nowhere.wasm"]);
    assert_eq!(missing.code, 5, "{missing:?}");
    assert!(missing.stderr.contains("cannot read it"), "{}", missing.stderr);
}

#[test]
fn test_runs_an_anonymizer_over_stdin_lines_with_null_kept() {
    let input = "alice@example.com\n\\N\nbob@example.org\nalice@example.com\n";
    let args = ["plugin", "test", &guest("mask_email"), "--param", "key=s3cret", "--column", "public.users.email:text"];
    let out = with_stdin(&args, input);
    assert_eq!(out.code, 0, "{out:?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert_eq!(lines[1], "\\N");
    assert_eq!(lines[0], lines[3], "deterministic");
    assert!(lines[0].ends_with("@example.com") && lines[2].ends_with("@example.org"), "{lines:?}");
    assert!(!out.stdout.contains("alice"), "{}", out.stdout);
    // The same limits as a pipeline's, overridable: a batch of one gives the same values.
    let batched = with_stdin(&[&args[..], &["--batch", "1"]].concat(), input);
    assert_eq!(batched.stdout, out.stdout);
}

#[test]
fn test_reports_a_broken_limit_by_plugin_limit_and_value() {
    let spin = with_stdin(&["plugin", "test", &guest("spin"), "--fuel", "10000000"], "x\n");
    assert_eq!(spin.code, 1, "{spin:?}");
    assert!(
        spin.stderr.contains("plugin spin 0.1.0: ran out of its CPU budget (fuel 10000000 per call)"),
        "{}",
        spin.stderr
    );
    let hog = with_stdin(&["plugin", "test", &guest("hog"), "--memory", "8MiB"], "x\n");
    assert_eq!(hog.code, 1, "{hog:?}");
    assert!(hog.stderr.contains("plugin hog 0.1.0: tried to grow its memory past the cap (8 MiB)"), "{}", hog.stderr);
}

#[test]
fn guest_output_goes_to_the_log_capped() {
    let out = with_stdin(&["-v", "plugin", "test", &guest("snoop")], "a\nb\nc\nd\ne\n");
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("plugin snoop 0.1.0 (stdout): snoop on stdout"), "{}", out.stderr);
    assert!(out.stderr.contains("more bytes not shown"), "100 KB of stderr is capped: {}", out.stderr);
    assert!(out.stderr.len() < 20_000, "{} bytes of log", out.stderr.len());
}

#[test]
fn a_scaffolded_plugin_builds_and_checks() {
    // Building needs the wasm32-wasip2 target and crates.io: CI has both (it sets the variable).
    let Some(guests) = std::env::var_os("CONFITURE_GUESTS_DIR") else { return };
    let target = PathBuf::from(guests).join("../../scaffolded");
    let p = Project::new();
    for (kind, name) in [("anonymizer", "scaffold-anon"), ("hook", "scaffold-hook")] {
        assert_eq!(p.run(&["plugin", "new", kind, name]).code, 0);
        let built = std::process::Command::new("cargo")
            .args(["build", "--release", "--quiet", "--target-dir"])
            .arg(&target)
            .current_dir(p.file(name))
            .status()
            .expect("cargo runs");
        assert!(built.success(), "the {kind} scaffold builds");
        let wasm = target.join(format!("wasm32-wasip2/release/{}.wasm", name.replace('-', "_")));
        let check = p.run(&["plugin", "check", wasm.to_str().unwrap()]);
        assert_eq!(check.code, 0, "{check:?}");
    }
}

#[test]
fn test_asks_a_hook_about_the_sql_on_stdin() {
    let args = ["plugin", "test", &guest("deny_drop"), "--param", "column=users.email"];
    let deny = with_stdin(&args, "ALTER TABLE users DROP COLUMN email;\n");
    assert_eq!(deny.code, 1, "{deny:?}");
    assert!(deny.stdout.starts_with("deny: stdin drops column users.email"), "{}", deny.stdout);
    let allow = with_stdin(&args, "ALTER TABLE users DROP COLUMN nickname;\n");
    assert_eq!((allow.code, allow.stdout.trim()), (0, "allow"), "{allow:?}");
}

#[test]
fn new_scaffolds_a_crate_for_each_world() {
    let p = Project::new();
    for (kind, name, world) in
        [("anonymizer", "mask-phone", "anonymizer-plugin"), ("hook", "no-truncate", "hook-plugin")]
    {
        let out = p.run(&["plugin", "new", kind, name]);
        assert_eq!(out.code, 0, "{out:?}");
        let lib = std::fs::read_to_string(p.file(&format!("{name}/src/lib.rs"))).unwrap();
        assert!(lib.contains(&format!("world: \"{world}\"")), "{lib}");
        let cargo = std::fs::read_to_string(p.file(&format!("{name}/Cargo.toml"))).unwrap();
        assert!(cargo.contains(&format!("name = \"{name}\"")) && cargo.contains("cdylib"), "{cargo}");
        let wit = std::fs::read_to_string(p.file(&format!("{name}/wit/plugin.wit"))).unwrap();
        assert!(wit.contains("package confiture:plugin@0.1.0;"), "{wit}");
        assert!(
            std::fs::read_to_string(p.file(&format!("{name}/.cargo/config.toml"))).unwrap().contains("wasm32-wasip2")
        );
    }
    let again = p.run(&["plugin", "new", "hook", "no-truncate"]);
    assert_eq!(again.code, 5, "never overwrites: {again:?}");
    let bad = p.run(&["plugin", "new", "hook", "1bad name"]);
    assert_eq!(bad.code, 5, "{bad:?}");
}

#[test]
fn test_stops_a_guest_at_its_time_limit() {
    let dir = tempfile::tempdir().unwrap();
    let text = include_str!("../../engine/tests/wat/hook.wat.tpl").replace("{{PRELUDE}}", "").replace(
        "{{ON_EVENT}}",
        "(drop (memory.grow (i32.const 1024))) (loop $again (memory.fill (i32.const 0) (i32.const 0) (i32.const \
         67108864)) (br $again))",
    );
    let path = dir.path().join("fill.wasm");
    std::fs::write(&path, wat::parse_str(&text).unwrap()).unwrap();
    let path = path.display().to_string();
    let args = ["plugin", "test", &path, "--timeout", "300ms", "--fuel", "1000000000000000", "--memory", "128MiB"];
    let out = with_stdin(&args, "SELECT 1;\n");
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("ran past its time limit (300ms per call)"), "{}", out.stderr);
}
