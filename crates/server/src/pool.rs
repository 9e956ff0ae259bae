//! The worker pool and its producer–consumer queue (the seed's ThreadPool and Worker).
//!
//! * [`WorkQueue`] is our own queue: a `Mutex<VecDeque>` and a `Condvar`. The reactor
//!   is the producer and must never block, so the queue has no capacity limit of its
//!   own; its length is bounded instead by what is queued: a session is in the queue at
//!   most once (see `session.rs`), so the queue never holds more items than there are
//!   connections.
//! * [`ThreadPool`] owns `size` [`Worker`] threads named `worker-N`, each popping items
//!   and passing them to its own consumer until the queue is closed. Dropping the pool
//!   closes the queue and joins every thread; [`ThreadPool::finish`] first lets the
//!   workers handle everything still queued.
//! * [`Consumer`] is what a worker does with each item: the worker's job.
//! * [`Staged`] is the producer's side: it hands items over in batches, and at the
//!   end of a round in which a worker sleeps with nothing queued it runs them on a
//!   consumer of its own instead of waking one ([`Staged::end_round`]). While the
//!   workers have a backlog it waits, briefly and boundedly, before its next round
//!   ([`Staged::wait_while_backlogged`]).
//!
//! A panic inside one job is caught, logged and does not stop its thread: one bad
//! session must never take the server down. What happens to the session whose job
//! panicked is the consumer's business (it gets a callback).
//!
//! This module knows nothing about sockets or sessions; it is generic over the item.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// Locks a mutex, ignoring poisoning.
///
/// Every mutex in this crate guards data that stays consistent at every await-free
/// step, and a worker's panic is caught per job; refusing to go on because another
/// thread panicked would turn one bad connection into a dead server.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A closable multi-producer, multi-consumer FIFO queue.
#[derive(Debug)]
pub(crate) struct WorkQueue<T> {
    state: Mutex<QueueState<T>>,
    /// Signalled when an item is pushed or the queue is closed.
    available: Condvar,
    /// Signalled when a consumer takes the queue down to the length a producer in
    /// [`WorkQueue::wait_while_backlogged`] waits for.
    drained: Condvar,
}

#[derive(Debug)]
struct QueueState<T> {
    items: VecDeque<T>,
    closed: bool,
    /// No new work is coming: `pop` hands out what is left (and what consumers push
    /// back meanwhile), then returns `None` instead of waiting.
    finishing: bool,
    /// Consumers blocked in `pop`. A push only signals the condvar when one waits:
    /// signalling is a syscall even when nobody listens, and under load nobody does.
    waiting: usize,
    /// Items away that will be pushed again (sessions awaiting a broker's outcome):
    /// while any is, a finishing queue still waits for them.
    parked: usize,
    /// The length a producer waits for the queue to fall to, while it waits
    /// ([`WorkQueue::wait_while_backlogged`]).
    producer_waits_for: Option<usize>,
}

impl<T> QueueState<T> {
    /// Takes the oldest item, waking a producer waiting for the queue to drain when
    /// this take drained it far enough.
    fn take(&mut self, drained: &Condvar) -> Option<T> {
        let item = self.items.pop_front()?;
        if self
            .producer_waits_for
            .is_some_and(|low| self.items.len() <= low)
        {
            self.producer_waits_for = None;
            drained.notify_one();
        }
        Some(item)
    }
}

impl<T> Default for WorkQueue<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> WorkQueue<T> {
    /// An empty, open queue.
    pub(crate) fn new() -> Self {
        Self {
            state: Mutex::new(QueueState {
                items: VecDeque::new(),
                closed: false,
                finishing: false,
                waiting: 0,
                parked: 0,
                producer_waits_for: None,
            }),
            available: Condvar::new(),
            drained: Condvar::new(),
        }
    }

