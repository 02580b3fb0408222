//! Reading an app's site map: which tables its navigation shows.

use crate::xml::{Element, XmlError};

/// Logical names of the tables the site map navigates to, in navigation order and
/// without repeats. Only `<SubArea Entity="...">` entries are tables; sub-areas with
/// just a `Url` are dashboards or web resources.
pub fn entity_names(sitemap_xml: &str) -> Result<Vec<String>, XmlError> {
    let root = Element::parse(sitemap_xml)?;
    let mut names: Vec<String> = Vec::new();
    for sub_area in root.descendants() {
        if sub_area.name != "SubArea" {
            continue;
        }
        if let Some(entity) = sub_area.attr("Entity") {
            let entity = entity.trim().to_ascii_lowercase();
            if !entity.is_empty() && !names.contains(&entity) {
                names.push(entity);
            }
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_entity_subareas_once_in_order() {
        let xml = r#"<SiteMap IntroducedVersion="7.0.0.0">
          <Area Id="sales" Title="Sales">
            <Group Id="customers">
              <SubArea Id="nav_accts" Entity="account" />
              <SubArea Id="nav_conts" Entity="contact"><Titles /></SubArea>
              <SubArea Id="nav_dash" Url="/workplace/home_dashboards.aspx" />
            </Group>
            <Group Id="pipeline">
              <SubArea Id="nav_oppts" Entity="Opportunity" />
              <SubArea Id="nav_accts2" Entity="account" />
            </Group>
          </Area>
        </SiteMap>"#;
        assert_eq!(
            entity_names(xml).unwrap(),
            ["account", "contact", "opportunity"]
        );
    }

    #[test]
    fn malformed_site_map_is_an_error() {
        assert!(entity_names("<SiteMap><Area></SiteMap>").is_err());
    }
}
