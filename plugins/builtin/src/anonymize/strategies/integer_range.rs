//! integer-range

use super::prelude::*;
use crate::anonymize::key::Prf;

declare_strategy! {
    /// Replaces the value with a keyed integer between `min` and `max` (both included), drawn
    /// uniformly: the same value gives the same integer with the same key, whatever it was
    /// (a number, or text in a text column). Nothing of the original survives, not even its
    /// size; many values share an output (`lossy`). On an integer column the range must fit the
    /// type (`smallint`: −32768 to 32767).
    ///
    /// ```kdl
    /// column "age" "integer-range" min=18 max=90
    /// ```
    pub struct IntegerRange {
        name: "integer-range",
        summary: "keyed integer between min and max",
        accepts: &[TypeClass::Integer, TypeClass::Numeric, TypeClass::Text],
        deterministic: true,
        uniqueness: Lossy,
        params: [
            ("min", Int, None, "the smallest output"),
            ("max", Int, None, "the largest output (at least `min`)"),
        ],
    }
}

struct Range {
    prf: Prf,
    min: i64,
    /// `max - min + 1`; `None`: all of `i64`, 2⁶⁴ values.
    span: Option<u64>,
}

impl Masker for Range {
    fn mask(&self, input: &str, _: &dyn Row, out: &mut String) -> Result<Out, String> {
        let mut s = self.prf.stream(input.as_bytes());
        let offset = match self.span {
            Some(n) => s.below(n),
            None => s.next_u64(),
        };
        let value = self.min.wrapping_add_unsigned(offset);
        use std::fmt::Write;
        write!(out, "{value}").expect("writing to a String");
        Ok(Out::Value)
    }
}

impl Strategy for IntegerRange {
    fn build(&self, params: &Params, cx: &BuildCx<'_>) -> Result<Box<dyn Masker>, String> {
        let (min, max) = (params.int("min"), params.int("max"));
        if min > max {
            return Err(format!("`min` ({min}) is more than `max` ({max})"));
        }
        if let Some(limit) = cx.column.int_max {
            if max > limit {
                return Err(format!("`max` ({max}) does not fit {} (at most {limit})", cx.column.display));
            }
            if min < -limit - 1 {
                return Err(format!("`min` ({min}) does not fit {} (at least {})", cx.column.display, -limit - 1));
            }
        }
        let span = u64::try_from(i128::from(max) - i128::from(min) + 1).ok();
        Ok(Box::new(Range { prf: cx.prf(), min, span }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_are_in_range_keyed_and_spread() {
        let m = masker(&IntegerRange, &[("min", "18"), ("max", "90")]);
        let mut seen = std::collections::HashSet::new();
        for i in 0..2000 {
            let out: i64 = masks(&*m, &format!("person {i}")).unwrap().parse().unwrap();
            assert!((18..=90).contains(&out), "{out}");
            seen.insert(out);
        }
        assert_eq!(seen.len(), 73, "every value of the range appears");
        assert_eq!(masks(&*m, "42"), masks(&*m, "42"));
        assert_eq!(masks(&*masker(&IntegerRange, &[("min", "-5"), ("max", "-5")]), "x").unwrap(), "-5");
        let (lo, hi) = (i64::MIN.to_string(), i64::MAX.to_string());
        let wide = masker(&IntegerRange, &[("min", lo.as_str()), ("max", hi.as_str())]);
        let outs: std::collections::HashSet<_> = (0..100).map(|i| masks(&*wide, &i.to_string()).unwrap()).collect();
        assert_eq!(outs.len(), 100);
    }

    #[test]
    fn ranges_that_do_not_fit_are_refused() {
        assert!(masker_with(&IntegerRange, &[("min", "10"), ("max", "9")], ColumnType::text()).is_err());
        assert!(masker_with(&IntegerRange, &[("min", "1")], ColumnType::text()).is_err(), "max is required");
        let smallint = ColumnType { class: TypeClass::Integer, int_max: Some(32767), ..ColumnType::text() };
        assert!(masker_with(&IntegerRange, &[("min", "0"), ("max", "40000")], smallint.clone()).is_err());
        assert!(masker_with(&IntegerRange, &[("min", "-40000"), ("max", "0")], smallint.clone()).is_err());
        let m = masker_with(&IntegerRange, &[("min", "-32768"), ("max", "32767")], smallint).unwrap();
        let v: i64 = masks(&*m, "1").unwrap().parse().unwrap();
        assert!((-32768..=32767).contains(&v));
    }
}
