//! The engine against answers computed straight from the sample rows.

use super::*;
use crate::data::{Row, dataset};
use crate::format::{parse_datetime, round_to};
use crate::xml::escape_attr;
use percent_encoding::percent_decode_str;
use serde_json::json;
use std::collections::{BTreeSet, HashMap, HashSet};

fn run(xml: &str) -> FetchResult {
    execute(dataset(), xml, None, &Annotations::all()).unwrap_or_else(|e| panic!("{e}\n{xml}"))
}

fn fail(xml: &str) -> ODataError {
    execute(dataset(), xml, None, &Annotations::all()).expect_err(xml)
}

fn rows(entity: &str) -> &'static [Row] {
    dataset().rows(entity)
}

fn int(row: &Row, key: &str) -> Option<i64> {
    row.get(key).and_then(Value::as_i64)
}

fn text<'r>(row: &'r Row, key: &str) -> Option<&'r str> {
    row.get(key).and_then(Value::as_str)
}

fn ids_of(records: &[Map<String, Value>], key: &str) -> BTreeSet<String> {
    records
        .iter()
        .map(|r| r[key].as_str().unwrap().to_string())
        .collect()
}

fn expected_ids(entity: &str, key: &str, keep: impl Fn(&Row) -> bool) -> BTreeSet<String> {
    rows(entity)
        .iter()
        .filter(|r| keep(r))
        .map(|r| text(r, key).unwrap().to_string())
        .collect()
}

/// Plain query on one entity with one filter, all rows on one page.
fn filtered(entity: &str, filter: &str) -> BTreeSet<String> {
    let result = run(&format!(
        "<fetch><entity name='{entity}'><attribute name='{entity}id'/>{filter}</entity></fetch>"
    ));
    assert!(!result.more_records);
    ids_of(&result.records, &format!("{entity}id"))
}

#[test]
fn conditions_select_exactly_the_matching_rows() {
    let open = filtered(
        "opportunity",
        "<filter><condition attribute='statecode' operator='eq' value='0'/></filter>",
    );
    assert_eq!(
        open,
        expected_ids("opportunity", "opportunityid", |r| int(r, "statecode")
            == Some(0))
    );
    // Nested or inside and; ge on money; ne excludes nulls as in SQL.
    let nested = filtered(
        "opportunity",
        "<filter type='and'>
            <condition attribute='estimatedvalue_base' operator='ge' value='100000'/>
            <filter type='or'>
              <condition attribute='statecode' operator='eq' value='1'/>
              <condition attribute='closeprobability' operator='ne' value='50'/>
            </filter>
         </filter>",
    );
    assert_eq!(
        nested,
        expected_ids("opportunity", "opportunityid", |r| {
            r.get("estimatedvalue_base")
                .and_then(Value::as_f64)
                .is_some_and(|v| v >= 100_000.0)
                && (int(r, "statecode") == Some(1)
                    || int(r, "closeprobability").is_some_and(|p| p != 50))
        })
    );
    let missing = filtered(
        "account",
        "<filter><condition attribute='accountnumber' operator='null'/></filter>",
    );
    assert_eq!(
        missing,
        expected_ids("account", "accountid", |r| !r.contains_key("accountnumber"))
    );
    assert!(!missing.is_empty());
}

#[test]
fn in_and_not_in_use_value_children() {
    let high_or_low = filtered(
        "incident",
        "<filter><condition attribute='prioritycode' operator='in'><value>1</value><value>3</value></condition></filter>",
    );
    assert_eq!(
        high_or_low,
        expected_ids("incident", "incidentid", |r| matches!(
            int(r, "prioritycode"),
            Some(1 | 3)
        ))
    );
    let not_retail = filtered(
        "account",
        "<filter><condition attribute='industrycode' operator='not-in'><value>25</value><value>33</value></condition></filter>",
    );
    assert_eq!(
        not_retail,
        expected_ids("account", "accountid", |r| {
            int(r, "industrycode").is_some_and(|i| i != 25 && i != 33)
        })
    );
}

#[test]
fn text_dates_and_the_caller() {
    let like = filtered(
        "account",
        "<filter><condition attribute='name' operator='like' value=\"%margie's%\"/></filter>",
    );
    assert_eq!(
        like,
        expected_ids("account", "accountid", |r| text(r, "name")
            .unwrap()
            .contains("Margie's"))
    );
    assert_eq!(like.len(), 15);
    let begins = filtered(
        "account",
        "<filter><condition attribute='name' operator='begins-with' value='CONTOSO'/></filter>",
    );
    assert_eq!(begins.len(), 15);
    let since = filtered(
        "incident",
        "<filter><condition attribute='createdon' operator='on-or-after' value='2025-01-01'/></filter>",
    );
    let cutoff = parse_datetime("2025-01-01").unwrap();
    assert_eq!(
        since,
        expected_ids("incident", "incidentid", |r| {
            parse_datetime(text(r, "createdon").unwrap()).unwrap() >= cutoff
        })
    );
    let mine = filtered(
        "account",
        "<filter><condition attribute='ownerid' operator='eq-userid'/></filter>",
    );
    let me = dataset().application_user_id.clone();
    assert_eq!(
        mine,
        expected_ids("account", "accountid", |r| text(r, "ownerid")
            == Some(me.as_str()))
    );
    assert!(!mine.is_empty());
    let between = filtered(
        "account",
        "<filter><condition attribute='numberofemployees' operator='between'><value>100</value><value>200</value></condition></filter>",
    );
    assert_eq!(
        between,
        expected_ids("account", "accountid", |r| {
            int(r, "numberofemployees").is_some_and(|n| (100..=200).contains(&n))
        })
    );
}

