//! FetchXML → a query bound to the sample schema, with Dataverse's validation
//! errors for unknown entities, attributes and operators.

use crate::data::{AttributeDef, AttributeType, Db, EntityDef};
use crate::errors::{ODataError, codes};
use crate::format::parse_datetime;
use crate::like::LikePattern;
use crate::xml::Element;

/// Dataverse refuses queries with more link-entities than this.
pub const MAX_LINK_ENTITIES: usize = 15;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggregateFn {
    Count,
    CountColumn,
    Sum,
    Avg,
    Min,
    Max,
}

impl AggregateFn {
    fn parse(name: &str) -> Option<AggregateFn> {
        Some(match name {
            "count" => AggregateFn::Count,
            "countcolumn" => AggregateFn::CountColumn,
            "sum" => AggregateFn::Sum,
            "avg" => AggregateFn::Avg,
            "min" => AggregateFn::Min,
            "max" => AggregateFn::Max,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            AggregateFn::Count => "count",
            AggregateFn::CountColumn => "countcolumn",
            AggregateFn::Sum => "sum",
            AggregateFn::Avg => "avg",
            AggregateFn::Min => "min",
            AggregateFn::Max => "max",
        }
    }
}

/// A selected column.
#[derive(Debug, Clone)]
pub struct Selected<'a> {
    pub attribute: &'a AttributeDef,
    pub alias: Option<String>,
    pub aggregate: Option<AggregateFn>,
    pub distinct: bool,
}

#[derive(Debug, Clone)]
pub struct Order<'a> {
    pub attribute: &'a AttributeDef,
    pub descending: bool,
}

/// How a link-entity joins its parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkType {
    Inner,
    Outer,
    /// `exists`/`in`: keeps parents with a match, without repeating them.
    Exists,
}

/// The root entity (index 0) or a link-entity.
#[derive(Debug, Clone)]
pub struct Node<'a> {
    pub entity: &'a EntityDef,
    /// The link-entity alias (given or generated); `None` for the root.
    pub alias: Option<String>,
    /// Index of the node this one is nested in.
    pub parent: Option<usize>,
    /// Attribute of this node compared with `to` of the parent.
    pub from: Option<&'a AttributeDef>,
    pub to: Option<&'a AttributeDef>,
    pub link_type: LinkType,
    pub selected: Vec<Selected<'a>>,
    pub all_attributes: bool,
    pub orders: Vec<Order<'a>>,
    /// The node's `<filter>` children, combined with `and`.
    pub filters: Vec<FilterGroup<'a>>,
}

#[derive(Debug, Clone)]
pub struct FilterGroup<'a> {
    pub or: bool,
    pub items: Vec<FilterItem<'a>>,
}

