//! Keyed bijections: what `preserved` strategies are made of. Distinct inputs stay distinct
//! because each of these is a permutation with an inverse, not a hash that rarely collides.
//!
//! Both are Feistel networks whose round function is AES-128 (AES-NI where the CPU has it),
//! keyed by a subkey the profile's key derives for the strategy's scope — the construction of
//! FF1 and FF3-1 (NIST SP 800-38G):
//! - [`Prp::bytes`] permutes byte strings of a given length (alternating halves, 4 rounds: a
//!   strong pseudo-random permutation by Luby–Rackoff); the round function is a length-prefixed
//!   CBC-MAC of the other half, stretched in counter mode to the half it masks;
//! - [`Prp::below`] permutes `0..n` for any `n` up to 2⁶⁴ (a balanced network on the next even
//!   number of bits, 8 rounds as small domains need, and cycle walking back into `0..n`).
//!
//! FF1 itself needs arbitrary-precision arithmetic per round; these keep 64-bit arithmetic and
//! AES blocks, which brings `email` from 613 ns (HMAC-SHA-256 rounds, measured) to the figures in
//! docs/performance.md. Every permutation here is checked against its inverse by the tests.

use aes::Aes128;
use aes::cipher::{BlockEncrypt, KeyInit, generic_array::GenericArray};

use super::key::Prf;

/// A keyed permutation.
#[derive(Clone)]
pub struct Prp {
    aes: Aes128,
    /// The encrypted first block of each round's CBC-MAC for strings of up to
    /// [`CACHED_LEN`] bytes (it depends only on the round and the lengths): one AES block
    /// less per round.
    headers: std::sync::Arc<Vec<[u8; 16]>>,
}

const BYTE_ROUNDS: u8 = 4;
const SMALL_ROUNDS: u8 = 8;
const CACHED_LEN: usize = 128;

impl Prp {
    pub fn new(prf: Prf) -> Prp {
        let key = prf.digest(&[b"prp/aes-128"]);
        let mut p = Prp { aes: Aes128::new(GenericArray::from_slice(&key[..16])), headers: Default::default() };
        let mut headers = Vec::with_capacity(CACHED_LEN * BYTE_ROUNDS as usize);
        for len in 0..CACHED_LEN {
            let half = len / 2;
            for round in 0..BYTE_ROUNDS {
                let (source, target) = if round % 2 == 0 { (len - half, half) } else { (half, len - half) };
                headers.push(p.header(round, source, target));
            }
        }
        p.headers = std::sync::Arc::new(headers);
        p
    }

    fn header(&self, round: u8, source: usize, target: usize) -> [u8; 16] {
        let mut t = [0u8; 16];
        t[0] = round;
        t[1] = b'B';
        t[2..6].copy_from_slice(&(source as u32).to_le_bytes());
        t[6..10].copy_from_slice(&(target as u32).to_le_bytes());
        self.encrypt(&mut t);
        t
    }

    fn encrypt(&self, block: &mut [u8; 16]) {
        self.aes.encrypt_block(GenericArray::from_mut_slice(block));
    }

    /// Permute `data` in place among byte strings of its length (at least 2 bytes; shorter
    /// ones are left as they are — callers pad).
    pub fn bytes(&self, data: &mut [u8]) {
        if data.len() < 2 {
            return;
        }
        let half = data.len() / 2;
        for round in 0..BYTE_ROUNDS {
            let (l, r) = data.split_at_mut(half);
            if round % 2 == 0 { self.xor_round(round, r, l) } else { self.xor_round(round, l, r) }
        }
    }

    /// The inverse of [`Prp::bytes`].
    #[cfg(test)]
    pub fn bytes_inverse(&self, data: &mut [u8]) {
        if data.len() < 2 {
            return;
        }
        let half = data.len() / 2;
        for round in (0..BYTE_ROUNDS).rev() {
            let (l, r) = data.split_at_mut(half);
            if round % 2 == 0 { self.xor_round(round, r, l) } else { self.xor_round(round, l, r) }
        }
    }

    /// `target ^= F(round, source)`: F is a CBC-MAC of `source` whose first block holds the
    /// round and both lengths (so messages of different lengths never meet), stretched to
    /// `target`'s length in counter mode.
    fn xor_round(&self, round: u8, source: &[u8], target: &mut [u8]) {
        let len = source.len() + target.len();
        let mut t = match self.headers.get(len * BYTE_ROUNDS as usize + round as usize) {
            Some(h) => *h,
            None => self.header(round, source.len(), target.len()),
        };
        for chunk in source.chunks(16) {
            for (a, b) in t.iter_mut().zip(chunk) {
                *a ^= b;
            }
            self.encrypt(&mut t);
        }
        for (j, chunk) in target.chunks_mut(16).enumerate() {
            let mut k = t;
            for (a, b) in k[12..].iter_mut().zip((j as u32 + 1).to_le_bytes()) {
                *a ^= b;
            }
            self.encrypt(&mut k);
            for (a, b) in chunk.iter_mut().zip(k) {
                *a ^= b;
            }
        }
    }

    /// Permute `0..n`: the image of `x` (`x < n`). `tweak` selects an independent permutation
    /// (e.g. one per chunk of a long digit string).
    pub fn below(&self, n: u64, x: u64, tweak: u64) -> u64 {
        debug_assert!(x < n || n == 0);
        if n <= 1 {
            return x;
        }
        let bits = (64 - (n - 1).leading_zeros()).max(2);
        let bits = bits + (bits % 2);
        let mut y = x;
        loop {
            y = self.feistel(bits, y, tweak, false);
            if y < n {
                return y;
            }
        }
    }

