//! What the sandbox's VTpass sells: the serviceIDs of §5 (Showmax aside) and a few plans for
//! each service that has them, named and priced like VTpass's own. Every network has a 1GB
//! data plan at ₦500, the one a wallet's "1GB" resolves to.

/// What a service sells, which decides the fields a purchase needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Airtime,
    Data,
    Tv,
    Electricity,
}

impl Kind {
    /// `content.transactions.type` of a purchase.
    pub fn label(self) -> &'static str {
        match self {
            Self::Airtime => "Airtime Recharge",
            Self::Data => "Data Services",
            Self::Tv => "TV Subscription",
            Self::Electricity => "Electricity Bill",
        }
    }

    /// VTpass's commission to the merchant, in hundredths of a percent.
    pub fn commission_basis_points(self) -> u64 {
        match self {
            Self::Airtime | Self::Data => 300,
            Self::Tv | Self::Electricity => 150,
        }
    }
}

pub struct Service {
    pub id: &'static str,
    /// `ServiceName` in the catalogue and `product_name` on a purchase.
    pub name: &'static str,
    pub kind: Kind,
    pub variations: &'static [Variation],
}

/// A plan, at a fixed price in whole naira.
pub struct Variation {
    pub code: &'static str,
    pub name: &'static str,
    pub naira: u64,
}

const fn plan(code: &'static str, name: &'static str, naira: u64) -> Variation {
    Variation { code, name, naira }
}

const fn service(
    id: &'static str,
    name: &'static str,
    kind: Kind,
    variations: &'static [Variation],
) -> Service {
    Service { id, name, kind, variations }
}

const MTN_DATA: &[Variation] = &[
    plan("mtn-10mb-100", "N100 100MB - 24 hrs", 100),
    plan("mtn-50mb-200", "N200 200MB - 2 days", 200),
    plan("mtn-1gb-500", "N500 1GB - 7 days", 500),
    plan("mtn-100mb-1000", "N1000 1.5GB - 30 days", 1000),
    plan("mtn-500mb-2000", "N2000 4.5GB - 30 days", 2000),
];
const AIRTEL_DATA: &[Variation] = &[
    plan("airt-100", "Airtel Data Bundle - 100 Naira - 75MB - 1Day", 100),
    plan("airt-300", "Airtel Data Bundle - 300 Naira - 350MB - 7 Days", 300),
    plan("airt-500", "Airtel Data Bundle - 500 Naira - 1GB - 7 Days", 500),
    plan("airt-1000", "Airtel Data Bundle - 1,000 Naira - 1.5GB - 30 Days", 1000),
    plan("airt-2000", "Airtel Data Bundle - 2,000 Naira - 4.5GB - 30 Days", 2000),
];
const GLO_DATA: &[Variation] = &[
    plan("glo100", "Glo Data N100 - 105MB - 2 day", 100),
    plan("glo200", "Glo Data N200 - 350MB - 4 days", 200),
    plan("glo500", "Glo Data N500 - 1GB - 14 days", 500),
    plan("glo1000", "Glo Data N1000 - 2.5GB - 30 days", 1000),
    plan("glo2000", "Glo Data N2000 - 5.8GB - 30 days", 2000),
];
const NINEMOBILE_DATA: &[Variation] = &[
    plan("eti-100", "9mobile Data - 100 Naira - 100MB - 1 day", 100),
    plan("eti-200", "9mobile Data - 200 Naira - 650MB - 1 day", 200),
    plan("eti-500", "9mobile Data - 500 Naira - 1GB - 7 days", 500),
    plan("eti-1000", "9mobile Data - 1000 Naira - 1.5GB - 30 days", 1000),
    plan("eti-2000", "9mobile Data - 2000 Naira - 4.5GB - 30 Days", 2000),
];
const DSTV: &[Variation] = &[
    plan("dstv-padi", "DStv Padi N4,400", 4400),
    plan("dstv-yanga", "DStv Yanga N6,000", 6000),
    plan("dstv-confam", "DStv Confam N11,000", 11000),
];
const GOTV: &[Variation] = &[
    plan("gotv-smallie", "GOtv Smallie - monthly N1,900", 1900),
    plan("gotv-jinja", "GOtv Jinja N3,900", 3900),
    plan("gotv-max", "GOtv Max N8,500", 8500),
];
const STARTIMES: &[Variation] = &[
    plan("nova", "Nova - 1,900 Naira - 1 Month", 1900),
    plan("basic", "Basic - 3,700 Naira - 1 Month", 3700),
];
/// A meter's type is its variation, with no fixed price.
const METER_TYPES: &[Variation] = &[plan("prepaid", "Prepaid", 0), plan("postpaid", "Postpaid", 0)];

