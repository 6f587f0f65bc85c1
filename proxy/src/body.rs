//! Collecting a body from its chunks under a size limit. The usual body
//! arrives in one chunk, which is kept as it is rather than copied.

use bytes::{Bytes, BytesMut};

#[derive(Default)]
pub struct Collected {
    first: Option<Bytes>,
    rest: BytesMut,
}

impl Collected {
    /// Adds `chunk`; false (and nothing added) when the body would exceed `limit` bytes.
    pub fn push(&mut self, chunk: Bytes, limit: u64) -> bool {
        let so_far = self.first.as_ref().map_or(0, Bytes::len) + self.rest.len();
        if (so_far + chunk.len()) as u64 > limit {
            return false;
        }
        match &self.first {
            None => self.first = Some(chunk),
            Some(_) => self.rest.extend_from_slice(&chunk),
        }
        true
    }

    pub fn finish(self) -> Bytes {
        match (self.first, self.rest.is_empty()) {
            (Some(first), true) => first,
            (Some(first), false) => {
                let mut all = BytesMut::with_capacity(first.len() + self.rest.len());
                all.extend_from_slice(&first);
                all.extend_from_slice(&self.rest);
                all.freeze()
            }
            (None, _) => Bytes::new(),
        }
    }
}
