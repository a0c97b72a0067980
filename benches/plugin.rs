//! `cargo bench --bench plugin`: the anonymizer world's cost per value. The `mask-email` plugin
//! (plugins/guests; keyed SipHash-2-4 of the local part, domain kept) transforms batches of 1,024
//! short e-mail addresses through the host (`engine::wasm`: fuel metering, memory cap, the
//! canonical ABI copying every string in and out), against the same logic compiled natively.
//! Then the boundary alone: an `echo` plugin returning its batch unchanged, against cloning the
//! batch natively — the per-value overhead of the anonymizer world. `CONFITURE_BENCH_VALUES` (default 1,048,576),
//! `CONFITURE_GUESTS_DIR` (default plugins/guests/dist).

use std::path::PathBuf;
use std::time::Instant;

use confiture_engine::wasm::{Column, Limits, Runtime};
use sha2::{Digest, Sha256};
use siphasher::sip128::{Hasher128, SipHasher24};

fn native(key: &[u8; 16], value: &str) -> String {
    let hash = |text: &str| -> String {
        let mut h = SipHasher24::new_with_key(key);
        std::hash::Hasher::write(&mut h, text.as_bytes());
        h.finish128().as_bytes().iter().take(6).map(|b| format!("{b:02x}")).collect()
    };
    match value.rsplit_once('@') {
        Some((local, domain)) => format!("u_{}@{domain}", hash(local)),
        None => format!("u_{}", hash(value)),
    }
}

fn main() {
    let total: usize = std::env::var("CONFITURE_BENCH_VALUES").ok().and_then(|v| v.parse().ok()).unwrap_or(1 << 20);
    let dir = std::env::var_os("CONFITURE_GUESTS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("plugins/guests/dist"));
    let batch = 1024;
    let values: Vec<Option<String>> = (0..batch).map(|i| Some(format!("user{i}@example.com"))).collect();
    let column =
        Column { schema: "public".into(), table: "users".into(), name: "email".into(), data_type: "text".into() };
    let rounds = total / batch;

    let (wasm, native_s, (echo_s, clone_s)) = std::thread::spawn(move || {
        let rt = Runtime::new(None).expect("runtime");
        let mut p = rt.load(&dir.join("mask_email.wasm"), Limits { batch, ..Limits::default() }).expect("load");
        p.configure(vec![("key".into(), "bench-key".into())]).expect("configure");
        // Warm up (instantiation, first-call costs).
        let first = p.transform(&column, &values).expect("transform");
        let t0 = Instant::now();
        for _ in 0..rounds {
            std::hint::black_box(p.transform(&column, std::hint::black_box(&values)).expect("transform"));
        }
        let wasm = t0.elapsed().as_secs_f64();
        // The plugin's key from a text key: the first 16 bytes of its SHA-256.
        let keyed: [u8; 16] = Sha256::digest(b"bench-key")[..16].try_into().expect("16 bytes");
        let t1 = Instant::now();
        for _ in 0..rounds {
            let out: Vec<Option<String>> =
                std::hint::black_box(&values).iter().map(|v| v.as_deref().map(|v| native(&keyed, v))).collect();
            std::hint::black_box(out);
        }
        let native_s = t1.elapsed().as_secs_f64();
        let check: Vec<Option<String>> = values.iter().map(|v| v.as_deref().map(|v| native(&keyed, v))).collect();
        assert_eq!(first, check, "the plugin and the native code agree");
        // The same batches through a plugin that returns them unchanged, against cloning them
        // natively: the cost of the boundary itself.
        let mut echo = rt.load(&dir.join("echo.wasm"), Limits { batch, ..Limits::default() }).expect("load echo");
        echo.configure(Vec::new()).expect("configure");
        assert_eq!(echo.transform(&column, &values).expect("echo"), values);
        let t2 = Instant::now();
        for _ in 0..rounds {
            std::hint::black_box(echo.transform(&column, std::hint::black_box(&values)).expect("transform"));
        }
        let echo_s = t2.elapsed().as_secs_f64();
        let t3 = Instant::now();
        for _ in 0..rounds {
            std::hint::black_box(std::hint::black_box(&values).clone());
        }
        let clone_s = t3.elapsed().as_secs_f64();
        (wasm, native_s, (echo_s, clone_s))
    })
    .join()
    .expect("bench thread");
    let n = (rounds * batch) as f64;
    let (w, nat) = (wasm / n * 1e9, native_s / n * 1e9);
    println!("anonymizer world, mask-email, {} values in batches of {batch}:", rounds * batch);
    println!("  through the plugin host: {w:.0} ns/value");
    println!("  native Rust, same logic: {nat:.0} ns/value");
    println!("  difference:              {:.0} ns/value (the HMAC runs as WebAssembly, metered)", w - nat);
    let (e, c) = (echo_s / n * 1e9, clone_s / n * 1e9);
    println!("boundary only (`echo` plugin vs cloning the batch natively):");
    println!("  through the plugin host: {e:.0} ns/value");
    println!("  native clone:            {c:.0} ns/value");
    println!("  overhead:                {:.0} ns/value (target <= 150)", e - c);
}
