//! Bearer tokens of the HTTP API. A token acts with one role inside one tenant
//! or organization; only its SHA-256 hash is stored, so the database never
//! holds anything that opens the API. Tokens are 256 random bits: a fast hash
//! is enough, no password hashing is needed.

use crate::db::{Database, DbError};
use crate::goals::admin::{self, AdminError};
use crate::goals::clock::Timestamp;
use crate::params;
use sha2::{Digest, Sha256};

/// What a token prints before its random part, so a leaked one is easy to
/// recognise (and to find with secret scanners).
const PREFIX: &str = "ghk_";

/// Who may do what, widest first; each role may do what the ones after it may,
/// inside its scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    PlatformAdmin,
    TenantAdmin,
    OrgAdmin,
    Member,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::PlatformAdmin => "platform-admin",
            Role::TenantAdmin => "tenant-admin",
            Role::OrgAdmin => "org-admin",
            Role::Member => "member",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        [
            Role::PlatformAdmin,
            Role::TenantAdmin,
            Role::OrgAdmin,
            Role::Member,
        ]
        .into_iter()
        .find(|role| role.as_str() == text)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("{0}")]
    Scope(String),
    #[error("no token with id '{0}'; `goals-host token list` shows them")]
    NotFound(String),
    #[error(transparent)]
    Admin(#[from] AdminError),
    #[error(transparent)]
    Db(#[from] DbError),
}

/// A token as stored: never the token itself.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub id: String,
    pub role: Role,
    pub tenant_id: Option<i64>,
    pub tenant: Option<String>,
    pub organization_id: Option<i64>,
    pub organization: Option<String>,
    pub user: Option<String>,
    pub created_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
}

/// What `create` was asked for: names, as people give them.
#[derive(Debug, Clone, Default)]
pub struct NewToken {
    pub tenant: Option<String>,
    pub organization: Option<String>,
    pub user: Option<String>,
}

/// The hash a token is stored and looked up under.
fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn random_hex(bytes: usize) -> Result<String, DbError> {
    let mut buffer = vec![0u8; bytes];
    getrandom::fill(&mut buffer).map_err(|_| DbError::from(crate::secrets::SecretError::Random))?;
    Ok(hex::encode(buffer))
}

/// Creates a token; returns it (shown once) and its record.
pub async fn create(
    db: &Database,
    role: Role,
    new: NewToken,
    now: Timestamp,
) -> Result<(String, Token), TokenError> {
    // The scope each role needs: a tenant for a tenant admin, an organization
    // (whose tenant follows) for the others; a platform admin's has none.
    let (tenant_id, organization_id) = match role {
        Role::PlatformAdmin => {
            if new.tenant.is_some() || new.organization.is_some() {
                return Err(TokenError::Scope(
                    "a platform-admin token acts on every tenant: leave out --tenant and --org"
                        .to_string(),
                ));
            }
            (None, None)
        }
        Role::TenantAdmin => {
            let Some(name) = &new.tenant else {
                return Err(TokenError::Scope(
                    "a tenant-admin token needs --tenant NAME: the tenant it administers"
                        .to_string(),
                ));
            };
            if new.organization.is_some() {
                return Err(TokenError::Scope(
                    "a tenant-admin token acts on every organization of its tenant: leave out --org"
                        .to_string(),
                ));
            }
            let tenant = admin::tenants(db)
                .await?
                .into_iter()
                .find(|t| &t.name == name)
                .ok_or_else(|| {
                    TokenError::Scope(format!(
                        "no tenant named '{name}'; `goals-host tenant list` shows them"
                    ))
                })?;
            (Some(tenant.id), None)
        }
        Role::OrgAdmin | Role::Member => {
            let Some(name) = &new.organization else {
                return Err(TokenError::Scope(format!(
                    "a {} token needs --org NAME: the organization it acts in",
                    role.as_str()
                )));
            };
            let org = admin::organization(db, name).await?;
            if let Some(tenant) = &new.tenant
                && tenant != &org.tenant
            {
                return Err(TokenError::Scope(format!(
                    "organization '{}' belongs to tenant '{}', not '{tenant}'",
                    org.name, org.tenant
                )));
            }
            (Some(org.tenant_id), Some(org.id))
        }
    };
    let token = format!("{PREFIX}{}", random_hex(32)?);
    let id = random_hex(6)?;
    let (hashed, stored_id, user) = (hash(&token), id.clone(), new.user.clone());
    db.run(move |sql| {
        sql.execute(
            "INSERT INTO api_tokens (id, hash, role, tenant_id, organization_id, user_email,
                 created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                stored_id,
                hashed,
                role.as_str(),
                tenant_id,
                organization_id,
                user,
                now
            ],
        )?;
        Ok(())
    })
    .await?;
    let record = get(db, &id)
        .await?
        .ok_or_else(|| TokenError::NotFound(id.clone()))?;
    Ok((token, record))
}

