//! Loops forever in `transform`: the host must stop it within its CPU budget.

wit_bindgen::generate!({ path: "../../../../wit/confiture-plugin/v0.1", world: "anonymizer-plugin" });

use confiture::plugin::types::Uniqueness;
use exports::confiture::plugin::anonymizer::{Column, Guest, PluginInfo};

fn info(name: &str) -> PluginInfo {
    PluginInfo { name: name.into(), version: "0.1.0".into(), deterministic: true, uniqueness: Uniqueness::Preserved }
}

struct Spin;

impl Guest for Spin {
    fn info() -> PluginInfo {
        info("spin")
    }

    fn configure(_: Vec<(String, String)>) -> Result<(), String> {
        Ok(())
    }

    fn transform(_: Column, values: Vec<Option<String>>) -> Result<Vec<Option<String>>, String> {
        let mut n: u64 = 0;
        loop {
            n = std::hint::black_box(n.wrapping_add(values.len() as u64));
        }
    }
}

export!(Spin);
