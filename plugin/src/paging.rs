//! Reading a view page by page when Dataverse cannot aggregate it on the server
//! (a distinct count over more than 50,000 rows, or a view that cannot be split),
//! aggregating each page as it arrives.

use crate::aggregate::{Accumulator, Partial};
use crate::client::Session;
use crate::errors;
use crate::fetchxml::{ColumnRef, MetricQuery};
use crate::odata;
use crate::platform::Level;
use crate::types::{Aggregation, Error};
use crate::xml::Element;
use percent_encoding::percent_decode_str;
use serde::Deserialize;
use serde_json::{Map, Value};

/// Dataverse's largest page.
pub const PAGE_SIZE: u32 = 5000;

/// A read stops here rather than run for hours: 2,000 pages are ten million rows.
pub const MAX_PAGES: u32 = 2000;

#[derive(Deserialize)]
struct Page {
    value: Vec<Map<String, Value>>,
    #[serde(rename = "@Microsoft.Dynamics.CRM.morerecords", default)]
    more_records: bool,
    #[serde(rename = "@Microsoft.Dynamics.CRM.fetchxmlpagingcookie", default)]
    paging_cookie: Option<String>,
}

/// What a read needs to know about the view and the column.
pub struct PageRead<'a> {
    pub query: &'a MetricQuery,
    pub entity_set: &'a str,
    pub primary_id: &'a str,
    pub column: &'a ColumnRef,
    /// The property the column's value comes back under in each row.
    pub value_key: &'a str,
    pub aggregation: Aggregation,
}

/// Reads every row of the view once and aggregates the column. Any failed page
/// fails the whole read: a partial result is never returned. Returns the
/// aggregate and the first page's query, for the record.
pub fn read(session: &mut Session, read: &PageRead) -> Result<(Partial, String), Error> {
    let mut accumulator = Accumulator::new(read.aggregation);
    let mut cookie: Option<String> = None;
    let mut first_query = String::new();
    let mut rows_read: u64 = 0;
    for page_number in 1..=MAX_PAGES {
        let fetch = read
            .query
            .page(
                read.column,
                read.primary_id,
                page_number,
                PAGE_SIZE,
                cookie.as_deref(),
            )
            .map_err(|e| Error::Invalid(format!("the view cannot be read page by page: {e}")))?;
        if page_number == 1 {
            first_query = fetch.clone();
        }
        let path = format!(
            "{}?{}",
            read.entity_set,
            odata::query(&[("fetchXml", &fetch)])
        );
        let page: Page = session.get_json(&path, "view")?;
        if page.value.is_empty() && page.more_records {
            return Err(errors::unexpected_body(
                "page",
                "an empty page claims more records",
            ));
        }
        if page.value.len() > PAGE_SIZE as usize {
            return Err(errors::unexpected_body(
                "page",
                "a page holds more rows than were asked for",
            ));
        }
        for row in &page.value {
            accumulator.add(row.get(read.value_key));
        }
        rows_read += page.value.len() as u64;
        // Hosts show info lines as progress of a long read.
        session.platform().log(
            Level::Info,
            &format!("read page {page_number} of the view ({rows_read} rows so far)"),
        );
        if !page.more_records {
            return Ok((accumulator.finish(), first_query));
        }
        // Without a cookie Dataverse falls back to numbered pages.
        let next = match &page.paging_cookie {
            Some(annotation) => Some(decode_cookie(annotation)?),
            None => None,
        };
        // A cookie names the page's last row; the same cookie twice means the
        // same page again, whose rows would be counted twice.
        if next.is_some() && next == cookie {
            return Err(errors::unexpected_body(
                "page",
                "the paging cookie did not advance (the same page came back twice)",
            ));
        }
        cookie = next;
    }
    Err(Error::Limit(format!(
        "the view has more than {} rows, more than a sync reads; narrow the view with a filter",
        u64::from(MAX_PAGES) * u64::from(PAGE_SIZE)
    )))
}

