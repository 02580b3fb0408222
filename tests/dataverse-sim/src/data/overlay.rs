//! Per-simulator changes layered over the shared sample data: edited or deleted
//! views and charts, deleted columns and extra rows. The shared [`Dataset`]
//! never changes; a running simulator answers from a [`Db`] that reads its own
//! [`Overlay`] first.

use super::{Chart, Dataset, EntityDef, Row, View};
use crate::format::{iso_from_unix, parse_datetime};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Changes made through the test hooks of one simulator. Cloning is cheap: the
/// replaced parts are shared until one of them changes again.
#[derive(Debug, Clone, Default)]
pub struct Overlay {
    /// Table definitions, when a column was deleted.
    entities: Option<Arc<Vec<EntityDef>>>,
    /// Views, when one was edited or deleted.
    views: Option<Arc<Vec<View>>>,
    /// Charts, when one was edited or deleted.
    charts: Option<Arc<Vec<Chart>>>,
    /// Whole tables that differ from the shared ones (extra rows, edited or
    /// deleted view and chart rows).
    tables: BTreeMap<String, Arc<Vec<Row>>>,
}

impl Overlay {
    /// Whether nothing was changed.
    pub fn is_empty(&self) -> bool {
        self.entities.is_none()
            && self.views.is_none()
            && self.charts.is_none()
            && self.tables.is_empty()
    }

    fn table_mut(&mut self, base: &Dataset, entity: &str) -> &mut Vec<Row> {
        let table = self
            .tables
            .entry(entity.to_string())
            .or_insert_with(|| Arc::new(base.rows(entity).to_vec()));
        Arc::make_mut(table)
    }

    fn views_mut(&mut self, base: &Dataset) -> &mut Vec<View> {
        Arc::make_mut(
            self.views
                .get_or_insert_with(|| Arc::new(base.views.clone())),
        )
    }

    fn charts_mut(&mut self, base: &Dataset) -> &mut Vec<Chart> {
        Arc::make_mut(
            self.charts
                .get_or_insert_with(|| Arc::new(base.charts.clone())),
        )
    }

    /// The row of a view or chart in its system table (`savedquery`,
    /// `userqueryvisualization`, ...), whose primary id column is `<table>id`.
    fn definition_row_mut(
        &mut self,
        base: &Dataset,
        table: &str,
        id: &str,
    ) -> Result<&mut Row, String> {
        let id_column = format!("{table}id");
        self.table_mut(base, table)
            .iter_mut()
            .find(|r| r.get(&id_column).and_then(Value::as_str) == Some(id))
            .ok_or_else(|| format!("the definition {id} has no {table} row"))
    }

    fn entities_mut(&mut self, base: &Dataset) -> &mut Vec<EntityDef> {
        Arc::make_mut(
            self.entities
                .get_or_insert_with(|| Arc::new(base.entities.clone())),
        )
    }

    /// Replaces the given parts of a view's definition and moves its
    /// `modifiedon` to `now` (Unix seconds), or one second past the previous
    /// value if that is not later. Also bumps the row's `versionnumber`.
    pub fn update_view(
        &mut self,
        base: &Dataset,
        id: &str,
        fetchxml: Option<&str>,
        layoutxml: Option<&str>,
        now: i64,
    ) -> Result<(), String> {
        let id = id.to_ascii_lowercase();
        let view = self
            .views_mut(base)
            .iter_mut()
            .find(|v| v.id == id)
            .ok_or_else(|| format!("there is no view with id {id}"))?;
        if let Some(fetchxml) = fetchxml {
            view.fetchxml = fetchxml.to_string();
        }
        if let Some(layoutxml) = layoutxml {
            view.layoutxml = layoutxml.to_string();
        }
        view.modifiedon = later(&view.modifiedon, now);
        let (kind, updated) = (view.kind, view.clone());
        let row = self.definition_row_mut(base, kind.logical_name(), &id)?;
        row.insert("fetchxml".to_string(), json!(updated.fetchxml));
        row.insert("layoutxml".to_string(), json!(updated.layoutxml));
        touch(row, &updated.modifiedon);
        Ok(())
    }

    /// Removes a view and its `savedquery`/`userquery` row.
    pub fn delete_view(&mut self, base: &Dataset, id: &str) -> Result<(), String> {
        let id = id.to_ascii_lowercase();
        let views = self.views_mut(base);
        let position = views
            .iter()
            .position(|v| v.id == id)
            .ok_or_else(|| format!("there is no view with id {id}"))?;
        let kind = views.remove(position).kind;
        let id_column = format!("{}id", kind.logical_name());
        self.table_mut(base, kind.logical_name())
            .retain(|r| r.get(&id_column).and_then(Value::as_str) != Some(id.as_str()));
        Ok(())
    }

