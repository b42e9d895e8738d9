//! The two byte queues a session keeps per peer: what was received and not yet processed
//! ([`Inbox`]), and what is ready to be written ([`Outbox`]).
//!
//! Bytes move between them without copying: a received `BytesMut` is split and frozen into the
//! outgoing queue, so a tunnelled byte is copied in user space only once (by the `read` that
//! filled the inbox). Both queues release their memory when they drain, so an idle session holds
//! no data buffer.

use std::collections::VecDeque;
use std::io::IoSlice;

use bytes::{Buf, Bytes, BytesMut};

/// Bytes received from one peer and not yet processed.
///
/// `buf[..filled]` holds the received bytes; `buf[filled..]` is initialized spare room that reads
/// go into. Spare room is zeroed once when it is allocated, never per read: a read lends
/// `buf[filled..filled + n]` and commits what it filled.
#[derive(Debug, Default)]
pub(crate) struct Inbox {
    buf: BytesMut,
    filled: usize,
    /// Length of the room last handed out by `spare()` (to tell a short read).
    lent: usize,
    /// Bytes arrived since [`take_arrival`](Self::take_arrival) was last called.
    arrived: bool,
}

impl Inbox {
    /// Hands out `n` bytes of spare room to read into; `commit` keeps the ones that were filled.
    pub(crate) fn spare(&mut self, n: usize) -> &mut [u8] {
        if self.buf.len() - self.filled < n {
            // Out of room: keep only the data (reclaiming the front when nothing else holds the
            // allocation), then zero the new spare room once.
            self.buf.truncate(self.filled);
            self.buf.reserve(n);
            let capacity = self.buf.capacity();
            self.buf.resize(capacity, 0);
        }
        self.lent = n;
        &mut self.buf[self.filled..self.filled + n]
    }

    /// Whether `n` bytes read into the room last handed out by `spare()` is a short read: the
    /// peer had nothing more to send at that moment.
    pub(crate) fn is_short_read(&self, n: usize) -> bool {
        n < self.lent
    }

    /// Keeps the first `n` bytes of the room handed out by `spare()`; returns how many were kept.
    pub(crate) fn commit(&mut self, n: usize) -> usize {
        let n = n.min(self.buf.len() - self.filled);
        self.filled += n;
        self.arrived |= n > 0;
        n
    }

    /// Appends a copy of `data`.
    pub(crate) fn extend(&mut self, data: &[u8]) {
        let room = self.spare(data.len());
        room.copy_from_slice(data);
        self.commit(data.len());
    }

    /// The bytes waiting to be processed.
    pub(crate) fn data(&self) -> &[u8] {
        &self.buf[..self.filled]
    }

    /// Bytes waiting to be processed.
    pub(crate) fn len(&self) -> usize {
        self.filled
    }

    /// Whether nothing waits to be processed.
    pub(crate) fn is_empty(&self) -> bool {
        self.filled == 0
    }

    /// Bytes allocated.
    pub(crate) fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Takes the first `n` waiting bytes, zero-copy.
    pub(crate) fn take(&mut self, n: usize) -> Bytes {
        let n = n.min(self.filled);
        self.filled -= n;
        self.buf.split_to(n).freeze()
    }

    /// Takes every waiting byte, zero-copy.
    pub(crate) fn take_all(&mut self) -> Bytes {
        self.take(self.filled)
    }

    /// Runs `f` on the waiting bytes as a `BytesMut` it may split from the front (body decoders
    /// do), keeping what it leaves.
    pub(crate) fn with_data<R>(&mut self, f: impl FnOnce(&mut BytesMut) -> R) -> R {
        let spare = self.buf.split_off(self.filled);
        let result = f(&mut self.buf);
        self.filled = self.buf.len();
        // Contiguous again (the decoder only splits from the front): O(1).
        self.buf.unsplit(spare);
        result
    }

    /// Whether bytes arrived since the last call: lets a caller try something once per read.
    pub(crate) fn take_arrival(&mut self) -> bool {
        std::mem::take(&mut self.arrived)
    }

    /// Puts back, as a copy, the bytes just taken by [`take_all`](Self::take_all) (nothing was
    /// received since), for a caller that turned out not to want them. It is not an arrival.
    pub(crate) fn put_back(&mut self, data: &[u8]) {
        let (lent, arrived) = (self.lent, self.arrived);
        self.extend(data);
        (self.lent, self.arrived) = (lent, arrived);
    }

    /// The fast path for heads: if bytes arrived since the last try and everything waiting is
    /// one whole head — it ends with CRLF CRLF, does not start with an empty line, is at most
    /// `max` bytes — takes it and returns what `parse` makes of it. When `parse` refuses, the
    /// bytes are put back (a copy, at most once per read) for the scanner and the full parser.
    pub(crate) fn take_whole_head<T>(
        &mut self,
        max: usize,
        parse: impl FnOnce(Bytes) -> Option<T>,
    ) -> Option<T> {
        if !self.take_arrival() {
            return None;
        }
        let data = self.data();
        if !data.ends_with(b"\r\n\r\n")
            || matches!(data.first(), Some(b'\r' | b'\n'))
            || data.len() > max
        {
            return None;
        }
        let head = self.take_all();
        let parsed = parse(head.clone());
        if parsed.is_none() {
            self.put_back(&head);
        }
        parsed
    }

    /// Drops every waiting byte (used only once the peer's input is being discarded).
    pub(crate) fn clear(&mut self) {
        let _ = self.take_all();
    }

