//! A view's FetchXML, and its rewrite into an aggregate query that Dataverse
//! computes on the server.

use crate::types::Aggregation;
use crate::xml::{Element, Node, XmlError};

/// Alias of the aggregated value in the rewritten query's result row.
pub const VALUE_ALIAS: &str = "metric_value";
/// Alias of the row count in the rewritten query's result row.
pub const ROWS_ALIAS: &str = "metric_rows";

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

/// The parsed query of a view.
#[derive(Debug, Clone)]
pub struct ViewQuery {
    fetch: Element,
}

/// Which column an aggregate reads: an attribute of the view's entity, or of the
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

    /// Rewrites the view into a query returning one row with the aggregate under
    /// [`VALUE_ALIAS`] and the number of rows under [`ROWS_ALIAS`]. Filters and joins
    /// are kept, so the aggregate covers exactly the rows the view shows; selected
    /// columns, sorting and paging are dropped.
    pub fn aggregate(
        &self,
        column: &ColumnRef,
        aggregation: Aggregation,
        primary_id: &str,
    ) -> Result<String, FetchXmlError> {
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
        ] {
            fetch.remove_attr(paging);
        }
        fetch.set_attr("aggregate", "true");

        let entity = fetch
            .elements_mut()
            .find(|e| e.name == "entity")
            .ok_or(FetchXmlError::NotAFetch)?;
        strip_projection(entity);

        let rows = Element::new("attribute")
            .with_attr("name", primary_id)
            .with_attr("alias", ROWS_ALIAS)
            .with_attr("aggregate", "count");
        if aggregation == Aggregation::Count {
            entity
                .children
                .push(Node::Element(rows.clone().with_attr("alias", VALUE_ALIAS)));
        } else {
            let (function, distinct) = match aggregation {
                Aggregation::CountValues => ("countcolumn", false),
                Aggregation::CountDistinct => ("countcolumn", true),
                Aggregation::Sum => ("sum", false),
                Aggregation::Average => ("avg", false),
                Aggregation::Min => ("min", false),
                Aggregation::Max => ("max", false),
                Aggregation::Count => ("count", false),
            };
            let mut value = Element::new("attribute")
                .with_attr("name", &column.attribute)
                .with_attr("alias", VALUE_ALIAS)
                .with_attr("aggregate", function);
            if distinct {
                value.set_attr("distinct", "true");
            }
            entity.children.push(Node::Element(rows));
            let owner = match &column.alias {
                None => entity,
                Some(alias) => find_link_entity(entity, alias)
                    .ok_or_else(|| FetchXmlError::UnknownAlias(alias.clone()))?,
            };
            owner.children.push(Node::Element(value));
        }
        Ok(fetch.to_xml())
    }
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
        <filter type='and'>
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
        <attribute name='opportunityid' />
        </entity>
      </fetch>"#;

    fn rewrite(column: &str, aggregation: Aggregation) -> Element {
        let query = ViewQuery::parse(VIEW).unwrap();
        let xml = query
            .aggregate(&ColumnRef::from_cell(column), aggregation, "opportunityid")
            .unwrap();
        Element::parse(&xml).unwrap()
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
    fn sum_keeps_filters_and_joins_and_drops_projection() {
        let root = rewrite("estimatedvalue", Aggregation::Sum);
        assert_eq!(root.attr("aggregate"), Some("true"));
        for gone in ["count", "page", "distinct"] {
            assert_eq!(root.attr(gone), None, "{gone} must be removed");
        }
        assert_eq!(root.attr("mapping"), Some("logical"));
        let names: Vec<_> = root.descendants().iter().map(|e| e.name.clone()).collect();
        assert!(!names.contains(&"order".to_string()));
        assert_eq!(names.iter().filter(|n| *n == "condition").count(), 3);
        let values: Vec<_> = root
            .descendants()
            .into_iter()
            .filter(|e| e.name == "value")
            .map(|e| e.text())
            .collect();
        assert_eq!(values, ["1", "2"]);
        assert!(names.contains(&"link-entity".to_string()));
        assert_eq!(
            aggregates(&root),
            [
                ("opportunityid".into(), ROWS_ALIAS.into(), "count".into()),
                ("estimatedvalue".into(), VALUE_ALIAS.into(), "sum".into()),
            ]
        );
    }

    #[test]
    fn count_counts_primary_keys_once() {
        let root = rewrite("name", Aggregation::Count);
        assert_eq!(
            aggregates(&root),
            [("opportunityid".into(), VALUE_ALIAS.into(), "count".into())]
        );
    }

    #[test]
    fn linked_column_is_aggregated_inside_its_join() {
        let root = rewrite("cust.emailaddress1", Aggregation::CountDistinct);
        let link = root
            .descendants()
            .into_iter()
            .find(|e| e.name == "link-entity")
            .unwrap();
        let value = link.elements().find(|e| e.name == "attribute").unwrap();
        assert_eq!(value.attr("name"), Some("emailaddress1"));
        assert_eq!(value.attr("aggregate"), Some("countcolumn"));
        assert_eq!(value.attr("distinct"), Some("true"));
    }

    #[test]
    fn knows_joined_tables_by_alias() {
        let query = ViewQuery::parse(VIEW).unwrap();
        assert_eq!(query.entity_name(), "opportunity");
        assert_eq!(query.linked_entity("cust"), Some("contact"));
        assert_eq!(query.linked_entity("nope"), None);
        let unknown = query.aggregate(
            &ColumnRef::from_cell("nope.x"),
            Aggregation::Max,
            "opportunityid",
        );
        assert_eq!(unknown, Err(FetchXmlError::UnknownAlias("nope".into())));
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
            aggregate.aggregate(&ColumnRef::from_cell("x"), Aggregation::Sum, "aid"),
            Err(FetchXmlError::AlreadyAggregate)
        );
    }
}
