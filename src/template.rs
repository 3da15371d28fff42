//! The invitation templates of a tenant: text with `{placeholder}`s
//! (`{tenant}`, `{user_id}`, `{email}`, `{first_name}`, `{last_name}`,
//! `{link}`), parsed once when the configuration is read so that a misspelt
//! placeholder is a config error, never a half-filled email. `{{` and `}}`
//! stand for literal braces. In a link template every value is
//! percent-encoded. This module must never look anything up: it fills in
//! the values it is given.

use std::fmt::Write as _;

/// What a placeholder stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Var {
    Tenant,
    UserId,
    Email,
    FirstName,
    LastName,
    Link,
}

impl Var {
    const ALL: [(&'static str, Var); 6] = [
        ("tenant", Var::Tenant),
        ("user_id", Var::UserId),
        ("email", Var::Email),
        ("first_name", Var::FirstName),
        ("last_name", Var::LastName),
        ("link", Var::Link),
    ];

    pub fn name(self) -> &'static str {
        Var::ALL
            .iter()
            .find(|(_, v)| *v == self)
            .map(|(n, _)| *n)
            .unwrap_or("?")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Var(Var),
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pieces: Vec<Piece>,
}

/// The values a template is filled with.
#[derive(Debug, Clone, Default)]
pub struct Values<'a> {
    pub tenant: &'a str,
    pub user_id: &'a str,
    pub email: &'a str,
    pub first_name: &'a str,
    pub last_name: &'a str,
    pub link: &'a str,
}

impl Values<'_> {
    fn get(&self, v: Var) -> &str {
        match v {
            Var::Tenant => self.tenant,
            Var::UserId => self.user_id,
            Var::Email => self.email,
            Var::FirstName => self.first_name,
            Var::LastName => self.last_name,
            Var::Link => self.link,
        }
    }
}

impl Template {
    /// Parses `text`; the error says what is wrong, for a config problem.
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut pieces = Vec::new();
        let mut lit = String::new();
        let mut chars = text.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            match c {
                '{' if chars.peek().map(|p| p.1) == Some('{') => {
                    chars.next();
                    lit.push('{');
                }
                '}' if chars.peek().map(|p| p.1) == Some('}') => {
                    chars.next();
                    lit.push('}');
                }
                '{' => {
                    let rest = &text[i + 1..];
                    let Some(end) = rest.find('}') else {
                        return Err(format!(
                            "an opening '{{' at character {} has no closing '}}' (write '{{{{' for a literal brace)",
                            i + 1
                        ));
                    };
                    let name = &rest[..end];
                    let Some((_, var)) = Var::ALL.iter().find(|(n, _)| *n == name) else {
                        let known: Vec<String> =
                            Var::ALL.iter().map(|(n, _)| format!("{{{n}}}")).collect();
                        return Err(format!(
                            "unknown placeholder {{{name}}}; the placeholders are {}",
                            known.join(", ")
                        ));
                    };
                    if !lit.is_empty() {
                        pieces.push(Piece::Text(std::mem::take(&mut lit)));
                    }
                    pieces.push(Piece::Var(*var));
                    for _ in 0..name.chars().count() + 1 {
                        chars.next();
                    }
                }
                '}' => {
                    return Err(format!(
                        "a closing '}}' at character {} has no opening '{{' (write '}}}}' for a literal brace)",
                        i + 1
                    ))
                }
                c => lit.push(c),
            }
        }
        if !lit.is_empty() {
            pieces.push(Piece::Text(lit));
        }
        Ok(Template { pieces })
    }

    pub fn uses(&self, var: Var) -> bool {
        self.pieces.contains(&Piece::Var(var))
    }

    /// The text with every placeholder replaced by its value.
    pub fn render(&self, values: &Values<'_>) -> String {
        self.fill(values, false)
    }

    /// As [`Template::render`], with every value percent-encoded (for a URL).
    pub fn render_url(&self, values: &Values<'_>) -> String {
        self.fill(values, true)
    }

    fn fill(&self, values: &Values<'_>, url: bool) -> String {
        let mut out = String::new();
        for p in &self.pieces {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Var(v) if url => percent_encode(values.get(*v), &mut out),
                Piece::Var(v) => out.push_str(values.get(*v)),
            }
        }
        out
    }
}

/// RFC 3986: everything but the unreserved characters is encoded.
fn percent_encode(s: &str, out: &mut String) {
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values() -> Values<'static> {
        Values {
            tenant: "acme",
            user_id: "U 1",
            email: "ann+x@example.com",
            first_name: "Ann",
            last_name: "Lee",
            link: "https://x/?a=1",
        }
    }

    #[test]
    fn fills_placeholders_and_keeps_literal_braces() {
        let t = Template::parse("Hi {first_name} {{not}} {link}").unwrap();
        assert_eq!(t.render(&values()), "Hi Ann {not} https://x/?a=1");
        assert!(t.uses(Var::Link) && !t.uses(Var::Email));
    }

    #[test]
    fn link_values_are_percent_encoded() {
        let t = Template::parse("https://app.example/invite?u={user_id}&e={email}").unwrap();
        assert_eq!(
            t.render_url(&values()),
            "https://app.example/invite?u=U%201&e=ann%2Bx%40example.com"
        );
    }

    #[test]
    fn unknown_or_unbalanced_placeholders_are_errors() {
        assert!(Template::parse("Hi {name}")
            .unwrap_err()
            .contains("unknown placeholder {name}"));
        assert!(Template::parse("Hi {first_name").is_err());
        assert!(Template::parse("Hi }").is_err());
        assert_eq!(
            Template::parse("é{email}é").unwrap().render(&values()),
            "éann+x@example.comé"
        );
    }
}
