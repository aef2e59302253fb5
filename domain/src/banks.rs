//! The Kenyan banks Sellapay pays out to, by the codes its API document lists.

pub const KENYAN_BANKS: [(&str, &str); 10] = [
    ("001", "KCB Group Limited"),
    ("002", "Barclays Bank"),
    ("006", "Co-operative Bank"),
    ("007", "Standard Chartered"),
    ("008", "Citibank Kenya"),
    ("011", "Diamond Trust Bank"),
    ("014", "National Bank of Kenya"),
    ("015", "Equity Bank"),
    ("031", "Housing Finance"),
    ("032", "Consolidated Bank Kenya"),
];

pub fn name(code: &str) -> Option<&'static str> {
    KENYAN_BANKS.iter().find(|(known, _)| *known == code).map(|(_, name)| *name)
}
