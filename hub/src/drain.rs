//! A graceful stop: once draining, the hub takes no new payment, lets every update already
//! under way finish (a proposal and its answer, the legs of a payment already routed), and
//! only then lets the process go.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// Counts the hub's updates under way and says whether new payments are still taken.
#[derive(Debug, Default)]
pub struct Work {
    draining: AtomicBool,
    active: AtomicUsize,
    idle: Notify,
}

/// One update under way; dropping it says it is over. Owned, so it can travel with the task
/// that finishes the work.
pub struct Busy(Arc<Work>);

impl Drop for Busy {
    fn drop(&mut self) {
        if self.0.active.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl Work {
    /// Counts an update that must be let finish (it belongs to work already taken on).
    pub fn enter(self: &Arc<Self>) -> Busy {
        self.active.fetch_add(1, Ordering::AcqRel);
        Busy(self.clone())
    }

    /// Whether new payments are refused.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    pub fn active(&self) -> usize {
        self.active.load(Ordering::Acquire)
    }

    /// Stops new payments and waits until no update is under way, at most `bound`; returns
    /// how many were still under way at the end.
    pub async fn drain(&self, bound: Duration) -> usize {
        self.draining.store(true, Ordering::Release);
        let wait = async {
            loop {
                let idle = self.idle.notified();
                if self.active() == 0 {
                    return;
                }
                idle.await;
            }
        };
        let _ = tokio::time::timeout(bound, wait).await;
        self.active()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn drain_waits_for_work_under_way_and_no_longer_than_its_bound() {
        let work = Arc::new(Work::default());
        let w = work.clone();
        let job = tokio::spawn(async move {
            let _busy = w.enter();
            tokio::time::sleep(Duration::from_millis(200)).await;
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        let started = std::time::Instant::now();
        assert_eq!(work.drain(Duration::from_secs(5)).await, 0);
        assert!(started.elapsed() >= Duration::from_millis(150));
        assert!(work.is_draining());
        job.await.unwrap();
        let _stuck = work.enter();
        assert_eq!(work.drain(Duration::from_millis(50)).await, 1);
    }
}
