//! `$filter`: a recursive-descent parser (`or` < `and` < `not` < comparison) bound
//! to the properties of one type, and its evaluation over rows with SQL's
//! three-valued logic (a row is returned only when the filter is true).

use super::{EdmKind, PropertySchema};
use crate::data::Row;
use crate::errors::{ODataError, codes};
use crate::format::{iso_from_unix, parse_datetime};
use crate::like::LikePattern;
use serde_json::Value;
use std::cmp::Ordering;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Int(i64),
    Dec(f64),
    Guid(String),
    Date(String),
    LParen,
    RParen,
    Comma,
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    pos: usize,
}

#[derive(Debug, Clone, PartialEq)]
enum Literal {
    Null,
    Bool(bool),
    Int(i64),
    Dec(f64),
    Str(String),
    Guid(String),
    Date(i64),
}

impl Literal {
    fn edm(&self) -> &'static str {
        match self {
            Literal::Null => "null",
            Literal::Bool(_) => "Edm.Boolean",
            Literal::Int(_) => "Edm.Int32",
            Literal::Dec(_) => "Edm.Decimal",
            Literal::Str(_) => "Edm.String",
            Literal::Guid(_) => "Edm.Guid",
            Literal::Date(_) => "Edm.DateTimeOffset",
        }
    }

    fn fits(&self, kind: EdmKind) -> bool {
        match self {
            Literal::Null => kind != EdmKind::Complex,
            Literal::Bool(_) => kind == EdmKind::Bool,
            Literal::Int(_) | Literal::Dec(_) => matches!(kind, EdmKind::Int | EdmKind::Decimal),
            Literal::Str(_) => kind == EdmKind::String,
            Literal::Guid(_) => kind == EdmKind::Guid,
            Literal::Date(_) => kind == EdmKind::DateTime,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum CmpOp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

impl CmpOp {
    fn from_word(word: &str) -> Option<CmpOp> {
        Some(match word {
            "eq" => CmpOp::Eq,
            "ne" => CmpOp::Ne,
            "gt" => CmpOp::Gt,
            "ge" => CmpOp::Ge,
            "lt" => CmpOp::Lt,
            "le" => CmpOp::Le,
            _ => return None,
        })
    }

    fn kind_name(self) -> &'static str {
        match self {
            CmpOp::Eq => "Equal",
            CmpOp::Ne => "NotEqual",
            CmpOp::Gt => "GreaterThan",
            CmpOp::Ge => "GreaterThanOrEqual",
            CmpOp::Lt => "LessThan",
            CmpOp::Le => "LessThanOrEqual",
        }
    }

    fn holds(self, ordering: Ordering) -> bool {
        match self {
            CmpOp::Eq => ordering == Ordering::Equal,
            CmpOp::Ne => ordering != Ordering::Equal,
            CmpOp::Gt => ordering == Ordering::Greater,
            CmpOp::Ge => ordering != Ordering::Less,
            CmpOp::Lt => ordering == Ordering::Less,
            CmpOp::Le => ordering != Ordering::Greater,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Operand {
    Property { key: String, kind: EdmKind },
    Literal(Literal),
}

#[derive(Debug, Clone, PartialEq)]
enum Expr {
    /// Operands are kept flat so long `or`/`and` chains do not nest.
    Or(Vec<Expr>),
    And(Vec<Expr>),
    Not(Box<Expr>),
    Compare(CmpOp, Operand, Operand),
    Like {
        key: String,
        pattern: LikePattern,
    },
    BoolProperty(String),
    Constant(bool),
}

/// A parsed and bound `$filter`.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    expr: Expr,
}

impl Filter {
    /// Parses `text` (already percent-decoded) against the properties of `schema`.
    pub fn parse(text: &str, schema: &dyn PropertySchema) -> Result<Filter, ODataError> {
        let tokens = lex(text)?;
        let mut parser = Parser {
            text,
            tokens,
            at: 0,
            schema,
            depth: 0,
        };
        let expr = parser.or()?;
        if let Some(token) = parser.tokens.get(parser.at) {
            return Err(parser.syntax_error(token.pos));
        }
        Ok(Filter { expr })
    }

    /// Whether the row satisfies the filter (false and unknown both exclude it).
    pub fn matches(&self, row: &Row) -> bool {
        eval(&self.expr, row) == Some(true)
    }
}

fn syntax(text: &str, pos: usize) -> ODataError {
    ODataError::bad_request(
        codes::ODATA_QUERY,
        format!("Syntax error at position {pos} in '{text}'."),
    )
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '/'
}

/// Length of a GUID literal starting at `chars[at]`, if there is one.
fn guid_at(chars: &[char], at: usize) -> Option<usize> {
    let groups = [8, 4, 4, 4, 12];
    let mut i = at;
    for (n, len) in groups.iter().enumerate() {
        for _ in 0..*len {
            if !chars.get(i)?.is_ascii_hexdigit() {
                return None;
            }
            i += 1;
        }
        if n < 4 {
            if chars.get(i) != Some(&'-') {
                return None;
            }
            i += 1;
        }
    }
    (!chars.get(i).is_some_and(|c| is_ident_char(*c))).then_some(i - at)
}

/// Length of a date or date-time literal starting at `chars[at]`, if there is one.
fn date_at(chars: &[char], at: usize) -> Option<usize> {
    let digits = |from: usize, n: usize| {
        (from..from + n).all(|i| chars.get(i).is_some_and(char::is_ascii_digit))
    };
    if !(digits(at, 4)
        && chars.get(at + 4) == Some(&'-')
        && digits(at + 5, 2)
        && chars.get(at + 7) == Some(&'-')
        && digits(at + 8, 2))
    {
        return None;
    }
    let mut end = at + 10;
    if chars.get(end) == Some(&'T') {
        end += 1;
        while chars
            .get(end)
            .is_some_and(|c| c.is_ascii_digit() || matches!(c, ':' | '.' | 'Z' | '+' | '-'))
        {
            end += 1;
        }
    }
    Some(end - at)
}

fn lex(text: &str) -> Result<Vec<Token>, ODataError> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let pos = i;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let tok = match c {
            '(' => {
                i += 1;
                Tok::LParen
            }
            ')' => {
                i += 1;
                Tok::RParen
            }
            ',' => {
                i += 1;
                Tok::Comma
            }
            '\'' => {
                let (value, next) = read_string(text, &chars, i)?;
                i = next;
                Tok::Str(value)
            }
            _ => {
                if let Some(len) = guid_at(&chars, i) {
                    i += len;
                    Tok::Guid(
                        chars[pos..i]
                            .iter()
                            .collect::<String>()
                            .to_ascii_lowercase(),
                    )
                } else if let Some(len) = date_at(&chars, i) {
                    i += len;
                    let raw: String = chars[pos..i].iter().collect();
                    let seconds = parse_datetime(&raw).ok_or_else(|| {
                        ODataError::bad_request(
                            codes::ODATA_QUERY,
                            format!("Unrecognized 'Edm.DateTimeOffset' literal '{raw}' at '{pos}' in '{text}'."),
                        )
                    })?;
                    Tok::Date(iso_from_unix(seconds))
                } else if c.is_ascii_digit()
                    || (c == '-' && chars.get(i + 1).is_some_and(char::is_ascii_digit))
                {
                    let (tok, next) = read_number(text, &chars, i)?;
                    i = next;
                    tok
                } else if c.is_ascii_alphabetic() || c == '_' || c == '$' {
                    let start = i;
                    i += 1;
                    while i < chars.len() && is_ident_char(chars[i]) {
                        i += 1;
                    }
                    let word: String = chars[start..i].iter().collect();
                    if chars.get(i) == Some(&'\'') {
                        // An enum literal: Microsoft.Dynamics.CRM.AttributeTypeCode'Picklist'.
                        let (value, next) = read_string(text, &chars, i)?;
                        i = next;
                        Tok::Str(value)
                    } else {
                        Tok::Ident(word)
                    }
                } else {
                    return Err(ODataError::bad_request(
                        codes::ODATA_QUERY,
                        format!(
                            "Syntax error: character '{c}' is not valid at position {pos} in '{text}'."
                        ),
                    ));
                }
            }
        };
        tokens.push(Token { tok, pos });
    }
    Ok(tokens)
}

/// Reads a quoted literal starting at the quote; `''` is a quote inside it.
fn read_string(text: &str, chars: &[char], start: usize) -> Result<(String, usize), ODataError> {
    let mut value = String::new();
    let mut i = start + 1;
    loop {
        match chars.get(i) {
            None => {
                return Err(ODataError::bad_request(
                    codes::ODATA_QUERY,
                    format!(
                        "There is an unterminated literal at position {} in '{text}'.",
                        chars.len()
                    ),
                ));
            }
            Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                value.push('\'');
                i += 2;
            }
            Some('\'') => return Ok((value, i + 1)),
            Some(c) => {
                value.push(*c);
                i += 1;
            }
        }
    }
}

