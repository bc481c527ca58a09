//! The access token: required on every request when the server listens beyond loopback,
//! given as `?token=…` or `Authorization: Bearer …`, compared in constant time.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, Request, Response, StatusCode};
use axum::middleware::Next;
use subtle::ConstantTimeEq;

use crate::Shared;

/// 32 hex characters (128 bits) from the operating system's random source.
pub fn new_token() -> std::io::Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Whether `given` is `expected`, in time that does not depend on where they differ.
pub fn tokens_match(given: &str, expected: &str) -> bool {
    given.as_bytes().ct_eq(expected.as_bytes()).into()
}

/// The token a request carries, if any.
fn token_of(request: &Request<Body>) -> Option<&str> {
    let bearer = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    bearer.or_else(|| {
        request
            .uri()
            .query()?
            .split('&')
            .find_map(|pair| pair.strip_prefix("token="))
    })
}

/// Middleware: 401 unless the request carries the token (when there is one).
pub(crate) async fn require_token(
    State(shared): State<Arc<Shared>>,
    request: Request<Body>,
    next: Next,
) -> Response<Body> {
    if let Some(expected) = &shared.token {
        if !token_of(&request).is_some_and(|t| tokens_match(t, expected)) {
            return crate::text(
                StatusCode::UNAUTHORIZED,
                "this server needs its access token (printed when it started): add ?token=… to the address".into(),
            );
        }
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_hex_and_compared_whole() {
        let (a, b) = (
            new_token().unwrap_or_default(),
            new_token().unwrap_or_default(),
        );
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
        assert!(tokens_match(&a, &a));
        assert!(!tokens_match(&a, &b));
        assert!(!tokens_match(&a[..31], &a));
        assert!(!tokens_match("", &a));
    }
}
