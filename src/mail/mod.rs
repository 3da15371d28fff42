//! Mail: the failure reports, success summaries and invitations of docs/behaviour.md#mail,
//! and their durable delivery.
//!
//! - [`compose`]: a job's outcome → a message (subject, plain-text body, the
//!   failed-rows attachment); an invitation → a message, filled from its
//!   [`crate::template`]. Pure.
//! - [`queue`]: called by `import::finish_job` inside the job's transaction:
//!   decides what to send for a finished job and writes it, fully rendered,
//!   to the outbox, so that the job's end and its mail commit together.
//! - [`transport`]: hands one rendered message to SMTP (`starttls`, `tls`,
//!   `none`) or writes it as an `.eml` file.
//! - [`sender`]: drains the outbox with exponential backoff across
//!   restarts, marks each message sent as soon as it is accepted, and gives
//!   up loudly after `give_up_after`. [`sender::run`] is the daemon's task;
//!   [`sender::deliver`] one pass (`userdrop mail flush`).
//!
//! Nothing here ever decides a job's outcome, and nothing but [`sender`]
//! talks to the network.

pub mod compose;
pub mod queue;
pub mod sender;
pub mod transport;