fn read_number(text: &str, chars: &[char], start: usize) -> Result<(Tok, usize), ODataError> {
    let mut i = start + 1;
    let mut decimal = false;
    while i < chars.len() {
        let c = chars[i];
        if c.is_ascii_digit() {
            i += 1;
        } else if (c == '.' || c == 'e' || c == 'E') && !decimal {
            decimal = true;
            i += 1;
            if c != '.' && matches!(chars.get(i), Some('+' | '-')) {
                i += 1;
            }
        } else {
            break;
        }
    }
    let raw: String = chars[start..i].iter().collect();
    // OData type suffixes (`12.5m`, `3L`) are accepted and ignored.
    if chars
        .get(i)
        .is_some_and(|c| matches!(c, 'm' | 'M' | 'd' | 'D' | 'f' | 'F' | 'l' | 'L'))
        && !chars.get(i + 1).is_some_and(|c| is_ident_char(*c))
    {
        i += 1;
    }
    if chars.get(i).is_some_and(|c| is_ident_char(*c)) {
        return Err(syntax(text, i));
    }
    let tok = if decimal {
        raw.parse().map(Tok::Dec).ok()
    } else {
        raw.parse().map(Tok::Int).ok()
    };
    tok.map(|t| (t, i)).ok_or_else(|| syntax(text, start))
}

