//! `mask-email`: replaces the local part of an e-mail address with a keyed hash and keeps the
//! domain, so `alice@example.com` becomes `u_3f1c9a0b2d7e@example.com` — the same for the same
//! key every time (joins and lookups still match), unreadable without the key. The hash is
//! SipHash-2-4 with a 128-bit key (a keyed PRF made for short inputs, and fast without the
//! CPU's SHA instructions, which WebAssembly does not have); 48 bits of it are kept.
//!
//! Params: `key` (required: the secret; a different key gives different output) — in an
//! anonymization profile the host passes a key it derives for this plugin and column (64 hex
//! digits; docs/plugins.md), so the plugin is deterministic without ever seeing the profile's
//! key; with `confiture plugin test`, give your own. `keep-domain` (`true` by default; `false`
//! masks the domain too, as `d_<hash>.invalid`). NULL stays NULL; a value without `@` is masked
//! whole.

use std::sync::Mutex;

use sha2::{Digest, Sha256};
use siphasher::sip128::{Hasher128, SipHasher24};

wit_bindgen::generate!({ path: "../../../wit/confiture-plugin/v0.1", world: "anonymizer-plugin" });

use confiture::plugin::types::Uniqueness;
use exports::confiture::plugin::anonymizer::{Column, Guest, PluginInfo};

struct Settings {
    /// The 128-bit SipHash key.
    key: [u8; 16],
    keep_domain: bool,
}

static SETTINGS: Mutex<Option<Settings>> = Mutex::new(None);

/// 12 hex digits (48 bits) of the keyed hash of `text`, appended to `out`.
fn hash(key: &[u8; 16], text: &str, out: &mut String) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut h = SipHasher24::new_with_key(key);
    std::hash::Hasher::write(&mut h, text.as_bytes());
    for b in h.finish128().as_bytes().iter().take(6) {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 15) as usize] as char);
    }
}

fn mask(s: &Settings, value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 16);
    out.push_str("u_");
    match value.rsplit_once('@') {
        Some((local, domain)) if s.keep_domain => {
            hash(&s.key, local, &mut out);
            out.push('@');
            out.push_str(domain);
        }
        Some((local, domain)) => {
            hash(&s.key, local, &mut out);
            out.push_str("@d_");
            hash(&s.key, domain, &mut out);
            out.push_str(".invalid");
        }
        None => hash(&s.key, value, &mut out),
    }
    out
}

/// 64 hex digits as 32 bytes (the host's derived key); anything else is taken as text.
fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..32).map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()).collect()
}

struct MaskEmail;

impl Guest for MaskEmail {
    fn info() -> PluginInfo {
        PluginInfo {
            name: "mask-email".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            deterministic: true,
            // 48 bits of a keyed hash: distinct addresses almost always stay distinct.
            uniqueness: Uniqueness::NotGuaranteed,
        }
    }

    fn configure(params: Vec<(String, String)>) -> Result<(), String> {
        let mut key = None;
        let mut keep_domain = true;
        for (k, v) in params {
            match k.as_str() {
                "key" if v.is_empty() => return Err("`key` is empty".into()),
                // The host's derived key is hex: key the HMAC with its 32 bytes.
                "key" => key = Some(decode_hex(&v).map_or_else(|| (v.into_bytes(), false), |k| (k, true))),
                "keep-domain" => {
                    keep_domain = v.parse().map_err(|_| format!("`keep-domain` is true or false, not `{v}`"))?
                }
                other => return Err(format!("unknown param `{other}` (known: key, keep-domain)")),
            }
        }
        let key = key.ok_or("param `key` is required: the secret the masking is keyed with")?;
        // The host's derived key is already uniform; a text key is stretched with SHA-256.
        let key: [u8; 16] = match key {
            (hex, true) => hex[..16].try_into().map_err(|_| "key")?,
            (text, false) => Sha256::digest(&text)[..16].try_into().map_err(|_| "key")?,
        };
        *SETTINGS.lock().map_err(|e| e.to_string())? = Some(Settings { key, keep_domain });
        Ok(())
    }

    fn transform(_column: Column, values: Vec<Option<String>>) -> Result<Vec<Option<String>>, String> {
        let guard = SETTINGS.lock().map_err(|e| e.to_string())?;
        let s = guard.as_ref().ok_or("not configured: `configure` was not called")?;
        Ok(values.into_iter().map(|v| v.map(|v| mask(s, &v))).collect())
    }
}

export!(MaskEmail);
