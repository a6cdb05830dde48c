//! A client of the local agent API, over loopback TCP or its Unix socket:
//! what `mesh-node task …`, `grant`, `revoke` and `mcp` use. One request
//! per connection (the API is local; there is nothing to keep warm).

use std::path::Path;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;

use super::ApiAddr;
use crate::config::NodeConfigFile;

/// The largest answer read (a list of 1,000 tasks with outputs).
pub const MAX_ANSWER: usize = 64 * 1024 * 1024;

/// Why a call did not get an answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No connection.
    #[error(
        "cannot reach the agent API at {addr}: {source} (is `mesh-node run` up, with `api` set?)"
    )]
    Connect {
        /// Where.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// HTTP failed.
    #[error("the agent API at {addr}: {message}")]
    Http {
        /// Where.
        addr: String,
        /// What.
        message: String,
    },
    /// The API answered with an error.
    #[error(
        "{}{message} ({error}{})",
        field.as_deref().map(|f| format!("{f}: ")).unwrap_or_default(),
        rule.as_deref().map(|r| format!(", rule {r}")).unwrap_or_default()
    )]
    Api {
        /// The HTTP status.
        status: u16,
        /// The stable code.
        error: String,
        /// The input field that is wrong.
        field: Option<String>,
        /// The rule that refused, if a peer or the gate did.
        rule: Option<String>,
        /// For people.
        message: String,
    },
    /// The config or token could not be read.
    #[error("{0}")]
    Setup(String),
}

/// A client of one node's agent API.
#[derive(Debug, Clone)]
pub struct ApiClient {
    addr: ApiAddr,
    token: String,
    /// Bound on one call (long-polls add their wait).
    pub timeout: Duration,
}

impl ApiClient {
    /// A client of the API at `addr` with `token`.
    pub fn new(addr: ApiAddr, token: String) -> Self {
        ApiClient {
            addr,
            token,
            timeout: Duration::from_secs(90),
        }
    }

    /// A client of the API `node.toml` at `config` sets up (its `api` and
    /// token file).
    pub fn from_config(config: &Path) -> Result<Self, ClientError> {
        let c = NodeConfigFile::load(config).map_err(|e| ClientError::Setup(e.to_string()))?;
        let addr = c.api.ok_or_else(|| {
            ClientError::Setup(format!(
                "{} sets no `api`: the node serves no agent API",
                config.display()
            ))
        })?;
        let token =
            super::token::read(&c.api_token_file).map_err(|e| ClientError::Setup(e.to_string()))?;
        Ok(ApiClient::new(addr, token))
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> Result<Value, ClientError> {
        self.call(Method::GET, path, None).await.map(|(_, v)| v)
    }

    /// `POST path` with a JSON body; the status (201, 204…) and the answer
    /// (null when there is none).
    pub async fn post(&self, path: &str, body: &Value) -> Result<(u16, Value), ClientError> {
        self.call(Method::POST, path, Some(body)).await
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value), ClientError> {
        let addr = self.addr.to_string();
        let http = |message: String| ClientError::Http {
            addr: addr.clone(),
            message,
        };
        let host = match &self.addr {
            ApiAddr::Tcp(a) => a.to_string(),
            ApiAddr::Unix(_) => "localhost".into(),
        };
        let bytes = body.map(|b| b.to_string()).unwrap_or_default();
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, host)
            .header(
                hyper::header::AUTHORIZATION,
                format!("Bearer {}", self.token),
            );
        if body.is_some() {
            request = request.header(hyper::header::CONTENT_TYPE, "application/json");
        }
        let request = request
            .body(Full::new(Bytes::from(bytes)))
            .map_err(|e| http(e.to_string()))?;
        let call = async {
            let response = match &self.addr {
                ApiAddr::Tcp(a) => {
                    let stream = tokio::net::TcpStream::connect(a).await;
                    send(stream, request, &addr).await?
                }
                ApiAddr::Unix(p) => {
                    let stream = tokio::net::UnixStream::connect(p).await;
                    send(stream, request, &addr).await?
                }
            };
            let status = response.status();
            let body = http_body_util::Limited::new(response.into_body(), MAX_ANSWER)
                .collect()
                .await
                .map_err(|e| http(format!("reading the answer: {e}")))?
                .to_bytes();
            Ok::<_, ClientError>((status, body))
        };
        let (status, body) = tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| http(format!("no answer within {:?}", self.timeout)))??;
        let value: Value = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&body).map_err(|e| http(format!("not JSON: {e}")))?
        };
        if status.is_success() {
            return Ok((status.as_u16(), value));
        }
        Err(api_error(status, &value))
    }
}

async fn send<S>(
    stream: std::io::Result<S>,
    request: Request<Full<Bytes>>,
    addr: &str,
) -> Result<hyper::Response<hyper::body::Incoming>, ClientError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let stream = stream.map_err(|source| ClientError::Connect {
        addr: addr.to_string(),
        source,
    })?;
    let http = |message: String| ClientError::Http {
        addr: addr.to_string(),
        message,
    };
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| http(e.to_string()))?;
    tokio::spawn(conn);
    sender
        .send_request(request)
        .await
        .map_err(|e| http(e.to_string()))
}

fn api_error(status: StatusCode, value: &Value) -> ClientError {
    let text = |k: &str| value.get(k).and_then(Value::as_str).map(str::to_string);
    ClientError::Api {
        status: status.as_u16(),
        error: text("error").unwrap_or_else(|| status.to_string()),
        field: text("field"),
        rule: text("rule"),
        message: text("message").unwrap_or_default(),
    }
}
