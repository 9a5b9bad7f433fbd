//! A progress bar for a running flow, driven by `FlowHandle::progress` on a tokio interval.

use std::io::{self, IsTerminal, Write};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use obzenflow_runtime::pipeline::FlowHandle;

/// How often the bar is redrawn.
pub const REDRAW_INTERVAL: Duration = Duration::from_millis(100);

/// A progress bar counting the records a source has produced out of `total`.
///
/// The bar is hidden when stdout is not a terminal (CI logs, pipes) or when `hidden` is set
/// (smoke mode), so it never litters captured output.
///
/// ```no_run
/// use obzenflow_examples::progress::FlowProgress;
///
/// let progress = FlowProgress::new("orders", 100_000, false);
/// ```
#[derive(Debug, Clone)]
pub struct FlowProgress {
    bar: ProgressBar,
    source: String,
}

impl FlowProgress {
    /// A bar following the source stage named `source`, which will produce `total` records.
    pub fn new(source: impl Into<String>, total: u64, hidden: bool) -> Self {
        let bar = if hidden || !io::stdout().is_terminal() {
            ProgressBar::hidden()
        } else {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            let template = "{spinner} {elapsed_precise} [{bar:36}] {human_pos}/{human_len} \
                            records ({per_sec}) {msg}";
            if let Ok(style) = ProgressStyle::with_template(template) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar
        };
        Self {
            bar,
            source: source.into(),
        }
    }

    /// Redraws the bar every [`REDRAW_INTERVAL`] until the flow reaches a terminal state.
    ///
    /// Cancel safety: cancel safe; it only reads the flow's progress.
    pub async fn follow(&self, handle: &FlowHandle) {
        let mut state = handle.state();
        let mut ticker = tokio::time::interval(REDRAW_INTERVAL);
        loop {
            tokio::select! {
                _ = ticker.tick() => self.update(handle),
                changed = state.changed() => {
                    if changed.is_err() || state.borrow().is_terminal() {
                        break;
                    }
                }
            }
        }
        self.update(handle);
        self.bar.finish_and_clear();
    }

    fn update(&self, handle: &FlowHandle) {
        let progress = handle.progress();
        let produced = progress
            .iter()
            .find(|stage| stage.name == self.source)
            .map_or(0, |stage| stage.counts.records_in);
        let errors: u64 = progress
            .iter()
            .map(|stage| stage.counts.records_errored)
            .sum();
        self.bar.set_position(produced);
        self.bar.set_message(format!("{errors} on the error lane"));
    }

    /// A writer for stdout that lifts the bar out of the way of each write, for sinks that
    /// print while the bar is drawn.
    pub fn stdout(&self) -> BarAwareStdout {
        BarAwareStdout {
            bar: self.bar.clone(),
        }
    }
}

/// Stdout, written with the progress bar suspended so lines and bar never interleave.
#[derive(Debug, Clone)]
pub struct BarAwareStdout {
    bar: ProgressBar,
}

impl Write for BarAwareStdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.bar.suspend(|| io::stdout().write(buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.bar.suspend(|| io::stdout().flush())
    }
}
