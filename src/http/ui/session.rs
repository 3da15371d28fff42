//! Who is signed in: a session per sign-in, named by a random cookie
//! (`HttpOnly`, `SameSite=Strict`, `Path=/ui`, `Secure` when the listener
//! speaks TLS), forgotten after [`IDLE`] without a request, at sign-out, or
//! when the account's password or the account itself leaves the config
//! (reload). Each session has its own CSRF token, which every form carries
//! and every post must return. Before sign-in, the sign-in form is tied to
//! its own short cookie the same way. This module must never log a cookie,
//! a token or a password, nor compare a token in variable time.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{header, HeaderMap, HeaderValue};
use subtle::ConstantTimeEq;

use super::UiError;
use crate::config::Config;
use crate::http::AppState;

/// A session unused this long is over.
pub const IDLE: Duration = Duration::from_secs(30 * 60);

/// The cookie naming the session.
pub const COOKIE: &str = "userdrop_session";

/// The cookie tying a sign-in form to the browser that loaded it.
pub const SIGNIN_COOKIE: &str = "userdrop_signin";

/// How long a sign-in form stays good.
pub const SIGNIN_FORM_AGE: Duration = Duration::from_secs(60 * 60);

/// Sessions kept at most; past it the least recently used goes.
const MAX_SESSIONS: usize = 10_000;

/// One signed-in account.
#[derive(Debug, Clone)]
pub struct Session {
    pub id: String,
    pub tenant: String,
    pub user: String,
    pub csrf: String,
    /// The account's password hash at sign-in: a changed password ends it.
    credential: String,
}

struct Entry {
    session: Session,
    last_seen: Instant,
}

#[derive(Default)]
pub struct Sessions {
    map: Mutex<HashMap<String, Entry>>,
}

/// 256 random bits as hex.
pub fn random_token() -> String {
    let mut id = [0u8; 32];
    argon2::password_hash::rand_core::RngCore::fill_bytes(
        &mut argon2::password_hash::rand_core::OsRng,
        &mut id,
    );
    hex::encode(id)
}

/// Whether `given` is `expected`, in constant time.
pub fn same_token(expected: &str, given: &str) -> bool {
    !expected.is_empty() && bool::from(expected.as_bytes().ct_eq(given.as_bytes()))
}

/// The password hash the config holds for `user` of `tenant`, if any.
pub fn credential_of(config: &Config, tenant: &str, user: &str) -> Option<String> {
    config
        .tenant(tenant)?
        .accounts
        .iter()
        .find(|a| a.name == user)?
        .password_hash
        .clone()
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new session for an account whose password was just checked.
    pub fn create(&self, tenant: &str, user: &str, credential: String) -> Session {
        self.create_at(tenant, user, credential, Instant::now())
    }

    fn create_at(&self, tenant: &str, user: &str, credential: String, now: Instant) -> Session {
        let mut map = self.lock();
        map.retain(|_, e| now.duration_since(e.last_seen) < IDLE);
        if map.len() >= MAX_SESSIONS {
            if let Some(oldest) = map
                .iter()
                .min_by_key(|(_, e)| e.last_seen)
                .map(|(k, _)| k.clone())
            {
                map.remove(&oldest);
            }
        }
        let session = Session {
            id: random_token(),
            tenant: tenant.to_string(),
            user: user.to_string(),
            csrf: random_token(),
            credential,
        };
        map.insert(
            session.id.clone(),
            Entry {
                session: session.clone(),
                last_seen: now,
            },
        );
        session
    }

    /// The live session `id`, its idle clock restarted.
    fn touch(&self, id: &str, config: &Config) -> Option<Session> {
        self.touch_at(id, Instant::now(), |s| {
            credential_of(config, &s.tenant, &s.user)
        })
    }

    /// [`Sessions::touch`] at `now`, with the account's password hash as
    /// the config holds it now (`credential`).
    fn touch_at(
        &self,
        id: &str,
        now: Instant,
        credential: impl Fn(&Session) -> Option<String>,
    ) -> Option<Session> {
        let mut map = self.lock();
        let e = map.get_mut(id)?;
        let s = &e.session;
        let still = now.saturating_duration_since(e.last_seen) < IDLE
            && credential(s).as_deref() == Some(&s.credential);
        if !still {
            map.remove(id);
            return None;
        }
        e.last_seen = now;
        Some(e.session.clone())
    }

    pub fn remove(&self, id: &str) {
        self.lock().remove(id);
    }
}

