//! uuid

use super::prelude::*;
use crate::anonymize::prp::Prp;

declare_strategy! {
    /// Replaces a UUID with another by a keyed permutation of its 16 bytes, so distinct UUIDs
    /// stay distinct (`preserved`) and foreign keys masked with the same key keep matching.
    /// Input may be written with or without hyphens or braces, in either case; the output is
    /// the canonical lower-case form `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`. All 128 bits are
    /// permuted, so the output's version and variant digits are arbitrary: it is not a valid
    /// version-4 UUID (PostgreSQL's `uuid` type does not check that).
    ///
    /// ```kdl
    /// column "external_id" "uuid"
    /// ```
    pub struct Uuid {
        name: "uuid",
        summary: "UUID replaced by a keyed permutation of its bytes",
        accepts: &[TypeClass::Uuid, TypeClass::Text],
        deterministic: true,
        uniqueness: Preserved,
        params: [],
    }
}

struct Bytes {
    prp: Prp,
}

fn parse(input: &str) -> Option<[u8; 16]> {
    let inner = match input.strip_prefix('{') {
        Some(rest) => rest.strip_suffix('}')?,
        None => input,
    };
    if inner.starts_with('-') || inner.ends_with('-') || inner.contains("--") {
        return None;
    }
    let mut bytes = [0u8; 16];
    let mut n = 0;
    for c in inner.chars().filter(|&c| c != '-') {
        let d = c.to_digit(16)? as u8;
        let byte = bytes.get_mut(n / 2)?;
        *byte = *byte << 4 | d;
        n += 1;
    }
    (n == 32).then_some(bytes)
}

impl Masker for Bytes {
    fn mask(&self, input: &str, _: &dyn Row, out: &mut String) -> Result<Out, String> {
        let mut bytes = parse(input).ok_or("not a UUID")?;
        self.prp.bytes(&mut bytes);
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        for (i, b) in bytes.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                out.push('-');
            }
            out.push(char::from(DIGITS[usize::from(b >> 4)]));
            out.push(char::from(DIGITS[usize::from(b & 15)]));
        }
        Ok(Out::Value)
    }
}

impl Strategy for Uuid {
    fn build(&self, _: &Params, cx: &BuildCx<'_>) -> Result<Box<dyn Masker>, String> {
        Ok(Box::new(Bytes { prp: cx.prp() }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canonical(s: &str) -> bool {
        s.len() == 36
            && s.char_indices().all(|(i, c)| {
                if matches!(i, 8 | 13 | 18 | 23) { c == '-' } else { c.is_ascii_digit() || ('a'..='f').contains(&c) }
            })
    }

    #[test]
    fn uuids_are_permuted_into_the_canonical_form() {
        let m = masker(&Uuid, &[]);
        let a = masks(&*m, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11").unwrap();
        assert!(canonical(&a), "{a}");
        assert_ne!(a, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
        for spelling in [
            "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11",
            "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}",
            "a0eebc999c0b4ef8bb6d6bb9bd380a11",
            "a0ee-bc99-9c0b-4ef8-bb6d-6bb9-bd38-0a11",
        ] {
            assert_eq!(masks(&*m, spelling).unwrap(), a, "{spelling}");
        }
        for bad in [
            "",
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1",
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a111",
            "{a0eebc999c0b4ef8bb6d6bb9bd380a11",
            "-a0eebc999c0b4ef8bb6d6bb9bd380a11",
            "g0eebc999c0b4ef8bb6d6bb9bd380a11",
        ] {
            assert!(parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn distinct_uuids_stay_distinct() {
        let m = masker(&Uuid, &[]);
        let mut seen = std::collections::HashSet::new();
        for i in 0..10_000u32 {
            let out = masks(&*m, &format!("00000000-0000-4000-8000-{i:012x}")).unwrap();
            assert!(canonical(&out) && seen.insert(out));
        }
        let column = ColumnType { class: TypeClass::Uuid, ..ColumnType::text() };
        let other = masker_with(&Uuid, &[], column).unwrap();
        assert_eq!(masks(&*other, "00000000-0000-4000-8000-000000000000").unwrap().len(), 36);
    }
}