/// What a primary expression turned out to be.
enum Node {
    Expr(Expr),
    Operand(Operand),
}

/// Deeper nesting is refused: real filters are shallow, and recursion on
/// untrusted input must not exhaust the stack.
const MAX_NESTING: usize = 64;

struct Parser<'a> {
    text: &'a str,
    tokens: Vec<Token>,
    at: usize,
    schema: &'a dyn PropertySchema,
    depth: usize,
}

impl Parser<'_> {
    fn syntax_error(&self, pos: usize) -> ODataError {
        syntax(self.text, pos)
    }

    fn end_pos(&self) -> usize {
        self.text.chars().count()
    }

    fn peek(&self) -> Option<&Tok> {
        self.tokens.get(self.at).map(|t| &t.tok)
    }

    fn pos(&self) -> usize {
        self.tokens
            .get(self.at)
            .map(|t| t.pos)
            .unwrap_or_else(|| self.end_pos())
    }

    fn peek_word(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Tok::Ident(w)) if w == word)
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.at).cloned();
        self.at += 1;
        token
    }

    fn expect(&mut self, expected: &Tok) -> Result<(), ODataError> {
        let pos = self.pos();
        match self.next() {
            Some(token) if token.tok == *expected => Ok(()),
            _ => Err(self.syntax_error(pos)),
        }
    }

    fn or(&mut self) -> Result<Expr, ODataError> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(ODataError::bad_request(
                codes::ODATA_QUERY,
                format!(
                    "The $filter '{}' is nested more than {MAX_NESTING} levels deep.",
                    self.text
                ),
            ));
        }
        let result = self.or_inner();
        self.depth -= 1;
        result
    }

    fn or_inner(&mut self) -> Result<Expr, ODataError> {
        let mut terms = vec![self.and()?];
        while self.peek_word("or") {
            self.at += 1;
            terms.push(self.and()?);
        }
        Ok(match terms.len() {
            1 => terms.remove(0),
            _ => Expr::Or(terms),
        })
    }

    fn and(&mut self) -> Result<Expr, ODataError> {
        let mut terms = vec![self.not()?];
        while self.peek_word("and") {
            self.at += 1;
            terms.push(self.not()?);
        }
        Ok(match terms.len() {
            1 => terms.remove(0),
            _ => Expr::And(terms),
        })
    }

    fn not(&mut self) -> Result<Expr, ODataError> {
        if self.peek_word("not") {
            let mut negations = 0;
            while self.peek_word("not") {
                self.at += 1;
                negations += 1;
            }
            let inner = self.comparison()?;
            // `not not x` is `x`: folding keeps long chains off the stack.
            return Ok(if negations % 2 == 1 {
                Expr::Not(Box::new(inner))
            } else {
                inner
            });
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Expr, ODataError> {
        let start = self.pos();
        let left = self.primary()?;
        let op = match self.peek() {
            Some(Tok::Ident(word)) => CmpOp::from_word(word),
            _ => None,
        };
        let Some(op) = op else {
            return match left {
                Node::Expr(expr) => Ok(expr),
                Node::Operand(Operand::Property {
                    key,
                    kind: EdmKind::Bool,
                }) => Ok(Expr::BoolProperty(key)),
                Node::Operand(Operand::Literal(Literal::Bool(value))) => Ok(Expr::Constant(value)),
                Node::Operand(_) => Err(ODataError::bad_request(
                    codes::ODATA_QUERY,
                    format!(
                        "The $filter expression must evaluate to a single boolean value (at position {start} in '{}').",
                        self.text
                    ),
                )),
            };
        };
        self.at += 1;
        let right_pos = self.pos();
        let right = self.primary()?;
        let (Node::Operand(left), Node::Operand(right)) = (left, right) else {
            return Err(self.syntax_error(right_pos));
        };
        check_types(op, &left, &right)?;
        Ok(Expr::Compare(op, left, right))
    }

    fn primary(&mut self) -> Result<Node, ODataError> {
        let pos = self.pos();
        let Some(token) = self.next() else {
            return Err(self.syntax_error(pos));
        };
        match token.tok {
            Tok::LParen => {
                let expr = self.or()?;
                self.expect(&Tok::RParen)?;
                Ok(Node::Expr(expr))
            }
            Tok::Str(s) => Ok(Node::Operand(Operand::Literal(Literal::Str(s)))),
            Tok::Int(n) => Ok(Node::Operand(Operand::Literal(Literal::Int(n)))),
            Tok::Dec(n) => Ok(Node::Operand(Operand::Literal(Literal::Dec(n)))),
            Tok::Guid(g) => Ok(Node::Operand(Operand::Literal(Literal::Guid(g)))),
            Tok::Date(d) => Ok(Node::Operand(Operand::Literal(Literal::Date(
                parse_datetime(&d).unwrap_or_default(),
            )))),
            Tok::Ident(word) => {
                if self.peek() == Some(&Tok::LParen) {
                    return self.function(&word, pos).map(Node::Expr);
                }
                let literal = match word.as_str() {
                    "true" => Some(Literal::Bool(true)),
                    "false" => Some(Literal::Bool(false)),
                    "null" => Some(Literal::Null),
                    _ => None,
                };
                if let Some(literal) = literal {
                    return Ok(Node::Operand(Operand::Literal(literal)));
                }
                if CmpOp::from_word(&word).is_some()
                    || matches!(word.as_str(), "and" | "or" | "not")
                {
                    return Err(self.syntax_error(pos));
                }
                let (key, kind) = self.property(&word)?;
                Ok(Node::Operand(Operand::Property { key, kind }))
            }
            Tok::RParen | Tok::Comma => Err(self.syntax_error(pos)),
        }
    }

    fn property(&self, name: &str) -> Result<(String, EdmKind), ODataError> {
        self.schema
            .property(name)
            .ok_or_else(|| ODataError::property_not_found(name, &self.schema.type_name()))
    }

    fn function(&mut self, name: &str, pos: usize) -> Result<Expr, ODataError> {
        let wrap: fn(&str) -> String = match name {
            "contains" => |p| format!("%{p}%"),
            "startswith" => |p| format!("{p}%"),
            "endswith" => |p| format!("%{p}"),
            _ => {
                return Err(ODataError::bad_request(
                    codes::ODATA_QUERY,
                    format!(
                        "An unknown function with name '{name}' was found. This may also be a function import or a key lookup on a navigation property, which is not allowed."
                    ),
                ));
            }
        };
        self.expect(&Tok::LParen)?;
        let first = self.primary()?;
        self.expect(&Tok::Comma)?;
        let second = self.primary()?;
        self.expect(&Tok::RParen)?;
        match (first, second) {
            (
                Node::Operand(Operand::Property {
                    key,
                    kind: EdmKind::String,
                }),
                Node::Operand(Operand::Literal(Literal::Str(text))),
            ) => Ok(Expr::Like {
                key,
                pattern: LikePattern::new(&wrap(&text)),
            }),
            _ => Err(ODataError::bad_request(
                codes::ODATA_QUERY,
                format!(
                    "No function signature for the function with name '{name}' matches the specified arguments (at position {pos}). The function signatures considered are: {name}(Edm.String Nullable=true, Edm.String Nullable=true)."
                ),
            )),
        }
    }
}

fn edm_name(kind: EdmKind) -> &'static str {
    match kind {
        EdmKind::String => "Edm.String",
        EdmKind::Int => "Edm.Int32",
        EdmKind::Decimal => "Edm.Decimal",
        EdmKind::Bool => "Edm.Boolean",
        EdmKind::Guid => "Edm.Guid",
        EdmKind::DateTime => "Edm.DateTimeOffset",
        EdmKind::Complex => "Microsoft.Dynamics.CRM.Label",
    }
}

