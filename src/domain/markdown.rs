//! Markdown in, sanitised HTML out: pulldown-cmark renders (raw HTML in the source is shown
//! as text, never passed through) and ammonia sanitises what the renderer produced, so no
//! script, event handler or `javascript:` link can survive either step. Images load only
//! from the configured hosts; any other image becomes a plain link, so a post cannot make
//! every reader's browser call a server of the author's choosing.

use std::collections::HashSet;
use std::sync::Arc;

use pulldown_cmark::{html, Event, Options, Parser, Tag, TagEnd};

use super::DomainError;

/// A Markdown text with length bounds, and its rendered HTML.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkdownBody {
    source: String,
    html: String,
}

/// The Markdown renderer, with the hosts whose images may be shown as images.
#[derive(Debug, Clone, Default)]
pub struct Markdown {
    image_hosts: Arc<HashSet<String>>,
}

impl Markdown {
    pub fn new(image_hosts: &[String]) -> Self {
        Markdown {
            image_hosts: Arc::new(
                image_hosts
                    .iter()
                    .map(|h| h.trim().to_ascii_lowercase())
                    .filter(|h| !h.is_empty())
                    .collect(),
            ),
        }
    }

    /// Parses a Markdown text with length bounds, rendering it.
    pub fn body(
        &self,
        raw: &str,
        min_chars: usize,
        max_chars: usize,
    ) -> Result<MarkdownBody, DomainError> {
        let source = raw.trim().to_string();
        let n = source.chars().count();
        if n < min_chars {
            return Err(DomainError(if min_chars <= 1 {
                "the text cannot be empty".to_string()
            } else {
                format!("the text needs at least {min_chars} characters")
            }));
        }
        if n > max_chars {
            return Err(DomainError(format!(
                "the text is at most {max_chars} characters"
            )));
        }
        let html = self.render(&source);
        Ok(MarkdownBody { source, html })
    }

    fn image_allowed(&self, dest: &str) -> bool {
        url::Url::parse(dest)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
            .is_some_and(|host| self.image_hosts.contains(&host))
    }

    pub fn render(&self, source: &str) -> String {
        let options =
            Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS;
        // Whether each open image was turned into a link, so its end follows suit.
        let mut images: Vec<bool> = Vec::new();
        let events = Parser::new_ext(source, options).map(|event| match event {
            Event::Html(raw) | Event::InlineHtml(raw) => Event::Text(raw),
            Event::Start(Tag::Image {
                link_type,
                dest_url,
                title,
                id,
            }) => {
                let allowed = self.image_allowed(&dest_url);
                images.push(!allowed);
                if allowed {
                    Event::Start(Tag::Image {
                        link_type,
                        dest_url,
                        title,
                        id,
                    })
                } else {
                    Event::Start(Tag::Link {
                        link_type,
                        dest_url,
                        title,
                        id,
                    })
                }
            }
            Event::End(TagEnd::Image) => {
                if images.pop().unwrap_or(false) {
                    Event::End(TagEnd::Link)
                } else {
                    Event::End(TagEnd::Image)
                }
            }
            other => other,
        });
        let mut unsafe_html = String::with_capacity(source.len() * 3 / 2);
        html::push_html(&mut unsafe_html, events);
        let schemes: HashSet<&str> = ["http", "https", "mailto"].into_iter().collect();
        ammonia::Builder::default()
            .url_schemes(schemes)
            .link_rel(Some("nofollow ugc noopener"))
            .clean(&unsafe_html)
            .to_string()
    }
}

impl MarkdownBody {
    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn html(&self) -> &str {
        &self.html
    }
}

/// A one-line title with length bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Title(String);

impl Title {
    pub fn parse(raw: &str, min_chars: usize, max_chars: usize) -> Result<Self, DomainError> {
        let s = raw.split_whitespace().collect::<Vec<_>>().join(" ");
        let n = s.chars().count();
        if n < min_chars {
            return Err(DomainError(format!(
                "a title needs at least {min_chars} characters"
            )));
        }
        if n > max_chars {
            return Err(DomainError(format!(
                "a title is at most {max_chars} characters"
            )));
        }
        Ok(Title(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A commitment reference such as `UK0072`: letters, digits and dashes, stored upper-case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference(String);

impl Reference {
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let s = raw.trim().to_uppercase();
        if s.is_empty() || s.len() > 40 {
            return Err(DomainError("a reference has 1–40 characters".into()));
        }
        if !s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        {
            return Err(DomainError(
                "a reference holds only letters, digits, '-', '_' and '.'".into(),
            ));
        }
        Ok(Reference(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn render(source: &str) -> String {
        Markdown::default().render(source)
    }

    #[test]
    fn images_load_only_from_allowed_hosts() {
        let md = Markdown::new(&["Images.Example.org".to_string()]);
        let html = md.render("![chart](https://images.example.org/a.png) ![pixel](https://tracker.example.com/p.gif \"t\")");
        assert!(
            html.contains(r#"<img src="https://images.example.org/a.png" alt="chart">"#),
            "{html}"
        );
        assert_eq!(html.matches("<img").count(), 1, "{html}");
        assert!(
            html.contains(r#"<a href="https://tracker.example.com/p.gif" title="t" rel="nofollow ugc noopener">pixel</a>"#),
            "{html}"
        );
        // With no hosts configured, every image is a link.
        let html = render("![a](https://images.example.org/a.png)");
        assert!(!html.contains("<img"), "{html}");
        assert!(html.contains(">a</a>"), "{html}");
    }

    #[test]
    fn renders_markdown_and_strips_what_could_run() {
        let html = render("**bold** [site](https://example.org) <script>alert(1)</script> <img src=x onerror=alert(1)> [x](javascript:alert(1))");
        assert!(html.contains("<strong>bold</strong>"));
        assert!(html.contains(r#"rel="nofollow ugc noopener""#), "{html}");
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(!html.contains("javascript:"), "{html}");
        // The raw HTML is shown as text: no tag carries an event handler.
        assert!(
            html.contains("&lt;img src=x onerror=alert(1)&gt;"),
            "{html}"
        );
        for tag in html
            .split('<')
            .skip(1)
            .map(|t| t.split('>').next().unwrap_or(""))
        {
            assert!(!tag.contains("onerror"), "{tag}");
        }
    }

    #[test]
    fn length_bounds() {
        assert!(Markdown::default().body("  ", 1, 10).is_err());
        assert!(Markdown::default().body("12345678901", 1, 10).is_err());
        assert!(Title::parse("abcd", 5, 200).is_err());
        assert_eq!(
            Title::parse("  a   b  c  ", 5, 200).unwrap().as_str(),
            "a b c"
        );
        assert_eq!(Reference::parse(" uk0072 ").unwrap().as_str(), "UK0072");
        assert!(Reference::parse("UK 72").is_err());
    }

    proptest! {
        #[test]
        fn rendered_html_never_holds_a_script_tag(s in "\\PC*") {
            let html = render(&format!("{s}<script>x</script>{s}"));
            prop_assert!(!html.to_lowercase().contains("<script"));
        }
    }
}
