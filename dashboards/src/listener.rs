//! The HTTP accept loop (the dashboard's, and the local agent API's on TCP
//! or a Unix socket), with the bounds axum's `serve` lacks: a
//! connection cap overall and per client address, and a deadline for each
//! request's header (which also closes a keep-alive connection left idle).
//! Without them, a thousand held half-open requests starved the node
//! around the dashboard; with them an attacker holds at most
//! [`ConnLimits::per_ip`] connections from its address, each for at most
//! [`ConnLimits::header_timeout`] without sending a request.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::watch;

/// Bounds on the dashboard's connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnLimits {
    /// Open connections at most; one more is closed as soon as accepted.
    pub max_connections: usize,
    /// Open connections from one client address at most.
    pub per_ip: usize,
    /// Time to send a request's complete header, counted from the
    /// connection's opening or the end of the previous response.
    pub header_timeout: Duration,
}

impl Default for ConnLimits {
    fn default() -> Self {
        ConnLimits {
            max_connections: 256,
            per_ip: 64,
            header_timeout: Duration::from_secs(10),
        }
    }
}

/// Open connections by client address; an entry goes when its last
/// connection does, so the map holds at most `max_connections` entries.
#[derive(Default)]
struct Open {
    total: usize,
    by_ip: HashMap<IpAddr, usize>,
}

/// A connection's place among the open ones, given back when dropped.
struct Slot {
    open: Arc<Mutex<Open>>,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.total -= 1;
        if let Some(n) = open.by_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.by_ip.remove(&self.ip);
            }
        }
    }
}

/// A slot for a connection from `ip`, if the limits leave one.
fn admit(open: &Arc<Mutex<Open>>, ip: IpAddr, limits: &ConnLimits) -> Option<Slot> {
    let mut o = open.lock().unwrap_or_else(|p| p.into_inner());
    let from_ip = o.by_ip.get(&ip).copied().unwrap_or(0);
    if o.total >= limits.max_connections || from_ip >= limits.per_ip {
        return None;
    }
    o.total += 1;
    *o.by_ip.entry(ip).or_insert(0) += 1;
    Some(Slot {
        open: open.clone(),
        ip,
    })
}

/// Where a server accepts connections: a TCP socket, or a Unix socket
/// (whose clients are all local: they share one address's limits).
#[derive(Debug)]
pub enum Bound {
    /// TCP.
    Tcp(TcpListener),
    /// A Unix domain socket.
    Unix(UnixListener),
}

impl From<TcpListener> for Bound {
    fn from(l: TcpListener) -> Self {
        Bound::Tcp(l)
    }
}

impl From<UnixListener> for Bound {
    fn from(l: UnixListener) -> Self {
        Bound::Unix(l)
    }
}

/// One accepted connection.
enum Stream {
    Tcp(tokio::net::TcpStream),
    Unix(tokio::net::UnixStream),
}

impl Bound {
    async fn accept(&self) -> std::io::Result<(Stream, IpAddr)> {
        match self {
            Bound::Tcp(l) => l.accept().await.map(|(s, a)| (Stream::Tcp(s), a.ip())),
            Bound::Unix(l) => l
                .accept()
                .await
                .map(|(s, _)| (Stream::Unix(s), IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))),
        }
    }
}

/// Serve `router` on `listener` within `limits` until `stop` turns true;
/// connections open then finish their current response and close.
pub async fn serve(
    listener: impl Into<Bound>,
    router: Router,
    limits: ConnLimits,
    stop: watch::Receiver<bool>,
) {
    let listener = listener.into();
    let open = Arc::new(Mutex::new(Open::default()));
    let mut stopping = stop.clone();
    loop {
        let accepted = tokio::select! {
            _ = stopping.wait_for(|s| *s) => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, client) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors, most likely: wait, do not spin.
                tracing::warn!(error = %e, "http: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Some(slot) = admit(&open, client, &limits) else {
            tracing::debug!(%client, "http: connection limit reached; closed");
            continue;
        };
        match stream {
            Stream::Tcp(s) => connection(s, slot, client, router.clone(), limits, stop.clone()),
            Stream::Unix(s) => connection(s, slot, client, router.clone(), limits, stop.clone()),
        }
    }
}

/// Serve one connection on its own task, within the header deadline,
/// until it ends or `stop` turns true.
fn connection<S>(
    stream: S,
    slot: Slot,
    client: IpAddr,
    router: Router,
    limits: ConnLimits,
    mut stop: watch::Receiver<bool>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = TowerToHyperService::new(router);
    tokio::spawn(async move {
        let _slot = slot;
        let conn = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout)
            .serve_connection(TokioIo::new(stream), service);
        tokio::pin!(conn);
        let stopping = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(%client, error = %e, "http connection ended");
                }
            }
            () = stopping => {
                conn.as_mut().graceful_shutdown();
                let _ = conn.await;
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_bounded_overall_and_per_address_and_given_back() {
        let limits = ConnLimits {
            max_connections: 3,
            per_ip: 2,
            header_timeout: Duration::from_secs(1),
        };
        let open = Arc::new(Mutex::new(Open::default()));
        let (a, b, c): (IpAddr, IpAddr, IpAddr) = (
            "127.0.0.2".parse().unwrap(),
            "127.0.0.3".parse().unwrap(),
            "127.0.0.4".parse().unwrap(),
        );
        let a1 = admit(&open, a, &limits).unwrap();
        let _a2 = admit(&open, a, &limits).unwrap();
        assert!(admit(&open, a, &limits).is_none(), "per address");
        let _b1 = admit(&open, b, &limits).unwrap();
        assert!(admit(&open, c, &limits).is_none(), "overall");
        drop(a1);
        assert!(
            admit(&open, c, &limits).is_some(),
            "a freed slot is reusable"
        );
        let o = open.lock().unwrap();
        assert_eq!(o.by_ip.len(), 2, "c's entry went with its connection");
        assert_eq!(o.total, 2);
    }
}
