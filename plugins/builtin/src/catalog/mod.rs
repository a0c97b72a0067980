//! The catalog: a database's schema objects as a [`Model`] (model.rs), read from a live server in
//! one consistent snapshot by [`introspect`] (introspect.rs). Shared by every stage that needs to
//! know what a database holds: diff compares two models; sync, anonymize and fdw-cutover read
//! tables, columns, keys and types from one.

pub mod introspect;
pub mod model;
pub mod tables;

pub use introspect::introspect;
pub use model::Model;
