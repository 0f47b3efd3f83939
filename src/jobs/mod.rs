//! Background work: the outbox worker, daily digests, reminders and trending. It runs inside
//! `convene serve` by default, or alone as `convene worker`.

pub mod digest;
pub mod reminders;
pub mod trending;
