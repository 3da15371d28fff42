//! One webhook POST: a fresh connection (TCP, then TLS for `https://`
//! against the system's CA store), HTTP/1.1 through hyper, the whole
//! attempt bounded by [`TIMEOUT`]. The answer is its status code; what
//! counts as delivered is the sender's call. This module must never retry,
//! log a header's value, or read more of the answer than its status.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, CONTENT_TYPE, HOST, USER_AGENT};
use hyper::Uri;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// The longest one attempt may take, from connecting to the answer's status.
pub const TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum PostError {
    #[error("{0:?} is not an http:// or https:// URL with a host")]
    Url(String),
    #[error("cannot connect to {authority}: {source}")]
    Connect {
        authority: String,
        #[source]
        source: std::io::Error,
    },
    #[error("TLS with {host} failed: {source}")]
    Tls {
        host: String,
        #[source]
        source: std::io::Error,
    },
    #[error("HTTP: {0}")]
    Http(#[from] hyper::Error),
    #[error("building the request: {0}")]
    Request(#[from] hyper::http::Error),
    #[error("no answer within {}s", TIMEOUT.as_secs())]
    Timeout,
}

/// Builds TLS client settings on the system's CA store, once per sender.
pub fn tls() -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    for e in &found.errors {
        tracing::warn!(error = %e, "webhooks: a system CA certificate could not be read");
    }
    let (added, _) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        tracing::warn!("webhooks: no system CA certificates found; https:// webhooks will fail (install ca-certificates)");
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("aws-lc-rs supports the default TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

/// POSTs `body` to `url` with `headers` (Content-Type, User-Agent and Host
/// are set here); returns the answer's status code.
pub async fn post(
    tls: &TlsConnector,
    url: &str,
    headers: &[(&'static str, String)],
    body: Vec<u8>,
) -> Result<u16, PostError> {
    match tokio::time::timeout(TIMEOUT, attempt(tls, url, headers, body)).await {
        Ok(r) => r,
        Err(_) => Err(PostError::Timeout),
    }
}

async fn attempt(
    tls: &TlsConnector,
    url: &str,
    headers: &[(&'static str, String)],
    body: Vec<u8>,
) -> Result<u16, PostError> {
    let bad = || PostError::Url(url.to_string());
    let uri: Uri = url.parse().map_err(|_| bad())?;
    let https = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => return Err(bad()),
    };
    let authority = uri.authority().ok_or_else(bad)?.as_str().to_string();
    let host = uri.host().filter(|h| !h.is_empty()).ok_or_else(bad)?;
    // An IPv6 literal comes bracketed in a URL, bare in a socket address.
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let path = uri.path_and_query().map_or("/", |p| p.as_str());

    let mut req = hyper::Request::post(path)
        .header(HOST, &authority)
        .header(CONTENT_TYPE, "application/json")
        .header(USER_AGENT, concat!("userdrop/", env!("CARGO_PKG_VERSION")));
    for (name, value) in headers {
        req = req.header(
            *name,
            HeaderValue::from_str(value).map_err(hyper::http::Error::from)?,
        );
    }
    let req = req.body(Full::new(Bytes::from(body)))?;

    let tcp = TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|source| PostError::Connect {
            authority: authority.clone(),
            source,
        })?;
    let _ = tcp.set_nodelay(true);
    if https {
        let name = rustls_pki_types::ServerName::try_from(host.clone()).map_err(|_| bad())?;
        let stream = tls
            .connect(name, tcp)
            .await
            .map_err(|source| PostError::Tls { host, source })?;
        send(stream, req).await
    } else {
        send(tcp, req).await
    }
}

async fn send<S>(stream: S, req: hyper::Request<Full<Bytes>>) -> Result<u16, PostError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    // The connection is driven beside the request, and dropped with it.
    let conn = tokio::spawn(conn);
    let result = sender.send_request(req).await;
    conn.abort();
    Ok(result?.status().as_u16())
}
