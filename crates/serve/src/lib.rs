//! `sweep serve`: a web page that follows the studies of a results database while they run
//! (trials and their state, growing learning curves, claim verdicts), for a browser on this
//! machine or through `ssh -L` from a cluster's login node.
//!
//! It only reads: the runner stays the database's single writer. One read-only connection
//! (SQLite WAL: a reader never blocks the writer) answers every request, and what it computed
//! is kept until `PRAGMA data_version` says another connection committed, so a page polled by
//! many clients costs one query per request, not one study load.
//!
//! Why axum on tokio with hyper's HTTP/1 connection builder: hyper bounds the request head
//! (size, count of headers, the time to send it), tokio lets one thread pool hold many idle
//! polling connections, and the accept loop here bounds their number and their lifetime, so
//! a slow or hostile client holds one slot for a while, never the server. Every asset is in
//! the binary; the charts are the report's own (plotters SVG).

mod auth;
mod view;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, Request, Response, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use tower::Service;

pub use auth::{new_token, tokens_match};

/// How `sweep serve` listens.
#[derive(Debug, Clone)]
pub struct Options {
    pub db: PathBuf,
    pub bind: IpAddr,
    /// 0: any free port (the one taken is in [`Started::addr`]).
    pub port: u16,
    /// Required on every request when set; [`run`] makes one when binding beyond loopback.
    pub token: Option<String>,
    /// Connections served at once; more are answered 503 and closed.
    pub max_connections: usize,
    /// The longest one connection may stay open (keep-alive included).
    pub connection_lifetime: Duration,
    /// The longest a client may take to send a request's head.
    pub header_timeout: Duration,
}

impl Options {
    pub fn new(db: PathBuf) -> Self {
        Options {
            db,
            bind: IpAddr::from([127, 0, 0, 1]),
            port: 8000,
            token: None,
            max_connections: 64,
            connection_lifetime: Duration::from_secs(120),
            header_timeout: Duration::from_secs(5),
        }
    }
}

/// Where the server listens, once it does.
#[derive(Debug, Clone)]
pub struct Started {
    pub addr: SocketAddr,
    /// The page's address, with the token when one is needed.
    pub url: String,
    pub token: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// What the handlers share: the reader and what it computed at the database's current
/// version.
struct Shared {
    reader: Mutex<view::Reader>,
    token: Option<String>,
}

/// Serves until the process ends. `started` is called once the socket listens.
pub fn run(mut opts: Options, started: impl FnOnce(&Started)) -> Result<(), ServeError> {
    if !opts.bind.is_loopback() && opts.token.is_none() {
        opts.token = Some(new_token()?);
    }
    let reader = view::Reader::open(&opts.db)?;
    let shared = Arc::new(Shared {
        reader: Mutex::new(reader),
        token: opts.token.clone(),
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let addr = SocketAddr::new(opts.bind, opts.port);
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| ServeError::Bind { addr, source })?;
        let addr = listener.local_addr()?;
        let url = match &opts.token {
            Some(t) => format!("http://{addr}/?token={t}"),
            None => format!("http://{addr}/"),
        };
        started(&Started {
            addr,
            url,
            token: opts.token.clone(),
        });
        accept_loop(listener, router(shared), &opts).await;
        Ok(())
    })
}

/// Accepts connections while fewer than `max_connections` are open; each is served by
/// hyper's HTTP/1 with a bounded head (size, headers, time) and a bounded lifetime.
async fn accept_loop(listener: tokio::net::TcpListener, app: Router, opts: &Options) {
    let slots = Arc::new(tokio::sync::Semaphore::new(opts.max_connections.max(1)));
    loop {
        let Ok((socket, _)) = listener.accept().await else {
            // Out of file descriptors and the like: wait instead of spinning.
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            tokio::spawn(refuse_busy(socket));
            continue;
        };
        let app = app.clone();
        let (lifetime, header_timeout) = (opts.connection_lifetime, opts.header_timeout);
        tokio::spawn(async move {
            let service =
                hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
                    let mut app = app.clone();
                    async move { app.call(request.map(Body::new)).await }
                });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .max_buf_size(16 * 1024)
                .max_headers(64)
                .serve_connection(TokioIo::new(socket), service);
            let _ = tokio::time::timeout(lifetime, connection).await;
            drop(slot);
        });
    }
}

/// A 503 for a connection beyond the limit, written without waiting on the client (what
/// the socket takes at once), then closed.
async fn refuse_busy(socket: tokio::net::TcpStream) {
    let reply = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\nconnection: close\r\ncontent-length: 27\r\n\r\ntoo many connections; retry";
    let _ = socket.try_write(reply);
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/app.js", get(script))
        .route("/api/studies", get(studies))
        .route("/api/studies/{name}", get(study))
        .route("/api/studies/{name}/curves/{metric}", get(curve))
        .route("/report/{name}", get(static_report))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&shared),
            auth::require_token,
        ))
        .with_state(shared)
}

