//! `goals-host tenant ...` and `goals-host org ...`: the admins' switches.

use super::Context;
use crate::goals::admin::{self, Organization, Tenant};
use crate::render::{Report, table};
use clap::Subcommand;
use serde_json::Value;

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant (integration off until enabled)
    #[command(after_long_help = "Examples:
  goals-host tenant create Contoso
  goals-host tenant enable Contoso")]
    Create {
        /// Name of the new tenant: unique, at most 100 characters
        name: String,
    },
    /// Switch the integration on for every organization of the tenant
    #[command(after_long_help = "Examples:
  goals-host tenant enable Contoso
  goals-host org enable Sales")]
    Enable {
        /// Tenant: its exact name, as `tenant list` shows
        name: String,
    },
    /// Switch the integration off for every organization of the tenant
    #[command(after_long_help = "Examples:
  goals-host tenant disable Contoso")]
    Disable {
        /// Tenant: its exact name, as `tenant list` shows
        name: String,
    },
    /// List tenants
    List,
}

#[derive(Debug, Subcommand)]
pub enum OrgCommand {
    /// Create an organization in a tenant (integration off until enabled)
    #[command(after_long_help = "Examples:
  goals-host org create Sales --tenant Contoso
  goals-host org enable Sales")]
    Create {
        /// Name of the new organization: unique over all tenants, at most 100 characters
        name: String,
        /// Tenant the organization belongs to: its exact name, as `tenant list` shows
        #[arg(long)]
        tenant: String,
    },
    /// Enable the integration for one organization (the tenant's switch must be on too)
    #[command(after_long_help = "Examples:
  goals-host tenant enable Contoso
  goals-host org enable Sales")]
    Enable {
        /// Organization: its exact name, as `org list` shows
        name: String,
    },
    /// Disable the integration for one organization
    #[command(after_long_help = "Examples:
  goals-host org disable Sales")]
    Disable {
        /// Organization: its exact name, as `org list` shows
        name: String,
    },
    /// List organizations
    List,
}

fn on_off(enabled: bool) -> &'static str {
    if enabled { "on" } else { "off" }
}

fn tenant_report(tenant: &Tenant) -> Report {
    Report {
        text: format!(
            "tenant '{}': integration {}",
            tenant.name,
            on_off(tenant.integration_enabled)
        ),
        json: crate::render::tenant(tenant),
    }
}

fn org_report(org: &Organization) -> Report {
    Report {
        text: format!(
            "organization '{}' of tenant '{}': integration {} ({})",
            org.name,
            org.tenant,
            on_off(org.integration_enabled),
            org.disabled_reason()
                .unwrap_or_else(|| "syncs run".to_string())
        ),
        json: crate::render::organization(org),
    }
}

pub async fn tenant(context: &Context<'_>, command: &TenantCommand) -> anyhow::Result<Report> {
    let db = &context.db;
    let now = context.clock.now();
    Ok(match command {
        TenantCommand::Create { name } => {
            tenant_report(&admin::create_tenant(db, name, now).await?)
        }
        TenantCommand::Enable { name } => {
            tenant_report(&admin::set_tenant_integration(db, name, true).await?)
        }
        TenantCommand::Disable { name } => {
            tenant_report(&admin::set_tenant_integration(db, name, false).await?)
        }
        TenantCommand::List => {
            let tenants = admin::tenants(db).await?;
            Report {
                text: table(
                    &["TENANT", "INTEGRATION"],
                    &tenants
                        .iter()
                        .map(|t| vec![t.name.clone(), on_off(t.integration_enabled).to_string()])
                        .collect::<Vec<_>>(),
                ),
                json: Value::Array(tenants.iter().map(crate::render::tenant).collect()),
            }
        }
    })
}

pub async fn org(context: &Context<'_>, command: &OrgCommand) -> anyhow::Result<Report> {
    let db = &context.db;
    let now = context.clock.now();
    Ok(match command {
        OrgCommand::Create { name, tenant } => {
            org_report(&admin::create_organization(db, name, tenant, now).await?)
        }
        OrgCommand::Enable { name } => {
            org_report(&admin::set_organization_integration(db, name, true).await?)
        }
        OrgCommand::Disable { name } => {
            org_report(&admin::set_organization_integration(db, name, false).await?)
        }
        OrgCommand::List => {
            let orgs = admin::organizations(db).await?;
            Report {
                text: table(
                    &["ORGANIZATION", "TENANT", "INTEGRATION", "SYNCS"],
                    &orgs
                        .iter()
                        .map(|o| {
                            vec![
                                o.name.clone(),
                                o.tenant.clone(),
                                on_off(o.integration_enabled).to_string(),
                                if o.disabled_reason().is_none() {
                                    "run"
                                } else {
                                    "stopped"
                                }
                                .to_string(),
                            ]
                        })
                        .collect::<Vec<_>>(),
                ),
                json: Value::Array(orgs.iter().map(crate::render::organization).collect()),
            }
        }
    })
}