fn check_types(op: CmpOp, left: &Operand, right: &Operand) -> Result<(), ODataError> {
    let incompatible = |a: &str, b: &str| {
        ODataError::bad_request(
            codes::ODATA_QUERY,
            format!(
                "A binary operator with incompatible types was detected. Found operand types '{a}' and '{b}' for operator kind '{}'.",
                op.kind_name()
            ),
        )
    };
    match (left, right) {
        (Operand::Property { kind, .. }, Operand::Literal(lit))
        | (Operand::Literal(lit), Operand::Property { kind, .. }) => {
            let ordered = !matches!(op, CmpOp::Eq | CmpOp::Ne);
            if !lit.fits(*kind) || (ordered && matches!(lit, Literal::Null)) {
                return Err(incompatible(edm_name(*kind), lit.edm()));
            }
            Ok(())
        }
        (Operand::Property { kind: a, .. }, Operand::Property { kind: b, .. }) => {
            let numeric = |k: &EdmKind| matches!(k, EdmKind::Int | EdmKind::Decimal);
            if a == b && *a != EdmKind::Complex || numeric(a) && numeric(b) {
                Ok(())
            } else {
                Err(incompatible(edm_name(*a), edm_name(*b)))
            }
        }
        (Operand::Literal(a), Operand::Literal(b)) => {
            if a == &Literal::Null || b == &Literal::Null || a.edm() == b.edm() {
                Ok(())
            } else {
                Err(incompatible(a.edm(), b.edm()))
            }
        }
    }
}

