//! The KDL layer every configuration file goes through: KDL text to plain [`node::Node`]s whose
//! strings are templated, and the small typed [`decode`] helpers that turn nodes into settings
//! while recording every problem as a diagnostic. Pipelines, confiture.kdl and stages all use it.

pub mod decode;
pub mod node;
