//! The Maxtera surface's core: Nigerian customers with a naira wallet in the shared ledger,
//! funded through OnePipe and spent on airtime, data and bills through the VTU aggregator.

pub mod accounts;
pub mod catalogue;
pub mod phones;
pub mod transactions;

pub const CURRENCY: &str = "NGN";