    /// Frees the allocation when nothing waits (an idle session holds no buffer).
    pub(crate) fn release_if_empty(&mut self) {
        if self.filled == 0 {
            self.buf = BytesMut::new();
        }
    }
}

/// Bytes ready to be written to one peer, in order.
///
/// The first chunk is kept inline: a head, or one relayed read, is usually all that is queued,
/// so most sessions never allocate the queue behind it.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    /// The chunk to write first; `None` only when nothing is queued.
    first: Option<Bytes>,
    /// The chunks after `first`, in order.
    rest: VecDeque<Bytes>,
    len: usize,
}

impl Outbox {
    /// Queues `bytes` after everything already queued.
    pub(crate) fn push(&mut self, bytes: Bytes) {
        if !bytes.is_empty() {
            self.len += bytes.len();
            if self.first.is_none() {
                self.first = Some(bytes);
            } else {
                self.rest.push_back(bytes);
            }
        }
    }

    /// Queues every chunk of `chunks`, in order.
    pub(crate) fn push_all(&mut self, chunks: &mut VecDeque<Bytes>) {
        for chunk in chunks.drain(..) {
            self.push(chunk);
        }
    }

    /// Bytes queued.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is queued.
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The first queued chunk.
    pub(crate) fn front(&self) -> Option<&[u8]> {
        self.first.as_deref()
    }

    /// Fills `slices` with the queued chunks, in order; returns how many were filled.
    pub(crate) fn gather<'a>(&'a self, slices: &mut [IoSlice<'a>]) -> usize {
        let mut n = 0;
        for (slot, chunk) in slices.iter_mut().zip(self.first.iter().chain(&self.rest)) {
            *slot = IoSlice::new(chunk);
            n += 1;
        }
        n
    }

    /// Removes the first `n` written bytes; returns how many were removed.
    pub(crate) fn consume(&mut self, mut n: usize) -> usize {
        n = n.min(self.len);
        let done = n;
        while n > 0 {
            let Some(front) = self.first.as_mut() else {
                break;
            };
            if front.len() <= n {
                n -= front.len();
                self.first = self.rest.pop_front();
            } else {
                front.advance(n);
                n = 0;
            }
        }
        self.len -= done;
        done
    }

    /// Frees the queue's allocation when nothing is queued.
    pub(crate) fn release_if_empty(&mut self) {
        if self.first.is_none() {
            self.rest = VecDeque::new();
        }
    }

    /// Drops everything queued (the peer is being abandoned).
    pub(crate) fn clear(&mut self) {
        self.first = None;
        self.rest = VecDeque::new();
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inbox_keeps_only_what_was_read() {
        let mut inbox = Inbox::default();
        inbox.spare(8)[..3].copy_from_slice(b"abc");
        assert_eq!(inbox.commit(3), 3);
        assert_eq!(inbox.data(), b"abc");
        inbox.spare(4);
        inbox.extend(b"d");
        assert_eq!(inbox.data(), b"abcd");
        assert_eq!(inbox.take_all(), Bytes::from_static(b"abcd"));
        assert!(inbox.is_empty());
    }

    #[test]
    fn inbox_lends_without_rezeroing_and_decoders_see_only_data() {
        let mut inbox = Inbox::default();
        inbox.spare(64);
        inbox.extend(b"0123456789");
        let capacity = inbox.capacity();
        inbox.spare(4).copy_from_slice(b"wxyz");
        inbox.commit(2);
        assert_eq!(inbox.capacity(), capacity, "room was reused");
        let seen = inbox.with_data(|data| {
            let front = data.split_to(3);
            (front, data.len())
        });
        assert_eq!(&seen.0[..], b"012");
        assert_eq!(
            seen.1, 9,
            "the decoder saw the 12 data bytes, not the spare room"
        );
        assert_eq!(inbox.data(), b"3456789wx");
    }

    #[test]
    fn inbox_put_back_restores_what_was_taken() {
        let mut inbox = Inbox::default();
        inbox.spare(64);
        inbox.extend(b"GET / HTTP/1.1\r\n\r\n");
        let lent = inbox.lent;
        assert!(inbox.take_arrival());
        assert!(!inbox.take_arrival(), "one answer per arrival");
        let taken = inbox.take_all();
        assert!(inbox.is_empty());
        inbox.put_back(&taken);
        assert_eq!(inbox.data(), &taken[..]);
        assert_eq!(inbox.lent, lent, "the short-read test is unaffected");
        assert!(!inbox.take_arrival(), "putting back is not an arrival");
        inbox.extend(b"more");
        assert_eq!(inbox.data(), b"GET / HTTP/1.1\r\n\r\nmore");
    }

    #[test]
    fn outbox_consumes_across_chunks() {
        let mut out = Outbox::default();
        out.push(Bytes::from_static(b"head"));
        out.push(Bytes::new());
        out.push(Bytes::from_static(b"body"));
        assert_eq!(out.len(), 8);
        assert_eq!(out.consume(6), 6);
        assert_eq!(out.front(), Some(&b"dy"[..]));
        assert_eq!(out.consume(10), 2);
        assert!(out.is_empty() && out.front().is_none());
        out.push(Bytes::from_static(b"a"));
        out.push(Bytes::from_static(b"bc"));
        out.push(Bytes::from_static(b"d"));
        let mut slices = [IoSlice::new(&[]); 4];
        assert_eq!(out.gather(&mut slices), 3);
        assert_eq!(&*slices[1], b"bc");
        assert_eq!(out.consume(2), 2);
        assert_eq!(out.front(), Some(&b"c"[..]));
    }
}
