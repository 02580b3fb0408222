//! Reading a view's layoutxml: which columns it shows.

use crate::xml::{Element, XmlError};

/// The cell names of the view's grid, in display order. Cells of joined tables are
/// named `<link-entity alias>.<attribute>`.
pub fn cell_names(layout_xml: &str) -> Result<Vec<String>, XmlError> {
    let grid = Element::parse(layout_xml)?;
    let mut names = Vec::new();
    for row in grid.elements().filter(|e| e.name == "row") {
        for cell in row.elements().filter(|e| e.name == "cell") {
            if let Some(name) = cell.attr("name").map(str::trim)
                && !name.is_empty()
                && !names.iter().any(|n| n == name)
            {
                names.push(name.to_string());
            }
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cells_including_link_entity_columns() {
        let xml = r#"<grid name='resultset' object='3' jump='name' select='1' preview='1' icon='1'>
            <row name='result' id='opportunityid'>
            <cell name='name' width='150' />
            <cell name='estimatedvalue' width='150' />
            <cell name='opportunitycustomeridcontactcontactid.emailaddress1' width='150' disableSorting='1' />
            </row>
          </grid>"#;
        assert_eq!(
            cell_names(xml).unwrap(),
            [
                "name",
                "estimatedvalue",
                "opportunitycustomeridcontactcontactid.emailaddress1"
            ]
        );
    }

    #[test]
    fn empty_grid_has_no_cells() {
        assert!(
            cell_names("<grid><row name='result' id='x'/></grid>")
                .unwrap()
                .is_empty()
        );
    }
}
