//! One stop signal shared by every long-running loop of the local stack (stream pollers, queue
//! pollers, the schedule, the HTTP server).
//!
//! Each loop checks it only between units of work, so a batch that was handed to a function is
//! finished and acknowledged (or left to be redelivered) before the loop ends: stopping never
//! loses what was acknowledged.

use tokio::sync::watch;

/// Sends the stop signal; dropping it also stops every [`Shutdown`].
#[derive(Debug)]
pub struct Stopper(watch::Sender<bool>);

/// A loop's view of the stop signal. Cloned into each loop.
#[derive(Debug, Clone)]
pub struct Shutdown(watch::Receiver<bool>);

/// A new stop signal.
pub fn channel() -> (Stopper, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (Stopper(tx), Shutdown(rx))
}

impl Stopper {
    /// Tells every loop to stop after its current unit of work.
    pub fn stop(&self) {
        // Only one value is ever sent, and receivers read the latest: nothing to lose.
        let _ = self.0.send(true);
    }
}

impl Shutdown {
    /// Whether the stop signal was given.
    pub fn is_stopping(&self) -> bool {
        *self.0.borrow()
    }

    /// Waits for the stop signal (or for the stopper to be dropped).
    pub async fn stopped(&mut self) {
        let _ = self.0.wait_for(|stop| *stop).await;
    }

    /// Sleeps for `duration` unless the stop signal comes first; returns whether to go on.
    pub async fn sleep(&mut self, duration: std::time::Duration) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(duration) => !self.is_stopping(),
            _ = self.stopped() => false,
        }
    }
}
