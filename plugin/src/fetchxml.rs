//! A view's FetchXML, and the queries a metric derives from it: aggregates that
//! Dataverse computes on the server, the probes that plan them, and page reads.
//!
//! Every derived query keeps the view's filters and the joins that decide which
//! rows it shows, so it covers exactly the view's rows.

use crate::split::{Part, SPLIT_ATTRIBUTE};
use crate::xml::{Element, Node, XmlError};
use std::collections::HashSet;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FetchXmlError {
    #[error(transparent)]
    Xml(#[from] XmlError),
    #[error("the view's query is not a <fetch> with one <entity>")]
    NotAFetch,
    #[error("the view's query is already an aggregate query")]
    AlreadyAggregate,
    #[error("the view has no joined table with alias '{0}'")]
    UnknownAlias(String),
}

/// Which column a metric reads: an attribute of the view's entity, or of the
/// joined table with the given alias.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnRef {
    pub alias: Option<String>,
    pub attribute: String,
}

impl ColumnRef {
    /// Splits a layout cell name (`attr` or `alias.attr`).
    pub fn from_cell(cell: &str) -> ColumnRef {
        match cell.split_once('.') {
            Some((alias, attribute)) => ColumnRef {
                alias: Some(alias.to_string()),
                attribute: attribute.to_string(),
            },
            None => ColumnRef {
                alias: None,
                attribute: cell.to_string(),
            },
        }
    }

    /// The same column under another attribute name (e.g. its `_base` twin).
    pub fn with_attribute(&self, attribute: &str) -> ColumnRef {
        ColumnRef {
            alias: self.alias.clone(),
            attribute: attribute.to_string(),
        }
    }
}

/// A join of the view: the joined table and the attribute it is joined on.
#[derive(Debug, Clone, PartialEq)]
pub struct Join {
    pub alias: Option<String>,
    pub entity: String,
    pub from: String,
}

/// The parsed query of a view.
#[derive(Debug, Clone)]
pub struct ViewQuery {
    fetch: Element,
}

impl ViewQuery {
    pub fn parse(fetch_xml: &str) -> Result<ViewQuery, FetchXmlError> {
        let fetch = Element::parse(fetch_xml)?;
        let entities = fetch.elements().filter(|e| e.name == "entity").count();
        if fetch.name != "fetch" || entities != 1 {
            return Err(FetchXmlError::NotAFetch);
        }
        let query = ViewQuery { fetch };
        if query.entity().attr("name").is_none() {
            return Err(FetchXmlError::NotAFetch);
        }
        Ok(query)
    }

    fn entity(&self) -> &Element {
        // `parse` guarantees exactly one entity.
        self.fetch
            .elements()
            .find(|e| e.name == "entity")
            .unwrap_or(&self.fetch)
    }

    /// Logical name of the entity the view queries.
    pub fn entity_name(&self) -> &str {
        self.entity().attr("name").unwrap_or_default()
    }

    /// Logical name of the table joined under `alias`.
    pub fn linked_entity(&self, alias: &str) -> Option<&str> {
        self.entity()
            .descendants()
            .into_iter()
            .find(|e| e.name == "link-entity" && e.attr("alias") == Some(alias))
            .and_then(|e| e.attr("name"))
    }

    /// Every join of the view, at any depth.
    pub fn joins(&self) -> Vec<Join> {
        self.entity()
            .descendants()
            .into_iter()
            .filter(|e| e.name == "link-entity")
            .filter_map(|e| {
                Some(Join {
                    alias: e.attr("alias").map(str::to_string),
                    entity: e.attr("name")?.to_string(),
                    from: e.attr("from")?.to_string(),
                })
            })
            .collect()
    }

