//! bytea

use super::prelude::*;
use crate::anonymize::key::hex;
use crate::anonymize::prp::Prp;

declare_strategy! {
    /// Replaces binary data with a keyed permutation of byte strings of its length: the
    /// output has as many bytes as the input, and distinct inputs stay distinct (`preserved`);
    /// an empty value stays empty. Values are read in PostgreSQL's hex form (`\x0a0b…`, the
    /// default `bytea_output`); the legacy escape form is an error.
    ///
    /// ```kdl
    /// column "avatar" "bytea"
    /// ```
    pub struct Bytea {
        name: "bytea",
        summary: "binary data replaced by a keyed permutation of the same length",
        accepts: &[TypeClass::Bytea],
        deterministic: true,
        uniqueness: Preserved,
        params: [],
    }
}

struct Bytes {
    prp: Prp,
}

fn decode(input: &str) -> Option<Vec<u8>> {
    let hex = input.strip_prefix("\\x")?.as_bytes();
    if hex.len() % 2 != 0 {
        return None;
    }
    let nibble = |c: u8| char::from(c).to_digit(16).map(|d| d as u8);
    hex.chunks(2).map(|p| Some(nibble(p[0])? << 4 | nibble(p[1])?)).collect()
}

impl Masker for Bytes {
    fn mask(&self, input: &str, _: &dyn Row, out: &mut String) -> Result<Out, String> {
        let mut bytes = decode(input).ok_or("not a bytea in hex form (\\x…)")?;
        match bytes.as_mut_slice() {
            [] => {}
            [b] => *b = self.prp.below(256, u64::from(*b), 0) as u8,
            all => self.prp.bytes(all),
        }
        out.push_str("\\x");
        out.push_str(&hex(&bytes));
        Ok(Out::Value)
    }
}

impl Strategy for Bytea {
    fn build(&self, _: &Params, cx: &BuildCx<'_>) -> Result<Box<dyn Masker>, String> {
        Ok(Box::new(Bytes { prp: cx.prp() }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytea() -> ColumnType {
        ColumnType { class: TypeClass::Bytea, ..ColumnType::text() }
    }

    #[test]
    fn bytes_are_permuted_with_their_length() {
        let m = masker_with(&Bytea, &[], bytea()).unwrap();
        assert_eq!(masks(&*m, "\\x").unwrap(), "\\x");
        for input in ["\\x0a", "\\x0a0b", "\\xDEADBEEF", "\\x00000000000000000000000000000000000000000000000000"] {
            let out = masks(&*m, input).unwrap();
            assert!(out.starts_with("\\x") && out.len() == input.len(), "{out}");
            assert!(out[2..].bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
            assert_ne!(out.to_lowercase(), input.to_lowercase());
            assert_eq!(masks(&*m, input).unwrap(), out);
        }
        assert_eq!(masks(&*m, "\\xdeadbeef"), masks(&*m, "\\xDEADBEEF"));
        for bad in ["", "deadbeef", "\\xabc", "\\xzz", "\\001\\002", "\\x0a 0b"] {
            let mut out = String::new();
            assert!(m.mask(bad, &crate::anonymize::strategy::NoRow, &mut out).is_err(), "{bad}");
        }
    }

    #[test]
    fn distinct_values_stay_distinct() {
        let m = masker_with(&Bytea, &[], bytea()).unwrap();
        let singles: std::collections::HashSet<_> =
            (0..256).map(|b| masks(&*m, &format!("\\x{b:02x}")).unwrap()).collect();
        assert_eq!(singles.len(), 256);
        let pairs: std::collections::HashSet<_> =
            (0..65536).step_by(7).map(|b| masks(&*m, &format!("\\x{b:04x}")).unwrap()).collect();
        assert_eq!(pairs.len(), 65536usize.div_ceil(7));
    }
}
