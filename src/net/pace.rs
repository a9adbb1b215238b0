//! Pacing: per-route request budgets shared by every concurrent item of a run.
//!
//! Route patterns (`POST /dap/query/*/table/*/data`, `*` one segment) come parsed from the job's
//! run starts, not split as strings on every request.
//!
//! A slot is counted from when it is taken until the response arrives, then from the response's
//! time: the gateway counts a request when it receives it, somewhere in between, and a request
//! slowed on its way (a new connection on a busy machine) would otherwise still be inside the
//! gateway's window when the pacer thinks it has left.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::RateLimit;
#[cfg(test)]
use super::route::Route;

/// A route's slots in its current window: (slot id, time it counts from).
type Window = Mutex<Vec<(u64, Instant)>>;

/// Per-route request budgets: at most `limit` requests in any window of `per`. Waiters get
/// their slots in the order they asked (a fair queue per route), and a loop of loads asks for
/// its job creations in its start order ([`super::Turns`], see [`crate::load::history`]).
pub struct Pacer {
    routes: Vec<(RateLimit, Window, tokio::sync::Mutex<()>)>,
    ids: AtomicU64,
}

/// A taken slot: when dropped (the response arrived, or the attempt failed) its time becomes
/// the drop's time.
pub struct Slot<'a> {
    taken: Option<(&'a Window, u64)>,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        if let Some((window, id)) = self.taken {
            let mut w = window.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(entry) = w.iter_mut().find(|(i, _)| *i == id) {
                entry.1 = Instant::now();
            }
        }
    }
}

impl Pacer {
    /// Budgets for the routes that have one (`unlimited` routes are left out).
    pub fn new(limits: Vec<RateLimit>) -> Self {
        Pacer {
            routes: limits
                .into_iter()
                .filter(|l| l.limit.is_some())
                .map(|l| (l, Mutex::new(Vec::new()), tokio::sync::Mutex::new(())))
                .collect(),
            ids: AtomicU64::new(0),
        }
    }

    /// Waits for a slot on the request's route (at once when it has no budget). Keep the slot
    /// until the response arrives.
    pub async fn acquire(&self, method: &str, path: &str) -> Slot<'_> {
        let Some((limit, window, queue)) = self
            .routes
            .iter()
            .find(|(l, ..)| l.route.matches(method, path))
        else {
            return Slot { taken: None };
        };
        // One waiter at a time, first come first served (tokio's mutex is fair): without it,
        // every waiter wakes when a slot frees and any of them may take it.
        let _turn = queue.lock().await;
        let n = limit.limit.unwrap_or(u32::MAX) as usize;
        loop {
            let wait: Duration = {
                let mut w = window.lock().unwrap_or_else(|e| e.into_inner());
                let now = Instant::now();
                w.retain(|(_, t)| now.duration_since(*t) < limit.per);
                if w.len() < n {
                    let id = self.ids.fetch_add(1, Ordering::Relaxed);
                    w.push((id, now));
                    return Slot {
                        taken: Some((window, id)),
                    };
                }
                let oldest = w.iter().map(|(_, t)| *t).min().unwrap_or(now);
                // A fiftieth of the window more (1.2 s a minute): requests do not reach the
                // gateway after equal delays, and one that overtakes the slot it replaces is a 429.
                limit.per.saturating_sub(now.duration_since(oldest)) + limit.per / 50
            };
            tracing::info!(route = %limit.route, "pacing: waiting {:?} to stay within {} requests per {:?}", wait, n, limit.per);
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test]
    async fn pacer_budget_is_shared_by_concurrent_callers() {
        let pacer = Arc::new(Pacer::new(vec![RateLimit {
            route: Route::new("POST", "/dap/query/*/table/*/data"),
            limit: Some(2),
            per: Duration::from_millis(150),
        }]));
        let started = Instant::now();
        let tasks: Vec<_> = (0..6)
            .map(|i| {
                let pacer = pacer.clone();
                tokio::spawn(async move {
                    let _slot = pacer
                        .acquire("POST", &format!("/dap/query/canvas/table/t{i}/data"))
                        .await;
                    started.elapsed()
                })
            })
            .collect();
        let mut times = Vec::new();
        for t in tasks {
            times.push(t.await.unwrap());
        }
        times.sort();
        // Two per window: the 3rd and 4th wait one window, the 5th and 6th two.
        assert!(times[1] < Duration::from_millis(100), "{times:?}");
        assert!(times[2] >= Duration::from_millis(150), "{times:?}");
        assert!(times[4] >= Duration::from_millis(300), "{times:?}");
        // Other routes are not held back.
        let other = Instant::now();
        let _slot = pacer.acquire("GET", "/dap/job/x").await;
        assert!(other.elapsed() < Duration::from_millis(50));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn waiters_get_their_slots_in_the_order_they_asked() {
        let pacer = Arc::new(Pacer::new(vec![RateLimit {
            route: Route::new("POST", "/r/*"),
            // One at a time, so that a slot is taken well after the one before it.
            limit: Some(1),
            per: Duration::from_millis(10),
        }]));
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for i in 0..12 {
            let (pacer, order) = (pacer.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                let slot = pacer.acquire("POST", &format!("/r/{i}")).await;
                order.lock().unwrap().push(i);
                drop(slot);
            }));
            // Each asks before the next one starts.
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        for t in tasks {
            t.await.unwrap();
        }
        let order = order.lock().unwrap().clone();
        assert_eq!(order, (0..12).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn a_slot_counts_from_its_response() {
        let pacer = Pacer::new(vec![RateLimit {
            route: Route::new("GET", "/r"),
            limit: Some(1),
            per: Duration::from_millis(200),
        }]);
        let slot = pacer.acquire("GET", "/r").await;
        // The response takes 150 ms: the next slot is a window after it, not after the send.
        tokio::time::sleep(Duration::from_millis(150)).await;
        let answered = Instant::now();
        drop(slot);
        let _next = pacer.acquire("GET", "/r").await;
        assert!(
            answered.elapsed() >= Duration::from_millis(200),
            "{:?}",
            answered.elapsed()
        );
    }

    #[tokio::test]
    async fn pacer_waits_past_the_window() {
        // One request per 500 ms: the next one waits the window and a fiftieth more, so it
        // cannot overtake the slot it replaces on its way to the gateway.
        let pacer = Pacer::new(vec![RateLimit {
            route: Route::new("POST", "/dap/query/*/table/*/data"),
            limit: Some(1),
            per: Duration::from_millis(500),
        }]);
        let started = Instant::now();
        drop(pacer.acquire("POST", "/dap/query/c/table/a/data").await);
        drop(pacer.acquire("POST", "/dap/query/c/table/b/data").await);
        assert!(
            started.elapsed() >= Duration::from_millis(510),
            "{:?}",
            started.elapsed()
        );
    }
}
