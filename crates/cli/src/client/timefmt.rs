//! Times on the command line: ISO-8601 date-times (`--to-datetime`, `--from-timestamp`) and
//! ISO-8601 durations (`--by-duration`), both to milliseconds since the Unix epoch, without a
//! date library.
//!
//! Accepted date-times: `YYYY-MM-DDTHH:MM[:SS[.fff]][Z|±HH:MM|±HHMM]` (a space may stand for `T`;
//! without a zone the time is UTC), or a plain integer of milliseconds since the epoch.
//! Accepted durations: `P[nD][T[nH][nM][n[.fff]S]]` as Java's `Duration.parse` spells them
//! (`PT15M`, `P1DT2H`, `PT0.5S`), also with a leading `-`.

use anyhow::{bail, Context, Result};

/// Milliseconds since the epoch, now.
pub fn now_ms() -> i64 {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Days from 1970-01-01 to the civil date (proleptic Gregorian).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn num(s: &str, what: &str, input: &str) -> Result<i64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        bail!("bad {what} in {input:?}; write YYYY-MM-DDTHH:MM:SS[.fff][Z|+HH:MM], e.g. 2025-01-31T13:45:00Z");
    }
    s.parse().with_context(|| format!("bad {what} in {input:?}"))
}

/// Parses an ISO-8601 date-time (or epoch milliseconds) to epoch milliseconds.
pub fn parse_datetime(input: &str) -> Result<i64> {
    let s = input.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse().with_context(|| format!("timestamp {s:?} out of range"));
    }
    let (date, time) = s
        .split_once(['T', 't', ' '])
        .with_context(|| format!("date-time {input:?} has no time part; write YYYY-MM-DDTHH:MM:SS[.fff][Z|+HH:MM]"))?;
    let mut dp = date.splitn(3, '-');
    let (y, m, d) = (dp.next().unwrap_or(""), dp.next().unwrap_or(""), dp.next().unwrap_or(""));
    let (y, m, d) = (num(y, "year", input)?, num(m, "month", input)?, num(d, "day", input)?);
    // Split the zone off the time.
    let (clock, offset_min) = if let Some(c) = time.strip_suffix(['Z', 'z']) {
        (c, 0)
    } else if let Some(i) = time.rfind(['+', '-']) {
        let (c, z) = time.split_at(i);
        let sign = if z.starts_with('-') { -1 } else { 1 };
        let z = z[1..].replace(':', "");
        if z.len() != 4 {
            bail!("bad zone offset in {input:?}; write +HH:MM");
        }
        (c, sign * (num(&z[..2], "zone hours", input)? * 60 + num(&z[2..], "zone minutes", input)?))
    } else {
        (time, 0)
    };
    let mut tp = clock.splitn(3, ':');
    let h = num(tp.next().unwrap_or(""), "hour", input)?;
    let min = num(tp.next().unwrap_or(""), "minute", input)?;
    let (sec, ms) = match tp.next() {
        None => (0, 0),
        Some(sec) => match sec.split_once('.') {
            None => (num(sec, "second", input)?, 0),
            Some((whole, frac)) => {
                let frac3: String = frac.chars().chain("000".chars()).take(3).collect();
                num(frac, "fraction", input)?;
                (num(whole, "second", input)?, num(&frac3, "fraction", input)?)
            }
        },
    };
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || h > 23 || min > 59 || sec > 60 {
        bail!("date-time {input:?} out of range");
    }
    let days = days_from_civil(y, m, d);
    Ok(((days * 24 + h) * 60 + min - offset_min) * 60_000 + sec * 1000 + ms)
}