    /// Adds an item and wakes one waiting consumer. Never blocks beyond the short
    /// critical section. Returns the item back if the queue is closed.
    pub(crate) fn push(&self, item: T) -> Result<(), T> {
        let mut state = lock(&self.state);
        if state.closed {
            return Err(item);
        }
        state.items.push_back(item);
        let wake = state.waiting > 0;
        drop(state);
        if wake {
            self.available.notify_one();
        }
        Ok(())
    }

    /// Adds every item of `items` (emptying it) under one lock and wakes as many
    /// waiting consumers as there are new items, at most. Items are dropped if the
    /// queue is closed (the server is stopping; see [`WorkQueue::push`]).
    pub(crate) fn push_all(&self, items: &mut Vec<T>) {
        if items.is_empty() {
            return;
        }
        let mut state = lock(&self.state);
        if state.closed {
            items.clear();
            return;
        }
        let wake = state.waiting.min(items.len());
        state.items.extend(items.drain(..));
        drop(state);
        for _ in 0..wake {
            self.available.notify_one();
        }
    }

    /// Whether nothing is queued and a consumer waits asleep: an item handed over now
    /// would cost a wake-up, and nobody is behind it.
    fn idle_consumer_waits(&self) -> bool {
        let state = lock(&self.state);
        state.items.is_empty() && state.waiting > 0 && !state.closed
    }

    /// Takes the oldest item, waiting while the queue is empty. Returns `None` once the
    /// queue is closed: items still queued then are dropped, not handed out.
    pub(crate) fn pop(&self) -> Option<T> {
        let mut state = lock(&self.state);
        loop {
            if state.closed {
                return None;
            }
            if let Some(item) = state.take(&self.drained) {
                return Some(item);
            }
            if state.finishing && state.parked == 0 {
                return None;
            }
            state.waiting += 1;
            state = self
                .available
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
            state.waiting -= 1;
        }
    }

    /// Says an item is away and will be pushed again ([`WorkQueue::unpark`] when it
    /// is, or when it will not be after all): a finishing queue waits for it.
    pub(crate) fn park(&self) {
        lock(&self.state).parked += 1;
    }

    /// Undoes one [`WorkQueue::park`]: the item was pushed again (push it first), or
    /// never left.
    pub(crate) fn unpark(&self) {
        let mut state = lock(&self.state);
        state.parked = state.parked.saturating_sub(1);
        let wake = state.finishing && state.parked == 0 && state.waiting > 0;
        drop(state);
        if wake {
            // Consumers waiting only for parked items may now finish.
            self.available.notify_all();
        }
    }

    /// Takes the oldest item if there is one, without waiting; `Err(Closed)` once the
    /// queue is closed.
    pub(crate) fn try_pop(&self) -> Result<Option<T>, Closed> {
        let mut state = lock(&self.state);
        if state.closed {
            return Err(Closed);
        }
        Ok(state.take(&self.drained))
    }

