//! The WebAssembly plugin host: anonymizers and hooks as sandboxed components
//! (WIT package `confiture:plugin@0.1.0`, `wit/confiture-plugin/v0.1/`; docs/plugins.md).
//!
//! One [`Runtime`] per process holds the wasmtime `Engine` and a linker per world. Compiled
//! components are cached on disk, keyed by the file's SHA-256 and the engine's compatibility hash,
//! so a plugin is compiled once per wasmtime version and configuration. Each [`Plugin`] keeps its
//! `InstancePre`; an instance is created on first use, reused across calls, and discarded after
//! any trap (the next call starts a fresh one and configures it again).
//!
//! The sandbox: WASI is linked only because std guests import it, with an empty context — no
//! files, directories, environment, arguments or network; clocks read zero and randomness is a
//! fixed sequence, so a plugin cannot tell time or differ between runs. Guest stdout and stderr
//! go to the log, capped. Every call gets a fuel budget (CPU) and a wall-clock deadline (epoch
//! interruption: fuel alone does not bound bulk memory instructions, a `memory.fill` of 64 MiB
//! costs about one unit); the store — every linear memory and table of every core instance
//! together — gets one memory cap, and bounded numbers of instances, memories and tables; the
//! plugin's batch size bounds each call's input. Breaking a limit is an error naming the plugin,
//! the limit and its value.
//!
//! Calls are synchronous and must not run on a tokio worker thread (WASI's sync mode blocks on
//! the runtime): call them from `spawn_blocking` or a thread of your own. The deadline stops a
//! guest that computes; one blocked in a host call (waiting on a WASI timer, which the stopped
//! clock does not prevent) uses no CPU, and callers bound their wait for it (hooks: `timeout`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

mod cache;
mod sandbox;
mod v0_1;

pub use sandbox::TICK;
use sandbox::{Limiter, LogPipe, MAX_INSTANCES, MAX_MEMORIES, MAX_TABLES, MemoryCap, Stopped};
use v0_1::{AnonymizerPlugin, AnonymizerPluginPre, HookPlugin, HookPluginPre};
pub use v0_1::{Column, Decision, Event, PluginInfo, Uniqueness};

/// Per-plugin limits. Defaults are safe for anonymizing a column in batches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Fuel per call (~ one unit per WebAssembly instruction).
    pub fuel: u64,
    /// Linear memory, bytes.
    pub memory: usize,
    /// Values per `transform` call.
    pub batch: usize,
    /// Bytes of the guest's stdout and stderr kept for the log, per call.
    pub output: usize,
    /// Wall-clock time per call (checked every [`TICK`]).
    pub time: std::time::Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            fuel: 2_000_000_000,
            memory: 64 << 20,
            batch: 1024,
            output: 4096,
            time: std::time::Duration::from_secs(30),
        }
    }
}

/// A size such as `64MiB`, `512KiB`, `1GiB` or a number of bytes.
pub fn parse_size(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let n: usize = n.parse().map_err(|_| format!("`{s}` is not a size (e.g. 64MiB)"))?;
    let factor = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return Err(format!("`{s}`: the unit is B, KiB, MiB or GiB")),
    };
    n.checked_mul(factor).ok_or_else(|| format!("`{s}` is too large"))
}

/// Which world a component implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum World {
    AnonymizerPlugin,
    HookPlugin,
}

impl World {
    pub fn as_str(self) -> &'static str {
        match self {
            World::AnonymizerPlugin => "anonymizer-plugin",
            World::HookPlugin => "hook-plugin",
        }
    }
}

/// A plugin that failed, named: `plugin mask-email 0.1.0 (plugins/mask_email.wasm): …`.
#[derive(Debug, thiserror::Error)]
#[error("plugin {plugin}: {kind}")]
pub struct PluginError {
    pub plugin: String,
    pub kind: ErrorKind,
}

