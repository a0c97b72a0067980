//! The plugin host against real components (plugins/guests; built .wasm in dist/, or the fresh
//! builds of `CONFITURE_GUESTS_DIR`, which .ci/run sets).

use std::path::PathBuf;

use confiture_engine::wasm::{Column, Decision, ErrorKind, Event, Limits, Runtime, World};

fn guest(name: &str) -> PathBuf {
    let dir = std::env::var_os("CONFITURE_GUESTS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../plugins/guests/dist"));
    dir.join(format!("{name}.wasm"))
}

fn runtime() -> Runtime {
    Runtime::new(None).expect("the runtime starts")
}

fn column() -> Column {
    Column { schema: "public".into(), table: "users".into(), name: "email".into(), data_type: "text".into() }
}

/// Plugin calls block on WASI's runtime; run them as a pipeline stage would, off the async threads.
fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(f).join().expect("the plugin thread")
}

#[test]
fn an_endless_loop_is_stopped_by_its_fuel_budget_and_the_instance_is_replaced() {
    blocking(|| {
        let rt = runtime();
        let mut p = rt.load(&guest("spin"), Limits { fuel: 20_000_000, ..Limits::default() }).unwrap();
        p.configure(Vec::new()).unwrap();
        let err = p.transform(&column(), &[Some("x".into())]).unwrap_err();
        assert!(matches!(err.kind, ErrorKind::Fuel(20_000_000)), "{err}");
        assert!(err.to_string().contains("CPU budget (fuel 20000000 per call)"), "{err}");
        assert!(!p.has_instance(), "a trapped instance is discarded");
        // The next call gets a fresh instance (and fails the same way, not with a poisoned one).
        let again = p.transform(&column(), &[Some("x".into())]).unwrap_err();
        assert!(matches!(again.kind, ErrorKind::Fuel(_)), "{again}");
    });
}

#[test]
fn unbounded_allocation_stops_at_the_memory_cap() {
    blocking(|| {
        let rt = runtime();
        let mut p = rt.load(&guest("hog"), Limits { memory: 16 << 20, ..Limits::default() }).unwrap();
        p.configure(Vec::new()).unwrap();
        let err = p.transform(&column(), &[Some("x".into())]).unwrap_err();
        assert!(matches!(err.kind, ErrorKind::Memory(m) if m == 16 << 20), "{err}");
        assert!(err.to_string().contains("16 MiB"), "{err}");
    });
}

#[test]
fn a_guest_gets_no_files_no_network_no_environment() {
    blocking(|| {
        let rt = runtime();
        let mut p = rt.load(&guest("snoop"), Limits::default()).unwrap();
        p.configure(Vec::new()).unwrap();
        let out = p.transform(&column(), &vec![None; 5]).unwrap();
        let lines: Vec<String> = out.into_iter().map(|v| v.unwrap()).collect();
        assert!(lines[0].starts_with("file: error"), "{lines:?}");
        assert!(lines[1].starts_with("dir: error"), "{lines:?}");
        assert!(lines[2].starts_with("socket: error"), "{lines:?}");
        assert_eq!(lines[3], "env: 0 variables");
        assert_eq!(lines[4], "args: 0");
    });
}

#[test]
fn mask_email_is_deterministic_per_key_and_keeps_the_domain() {
    blocking(|| {
        let rt = runtime();
        let mut p = rt.load(&guest("mask_email"), Limits::default()).unwrap();
        assert_eq!(p.world(), World::AnonymizerPlugin);
        let info = p.info().unwrap();
        assert_eq!((info.name.as_str(), info.deterministic), ("mask-email", true));
        let missing = p.configure(Vec::new()).unwrap_err();
        assert!(missing.to_string().contains("param `key` is required"), "{missing}");
        p.configure(vec![("key".into(), "k1".into())]).unwrap();
        let values = vec![Some("alice@example.com".to_string()), None, Some("alice@example.com".to_string())];
        let a = p.transform(&column(), &values).unwrap();
        assert_eq!(a[0], a[2], "same input, same output");
        assert_eq!(a[1], None, "NULL stays NULL");
        let masked = a[0].clone().unwrap();
        assert!(masked.ends_with("@example.com") && !masked.contains("alice"), "{masked}");
        // Another instance with the same key agrees; another key does not.
        let mut q = rt.load(&guest("mask_email"), Limits { batch: 1, ..Limits::default() }).unwrap();
        q.configure(vec![("key".into(), "k1".into())]).unwrap();
        assert_eq!(q.transform(&column(), &values).unwrap(), a, "batches of one give the same values");
        q.configure(vec![("key".into(), "k2".into())]).unwrap();
        assert_ne!(q.transform(&column(), &values).unwrap()[0], a[0]);
    });
}

