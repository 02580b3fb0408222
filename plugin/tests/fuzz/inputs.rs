//! Input generators shared by the targets.
//!
//! Random text almost never gets past the first check of a parser, so most inputs
//! are built from small grammars in the shapes that Dataverse, the identity
//! platform and view authors produce, or taken from documented examples, and then
//! often damaged by a few mutations: parser bugs sit on the edge between valid and
//! broken input. Plain arbitrary text is kept in the mix for what the grammars do
//! not imagine.

use proptest::prelude::*;
use proptest::sample::{Index, select};
use serde_json::{Map, Value};

pub fn strings(values: &'static [&'static str]) -> BoxedStrategy<String> {
    select(values).prop_map(str::to_string).boxed()
}

// ---------------------------------------------------------------------------
// Mutations

/// One damage to a document. Positions are `Index`es so that they fit any length
/// and shrink towards the start.
#[derive(Debug, Clone)]
pub enum Mutation {
    Delete(Index, u8),
    Insert(Index, String),
    Duplicate(Index, u8),
    Truncate(Index),
}

/// Pieces that change how XML, JSON, multipart, percent-encoding or timestamps
/// are read when they appear in the wrong place.
const SNIPPETS: &[&str] = &[
    "<",
    ">",
    "/>",
    "</",
    "<a>",
    "</a>",
    "<a/>",
    "</fetch>",
    "<entity name='x'>",
    "&",
    "&amp;",
    "&lt;",
    "&quot;",
    "&#",
    "&#x",
    "&#0;",
    "&#x110000;",
    "&#xD800;",
    "&#65;",
    "&#x1F600;",
    "&#10;",
    "&#13;",
    "&#9;",
    "&bogus;",
    ";",
    "<![CDATA[",
    "]]>",
    "<!--",
    "-->",
    "<?",
    "?>",
    "<?xml version='1.0'?>",
    "<!DOCTYPE x [<!ENTITY e 'v'>]>",
    "\"",
    "'",
    "=",
    " ",
    "\r",
    "\n",
    "\r\n",
    "\t",
    "\0",
    "é",
    "\u{FEFF}",
    "\u{FFFF}",
    "\u{10FFFF}",
    "💥",
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "null",
    "true",
    "1e999",
    "-1",
    "18446744073709551616",
    "\\",
    "\\u",
    "\\ud800",
    "%",
    "%2",
    "%25",
    "%2525",
    "%3c",
    "%3C",
    "%ZZ",
    "%C3",
    "%FF",
    "%00",
    "--",
    "--batchresponse_1",
    "HTTP/1.1 200 OK\r\n",
    "Content-Type: application/http\r\n",
    "\r\n\r\n",
    "T",
    "Z",
    "+00:00",
    ".",
    "60",
    "9999",
    "1969",
];

fn snippet() -> BoxedStrategy<String> {
    prop_oneof![
        5 => strings(SNIPPETS),
        1 => any::<String>(),
    ]
    .boxed()
}

fn mutation() -> BoxedStrategy<Mutation> {
    prop_oneof![
        3 => (any::<Index>(), any::<u8>()).prop_map(|(at, n)| Mutation::Delete(at, n)),
        4 => (any::<Index>(), snippet()).prop_map(|(at, s)| Mutation::Insert(at, s)),
        1 => (any::<Index>(), any::<u8>()).prop_map(|(at, n)| Mutation::Duplicate(at, n)),
        1 => any::<Index>().prop_map(Mutation::Truncate),
    ]
    .boxed()
}

pub fn mutations() -> BoxedStrategy<Vec<Mutation>> {
    prop::collection::vec(mutation(), 1..4).boxed()
}

