//! System and personal charts of the business tables. Their `datadescription`
//! follows Microsoft's "Visualization data description schema": one aggregate
//! `<fetch>` (a group-by attribute and the measured aggregates) and a
//! `<categorycollection>` naming the measures by alias. Chart names and aliases
//! are a contract with the end-to-end tests.

use super::{Chart, ChartKind, guid_from_name};
use crate::format::{days_from_civil, iso_from_unix};
use crate::xml::escape_attr;

/// One aggregate a chart plots.
struct Measure {
    alias: &'static str,
    attribute: &'static str,
    /// `sum`, `avg`, `count`, `countcolumn`, `min` or `max`.
    aggregate: &'static str,
}

struct Spec {
    kind: ChartKind,
    entity: &'static str,
    name: &'static str,
    description: &'static str,
    isdefault: bool,
    /// The attribute the chart's categories come from.
    groupby: &'static str,
    groupby_alias: &'static str,
    /// `dategrouping` of a date group-by (`month`, `year`, ...).
    dategrouping: Option<&'static str>,
    measures: &'static [Measure],
}

const fn measure(alias: &'static str, attribute: &'static str, aggregate: &'static str) -> Measure {
    Measure {
        alias,
        attribute,
        aggregate,
    }
}

const SUM_ESTIMATED_VALUE: Measure = measure("sum_estimatedvalue", "estimatedvalue", "sum");

const SPECS: &[Spec] = &[
    Spec {
        kind: ChartKind::System,
        entity: "opportunity",
        name: "Pipeline by Status Reason",
        description: "Estimated revenue and number of opportunities per status reason.",
        isdefault: true,
        groupby: "statuscode",
        groupby_alias: "groupby_column",
        dategrouping: None,
        measures: &[
            SUM_ESTIMATED_VALUE,
            measure("count_opportunities", "opportunityid", "count"),
        ],
    },
    Spec {
        kind: ChartKind::System,
        entity: "opportunity",
        name: "Estimated Revenue by Close Month",
        description: "Estimated revenue per estimated close month.",
        isdefault: false,
        groupby: "estimatedclosedate",
        groupby_alias: "groupby_month",
        dategrouping: Some("month"),
        measures: &[SUM_ESTIMATED_VALUE],
    },
    Spec {
        kind: ChartKind::System,
        entity: "opportunity",
        name: "Average Probability by Rating",
        description: "Average probability per rating.",
        isdefault: false,
        groupby: "opportunityratingcode",
        groupby_alias: "groupby_column",
        dategrouping: None,
        measures: &[measure("avg_closeprobability", "closeprobability", "avg")],
    },
    Spec {
        kind: ChartKind::Personal,
        entity: "opportunity",
        name: "My Won Revenue by Owner",
        description: "Actual revenue per owner.",
        isdefault: false,
        groupby: "ownerid",
        groupby_alias: "groupby_column",
        dategrouping: None,
        measures: &[measure("sum_actualvalue", "actualvalue", "sum")],
    },
    Spec {
        kind: ChartKind::System,
        entity: "lead",
        name: "Leads by Source",
        description: "Number of leads per lead source.",
        isdefault: false,
        groupby: "leadsourcecode",
        groupby_alias: "groupby_column",
        dategrouping: None,
        measures: &[measure("count_leads", "leadid", "countcolumn")],
    },
];

/// The `<attribute>` elements of the chart's fetch: the group-by, then one per measure.
fn fetch_attributes(spec: &Spec) -> String {
    let dategrouping = spec
        .dategrouping
        .map(|d| format!(" dategrouping=\"{}\"", escape_attr(d)))
        .unwrap_or_default();
    let mut xml = format!(
        "        <attribute groupby=\"true\" alias=\"{}\" name=\"{}\"{dategrouping} />\n",
        escape_attr(spec.groupby_alias),
        escape_attr(spec.groupby),
    );
    for m in spec.measures {
        xml.push_str(&format!(
            "        <attribute alias=\"{}\" name=\"{}\" aggregate=\"{}\" />\n",
            escape_attr(m.alias),
            escape_attr(m.attribute),
            escape_attr(m.aggregate),
        ));
    }
    xml
}

fn datadescription(spec: &Spec) -> String {
    let measures: String = spec
        .measures
        .iter()
        .map(|m| {
            format!(
                "      <measurecollection><measure alias=\"{}\" /></measurecollection>\n",
                escape_attr(m.alias)
            )
        })
        .collect();
    let entity = escape_attr(spec.entity);
    let attributes = fetch_attributes(spec);
    [
        "<datadefinition>\n  <fetchcollection>\n".to_string(),
        "    <fetch mapping=\"logical\" aggregate=\"true\">\n".to_string(),
        format!("      <entity name=\"{entity}\">\n{attributes}      </entity>\n"),
        "    </fetch>\n  </fetchcollection>\n".to_string(),
        format!("  <categorycollection>\n    <category>\n{measures}    </category>\n"),
        "  </categorycollection>\n</datadefinition>".to_string(),
    ]
    .concat()
}

/// A short stand-in for the chart control's layout: one column series per measure.
fn presentationdescription(spec: &Spec) -> String {
    let series: String = spec
        .measures
        .iter()
        .map(|m| {
            format!(
                "<Series Name=\"o:{}\" ChartType=\"Column\" IsValueShownAsLabel=\"True\" />",
                escape_attr(m.alias)
            )
        })
        .collect();
    format!("<Chart><Series>{series}</Series><ChartAreas><ChartArea /></ChartAreas></Chart>")
}

/// A deterministic last-modified time per chart: spread over 2024-2025 at whole
/// minutes during office hours, like the views'.
fn modifiedon(index: usize) -> String {
    let index = index as i64;
    let day = days_from_civil(2024, 2, 12) + index * 41 % 600;
    let minute = 9 * 60 + index * 53 % (8 * 60);
    iso_from_unix(day * 86_400 + minute * 60)
}

pub fn charts() -> Vec<Chart> {
    SPECS
        .iter()
        .enumerate()
        .map(|(index, spec)| Chart {
            id: guid_from_name(spec.kind.logical_name(), spec.name),
            kind: spec.kind,
            name: spec.name.to_string(),
            primaryentitytypecode: spec.entity.to_string(),
            description: spec.description.to_string(),
            datadescription: datadescription(spec),
            presentationdescription: presentationdescription(spec),
            isdefault: spec.isdefault && spec.kind == ChartKind::System,
            modifiedon: modifiedon(index),
        })
        .collect()
}