#[test]
fn outer_joins_keep_parents_and_inner_joins_drop_them() {
    let link = |kind: &str, filter: &str| {
        run(&format!(
            "<fetch><entity name='contact'><attribute name='fullname'/>
               <link-entity name='account' from='accountid' to='parentcustomerid' link-type='{kind}' alias='acct'>
                 <attribute name='name'/>{filter}
               </link-entity></entity></fetch>"
        ))
    };
    let outer = link("outer", "");
    assert_eq!(outer.records.len(), rows("contact").len());
    let orphans = outer
        .records
        .iter()
        .filter(|r| !r.contains_key("acct.name"))
        .count();
    assert_eq!(
        orphans,
        rows("contact")
            .iter()
            .filter(|r| !r.contains_key("parentcustomerid"))
            .count()
    );
    assert!(orphans > 0);
    let inner = link("inner", "");
    assert_eq!(inner.records.len(), rows("contact").len() - orphans);
    // The joined column carries its original name, and its value is the parent's.
    let names: HashMap<&str, &str> = rows("account")
        .iter()
        .map(|r| (text(r, "accountid").unwrap(), text(r, "name").unwrap()))
        .collect();
    let first = &inner.records[0];
    assert_eq!(
        first["acct.name@OData.Community.Display.V1.AttributeName"],
        "name"
    );
    let contact = dataset()
        .row_by_id("contact", first["contactid"].as_str().unwrap())
        .unwrap();
    assert_eq!(
        first["acct.name"],
        json!(names[text(contact, "parentcustomerid").unwrap()])
    );
    // A filter inside an inner join restricts the parents.
    let large = link(
        "inner",
        "<filter><condition attribute='numberofemployees' operator='ge' value='5000'/></filter>",
    );
    let employees: HashMap<&str, i64> = rows("account")
        .iter()
        .filter_map(|r| Some((text(r, "accountid")?, int(r, "numberofemployees")?)))
        .collect();
    let expected = rows("contact")
        .iter()
        .filter(|c| {
            text(c, "parentcustomerid")
                .and_then(|a| employees.get(a))
                .is_some_and(|n| *n >= 5000)
        })
        .count();
    assert_eq!(large.records.len(), expected);
    // In an outer join the same filter only blanks the joined columns.
    let outer_filtered = link(
        "outer",
        "<filter><condition attribute='numberofemployees' operator='ge' value='5000'/></filter>",
    );
    assert_eq!(outer_filtered.records.len(), rows("contact").len());
    assert_eq!(
        outer_filtered
            .records
            .iter()
            .filter(|r| r.contains_key("acct.name"))
            .count(),
        expected
    );
}

#[test]
fn one_to_many_joins_repeat_the_parent_and_disable_cookies() {
    let view = dataset()
        .view_by_name("Accounts with Open Opportunities")
        .unwrap();
    let result = run(&view.fetchxml);
    let open_with_account = rows("opportunity")
        .iter()
        .filter(|r| int(r, "statecode") == Some(0) && r.contains_key("parentaccountid"))
        .count();
    assert_eq!(result.records.len(), open_with_account);
    let distinct_accounts = ids_of(&result.records, "accountid").len();
    assert!(distinct_accounts < result.records.len());
    // Paged, the join falls back to simple paging: more records, no cookie.
    let paged = run(&view.fetchxml.replace("<fetch ", "<fetch count='50' "));
    assert_eq!(paged.records.len(), 50);
    assert!(paged.more_records);
    assert_eq!(paged.paging_cookie, None);
}

fn aggregate_row(xml: &str) -> Map<String, Value> {
    let result = run(xml);
    assert!(result.aggregate);
    assert_eq!(result.records.len(), 1);
    result.records.into_iter().next().unwrap()
}

#[test]
fn every_aggregate_ignores_nulls_except_count() {
    let row = aggregate_row(
        "<fetch aggregate='true'><entity name='account'>
           <attribute name='numberofemployees' alias='Average' aggregate='avg'/>
           <attribute name='numberofemployees' alias='Count' aggregate='count'/>
           <attribute name='numberofemployees' alias='ColumnCount' aggregate='countcolumn'/>
           <attribute name='numberofemployees' alias='Distinct' aggregate='countcolumn' distinct='true'/>
           <attribute name='numberofemployees' alias='Maximum' aggregate='max'/>
           <attribute name='numberofemployees' alias='Minimum' aggregate='min'/>
           <attribute name='numberofemployees' alias='Sum' aggregate='sum'/>
         </entity></fetch>",
    );
    let values: Vec<i64> = rows("account")
        .iter()
        .filter_map(|r| int(r, "numberofemployees"))
        .collect();
    assert!(
        values.len() < rows("account").len(),
        "some accounts have no count"
    );
    let sum: i64 = values.iter().sum();
    assert_eq!(row["Count"], json!(rows("account").len()));
    assert_eq!(row["ColumnCount"], json!(values.len()));
    let distinct: HashSet<i64> = values.iter().copied().collect();
    assert_eq!(row["Distinct"], json!(distinct.len()));
    assert_eq!(row["Sum"], json!(sum));
    assert_eq!(row["Maximum"], json!(values.iter().max().unwrap()));
    assert_eq!(row["Minimum"], json!(values.iter().min().unwrap()));
    let average = row["Average"].as_f64().unwrap();
    assert!((average - sum as f64 / values.len() as f64).abs() < 1e-9);
    assert_eq!(
        row["Count@OData.Community.Display.V1.FormattedValue"],
        json!(crate::format::format_integer(rows("account").len() as i64))
    );
}