/// Parses an ISO-8601 duration (`PnDTnHnMnS`) to milliseconds.
pub fn parse_duration(input: &str) -> Result<i64> {
    let bad = || format!("bad duration {input:?}; write PnDTnHnMnS as in ISO-8601, e.g. PT15M, P1DT2H, PT30S");
    let s = input.trim();
    let (sign, s) = match s.strip_prefix('-') {
        Some(rest) => (-1, rest),
        None => (1, s.strip_prefix('+').unwrap_or(s)),
    };
    let s = s.strip_prefix(['P', 'p']).with_context(bad)?;
    let (days, time) = match s.split_once(['T', 't']) {
        Some((d, t)) => (d, Some(t)),
        None => (s, None),
    };
    let mut total: f64 = 0.0;
    let mut any = false;
    if !days.is_empty() {
        let n = days.strip_suffix(['D', 'd']).with_context(bad)?;
        total += n.parse::<f64>().ok().filter(|v| v.is_finite() && *v >= 0.0).with_context(bad)? * 86_400_000.0;
        any = true;
    }
    if let Some(mut t) = time {
        if t.is_empty() {
            bail!(bad());
        }
        for (unit, ms) in [(['H', 'h'], 3_600_000.0), (['M', 'm'], 60_000.0), (['S', 's'], 1000.0)] {
            if let Some(i) = t.find(unit) {
                let v = t[..i].parse::<f64>().ok().filter(|v| v.is_finite() && *v >= 0.0).with_context(bad)?;
                total += v * ms;
                t = &t[i + 1..];
                any = true;
            }
        }
        if !t.is_empty() {
            bail!(bad());
        }
    }
    if !any {
        bail!(bad());
    }
    Ok(sign * total.round() as i64)
}

/// Epoch milliseconds as `YYYY-MM-DDTHH:MM:SS.fffZ`.
pub fn format_ms(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    // civil_from_days
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes_parse_to_epoch_ms() {
        assert_eq!(parse_datetime("1970-01-01T00:00:00Z").unwrap(), 0);
        assert_eq!(parse_datetime("2001-09-09T01:46:40Z").unwrap(), 1_000_000_000_000);
        assert_eq!(parse_datetime("2001-09-09T01:46:40.123").unwrap(), 1_000_000_000_123);
        assert_eq!(parse_datetime("2001-09-09T03:46:40+02:00").unwrap(), 1_000_000_000_000);
        assert_eq!(parse_datetime("2001-09-08T23:46:40-0200").unwrap(), 1_000_000_000_000);
        assert_eq!(parse_datetime("2001-09-09 01:46").unwrap(), 999_999_960_000);
        assert_eq!(parse_datetime("2024-02-29T12:00:00Z").unwrap(), 1_709_208_000_000);
        assert_eq!(parse_datetime("1700000000000").unwrap(), 1_700_000_000_000);
        for bad in ["2024-13-01T00:00:00Z", "2024-01-01", "yesterday", "2024-01-01T25:00", "2024-01-01T10:00+5"] {
            assert!(parse_datetime(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn formatting_inverts_parsing() {
        for ms in [0, 1_000_000_000_123, 1_709_208_000_000, 4_102_444_799_999] {
            assert_eq!(parse_datetime(&format_ms(ms)).unwrap(), ms, "{}", format_ms(ms));
        }
        assert_eq!(format_ms(1_000_000_000_000), "2001-09-09T01:46:40.000Z");
    }

    #[test]
    fn durations_parse_to_ms() {
        assert_eq!(parse_duration("PT15M").unwrap(), 900_000);
        assert_eq!(parse_duration("P1DT2H").unwrap(), 93_600_000);
        assert_eq!(parse_duration("P2D").unwrap(), 172_800_000);
        assert_eq!(parse_duration("PT0.5S").unwrap(), 500);
        assert_eq!(parse_duration("PT1H30M10S").unwrap(), 5_410_000);
        assert_eq!(parse_duration("-PT1M").unwrap(), -60_000);
        for bad in ["15m", "P", "PT", "P1H", "PT5X", "PTM"] {
            assert!(parse_duration(bad).is_err(), "{bad} should be refused");
        }
    }
}