    /// Waits while more than `low` items are queued, for at most `max`; returns
    /// whether it waited at all. For the producer: see
    /// [`Staged::wait_while_backlogged`] for why.
    pub(crate) fn wait_while_backlogged(&self, low: usize, max: Duration) -> bool {
        let mut state = lock(&self.state);
        if state.items.len() <= low || state.closed {
            return false;
        }
        let deadline = Instant::now() + max;
        while state.items.len() > low && !state.closed {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            state.producer_waits_for = Some(low);
            state = self
                .drained
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        state.producer_waits_for = None;
        true
    }

    /// Says no new work is coming: consumers get what is queued (and what they push
    /// back while handling it, and what was [parked](WorkQueue::park)), then `pop`
    /// returns `None` once the queue is empty and nothing is parked.
    pub(crate) fn finish(&self) {
        lock(&self.state).finishing = true;
        self.available.notify_all();
    }

    /// Closes the queue: pushes fail from now on and every consumer's `pop` returns
    /// `None`. Returns the items that were never handed out.
    pub(crate) fn close(&self) -> Vec<T> {
        let mut state = lock(&self.state);
        state.closed = true;
        let left = state.items.drain(..).collect();
        drop(state);
        self.available.notify_all();
        self.drained.notify_all();
        left
    }

    /// Items waiting right now (for metrics and tests).
    pub(crate) fn len(&self) -> usize {
        lock(&self.state).items.len()
    }
}

/// A producer's side of a [`WorkQueue`] that gathers items and pushes them in
/// batches: at most [`Staged::BATCH`] at a time, and whatever is left when the
/// producer calls [`Staged::push_staged`] at the end of its round.
///
/// Why: the reactor schedules sessions one readiness event at a time. Pushed one by
/// one, an idle worker wakes for the first, handles it alone, finds the queue empty
/// and flushes its output — one `write` per recipient per chat, each costing a
/// loopback TCP transmit and a wake-up of the reader. Handed over together, the
/// sessions that became ready in one poll are handled in one run and their output to
/// each recipient leaves in one `write`, as a single-threaded event loop would batch
/// it; and the queue's lock and the condvar are touched once per batch. The batch
/// bound keeps a long poll round (thousands of ready sockets) from leaving the
/// workers idle while the reactor reads.
///
/// Single-threaded by design (a `RefCell`): only the reactor stages.
#[derive(Debug)]
pub(crate) struct Staged<T> {
    queue: Arc<WorkQueue<T>>,
    pending: RefCell<Vec<T>>,
    /// An empty vector that trades places with `pending` when the producer runs a
    /// round itself, so that a round costs no allocation: both keep their capacity.
    spare: RefCell<Vec<T>>,
}

impl<T> Staged<T> {
    /// Items staged before they are pushed without waiting for the round's end.
    pub(crate) const BATCH: usize = 32;
    /// How long [`Staged::end_round`] runs staged items itself before it hands the
    /// rest to the workers: a chat to a large room costs a write per member.
    pub(crate) const RUN_OWN_BUDGET: Duration = Duration::from_micros(500);
    /// Queued items at or below which the consumers' backlog no longer holds the
    /// producer back ([`Staged::wait_while_backlogged`]). Not 0: a few left keep the
    /// consumers busy while the producer polls and reads its next round (measured
    /// alongside 0: no worse anywhere, lower p99 in 100 rooms × 10).
    pub(crate) const BACKLOG_LOW: usize = 8;
    /// The longest the producer waits for the consumers' backlog to drain.
    pub(crate) const BACKLOG_WAIT: Duration = Duration::from_millis(1);

    /// Stages for `queue`.
    pub(crate) fn new(queue: Arc<WorkQueue<T>>) -> Self {
        Self {
            queue,
            pending: RefCell::new(Vec::with_capacity(Self::BATCH)),
            spare: RefCell::new(Vec::with_capacity(Self::BATCH)),
        }
    }

    /// Stages `item`; pushes the batch once it holds [`Staged::BATCH`] items.
    pub(crate) fn push(&self, item: T) {
        let mut pending = self.pending.borrow_mut();
        pending.push(item);
        if pending.len() >= Self::BATCH {
            self.queue.push_all(&mut pending);
        }
    }

    /// After its round, waits while the consumers have a backlog: while more than
    /// [`Staged::BACKLOG_LOW`] items are queued, for at most
    /// [`Staged::BACKLOG_WAIT`]. Returns whether it waited.
    ///
    /// Why: items queued mean every consumer is busy, so whatever the producer would
    /// read and stage now only lands behind them: polling again at once buys no
    /// latency. It costs a wake-up per poll instead, and under load a poll then finds
    /// a few ready sockets each time: measured in 100 rooms × 10 at 75,000 chats/s
    /// on 2 cores, 0.4 context switches per chat polling at once, 0.01 waiting.
    /// Waiting, the events gather in the kernel and the next poll reads them in one
    /// go. The bound keeps the producer's own work (accepting, writable sockets,
    /// timers, the workers' requests) from waiting longer than a flush may.
    pub(crate) fn wait_while_backlogged(&self) -> bool {
        self.queue
            .wait_while_backlogged(Self::BACKLOG_LOW, Self::BACKLOG_WAIT)
    }

