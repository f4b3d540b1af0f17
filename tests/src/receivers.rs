//! Real receivers for what the primary sends out, on 127.0.0.1: a webhook endpoint and an SMTP
//! server (each over TLS with a certificate from the test CA, or in the clear), recording
//! everything they are sent. Both stop when dropped.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cpreg::pki::DevCa;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

/// A request the webhook receiver got, and what it answered.
#[derive(Debug, Clone)]
pub struct WebhookRequest {
    pub method: String,
    pub path: String,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The status the receiver answered with.
    pub status: u16,
    pub received_at: Instant,
}

impl WebhookRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("the webhook body is JSON")
    }

    /// Whether the receiver took it (answered 2xx).
    pub fn accepted(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

#[derive(Default)]
struct WebhookState {
    requests: Mutex<Vec<WebhookRequest>>,
    /// Statuses to answer with, in order, before going back to 200.
    answers: Mutex<VecDeque<u16>>,
}

/// An HTTP(S) endpoint that records every request and answers 200, or what it is told to.
pub struct WebhookReceiver {
    state: Arc<WebhookState>,
    task: JoinHandle<()>,
}

impl WebhookReceiver {
    /// Starts on 127.0.0.1 port 0: HTTPS with a server certificate from `tls` (for `localhost`
    /// and `127.0.0.1`), or plain HTTP without. Returns the URL to post to.
    pub async fn start(tls: Option<&DevCa>) -> (String, WebhookReceiver) {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the webhook receiver");
        let port = listener.local_addr().expect("address").port();
        let acceptor = tls.map(server_tls);
        let state = Arc::new(WebhookState::default());
        let task = tokio::spawn(serve_webhook(listener, acceptor, state.clone()));
        let scheme = if tls.is_some() { "https" } else { "http" };
        (
            format!("{scheme}://127.0.0.1:{port}/cpreg/notifications"),
            WebhookReceiver { state, task },
        )
    }

    /// Answers the next requests with these statuses, in order, then 200 again.
    pub fn answer_next(&self, statuses: &[u16]) {
        lock(&self.state.answers).extend(statuses);
    }

    /// Forgets the statuses still to come: every request is answered 200 from now on.
    pub fn answer_ok(&self) {
        lock(&self.state.answers).clear();
    }

    pub fn requests(&self) -> Vec<WebhookRequest> {
        lock(&self.state.requests).clone()
    }

    /// The requests answered 2xx.
    pub fn accepted(&self) -> Vec<WebhookRequest> {
        self.requests()
            .into_iter()
            .filter(|r| r.accepted())
            .collect()
    }

    /// Waits until at least `n` requests have come, and returns them all.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<WebhookRequest> {
        wait_until(timeout, || {
            let got = self.requests();
            (got.len() >= n).then_some(got)
        })
        .await
        .unwrap_or_else(|| {
            panic!(
                "the webhook got {} requests in {timeout:?}, not {n}: {:?}",
                self.requests().len(),
                self.requests()
            )
        })
    }

    /// Waits until at least `n` requests have been answered 2xx, and returns those.
    pub async fn wait_for_accepted(&self, n: usize, timeout: Duration) -> Vec<WebhookRequest> {
        wait_until(timeout, || {
            let got = self.accepted();
            (got.len() >= n).then_some(got)
        })
        .await
        .unwrap_or_else(|| {
            panic!(
                "the webhook took {} requests in {timeout:?}, not {n}: {:?}",
                self.accepted().len(),
                self.requests()
            )
        })
    }
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A server configuration for 127.0.0.1 and localhost with a certificate from `ca`.
fn server_tls(ca: &DevCa) -> TlsAcceptor {
    let issued = ca
        .issue_server("receiver", &["localhost".into(), "127.0.0.1".into()])
        .expect("a server certificate");
    let certs = CertificateDer::pem_slice_iter(issued.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .expect("certificate PEM");
    let key = PrivateKeyDer::from_pem_slice(issued.key_pem.as_bytes()).expect("key PEM");
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("TLS versions")
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .expect("server TLS config");
    TlsAcceptor::from(Arc::new(config))
}

async fn serve_webhook(
    listener: TcpListener,
    acceptor: Option<TlsAcceptor>,
    state: Arc<WebhookState>,
) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let acceptor = acceptor.clone();
        let state = state.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| answer(state.clone(), request));
            let _ = match acceptor {
                Some(acceptor) => match acceptor.accept(stream).await {
                    Ok(tls) => {
                        http1::Builder::new()
                            .serve_connection(TokioIo::new(tls), service)
                            .await
                    }
                    Err(_) => return,
                },
                None => {
                    http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await
                }
            };
        });
    }
}