#[derive(Debug, Clone)]
pub enum FilterItem<'a> {
    Condition(Condition<'a>),
    Group(FilterGroup<'a>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    Null,
    NotNull,
    In,
    NotIn,
    Between,
    NotBetween,
    Like,
    NotLike,
    BeginsWith,
    NotBeginWith,
    EndsWith,
    NotEndWith,
    On,
    OnOrAfter,
    OnOrBefore,
    EqUserId,
    NeUserId,
}

impl Operator {
    fn parse(name: &str) -> Option<Operator> {
        Some(match name {
            "eq" => Operator::Eq,
            "ne" | "neq" => Operator::Ne,
            "gt" => Operator::Gt,
            "ge" => Operator::Ge,
            "lt" => Operator::Lt,
            "le" => Operator::Le,
            "null" => Operator::Null,
            "not-null" => Operator::NotNull,
            "in" => Operator::In,
            "not-in" => Operator::NotIn,
            "between" => Operator::Between,
            "not-between" => Operator::NotBetween,
            "like" => Operator::Like,
            "not-like" => Operator::NotLike,
            "begins-with" => Operator::BeginsWith,
            "not-begin-with" => Operator::NotBeginWith,
            "ends-with" => Operator::EndsWith,
            "not-end-with" => Operator::NotEndWith,
            "on" => Operator::On,
            "on-or-after" => Operator::OnOrAfter,
            "on-or-before" => Operator::OnOrBefore,
            "eq-userid" => Operator::EqUserId,
            "ne-userid" => Operator::NeUserId,
            _ => return None,
        })
    }
}

/// Operators Dataverse has that the simulator does not evaluate.
const KNOWN_UNSUPPORTED_OPERATORS: &[&str] = &[
    "yesterday",
    "today",
    "tomorrow",
    "last-seven-days",
    "next-seven-days",
    "last-week",
    "this-week",
    "next-week",
    "last-month",
    "this-month",
    "next-month",
    "last-year",
    "this-year",
    "next-year",
    "last-x-hours",
    "next-x-hours",
    "last-x-days",
    "next-x-days",
    "last-x-weeks",
    "next-x-weeks",
    "last-x-months",
    "next-x-months",
    "last-x-years",
    "next-x-years",
    "olderthan-x-minutes",
    "olderthan-x-hours",
    "olderthan-x-days",
    "olderthan-x-weeks",
    "olderthan-x-months",
    "olderthan-x-years",
    "eq-userteams",
    "eq-useroruserteams",
    "eq-useroruserhierarchy",
    "eq-useroruserhierarchyandteams",
    "eq-businessid",
    "ne-businessid",
    "eq-userlanguage",
    "under",
    "eq-or-under",
    "not-under",
    "above",
    "eq-or-above",
    "contain-values",
    "not-contain-values",
    "in-fiscal-year",
    "in-fiscal-period",
    "in-fiscal-period-and-year",
    "in-or-after-fiscal-period-and-year",
    "in-or-before-fiscal-period-and-year",
    "last-fiscal-year",
    "this-fiscal-year",
    "next-fiscal-year",
    "last-fiscal-period",
    "this-fiscal-period",
    "next-fiscal-period",
    "last-x-fiscal-years",
    "next-x-fiscal-years",
    "last-x-fiscal-periods",
    "next-x-fiscal-periods",
];

/// A condition value, typed by its attribute.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    Num(f64),
    /// Lower-cased text (comparisons ignore case) or a lower-case GUID.
    Text(String),
    Bool(bool),
    /// Unix seconds.
    Time(i64),
}

#[derive(Debug, Clone)]
pub struct Condition<'a> {
    /// The node whose row the condition reads.
    pub node: usize,
    pub attribute: &'a AttributeDef,
    pub operator: Operator,
    pub values: Vec<Scalar>,
    /// The compiled pattern of `like`, `begins-with`, `ends-with` and their negations.
    pub pattern: Option<LikePattern>,
}

#[derive(Debug, Clone)]
pub struct Query<'a> {
    pub aggregate: bool,
    pub count: Option<usize>,
    pub page: Option<usize>,
    pub paging_cookie: Option<String>,
    pub top: Option<usize>,
    pub distinct: bool,
    pub aggregate_limit: Option<usize>,
    pub return_total_record_count: bool,
    pub nodes: Vec<Node<'a>>,
}

fn invalid(message: impl Into<String>) -> ODataError {
    ODataError::invalid(message)
}

fn flag(value: Option<&str>) -> Result<bool, ODataError> {
    match value.map(str::trim) {
        None => Ok(false),
        Some("true" | "1") => Ok(true),
        Some("false" | "0") => Ok(false),
        Some(other) => Err(invalid(format!(
            "'{other}' is not a valid boolean value in FetchXml."
        ))),
    }
}

fn positive(element: &Element, name: &str) -> Result<Option<usize>, ODataError> {
    match element.attr(name) {
        None => Ok(None),
        Some(text) => match text.trim().parse::<usize>() {
            Ok(n) if n > 0 => Ok(Some(n)),
            _ => Err(invalid(format!(
                "The '{name}' attribute of fetch must be a positive integer, not '{text}'."
            ))),
        },
    }
}

