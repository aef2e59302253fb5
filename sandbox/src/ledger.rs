//! Every collection the sandbox has recorded, per provider, in memory.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use crate::outcome::Outcome;

/// MVola, Airtel and Orange all give up on a customer who has not answered within ten minutes
/// (Orange's pay_token validity, §3; the same window is used for the other two).
pub const CUSTOMER_PATIENCE: Duration = Duration::from_secs(600);

/// Where a collection stands, in terms common to every provider; each names these its own way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Phase {
    /// The customer has not acted yet.
    AwaitingCustomer,
    /// The customer confirmed and the provider is settling (Orange's `PENDING`).
    Confirmed,
    Succeeded {
        receipt: String,
    },
    Failed,
    Expired,
}

impl Phase {
    pub fn is_final(&self) -> bool {
        matches!(self, Self::Succeeded { .. } | Self::Failed | Self::Expired)
    }

    pub fn receipt(&self) -> Option<&str> {
        match self {
            Self::Succeeded { receipt } => Some(receipt),
            _ => None,
        }
    }
}

pub struct Collection<D> {
    /// The merchant's own reference, unique per provider, except that Daraja accepts an STK
    /// push whose `AccountReference` an earlier push already carried.
    pub reference: String,
    /// The provider's handle for later queries, always unique per provider.
    pub handle: String,
    pub msisdn: Option<String>,
    pub amount: String,
    pub outcome: Outcome,
    pub phase: Phase,
    pub callbacks_sent: u32,
    /// What only this provider keeps.
    pub details: D,
    recorded_at: Instant,
}

impl<D> Collection<D> {
    pub fn new(
        reference: String,
        handle: String,
        msisdn: Option<String>,
        amount: String,
        outcome: Outcome,
        details: D,
    ) -> Self {
        Self {
            reference,
            handle,
            msisdn,
            amount,
            outcome,
            phase: Phase::AwaitingCustomer,
            callbacks_sent: 0,
            details,
            recorded_at: Instant::now(),
        }
    }

    pub fn recorded_at(&self) -> Instant {
        self.recorded_at
    }

    fn expire_if_overdue(&mut self) {
        if self.phase == Phase::AwaitingCustomer && self.recorded_at.elapsed() >= CUSTOMER_PATIENCE {
            self.phase = Phase::Expired;
        }
    }
}

pub struct Ledger<D> {
    collections: Vec<Collection<D>>,
    /// Counted apart from `collections` because a failed first call (test number `03`) names
    /// a reference that is never recorded.
    initiate_calls: HashMap<String, u32>,
}

impl<D> Default for Ledger<D> {
    fn default() -> Self {
        Self { collections: Vec::new(), initiate_calls: HashMap::new() }
    }
}

impl<D> Ledger<D> {
    /// Counts an initiate request naming `reference`; returns how many there have been.
    pub fn count_initiate(&mut self, reference: &str) -> u32 {
        let calls = self.initiate_calls.entry(reference.to_owned()).or_default();
        *calls += 1;
        *calls
    }

    pub fn initiate_calls(&self, reference: &str) -> u32 {
        self.initiate_calls.get(reference).copied().unwrap_or_default()
    }

    pub fn contains(&self, reference: &str) -> bool {
        self.collections.iter().any(|collection| collection.reference == reference)
    }

    pub fn record(&mut self, collection: Collection<D>) {
        self.collections.push(collection);
    }

    /// Expiry is applied whenever a collection is looked at, so no timer is needed per
    /// collection and a read never sees a state the provider would already have moved past.
    pub fn find(&mut self, matches: impl Fn(&Collection<D>) -> bool) -> Option<&mut Collection<D>> {
        let collection = self.collections.iter_mut().find(|collection| matches(collection))?;
        collection.expire_if_overdue();
        Some(collection)
    }

    pub fn by_reference(&mut self, reference: &str) -> Option<&mut Collection<D>> {
        self.find(|collection| collection.reference == reference)
    }

    pub fn by_handle(&mut self, handle: &str) -> Option<&mut Collection<D>> {
        self.find(|collection| collection.handle == handle)
    }

    /// Every collection with the number of initiate requests that named it.
    pub fn entries(&mut self) -> Vec<(&Collection<D>, u32)> {
        self.collections.iter_mut().for_each(Collection::expire_if_overdue);
        self.collections
            .iter()
            .map(|collection| (collection, self.initiate_calls(&collection.reference)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collection(reference: &str) -> Collection<()> {
        Collection::new(reference.to_owned(), "h".to_owned(), None, "100".to_owned(), Outcome::Confirms, ())
    }

    #[test]
    fn an_unanswered_collection_expires_after_the_customer_patience() {
        let mut ledger = Ledger::default();
        let Some(long_ago) = Instant::now().checked_sub(CUSTOMER_PATIENCE + Duration::from_secs(1)) else {
            return;
        };
        let mut overdue = collection("late");
        overdue.recorded_at = long_ago;
        ledger.record(overdue);
        ledger.record(collection("fresh"));
        assert_eq!(ledger.by_reference("late").map(|c| c.phase.clone()), Some(Phase::Expired));
        assert_eq!(ledger.by_reference("fresh").map(|c| c.phase.clone()), Some(Phase::AwaitingCustomer));
    }

    #[test]
    fn a_settled_collection_never_expires() {
        let mut ledger = Ledger::default();
        let Some(long_ago) = Instant::now().checked_sub(CUSTOMER_PATIENCE + Duration::from_secs(1)) else {
            return;
        };
        let mut paid = collection("paid");
        paid.recorded_at = long_ago;
        paid.phase = Phase::Succeeded { receipt: "r".to_owned() };
        ledger.record(paid);
        assert!(matches!(ledger.by_reference("paid").map(|c| &c.phase), Some(Phase::Succeeded { .. })));
    }

    #[test]
    fn initiate_calls_are_counted_per_reference() {
        let mut ledger = Ledger::<()>::default();
        assert_eq!(ledger.count_initiate("a"), 1);
        assert_eq!(ledger.count_initiate("a"), 2);
        assert_eq!(ledger.initiate_calls("b"), 0);
    }
}
