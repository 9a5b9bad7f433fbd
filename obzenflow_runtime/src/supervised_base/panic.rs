//! Catching panics of supervisor code, so that a panic becomes a failure event instead of
//! tearing down the task.
//!
//! A small hand-written wrapper around `poll` is enough: every future the loop guards is a
//! boxed (`Unpin`) future from an `async_trait` method, so no pinning projections are needed.

use std::any::Any;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context, Poll};

/// A panic caught in supervisor code, with its message.
///
/// It appears as the source of [`SupervisionError`](super::SupervisionError) variants and as
/// the cause of the [`SupervisorFailure`](super::SupervisorFailure) given to
/// `event_for_action_error`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("panicked: {message}")]
pub struct PanicError {
    message: String,
}

impl PanicError {
    /// The panic message, or a placeholder when the payload was neither a `&str` nor a `String`.
    pub fn message(&self) -> &str {
        &self.message
    }

    fn from_payload(payload: Box<dyn Any + Send>) -> Self {
        let message = match payload.downcast::<String>() {
            Ok(message) => *message,
            Err(payload) => match payload.downcast::<&'static str>() {
                Ok(message) => (*message).to_owned(),
                Err(_) => "panic payload is not a string".to_owned(),
            },
        };
        Self { message }
    }
}

/// Runs `operation`, turning a panic into a [`PanicError`].
///
/// Unwind safety is asserted: after a panic the caller only feeds a failure event to the
/// machine, whose state changes only when a transition completes.
pub(crate) fn catch_sync<T>(operation: impl FnOnce() -> T) -> Result<T, PanicError> {
    catch_unwind(AssertUnwindSafe(operation)).map_err(PanicError::from_payload)
}

/// A future that resolves to `Err(PanicError)` if polling `future` panics.
///
/// After a panic the inner future is never polled again; the caller drops the wrapper.
pub(crate) struct CatchUnwind<F> {
    future: F,
}

impl<F: Future + Unpin> CatchUnwind<F> {
    /// Guards `future`.
    pub(crate) fn new(future: F) -> Self {
        Self { future }
    }
}

impl<F: Future + Unpin> Future for CatchUnwind<F> {
    type Output = Result<F::Output, PanicError>;

    fn poll(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Self::Output> {
        let future = &mut self.future;
        match catch_unwind(AssertUnwindSafe(|| Pin::new(future).poll(context))) {
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(payload) => Poll::Ready(Err(PanicError::from_payload(payload))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use tokio::sync::Notify;

    #[tokio::test]
    async fn passes_output_through() {
        let output = CatchUnwind::new(Box::pin(async { 7 })).await;
        assert_eq!(output, Ok(7));
    }

    #[tokio::test]
    async fn catches_str_and_string_payloads() {
        let caught = CatchUnwind::new(Box::pin(async { panic!("static message") })).await;
        assert_eq!(caught.unwrap_err().message(), "static message");
        let code = 42;
        let caught = CatchUnwind::new(Box::pin(async move {
            panic!("formatted {code}");
        }))
        .await;
        let error: PanicError = caught.unwrap_err();
        assert_eq!(error.message(), "formatted 42");
        assert_eq!(error.to_string(), "panicked: formatted 42");
    }

    #[tokio::test]
    async fn catches_a_panic_after_a_pending_poll() {
        let notify = Arc::new(Notify::new());
        let waiter = Arc::clone(&notify);
        let (started_sender, started) = tokio::sync::oneshot::channel();
        let guarded = tokio::spawn(CatchUnwind::new(Box::pin(async move {
            let _ = started_sender.send(());
            waiter.notified().await;
            panic!("after waking");
        })));
        // On the current-thread runtime the task runs to its first pending poll before this
        // test resumes, so the panic happens on a later poll.
        started.await.expect("the task starts");
        notify.notify_one();
        let caught = guarded.await.expect("the panic is caught inside the task");
        assert_eq!(caught.unwrap_err().message(), "after waking");
    }

    #[test]
    fn catch_sync_reports_non_string_payloads() {
        assert_eq!(catch_sync(|| 3), Ok(3));
        let caught = catch_sync(|| std::panic::panic_any(17_u32));
        assert_eq!(
            caught.unwrap_err().message(),
            "panic payload is not a string"
        );
    }
}
