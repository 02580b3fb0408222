//! A spinner on stderr for calls that take a while, for a person at a terminal
//! only: it appears after a moment and shows what the plugin says it is doing
//! ("read page 7 of the view ...").

use crate::state::LogObserver;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Calls shorter than this show nothing.
const SHOW_AFTER: Duration = Duration::from_millis(300);

#[derive(Clone)]
pub struct Progress {
    bar: Option<ProgressBar>,
    /// Set once finished; the thread that shows the spinner checks it under the
    /// same lock, so a finished spinner is never drawn again.
    done: Arc<Mutex<bool>>,
}

impl Progress {
    /// A spinner when stderr is a terminal; otherwise nothing is ever drawn.
    pub fn on_stderr() -> Progress {
        if !std::io::stderr().is_terminal() {
            return Progress::none();
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
        if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
            bar.set_style(style);
        }
        bar.set_message("working");
        let done = Arc::new(Mutex::new(false));
        let (shown, finished) = (bar.clone(), Arc::clone(&done));
        std::thread::spawn(move || {
            std::thread::sleep(SHOW_AFTER);
            let finished = finished.lock().unwrap_or_else(|e| e.into_inner());
            if !*finished {
                shown.set_draw_target(ProgressDrawTarget::stderr());
                shown.enable_steady_tick(Duration::from_millis(120));
            }
        });
        Progress {
            bar: Some(bar),
            done,
        }
    }

    /// Nothing drawn, ever (tests, non-interactive use).
    pub fn none() -> Progress {
        Progress {
            bar: None,
            done: Arc::default(),
        }
    }

    /// What the command is doing now.
    pub fn step(&self, what: impl Into<String>) {
        if let Some(bar) = &self.bar {
            bar.set_message(what.into());
        }
    }

    /// Passes the plugin's info lines to the spinner.
    pub fn observer(&self) -> Option<LogObserver> {
        let bar = self.bar.clone()?;
        Some(Arc::new(move |line: &str| {
            bar.set_message(line.to_string())
        }))
    }

    /// Gone for good: before a prompt, a printed message, or the result.
    pub fn finish(&self) {
        let mut done = self.done.lock().unwrap_or_else(|e| e.into_inner());
        *done = true;
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
