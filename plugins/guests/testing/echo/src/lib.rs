//! Returns its values unchanged: what is left of a call is the host's cost — the call, fuel
//! metering, and copying every string into the guest and back (benches/plugin.rs).

wit_bindgen::generate!({ path: "../../../../wit/confiture-plugin/v0.1", world: "anonymizer-plugin" });

use confiture::plugin::types::Uniqueness;
use exports::confiture::plugin::anonymizer::{Column, Guest, PluginInfo};

struct Echo;

impl Guest for Echo {
    fn info() -> PluginInfo {
        PluginInfo {
            name: "echo".into(),
            version: "0.1.0".into(),
            deterministic: true,
            uniqueness: Uniqueness::Preserved,
        }
    }

    fn configure(_: Vec<(String, String)>) -> Result<(), String> {
        Ok(())
    }

    fn transform(_: Column, values: Vec<Option<String>>) -> Result<Vec<Option<String>>, String> {
        Ok(values)
    }
}

export!(Echo);
