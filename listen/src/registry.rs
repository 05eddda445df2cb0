//! The connections of one listener: what each is doing, the caps, and which one to close
//! when a new connection needs room.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::Limits;

static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

fn now_ms() -> u64 {
    EPOCH.elapsed().as_millis() as u64
}

/// `after` past the moment `ms` (ms since [`EPOCH`]).
fn instant_after(ms: u64, after: Duration) -> tokio::time::Instant {
    tokio::time::Instant::from_std(*EPOCH + Duration::from_millis(ms) + after)
}

/// What one connection is doing, shared by its task, its I/O and the registry.
#[derive(Debug)]
pub(crate) struct ConnState {
    /// Requests being answered (HTTP/1.1: 0 or 1).
    busy: AtomicUsize,
    /// When the connection last had no request in progress (ms since [`EPOCH`]).
    idle_since: AtomicU64,
    /// When the client last sent a byte.
    last_read: AtomicU64,
    /// When the first byte of the next request head arrived (ms since [`EPOCH`], plus 1;
    /// 0: none since the last request began).
    head_since: AtomicU64,
    /// Close the connection (the registry chose it to make room).
    pub(crate) evicted: Notify,
    /// Busy turned to idle: the idle deadline moved.
    pub(crate) changed: Notify,
}

impl ConnState {
    fn new() -> Self {
        let now = now_ms();
        Self {
            busy: AtomicUsize::new(0),
            idle_since: AtomicU64::new(now),
            last_read: AtomicU64::new(now),
            head_since: AtomicU64::new(0),
            evicted: Notify::new(),
            changed: Notify::new(),
        }
    }

    pub(crate) fn touch_read(&self) {
        let now = now_ms();
        self.last_read.store(now, Ordering::Relaxed);
        // Bytes while no request is in progress begin the next request's head: its
        // timer starts now (the connection's task is told, to wake in time for it).
        if self.is_idle() && self.head_since.compare_exchange(0, now + 1, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
            self.changed.notify_one();
        }
    }

    /// The connection is set up (TLS handshake done): the bytes so far were not a head.
    pub(crate) fn ready_for_requests(&self) {
        self.head_since.store(0, Ordering::Release);
    }

    pub(crate) fn begin_request(&self) {
        self.busy.fetch_add(1, Ordering::SeqCst);
        self.head_since.store(0, Ordering::Release);
    }

    pub(crate) fn end_request(&self) {
        self.idle_since.store(now_ms(), Ordering::Relaxed);
        self.busy.fetch_sub(1, Ordering::SeqCst);
        self.changed.notify_one();
    }

    /// When the request head in progress must be complete (`header` after its first
    /// byte); `None` when no head is being received.
    pub(crate) fn head_deadline(&self, header: Duration) -> Option<tokio::time::Instant> {
        let since = self.head_since.load(Ordering::Acquire).checked_sub(1)?;
        self.is_idle().then(|| instant_after(since, header))
    }

    /// Whether a request head has been arriving for `header` without completing.
    pub(crate) fn head_expired(&self, header: Duration) -> bool {
        self.head_deadline(header).is_some_and(|at| at <= tokio::time::Instant::now())
    }

    pub(crate) fn is_idle(&self) -> bool {
        self.busy.load(Ordering::SeqCst) == 0
    }

    /// Since when the connection has been idle and silent, if it is idle.
    fn quiet_since(&self) -> Option<u64> {
        self.is_idle().then(|| self.idle_since.load(Ordering::Relaxed).max(self.last_read.load(Ordering::Relaxed)))
    }

    /// When an idle connection times out; `None` while a request is in progress.
    pub(crate) fn idle_deadline(&self, idle: Duration) -> Option<tokio::time::Instant> {
        let since = self.quiet_since()?;
        Some(instant_after(since, idle))
    }

    /// Whether the connection has been idle and silent for `idle`.
    pub(crate) fn idle_expired(&self, idle: Duration) -> bool {
        self.quiet_since().is_some_and(|since| now_ms().saturating_sub(since) >= idle.as_millis() as u64)
    }
}

struct Entry {
    ip: IpAddr,
    state: Arc<ConnState>,
}

#[derive(Default)]
struct Connections {
    next_id: u64,
    open: HashMap<u64, Entry>,
    per_address: HashMap<IpAddr, usize>,
}

impl Connections {
    fn remove(&mut self, id: u64) -> Option<Entry> {
        let entry = self.open.remove(&id)?;
        if let Some(n) = self.per_address.get_mut(&entry.ip) {
            *n -= 1;
            if *n == 0 {
                self.per_address.remove(&entry.ip);
            }
        }
        Some(entry)
    }

