//! Background work: the outbox worker (and, later, digests and reminders). It runs inside
//! `convene serve` by default, or alone as `convene worker`.

pub mod outbox;
pub mod reminders;
pub mod trending;