/// The nearest char boundary at or before `i`.
fn floor(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

pub fn mutate(text: &str, mutations: &[Mutation]) -> String {
    let mut s = text.to_string();
    for mutation in mutations {
        match mutation {
            Mutation::Delete(at, n) => {
                let from = floor(&s, at.index(s.len() + 1));
                let to = floor(&s, (from + usize::from(*n)).min(s.len()));
                s.replace_range(from..to, "");
            }
            Mutation::Insert(at, piece) => {
                let at = floor(&s, at.index(s.len() + 1));
                s.insert_str(at, piece);
            }
            Mutation::Duplicate(at, n) => {
                let from = floor(&s, at.index(s.len() + 1));
                let to = floor(&s, (from + usize::from(*n)).min(s.len()));
                let piece = s[from..to].to_string();
                s.insert_str(to, &piece);
            }
            Mutation::Truncate(at) => {
                let at = floor(&s, at.index(s.len() + 1));
                s.truncate(at);
            }
        }
    }
    s
}

/// Like [`mutate`], but free to cut through UTF-8 sequences.
pub fn mutate_bytes(bytes: &[u8], mutations: &[Mutation]) -> Vec<u8> {
    let mut b = bytes.to_vec();
    for mutation in mutations {
        match mutation {
            Mutation::Delete(at, n) => {
                let from = at.index(b.len() + 1);
                let to = (from + usize::from(*n)).min(b.len());
                b.drain(from..to);
            }
            Mutation::Insert(at, piece) => {
                let at = at.index(b.len() + 1);
                b.splice(at..at, piece.bytes());
            }
            Mutation::Duplicate(at, n) => {
                let from = at.index(b.len() + 1);
                let to = (from + usize::from(*n)).min(b.len());
                let piece = b[from..to].to_vec();
                b.splice(to..to, piece);
            }
            Mutation::Truncate(at) => {
                let at = at.index(b.len() + 1);
                b.truncate(at);
            }
        }
    }
    b
}

// ---------------------------------------------------------------------------
// XML

#[derive(Debug, Clone)]
pub enum XNode {
    Element(XElement),
    Text(String),
    CData(String),
    Comment(String),
    /// An entity or character reference, written as it is.
    Ref(String),
}

/// An element to render; unlike `xml::Element` it keeps the syntax choices
/// (quotes, CDATA, comments, references) that the parser must handle.
#[derive(Debug, Clone)]
pub struct XElement {
    pub name: String,
    pub attributes: Vec<(String, String)>,
    pub children: Vec<XNode>,
    pub single_quotes: bool,
}

pub fn el(name: &str, attributes: Vec<(String, String)>, children: Vec<XNode>) -> XElement {
    // Dataverse never repeats an attribute; the generic generator covers repeats.
    let mut unique: Vec<(String, String)> = Vec::new();
    for (key, value) in attributes {
        if !unique.iter().any(|(k, _)| *k == key) {
            unique.push((key, value));
        }
    }
    XElement {
        name: name.to_string(),
        attributes: unique,
        children,
        single_quotes: name.len().is_multiple_of(2),
    }
}

fn escape(text: &str, quote: Option<char>) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' if quote.is_none() => out.push_str("&gt;"),
            '"' if quote == Some('"') => out.push_str("&quot;"),
            '\'' if quote == Some('\'') => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

impl XElement {
    pub fn render(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut String) {
        let quote = if self.single_quotes { '\'' } else { '"' };
        out.push('<');
        out.push_str(&self.name);
        for (key, value) in &self.attributes {
            out.push(' ');
            out.push_str(key);
            out.push('=');
            out.push(quote);
            out.push_str(&escape(value, Some(quote)));
            out.push(quote);
        }
        if self.children.is_empty() {
            out.push_str(" />");
            return;
        }
        out.push('>');
        for child in &self.children {
            match child {
                XNode::Element(inner) => inner.write(out),
                XNode::Text(text) => out.push_str(&escape(text, None)),
                XNode::CData(text) => {
                    out.push_str("<![CDATA[");
                    out.push_str(&text.replace("]]>", "]]"));
                    out.push_str("]]>");
                }
                XNode::Comment(text) => {
                    out.push_str("<!--");
                    out.push_str(&text.replace("--", "- "));
                    out.push_str("-->");
                }
                XNode::Ref(reference) => out.push_str(reference),
            }
        }
        out.push_str("</");
        out.push_str(&self.name);
        out.push('>');
    }
}

/// What may stand around the root element.
const PROLOGS: &[&str] = &[
    "",
    "",
    "",
    "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n",
    "\u{FEFF}",
    "  \r\n",
    "<!-- saved by the view designer -->",
    "<!DOCTYPE fetch>",
    "<?pi data?>",
];
const EPILOGS: &[&str] = &["", "", "", "\n", "  <!-- end -->", "<?pi?>", "x"];

pub fn render_document(root: &XElement, prolog: &str, epilog: &str) -> String {
    format!("{prolog}{}{epilog}", root.render())
}

const REFS: &[&str] = &[
    "&amp;",
    "&lt;",
    "&gt;",
    "&quot;",
    "&apos;",
    "&#65;",
    "&#x41;",
    "&#x1F600;",
    "&#10;",
    "&#13;",
    "&#9;",
    "&#32;",
    "&#0;",
    "&#xD800;",
    "&#x110000;",
    "&#;",
    "&#x;",
    "&nbsp;",
    "&e;",
];

const NAMES: &[&str] = &[
    "fetch",
    "entity",
    "link-entity",
    "attribute",
    "all-attributes",
    "filter",
    "condition",
    "value",
    "order",
    "grid",
    "row",
    "cell",
    "SiteMap",
    "Area",
    "Group",
    "SubArea",
    "Titles",
    "cookie",
    "a",
    "x:y",
];

const ATTRIBUTE_NAMES: &[&str] = &[
    "name",
    "alias",
    "from",
    "to",
    "link-type",
    "aggregate",
    "entityname",
    "Entity",
    "Id",
    "Url",
    "type",
    "operator",
    "value",
    "attribute",
    "descending",
    "pagingcookie",
    "distinct",
    "count",
    "page",
    "top",
    "width",
    "xmlns",
    "xmlns:x",
];

pub fn any_text() -> BoxedStrategy<String> {
    prop_oneof![
        4 => "[ -~]{0,12}",
        2 => any::<String>(),
        1 => "[ \t\r\n]{0,3}",
        1 => strings(SNIPPETS),
    ]
    .boxed()
}

fn xml_name() -> BoxedStrategy<String> {
    prop_oneof![
        8 => strings(NAMES),
        3 => "[a-zA-Z_][a-zA-Z0-9_.:-]{0,6}",
        1 => any::<String>(),
    ]
    .boxed()
}

fn attribute_pair() -> BoxedStrategy<(String, String)> {
    let key = prop_oneof![
        8 => strings(ATTRIBUTE_NAMES),
        2 => "[a-zA-Z_][a-zA-Z0-9_.:-]{0,6}",
        1 => any::<String>(),
    ];
    (key, any_text()).boxed()
}

fn text_node() -> BoxedStrategy<XNode> {
    prop_oneof![
        4 => any_text().prop_map(XNode::Text),
        1 => any_text().prop_map(XNode::CData),
        1 => any_text().prop_map(XNode::Comment),
        2 => strings(REFS).prop_map(XNode::Ref),
    ]
    .boxed()
}

/// Any element tree, names and attributes mostly from the plugin's documents.
pub fn xml_element() -> BoxedStrategy<XElement> {
    let leaf = (
        xml_name(),
        prop::collection::vec(attribute_pair(), 0..4),
        any::<bool>(),
    )
        .prop_map(|(name, attributes, single_quotes)| XElement {
            name,
            attributes,
            children: Vec::new(),
            single_quotes,
        });
    leaf.prop_recursive(6, 64, 6, |inner| {
        (
            xml_name(),
            prop::collection::vec(attribute_pair(), 0..4),
            prop::collection::vec(
                prop_oneof![3 => inner.prop_map(XNode::Element), 2 => text_node()],
                0..6,
            ),
            any::<bool>(),
        )
            .prop_map(|(name, attributes, children, single_quotes)| XElement {
                name,
                attributes,
                children,
                single_quotes,
            })
    })
    .boxed()
}

/// Nesting around the parser's depth limit.
pub fn deep_document() -> BoxedStrategy<String> {
    (50usize..80, any::<bool>())
        .prop_map(|(depth, unclosed)| {
            let closing = if unclosed { depth - 1 } else { depth };
            "<a>".repeat(depth) + &"</a>".repeat(closing)
        })
        .boxed()
}

/// A document of the shape `tree` makes, or a damaged one, or a damaged seed, or
/// anything at all.
pub fn document(
    tree: BoxedStrategy<XElement>,
    seeds: &'static [&'static str],
) -> BoxedStrategy<String> {
    let rendered = (tree, strings(PROLOGS), strings(EPILOGS))
        .prop_map(|(root, prolog, epilog)| render_document(&root, &prolog, &epilog));
    prop_oneof![
        6 => rendered.clone(),
        3 => (rendered, mutations()).prop_map(|(text, m)| mutate(&text, &m)),
        2 => (strings(seeds), prop::collection::vec(mutation(), 0..3))
            .prop_map(|(text, m)| mutate(&text, &m)),
        1 => (xml_element(), strings(PROLOGS)).prop_map(|(root, prolog)| render_document(&root, &prolog, "")),
        1 => any::<String>(),
        1 => deep_document(),
    ]
    .boxed()
}

