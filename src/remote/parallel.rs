//! A few transfers at once: a remote's latency, not its bandwidth, bounds a transfer of
//! many small objects.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Requests in flight at once.
pub(super) const TRANSFERS: usize = 8;

/// Calls `f` on every item from a few threads; stops handing out items at the first
/// error, which it returns once the calls under way have ended.
pub(super) fn for_each<'a, T: Sync, E: Send>(
    items: &'a [T],
    f: impl Fn(&'a T) -> Result<(), E> + Sync,
) -> Result<(), E> {
    let next = AtomicUsize::new(0);
    let first_error = Mutex::new(None);
    let threads = TRANSFERS.min(items.len());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    if first_error.lock().expect("not poisoned").is_some() {
                        return;
                    }
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else { return };
                    if let Err(e) = f(item) {
                        first_error.lock().expect("not poisoned").get_or_insert(e);
                        return;
                    }
                }
            });
        }
    });
    match first_error.into_inner().expect("not poisoned") {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_item_once_and_the_error_returned() {
        let seen = Mutex::new(Vec::new());
        for_each(&(0..100).collect::<Vec<u32>>(), |&i| {
            seen.lock().unwrap().push(i);
            Ok::<(), ()>(())
        })
        .unwrap();
        let mut seen = seen.into_inner().unwrap();
        seen.sort();
        assert_eq!(seen, (0..100).collect::<Vec<_>>());
        let failed = for_each(&[1, 2, 3], |&i| if i == 2 { Err(i) } else { Ok(()) });
        assert_eq!(failed, Err(2));
    }
}
