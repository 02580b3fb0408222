//! Running a bound FetchXML query: joins, filters, ordering, paging and the
//! shape of each answer row.

use super::cookie::{self, OrderValues};
use super::parse::{Condition, FilterGroup, FilterItem, LinkType, Node, Operator, Query, Scalar};
use crate::data::{AttributeType, Row};
use crate::errors::ODataError;
use crate::format::parse_datetime;
use crate::odata::compare_values;
use crate::present::{Presenter, etag};
use serde_json::{Map, Value};
use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};

/// The default and largest FetchXML page.
pub const MAX_PAGE_SIZE: usize = 5000;
/// Simple paging (no cookie) cannot reach past this many rows.
pub const SIMPLE_PAGING_LIMIT: usize = 50_000;

/// One joined result row: the row of each query node (`None` for an outer join
/// without a match).
pub type Tuple<'r> = Vec<Option<&'r Row>>;

/// A page of plain (non-aggregate) results.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub records: Vec<Map<String, Value>>,
    pub more_records: bool,
    /// The `fetchxmlpagingcookie` annotation, when the query allows cookies.
    pub paging_cookie: Option<String>,
    /// Rows matching the query across all pages.
    pub total: usize,
}

fn row_scalar(kind: AttributeType, value: &Value) -> Option<Scalar> {
    match value {
        Value::Number(n) => n.as_f64().map(Scalar::Num),
        Value::Bool(b) => Some(Scalar::Bool(*b)),
        Value::String(s) if kind == AttributeType::DateTime => parse_datetime(s).map(Scalar::Time),
        Value::String(s) => Some(Scalar::Text(s.to_lowercase())),
        _ => None,
    }
}

