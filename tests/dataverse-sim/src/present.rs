//! Writing column values into answer records, with the annotations the client
//! asked for: formatted values, original names of aliased columns, and the
//! target table of lookups.

use crate::data::{AttributeDef, AttributeType, Dataset, Row};
use crate::format::{format_datetime, format_decimal, format_integer, format_money};
use crate::odata::{ATTRIBUTE_NAME, Annotations, FORMATTED_VALUE, LOOKUP_LOGICAL_NAME};
use serde_json::{Map, Value, json};

pub struct Presenter<'a> {
    pub data: &'a Dataset,
    pub annotations: &'a Annotations,
}

impl Presenter<'_> {
    /// The currency symbol for a money column of `row`: `_base` columns are in
    /// the base currency, others in the row's transaction currency.
    fn currency_symbol(&self, attribute: &AttributeDef, row: Option<&Row>) -> String {
        let base = || {
            self.data
                .base_currency()
                .map(|c| c.symbol.clone())
                .unwrap_or_default()
        };
        if attribute.attribute_of.is_some() {
            return base();
        }
        row.and_then(|r| r.get("transactioncurrencyid"))
            .and_then(Value::as_str)
            .and_then(|id| self.data.currency(id))
            .map(|c| c.symbol.clone())
            .unwrap_or_else(base)
    }

    /// The formatted value of `value` in `attribute` of `row`, if the type has one.
    pub fn formatted(
        &self,
        attribute: &AttributeDef,
        value: &Value,
        row: Option<&Row>,
    ) -> Option<String> {
        match attribute.attribute_type {
            AttributeType::Money => value
                .as_f64()
                .map(|v| format_money(v, &self.currency_symbol(attribute, row))),
            AttributeType::Integer | AttributeType::BigInt => value.as_i64().map(format_integer),
            AttributeType::Decimal | AttributeType::Double => {
                value.as_f64().map(|v| format_decimal(v, 2))
            }
            AttributeType::DateTime => value.as_str().and_then(format_datetime),
            AttributeType::Picklist | AttributeType::State | AttributeType::Status => value
                .as_i64()
                .and_then(|v| attribute.option_label(v))
                .map(str::to_string),
            AttributeType::Boolean => value
                .as_bool()
                .map(|b| if b { "Yes" } else { "No" }.to_string()),
            AttributeType::Lookup | AttributeType::Customer | AttributeType::Owner => value
                .as_str()
                .and_then(|id| self.data.record_name(id))
                .map(|(_, name)| name.to_string()),
            AttributeType::String
            | AttributeType::Memo
            | AttributeType::EntityName
            | AttributeType::Uniqueidentifier => None,
        }
    }

    /// The table a lookup value points to.
    pub fn lookup_target(&self, attribute: &AttributeDef, value: &Value) -> Option<String> {
        value
            .as_str()
            .and_then(|id| self.data.record_name(id))
            .map(|(entity, _)| entity.to_string())
            .or_else(|| attribute.targets.first().cloned())
    }

    /// Puts `value` under `key` with its annotations. `original` is the column's
    /// own name when `key` is an alias (`alias` or `link.attribute`).
    pub fn put(
        &self,
        out: &mut Map<String, Value>,
        key: &str,
        attribute: &AttributeDef,
        value: &Value,
        row: Option<&Row>,
        original: Option<&str>,
    ) {
        if let Some(original) = original
            && self.annotations.includes(ATTRIBUTE_NAME)
        {
            out.insert(format!("{key}@{ATTRIBUTE_NAME}"), json!(original));
        }
        if self.annotations.includes(FORMATTED_VALUE)
            && !value.is_null()
            && let Some(text) = self.formatted(attribute, value, row)
        {
            out.insert(format!("{key}@{FORMATTED_VALUE}"), json!(text));
        }
        if attribute.attribute_type.is_lookup()
            && !value.is_null()
            && self.annotations.includes(LOOKUP_LOGICAL_NAME)
            && let Some(target) = self.lookup_target(attribute, value)
        {
            out.insert(format!("{key}@{LOOKUP_LOGICAL_NAME}"), json!(target));
        }
        out.insert(key.to_string(), value.clone());
    }
}

/// `W/"<versionnumber>"`.
pub fn etag(row: &Row) -> Value {
    let version = row
        .get("versionnumber")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    json!(format!("W/\"{version}\""))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::dataset;

    #[test]
    fn money_dates_choices_and_lookups_are_formatted() {
        let data = dataset();
        let annotations = Annotations::all();
        let presenter = Presenter {
            data,
            annotations: &annotations,
        };
        let account = data.entity("account").unwrap();
        let eur = data.currency_by_code("EUR").unwrap();
        let row = data
            .rows("account")
            .iter()
            .find(|r| {
                r.get("transactioncurrencyid") == Some(&json!(eur.id)) && r.contains_key("revenue")
            })
            .unwrap();
        let revenue = account.attribute("revenue").unwrap();
        let shown = presenter
            .formatted(revenue, &json!(1234.5), Some(row))
            .unwrap();
        assert_eq!(shown, "€1,234.50");
        let base = account.attribute("revenue_base").unwrap();
        assert_eq!(
            presenter
                .formatted(base, &json!(1234.5), Some(row))
                .unwrap(),
            "$1,234.50"
        );
        let industry = account.attribute("industrycode").unwrap();
        assert_eq!(
            presenter.formatted(industry, &json!(25), None).as_deref(),
            Some("Retail")
        );
        let mut out = Map::new();
        let owner = account.attribute("ownerid").unwrap();
        let owner_id = json!(data.users[1].id);
        presenter.put(
            &mut out,
            "_ownerid_value",
            owner,
            &owner_id,
            Some(row),
            None,
        );
        assert_eq!(
            out["_ownerid_value@OData.Community.Display.V1.FormattedValue"],
            json!(data.users[1].fullname)
        );
        assert_eq!(
            out["_ownerid_value@Microsoft.Dynamics.CRM.lookuplogicalname"],
            "systemuser"
        );
        assert!(!out.contains_key("_ownerid_value@OData.Community.Display.V1.AttributeName"));
    }

    #[test]
    fn nothing_is_annotated_unless_asked() {
        let data = dataset();
        let annotations = Annotations::none();
        let presenter = Presenter {
            data,
            annotations: &annotations,
        };
        let account = data.entity("account").unwrap();
        let mut out = Map::new();
        presenter.put(
            &mut out,
            "x.revenue",
            account.attribute("revenue").unwrap(),
            &json!(5.0),
            None,
            Some("revenue"),
        );
        assert_eq!(out.len(), 1);
    }
}
