//! email

use super::prelude::*;
use crate::anonymize::prp::Prp;
use crate::anonymize::value::{base32, pad};

declare_strategy! {
    /// Replaces an e-mail address with another, `preserved`: the local part is a keyed
    /// permutation of the original address written in base32 (`mfzgc3tf…@example.com`), so
    /// distinct addresses stay distinct — a unique index on the column keeps holding — and the
    /// same address gives the same result in every table and on every run with the same key.
    ///
    /// By default the whole address is encrypted into the local part and the domain is
    /// `domain`; with `keep-domain=#true` only the local part is, and the original domain is
    /// kept (useful to keep per-domain statistics; it reveals the domain). A value without `@`
    /// is masked whole. The output is longer than the input (about 1.6×, plus the domain): on a
    /// short `varchar(n)` a value that does not fit is an error, never cut (cutting would break
    /// uniqueness).
    ///
    /// ```kdl
    /// column "email" "email"
    /// column "contact" "email" keep-domain=#true
    /// ```
    pub struct Email {
        name: "email",
        summary: "e-mail address replaced by a keyed permutation, domain kept or replaced",
        accepts: &[TypeClass::Text],
        deterministic: true,
        uniqueness: Preserved,
        params: [
            ("keep-domain", Bool, Some("false"), "keep the original domain (only the local part is masked)"),
            ("domain", Text, Some("example.com"), "the domain of masked addresses, without `keep-domain`"),
        ],
    }
}

struct Masked {
    prp: Prp,
    keep_domain: bool,
    domain: String,
}

impl Masked {
    fn permute(&self, part: &str, out: &mut String) {
        // On the stack for the usual lengths.
        let mut stack = [0u8; 96];
        let n = part.len() + 1 + usize::from(part.is_empty());
        if n <= stack.len() {
            stack[..part.len()].copy_from_slice(part.as_bytes());
            stack[part.len()] = 1;
            let buf = &mut stack[..n];
            self.prp.bytes(buf);
            base32(buf, out);
        } else {
            let mut buf = Vec::with_capacity(n);
            pad(part.as_bytes(), &mut buf);
            self.prp.bytes(&mut buf);
            base32(&buf, out);
        }
    }
}

impl Masker for Masked {
    fn mask(&self, input: &str, _: &dyn Row, out: &mut String) -> Result<Out, String> {
        match input.rsplit_once('@') {
            Some((local, domain)) if self.keep_domain => {
                self.permute(local, out);
                out.push('@');
                out.push_str(domain);
            }
            // Nothing to keep: no `@` in the output either, so it cannot meet a kept-domain one.
            None if self.keep_domain => self.permute(input, out),
            _ => {
                self.permute(input, out);
                out.push('@');
                out.push_str(&self.domain);
            }
        }
        Ok(Out::Value)
    }
}

impl Strategy for Email {
    fn build(&self, params: &Params, cx: &BuildCx<'_>) -> Result<Box<dyn Masker>, String> {
        let domain = params.text("domain");
        if domain.is_empty() || domain.contains('@') {
            return Err(format!("`domain` is a domain name such as example.com, not `{domain}`"));
        }
        Ok(Box::new(Masked { prp: cx.prp(), keep_domain: params.bool("keep-domain"), domain: domain.into() }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_replaced_deterministically_and_stay_distinct() {
        let m = masker(&Email, &[]);
        let a = masks(&*m, "alice@corp.example").unwrap();
        assert!(a.ends_with("@example.com"), "{a}");
        assert!(!a.contains("alice"));
        assert_eq!(masks(&*m, "alice@corp.example").unwrap(), a);
        let mut seen = std::collections::HashSet::new();
        for i in 0..20_000 {
            assert!(seen.insert(masks(&*m, &format!("user{i}@x.org")).unwrap()));
        }
        assert!(seen.insert(masks(&*m, "").unwrap()));
        assert!(seen.insert(masks(&*m, "a").unwrap()));
    }

    /// The issue's bar: a unique column of 1,000,000 addresses stays unique.
    #[test]
    fn a_million_distinct_addresses_stay_distinct() {
        let m = masker(&Email, &[]);
        let mut seen = std::collections::HashSet::with_capacity(1_000_000);
        for i in 0..1_000_000u32 {
            let out = masks(&*m, &format!("customer{i}@shop.example")).unwrap();
            assert!(seen.insert(out), "a collision at {i}");
        }
    }

    #[test]
    fn keep_domain_keeps_it_and_values_without_at_never_meet_addresses() {
        let m = masker(&Email, &[("keep-domain", "true")]);
        let a = masks(&*m, "bob@shop.fr").unwrap();
        assert!(a.ends_with("@shop.fr") && !a.starts_with("bob"), "{a}");
        assert!(!masks(&*m, "bob").unwrap().contains('@'));
        let other = masker(&Email, &[("domain", "test.invalid")]);
        assert!(masks(&*other, "bob@shop.fr").unwrap().ends_with("@test.invalid"));
        assert!(masker_with(&Email, &[("domain", "a@b")], ColumnType::text()).is_err());
    }
}
