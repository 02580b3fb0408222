//! Paging cookies: the `fetchxmlpagingcookie` annotation, whose `pagingcookie`
//! attribute is XML percent-encoded twice.

use crate::check;
use crate::inputs::{self, Mutation, el};
use dynamics365_plugin::paging;
use percent_encoding::{AsciiSet, CONTROLS, NON_ALPHANUMERIC, utf8_percent_encode};
use proptest::prelude::*;

/// What .NET's `UrlEncode` leaves alone besides letters and digits.
const DOTNET: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'!')
    .remove(b'*')
    .remove(b'(')
    .remove(b')');
/// Only what must go: a sloppy encoder.
const MINIMAL: &AsciiSet = &CONTROLS.add(b'%').add(b' ').add(b'<').add(b'>').add(b'"');

fn encode(text: &str, times: u8, minimal: bool, lower: bool) -> String {
    let set = if minimal { MINIMAL } else { DOTNET };
    let mut encoded = text.to_string();
    for _ in 0..times {
        encoded = utf8_percent_encode(&encoded, set).to_string();
    }
    if lower {
        // Dataverse writes lower-case hex digits.
        let mut out = String::with_capacity(encoded.len());
        let mut hex_left = 0;
        for c in encoded.chars() {
            if hex_left > 0 {
                out.push(c.to_ascii_lowercase());
                hex_left -= 1;
            } else {
                out.push(c);
                if c == '%' {
                    hex_left = 2;
                }
            }
        }
        encoded = out;
    }
    encoded
}

#[derive(Debug, Clone)]
pub struct Recipe {
    times: u8,
    minimal: bool,
    lower: bool,
    inner_damage: Option<Vec<Mutation>>,
    encoded_damage: Option<Vec<Mutation>>,
    outer_damage: Option<Vec<Mutation>>,
    has_attribute: bool,
}

fn recipe() -> BoxedStrategy<Recipe> {
    let damage = || prop::option::weighted(0.15, inputs::mutations());
    (
        prop_oneof![8 => Just(2u8), 1 => 0u8..4],
        prop::bool::weighted(0.2),
        any::<bool>(),
        damage(),
        damage(),
        damage(),
        prop::bool::weighted(0.95),
    )
        .prop_map(
            |(times, minimal, lower, inner_damage, encoded_damage, outer_damage, has_attribute)| {
                Recipe {
                    times,
                    minimal,
                    lower,
                    inner_damage,
                    encoded_damage,
                    outer_damage,
                    has_attribute,
                }
            },
        )
        .boxed()
}

/// An annotation and, when it is intact, the cookie it must decode to.
pub fn annotation() -> BoxedStrategy<(String, Option<String>)> {
    let inner = prop_oneof![
        6 => inputs::inner_cookie_tree().prop_map(|tree| tree.render()),
        1 => Just(inputs::seeds::INNER_COOKIE.to_string()),
        1 => inputs::any_xml(),
    ];
    (inner, recipe(), 1u32..100)
        .prop_map(|(inner, recipe, page)| {
            let inner = match &recipe.inner_damage {
                Some(damage) => inputs::mutate(&inner, damage),
                None => inner,
            };
            let mut encoded = encode(&inner, recipe.times, recipe.minimal, recipe.lower);
            if let Some(damage) = &recipe.encoded_damage {
                encoded = inputs::mutate(&encoded, damage);
            }
            let mut attributes = vec![("pagenumber".to_string(), page.to_string())];
            if recipe.has_attribute {
                attributes.push(("pagingcookie".to_string(), encoded));
            }
            attributes.push(("istracking".to_string(), "False".to_string()));
            let mut text = el("cookie", attributes, vec![]).render();
            if let Some(damage) = &recipe.outer_damage {
                text = inputs::mutate(&text, damage);
            }
            let intact = recipe.times == 2
                && recipe.inner_damage.is_none()
                && recipe.encoded_damage.is_none()
                && recipe.outer_damage.is_none()
                && recipe.has_attribute;
            (text, intact.then_some(inner))
        })
        .boxed()
}

#[test]
fn paging_cookies_decode_or_fail_cleanly() {
    let any = prop_oneof![
        6 => annotation(),
        1 => (inputs::strings(&[inputs::seeds::COOKIE]), inputs::mutations())
            .prop_map(|(seed, m)| (inputs::mutate(&seed, &m), None)),
        1 => inputs::any_text().prop_map(|text| (text, None)),
        1 => inputs::any_xml().prop_map(|text| (text, None)),
    ];
    check(
        "paging::decode_cookie",
        2000,
        any,
        |(annotation, expected)| {
            let decoded = paging::decode_cookie(&annotation);
            if let Some(inner) = expected
                && dynamics365_plugin::xml::Element::parse(&inner).is_ok()
            {
                prop_assert_eq!(decoded.ok(), Some(inner));
            }
            Ok(())
        },
    );
}
