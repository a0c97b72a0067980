//! Keys: the profile's secret, what each strategy derives from it, and the keyed PRF.
//!
//! The profile's key text is stretched into a 32-byte master key (HMAC-SHA-256 under a fixed
//! label, so keys of any length work alike). Every strategy instance gets its own subkey,
//! `HMAC(master, scope)`, where the scope is the strategy's name and parameters — and, when
//! the profile scopes keys per column, the table and column. So the same value masked in two
//! tables with the same strategy gives the same output (joins keep matching), and another key
//! gives unrelated output. The PRF is HMAC-SHA-256 with the key's states computed once: about
//! 100 ns per short value on CPUs with SHA extensions (docs/performance.md), already a
//! dependency. The keyed permutations (prp.rs) use AES-128 rounds instead: measured, HMAC rounds
//! made `email` miss its 500 ns budget.
//!
//! The master key never leaves this module: reports show [`Keyring::fingerprint`], plugins get
//! a subkey.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The shortest key text accepted: shorter secrets are guessable.
pub const MIN_KEY_LEN: usize = 16;

/// The profile's key, ready to derive subkeys from.
#[derive(Clone)]
pub struct Keyring {
    master: [u8; 32],
    /// `false`: the profile asked for non-deterministic masking; the master key is random.
    deterministic: bool,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring").field("fingerprint", &self.fingerprint()).finish_non_exhaustive()
    }
}

impl Keyring {
    /// From the profile's key text.
    pub fn from_secret(secret: &str) -> Result<Keyring, String> {
        if secret.chars().count() < MIN_KEY_LEN {
            return Err(format!(
                "the key is too short ({} characters; at least {MIN_KEY_LEN}): a short key can be guessed, and \
                 with it every masked value; generate one with `openssl rand -hex 32`",
                secret.chars().count()
            ));
        }
        Ok(Keyring { master: hmac(b"confiture/anonymize/v1/master", &[secret.as_bytes()]), deterministic: true })
    }

    /// A random key for one run: outputs differ from run to run (the profile's
    /// `deterministic #false`).
    pub fn random() -> Keyring {
        let mut seed = [0u8; 32];
        // The OS's randomness through std's hasher seeds, mixed with the time and process id:
        // no new dependency, and nothing about it is reproducible.
        use std::hash::{BuildHasher, Hasher};
        for chunk in seed.chunks_mut(8) {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u128(
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos(),
            );
            h.write_u32(std::process::id());
            chunk.copy_from_slice(&h.finish().to_le_bytes());
        }
        Keyring { master: hmac(b"confiture/anonymize/v1/random", &[&seed]), deterministic: false }
    }

    pub fn deterministic(&self) -> bool {
        self.deterministic
    }

    /// 16 hex digits that identify the key in reports and progress records, never the key.
    pub fn fingerprint(&self) -> String {
        hex(&hmac(&self.master, &[b"fingerprint"])[..8])
    }

    /// The PRF for one scope (a strategy and its parameters, maybe a column).
    pub fn prf(&self, scope: &str) -> Prf {
        Prf::new(&self.subkey(scope))
    }

    /// A subkey for a scope, e.g. the one a WASM plugin gets in `configure`.
    pub fn subkey(&self, scope: &str) -> [u8; 32] {
        hmac(&self.master, &[b"scope/", scope.as_bytes()])
    }
}

fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// A keyed pseudo-random function: HMAC-SHA-256 with the key's inner and outer states computed
/// once, so each call costs two compressions of a short input.
#[derive(Clone)]
pub struct Prf {
    mac: HmacSha256,
}

impl Prf {
    pub fn new(key: &[u8]) -> Prf {
        Prf { mac: HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length") }
    }

    /// The PRF of the concatenation of `parts` (each length-prefixed, so parts cannot run into
    /// each other).
    pub fn digest(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut mac = self.mac.clone();
        for p in parts {
            mac.update(&(p.len() as u32).to_le_bytes());
            mac.update(p);
        }
        mac.finalize().into_bytes().into()
    }

    /// A stream of pseudo-random numbers determined by the PRF of `input`.
    pub fn stream(&self, input: &[u8]) -> Stream {
        Stream::new(self.digest(&[input]))
    }

    /// A number in `0..n` determined by `input` (`n > 0`).
    pub fn below(&self, input: &[u8], n: u64) -> u64 {
        self.stream(input).below(n)
    }
}

/// Numbers drawn from a 256-bit secret seed (a PRF output): xoshiro256** — fast, and only ever
/// seeded by the PRF, so its outputs say nothing about the input without the key.
#[derive(Clone, Debug)]
pub struct Stream {
    s: [u64; 4],
}

impl Stream {
    pub fn new(seed: [u8; 32]) -> Stream {
        let mut s = [0u64; 4];
        for (i, chunk) in seed.chunks(8).enumerate() {
            s[i] = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
        }
        if s == [0; 4] {
            s[0] = 1;
        }
        Stream { s }
    }

    pub fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform in `0..n` (`n > 0`), without modulo bias.
    pub fn below(&mut self, n: u64) -> u64 {
        debug_assert!(n > 0);
        let zone = u64::MAX - (u64::MAX % n);
        loop {
            let v = self.next_u64();
            if v < zone {
                return v % n;
            }
        }
    }

    /// A signed value in `-max..=max`.
    pub fn between(&mut self, max: i64) -> i64 {
        let span = (max.unsigned_abs()).saturating_mul(2).saturating_add(1);
        self.below(span) as i64 - max.abs()
    }

    /// One of `words` (not empty).
    pub fn pick<'a>(&mut self, words: &[&'a str]) -> &'a str {
        words[self.below(words.len() as u64) as usize]
    }

    /// A float in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_keys_are_refused_and_fingerprints_do_not_show_the_key() {
        assert!(Keyring::from_secret("short").is_err());
        let k = Keyring::from_secret("correct horse battery staple").unwrap();
        let fp = k.fingerprint();
        assert_eq!(fp.len(), 16);
        assert!(!format!("{k:?}").contains("horse"));
        assert_eq!(fp, Keyring::from_secret("correct horse battery staple").unwrap().fingerprint());
        assert_ne!(fp, Keyring::from_secret("correct horse battery stapler").unwrap().fingerprint());
    }

    #[test]
    fn scopes_give_unrelated_subkeys() {
        let k = Keyring::from_secret("0123456789abcdef0123").unwrap();
        assert_ne!(k.subkey("email"), k.subkey("email/public.users.email"));
        let a = k.prf("email").digest(&[b"x"]);
        assert_eq!(a, k.prf("email").digest(&[b"x"]));
        assert_ne!(a, k.prf("hash").digest(&[b"x"]));
        assert_ne!(k.prf("e").digest(&[b"ab", b"c"]), k.prf("e").digest(&[b"a", b"bc"]));
    }

    #[test]
    fn below_stays_in_range_and_random_keys_differ() {
        let mut s = Stream::new([7; 32]);
        for n in [1u64, 2, 3, 10, 1000, u64::MAX] {
            for _ in 0..100 {
                assert!(s.below(n) < n);
            }
        }
        for _ in 0..100 {
            assert!((-5..=5).contains(&s.between(5)));
        }
        assert_ne!(Keyring::random().fingerprint(), Keyring::random().fingerprint());
    }
}