    /// Pushes everything staged (the producer's round is over).
    pub(crate) fn push_staged(&self) {
        self.queue.push_all(&mut self.pending.borrow_mut());
    }

    /// Ends the producer's round. If a consumer sleeps with nothing queued, the
    /// producer runs what it staged on `own`, its own consumer, for up to
    /// [`Staged::RUN_OWN_BUDGET`], then hands the rest over and tells `own` it is
    /// idle (it flushes); otherwise everything is pushed, as by
    /// [`Staged::push_staged`].
    ///
    /// Why: at light and moderate load a round makes a few sessions ready, and
    /// waking a sleeping worker for them (a futex wake, two context switches, the
    /// sessions' data moving to another core's cache) cost more than handling them:
    /// measured in 10 rooms × 5 at 50,000 chats/s on 2 cores, 0.85 context switches
    /// per chat and 4.3 µs of server CPU per delivery with every round handed over,
    /// 0.2 and 3.6 µs with this. The workers still take every batch of
    /// [`Staged::BATCH`] (a large round), every round that comes while none sleeps
    /// (they are busy: handing over costs no wake-up then) and whatever is left
    /// past the budget, so the producer goes back to its own work (polling) soon
    /// and the pool scales as before. Order per item is the queue's: an item is
    /// staged once and run by one thread.
    pub(crate) fn end_round<C: Consumer<T> + ?Sized>(&self, own: &mut C) {
        self.end_round_within(own, Self::RUN_OWN_BUDGET);
    }

    /// [`Staged::end_round`] with the producer's budget given.
    fn end_round_within<C: Consumer<T> + ?Sized>(&self, own: &mut C, budget: Duration) {
        let mut pending = self.pending.borrow_mut();
        if pending.is_empty() {
            return;
        }
        if !self.queue.idle_consumer_waits() {
            self.queue.push_all(&mut pending);
            return;
        }
        // The round leaves `pending` (a job may stage again while it runs) for the
        // spare, which takes its place empty.
        let mut round = std::mem::replace(&mut *pending, self.spare.take());
        drop(pending);
        let started = Instant::now();
        let mut items = round.drain(..);
        while let Some(item) = items.next() {
            consume_guarded(own, item, "reactor");
            if started.elapsed() >= budget {
                self.queue.push_all(&mut items.by_ref().collect());
                break;
            }
        }
        drop(items);
        self.spare.replace(round);
        own.idle();
    }
}

/// Runs `consumer` on `item`, catching a panic: it is logged and the consumer's
/// `panicked` cleans up after it, so one bad item never stops the thread running it.
fn consume_guarded<T, C: Consumer<T> + ?Sized>(consumer: &mut C, item: T, who: &str) {
    let handled = panic::catch_unwind(AssertUnwindSafe(|| consumer.consume(&item)));
    if handled.is_err() {
        tracing::error!(thread = who, "a job panicked; the thread goes on");
        let cleaned = panic::catch_unwind(AssertUnwindSafe(|| consumer.panicked(item)));
        if cleaned.is_err() {
            tracing::error!(
                thread = who,
                "cleaning up after a panicked job panicked too"
            );
        }
    }
}

/// The queue was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Closed;

/// What a worker thread does with each item.
pub(crate) trait Consumer<T>: Send + std::fmt::Debug + 'static {
    /// Consumes one item.
    fn consume(&mut self, item: &T);
    /// Called when the queue is empty, before the worker waits for more: the moment
    /// to finish work batched across items. Also called once before the thread ends.
    fn idle(&mut self) {}
    /// Called with the item when `consume` panicked, to clean up after it. A panic in
    /// here is caught and logged too. Default: nothing.
    fn panicked(&mut self, _item: T) {}
}

