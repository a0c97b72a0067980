//! `mask-email`: replaces the local part of an e-mail address with a keyed hash and keeps the
//! domain, so `alice@example.com` becomes `u_3f1c9a0b2d7e@example.com` — the same for the same
//! key every time (joins and lookups still match), unreadable without the key.
//!
//! Params: `key` (required: the secret; a different key gives different output),
//! `keep-domain` (`true` by default; `false` masks the domain too, as `d_<hash>.invalid`).
//! NULL stays NULL; a value without `@` is masked whole.

use std::sync::Mutex;

use hmac::{Hmac, Mac};
use sha2::Sha256;

wit_bindgen::generate!({ path: "../../../wit/confiture-plugin/v0.1", world: "anonymizer-plugin" });

use confiture::plugin::types::Uniqueness;
use exports::confiture::plugin::anonymizer::{Column, Guest, PluginInfo};

struct Settings {
    /// HMAC keyed once; each value hashes with a copy.
    mac: Hmac<Sha256>,
    keep_domain: bool,
}

static SETTINGS: Mutex<Option<Settings>> = Mutex::new(None);

fn hash(keyed: &Hmac<Sha256>, text: &str) -> String {
    let mut mac = keyed.clone();
    mac.update(text.as_bytes());
    mac.finalize().into_bytes().iter().take(6).map(|b| format!("{b:02x}")).collect()
}

fn mask(s: &Settings, value: &str) -> String {
    match value.rsplit_once('@') {
        Some((local, domain)) if s.keep_domain => format!("u_{}@{domain}", hash(&s.mac, local)),
        Some((local, domain)) => format!("u_{}@d_{}.invalid", hash(&s.mac, local), hash(&s.mac, domain)),
        None => format!("u_{}", hash(&s.mac, value)),
    }
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
                "key" => key = Some(v.into_bytes()),
                "keep-domain" => {
                    keep_domain = v.parse().map_err(|_| format!("`keep-domain` is true or false, not `{v}`"))?
                }
                other => return Err(format!("unknown param `{other}` (known: key, keep-domain)")),
            }
        }
        let key = key.ok_or("param `key` is required: the secret the masking is keyed with")?;
        let mac = Hmac::<Sha256>::new_from_slice(&key).map_err(|e| e.to_string())?;
        *SETTINGS.lock().map_err(|e| e.to_string())? = Some(Settings { mac, keep_domain });
        Ok(())
    }

    fn transform(_column: Column, values: Vec<Option<String>>) -> Result<Vec<Option<String>>, String> {
        let guard = SETTINGS.lock().map_err(|e| e.to_string())?;
        let s = guard.as_ref().ok_or("not configured: `configure` was not called")?;
        Ok(values.into_iter().map(|v| v.map(|v| mask(s, &v))).collect())
    }
}

export!(MaskEmail);
