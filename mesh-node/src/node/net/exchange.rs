//! One request-response protocol of the agent's (the handshake, actions)
//! as its own `NetworkBehaviour`, in the manner of rust-libp2p's
//! `protocols/rendezvous`: libp2p's request-response machinery inside,
//! the agent's vocabulary outside: what it emits is the agent's [`Input`]
//! (peers by [`Did`], requests by the agent's [`InboundId`] and
//! [`RequestId`]); response channels and
//! libp2p's request ids stay in here. A peer whose key is not Ed25519
//! cannot be an agent: its connection is closed.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use libp2p::request_response::{
    self, Message, OutboundRequestId, ProtocolSupport, ResponseChannel,
};
use libp2p::swarm::{CloseConnection, NetworkBehaviour, THandlerInEvent, ToSwarm};
use libp2p::{PeerId, StreamProtocol};
use mesh_agent::{InboundId, Input, Request, RequestId, Response};
use mesh_iatp::Did;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::super::{did_of, peer_of};
use super::frame::{Frame, FrameCodec};

/// What one protocol carries: its id, its bound on a frame, its messages,
/// and how they become the agent's.
pub trait Wire: Send + 'static {
    /// A request on this protocol.
    type Request: Serialize + DeserializeOwned + Send + std::fmt::Debug + 'static;
    /// An answer on this protocol.
    type Response: Serialize + DeserializeOwned + Send + std::fmt::Debug + 'static;
    /// The libp2p protocol id.
    const PROTOCOL: StreamProtocol;
    /// The largest request or answer read; a longer one is refused before
    /// it is buffered.
    const MAX_FRAME: u64;
    /// What a request is called in a malformed-input report.
    const WHAT: &'static str;
    /// A request, for the agent.
    fn request(request: Self::Request) -> Request;
    /// An answer, for the agent.
    fn response(response: Self::Response) -> Response;
    /// This protocol's request among the agent's, if it is one.
    fn outbound(request: Request) -> Option<Self::Request>;
    /// This protocol's answer among the agent's, if it is one.
    fn answer(response: Response) -> Option<Self::Response>;
}

/// Numbers inbound requests across every protocol of one node, so the
/// agent sees each [`InboundId`] once.
#[derive(Debug, Clone, Default)]
pub struct InboundIds(Arc<AtomicU64>);

impl InboundIds {
    fn next(&self) -> InboundId {
        InboundId(self.0.fetch_add(1, Ordering::Relaxed) + 1)
    }
}

type Inner<W> =
    request_response::Behaviour<FrameCodec<<W as Wire>::Request, <W as Wire>::Response>>;

/// The behaviour of one protocol `W`.
pub struct Exchange<W: Wire> {
    inner: Inner<W>,
    ids: InboundIds,
    /// Answers the agent owes, by the id it was given.
    inbound: HashMap<InboundId, ResponseChannel<Frame<W::Response>>>,
    /// Our requests awaiting an answer.
    outbound: HashMap<OutboundRequestId, RequestId>,
    /// Connections of peers that are not agents, to close.
    closing: VecDeque<PeerId>,
    /// Inputs for the agent beyond the one an event became.
    more: VecDeque<Input>,
}

impl<W: Wire> Exchange<W> {
    /// The protocol with a request timeout; inbound ids come from `ids`.
    pub fn new(config: request_response::Config, ids: InboundIds) -> Self {
        let codec = FrameCodec::new(W::MAX_FRAME);
        Exchange {
            inner: request_response::Behaviour::with_codec(
                codec,
                [(W::PROTOCOL, ProtocolSupport::Full)],
                config,
            ),
            ids,
            inbound: HashMap::new(),
            outbound: HashMap::new(),
            closing: VecDeque::new(),
            more: VecDeque::new(),
        }
    }

    /// Send the agent's request `id` to `to`. Returns false if it is not
    /// this protocol's or `to` has no libp2p identity.
    pub fn send(&mut self, to: &Did, id: RequestId, request: Request) -> bool {
        let (Some(peer), Some(request)) = (peer_of(to), W::outbound(request)) else {
            return false;
        };
        let out = self.inner.send_request(&peer, Ok(request));
        self.outbound.insert(out, id);
        true
    }

    /// Answer the request the agent knows as `id`. Returns false if the
    /// request is not this protocol's (or was answered already).
    pub fn respond(&mut self, id: InboundId, response: Response) -> bool {
        let Some(response) = W::answer(response) else {
            return false;
        };
        let Some(channel) = self.inbound.remove(&id) else {
            return false;
        };
        // The requester may have gone: nothing to do then.
        let _ = self.inner.send_response(channel, Ok(response));
        true
    }

