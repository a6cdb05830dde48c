//! When an agent aggregates trust and publishes its signed report.
//!
//! A report carries the agent's own opinions; an aggregation weighs the
//! reports it holds. Neither is worth redoing when nothing it depends on
//! moved: an idle mesh of a hundred agents used to publish and verify ten
//! unchanged reports a second (PERFORMANCE.md, "A quiet idle mesh"). So
//! each is redone at most every `report_interval`, and then only when its
//! inputs moved (or, for the report, a new peer may lack it), and in any
//! case every `report_refresh`, so a report never ages out of anyone's
//! aggregation and a peer that missed one hears the next. A significant
//! score change still publishes within half a second.

use std::time::Duration;

use crate::time::Millis;

/// A significant change publishes no sooner than this after the last
/// report.
const SOON: Duration = Duration::from_millis(500);

/// What the schedule asks for on a tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Due {
    pub aggregate: bool,
    pub publish: bool,
}

/// The state behind the decision.
#[derive(Debug, Clone)]
pub(crate) struct ReportSchedule {
    last_report: Millis,
    last_aggregation: Millis,
    /// A score moved by at least the significant change.
    significant: bool,
    /// Our opinions moved (evidence), or a new peer may lack our report.
    opinions_moved: bool,
    /// What an aggregation weighs moved: evidence, or an accepted report.
    inputs_moved: bool,
}

impl ReportSchedule {
    /// Nothing published or aggregated yet, as of `now`.
    pub fn new(now: Millis) -> Self {
        ReportSchedule {
            last_report: now,
            last_aggregation: now,
            significant: false,
            opinions_moved: false,
            inputs_moved: false,
        }
    }

    /// Evidence was recorded; `significant` if it moved a score by the
    /// significant change or more.
    pub fn evidence(&mut self, significant: bool) {
        self.opinions_moved = true;
        self.inputs_moved = true;
        self.significant |= significant;
    }

    /// A peer's report was accepted.
    pub fn report_accepted(&mut self) {
        self.inputs_moved = true;
    }

    /// A session was established: the peer may hold no report of ours.
    pub fn session_established(&mut self) {
        self.opinions_moved = true;
    }

    /// What is due at `now`, given the interval and the refresh period.
    /// A publication due is taken as done; an aggregation only once
    /// [`ReportSchedule::aggregation_started`] says one went out (one may
    /// be out already, or lost: it stays due).
    pub fn tick(&mut self, now: Millis, interval: Duration, refresh: Duration) -> Due {
        let since_report = now.since(self.last_report);
        let publish = (self.significant && since_report >= SOON)
            || (since_report >= interval && (self.opinions_moved || since_report >= refresh));
        let since_aggregation = now.since(self.last_aggregation);
        // A significant change is aggregated with its report, so scores
        // here move as soon as the report tells others they moved.
        let aggregate = (publish && self.significant)
            || (since_aggregation >= interval
                && (self.inputs_moved || since_aggregation >= refresh));
        if publish {
            self.published(now);
        }
        Due { aggregate, publish }
    }

    /// An aggregation was handed out at `now`: it weighs everything that
    /// moved until then.
    pub fn aggregation_started(&mut self, now: Millis) {
        self.last_aggregation = now;
        self.inputs_moved = false;
    }