#[test]
fn a_hook_is_not_an_anonymizer_and_bad_files_are_refused() {
    blocking(|| {
        let rt = runtime();
        let mut hook = rt.load(&guest("deny_drop"), Limits::default()).unwrap();
        assert_eq!(hook.world(), World::HookPlugin);
        let err = hook.transform(&column(), &[None]).unwrap_err();
        assert!(err.to_string().contains("is a hook, not an anonymizer"), "{err}");
        hook.configure(vec![("column".into(), "users.email".into())]).unwrap();
        let event = Event {
            kind: "before-migration".into(),
            pipeline: "p".into(),
            stage: "apply".into(),
            environment: "prod".into(),
            database: "prod".into(),
            migration: Some("002_drop_email".into()),
            sql: Some("ALTER TABLE public.users DROP COLUMN email;".into()),
            details: Vec::new(),
        };
        match hook.on_event(&event).unwrap() {
            Decision::Deny(why) => assert!(why.contains("002_drop_email drops column public.users.email"), "{why}"),
            other => panic!("{other:?}"),
        }

        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk.wasm");
        std::fs::write(&junk, b"not wasm at all").unwrap();
        let err = rt.load(&junk, Limits::default()).unwrap_err();
        assert!(matches!(err.kind, ErrorKind::NotAComponent(_)), "{err}");
        let core = dir.path().join("core.wasm");
        std::fs::write(&core, b"\0asm\x01\0\0\0").unwrap();
        let err = rt.load(&core, Limits::default()).unwrap_err();
        assert!(err.to_string().contains("core WebAssembly module, not a component"), "{err}");
    });
}

#[test]
fn compiled_components_are_cached_on_disk() {
    blocking(|| {
        let dir = tempfile::tempdir().unwrap();
        let rt = Runtime::new(Some(dir.path().to_path_buf())).unwrap();
        rt.load(&guest("regex_redact"), Limits::default()).unwrap();
        assert_eq!(artifacts(dir.path()).len(), 1, "one compiled component");
        let mut p = rt.load(&guest("regex_redact"), Limits::default()).unwrap();
        p.configure(vec![("pattern".into(), r"\d{3}-\d{4}".into())]).unwrap();
        assert_eq!(
            p.transform(&column(), &[Some("call 555-1234 now".into())]).unwrap(),
            [Some("call [redacted] now".to_string())]
        );
    });
}

/// A hand-written hook component (tests/wat/hook.wat.tpl) with `prelude` before its main module
/// and `on_event` at the start of its event handler, written to a temporary file.
fn wat_hook(dir: &tempfile::TempDir, name: &str, prelude: &str, on_event: &str) -> PathBuf {
    let text = include_str!("wat/hook.wat.tpl").replace("{{PRELUDE}}", prelude).replace("{{ON_EVENT}}", on_event);
    let bytes = wat::parse_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
    let path = dir.path().join(format!("{name}.wasm"));
    std::fs::write(&path, bytes).unwrap();
    path
}

fn event() -> Event {
    Event {
        kind: "before-migration".into(),
        pipeline: "p".into(),
        stage: "s".into(),
        environment: String::new(),
        database: "db".into(),
        migration: Some("1_a".into()),
        sql: Some("SELECT 1".into()),
        details: Vec::new(),
    }
}

#[test]
fn the_hand_written_hook_allows() {
    blocking(|| {
        let dir = tempfile::tempdir().unwrap();
        let rt = runtime();
        let mut p = rt.load(&wat_hook(&dir, "plain", "", ""), Limits::default()).unwrap();
        assert_eq!(p.world(), World::HookPlugin);
        p.configure(Vec::new()).unwrap();
        assert!(matches!(p.on_event(&event()).unwrap(), Decision::Allow));
    });
}

/// The compiled components in a cache directory.
fn artifacts(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .collect();
    v.sort();
    v
}

/// Core instances before the hook's own, each with a linear memory of `mib` MiB.
fn memories(count: usize, mib: usize) -> String {
    let mut s = format!("(core module $big (memory {}))\n", mib * 16);
    for _ in 0..count {
        s.push_str("(core instance (instantiate $big))\n");
    }
    s
}