/// Parses and binds a FetchXML query.
pub fn parse<'a>(data: Db<'a>, fetch_xml: &str) -> Result<Query<'a>, ODataError> {
    let root = Element::parse(fetch_xml)
        .map_err(|e| ODataError::invalid(format!("The FetchXml is not valid: {e}")))?;
    if root.name != "fetch" {
        return Err(invalid(format!(
            "The root element of FetchXml must be 'fetch', not '{}'.",
            root.name
        )));
    }
    const FETCH_ATTRIBUTES: &[&str] = &[
        "aggregate",
        "aggregatelimit",
        "count",
        "distinct",
        "page",
        "paging-cookie",
        "top",
        "mapping",
        "version",
        "output-format",
        "returntotalrecordcount",
        "no-lock",
        "latematerialize",
        "useraworderby",
        "datasource",
        "options",
    ];
    if let Some((name, _)) = root
        .attributes
        .iter()
        .find(|(name, _)| !FETCH_ATTRIBUTES.contains(&name.as_str()))
    {
        return Err(invalid(format!(
            "The '{name}' attribute is not declared on the fetch element."
        )));
    }
    let entities: Vec<&Element> = root
        .children
        .iter()
        .filter(|c| c.name == "entity")
        .collect();
    if entities.len() != 1 || root.children.len() != 1 {
        return Err(invalid(
            "The fetch element must contain exactly one entity element.",
        ));
    }
    let mut query = Query {
        aggregate: flag(root.attr("aggregate"))?,
        count: positive(&root, "count")?,
        page: positive(&root, "page")?,
        paging_cookie: root
            .attr("paging-cookie")
            .map(str::to_string)
            .filter(|c| !c.trim().is_empty()),
        top: positive(&root, "top")?,
        distinct: flag(root.attr("distinct"))?,
        aggregate_limit: positive(&root, "aggregatelimit")?,
        return_total_record_count: flag(root.attr("returntotalrecordcount"))?,
        nodes: Vec::new(),
    };
    if query.top.is_some() && (query.page.is_some() || query.count.is_some()) {
        return Err(invalid(
            "The top attribute can't be specified with paging attribute page or count.",
        ));
    }
    if query.top.is_some_and(|top| top > 5000) {
        return Err(invalid("The top attribute can't be greater than 5000."));
    }
    let entity_element = entities[0];
    let entity = entity_of(data, entity_element)?;
    query.nodes.push(Node {
        entity,
        alias: None,
        parent: None,
        from: None,
        to: None,
        link_type: LinkType::Inner,
        selected: Vec::new(),
        all_attributes: false,
        orders: Vec::new(),
        filters: Vec::new(),
    });
    let mut builder = Builder {
        data,
        aggregate: query.aggregate,
        nodes: query.nodes,
        pending_filters: Vec::new(),
        generated: 0,
    };
    builder.children(0, entity_element)?;
    // Conditions may name a link-entity declared after them, so filters are bound
    // once every alias is known.
    for (node, element) in std::mem::take(&mut builder.pending_filters) {
        let group = builder.filter(node, element)?;
        builder.nodes[node].filters.push(group);
    }
    query.nodes = builder.nodes;
    if query.nodes.len() - 1 > MAX_LINK_ENTITIES {
        return Err(ODataError::bad_request(
            codes::LINK_ENTITY_LIMIT,
            "Number of link entities in query exceeded maximum limit.",
        ));
    }
    validate_aggregates(&query)?;
    Ok(query)
}

