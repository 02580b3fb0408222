//! Numbers as people read them, for every face and for values with units.

/// A number with thousands separators and at most two decimals.
pub fn format_number(n: f64) -> String {
    if n.fract() == 0.0 {
        group(&format!("{n:.0}"))
    } else {
        group(&format!("{n:.2}"))
    }
}

/// A number with thousands separators and exactly two decimals (amounts).
pub fn format_number_fixed(n: f64) -> String {
    group(&format!("{n:.2}"))
}

fn group(fixed: &str) -> String {
    let (sign, digits) = match fixed.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", fixed),
    };
    let (whole, fraction) = match digits.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (digits, None),
    };
    let mut grouped = String::new();
    for (i, ch) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(ch);
    }
    match fraction {
        Some(fraction) => format!("{sign}{grouped}.{fraction}"),
        None => format!("{sign}{grouped}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_grouped() {
        assert_eq!(format_number(1234567.891), "1,234,567.89");
        assert_eq!(format_number(-1000.0), "-1,000");
        assert_eq!(format_number(12.5), "12.50");
        assert_eq!(format_number(0.0), "0");
    }
}
