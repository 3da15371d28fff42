//! Signed webhooks: each decided job announced to the tenant's receivers
//! (`[[tenants.NAME.webhooks]]`) as an HTTP POST of its JSON outcome, signed
//! the way Stripe signs (docs/webhooks.md).
//!
//! - [`queue`]: called by `import::finish_job` inside the job's
//!   transaction: picks the event (`job.finished`, `job.held`,
//!   `job.rejected`), renders the body once and stores one delivery per
//!   receiver that wants it, so the job and its deliveries commit together.
//! - [`sign`]: the `X-Userdrop-Signature` header. Pure.
//! - [`post`]: one POST over HTTP or HTTPS, with its timeout.
//! - [`sender`]: the daemon's task: POSTs due deliveries, retries with the
//!   mail's backoff and `give_up_after`, and gives up loudly.
//!
//! Nothing here ever decides a job's outcome or changes a stored body, and
//! nothing but [`post`] talks to the network.

pub mod post;
pub mod queue;
pub mod sender;
pub mod sign;