/// The value of cookie `name` in the request.
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// Whether cookies must be sent over TLS only: the listener speaks it.
pub fn secure(state: &AppState) -> bool {
    state
        .config()
        .http
        .as_ref()
        .is_some_and(|h| h.tls.is_some())
}

/// A `Set-Cookie` value; `max_age` None: until the browser closes.
pub fn set_cookie(name: &str, value: &str, secure: bool, max_age: Option<Duration>) -> HeaderValue {
    let mut v = format!("{name}={value}; Path=/ui; HttpOnly; SameSite=Strict");
    if let Some(age) = max_age {
        v.push_str(&format!("; Max-Age={}", age.as_secs()));
    }
    if secure {
        v.push_str("; Secure");
    }
    HeaderValue::from_str(&v).expect("tokens are hex")
}

/// A `Set-Cookie` value that removes cookie `name`.
pub fn clear_cookie(name: &str, secure: bool) -> HeaderValue {
    set_cookie(name, "", secure, Some(Duration::ZERO))
}

/// The request's session, or [`UiError::SignIn`].
pub fn signed_in(state: &AppState, headers: &HeaderMap) -> Result<Session, UiError> {
    let id = cookie(headers, COOKIE).ok_or(UiError::SignIn)?;
    state
        .ui
        .sessions
        .touch(id, &state.config())
        .ok_or(UiError::SignIn)
}

/// Refuses a post whose form did not carry the session's CSRF token.
pub fn check_csrf(session: &Session, given: Option<&str>) -> Result<(), UiError> {
    match given {
        Some(g) if same_token(&session.csrf, g) => Ok(()),
        _ => Err(UiError::Csrf),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_ends_after_its_idle_time_or_with_its_password() {
        let sessions = Sessions::default();
        let t0 = Instant::now();
        let hash = |_: &Session| Some("h1".to_string());
        let s = sessions.create_at("acme", "a", "h1".into(), t0);
        let minute = Duration::from_secs(60);
        // Each request restarts the idle clock.
        let t1 = t0 + IDLE - minute;
        assert!(sessions.touch_at(&s.id, t1, hash).is_some());
        let t2 = t1 + IDLE - minute;
        assert!(sessions.touch_at(&s.id, t2, hash).is_some());
        assert!(
            sessions.touch_at(&s.id, t2 + IDLE, hash).is_none(),
            "idle too long"
        );
        assert!(
            sessions.touch_at(&s.id, t2, hash).is_none(),
            "and forgotten"
        );
        // A password changed in the config (a reload) ends it at once.
        let s = sessions.create_at("acme", "a", "h1".into(), t0);
        assert!(sessions
            .touch_at(&s.id, t0, |_| Some("h2".to_string()))
            .is_none());
        let s = sessions.create_at("acme", "a", "h1".into(), t0);
        assert!(
            sessions.touch_at(&s.id, t0, |_| None).is_none(),
            "account gone"
        );
        sessions.remove(&s.id);
    }

    #[test]
    fn cookies_are_read_by_name() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            "a=1; userdrop_session=abc; b=2".parse().unwrap(),
        );
        assert_eq!(cookie(&h, COOKIE), Some("abc"));
        assert_eq!(cookie(&h, "c"), None);
    }

    #[test]
    fn tokens_compare_whole() {
        let t = random_token();
        assert_eq!(t.len(), 64);
        assert!(same_token(&t, &t.clone()));
        assert!(!same_token(&t, &t[..63]));
        assert!(!same_token("", ""));
    }

    #[test]
    fn the_cookie_says_how_it_may_travel() {
        let v = set_cookie(COOKIE, "x", true, None);
        let v = v.to_str().unwrap();
        assert!(v.contains("HttpOnly") && v.contains("SameSite=Strict") && v.contains("Secure"));
        let v = set_cookie(COOKIE, "x", false, None);
        assert!(!v.to_str().unwrap().contains("Secure"));
    }
}