    /// The view reduced to the rows it shows: no selected columns, sorting or
    /// paging. Joins that only filter and could repeat a row (one-to-many) become
    /// `exists` semi-joins, and outer one-to-many joins nobody reads are dropped, so
    /// every row of the view is counted once. Joins whose columns the view shows
    /// (`shown` aliases) stay as they are: then each joined row is a row of the view.
    /// `to_one(join)` tells whether a join matches at most one row.
    pub fn metric_query(
        &self,
        shown: &[&str],
        to_one: &dyn Fn(&Join) -> bool,
    ) -> Result<MetricQuery, FetchXmlError> {
        if matches!(self.fetch.attr("aggregate"), Some("true" | "1")) {
            return Err(FetchXmlError::AlreadyAggregate);
        }
        let mut fetch = self.fetch.clone();
        for paging in [
            "count",
            "page",
            "top",
            "paging-cookie",
            "distinct",
            "returntotalrecordcount",
            "aggregatelimit",
            "aggregate",
        ] {
            fetch.remove_attr(paging);
        }
        // Conditions may name a join (`entityname`): such joins must stay.
        let mut needed: HashSet<String> = shown.iter().map(|s| s.to_string()).collect();
        needed.extend(
            fetch
                .descendants()
                .into_iter()
                .filter(|e| e.name == "condition")
                .filter_map(|e| e.attr("entityname").map(str::to_string)),
        );
        let position = fetch
            .children
            .iter()
            .position(|n| matches!(n, Node::Element(e) if e.name == "entity"))
            .ok_or(FetchXmlError::NotAFetch)?;
        let Node::Element(mut entity) = fetch.children.remove(position) else {
            return Err(FetchXmlError::NotAFetch);
        };
        fetch.children.clear();
        strip_projection(&mut entity);
        normalize_joins(&mut entity, &needed, to_one);
        Ok(MetricQuery { fetch, entity })
    }
}

/// An aggregate function of FetchXML.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Function {
    /// Rows.
    Count,
    /// Non-empty values.
    CountColumn,
    /// Distinct non-empty values.
    CountDistinct,
    Sum,
    Min,
    Max,
}

impl Function {
    /// The alias its result comes back under.
    pub fn alias(self) -> &'static str {
        match self {
            Function::Count => "metric_rows",
            Function::CountColumn => "metric_values",
            Function::CountDistinct => "metric_distinct",
            Function::Sum => "metric_sum",
            Function::Min => "metric_min",
            Function::Max => "metric_max",
        }
    }
}

/// A view reduced to its rows (see [`ViewQuery::metric_query`]), from which the
/// metric's queries are built.
#[derive(Debug, Clone)]
pub struct MetricQuery {
    /// The `<fetch>` element without children.
    fetch: Element,
    /// Its one `<entity>`.
    entity: Element,
}

impl MetricQuery {
    /// Copies to build a query from.
    fn parts(&self) -> (Element, Element) {
        (self.fetch.clone(), self.entity.clone())
    }

    fn assemble(mut fetch: Element, entity: Element) -> String {
        fetch.children = vec![Node::Element(entity)];
        fetch.to_xml()
    }

