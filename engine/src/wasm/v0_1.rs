//! The bindings of WIT package `confiture:plugin@0.1.0` (`wit/confiture-plugin/v0.1`): one module
//! per world, and what the host provides to guests of this version (a log). A later version gets a
//! module of its own beside this one.

use super::State;

pub mod bindings {
    pub mod anonymizer {
        wasmtime::component::bindgen!({ path: "../wit/confiture-plugin/v0.1", world: "anonymizer-plugin" });
    }
    pub mod hook {
        wasmtime::component::bindgen!({ path: "../wit/confiture-plugin/v0.1", world: "hook-plugin" });
    }
}

use bindings::anonymizer::confiture::plugin::{host as anon_host, types as anon_types};
pub use bindings::anonymizer::{AnonymizerPlugin, AnonymizerPluginPre};
use bindings::hook::confiture::plugin::{host as hook_host, types as hook_types};
pub use bindings::hook::{HookPlugin, HookPluginPre};

pub use anon_types::{Column, PluginInfo, Uniqueness};
pub use hook_types::{Decision, Event};

fn log(label: &str, level: u8, message: &str) {
    match level {
        0 => tracing::trace!("plugin {label}: {message}"),
        1 => tracing::debug!("plugin {label}: {message}"),
        2 => tracing::info!("plugin {label}: {message}"),
        3 => tracing::warn!("plugin {label}: {message}"),
        _ => tracing::error!("plugin {label}: {message}"),
    }
}

impl anon_host::Host for State {
    fn log(&mut self, level: anon_types::Level, message: String) {
        log(&self.label, level as u8, &message);
    }
}
impl anon_types::Host for State {}

impl hook_host::Host for State {
    fn log(&mut self, level: hook_types::Level, message: String) {
        log(&self.label, level as u8, &message);
    }
}
impl hook_types::Host for State {}
