//! Creating and finding users.

use chrono::Utc;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};
use ultra_entity::users::{self, Tier, UserRole};

use crate::{DomainError, DomainResult, ids};

pub struct NewUser {
    pub email: String,
    pub name: String,
    pub role: UserRole,
    pub tier: Tier,
    pub is_super_admin: bool,
    /// From [`crate::passwords::hash`], done by the caller outside any transaction: it is slow on purpose.
    pub password_hash: Option<String>,
    pub phone: Option<String>,
}

/// Lower-cases and checks an email address: one `@`, a non-empty local part, and a domain with
/// a dot. Deliverability is the mail server's business; this catches typing mistakes.
pub fn normalize_email(raw: &str) -> DomainResult<String> {
    let email = raw.trim().to_lowercase();
    let valid = email.len() <= 254
        && match email.split_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && !domain.contains('@')
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
                    && !email.chars().any(char::is_whitespace)
            }
            None => false,
        };
    if valid { Ok(email) } else { Err(DomainError::validation("email", "must be a valid email address")) }
}

pub async fn create(db: &impl ConnectionTrait, new: NewUser) -> DomainResult<users::Model> {
    let email = normalize_email(&new.email)?;
    let name = new.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(DomainError::validation("name", "must be 1 to 100 characters"));
    }
    if find_by_email(db, &email).await?.is_some() {
        return Err(DomainError::Conflict {
            code: "email_taken",
            message: format!("a user with email {email} already exists"),
        });
    }
    let now = Utc::now();
    let user = users::ActiveModel {
        id: Set(ids::new_id("usr")),
        email: Set(email),
        name: Set(name),
        role: Set(new.role),
        is_super_admin: Set(new.is_super_admin),
        tier: Set(new.tier),
        password_hash: Set(new.password_hash),
        phone: Set(new.phone),
        created_at: Set(now),
        updated_at: Set(now),
    };
    user.insert(db).await.map_err(|err| match err.sql_err() {
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_)) => DomainError::Conflict {
            code: "email_taken",
            message: "a user with this email already exists".to_owned(),
        },
        _ => err.into(),
    })
}

pub async fn find_by_email(db: &impl ConnectionTrait, email: &str) -> DomainResult<Option<users::Model>> {
    Ok(users::Entity::find().filter(users::Column::Email.eq(email.trim().to_lowercase())).one(db).await?)
}
