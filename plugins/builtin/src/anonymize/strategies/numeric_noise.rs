//! numeric-noise

use std::fmt::Write;

use super::prelude::*;
use crate::anonymize::key::Prf;

declare_strategy! {
    /// Multiplies a number by a keyed factor between `1 - percent/100` and `1 + percent/100`
    /// (uniform), so sums and averages stay close while no value is the real one. The result
    /// keeps the input's number of decimal places (`19.90` gives e.g. `21.37`, `42` an integer),
    /// computed in exact decimal arithmetic, not through floating point, for values up to about
    /// 21 digits; longer ones and exponent forms (`1.5e+20`, from `real` and `double precision`)
    /// go through a 64-bit float. On integer columns the result is kept in the type's range
    /// (`smallint`: ±32767). `NaN`, `Infinity` and `-Infinity` are kept. Two values may come
    /// out equal: `not-guaranteed`.
    ///
    /// ```kdl
    /// column "salary" "numeric-noise" percent=5
    /// ```
    pub struct NumericNoise {
        name: "numeric-noise",
        summary: "number multiplied by a keyed factor within ±percent, decimal places kept",
        accepts: &[TypeClass::Integer, TypeClass::Numeric],
        deterministic: true,
        uniqueness: NotGuaranteed,
        params: [("percent", Float, Some("10"), "the largest change, in percent of the value (more than 0, at most 100)")],
    }
}

struct Noise {
    prf: Prf,
    percent: f64,
    /// The percentage in millionths of a percent, for exact arithmetic.
    percent_micro: i128,
    int_max: Option<i64>,
}

/// The factor's grid: `u = k / GRID` with `k` in `-GRID..=GRID`.
const GRID: i64 = 1_000_000_000;
/// `GRID` × 100 (percent) × 10⁶ (micro-percent).
const DENOMINATOR: i128 = GRID as i128 * 100 * 1_000_000;

