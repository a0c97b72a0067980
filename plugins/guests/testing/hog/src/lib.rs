//! Allocates without bound in `transform`: the host must stop it at its memory cap.

wit_bindgen::generate!({ path: "../../../../wit/confiture-plugin/v0.1", world: "anonymizer-plugin" });

use confiture::plugin::types::Uniqueness;
use exports::confiture::plugin::anonymizer::{Column, Guest, PluginInfo};

fn info(name: &str) -> PluginInfo {
    PluginInfo { name: name.into(), version: "0.1.0".into(), deterministic: true, uniqueness: Uniqueness::Preserved }
}

struct Hog;

impl Guest for Hog {
    fn info() -> PluginInfo {
        info("hog")
    }

    fn configure(_: Vec<(String, String)>) -> Result<(), String> {
        Ok(())
    }

    fn transform(_: Column, values: Vec<Option<String>>) -> Result<Vec<Option<String>>, String> {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            hoard.push(vec![1u8; 1 << 20]);
            std::hint::black_box(&hoard);
            if hoard.len() == usize::MAX {
                return Ok(values);
            }
        }
    }
}

export!(Hog);
