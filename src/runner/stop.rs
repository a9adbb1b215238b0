//! Stopping a run early, on SIGTERM or SIGINT (issue 12, defect 7): the signal handler holds a
//! [`StopSender`]; the runner holds [`Stop`] and checks it before starting a step or an item,
//! and races every item (and every download task) against it, so work in flight is dropped:
//! its requests are abandoned and its temporary files removed as their handles drop.
//!
//! A watch channel rather than a flag: the work in flight must wake up when the signal comes,
//! not at its next check.

use tokio::sync::watch;

use crate::record::Interruption;

/// Asks a run to stop (the signal handler's end).
pub struct StopSender(watch::Sender<Option<Interruption>>);

/// Whether, and why, the run was asked to stop (the runner's end).
#[derive(Clone)]
pub struct Stop(watch::Receiver<Option<Interruption>>);

/// A connected pair.
pub fn channel() -> (StopSender, Stop) {
    let (tx, rx) = watch::channel(None);
    (StopSender(tx), Stop(rx))
}

impl StopSender {
    /// Asks the run to stop; the first reason stays.
    pub fn stop(&self, why: Interruption) {
        self.0.send_if_modified(|current| {
            if current.is_some() {
                return false;
            }
            *current = Some(why);
            true
        });
    }
}

impl Stop {
    /// A run nobody will stop.
    pub fn never() -> Self {
        channel().1
    }

    /// Why the run was asked to stop, if it was.
    pub fn requested(&self) -> Option<Interruption> {
        *self.0.borrow()
    }

    /// Resolves when the run is asked to stop (never, once nobody can ask any more).
    pub async fn stopped(&self) -> Interruption {
        let mut rx = self.0.clone();
        loop {
            if let Some(why) = *rx.borrow_and_update() {
                return why;
            }
            if rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_first_reason_stays_and_wakes_the_waiters() {
        let (tx, stop) = channel();
        assert_eq!(stop.requested(), None);
        let waiter = tokio::spawn({
            let stop = stop.clone();
            async move { stop.stopped().await }
        });
        tx.stop(Interruption::Terminate);
        tx.stop(Interruption::Interrupt);
        assert_eq!(waiter.await.unwrap(), Interruption::Terminate);
        assert_eq!(stop.requested(), Some(Interruption::Terminate));
    }
}
