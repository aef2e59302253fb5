//! Test numbers: the last two digits of the customer's MSISDN (MVola, Airtel, M-Pesa), of the
//! amount (Orange WebPay, which never learns the customer's number; OnePipe, in naira), of the
//! destination account (bank transfers) or of the smartcard, meter or phone served (VTpass)
//! choose what happens, so that a test picks a scenario through the same fields a real payment
//! carries.

/// What a collection does, chosen by its test digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// `00` and anything unlisted: the customer confirms.
    Confirms,
    /// `01`: declined for insufficient funds. A bank transfer's counterpart is the destination
    /// bank declining the account as closed.
    InsufficientFunds,
    /// `02`: the customer never answers; the provider expires the collection.
    NeverAnswers,
    /// `03`: the first initiate call fails with HTTP 500 before anything is recorded.
    FailsFirstInitiate,
    /// `04`: the first initiate call is recorded, then answers too late for the client.
    StallsFirstInitiate,
    /// `05`: succeeds, but the provider sends no notification: only polling tells.
    SilentSuccess,
    /// `09`: the first initiate call is recorded and answers too late for the client, the
    /// customer pays, and the provider sends no notification: the answer naming the
    /// transaction and the callback are both lost.
    StallsSilently,
    /// `06` or `07`, only where the provider tells refusals apart: declined for another reason
    /// than funds.
    Refused(Refusal),
}

/// Ways to decline besides insufficient funds. Only Daraja reports these under result codes of
/// their own, so only the M-Pesa simulators read `06` and `07`, and VTpass `06`; everywhere else
/// they mean `00`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// `06`: the other party will not take part: the customer cancels the STK prompt, a B2C
    /// recipient is not a registered M-Pesa customer, or a biller reverses a pending VTpass
    /// purchase.
    Counterparty,
    /// `07`: a secret does not match: the customer's PIN, or a B2C initiator's credential.
    Credentials,
}

impl Outcome {
    pub fn for_msisdn(msisdn: &str) -> Self {
        Self::from_digits(last_two_digits(msisdn))
    }

    /// The shared table plus the refusals `06` and `07`, for providers that tell them apart.
    pub fn with_refusals_for_msisdn(msisdn: &str) -> Self {
        match last_two_digits(msisdn) {
            Some(6) => Self::Refused(Refusal::Counterparty),
            Some(7) => Self::Refused(Refusal::Credentials),
            digits => Self::from_digits(digits),
        }
    }

    pub fn for_account_number(account_number: &str) -> Self {
        Self::from_digits(last_two_digits(account_number))
    }

    pub fn for_amount(amount: u64) -> Self {
        Self::from_digits(Some(amount % 100))
    }

    fn from_digits(digits: Option<u64>) -> Self {
        match digits {
            Some(1) => Self::InsufficientFunds,
            Some(2) => Self::NeverAnswers,
            Some(3) => Self::FailsFirstInitiate,
            Some(4) => Self::StallsFirstInitiate,
            Some(5) => Self::SilentSuccess,
            Some(9) => Self::StallsSilently,
            _ => Self::Confirms,
        }
    }

    /// What the customer finally does once prompted.
    pub fn answer(self) -> Answer {
        match self {
            Self::InsufficientFunds | Self::Refused(_) => Answer::Declines,
            Self::NeverAnswers => Answer::Ignores,
            Self::Confirms
            | Self::FailsFirstInitiate
            | Self::StallsFirstInitiate
            | Self::SilentSuccess
            | Self::StallsSilently => Answer::Pays,
        }
    }

    /// Whether the provider pushes the final state to the merchant.
    pub fn notifies(self) -> bool {
        !matches!(self, Self::SilentSuccess | Self::StallsSilently)
    }

    /// Whether the first initiate call is recorded, then answered too late for the client.
    pub fn stalls_first_initiate(self) -> bool {
        matches!(self, Self::StallsFirstInitiate | Self::StallsSilently)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    Pays,
    Declines,
    Ignores,
}

/// What an Airtel refund does, chosen by the original collection's MSISDN.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefundOutcome {
    /// Anything but `07` and `08`: settled at once.
    Immediate,
    /// `07`: the first request is refused; later ones settle at once.
    RefusedOnce,
    /// `08`: accepted in progress, settles after the customer delay.
    Slow,
}

impl RefundOutcome {
    pub fn for_msisdn(msisdn: &str) -> Self {
        match last_two_digits(msisdn) {
            Some(7) => Self::RefusedOnce,
            Some(8) => Self::Slow,
            _ => Self::Immediate,
        }
    }
}

fn last_two_digits(number: &str) -> Option<u64> {
    let digits = number.get(number.len().checked_sub(2)?..)?;
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn msisdn_digits_pick_the_outcome() {
        assert_eq!(Outcome::for_msisdn("0341234501"), Outcome::InsufficientFunds);
        assert_eq!(Outcome::for_msisdn("331234505"), Outcome::SilentSuccess);
        assert_eq!(Outcome::for_msisdn("0341234509"), Outcome::StallsSilently);
        assert_eq!(Outcome::for_msisdn("0341234599"), Outcome::Confirms);
        assert_eq!(Outcome::for_msisdn("7"), Outcome::Confirms);
    }

    #[test]
    fn only_providers_that_tell_refusals_apart_see_them() {
        assert_eq!(Outcome::for_msisdn("254708374106"), Outcome::Confirms);
        assert_eq!(
            Outcome::with_refusals_for_msisdn("254708374106"),
            Outcome::Refused(Refusal::Counterparty)
        );
        assert_eq!(Outcome::with_refusals_for_msisdn("254708374107"), Outcome::Refused(Refusal::Credentials));
        assert_eq!(Outcome::with_refusals_for_msisdn("254708374101"), Outcome::InsufficientFunds);
        assert_eq!(Outcome::for_account_number("0123456706"), Outcome::Confirms);
    }

    #[test]
    fn amount_digits_pick_the_outcome() {
        assert_eq!(Outcome::for_amount(10_002), Outcome::NeverAnswers);
        assert_eq!(Outcome::for_amount(10_000), Outcome::Confirms);
        assert_eq!(Outcome::for_amount(3), Outcome::FailsFirstInitiate);
    }

    #[test]
    fn refund_digits_pick_the_refund_outcome() {
        assert_eq!(RefundOutcome::for_msisdn("331234507"), RefundOutcome::RefusedOnce);
        assert_eq!(RefundOutcome::for_msisdn("331234508"), RefundOutcome::Slow);
        assert_eq!(RefundOutcome::for_msisdn("331234500"), RefundOutcome::Immediate);
    }
}
