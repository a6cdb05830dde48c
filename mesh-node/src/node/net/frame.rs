//! The request-response codec of the node's protocols: each request or
//! response is one deterministic-CBOR item (PROTOCOL.md §2) filling its
//! own stream, at most the protocol's frame size.
//!
//! Unlike libp2p's CBOR codec, a frame over the bound is refused (not cut
//! at the bound and decoded), bytes after the item are refused, and a frame
//! that does not decode is not an I/O error — request-response would only
//! debug-log that — but a [`BadFrame`] the node sees and counts as a
//! strike against the sender.

use std::io;
use std::marker::PhantomData;

use futures::prelude::*;
use libp2p::StreamProtocol;
use libp2p::request_response::Codec;
use mesh_iatp::cbor::{self, CborError};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Why a frame a peer sent was not a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadFrame {
    /// More bytes than the protocol allows; the rest was not read.
    #[error("frame is over the {max}-byte limit")]
    Oversized {
        /// The protocol's bound.
        max: u64,
    },
    /// Not one deterministic-CBOR item of the expected shape.
    #[error("frame does not decode: {0}")]
    Undecodable(CborError),
}

/// What was read from a stream: a message, or why it is not one.
pub type Frame<T> = Result<T, BadFrame>;

/// The codec for requests `Req` and responses `Resp`, frames at most `max`
/// bytes.
pub struct FrameCodec<Req, Resp> {
    max: u64,
    _types: PhantomData<fn() -> (Req, Resp)>,
}

impl<Req, Resp> FrameCodec<Req, Resp> {
    /// Frames of at most `max` bytes.
    pub fn new(max: u64) -> Self {
        FrameCodec {
            max,
            _types: PhantomData,
        }
    }
}

impl<Req, Resp> Clone for FrameCodec<Req, Resp> {
    fn clone(&self) -> Self {
        FrameCodec::new(self.max)
    }
}

/// Read a stream to its end, at most `max` bytes, and decode it.
async fn read<T, R>(io: &mut R, max: u64) -> io::Result<Frame<T>>
where
    T: DeserializeOwned + Serialize,
    R: AsyncRead + Unpin + Send,
{
    let mut bytes = Vec::new();
    io.take(max + 1).read_to_end(&mut bytes).await?;
    if bytes.len() as u64 > max {
        return Ok(Err(BadFrame::Oversized { max }));
    }
    let bound = usize::try_from(max).unwrap_or(usize::MAX);
    Ok(cbor::from_canonical_slice(&bytes, bound).map_err(BadFrame::Undecodable))
}

/// Write one message and close the writing side.
async fn write<T, W>(io: &mut W, frame: Frame<T>) -> io::Result<()>
where
    T: Serialize,
    W: AsyncWrite + Unpin + Send,
{
    let message = frame.map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let bytes = cbor::to_canonical_vec(&message)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    io.write_all(&bytes).await?;
    io.close().await
}

impl<Req, Resp> Codec for FrameCodec<Req, Resp>
where
    Req: DeserializeOwned + Serialize + Send + 'static,
    Resp: DeserializeOwned + Serialize + Send + 'static,
{
    type Protocol = StreamProtocol;
    type Request = Frame<Req>;
    type Response = Frame<Resp>;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Frame<Req>>
    where
        T: AsyncRead + Unpin + Send,
    {
        read(io, self.max).await
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Frame<Resp>>
    where
        T: AsyncRead + Unpin + Send,
    {
        read(io, self.max).await
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        request: Frame<Req>,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write(io, request).await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        response: Frame<Resp>,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write(io, response).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::protocol::IatpRequest;
    use serde_bytes::ByteBuf;

    fn read_now(bytes: &[u8], max: u64) -> Frame<IatpRequest> {
        futures::executor::block_on(read(&mut &bytes[..], max)).unwrap()
    }

    fn hello() -> Vec<u8> {
        cbor::to_canonical_vec(&IatpRequest::Hello(ByteBuf::from(vec![7; 10]))).unwrap()
    }

    #[test]
    fn a_frame_reads_back_as_written() {
        let mut out = Vec::new();
        let request = IatpRequest::Hello(ByteBuf::from(vec![7; 10]));
        futures::executor::block_on(write(&mut out, Ok(request.clone()))).unwrap();
        assert_eq!(out, hello());
        assert_eq!(read_now(&out, 64), Ok(request));
    }

    #[test]
    fn oversized_frames_are_refused_not_cut() {
        let mut padded = hello();
        let len = padded.len() as u64;
        assert!(read_now(&padded, len).is_ok());
        // One byte over the bound: libp2p's codec would read the bound and
        // decode the complete item in it.
        padded.push(0);
        assert_eq!(
            read_now(&padded, len),
            Err(BadFrame::Oversized { max: len })
        );
    }

    #[test]
    fn trailing_bytes_and_non_canonical_frames_are_refused() {
        let mut trailing = hello();
        trailing.push(0);
        assert!(matches!(
            read_now(&trailing, 1024),
            Err(BadFrame::Undecodable(CborError::TrailingBytes { extra: 1 }))
        ));
        // The bytes as text where the schema says bytes.
        let mut swapped = hello();
        let at = swapped.iter().position(|b| *b == 0x4a).unwrap(); // bytes(10)
        swapped[at] = 0x6a; // text(10): "\x07" × 10 is valid UTF-8
        assert!(matches!(
            read_now(&swapped, 1024),
            Err(BadFrame::Undecodable(_))
        ));
        assert!(read_now(&[0xff, 0x00], 1024).is_err());
        assert!(read_now(&[], 1024).is_err());
    }
}
