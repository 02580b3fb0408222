//! Building OData query strings safely from user input.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Everything but RFC 3986 unreserved characters is percent-encoded, so `+`, `&`,
/// `#` and `'` inside values reach Dataverse literally (a raw `+` would be read as
/// a space).
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes one query-string value.
pub fn encode(value: &str) -> String {
    utf8_percent_encode(value, QUERY_VALUE).to_string()
}

/// A string literal for `$filter`: single quotes doubled, wrapped in quotes.
pub fn string_literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// The argument of `contains(name, ...)` for text a person typed: Dataverse treats
/// `%`, `_` and `[` as wildcards there, so they are bracketed to match literally.
pub fn contains_literal(search: &str) -> String {
    let mut pattern = String::with_capacity(search.len() + 8);
    for ch in search.chars() {
        match ch {
            '%' | '_' | '[' => {
                pattern.push('[');
                pattern.push(ch);
                pattern.push(']');
            }
            other => pattern.push(other),
        }
    }
    string_literal(&pattern)
}

/// Joins `(option, value)` pairs into a query string, encoding each value.
pub fn query(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(name, value)| format!("{name}={}", encode(value)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Whether `value` is a GUID in the 8-4-4-4-12 hex form Dataverse uses for keys.
pub fn is_guid(value: &str) -> bool {
    let groups: Vec<&str> = value.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(group, len)| group.len() == len && group.chars().all(|c| c.is_ascii_hexdigit()))
}

/// Whether `value` can be a table or column logical name (lower-case letters,
/// digits and underscores). Checked before a name goes into a URL or a filter.
pub fn is_logical_name(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 128
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_double_quotes() {
        assert_eq!(string_literal("O'Bryan"), "'O''Bryan'");
    }

    #[test]
    fn contains_escapes_wildcards_and_quotes() {
        assert_eq!(contains_literal("50%_off's [x]"), "'50[%][_]off''s [[]x]'");
    }

    #[test]
    fn encoding_keeps_plus_and_ampersand_literal() {
        assert_eq!(encode("a+b&c d'é"), "a%2Bb%26c%20d%27%C3%A9");
        assert_eq!(
            query(&[("$select", "name,id"), ("$filter", "x eq 'a'")]),
            "$select=name%2Cid&$filter=x%20eq%20%27a%27"
        );
    }

    #[test]
    fn validates_keys() {
        assert!(is_guid("dd621d4a-d898-e711-80e7-00155db763be"));
        assert!(!is_guid("dd621d4a-d898-e711-80e7-00155db763b"));
        assert!(!is_guid("dd621d4a-d898-e711-80e7-00155db763be)/x"));
        assert!(is_logical_name("new_salesactivity"));
        assert!(!is_logical_name("Account"));
        assert!(!is_logical_name("account')"));
        assert!(!is_logical_name(""));
    }
}