/// Like [`document`], but mostly intact: for answers that must get a flow past
/// its first steps.
pub fn mostly_intact(
    tree: BoxedStrategy<XElement>,
    seeds: &'static [&'static str],
) -> BoxedStrategy<String> {
    prop_oneof![
        12 => tree.clone().prop_map(|root| root.render()),
        2 => strings(seeds),
        1 => document(tree, seeds),
    ]
    .boxed()
}

pub fn any_xml() -> BoxedStrategy<String> {
    let seeds: &'static [&'static str] = &[
        seeds::VIEW_FETCH,
        seeds::DOC_FETCH,
        seeds::AGGREGATE_FETCH,
        seeds::LAYOUT,
        seeds::SITEMAP,
        seeds::COOKIE,
        seeds::WITH_REFERENCES,
    ];
    document(xml_element(), seeds)
}

// --- FetchXML

pub const ALIASES: &[&str] = &["a0", "a1", "cust", "tasks"];
const ENTITIES: &[&str] = &[
    "account",
    "contact",
    "opportunity",
    "task",
    "annotation",
    "systemuser",
];
const COLUMNS: &[&str] = &[
    "name",
    "accountid",
    "contactid",
    "createdon",
    "statecode",
    "numberofemployees",
    "estimatedvalue",
    "transactioncurrencyid",
];
const LINK_TYPES: &[&str] = &[
    "inner",
    "outer",
    "exists",
    "in",
    "any",
    "not any",
    "all",
    "not all",
    "matchfirstrowusingcrossapply",
    "Outer",
    "",
];
const OPERATORS: &[&str] = &[
    "eq",
    "ne",
    "in",
    "null",
    "not-null",
    "lt",
    "ge",
    "like",
    "on-or-after",
];

fn pair(key: &'static str, value: BoxedStrategy<String>) -> BoxedStrategy<(String, String)> {
    value.prop_map(move |v| (key.to_string(), v)).boxed()
}

fn some_text(values: &'static [&'static str]) -> BoxedStrategy<String> {
    prop_oneof![6 => strings(values), 1 => any_text()].boxed()
}

fn attributes_from(
    options: Vec<BoxedStrategy<(String, String)>>,
    most: usize,
) -> BoxedStrategy<Vec<(String, String)>> {
    let one = proptest::strategy::Union::new(options);
    prop::collection::vec(one, 0..=most).boxed()
}