const PAGE: &str = include_str!("page.html");
const SCRIPT: &str = include_str!("app.js");

fn with_headers(mut response: Response<Body>, content_type: &'static str) -> Response<Body> {
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // The token may be in the page's address: never send it on.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

async fn page() -> Response<Body> {
    let mut r = with_headers(PAGE.into_response(), "text/html; charset=utf-8");
    r.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; connect-src 'self'; img-src 'self'; style-src 'unsafe-inline'; frame-ancestors 'none'",
        ),
    );
    r
}

async fn script() -> Response<Body> {
    with_headers(SCRIPT.into_response(), "text/javascript; charset=utf-8")
}

async fn not_found() -> Response<Body> {
    text(StatusCode::NOT_FOUND, "not found".into())
}

fn text(status: StatusCode, message: String) -> Response<Body> {
    with_headers(
        (status, message).into_response(),
        "text/plain; charset=utf-8",
    )
}

/// Runs a read on the blocking pool (SQLite and plotters are synchronous).
async fn read<T: Send + 'static>(
    shared: Arc<Shared>,
    f: impl FnOnce(&mut view::Reader) -> Result<T, view::ViewError> + Send + 'static,
) -> Result<T, Response<Body>> {
    let joined = tokio::task::spawn_blocking(move || {
        let mut reader = shared
            .reader
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut reader)
    })
    .await;
    match joined {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(view::ViewError::NotFound(m))) => Err(text(StatusCode::NOT_FOUND, m)),
        Ok(Err(view::ViewError::Failed(m))) => {
            tracing::warn!("{m}");
            Err(text(StatusCode::SERVICE_UNAVAILABLE, m))
        }
        Err(e) => Err(text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
    }
}

/// A JSON answer with its ETag; 304 when the client has it already.
fn json_answer(headers: &HeaderMap, doc: view::Doc) -> Response<Body> {
    let etag = format!("\"{}\"", doc.version);
    let unchanged = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == etag);
    let mut r = if unchanged {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        Body::from(doc.body).into_response()
    };
    r = with_headers(r, "application/json");
    if let Ok(v) = HeaderValue::from_str(&etag) {
        r.headers_mut().insert(header::ETAG, v);
    }
    r
}

async fn studies(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response<Body> {
    match read(shared, |r| r.studies()).await {
        Ok(doc) => json_answer(&headers, doc),
        Err(r) => r,
    }
}

/// The longest a request may wait for a change (`?wait=VERSION`).
const MAX_WAIT: Duration = Duration::from_secs(10);

/// A study. With `?wait=VERSION` (the version the page shows) the answer waits until the
/// database changes or `MAX_WAIT` (at most; `&wait_s=N` asks for less) has passed: the page
/// sees a change at once and asks again, instead of asking every second.
async fn study(
    State(shared): State<Arc<Shared>>,
    UrlPath(name): UrlPath<String>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response<Body> {
    let param = |k: &str| {
        query
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    if let Some(shown) = param("wait") {
        let limit = param("wait_s")
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map_or(MAX_WAIT, |s| Duration::from_secs_f64(s).min(MAX_WAIT));
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let now = match read(Arc::clone(&shared), |r| r.version()).await {
                Ok(v) => v,
                Err(r) => return r,
            };
            if now != shown || tokio::time::Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    match read(shared, move |r| r.study(&name)).await {
        Ok(doc) => json_answer(&headers, doc),
        Err(r) => r,
    }
}

async fn curve(
    State(shared): State<Arc<Shared>>,
    UrlPath((name, metric)): UrlPath<(String, String)>,
) -> Response<Body> {
    match read(shared, move |r| r.curve(&name, &metric)).await {
        Ok(svg) => with_headers(Body::from(svg).into_response(), "image/svg+xml"),
        Err(r) => r,
    }
}

/// The static report `sweep report NAME` wrote beside the database (`reports/NAME/index.html`,
/// its default place), for a study the database knows; nothing else on disk is reachable.
async fn static_report(
    State(shared): State<Arc<Shared>>,
    UrlPath(name): UrlPath<String>,
) -> Response<Body> {
    match read(shared, move |r| r.report_file(&name)).await {
        Ok(html) => {
            let mut r = with_headers(Body::from(html).into_response(), "text/html; charset=utf-8");
            // A report is self-contained (inline SVG and styles) and runs no script.
            r.headers_mut().insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(
                    "default-src 'none'; style-src 'unsafe-inline'; img-src data:",
                ),
            );
            r
        }
        Err(r) => r,
    }
}

/// For tests: the folder a database's static reports live in.
pub fn reports_dir(db: &Path) -> PathBuf {
    view::reports_dir(db)
}
