//! Sends a plugin's request to addresses the policy has already checked, so the
//! name is never resolved a second time between the check and the connection.

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody};

/// What wasi:http assumes when the plugin sets no timeout.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

trait Transport: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Transport for T {}

/// Built once: the roots are parsed once and TLS sessions can be resumed across
/// requests. The provider is named so that the one compiled in for
/// wasmtime-wasi-http is used, never a process-wide default.
static TLS_CONFIG: LazyLock<Result<Arc<rustls::ClientConfig>, rustls::Error>> =
    LazyLock::new(|| {
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.into(),
        };
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
        Ok(Arc::new(config))
    });

/// Sends `request` over a connection to the first of `addresses` that accepts
/// one; TLS for https, checked against the URI's host. Returns the response and
/// the connection's I/O, which must be driven for the body to arrive.
pub(super) async fn send_to(
    mut request: http::Request<WasiBody>,
    addresses: Vec<SocketAddr>,
    options: Option<RequestOptions>,
) -> Result<
    (
        http::Response<TimedBody>,
        impl Future<Output = Result<(), HttpError>> + Send,
    ),
    HttpError,
> {
    let timeout = |pick: fn(&RequestOptions) -> Option<Duration>| {
        options.as_ref().and_then(pick).unwrap_or(DEFAULT_TIMEOUT)
    };
    let connect_timeout = timeout(|o| o.connect_timeout);
    let first_byte_timeout = timeout(|o| o.first_byte_timeout);
    let between_bytes_timeout = timeout(|o| o.between_bytes_timeout);

    let uri = request.uri();
    let host = uri
        .host()
        .ok_or(HttpError::HttpRequestUriInvalid)?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let use_tls = uri.scheme() == Some(&http::uri::Scheme::HTTPS);

    let tcp = connect_first(&addresses, connect_timeout).await?;
    let stream: Box<dyn Transport> = if use_tls {
        let config = TLS_CONFIG
            .as_ref()
            .map_err(|error| HttpError::InternalError(Some(format!("TLS set-up: {error}"))))?;
        let server_name = rustls::pki_types::ServerName::try_from(host)?;
        let handshake =
            tokio_rustls::TlsConnector::from(Arc::clone(config)).connect(server_name, tcp);
        let tls = tokio::time::timeout(connect_timeout, handshake)
            .await
            .map_err(|_| HttpError::ConnectionTimeout)?
            .map_err(HttpError::Tls)?;
        Box::new(tls)
    } else {
        Box::new(tcp)
    };
    let (mut sender, mut connection) = tokio::time::timeout(
        connect_timeout,
        hyper::client::conn::http1::handshake(TokioIo::new(stream)),
    )
    .await
    .map_err(|_| HttpError::ConnectionTimeout)??;

    // Scheme and authority belong in the request line only when talking to a
    // proxy; the origin server gets the path.
    let path = uri
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| http::uri::PathAndQuery::from_static("/"));
    *request.uri_mut() = http::Uri::from(path);

    let exchange = async move {
        tokio::time::timeout(first_byte_timeout, sender.send_request(request))
            .await
            .map_err(|_| HttpError::ConnectionReadTimeout)?
            .map_err(HttpError::from)
    };
    tokio::pin!(exchange);
    // hyper's connection does the reading and writing: it has to run while the
    // response is awaited, and may finish first when the server closes early.
    let (response, connection) = tokio::select! {
        response = &mut exchange => (response?, Some(connection)),
        finished = &mut connection => {
            finished.map_err(connection_error)?;
            (exchange.await?, None)
        }
    };
    let response = response.map(|incoming| TimedBody {
        incoming,
        between_bytes: between_bytes_timeout,
        deadline: Box::pin(tokio::time::sleep(between_bytes_timeout)),
    });
    let io = async move {
        match connection {
            Some(connection) => connection.await.map_err(connection_error),
            None => Ok(()),
        }
    };
    Ok((response, io))
}

