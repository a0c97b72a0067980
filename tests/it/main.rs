//! Integration tests: the `confiture` binary and the engine against a real PostgreSQL (one
//! ephemeral cluster for this test binary, a fresh database per test).

mod anonymize;
mod build;
mod cli;
mod connect;
mod cutover;
mod demo;
mod diff;
mod ephemeral;
mod hooks;
mod lint;
mod migrate;
mod migrate_safety;
mod plugin;
mod secrets;
mod support;
mod sync;
mod targets;