/// The next item for a worker: at once if one is queued, else after telling the
/// consumer it is idle (it may flush batched work) and waiting.
fn next_item<T, C: Consumer<T>>(queue: &WorkQueue<T>, consumer: &mut C) -> Option<T> {
    let item = match queue.try_pop() {
        Ok(Some(item)) => return Some(item),
        Ok(None) => {
            consumer.idle();
            queue.pop()
        }
        Err(Closed) => None,
    };
    if item.is_none() {
        consumer.idle();
    }
    item
}

/// One worker thread.
pub(crate) struct Worker {
    /// 0-based; the thread is named `worker-{id}`.
    pub(crate) id: usize,
    thread: JoinHandle<()>,
}

/// A fixed set of workers consuming one [`WorkQueue`].
pub(crate) struct ThreadPool<T> {
    queue: Arc<WorkQueue<T>>,
    workers: Vec<Worker>,
}

impl<T: Send + 'static> ThreadPool<T> {
    /// Starts `size` workers (at least one); `make_consumer(id)` builds each worker's
    /// consumer, which lives as long as its thread (a place for per-thread scratch
    /// buffers).
    pub(crate) fn new<C, F>(
        size: usize,
        queue: Arc<WorkQueue<T>>,
        mut make_consumer: F,
    ) -> std::io::Result<Self>
    where
        C: Consumer<T>,
        F: FnMut(usize) -> C,
    {
        let mut pool = ThreadPool {
            queue,
            workers: Vec::new(),
        };
        for id in 0..size.max(1) {
            let queue = Arc::clone(&pool.queue);
            let mut consumer = make_consumer(id);
            // If spawning fails part-way, `pool` is dropped here and joins the
            // workers already started.
            let thread = thread::Builder::new()
                .name(format!("worker-{id}"))
                .spawn(move || {
                    let name = format!("worker-{id}");
                    while let Some(item) = next_item(&queue, &mut consumer) {
                        consume_guarded(&mut consumer, item, &name);
                    }
                })?;
            pool.workers.push(Worker { id, thread });
        }
        Ok(pool)
    }

    /// Lets the workers handle everything queued (see [`WorkQueue::finish`]), then
    /// joins them.
    pub(crate) fn finish(mut self) {
        self.queue.finish();
        self.join_workers();
    }
}

impl<T> Drop for ThreadPool<T> {
    fn drop(&mut self) {
        self.queue.close();
        self.join_workers();
    }
}