async fn answer(
    state: Arc<WebhookState>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes().to_vec())
        .unwrap_or_default();
    let status = lock(&state.answers).pop_front().unwrap_or(200);
    lock(&state.requests).push(WebhookRequest {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        headers: parts
            .headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body,
        status,
        received_at: Instant::now(),
    });
    let mut response = Response::new(Full::new(Bytes::from_static(b"{}")));
    *response.status_mut() = StatusCode::from_u16(status).expect("a valid status");
    Ok(response)
}

/// A message the SMTP receiver accepted.
#[derive(Debug, Clone)]
pub struct ReceivedMail {
    /// What the client said in EHLO or HELO.
    pub helo: String,
    /// The envelope sender (MAIL FROM), without angle brackets.
    pub from: String,
    /// The envelope recipients (RCPT TO), without angle brackets.
    pub to: Vec<String>,
    /// The message as sent after DATA, dot-stuffing undone, lines ending in CRLF.
    pub data: String,
    pub received_at: Instant,
}

impl ReceivedMail {
    /// The first header called `name` (any case), unfolded.
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next().unwrap_or_default();
        let mut found: Option<String> = None;
        for line in head.split("\r\n") {
            if line.starts_with([' ', '\t']) {
                if let Some(value) = found.as_mut() {
                    value.push(' ');
                    value.push_str(line.trim());
                }
                continue;
            }
            if found.is_some() {
                break;
            }
            if let Some((n, value)) = line.split_once(':')
                && n.eq_ignore_ascii_case(name)
            {
                found = Some(value.trim().to_owned());
            }
        }
        found
    }

    /// Everything after the headers.
    pub fn body(&self) -> &str {
        self.data
            .split_once("\r\n\r\n")
            .map_or("", |(_, body)| body)
    }
}

/// An SMTP server that accepts every message (EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT) and
/// records it.
pub struct SmtpReceiver {
    messages: Arc<Mutex<Vec<ReceivedMail>>>,
    task: JoinHandle<()>,
}

impl SmtpReceiver {
    /// Starts on 127.0.0.1 port 0 and returns the port.
    pub async fn start() -> (u16, SmtpReceiver) {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the SMTP receiver");
        let port = listener.local_addr().expect("address").port();
        (port, Self::serve(listener))
    }

    /// Starts on 127.0.0.1 `port`: for a server that was down when the primary first tried it.
    pub async fn start_on(port: u16) -> SmtpReceiver {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind the SMTP receiver");
        Self::serve(listener)
    }

    /// Starts on 127.0.0.1 port 0 speaking TLS from the first byte (SMTPS, `tls = "tls"`), with
    /// a server certificate from `ca` for `localhost` and `127.0.0.1`. Returns the port.
    pub async fn start_tls(ca: &DevCa) -> (u16, SmtpReceiver) {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the SMTP receiver");
        let port = listener.local_addr().expect("address").port();
        let messages = Arc::new(Mutex::new(Vec::new()));
        let task = tokio::spawn(serve_smtp(listener, Some(server_tls(ca)), messages.clone()));
        (port, SmtpReceiver { messages, task })
    }

    fn serve(listener: TcpListener) -> SmtpReceiver {
        let messages = Arc::new(Mutex::new(Vec::new()));
        let task = tokio::spawn(serve_smtp(listener, None, messages.clone()));
        SmtpReceiver { messages, task }
    }

