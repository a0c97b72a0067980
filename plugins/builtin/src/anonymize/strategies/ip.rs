//! ip

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::prelude::*;
use crate::anonymize::prp::Prp;

declare_strategy! {
    /// Replaces an IPv4 or IPv6 address with another of the same family by a keyed permutation
    /// of its bits, so distinct addresses stay distinct (`preserved`). A `/len` suffix
    /// (`10.1.2.3/24`) is kept as it is. `keep-prefix` keeps the first bits of IPv4 addresses
    /// (`keep-prefix=24`: `192.168.1.x` stays in `192.168.1.0/24`) and `keep-prefix-v6` those of
    /// IPv6 addresses (IP version six); only the other bits change. The output is written the standard way
    /// (`::1`, not `0:0:0:0:0:0:0:1`), so in a text column two spellings of one address give
    /// the same output.
    ///
    /// ```kdl
    /// column "last_ip" "ip"
    /// column "client_addr" "ip" keep-prefix=16 keep-prefix-v6=48
    /// ```
    pub struct Ip {
        name: "ip",
        summary: "IP address replaced by a keyed permutation, network prefix optionally kept",
        accepts: &[TypeClass::Inet, TypeClass::Text],
        deterministic: true,
        uniqueness: Preserved,
        params: [
            ("keep-prefix", Int, Some("0"), "leading bits of IPv4 addresses kept (0–32)"),
            ("keep-prefix-v6", Int, Some("0"), "leading bits of IPv6 addresses kept (0–128)"),
        ],
    }
}

struct Addresses {
    prp: Prp,
    keep_v4: u32,
    keep_v6: u32,
}

const TWEAK_V4: u64 = 4;
const TWEAK_V6_HIGH: u64 = 6;
const TWEAK_V6_LOW: u64 = 7;

impl Addresses {
    /// Permute the low `64 - keep` bits of `x` (`keep <= 64`).
    fn half(&self, x: u64, keep: u32, tweak: u64) -> u64 {
        let free = 64 - keep;
        if free == 0 {
            return x;
        }
        let mask = if free == 64 { u64::MAX } else { (1u64 << free) - 1 };
        (x & !mask) | self.prp.bits(free, x & mask, tweak)
    }

    fn v4(&self, a: Ipv4Addr) -> Ipv4Addr {
        // Widened to 64 bits with the 32 high bits kept: the same as permuting the low bits.
        let x = u64::from(u32::from(a));
        let y = self.half(x, 32 + self.keep_v4, TWEAK_V4);
        Ipv4Addr::from(y as u32)
    }

    fn v6(&self, a: Ipv6Addr) -> Ipv6Addr {
        let x = u128::from(a);
        let (high, low) = ((x >> 64) as u64, x as u64);
        let high = self.half(high, self.keep_v6.min(64), TWEAK_V6_HIGH);
        let low = self.half(low, self.keep_v6.saturating_sub(64), TWEAK_V6_LOW);
        Ipv6Addr::from((u128::from(high) << 64) | u128::from(low))
    }
}

impl Masker for Addresses {
    fn mask(&self, input: &str, _: &dyn Row, out: &mut String) -> Result<Out, String> {
        use std::fmt::Write;
        let bad = || "not an IP address".to_string();
        let (address, suffix) = match input.split_once('/') {
            Some((a, len)) => (a, Some(len)),
            None => (input, None),
        };
        let masked = match address.parse::<IpAddr>().map_err(|_| bad())? {
            IpAddr::V4(a) => IpAddr::V4(self.v4(a)),
            IpAddr::V6(a) => IpAddr::V6(self.v6(a)),
        };
        let max = if masked.is_ipv4() { 32 } else { 128 };
        write!(out, "{masked}").expect("writing to a String");
        if let Some(len) = suffix {
            match len.parse::<u8>() {
                Ok(l) if l <= max && !len.starts_with('+') => {
                    out.push('/');
                    out.push_str(len);
                }
                _ => return Err(bad()),
            }
        }
        Ok(Out::Value)
    }
}