/// A value ready to compare.
#[derive(Debug, PartialEq)]
enum Scalar {
    Null,
    Bool(bool),
    Num(f64),
    Text(String),
    Time(i64),
}

fn scalar_of_value(value: Option<&Value>, kind: EdmKind) -> Scalar {
    match value {
        None | Some(Value::Null) => Scalar::Null,
        Some(Value::Bool(b)) => Scalar::Bool(*b),
        Some(Value::Number(n)) => n.as_f64().map(Scalar::Num).unwrap_or(Scalar::Null),
        Some(Value::String(s)) if kind == EdmKind::DateTime => {
            parse_datetime(s).map(Scalar::Time).unwrap_or(Scalar::Null)
        }
        Some(Value::String(s)) => Scalar::Text(s.to_lowercase()),
        Some(_) => Scalar::Null,
    }
}

fn scalar_of_literal(literal: &Literal) -> Scalar {
    match literal {
        Literal::Null => Scalar::Null,
        Literal::Bool(b) => Scalar::Bool(*b),
        Literal::Int(n) => Scalar::Num(*n as f64),
        Literal::Dec(n) => Scalar::Num(*n),
        Literal::Str(s) | Literal::Guid(s) => Scalar::Text(s.to_lowercase()),
        Literal::Date(t) => Scalar::Time(*t),
    }
}

