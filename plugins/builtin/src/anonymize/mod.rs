//! Anonymization: keyed, deterministic masking of PII (docs/anonymize.md).
//!
//! The strategy engine is a library with two users: the `anonymize` stage, which rewrites a
//! database in place, and `sync`, which masks rows on their way from one database to another.
//! - [`strategy`]: what a strategy declares and how it masks one value; `strategies/` holds
//!   the built-in ones, one file each.
//! - [`key`] and [`prp`]: the profile's key, the keyed PRF and the keyed permutations
//!   `preserved` strategies are made of.
//! - [`mask`]: a strategy built for one column (arrays element by element, output fitted to
//!   the column).
//! - [`words`]: the word lists (several locales, CC0).
//! - [`value`]: PostgreSQL text forms (arrays, COPY).

pub mod inplace;
pub mod key;
pub mod mask;
pub mod plan;
pub mod preview;
pub mod profile;
pub mod prp;
pub mod scan;
pub mod strategies;
pub mod strategy;
pub mod value;
pub mod verify;
pub mod words;

#[cfg(test)]
pub(crate) mod testing;
