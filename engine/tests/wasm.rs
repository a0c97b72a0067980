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
        let cached: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(cached.len(), 1, "one compiled component");
        let mut p = rt.load(&guest("regex_redact"), Limits::default()).unwrap();
        p.configure(vec![("pattern".into(), r"\d{3}-\d{4}".into())]).unwrap();
        assert_eq!(
            p.transform(&column(), &[Some("call 555-1234 now".into())]).unwrap(),
            [Some("call [redacted] now".to_string())]
        );
    });
}
