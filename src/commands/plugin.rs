//! `confiture plugin check|test|new`: inspect, exercise and scaffold WebAssembly plugins.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand, ValueEnum};
use confiture_engine::ExitCode;
use confiture_engine::wasm::{Column, Decision, Event, Limits, Runtime, World};

use super::Format;

pub const HELP: &str = "Examples:
  confiture plugin new anonymizer mask-phone          scaffold a Rust plugin crate in ./mask-phone
  confiture plugin check mask_phone.wasm              which world, its info, what it imports
  printf 'alice@example.com\\n\\\\N\\n' | confiture plugin test mask_email.wasm --param key=s3cret \\
      --column public.users.email:text              one value per line in, one out (\\N is NULL)
  confiture plugin test deny_drop.wasm --param table=users < migration.sql   a hook's decision

Plugins are WebAssembly components (wasm32-wasip2) of the WIT package confiture:plugin@0.1.0
(wit/ in confiture's repository; docs/plugins.md). They run sandboxed — no files, network,
environment, clock or randomness — with a CPU budget (fuel) and a time limit per call, a memory cap and a batch size.";

#[derive(Args)]
pub struct PluginArgs {
    #[command(subcommand)]
    pub command: PluginCommand,
}

/// Limits, as in a pipeline's plugin settings.
#[derive(Args, Clone)]
pub struct LimitArgs {
    /// CPU budget per call, in fuel units (~ WebAssembly instructions)
    #[arg(long, value_name = "N")]
    pub fuel: Option<u64>,
    /// Memory cap, e.g. 64MiB
    #[arg(long, value_name = "SIZE", value_parser = confiture_engine::wasm::parse_size)]
    pub memory: Option<usize>,
    /// Values per call
    #[arg(long, value_name = "N")]
    pub batch: Option<usize>,
    /// Wall-clock time per call, e.g. 30s (the guest is stopped when it runs out)
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub timeout: Option<std::time::Duration>,
}

impl LimitArgs {
    fn limits(&self) -> Limits {
        let d = Limits::default();
        Limits {
            fuel: self.fuel.unwrap_or(d.fuel),
            memory: self.memory.unwrap_or(d.memory),
            batch: self.batch.unwrap_or(d.batch).max(1),
            output: d.output,
            time: self.timeout.unwrap_or(d.time),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    Anonymizer,
    Hook,
}

#[derive(Subcommand)]
pub enum PluginCommand {
    /// Check a plugin: which world it implements, its info, what it imports
    Check {
        file: PathBuf,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Run a plugin on standard input: an anonymizer transforms one value per line (\N is NULL);
    /// a hook decides on the SQL it reads, as a before-migration event
    Test {
        file: PathBuf,
        /// A param for `configure` (repeatable)
        #[arg(long = "param", value_name = "KEY=VALUE", value_parser = super::parse_set)]
        params: Vec<(String, String)>,
        /// The column the values come from [default: public.t.value:text]
        #[arg(long, value_name = "SCHEMA.TABLE.NAME:TYPE", value_parser = parse_column)]
        column: Option<ColumnArg>,
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// Scaffold a plugin crate (Rust) that builds with `cargo build --release`
    New {
        kind: Kind,
        /// The plugin's name (a crate name: letters, digits, - and _)
        name: String,
        /// Where to create it [default: ./NAME]
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

#[derive(Clone, Debug)]
pub struct ColumnArg(Column);

fn parse_column(s: &str) -> Result<ColumnArg, String> {
    let (path, data_type) = s.split_once(':').unwrap_or((s, "text"));
    let parts: Vec<&str> = path.split('.').collect();
    let (schema, table, name) = match parts.as_slice() {
        [t, n] => ("public", *t, *n),
        [s, t, n] => (*s, *t, *n),
        _ => return Err(format!("expected [SCHEMA.]TABLE.NAME[:TYPE], got `{s}`")),
    };
    Ok(ColumnArg(Column { schema: schema.into(), table: table.into(), name: name.into(), data_type: data_type.into() }))
}

pub fn plugin(args: PluginArgs) -> ExitCode {
    match args.command {
        PluginCommand::Check { file, format } => check(&file, format),
        PluginCommand::Test { file, params, column, limits } => test(&file, params, column, &limits),
        PluginCommand::New { kind, name, dir } => new(kind, &name, dir),
    }
}

fn runtime() -> Result<Runtime, ExitCode> {
    Runtime::new(Runtime::default_cache_dir()).map_err(|e| {
        crate::render::error(e.to_string());
        ExitCode::Failure
    })
}

#[derive(serde::Serialize)]
struct CheckReport {
    file: String,
    world: World,
    package: &'static str,
    /// An anonymizer's info (hooks have none).
    info: Option<serde_json::Value>,
    imports: Vec<String>,
}

fn check(file: &Path, format: Format) -> ExitCode {
    let rt = match runtime() {
        Ok(r) => r,
        Err(code) => return code,
    };
    let mut plugin = match rt.load(file, Limits::default()) {
        Ok(p) => p,
        Err(e) => {
            crate::render::error(e.to_string());
            return ExitCode::Config;
        }
    };
    let info = match plugin.world() {
        World::AnonymizerPlugin => match plugin.info() {
            Ok(i) => Some(serde_json::json!({
                "name": i.name,
                "version": i.version,
                "deterministic": i.deterministic,
                "uniqueness": match i.uniqueness {
                    confiture_engine::wasm::Uniqueness::Preserved => "preserved",
                    confiture_engine::wasm::Uniqueness::NotGuaranteed => "not-guaranteed",
                    confiture_engine::wasm::Uniqueness::Lossy => "lossy",
                },
            })),
            Err(e) => {
                crate::render::error(e.to_string());
                return ExitCode::Failure;
            }
        },
        World::HookPlugin => None,
    };
    let report = CheckReport {
        file: file.display().to_string(),
        world: plugin.world(),
        package: "confiture:plugin@0.1.0",
        info,
        imports: plugin.imports().to_vec(),
    };
    match format {
        Format::Json => crate::render::print_json(&report),
        Format::Text => {
            let what = match report.world {
                World::AnonymizerPlugin => "an anonymizer",
                World::HookPlugin => "a hook",
            };
            outln!("{}: {what} (world {} of {})", report.file, report.world.as_str(), report.package);
            if let Some(i) = &report.info {
                outln!(
                    "  {} {}   deterministic: {}   uniqueness: {}",
                    i["name"].as_str().unwrap_or("?"),
                    i["version"].as_str().unwrap_or("?"),
                    if i["deterministic"] == true { "yes" } else { "no" },
                    i["uniqueness"].as_str().unwrap_or("?")
                );
            }
            let (wasi, own): (Vec<&String>, Vec<&String>) = report.imports.iter().partition(|i| i.starts_with("wasi:"));
            for i in own {
                outln!("  imports {i}");
            }
            if !wasi.is_empty() {
                outln!(
                    "  imports {} WASI interfaces ({}), linked with an empty context: no files, network, environment, clock or randomness",
                    wasi.len(),
                    wasi.iter().map(|w| w.split('@').next().unwrap_or(w)).collect::<Vec<_>>().join(", ")
                );
            }
        }
    }
    ExitCode::Success
}

fn test(file: &Path, params: Vec<(String, String)>, column: Option<ColumnArg>, limits: &LimitArgs) -> ExitCode {
    let rt = match runtime() {
        Ok(r) => r,
        Err(code) => return code,
    };
    let fail = |e: confiture_engine::wasm::PluginError| {
        crate::render::error(e.to_string());
        ExitCode::Failure
    };
    let mut plugin = match rt.load(file, limits.limits()) {
        Ok(p) => p,
        Err(e) => {
            crate::render::error(e.to_string());
            return ExitCode::Config;
        }
    };
    if let Err(e) = plugin.configure(params) {
        return fail(e);
    }
    let stdin = std::io::stdin();
    match plugin.world() {
        World::AnonymizerPlugin => {
            let column = column.map(|c| c.0).unwrap_or_else(|| Column {
                schema: "public".into(),
                table: "t".into(),
                name: "value".into(),
                data_type: "text".into(),
            });
            let mut batch: Vec<Option<String>> = Vec::new();
            let mut out = std::io::stdout().lock();
            let mut flush = |plugin: &mut confiture_engine::wasm::Plugin, batch: &mut Vec<Option<String>>| {
                let values = plugin.transform(&column, batch)?;
                batch.clear();
                for v in values {
                    let line = match v {
                        Some(v) => v,
                        None => "\\N".into(),
                    };
                    if writeln!(out, "{line}").is_err() {
                        std::process::exit(ExitCode::OutputClosed.code().into());
                    }
                }
                Ok::<_, confiture_engine::wasm::PluginError>(())
            };
            for line in lines(stdin.lock()) {
                batch.push(if line == "\\N" { None } else { Some(line) });
                if batch.len() == plugin.limits().batch
                    && let Err(e) = flush(&mut plugin, &mut batch)
                {
                    return fail(e);
                }
            }
            if !batch.is_empty()
                && let Err(e) = flush(&mut plugin, &mut batch)
            {
                return fail(e);
            }
            ExitCode::Success
        }
        World::HookPlugin => {
            let mut sql = String::new();
            for line in lines(stdin.lock()) {
                sql.push_str(&line);
                sql.push('\n');
            }
            let event = Event {
                kind: "before-migration".into(),
                pipeline: "plugin-test".into(),
                stage: "plugin-test".into(),
                environment: String::new(),
                database: String::new(),
                migration: Some("stdin".into()),
                sql: Some(sql),
                details: Vec::new(),
            };
            match plugin.on_event(&event) {
                Ok(Decision::Allow) => {
                    outln!("allow");
                    ExitCode::Success
                }
                Ok(Decision::Warn(why)) => {
                    outln!("warn: {why}");
                    ExitCode::Success
                }
                Ok(Decision::Deny(why)) => {
                    outln!("deny: {why}");
                    ExitCode::Failure
                }
                Err(e) => fail(e),
            }
        }
    }
}

/// Lines of `input`, without their `\n` (or `\r\n`); bytes that are not UTF-8 become U+FFFD, as
/// pipelines read files, with a warning — never a silent stop.
fn lines(input: impl BufRead) -> impl Iterator<Item = String> {
    let mut warned = false;
    input.split(b'\n').map_while(Result::ok).map(move |mut bytes| {
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
        let line = String::from_utf8_lossy(&bytes).into_owned();
        if !warned && std::str::from_utf8(&bytes).is_err() {
            warned = true;
            tracing::warn!("standard input is not UTF-8: invalid bytes are read as U+FFFD");
        }
        line
    })
}

const WIT: &str = include_str!("../../wit/confiture-plugin/v0.1/plugin.wit");
const CARGO_TOML: &str = include_str!("../templates/plugin/Cargo.toml.j2");
const CONFIG_TOML: &str = include_str!("../templates/plugin/config.toml");
const ANONYMIZER_RS: &str = include_str!("../templates/plugin/anonymizer.rs.j2");
const HOOK_RS: &str = include_str!("../templates/plugin/hook.rs.j2");
const README_MD: &str = include_str!("../templates/plugin/README.md.j2");

fn new(kind: Kind, name: &str, dir: Option<PathBuf>) -> ExitCode {
    let valid = !name.is_empty()
        && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !valid {
        crate::render::error(format!(
            "`{name}` is not a crate name: start with a letter, then letters, digits, - or _"
        ));
        return ExitCode::Config;
    }
    let dir = dir.unwrap_or_else(|| PathBuf::from(name));
    if dir.exists() && std::fs::read_dir(&dir).map(|mut d| d.next().is_some()).unwrap_or(true) {
        crate::render::error(format!("{} exists and is not empty; choose another --dir", dir.display()));
        return ExitCode::Config;
    }
    let (kind_name, world, lib) = match kind {
        Kind::Anonymizer => ("anonymizer", "anonymizer-plugin", ANONYMIZER_RS),
        Kind::Hook => ("hook", "hook-plugin", HOOK_RS),
    };
    let mut env = minijinja::Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env.set_syntax(
        minijinja::syntax::SyntaxConfig::builder().keep_trailing_newline(true).build().expect("a valid syntax"),
    );
    let ctx = minijinja::context! { name => name, kind => kind_name, world => world, crate => name.replace('-', "_") };
    let render = |template: &str| env.render_str(template, &ctx);
    let files: Vec<(&str, Result<String, minijinja::Error>)> = vec![
        ("Cargo.toml", render(CARGO_TOML)),
        (".cargo/config.toml", Ok(CONFIG_TOML.to_string())),
        ("src/lib.rs", render(lib)),
        ("wit/plugin.wit", Ok(WIT.to_string())),
        ("README.md", render(README_MD)),
        (".gitignore", Ok("/target\n".to_string())),
    ];
    for (rel, content) in files {
        let content = match content {
            Ok(c) => c,
            Err(e) => {
                crate::render::error(format!("template {rel}: {e}"));
                return ExitCode::Failure;
            }
        };
        let path = dir.join(rel);
        let written =
            path.parent().map_or(Ok(()), std::fs::create_dir_all).and_then(|()| std::fs::write(&path, content));
        if let Err(e) = written {
            crate::render::error(format!("cannot write {}: {e}", path.display()));
            return ExitCode::Config;
        }
    }
    outln!("created {} ({kind_name}, world {world})", dir.display());
    outln!("next:");
    outln!("  rustup target add wasm32-wasip2        # once");
    outln!("  cd {} && cargo build --release", dir.display());
    outln!("  confiture plugin check target/wasm32-wasip2/release/{}.wasm", name.replace('-', "_"));
    ExitCode::Success
}