    /// The element that owns `column`: the entity or the join with its alias.
    fn owner<'a>(
        entity: &'a mut Element,
        column: &ColumnRef,
    ) -> Result<&'a mut Element, FetchXmlError> {
        match &column.alias {
            None => Ok(entity),
            Some(alias) => find_link_entity(entity, alias)
                .ok_or_else(|| FetchXmlError::UnknownAlias(alias.clone())),
        }
    }

    /// One aggregate query over the rows of `part` (all rows without one):
    /// `functions` of `column`, and `count` of `primary_id` for the rows.
    pub fn aggregate(
        &self,
        column: &ColumnRef,
        functions: &[Function],
        primary_id: &str,
        part: Option<&Part>,
    ) -> Result<String, FetchXmlError> {
        let (mut fetch, mut entity) = self.parts();
        fetch.set_attr("aggregate", "true");
        if let Some(part) = part {
            restrict(&mut entity, part);
        }
        for function in functions {
            let (name, aggregate, distinct) = match function {
                Function::Count => (primary_id, "count", false),
                Function::CountColumn => (column.attribute.as_str(), "countcolumn", false),
                Function::CountDistinct => (column.attribute.as_str(), "countcolumn", true),
                Function::Sum => (column.attribute.as_str(), "sum", false),
                Function::Min => (column.attribute.as_str(), "min", false),
                Function::Max => (column.attribute.as_str(), "max", false),
            };
            let mut attribute = Element::new("attribute")
                .with_attr("name", name)
                .with_attr("alias", function.alias())
                .with_attr("aggregate", aggregate);
            if distinct {
                attribute.set_attr("distinct", "true");
            }
            let owner = if *function == Function::Count {
                &mut entity
            } else {
                Self::owner(&mut entity, column)?
            };
            owner.children.push(Node::Element(attribute));
        }
        Ok(Self::assemble(fetch, entity))
    }

    /// Keeps only the rows whose `attribute` (of the view's own table) lies
    /// between the two days, both included; every query built afterwards
    /// carries the restriction.
    pub fn within(&mut self, attribute: &str, first_day: Option<&str>, last_day: Option<&str>) {
        let conditions = [("on-or-after", first_day), ("on-or-before", last_day)]
            .into_iter()
            .filter_map(|(operator, day)| day.map(|day| condition(attribute, operator, Some(day))))
            .collect();
        wrap_filters(&mut self.entity, conditions);
    }

    /// Keeps only the rows whose `attribute` (of the view's own table) equals
    /// `value`; every query built afterwards carries the restriction.
    pub fn equals(&mut self, attribute: &str, value: &str) {
        wrap_filters(
            &mut self.entity,
            vec![condition(attribute, "eq", Some(value))],
        );
    }

    /// The view's first row by `createdon` (last with `descending`), among rows
    /// that have one: the bounds of a split plan.
    pub fn first_created(&self, descending: bool) -> String {
        let (mut fetch, mut entity) = self.parts();
        fetch.set_attr("top", "1");
        entity.children.push(Node::Element(
            Element::new("attribute").with_attr("name", SPLIT_ATTRIBUTE),
        ));
        entity.children.push(Node::Element(
            Element::new("order")
                .with_attr("attribute", SPLIT_ATTRIBUTE)
                .with_attr("descending", if descending { "true" } else { "false" }),
        ));
        wrap_filters(
            &mut entity,
            vec![condition(SPLIT_ATTRIBUTE, "not-null", None)],
        );
        Self::assemble(fetch, entity)
    }

    /// Up to two distinct values of `attribute` of the column's owner among the
    /// view's rows: enough to tell whether they all share one.
    pub fn distinct_values(
        &self,
        column: &ColumnRef,
        attribute: &str,
    ) -> Result<String, FetchXmlError> {
        let (mut fetch, mut entity) = self.parts();
        fetch.set_attr("distinct", "true");
        fetch.set_attr("top", "2");
        let owner = Self::owner(&mut entity, column)?;
        owner.children.push(Node::Element(
            Element::new("attribute").with_attr("name", attribute),
        ));
        wrap_filters(owner, vec![condition(attribute, "not-null", None)]);
        Ok(Self::assemble(fetch, entity))
    }

    /// One page of the view's rows with only `column` (and the primary key),
    /// ordered by the primary key so that paging cookies apply.
    pub fn page(
        &self,
        column: &ColumnRef,
        primary_id: &str,
        page: u32,
        page_size: u32,
        cookie: Option<&str>,
    ) -> Result<String, FetchXmlError> {
        let (mut fetch, mut entity) = self.parts();
        fetch.set_attr("count", &page_size.to_string());
        fetch.set_attr("page", &page.to_string());
        if let Some(cookie) = cookie {
            fetch.set_attr("paging-cookie", cookie);
        }
        entity.children.push(Node::Element(
            Element::new("attribute").with_attr("name", primary_id),
        ));
        entity.children.push(Node::Element(
            Element::new("order").with_attr("attribute", primary_id),
        ));
        let owner = Self::owner(&mut entity, column)?;
        owner.children.push(Node::Element(
            Element::new("attribute").with_attr("name", &column.attribute),
        ));
        Ok(Self::assemble(fetch, entity))
    }
}

fn condition(attribute: &str, operator: &str, value: Option<&str>) -> Node {
    let mut element = Element::new("condition")
        .with_attr("attribute", attribute)
        .with_attr("operator", operator);
    if let Some(value) = value {
        element.set_attr("value", value);
    }
    Node::Element(element)
}

/// Restricts an entity to the rows of `part`.
fn restrict(entity: &mut Element, part: &Part) {
    let conditions = match (&part.from, &part.to) {
        (None, None) => Vec::new(),
        // The first part also holds the rows without a date.
        (None, Some(to)) => {
            let mut either = Element::new("filter").with_attr("type", "or");
            either
                .children
                .push(condition(SPLIT_ATTRIBUTE, "lt", Some(to)));
            either
                .children
                .push(condition(SPLIT_ATTRIBUTE, "null", None));
            vec![Node::Element(either)]
        }
        (Some(from), to) => std::iter::once(condition(SPLIT_ATTRIBUTE, "ge", Some(from)))
            .chain(
                to.iter()
                    .map(|to| condition(SPLIT_ATTRIBUTE, "lt", Some(to))),
            )
            .collect(),
    };
    wrap_filters(entity, conditions);
}