impl<T> ThreadPool<T> {
    fn join_workers(&mut self) {
        for worker in self.workers.drain(..) {
            if worker.thread.join().is_err() {
                tracing::error!(worker = worker.id, "worker thread ended by a panic");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[derive(Debug)]
    struct Forward(mpsc::Sender<(usize, u32)>, usize);

    impl Consumer<u32> for Forward {
        fn consume(&mut self, item: &u32) {
            if *item == 13 {
                panic!("unlucky job");
            }
            self.0.send((self.1, *item)).unwrap();
        }

        fn panicked(&mut self, item: u32) {
            self.0.send((self.1, item + 1000)).unwrap();
        }
    }

    #[test]
    fn every_item_is_handled_once_and_a_panic_does_not_stop_the_pool() {
        let queue = Arc::new(WorkQueue::new());
        let (tx, rx) = mpsc::channel();
        let pool = ThreadPool::new(3, Arc::clone(&queue), |id| Forward(tx.clone(), id)).unwrap();
        for item in 0..100 {
            queue.push(item).unwrap();
        }
        let mut got: Vec<u32> = (0..100).map(|_| rx.recv().unwrap().1).collect();
        got.sort_unstable();
        let expected: Vec<u32> = (0..100).filter(|&i| i != 13).chain([1013]).collect();
        assert_eq!(got, expected);
        drop(pool);
        assert_eq!(queue.push(1), Err(1), "closed after join");
        assert!(queue.pop().is_none());
    }

    #[test]
    fn a_finishing_queue_waits_for_parked_items() {
        let queue: Arc<WorkQueue<u8>> = Arc::new(WorkQueue::new());
        queue.park();
        queue.finish();
        let consumer = {
            let queue = Arc::clone(&queue);
            thread::spawn(move || std::iter::from_fn(|| queue.pop()).collect::<Vec<u8>>())
        };
        // Whenever the consumer runs, the parked item comes back before it may stop.
        queue.push(7).unwrap();
        queue.unpark();
        assert_eq!(consumer.join().unwrap(), [7]);
    }

    #[test]
    fn close_wakes_waiting_consumers_and_returns_leftovers() {
        let queue: Arc<WorkQueue<u8>> = Arc::new(WorkQueue::new());
        let waiter = {
            let queue = Arc::clone(&queue);
            thread::spawn(move || queue.pop())
        };
        // The waiter may or may not be parked yet; either way close must release it.
        assert!(queue.close().is_empty());
        assert_eq!(waiter.join().unwrap(), None);

        let queue = WorkQueue::new();
        queue.push(1).unwrap();
        queue.push(2).unwrap();
        assert_eq!(queue.len(), 2);
        assert_eq!(queue.close(), vec![1, 2]);
    }

    #[test]
    fn staged_items_reach_the_queue_in_order_per_batch_or_at_the_round_end() {
        let queue = Arc::new(WorkQueue::new());
        let staged = Staged::new(Arc::clone(&queue));
        for i in 0..Staged::<usize>::BATCH - 1 {
            staged.push(i);
        }
        assert_eq!(
            queue.len(),
            0,
            "nothing is handed over before the batch is full"
        );
        staged.push(Staged::<usize>::BATCH - 1);
        assert_eq!(
            queue.len(),
            Staged::<usize>::BATCH,
            "a full batch goes at once"
        );
        staged.push(100);
        staged.push(101);
        assert_eq!(queue.len(), Staged::<usize>::BATCH);
        staged.push_staged();
        let all: Vec<usize> = std::iter::from_fn(|| queue.try_pop().unwrap()).collect();
        let mut expected: Vec<usize> = (0..Staged::<usize>::BATCH).collect();
        expected.extend([100, 101]);
        assert_eq!(all, expected);
    }

    #[test]
    fn a_batch_wakes_as_many_waiting_consumers_as_it_has_items() {
        let queue: Arc<WorkQueue<u32>> = Arc::new(WorkQueue::new());
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let queue = Arc::clone(&queue);
                thread::spawn(move || queue.pop())
            })
            .collect();
        // Both must be waiting, or the test would pass without any wake-up.
        while lock(&queue.state).waiting < 2 {
            thread::yield_now();
        }
        queue.push_all(&mut vec![7, 8]);
        let mut got: Vec<u32> = waiters
            .into_iter()
            .map(|waiter| waiter.join().unwrap().unwrap())
            .collect();
        got.sort_unstable();
        assert_eq!(got, vec![7, 8]);
        // A closed queue takes nothing and empties the batch.
        queue.close();
        let mut late = vec![9];
        queue.push_all(&mut late);
        assert!(late.is_empty());
        assert_eq!(queue.len(), 0);
    }

    /// The producer's own consumer: records what it ran, when it was told it is
    /// idle, and takes `cost` per item (a chat to a large room).
    #[derive(Debug, Default)]
    struct Own {
        log: Vec<String>,
        cost: Duration,
    }

    impl Consumer<u32> for Own {
        fn consume(&mut self, item: &u32) {
            if *item == 13 {
                panic!("unlucky job");
            }
            let started = Instant::now();
            while started.elapsed() < self.cost {
                std::hint::spin_loop();
            }
            self.log.push(item.to_string());
        }

        fn idle(&mut self) {
            self.log.push("idle".into());
        }

        fn panicked(&mut self, item: u32) {
            self.log.push(format!("panicked {item}"));
        }
    }

    /// A queue with a consumer asleep in `pop`, and that consumer's thread.
    fn queue_with_a_sleeper() -> (Arc<WorkQueue<u32>>, thread::JoinHandle<Option<u32>>) {
        let queue: Arc<WorkQueue<u32>> = Arc::new(WorkQueue::new());
        let sleeper = {
            let queue = Arc::clone(&queue);
            thread::spawn(move || queue.pop())
        };
        while lock(&queue.state).waiting < 1 {
            thread::yield_now();
        }
        (queue, sleeper)
    }

    #[test]
    fn a_round_is_run_by_the_producer_while_a_consumer_sleeps_with_nothing_queued() {
        let (queue, sleeper) = queue_with_a_sleeper();
        let staged = Staged::new(Arc::clone(&queue));
        let mut own = Own::default();
        for item in [1, 2, 13] {
            staged.push(item);
        }
        // A budget no preemption of this thread can spend.
        let ample = Duration::from_secs(600);
        staged.end_round_within(&mut own, ample);
        assert_eq!(
            own.log,
            ["1", "2", "panicked 13", "idle"],
            "run in order, a panic caught and cleaned up, then idle"
        );
        assert_eq!(queue.len(), 0, "nothing was handed over");
        // An empty round does nothing at all.
        staged.end_round_within(&mut own, ample);
        assert_eq!(own.log.len(), 4);
        queue.close();
        assert_eq!(sleeper.join().unwrap(), None, "the sleeper was never woken");
    }

    #[test]
    fn rounds_the_producer_runs_trade_two_vectors_and_allocate_none() {
        let (queue, sleeper) = queue_with_a_sleeper();
        let staged = Staged::new(Arc::clone(&queue));
        let mut own = Own::default();
        let buffers = |staged: &Staged<u32>| {
            let (pending, spare) = (staged.pending.borrow(), staged.spare.borrow());
            (pending.as_ptr(), spare.as_ptr(), spare.capacity())
        };
        let (first, second, _) = buffers(&staged);
        let ample = Duration::from_secs(600);
        for round in 0..2 {
            staged.push(round);
            staged.end_round_within(&mut own, ample);
            let (pending, spare, spare_capacity) = buffers(&staged);
            // The round ran from the vector it was staged in, which is now the spare
            // (emptied, its capacity kept); staging goes on in the other one.
            let expected = if round == 0 {
                (second, first)
            } else {
                (first, second)
            };
            assert_eq!((pending, spare), expected, "round {round}");
            assert!(spare_capacity >= Staged::<u32>::BATCH);
        }
        assert_eq!(own.log, ["0", "idle", "1", "idle"]);
        queue.close();
        assert_eq!(sleeper.join().unwrap(), None);
    }

    #[test]
    fn a_round_goes_to_the_workers_when_none_sleeps_or_something_is_queued() {
        let queue: Arc<WorkQueue<u32>> = Arc::new(WorkQueue::new());
        let staged = Staged::new(Arc::clone(&queue));
        let mut own = Own::default();
        // No consumer waits: the workers are busy, handing over wakes nobody.
        staged.push(1);
        staged.end_round(&mut own);
        assert!(own.log.is_empty());
        assert_eq!(queue.try_pop(), Ok(Some(1)));

        // One sleeps, but something is queued already: the round goes behind it.
        let (queue, sleeper) = queue_with_a_sleeper();
        let staged = Staged::new(Arc::clone(&queue));
        lock(&queue.state).items.push_back(5);
        staged.push(6);
        staged.end_round(&mut own);
        assert!(own.log.is_empty());
        let mut all = vec![sleeper.join().unwrap().unwrap()];
        all.extend(std::iter::from_fn(|| queue.try_pop().unwrap()));
        assert_eq!(all, [5, 6]);
    }

    #[test]
    fn the_producer_hands_over_what_is_left_past_its_budget() {
        let (queue, sleeper) = queue_with_a_sleeper();
        let staged = Staged::new(Arc::clone(&queue));
        let mut own = Own {
            log: Vec::new(),
            cost: Staged::<u32>::RUN_OWN_BUDGET,
        };
        for item in [1, 2, 3] {
            staged.push(item);
        }
        staged.end_round(&mut own);
        assert_eq!(own.log, ["1", "idle"], "one item spent the budget");
        let mut rest = vec![sleeper.join().unwrap().unwrap()];
        rest.extend(std::iter::from_fn(|| queue.try_pop().unwrap()));
        assert_eq!(rest, [2, 3], "the rest went to the workers, in order");
    }

    #[test]
    fn the_producer_does_not_wait_without_a_backlog() {
        let queue: Arc<WorkQueue<u32>> = Arc::new(WorkQueue::new());
        let staged = Staged::new(Arc::clone(&queue));
        assert!(!staged.wait_while_backlogged(), "nothing queued");
        // A handful queued keeps the workers busy while the producer polls: no wait.
        for item in 0..8 {
            queue.push(item).unwrap();
        }
        assert!(!staged.wait_while_backlogged(), "8 queued");
    }

    #[test]
    fn the_producer_waits_out_a_backlog_nobody_takes_for_its_bound_only() {
        let queue: Arc<WorkQueue<u32>> = Arc::new(WorkQueue::new());
        let staged = Staged::new(Arc::clone(&queue));
        let backlog = Staged::<u32>::BACKLOG_LOW + 1;
        for item in 0..backlog {
            queue.push(item as u32).unwrap();
        }
        let started = Instant::now();
        assert!(staged.wait_while_backlogged());
        let waited = started.elapsed();
        assert!(
            waited >= Staged::<u32>::BACKLOG_WAIT,
            "returned after {waited:?}, before its bound"
        );
        assert!(waited < Duration::from_secs(5), "waited {waited:?}");
        assert!(lock(&queue.state).producer_waits_for.is_none());
        assert_eq!(queue.len(), backlog, "the backlog is untouched");
    }

    /// Starts a producer waiting (for up to a minute) for `queue` to drain to `low`,
    /// and returns once it waits; the thread answers how long it waited.
    fn waiting_producer(
        queue: &Arc<WorkQueue<u32>>,
        low: usize,
    ) -> thread::JoinHandle<(bool, Duration)> {
        let producer = {
            let queue = Arc::clone(queue);
            thread::spawn(move || {
                let started = Instant::now();
                let waited = queue.wait_while_backlogged(low, Duration::from_secs(60));
                (waited, started.elapsed())
            })
        };
        while lock(&queue.state).producer_waits_for.is_none() {
            thread::yield_now();
        }
        producer
    }

    #[test]
    fn consumers_taking_the_backlog_down_to_the_low_mark_wake_the_producer() {
        let queue: Arc<WorkQueue<u32>> = Arc::new(WorkQueue::new());
        for item in [1, 2, 3] {
            queue.push(item).unwrap();
        }
        let producer = waiting_producer(&queue, 1);
        assert_eq!(queue.pop(), Some(1));
        assert_eq!(lock(&queue.state).producer_waits_for, Some(1), "2 left");
        assert_eq!(queue.try_pop(), Ok(Some(2)));
        let (waited, took) = producer.join().unwrap();
        assert!(waited);
        assert!(took < Duration::from_secs(30), "woken only by its bound");
        assert_eq!(queue.len(), 1);
    }

    #[test]
    fn closing_the_queue_wakes_a_waiting_producer() {
        let queue: Arc<WorkQueue<u32>> = Arc::new(WorkQueue::new());
        queue.push(1).unwrap();
        let producer = waiting_producer(&queue, 0);
        assert_eq!(queue.close(), [1]);
        let (waited, took) = producer.join().unwrap();
        assert!(waited);
        assert!(took < Duration::from_secs(30), "woken only by its bound");
    }
}
