//! Opaque, sortable identifiers: a short type prefix and a ULID, so that an id read in a log says
//! what it names and ids created later sort after earlier ones.

pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", ulid::Ulid::new().to_string().to_lowercase())
}