    /// Replaces a chart's `datadescription` and moves its `modifiedon` to `now`
    /// (Unix seconds), or one second past the previous value if that is not
    /// later. Also bumps the row's `versionnumber`.
    pub fn update_chart(
        &mut self,
        base: &Dataset,
        id: &str,
        datadescription: &str,
        now: i64,
    ) -> Result<(), String> {
        let id = id.to_ascii_lowercase();
        let chart = self
            .charts_mut(base)
            .iter_mut()
            .find(|c| c.id == id)
            .ok_or_else(|| format!("there is no chart with id {id}"))?;
        chart.datadescription = datadescription.to_string();
        chart.modifiedon = later(&chart.modifiedon, now);
        let (kind, modifiedon) = (chart.kind, chart.modifiedon.clone());
        let row = self.definition_row_mut(base, kind.logical_name(), &id)?;
        row.insert("datadescription".to_string(), json!(datadescription));
        touch(row, &modifiedon);
        Ok(())
    }

    /// Removes a chart and its `savedqueryvisualization`/`userqueryvisualization` row.
    pub fn delete_chart(&mut self, base: &Dataset, id: &str) -> Result<(), String> {
        let id = id.to_ascii_lowercase();
        let charts = self.charts_mut(base);
        let position = charts
            .iter()
            .position(|c| c.id == id)
            .ok_or_else(|| format!("there is no chart with id {id}"))?;
        let table = charts.remove(position).kind.logical_name();
        let id_column = format!("{table}id");
        self.table_mut(base, table)
            .retain(|r| r.get(&id_column).and_then(Value::as_str) != Some(id.as_str()));
        Ok(())
    }

    /// Gives a view another name (its `savedquery`/`userquery` row's too).
    pub fn rename_view(&mut self, base: &Dataset, id: &str, name: &str) -> Result<(), String> {
        let id = id.to_ascii_lowercase();
        let view = self
            .views_mut(base)
            .iter_mut()
            .find(|v| v.id == id)
            .ok_or_else(|| format!("there is no view with id {id}"))?;
        view.name = name.to_string();
        let kind = view.kind;
        let row = self.definition_row_mut(base, kind.logical_name(), &id)?;
        row.insert("name".to_string(), json!(name));
        Ok(())
    }

    /// Gives a view another id, as the same view has in another environment.
    pub fn rekey_view(&mut self, base: &Dataset, id: &str, new_id: &str) -> Result<(), String> {
        let (id, new_id) = (id.to_ascii_lowercase(), new_id.to_ascii_lowercase());
        let view = self
            .views_mut(base)
            .iter_mut()
            .find(|v| v.id == id)
            .ok_or_else(|| format!("there is no view with id {id}"))?;
        view.id.clone_from(&new_id);
        let kind = view.kind;
        let row = self.definition_row_mut(base, kind.logical_name(), &id)?;
        row.insert(format!("{}id", kind.logical_name()), json!(new_id));
        Ok(())
    }

    /// Removes a column from a table's definition (rows keep their values, but
    /// nothing can name or return the column any more). A money column takes
    /// its `_base` twin along, as in Dataverse.
    pub fn delete_attribute(
        &mut self,
        base: &Dataset,
        entity: &str,
        attribute: &str,
    ) -> Result<(), String> {
        let definition = self
            .entities_mut(base)
            .iter_mut()
            .find(|e| e.logical_name == entity)
            .ok_or_else(|| format!("there is no table '{entity}'"))?;
        let before = definition.attributes.len();
        definition.attributes.retain(|a| {
            a.logical_name != attribute && a.attribute_of.as_deref() != Some(attribute)
        });
        if definition.attributes.len() == before {
            return Err(format!("the table '{entity}' has no column '{attribute}'"));
        }
        Ok(())
    }

    /// Appends rows to a table.
    pub fn add_rows(&mut self, base: &Dataset, entity: &str, rows: Vec<Row>) -> Result<(), String> {
        if base.entity(entity).is_none() {
            return Err(format!("there is no table '{entity}'"));
        }
        self.table_mut(base, entity).extend(rows);
        Ok(())
    }
}