fn entity_of<'a>(data: Db<'a>, element: &Element) -> Result<&'a EntityDef, ODataError> {
    let name = element.attr("name").ok_or_else(|| {
        invalid(format!(
            "The '{}' element needs a 'name' attribute.",
            element.name
        ))
    })?;
    data.entity(name).ok_or_else(|| {
        ODataError::bad_request(
            codes::QUERY_BUILDER_NO_ENTITY,
            format!(
                "The entity with a name = '{name}' with namemapping = 'Logical' was not found in the MetadataCache."
            ),
        )
    })
}

fn attribute_of<'a>(
    entity: &'a EntityDef,
    name: Option<&str>,
    element: &str,
) -> Result<&'a AttributeDef, ODataError> {
    let name = name.ok_or_else(|| {
        invalid(format!(
            "The '{element}' element needs an 'attribute' or 'name' attribute."
        ))
    })?;
    entity
        .attribute(name)
        .ok_or_else(|| ODataError::no_attribute(&entity.logical_name, name))
}

struct Builder<'a, 'x> {
    data: Db<'a>,
    aggregate: bool,
    nodes: Vec<Node<'a>>,
    pending_filters: Vec<(usize, &'x Element)>,
    generated: usize,
}

impl<'a, 'x> Builder<'a, 'x> {
    fn children(&mut self, node: usize, element: &'x Element) -> Result<(), ODataError> {
        for child in &element.children {
            match child.name.as_str() {
                "attribute" => {
                    let entity = self.nodes[node].entity;
                    let attribute = attribute_of(entity, child.attr("name"), "attribute")?;
                    let aggregate = match child.attr("aggregate") {
                        None => None,
                        Some(name) => Some(AggregateFn::parse(name).ok_or_else(|| {
                            invalid(format!(
                                "'{name}' is not a valid aggregate; use count, countcolumn, sum, avg, min or max."
                            ))
                        })?),
                    };
                    if flag(child.attr("groupby"))? || child.attr("dategrouping").is_some() {
                        return Err(ODataError::not_implemented(
                            "The simulator does not implement groupby in aggregate FetchXml.",
                        ));
                    }
                    self.nodes[node].selected.push(Selected {
                        attribute,
                        alias: child.attr("alias").map(str::to_string),
                        aggregate,
                        distinct: flag(child.attr("distinct"))?,
                    });
                }
                "all-attributes" => self.nodes[node].all_attributes = true,
                "order" => {
                    if let Some(alias) = child.attr("alias")
                        && child.attr("attribute").is_none()
                    {
                        if self.aggregate {
                            // Ordering one aggregate row changes nothing.
                            continue;
                        }
                        return Err(invalid(format!(
                            "An order by alias '{alias}' is only valid in an aggregate query."
                        )));
                    }
                    let entity = self.nodes[node].entity;
                    let attribute = attribute_of(entity, child.attr("attribute"), "order")?;
                    let descending = flag(child.attr("descending"))?;
                    self.nodes[node].orders.push(Order {
                        attribute,
                        descending,
                    });
                }
                "filter" => self.pending_filters.push((node, child)),
                "link-entity" => self.link(node, child)?,
                other => {
                    return Err(invalid(format!(
                        "The element '{other}' is not valid inside '{}'.",
                        element.name
                    )));
                }
            }
        }
        Ok(())
    }

