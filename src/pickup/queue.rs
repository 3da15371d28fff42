//! The one queue every pickup path feeds (docs/behaviour.md#pickup): SFTP completions, the
//! watcher, the scheduler's sweeps and the start-up sweep all push here, and
//! the daemon's dispatcher takes from here. Its rules: a file waits once
//! however many paths report it; jobs of one tenant run one at a time in
//! arrival order; different tenants run in parallel up to `workers`. It is
//! pure bookkeeping (no I/O, no clock) so the rules are unit-tested; it must
//! never decide whether a file is complete (the paths do that before pushing).

use std::collections::{HashMap, HashSet, VecDeque};

/// How a file reached the queue; recorded as the job's `source`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    Sftp,
    Watcher,
    Schedule,
    Startup,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Sftp => "sftp",
            Source::Watcher => "watcher",
            Source::Schedule => "schedule",
            Source::Startup => "startup",
        }
    }
}

/// What a worker is asked to do.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Work {
    /// Claim and process the file of this name in the tenant root.
    File { name: String, source: Source },
    /// Carry an unfinished job of the ledger on from its last persisted state.
    Resume { job: i64 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub tenant: String,
    pub work: Work,
}

/// What makes two pushes the same: the source does not.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    File(String, String),
    Job(i64),
}

fn key(item: &Item) -> Key {
    match &item.work {
        Work::File { name, .. } => Key::File(item.tenant.clone(), name.clone()),
        Work::Resume { job } => Key::Job(*job),
    }
}

#[derive(Debug)]
pub struct Queue {
    waiting: HashMap<String, VecDeque<Item>>,
    /// Tenants with waiting items, oldest first: fairness between tenants.
    order: VecDeque<String>,
    queued: HashSet<Key>,
    /// Tenants with a job running.
    busy: HashSet<String>,
    workers: usize,
}

impl Queue {
    pub fn new(workers: usize) -> Queue {
        Queue {
            waiting: HashMap::new(),
            order: VecDeque::new(),
            queued: HashSet::new(),
            busy: HashSet::new(),
            workers: workers.max(1),
        }
    }

    pub fn set_workers(&mut self, workers: usize) {
        self.workers = workers.max(1);
    }

    /// Adds an item unless the same file (or job) is already waiting.
    /// A file whose job is running may be queued again: it is a new upload
    /// under the same name, and the worker finds out when its turn comes.
    pub fn push(&mut self, item: Item) -> bool {
        if !self.queued.insert(key(&item)) {
            return false;
        }
        let tenant = item.tenant.clone();
        let list = self.waiting.entry(tenant.clone()).or_default();
        if list.is_empty() && !self.order.contains(&tenant) {
            self.order.push_back(tenant);
        }
        list.push_back(item);
        true
    }

    /// The next item a worker may take now: the oldest of the first tenant
    /// in line that has no job running, while fewer than `workers` run.
    pub fn take(&mut self) -> Option<Item> {
        if self.busy.len() >= self.workers {
            return None;
        }
        let pos = self.order.iter().position(|t| !self.busy.contains(t))?;
        let tenant = self.order.remove(pos)?;
        let list = self.waiting.get_mut(&tenant)?;
        let item = list.pop_front()?;
        if list.is_empty() {
            self.waiting.remove(&tenant);
        } else {
            self.order.push_back(tenant.clone());
        }
        self.queued.remove(&key(&item));
        self.busy.insert(tenant);
        Some(item)
    }

    /// The tenant's running job ended; its next item may go.
    pub fn done(&mut self, tenant: &str) {
        self.busy.remove(tenant);
    }

    pub fn running(&self) -> usize {
        self.busy.len()
    }

    pub fn is_idle(&self) -> bool {
        self.busy.is_empty() && self.waiting.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(t: &str, n: &str) -> Item {
        Item {
            tenant: t.into(),
            work: Work::File {
                name: n.into(),
                source: Source::Watcher,
            },
        }
    }

    fn name(i: &Item) -> &str {
        match &i.work {
            Work::File { name, .. } => name,
            Work::Resume { .. } => "resume",
        }
    }

    #[test]
    fn a_file_reported_by_every_path_waits_once() {
        let mut q = Queue::new(2);
        assert!(q.push(file("acme", "users.csv")));
        let mut sftp = file("acme", "users.csv");
        sftp.work = Work::File {
            name: "users.csv".into(),
            source: Source::Sftp,
        };
        assert!(!q.push(sftp));
        assert!(!q.push(file("acme", "users.csv")));
        assert!(q.push(file("beta", "users.csv")));
        assert_eq!(q.take().map(|i| i.tenant), Some("acme".into()));
        assert_eq!(q.take().map(|i| i.tenant), Some("beta".into()));
        assert_eq!(q.take(), None);
    }

    #[test]
    fn one_tenant_runs_in_arrival_order_one_at_a_time() {
        let mut q = Queue::new(4);
        for n in ["a.csv", "b.csv", "c.csv"] {
            q.push(file("acme", n));
        }
        let first = q.take().unwrap();
        assert_eq!(name(&first), "a.csv");
        assert_eq!(q.take(), None, "the tenant is busy");
        q.done("acme");
        assert_eq!(name(&q.take().unwrap()), "b.csv");
        q.done("acme");
        assert_eq!(name(&q.take().unwrap()), "c.csv");
        q.done("acme");
        assert!(q.is_idle());
    }

    #[test]
    fn tenants_run_in_parallel_up_to_workers_and_take_turns() {
        let mut q = Queue::new(2);
        q.push(file("a", "1.csv"));
        q.push(file("a", "2.csv"));
        q.push(file("b", "1.csv"));
        q.push(file("c", "1.csv"));
        let x = q.take().unwrap();
        let y = q.take().unwrap();
        assert_eq!((x.tenant.as_str(), y.tenant.as_str()), ("a", "b"));
        assert_eq!(q.take(), None, "two workers");
        q.done("a");
        // c waited longer than a's second file.
        assert_eq!(q.take().unwrap().tenant, "c");
        q.done("b");
        assert_eq!(name(&q.take().unwrap()), "2.csv");
    }

    #[test]
    fn a_file_can_be_queued_again_once_its_job_started() {
        let mut q = Queue::new(1);
        q.push(file("acme", "users.csv"));
        q.take().unwrap();
        assert!(q.push(file("acme", "users.csv")), "a new upload, same name");
        assert_eq!(q.take(), None);
        q.done("acme");
        assert_eq!(name(&q.take().unwrap()), "users.csv");
    }

    #[test]
    fn resumed_jobs_are_deduplicated_by_id() {
        let mut q = Queue::new(1);
        let r = Item {
            tenant: "acme".into(),
            work: Work::Resume { job: 7 },
        };
        assert!(q.push(r.clone()));
        assert!(!q.push(r));
    }
}
