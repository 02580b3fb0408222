//! OData `$batch`: several GETs in one HTTP request.
//!
//! A sync needs a few independent reads (is the view unchanged? the aggregate of
//! each part of the view). Sent as one batch they cost one round trip and one
//! request against Dataverse's request limits instead of several.

/// Upper bound Dataverse puts on the operations of one batch.
pub const MAX_PARTS: usize = 1000;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum BatchError {
    #[error("the batch response has no multipart boundary")]
    NoBoundary,
    #[error("the batch response is not well-formed multipart: {0}")]
    Malformed(String),
}

use crate::platform::HttpResponse;

/// The multipart body of a batch of GETs. `paths` are absolute paths
/// (`/api/data/v9.2/...`); `prefer` is sent with every part.
pub fn request_body(boundary: &str, paths: &[String], prefer: Option<&str>) -> Vec<u8> {
    let mut body = String::new();
    for path in paths {
        body.push_str(&format!(
            "--{boundary}\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
        ));
        body.push_str(&format!(
            "GET {path} HTTP/1.1\r\nAccept: application/json\r\n"
        ));
        if let Some(prefer) = prefer {
            body.push_str(&format!("Prefer: {prefer}\r\n"));
        }
        body.push_str("\r\n");
    }
    body.push_str(&format!("--{boundary}--\r\n"));
    body.into_bytes()
}

/// The `boundary` parameter of a `multipart/mixed` content type.
pub fn boundary(content_type: &str) -> Option<&str> {
    content_type.split(';').skip(1).find_map(|param| {
        let (name, value) = param.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| value.trim().trim_matches('"'))
            .filter(|b| !b.is_empty())
    })
}

/// Splits a batch response body into its parts' HTTP responses, in order.
pub fn parse_response(content_type: &str, body: &[u8]) -> Result<Vec<HttpResponse>, BatchError> {
    let boundary = boundary(content_type).ok_or(BatchError::NoBoundary)?;
    let delimiter = format!("--{boundary}");
    let mut parts = Vec::new();
    let mut rest = body;
    // Skip the preamble up to the first delimiter.
    let start = find(rest, delimiter.as_bytes())
        .ok_or_else(|| BatchError::Malformed("no part delimiter".into()))?;
    rest = &rest[start + delimiter.len()..];
    loop {
        if rest.starts_with(b"--") {
            return Ok(parts); // closing delimiter
        }
        rest = skip_line_end(rest);
        let end = find(rest, delimiter.as_bytes())
            .ok_or_else(|| BatchError::Malformed("a part has no closing delimiter".into()))?;
        let part = trim_line_end(&rest[..end]);
        parts.push(parse_part(part)?);
        rest = &rest[end + delimiter.len()..];
    }
}

/// A part is MIME headers (`Content-Type: application/http`), a blank line, then a
/// complete HTTP response.
fn parse_part(part: &[u8]) -> Result<HttpResponse, BatchError> {
    let mut mime_headers = [httparse::EMPTY_HEADER; 16];
    let message = match httparse::parse_headers(part, &mut mime_headers) {
        Ok(httparse::Status::Complete((consumed, _))) => &part[consumed..],
        Ok(httparse::Status::Partial) => {
            return Err(BatchError::Malformed("part headers are incomplete".into()));
        }
        Err(e) => return Err(BatchError::Malformed(format!("part headers: {e}"))),
    };
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    let consumed = match response.parse(message) {
        Ok(httparse::Status::Complete(consumed)) => consumed,
        Ok(httparse::Status::Partial) => {
            return Err(BatchError::Malformed(
                "a part's response is incomplete".into(),
            ));
        }
        Err(e) => return Err(BatchError::Malformed(format!("a part's response: {e}"))),
    };
    let status = response
        .code
        .ok_or_else(|| BatchError::Malformed("a part has no status".into()))?;
    let headers = response
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_ascii_lowercase(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect();
    Ok(HttpResponse {
        status,
        headers,
        body: message[consumed..].to_vec(),
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

fn skip_line_end(bytes: &[u8]) -> &[u8] {
    bytes
        .strip_prefix(b"\r\n")
        .or_else(|| bytes.strip_prefix(b"\n"))
        .unwrap_or(bytes)
}

/// The line break before a delimiter belongs to the delimiter.
fn trim_line_end(bytes: &[u8]) -> &[u8] {
    bytes
        .strip_suffix(b"\r\n")
        .or_else(|| bytes.strip_suffix(b"\n"))
        .unwrap_or(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_body_has_one_part_per_get() {
        let body = request_body(
            "batch_1",
            &[
                "/api/data/v9.2/a".to_string(),
                "/api/data/v9.2/b?x=1".to_string(),
            ],
            Some("odata.include-annotations=\"*\""),
        );
        let text = String::from_utf8(body).unwrap();
        assert_eq!(text.matches("--batch_1\r\n").count(), 2);
        assert!(text.contains("GET /api/data/v9.2/b?x=1 HTTP/1.1\r\n"));
        assert!(text.ends_with("--batch_1--\r\n"));
    }

    #[test]
    fn finds_quoted_and_bare_boundaries() {
        assert_eq!(boundary("multipart/mixed; boundary=\"b_1\""), Some("b_1"));
        assert_eq!(boundary("multipart/mixed;boundary=b_2"), Some("b_2"));
        assert_eq!(boundary("application/json"), None);
    }

    #[test]
    fn parses_the_documented_response_shape() {
        let body = "--batchresponse_01\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\nHTTP/1.1 200 OK\r\nContent-Type: application/json; odata.metadata=minimal\r\nOData-Version: 4.0\r\n\r\n{\"value\":[1]}\r\n--batchresponse_01\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\nHTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n\r\n{\"error\":{\"code\":\"\",\"message\":\"gone\"}}\r\n--batchresponse_01--\r\n";
        let parts = parse_response(
            "multipart/mixed; boundary=batchresponse_01",
            body.as_bytes(),
        )
        .unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].status, 200);
        assert_eq!(parts[0].body, b"{\"value\":[1]}");
        assert_eq!(parts[1].status, 404);
        assert!(parts[1].headers.iter().any(|(k, _)| k == "content-type"));
    }

    #[test]
    fn accepts_bare_line_feeds() {
        let body = "--b\nContent-Type: application/http\n\nHTTP/1.1 204 No Content\nOData-Version: 4.0\n\n\n--b--\n";
        let parts = parse_response("multipart/mixed; boundary=b", body.as_bytes()).unwrap();
        assert_eq!(parts[0].status, 204);
        assert!(parts[0].body.is_empty());
    }

    #[test]
    fn rejects_broken_bodies() {
        assert_eq!(
            parse_response("multipart/mixed", b"x"),
            Err(BatchError::NoBoundary)
        );
        assert!(parse_response("multipart/mixed; boundary=b", b"--b\r\nno end").is_err());
        assert!(
            parse_response(
                "multipart/mixed; boundary=b",
                b"--b\r\nContent-Type: application/http\r\n\r\nNOT HTTP\r\n--b--"
            )
            .is_err()
        );
    }
}
