//! Trust aggregation off the network path: the agent hands the driver a
//! snapshot to aggregate ([`Effect::Aggregate`]) and installs the result
//! when it comes back ([`crate::Input::Aggregated`]). At most one is out at
//! a time; an aggregation asked for meanwhile follows when it returns, and
//! one overtaken by an in-place refresh (an embedder's command) is dropped.

use std::time::Duration;

use crate::Agent;
use crate::io::Effect;

/// An aggregation out this long is taken as lost: the next is handed out
/// anyway (an aggregation of the most reports held takes milliseconds).
const STALLED: Duration = Duration::from_secs(60);

/// What becomes of an aggregation out with the driver when it returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AfterAggregation {
    /// Put it in force.
    Install,
    /// Put it in force and hand out another: reports were due meanwhile.
    InstallAndAgain,
    /// Drop it: the view was refreshed in place since it was taken.
    Drop,
}

impl Agent {
    /// Hand the driver a trust aggregation to run off the network path
    /// (or, if one is out, ask for another when it returns).
    pub(crate) fn aggregate(&mut self) {
        let now = self.now.mono;
        if let Some(since) = self.aggregating
            && now.since(since) < STALLED
        {
            if self.on_return == AfterAggregation::Install {
                self.on_return = AfterAggregation::InstallAndAgain;
            }
            return;
        }
        // None out, or the one out never came back (its driver dropped or
        // lost it): hand out a fresh one.
        self.aggregating = Some(now);
        self.reports.aggregation_started(now);
        self.on_return = AfterAggregation::Install;
        let job = self.k.trust.aggregation(self.now.wall);
        self.emit(Effect::Aggregate(Box::new(job)));
    }

    /// An aggregation came back from the driver.
    pub(crate) fn aggregated(&mut self, done: mesh_trust::Aggregated) {
        if self.aggregating.take().is_none() {
            return; // not ours to install: none was out
        }
        match self.on_return {
            AfterAggregation::Install => {
                self.k.trust.install(done);
            }
            AfterAggregation::InstallAndAgain => {
                self.k.trust.install(done);
                self.aggregate();
            }
            AfterAggregation::Drop => {}
        }
    }

    /// Aggregate now, in place (an embedder asked and waits for it); one
    /// out with the driver is then out of date.
    pub(crate) fn refresh_in_place(&mut self) {
        self.k.trust.refresh(self.now.wall);
        if self.aggregating.is_some() {
            self.on_return = AfterAggregation::Drop;
        }
    }
}
