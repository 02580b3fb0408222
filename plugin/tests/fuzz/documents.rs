//! Site maps, layoutxml and the XML tree under them.

use crate::check;
use crate::inputs;
use dynamics365_plugin::charts::{self, DataDescription};
use dynamics365_plugin::types::DateGrouping;
use dynamics365_plugin::xml::{Element, Node};
use dynamics365_plugin::{layout, odata, sitemap};
use proptest::prelude::*;

#[test]
fn site_maps_list_tables_or_fail_cleanly() {
    check(
        "sitemap::entity_names",
        1000,
        inputs::sitemap_xml(),
        |xml| {
            if let Ok(names) = sitemap::entity_names(&xml) {
                for (index, name) in names.iter().enumerate() {
                    prop_assert!(!name.is_empty());
                    prop_assert_eq!(name.trim(), name.as_str());
                    prop_assert_eq!(&name.to_ascii_lowercase(), name);
                    prop_assert!(!names[..index].contains(name), "{name} twice");
                }
            }
            Ok(())
        },
    );
}

#[test]
fn layouts_list_cells_or_fail_cleanly() {
    check("layout::cell_names", 1000, inputs::layout_xml(), |xml| {
        if let Ok(names) = layout::cell_names(&xml) {
            for (index, name) in names.iter().enumerate() {
                prop_assert!(!name.is_empty());
                prop_assert_eq!(name.trim(), name.as_str());
                prop_assert!(!names[..index].contains(name), "{name} twice");
            }
        }
        Ok(())
    });
}

#[test]
fn chart_descriptions_give_measures_or_fail_cleanly() {
    check(
        "charts::DataDescription::parse",
        1000,
        inputs::chart_xml(),
        |xml| {
            if let Ok(description) = DataDescription::parse(&xml) {
                prop_assert!(odata::is_logical_name(&description.entity));
                for (index, measure) in description.measures.iter().enumerate() {
                    prop_assert!(odata::is_logical_name(&measure.column));
                    prop_assert!(!measure.alias.trim().is_empty());
                    prop_assert!(
                        !description.measures[..index]
                            .iter()
                            .any(|m| m.alias == measure.alias),
                        "{} twice",
                        measure.alias
                    );
                }
                if let Some(category) = &description.category {
                    prop_assert!(odata::is_logical_name(&category.column));
                }
            }
            Ok(())
        },
    );
}

#[test]
fn date_categories_give_calendar_days_in_order_or_fail_cleanly() {
    let grouping = prop_oneof![
        Just(DateGrouping::Day),
        Just(DateGrouping::Week),
        Just(DateGrouping::Month),
        Just(DateGrouping::Quarter),
        Just(DateGrouping::Year),
        Just(DateGrouping::FiscalPeriod),
        Just(DateGrouping::FiscalYear),
    ];
    let value = prop_oneof![
        3 => "[0-9]{4}(-[0-9]{1,2}(-[0-9]{1,2})?)?",
        2 => "[0-9]{4}-[Qq][0-9]",
        2 => inputs::any_text(),
    ];
    check(
        "charts::day_span",
        2000,
        (value, grouping),
        |(value, grouping)| {
            if let Ok((first, last)) = charts::day_span(&value, grouping, "chart") {
                for day in [&first, &last] {
                    let shaped = day.len() == 10
                        && day.bytes().enumerate().all(|(i, b)| match i {
                            4 | 7 => b == b'-',
                            _ => b.is_ascii_digit(),
                        });
                    prop_assert!(shaped, "{day} is not YYYY-MM-DD");
                }
                prop_assert!(first <= last, "{first} after {last}");
                prop_assert!(first.starts_with(&value[..4]), "{value} gave {first}");
            }
            Ok(())
        },
    );
}

/// What a tree keeps through `to_xml` and `parse` again.
pub fn reread(element: &Element) -> Result<Element, String> {
    Element::parse(&element.to_xml()).map_err(|e| format!("{e} in {:?}", element.to_xml()))
}

fn walk(element: &Element) {
    let _ = element.text();
    let _ = element.attr("name");
    for inner in element.descendants() {
        let _ = inner.text();
    }
}

#[test]
fn parsed_trees_survive_serialisation() {
    let any = prop_oneof![
        4 => inputs::any_xml(),
        1 => inputs::fetch_xml(),
        1 => inputs::layout_xml(),
        1 => inputs::sitemap_xml(),
    ];
    check("xml::Element round trip", 2000, any, |xml| {
        let Ok(tree) = Element::parse(&xml) else {
            return Ok(());
        };
        walk(&tree);
        let again = reread(&tree).map_err(TestCaseError::fail)?;
        prop_assert_eq!(again, tree);
        Ok(())
    });
}

/// Trees made directly (as the query rewriting does), with names and values
/// a parser would never produce.
#[test]
fn built_trees_serialise_to_something_that_parses() {
    let tree = inputs::xml_element().prop_map(|x| build(&x));
    check("xml::Element::to_xml of built trees", 1000, tree, |tree| {
        let xml = tree.to_xml();
        let _ = Element::parse(&xml);
        Ok(())
    });
}

fn build(x: &inputs::XElement) -> Element {
    let mut element = Element::new(&x.name);
    for (key, value) in &x.attributes {
        element.set_attr(key, value);
    }
    for child in &x.children {
        element.children.push(match child {
            inputs::XNode::Element(inner) => Node::Element(build(inner)),
            inputs::XNode::Text(text)
            | inputs::XNode::CData(text)
            | inputs::XNode::Comment(text)
            | inputs::XNode::Ref(text) => Node::Text(text.clone()),
        });
    }
    element
}