/// A plain decimal (`-12.340`): its digits as an integer, its number of decimal places, or
/// `None` for anything else (exponents, or too many digits).
fn parse_decimal(s: &str) -> Option<(i128, usize)> {
    let (negative, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let mut m: i128 = 0;
    for b in int.bytes().chain(frac.bytes()) {
        if !b.is_ascii_digit() {
            return None;
        }
        m = m.checked_mul(10)?.checked_add(i128::from(b - b'0'))?;
    }
    Some((if negative { -m } else { m }, frac.len()))
}

/// `n / d` rounded half away from zero (`d > 0`).
fn div_round(n: i128, d: i128) -> i128 {
    let (q, r) = (n / d, n % d);
    if 2 * r.abs() >= d { q + n.signum() } else { q }
}

/// Write `m / 10^scale` with `scale` decimal places.
fn write_scaled(m: i128, scale: usize, out: &mut String) {
    let digits = m.unsigned_abs().to_string();
    if m < 0 {
        out.push('-');
    }
    if digits.len() <= scale {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', scale - digits.len()));
        out.push_str(&digits);
    } else {
        let (int, frac) = digits.split_at(digits.len() - scale);
        out.push_str(int);
        if scale > 0 {
            out.push('.');
            out.push_str(frac);
        }
    }
}

impl Noise {
    fn exact(&self, m: i128, k: i64) -> Option<i128> {
        let delta = m.checked_mul(i128::from(k))?.checked_mul(self.percent_micro)?;
        let r = m.checked_add(div_round(delta, DENOMINATOR))?;
        Some(match self.int_max {
            Some(max) => r.clamp(-i128::from(max), i128::from(max)),
            None => r,
        })
    }

    fn float(&self, input: &str, k: i64, out: &mut String) -> Result<(), String> {
        let v: f64 = input.parse().map_err(|_| "not a number".to_string())?;
        let mut r = v * (1.0 + k as f64 / GRID as f64 * self.percent / 100.0);
        if let Some(max) = self.int_max {
            r = r.clamp(-(max as f64), max as f64);
        }
        if input.contains(['e', 'E']) {
            write!(out, "{r:e}")
        } else {
            let scale = input.split_once('.').map_or(0, |(_, f)| f.len());
            write!(out, "{r:.scale$}")
        }
        .expect("writing to a String");
        Ok(())
    }
}

impl Masker for Noise {
    fn mask(&self, input: &str, _: &dyn Row, out: &mut String) -> Result<Out, String> {
        if matches!(input, "NaN" | "Infinity" | "-Infinity") {
            out.push_str(input);
            return Ok(Out::Value);
        }
        let k = self.prf.stream(input.as_bytes()).between(GRID);
        match parse_decimal(input).and_then(|(m, scale)| Some((self.exact(m, k)?, scale))) {
            Some((r, scale)) => write_scaled(r, scale, out),
            None => self.float(input, k, out)?,
        }
        Ok(Out::Value)
    }
}

impl Strategy for NumericNoise {
    fn build(&self, params: &Params, cx: &BuildCx<'_>) -> Result<Box<dyn Masker>, String> {
        let percent = params.float("percent");
        if !(percent > 0.0 && percent <= 100.0) {
            return Err(format!("`percent` is more than 0 and at most 100, not {percent}"));
        }
        Ok(Box::new(Noise {
            prf: cx.prf(),
            percent,
            percent_micro: (percent * 1e6).round() as i128,
            int_max: cx.column.int_max,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric() -> ColumnType {
        ColumnType { class: TypeClass::Numeric, ..ColumnType::text() }
    }

    fn smallint() -> ColumnType {
        ColumnType { class: TypeClass::Integer, int_max: Some(32767), ..ColumnType::text() }
    }

    #[test]
    fn values_move_within_the_percentage_and_keep_their_scale() {
        let m = masker_with(&NumericNoise, &[("percent", "10")], numeric()).unwrap();
        let mut moved = 0;
        for i in 1..2000 {
            let input = format!("{}.{:02}", i * 3, i % 100);
            let out = masks(&*m, &input).unwrap();
            let (a, b): (f64, f64) = (input.parse().unwrap(), out.parse().unwrap());
            assert!((b - a).abs() <= a * 0.1 + 0.005 + 1e-9, "{input} -> {out}");
            assert_eq!(out.split_once('.').unwrap().1.len(), 2, "{out}");
            moved += usize::from(out != input);
            assert_eq!(masks(&*m, &input).unwrap(), out);
        }
        assert!(moved > 1900);
        let neg = masks(&*m, "-1000").unwrap();
        let n: i64 = neg.parse().unwrap();
        assert!((-1100..=-900).contains(&n), "{neg}");
        assert_eq!(masks(&*m, "0.000").unwrap(), "0.000");
        assert_eq!(masks(&*m, "-0.001").unwrap().len(), "-0.001".len());
        for kept in ["NaN", "Infinity", "-Infinity"] {
            assert_eq!(masks(&*m, kept).unwrap(), kept);
        }
        let mut out = String::new();
        assert!(m.mask("12abc", &crate::anonymize::strategy::NoRow, &mut out).is_err());
    }

    #[test]
    fn exponents_and_long_numbers_go_through_floats() {
        let m = masker_with(&NumericNoise, &[], numeric()).unwrap();
        let out = masks(&*m, "1e+20").unwrap();
        let v: f64 = out.parse().unwrap();
        assert!((0.9e20..=1.1e20).contains(&v) && out.contains('e'), "{out}");
        let long = format!("{}.5", "9".repeat(45));
        let out = masks(&*m, &long).unwrap();
        assert!(out.ends_with(|c: char| c.is_ascii_digit()) && out.split_once('.').unwrap().1.len() == 1, "{out}");
        let v: f64 = out.parse().unwrap();
        assert!((0.9e45..=1.1e45).contains(&v), "{out}");
        // Exact arithmetic: 20 significant digits survive.
        let out = masks(&*m, "12345678901234567.891").unwrap();
        assert_eq!(out.split_once('.').unwrap().1.len(), 3);
    }

    #[test]
    fn integers_stay_integers_within_the_type() {
        let m = masker_with(&NumericNoise, &[("percent", "100")], smallint()).unwrap();
        let mut clamped = 0;
        for i in 0..500 {
            let out = masks(&*m, &format!("{}", 32000 - i)).unwrap();
            let v: i64 = out.parse().unwrap_or_else(|_| panic!("{out} is an integer"));
            assert!((0..=32767).contains(&v), "{out}");
            clamped += usize::from(v == 32767);
            let neg: i64 = masks(&*m, &format!("-{}", 32000 - i)).unwrap().parse().unwrap();
            assert!((-32767..=0).contains(&neg));
        }
        assert!(clamped > 100);
    }

    #[test]
    fn percentages_out_of_range_are_refused() {
        for bad in ["0", "-5", "100.5", "NaN"] {
            assert!(masker_with(&NumericNoise, &[("percent", bad)], numeric()).is_err(), "{bad}");
        }
        assert!(masker_with(&NumericNoise, &[("percent", "0.5")], smallint()).is_ok());
    }
}
