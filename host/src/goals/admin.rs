//! Tenants, organizations and the integration policy: the tenant admin's switch
//! for every organization of the tenant, and each organization admin's own switch.
//! Syncs run only where both are on.

use crate::db::{Database, DbError};
use crate::goals::clock::Timestamp;
use crate::params;
use crate::sql::{Row, SqlError};

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("a {what} named '{name}' already exists")]
    Duplicate { what: &'static str, name: String },
    #[error("no {what} named '{name}'; known: {}", if .known.is_empty() { "none".to_string() } else { .known.join(", ") })]
    NotFound {
        what: &'static str,
        name: String,
        known: Vec<String>,
    },
    #[error("a {what} name must be 1 to 100 printable characters")]
    BadName { what: &'static str },
    #[error(transparent)]
    Db(#[from] DbError),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Tenant {
    pub id: i64,
    pub name: String,
    pub integration_enabled: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Organization {
    pub id: i64,
    pub name: String,
    pub tenant_id: i64,
    pub tenant: String,
    pub integration_enabled: bool,
    pub tenant_integration_enabled: bool,
}

impl Organization {
    /// Why syncs of this organization may not run, if they may not.
    pub fn disabled_reason(&self) -> Option<String> {
        if !self.tenant_integration_enabled {
            Some(format!(
                "integrations are switched off for tenant '{}' by its admin",
                self.tenant
            ))
        } else if !self.integration_enabled {
            Some(format!(
                "integrations are disabled for organization '{}' by its admin",
                self.name
            ))
        } else {
            None
        }
    }
}

fn check_name(what: &'static str, name: &str) -> Result<String, AdminError> {
    let name = name.trim();
    if name.is_empty() || name.len() > 100 || crate::names::hidden_character(name).is_some() {
        return Err(AdminError::BadName { what });
    }
    Ok(name.to_string())
}

pub async fn create_tenant(
    db: &Database,
    name: &str,
    now: Timestamp,
) -> Result<Tenant, AdminError> {
    let name = check_name("tenant", name)?;
    let wanted = name.clone();
    let created = db
        .run(move |conn| {
            Ok(conn.query_opt(
                "INSERT INTO tenants (name, integration_enabled, created_at) VALUES (?1, 0, ?2)
                     ON CONFLICT (name) DO NOTHING RETURNING id",
                params![wanted, now],
                |r| r.get::<i64>(0),
            )?)
        })
        .await?;
    match created {
        Some(id) => Ok(Tenant {
            id,
            name,
            integration_enabled: false,
        }),
        None => Err(AdminError::Duplicate {
            what: "tenant",
            name,
        }),
    }
}

pub async fn tenants(db: &Database) -> Result<Vec<Tenant>, AdminError> {
    Ok(db
        .run(|conn| {
            let rows = conn.query_map(
                "SELECT id, name, integration_enabled FROM tenants ORDER BY name",
                params![],
                |r| {
                    Ok(Tenant {
                        id: r.get(0)?,
                        name: r.get(1)?,
                        integration_enabled: r.get(2)?,
                    })
                },
            )?;
            Ok(rows)
        })
        .await?)
}

/// The tenant admin's switch.
pub async fn set_tenant_integration(
    db: &Database,
    name: &str,
    enabled: bool,
) -> Result<Tenant, AdminError> {
    let wanted = name.to_string();
    let changed = db
        .run(move |conn| {
            Ok(conn.execute(
                "UPDATE tenants SET integration_enabled = ?2 WHERE name = ?1",
                params![wanted, enabled],
            )?)
        })
        .await?;
    let all = tenants(db).await?;
    match all.iter().find(|t| t.name == name) {
        Some(tenant) if changed > 0 => Ok(tenant.clone()),
        _ => Err(AdminError::NotFound {
            what: "tenant",
            name: name.to_string(),
            known: all.into_iter().map(|t| t.name).collect(),
        }),
    }
}

pub async fn create_organization(
    db: &Database,
    name: &str,
    tenant: &str,
    now: Timestamp,
) -> Result<Organization, AdminError> {
    let name = check_name("organization", name)?;
    let (wanted, tenant_name) = (name.clone(), tenant.to_string());
    let outcome = db
        .run(move |conn| {
            let tx = conn.transaction()?;
            let Some(tenant_id) = tx.query_opt(
                "SELECT id FROM tenants WHERE name = ?1",
                params![&tenant_name],
                |r| r.get::<i64>(0),
            )?
            else {
                return Ok(Err("tenant"));
            };
            let inserted = tx.execute(
                "INSERT INTO organizations (tenant_id, name, integration_enabled, created_at)
                 VALUES (?1, ?2, 0, ?3) ON CONFLICT (name) DO NOTHING",
                params![tenant_id, wanted, now],
            )?;
            tx.commit()?;
            Ok(if inserted == 0 {
                Err("organization")
            } else {
                Ok(())
            })
        })
        .await?;
    match outcome {
        Ok(()) => organization(db, &name).await,
        Err("tenant") => Err(AdminError::NotFound {
            what: "tenant",
            name: tenant.to_string(),
            known: tenants(db).await?.into_iter().map(|t| t.name).collect(),
        }),
        Err(_) => Err(AdminError::Duplicate {
            what: "organization",
            name,
        }),
    }
}

const SELECT_ORGANIZATION: &str = "SELECT o.id, o.name, t.name, o.integration_enabled,
        t.integration_enabled, t.id
     FROM organizations o JOIN tenants t ON t.id = o.tenant_id";

fn organization_row(r: &Row) -> Result<Organization, SqlError> {
    Ok(Organization {
        id: r.get(0)?,
        name: r.get(1)?,
        tenant: r.get(2)?,
        integration_enabled: r.get(3)?,
        tenant_integration_enabled: r.get(4)?,
        tenant_id: r.get(5)?,
    })
}

pub async fn organizations(db: &Database) -> Result<Vec<Organization>, AdminError> {
    Ok(db
        .run(|conn| {
            let rows = conn.query_map(
                &format!("{SELECT_ORGANIZATION} ORDER BY t.name, o.name"),
                params![],
                organization_row,
            )?;
            Ok(rows)
        })
        .await?)
}

pub async fn organization(db: &Database, name: &str) -> Result<Organization, AdminError> {
    let all = organizations(db).await?;
    match all.iter().find(|o| o.name == name) {
        Some(found) => Ok(found.clone()),
        None => Err(AdminError::NotFound {
            what: "organization",
            name: name.to_string(),
            known: all.into_iter().map(|o| o.name).collect(),
        }),
    }
}

pub async fn organization_by_id(db: &Database, id: i64) -> Result<Organization, AdminError> {
    db.run(move |conn| {
        Ok(conn.query_opt(
            &format!("{SELECT_ORGANIZATION} WHERE o.id = ?1"),
            params![id],
            organization_row,
        )?)
    })
    .await?
    .ok_or_else(|| AdminError::NotFound {
        what: "organization",
        name: id.to_string(),
        known: Vec::new(),
    })
}

/// The organization admin's switch.
pub async fn set_organization_integration(
    db: &Database,
    name: &str,
    enabled: bool,
) -> Result<Organization, AdminError> {
    let wanted = name.to_string();
    db.run(move |conn| {
        Ok(conn.execute(
            "UPDATE organizations SET integration_enabled = ?2 WHERE name = ?1",
            params![wanted, enabled],
        )?)
    })
    .await?;
    organization(db, name).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn both_switches_are_needed() {
        let db = Database::open_in_memory().unwrap();
        create_tenant(&db, "Contoso", 0).await.unwrap();
        let org = create_organization(&db, "Sales", "Contoso", 0)
            .await
            .unwrap();
        assert!(org.disabled_reason().unwrap().contains("tenant 'Contoso'"));
        set_tenant_integration(&db, "Contoso", true).await.unwrap();
        let org = organization(&db, "Sales").await.unwrap();
        assert!(
            org.disabled_reason()
                .unwrap()
                .contains("organization 'Sales'")
        );
        let org = set_organization_integration(&db, "Sales", true)
            .await
            .unwrap();
        assert_eq!(org.disabled_reason(), None);
        set_tenant_integration(&db, "Contoso", false).await.unwrap();
        assert!(
            organization(&db, "Sales")
                .await
                .unwrap()
                .disabled_reason()
                .is_some()
        );
    }

    #[tokio::test]
    async fn names_are_unique_and_lookups_name_what_exists() {
        let db = Database::open_in_memory().unwrap();
        create_tenant(&db, "Contoso", 0).await.unwrap();
        assert!(matches!(
            create_tenant(&db, "Contoso", 0).await,
            Err(AdminError::Duplicate { .. })
        ));
        create_organization(&db, "Sales", "Contoso", 0)
            .await
            .unwrap();
        assert!(matches!(
            create_organization(&db, "Sales", "Contoso", 0).await,
            Err(AdminError::Duplicate { .. })
        ));
        let missing = create_organization(&db, "Ops", "Nope", 0)
            .await
            .unwrap_err();
        assert!(
            missing.to_string().contains("no tenant named 'Nope'"),
            "{missing}"
        );
        assert!(missing.to_string().contains("Contoso"));
        // The default organization from the migration exists, enabled.
        assert_eq!(
            organization(&db, "default")
                .await
                .unwrap()
                .disabled_reason(),
            None
        );
    }
}