#[test]
fn money_sums_and_date_extremes() {
    let row = aggregate_row(
        "<fetch aggregate='true'><entity name='opportunity'>
           <attribute name='estimatedvalue_base' alias='total' aggregate='sum'/>
           <attribute name='createdon' alias='first' aggregate='min'/>
           <attribute name='createdon' alias='last' aggregate='max'/>
           <filter><condition attribute='statecode' operator='eq' value='0'/></filter>
         </entity></fetch>",
    );
    let open: Vec<&Row> = rows("opportunity")
        .iter()
        .filter(|r| int(r, "statecode") == Some(0))
        .collect();
    let total: f64 = open
        .iter()
        .filter_map(|r| r.get("estimatedvalue_base")?.as_f64())
        .sum();
    assert!((row["total"].as_f64().unwrap() - round_to(total, 2)).abs() < 0.005);
    assert!(
        row["total@OData.Community.Display.V1.FormattedValue"]
            .as_str()
            .unwrap()
            .starts_with('$')
    );
    let dates: Vec<&str> = open.iter().map(|r| text(r, "createdon").unwrap()).collect();
    assert_eq!(row["first"], json!(dates.iter().min().unwrap()));
    assert_eq!(row["last"], json!(dates.iter().max().unwrap()));
    assert!(row["last"].as_str().unwrap().ends_with('Z'));
}

#[test]
fn aggregates_over_nothing_omit_the_value() {
    let row = aggregate_row(
        "<fetch aggregate='true'><entity name='account'>
           <attribute name='accountid' alias='rows' aggregate='count'/>
           <attribute name='revenue' alias='filled' aggregate='countcolumn'/>
           <attribute name='revenue_base' alias='total' aggregate='sum'/>
           <attribute name='revenue_base' alias='mean' aggregate='avg'/>
           <attribute name='revenue_base' alias='top' aggregate='max'/>
           <filter><condition attribute='revenue' operator='null'/></filter>
         </entity></fetch>",
    );
    let empty = rows("account")
        .iter()
        .filter(|r| !r.contains_key("revenue"))
        .count();
    assert_eq!(row["rows"], json!(empty));
    assert_eq!(row["filled"], json!(0));
    for omitted in ["total", "mean", "top"] {
        assert!(!row.contains_key(omitted), "{omitted}");
    }
}

#[test]
fn aggregates_inside_a_join_and_type_errors() {
    // The rewrite the plugin sends for a joined column: count on the root, the
    // value inside the link-entity.
    let row = aggregate_row(
        "<fetch aggregate='true'><entity name='opportunity'>
           <attribute name='opportunityid' alias='metric_rows' aggregate='count'/>
           <filter><condition attribute='statecode' operator='eq' value='0'/></filter>
           <link-entity name='account' from='accountid' to='customerid' link-type='outer' alias='customeraccount'>
             <attribute name='numberofemployees' alias='metric_value' aggregate='sum'/>
           </link-entity>
         </entity></fetch>",
    );
    let employees: HashMap<&str, i64> = rows("account")
        .iter()
        .filter_map(|r| Some((text(r, "accountid")?, int(r, "numberofemployees")?)))
        .collect();
    let open: Vec<&Row> = rows("opportunity")
        .iter()
        .filter(|r| int(r, "statecode") == Some(0))
        .collect();
    let expected: i64 = open
        .iter()
        .filter_map(|r| employees.get(text(r, "customerid")?))
        .sum();
    assert_eq!(row["metric_rows"], json!(open.len()));
    assert_eq!(row["metric_value"], json!(expected));

    let error = fail(
        "<fetch aggregate='true'><entity name='account'><attribute name='name' alias='x' aggregate='sum'/></entity></fetch>",
    );
    assert_eq!(error.status, 400);
    let error = fail(
        "<fetch aggregate='true'><entity name='account'><attribute name='name' aggregate='count'/></entity></fetch>",
    );
    assert!(error.message.contains("alias"));
    let error = fail(
        "<fetch><entity name='account'><attribute name='name' alias='x' aggregate='count'/></entity></fetch>",
    );
    assert!(error.message.contains("aggregate='true'"));
}

