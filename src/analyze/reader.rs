//! What an analysis asks of the engine: answers to alert queries over the run's inputs.
//!
//! Most analyses work from reports the command hands them. A few need a second, narrower read
//! of the inputs once the first has shown where to look (the comms-hub cohorts of a spike, the
//! firmware effect once upgrade days are known). They ask a `Reader`, which the engine
//! implements: the analysis never learns where the inputs come from, and the engine stamps the
//! user's selection (`Scope`) on every query it answers.

use super::alerts::{AlertQuery, AlertReport, Tap};
use crate::inventory::Inventory;

/// One query's answer: its report, and its tap (`AlertQuery::tap`) with what the tap saw.
pub struct Answer {
    pub report: AlertReport,
    pub tap: Option<Box<dyn Tap>>,
}

impl Answer {
    /// The tap as its concrete type, if the query had one of that type.
    pub fn tap_as<T: 'static>(&mut self) -> Option<Box<T>> {
        self.tap.take()?.into_any().downcast::<T>().ok()
    }
}

/// Answers alert queries over one set of inputs.
pub trait Reader {
    /// The inventory the answers are joined to.
    fn inventory(&self) -> &Inventory;

    /// Answers every query from one read of the inputs. The first answer's totals and rejects
    /// are the read's; the others count no rejects.
    fn answer(&self, queries: &[AlertQuery]) -> Vec<Answer>;

    /// One query, one read.
    fn answer_one(&self, query: AlertQuery) -> Answer {
        self.answer(std::slice::from_ref(&query))
            .pop()
            .expect("one answer per query")
    }
}