/// ANDs `conditions` with the element's own filters: its filters move into a new
/// `and` filter beside the conditions, whatever their own type.
fn wrap_filters(element: &mut Element, conditions: Vec<Node>) {
    if conditions.is_empty() {
        return;
    }
    let mut combined = Element::new("filter").with_attr("type", "and");
    let mut kept = Vec::with_capacity(element.children.len());
    for node in std::mem::take(&mut element.children) {
        match node {
            Node::Element(child) if child.name == "filter" => {
                combined.children.push(Node::Element(child))
            }
            other => kept.push(other),
        }
    }
    combined.children.extend(conditions);
    kept.push(Node::Element(combined));
    element.children = kept;
}

/// Removes selected columns and sorting from an entity and every join below it;
/// filters are left untouched.
fn strip_projection(element: &mut Element) {
    element.children.retain(|node| match node {
        Node::Element(child) => !matches!(
            child.name.as_str(),
            "attribute" | "all-attributes" | "order"
        ),
        Node::Text(text) => !text.trim().is_empty(),
    });
    for child in element.elements_mut().filter(|e| e.name == "link-entity") {
        strip_projection(child);
    }
}

/// Whether the join or a join below it has an alias in `needed`.
fn is_needed(link: &Element, needed: &HashSet<String>) -> bool {
    link.attr("alias").is_some_and(|a| needed.contains(a))
        || link
            .descendants()
            .into_iter()
            .filter(|e| e.name == "link-entity")
            .any(|e| e.attr("alias").is_some_and(|a| needed.contains(a)))
}

fn normalize_joins(
    element: &mut Element,
    needed: &HashSet<String>,
    to_one: &dyn Fn(&Join) -> bool,
) {
    element.children.retain_mut(|node| {
        let Node::Element(link) = node else {
            return true;
        };
        if link.name != "link-entity" {
            return true;
        }
        let join = Join {
            alias: link.attr("alias").map(str::to_string),
            entity: link.attr("name").unwrap_or_default().to_string(),
            from: link.attr("from").unwrap_or_default().to_string(),
        };
        if !is_needed(link, needed) && !to_one(&join) {
            match link.attr("link-type").unwrap_or("inner") {
                // An outer join never removes a row; unread, it can only repeat rows.
                "outer" => return false,
                "inner" => link.set_attr("link-type", "exists"),
                _ => {}
            }
        }
        normalize_joins(link, needed, to_one);
        true
    });
}

