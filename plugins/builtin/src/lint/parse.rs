//! Reading files to lint: what kind of file each is, and parsing them on worker threads ahead of
//! the (sequential) checking, a bounded window at a time.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, mpsc};

use confiture_engine::diag::SourceFile;
use confiture_engine::pg_query::NodeEnum;
use confiture_engine::sql;

/// What a file is; some rules only apply to migrations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// A migration (`db/migrations/…`): changes an existing database.
    Migration,
    /// A schema file (`db/schema/…`): builds a database from nothing.
    Schema,
    /// Anything else (a path given on the command line, stdin).
    Other,
}

impl FileKind {
    /// Guess from a path: under a `migrations` directory or named `*.up.sql`/`*.down.sql` is a
    /// migration; under `schema` is a schema file.
    pub fn of(path: &str) -> FileKind {
        let p = path.replace('\\', "/");
        if p.ends_with(".up.sql") || p.ends_with(".down.sql") || p.split('/').any(|c| c == "migrations") {
            FileKind::Migration
        } else if p.split('/').any(|c| c == "schema") {
            FileKind::Schema
        } else {
            FileKind::Other
        }
    }
}

/// A file to lint.
pub struct Input {
    /// Shown in findings (a path relative to the project, or `<stdin>`).
    pub name: String,
    pub text: String,
    pub kind: FileKind,
}

/// A file parsed: its text and its statements (or where it stops parsing).
pub struct Parsed {
    pub source: SourceFile,
    pub kind: FileKind,
    pub statements: Result<Vec<(sql::Statement, Option<NodeEnum>)>, sql::SyntaxError>,
}

/// Parse `inputs` on worker threads and hand each file to `f` in order, on this thread, as soon
/// as it and every file before it are parsed. At most `WINDOW` files are parsed ahead of `f`, so
/// parse trees (ten times the size of the text) are freed as linting goes instead of all being
/// held at once; memory is reused rather than faulted in fresh from the kernel.
pub fn for_each_parsed(inputs: Vec<Input>, mut f: impl FnMut(usize, Parsed)) {
    const WINDOW: usize = 64;
    let n = inputs.len();
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get()).min(n.max(1));
    let next = AtomicUsize::new(0);
    let done = Mutex::new(0usize);
    let advanced = Condvar::new();
    let (tx, rx) = mpsc::channel::<(usize, Parsed)>();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            let tx = tx.clone();
            let (inputs, next, done, advanced) = (&inputs, &next, &done, &advanced);
            scope.spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(input) = inputs.get(i) else { break };
                    drop(
                        advanced
                            .wait_while(done.lock().expect("the lint thread does not panic holding it"), |d| {
                                i >= *d + WINDOW
                            })
                            .expect("the lint thread does not panic holding it"),
                    );
                    let mut text = input.text.clone();
                    if text.starts_with('\u{feff}') {
                        text.drain(..3);
                    }
                    let statements = sql::parse(&text);
                    let parsed = Parsed {
                        source: SourceFile::new(input.name.clone(), Arc::<str>::from(text)),
                        kind: input.kind,
                        statements,
                    };
                    if tx.send((i, parsed)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        // If `f` panics, let the parse threads run out (their sends then fail) so the scope can
        // join them instead of waiting forever.
        struct Release<'a>(&'a Mutex<usize>, &'a Condvar);
        impl Drop for Release<'_> {
            fn drop(&mut self) {
                if let Ok(mut d) = self.0.lock() {
                    *d = usize::MAX / 2;
                }
                self.1.notify_all();
            }
        }
        let _release = Release(&done, &advanced);
        let rx = rx;
        let mut ahead: HashMap<usize, Parsed> = HashMap::new();
        for i in 0..n {
            let parsed = loop {
                if let Some(p) = ahead.remove(&i) {
                    break p;
                }
                let (k, p) = rx.recv().expect("a parse thread panicked");
                ahead.insert(k, p);
            };
            f(i, parsed);
            *done.lock().expect("no parse thread panics holding it") = i + 1;
            advanced.notify_all();
        }
    });
}