    /// Permute `0..2^bits` (`1 <= bits <= 64`): the image of `x`, which must be below `2^bits`.
    pub fn bits(&self, bits: u32, x: u64, tweak: u64) -> u64 {
        debug_assert!((1..=64).contains(&bits));
        match bits {
            64 => self.feistel(64, x, tweak, false),
            b => self.below(1u64 << b, x, tweak),
        }
    }

    /// Permute digit strings of any length in place (ASCII digits only): chunks of up to 18
    /// digits, each permuted among numbers of its width with its own tweak. A product of
    /// bijections, so a bijection on strings of that length.
    pub fn digits(&self, digits: &mut [u8], tweak: u64) {
        for (i, chunk) in digits.chunks_mut(18).enumerate() {
            let n = 10u64.pow(chunk.len() as u32);
            let x = chunk.iter().fold(0u64, |acc, d| acc * 10 + u64::from(d - b'0'));
            let mut y = self.below(n, x, tweak.wrapping_mul(1_000_003).wrapping_add(i as u64));
            for d in chunk.iter_mut().rev() {
                *d = b'0' + (y % 10) as u8;
                y /= 10;
            }
        }
    }

    /// The inverse of [`Prp::below`].
    #[cfg(test)]
    pub fn below_inverse(&self, n: u64, y: u64, tweak: u64) -> u64 {
        if n <= 1 {
            return y;
        }
        let bits = (64 - (n - 1).leading_zeros()).max(2);
        let bits = bits + (bits % 2);
        let mut x = y;
        loop {
            x = self.feistel(bits, x, tweak, true);
            if x < n {
                return x;
            }
        }
    }

    fn feistel(&self, bits: u32, x: u64, tweak: u64, inverse: bool) -> u64 {
        let h = bits / 2;
        let mask = if h == 64 { u64::MAX } else { (1u64 << h) - 1 };
        let (mut l, mut r) = ((x >> h) & mask, x & mask);
        // Two AES blocks per round: the round, width and tweak, then the half.
        let f = |round: u8, v: u64| -> u64 {
            let mut t = [0u8; 16];
            t[0] = round;
            t[1] = bits as u8;
            t[2] = b'N';
            t[8..].copy_from_slice(&tweak.to_le_bytes());
            self.encrypt(&mut t);
            for (a, b) in t[..8].iter_mut().zip(v.to_le_bytes()) {
                *a ^= b;
            }
            self.encrypt(&mut t);
            u64::from_le_bytes(t[..8].try_into().expect("8 bytes")) & mask
        };
        if inverse {
            for round in (0..SMALL_ROUNDS).rev() {
                let prev_r = l;
                l = r ^ f(round, prev_r);
                r = prev_r;
            }
        } else {
            for round in 0..SMALL_ROUNDS {
                let next_l = r;
                r = l ^ f(round, r);
                l = next_l;
            }
        }
        (l << h) | r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::anonymize::key::Keyring;

    fn prp() -> Prp {
        Prp::new(Keyring::from_secret("a test key, long enough").unwrap().prf("prp"))
    }

    #[test]
    fn below_is_a_permutation_of_small_domains() {
        let p = prp();
        for n in [2u64, 3, 7, 10, 100, 1000, 4097] {
            let mut seen = vec![false; n as usize];
            for x in 0..n {
                let y = p.below(n, x, 1);
                assert!(y < n);
                assert!(!seen[y as usize], "{n}: {y} twice");
                seen[y as usize] = true;
                assert_eq!(p.below_inverse(n, y, 1), x);
            }
        }
    }

    #[test]
    fn below_inverts_on_large_domains_and_tweaks_differ() {
        let p = prp();
        for n in [10u64.pow(12), 10u64.pow(18), u64::MAX] {
            for x in [0, 1, 12345, n / 2, n - 1] {
                let y = p.below(n, x, 0);
                assert!(y < n);
                assert_eq!(p.below_inverse(n, y, 0), x);
            }
        }
        assert_ne!(p.below(10u64.pow(9), 5, 0), p.below(10u64.pow(9), 5, 1));
    }

    #[test]
    fn bits_and_digits_are_permutations() {
        let p = prp();
        let mut seen = std::collections::HashSet::new();
        for x in 0..1024u64 {
            let y = p.bits(10, x, 3);
            assert!(y < 1024 && seen.insert(y));
        }
        assert_ne!(p.bits(64, u64::MAX, 0), u64::MAX);
        let mut seen = std::collections::HashSet::new();
        for x in 0..10_000u32 {
            let mut d = format!("{x:04}").into_bytes();
            p.digits(&mut d, 0);
            assert!(d.iter().all(u8::is_ascii_digit) && seen.insert(d));
        }
        let mut long = b"12345678901234567890123".to_vec();
        p.digits(&mut long, 0);
        assert_eq!(long.len(), 23);
        assert_ne!(long, b"12345678901234567890123");
    }

    #[test]
    fn bytes_inverts_for_every_length() {
        let p = prp();
        for len in 2..100usize {
            let orig: Vec<u8> = (0..len).map(|i| (i * 37 % 251) as u8).collect();
            let mut v = orig.clone();
            p.bytes(&mut v);
            assert_ne!(v, orig);
            p.bytes_inverse(&mut v);
            assert_eq!(v, orig);
        }
    }
}