/// The paging cookie to send back, from the `fetchxmlpagingcookie` annotation:
/// `<cookie pagenumber="2" pagingcookie="..."/>` whose `pagingcookie` is
/// URL-encoded twice.
pub fn decode_cookie(annotation: &str) -> Result<String, Error> {
    let bad = |problem: &str| errors::unexpected_body("paging cookie", problem);
    let element = Element::parse(annotation).map_err(|e| bad(&e.to_string()))?;
    let encoded = element
        .attr("pagingcookie")
        .ok_or_else(|| bad("no pagingcookie attribute"))?;
    let once = percent_decode_str(encoded)
        .decode_utf8()
        .map_err(|_| bad("not UTF-8"))?;
    let twice = percent_decode_str(&once)
        .decode_utf8()
        .map_err(|_| bad("not UTF-8"))?;
    // The decoded cookie must itself be XML, or Dataverse will reject it later.
    Element::parse(&twice).map_err(|e| bad(&e.to_string()))?;
    Ok(twice.into_owned())
}

/// The property a plain FetchXML row carries a column under.
pub fn value_key(column: &ColumnRef, is_lookup: bool) -> String {
    match (&column.alias, is_lookup) {
        (Some(alias), _) => format!("{alias}.{}", column.attribute),
        (None, true) => format!("_{}_value", column.attribute),
        (None, false) => column.attribute.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connection::{Connection, Credential};
    use crate::fetchxml::ViewQuery;
    use crate::platform::fake::FakePlatform;

    const TOKEN: &str = r#"{"token_type":"Bearer","expires_in":3599,"access_token":"tok"}"#;

    /// A page of rows; one with more after it carries a cookie naming its last row.
    fn page(values: &[i64], more: bool) -> String {
        let rows: Vec<String> = values
            .iter()
            .map(|v| format!(r#"{{"accountid":"a{v}","numberofemployees":{v}}}"#))
            .collect();
        let last = values.last().copied().unwrap_or_default();
        let cookie = format!(
            "<cookie pagenumber=\"2\" pagingcookie=\"%253ccookie%2520page%253d%25221%2522%253e%253caccountid%2520last%253d%2522a{last}%2522%2520%252f%253e%253c%252fcookie%253e\" istracking=\"False\" />"
        );
        if more {
            format!(
                r#"{{"value":[{}],"@Microsoft.Dynamics.CRM.morerecords":true,"@Microsoft.Dynamics.CRM.fetchxmlpagingcookie":{}}}"#,
                rows.join(","),
                serde_json::to_string(&cookie).unwrap()
            )
        } else {
            format!(r#"{{"value":[{}]}}"#, rows.join(","))
        }
    }

    fn run(platform: &FakePlatform, aggregation: Aggregation) -> Result<Partial, Error> {
        let conn = Connection {
            id: "c".into(),
            environment_url: "https://org.crm.dynamics.com".into(),
            authority_url: "https://login.microsoftonline.com".into(),
            tenant: "t".into(),
            client_id: "app".into(),
            credential: Credential::ClientSecret("s".into()),
        };
        let query = ViewQuery::parse("<fetch><entity name='account'/></fetch>")
            .unwrap()
            .metric_query(&[], &|_| true)
            .unwrap();
        let mut session = Session::new(platform, &conn);
        let column = ColumnRef::from_cell("numberofemployees");
        read(
            &mut session,
            &PageRead {
                query: &query,
                entity_set: "accounts",
                primary_id: "accountid",
                column: &column,
                value_key: "numberofemployees",
                aggregation,
            },
        )
        .map(|(partial, _)| partial)
    }

    #[test]
    fn pages_are_followed_with_the_cookie_until_the_last() {
        let platform = FakePlatform::default();
        platform
            .respond(200, &[], TOKEN)
            .respond(200, &[], &page(&[1, 2], true))
            .respond(200, &[], &page(&[3], false));
        let total = run(&platform, Aggregation::Sum).unwrap();
        assert_eq!((total.rows, total.sum), (3, 6.0));
        let sent = platform.sent.borrow();
        assert_eq!(sent.len(), 3, "no page after the last");
        let second: String =
            form_urlencoded::parse(sent[2].url.split_once('?').unwrap().1.as_bytes())
                .find(|(k, _)| k == "fetchXml")
                .map(|(_, v)| v.into_owned())
                .unwrap();
        let fetch = Element::parse(&second).unwrap();
        assert_eq!(fetch.attr("page"), Some("2"));
        assert_eq!(
            fetch.attr("paging-cookie"),
            Some("<cookie page=\"1\"><accountid last=\"a2\" /></cookie>")
        );
    }

    #[test]
    fn the_same_page_twice_fails_the_read_instead_of_counting_it_twice() {
        let platform = FakePlatform::default();
        platform
            .respond(200, &[], TOKEN)
            .respond(200, &[], &page(&[1, 2], true))
            .respond(200, &[], &page(&[1, 2], true));
        let error = run(&platform, Aggregation::Sum).unwrap_err();
        assert!(
            matches!(&error, Error::Upstream(message) if message.contains("did not advance")),
            "{error:?}"
        );
    }

    #[test]
    fn a_page_larger_than_asked_for_fails_the_read() {
        let platform = FakePlatform::default();
        let oversized: Vec<i64> = (0..=i64::from(PAGE_SIZE)).collect();
        platform
            .respond(200, &[], TOKEN)
            .respond(200, &[], &page(&oversized, false));
        assert!(matches!(
            run(&platform, Aggregation::Count),
            Err(Error::Upstream(_))
        ));
    }

    #[test]
    fn a_failed_page_fails_the_whole_read() {
        let platform = FakePlatform::default();
        platform
            .respond(200, &[], TOKEN)
            .respond(200, &[], &page(&[1, 2], true))
            .respond(500, &[], "");
        assert!(matches!(
            run(&platform, Aggregation::Sum),
            Err(Error::Upstream(_))
        ));
    }

    #[test]
    fn an_empty_page_claiming_more_is_an_error_not_a_loop() {
        let platform = FakePlatform::default();
        platform
            .respond(200, &[], TOKEN)
            .respond(200, &[], &page(&[], true));
        assert!(matches!(
            run(&platform, Aggregation::Count),
            Err(Error::Upstream(_))
        ));
    }

    #[test]
    fn decodes_the_documented_cookie() {
        let annotation = "<cookie pagenumber=\"2\" pagingcookie=\"%253ccookie%2520page%253d%25221%2522%253e%253cfullname%2520last%253d%2522Robert%2520Lyon%2520%2528sample%2529%2522%2520first%253d%2522Susanna%2520Stubberod%2520%2528sample%2529%2522%2520%252f%253e%253ccontactid%2520last%253d%2522%257b30717E9C-643F-ED11-9DB0-002248225E95%257d%2522%2520first%253d%2522%257b20717E9C-643F-ED11-9DB0-002248225E95%257d%2522%2520%252f%253e%253c%252fcookie%253e\" istracking=\"False\" />";
        assert_eq!(
            decode_cookie(annotation).unwrap(),
            "<cookie page=\"1\"><fullname last=\"Robert Lyon (sample)\" first=\"Susanna Stubberod (sample)\" /><contactid last=\"{30717E9C-643F-ED11-9DB0-002248225E95}\" first=\"{20717E9C-643F-ED11-9DB0-002248225E95}\" /></cookie>"
        );
    }

    #[test]
    fn malformed_cookies_are_errors_not_panics() {
        for bad in [
            "",
            "<cookie/>",
            "<cookie pagingcookie=\"%3cbroken\"/>",
            "<cookie pagingcookie=\"%25ZZ\"/>",
            "not xml",
        ] {
            assert!(decode_cookie(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rows_carry_columns_under_their_odata_names() {
        assert_eq!(value_key(&ColumnRef::from_cell("name"), false), "name");
        assert_eq!(
            value_key(&ColumnRef::from_cell("customerid"), true),
            "_customerid_value"
        );
        assert_eq!(
            value_key(&ColumnRef::from_cell("acct.ownerid"), true),
            "acct.ownerid"
        );
    }
}
