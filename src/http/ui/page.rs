//! The frame every page shares (head, navigation, sign-out), the one
//! stylesheet, the optional script, and small formatting helpers (times,
//! sizes, URL path parts). Templates are maud's: every `(value)` is
//! HTML-escaped when rendered. This module must never emit a value through
//! `PreEscaped` (only the constant stylesheet and script go out unescaped,
//! as their own responses).

use axum::http::header;
use axum::response::{IntoResponse, Response};
use maud::{html, Markup, DOCTYPE};

use super::session::Session;

const STYLE: &str = include_str!("style.css");
const SCRIPT: &str = include_str!("ui.js");

/// `GET /ui/static/style.css`
pub async fn style() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        STYLE,
    )
        .into_response()
}

/// `GET /ui/static/ui.js`
pub async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        SCRIPT,
    )
        .into_response()
}

/// Which part of the navigation is current.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Users,
    Upload,
    Jobs,
    None,
}

/// A whole page: `title` as its heading, `body` under it. `refresh`:
/// seconds after which the browser loads the page again (a file being
/// validated or loaded), without any script.
pub fn layout(
    title: &str,
    session: Option<&Session>,
    nav: Nav,
    refresh: Option<u32>,
    body: Markup,
) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                @if let Some(s) = refresh {
                    meta http-equiv="refresh" content=(s);
                }
                title { (title) " · userdrop" }
                link rel="stylesheet" href="/ui/static/style.css";
                script src="/ui/static/ui.js" defer {}
            }
            body {
                header.top {
                    span.brand { "userdrop" }
                    @if let Some(s) = session {
                        nav {
                            a href="/ui/users" aria-current=[(nav == Nav::Users).then_some("page")] { "Users" }
                            a href="/ui/upload" aria-current=[(nav == Nav::Upload).then_some("page")] { "Upload" }
                            a href="/ui/jobs" aria-current=[(nav == Nav::Jobs).then_some("page")] { "Jobs" }
                        }
                        form.signout method="post" action="/ui/signout" {
                            input type="hidden" name="csrf" value=(s.csrf);
                            span.who { (s.user) " · " (s.tenant) }
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// A page with one sentence (an error, a refusal), and a way back.
pub fn message_page(title: &str, message: &str) -> Markup {
    layout(
        title,
        None,
        Nav::None,
        None,
        html! {
            p.notice.bad { (message) }
            p { a href="/ui/" { "Back to the start" } }
        },
    )
}

/// A stored time (`2026-01-02T03:04:05Z`) as a person reads it.
pub fn when(stored: &str) -> String {
    match stored.strip_suffix('Z') {
        Some(t) => format!("{} UTC", t.replacen('T', " ", 1)),
        None => stored.to_string(),
    }
}

/// A number with thousands separated: 1 234 567.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A byte size as a person reads it.
pub fn size(bytes: u64) -> String {
    bytesize::ByteSize::b(bytes).display().iec().to_string()
}

/// `text` as one URL path segment or query value (everything but
/// unreserved characters percent-encoded).
pub fn enc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped() {
        let page = layout(
            "<b>x</b>",
            None,
            Nav::None,
            None,
            html! { p { ("<img src=x onerror=alert(1)>") } },
        )
        .into_string();
        assert!(!page.contains("<img"), "{page}");
        assert!(page.contains("&lt;img src=x onerror=alert(1)&gt;"));
        assert!(!page.contains("<b>x"));
    }

    #[test]
    fn helpers() {
        assert_eq!(when("2026-01-02T03:04:05Z"), "2026-01-02 03:04:05 UTC");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(thousands(12), "12");
        assert_eq!(enc("a b/é"), "a%20b%2F%C3%A9");
    }
}
