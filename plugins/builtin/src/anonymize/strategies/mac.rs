//! mac

use super::prelude::*;
use crate::anonymize::prp::Prp;

declare_strategy! {
    /// Replaces a MAC address (6 octets, or 8 for EUI-64 / `macaddr8`) with another by a keyed
    /// permutation of its bits, so distinct addresses stay distinct (`preserved`). With
    /// `keep-oui=#true` the first 3 octets, the manufacturer's OUI, are kept and only the rest
    /// changes.
    ///
    /// Accepted forms are PostgreSQL's: octets separated by `:` or `-` (`08:00:2b:01:02:03`),
    /// equal groups of hex digits (`0800.2b01.0203`, `08002b-010203`) or 12 or 16 hex digits in
    /// a row. In a text column the output has the input's layout and letter case (upper case if
    /// the input has an upper-case letter); a `macaddr` column gets PostgreSQL's lower-case
    /// colon form.
    ///
    /// ```kdl
    /// column "device_mac" "mac"
    /// column "nic" "mac" keep-oui=#true
    /// ```
    pub struct Mac {
        name: "mac",
        summary: "MAC address replaced by a keyed permutation, manufacturer optionally kept",
        accepts: &[TypeClass::Mac, TypeClass::Text],
        deterministic: true,
        uniqueness: Preserved,
        params: [("keep-oui", Bool, Some("false"), "keep the first 3 octets (the manufacturer's OUI)")],
    }
}

struct Addresses {
    prp: Prp,
    keep_oui: bool,
    /// A `macaddr` column: lower-case colon form whatever the input's layout.
    canonical: bool,
}

/// The address as a number and its width in bits (48 or 64), if `input` is one.
fn parse(input: &str) -> Option<(u64, u32)> {
    let bytes = input.as_bytes();
    let sep = bytes.iter().copied().find(|b| !b.is_ascii_hexdigit());
    if !matches!(sep, None | Some(b':' | b'-' | b'.'))
        || bytes.iter().any(|&b| !b.is_ascii_hexdigit() && Some(b) != sep)
    {
        return None;
    }
    let mut groups = bytes.split(|&b| Some(b) == sep);
    let group = groups.next().map_or(0, <[u8]>::len);
    let digits = bytes.iter().filter(|b| b.is_ascii_hexdigit()).count();
    if group == 0 || group % 2 != 0 || !groups.all(|g| g.len() == group) || !matches!(digits, 12 | 16) {
        return None;
    }
    let value = bytes
        .iter()
        .filter(|b| b.is_ascii_hexdigit())
        .fold(0u64, |acc, &b| acc << 4 | u64::from(char::from(b).to_digit(16).expect("a hex digit")));
    Some((value, digits as u32 * 4))
}

impl Masker for Addresses {
    fn mask(&self, input: &str, _: &dyn Row, out: &mut String) -> Result<Out, String> {
        let (value, bits) = parse(input).ok_or("not a MAC address")?;
        let free = if self.keep_oui { bits - 24 } else { bits };
        let mask = if free == 64 { u64::MAX } else { (1u64 << free) - 1 };
        let masked = (value & !mask) | self.prp.bits(free, value & mask, u64::from(bits));
        let upper = !self.canonical && input.bytes().any(|b| matches!(b, b'A'..=b'F'));
        let digits: &[u8; 16] = if upper { b"0123456789ABCDEF" } else { b"0123456789abcdef" };
        let mut shift = bits;
        let mut next = || {
            shift -= 4;
            char::from(digits[(masked >> shift & 15) as usize])
        };
        if self.canonical {
            for i in 0..bits / 8 {
                if i > 0 {
                    out.push(':');
                }
                out.push(next());
                out.push(next());
            }
        } else {
            for c in input.chars() {
                out.push(if c.is_ascii_hexdigit() { next() } else { c });
            }
        }
        Ok(Out::Value)
    }
}

impl Strategy for Mac {
    fn build(&self, params: &Params, cx: &BuildCx<'_>) -> Result<Box<dyn Masker>, String> {
        Ok(Box::new(Addresses {
            prp: cx.prp(),
            keep_oui: params.bool("keep-oui"),
            canonical: cx.column.class == TypeClass::Mac,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(s: &str) -> String {
        s.chars().map(|c| if c.is_ascii_hexdigit() { '#' } else { c }).collect()
    }

    #[test]
    fn layouts_and_case_are_kept_in_text() {
        let m = masker(&Mac, &[]);
        for input in [
            "08:00:2b:01:02:03",
            "08-00-2B-01-02-03",
            "0800.2b01.0203",
            "08002b-010203",
            "08002b010203",
            "08:00:2b:01:02:03:04:05",
            "08002B0102030405",
        ] {
            let out = masks(&*m, input).unwrap();
            assert_eq!(shape(&out), shape(input), "{input} -> {out}");
            assert_ne!(out.to_lowercase(), input.to_lowercase());
            let upper = input.bytes().any(|b| b.is_ascii_uppercase());
            assert!(out.bytes().all(|b| !b.is_ascii_alphabetic() || b.is_ascii_uppercase() == upper), "{out}");
            assert_eq!(masks(&*m, input).unwrap(), out);
        }
        // One address in two layouts: the same new address.
        assert_eq!(
            masks(&*m, "08:00:2b:01:02:03").unwrap(),
            masks(&*m, "08-00-2b-01-02-03").unwrap().replace('-', ":")
        );
        for bad in [
            "",
            "08:00:2b:01:02",
            "08:00:2b:01:02:0g",
            "08:00-2b:01:02:03",
            "080:02b:010:203",
            "08 00 2b 01 02 03",
            "08:00:2bĺ01:02:03",
        ] {
            let mut out = String::new();
            assert!(m.mask(bad, &crate::anonymize::strategy::NoRow, &mut out).is_err(), "{bad}");
        }
    }

    #[test]
    fn macaddr_columns_get_the_colon_form_and_the_oui_can_be_kept() {
        let column = ColumnType { class: TypeClass::Mac, ..ColumnType::text() };
        let m = masker_with(&Mac, &[("keep-oui", "true")], column).unwrap();
        let mut seen = std::collections::HashSet::new();
        for i in 0..5000 {
            let out = masks(&*m, &format!("08002B{i:06X}")).unwrap();
            assert!(out.starts_with("08:00:2b:") && shape(&out) == "##:##:##:##:##:##", "{out}");
            assert!(out.bytes().all(|b| !b.is_ascii_uppercase()));
            assert!(seen.insert(out));
        }
        let eui = masks(&*m, "08:00:2b:01:02:03:04:05").unwrap();
        assert!(eui.starts_with("08:00:2b:") && eui.len() == 23, "{eui}");
        let all = masker(&Mac, &[]);
        let outs: std::collections::HashSet<_> =
            (0..50).map(|i| masks(&*all, &format!("08:00:2b:01:02:{i:02x}")).unwrap()[..8].to_string()).collect();
        assert!(outs.len() > 1, "without keep-oui the OUI changes too");
    }
}