pub const SERVICES: &[Service] = &[
    service("mtn", "MTN Airtime VTU", Kind::Airtime, &[]),
    service("airtel", "Airtel Airtime VTU", Kind::Airtime, &[]),
    service("glo", "GLO Airtime VTU", Kind::Airtime, &[]),
    service("etisalat", "9mobile Airtime VTU", Kind::Airtime, &[]),
    service("mtn-data", "MTN Data", Kind::Data, MTN_DATA),
    service("airtel-data", "Airtel Data", Kind::Data, AIRTEL_DATA),
    service("glo-data", "GLO Data", Kind::Data, GLO_DATA),
    service("etisalat-data", "9mobile Data", Kind::Data, NINEMOBILE_DATA),
    service("dstv", "DSTV Subscription", Kind::Tv, DSTV),
    service("gotv", "Gotv Payment", Kind::Tv, GOTV),
    service("startimes", "Startimes Subscription", Kind::Tv, STARTIMES),
    service("ikeja-electric", "Ikeja Electric Payment - IKEDC", Kind::Electricity, METER_TYPES),
    service("eko-electric", "Eko Electric Payment - EKEDC", Kind::Electricity, METER_TYPES),
    service("kano-electric", "Kano Electric - KEDCO", Kind::Electricity, METER_TYPES),
    service("portharcourt-electric", "Port Harcourt Electric - PHED", Kind::Electricity, METER_TYPES),
    service("jos-electric", "Jos Electric - JED", Kind::Electricity, METER_TYPES),
    service(
        "ibadan-electric",
        "IBEDC - Ibadan Electricity Distribution Company",
        Kind::Electricity,
        METER_TYPES,
    ),
    service("kaduna-electric", "Kaduna Electric - KAEDCO", Kind::Electricity, METER_TYPES),
    service(
        "abuja-electric",
        "Abuja Electricity Distribution Company - AEDC",
        Kind::Electricity,
        METER_TYPES,
    ),
    service("enugu-electric", "Enugu Electric - EEDC", Kind::Electricity, METER_TYPES),
    service("benin-electric", "Benin Electricity - BEDC", Kind::Electricity, METER_TYPES),
    service("aba-electric", "Aba Electric Payment - ABEDC", Kind::Electricity, METER_TYPES),
    service("yola-electric", "Yola Electric Disco Payment - YEDC", Kind::Electricity, METER_TYPES),
];

pub fn service_by_id(id: &str) -> Option<&'static Service> {
    SERVICES.iter().find(|service| service.id == id)
}

impl Service {
    pub fn variation(&self, code: &str) -> Option<&'static Variation> {
        self.variations.iter().find(|variation| variation.code == code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_network_sells_exactly_one_1gb_plan() {
        for id in ["mtn-data", "airtel-data", "glo-data", "etisalat-data"] {
            let service = service_by_id(id).unwrap();
            let plans: Vec<_> =
                service.variations.iter().filter(|plan| plan.name.contains(" 1GB ")).collect();
            assert_eq!(plans.len(), 1, "{id}");
            assert_eq!(plans[0].naira, 500, "{id}");
        }
    }
}
