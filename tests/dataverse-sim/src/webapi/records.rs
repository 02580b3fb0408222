//! Entity sets: OData queries (`$select`, `$filter`, `$orderby`, `$top`, paging
//! with `Prefer: odata.maxpagesize`), single records, and FetchXML or saved views.

use super::{API_PREFIX, ApiRequest, ApiResponse};
use crate::data::{AttributeType, Db, EntityDef, Row, ViewKind};
use crate::errors::{ODataError, codes};
use crate::fetch::{self, FetchResult};
use crate::odata::{
    Filter, MORE_RECORDS, PAGING_COOKIE, QueryOptions, TOTAL_RECORD_COUNT,
    TOTAL_RECORD_COUNT_EXCEEDED, parse_orderby, parse_select, sort_rows,
};
use crate::present::{Presenter, etag};
use crate::xml::Element;
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use serde_json::{Map, Value, json};

/// Largest page of an OData query.
const MAX_PAGE_SIZE: usize = 5000;
/// `$count=true` counts up to this many rows.
const COUNT_LIMIT: usize = 5000;

/// The characters escaped when a paging cookie goes into `@odata.nextLink`, as
/// the documented links show.
const SKIPTOKEN: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'<')
    .add(b'>')
    .add(b'&')
    .add(b'#');

/// One record in OData form: every selected property (nulls as `null`), the
/// primary key, and the currency of money columns.
fn record(
    entity: &EntityDef,
    row: &Row,
    select: Option<&[String]>,
    presenter: &Presenter<'_>,
) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("@odata.etag".to_string(), etag(row));
    let attributes: Vec<_> = match select {
        Some(names) => names
            .iter()
            .filter_map(|n| entity.attribute_by_odata_name(n))
            .chain(entity.attribute(&entity.primary_id_attribute))
            .collect(),
        None => entity.attributes.iter().collect(),
    };
    let money = attributes
        .iter()
        .any(|a| a.attribute_type == AttributeType::Money);
    let currency = entity
        .attribute("transactioncurrencyid")
        .filter(|_| money && select.is_some());
    for attribute in attributes.into_iter().chain(currency) {
        let key = attribute.odata_name();
        if out.contains_key(&key) {
            continue;
        }
        let value = row
            .get(&attribute.logical_name)
            .cloned()
            .unwrap_or(Value::Null);
        presenter.put(&mut out, &key, attribute, &value, Some(row), None);
    }
    out
}

fn context_fragment(entity: &EntityDef, select: Option<&[String]>) -> String {
    match select {
        Some(names) if !names.is_empty() => {
            format!("{}({})", entity.entity_set_name, names.join(","))
        }
        _ => entity.entity_set_name.clone(),
    }
}

pub fn single(
    data: Db<'_>,
    request: &ApiRequest<'_>,
    options: &QueryOptions,
    entity: &EntityDef,
    id: &str,
) -> Result<ApiResponse, ODataError> {
    refuse_unimplemented(options)?;
    let select = options
        .select
        .as_deref()
        .map(|s| parse_select(s, entity))
        .transpose()?;
    let row = data
        .row_by_id(&entity.logical_name, id)
        .ok_or_else(|| ODataError::record_not_found(&entity.logical_name, id))?;
    let presenter = Presenter {
        data: data.base(),
        annotations: &request.preferences.annotations,
    };
    let mut body = Map::new();
    body.insert(
        "@odata.context".to_string(),
        request.context(&format!(
            "{}/$entity",
            context_fragment(entity, select.as_deref())
        )),
    );
    body.extend(record(entity, row, select.as_deref(), &presenter));
    Ok(request.ok(Value::Object(body)))
}

fn refuse_unimplemented(options: &QueryOptions) -> Result<(), ODataError> {
    if options.expand.is_some() {
        return Err(ODataError::not_implemented(
            "The simulator does not implement $expand.",
        ));
    }
    if options.apply.is_some() {
        return Err(ODataError::not_implemented(
            "The simulator does not implement $apply; use FetchXML aggregates.",
        ));
    }
    Ok(())
}

