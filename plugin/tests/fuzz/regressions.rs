//! Inputs the targets once failed on, kept as plain tests so the bugs stay fixed.

use crate::scripted::{Answer, Fit, PartOutcome, Scripted};
use dynamics365_plugin::auth;
use dynamics365_plugin::client::Session;
use dynamics365_plugin::connection::{Connection, Credential};
use dynamics365_plugin::fetchxml::{ColumnRef, Function, ViewQuery};
use dynamics365_plugin::metrics;
use dynamics365_plugin::platform::HttpResponse;
use dynamics365_plugin::split::SplitPlan;
use dynamics365_plugin::types::{Aggregation, CurrencyChoice, MetricSpec, ViewKind, ViewRef};
use dynamics365_plugin::xml::Element;
use serde_json::json;
use std::sync::mpsc;
use std::time::Duration;

fn connection() -> Connection {
    Connection {
        id: "c".into(),
        environment_url: "https://org.crm.dynamics.com".into(),
        authority_url: "https://login.microsoftonline.com".into(),
        tenant: "contoso.onmicrosoft.com".into(),
        client_id: "app".into(),
        credential: Credential::ClientSecret("s".into()),
    }
}

/// Found by `metrics::fetch_and_aggregate` (any flow's sign-in) and
/// `auth::accept_*`: `expires_at = now + expires_in` overflows; a debug build
/// panics, a release build wraps to a token that is expired on arrival. The
/// lifetime may also come as the string "18446744073709551615", or as the second
/// field of an array body (`["t",18446744073709551615]`), which serde reads too.
#[test]
fn a_token_lifetime_near_u64_max_is_no_overflow() {
    let platform = Scripted::new(&[]);
    let conn = connection();
    let response = HttpResponse {
        status: 200,
        headers: Vec::new(),
        body: br#"{"access_token":"t","expires_in":18446744073709551615}"#.to_vec(),
    };
    let token = auth::accept_token_response(&platform, &conn, &response);
    assert_eq!(token.ok().as_deref(), Some("t"));
    assert_eq!(auth::cached_token(&platform, &conn).as_deref(), Some("t"));
}

/// Found by `client::Session retries`: a 429 whose `Retry-After` is 0 costs
/// nothing against the retry budget, so a server that keeps answering so is
/// asked forever (here until the test's cap of 1,000 requests).
#[test]
fn throttling_with_retry_after_zero_ends() {
    let throttled = Answer::Raw {
        status: 429,
        headers: vec![("retry-after".into(), "0".into())],
        body: Vec::new(),
    };
    let platform = Scripted::endless(&[throttled], 1000);
    let conn = connection();
    platform.signed_in(&conn.client_id, &conn.environment_url);
    let mut session = Session::new(&platform, &conn);
    assert!(session.get("WhoAmI", "identity").is_err());
    assert!(platform.sent() < 100, "{} requests", platform.sent());
}

/// Found by `xml::Element round trip`: `<![CDATA[]]>` parses to an empty text
/// node, which `to_xml` writes as nothing, so the tree read back differs.
#[test]
fn empty_cdata_survives_a_round_trip() {
    let tree = Element::parse("<fetch><![CDATA[]]></fetch>").unwrap();
    assert_eq!(Element::parse(&tree.to_xml()).unwrap(), tree);
}

/// Found by `xml::Element round trip`: quick-xml reads `< />` as an element
/// without a name, and `<a '="x"/>` as an attribute named `'`; the parser keeps
/// them and `to_xml` writes them back as `</>` and `'="x"`, which no parser
/// reads. A view holding one yields derived queries (`MetricQuery::aggregate`,
/// `page`, ...) that are not XML.
#[test]
fn names_that_are_no_xml_names_are_refused() {
    for view in [
        "<fetch><entity name='account'><filter>< /></filter></entity></fetch>",
        "<fetch><entity name='account'><filter '=\"'\" \"=\"\" /></entity></fetch>",
    ] {
        if let Ok(view) = ViewQuery::parse(view) {
            let query = view.metric_query(&[], &|_| true).unwrap();
            let column = ColumnRef::from_cell("name");
            let xml = query
                .aggregate(&column, &[Function::Count], "accountid", None)
                .unwrap();
            assert!(Element::parse(&xml).is_ok(), "wrote {xml}");
        }
    }
}

/// Found by reading `split::SplitPlan::new` (its target keeps piece counts
/// small): it formats all `pieces - 1` cuts before dropping repeats, so
/// `u32::MAX` pieces take minutes, and over a span of years also keep billions
/// of cuts (about 190 GB). The plugin asks for 4, so only a caller passing a
/// large count is affected. The span here is empty, so that the thread left
/// running after the deadline costs a core but no memory.
#[test]
fn a_plan_of_many_pieces_is_made_quickly() {
    let (done, finished) = mpsc::channel();
    std::thread::spawn(move || {
        let plan = SplitPlan::new("2024-01-01T00:00:00Z", "2024-01-01T00:00:00Z", u32::MAX);
        let _ = done.send(plan.map(|p| p.len()));
    });
    let parts = finished
        .recv_timeout(Duration::from_secs(5))
        .expect("SplitPlan::new(.., u32::MAX) still running after 5 s");
    assert_eq!(parts, Ok(1), "an instant is one part");
}

/// Found by `metrics::fetch_and_aggregate`: a part's count is read as
/// `n as u64` (saturating), and the parts of a split view are added with `+=`
/// in `Partial::merge`; two parts claiming 1e300 rows overflow (a debug build
/// panics, a release build wraps to a small, wrong count). Here the view is
/// over the aggregate limit, split into four parts, each answering 1e300.
#[test]
fn huge_counts_of_split_parts_do_not_overflow() {
    let fit = Fit {
        values: vec![json!(1e300)],
        more: false,
        cookie: None,
        fetch_xml: "<fetch><entity name='account'/></fetch>".into(),
        layout_xml: "<grid><row><cell name='name'/></row></grid>".into(),
        sitemap_xml: String::new(),
        stamp: "2024-05-01T10:00:00Z".into(),
        created: ["2020-01-01T00:00:00Z".into(), "2024-01-01T00:00:00Z".into()],
        stale: false,
        kind: "String".into(),
        keyed: true,
        shows: true,
        guid: String::new(),
        text: String::new(),
        returned: "account".into(),
        parts: Vec::new(),
        part_delta: 0,
    };
    let answer = |parts: &[PartOutcome]| Answer::Fitting {
        status: 200,
        fit: Box::new(Fit {
            parts: parts.to_vec(),
            ..fit.clone()
        }),
        damage: Vec::new(),
    };
    let script = [
        answer(&[]),                                    // the view
        answer(&[]),                                    // its table
        answer(&[]),                                    // the column
        answer(&[PartOutcome::Ok, PartOutcome::Limit]), // over the limit
        answer(&[]),                                    // first and last createdon
        answer(&[]),                                    // four parts
    ];
    let platform = Scripted::new(&script);
    let conn = connection();
    platform.signed_in(&conn.client_id, &conn.environment_url);
    let spec = MetricSpec {
        entity: "account".into(),
        view: ViewRef {
            id: "dd621d4a-d898-e711-80e7-00155db763be".into(),
            kind: ViewKind::System,
        },
        column: "name".into(),
        aggregation: Aggregation::Count,
        currency: CurrencyChoice::Base,
    };
    let mut session = Session::new(&platform, &conn);
    if let Ok(measurement) = metrics::fetch_and_aggregate(&mut session, &spec, &[], None) {
        assert_eq!(measurement.records, u64::MAX, "saturated, not wrapped");
    }
}
