//! hash

use super::prelude::*;
use crate::anonymize::key::{Prf, hex};

declare_strategy! {
    /// Replaces the value with a keyed hash (HMAC-SHA-256 under the profile's key) in hex or
    /// base64, cut to `length` characters, after an optional `prefix`. Unlike a plain
    /// `md5(value)`, it cannot be reversed with a dictionary of likely inputs without the key.
    /// 16 hex characters are 64 bits: distinct inputs almost always stay distinct, but that is
    /// not a guarantee, so a unique column needs a `preserved` strategy instead.
    ///
    /// ```kdl
    /// column "session_token" "hash" length=32
    /// column "external_ref" "hash" format="base64" prefix="ref_"
    /// ```
    pub struct Hash {
        name: "hash",
        summary: "keyed hash (HMAC-SHA-256) in hex or base64, of a given length",
        accepts: &[TypeClass::Text],
        deterministic: true,
        uniqueness: NotGuaranteed,
        params: [
            ("format", Text, Some("hex"), "`hex` or `base64` (URL-safe, no padding)"),
            ("length", Int, Some("16"), "characters of hash in the output (1–256)"),
            ("prefix", Text, Some(""), "text put before the hash"),
        ],
    }
}

struct Keyed {
    prf: Prf,
    base64: bool,
    length: usize,
    prefix: String,
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

impl Masker for Keyed {
    fn mask(&self, input: &str, _: &dyn Row, out: &mut String) -> Result<Out, String> {
        out.push_str(&self.prefix);
        let mut written = 0;
        let mut block = 0u32;
        while written < self.length {
            let d = self.prf.digest(&[input.as_bytes(), &block.to_le_bytes()]);
            let chunk = if self.base64 {
                d.iter().map(|b| B64[(b & 63) as usize] as char).collect::<String>()
            } else {
                hex(&d)
            };
            let take = (self.length - written).min(chunk.len());
            out.push_str(&chunk[..take]);
            written += take;
            block += 1;
        }
        Ok(Out::Value)
    }
}

impl Strategy for Hash {
    fn build(&self, params: &Params, cx: &BuildCx<'_>) -> Result<Box<dyn Masker>, String> {
        let base64 = match params.text("format") {
            "hex" => false,
            "base64" => true,
            other => return Err(format!("`format` is hex or base64, not `{other}`")),
        };
        let length = params.int("length");
        if !(1..=256).contains(&length) {
            return Err(format!("`length` is between 1 and 256, not {length}"));
        }
        Ok(Box::new(Keyed { prf: cx.prf(), base64, length: length as usize, prefix: params.text("prefix").into() }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_keyed_sized_and_stable() {
        let m = masker(&Hash, &[]);
        let a = masks(&*m, "alice").unwrap();
        assert_eq!(a.len(), 16);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(masks(&*m, "alice").unwrap(), a);
        assert_ne!(masks(&*m, "alicf").unwrap(), a);
        // Not md5/sha256 of the input: a dictionary of inputs does not find it.
        assert!(!a.starts_with("6384e2b2"));
        let long = masks(&*masker(&Hash, &[("length", "100"), ("prefix", "h_")]), "x").unwrap();
        assert_eq!(long.len(), 102);
        let b = masks(&*masker(&Hash, &[("format", "base64"), ("length", "20")]), "x").unwrap();
        assert!(b.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert!(masker_with(&Hash, &[("length", "0")], ColumnType::text()).is_err());
    }
}
