//! Dates and the formatted values Dataverse sends as
//! `@OData.Community.Display.V1.FormattedValue` (en-US, UTC user time zone).

/// Days since 1970-01-01 of a proleptic Gregorian date.
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    // Counting years from March puts the leap day at the end of the year.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let m = i64::from(month);
    let day_of_year = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The (year, month, day) of a day count since 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `2024-03-14T10:00:00Z` for a Unix time.
pub fn iso_from_unix(seconds: i64) -> String {
    let (year, month, day) = civil_from_days(seconds.div_euclid(86_400));
    let rest = seconds.rem_euclid(86_400);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// Reads `2024-03-14`, `2024-03-14T10:00:00Z`, `2024-03-14T10:00:00.000Z`,
/// `2024-03-14 10:00:00` or `2024-03-14T10:00` as UTC Unix seconds.
pub fn parse_datetime(text: &str) -> Option<i64> {
    let text = text.trim();
    let (date, time) = match text.find(['T', ' ']) {
        Some(at) => (&text[..at], Some(&text[at + 1..])),
        None => (text, None),
    };
    let mut parts = date.split('-');
    let year: i64 = parts.next()?.parse().ok()?;
    let month: u32 = parts.next()?.parse().ok()?;
    let day: u32 = parts.next()?.parse().ok()?;
    if parts.next().is_some()
        || !(1..=9999).contains(&year)
        || !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
    {
        return None;
    }
    let mut seconds = days_from_civil(year, month, day) * 86_400;
    if let Some(time) = time {
        let time = time.trim_end_matches('Z');
        let time = time.split('.').next()?;
        let mut fields = time.split(':');
        let hours: i64 = fields.next()?.parse().ok()?;
        let minutes: i64 = fields.next().map(str::parse).transpose().ok()?.unwrap_or(0);
        let secs: i64 = fields.next().map(str::parse).transpose().ok()?.unwrap_or(0);
        if fields.next().is_some() || hours > 23 || minutes > 59 || secs > 59 {
            return None;
        }
        seconds += hours * 3600 + minutes * 60 + secs;
    }
    Some(seconds)
}

/// `3/14/2024 10:00 AM`, as the documented examples show dates.
pub fn format_datetime(iso: &str) -> Option<String> {
    let seconds = parse_datetime(iso)?;
    let (year, month, day) = civil_from_days(seconds.div_euclid(86_400));
    let rest = seconds.rem_euclid(86_400);
    let (hour, minute) = (rest / 3600, rest % 3600 / 60);
    let (hour12, half) = match hour {
        0 => (12, "AM"),
        1..=11 => (hour, "AM"),
        12 => (12, "PM"),
        _ => (hour - 12, "PM"),
    };
    Some(format!("{month}/{day}/{year} {hour12}:{minute:02} {half}"))
}

/// Groups the integer digits by thousands: `1234567` → `1,234,567`.
fn group_thousands(digits: &str) -> String {
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `1,234.50` with `decimals` places.
pub fn format_decimal(value: f64, decimals: usize) -> String {
    let text = format!("{:.*}", decimals, value.abs());
    let (int_part, frac_part) = match text.split_once('.') {
        Some((i, f)) => (i.to_string(), Some(f.to_string())),
        None => (text, None),
    };
    let sign = if value < 0.0 && text_is_nonzero(&int_part, frac_part.as_deref()) {
        "-"
    } else {
        ""
    };
    match frac_part {
        Some(frac) => format!("{sign}{}.{frac}", group_thousands(&int_part)),
        None => format!("{sign}{}", group_thousands(&int_part)),
    }
}

fn text_is_nonzero(int_part: &str, frac: Option<&str>) -> bool {
    int_part
        .chars()
        .chain(frac.unwrap_or("").chars())
        .any(|c| c != '0')
}

/// `$1,234.50`, `€1,234.50`, `-$5.00`.
pub fn format_money(value: f64, symbol: &str) -> String {
    let amount = format_decimal(value.abs(), 2);
    if value < 0.0 && amount != "0.00" {
        format!("-{symbol}{amount}")
    } else {
        format!("{symbol}{amount}")
    }
}

/// `1,234` for whole numbers.
pub fn format_integer(value: i64) -> String {
    let grouped = group_thousands(&value.unsigned_abs().to_string());
    if value < 0 {
        format!("-{grouped}")
    } else {
        grouped
    }
}

/// Rounds to `places` decimals, as Dataverse stores money (2) amounts.
pub fn round_to(value: f64, places: i32) -> f64 {
    let factor = 10f64.powi(places);
    (value * factor).round() / factor
}

/// Percent-encodes every byte but ASCII letters, digits and `-_.` with lower-case
/// hex, the way Dataverse encodes paging cookies.
pub fn cookie_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02x}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(civil_from_days(days_from_civil(2024, 2, 29)), (2024, 2, 29));
        let seconds = parse_datetime("2024-03-14T10:00:00Z").unwrap();
        assert_eq!(iso_from_unix(seconds), "2024-03-14T10:00:00Z");
        assert_eq!(parse_datetime("2024-03-14"), Some(seconds - 36_000));
        assert_eq!(parse_datetime("2024-03-14 10:00:00"), Some(seconds));
        assert_eq!(parse_datetime("2024-13-01"), None);
        assert_eq!(parse_datetime("yesterday"), None);
        // Absurd years from requests must not overflow the day arithmetic.
        assert_eq!(parse_datetime("99999999999999999-01-01"), None);
    }

    #[test]
    fn formatted_values_look_like_dataverse() {
        assert_eq!(format_money(1234.5, "$"), "$1,234.50");
        assert_eq!(format_money(1234.5, "€"), "€1,234.50");
        assert_eq!(format_money(-5.0, "$"), "-$5.00");
        assert_eq!(format_integer(1_234_567), "1,234,567");
        assert_eq!(format_integer(-12), "-12");
        assert_eq!(format_decimal(0.925, 2), "0.93");
        assert_eq!(
            format_datetime("2023-08-13T22:30:08Z").as_deref(),
            Some("8/13/2023 10:30 PM")
        );
        assert_eq!(
            format_datetime("2023-04-07T00:05:00Z").as_deref(),
            Some("4/7/2023 12:05 AM")
        );
    }

    #[test]
    fn cookie_encoding_uses_lower_case_hex() {
        assert_eq!(
            cookie_encode("<cookie page=\"1\">"),
            "%3ccookie%20page%3d%221%22%3e"
        );
        assert_eq!(cookie_encode("%3c"), "%253c");
    }
}