fn condition() -> BoxedStrategy<XElement> {
    let attributes = (
        some_text(COLUMNS),
        some_text(OPERATORS),
        prop::option::of(any_text()),
        prop::option::weighted(0.3, some_text(ALIASES)),
    );
    let values = prop::collection::vec(any_text(), 0..3);
    (attributes, values)
        .prop_map(|((column, operator, value, entityname), values)| {
            let mut attributes = vec![
                ("attribute".to_string(), column),
                ("operator".to_string(), operator),
            ];
            if let Some(value) = value {
                attributes.push(("value".to_string(), value));
            }
            if let Some(alias) = entityname {
                attributes.push(("entityname".to_string(), alias));
            }
            let children = values
                .into_iter()
                .map(|v| XNode::Element(el("value", vec![], vec![XNode::Text(v)])))
                .collect();
            el("condition", attributes, children)
        })
        .boxed()
}

fn filter_type() -> BoxedStrategy<Option<String>> {
    prop::option::of(some_text(&["and", "or"])).boxed()
}

fn filter() -> BoxedStrategy<XElement> {
    let leaf =
        (filter_type(), prop::collection::vec(condition(), 0..3)).prop_map(|(kind, conditions)| {
            el(
                "filter",
                kind.map(|k| ("type".to_string(), k)).into_iter().collect(),
                conditions.into_iter().map(XNode::Element).collect(),
            )
        });
    leaf.prop_recursive(3, 12, 3, move |inner| {
        (
            filter_type(),
            prop::collection::vec(prop_oneof![condition(), inner], 0..4),
        )
            .prop_map(|(kind, children)| {
                el(
                    "filter",
                    kind.map(|k| ("type".to_string(), k)).into_iter().collect(),
                    children.into_iter().map(XNode::Element).collect(),
                )
            })
    })
    .boxed()
}

fn projection() -> BoxedStrategy<XElement> {
    prop_oneof![
        3 => some_text(COLUMNS).prop_map(|c| el("attribute", vec![("name".into(), c)], vec![])),
        1 => Just(el("all-attributes", vec![], vec![])),
        2 => (some_text(COLUMNS), some_text(&["true", "false"])).prop_map(|(c, d)| {
            el("order", vec![("attribute".into(), c), ("descending".into(), d)], vec![])
        }),
    ]
    .boxed()
}

fn link_attributes() -> BoxedStrategy<Vec<(String, String)>> {
    attributes_from(
        vec![
            pair("name", some_text(ENTITIES)),
            pair(
                "from",
                some_text(&[
                    "contactid",
                    "accountid",
                    "regardingobjectid",
                    "objectid",
                    "parentcustomerid",
                ]),
            ),
            pair(
                "to",
                some_text(&["customerid", "accountid", "opportunityid", "contactid"]),
            ),
            pair("alias", some_text(ALIASES)),
            pair("link-type", some_text(LINK_TYPES)),
            pair("visible", some_text(&["false", "true"])),
            pair("intersect", some_text(&["true"])),
        ],
        7,
    )
}

fn link_entity() -> BoxedStrategy<XElement> {
    let children = || prop::collection::vec(prop_oneof![3 => projection(), 1 => filter()], 0..3);
    let leaf = (link_attributes(), children()).prop_map(|(attributes, children)| {
        el(
            "link-entity",
            attributes,
            children.into_iter().map(XNode::Element).collect(),
        )
    });
    leaf.prop_recursive(3, 10, 3, move |inner| {
        (
            link_attributes(),
            children(),
            prop::collection::vec(inner, 0..3),
        )
            .prop_map(|(attributes, mut children, links)| {
                children.extend(links);
                el(
                    "link-entity",
                    attributes,
                    children.into_iter().map(XNode::Element).collect(),
                )
            })
    })
    .boxed()
}

fn entity() -> BoxedStrategy<XElement> {
    let child = prop_oneof![
        4 => projection().prop_map(XNode::Element),
        2 => filter().prop_map(XNode::Element),
        3 => link_entity().prop_map(XNode::Element),
        1 => "[ \r\n\t]{1,4}".prop_map(XNode::Text),
        1 => text_node(),
    ];
    (
        prop::option::weighted(0.95, some_text(ENTITIES)),
        prop::collection::vec(child, 0..8),
    )
        .prop_map(|(name, children)| {
            el(
                "entity",
                name.map(|n| ("name".to_string(), n)).into_iter().collect(),
                children,
            )
        })
        .boxed()
}

fn fetch_attributes() -> BoxedStrategy<Vec<(String, String)>> {
    let number = || some_text(&["0", "1", "2", "50", "5000", "-1", "4294967296", "x"]);
    attributes_from(
        vec![
            pair("version", Just("1.0".to_string()).boxed()),
            pair("mapping", Just("logical".to_string()).boxed()),
            pair("output-format", Just("xml-platform".to_string()).boxed()),
            pair("distinct", some_text(&["false", "true"])),
            pair("count", number()),
            pair("page", number()),
            pair("top", number()),
            pair("aggregate", some_text(&["false", "true", "1", "0", "TRUE"])),
            pair("aggregatelimit", number()),
            pair("returntotalrecordcount", some_text(&["true"])),
            pair(
                "paging-cookie",
                prop_oneof![strings(&[seeds::INNER_COOKIE]), any_text()].boxed(),
            ),
            pair("no-lock", some_text(&["true"])),
        ],
        6,
    )
}

