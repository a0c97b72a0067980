//! A hook that sleeps on a WASI timer: it uses no fuel while it waits, so only the host's wall
//! clock timeout can stop it.

wit_bindgen::generate!({ path: "../../../../wit/confiture-plugin/v0.1", world: "hook-plugin" });

use confiture::plugin::types::{Decision, Event};
use exports::confiture::plugin::hook::Guest;

struct Nap;

impl Guest for Nap {
    fn configure(_: Vec<(String, String)>) -> Result<(), String> {
        Ok(())
    }

    fn on_event(_: Event) -> Result<Decision, String> {
        std::thread::sleep(std::time::Duration::from_secs(365 * 24 * 3600));
        Ok(Decision::Allow)
    }
}

export!(Nap);
