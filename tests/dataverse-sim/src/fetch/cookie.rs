//! FetchXML paging cookies, in the documented form: the answer carries
//! `<cookie pagenumber="2" pagingcookie="..." istracking="False" />` where the inner
//! cookie `<cookie page="1"><accountid last="{GUID}" first="{GUID}" /></cookie>` is
//! URL-encoded twice; the client decodes it and sends the inner cookie back in the
//! `paging-cookie` attribute of the next page's `<fetch>`.

use crate::errors::ODataError;
use crate::format::cookie_encode;
use crate::xml::{Element, escape_attr};
use percent_encoding::percent_decode_str;

/// What a returned paging cookie says about the previous page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PagingCookie {
    /// The page the cookie was issued for.
    pub page: usize,
    /// Primary key of that page's last row (lower case, no braces).
    pub last: String,
    /// Primary key of that page's first row.
    pub first: String,
}

/// A column value of the first and last row, carried in the cookie as Dataverse
/// does for the columns a query is ordered by.
pub struct OrderValues {
    pub attribute: String,
    pub first: String,
    pub last: String,
}

fn braced(guid: &str) -> String {
    format!("{{{}}}", guid.to_ascii_uppercase())
}

/// The inner cookie for `page` (not yet encoded).
pub fn inner_cookie(
    page: usize,
    primary_key: &str,
    first: &str,
    last: &str,
    orders: &[OrderValues],
) -> String {
    let mut xml = format!("<cookie page=\"{page}\">");
    for order in orders {
        xml.push_str(&format!(
            "<{} last=\"{}\" first=\"{}\" />",
            order.attribute,
            escape_attr(&order.last),
            escape_attr(&order.first)
        ));
    }
    xml.push_str(&format!(
        "<{primary_key} last=\"{}\" first=\"{}\" />",
        braced(last),
        braced(first)
    ));
    xml.push_str("</cookie>");
    xml
}

/// The `@Microsoft.Dynamics.CRM.fetchxmlpagingcookie` value for the page after `page`.
pub fn annotation(page: usize, inner: &str) -> String {
    format!(
        "<cookie pagenumber=\"{}\" pagingcookie=\"{}\" istracking=\"False\" />",
        page + 1,
        cookie_encode(&cookie_encode(inner))
    )
}

fn bad_cookie(detail: &str) -> ODataError {
    ODataError::invalid(format!("The paging cookie is not valid: {detail}."))
}

/// Reads the `paging-cookie` attribute of a `<fetch>`. Clients that forget to
/// decode it are forgiven: still-encoded cookies are decoded first.
pub fn parse(text: &str, primary_key: &str) -> Result<PagingCookie, ODataError> {
    let mut text = text.trim().to_string();
    for _ in 0..2 {
        if text.starts_with('%') {
            text = percent_decode_str(&text)
                .decode_utf8()
                .map_err(|_| bad_cookie("not UTF-8"))?
                .into_owned();
        }
    }
    let root = Element::parse(&text).map_err(|e| bad_cookie(&e.0))?;
    if root.name != "cookie" {
        return Err(bad_cookie("the root element is not 'cookie'"));
    }
    let page = root
        .attr("page")
        .and_then(|p| p.trim().parse::<usize>().ok())
        .ok_or_else(|| bad_cookie("no page number"))?;
    let key = root
        .children
        .iter()
        .find(|c| c.name == primary_key)
        .ok_or_else(|| bad_cookie(&format!("no '{primary_key}' element")))?;
    let guid = |name: &str| {
        key.attr(name)
            .map(|g| {
                g.trim()
                    .trim_start_matches('{')
                    .trim_end_matches('}')
                    .to_ascii_lowercase()
            })
            .filter(|g| crate::data::is_guid(g))
            .ok_or_else(|| bad_cookie(&format!("no '{name}' key")))
    };
    Ok(PagingCookie {
        page,
        last: guid("last")?,
        first: guid("first")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIRST: &str = "20717e9c-643f-ed11-9db0-002248225e95";
    const LAST: &str = "30717e9c-643f-ed11-9db0-002248225e95";

    #[test]
    fn annotation_matches_the_documented_encoding() {
        let inner = inner_cookie(1, "contactid", FIRST, LAST, &[]);
        assert_eq!(
            inner,
            "<cookie page=\"1\"><contactid last=\"{30717E9C-643F-ED11-9DB0-002248225E95}\" first=\"{20717E9C-643F-ED11-9DB0-002248225E95}\" /></cookie>"
        );
        // The documented value (05b) for the same keys.
        assert_eq!(
            annotation(1, &inner),
            "<cookie pagenumber=\"2\" pagingcookie=\"%253ccookie%2520page%253d%25221%2522%253e%253ccontactid%2520last%253d%2522%257b30717E9C-643F-ED11-9DB0-002248225E95%257d%2522%2520first%253d%2522%257b20717E9C-643F-ED11-9DB0-002248225E95%257d%2522%2520%252f%253e%253c%252fcookie%253e\" istracking=\"False\" />"
        );
    }

    #[test]
    fn decoded_twice_it_parses_back() {
        let orders = [OrderValues {
            attribute: "fullname".into(),
            first: "A & B".into(),
            last: "Robert Lyon (sample)".into(),
        }];
        let inner = inner_cookie(3, "contactid", FIRST, LAST, &orders);
        let outer = annotation(3, &inner);
        let encoded = outer
            .split("pagingcookie=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap();
        let once = percent_decode_str(encoded)
            .decode_utf8()
            .unwrap()
            .into_owned();
        let twice = percent_decode_str(&once)
            .decode_utf8()
            .unwrap()
            .into_owned();
        assert_eq!(twice, inner);
        let parsed = parse(&twice, "contactid").unwrap();
        assert_eq!(
            parsed,
            PagingCookie {
                page: 3,
                last: LAST.into(),
                first: FIRST.into()
            }
        );
        // A client that sends the still-encoded value is understood too.
        assert_eq!(parse(encoded, "contactid").unwrap().page, 3);
    }

    #[test]
    fn broken_cookies_are_errors() {
        for bad in [
            "<cookie>",
            "<cookie page='x'/>",
            "<nope page='1'/>",
            "<cookie page='1'><contactid last='1' first='2'/></cookie>",
        ] {
            assert_eq!(parse(bad, "contactid").unwrap_err().status, 400, "{bad}");
        }
    }
}
