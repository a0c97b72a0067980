//! date-shift

use super::prelude::*;
use crate::anonymize::key::Prf;

declare_strategy! {
    /// Moves a date by a keyed number of days between `-days` and `+days`, so dates stay
    /// plausible (a birth date stays about the same age, an order date stays in its season)
    /// without showing the real one. The shift comes from the value, so the same value always
    /// moves the same way with the same key, but two values rarely move alike: `not-guaranteed`.
    ///
    /// Values are ISO dates (`2024-02-29`) or timestamps starting with one (`2024-02-29
    /// 13:45:00.123+01`): only the date part changes, the time and time zone are kept. With
    /// `keep-year=#true` (or `keep-month=#true`) a shift that would leave the year (the month)
    /// stops at its first or last day. `infinity` and `-infinity` are kept; dates BC are an
    /// error, and a shift below year 1 stops at 0001-01-01. Leap years are handled: February 29
    /// appears only in leap years.
    ///
    /// ```kdl
    /// column "birth_date" "date-shift" days=180 keep-year=#true
    /// column "created_at" "date-shift"
    /// ```
    pub struct DateShift {
        name: "date-shift",
        summary: "date moved by a keyed number of days, time of day kept",
        accepts: &[TypeClass::Date, TypeClass::Timestamp, TypeClass::Text],
        deterministic: true,
        uniqueness: NotGuaranteed,
        params: [
            ("days", Int, Some("30"), "the largest shift, in days, either way (at least 1)"),
            ("keep-year", Bool, Some("false"), "never leave the year of the original date"),
            ("keep-month", Bool, Some("false"), "never leave the month of the original date"),
        ],
    }
}

