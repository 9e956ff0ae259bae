//! One thread working through a bounded queue of jobs, in order: for work its callers
//! must not wait for (hashing passwords, writing to Redis). A mutex and a condition
//! variable, as the worker pool's queue.
//!
//! Invariants: jobs run one at a time in the order they were pushed; the queue never
//! holds more than its limit (a push past it is handed back, for the caller to
//! refuse); stopping runs what is queued already, then the thread ends, and nothing
//! more is taken.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;

use crate::sync::lock;

struct Jobs<J> {
    queue: VecDeque<J>,
    stopping: bool,
}

struct Inner<J> {
    jobs: Mutex<Jobs<J>>,
    ready: Condvar,
    limit: usize,
}

/// See the module doc.
pub struct JobThread<J> {
    inner: Arc<Inner<J>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl<J> std::fmt::Debug for JobThread<J> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobThread")
            .field("limit", &self.inner.limit)
            .finish_non_exhaustive()
    }
}

impl<J: Send + 'static> JobThread<J> {
    /// A queue of at most `limit` jobs, with no thread yet ([`JobThread::start`]).
    pub fn new(limit: usize) -> Self {
        JobThread {
            inner: Arc::new(Inner {
                jobs: Mutex::new(Jobs {
                    queue: VecDeque::new(),
                    stopping: false,
                }),
                ready: Condvar::new(),
                limit,
            }),
            thread: Mutex::new(None),
        }
    }

    /// Starts the thread, named `name`, which hands each job to `work`. A second
    /// call does nothing.
    pub fn start(
        &self,
        name: &str,
        mut work: impl FnMut(J) + Send + 'static,
    ) -> std::io::Result<()> {
        let mut thread = lock(&self.thread);
        if thread.is_some() {
            return Ok(());
        }
        let inner = Arc::clone(&self.inner);
        *thread = Some(
            std::thread::Builder::new()
                .name(name.to_owned())
                .spawn(move || {
                    while let Some(job) = inner.next() {
                        work(job);
                    }
                })?,
        );
        Ok(())
    }

    /// Queues `job`; hands it back if the queue is full or stopping.
    pub fn push(&self, job: J) -> Result<(), J> {
        let mut jobs = lock(&self.inner.jobs);
        if jobs.stopping || jobs.queue.len() >= self.inner.limit {
            return Err(job);
        }
        jobs.queue.push_back(job);
        drop(jobs);
        self.inner.ready.notify_one();
        Ok(())
    }

    /// Runs what is queued, then stops the thread (and waits for it).
    pub fn stop(&self) {
        lock(&self.inner.jobs).stopping = true;
        self.inner.ready.notify_all();
        if let Some(thread) = lock(&self.thread).take() {
            let _ = thread.join();
        }
    }
}

impl<J> Inner<J> {
    /// The next job, waiting for one; `None` once stopping and empty.
    fn next(&self) -> Option<J> {
        let mut jobs = lock(&self.jobs);
        loop {
            if let Some(job) = jobs.queue.pop_front() {
                return Some(job);
            }
            if jobs.stopping {
                return None;
            }
            jobs = self
                .ready
                .wait(jobs)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn jobs_run_in_order_and_stopping_runs_what_is_queued() {
        let jobs = JobThread::new(100);
        for n in 0..50 {
            jobs.push(n).unwrap();
        }
        let (tx, rx) = mpsc::channel();
        jobs.start("test-jobs", move |n| tx.send(n).unwrap())
            .unwrap();
        jobs.stop();
        assert_eq!(rx.iter().collect::<Vec<_>>(), (0..50).collect::<Vec<_>>());
        assert_eq!(jobs.push(50), Err(50), "stopped: nothing more is taken");
    }

    #[test]
    fn a_full_queue_hands_the_job_back() {
        let jobs = JobThread::new(2);
        assert_eq!(jobs.push(1), Ok(()));
        assert_eq!(jobs.push(2), Ok(()));
        assert_eq!(jobs.push(3), Err(3));
    }
}