#[test]
fn aggregates_over_more_than_50000_rows_fail() {
    let open_leads = dataset().view_by_name("Open Leads").unwrap();
    let count_of = |fetch: &str| {
        fetch
            .replace("<fetch ", "<fetch aggregate='true' ")
            .replace(
                "<attribute name='leadid' />",
                "<attribute name='leadid' alias='n' aggregate='count' />",
            )
            .lines()
            .filter(|l| !l.contains("<attribute name='") || l.contains("aggregate="))
            .filter(|l| !l.contains("<order "))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let error = fail(&count_of(&open_leads.fetchxml));
    assert_eq!(error.status, 400);
    assert_eq!(error.code, "0x8004E023");
    assert_eq!(
        error.message,
        "AggregateQueryRecordLimit exceeded. Cannot perform this operation."
    );
    let hot = dataset().view_by_name("Hot Leads").unwrap();
    let row = aggregate_row(&count_of(&hot.fetchxml));
    let expected = rows("lead")
        .iter()
        .filter(|r| int(r, "statecode") == Some(0) && int(r, "leadqualitycode") == Some(1))
        .count();
    assert_eq!(row["n"], json!(expected));
    // A lower per-query limit applies too.
    let error = fail(
        "<fetch aggregate='true' aggregatelimit='10'><entity name='account'><attribute name='accountid' alias='n' aggregate='count'/></entity></fetch>",
    );
    assert_eq!(error.code, "0x8004E023");
}

/// Pages through `fetch` (which has a `{page}` and `{cookie}` placeholder) the way
/// a client does, returning the records of every page.
fn page_through(fetch: &str) -> Vec<Vec<Map<String, Value>>> {
    let mut pages = Vec::new();
    let mut cookie = String::new();
    for page in 1.. {
        let xml = fetch
            .replace("{page}", &page.to_string())
            .replace("{cookie}", &cookie);
        let result = run(&xml);
        pages.push(result.records);
        if !result.more_records {
            assert_eq!(result.paging_cookie, None, "no cookie on the last page");
            break;
        }
        let outer = crate::xml::Element::parse(result.paging_cookie.as_deref().unwrap()).unwrap();
        assert_eq!(
            outer.attr("pagenumber"),
            Some((page + 1).to_string().as_str())
        );
        assert_eq!(outer.attr("istracking"), Some("False"));
        let encoded = outer.attr("pagingcookie").unwrap();
        assert!(encoded.starts_with("%253ccookie%2520page%253d%2522"));
        let once = percent_decode_str(encoded)
            .decode_utf8()
            .unwrap()
            .into_owned();
        let inner = percent_decode_str(&once)
            .decode_utf8()
            .unwrap()
            .into_owned();
        assert!(
            inner.starts_with(&format!("<cookie page=\"{page}\">")),
            "{inner}"
        );
        cookie = format!(" paging-cookie=\"{}\"", escape_attr(&inner));
        assert!(page < 100, "paging does not end");
    }
    pages
}

#[test]
fn paging_cookies_reach_every_row_exactly_once() {
    let pages = page_through(
        "<fetch count='150' page='{page}'{cookie}><entity name='contact'><attribute name='fullname'/></entity></fetch>",
    );
    assert_eq!(pages.len(), 6);
    assert!(pages[..5].iter().all(|p| p.len() == 150));
    let all: Vec<String> = pages
        .iter()
        .flatten()
        .map(|r| r["contactid"].as_str().unwrap().to_string())
        .collect();
    let unique: BTreeSet<String> = all.iter().cloned().collect();
    assert_eq!(all.len(), unique.len());
    assert_eq!(unique, expected_ids("contact", "contactid", |_| true));
}

#[test]
fn paging_cookies_keep_the_query_order() {
    let pages = page_through(
        "<fetch count='70' page='{page}'{cookie}><entity name='account'><attribute name='name'/><order attribute='revenue' descending='true'/><filter><condition attribute='statecode' operator='eq' value='0'/></filter></entity></fetch>",
    );
    let all: Vec<&Map<String, Value>> = pages.iter().flatten().collect();
    let active = rows("account")
        .iter()
        .filter(|r| int(r, "statecode") == Some(0))
        .count();
    assert_eq!(all.len(), active);
    assert_eq!(
        ids_of(
            &all.iter().map(|r| (*r).clone()).collect::<Vec<_>>(),
            "accountid"
        )
        .len(),
        active
    );
    let revenues: Vec<f64> = all
        .iter()
        .map(|r| {
            r.get("revenue")
                .and_then(Value::as_f64)
                .unwrap_or(f64::NEG_INFINITY)
        })
        .collect();
    assert!(
        revenues.windows(2).all(|w| w[0] >= w[1]),
        "descending, nulls last"
    );
}

#[test]
fn cookies_page_past_50000_rows_but_simple_paging_does_not() {
    let pages = page_through(
        "<fetch count='5000' page='{page}'{cookie}><entity name='lead'><attribute name='leadid'/><filter><condition attribute='statecode' operator='eq' value='0'/></filter></entity></fetch>",
    );
    let open = rows("lead")
        .iter()
        .filter(|r| int(r, "statecode") == Some(0))
        .count();
    assert!(open > 50_000);
    let seen: HashSet<&str> = pages
        .iter()
        .flatten()
        .map(|r| r["leadid"].as_str().unwrap())
        .collect();
    assert_eq!(seen.len(), open);
    assert_eq!(pages.iter().map(Vec::len).sum::<usize>(), open);
    let error = fail(
        "<fetch count='5000' page='11'><entity name='lead'><attribute name='leadid'/></entity></fetch>",
    );
    assert_eq!(error.status, 400);
    assert!(error.message.contains("50000"));
}

#[test]
fn simple_paging_and_default_page_size() {
    let all = run("<fetch><entity name='opportunity'><attribute name='name'/></entity></fetch>");
    assert_eq!(all.records.len(), 2_000);
    assert!(!all.more_records);
    let second = run(
        "<fetch count='500' page='2'><entity name='opportunity'><attribute name='name'/></entity></fetch>",
    );
    assert_eq!(second.records, all.records[500..1000].to_vec());
    let default_page =
        run("<fetch><entity name='lead'><attribute name='leadid'/></entity></fetch>");
    assert_eq!(default_page.records.len(), 5_000);
    assert!(default_page.more_records);
    let top =
        run("<fetch top='3'><entity name='opportunity'><attribute name='name'/></entity></fetch>");
    assert_eq!(top.records, all.records[..3].to_vec());
    assert!(!top.more_records);
}

#[test]
fn records_omit_nulls_and_carry_keys_etags_and_currency() {
    let result = run(
        "<fetch><entity name='account'><attribute name='name'/><attribute name='accountnumber'/><attribute name='revenue'/><attribute name='ownerid'/></entity></fetch>",
    );
    let without_number = result
        .records
        .iter()
        .find(|r| {
            let row = dataset()
                .row_by_id("account", r["accountid"].as_str().unwrap())
                .unwrap();
            !row.contains_key("accountnumber") && row.contains_key("revenue")
        })
        .unwrap();
    assert!(!without_number.contains_key("accountnumber"));
    assert!(
        without_number["@odata.etag"]
            .as_str()
            .unwrap()
            .starts_with("W/\"")
    );
    assert!(without_number.contains_key("_transactioncurrencyid_value"));
    // The currency comes with a money column even when the amount is null.
    let without_revenue = result
        .records
        .iter()
        .find(|r| !r.contains_key("revenue"))
        .unwrap();
    assert!(without_revenue.contains_key("_transactioncurrencyid_value"));
    assert_eq!(
        without_number["_ownerid_value@Microsoft.Dynamics.CRM.lookuplogicalname"],
        "systemuser"
    );
    assert!(!without_number.contains_key("ownerid"));
    assert!(result.columns.contains(&"accountid".to_string()));
}

#[test]
fn aliased_columns_and_requested_annotations() {
    let xml = "<fetch top='5'><entity name='account'><attribute name='name' alias='companyname'/><attribute name='ownerid' alias='owner'/><attribute name='revenue'/></entity></fetch>";
    let annotated = run(xml);
    let record = &annotated.records[0];
    assert_eq!(
        record["companyname@OData.Community.Display.V1.AttributeName"],
        "name"
    );
    assert!(!record.contains_key("name"));
    assert!(record["owner"].as_str().is_some_and(crate::data::is_guid));
    assert_eq!(
        record["owner@Microsoft.Dynamics.CRM.lookuplogicalname"],
        "systemuser"
    );
    let plain = execute(dataset(), xml, None, &Annotations::none()).unwrap();
    assert!(
        plain
            .records
            .iter()
            .flat_map(|r| r.keys())
            .all(|k| !k.contains("@OData") && !k.contains("@Microsoft"))
    );
}

#[test]
fn distinct_removes_repeated_rows() {
    let result = run(
        "<fetch distinct='true'><entity name='opportunity'><attribute name='ownerid'/></entity></fetch>",
    );
    let owners: HashSet<&str> = rows("opportunity")
        .iter()
        .filter_map(|r| text(r, "ownerid"))
        .collect();
    assert_eq!(result.records.len(), owners.len());
    let repeated =
        run("<fetch><entity name='opportunity'><attribute name='ownerid'/></entity></fetch>");
    assert_eq!(repeated.records.len(), 2_000);
}

#[test]
fn bad_queries_get_dataverse_errors() {
    let unknown_operator = fail(
        "<fetch><entity name='account'><filter><condition attribute='name' operator='sounds-like' value='x'/></filter></entity></fetch>",
    );
    assert_eq!(unknown_operator.status, 400);
    assert!(unknown_operator.message.contains("'sounds-like'"));
    let unimplemented = fail(
        "<fetch><entity name='account'><filter><condition attribute='createdon' operator='last-x-days' value='3'/></filter></entity></fetch>",
    );
    assert_eq!(unimplemented.status, 501);
    let attribute = fail("<fetch><entity name='account'><attribute name='nope'/></entity></fetch>");
    assert_eq!(attribute.code, "0x80041103");
    assert_eq!(
        attribute.message,
        "'account' entity doesn't contain attribute with Name = 'nope' and NameMapping = 'Logical'."
    );
    assert_eq!(fail("<fetch><entity name='nope'/></fetch>").status, 400);
    assert_eq!(fail("<fetch><entity name='account'>").status, 400);
    assert_eq!(fail("not xml at all").status, 400);
    assert_eq!(
        fail("<fetch top='5' count='5'><entity name='account'/></fetch>").status,
        400
    );
    assert_eq!(fail("<fetch><entity name='account'><filter><condition attribute='numberofemployees' operator='eq' value='many'/></filter></entity></fetch>").status, 400);
    assert_eq!(fail("<fetch><entity name='account'><filter><condition attribute='statecode' operator='in'/></filter></entity></fetch>").status, 400);
    let mut links = String::new();
    for i in 0..16 {
        links.push_str(&format!(
            "<link-entity name='contact' from='contactid' to='primarycontactid' alias='c{i}'/>"
        ));
    }
    let too_many = fail(&format!(
        "<fetch><entity name='account'>{links}</entity></fetch>"
    ));
    assert_eq!(too_many.code, "0x8004430D");
    let wrong_set = execute(
        dataset(),
        "<fetch><entity name='account'/></fetch>",
        Some("contacts"),
        &Annotations::all(),
    )
    .unwrap_err();
    assert_eq!(wrong_set.status, 400);
}

#[test]
fn every_view_runs_and_returns_what_its_filter_says() {
    let data = dataset();
    for view in &data.views {
        let result = execute(data, &view.fetchxml, None, &Annotations::all())
            .unwrap_or_else(|e| panic!("{}: {e}", view.name));
        assert!(!result.aggregate);
    }
    let won = run(&data.view_by_name("Won Opportunities").unwrap().fetchxml);
    assert_eq!(
        ids_of(&won.records, "opportunityid"),
        expected_ids("opportunity", "opportunityid", |r| int(r, "statecode")
            == Some(1))
    );
    let dates: Vec<&str> = won
        .records
        .iter()
        .map(|r| r["actualclosedate"].as_str().unwrap())
        .collect();
    assert!(
        dates.windows(2).all(|w| w[0] >= w[1]),
        "ordered by actualclosedate descending"
    );
}

/// Accounts with at least one open opportunity, and how many open ones each has.
fn open_deals_per_account() -> HashMap<String, usize> {
    let mut per_account: HashMap<String, usize> = HashMap::new();
    for row in rows("opportunity") {
        if int(row, "statecode") == Some(0)
            && let Some(account) = text(row, "parentaccountid")
        {
            *per_account.entry(account.to_string()).or_default() += 1;
        }
    }
    per_account
}

fn account_link(link_type: &str, link_body: &str) -> String {
    format!(
        "<fetch><entity name='account'><attribute name='name'/><attribute name='accountid'/>
           <link-entity name='opportunity' from='parentaccountid' to='accountid' link-type='{link_type}' alias='deal'>
             <filter><condition attribute='statecode' operator='eq' value='0'/></filter>{link_body}
           </link-entity></entity></fetch>"
    )
}

#[test]
fn exists_and_in_links_keep_each_parent_once_where_inner_repeats_it() {
    let per_account = open_deals_per_account();
    let with_deals: BTreeSet<String> = per_account.keys().cloned().collect();
    let open_with_account: usize = per_account.values().sum();
    assert!(open_with_account > with_deals.len());

    let inner = run(&account_link("inner", ""));
    assert_eq!(inner.records.len(), open_with_account, "inner repeats");
    assert_eq!(ids_of(&inner.records, "accountid"), with_deals);
    for link_type in ["exists", "in"] {
        let semi = run(&account_link(link_type, ""));
        assert_eq!(semi.records.len(), with_deals.len(), "{link_type}");
        assert_eq!(ids_of(&semi.records, "accountid"), with_deals);
        // Pages of a semi-join can use cookies: no row is repeated.
        let paged = run(&account_link(link_type, "").replace("<fetch>", "<fetch count='50'>"));
        assert!(paged.more_records && paged.paging_cookie.is_some());
    }
    // Aggregates see the same difference.
    let count = |link_type: &str| {
        aggregate_row(
            &account_link(link_type, "").replace(
                "<fetch><entity name='account'><attribute name='name'/><attribute name='accountid'/>",
                "<fetch aggregate='true'><entity name='account'><attribute name='accountid' alias='n' aggregate='count'/>",
            ),
        )["n"]
            .as_u64()
            .unwrap() as usize
    };
    assert_eq!(count("inner"), open_with_account);
    assert_eq!(count("exists"), with_deals.len());
    assert_eq!(count("in"), with_deals.len());
}

#[test]
fn nested_links_of_an_exists_link_are_part_of_its_check() {
    // Accounts with an open deal owned by Alice: a deal of the account that is
    // open but owned by someone else must not satisfy the check by itself.
    let alice = dataset()
        .users
        .iter()
        .find(|u| u.fullname == "Alice Morgan")
        .unwrap()
        .id
        .clone();
    let nested = "<link-entity name='systemuser' from='systemuserid' to='ownerid' link-type='inner' alias='owner'>
                    <filter><condition attribute='fullname' operator='eq' value='Alice Morgan'/></filter>
                  </link-entity>";
    let result = run(&account_link("exists", nested));
    let expected: BTreeSet<String> = rows("opportunity")
        .iter()
        .filter(|r| int(r, "statecode") == Some(0) && text(r, "ownerid") == Some(alice.as_str()))
        .filter_map(|r| text(r, "parentaccountid").map(str::to_string))
        .collect();
    assert!(!expected.is_empty());
    assert!(expected.len() < open_deals_per_account().len());
    assert_eq!(ids_of(&result.records, "accountid"), expected);
    assert_eq!(result.records.len(), expected.len());
}

#[test]
fn exists_links_cannot_return_columns() {
    for (link_type, body) in [
        ("exists", "<attribute name='name'/>"),
        ("in", "<all-attributes/>"),
        (
            "exists",
            "<link-entity name='systemuser' from='systemuserid' to='ownerid' alias='owner'><attribute name='fullname'/></link-entity>",
        ),
    ] {
        let error = fail(&account_link(link_type, body));
        assert_eq!(error.status, 400, "{body}");
        assert!(
            error.message.contains(&format!(
                "Attributes can't be returned from a link-entity with link-type '{link_type}'"
            )),
            "{}",
            error.message
        );
    }
    for kind in ["any", "not any", "all", "not all"] {
        assert_eq!(fail(&account_link(kind, "")).status, 501, "{kind}");
    }
}

#[test]
fn top_takes_the_first_rows_after_ordering() {
    let created: Vec<&str> = rows("lead")
        .iter()
        .filter_map(|r| text(r, "createdon"))
        .collect();
    let latest = created.iter().max().unwrap();
    let earliest = created.iter().min().unwrap();
    let first = |order: &str, filter: &str| {
        let result = run(&format!(
            "<fetch top='1'><entity name='lead'><attribute name='createdon'/>{order}{filter}</entity></fetch>"
        ));
        assert_eq!(result.records.len(), 1);
        result.records[0].get("createdon").cloned()
    };
    let descending = "<order attribute='createdon' descending='true'/>";
    let ascending = "<order attribute='createdon' descending='false'/>";
    let not_null = "<filter><condition attribute='createdon' operator='not-null'/></filter>";
    assert_eq!(first(descending, ""), Some(json!(latest)));
    assert_eq!(first(ascending, not_null), Some(json!(earliest)));
    // As in SQL Server, nulls sort first ascending: the earliest row is one
    // without a date unless the query excludes nulls.
    assert_eq!(first(ascending, ""), None);
    // top with several rows and a numeric order.
    let top = run(
        "<fetch top='5'><entity name='opportunity'><attribute name='estimatedvalue_base'/>
           <order attribute='estimatedvalue_base' descending='true'/></entity></fetch>",
    );
    let mut values: Vec<f64> = rows("opportunity")
        .iter()
        .filter_map(|r| r.get("estimatedvalue_base").and_then(Value::as_f64))
        .collect();
    values.sort_by(|a, b| b.total_cmp(a));
    let got: Vec<f64> = top
        .records
        .iter()
        .map(|r| r["estimatedvalue_base"].as_f64().unwrap())
        .collect();
    assert_eq!(got, values[..5]);
    assert!(!top.more_records);
}

#[test]
fn createdon_ranges_inside_a_wrapping_and_filter_partition_the_rows() {
    // A view's own filter (here an `or`), wrapped in a new `and` with ranges, as a
    // client splitting a large view does.
    let view_filter = "<filter type='or'>
          <condition attribute='leadqualitycode' operator='eq' value='1'/>
          <condition attribute='leadqualitycode' operator='eq' value='2'/>
        </filter>";
    let count = |conditions: &str| -> i64 {
        aggregate_row(&format!(
            "<fetch aggregate='true'><entity name='lead'><attribute name='leadid' alias='n' aggregate='count'/>
               <filter type='and'>{view_filter}{conditions}</filter></entity></fetch>"
        ))["n"]
            .as_i64()
            .unwrap()
    };
    let in_view = |r: &Row| matches!(int(r, "leadqualitycode"), Some(1 | 2));
    let total = rows("lead").iter().filter(|r| in_view(r)).count() as i64;
    let years = [
        "2023-01-01T00:00:00Z",
        "2024-01-01T00:00:00Z",
        "2025-01-01T00:00:00Z",
    ];
    let mut parts = vec![count(&format!(
        "<condition attribute='createdon' operator='lt' value='{}'/>",
        years[0]
    ))];
    for pair in years.windows(2) {
        parts.push(count(&format!(
            "<condition attribute='createdon' operator='ge' value='{}'/><condition attribute='createdon' operator='lt' value='{}'/>",
            pair[0], pair[1]
        )));
    }
    parts.push(count(&format!(
        "<condition attribute='createdon' operator='ge' value='{}'/>",
        years[2]
    )));
    let nulls = count("<condition attribute='createdon' operator='null'/>");
    assert!(parts.iter().all(|n| *n > 1_000), "{parts:?}");
    assert!(nulls > 0);
    assert_eq!(parts.iter().sum::<i64>() + nulls, total);
    // Each range matches what the rows say.
    let (low, high) = (
        parse_datetime(years[0]).unwrap(),
        parse_datetime(years[1]).unwrap(),
    );
    let in_2023 = rows("lead")
        .iter()
        .filter(|r| in_view(r))
        .filter(|r| {
            text(r, "createdon")
                .and_then(parse_datetime)
                .is_some_and(|t| t >= low && t < high)
        })
        .count() as i64;
    assert_eq!(parts[1], in_2023);
    // gt/le split exactly at a stored instant: the instant goes to `le`.
    let instant = text(&rows("lead")[0], "createdon").unwrap();
    let le = count(&format!(
        "<condition attribute='createdon' operator='le' value='{instant}'/>"
    ));
    let gt = count(&format!(
        "<condition attribute='createdon' operator='gt' value='{instant}'/>"
    ));
    assert_eq!(le + gt + nulls, total);
    let at = rows("lead")
        .iter()
        .filter(|r| in_view(r) && text(r, "createdon") == Some(instant))
        .count() as i64;
    let lt = count(&format!(
        "<condition attribute='createdon' operator='lt' value='{instant}'/>"
    ));
    assert_eq!(le - lt, at);
    assert!(at >= 1);
}

#[test]
fn the_currency_lookup_can_be_selected_filtered_and_counted() {
    let data = dataset();
    let eur = data.currency_by_code("EUR").unwrap();
    let usd = data.currency_by_code("USD").unwrap();
    let plain = run(
        "<fetch><entity name='opportunity'><attribute name='name'/><attribute name='transactioncurrencyid'/></entity></fetch>",
    );
    let record = plain
        .records
        .iter()
        .find(|r| r["_transactioncurrencyid_value"] == json!(eur.id))
        .unwrap();
    assert_eq!(
        record["_transactioncurrencyid_value@OData.Community.Display.V1.FormattedValue"],
        "Euro"
    );
    assert_eq!(
        record["_transactioncurrencyid_value@Microsoft.Dynamics.CRM.lookuplogicalname"],
        "transactioncurrency"
    );
    assert!(
        plain
            .columns
            .contains(&"_transactioncurrencyid_value".to_string())
    );
    let with_currency = |id: &str| {
        expected_ids("opportunity", "opportunityid", |r| {
            text(r, "transactioncurrencyid") == Some(id)
        })
    };
    // Braced upper-case ids, as saved views hold them, work too.
    let eq = filtered(
        "opportunity",
        &format!(
            "<filter><condition attribute='transactioncurrencyid' operator='eq' value='{{{}}}'/></filter>",
            eur.id.to_uppercase()
        ),
    );
    assert_eq!(eq, with_currency(&eur.id));
    assert!(!eq.is_empty());
    let ne = filtered(
        "opportunity",
        &format!(
            "<filter><condition attribute='transactioncurrencyid' operator='ne' value='{}'/></filter>",
            eur.id
        ),
    );
    assert_eq!(ne, with_currency(&usd.id));
    let null = filtered(
        "opportunity",
        "<filter><condition attribute='transactioncurrencyid' operator='null'/></filter>",
    );
    assert!(null.is_empty());
    let not_null = filtered(
        "opportunity",
        "<filter><condition attribute='transactioncurrencyid' operator='not-null'/></filter>",
    );
    assert_eq!(not_null.len(), rows("opportunity").len());
    let counted = aggregate_row(
        "<fetch aggregate='true'><entity name='opportunity'>
           <attribute name='transactioncurrencyid' alias='currencies' aggregate='countcolumn' distinct='true'/>
           <attribute name='transactioncurrencyid' alias='rows' aggregate='countcolumn'/>
         </entity></fetch>",
    );
    assert_eq!(counted["currencies"], 2);
    assert_eq!(counted["rows"], 2_000);
    // The view of open deals in euro is exactly that.
    let view = data.view_by_name("Open Deals in Euro").unwrap();
    let result = run(&view.fetchxml);
    assert_eq!(
        ids_of(&result.records, "opportunityid"),
        expected_ids("opportunity", "opportunityid", |r| {
            int(r, "statecode") == Some(0)
                && text(r, "transactioncurrencyid") == Some(eur.id.as_str())
        })
    );
    assert!(result.records.len() > 50);
}

#[test]
fn accounts_with_open_deals_lists_each_account_once() {
    let view = dataset().view_by_name("Accounts with Open Deals").unwrap();
    assert!(view.fetchxml.contains("distinct='true'"));
    let per_account = open_deals_per_account();
    assert!(
        per_account.values().filter(|n| **n > 1).count() >= 10,
        "several accounts have more than one open deal"
    );
    let without = rows("account")
        .iter()
        .filter(|r| !per_account.contains_key(text(r, "accountid").unwrap()))
        .count();
    assert!(without > 0, "some accounts have none");
    let result = run(&view.fetchxml);
    assert_eq!(result.records.len(), per_account.len());
    assert_eq!(
        ids_of(&result.records, "accountid"),
        per_account.keys().cloned().collect()
    );
    assert!(
        result
            .records
            .iter()
            .all(|r| !r.keys().any(|k| k.starts_with("opendeal.")))
    );
    // Rewritten naively into an aggregate, the inner link multiplies the rows.
    let naive = aggregate_row(
        &view
            .fetchxml
            .replace("distinct='true'", "aggregate='true'")
            .replace(
                "<attribute name='name' />",
                "<attribute name='accountid' alias='n' aggregate='count' />",
            )
            .replace("<attribute name='revenue' />", "")
            .replace("<attribute name='numberofemployees' />", "")
            .replace("<attribute name='accountid' />", "")
            .replace("<order attribute='name' descending='false' />", ""),
    );
    assert_eq!(
        naive["n"].as_u64().unwrap() as usize,
        per_account.values().sum::<usize>()
    );
}