fn order(a: &Scalar, b: &Scalar) -> Option<Ordering> {
    match (a, b) {
        (Scalar::Num(x), Scalar::Num(y)) => x.partial_cmp(y),
        (Scalar::Text(x), Scalar::Text(y)) => Some(x.cmp(y)),
        (Scalar::Bool(x), Scalar::Bool(y)) => Some(x.cmp(y)),
        (Scalar::Time(x), Scalar::Time(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

fn day(scalar: &Scalar) -> Option<i64> {
    match scalar {
        Scalar::Time(t) => Some(t.div_euclid(86_400)),
        _ => None,
    }
}

fn condition_holds(condition: &Condition<'_>, tuple: &[Option<&Row>], caller: &str) -> bool {
    let value = tuple
        .get(condition.node)
        .copied()
        .flatten()
        .and_then(|row| row.get(&condition.attribute.logical_name))
        .filter(|v| !v.is_null());
    match condition.operator {
        Operator::Null => return value.is_none(),
        Operator::NotNull => return value.is_some(),
        _ => {}
    }
    // Every other operator is false on a null, as in SQL.
    let Some(value) = value else {
        return false;
    };
    if let Some(pattern) = &condition.pattern {
        let Some(text) = value.as_str() else {
            return false;
        };
        let hit = pattern.matches(text);
        return match condition.operator {
            Operator::NotLike | Operator::NotBeginWith | Operator::NotEndWith => !hit,
            _ => hit,
        };
    }
    let Some(actual) = row_scalar(condition.attribute.attribute_type, value) else {
        return false;
    };
    let first = condition.values.first();
    let cmp = |expected: Option<&Scalar>| expected.and_then(|e| order(&actual, e));
    match condition.operator {
        Operator::Eq => cmp(first) == Some(Ordering::Equal),
        Operator::Ne => cmp(first).is_some_and(|o| o != Ordering::Equal),
        Operator::Gt => cmp(first) == Some(Ordering::Greater),
        Operator::Ge => matches!(cmp(first), Some(Ordering::Greater | Ordering::Equal)),
        Operator::Lt => cmp(first) == Some(Ordering::Less),
        Operator::Le => matches!(cmp(first), Some(Ordering::Less | Ordering::Equal)),
        Operator::In => condition
            .values
            .iter()
            .any(|v| order(&actual, v) == Some(Ordering::Equal)),
        Operator::NotIn => condition
            .values
            .iter()
            .all(|v| order(&actual, v).is_some_and(|o| o != Ordering::Equal)),
        Operator::Between | Operator::NotBetween => {
            let inside = matches!(cmp(first), Some(Ordering::Greater | Ordering::Equal))
                && matches!(
                    cmp(condition.values.get(1)),
                    Some(Ordering::Less | Ordering::Equal)
                );
            inside == (condition.operator == Operator::Between)
        }
        Operator::On | Operator::OnOrAfter | Operator::OnOrBefore => {
            let (Some(actual), Some(expected)) = (day(&actual), first.and_then(day)) else {
                return false;
            };
            match condition.operator {
                Operator::On => actual == expected,
                Operator::OnOrAfter => actual >= expected,
                _ => actual <= expected,
            }
        }
        Operator::EqUserId => actual == Scalar::Text(caller.to_string()),
        Operator::NeUserId => actual != Scalar::Text(caller.to_string()),
        // Handled above.
        Operator::Null
        | Operator::NotNull
        | Operator::Like
        | Operator::NotLike
        | Operator::BeginsWith
        | Operator::NotBeginWith
        | Operator::EndsWith
        | Operator::NotEndWith => false,
    }
}

fn group_holds(group: &FilterGroup<'_>, tuple: &[Option<&Row>], caller: &str) -> bool {
    let item_holds = |item: &FilterItem<'_>| match item {
        FilterItem::Condition(c) => condition_holds(c, tuple, caller),
        FilterItem::Group(g) => group_holds(g, tuple, caller),
    };
    if group.items.is_empty() {
        true
    } else if group.or {
        group.items.iter().any(item_holds)
    } else {
        group.items.iter().all(item_holds)
    }
}

fn nodes_read(group: &FilterGroup<'_>, out: &mut HashSet<usize>) {
    for item in &group.items {
        match item {
            FilterItem::Condition(c) => {
                out.insert(c.node);
            }
            FilterItem::Group(g) => nodes_read(g, out),
        }
    }
}

fn join_key(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) => Some(s.to_lowercase()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

type KeyIndex<'r> = HashMap<String, Vec<&'r Row>>;

/// Rows of a link-entity by their `from` value.
fn key_index<'r>(node: &Node<'_>, rows_of: &dyn Fn(&str) -> &'r [Row]) -> KeyIndex<'r> {
    let mut by_key: KeyIndex<'r> = HashMap::new();
    if let Some(from) = node.from {
        for row in rows_of(&node.entity.logical_name) {
            if let Some(key) = join_key(row.get(&from.logical_name)) {
                by_key.entry(key).or_default().push(row);
            }
        }
    }
    by_key
}

/// Whether a link sits (at any depth) inside an `exists`/`in` link.
fn inside_exists(query: &Query<'_>, index: usize) -> bool {
    let mut parent = query.nodes[index].parent;
    while let Some(p) = parent {
        if query.nodes[p].link_type == LinkType::Exists {
            return true;
        }
        parent = query.nodes[p].parent;
    }
    false
}

struct Joiner<'q, 'a, 'r> {
    query: &'q Query<'a>,
    indexes: Vec<KeyIndex<'r>>,
    caller: &'q str,
}

impl<'r> Joiner<'_, '_, 'r> {
    /// The first row of link `index` that matches `tuple`'s parent row, passes the
    /// link's filters and satisfies its nested links.
    fn first_match(&self, index: usize, tuple: &[Option<&'r Row>]) -> Option<&'r Row> {
        let node = &self.query.nodes[index];
        let (parent, to) = (node.parent?, node.to?);
        let key = tuple[parent].and_then(|row| join_key(row.get(&to.logical_name)))?;
        let mut scratch = tuple.to_vec();
        self.indexes[index]
            .get(&key)?
            .iter()
            .copied()
            .find(|candidate| {
                scratch[index] = Some(candidate);
                node.filters
                    .iter()
                    .all(|g| group_holds(g, &scratch, self.caller))
                    && self.nested_hold(index, &scratch)
            })
    }

    /// Whether every inner or exists link nested in `index` has a match for the
    /// row `tuple` holds at `index` (outer links never exclude anything).
    fn nested_hold(&self, index: usize, tuple: &[Option<&'r Row>]) -> bool {
        self.query
            .nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.parent == Some(index) && n.link_type != LinkType::Outer)
            .all(|(child, _)| self.first_match(child, tuple).is_some())
    }
}

/// The joined, filtered rows of a query, and whether a join repeated a parent.
///
/// `inner` and `outer` links join (an inner link with several matches repeats
/// its parent); `exists`/`in` links are semi-joins: a parent is kept once if at
/// least one linked row matches, with the link's filters and nested links
/// evaluated inside that check.
pub fn matching_tuples<'r>(
    query: &Query<'_>,
    rows_of: &dyn Fn(&str) -> &'r [Row],
    caller: &str,
) -> (Vec<Tuple<'r>>, bool) {
    let width = query.nodes.len();
    let root = &query.nodes[0];
    let mut read = HashSet::new();
    for group in &root.filters {
        nodes_read(group, &mut read);
    }
    // Filters on the root's own columns are applied before joining: far fewer
    // tuples to build for the large tables.
    let early = read.iter().all(|n| *n == 0);
    let mut tuples: Vec<Tuple<'r>> = rows_of(&root.entity.logical_name)
        .iter()
        .map(|row| {
            let mut tuple = vec![None; width];
            tuple[0] = Some(row);
            tuple
        })
        .filter(|tuple| !early || root.filters.iter().all(|g| group_holds(g, tuple, caller)))
        .collect();
    let joiner = Joiner {
        query,
        indexes: query
            .nodes
            .iter()
            .enumerate()
            .map(|(i, node)| {
                if i == 0 {
                    HashMap::new()
                } else {
                    key_index(node, rows_of)
                }
            })
            .collect(),
        caller,
    };
    let mut multiplied = false;
    for (index, node) in query.nodes.iter().enumerate().skip(1) {
        let (Some(parent), Some(to)) = (node.parent, node.to) else {
            continue;
        };
        if inside_exists(query, index) {
            // Evaluated by the enclosing exists link.
            continue;
        }
        if node.link_type == LinkType::Exists {
            tuples.retain_mut(|tuple| match joiner.first_match(index, tuple) {
                Some(found) => {
                    tuple[index] = Some(found);
                    true
                }
                None => false,
            });
            continue;
        }
        let mut joined = Vec::with_capacity(tuples.len());
        for tuple in tuples {
            let key = tuple[parent].and_then(|row| join_key(row.get(&to.logical_name)));
            let mut matches = 0;
            if let Some(candidates) = key.as_ref().and_then(|k| joiner.indexes[index].get(k)) {
                for candidate in candidates {
                    let mut extended = tuple.clone();
                    extended[index] = Some(candidate);
                    if node
                        .filters
                        .iter()
                        .all(|g| group_holds(g, &extended, caller))
                    {
                        matches += 1;
                        joined.push(extended);
                    }
                }
            }
            multiplied |= matches > 1;
            if matches == 0 && node.link_type == LinkType::Outer {
                joined.push(tuple);
            }
        }
        tuples = joined;
    }
    if !early {
        tuples.retain(|tuple| root.filters.iter().all(|g| group_holds(g, tuple, caller)));
    }
    (tuples, multiplied)
}

fn primary_key<'v>(node: &Node<'_>, row: Option<&'v Row>) -> Option<&'v Value> {
    row.and_then(|r| r.get(&node.entity.primary_id_attribute))
}

/// Sorts by the `<order>`s of the root then of the joins, then by primary keys so
/// the order is total and pages are stable.
pub fn sort(query: &Query<'_>, tuples: &mut [Tuple<'_>]) {
    let orders: Vec<(usize, &str, bool)> = query
        .nodes
        .iter()
        .enumerate()
        .flat_map(|(i, node)| {
            node.orders
                .iter()
                .map(move |o| (i, o.attribute.logical_name.as_str(), o.descending))
        })
        .collect();
    tuples.sort_by(|a, b| {
        for (node, attribute, descending) in &orders {
            let x = a[*node].and_then(|r| r.get(*attribute));
            let y = b[*node].and_then(|r| r.get(*attribute));
            let ordering = compare_values(x, y);
            let ordering = if *descending {
                ordering.reverse()
            } else {
                ordering
            };
            if ordering != Ordering::Equal {
                return ordering;
            }
        }
        for (i, node) in query.nodes.iter().enumerate() {
            let ordering = compare_values(primary_key(node, a[i]), primary_key(node, b[i]));
            if ordering != Ordering::Equal {
                return ordering;
            }
        }
        Ordering::Equal
    });
}

/// The answer row of one tuple.
pub fn project(
    query: &Query<'_>,
    tuple: &[Option<&Row>],
    presenter: &Presenter<'_>,
) -> Map<String, Value> {
    let mut out = Map::new();
    for (i, node) in query.nodes.iter().enumerate() {
        let Some(row) = tuple[i] else {
            continue;
        };
        let mut columns: Vec<(&crate::data::AttributeDef, Option<&str>)> = Vec::new();
        if node.all_attributes {
            columns.extend(node.entity.attributes.iter().map(|a| (a, None)));
        }
        columns.extend(
            node.selected
                .iter()
                .map(|s| (s.attribute, s.alias.as_deref())),
        );
        if i == 0 && !query.distinct {
            if let Some(key) = node.entity.attribute(&node.entity.primary_id_attribute) {
                columns.push((key, None));
            }
            out.insert("@odata.etag".to_string(), etag(row));
        }
        for (attribute, alias) in columns.iter().copied() {
            let Some(value) = row.get(&attribute.logical_name).filter(|v| !v.is_null()) else {
                continue;
            };
            let (key, original) = match (alias, &node.alias) {
                (Some(alias), _) => (alias.to_string(), Some(attribute.logical_name.as_str())),
                (None, Some(link)) => (
                    format!("{link}.{}", attribute.logical_name),
                    Some(attribute.logical_name.as_str()),
                ),
                (None, None) => (attribute.odata_name(), None),
            };
            if out.contains_key(&key) {
                continue;
            }
            presenter.put(&mut out, &key, attribute, value, Some(row), original);
        }
        // A money column brings its currency along, even when the amount is null,
        // as the documented answers show.
        let money = columns
            .iter()
            .any(|(a, alias)| alias.is_none() && a.attribute_type == AttributeType::Money);
        if i == 0
            && money
            && !out.contains_key("_transactioncurrencyid_value")
            && let (Some(currency), Some(currency_attribute)) = (
                row.get("transactioncurrencyid"),
                node.entity.attribute("transactioncurrencyid"),
            )
        {
            presenter.put(
                &mut out,
                "_transactioncurrencyid_value",
                currency_attribute,
                currency,
                Some(row),
                None,
            );
        }
    }
    out
}

fn order_values(query: &Query<'_>, first: &Tuple<'_>, last: &Tuple<'_>) -> Vec<OrderValues> {
    let root = &query.nodes[0];
    let text = |tuple: &Tuple<'_>, attribute: &str| {
        tuple[0]
            .and_then(|r| r.get(attribute))
            .map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .unwrap_or_default()
    };
    root.orders
        .iter()
        .filter(|o| o.attribute.logical_name != root.entity.primary_id_attribute)
        .map(|o| OrderValues {
            attribute: o.attribute.logical_name.clone(),
            first: text(first, &o.attribute.logical_name),
            last: text(last, &o.attribute.logical_name),
        })
        .collect()
}

/// Picks the requested page of sorted tuples and shapes it.
pub fn page(
    query: &Query<'_>,
    tuples: Vec<Tuple<'_>>,
    multiplied: bool,
    presenter: &Presenter<'_>,
) -> Result<Page, ODataError> {
    let root = &query.nodes[0];
    if query.distinct {
        let mut seen = HashSet::new();
        let records: Vec<Map<String, Value>> = tuples
            .iter()
            .map(|t| project(query, t, presenter))
            .filter(|record| seen.insert(Value::Object(record.clone()).to_string()))
            .collect();
        return page_of_records(query, records);
    }
    let total = tuples.len();
    if let Some(top) = query.top {
        let records = tuples
            .iter()
            .take(top)
            .map(|t| project(query, t, presenter))
            .collect();
        return Ok(Page {
            records,
            more_records: false,
            paging_cookie: None,
            total,
        });
    }
    let size = query.count.unwrap_or(MAX_PAGE_SIZE).min(MAX_PAGE_SIZE);
    let page_number = query.page.unwrap_or(1);
    // Cookies identify rows by primary key: a join that repeats rows, or an order
    // on a joined column, makes Dataverse fall back to simple paging.
    let cookies_work = !multiplied && query.nodes.iter().skip(1).all(|n| n.orders.is_empty());
    let key_of = |tuple: &Tuple<'_>| {
        primary_key(root, tuple[0])
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let cookie = match (&query.paging_cookie, cookies_work) {
        (Some(text), true) => Some(cookie::parse(text, &root.entity.primary_id_attribute)?),
        _ => None,
    };
    let continued = cookie
        .filter(|c| c.page + 1 == page_number)
        .and_then(|c| {
            tuples.iter().position(|t| {
                primary_key(root, t[0]).and_then(Value::as_str) == Some(c.last.as_str())
            })
        })
        .map(|i| i + 1);
    let start = match continued {
        Some(start) => start,
        None => {
            let start = (page_number - 1).saturating_mul(size);
            if start >= SIMPLE_PAGING_LIMIT {
                return Err(ODataError::invalid(format!(
                    "Simple paging (page and count without a paging cookie) cannot return records past {SIMPLE_PAGING_LIMIT}; use the paging cookie of the previous page."
                )));
            }
            start
        }
    };
    let end = start.saturating_add(size).min(total);
    let slice = if start < total {
        &tuples[start..end]
    } else {
        &[]
    };
    let more_records = end < total && start < total;
    let paging_cookie = match (more_records && cookies_work, slice.first(), slice.last()) {
        (true, Some(first), Some(last)) => {
            let inner = cookie::inner_cookie(
                page_number,
                &root.entity.primary_id_attribute,
                &key_of(first),
                &key_of(last),
                &order_values(query, first, last),
            );
            Some(cookie::annotation(page_number, &inner))
        }
        _ => None,
    };
    Ok(Page {
        records: slice.iter().map(|t| project(query, t, presenter)).collect(),
        more_records,
        paging_cookie,
        total,
    })
}

/// Simple paging over already-shaped (distinct) records.
fn page_of_records(
    query: &Query<'_>,
    records: Vec<Map<String, Value>>,
) -> Result<Page, ODataError> {
    let total = records.len();
    if let Some(top) = query.top {
        return Ok(Page {
            records: records.into_iter().take(top).collect(),
            more_records: false,
            paging_cookie: None,
            total,
        });
    }
    let size = query.count.unwrap_or(MAX_PAGE_SIZE).min(MAX_PAGE_SIZE);
    let start = (query.page.unwrap_or(1) - 1).saturating_mul(size);
    if start >= SIMPLE_PAGING_LIMIT {
        return Err(ODataError::invalid(format!(
            "Simple paging (page and count without a paging cookie) cannot return records past {SIMPLE_PAGING_LIMIT}."
        )));
    }
    let end = start.saturating_add(size).min(total);
    Ok(Page {
        more_records: end < total,
        records: records.into_iter().skip(start).take(size).collect(),
        paging_cookie: None,
        total,
    })
}