pub fn collection(
    data: Db<'_>,
    request: &ApiRequest<'_>,
    options: &QueryOptions,
    entity: &EntityDef,
) -> Result<ApiResponse, ODataError> {
    if let Some(fetch_xml) = &options.fetch_xml {
        return run_fetch(data, request, options, entity, fetch_xml);
    }
    for (id, kind) in [
        (&options.saved_query, ViewKind::System),
        (&options.user_query, ViewKind::Personal),
    ] {
        if let Some(id) = id {
            let view = data
                .view(id)
                .filter(|v| v.kind == kind && crate::data::is_guid(id))
                .ok_or_else(|| ODataError::record_not_found(kind.logical_name(), id))?;
            if view.returnedtypecode != entity.logical_name {
                return Err(ODataError::invalid(format!(
                    "The view '{}' is for '{}', not for '{}'.",
                    view.name, view.returnedtypecode, entity.entity_set_name
                )));
            }
            return run_fetch(data, request, options, entity, &view.fetchxml);
        }
    }
    refuse_unimplemented(options)?;
    let select = options
        .select
        .as_deref()
        .map(|s| parse_select(s, entity))
        .transpose()?;
    let filter = options
        .filter
        .as_deref()
        .map(|f| Filter::parse(f, entity))
        .transpose()?;
    let order = options
        .orderby
        .as_deref()
        .map(|o| parse_orderby(o, entity))
        .transpose()?
        .unwrap_or_default();
    let mut rows: Vec<&Row> = data
        .rows(&entity.logical_name)
        .iter()
        .filter(|row| filter.as_ref().is_none_or(|f| f.matches(row)))
        .collect();
    sort_rows(&mut rows, &order, &entity.primary_id_attribute);
    let max_page_size = request
        .preferences
        .max_page_size
        .map(|size| size.clamp(1, MAX_PAGE_SIZE));
    // With a page size preference `$top` is ignored, as documented.
    if let (Some(top), None) = (options.top, max_page_size) {
        rows.truncate(top);
    }
    let total = rows.len();
    let size = max_page_size.unwrap_or(MAX_PAGE_SIZE);
    let (start, page_number) = match &options.skiptoken {
        Some(token) => continue_after(token, entity, &rows)?,
        None => (0, 1),
    };
    let end = start.saturating_add(size).min(total);
    let page = if start < total {
        &rows[start..end]
    } else {
        &[]
    };
    let presenter = Presenter {
        data: data.base(),
        annotations: &request.preferences.annotations,
    };
    let mut body = Map::new();
    body.insert(
        "@odata.context".to_string(),
        request.context(&context_fragment(entity, select.as_deref())),
    );
    if options.count {
        body.insert("@odata.count".to_string(), json!(total.min(COUNT_LIMIT)));
    }
    body.insert(
        "value".to_string(),
        Value::Array(
            page.iter()
                .map(|row| Value::Object(record(entity, row, select.as_deref(), &presenter)))
                .collect(),
        ),
    );
    if end < total
        && let (Some(first), Some(last)) = (page.first(), page.last())
    {
        let key = |row: &Row| {
            row.get(&entity.primary_id_attribute)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let inner = fetch::cookie::inner_cookie(
            page_number,
            &entity.primary_id_attribute,
            &key(first),
            &key(last),
            &[],
        );
        let outer = fetch::cookie::annotation(page_number, &inner);
        let kept: Vec<&str> = request
            .query
            .unwrap_or_default()
            .split('&')
            .filter(|p| !p.is_empty() && !p.starts_with("$skiptoken="))
            .collect();
        let mut link = format!(
            "{}{API_PREFIX}{}?",
            request.base_url, entity.entity_set_name
        );
        for pair in kept {
            link.push_str(pair);
            link.push('&');
        }
        link.push_str("$skiptoken=");
        link.push_str(&utf8_percent_encode(&outer, SKIPTOKEN).to_string());
        body.insert("@odata.nextLink".to_string(), json!(link));
    }
    Ok(ApiResponse {
        status: 200,
        body: Value::Object(body),
        preference_applied: request.preference_applied(max_page_size),
    })
}

/// Where the page after a `$skiptoken` starts, and its page number.
fn continue_after(
    token: &str,
    entity: &EntityDef,
    rows: &[&Row],
) -> Result<(usize, usize), ODataError> {
    let bad = || {
        ODataError::bad_request(
            codes::ODATA_QUERY,
            "The $skiptoken is not valid; follow @odata.nextLink exactly as given.",
        )
    };
    let outer = Element::parse(token).map_err(|_| bad())?;
    let inner = outer.attr("pagingcookie").ok_or_else(bad)?;
    let cookie = fetch::cookie::parse(inner, &entity.primary_id_attribute).map_err(|_| bad())?;
    let position = rows
        .iter()
        .position(|row| {
            row.get(&entity.primary_id_attribute)
                .and_then(Value::as_str)
                == Some(cookie.last.as_str())
        })
        .ok_or_else(bad)?;
    Ok((position + 1, cookie.page + 1))
}

fn run_fetch(
    data: Db<'_>,
    request: &ApiRequest<'_>,
    options: &QueryOptions,
    entity: &EntityDef,
    fetch_xml: &str,
) -> Result<ApiResponse, ODataError> {
    let annotations = &request.preferences.annotations;
    let result: FetchResult =
        fetch::execute_in(data, fetch_xml, Some(&entity.entity_set_name), annotations)?;
    let mut body = Map::new();
    let fragment = if result.aggregate {
        result.entity_set_name.clone()
    } else {
        format!("{}({})", result.entity_set_name, result.columns.join(","))
    };
    body.insert("@odata.context".to_string(), request.context(&fragment));
    if options.count {
        body.insert(
            "@odata.count".to_string(),
            json!(result.total.min(COUNT_LIMIT)),
        );
    }
    if let Some(total) = result.total_record_count {
        body.insert(
            format!("@{TOTAL_RECORD_COUNT}"),
            json!(total.min(COUNT_LIMIT)),
        );
        body.insert(
            format!("@{TOTAL_RECORD_COUNT_EXCEEDED}"),
            json!(total > COUNT_LIMIT),
        );
    }
    // The paging annotations are instance annotations: sent only when asked for.
    if let Some(cookie) = &result.paging_cookie
        && annotations.includes(PAGING_COOKIE)
    {
        body.insert(format!("@{PAGING_COOKIE}"), json!(cookie));
    }
    if result.more_records && annotations.includes(MORE_RECORDS) {
        body.insert(format!("@{MORE_RECORDS}"), json!(true));
    }
    body.insert(
        "value".to_string(),
        Value::Array(result.records.into_iter().map(Value::Object).collect()),
    );
    Ok(request.ok(Value::Object(body)))
}
