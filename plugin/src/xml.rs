//! A small owned XML tree over quick-xml.
//!
//! Site maps, layoutxml and FetchXML are small documents that the plugin reads and,
//! for FetchXML, rewrites. A tree is the simplest safe way to edit them: elements
//! are removed or added as nodes and serialised with proper escaping, never by
//! slicing strings.

use quick_xml::events::{BytesStart, BytesText, Event};
use quick_xml::{Reader, Writer, XmlVersion};

/// Deeper documents are refused: none of the documents the plugin reads come close,
/// and the limit keeps hostile input from exhausting the stack.
const MAX_DEPTH: usize = 64;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum XmlError {
    #[error("malformed XML: {0}")]
    Malformed(String),
    #[error("XML nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
    #[error("XML document has no root element")]
    Empty,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Element(Element),
    Text(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Element {
    pub name: String,
    pub attributes: Vec<(String, String)>,
    pub children: Vec<Node>,
}

impl Element {
    pub fn new(name: &str) -> Self {
        Element {
            name: name.to_string(),
            attributes: Vec::new(),
            children: Vec::new(),
        }
    }

    /// Parses a document and returns its root element.
    pub fn parse(xml: &str) -> Result<Element, XmlError> {
        let mut reader = Reader::from_str(xml);
        // Stack of open elements; the root is the first one closed at depth zero.
        let mut open: Vec<Element> = Vec::new();
        let mut root: Option<Element> = None;
        loop {
            let event = reader
                .read_event()
                .map_err(|e| XmlError::Malformed(e.to_string()))?;
            match event {
                Event::Start(start) => {
                    if open.len() >= MAX_DEPTH {
                        return Err(XmlError::TooDeep);
                    }
                    open.push(element_from(&start)?);
                }
                Event::Empty(start) => {
                    let element = element_from(&start)?;
                    close(&mut open, &mut root, element)?;
                }
                Event::End(_) => {
                    let element = open
                        .pop()
                        .ok_or_else(|| XmlError::Malformed("unexpected end tag".into()))?;
                    close(&mut open, &mut root, element)?;
                }
                Event::Text(text) => push_text(&mut open, &text.xml10_content()),
                Event::CData(data) => push_text(&mut open, &data.xml10_content()),
                Event::GeneralRef(reference) => {
                    let resolved = if reference.is_char_ref() {
                        reference
                            .resolve_char_ref()
                            .map_err(|e| XmlError::Malformed(e.to_string()))?
                            .map(String::from)
                    } else {
                        quick_xml::escape::resolve_predefined_entity(&reference.xml10_content())
                            .map(String::from)
                    };
                    let resolved = resolved.ok_or_else(|| {
                        XmlError::Malformed(format!(
                            "unknown entity &{};",
                            reference.xml10_content()
                        ))
                    })?;
                    push_text(&mut open, &resolved);
                }
                Event::Eof => break,
                Event::Comment(_) | Event::Decl(_) | Event::PI(_) | Event::DocType(_) => {}
            }
        }
        if !open.is_empty() {
            return Err(XmlError::Malformed(format!(
                "element <{}> is not closed",
                open.last().map(|e| e.name.as_str()).unwrap_or_default()
            )));
        }
        root.ok_or(XmlError::Empty)
    }

    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    pub fn set_attr(&mut self, name: &str, value: &str) {
        match self.attributes.iter_mut().find(|(key, _)| key == name) {
            Some((_, existing)) => *existing = value.to_string(),
            None => self.attributes.push((name.to_string(), value.to_string())),
        }
    }

    pub fn remove_attr(&mut self, name: &str) {
        self.attributes.retain(|(key, _)| key != name);
    }

    pub fn with_attr(mut self, name: &str, value: &str) -> Self {
        self.set_attr(name, value);
        self
    }

    /// Direct child elements.
    pub fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|node| match node {
            Node::Element(element) => Some(element),
            Node::Text(_) => None,
        })
    }

    pub fn elements_mut(&mut self) -> impl Iterator<Item = &mut Element> {
        self.children.iter_mut().filter_map(|node| match node {
            Node::Element(element) => Some(element),
            Node::Text(_) => None,
        })
    }

    /// Every element below this one, depth first, in document order.
    pub fn descendants(&self) -> Vec<&Element> {
        let mut found = Vec::new();
        let mut pending: Vec<&Element> = self.elements().collect();
        pending.reverse();
        while let Some(element) = pending.pop() {
            found.push(element);
            let before = pending.len();
            pending.extend(element.elements());
            pending[before..].reverse();
        }
        found
    }

    /// The concatenated text directly inside this element.
    pub fn text(&self) -> String {
        self.children
            .iter()
            .filter_map(|node| match node {
                Node::Text(text) => Some(text.as_str()),
                Node::Element(_) => None,
            })
            .collect()
    }

    /// Serialises the element and its children, escaping text and attribute values.
    pub fn to_xml(&self) -> String {
        let mut writer = Writer::new(Vec::new());
        write_element(&mut writer, self);
        // Everything written comes from `String`s, so the output is UTF-8.
        String::from_utf8_lossy(&writer.into_inner()).into_owned()
    }
}

