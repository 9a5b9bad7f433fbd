//! `wait_any`: await the first of several futures, for fan-in waits over many journals.
//!
//! Each inner future registers its own waker when polled, so waiting on many upstreams costs
//! nothing while idle; the outer future is woken by whichever inner one becomes ready.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// A boxed future that borrows for `'a`.
pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Resolves with the output and index of the first future that completes.
///
/// Cancel safety: cancel safe if every inner future is.
pub(crate) fn wait_any<T>(futures: Vec<BoxFuture<'_, T>>) -> WaitAny<'_, T> {
    WaitAny { futures }
}

/// The future returned by [`wait_any`].
pub(crate) struct WaitAny<'a, T> {
    futures: Vec<BoxFuture<'a, T>>,
}

impl<T> Future for WaitAny<'_, T> {
    type Output = (usize, T);

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        for (index, future) in self.futures.iter_mut().enumerate() {
            if let Poll::Ready(output) = future.as_mut().poll(cx) {
                return Poll::Ready((index, output));
            }
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use tokio::sync::Notify;

    #[tokio::test(start_paused = true)]
    async fn resolves_with_the_first_ready_future() {
        let first = Arc::new(Notify::new());
        let second = Arc::new(Notify::new());
        let waiting = {
            let (first, second) = (first.clone(), second.clone());
            tokio::spawn(async move {
                let futures: Vec<BoxFuture<'_, &str>> = vec![
                    Box::pin(async move {
                        first.notified().await;
                        "first"
                    }),
                    Box::pin(async move {
                        second.notified().await;
                        "second"
                    }),
                ];
                wait_any(futures).await
            })
        };
        second.notify_one();
        assert_eq!(waiting.await.unwrap(), (1, "second"));
    }
}
