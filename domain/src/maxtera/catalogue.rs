//! What a Maxtera customer can buy: airtime and data on four networks, TV subscriptions and
//! prepaid electricity, each under the aggregator's `serviceID`.

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};
use ultra_entity::maxtera_data_plans;

use crate::{DomainError, DomainResult};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Network {
    Mtn,
    Airtel,
    Glo,
    NineMobile,
}

impl Network {
    pub const ALL: [Self; 4] = [Self::Mtn, Self::Airtel, Self::Glo, Self::NineMobile];

    /// The seed's spelling, which references also carry (`MTN-20250130-001`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Mtn => "MTN",
            Self::Airtel => "AIRTEL",
            Self::Glo => "GLO",
            Self::NineMobile => "9MOBILE",
        }
    }

    /// Case-insensitive; `ETISALAT`, 9mobile's former name, is still common in clients.
    pub fn parse(field: &str, raw: &str) -> DomainResult<Self> {
        let upper = raw.trim().to_uppercase();
        let found = match upper.as_str() {
            "ETISALAT" => Some(Self::NineMobile),
            name => Self::ALL.into_iter().find(|n| n.name() == name),
        };
        found.ok_or_else(|| DomainError::validation(field, "Choose one of MTN, AIRTEL, GLO, 9MOBILE"))
    }

    pub fn airtime_service(self) -> &'static str {
        match self {
            Self::Mtn => "mtn",
            Self::Airtel => "airtel",
            Self::Glo => "glo",
            Self::NineMobile => "etisalat",
        }
    }

    pub fn data_service(self) -> &'static str {
        match self {
            Self::Mtn => "mtn-data",
            Self::Airtel => "airtel-data",
            Self::Glo => "glo-data",
            Self::NineMobile => "etisalat-data",
        }
    }
}

/// What a bill is paid against: a TV decoder's smartcard or a prepaid meter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BillKind {
    Tv,
    Electricity,
}

impl BillKind {
    /// The request field carrying the number the bill is paid against.
    pub fn number_field(self) -> &'static str {
        match self {
            Self::Tv => "smartcard_number",
            Self::Electricity => "meter_number",
        }
    }
}

pub struct BillService {
    /// The name a client sends in `service_type`.
    pub name: &'static str,
    pub service_id: &'static str,
    pub kind: BillKind,
}

/// TV providers and the prepaid-electricity distribution companies, by their common
/// abbreviations.
pub const BILL_SERVICES: &[BillService] = &[
    BillService { name: "DSTV", service_id: "dstv", kind: BillKind::Tv },
    BillService { name: "GOTV", service_id: "gotv", kind: BillKind::Tv },
    BillService { name: "STARTIMES", service_id: "startimes", kind: BillKind::Tv },
    BillService { name: "IKEDC", service_id: "ikeja-electric", kind: BillKind::Electricity },
    BillService { name: "EKEDC", service_id: "eko-electric", kind: BillKind::Electricity },
    BillService { name: "AEDC", service_id: "abuja-electric", kind: BillKind::Electricity },
    BillService { name: "IBEDC", service_id: "ibadan-electric", kind: BillKind::Electricity },
    BillService { name: "EEDC", service_id: "enugu-electric", kind: BillKind::Electricity },
    BillService { name: "PHED", service_id: "portharcourt-electric", kind: BillKind::Electricity },
    BillService { name: "KEDCO", service_id: "kano-electric", kind: BillKind::Electricity },
    BillService { name: "KAEDCO", service_id: "kaduna-electric", kind: BillKind::Electricity },
    BillService { name: "JED", service_id: "jos-electric", kind: BillKind::Electricity },
    BillService { name: "BEDC", service_id: "benin-electric", kind: BillKind::Electricity },
    BillService { name: "ABA", service_id: "aba-electric", kind: BillKind::Electricity },
    BillService { name: "YEDC", service_id: "yola-electric", kind: BillKind::Electricity },
];

pub fn bill_service(field: &str, raw: &str) -> DomainResult<&'static BillService> {
    let upper = raw.trim().to_uppercase();
    BILL_SERVICES.iter().find(|s| s.name == upper).ok_or_else(|| {
        let names: Vec<&str> = BILL_SERVICES.iter().map(|s| s.name).collect();
        DomainError::validation(field, format!("Choose one of {}", names.join(", ")))
    })
}

/// The active plans of `network`, cheapest first.
pub async fn plans(
    db: &impl ConnectionTrait,
    network: Network,
) -> DomainResult<Vec<maxtera_data_plans::Model>> {
    Ok(maxtera_data_plans::Entity::find()
        .filter(maxtera_data_plans::Column::Network.eq(network.name()))
        .filter(maxtera_data_plans::Column::Active.eq(true))
        .order_by_asc(maxtera_data_plans::Column::AmountMinor)
        .all(db)
        .await?)
}

/// The active plan called `plan` on `network`, matched without regard to case.
pub async fn plan(
    db: &impl ConnectionTrait,
    network: Network,
    plan: &str,
) -> DomainResult<maxtera_data_plans::Model> {
    let wanted = plan.trim().to_uppercase();
    let available = plans(db, network).await?;
    let names: Vec<String> = available.iter().map(|p| p.plan.clone()).collect();
    available.into_iter().find(|p| p.plan.to_uppercase() == wanted).ok_or_else(|| {
        DomainError::validation(
            "plan",
            format!("{} has no plan '{}'; available: {}", network.name(), plan.trim(), names.join(", ")),
        )
    })
}