/// Whether `name` is an XML name. The reader lets some non-names through (`< />`,
/// an attribute called `'`), and a tree holding one would not write back as XML.
fn is_xml_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|first| first.is_alphabetic() || first == '_' || first == ':')
        && chars.all(|c| c.is_alphanumeric() || matches!(c, '_' | ':' | '-' | '.'))
}

fn checked_name(name: String) -> Result<String, XmlError> {
    if is_xml_name(&name) {
        Ok(name)
    } else {
        Err(XmlError::Malformed(format!("'{name}' is not an XML name")))
    }
}

fn element_from(start: &BytesStart<'_>) -> Result<Element, XmlError> {
    let name = checked_name(start.name().as_ref().to_string())?;
    let mut attributes = Vec::new();
    for attribute in start.attributes() {
        let attribute = attribute.map_err(|e| XmlError::Malformed(e.to_string()))?;
        let key = checked_name(attribute.key.as_ref().to_string())?;
        let value = attribute
            .normalized_value(XmlVersion::Implicit1_0)
            .map_err(|e| XmlError::Malformed(e.to_string()))?
            .into_owned();
        attributes.push((key, value));
    }
    Ok(Element {
        name,
        attributes,
        children: Vec::new(),
    })
}

fn close(
    open: &mut [Element],
    root: &mut Option<Element>,
    element: Element,
) -> Result<(), XmlError> {
    match open.last_mut() {
        Some(parent) => parent.children.push(Node::Element(element)),
        None if root.is_none() => *root = Some(element),
        None => return Err(XmlError::Malformed("more than one root element".into())),
    }
    Ok(())
}

fn push_text(open: &mut [Element], text: &str) {
    // Text outside the root (whitespace around it) carries no meaning, nor does an
    // empty CDATA section.
    if text.is_empty() {
        return;
    }
    if let Some(parent) = open.last_mut() {
        match parent.children.last_mut() {
            Some(Node::Text(existing)) => existing.push_str(text),
            _ => parent.children.push(Node::Text(text.to_string())),
        }
    }
}

fn write_element(writer: &mut Writer<Vec<u8>>, element: &Element) {
    let mut start = BytesStart::new(element.name.as_str());
    for (key, value) in &element.attributes {
        start.push_attribute((key.as_str(), value.as_str()));
    }
    // Writing into a Vec cannot fail, so the io::Results below are always Ok.
    if element.children.is_empty() {
        let _ = writer.write_event(Event::Empty(start));
        return;
    }
    let _ = writer.write_event(Event::Start(start.borrow()));
    for child in &element.children {
        match child {
            Node::Element(inner) => write_element(writer, inner),
            Node::Text(text) => {
                let _ = writer.write_event(Event::Text(BytesText::new(text)));
            }
        }
    }
    let _ = writer.write_event(Event::End(start.to_end()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_attributes_text_and_entities() {
        let root = Element::parse(
            r#"<?xml version="1.0"?><a x="1 &amp; 2"><b>t &lt; u</b><c/><![CDATA[<raw>]]></a>"#,
        )
        .unwrap();
        assert_eq!(root.name, "a");
        assert_eq!(root.attr("x"), Some("1 & 2"));
        let b = root.elements().next().unwrap();
        assert_eq!(b.text(), "t < u");
        assert_eq!(root.text(), "<raw>");
        assert_eq!(root.descendants().len(), 2);
    }

    #[test]
    fn round_trips_with_escaping() {
        let mut root = Element::parse(r#"<a><b v="q&quot;"/></a>"#).unwrap();
        root.set_attr("n", "<&>");
        let xml = root.to_xml();
        assert_eq!(Element::parse(&xml).unwrap(), root);
        assert!(xml.contains("&lt;&amp;&gt;"));
    }

    #[test]
    fn descendants_are_in_document_order() {
        let root = Element::parse("<r><a><b/><c/></a><d/></r>").unwrap();
        let names: Vec<_> = root.descendants().iter().map(|e| e.name.clone()).collect();
        assert_eq!(names, ["a", "b", "c", "d"]);
    }

    #[test]
    fn rejects_bad_documents() {
        assert!(matches!(
            Element::parse("<a><b></a>"),
            Err(XmlError::Malformed(_))
        ));
        assert_eq!(Element::parse(""), Err(XmlError::Empty));
        assert!(matches!(
            Element::parse("<a/><b/>"),
            Err(XmlError::Malformed(_))
        ));
        assert!(matches!(
            Element::parse("<a>&bogus;</a>"),
            Err(XmlError::Malformed(_))
        ));
        let deep = "<a>".repeat(100) + &"</a>".repeat(100);
        assert_eq!(Element::parse(&deep), Err(XmlError::TooDeep));
    }
}