/// The first address that accepts a connection, each tried for `timeout`; the
/// last failure when none does.
async fn connect_first(
    addresses: &[SocketAddr],
    timeout: Duration,
) -> Result<TcpStream, HttpError> {
    let mut failure = HttpError::DestinationNotFound;
    for address in addresses {
        match tokio::time::timeout(timeout, TcpStream::connect(address)).await {
            Ok(Ok(stream)) => return Ok(stream),
            Ok(Err(error)) => failure = HttpError::Connect(error),
            Err(_) => failure = HttpError::ConnectionTimeout,
        }
    }
    Err(failure)
}

fn connection_error(error: hyper::Error) -> HttpError {
    if error.is_timeout() {
        HttpError::HttpResponseTimeout
    } else {
        HttpError::from(error)
    }
}

/// A response body that fails when no data arrives for the between-bytes timeout.
pub(super) struct TimedBody {
    incoming: hyper::body::Incoming,
    between_bytes: Duration,
    deadline: Pin<Box<Sleep>>,
}

impl Body for TimedBody {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        match Pin::new(&mut self.incoming).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                // Too long to add to now: the far-off deadline `sleep` chose stays.
                if let Some(next) = Instant::now().checked_add(self.between_bytes) {
                    self.deadline.as_mut().reset(next);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(error))) => Poll::Ready(Some(Err(connection_error(error)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match self.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(HttpError::ConnectionReadTimeout))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.incoming.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.incoming.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, Empty};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    fn empty_body() -> WasiBody {
        Empty::<Bytes>::new()
            .map_err(|never| match never {})
            .boxed_unsync()
    }

    /// Answers one request with `ok` and hands back its request head.
    async fn one_shot_server() -> (SocketAddr, tokio::task::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let served = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut head = Vec::new();
            let mut buffer = [0u8; 1024];
            while !head.ends_with(b"\r\n\r\n") {
                let read = socket.read(&mut buffer).await.unwrap();
                assert!(read > 0, "the client closed before the request ended");
                head.extend_from_slice(&buffer[..read]);
            }
            socket
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                .await
                .unwrap();
            String::from_utf8(head).unwrap()
        });
        (address, served)
    }

    #[tokio::test]
    async fn connects_to_the_given_addresses_in_order_without_resolving_the_name() {
        let (server, served) = one_shot_server().await;
        // Bound and dropped: nothing listens there, so the first try is refused.
        let closed = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap();
        let request = http::Request::get(format!(
            "http://nowhere.invalid:{}/api/data?x=1",
            server.port()
        ))
        .header(http::header::HOST, "nowhere.invalid")
        .body(empty_body())
        .unwrap();
        let (response, io) = send_to(request, vec![closed, server], None).await.unwrap();
        let io = tokio::spawn(io);
        assert_eq!(response.status(), 200);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"ok");
        let head = served.await.unwrap();
        assert!(
            head.starts_with("GET /api/data?x=1 HTTP/1.1\r\n"),
            "the request line carries the path only: {head}"
        );
        assert!(
            head.to_ascii_lowercase()
                .contains("host: nowhere.invalid\r\n")
        );
        drop(io);
    }

    #[tokio::test]
    async fn no_address_accepting_is_a_connection_error() {
        let closed = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap();
        let request = http::Request::get(format!("http://nowhere.invalid:{}/", closed.port()))
            .body(empty_body())
            .unwrap();
        let error = send_to(request, vec![closed], None).await.err().unwrap();
        assert!(matches!(error, HttpError::Connect(_)), "{error}");
    }

    #[tokio::test]
    async fn https_speaks_tls_to_the_pinned_address() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = listener.local_addr().unwrap();
        // Answers whatever comes first, the client hello, in plain HTTP.
        let served = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let _ = socket.read(&mut [0u8; 1024]).await.unwrap();
            socket
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                .await
                .unwrap();
            socket
        });
        let request = http::Request::get(format!("https://nowhere.invalid:{}/", server.port()))
            .body(empty_body())
            .unwrap();
        let error = send_to(request, vec![server], None).await.err().unwrap();
        assert!(matches!(error, HttpError::Tls(_)), "{error}");
        drop(served.await.unwrap());
    }
}
