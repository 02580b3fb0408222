//! SQL `LIKE` patterns, as Dataverse applies them to OData `contains`/`startswith`/
//! `endswith` literals and to FetchXML `like` conditions: `%` any run, `_` one
//! character, `[abc]`/`[a-z]` a set, `[^...]` a negated set. Matching ignores case,
//! like the default collation of a Dataverse database.

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Char(char),
    AnyRun,
    AnyOne,
    Set {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

/// A compiled pattern.
#[derive(Debug, Clone, PartialEq)]
pub struct LikePattern {
    tokens: Vec<Token>,
}

impl LikePattern {
    /// Compiles `pattern`. An opening bracket without a closing one is an ordinary
    /// character.
    pub fn new(pattern: &str) -> LikePattern {
        let chars: Vec<char> = fold(pattern).chars().collect();
        let mut tokens = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            match chars[i] {
                '%' => {
                    // Consecutive runs mean the same as one and would only slow matching.
                    if tokens.last() != Some(&Token::AnyRun) {
                        tokens.push(Token::AnyRun);
                    }
                    i += 1;
                }
                '_' => {
                    tokens.push(Token::AnyOne);
                    i += 1;
                }
                '[' => match parse_set(&chars, i + 1) {
                    Some((token, next)) => {
                        tokens.push(token);
                        i = next;
                    }
                    None => {
                        tokens.push(Token::Char('['));
                        i += 1;
                    }
                },
                c => {
                    tokens.push(Token::Char(c));
                    i += 1;
                }
            }
        }
        LikePattern { tokens }
    }

    /// A pattern matching `text` literally (wildcards bracketed).
    pub fn literal(text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        for c in text.chars() {
            if matches!(c, '%' | '_' | '[') {
                out.push('[');
                out.push(c);
                out.push(']');
            } else {
                out.push(c);
            }
        }
        out
    }

    pub fn matches(&self, text: &str) -> bool {
        let text: Vec<char> = fold(text).chars().collect();
        // reachable[j]: the tokens consumed so far can match text[..j].
        let mut reachable = vec![false; text.len() + 1];
        reachable[0] = true;
        for token in &self.tokens {
            let mut next = vec![false; text.len() + 1];
            match token {
                Token::AnyRun => {
                    let mut seen = false;
                    for j in 0..=text.len() {
                        seen |= reachable[j];
                        next[j] = seen;
                    }
                }
                single => {
                    for j in 0..text.len() {
                        if reachable[j] && token_matches(single, text[j]) {
                            next[j + 1] = true;
                        }
                    }
                }
            }
            reachable = next;
            if !reachable.iter().any(|r| *r) {
                return false;
            }
        }
        reachable[text.len()]
    }
}

fn fold(text: &str) -> String {
    text.to_lowercase()
}

fn token_matches(token: &Token, c: char) -> bool {
    match token {
        Token::Char(expected) => *expected == c,
        Token::AnyOne => true,
        Token::AnyRun => true,
        Token::Set { negated, ranges } => {
            ranges.iter().any(|(low, high)| *low <= c && c <= *high) != *negated
        }
    }
}

/// Parses a set starting after its `[`; returns the token and the index after `]`.
fn parse_set(chars: &[char], start: usize) -> Option<(Token, usize)> {
    let mut i = start;
    let negated = chars.get(i) == Some(&'^');
    if negated {
        i += 1;
    }
    let mut ranges = Vec::new();
    let first = i;
    while i < chars.len() {
        let c = chars[i];
        // A `]` right after the opening bracket is a member, not the end.
        if c == ']' && i > first {
            return Some((Token::Set { negated, ranges }, i + 1));
        }
        if chars.get(i + 1) == Some(&'-') && chars.get(i + 2).is_some_and(|h| *h != ']') {
            let high = chars[i + 2];
            ranges.push((c.min(high), c.max(high)));
            i += 3;
        } else {
            ranges.push((c, c));
            i += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn like(pattern: &str, text: &str) -> bool {
        LikePattern::new(pattern).matches(text)
    }

    #[test]
    fn percent_and_underscore_are_wildcards() {
        assert!(like("%pipe%", "Open Pipeline"));
        assert!(like("50%_plus", "50 Plus"));
        assert!(like("50%_plus", "50%_Plus"));
        assert!(!like("50_plus", "50Plus"));
        assert!(like("a_c", "abc"));
        assert!(!like("a_c", "abbc"));
        assert!(like("%", ""));
        assert!(!like("_", ""));
    }

    #[test]
    fn brackets_escape_wildcards() {
        let escaped = format!("%{}%", LikePattern::literal("50%_Plus"));
        assert_eq!(escaped, "%50[%][_]Plus%");
        assert!(like(&escaped, "Pipeline 50%_Plus"));
        assert!(!like(&escaped, "Pipeline 50 Plus"));
        assert!(like("[[]x]", "[x]"));
    }

    #[test]
    fn sets_ranges_and_negation() {
        assert!(like("[a-c]x", "bx"));
        assert!(!like("[a-c]x", "dx"));
        assert!(like("[^a-c]x", "dx"));
        assert!(!like("[^a-c]x", "ax"));
        assert!(like("[]]", "]"));
        // An unclosed bracket is an ordinary character.
        assert!(like("a[b", "A[B"));
    }

    #[test]
    fn matching_ignores_case() {
        assert!(like("%ACCOUNTS%", "active accounts"));
        assert!(like("É%", "école"));
    }
}