    /// A report went out at `now` (on the schedule or on command).
    pub fn published(&mut self, now: Millis) {
        self.last_report = now;
        self.significant = false;
        self.opinions_moved = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INTERVAL: Duration = Duration::from_secs(10);
    const REFRESH: Duration = Duration::from_secs(300);

    fn at(secs: f64) -> Millis {
        Millis((secs * 1000.0) as u64)
    }

    /// Run ticks every 250 ms from `from` to `to` seconds; the times (s)
    /// at which each was due.
    fn run(s: &mut ReportSchedule, from: f64, to: f64) -> (Vec<f64>, Vec<f64>) {
        run_with(s, from, to, |_| {})
    }

    /// [`run`], calling `before` ahead of each tick.
    fn run_with(
        s: &mut ReportSchedule,
        from: f64,
        to: f64,
        mut before: impl FnMut(&mut ReportSchedule),
    ) -> (Vec<f64>, Vec<f64>) {
        let (mut published, mut aggregated) = (vec![], vec![]);
        let mut t = from;
        while t <= to {
            before(s);
            let due = s.tick(at(t), INTERVAL, REFRESH);
            if due.publish {
                published.push(t);
            }
            if due.aggregate {
                s.aggregation_started(at(t));
                aggregated.push(t);
            }
            t += 0.25;
        }
        (published, aggregated)
    }

    #[test]
    fn an_idle_agent_publishes_and_aggregates_only_on_the_refresh() {
        let mut s = ReportSchedule::new(at(0.0));
        let (published, aggregated) = run(&mut s, 0.0, 700.0);
        assert_eq!(published, vec![300.0, 600.0]);
        assert_eq!(aggregated, vec![300.0, 600.0]);
    }

    #[test]
    fn evidence_publishes_at_the_next_interval_once() {
        let mut s = ReportSchedule::new(at(0.0));
        run(&mut s, 0.0, 3.0);
        s.evidence(false);
        let (published, aggregated) = run(&mut s, 3.25, 60.0);
        assert_eq!(published, vec![10.0]);
        assert_eq!(aggregated, vec![10.0]);
    }

    #[test]
    fn a_significant_change_publishes_within_half_a_second_of_the_last_report() {
        let mut s = ReportSchedule::new(at(0.0));
        run(&mut s, 0.0, 3.0);
        s.evidence(true);
        let (published, aggregated) = run(&mut s, 3.25, 20.0);
        assert_eq!(published, vec![3.25]);
        assert_eq!(aggregated, vec![3.25]);
        // Straight after a report, the next waits for SOON.
        s.published(at(20.0));
        s.evidence(true);
        assert!(!s.tick(at(20.25), INTERVAL, REFRESH).publish);
        assert!(s.tick(at(20.5), INTERVAL, REFRESH).publish);
    }

    #[test]
    fn an_aggregation_stays_due_until_one_goes_out() {
        let mut s = ReportSchedule::new(at(0.0));
        s.report_accepted();
        assert!(s.tick(at(10.0), INTERVAL, REFRESH).aggregate);
        // The agent had one out still: nothing started, still due.
        assert!(s.tick(at(10.25), INTERVAL, REFRESH).aggregate);
        s.aggregation_started(at(10.25));
        assert!(!s.tick(at(10.5), INTERVAL, REFRESH).aggregate);
    }

    #[test]
    fn reports_heard_are_aggregated_each_interval_without_publishing_ours() {
        let mut s = ReportSchedule::new(at(0.0));
        let (published, aggregated) = run_with(&mut s, 0.0, 60.0, ReportSchedule::report_accepted);
        assert!(published.is_empty(), "{published:?}");
        assert_eq!(aggregated, vec![10.0, 20.0, 30.0, 40.0, 50.0, 60.0]);
    }

    #[test]
    fn a_new_session_republishes_at_the_next_interval_without_aggregating() {
        let mut s = ReportSchedule::new(at(0.0));
        run(&mut s, 0.0, 15.0);
        s.session_established();
        let (published, aggregated) = run(&mut s, 15.25, 40.0);
        assert_eq!(published, vec![15.25]);
        assert!(aggregated.is_empty(), "{aggregated:?}");
    }

    #[test]
    fn a_report_on_command_restarts_the_interval() {
        let mut s = ReportSchedule::new(at(0.0));
        s.evidence(false);
        s.published(at(8.0));
        let (published, _) = run(&mut s, 8.0, 30.0);
        assert!(published.is_empty(), "{published:?}");
    }
}