#[derive(Debug, thiserror::Error)]
pub enum ErrorKind {
    #[error("cannot read it: {0}")]
    Read(String),
    #[error("not a WebAssembly component: {0} (build it with `cargo build --target wasm32-wasip2`)")]
    NotAComponent(String),
    #[error(
        "implements neither world of confiture:plugin@0.1.0 (it exports {exports}); an anonymizer exports \
         `confiture:plugin/anonymizer`, a hook `confiture:plugin/hook`"
    )]
    UnknownWorld { exports: String },
    #[error("is {found}, not {wanted}")]
    WrongWorld { found: &'static str, wanted: &'static str },
    #[error("cannot be linked: {0}")]
    Link(String),
    #[error("ran out of its CPU budget (fuel {0} per call); raise `fuel` if the work is legitimate")]
    Fuel(u64),
    #[error("tried to grow its memory past the cap ({} MiB); raise `memory` if the work is legitimate", .0 >> 20)]
    Memory(usize),
    #[error("ran past its time limit ({} per call); raise `timeout` if the work is legitimate", humantime::format_duration(*.0))]
    Deadline(std::time::Duration),
    #[error("asked for more {what} than a plugin may have ({max})")]
    TooMany { what: &'static str, max: usize },
    #[error("returned {got} values for a batch of {sent}")]
    BatchMismatch { sent: usize, got: usize },
    #[error("trapped: {0}")]
    Trap(String),
    #[error("{0}")]
    Guest(String),
}

/// The store's data: the (empty) WASI context, the limiter, the captured output.
struct State {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: Limiter,
    stdout: LogPipe,
    stderr: LogPipe,
    label: Arc<str>,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// The engine and the linkers; one per process is enough.
pub struct Runtime {
    engine: Engine,
    anonymizer: Linker<State>,
    hook: Linker<State>,
    cache: Option<cache::Cache>,
    /// Tells the epoch thread to stop when the runtime goes.
    ticking: Arc<std::sync::atomic::AtomicBool>,
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.ticking.store(false, Ordering::Relaxed);
    }
}

