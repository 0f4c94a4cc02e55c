//! PutMedia acknowledgements: JSON objects streamed in the response body, one per event, as
//! `{"EventType":"PERSISTED","FragmentTimecode":..,"FragmentNumber":".."}`. Network reads do
//! not follow object boundaries, so bytes are buffered until an object is complete.

use serde::Deserialize;

/// One acknowledgement event.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Ack {
    pub(crate) event_type: String,
    #[serde(default)]
    pub(crate) fragment_timecode: Option<u64>,
    #[serde(default)]
    pub(crate) fragment_number: Option<String>,
    #[serde(default)]
    pub(crate) error_id: Option<u32>,
    #[serde(default)]
    pub(crate) error_code: Option<String>,
}

/// Longest run of bytes without a complete ack before the stream is declared garbage.
const MAX_PENDING: usize = 64 * 1024;

/// Splits a byte stream into acks.
#[derive(Debug, Default)]
pub(crate) struct AckDecoder {
    pending: Vec<u8>,
}

impl AckDecoder {
    /// Adds bytes and returns the acks they complete.
    pub(crate) fn push(&mut self, bytes: &[u8]) -> Result<Vec<Ack>, String> {
        self.pending.extend_from_slice(bytes);
        let mut acks = Vec::new();
        let mut stream = serde_json::Deserializer::from_slice(&self.pending).into_iter::<Ack>();
        let mut consumed = 0;
        loop {
            match stream.next() {
                Some(Ok(ack)) => {
                    consumed = stream.byte_offset();
                    acks.push(ack);
                }
                Some(Err(e)) if e.is_eof() => break,
                Some(Err(e)) => return Err(format!("unreadable acknowledgement: {e}")),
                None => {
                    consumed = self.pending.len();
                    break;
                }
            }
        }
        self.pending.drain(..consumed);
        if self.pending.len() > MAX_PENDING {
            return Err("acknowledgement stream holds no JSON object".into());
        }
        Ok(acks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acks_split_anywhere() {
        let text = concat!(
            "{\"EventType\":\"BUFFERING\",\"FragmentTimecode\":1000,\"FragmentNumber\":\"91\"}\n",
            "{\"EventType\":\"IDLE\"}\r\n",
            "{\"EventType\":\"ERROR\",\"FragmentTimecode\":3000,\"ErrorId\":4004,\"ErrorCode\":\"X\"}"
        );
        for cut in 0..text.len() {
            let mut decoder = AckDecoder::default();
            let mut acks = decoder.push(&text.as_bytes()[..cut]).unwrap();
            acks.extend(decoder.push(&text.as_bytes()[cut..]).unwrap());
            assert_eq!(acks.len(), 3, "cut at {cut}");
            assert_eq!(acks[0].fragment_timecode, Some(1000));
            assert_eq!(acks[1].event_type, "IDLE");
            assert_eq!(acks[2].error_id, Some(4004));
        }
        assert!(AckDecoder::default().push(b"<html>").is_err());
    }
}
