//! A minimal element tree read with quick-xml, for FetchXML and paging cookies.

use quick_xml::events::{BytesStart, Event};
use quick_xml::{Reader, XmlVersion};

/// Requests are untrusted; real queries are a handful of levels deep.
const MAX_DEPTH: usize = 48;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct XmlError(pub String);

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Element {
    pub name: String,
    pub attributes: Vec<(String, String)>,
    pub children: Vec<Element>,
    /// Text directly inside the element, entities resolved.
    pub text: String,
}

impl Element {
    pub fn parse(xml: &str) -> Result<Element, XmlError> {
        let mut reader = Reader::from_str(xml);
        let mut open: Vec<Element> = Vec::new();
        let mut root: Option<Element> = None;
        loop {
            let event = reader
                .read_event()
                .map_err(|e| XmlError(format!("Invalid XML: {e}")))?;
            match event {
                Event::Start(start) => {
                    if open.len() >= MAX_DEPTH {
                        return Err(XmlError("Invalid XML: nested too deeply".into()));
                    }
                    open.push(element_from(&start)?);
                }
                Event::Empty(start) => {
                    let element = element_from(&start)?;
                    attach(&mut open, &mut root, element)?;
                }
                Event::End(_) => {
                    let element = open
                        .pop()
                        .ok_or_else(|| XmlError("Invalid XML: unexpected end tag".into()))?;
                    attach(&mut open, &mut root, element)?;
                }
                Event::Text(text) => append_text(&mut open, &text.xml10_content()),
                Event::CData(data) => append_text(&mut open, &data.xml10_content()),
                Event::GeneralRef(reference) => {
                    let resolved = if reference.is_char_ref() {
                        reference
                            .resolve_char_ref()
                            .map_err(|e| XmlError(format!("Invalid XML: {e}")))?
                            .map(String::from)
                    } else {
                        quick_xml::escape::resolve_predefined_entity(&reference.xml10_content())
                            .map(String::from)
                    };
                    let resolved = resolved.ok_or_else(|| {
                        XmlError(format!(
                            "Invalid XML: unknown entity '&{};'",
                            reference.xml10_content()
                        ))
                    })?;
                    append_text(&mut open, &resolved);
                }
                Event::Eof => break,
                Event::Comment(_) | Event::Decl(_) | Event::PI(_) | Event::DocType(_) => {}
            }
        }
        if let Some(unclosed) = open.last() {
            return Err(XmlError(format!(
                "Invalid XML: element '{}' is not closed",
                unclosed.name
            )));
        }
        root.ok_or_else(|| XmlError("Invalid XML: no root element".into()))
    }

    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

fn element_from(start: &BytesStart<'_>) -> Result<Element, XmlError> {
    let name = start.name().as_ref().to_string();
    let mut attributes: Vec<(String, String)> = Vec::new();
    for attribute in start.attributes() {
        let attribute = attribute.map_err(|e| XmlError(format!("Invalid XML: {e}")))?;
        let key = attribute.key.as_ref().to_string();
        let value = attribute
            .normalized_value(XmlVersion::Implicit1_0)
            .map_err(|e| XmlError(format!("Invalid XML: {e}")))?
            .into_owned();
        if attributes.iter().any(|(k, _)| *k == key) {
            return Err(XmlError(format!(
                "Invalid XML: duplicate attribute '{key}' on '{name}'"
            )));
        }
        attributes.push((key, value));
    }
    Ok(Element {
        name,
        attributes,
        children: Vec::new(),
        text: String::new(),
    })
}

fn attach(
    open: &mut [Element],
    root: &mut Option<Element>,
    element: Element,
) -> Result<(), XmlError> {
    match open.last_mut() {
        Some(parent) => parent.children.push(element),
        None if root.is_none() => *root = Some(element),
        None => return Err(XmlError("Invalid XML: more than one root element".into())),
    }
    Ok(())
}

fn append_text(open: &mut [Element], text: &str) {
    if let Some(parent) = open.last_mut() {
        parent.text.push_str(text);
    }
}

/// Escapes text for an XML attribute value in double quotes.
pub fn escape_attr(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_attributes_children_and_entities() {
        let root = Element::parse(
            "<?xml version='1.0'?><fetch a='1 &amp; 2'><entity name='x'><value>A &lt; &#66;</value></entity></fetch>",
        )
        .unwrap();
        assert_eq!(root.name, "fetch");
        assert_eq!(root.attr("a"), Some("1 & 2"));
        assert_eq!(root.children[0].children[0].text, "A < B");
    }

    #[test]
    fn rejects_malformed_documents() {
        for bad in [
            "<a><b></a>",
            "",
            "<a/><b/>",
            "<a>&bogus;</a>",
            "<a x='1' x='2'/>",
            "<a>",
        ] {
            assert!(Element::parse(bad).is_err(), "{bad}");
        }
        let deep = "<a>".repeat(100) + &"</a>".repeat(100);
        assert!(Element::parse(&deep).is_err());
    }

    #[test]
    fn escapes_attribute_values() {
        assert_eq!(
            escape_attr("<a \"b\">&'"),
            "&lt;a &quot;b&quot;&gt;&amp;&apos;"
        );
    }
}
