//! What happens to the bytes between the source's `COPY … TO STDOUT` and the target's `COPY …
//! FROM STDIN`: nothing for a table without masked columns (each row passes through as it came),
//! or, for a masked table, only the masked columns' fields are decoded, masked and encoded again;
//! the other fields are copied as bytes. Either way every row written is hashed into an
//! order-independent checksum, so `--verify` can read the target back and compare.
//!
//! PostgreSQL sends one `CopyData` message per row in COPY's text format: fields separated by
//! tabs, `\N` for NULL, backslash escapes, a newline at the end.

use std::hash::Hasher;
use std::sync::Arc;

use siphasher::sip128::{Hasher128, SipHasher13};

use crate::anonymize::mask::ColumnMasker;
use crate::anonymize::strategy::Row;
use crate::anonymize::value::{copy_field, copy_unescape};

/// An order-independent checksum of a set of rows: the count and the wrapping sum of each row's
/// 128-bit SipHash-1-3 (fixed key; a checksum, not a secret). Sums of parts add up to the whole,
/// so ranges copied in any order, by any worker, in any run, combine into the table's checksum.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Checksum {
    pub rows: u64,
    pub sum: u128,
}

const HASH_KEY: (u64, u64) = (0x636f_6e66_6974_7572, 0x6520_7379_6e63_2031);

impl Checksum {
    /// Add one row (its COPY text line, newline included).
    pub fn add(&mut self, line: &[u8]) {
        let mut h = SipHasher13::new_with_keys(HASH_KEY.0, HASH_KEY.1);
        h.write(line);
        self.sum = self.sum.wrapping_add(h.finish128().as_u128());
        self.rows += 1;
    }

    pub fn merge(&mut self, other: Checksum) {
        self.sum = self.sum.wrapping_add(other.sum);
        self.rows += other.rows;
    }

    /// 32 hex digits.
    pub fn hex(&self) -> String {
        format!("{:032x}", self.sum)
    }

    pub fn parse(rows: u64, hex: &str) -> Option<Checksum> {
        u128::from_str_radix(hex, 16).ok().map(|sum| Checksum { rows, sum })
    }
}

/// How one masked table's rows are rewritten.
pub struct Rewrite {
    /// Copied columns, in COPY order.
    names: Vec<String>,
    /// `(field index, masker)` in the order the profile computes them (templates last).
    masked: Vec<(usize, Arc<ColumnMasker>)>,
    /// Field indexes other maskers read (`template`), decoded for them.
    read: Vec<usize>,
}

impl Rewrite {
    /// `columns`: the copied columns in order; `masked`: `(column, masker)` in computing order.
    /// Fails on a masked column that is not copied.
    pub fn new(columns: &[String], masked: Vec<(String, Arc<ColumnMasker>)>) -> Result<Rewrite, String> {
        let index = |c: &str| {
            columns.iter().position(|n| n == c).ok_or_else(|| format!("column `{c}` is masked but not copied"))
        };
        let mut out = Vec::new();
        let mut read = Vec::new();
        for (column, masker) in masked {
            for r in masker.reads() {
                let i = index(&r)?;
                if !read.contains(&i) {
                    read.push(i);
                }
            }
            out.push((index(&column)?, masker));
        }
        Ok(Rewrite { names: columns.to_vec(), masked: out, read })
    }

    /// Rewrite one row (`line` with its newline) into `out` (cleared first).
    pub fn row(&self, line: &[u8], out: &mut Vec<u8>, scratch: &mut Scratch) -> Result<(), String> {
        out.clear();
        let body = line.strip_suffix(b"\n").unwrap_or(line);
        scratch.bounds.clear();
        let mut start = 0;
        for tab in memchr_iter(b'\t', body) {
            scratch.bounds.push((start, tab));
            start = tab + 1;
        }
        scratch.bounds.push((start, body.len()));
        if scratch.bounds.len() != self.names.len() {
            return Err(format!("a row has {} fields where {} were expected", scratch.bounds.len(), self.names.len()));
        }
        let field = |i: usize| &body[scratch.bounds[i].0..scratch.bounds[i].1];
        // Values the templates read, as the profile computes them: masked once masked.
        scratch.values.clear();
        for &i in &self.read {
            let f = field(i);
            let v = if f == b"\\N" { None } else { Some(decode(f)?) };
            scratch.values.push((i, v));
        }
        scratch.masked.clear();
        scratch.masked.resize(self.names.len(), None);
        for (i, masker) in &self.masked {
            let f = field(*i);
            let input = if f == b"\\N" { None } else { Some(decode(f)?) };
            let row = Fields { names: &self.names, values: &scratch.values };
            let result = masker.apply(input.as_deref(), &row, &mut scratch.buf)?;
            let value = result.map(|()| scratch.buf.clone());
            if let Some(slot) = scratch.values.iter_mut().find(|(j, _)| j == i) {
                slot.1.clone_from(&value);
            }
            scratch.masked[*i] = Some(value);
        }
        for i in 0..self.names.len() {
            if i > 0 {
                out.push(b'\t');
            }
            match &scratch.masked[i] {
                Some(v) => copy_field(v.as_deref(), out),
                None => out.extend_from_slice(field(i)),
            }
        }
        out.push(b'\n');
        Ok(())
    }
}

