//! [`HeldBack`]: a watermark a member holds back so that it rides with other traffic.

/// Something a member holds back so that it rides with other traffic: a client's
/// acknowledgement of what it delivered (in its next sent-broadcast batch), the
/// relayer's announcement of the stable watermark (in its next relay batch).
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct HeldBack {
    /// There is something to tell.
    due: bool,
    /// Relays and payload bytes it lags by.
    msgs: u64,
    bytes: usize,
    /// Send it on its own at the next drain, without waiting for traffic.
    now: bool,
}

impl HeldBack {
    /// Due at once (nothing to wait for).
    pub(super) fn now() -> HeldBack {
        HeldBack {
            due: true,
            now: true,
            ..HeldBack::default()
        }
    }

    /// It lags by `msgs` relays and `bytes` payload bytes more; past `every` (in
    /// relays, in bytes) it goes out on its own.
    pub(super) fn add(&mut self, msgs: u64, bytes: usize, every: (u64, usize)) {
        self.due = true;
        self.msgs += msgs;
        self.bytes += bytes;
        if self.msgs >= every.0 || self.bytes >= every.1 {
            self.now = true;
        }
    }

    /// A tick came: whatever is due goes out on its own.
    pub(super) fn tick(&mut self) {
        self.now |= self.due;
    }

    /// Whether a tick would send it.
    pub(super) fn wants_tick(&self) -> bool {
        self.due && !self.now
    }

    /// Whether it goes out on its own at the next drain.
    pub(super) fn send_now(&self) -> bool {
        self.due && self.now
    }
}