impl Runtime {
    /// A runtime caching compiled components under `cache` (none: compile every time).
    pub fn new(cache: Option<PathBuf>) -> Result<Runtime, PluginError> {
        let err = |e: wasmtime::Error| PluginError { plugin: "host".into(), kind: ErrorKind::Link(format!("{e:#}")) };
        let mut config = wasmtime::Config::new();
        config.wasm_component_model(true).consume_fuel(true).epoch_interruption(true).concurrency_support(false);
        let engine = Engine::new(&config).map_err(err)?;
        // Call deadlines count epochs: one thread advances them every TICK while the runtime lives.
        let ticking = Arc::new(std::sync::atomic::AtomicBool::new(true));
        {
            let (engine, ticking) = (engine.clone(), ticking.clone());
            std::thread::Builder::new()
                .name("confiture-wasm-epoch".into())
                .spawn(move || {
                    while ticking.load(Ordering::Relaxed) {
                        std::thread::sleep(TICK);
                        engine.increment_epoch();
                    }
                })
                .map_err(|e| PluginError { plugin: "host".into(), kind: ErrorKind::Link(e.to_string()) })?;
        }
        let mut anonymizer = Linker::<State>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut anonymizer).map_err(err)?;
        AnonymizerPlugin::add_to_linker::<State, HasSelf<State>>(&mut anonymizer, |s| s).map_err(err)?;
        let mut hook = Linker::<State>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut hook).map_err(err)?;
        HookPlugin::add_to_linker::<State, HasSelf<State>>(&mut hook, |s| s).map_err(err)?;
        let cache = cache.and_then(|dir| match cache::Cache::open(dir) {
            Ok(c) => Some(c),
            Err(why) => {
                tracing::warn!("not caching compiled plugins: {why}");
                None
            }
        });
        Ok(Runtime { engine, anonymizer, hook, cache, ticking })
    }

    /// The default cache directory: `$XDG_CACHE_HOME/confiture/wasm`, else `~/.cache/confiture/wasm`.
    pub fn default_cache_dir() -> Option<PathBuf> {
        std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .map(|d| d.join("confiture").join("wasm"))
    }

    /// Compile (or load the cached compilation of) the component at `path`.
    fn component(&self, path: &Path, label: &str) -> Result<Component, PluginError> {
        let fail = |kind| PluginError { plugin: label.to_string(), kind };
        let bytes = std::fs::read(path).map_err(|e| fail(ErrorKind::Read(e.to_string())))?;
        if bytes.get(..4) != Some(b"\0asm") {
            return Err(fail(ErrorKind::NotAComponent(
                "the file does not start with WebAssembly's magic bytes".into(),
            )));
        }
        if is_core_module(&bytes) {
            return Err(fail(ErrorKind::NotAComponent("it is a core WebAssembly module, not a component".into())));
        }
        let name = {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            self.engine.precompile_compatibility_hash().hash(&mut h);
            let file: String = Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
            format!("{file}-{:016x}.cwasm", h.finish())
        };
        if let Some(data) = self.cache.as_ref().and_then(|c| c.load(&name)) {
            // SAFETY: `Cache::load` returns only bytes this user's confiture wrote with
            // `Component::serialize`, verified against the keyed digest recorded with them (the
            // key lives outside the cache); wasmtime checks the engine configuration again.
            if let Ok(component) = unsafe { Component::deserialize(&self.engine, &data) } {
                return Ok(component);
            }
        }
        let component = Component::new(&self.engine, &bytes)
            .map_err(|e| fail(ErrorKind::NotAComponent(first_line(&format!("{e:#}")))))?;
        if let (Some(cache), Ok(data)) = (&self.cache, component.serialize()) {
            cache.store(&name, &data, label);
        }
        Ok(component)
    }

    /// Load a plugin: compile it (or read the cache), find its world, prepare instantiation.
    pub fn load(&self, path: &Path, limits: Limits) -> Result<Plugin, PluginError> {
        let label = path.display().to_string();
        let fail = |kind| PluginError { plugin: label.clone(), kind };
        let component = self.component(path, &label)?;
        let world = self.world_of(&component).map_err(fail)?;
        let link = |e: wasmtime::Error| ErrorKind::Link(first_line(&format!("{e:#}")));
        let pre = match world {
            World::AnonymizerPlugin => Pre::Anonymizer(
                AnonymizerPluginPre::new(self.anonymizer.instantiate_pre(&component).map_err(|e| fail(link(e)))?)
                    .map_err(|e| fail(link(e)))?,
            ),
            World::HookPlugin => Pre::Hook(
                HookPluginPre::new(self.hook.instantiate_pre(&component).map_err(|e| fail(link(e)))?)
                    .map_err(|e| fail(link(e)))?,
            ),
        };
        let mut plugin = Plugin {
            label: Arc::from(label.as_str()),
            world,
            pre,
            limits,
            params: Vec::new(),
            configured: false,
            live: None,
            imports: component.component_type().imports(&self.engine).map(|(name, _)| name.to_string()).collect(),
            engine: self.engine.clone(),
            until: None,
        };
        // An anonymizer names itself: errors and log lines say `mask-email 0.1.0`.
        if world == World::AnonymizerPlugin
            && let Ok(info) = plugin.info()
        {
            plugin.set_label(format!("{} {}", info.name, info.version));
        }
        Ok(plugin)
    }

    fn world_of(&self, component: &Component) -> Result<World, ErrorKind> {
        let exports: Vec<String> =
            component.component_type().exports(&self.engine).map(|(name, _)| name.to_string()).collect();
        let has = |iface: &str| exports.iter().any(|e| e.split('@').next() == Some(iface));
        match (has("confiture:plugin/anonymizer"), has("confiture:plugin/hook")) {
            (true, false) => Ok(World::AnonymizerPlugin),
            (false, true) => Ok(World::HookPlugin),
            _ => Err(ErrorKind::UnknownWorld {
                exports: if exports.is_empty() { "nothing".into() } else { exports.join(", ") },
            }),
        }
    }
}

/// A core module starts with the same magic as a component but a different layer/version.
fn is_core_module(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && &bytes[..4] == b"\0asm" && bytes[4..8] == [1, 0, 0, 0]
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or(s).to_string()
}

enum Pre {
    Anonymizer(AnonymizerPluginPre<State>),
    Hook(HookPluginPre<State>),
}

enum Bindings {
    Anonymizer(AnonymizerPlugin),
    Hook(HookPlugin),
}

struct Live {
    store: Store<State>,
    bindings: Bindings,
}

/// A loaded plugin.
pub struct Plugin {
    label: Arc<str>,
    world: World,
    pre: Pre,
    limits: Limits,
    params: Vec<(String, String)>,
    /// `configure` was called: every new instance is configured with `params` before use.
    configured: bool,
    live: Option<Live>,
    imports: Vec<String>,
    engine: Engine,
    /// A deadline for all calls until it is cleared (a hook's whole event), on top of each call's.
    until: Option<std::time::Instant>,
}

impl Plugin {
    pub fn world(&self) -> World {
        self.world
    }