/// The new `modifiedon` of an edited definition: `now` (Unix seconds), or one
/// second past `previous` if that is not later, so an edit always shows.
fn later(previous: &str, now: i64) -> String {
    let previous = parse_datetime(previous).unwrap_or(0);
    iso_from_unix(now.max(previous + 1))
}

/// Stamps an edited definition row: its `modifiedon` and a higher
/// `versionnumber` (hence a new etag).
fn touch(row: &mut Row, modifiedon: &str) {
    row.insert("modifiedon".to_string(), json!(modifiedon));
    let version = row
        .get("versionnumber")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    row.insert("versionnumber".to_string(), json!(version + 1));
}

/// The data one request sees: the shared sample data with a simulator's
/// [`Overlay`] on top. Every query engine reads through this.
#[derive(Debug, Clone, Copy)]
pub struct Db<'a> {
    base: &'a Dataset,
    overlay: Option<&'a Overlay>,
    /// The `systemuserid` the request acts as; `None` is the application user.
    caller: Option<&'a str>,
}

impl<'a> From<&'a Dataset> for Db<'a> {
    fn from(base: &'a Dataset) -> Self {
        Db::plain(base)
    }
}

impl<'a> Db<'a> {
    /// The shared data with `overlay` on top.
    pub fn new(base: &'a Dataset, overlay: &'a Overlay) -> Db<'a> {
        Db {
            base,
            overlay: Some(overlay),
            caller: None,
        }
    }

    /// The shared data as it is.
    pub fn plain(base: &'a Dataset) -> Db<'a> {
        Db {
            base,
            overlay: None,
            caller: None,
        }
    }

    /// The same data seen by the user `user_id` (a delegated sign-in): what
    /// `WhoAmI` answers and what `eq-userid` compares with.
    pub fn with_caller(self, user_id: &'a str) -> Db<'a> {
        Db {
            caller: Some(user_id),
            ..self
        }
    }

    /// The `systemuserid` the request acts as: the signed-in person of a
    /// delegated token, otherwise the application user.
    pub fn caller_id(self) -> &'a str {
        self.caller.unwrap_or(&self.base.application_user_id)
    }

    /// The shared data underneath (users, currencies, apps, names of records).
    pub fn base(self) -> &'a Dataset {
        self.base
    }

    /// Every table definition.
    pub fn entities(self) -> &'a [EntityDef] {
        match self.overlay.and_then(|o| o.entities.as_deref()) {
            Some(entities) => entities,
            None => &self.base.entities,
        }
    }

    /// A table definition by logical name.
    pub fn entity(self, logical_name: &str) -> Option<&'a EntityDef> {
        self.entities()
            .iter()
            .find(|e| e.logical_name == logical_name)
    }

    /// A table definition by entity set name.
    pub fn entity_by_set(self, entity_set_name: &str) -> Option<&'a EntityDef> {
        self.entities()
            .iter()
            .find(|e| e.entity_set_name == entity_set_name)
    }

    /// Rows of a table, extra rows included.
    pub fn rows(self, entity: &str) -> &'a [Row] {
        match self.overlay.and_then(|o| o.tables.get(entity)) {
            Some(rows) => rows.as_slice(),
            None => self.base.rows(entity),
        }
    }

    /// The record of `entity` with primary id `id` (case-insensitive).
    pub fn row_by_id(self, entity: &str, id: &str) -> Option<&'a Row> {
        let definition = self.entity(entity)?;
        let id = id.to_ascii_lowercase();
        self.rows(entity).iter().find(|row| {
            row.get(&definition.primary_id_attribute)
                .and_then(Value::as_str)
                == Some(id.as_str())
        })
    }

    /// Every view that still exists, edits applied.
    pub fn views(self) -> &'a [View] {
        match self.overlay.and_then(|o| o.views.as_deref()) {
            Some(views) => views,
            None => &self.base.views,
        }
    }

    /// A view by id.
    pub fn view(self, id: &str) -> Option<&'a View> {
        let id = id.to_ascii_lowercase();
        self.views().iter().find(|v| v.id == id)
    }

    /// Every chart that still exists, edits applied.
    pub fn charts(self) -> &'a [Chart] {
        match self.overlay.and_then(|o| o.charts.as_deref()) {
            Some(charts) => charts,
            None => &self.base.charts,
        }
    }

    /// A chart by id.
    pub fn chart(self, id: &str) -> Option<&'a Chart> {
        let id = id.to_ascii_lowercase();
        self.charts().iter().find(|c| c.id == id)
    }
}