impl Strategy for Ip {
    fn build(&self, params: &Params, cx: &BuildCx<'_>) -> Result<Box<dyn Masker>, String> {
        let (v4, v6) = (params.int("keep-prefix"), params.int("keep-prefix-v6"));
        if !(0..=32).contains(&v4) {
            return Err(format!("`keep-prefix` is between 0 and 32 bits, not {v4}"));
        }
        if !(0..=128).contains(&v6) {
            return Err(format!("`keep-prefix-v6` is between 0 and 128 bits, not {v6}"));
        }
        Ok(Box::new(Addresses { prp: cx.prp(), keep_v4: v4 as u32, keep_v6: v6 as u32 }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_permuted_within_their_family() {
        let m = masker(&Ip, &[]);
        let a = masks(&*m, "192.168.1.10").unwrap();
        assert!(a.parse::<Ipv4Addr>().is_ok(), "{a}");
        assert_ne!(a, "192.168.1.10");
        assert_eq!(masks(&*m, "192.168.1.10").unwrap(), a);
        let b = masks(&*m, "2001:db8::1").unwrap();
        assert!(b.parse::<Ipv6Addr>().is_ok(), "{b}");
        assert_ne!(b, "2001:db8::1");
        // Two spellings of one address are one address.
        assert_eq!(masks(&*m, "2001:0db8:0:0::1").unwrap(), b);
        let c = masks(&*m, "10.0.0.1/8").unwrap();
        assert!(c.ends_with("/8") && c[..c.len() - 2].parse::<Ipv4Addr>().is_ok(), "{c}");
        for bad in ["", "10.0.0", "10.0.0.256", "10.0.0.1/33", "::1/129", "10.0.0.1/", "host.example", "::1/+5"] {
            let mut out = String::new();
            assert_eq!(
                m.mask(bad, &crate::anonymize::strategy::NoRow, &mut out),
                Err("not an IP address".into()),
                "{bad}"
            );
        }
    }

    #[test]
    fn distinct_addresses_stay_distinct_and_prefixes_are_kept() {
        let m = masker(&Ip, &[("keep-prefix", "24"), ("keep-prefix-v6", "120")]);
        let mut seen = std::collections::HashSet::new();
        for i in 0..256 {
            let a = masks(&*m, &format!("10.20.30.{i}")).unwrap();
            assert!(a.starts_with("10.20.30."), "{a}");
            assert!(seen.insert(a));
        }
        let mut seen = std::collections::HashSet::new();
        for i in 0..256 {
            let a = masks(&*m, &format!("2001:db8::{i:x}")).unwrap();
            let x = u128::from(a.parse::<Ipv6Addr>().unwrap());
            assert_eq!(x >> 8, u128::from("2001:db8::".parse::<Ipv6Addr>().unwrap()) >> 8, "{a}");
            assert!(seen.insert(a));
        }
        let half = masker(&Ip, &[("keep-prefix-v6", "64")]);
        let a = masks(&*half, "2001:db8:1:2:3:4:5:6").unwrap();
        assert!(a.starts_with("2001:db8:1:2:"), "{a}");
        let whole = masker(&Ip, &[("keep-prefix", "32")]);
        assert_eq!(masks(&*whole, "1.2.3.4/32").unwrap(), "1.2.3.4/32");
        let all = masker(&Ip, &[]);
        let mut seen = std::collections::HashSet::new();
        for i in 0..5000u32 {
            assert!(seen.insert(masks(&*all, &Ipv4Addr::from(i * 7919).to_string()).unwrap()));
        }
    }

    #[test]
    fn prefixes_out_of_range_are_refused() {
        assert!(masker_with(&Ip, &[("keep-prefix", "33")], ColumnType::text()).is_err());
        assert!(masker_with(&Ip, &[("keep-prefix", "-1")], ColumnType::text()).is_err());
        assert!(masker_with(&Ip, &[("keep-prefix-v6", "129")], ColumnType::text()).is_err());
        let inet = ColumnType { class: TypeClass::Inet, ..ColumnType::text() };
        assert!(masker_with(&Ip, &[("keep-prefix-v6", "128")], inet).is_ok());
    }
}