/// Buffers reused from row to row.
#[derive(Default)]
pub struct Scratch {
    bounds: Vec<(usize, usize)>,
    values: Vec<(usize, Option<String>)>,
    masked: Vec<Option<Option<String>>>,
    buf: String,
}

struct Fields<'a> {
    names: &'a [String],
    values: &'a [(usize, Option<String>)],
}

impl Row for Fields<'_> {
    fn get(&self, column: &str) -> Option<Option<&str>> {
        let i = self.names.iter().position(|n| n == column)?;
        self.values.iter().find(|(j, _)| *j == i).map(|(_, v)| v.as_deref())
    }
}

fn decode(field: &[u8]) -> Result<String, String> {
    let mut bytes = Vec::with_capacity(field.len());
    copy_unescape(field, &mut bytes);
    String::from_utf8(bytes).map_err(|_| "a masked value is not valid UTF-8".to_string())
}

fn memchr_iter(needle: u8, haystack: &[u8]) -> impl Iterator<Item = usize> + '_ {
    haystack.iter().enumerate().filter(move |(_, b)| **b == needle).map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::anonymize::key::Keyring;
    use crate::anonymize::plan::masker_for;
    use crate::anonymize::strategy::ColumnType;

    fn masker(strategy: &str) -> Arc<ColumnMasker> {
        let keys = Keyring::from_secret("a test key that is long enough!!").unwrap();
        Arc::new(masker_for(strategy, &[], ColumnType::text(), &keys, std::path::Path::new(".")).unwrap())
    }

    #[test]
    fn only_masked_fields_change_and_escapes_survive() {
        let cols: Vec<String> = ["id", "email", "note"].iter().map(|s| s.to_string()).collect();
        let rw = Rewrite::new(&cols, vec![("email".into(), masker("email"))]).unwrap();
        let mut out = Vec::new();
        let mut s = Scratch::default();
        rw.row(b"7\tann@example.com\ta\\tb\\\\c\n", &mut out, &mut s).unwrap();
        let text = String::from_utf8(out.clone()).unwrap();
        let fields: Vec<&str> = text.trim_end_matches('\n').split('\t').collect();
        assert_eq!(fields[0], "7");
        assert_ne!(fields[1], "ann@example.com");
        assert!(fields[1].contains('@'));
        assert_eq!(fields[2], "a\\tb\\\\c");
        // NULL stays NULL; the same input masks alike.
        let mut again = Vec::new();
        rw.row(b"7\tann@example.com\ta\\tb\\\\c\n", &mut again, &mut s).unwrap();
        assert_eq!(out, again);
        rw.row(b"8\t\\N\tx\n", &mut out, &mut s).unwrap();
        assert_eq!(out, b"8\t\\N\tx\n");
        assert!(rw.row(b"8\tx\n", &mut out, &mut s).is_err());
    }

    #[test]
    fn checksums_do_not_depend_on_order_and_add_up() {
        let rows: [&[u8]; 3] = [b"1\ta\n", b"2\tb\n", b"3\t\\N\n"];
        let mut forward = Checksum::default();
        rows.iter().for_each(|r| forward.add(r));
        let mut parts = Checksum::default();
        let mut a = Checksum::default();
        a.add(rows[2]);
        let mut b = Checksum::default();
        b.add(rows[1]);
        b.add(rows[0]);
        parts.merge(b);
        parts.merge(a);
        assert_eq!(forward, parts);
        assert_eq!(Checksum::parse(3, &forward.hex()), Some(forward));
        let mut other = Checksum::default();
        other.add(b"1\ta\n");
        other.add(b"2\tb\n");
        other.add(b"3\tc\n");
        assert_ne!(other, forward);
    }
}
