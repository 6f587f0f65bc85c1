//! Reading `text/event-stream` incrementally, as the WHATWG spec parses it:
//! lines end in LF, CRLF or CR; `data` lines join with LF; comments and
//! `retry` are skipped; an event with no data is not dispatched (the MCP
//! priming event). A one-line event's data is a slice of the received
//! bytes, not a copy.

use bytes::{Bytes, BytesMut};

/// One dispatched event.
#[derive(Debug, PartialEq)]
pub struct SseEvent {
    /// The `event:` field; `None` means the default, `message`.
    pub kind: Option<Bytes>,
    pub data: Bytes,
}

impl SseEvent {
    pub fn is_message(&self) -> bool {
        self.kind.as_deref().is_none_or(|k| k == b"message")
    }
}

#[derive(Debug, thiserror::Error)]
#[error("an SSE line or event is larger than {0} bytes")]
pub struct TooLarge(pub usize);

pub struct SseParser {
    buffer: BytesMut,
    data: Vec<Bytes>,
    data_len: usize,
    kind: Option<Bytes>,
    /// A CR ended the last line: a LF right after it belongs to that line.
    after_cr: bool,
    limit: usize,
}

impl SseParser {
    /// `limit`: the largest line or event accepted.
    pub fn new(limit: usize) -> SseParser {
        SseParser { buffer: BytesMut::new(), data: Vec::new(), data_len: 0, kind: None, after_cr: false, limit }
    }

    pub fn push(&mut self, chunk: &[u8]) {
        self.buffer.extend_from_slice(chunk);
    }

    /// The next complete event in what was pushed so far.
    pub fn next_event(&mut self) -> Result<Option<SseEvent>, TooLarge> {
        loop {
            if self.after_cr {
                match self.buffer.first() {
                    None => return Ok(None),
                    Some(b'\n') => {
                        let _ = self.buffer.split_to(1);
                    }
                    Some(_) => {}
                }
                self.after_cr = false;
            }
            let Some(end) = self.buffer.iter().position(|b| *b == b'\n' || *b == b'\r') else {
                if self.buffer.len() > self.limit {
                    return Err(TooLarge(self.limit));
                }
                return Ok(None);
            };
            let cr = self.buffer[end] == b'\r';
            let mut line = self.buffer.split_to(end + 1).freeze();
            line.truncate(end);
            if cr {
                match self.buffer.first() {
                    Some(b'\n') => {
                        let _ = self.buffer.split_to(1);
                    }
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
            if line.is_empty() {
                if let Some(event) = self.dispatch() {
                    return Ok(Some(event));
                }
                continue;
            }
            self.field(line)?;
        }
    }

    fn field(&mut self, line: Bytes) -> Result<(), TooLarge> {
        if line[0] == b':' {
            return Ok(()); // a comment (keep-alive)
        }
        let (name, value) = match line.iter().position(|b| *b == b':') {
            Some(colon) => {
                let start = if line.get(colon + 1) == Some(&b' ') { colon + 2 } else { colon + 1 };
                (line.slice(..colon), line.slice(start..))
            }
            None => (line.clone(), Bytes::new()),
        };
        match &name[..] {
            b"data" => {
                self.data_len += value.len() + 1;
                if self.data_len > self.limit {
                    return Err(TooLarge(self.limit));
                }
                self.data.push(value);
            }
            b"event" => self.kind = Some(value),
            _ => {} // id, retry, unknown fields
        }
        Ok(())
    }

    fn dispatch(&mut self) -> Option<SseEvent> {
        let kind = self.kind.take();
        self.data_len = 0;
        let data = match self.data.len() {
            0 => return None,
            1 => self.data.pop().unwrap_or_default(),
            _ => {
                let joined = self.data.join(&b"\n"[..]);
                self.data.clear();
                Bytes::from(joined)
            }
        };
        if data.is_empty() {
            return None;
        }
        Some(SseEvent { kind, data })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(chunks: &[&[u8]]) -> Vec<(Option<String>, String)> {
        let mut parser = SseParser::new(1 << 20);
        let mut out = Vec::new();
        for chunk in chunks {
            parser.push(chunk);
            while let Some(event) = parser.next_event().unwrap() {
                let kind = event.kind.map(|k| String::from_utf8(k.to_vec()).unwrap());
                out.push((kind, String::from_utf8(event.data.to_vec()).unwrap()));
            }
        }
        out
    }

    #[test]
    fn events_split_anywhere_and_any_line_ending() {
        let stream: &[u8] =
            b"id: 1\ndata: \n\n: keepalive\n\nevent: message\r\ndata: {\"a\":1}\r\n\r\ndata: x\rdata: y\r\r";
        let expected = vec![(Some("message".to_string()), "{\"a\":1}".to_string()), (None, "x\ny".to_string())];
        assert_eq!(all(&[stream]), expected);
        let split: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(all(&split), expected);
        let split: Vec<&[u8]> = stream.chunks(7).collect();
        assert_eq!(all(&split), expected);
    }

    #[test]
    fn endpoint_events_and_limits() {
        assert_eq!(
            all(&[b"event: endpoint\ndata: /message?sessionId=abc\n\n"]),
            vec![(Some("endpoint".into()), "/message?sessionId=abc".into())]
        );
        let mut parser = SseParser::new(8);
        parser.push(b"data: 0123456789");
        assert!(parser.next_event().is_err());
    }
}
