//! FetchXML parsing and every query derived from a view.

use crate::check;
use crate::inputs;
use dynamics365_plugin::fetchxml::{ColumnRef, Function, Join, MetricQuery, ViewQuery};
use dynamics365_plugin::split::Part;
use dynamics365_plugin::xml::Element;
use proptest::prelude::*;
use proptest::test_runner::TestCaseResult;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

const FUNCTIONS: [Function; 6] = [
    Function::Count,
    Function::CountColumn,
    Function::CountDistinct,
    Function::Sum,
    Function::Min,
    Function::Max,
];

/// How the caller decides that a join matches at most one row.
#[derive(Debug, Clone, Copy)]
enum ToOne {
    Always,
    Never,
    /// As the plugin does: joined on the joined table's `<table>id`.
    OnKey,
    /// An arbitrary but fixed decision per join.
    Hashed(u64),
}

impl ToOne {
    fn decide(self, join: &Join) -> bool {
        match self {
            ToOne::Always => true,
            ToOne::Never => false,
            ToOne::OnKey => join.from == format!("{}id", join.entity),
            ToOne::Hashed(seed) => {
                let mut hasher = DefaultHasher::new();
                (seed, &join.alias, &join.entity, &join.from).hash(&mut hasher);
                hasher.finish().is_multiple_of(2)
            }
        }
    }
}

/// Everything a caller passes besides the view.
#[derive(Debug, Clone)]
struct Probe {
    shown: Vec<String>,
    to_one: ToOne,
    cells: Vec<String>,
    functions: Vec<Function>,
    parts: Vec<Part>,
    primary_id: String,
    attribute: String,
    page: u32,
    page_size: u32,
    cookie: Option<String>,
    descending: bool,
}

fn alias() -> BoxedStrategy<String> {
    prop_oneof![6 => inputs::strings(inputs::ALIASES), 1 => inputs::any_text()].boxed()
}

fn bound() -> BoxedStrategy<Option<String>> {
    prop::option::weighted(
        0.7,
        prop_oneof![3 => inputs::timestamp(), 1 => inputs::any_text()],
    )
    .boxed()
}

fn part() -> BoxedStrategy<Part> {
    (bound(), bound())
        .prop_map(|(from, to)| Part { from, to })
        .boxed()
}

fn probe() -> BoxedStrategy<Probe> {
    let to_one = prop_oneof![
        Just(ToOne::Always),
        Just(ToOne::Never),
        Just(ToOne::OnKey),
        any::<u64>().prop_map(ToOne::Hashed),
    ];
    let names = (
        prop::collection::vec(alias(), 0..3),
        prop::collection::vec(inputs::cell_name(), 1..4),
        prop_oneof![4 => inputs::strings(&["accountid", "opportunityid"]), 1 => inputs::any_text()],
        prop_oneof![4 => inputs::strings(&["transactioncurrencyid"]), 1 => inputs::any_text()],
    );
    let paging = (
        prop_oneof![3 => 1u32..4, 1 => any::<u32>()],
        prop_oneof![3 => Just(5000u32), 1 => any::<u32>()],
        prop::option::of(prop_oneof![
            2 => Just(inputs::seeds::INNER_COOKIE.to_string()),
            1 => inputs::any_text(),
        ]),
        any::<bool>(),
    );
    (
        to_one,
        names,
        prop::collection::vec(prop::sample::select(&FUNCTIONS[..]), 0..8),
        prop::collection::vec(part(), 1..4),
        paging,
    )
        .prop_map(
            |(to_one, (shown, cells, primary_id, attribute), functions, parts, paging)| {
                let (page, page_size, cookie, descending) = paging;
                Probe {
                    shown,
                    to_one,
                    cells,
                    functions,
                    parts,
                    primary_id,
                    attribute,
                    page,
                    page_size,
                    cookie,
                    descending,
                }
            },
        )
        .boxed()
}

/// A derived query must be XML that reads back as a view query.
fn well_formed(what: &str, xml: &str) -> TestCaseResult {
    if let Err(e) = Element::parse(xml) {
        return Err(TestCaseError::fail(format!(
            "{what} wrote XML that does not parse ({e}): {xml}"
        )));
    }
    if let Err(e) = ViewQuery::parse(xml) {
        return Err(TestCaseError::fail(format!(
            "{what} wrote a query that does not read back ({e}): {xml}"
        )));
    }
    Ok(())
}

fn derive_all(query: &MetricQuery, probe: &Probe) -> TestCaseResult {
    well_formed("first_created", &query.first_created(probe.descending))?;
    for (index, cell) in probe.cells.iter().enumerate() {
        let column = ColumnRef::from_cell(cell);
        if index == 0 {
            // Every combination of functions, each over one of the parts or none.
            for mask in 0u32..64 {
                let functions: Vec<Function> = FUNCTIONS
                    .iter()
                    .enumerate()
                    .filter(|(bit, _)| mask & (1 << bit) != 0)
                    .map(|(_, f)| *f)
                    .collect();
                let part = probe.parts.get(mask as usize % (probe.parts.len() + 1));
                if let Ok(xml) = query.aggregate(&column, &functions, &probe.primary_id, part) {
                    well_formed("aggregate", &xml)?;
                }
            }
        }
        for part in std::iter::once(None).chain(probe.parts.iter().map(Some)) {
            if let Ok(xml) = query.aggregate(&column, &probe.functions, &probe.primary_id, part) {
                well_formed("aggregate", &xml)?;
            }
        }
        if let Ok(xml) = query.distinct_values(&column, &probe.attribute) {
            well_formed("distinct_values", &xml)?;
        }
        if let Ok(xml) = query.page(
            &column,
            &probe.primary_id,
            probe.page,
            probe.page_size,
            probe.cookie.as_deref(),
        ) {
            well_formed("page", &xml)?;
        }
    }
    Ok(())
}

#[test]
fn view_queries_and_everything_derived_from_them() {
    check(
        "fetchxml::ViewQuery and MetricQuery",
        400,
        (inputs::fetch_xml(), probe()),
        |(xml, probe)| {
            let Ok(query) = ViewQuery::parse(&xml) else {
                return Ok(());
            };
            let _ = query.entity_name();
            for alias in inputs::ALIASES
                .iter()
                .copied()
                .chain(probe.shown.iter().map(String::as_str))
            {
                let _ = query.linked_entity(alias);
            }
            let _ = query.joins();
            let shown: Vec<&str> = probe.shown.iter().map(String::as_str).collect();
            let to_one = probe.to_one;
            let Ok(metric) = query.metric_query(&shown, &|join: &Join| to_one.decide(join)) else {
                return Ok(());
            };
            derive_all(&metric, &probe)
        },
    );
}
