//! Pacing: per-route request budgets shared by every concurrent item of a run.
//!
//! Route patterns (`POST /dap/query/*/table/*/data`, `*` one segment) are parsed once when the
//! run starts, not split as strings on every request.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use crate::job::model::RateLimit;

/// A route pattern split into segments once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    method: String,
    /// `None` is `*` (any one segment).
    segments: Vec<Option<String>>,
}

impl Route {
    /// Parses `pattern` (`/a/*/b`) for `method`.
    pub fn new(method: &str, pattern: &str) -> Self {
        Route {
            method: method.to_owned(),
            segments: pattern
                .trim_end_matches('/')
                .split('/')
                .map(|s| (s != "*").then(|| s.to_owned()))
                .collect(),
        }
    }

    /// Whether a request matches.
    pub fn matches(&self, method: &str, path: &str) -> bool {
        if self.method != method {
            return false;
        }
        let mut n = 0;
        for (i, seg) in path.trim_end_matches('/').split('/').enumerate() {
            match self.segments.get(i) {
                Some(None) => {}
                Some(Some(s)) if s == seg => {}
                _ => return false,
            }
            n += 1;
        }
        n == self.segments.len()
    }
}

/// Per-route request budgets: at most `limit` requests in any window of `per`.
pub struct Pacer {
    routes: Vec<(Route, RateLimit, Mutex<VecDeque<Instant>>)>,
}

impl Pacer {
    /// Budgets for the routes that have one (`unlimited` routes are left out).
    pub fn new(limits: Vec<RateLimit>) -> Self {
        Pacer {
            routes: limits
                .into_iter()
                .filter(|l| l.limit.is_some())
                .map(|l| {
                    (
                        Route::new(&l.method, &l.pattern),
                        l,
                        Mutex::new(VecDeque::new()),
                    )
                })
                .collect(),
        }
    }

    /// Waits for a slot on the request's route (at once when it has no budget).
    pub async fn acquire(&self, method: &str, path: &str) {
        let Some((_, limit, window)) = self.routes.iter().find(|(r, _, _)| r.matches(method, path))
        else {
            return;
        };
        let n = limit.limit.unwrap_or(u32::MAX) as usize;
        loop {
            let wait: Duration = {
                let mut w = window.lock().await;
                let now = Instant::now();
                while w
                    .front()
                    .is_some_and(|t| now.duration_since(*t) >= limit.per)
                {
                    w.pop_front();
                }
                if w.len() < n {
                    w.push_back(now);
                    return;
                }
                // A fiftieth of the window more (1.2 s a minute): requests do not reach the
                // gateway after equal delays, and one that overtakes the slot it replaces is a 429.
                limit.per - now.duration_since(w[0]) + limit.per / 50
            };
            tracing::info!(route = %format!("{method} {}", limit.pattern), "pacing: waiting {:?} to stay within {} requests per {:?}", wait, n, limit.per);
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn routes_match_by_segment() {
        let r = Route::new("POST", "/dap/query/*/table/*/data");
        assert!(r.matches("POST", "/dap/query/canvas/table/users/data"));
        assert!(!r.matches("GET", "/dap/query/canvas/table/users/data"));
        let t = Route::new("GET", "/dap/query/*/table");
        assert!(!t.matches("GET", "/dap/query/canvas/table/users/schema"));
        assert!(!t.matches("GET", "/dap/query/canvas"));
        assert!(Route::new("GET", "/dap/job/*").matches("GET", "/dap/job/abc"));
    }

    #[tokio::test]
    async fn pacer_budget_is_shared_by_concurrent_callers() {
        let pacer = Arc::new(Pacer::new(vec![RateLimit {
            method: "POST".into(),
            pattern: "/dap/query/*/table/*/data".into(),
            limit: Some(2),
            per: Duration::from_millis(150),
        }]));
        let started = Instant::now();
        let tasks: Vec<_> = (0..6)
            .map(|i| {
                let pacer = pacer.clone();
                tokio::spawn(async move {
                    pacer
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
        pacer.acquire("GET", "/dap/job/x").await;
        assert!(other.elapsed() < Duration::from_millis(50));
    }

    #[tokio::test]
    async fn issue_7_pacer_waits_past_the_window() {
        // One request per 500 ms: the next one waits the window and a fiftieth more, so it
        // cannot overtake the slot it replaces on its way to the gateway.
        let pacer = Pacer::new(vec![RateLimit {
            method: "POST".into(),
            pattern: "/dap/query/*/table/*/data".into(),
            limit: Some(1),
            per: Duration::from_millis(500),
        }]);
        let started = Instant::now();
        pacer.acquire("POST", "/dap/query/c/table/a/data").await;
        pacer.acquire("POST", "/dap/query/c/table/b/data").await;
        assert!(
            started.elapsed() >= Duration::from_millis(510),
            "{:?}",
            started.elapsed()
        );
    }
}
