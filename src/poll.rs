//! The poll schedule: how long to wait before asking again whether a gateway job is done.
//!
//! A gateway job finishes after some time, not after some number of polls, so the wait is a
//! fraction of the time spent polling so far: the next interval is a tenth of the elapsed
//! time, never less than `every`'s lower bound and never more than its upper bound. A job
//! that finishes after running for `t` is therefore noticed at most `t / 10` plus the lower
//! bound late (the interval before it was at most that), while a long job is asked about
//! less and less often: with `every = "500ms..1m"` a 30-minute job costs 82 job-status
//! requests, and 90 tables polled at the upper bound are 90 requests a minute, well inside the
//! gateway's 500 a minute. Doubling the interval (the schedule before) noticed a job up to one
//! whole interval late, and at an upper bound of 10 s a 30-minute job cost 185 requests.
//!
//! The schedule is plain arithmetic on durations, kept apart from the runner so it can be
//! tested (and its request counts computed for the README) without a clock.

use std::time::Duration;

/// The share of the elapsed time that the next interval is: a tenth.
pub const FRACTION: u32 = 10;

/// When to poll again, from `every = "MIN..MAX"` (a fixed `every = "2s"` has MIN = MAX).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// The shortest interval (`every`'s lower bound).
    pub min: Duration,
    /// The longest interval (`every`'s upper bound).
    pub max: Duration,
}

impl Schedule {
    /// A `poll` without `every`, and a `load` step's query job: 500 ms to 30 s.
    pub const DEFAULT: Schedule = Schedule {
        min: Duration::from_millis(500),
        max: Duration::from_secs(30),
    };

    /// A schedule with `every`'s bounds.
    pub fn new(min: Duration, max: Duration) -> Self {
        Schedule { min, max }
    }

    /// The wait before the next poll, after polling for `elapsed` (the time since the first
    /// poll was sent): `elapsed / 10`, clamped to `min..=max`.
    pub fn interval(&self, elapsed: Duration) -> Duration {
        // `max(min)` first: a range written upside down (`max < min`) still never waits less
        // than its lower bound or panics in `clamp`.
        (elapsed / FRACTION).min(self.max).max(self.min)
    }

    /// How many polls a job that finishes after `job_time` costs, when every answer is
    /// instant: the polls at 0, then after each interval, up to and including the first one
    /// sent at or after `job_time`. For the README's numbers and the tests; the runner never
    /// needs it.
    pub fn polls_for(&self, job_time: Duration) -> u64 {
        let mut t = Duration::ZERO;
        let mut polls = 1;
        while t < job_time {
            t += self.interval(t);
            polls += 1;
        }
        polls
    }

    /// When the poll that notices a job finishing after `job_time` is sent (instant answers).
    pub fn noticed_at(&self, job_time: Duration) -> Duration {
        let mut t = Duration::ZERO;
        while t < job_time {
            t += self.interval(t);
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }
    fn s(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn the_interval_is_a_tenth_of_the_elapsed_time_within_the_bounds() {
        let every = Schedule::new(ms(500), s(60));
        assert_eq!(every.interval(Duration::ZERO), ms(500));
        assert_eq!(every.interval(s(3)), ms(500));
        assert_eq!(every.interval(s(5)), ms(500));
        assert_eq!(every.interval(s(8)), ms(800));
        assert_eq!(every.interval(s(125)), ms(12_500));
        assert_eq!(every.interval(s(600)), s(60));
        assert_eq!(every.interval(s(7200)), s(60));
    }

    #[test]
    fn a_fixed_every_is_a_fixed_interval() {
        let every = Schedule::new(s(2), s(2));
        for t in [0, 1, 20, 3600] {
            assert_eq!(every.interval(s(t)), s(2));
        }
        // Bounds written the wrong way round never panic and never go below the lower one.
        assert_eq!(Schedule::new(s(5), s(1)).interval(s(100)), s(5));
    }

    #[test]
    fn a_finished_job_is_noticed_within_a_tenth_of_its_time_plus_the_minimum() {
        for every in [
            Schedule::new(ms(500), s(60)),
            Schedule::new(ms(500), s(10)),
            Schedule::new(ms(100), s(5)),
            Schedule::new(s(1), s(1)),
        ] {
            // Every job length from 0 to 40 minutes, in steps that land between polls.
            for job_ms in (0..2_400_000).step_by(997) {
                let job = ms(job_ms);
                let late = every.noticed_at(job) - job;
                assert!(
                    late <= job / FRACTION + every.min,
                    "{every:?}: a {job:?} job noticed {late:?} late"
                );
            }
        }
    }

    #[test]
    fn job_status_requests_stay_well_inside_the_gateway_limit() {
        // The README's numbers for the nightly example (`every = "500ms..1m"`).
        let every = Schedule::new(ms(500), s(60));
        assert_eq!(every.polls_for(s(2)), 5);
        assert_eq!(every.polls_for(s(10)), 19);
        assert_eq!(every.polls_for(s(30)), 30);
        assert_eq!(every.polls_for(s(30 * 60)), 82);
        // The schedule before (doubling from 500 ms to 10 s) spent 185 on a 30-minute job.
        // Once past ten minutes a table is polled once a minute: 90 tables, 90 a minute.
        assert_eq!(every.interval(s(600)), s(60));
        // The busiest minute of one table is its first: 37 polls, then fewer each minute.
        let polls_in_first_minute = every.polls_for(s(60)) - 1;
        assert_eq!(polls_in_first_minute, 37);
        let second_minute = every.polls_for(s(120)) - every.polls_for(s(60));
        assert!(second_minute < 10, "{second_minute}");
    }
}
