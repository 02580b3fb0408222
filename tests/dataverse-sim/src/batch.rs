//! OData `$batch` (multipart/mixed) as the Dataverse Web API documents it: the
//! request body split into parts, each part's HTTP request read, and the
//! answers written back as `batchresponse_<guid>` parts. Transport-independent;
//! the server dispatches each part like the equivalent direct request.

use crate::errors::{ODataError, codes};
use crate::webapi::API_PREFIX;
use axum::http::StatusCode;

/// Dataverse accepts at most this many requests in one batch.
pub const MAX_PARTS: usize = 1000;

/// The HTTP request inside one `application/http` part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InnerRequest {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The request target as written: absolute URL, absolute path, or a path
    /// relative to the service root (`accounts?$top=1`).
    pub target: String,
    /// The inner request's headers, in order.
    pub headers: Vec<(String, String)>,
    /// The inner request's body (empty for a GET).
    pub body: String,
}

impl InnerRequest {
    /// Every value of a header, by case-insensitive name.
    pub fn header_values<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s str> + 's {
        self.headers
            .iter()
            .filter(move |(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One part of a batch request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// An `application/http` part.
    Request(InnerRequest),
    /// A nested `multipart/mixed` change set (not implemented by the simulator).
    ChangeSet,
}

/// The answer to one part: status, headers (content type included) and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartAnswer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl PartAnswer {
    pub fn failed(&self) -> bool {
        self.status >= 400
    }
}

fn malformed(message: impl std::fmt::Display) -> ODataError {
    ODataError::bad_request(
        codes::INVALID_ARGUMENT,
        format!("The batch request is not valid: {message}"),
    )
}

/// The boundary of a `multipart/mixed; boundary="batch_..."` content type
/// (quoted or not), or `None` when the content type is not multipart/mixed.
pub fn boundary(content_type: &str) -> Option<String> {
    let mut pieces = content_type.split(';');
    let media = pieces.next()?.trim();
    if !media.eq_ignore_ascii_case("multipart/mixed") {
        return None;
    }
    pieces.find_map(|piece| {
        let (name, value) = piece.split_once('=')?;
        if !name.trim().eq_ignore_ascii_case("boundary") {
            return None;
        }
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value);
        (!value.is_empty()).then(|| value.to_string())
    })
}

/// Splits `text` into header lines and the rest at the first empty line.
fn split_head(text: &str) -> (Vec<&str>, &str) {
    let mut headers = Vec::new();
    let mut rest = text;
    loop {
        let (line, after) = match rest.split_once('\n') {
            Some((line, after)) => (line, after),
            None => (rest, ""),
        };
        if line.trim().is_empty() {
            return (headers, after);
        }
        headers.push(line);
        if after.is_empty() {
            return (headers, "");
        }
        rest = after;
    }
}

fn header_pairs(lines: &[&str]) -> Result<Vec<(String, String)>, ODataError> {
    lines
        .iter()
        .map(|line| {
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| malformed(format!("'{}' is not a header line.", line.trim())))?;
            Ok((name.trim().to_string(), value.trim().to_string()))
        })
        .collect()
}

fn parse_part(content: &str) -> Result<Part, ODataError> {
    let (mime_lines, inner) = split_head(content);
    let mime = header_pairs(&mime_lines)?;
    let content_type = mime
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| v.as_str())
        .unwrap_or("application/http");
    if content_type
        .trim_start()
        .to_ascii_lowercase()
        .starts_with("multipart/mixed")
    {
        return Ok(Part::ChangeSet);
    }
    let inner = inner.trim_start_matches('\n');
    let (head, body) = split_head(inner);
    let (request_line, header_lines) = head
        .split_first()
        .ok_or_else(|| malformed("a part has no request line."))?;
    let mut words = request_line.split_whitespace();
    let (Some(method), Some(target)) = (words.next(), words.next()) else {
        return Err(malformed(format!(
            "'{}' is not a request line; expected 'GET <url> HTTP/1.1'.",
            request_line.trim()
        )));
    };
    if let Some(version) = words.next()
        && !version.starts_with("HTTP/")
    {
        return Err(malformed(format!(
            "'{}' is not a request line; expected 'GET <url> HTTP/1.1'.",
            request_line.trim()
        )));
    }
    Ok(Part::Request(InnerRequest {
        method: method.to_string(),
        target: target.to_string(),
        headers: header_pairs(header_lines)?,
        body: body.trim_end_matches('\n').to_string(),
    }))
}

/// Reads the parts of a batch body. CRLF and LF line endings are both accepted;
/// a preamble before the first delimiter is ignored; the closing delimiter is
/// required. More than [`MAX_PARTS`] parts is an error.
pub fn parse(body: &str, boundary: &str) -> Result<Vec<Part>, ODataError> {
    let text = body.replace("\r\n", "\n");
    let delimiter = format!("--{boundary}");
    let close = format!("--{boundary}--");
    let mut contents: Vec<Vec<&str>> = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    let mut closed = false;
    for line in text.split('\n') {
        // Transport padding after a delimiter is allowed.
        let trimmed = line.trim_end();
        if trimmed == close {
            contents.extend(current.take());
            closed = true;
            break;
        }
        if trimmed == delimiter {
            contents.extend(current.take());
            if contents.len() >= MAX_PARTS {
                return Err(ODataError::bad_request(
                    codes::INVALID_ARGUMENT,
                    format!(
                        "The batch contains more than {MAX_PARTS} requests; a batch can contain up to {MAX_PARTS} requests."
                    ),
                ));
            }
            current = Some(Vec::new());
            continue;
        }
        if let Some(lines) = current.as_mut() {
            lines.push(line);
        }
    }
    if !closed {
        return Err(malformed(format!(
            "the closing delimiter '--{boundary}--' is missing."
        )));
    }
    contents
        .iter()
        .map(|lines| parse_part(&lines.join("\n")))
        .collect()
}