struct Shift {
    prf: Prf,
    days: i64,
    keep_year: bool,
    keep_month: bool,
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day number (Howard Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if y % 4 == 0 && (y % 100 != 0 || y % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// The date at the start of `input` and the length of its text.
fn parse(input: &str) -> Option<(i64, u32, u32, usize)> {
    let b = input.as_bytes();
    let year_len = b.iter().take_while(|c| c.is_ascii_digit()).count();
    let num = |s: &[u8]| s.iter().try_fold(0i64, |acc, c| c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0')));
    if !(4..=7).contains(&year_len) || b.len() < year_len + 6 {
        return None;
    }
    let (date, rest) = b.split_at(year_len + 6);
    if date[year_len] != b'-' || date[year_len + 3] != b'-' || rest.first().is_some_and(u8::is_ascii_digit) {
        return None;
    }
    let y = num(&date[..year_len])?;
    let m = num(&date[year_len + 1..year_len + 3])? as u32;
    let d = num(&date[year_len + 4..])? as u32;
    ((1..=12).contains(&m) && (1..=days_in_month(y, m)).contains(&d) && y >= 1).then_some((y, m, d, date.len()))
}

impl Masker for Shift {
    fn mask(&self, input: &str, _: &dyn Row, out: &mut String) -> Result<Out, String> {
        if input == "infinity" || input == "-infinity" {
            out.push_str(input);
            return Ok(Out::Value);
        }
        if input.ends_with(" BC") {
            return Err("dates BC are not supported".into());
        }
        let (y, m, d, len) = parse(input).ok_or("not a date (YYYY-MM-DD)")?;
        let day = days_from_civil(y, m, d);
        let (lo, hi) = if self.keep_month {
            (days_from_civil(y, m, 1), days_from_civil(y, m, days_in_month(y, m)))
        } else if self.keep_year {
            (days_from_civil(y, 1, 1), days_from_civil(y, 12, 31))
        } else {
            (days_from_civil(1, 1, 1), i64::MAX)
        };
        let shifted = (day + self.prf.stream(input.as_bytes()).between(self.days)).clamp(lo, hi);
        let (y, m, d) = civil_from_days(shifted);
        use std::fmt::Write;
        write!(out, "{y:04}-{m:02}-{d:02}").expect("writing to a String");
        out.push_str(&input[len..]);
        Ok(Out::Value)
    }
}

impl Strategy for DateShift {
    fn build(&self, params: &Params, cx: &BuildCx<'_>) -> Result<Box<dyn Masker>, String> {
        let days = params.int("days");
        // An upper bound keeps every shifted date within PostgreSQL's range arithmetic.
        if !(1..=1_000_000).contains(&days) {
            return Err(format!("`days` is between 1 and 1000000, not {days}"));
        }
        Ok(Box::new(Shift {
            prf: cx.prf(),
            days,
            keep_year: params.bool("keep-year"),
            keep_month: params.bool("keep-month"),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> i64 {
        let (y, m, d, _) = parse(s).unwrap_or_else(|| panic!("{s} is not a date"));
        days_from_civil(y, m, d)
    }

    #[test]
    fn calendar_arithmetic_handles_leap_years() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1) - days_from_civil(2000, 2, 28), 2);
        assert_eq!(days_from_civil(1900, 3, 1) - days_from_civil(1900, 2, 28), 1);
        assert_eq!(civil_from_days(days_from_civil(2024, 3, 1) - 1), (2024, 2, 29));
        assert_eq!(civil_from_days(days_from_civil(2023, 3, 1) - 1), (2023, 2, 28));
        for z in (days_from_civil(1, 1, 1)..days_from_civil(2400, 12, 31)).step_by(13) {
            let (y, m, d) = civil_from_days(z);
            assert!(d <= days_in_month(y, m));
            assert_eq!(days_from_civil(y, m, d), z);
        }
        assert!(parse("2023-02-29").is_none());
        assert!(parse("2024-02-29").is_some());
        assert!(parse("2024-13-01").is_none());
        assert!(parse("2024-1-01").is_none());
        assert!(parse("20240-01-01").is_some());
    }

    #[test]
    fn shifts_are_bounded_and_keep_the_rest() {
        let m = masker(&DateShift, &[("days", "10")]);
        let mut moved = 0;
        for i in 0..2000 {
            let input = civil_from_days(days_from_civil(2024, 1, 1) + i);
            let input = format!("{:04}-{:02}-{:02}", input.0, input.1, input.2);
            let out = masks(&*m, &input).unwrap();
            assert!((day(&out) - day(&input)).abs() <= 10, "{input} -> {out}");
            moved += usize::from(out != input);
            assert_eq!(masks(&*m, &input).unwrap(), out);
        }
        assert!(moved > 1500);
        let out = masks(&*m, "2024-02-29 13:45:00.123456+01").unwrap();
        assert!(out.ends_with(" 13:45:00.123456+01") && out.len() == "2024-02-29 13:45:00.123456+01".len(), "{out}");
        assert!((day(&out) - day("2024-02-29")).abs() <= 10);
        assert!(parse(&masks(&*m, "2024-02-29T00:00:00Z").unwrap()).is_some());
        assert_eq!(masks(&*m, "infinity").unwrap(), "infinity");
        assert_eq!(masks(&*m, "-infinity").unwrap(), "-infinity");
        assert_eq!(masks(&*masker(&DateShift, &[("days", "1000")]), "0001-01-01").unwrap().len(), 10);
        for bad in ["2024-02-30", "0044-03-15 BC", "yesterday", "24-02-01", "2024-02-011", ""] {
            let mut out = String::new();
            assert!(m.mask(bad, &crate::anonymize::strategy::NoRow, &mut out).is_err(), "{bad}");
        }
    }

    #[test]
    fn keep_year_and_keep_month_clamp() {
        let year = masker(&DateShift, &[("days", "400"), ("keep-year", "true")]);
        let month = masker(&DateShift, &[("days", "400"), ("keep-month", "true")]);
        let mut clamped = 0;
        for i in 0..500 {
            let input = civil_from_days(days_from_civil(2023, 12, 1) + i % 90);
            let input = format!("{:04}-{:02}-{:02} 0{}:00:00", input.0, input.1, input.2, i / 90);
            let y = masks(&*year, &input).unwrap();
            assert_eq!(y[..4], input[..4], "{input} -> {y}");
            let mo = masks(&*month, &input).unwrap();
            assert_eq!(mo[..7], input[..7], "{input} -> {mo}");
            clamped += usize::from(matches!(&mo[8..10], "01" | "28" | "29" | "30" | "31"));
        }
        assert!(clamped > 250, "a shift up to 400 days mostly reaches a month's end");
    }

    #[test]
    fn days_below_one_are_refused() {
        assert!(masker_with(&DateShift, &[("days", "0")], ColumnType::text()).is_err());
        assert!(masker_with(&DateShift, &[("days", "-5")], ColumnType::text()).is_err());
        let column = ColumnType { class: TypeClass::Date, ..ColumnType::text() };
        assert!(masker_with(&DateShift, &[], column).is_ok());
    }
}