fn resolve(operand: &Operand, row: &Row) -> Scalar {
    match operand {
        Operand::Property { key, kind } => scalar_of_value(row.get(key), *kind),
        Operand::Literal(literal) => scalar_of_literal(literal),
    }
}

fn compare(op: CmpOp, left: &Scalar, right: &Scalar) -> Option<bool> {
    // Anything compared with a null is unknown, as in SQL.
    let ordering = match (left, right) {
        (Scalar::Bool(a), Scalar::Bool(b)) => a.cmp(b),
        (Scalar::Num(a), Scalar::Num(b)) => a.partial_cmp(b)?,
        (Scalar::Text(a), Scalar::Text(b)) => a.cmp(b),
        (Scalar::Time(a), Scalar::Time(b)) => a.cmp(b),
        _ => return None,
    };
    Some(op.holds(ordering))
}

fn eval(expr: &Expr, row: &Row) -> Option<bool> {
    match expr {
        Expr::Or(terms) => {
            let mut unknown = false;
            for term in terms {
                match eval(term, row) {
                    Some(true) => return Some(true),
                    None => unknown = true,
                    Some(false) => {}
                }
            }
            (!unknown).then_some(false)
        }
        Expr::And(terms) => {
            let mut unknown = false;
            for term in terms {
                match eval(term, row) {
                    Some(false) => return Some(false),
                    None => unknown = true,
                    Some(true) => {}
                }
            }
            (!unknown).then_some(true)
        }
        Expr::Not(inner) => eval(inner, row).map(|b| !b),
        Expr::Compare(op, left, right) => {
            let null_test = [left, right]
                .iter()
                .any(|o| matches!(o, Operand::Literal(Literal::Null)));
            let (left, right) = (resolve(left, row), resolve(right, row));
            if null_test {
                // `x eq null` / `x ne null` test presence (only eq and ne pass binding).
                let absent = left == Scalar::Null && right == Scalar::Null;
                return Some((*op == CmpOp::Eq) == absent);
            }
            compare(*op, &left, &right)
        }
        Expr::Like { key, pattern } => match row.get(key) {
            Some(Value::String(text)) => Some(pattern.matches(text)),
            _ => None,
        },
        Expr::BoolProperty(key) => row.get(key).and_then(Value::as_bool),
        Expr::Constant(value) => Some(*value),
    }
}

#[cfg(test)]
mod tests;