    fn link(&mut self, parent: usize, element: &'x Element) -> Result<(), ODataError> {
        let entity = entity_of(self.data, element)?;
        let from = attribute_of(entity, element.attr("from"), "link-entity from")?;
        let parent_entity = self.nodes[parent].entity;
        let to = attribute_of(parent_entity, element.attr("to"), "link-entity to")?;
        let link_type = match element.attr("link-type").unwrap_or("inner") {
            "inner" => LinkType::Inner,
            "outer" => LinkType::Outer,
            "exists" | "in" => LinkType::Exists,
            other @ ("any" | "not any" | "all" | "not all" | "matchfirstrowusingcrossapply") => {
                return Err(ODataError::not_implemented(format!(
                    "The simulator does not implement link-type '{other}'."
                )));
            }
            other => {
                return Err(invalid(format!("'{other}' is not a valid link-type.")));
            }
        };
        let alias = match element.attr("alias") {
            Some(alias) => alias.to_string(),
            None => {
                // Dataverse names unaliased joins itself.
                self.generated += 1;
                format!("{}{}", entity.logical_name, self.generated)
            }
        };
        if self
            .nodes
            .iter()
            .any(|n| n.alias.as_deref() == Some(alias.as_str()))
        {
            return Err(invalid(format!(
                "The link-entity alias '{alias}' is used more than once."
            )));
        }
        let index = self.nodes.len();
        self.nodes.push(Node {
            entity,
            alias: Some(alias),
            parent: Some(parent),
            from: Some(from),
            to: Some(to),
            link_type,
            selected: Vec::new(),
            all_attributes: false,
            orders: Vec::new(),
            filters: Vec::new(),
        });
        if self.nodes.len() - 1 > MAX_LINK_ENTITIES {
            return Err(ODataError::bad_request(
                codes::LINK_ENTITY_LIMIT,
                "Number of link entities in query exceeded maximum limit.",
            ));
        }
        self.children(index, element)?;
        // The link and everything nested in it (pushed after it) only filter.
        if link_type == LinkType::Exists
            && let Some(node) = self.nodes[index..]
                .iter()
                .find(|n| !n.selected.is_empty() || n.all_attributes)
        {
            let alias = node.alias.as_deref().unwrap_or_default();
            let kind = element.attr("link-type").unwrap_or("exists");
            return Err(invalid(format!(
                "Attributes can't be returned from a link-entity with link-type '{kind}' \
                 (link-entity '{alias}'): it only filters the rows of its parent. Remove \
                 the attributes or use link-type 'inner' or 'outer'."
            )));
        }
        Ok(())
    }

    fn filter(&self, node: usize, element: &Element) -> Result<FilterGroup<'a>, ODataError> {
        let or = match element.attr("type").unwrap_or("and") {
            "and" => false,
            "or" => true,
            other => {
                return Err(invalid(format!(
                    "'{other}' is not a valid filter type; use and or or."
                )));
            }
        };
        let mut items = Vec::new();
        for child in &element.children {
            match child.name.as_str() {
                "condition" => items.push(FilterItem::Condition(self.condition(node, child)?)),
                "filter" => items.push(FilterItem::Group(self.filter(node, child)?)),
                "link-entity" => {
                    return Err(ODataError::not_implemented(
                        "The simulator does not implement link-entity inside filter.",
                    ));
                }
                other => {
                    return Err(invalid(format!(
                        "The element '{other}' is not valid inside 'filter'."
                    )));
                }
            }
        }
        Ok(FilterGroup { or, items })
    }

    fn node_named(&self, name: &str) -> Result<usize, ODataError> {
        self.nodes
            .iter()
            .position(|n| n.alias.as_deref() == Some(name))
            .or_else(|| {
                let mut by_name = self
                    .nodes
                    .iter()
                    .enumerate()
                    .skip(1)
                    .filter(|(_, n)| n.entity.logical_name == name);
                match (by_name.next(), by_name.next()) {
                    (Some((i, _)), None) => Some(i),
                    _ => None,
                }
            })
            .ok_or_else(|| {
                invalid(format!(
                    "The condition's entityname '{name}' matches no link-entity alias."
                ))
            })
    }

