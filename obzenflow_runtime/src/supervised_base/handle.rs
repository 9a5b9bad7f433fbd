//! [`spawn_supervised`] and the [`SupervisorHandle`] it returns: commands in, state out, the
//! task to join.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::error::{SendError, TrySendError};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::Instrument;

use super::control::{Control, SupervisorConfig};
use super::driver::{drive, supervisor_name, DriverParts, Supervised};
use super::error::SupervisionError;

/// Counters a supervision loop keeps, readable while it runs and after it ended.
#[derive(Debug, Default)]
pub struct SupervisorStats {
    iterations: AtomicU64,
    transitions: AtomicU64,
}

impl SupervisorStats {
    /// How many times the loop has started waiting for its next input. An idle supervisor
    /// stays inside one iteration, so this shows whether a loop spins.
    pub fn iterations(&self) -> u64 {
        self.iterations.load(Ordering::Relaxed)
    }

    /// How many times the machine changed state (each one published on the state watch).
    pub fn transitions(&self) -> u64 {
        self.transitions.load(Ordering::Relaxed)
    }

    pub(crate) fn record_iteration(&self) {
        self.iterations.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn record_transition(&self) {
        self.transitions.fetch_add(1, Ordering::Relaxed);
    }
}

/// Spawns `supervisor` on the current Tokio runtime, starting in `initial_state`, and returns
/// its handle. The loop is the same one `run` drives, plus a bounded command channel of
/// `config.command_capacity` that the supervisor's
/// [`command_policy`](super::Supervisor::command_policy) reads from.
///
/// Works for every [`SelfSupervised`](super::SelfSupervised) and every
/// [`HandlerSupervised`](super::HandlerSupervised) type; `Flavor` is inferred.
///
/// # Panics
///
/// Like `tokio::spawn`, if called outside a Tokio runtime. The loop itself never panics.
///
/// # Example
///
/// The countdown of the [module example](crate::supervised_base), spawned and started; see
/// [`SupervisorHandle`] for more of the handle.
///
/// ```
#[doc = include_str!("doc_countdown.txt")]
#[doc = include_str!("doc_countdown_self.txt")]
/// let runtime = tokio::runtime::Builder::new_current_thread()
///     .enable_all()
///     .build()?;
/// runtime.block_on(async {
///     let handle = spawn_supervised(
///         Countdown { remaining: 3 },
///         Phase::Idle,
///         Vec::new(),
///         SupervisorConfig::default(),
///     );
///     handle.send(CountdownCommand::Start).await.expect("the countdown is waiting");
///     handle.join().await
/// })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn spawn_supervised<S, Flavor>(
    supervisor: S,
    initial_state: S::State,
    context: S::Context,
    config: SupervisorConfig,
) -> SupervisorHandle<S::Command, S::State>
where
    S: Supervised<Flavor> + 'static,
    Flavor: 'static,
{
    let name: Arc<str> = supervisor_name(&supervisor).into();
    let (command_sender, command_receiver) = mpsc::channel(config.effective_command_capacity());
    let (state_sender, state_receiver) = watch::channel(initial_state.clone());
    let stats = Arc::new(SupervisorStats::default());
    let parts = DriverParts {
        control: Control::new(command_receiver),
        state_sender,
        stats: Arc::clone(&stats),
    };
    // The task's spans nest under the spawner's (a flow's stages under its run span).
    let parent = tracing::Span::current();
    let task = tokio::spawn(drive(supervisor, initial_state, context, parts).instrument(parent));
    SupervisorHandle {
        name,
        commands: Some(command_sender),
        state: state_receiver,
        stats,
        task,
    }
}

/// The control surface of a spawned supervisor: a bounded command channel in, a `watch` of
/// its current state out, and its task to join.
///
/// Dropping the handle does not stop the supervisor; it closes the command channel (if no
/// clone of the sender exists), which the supervisor sees as
/// [`event_for_control_closed`](super::Supervisor::event_for_control_closed), and the task
/// runs on detached.
///
/// # Example
///
/// The countdown of the [module example](crate::supervised_base) (hidden here), watched
/// through its handle:
///
/// ```
#[doc = include_str!("doc_countdown.txt")]
#[doc = include_str!("doc_countdown_self.txt")]
/// use std::time::Duration;
///
/// let runtime = tokio::runtime::Builder::new_current_thread()
///     .enable_all()
///     .build()?;
/// runtime.block_on(async {
///     let handle = spawn_supervised(
///         Countdown { remaining: 3 },
///         Phase::Idle,
///         Vec::new(),
///         SupervisorConfig::default().with_command_capacity(1),
///     );
///     let states = handle.state();
///     assert_eq!(*states.borrow(), Phase::Idle);
///
///     // `Idle` awaits the start command; a failed send would hand the command back.
///     handle.send(CountdownCommand::Start).await.expect("the countdown is waiting");
///     let done = handle.wait_for_state(|phase| *phase == Phase::Done).await;
///     assert_eq!(done, Some(Phase::Done));
///
///     handle.join_with_deadline(Duration::from_secs(5)).await?;
///     assert_eq!(*states.borrow(), Phase::Done);
///     Ok::<(), SupervisionError>(())
/// })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "dropping the handle closes the command channel; `join()` for the outcome"]
pub struct SupervisorHandle<C, S> {
    name: Arc<str>,
    commands: Option<mpsc::Sender<C>>,
    state: watch::Receiver<S>,
    stats: Arc<SupervisorStats>,
    task: JoinHandle<Result<(), SupervisionError>>,
}

