//! The FetchXML engine: `GET <entity set>?fetchXml=...` and saved views.

pub mod aggregate;
pub mod cookie;
pub mod exec;
pub mod parse;

use crate::data::{Dataset, Db};
use crate::errors::ODataError;
use crate::odata::Annotations;
use crate::present::Presenter;
use serde_json::{Map, Value};

/// The outcome of one FetchXML request, before it is wrapped into the answer body.
#[derive(Debug, Clone, PartialEq)]
pub struct FetchResult {
    /// The entity set of the queried entity.
    pub entity_set_name: String,
    /// Root columns named in the query (for `@odata.context`).
    pub columns: Vec<String>,
    /// The rows of this page, or the single aggregate row.
    pub records: Vec<Map<String, Value>>,
    /// Whether another page follows.
    pub more_records: bool,
    /// The `@Microsoft.Dynamics.CRM.fetchxmlpagingcookie` value, if any.
    pub paging_cookie: Option<String>,
    /// Rows matched over all pages, when `returntotalrecordcount` was asked.
    pub total_record_count: Option<usize>,
    /// Rows matched over all pages.
    pub total: usize,
    /// Whether this was an aggregate query.
    pub aggregate: bool,
}

/// Runs `fetch_xml` as the application user ([`execute_in`] runs it as the
/// caller of its [`Db`]). With `entity_set`, the query's
/// entity must be the one of that entity set.
pub fn execute(
    data: &Dataset,
    fetch_xml: &str,
    entity_set: Option<&str>,
    annotations: &Annotations,
) -> Result<FetchResult, ODataError> {
    execute_in(Db::plain(data), fetch_xml, entity_set, annotations)
}

/// [`execute`] over a simulator's data (its overlay included).
pub fn execute_in(
    db: Db<'_>,
    fetch_xml: &str,
    entity_set: Option<&str>,
    annotations: &Annotations,
) -> Result<FetchResult, ODataError> {
    let data = db.base();
    let query = parse::parse(db, fetch_xml)?;
    let root = &query.nodes[0];
    if let Some(set) = entity_set
        && root.entity.entity_set_name != set
    {
        return Err(ODataError::invalid(format!(
            "The entity '{}' of the FetchXml does not belong to the entity set '{set}'; send it to '{}'.",
            root.entity.logical_name, root.entity.entity_set_name
        )));
    }
    let presenter = Presenter { data, annotations };
    let rows_of = |entity: &str| db.rows(entity);
    let (mut tuples, multiplied) = exec::matching_tuples(&query, &rows_of, db.caller_id());
    let mut columns: Vec<String> = root
        .selected
        .iter()
        .map(|s| s.alias.clone().unwrap_or_else(|| s.attribute.odata_name()))
        .collect();
    if query.aggregate {
        let row = aggregate::aggregate(&query, &tuples, &presenter)?;
        return Ok(FetchResult {
            entity_set_name: root.entity.entity_set_name.clone(),
            columns,
            records: vec![row],
            more_records: false,
            paging_cookie: None,
            total_record_count: None,
            total: tuples.len(),
            aggregate: true,
        });
    }
    if !columns.contains(&root.entity.primary_id_attribute) {
        columns.push(root.entity.primary_id_attribute.clone());
    }
    exec::sort(&query, &mut tuples);
    let page = exec::page(&query, tuples, multiplied, &presenter)?;
    Ok(FetchResult {
        entity_set_name: root.entity.entity_set_name.clone(),
        columns,
        records: page.records,
        more_records: page.more_records,
        paging_cookie: page.paging_cookie,
        total_record_count: query.return_total_record_count.then_some(page.total),
        total: page.total,
        aggregate: false,
    })
}

#[cfg(test)]
mod tests;