pub fn fetch_tree() -> BoxedStrategy<XElement> {
    let children = prop_oneof![
        12 => entity().prop_map(|e| vec![XNode::Element(e)]),
        1 => prop::collection::vec(entity().prop_map(XNode::Element), 0..3),
        1 => (entity(), xml_element()).prop_map(|(e, other)| vec![XNode::Element(other), XNode::Element(e)]),
    ];
    let root = prop_oneof![20 => Just("fetch".to_string()), 1 => xml_name()];
    (root, fetch_attributes(), children)
        .prop_map(|(root, attributes, children)| el(&root, attributes, children))
        .boxed()
}

pub fn fetch_xml() -> BoxedStrategy<String> {
    document(
        fetch_tree(),
        &[
            seeds::VIEW_FETCH,
            seeds::DOC_FETCH,
            seeds::AGGREGATE_FETCH,
            seeds::CONDITION_FETCH,
        ],
    )
}

// --- charts' data descriptions

const AGGREGATES: &[&str] = &[
    "count",
    "countcolumn",
    "sum",
    "avg",
    "min",
    "max",
    "median",
    "SUM",
    "",
];
const DATE_GROUPINGS: &[&str] = &[
    "day",
    "week",
    "month",
    "quarter",
    "year",
    "fiscal-period",
    "fiscal-year",
    "Month",
    "",
];
const MEASURE_ALIASES: &[&str] = &["m0", "m1", "m2", "groupby_column", " ", ""];

fn chart_attribute() -> BoxedStrategy<XElement> {
    attributes_from(
        vec![
            pair("name", some_text(COLUMNS)),
            pair("alias", some_text(MEASURE_ALIASES)),
            pair("aggregate", some_text(AGGREGATES)),
            pair("distinct", some_text(&["true", "false", "1"])),
            pair("groupby", some_text(&["true", "false", "1", "TRUE"])),
            pair("dategrouping", some_text(DATE_GROUPINGS)),
        ],
        6,
    )
    .prop_map(|attributes| el("attribute", attributes, vec![]))
    .boxed()
}

/// A `<datadefinition>`: one aggregate fetch, and the measures its category
/// plots.
pub fn chart_tree() -> BoxedStrategy<XElement> {
    let child = prop_oneof![
        8 => chart_attribute().prop_map(XNode::Element),
        1 => link_entity().prop_map(XNode::Element),
        1 => filter().prop_map(XNode::Element),
    ];
    let entity = (
        prop::option::weighted(0.95, some_text(ENTITIES)),
        prop::collection::vec(child, 0..7),
    )
        .prop_map(|(name, children)| {
            el(
                "entity",
                name.map(|n| ("name".to_string(), n)).into_iter().collect(),
                children,
            )
        });
    let fetch = (fetch_attributes(), entity)
        .prop_map(|(attributes, entity)| el("fetch", attributes, vec![XNode::Element(entity)]));
    let category = prop::collection::vec(some_text(MEASURE_ALIASES), 0..4).prop_map(|aliases| {
        let collections = aliases
            .into_iter()
            .map(|alias| {
                let measure = el("measure", vec![("alias".to_string(), alias)], vec![]);
                XNode::Element(el(
                    "measurecollection",
                    vec![],
                    vec![XNode::Element(measure)],
                ))
            })
            .collect();
        el("category", vec![], collections)
    });
    (fetch, prop::option::weighted(0.9, category))
        .prop_map(|(fetch, category)| {
            let mut children = vec![XNode::Element(el(
                "fetchcollection",
                vec![],
                vec![XNode::Element(fetch)],
            ))];
            if let Some(category) = category {
                children.push(XNode::Element(el(
                    "categorycollection",
                    vec![],
                    vec![XNode::Element(category)],
                )));
            }
            el("datadefinition", vec![], children)
        })
        .boxed()
}

pub fn chart_xml() -> BoxedStrategy<String> {
    document(chart_tree(), &[seeds::CHART])
}

// --- layoutxml

/// Cell names, most matching the aliases and columns of generated queries.
pub const CELLS: &[&str] = &[
    "name",
    "numberofemployees",
    "estimatedvalue",
    "createdon",
    "a0.name",
    "a1.estimatedvalue",
    "cust.emailaddress1",
];

pub fn cell_name() -> BoxedStrategy<String> {
    prop_oneof![
        8 => strings(CELLS),
        1 => strings(&["", " ", " name ", ".", "a0.", ".name", "a.b.c", "Name", "x'y", "<&>"]),
        1 => any_text(),
    ]
    .boxed()
}

pub fn layout_tree() -> BoxedStrategy<XElement> {
    let cell = (cell_name(), some_text(&["150", "100", "0"])).prop_map(|(name, width)| {
        XNode::Element(el(
            "cell",
            vec![("name".into(), name), ("width".into(), width)],
            vec![],
        ))
    });
    let row_child = prop_oneof![
        8 => cell,
        1 => "[ \r\n]{1,3}".prop_map(XNode::Text),
        1 => xml_element().prop_map(XNode::Element),
    ];
    let row = prop::collection::vec(row_child, 0..6).prop_map(|children| {
        XNode::Element(el(
            "row",
            vec![
                ("name".into(), "result".into()),
                ("id".into(), "accountid".into()),
            ],
            children,
        ))
    });
    let grid_child = prop_oneof![6 => row, 1 => xml_element().prop_map(XNode::Element)];
    (
        prop_oneof![12 => Just("grid".to_string()), 1 => xml_name()],
        prop::collection::vec(grid_child, 1..3),
    )
        .prop_map(|(name, children)| {
            el(
                &name,
                vec![
                    ("name".into(), "resultset".into()),
                    ("object".into(), "1".into()),
                ],
                children,
            )
        })
        .boxed()
}

