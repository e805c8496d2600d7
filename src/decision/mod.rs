//! The decision: one function per question, shared by the webhook, `volguard review` and `volguard check`.
//! [`evaluate`] judges an object (CREATE) and [`evaluate_update`] an UPDATE against its old object (the
//! ratchet); [`mutate`] plans the repairs a policy asks for; [`exceptions`] applies an object's
//! `volguard.io/skip` annotation inside [`evaluate`].

mod evaluate;
pub mod exceptions;
pub mod mutate;

#[cfg(test)]
mod every_field;

pub(crate) use evaluate::{Evaluation, checked_rules, evaluate_update};
pub use evaluate::{Judged, RATCHET_NOTE, Verdict, evaluate, ratchet};
