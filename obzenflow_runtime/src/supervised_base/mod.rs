//! Supervision: the one run loop every supervisor is driven by.

mod base;
mod control;
mod driver;
mod error;
mod handle;
mod handler_supervised;
mod panic;
mod self_supervised;

pub use base::{EventLoopDirective, Supervisor};
pub use control::{CommandPolicy, SupervisorConfig};
pub use driver::Supervised;
pub use error::SupervisionError;
pub use handle::{spawn_supervised, SupervisorHandle, SupervisorStats};
pub use handler_supervised::{HandlerSupervised, HandlerSupervisedExt};
pub use obzenflow_fsm::BoxError;
pub use panic::PanicError;
pub use self_supervised::{SelfSupervised, SelfSupervisedExt};