    /// Refuse a plugin of the other world, by name.
    pub fn expect(&self, world: World) -> Result<(), PluginError> {
        let what = |w: World| match w {
            World::AnonymizerPlugin => "an anonymizer",
            World::HookPlugin => "a hook",
        };
        if self.world == world {
            Ok(())
        } else {
            Err(self.fail(ErrorKind::WrongWorld { found: what(self.world), wanted: what(world) }))
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The interfaces it imports (`confiture:plugin/host@0.1.0`, `wasi:…`).
    pub fn imports(&self) -> &[String] {
        &self.imports
    }

    /// Name errors and log lines after the plugin's own name and version from now on.
    pub fn set_label(&mut self, label: impl Into<String>) {
        let label: String = label.into();
        self.label = Arc::from(label.as_str());
        if let Some(live) = &mut self.live {
            live.store.data_mut().label = self.label.clone();
        }
    }

    pub fn label(&self) -> &str {
        &self.label
    }

    fn fail(&self, kind: ErrorKind) -> PluginError {
        PluginError { plugin: self.label.to_string(), kind }
    }

    fn instantiate(&self) -> Result<Live, PluginError> {
        let stdout = LogPipe::new(self.limits.output);
        let stderr = LogPipe::new(self.limits.output);
        let wasi = WasiCtxBuilder::new()
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .wall_clock(Stopped)
            .monotonic_clock(Stopped)
            .secure_random(wasmtime_wasi::Deterministic::new(vec![0x5a]))
            .insecure_random(wasmtime_wasi::Deterministic::new(vec![0xa5]))
            .insecure_random_seed(0)
            .build();
        let state = State {
            wasi,
            table: ResourceTable::new(),
            limiter: Limiter::new(self.limits.memory),
            stdout,
            stderr,
            label: self.label.clone(),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        store.epoch_deadline_trap();
        self.arm(&mut store)?;
        let bindings = match &self.pre {
            Pre::Anonymizer(p) => p.instantiate(&mut store).map(Bindings::Anonymizer),
            Pre::Hook(p) => p.instantiate(&mut store).map(Bindings::Hook),
        };
        let mut live = Live { store, bindings: bindings.map_err(|e| self.classify(e, None))? };
        if self.configured {
            self.call_configure(&mut live)?;
        }
        Ok(live)
    }

    /// Bound every call from now on by `until` as well (`None`: only by `limits.time` each).
    /// A hook sets it for an event, so instantiating, configuring and answering share its time.
    pub fn set_deadline(&mut self, until: Option<std::time::Instant>) {
        self.until = until;
    }

    /// A fresh budget for the next call: fuel, and a deadline `limits.time` from now (or the
    /// plugin's overall deadline, if sooner).
    fn arm(&self, store: &mut Store<State>) -> Result<(), PluginError> {
        store.set_fuel(self.limits.fuel).map_err(|e| self.fail(ErrorKind::Link(e.to_string())))?;
        let left = match self.until {
            Some(until) => self.limits.time.min(until.saturating_duration_since(std::time::Instant::now())),
            None => self.limits.time,
        };
        let ticks = (left.as_nanos() / TICK.as_nanos()).max(1);
        store.set_epoch_deadline(u64::try_from(ticks).unwrap_or(u64::MAX));
        Ok(())
    }

    fn call_configure(&self, live: &mut Live) -> Result<(), PluginError> {
        self.arm(&mut live.store)?;
        let result = match &live.bindings {
            Bindings::Anonymizer(b) => b.confiture_plugin_anonymizer().call_configure(&mut live.store, &self.params),
            Bindings::Hook(b) => b.confiture_plugin_hook().call_configure(&mut live.store, &self.params),
        };
        self.drain(live);
        match result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err(self.fail(ErrorKind::Guest(format!("refused its params: {message}")))),
            Err(e) => Err(self.classify(e, Some(live))),
        }
    }

    fn drain(&self, live: &Live) {
        let s = live.store.data();
        s.stdout.drain(&self.label, "stdout");
        s.stderr.drain(&self.label, "stderr");
    }

    /// A wasmtime error as a limit that was hit or a trap.
    fn classify(&self, e: wasmtime::Error, live: Option<&Live>) -> PluginError {
        if live.is_some_and(|l| l.store.data().limiter.hit) || e.is::<MemoryCap>() {
            return self.fail(ErrorKind::Memory(self.limits.memory));
        }
        let text = format!("{e:#}");
        for (what, desc, max) in [
            ("instances", "instance", MAX_INSTANCES),
            ("memories", "memory", MAX_MEMORIES),
            ("tables", "table", MAX_TABLES),
        ] {
            if text.contains(&format!("resource limit exceeded: {desc} count too high")) {
                return self.fail(ErrorKind::TooMany { what, max });
            }
        }
        match e.downcast_ref::<wasmtime::Trap>() {
            Some(wasmtime::Trap::OutOfFuel) => self.fail(ErrorKind::Fuel(self.limits.fuel)),
            Some(wasmtime::Trap::Interrupt) => self.fail(ErrorKind::Deadline(self.limits.time)),
            Some(t) => self.fail(ErrorKind::Trap(t.to_string())),
            None => self.fail(ErrorKind::Trap(first_line(&format!("{e:#}")))),
        }
    }

    /// The live instance, created (and configured) if there is none.
    fn live(&mut self) -> Result<Live, PluginError> {
        match self.live.take() {
            Some(l) => Ok(l),
            None => self.instantiate(),
        }
    }

    /// Keep the instance for the next call — unless the call trapped, which leaves it unusable.
    fn settle<T>(&mut self, mut live: Live, result: Result<T, wasmtime::Error>) -> Result<T, PluginError> {
        self.drain(&live);
        match result {
            Ok(v) => {
                live.store.data_mut().limiter.hit = false;
                self.live = Some(live);
                Ok(v)
            }
            Err(e) => Err(self.classify(e, Some(&live))),
        }
    }

    /// Give the plugin its params (`configure`); a new instance (after a trap) gets them again.
    pub fn configure(&mut self, params: Vec<(String, String)>) -> Result<(), PluginError> {
        self.params = params;
        self.configured = true;
        let live = match self.live.take() {
            Some(mut live) => {
                self.call_configure(&mut live)?;
                live
            }
            None => self.instantiate()?,
        };
        self.live = Some(live);
        Ok(())
    }

    /// An anonymizer's name, version and promises.
    pub fn info(&mut self) -> Result<PluginInfo, PluginError> {
        let mut live = self.live()?;
        self.arm(&mut live.store)?;
        let result = match &live.bindings {
            Bindings::Anonymizer(b) => b.confiture_plugin_anonymizer().call_info(&mut live.store),
            Bindings::Hook(_) => {
                self.live = Some(live);
                return Err(self.fail(ErrorKind::WrongWorld { found: "a hook", wanted: "an anonymizer" }));
            }
        };
        self.settle(live, result)
    }

    /// Transform `values` of `column`, in batches of at most `limits.batch`.
    pub fn transform(
        &mut self,
        column: &Column,
        values: &[Option<String>],
    ) -> Result<Vec<Option<String>>, PluginError> {
        let mut out = Vec::with_capacity(values.len());
        for chunk in values.chunks(self.limits.batch.max(1)) {
            let mut live = self.live()?;
            self.arm(&mut live.store)?;
            let result = match &live.bindings {
                Bindings::Anonymizer(b) => {
                    b.confiture_plugin_anonymizer().call_transform(&mut live.store, column, chunk)
                }
                Bindings::Hook(_) => {
                    self.live = Some(live);
                    return Err(self.fail(ErrorKind::WrongWorld { found: "a hook", wanted: "an anonymizer" }));
                }
            };
            match self.settle(live, result)? {
                Ok(values) if values.len() == chunk.len() => out.extend(values),
                Ok(values) => {
                    return Err(self.fail(ErrorKind::BatchMismatch { sent: chunk.len(), got: values.len() }));
                }
                Err(message) => return Err(self.fail(ErrorKind::Guest(message))),
            }
        }
        Ok(out)
    }

    /// A hook's decision on an event.
    pub fn on_event(&mut self, event: &Event) -> Result<Decision, PluginError> {
        let mut live = self.live()?;
        self.arm(&mut live.store)?;
        let result = match &live.bindings {
            Bindings::Hook(b) => b.confiture_plugin_hook().call_on_event(&mut live.store, event),
            Bindings::Anonymizer(_) => {
                self.live = Some(live);
                return Err(self.fail(ErrorKind::WrongWorld { found: "an anonymizer", wanted: "a hook" }));
            }
        };
        match self.settle(live, result)? {
            Ok(d) => Ok(d),
            Err(message) => Err(self.fail(ErrorKind::Guest(message))),
        }
    }

    /// Whether an instance is alive (for tests: a trap discards it).
    pub fn has_instance(&self) -> bool {
        self.live.is_some()
    }
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin").field("label", &self.label).field("world", &self.world).finish()
    }
}
