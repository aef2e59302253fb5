//! Social publishing: accounts connected over OAuth, the posts published through them and each
//! attempt's log. The platform calls themselves are the workers'; this is the state they move.

pub mod accounts;
pub mod content;
pub mod oauth_states;
pub mod posts;