#[test]
fn the_memory_cap_holds_for_the_whole_store_not_each_memory() {
    blocking(|| {
        let dir = tempfile::tempdir().unwrap();
        let rt = runtime();
        let limits = Limits { memory: 64 << 20, ..Limits::default() };
        // One 40 MiB memory fits the cap; three of them (120 MiB) do not, though each does.
        let one = rt.load(&wat_hook(&dir, "one", &memories(1, 40), ""), limits.clone()).unwrap();
        let mut one = one;
        one.configure(Vec::new()).unwrap();
        let mut three = rt.load(&wat_hook(&dir, "three", &memories(3, 40), ""), limits).unwrap();
        let err = three.configure(Vec::new()).unwrap_err();
        assert!(matches!(err.kind, ErrorKind::Memory(m) if m == 64 << 20), "{err}");
    });
}

#[test]
fn a_component_cannot_ask_for_unbounded_instances() {
    blocking(|| {
        let dir = tempfile::tempdir().unwrap();
        let rt = runtime();
        let mut s = String::from("(core module $tiny)\n");
        for _ in 0..100 {
            s.push_str("(core instance (instantiate $tiny))\n");
        }
        let mut p = rt.load(&wat_hook(&dir, "many", &s, ""), Limits::default()).unwrap();
        let err = p.configure(Vec::new()).unwrap_err();
        assert!(matches!(err.kind, ErrorKind::TooMany { what: "instances", .. }), "{err}");
    });
}

/// An event handler that fills 64 MiB again and again. (wasmtime 48 charges `memory.fill` fuel
/// by the byte, so the test also gives it fuel for hours: only the deadline can stop it.)
pub const FILL_FOREVER: &str = "(drop (memory.grow (i32.const 1024)))
      (loop $again
        (memory.fill (i32.const 0) (i32.const 0) (i32.const 67108864))
        (br $again))";

#[test]
fn a_bulk_memory_loop_is_stopped_by_the_wall_clock_deadline() {
    blocking(|| {
        let dir = tempfile::tempdir().unwrap();
        let rt = runtime();
        let limits = Limits {
            time: std::time::Duration::from_millis(300),
            memory: 128 << 20,
            fuel: 1_000_000_000_000_000,
            ..Limits::default()
        };
        let mut p = rt.load(&wat_hook(&dir, "fill", "", FILL_FOREVER), limits).unwrap();
        p.configure(Vec::new()).unwrap();
        let err = p.on_event(&event()).unwrap_err();
        assert!(matches!(err.kind, ErrorKind::Deadline(_)), "{err}");
        assert!(err.to_string().contains("time limit (300ms per call)"), "{err}");
        assert!(!p.has_instance(), "the interrupted instance is discarded");
    });
}

#[test]
fn the_compiled_cache_is_private_and_verified() {
    use std::os::unix::fs::PermissionsExt;
    blocking(|| {
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("wasm");
        let load = |dir: &std::path::Path| {
            let rt = Runtime::new(Some(dir.to_path_buf())).unwrap();
            let mut p = rt.load(&guest("regex_redact"), Limits::default()).unwrap();
            p.configure(vec![("pattern".into(), "x".into())]).unwrap();
            assert_eq!(p.transform(&column(), &[Some("axb".into())]).unwrap(), [Some("a[redacted]b".to_string())]);
        };
        load(&dir);
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700, "the cache directory is created private");
        let artifact = artifacts(&dir).pop().expect("a compiled component");
        assert_eq!(mode(&artifact), 0o600);
        let good = std::fs::read(&artifact).unwrap();

        // Poisoned: the artifact changed (and a plain digest of the new bytes written beside it).
        let mut bad = good.clone();
        let mid = bad.len() / 2;
        bad[mid] ^= 0xff;
        std::fs::write(&artifact, &bad).unwrap();
        let plain: String = {
            use sha2::Digest;
            sha2::Sha256::digest(&bad).iter().map(|b| format!("{b:02x}")).collect()
        };
        std::fs::write(artifact.with_extension("cwasm.mac"), plain).unwrap();
        load(&dir);
        assert_eq!(std::fs::read(&artifact).unwrap(), good, "refused and compiled again");

        // Writable by others: refused too.
        std::fs::set_permissions(&artifact, std::fs::Permissions::from_mode(0o666)).unwrap();
        load(&dir);
        assert_eq!(mode(&artifact), 0o600, "replaced by a private entry");

        // A symlink in place of the artifact (to a copy of the good bytes) is not followed.
        let elsewhere = base.path().join("elsewhere.cwasm");
        std::fs::write(&elsewhere, &good).unwrap();
        std::fs::remove_file(&artifact).unwrap();
        std::os::unix::fs::symlink(&elsewhere, &artifact).unwrap();
        load(&dir);
        assert!(!std::fs::symlink_metadata(&artifact).unwrap().file_type().is_symlink(), "replaced by a file");

        // A cache directory others can write is not used at all.
        let open = base.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        load(&open);
        assert!(artifacts(&open).is_empty(), "nothing cached in a directory others can write");
    });
}