    fn translate(
        &mut self,
        event: request_response::Event<Frame<W::Request>, Frame<W::Response>>,
    ) -> Option<Input> {
        match event {
            request_response::Event::Message { peer, message, .. } => {
                let Some(from) = did_of(&peer) else {
                    self.closing.push_back(peer);
                    return None;
                };
                // A frame that is not a message is a strike (the stream
                // is dropped unanswered).
                let malformed = |error: super::frame::BadFrame| Input::Malformed {
                    from: from.clone(),
                    what: W::WHAT,
                    error: error.to_string(),
                };
                match message {
                    Message::Request {
                        request, channel, ..
                    } => match request {
                        Ok(request) => {
                            let id = self.ids.next();
                            self.inbound.insert(id, channel);
                            let request = W::request(request);
                            Some(Input::Request { from, id, request })
                        }
                        Err(bad) => Some(malformed(bad)),
                    },
                    Message::Response {
                        request_id,
                        response,
                    } => {
                        let id = self.outbound.remove(&request_id)?;
                        match response {
                            Ok(response) => {
                                let response = W::response(response);
                                Some(Input::Response { from, id, response })
                            }
                            Err(bad) => {
                                let error = bad.to_string();
                                self.more.push_back(Input::RequestFailed { id, error });
                                Some(malformed(bad))
                            }
                        }
                    }
                }
            }
            request_response::Event::OutboundFailure {
                request_id, error, ..
            } => {
                let id = self.outbound.remove(&request_id)?;
                let error = error.to_string();
                Some(Input::RequestFailed { id, error })
            }
            // What is left here is ours or the connection's, not the
            // peer's: an answer we omitted or were late with, a stream that
            // closed (a frame that did not decode arrived as a message).
            request_response::Event::InboundFailure { peer, error, .. } => {
                tracing::debug!(%peer, %error, "inbound request failed");
                None
            }
            request_response::Event::ResponseSent { .. } => None,
        }
    }
}

impl<W: Wire> NetworkBehaviour for Exchange<W> {
    type ConnectionHandler = <Inner<W> as NetworkBehaviour>::ConnectionHandler;
    /// The agent's input: a request, an answer, a failure.
    type ToSwarm = Input;

    super::delegate_to_inner!();

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<ToSwarm<Input, THandlerInEvent<Self>>> {
        loop {
            if let Some(input) = self.more.pop_front() {
                return Poll::Ready(ToSwarm::GenerateEvent(input));
            }
            if let Some(peer_id) = self.closing.pop_front() {
                return Poll::Ready(ToSwarm::CloseConnection {
                    peer_id,
                    connection: CloseConnection::All,
                });
            }
            match super::polled(self.inner.poll(cx)) {
                Ok(event) => {
                    if let Some(input) = self.translate(event) {
                        return Poll::Ready(ToSwarm::GenerateEvent(input));
                    }
                }
                Err(passed) => return passed,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use futures::StreamExt;
    use libp2p::Swarm;
    use libp2p::swarm::SwarmEvent;
    use serde_bytes::ByteBuf;

    use super::super::IatpWire;
    use super::super::testing::{memory_addr, memory_swarm};
    use super::*;
    use crate::node::protocol::{ActionResponse, IatpRequest, IatpResponse};

    fn swarm(ids: InboundIds) -> Swarm<Exchange<IatpWire>> {
        memory_swarm(|_| {
            let config =
                request_response::Config::default().with_request_timeout(Duration::from_secs(5));
            Exchange::new(config, ids)
        })
    }

    /// The next event of `swarm`'s behaviour, bounded in time.
    async fn next_event(swarm: &mut Swarm<Exchange<IatpWire>>) -> Input {
        tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                if let SwarmEvent::Behaviour(e) = swarm.select_next_some().await {
                    return e;
                }
            }
        })
        .await
        .expect("an event within 10 s")
    }

    #[tokio::test]
    async fn requests_and_answers_travel_under_the_agents_ids() {
        let shared = InboundIds::default();
        // Another protocol of the server's took an id first.
        assert_eq!(shared.next(), InboundId(1));
        let mut server = swarm(shared.clone());
        let mut client = swarm(InboundIds::default());
        let server_did = did_of(server.local_peer_id()).unwrap();
        let client_did = did_of(client.local_peer_id()).unwrap();
        let addr = memory_addr();
        server.listen_on(addr.clone()).unwrap();
        client
            .dial(addr.clone().with_p2p(*server.local_peer_id()).unwrap())
            .unwrap();

        let hello = Request::Iatp(IatpRequest::Hello(ByteBuf::from(vec![7; 3])));
        assert!(
            !client.behaviour_mut().send(
                &server_did,
                RequestId(9),
                Request::Action(crate::node::protocol::ActionRequest::Consistency {
                    old: 1,
                    new: 2
                })
            ),
            "another protocol's request is not sent"
        );
        assert!(
            client
                .behaviour_mut()
                .send(&server_did, RequestId(9), hello.clone())
        );

        let (id, from) = loop {
            tokio::select! {
                e = next_event(&mut server) => match e {
                    Input::Request { from, id, request } => {
                        assert_eq!(format!("{request:?}"), format!("{hello:?}"));
                        break (id, from);
                    }
                    other => panic!("unexpected {other:?}"),
                },
                _ = client.select_next_some() => {}
            }
        };
        assert_eq!(from, client_did);
        assert_eq!(
            id,
            InboundId(2),
            "ids are shared across the node's protocols"
        );
        // An answer on the other protocol is refused and the request kept.
        let wrong = Response::Action(ActionResponse::Done);
        assert!(!server.behaviour_mut().respond(id, wrong));
        let answer = Response::Iatp(IatpResponse::Accepted);
        assert!(server.behaviour_mut().respond(id, answer));
        assert!(
            !server
                .behaviour_mut()
                .respond(id, Response::Iatp(IatpResponse::Accepted)),
            "a request is answered once"
        );
        loop {
            tokio::select! {
                e = next_event(&mut client) => match e {
                    Input::Response { from, id, response } => {
                        assert_eq!(from, server_did);
                        assert_eq!(id, RequestId(9));
                        assert!(matches!(response, Response::Iatp(IatpResponse::Accepted)));
                        break;
                    }
                    other => panic!("unexpected {other:?}"),
                },
                _ = server.select_next_some() => {}
            }
        }
    }
}