    fn condition(&self, node: usize, element: &Element) -> Result<Condition<'a>, ODataError> {
        if element.attr("valueof").is_some() {
            return Err(ODataError::not_implemented(
                "The simulator does not implement column comparison (valueof).",
            ));
        }
        let node = match element.attr("entityname") {
            Some(name) => self.node_named(name)?,
            None => node,
        };
        let entity = self.nodes[node].entity;
        let attribute = attribute_of(entity, element.attr("attribute"), "condition")?;
        let operator_name = element.attr("operator").unwrap_or("eq");
        let operator = match Operator::parse(operator_name) {
            Some(op) => op,
            None if KNOWN_UNSUPPORTED_OPERATORS.contains(&operator_name) => {
                return Err(ODataError::not_implemented(format!(
                    "The simulator does not implement the condition operator '{operator_name}'."
                )));
            }
            None => {
                return Err(invalid(format!(
                    "The 'operator' attribute is invalid - The value '{operator_name}' is invalid according to its datatype 'http://schemas.microsoft.com/crm/2006/query:operator' - The Enumeration constraint failed."
                )));
            }
        };
        let mut raw: Vec<String> = element
            .children
            .iter()
            .filter(|c| c.name == "value")
            .map(|c| c.text.trim().to_string())
            .collect();
        if let Some(value) = element.attr("value") {
            raw.insert(0, value.to_string());
        }
        let expected = match operator {
            Operator::Null | Operator::NotNull | Operator::EqUserId | Operator::NeUserId => Some(0),
            Operator::In | Operator::NotIn => None,
            Operator::Between | Operator::NotBetween => Some(2),
            _ => Some(1),
        };
        let count_ok = match expected {
            Some(n) => raw.len() == n,
            None => !raw.is_empty(),
        };
        let subject = format!("{}.{}", entity.logical_name, attribute.logical_name);
        if !count_ok {
            return Err(invalid(format!(
                "Condition for attribute '{subject}': the operator '{operator_name}' expects {} value(s), {} given.",
                expected
                    .map(|n| n.to_string())
                    .unwrap_or_else(|| "at least one".into()),
                raw.len()
            )));
        }
        check_operator_type(operator, operator_name, attribute, &subject)?;
        let values = raw
            .iter()
            .map(|text| typed_value(attribute, operator, text, &subject))
            .collect::<Result<Vec<_>, _>>()?;
        let pattern = match (operator, raw.first()) {
            (Operator::Like | Operator::NotLike, Some(value)) => Some(LikePattern::new(value)),
            // Dataverse adds the wildcard; the value itself is matched literally.
            (Operator::BeginsWith | Operator::NotBeginWith, Some(value)) => Some(LikePattern::new(
                &format!("{}%", LikePattern::literal(value)),
            )),
            (Operator::EndsWith | Operator::NotEndWith, Some(value)) => Some(LikePattern::new(
                &format!("%{}", LikePattern::literal(value)),
            )),
            _ => None,
        };
        Ok(Condition {
            node,
            attribute,
            operator,
            values,
            pattern,
        })
    }
}

fn check_operator_type(
    operator: Operator,
    name: &str,
    attribute: &AttributeDef,
    subject: &str,
) -> Result<(), ODataError> {
    let kind = attribute.attribute_type;
    let text = matches!(
        kind,
        AttributeType::String | AttributeType::Memo | AttributeType::EntityName
    );
    let ok = match operator {
        Operator::Like
        | Operator::NotLike
        | Operator::BeginsWith
        | Operator::NotBeginWith
        | Operator::EndsWith
        | Operator::NotEndWith => text,
        Operator::On | Operator::OnOrAfter | Operator::OnOrBefore => {
            kind == AttributeType::DateTime
        }
        Operator::EqUserId | Operator::NeUserId => kind.is_guid(),
        _ => true,
    };
    if ok {
        Ok(())
    } else {
        Err(invalid(format!(
            "Condition for attribute '{subject}': the operator '{name}' is not valid for an attribute of type {}.",
            kind.code()
        )))
    }
}