/// The path (percent-encoded, from `/`) and raw query of a part's target.
pub fn resolve_target(target: &str) -> (String, Option<String>) {
    let lower = target.to_ascii_lowercase();
    let path_and_query = if lower.starts_with("http://") || lower.starts_with("https://") {
        let after_scheme = &target[target.find("//").map_or(0, |i| i + 2)..];
        match after_scheme.find('/') {
            Some(slash) => after_scheme[slash..].to_string(),
            None => "/".to_string(),
        }
    } else if target.starts_with('/') {
        target.to_string()
    } else {
        format!("{API_PREFIX}{target}")
    };
    match path_and_query.split_once('?') {
        Some((path, query)) => (path.to_string(), Some(query.to_string())),
        None => (path_and_query, None),
    }
}

fn reason(status: u16) -> &'static str {
    StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Unknown")
}

/// The multipart body of a batch response, with CRLF line endings.
pub fn render(boundary: &str, answers: &[PartAnswer]) -> String {
    let mut out = String::new();
    for answer in answers {
        out.push_str(&format!(
            "--{boundary}\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\nHTTP/1.1 {} {}\r\n",
            answer.status,
            reason(answer.status)
        ));
        for (name, value) in &answer.headers {
            out.push_str(&format!("{name}: {value}\r\n"));
        }
        out.push_str("\r\n");
        out.push_str(&answer.body);
        out.push_str("\r\n");
    }
    out.push_str(&format!("--{boundary}--\r\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries_may_be_quoted() {
        assert_eq!(
            boundary("multipart/mixed; boundary=\"batch_1\"").as_deref(),
            Some("batch_1")
        );
        assert_eq!(
            boundary("Multipart/Mixed;boundary=batch_AAA123").as_deref(),
            Some("batch_AAA123")
        );
        assert_eq!(boundary("application/json"), None);
        assert_eq!(boundary("multipart/mixed"), None);
    }

    #[test]
    fn parts_are_read_with_either_line_ending() {
        let crlf = "--b\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\nGET accounts?$top=1 HTTP/1.1\r\nPrefer: odata.include-annotations=\"*\"\r\n\r\n\r\n--b\r\nContent-Type: multipart/mixed; boundary=changeset_1\r\n\r\n--changeset_1\r\n\r\n--changeset_1--\r\n--b--\r\n";
        for body in [crlf.to_string(), crlf.replace("\r\n", "\n")] {
            let parts = parse(&body, "b").unwrap();
            assert_eq!(parts.len(), 2);
            let Part::Request(request) = &parts[0] else {
                panic!("{parts:?}");
            };
            assert_eq!(request.method, "GET");
            assert_eq!(request.target, "accounts?$top=1");
            assert_eq!(
                request.header_values("prefer").collect::<Vec<_>>(),
                ["odata.include-annotations=\"*\""]
            );
            assert_eq!(parts[1], Part::ChangeSet);
        }
    }

    #[test]
    fn malformed_batches_are_bad_requests() {
        let unterminated =
            "--b\r\nContent-Type: application/http\r\n\r\nGET accounts HTTP/1.1\r\n\r\n";
        assert_eq!(parse(unterminated, "b").unwrap_err().status, 400);
        let no_target = "--b\r\nContent-Type: application/http\r\n\r\nGET\r\n\r\n--b--";
        assert_eq!(parse(no_target, "b").unwrap_err().status, 400);
        let many: String = (0..=MAX_PARTS)
            .map(|_| "--b\r\nContent-Type: application/http\r\n\r\nGET WhoAmI HTTP/1.1\r\n\r\n")
            .collect::<String>()
            + "--b--\r\n";
        let error = parse(&many, "b").unwrap_err();
        assert_eq!(error.status, 400);
        assert!(error.message.contains("1000"), "{}", error.message);
        let exactly: String = (0..MAX_PARTS)
            .map(|_| "--b\r\nContent-Type: application/http\r\n\r\nGET WhoAmI HTTP/1.1\r\n\r\n")
            .collect::<String>()
            + "--b--\r\n";
        assert_eq!(parse(&exactly, "b").unwrap().len(), MAX_PARTS);
    }

    #[test]
    fn targets_resolve_to_paths_below_the_service_root() {
        assert_eq!(
            resolve_target("http://127.0.0.1:9/api/data/v9.2/accounts?$top=1"),
            (
                "/api/data/v9.2/accounts".to_string(),
                Some("$top=1".to_string())
            )
        );
        assert_eq!(
            resolve_target("/api/data/v9.2/WhoAmI"),
            ("/api/data/v9.2/WhoAmI".to_string(), None)
        );
        assert_eq!(
            resolve_target("leads?fetchXml=%3Cfetch%2F%3E"),
            (
                "/api/data/v9.2/leads".to_string(),
                Some("fetchXml=%3Cfetch%2F%3E".to_string())
            )
        );
    }

    #[test]
    fn answers_are_rendered_as_documented() {
        let text = render(
            "batchresponse_x",
            &[PartAnswer {
                status: 404,
                headers: vec![("OData-Version".to_string(), "4.0".to_string())],
                body: "{}".to_string(),
            }],
        );
        assert_eq!(
            text,
            "--batchresponse_x\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\nHTTP/1.1 404 Not Found\r\nOData-Version: 4.0\r\n\r\n{}\r\n--batchresponse_x--\r\n"
        );
    }
}