pub fn layout_xml() -> BoxedStrategy<String> {
    document(layout_tree(), &[seeds::LAYOUT])
}

// --- site maps

pub fn sitemap_tree() -> BoxedStrategy<XElement> {
    let entity = prop_oneof![
        6 => strings(&["account", "contact", "Opportunity", " lead ", "", "  ", "ACCOUNT", "new_thing", "x'y", "Account"]),
        1 => any_text(),
    ];
    let sub_area = (
        prop::option::weighted(0.8, entity),
        prop::option::weighted(0.3, strings(&["/main.aspx", "$webresource:x.html"])),
        any::<bool>(),
    )
        .prop_map(|(entity, url, titles)| {
            let mut attributes = vec![("Id".to_string(), "nav".to_string())];
            attributes.extend(entity.map(|e| ("Entity".to_string(), e)));
            attributes.extend(url.map(|u| ("Url".to_string(), u)));
            let children = if titles {
                vec![XNode::Element(el("Titles", vec![], vec![]))]
            } else {
                vec![]
            };
            XNode::Element(el("SubArea", attributes, children))
        });
    let group = prop::collection::vec(
        prop_oneof![6 => sub_area, 1 => xml_element().prop_map(XNode::Element)],
        0..5,
    )
    .prop_map(|children| XNode::Element(el("Group", vec![("Id".into(), "g".into())], children)));
    let area = prop::collection::vec(group, 0..3)
        .prop_map(|children| XNode::Element(el("Area", vec![("Id".into(), "a".into())], children)));
    prop::collection::vec(area, 0..3)
        .prop_map(|children| el("SiteMap", vec![], children))
        .boxed()
}

pub fn sitemap_xml() -> BoxedStrategy<String> {
    document(sitemap_tree(), &[seeds::SITEMAP])
}

// --- paging cookies

/// The cookie Dataverse hides in `pagingcookie`: the page and each order
/// column's first and last values.
pub fn inner_cookie_tree() -> BoxedStrategy<XElement> {
    let column = (
        "[a-z]{1,10}",
        "[ -~]{0,16}",
        prop_oneof![
            "[ -~]{0,16}",
            any::<String>().prop_map(|s| s.replace(['\r', '\t', '\n'], " "))
        ],
    )
        .prop_map(|(name, last, first)| {
            XNode::Element(el(
                &name,
                vec![("last".into(), last), ("first".into(), first)],
                vec![],
            ))
        });
    (0u32..1000, prop::collection::vec(column, 0..3))
        .prop_map(|(page, children)| {
            el("cookie", vec![("page".into(), page.to_string())], children)
        })
        .boxed()
}

// ---------------------------------------------------------------------------
// Timestamps

/// RFC 3339 date-times with every field sometimes out of range, in the forms the
/// weak parser accepts, and text that only looks like one.
pub fn timestamp() -> BoxedStrategy<String> {
    let fields = (
        prop_oneof![8 => 1970u32..2100, 1 => 1960u32..1970, 1 => 9990u32..10000, 1 => 0u32..10000],
        prop_oneof![10 => 1u32..13, 1 => 0u32..100],
        prop_oneof![10 => 1u32..29, 1 => 0u32..100],
        prop_oneof![10 => 0u32..24, 1 => 0u32..100],
        prop_oneof![10 => 0u32..60, 1 => 0u32..100],
        0u32..62,
        strings(&["", "", "", ".5", ".999999999", ".0000000001", ".", ".x"]),
        strings(&["Z", "Z", "Z", "", "+00:00", "+01:00", "z", "Z "]),
        any::<bool>(),
    );
    prop_oneof![
        8 => fields.prop_map(|(year, month, day, hour, minute, second, fraction, zone, space)| {
            let t = if space { ' ' } else { 'T' };
            format!("{year:04}-{month:02}-{day:02}{t}{hour:02}:{minute:02}:{second:02}{fraction}{zone}")
        }),
        1 => strings(&["9999-12-31T23:59:59Z", "9999-12-31T23:59:60Z", "1970-01-01T00:00:00Z", "2024-02-29T12:00:00Z", "2023-02-29T12:00:00Z"]),
        1 => "[0-9T:Z .+-]{0,30}",
        1 => any::<String>(),
    ]
    .boxed()
}

// ---------------------------------------------------------------------------
// JSON

const JSON_KEYS: &[&str] = &[
    "value",
    "@Microsoft.Dynamics.CRM.morerecords",
    "@Microsoft.Dynamics.CRM.fetchxmlpagingcookie",
    "@odata.context",
    "metric_rows",
    "metric_values",
    "metric_distinct",
    "metric_sum",
    "metric_min",
    "metric_max",
    "createdon",
    "modifiedon",
    "numberofemployees",
    "_transactioncurrencyid_value",
    "error",
    "code",
    "message",
    "error_description",
    "access_token",
    "expires_in",
    "refresh_token",
    "user_code",
    "device_code",
    "verification_uri",
    "interval",
    "LogicalName",
    "EntitySetName",
    "PrimaryIdAttribute",
    "DisplayName",
    "UserLocalizedLabel",
    "LocalizedLabels",
    "Label",
    "AttributeType",
    "AttributeTypeName",
    "Value",
];