fn find_link_entity<'a>(element: &'a mut Element, alias: &str) -> Option<&'a mut Element> {
    for child in element.elements_mut() {
        if child.name == "link-entity" {
            if child.attr("alias") == Some(alias) {
                return Some(child);
            }
            if let Some(found) = find_link_entity(child, alias) {
                return Some(found);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const VIEW: &str = r#"<fetch version='1.0' output-format='xml-platform' mapping='logical' distinct='false' count='50' page='2'>
        <entity name='opportunity'>
        <order attribute='estimatedvalue' descending='false' />
        <filter type='or'>
            <condition attribute='statecode' operator='eq' value='0' />
            <condition attribute='statuscode' operator='in'><value>1</value><value>2</value></condition>
        </filter>
        <attribute name='name' />
        <attribute name='estimatedvalue' />
        <link-entity alias='cust' name='contact' from='contactid' to='customerid' link-type='outer' visible='false'>
            <attribute name='emailaddress1' />
            <order attribute='fullname' />
            <filter><condition attribute='statecode' operator='eq' value='0'/></filter>
        </link-entity>
        <link-entity alias='tasks' name='task' from='regardingobjectid' to='opportunityid'>
            <filter><condition attribute='statecode' operator='eq' value='0'/></filter>
        </link-entity>
        <link-entity alias='notes' name='annotation' from='objectid' to='opportunityid' link-type='outer'/>
        <attribute name='opportunityid' />
        </entity>
      </fetch>"#;

    fn to_one(join: &Join) -> bool {
        join.from == format!("{}id", join.entity)
    }

    fn metric_query(shown: &[&str]) -> MetricQuery {
        ViewQuery::parse(VIEW)
            .unwrap()
            .metric_query(shown, &to_one)
            .unwrap()
    }

    fn parse(xml: &str) -> Element {
        Element::parse(xml).unwrap()
    }

    fn find<'a>(root: &'a Element, name: &str, alias: &str) -> Option<&'a Element> {
        root.descendants()
            .into_iter()
            .find(|e| e.name == name && e.attr("alias") == Some(alias))
    }

    fn aggregates(root: &Element) -> Vec<(String, String, String)> {
        root.descendants()
            .into_iter()
            .filter(|e| e.name == "attribute")
            .map(|e| {
                (
                    e.attr("name").unwrap().to_string(),
                    e.attr("alias").unwrap().to_string(),
                    e.attr("aggregate").unwrap().to_string(),
                )
            })
            .collect()
    }

    #[test]
    fn aggregates_keep_filters_and_drop_projection_and_paging() {
        let xml = metric_query(&[])
            .aggregate(
                &ColumnRef::from_cell("estimatedvalue_base"),
                &[Function::Sum, Function::CountColumn, Function::Count],
                "opportunityid",
                None,
            )
            .unwrap();
        let root = parse(&xml);
        assert_eq!(root.attr("aggregate"), Some("true"));
        for gone in ["count", "page", "distinct"] {
            assert_eq!(root.attr(gone), None, "{gone} must be removed");
        }
        assert_eq!(root.attr("mapping"), Some("logical"));
        let names: Vec<_> = root.descendants().iter().map(|e| e.name.clone()).collect();
        assert!(!names.contains(&"order".to_string()));
        let values: Vec<_> = root
            .descendants()
            .into_iter()
            .filter(|e| e.name == "value")
            .map(|e| e.text())
            .collect();
        assert_eq!(values, ["1", "2"]);
        assert_eq!(
            aggregates(&root),
            [
                (
                    "estimatedvalue_base".into(),
                    "metric_sum".into(),
                    "sum".into()
                ),
                (
                    "estimatedvalue_base".into(),
                    "metric_values".into(),
                    "countcolumn".into()
                ),
                ("opportunityid".into(), "metric_rows".into(), "count".into()),
            ]
        );
    }

    #[test]
    fn joins_that_could_repeat_rows_become_semi_joins_or_go() {
        let root = parse(
            &metric_query(&[])
                .aggregate(
                    &ColumnRef::from_cell("name"),
                    &[Function::Count],
                    "opportunityid",
                    None,
                )
                .unwrap(),
        );
        // Many-to-one: kept as it is.
        assert_eq!(
            find(&root, "link-entity", "cust")
                .unwrap()
                .attr("link-type"),
            Some("outer")
        );
        // One-to-many inner filter: an exists semi-join, its filter kept.
        let tasks = find(&root, "link-entity", "tasks").unwrap();
        assert_eq!(tasks.attr("link-type"), Some("exists"));
        assert_eq!(tasks.descendants().len(), 2);
        // One-to-many outer join nobody reads: gone.
        assert!(find(&root, "link-entity", "notes").is_none());
    }

    #[test]
    fn joins_whose_columns_are_shown_stay_joins() {
        let root = parse(
            &metric_query(&["tasks"])
                .aggregate(
                    &ColumnRef::from_cell("name"),
                    &[Function::Count],
                    "opportunityid",
                    None,
                )
                .unwrap(),
        );
        assert_eq!(
            find(&root, "link-entity", "tasks")
                .unwrap()
                .attr("link-type"),
            None
        );
    }

    #[test]
    fn joins_named_by_conditions_stay() {
        let view = "<fetch><entity name='account'><filter><condition entityname='c' attribute='contactid' operator='null'/></filter>\
            <link-entity name='contact' from='parentcustomerid' to='accountid' link-type='outer' alias='c'/></entity></fetch>";
        let query = ViewQuery::parse(view)
            .unwrap()
            .metric_query(&[], &to_one)
            .unwrap();
        let root = parse(
            &query
                .aggregate(
                    &ColumnRef::from_cell("name"),
                    &[Function::Count],
                    "accountid",
                    None,
                )
                .unwrap(),
        );
        assert!(
            find(&root, "link-entity", "c").is_some(),
            "a 'has no contact' filter needs its join"
        );
    }

    #[test]
    fn linked_columns_are_aggregated_inside_their_join() {
        let root = parse(
            &metric_query(&[])
                .aggregate(
                    &ColumnRef::from_cell("cust.emailaddress1"),
                    &[Function::CountDistinct, Function::Count],
                    "opportunityid",
                    None,
                )
                .unwrap(),
        );
        let link = find(&root, "link-entity", "cust").unwrap();
        let value = link.elements().find(|e| e.name == "attribute").unwrap();
        assert_eq!(value.attr("name"), Some("emailaddress1"));
        assert_eq!(value.attr("aggregate"), Some("countcolumn"));
        assert_eq!(value.attr("distinct"), Some("true"));
        let unknown = metric_query(&[]).aggregate(
            &ColumnRef::from_cell("nope.x"),
            &[Function::Max],
            "opportunityid",
            None,
        );
        assert_eq!(unknown, Err(FetchXmlError::UnknownAlias("nope".into())));
    }

    #[test]
    fn parts_and_the_views_filters_are_anded() {
        let part = Part {
            from: Some("2024-01-01T00:00:00Z".into()),
            to: Some("2025-01-01T00:00:00Z".into()),
        };
        let root = parse(
            &metric_query(&[])
                .aggregate(
                    &ColumnRef::from_cell("name"),
                    &[Function::Count],
                    "opportunityid",
                    Some(&part),
                )
                .unwrap(),
        );
        let entity = root.elements().next().unwrap();
        let filters: Vec<_> = entity.elements().filter(|e| e.name == "filter").collect();
        assert_eq!(filters.len(), 1, "one top-level filter");
        assert_eq!(filters[0].attr("type"), Some("and"));
        let inner: Vec<_> = filters[0].elements().collect();
        assert_eq!(
            inner[0].attr("type"),
            Some("or"),
            "the view's own filter, intact"
        );
        assert_eq!(
            (inner[1].attr("operator"), inner[1].attr("value")),
            (Some("ge"), Some("2024-01-01T00:00:00Z"))
        );
        assert_eq!(
            (inner[2].attr("operator"), inner[2].attr("value")),
            (Some("lt"), Some("2025-01-01T00:00:00Z"))
        );

        let first = Part {
            from: None,
            to: Some("2024-01-01T00:00:00Z".into()),
        };
        let first = parse(
            &metric_query(&[])
                .aggregate(
                    &ColumnRef::from_cell("name"),
                    &[Function::Count],
                    "opportunityid",
                    Some(&first),
                )
                .unwrap(),
        );
        let either = first
            .descendants()
            .into_iter()
            .find(|e| {
                e.name == "filter"
                    && e.attr("type") == Some("or")
                    && e.elements().any(|c| c.attr("operator") == Some("null"))
            })
            .expect("the first part holds undated rows too");
        assert!(either.elements().any(|c| c.attr("operator") == Some("lt")));
    }

    #[test]
    fn probes_and_pages() {
        let query = metric_query(&[]);
        let first = parse(&query.first_created(true));
        assert_eq!(first.attr("top"), Some("1"));
        assert!(
            first
                .descendants()
                .iter()
                .any(|e| e.name == "order" && e.attr("descending") == Some("true"))
        );

        let currencies = parse(
            &query
                .distinct_values(&ColumnRef::from_cell("cust.x"), "transactioncurrencyid")
                .unwrap(),
        );
        assert_eq!(
            (currencies.attr("distinct"), currencies.attr("top")),
            (Some("true"), Some("2"))
        );
        let cust = find(&currencies, "link-entity", "cust").unwrap();
        assert!(
            cust.elements()
                .any(|e| e.name == "attribute" && e.attr("name") == Some("transactioncurrencyid"))
        );

        let page = parse(
            &query
                .page(
                    &ColumnRef::from_cell("name"),
                    "opportunityid",
                    3,
                    5000,
                    Some("<cookie page=\"2\"/>"),
                )
                .unwrap(),
        );
        assert_eq!(page.attr("page"), Some("3"));
        assert_eq!(page.attr("count"), Some("5000"));
        assert_eq!(page.attr("paging-cookie"), Some("<cookie page=\"2\"/>"));
        assert!(
            page.descendants()
                .iter()
                .any(|e| e.name == "order" && e.attr("attribute") == Some("opportunityid"))
        );
    }

    #[test]
    fn refuses_what_is_not_a_plain_view_query() {
        assert_eq!(
            ViewQuery::parse("<grid/>").unwrap_err(),
            FetchXmlError::NotAFetch
        );
        let aggregate =
            ViewQuery::parse("<fetch aggregate='true'><entity name='a'/></fetch>").unwrap();
        assert_eq!(
            aggregate.metric_query(&[], &to_one).unwrap_err(),
            FetchXmlError::AlreadyAggregate
        );
        let query = ViewQuery::parse(VIEW).unwrap();
        assert_eq!(query.entity_name(), "opportunity");
        assert_eq!(query.linked_entity("cust"), Some("contact"));
        assert_eq!(query.joins().len(), 3);
    }

    #[test]
    fn a_category_ands_its_value_with_the_views_filters_and_windows() {
        let mut query = metric_query(&[]);
        query.within("estimatedclosedate", Some("2024-01-01"), None);
        query.equals("statuscode", "3");
        let column = ColumnRef::from_cell("estimatedvalue");
        for xml in [
            query
                .aggregate(&column, &[Function::Sum], "opportunityid", None)
                .unwrap(),
            query.page(&column, "opportunityid", 1, 50, None).unwrap(),
        ] {
            let root = parse(&xml);
            let entity = root.elements().next().unwrap();
            let filters: Vec<&Element> = entity.elements().filter(|e| e.name == "filter").collect();
            assert_eq!(filters.len(), 1, "one filter ANDs everything: {xml}");
            // Each restriction wraps the filters before it: the category's `and`
            // holds the window's, which holds the view's own `or` filter, whole.
            let category = filters[0];
            assert_eq!(category.attr("type"), Some("and"));
            let conditions: Vec<_> = category
                .elements()
                .filter(|e| e.name == "condition")
                .map(|e| (e.attr("attribute"), e.attr("operator"), e.attr("value")))
                .collect();
            assert_eq!(conditions, [(Some("statuscode"), Some("eq"), Some("3"))]);
            let window = category
                .elements()
                .find(|e| e.name == "filter")
                .expect("the window's filter inside");
            assert_eq!(window.attr("type"), Some("and"));
            assert!(
                window
                    .elements()
                    .any(|e| e.attr("operator") == Some("on-or-after"))
            );
            assert!(
                window
                    .elements()
                    .any(|e| e.name == "filter" && e.attr("type") == Some("or")),
                "the view's own filter is kept: {xml}"
            );
        }
    }

    #[test]
    fn a_window_ands_its_days_with_the_views_filters_in_every_query() {
        let mut query = metric_query(&[]);
        query.within("estimatedclosedate", Some("2024-01-01"), Some("2024-03-31"));
        let column = ColumnRef::from_cell("estimatedvalue");
        let aggregate = parse(
            &query
                .aggregate(&column, &[Function::Sum], "opportunityid", None)
                .unwrap(),
        );
        let entity = aggregate.elements().next().unwrap();
        let and: Vec<&Element> = entity.elements().filter(|e| e.name == "filter").collect();
        assert_eq!(and.len(), 1, "one filter ANDs the view's with the window's");
        assert_eq!(and[0].attr("type"), Some("and"));
        let conditions: Vec<(Option<&str>, Option<&str>)> = and[0]
            .elements()
            .filter(|e| e.name == "condition")
            .map(|e| (e.attr("operator"), e.attr("value")))
            .collect();
        assert_eq!(
            conditions,
            [
                (Some("on-or-after"), Some("2024-01-01")),
                (Some("on-or-before"), Some("2024-03-31"))
            ]
        );
        // The view's own `or` filter stays inside, whole.
        assert!(
            and[0]
                .elements()
                .any(|e| e.name == "filter" && e.attr("type") == Some("or"))
        );
        // Pages carry it too; an open end adds no condition.
        let mut open = metric_query(&[]);
        open.within("estimatedclosedate", None, Some("2024-03-31"));
        let page = open.page(&column, "opportunityid", 1, 50, None).unwrap();
        assert!(
            page.contains("on-or-before") && !page.contains("on-or-after"),
            "{page}"
        );
    }
}
