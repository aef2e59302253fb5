//! End-to-end tests: each starts its own sandbox on a free port and drives it over HTTP as an
//! adapter would, with a small listener standing in for the merchant's callback endpoint.

mod airtel;
mod bank;
mod common;
mod inspect;
mod meta;
mod mpesa;
mod mvola;
mod onepipe;
mod orange;
mod tiktok;
mod vtpass;
