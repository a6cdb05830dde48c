//! Trust aggregation off the network path: the agent hands the driver a
//! snapshot to aggregate ([`Effect::Aggregate`]) and installs the result
//! when it comes back ([`crate::Input::Aggregated`]). At most one is out at
//! a time; an aggregation asked for meanwhile follows when it returns, and
//! one overtaken by an in-place refresh (an embedder's command) is dropped.

use crate::Agent;
use crate::io::Effect;

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
        if self.aggregating {
            if self.on_return == AfterAggregation::Install {
                self.on_return = AfterAggregation::InstallAndAgain;
            }
            return;
        }
        self.aggregating = true;
        self.on_return = AfterAggregation::Install;
        let job = self.k.trust.aggregation(self.now.wall);
        self.emit(Effect::Aggregate(Box::new(job)));
    }

    /// An aggregation came back from the driver.
    pub(crate) fn aggregated(&mut self, done: mesh_trust::Aggregated) {
        if !self.aggregating {
            return; // not ours to install: none was out
        }
        self.aggregating = false;
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
        if self.aggregating {
            self.on_return = AfterAggregation::Drop;
        }
    }
}