fn typed_value(
    attribute: &AttributeDef,
    operator: Operator,
    text: &str,
    subject: &str,
) -> Result<Scalar, ODataError> {
    let kind = attribute.attribute_type;
    let mismatch = |expected: &str| {
        invalid(format!(
            "Condition for attribute '{subject}': expected argument(s) of type '{expected}' but received '{text}'."
        ))
    };
    if matches!(
        operator,
        Operator::Like
            | Operator::NotLike
            | Operator::BeginsWith
            | Operator::NotBeginWith
            | Operator::EndsWith
            | Operator::NotEndWith
    ) {
        return Ok(Scalar::Text(text.to_string()));
    }
    match kind {
        AttributeType::String | AttributeType::Memo | AttributeType::EntityName => {
            Ok(Scalar::Text(text.to_lowercase()))
        }
        AttributeType::Integer
        | AttributeType::BigInt
        | AttributeType::Picklist
        | AttributeType::State
        | AttributeType::Status => text
            .trim()
            .parse::<i64>()
            .map(|n| Scalar::Num(n as f64))
            .map_err(|_| mismatch("System.Int32")),
        AttributeType::Money | AttributeType::Decimal | AttributeType::Double => text
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite())
            .map(Scalar::Num)
            .ok_or_else(|| mismatch("System.Decimal")),
        AttributeType::Boolean => match text.trim() {
            "1" | "true" => Ok(Scalar::Bool(true)),
            "0" | "false" => Ok(Scalar::Bool(false)),
            _ => Err(mismatch("System.Boolean")),
        },
        AttributeType::DateTime => parse_datetime(text)
            .map(Scalar::Time)
            .ok_or_else(|| mismatch("System.DateTime")),
        AttributeType::Uniqueidentifier
        | AttributeType::Lookup
        | AttributeType::Customer
        | AttributeType::Owner => {
            let guid = text.trim().trim_start_matches('{').trim_end_matches('}');
            if crate::data::is_guid(guid) {
                Ok(Scalar::Text(guid.to_ascii_lowercase()))
            } else {
                Err(mismatch("System.Guid"))
            }
        }
    }
}

fn validate_aggregates(query: &Query<'_>) -> Result<(), ODataError> {
    let mut aliases: Vec<&str> = Vec::new();
    for node in &query.nodes {
        if query.aggregate && node.all_attributes {
            return Err(invalid("An aggregate query cannot contain all-attributes."));
        }
        for selected in &node.selected {
            match (query.aggregate, selected.aggregate) {
                (true, None) => {
                    return Err(invalid(format!(
                        "Attribute '{}' of an aggregate query needs an aggregate function.",
                        selected.attribute.logical_name
                    )));
                }
                (false, Some(function)) => {
                    return Err(invalid(format!(
                        "The aggregate '{}' on attribute '{}' requires aggregate='true' on fetch.",
                        function.name(),
                        selected.attribute.logical_name
                    )));
                }
                (true, Some(function)) => {
                    let Some(alias) = selected.alias.as_deref() else {
                        return Err(invalid(format!(
                            "Aggregate '{}' on attribute '{}' needs an alias.",
                            function.name(),
                            selected.attribute.logical_name
                        )));
                    };
                    if aliases.contains(&alias) {
                        return Err(invalid(format!(
                            "The alias '{alias}' is used more than once."
                        )));
                    }
                    aliases.push(alias);
                    let kind = selected.attribute.attribute_type;
                    let allowed = match function {
                        AggregateFn::Count | AggregateFn::CountColumn => true,
                        AggregateFn::Sum | AggregateFn::Avg => kind.is_numeric(),
                        AggregateFn::Min | AggregateFn::Max => {
                            kind.is_numeric() || kind == AttributeType::DateTime
                        }
                    };
                    if !allowed {
                        return Err(invalid(format!(
                            "The aggregate '{}' is not valid for attribute '{}' of type {}.",
                            function.name(),
                            selected.attribute.logical_name,
                            kind.code()
                        )));
                    }
                }
                (false, None) => {}
            }
        }
    }
    if query.aggregate && aliases.is_empty() {
        return Err(invalid(
            "An aggregate query needs at least one attribute with an aggregate function.",
        ));
    }
    Ok(())
}