const SELECT: &str = "SELECT k.id, k.role, k.tenant_id, t.name, k.organization_id, o.name,
         k.user_email, k.created_at, k.revoked_at
     FROM api_tokens k
     LEFT JOIN tenants t ON t.id = k.tenant_id
     LEFT JOIN organizations o ON o.id = k.organization_id";

fn from_row(r: &crate::sql::Row) -> Result<Token, crate::sql::SqlError> {
    let role: String = r.get(1)?;
    Ok(Token {
        id: r.get(0)?,
        // Written by `create` only; an unknown role acts as the narrowest.
        role: Role::parse(&role).unwrap_or(Role::Member),
        tenant_id: r.get(2)?,
        tenant: r.get(3)?,
        organization_id: r.get(4)?,
        organization: r.get(5)?,
        user: r.get(6)?,
        created_at: r.get(7)?,
        revoked_at: r.get(8)?,
    })
}

/// Every token, revoked ones included, newest first.
pub async fn list(db: &Database) -> Result<Vec<Token>, DbError> {
    db.run(|sql| {
        Ok(sql.query_map(
            &format!("{SELECT} ORDER BY k.created_at DESC, k.id"),
            params![],
            from_row,
        )?)
    })
    .await
}

/// The token with id `id`, revoked or not.
async fn get(db: &Database, id: &str) -> Result<Option<Token>, DbError> {
    let id = id.to_string();
    db.run(move |sql| {
        Ok(sql.query_opt(&format!("{SELECT} WHERE k.id = ?1"), params![id], from_row)?)
    })
    .await
}

/// The live token a request presented, if any.
pub async fn authenticate(db: &Database, token: &str) -> Result<Option<Token>, DbError> {
    if !token.starts_with(PREFIX) {
        return Ok(None);
    }
    let hashed = hash(token);
    db.run(move |sql| {
        Ok(sql.query_opt(
            &format!("{SELECT} WHERE k.hash = ?1 AND k.revoked_at IS NULL"),
            params![hashed],
            from_row,
        )?)
    })
    .await
}

/// Revokes a token: requests with it are refused from now on. Revoking it
/// again keeps the first revocation's time.
pub async fn revoke(db: &Database, id: &str, now: Timestamp) -> Result<Token, TokenError> {
    let wanted = id.to_string();
    db.run(move |sql| {
        sql.execute(
            "UPDATE api_tokens SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
            params![wanted, now],
        )?;
        Ok(())
    })
    .await?;
    get(db, id)
        .await?
        .ok_or_else(|| TokenError::NotFound(id.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_token_works_until_revoked_and_is_stored_only_as_a_hash() {
        let db = Database::open_in_memory().expect("db");
        let (token, record) = create(&db, Role::PlatformAdmin, NewToken::default(), 100)
            .await
            .expect("create");
        assert!(token.starts_with(PREFIX) && token.len() == PREFIX.len() + 64);
        let found = authenticate(&db, &token).await.expect("auth");
        assert_eq!(found.map(|t| t.id), Some(record.id.clone()));
        assert!(authenticate(&db, "ghk_0000").await.expect("auth").is_none());
        let stored: Vec<String> = db
            .run(|sql| Ok(sql.query_map("SELECT hash FROM api_tokens", params![], |r| r.get(0))?))
            .await
            .expect("hashes");
        assert_eq!(stored, vec![hash(&token)]);
        assert!(!stored[0].contains(&token[PREFIX.len()..]));
        revoke(&db, &record.id, 200).await.expect("revoke");
        assert!(authenticate(&db, &token).await.expect("auth").is_none());
        assert!(matches!(
            revoke(&db, "nope", 200).await,
            Err(TokenError::NotFound(_))
        ));
    }

    #[tokio::test]
    async fn each_role_needs_its_scope() {
        let db = Database::open_in_memory().expect("db");
        let missing = create(&db, Role::Member, NewToken::default(), 1).await;
        assert!(matches!(missing, Err(TokenError::Scope(m)) if m.contains("--org")));
        let wide = NewToken {
            tenant: Some("default".into()),
            ..NewToken::default()
        };
        assert!(matches!(
            create(&db, Role::PlatformAdmin, wide, 1).await,
            Err(TokenError::Scope(_))
        ));
        let member = NewToken {
            organization: Some(crate::connections::DEFAULT_ORGANIZATION.into()),
            ..NewToken::default()
        };
        let (_, record) = create(&db, Role::Member, member, 1).await.expect("member");
        assert!(record.organization_id.is_some() && record.tenant_id.is_some());
    }
}
