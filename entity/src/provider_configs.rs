use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "lowercase")]
pub enum ProviderMode {
    /// The outcome is decided in-process; no HTTP.
    #[sea_orm(string_value = "simulation")]
    Simulation,
    /// The real HTTP adapter, against `baseUrl`.
    #[sea_orm(string_value = "live")]
    Live,
}

/// A provider's configuration: global (`scope = "global"`) or one merchant's (`scope` = their
/// user id), which wins over the global one.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "provider_configs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub provider: String,
    pub scope: String,
    pub enabled: bool,
    pub mode: ProviderMode,
    /// Settings that are not secret (base URL, merchant MSISDN, country…).
    pub settings: Json,
    /// The secret settings as a JSON object, sealed by `ultra_domain::secrets::SecretBox`.
    #[sea_orm(column_type = "Text", nullable)]
    pub sealed_secrets: Option<String>,
    pub updated_by: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