pub const JSON_STRINGS: &[&str] = &[
    "",
    "0",
    " 12 ",
    "-3.5",
    "1e400",
    "NaN",
    "inf",
    "-inf",
    "18446744073709551616",
    "2024-01-01T00:00:00Z",
    "9999-12-31T23:59:59Z",
    "0x8004E023",
    "0x8004e023",
    "-2147164125",
    "0x80041103",
    "authorization_pending",
    "slow_down",
    "invalid_grant",
    "AADSTS7000215: Invalid client secret provided.",
    "AADSTS70019:",
    "AADSTS",
    "dd621d4a-d898-e711-80e7-00155db763be",
    "Money",
    "MoneyType",
    "DateTime",
    "Lookup",
];

const EDGE_FLOATS: &[f64] = &[
    0.0,
    -0.0,
    0.5,
    1.0,
    3599.0,
    50000.0,
    1e15,
    1e300,
    -1e300,
    f64::MAX,
    f64::MIN_POSITIVE,
    5e-324,
];
const EDGE_INTEGERS: &[u64] = &[0, 1, 299, 300, 301, 3599, 4294967295, 4294967296, u64::MAX];
const STATUSES: &[u16] = &[
    204, 299, 300, 304, 400, 401, 403, 404, 412, 413, 414, 429, 500, 503,
];

pub fn json_number() -> BoxedStrategy<Value> {
    prop_oneof![
        3 => any::<i64>().prop_map(Value::from),
        2 => any::<u64>().prop_map(Value::from),
        2 => any::<f64>().prop_map(Value::from),
        3 => select(EDGE_FLOATS).prop_map(Value::from),
        2 => select(EDGE_INTEGERS).prop_map(Value::from),
    ]
    .boxed()
}

pub fn json_leaf() -> BoxedStrategy<Value> {
    prop_oneof![
        1 => Just(Value::Null),
        1 => any::<bool>().prop_map(Value::Bool),
        4 => json_number(),
        3 => strings(JSON_STRINGS).prop_map(Value::String),
        1 => timestamp().prop_map(Value::String),
        1 => any::<String>().prop_map(Value::String),
    ]
    .boxed()
}

pub fn json_value() -> BoxedStrategy<Value> {
    let key = prop_oneof![6 => strings(JSON_KEYS), 1 => any_text()];
    json_leaf()
        .prop_recursive(4, 48, 6, move |inner| {
            prop_oneof![
                1 => prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                2 => prop::collection::vec((key.clone(), inner), 0..6)
                    .prop_map(|pairs| Value::Object(pairs.into_iter().collect::<Map<_, _>>())),
            ]
        })
        .boxed()
}

const JSON_SEEDS: &[&str] = &[
    r#"{"value":[{"metric_rows":10,"metric_values":9,"metric_sum":35200,"metric_min":1500,"metric_max":6200}]}"#,
    r#"{"value":[{"metric_rows":1e999}]}"#,
    r#"{"value":[]}"#,
    r#"{"value":{}}"#,
    r#"{"error":{"code":"0x8004E023","message":"AggregateQueryRecordLimit exceeded. Cannot perform this operation."}}"#,
    r#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.\r\nTrace ID: x"}"#,
    r#"{"token_type":"Bearer","expires_in":3599,"access_token":"tok"}"#,
    r#"{"token_type":"Bearer","expires_in":"3599","access_token":"tok","refresh_token":"r"}"#,
    r#"{"user_code":"ABC","device_code":"d","verification_uri":"https://microsoft.com/devicelogin","expires_in":900,"interval":5}"#,
    r#"{"value":[{"accountid":"a1","numberofemployees":5}],"@Microsoft.Dynamics.CRM.morerecords":true,"@Microsoft.Dynamics.CRM.fetchxmlpagingcookie":"<cookie pagenumber=\"2\" pagingcookie=\"%253ccookie%2520page%253d%25221%2522%253e%253c%252fcookie%253e\" istracking=\"False\" />"}"#,
    "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
    "\u{FEFF}{}",
    "",
];

pub fn json_text() -> BoxedStrategy<String> {
    let rendered = json_value().prop_map(|v| v.to_string());
    prop_oneof![
        5 => rendered.clone(),
        3 => (rendered, mutations()).prop_map(|(text, m)| mutate(&text, &m)),
        2 => (strings(JSON_SEEDS), prop::collection::vec(mutation(), 0..3)).prop_map(|(text, m)| mutate(&text, &m)),
        1 => any::<String>(),
    ]
    .boxed()
}

/// A response body: mostly JSON-ish text, sometimes bytes that are not UTF-8.
pub fn body() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        6 => json_text().prop_map(String::into_bytes),
        1 => prop::collection::vec(any::<u8>(), 0..64),
        1 => (json_text(), mutations()).prop_map(|(text, m)| mutate_bytes(text.as_bytes(), &m)),
    ]
    .boxed()
}

