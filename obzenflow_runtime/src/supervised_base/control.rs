//! The command plane: the per-state [`CommandPolicy`], the [`SupervisorConfig`], and the
//! loop's end of the bounded command channel.

use std::future::pending;

use tokio::sync::mpsc;

use super::base::Supervisor;

/// How the loop treats commands in a state, as returned by
/// [`Supervisor::command_policy`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandPolicy {
    /// A gate (for example "waiting for start"): the loop awaits a command, or the state's
    /// deadline, and does not call `dispatch_state`.
    Await,
    /// Running or draining: the loop races a command, the state's deadline and
    /// `wait_for_input`, in that priority; once input is ready it calls `dispatch_state`,
    /// which a command never cancels.
    Select,
    /// Terminal or failed: commands stay queued and unread; the loop waits for the deadline or
    /// `wait_for_input`, then calls `dispatch_state`.
    Ignore,
}

/// Configuration of a spawned supervisor.
///
/// ```
/// use obzenflow_runtime::supervised_base::SupervisorConfig;
///
/// let config = SupervisorConfig::default().with_command_capacity(4);
/// assert_eq!(config.command_capacity, 4);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SupervisorConfig {
    /// Capacity of the bounded command channel. A full channel makes
    /// [`SupervisorHandle::send`](super::SupervisorHandle::send) wait. Zero is raised to one,
    /// the smallest capacity a bounded channel has.
    pub command_capacity: usize,
}

impl SupervisorConfig {
    /// The default command capacity. Commands are rare (start, drain, cancel), so a small
    /// buffer is enough; senders wait rather than lose a command when it is full.
    pub const DEFAULT_COMMAND_CAPACITY: usize = 16;

    /// Sets [`command_capacity`](SupervisorConfig::command_capacity).
    pub fn with_command_capacity(mut self, command_capacity: usize) -> Self {
        self.command_capacity = command_capacity;
        self
    }

    /// The capacity actually used for the channel.
    pub(crate) fn effective_command_capacity(&self) -> usize {
        self.command_capacity.max(1)
    }
}

impl Default for SupervisorConfig {
    fn default() -> Self {
        Self {
            command_capacity: Self::DEFAULT_COMMAND_CAPACITY,
        }
    }
}

/// The loop's end of the command channel; `None` when there is no channel (`run`) or it was
/// found closed, so the loop never selects on a closed channel again.
pub(crate) struct Control<C> {
    receiver: Option<mpsc::Receiver<C>>,
}

impl<C: Send> Control<C> {
    /// A loop without a command channel: every state behaves as [`CommandPolicy::Ignore`].
    pub(crate) fn detached() -> Self {
        Self { receiver: None }
    }

    /// A loop reading commands from `receiver`.
    pub(crate) fn new(receiver: mpsc::Receiver<C>) -> Self {
        Self {
            receiver: Some(receiver),
        }
    }

    /// The policy in force for `state`: the supervisor's, or `Ignore` without a channel.
    pub(crate) fn policy<S>(&self, supervisor: &S, state: &S::State) -> CommandPolicy
    where
        S: Supervisor<Command = C>,
    {
        match self.receiver {
            Some(_) => supervisor.command_policy(state),
            None => CommandPolicy::Ignore,
        }
    }

    /// The next command, or `None` once every sender is gone.
    ///
    /// Cancel safety: cancel safe, like `mpsc::Receiver::recv`; a command is only taken from
    /// the channel when this resolves. Without a channel it never resolves.
    pub(crate) async fn recv(&mut self) -> Option<C> {
        match &mut self.receiver {
            Some(receiver) => receiver.recv().await,
            None => pending().await,
        }
    }

    /// Forgets the channel after it was found closed.
    pub(crate) fn close(&mut self) {
        self.receiver = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_capacity_is_raised_to_one() {
        let config = SupervisorConfig::default().with_command_capacity(0);
        assert_eq!(config.effective_command_capacity(), 1);
        assert_eq!(
            SupervisorConfig::default().effective_command_capacity(),
            SupervisorConfig::DEFAULT_COMMAND_CAPACITY
        );
    }

    #[tokio::test]
    async fn recv_reports_a_closed_channel_once_buffered_commands_are_read() {
        let (sender, receiver) = mpsc::channel(2);
        let mut control = Control::new(receiver);
        sender.send(1_u8).await.unwrap();
        drop(sender);
        assert_eq!(control.recv().await, Some(1));
        assert_eq!(control.recv().await, None);
        control.close();
        assert!(control.receiver.is_none());
    }
}
