//! wasm

use std::sync::{Mutex, OnceLock};

use super::prelude::*;
use confiture_engine::wasm::{Column, Limits, Plugin, Runtime, World};

declare_strategy! {
    /// Runs your own anonymizer: a WebAssembly component of the `anonymizer-plugin` world
    /// (docs/plugins.md), in the sandbox hooks run in (no files, network, clock or environment;
    /// fuel, a deadline and a memory cap per call). Values cross in batches of up to 1,024.
    ///
    /// The plugin never sees the profile's key: the host derives a key for the plugin and the
    /// column's scope and passes it to `configure` as the parameter `key` (64 hex digits), with
    /// the `param` settings of the rule; a plugin that is deterministic with it gives the same
    /// output on every run, and joins still match. A `param "key"` of your own is refused. The
    /// plugin's declared uniqueness is checked like a built-in's: on a unique column it must say
    /// `preserved`.
    ///
    /// ```kdl
    /// column "email" "wasm" plugin="plugins/mask_email.wasm" { param "keep-domain" "true" }
    /// ```
    pub struct Wasm {
        name: "wasm",
        summary: "your own anonymizer, a sandboxed WebAssembly component",
        accepts: &[TypeClass::Text, TypeClass::Integer, TypeClass::Numeric, TypeClass::Date, TypeClass::Timestamp, TypeClass::Uuid, TypeClass::Inet, TypeClass::Json, TypeClass::Other],
        deterministic: true,
        uniqueness: NotGuaranteed,
        params: [
            ("plugin", Text, None, "the component's path, relative to the project root"),
            ("fuel", Int, Some("2000000000"), "CPU budget per batch (about one unit per instruction)"),
            ("memory", Text, Some("64MiB"), "memory cap"),
        ],
    }
}

/// The process's plugin runtime (one wasmtime engine; compiled components cached on disk).
fn runtime() -> Result<&'static Runtime, String> {
    static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| Runtime::new(Runtime::default_cache_dir()).map_err(|e| e.to_string()))
        .as_ref()
        .map_err(Clone::clone)
}

struct Component {
    plugin: Mutex<Plugin>,
    column: Column,
    uniqueness: Uniqueness,
}

impl Masker for Component {
    fn mask(&self, input: &str, _: &dyn Row, out: &mut String) -> Result<Out, String> {
        match self.batch(&[Some(input)]).expect("batches are supported")?.pop().flatten() {
            Some(v) => {
                out.push_str(&v);
                Ok(Out::Value)
            }
            None => Ok(Out::Null),
        }
    }

    fn uniqueness(&self) -> Option<Uniqueness> {
        Some(self.uniqueness)
    }

    fn batch(&self, inputs: &[Option<&str>]) -> Option<Result<Vec<Option<String>>, String>> {
        let values: Vec<Option<String>> = inputs.iter().map(|v| v.map(str::to_string)).collect();
        let mut plugin = match self.plugin.lock() {
            Ok(p) => p,
            Err(e) => e.into_inner(),
        };
        Some(plugin.transform(&self.column, &values).map_err(|e| e.to_string()))
    }
}

impl Strategy for Wasm {
    fn build(&self, params: &Params, cx: &BuildCx<'_>) -> Result<Box<dyn Masker>, String> {
        if params.plugin.iter().any(|(k, _)| k == "key") {
            return Err("`param \"key\"` is refused: the host gives the plugin a key derived from the profile's".into());
        }
        let path = cx.root.join(params.text("plugin"));
        let memory = confiture_engine::wasm::parse_size(params.text("memory"))?;
        let limits = Limits { fuel: params.int("fuel").max(1) as u64, memory, ..Limits::default() };
        let mut plugin = runtime()?.load(&path, limits).map_err(|e| e.to_string())?;
        plugin.expect(World::AnonymizerPlugin).map_err(|e| e.to_string())?;
        let info = plugin.info().map_err(|e| e.to_string())?;
        if !info.deterministic && cx.keys.deterministic() {
            tracing::warn!("plugin {} says it is not deterministic: masked values will differ between runs", info.name);
        }
        let key = crate::anonymize::key::hex(&cx.keys.subkey(&format!("wasm/{}/{}", info.name, cx.scope)));
        let mut settings = vec![("key".to_string(), key)];
        settings.extend(params.plugin.iter().cloned());
        plugin.configure(settings).map_err(|e| e.to_string())?;
        let uniqueness = match info.uniqueness {
            confiture_engine::wasm::Uniqueness::Preserved => Uniqueness::Preserved,
            confiture_engine::wasm::Uniqueness::NotGuaranteed => Uniqueness::NotGuaranteed,
            confiture_engine::wasm::Uniqueness::Lossy => Uniqueness::Lossy,
        };
        Ok(Box::new(Component {
            plugin: Mutex::new(plugin),
            column: Column {
                schema: String::new(),
                table: String::new(),
                name: String::new(),
                data_type: cx.column.display.clone(),
            },
            uniqueness,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_plugin_or_an_own_key_is_refused() {
        let err = masker_with(&Wasm, &[("plugin", "no/such.wasm")], ColumnType::text()).err().unwrap();
        assert!(err.contains("no/such.wasm"), "{err}");
    }
}