/// HTTP statuses, mostly the ones the plugin tells apart.
pub fn status() -> BoxedStrategy<u16> {
    prop_oneof![
        6 => Just(200u16),
        4 => select(STATUSES),
        1 => any::<u16>(),
    ]
    .boxed()
}

pub fn headers() -> BoxedStrategy<Vec<(String, String)>> {
    let header = prop_oneof![
        3 => (
            strings(&["retry-after", "Retry-After", "content-type"]),
            prop_oneof![
                strings(&["120", " 5 ", "0", "-1", "4294967296", "1.5", "Wed, 21 Oct 2015 07:28:00 GMT", ""]),
                any_text(),
            ],
        ),
        1 => (any_text(), any_text()),
    ];
    prop::collection::vec(header, 0..3).boxed()
}

// ---------------------------------------------------------------------------
// Seeds from the unit tests and the documented Dataverse examples

pub mod seeds {
    pub const CHART: &str = r#"<datadefinition><fetchcollection><fetch mapping="logical" aggregate="true"><entity name="opportunity"><attribute groupby="true" alias="groupby_column" name="createdon" dategrouping="month" /><attribute alias="sum_estimatedvalue" name="estimatedvalue" aggregate="sum" /><attribute alias="n" name="opportunityid" aggregate="count" distinct="true" /></entity></fetch></fetchcollection><categorycollection><category><measurecollection><measure alias="sum_estimatedvalue" /></measurecollection></category></categorycollection></datadefinition>"#;
    pub const VIEW_FETCH: &str = r#"<fetch version='1.0' output-format='xml-platform' mapping='logical' distinct='false' count='50' page='2'>
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

    pub const DOC_FETCH: &str = r#"<fetch version='1.0' output-format='xml-platform'
    mapping='logical' distinct='false'>
    <entity name='opportunity'>
    <order attribute='estimatedvalue' descending='false' />
    <filter type='and'>
        <condition attribute='statecode' operator='eq'
        value='0' />
    </filter>
    <attribute name='name' />
    <attribute name='estimatedvalue' />
    <link-entity alias='opportunitycustomeridcontactcontactid'
        name='contact' from='contactid' to='customerid'
        link-type='outer' visible='false'>
        <attribute name='emailaddress1' />
    </link-entity>
    <attribute name='opportunityid' />
    </entity>
  </fetch>"#;

    pub const AGGREGATE_FETCH: &str = "<fetch distinct='false' mapping='logical' aggregate='true' aggregatelimit = '10'> \n    <entity name='opportunity'> \n       <attribute name='name' alias='opportunity_count' aggregate='count'/> \n    </entity> \n</fetch>";

    pub const CONDITION_FETCH: &str = "<fetch><entity name='account'><filter><condition entityname='c' attribute='contactid' operator='null'/></filter><link-entity name='contact' from='parentcustomerid' to='accountid' link-type='outer' alias='c'/></entity></fetch>";

    pub const LAYOUT: &str = r#"<grid name='resultset' object='3' jump='name' select='1'
    preview='1' icon='1'>
    <row name='result' id='opportunityid'>
    <cell name='name' width='150' />
    <cell name='customerid' width='150' />
    <cell name='estimatedvalue' width='150' />
    <cell name='opportunitycustomeridcontactcontactid.emailaddress1'
        width='150' disableSorting='1' />
    </row>
  </grid>"#;

    pub const SITEMAP: &str = r#"<SiteMap IntroducedVersion="7.0.0.0">
  <Area Id="sales" Title="Sales">
    <Group Id="customers">
      <SubArea Id="nav_accts" Entity="account" />
      <SubArea Id="nav_conts" Entity="contact"><Titles /></SubArea>
      <SubArea Id="nav_dash" Url="/workplace/home_dashboards.aspx" />
    </Group>
    <Group Id="pipeline">
      <SubArea Id="nav_oppts" Entity="Opportunity" />
    </Group>
  </Area>
</SiteMap>"#;

    /// The documented `fetchxmlpagingcookie` annotation.
    pub const COOKIE: &str = "<cookie pagenumber=\"2\" pagingcookie=\"%253ccookie%2520page%253d%25221%2522%253e%253cfullname%2520last%253d%2522Robert%2520Lyon%2520%2528sample%2529%2522%2520first%253d%2522Susanna%2520Stubberod%2520%2528sample%2529%2522%2520%252f%253e%253ccontactid%2520last%253d%2522%257b30717E9C-643F-ED11-9DB0-002248225E95%257d%2522%2520first%253d%2522%257b20717E9C-643F-ED11-9DB0-002248225E95%257d%2522%2520%252f%253e%253c%252fcookie%253e\" istracking=\"False\" />";

    pub const INNER_COOKIE: &str = "<cookie page=\"1\"><fullname last=\"Robert Lyon (sample)\" first=\"Susanna Stubberod (sample)\" /><contactid last=\"{30717E9C-643F-ED11-9DB0-002248225E95}\" first=\"{20717E9C-643F-ED11-9DB0-002248225E95}\" /></cookie>";

    pub const WITH_REFERENCES: &str =
        r#"<?xml version="1.0"?><a x="1 &amp; 2"><b>t &lt; u</b><c/><![CDATA[<raw>]]></a>"#;
}
