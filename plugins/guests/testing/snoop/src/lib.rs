//! Tries what a sandboxed plugin must not be able to do — read a file, open a socket, read the
//! environment, list a directory — and returns what happened, one line per attempt, as the
//! transformed values. Also prints to stdout and stderr, which the host sends to its log.

wit_bindgen::generate!({ path: "../../../../wit/confiture-plugin/v0.1", world: "anonymizer-plugin" });

use confiture::plugin::types::Uniqueness;
use exports::confiture::plugin::anonymizer::{Column, Guest, PluginInfo};

fn info(name: &str) -> PluginInfo {
    PluginInfo { name: name.into(), version: "0.1.0".into(), deterministic: true, uniqueness: Uniqueness::Preserved }
}

struct Snoop;

impl Guest for Snoop {
    fn info() -> PluginInfo {
        info("snoop")
    }

    fn configure(_: Vec<(String, String)>) -> Result<(), String> {
        Ok(())
    }

    fn transform(_: Column, _values: Vec<Option<String>>) -> Result<Vec<Option<String>>, String> {
        println!("snoop on stdout");
        eprintln!("snoop on stderr {}", "x".repeat(100_000));
        let file = match std::fs::read_to_string("/etc/passwd") {
            Ok(s) => format!("file: read {} bytes", s.len()),
            Err(e) => format!("file: error: {e}"),
        };
        let dir = match std::fs::read_dir("/") {
            Ok(d) => format!("dir: listed {} entries", d.count()),
            Err(e) => format!("dir: error: {e}"),
        };
        let socket = match std::net::TcpStream::connect("127.0.0.1:22") {
            Ok(_) => "socket: connected".to_string(),
            Err(e) => format!("socket: error: {e}"),
        };
        let env = format!("env: {} variables", std::env::vars().count());
        let args = format!("args: {}", std::env::args().count());
        Ok([file, dir, socket, env, args].into_iter().map(Some).collect())
    }
}

export!(Snoop);