    pub fn messages(&self) -> Vec<ReceivedMail> {
        lock(&self.messages).clone()
    }

    /// Waits until at least `n` messages have come, and returns them all.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<ReceivedMail> {
        wait_until(timeout, || {
            let got = self.messages();
            (got.len() >= n).then_some(got)
        })
        .await
        .unwrap_or_else(|| {
            panic!(
                "the mailbox got {} messages in {timeout:?}, not {n}",
                self.messages().len()
            )
        })
    }
}

impl Drop for SmtpReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve_smtp(
    listener: TcpListener,
    acceptor: Option<TlsAcceptor>,
    messages: Arc<Mutex<Vec<ReceivedMail>>>,
) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let acceptor = acceptor.clone();
        let messages = messages.clone();
        tokio::spawn(async move {
            let _ = match acceptor {
                Some(acceptor) => match acceptor.accept(stream).await {
                    Ok(tls) => smtp_session(tls, messages).await,
                    Err(_) => return,
                },
                None => smtp_session(stream, messages).await,
            };
        });
    }
}

/// One SMTP conversation, as RFC 5321 has it, minus everything a test does not need.
async fn smtp_session(
    stream: impl AsyncRead + AsyncWrite + Unpin,
    messages: Arc<Mutex<Vec<ReceivedMail>>>,
) -> std::io::Result<()> {
    let (read, mut write) = tokio::io::split(stream);
    let mut read = BufReader::new(read);
    write.write_all(b"220 receiver ESMTP ready\r\n").await?;
    let mut helo = String::new();
    let mut from = String::new();
    let mut to = Vec::new();
    loop {
        let Some(line) = read_line(&mut read).await? else {
            return Ok(());
        };
        let verb = line
            .split([' ', ':'])
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" => {
                helo = line[4..].trim().to_owned();
                b"250-receiver\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n"
            }
            "HELO" => {
                helo = line[4..].trim().to_owned();
                b"250 receiver\r\n"
            }
            "MAIL" => {
                from = angle_address(&line);
                to.clear();
                b"250 OK\r\n"
            }
            "RCPT" => {
                to.push(angle_address(&line));
                b"250 OK\r\n"
            }
            "DATA" => {
                write
                    .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                    .await?;
                let mut data = String::new();
                loop {
                    let Some(line) = read_line(&mut read).await? else {
                        return Ok(());
                    };
                    if line == "." {
                        break;
                    }
                    data.push_str(line.strip_prefix('.').unwrap_or(&line));
                    data.push_str("\r\n");
                }
                lock(&messages).push(ReceivedMail {
                    helo: helo.clone(),
                    from: std::mem::take(&mut from),
                    to: std::mem::take(&mut to),
                    data,
                    received_at: Instant::now(),
                });
                b"250 OK: queued\r\n"
            }
            "RSET" => {
                from.clear();
                to.clear();
                b"250 OK\r\n"
            }
            "NOOP" => b"250 OK\r\n",
            "QUIT" => {
                write.write_all(b"221 Bye\r\n").await?;
                return Ok(());
            }
            _ => b"502 Command not implemented\r\n",
        };
        write.write_all(reply).await?;
    }
}

/// A line without its CRLF; `None` at the end of the stream.
async fn read_line(read: &mut (impl AsyncBufReadExt + Unpin)) -> std::io::Result<Option<String>> {
    let mut bytes = Vec::new();
    if read.read_until(b'\n', &mut bytes).await? == 0 {
        return Ok(None);
    }
    let line = String::from_utf8_lossy(&bytes);
    Ok(Some(line.trim_end_matches(['\r', '\n']).to_owned()))
}

/// The address between the first `<` and `>` of a MAIL or RCPT command.
fn angle_address(line: &str) -> String {
    line.split_once('<')
        .and_then(|(_, rest)| rest.split_once('>'))
        .map(|(address, _)| address.to_owned())
        .unwrap_or_default()
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Polls `check` until it gives something or `timeout` passes.
async fn wait_until<T>(timeout: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(found) = check() {
            return Some(found);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
