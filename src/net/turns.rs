//! Turns: requests that go out in an order decided before they are ready.
//!
//! A loop of loads starts its tables in an order (the list's, or slowest first), but each
//! table fetches its schema and reads the replica before it creates its query job, and those
//! finish in any order. So each item takes a [`Turn`] when it starts, in the loop's order, and
//! waits for it before the request that creates its job: the jobs are created in the start
//! order, while everything before and after runs side by side. A turn ends when it is dropped
//! (after its request was answered, or when its item failed, was skipped or was cancelled
//! before it), so a later item never waits for one that will not ask.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

/// Hands out [`Turn`]s in order; clones share the same line.
#[derive(Clone)]
pub struct Turns {
    line: Arc<Line>,
}

struct Line {
    /// The next turn to hand out, and the turns ended before their predecessors.
    taken: Mutex<(u64, BTreeSet<u64>)>,
    /// The turn whose holder may go now: every earlier turn has ended.
    now: watch::Sender<u64>,
}

/// One place in the line: [`Turn::wait`] returns when every earlier turn has ended. It ends
/// when dropped.
pub struct Turn {
    line: Arc<Line>,
    number: u64,
}

impl Default for Turns {
    fn default() -> Self {
        Self::new()
    }
}

impl Turns {
    /// An empty line.
    pub fn new() -> Self {
        Turns {
            line: Arc::new(Line {
                taken: Mutex::new((0, BTreeSet::new())),
                now: watch::Sender::new(0),
            }),
        }
    }

    /// The next place in the line.
    pub fn take(&self) -> Turn {
        let mut taken = self.line.taken.lock().unwrap_or_else(|e| e.into_inner());
        let number = taken.0;
        taken.0 += 1;
        Turn {
            line: self.line.clone(),
            number,
        }
    }
}

impl Turn {
    /// Waits until every earlier turn has ended.
    pub async fn wait(&self) {
        let mut now = self.line.now.subscribe();
        // The sender lives in `self.line`, so the channel cannot close while we wait.
        let _ = now.wait_for(|&n| n >= self.number).await;
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        let mut taken = self.line.taken.lock().unwrap_or_else(|e| e.into_inner());
        let ended = &mut taken.1;
        ended.insert(self.number);
        // Move past this turn and any later ones that ended before it.
        self.line.now.send_modify(|now| {
            while ended.remove(now) {
                *now += 1;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn turns_go_in_the_order_they_were_taken_whatever_order_they_ask_in() {
        let turns = Turns::new();
        let order = Arc::new(Mutex::new(Vec::new()));
        let tasks: Vec<_> = (0..8u64)
            .map(|i| {
                let (turn, order) = (turns.take(), order.clone());
                tokio::spawn(async move {
                    // The later turns are ready first.
                    tokio::time::sleep(Duration::from_millis(5 * (8 - i))).await;
                    turn.wait().await;
                    order.lock().unwrap().push(i);
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), (0..8).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn a_turn_dropped_without_asking_does_not_hold_back_the_later_ones() {
        let turns = Turns::new();
        let (first, second, third) = (turns.take(), turns.take(), turns.take());
        // The second ends (its item failed) before the first: the third still waits for the
        // first, then goes.
        drop(second);
        let waiting = tokio::spawn(async move { third.wait().await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(
            !waiting.is_finished(),
            "the third went before the first ended"
        );
        first.wait().await;
        drop(first);
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("the third waits for a dropped turn")
            .unwrap();
        // A turn taken after all of them ended goes at once.
        tokio::time::timeout(Duration::from_secs(5), turns.take().wait())
            .await
            .expect("a fresh turn goes at once");
    }

    #[tokio::test]
    async fn a_cancelled_wait_ends_its_turn_when_dropped() {
        let turns = Turns::new();
        let (first, second) = (turns.take(), turns.take());
        // The second's item is cancelled while it waits: its future and its turn are dropped.
        let cancelled = tokio::time::timeout(Duration::from_millis(10), second.wait()).await;
        assert!(cancelled.is_err());
        drop(second);
        drop(first);
        tokio::time::timeout(Duration::from_secs(5), turns.take().wait())
            .await
            .expect("the line moved past both");
    }
}