impl<C, S> SupervisorHandle<C, S> {
    /// The supervisor's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Sends a command, waiting while the channel is full. A supervisor that has ended, or a
    /// handle whose commands were closed, hands the command back in the error.
    ///
    /// A sent command is read when the supervisor is next in a state whose policy reads
    /// commands; commands still queued when it terminates are dropped with its receiver.
    ///
    /// Cancel safety: cancel safe in the sense of `mpsc::Sender::send`: if the future is
    /// dropped before it resolves, the command was not sent (and is dropped with the future).
    pub async fn send(&self, command: C) -> Result<(), SendError<C>> {
        match &self.commands {
            Some(sender) => sender.send(command).await,
            None => Err(SendError(command)),
        }
    }

    /// Sends a command if there is room now; a full or closed channel hands it back.
    pub fn try_send(&self, command: C) -> Result<(), TrySendError<C>> {
        match &self.commands {
            Some(sender) => sender.try_send(command),
            None => Err(TrySendError::Closed(command)),
        }
    }

    /// Drops this handle's command sender. Once no other sender exists, the supervisor sees
    /// the channel closed. Later sends through this handle fail and return the command.
    pub fn close_commands(&mut self) {
        self.commands = None;
    }

    /// A new receiver of the supervisor's state, published after every transition (and
    /// holding the initial state before the first). It keeps the last state after the
    /// supervisor ended.
    ///
    /// Like any `watch`, it holds the latest state only: an observer that runs less often than
    /// the supervisor moves sees the latest state, not each one in between.
    pub fn state(&self) -> watch::Receiver<S> {
        self.state.clone()
    }

    /// The state last published.
    pub fn current_state(&self) -> S
    where
        S: Clone,
    {
        self.state.borrow().clone()
    }

    /// Waits until the published state satisfies `predicate` and returns it, or `None` if the
    /// supervisor ended in a state that does not. The current state is checked first.
    ///
    /// Cancel safety: cancel safe; it only reads the watch.
    pub async fn wait_for_state(&self, predicate: impl FnMut(&S) -> bool) -> Option<S>
    where
        S: Clone,
    {
        let mut state = self.state.clone();
        let found = state.wait_for(predicate).await.ok()?;
        Some(found.clone())
    }

    /// The loop's counters.
    pub fn stats(&self) -> Arc<SupervisorStats> {
        Arc::clone(&self.stats)
    }

    /// Shorthand for `stats().iterations()`.
    pub fn iterations(&self) -> u64 {
        self.stats.iterations()
    }

    /// Whether the supervisor's task has ended.
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Aborts the supervisor's task at its next await point. No completion record is written;
    /// prefer a command the machine understands.
    pub fn abort(&self) {
        self.task.abort();
    }

    /// Waits for the supervisor to end and returns how it ended.
    ///
    /// The command sender stays open while waiting, so joining by itself never makes the
    /// supervisor see a closed channel; call [`close_commands`](Self::close_commands) first
    /// for that.
    ///
    /// Cancel safety: cancel safe in that nothing is lost from the supervisor, but dropping
    /// the future drops the handle: the task runs on detached and the channel closes.
    pub async fn join(self) -> Result<(), SupervisionError> {
        let Self {
            name,
            commands,
            task,
            ..
        } = self;
        let joined = task.await;
        drop(commands);
        flatten_join(&name, joined)
    }

    /// Like [`join`](Self::join), but gives up after `timeout`: the task is then aborted and
    /// [`SupervisionError::JoinTimeout`] returned, so a stuck supervisor cannot hang the caller.
    ///
    /// Cancel safety: as for [`join`](Self::join).
    pub async fn join_with_deadline(self, timeout: Duration) -> Result<(), SupervisionError> {
        let Self {
            name,
            commands,
            mut task,
            ..
        } = self;
        let joined = tokio::time::timeout(timeout, &mut task).await;
        drop(commands);
        match joined {
            Ok(joined) => flatten_join(&name, joined),
            Err(_elapsed) => {
                task.abort();
                Err(SupervisionError::JoinTimeout {
                    supervisor: name.to_string(),
                    timeout,
                })
            }
        }
    }
}

impl<C, S: std::fmt::Debug> std::fmt::Debug for SupervisorHandle<C, S> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("SupervisorHandle")
            .field("name", &self.name)
            .field("state", &*self.state.borrow())
            .field("commands_open", &self.commands.is_some())
            .field("finished", &self.task.is_finished())
            .finish_non_exhaustive()
    }
}

fn flatten_join(
    name: &str,
    joined: Result<Result<(), SupervisionError>, tokio::task::JoinError>,
) -> Result<(), SupervisionError> {
    joined.unwrap_or_else(|source| {
        Err(SupervisionError::Join {
            supervisor: name.to_owned(),
            source,
        })
    })
}