    /// Closes an idle connection to make room: the one from `ip` silent the longest when
    /// `ip` is given; otherwise one of the address holding the most connections (a flood
    /// closes its own sockets first), the longest silent among them. False when no
    /// connection that could go is idle.
    fn evict_idlest(&mut self, ip: Option<IpAddr>) -> bool {
        let victim = self
            .open
            .iter()
            .filter(|(_, e)| ip.is_none_or(|ip| e.ip == ip))
            .filter_map(|(id, e)| {
                let held = self.per_address.get(&e.ip).copied().unwrap_or(0);
                e.state.quiet_since().map(|quiet| (std::cmp::Reverse(held), quiet, *id))
            })
            .min()
            .map(|(_, _, id)| id);
        match victim.and_then(|id| self.remove(id)) {
            Some(entry) => {
                entry.state.evicted.notify_one();
                true
            }
            None => false,
        }
    }
}

/// The connections of one listener.
pub(crate) struct Registry {
    limits: Limits,
    connections: Mutex<Connections>,
}

impl Registry {
    pub(crate) fn new(limits: Limits) -> Self {
        Self { limits, connections: Mutex::new(Connections::default()) }
    }

    /// Room for a new connection from `ip`, closing the idlest connection when a cap is
    /// reached; `None` when every connection that could make room is busy.
    pub(crate) fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<Slot> {
        let mut c = self.connections.lock().unwrap_or_else(|e| e.into_inner());
        let per_address = self.limits.max_connections_per_address;
        if per_address > 0 && c.per_address.get(&ip).copied().unwrap_or(0) >= per_address && !c.evict_idlest(Some(ip)) {
            return None;
        }
        if c.open.len() >= self.limits.max_connections.max(1) && !c.evict_idlest(None) {
            return None;
        }
        c.next_id += 1;
        let id = c.next_id;
        let state = Arc::new(ConnState::new());
        c.open.insert(id, Entry { ip, state: state.clone() });
        *c.per_address.entry(ip).or_insert(0) += 1;
        Some(Slot { id, state, registry: self.clone() })
    }
}

/// A connection's place in the registry, given back when dropped.
pub(crate) struct Slot {
    id: u64,
    pub(crate) state: Arc<ConnState>,
    registry: Arc<Registry>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.registry.connections.lock().unwrap_or_else(|e| e.into_inner()).remove(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry(total: usize, per_address: usize) -> Arc<Registry> {
        Arc::new(Registry::new(Limits {
            max_connections: total,
            max_connections_per_address: per_address,
            ..Limits::default()
        }))
    }

    #[test]
    fn a_full_listener_closes_the_idlest_connection_and_refuses_when_all_are_busy() {
        let r = registry(2, 0);
        let a = r.admit([10, 0, 0, 1].into()).unwrap();
        std::thread::sleep(Duration::from_millis(5));
        let b = r.admit([10, 0, 0, 2].into()).unwrap();
        b.state.touch_read();
        let c = r.admit([10, 0, 0, 3].into()).expect("room made");
        assert!(futures_ready(&a.state.evicted), "the idlest (a) was told to close");
        assert!(!futures_ready(&b.state.evicted));
        b.state.begin_request();
        c.state.begin_request();
        assert!(r.admit([10, 0, 0, 4].into()).is_none(), "every connection busy: refused");
        c.state.end_request();
        assert!(r.admit([10, 0, 0, 4].into()).is_some());
    }

    #[test]
    fn a_full_listener_closes_a_socket_of_the_address_holding_the_most() {
        let r = registry(4, 0);
        let mine = r.admit([10, 0, 0, 1].into()).unwrap();
        std::thread::sleep(Duration::from_millis(5));
        let flood: Vec<Slot> = (0..3).map(|_| r.admit([10, 0, 0, 66].into()).unwrap()).collect();
        r.admit([10, 0, 0, 66].into()).expect("room made");
        assert!(!futures_ready(&mine.state.evicted), "the older, idle connection of another address stays");
        assert!(futures_ready(&flood[0].state.evicted), "the flood's own idlest socket went");
    }

    #[test]
    fn one_address_cannot_take_the_listener() {
        let r = registry(100, 2);
        let flood: Vec<Slot> = (0..2).map(|_| r.admit([10, 0, 0, 9].into()).unwrap()).collect();
        for s in &flood {
            s.state.begin_request();
        }
        assert!(r.admit([10, 0, 0, 9].into()).is_none(), "the address is at its cap, all busy");
        assert!(r.admit([10, 0, 0, 1].into()).is_some(), "another address is served");
        flood[0].state.end_request();
        assert!(r.admit([10, 0, 0, 9].into()).is_some(), "an idle one of its own made room");
    }

    /// Whether a `notify_one` permit is waiting.
    fn futures_ready(n: &Notify) -> bool {
        let fut = n.notified();
        tokio::pin!(fut);
        fut.as_mut().enable()
    }
}
