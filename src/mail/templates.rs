use anyhow::Context;
use minijinja::Environment;

/// Each mail kind has a subject, a plain-text body and an HTML body.
const KINDS: &[(&str, &str, &str, &str)] = &[
    (
        "verify_email",
        include_str!("../../templates/mail/verify_email/subject.txt"),
        include_str!("../../templates/mail/verify_email/body.txt"),
        include_str!("../../templates/mail/verify_email/body.html"),
    ),
    (
        "account_exists",
        include_str!("../../templates/mail/account_exists/subject.txt"),
        include_str!("../../templates/mail/account_exists/body.txt"),
        include_str!("../../templates/mail/account_exists/body.html"),
    ),
    (
        "password_reset",
        include_str!("../../templates/mail/password_reset/subject.txt"),
        include_str!("../../templates/mail/password_reset/body.txt"),
        include_str!("../../templates/mail/password_reset/body.html"),
    ),
    (
        "password_reset_no_account",
        include_str!("../../templates/mail/password_reset_no_account/subject.txt"),
        include_str!("../../templates/mail/password_reset_no_account/body.txt"),
        include_str!("../../templates/mail/password_reset_no_account/body.html"),
    ),
    (
        "password_changed",
        include_str!("../../templates/mail/password_changed/subject.txt"),
        include_str!("../../templates/mail/password_changed/body.txt"),
        include_str!("../../templates/mail/password_changed/body.html"),
    ),
    // Meet-ups.
    (
        "meetup_rsvp",
        include_str!("../../templates/mail/meetup_rsvp/subject.txt"),
        include_str!("../../templates/mail/meetup_rsvp/body.txt"),
        include_str!("../../templates/mail/meetup_rsvp/body.html"),
    ),
    (
        "meetup_waitlisted",
        include_str!("../../templates/mail/meetup_waitlisted/subject.txt"),
        include_str!("../../templates/mail/meetup_waitlisted/body.txt"),
        include_str!("../../templates/mail/meetup_waitlisted/body.html"),
    ),
    (
        "meetup_promoted",
        include_str!("../../templates/mail/meetup_promoted/subject.txt"),
        include_str!("../../templates/mail/meetup_promoted/body.txt"),
        include_str!("../../templates/mail/meetup_promoted/body.html"),
    ),
    (
        "meetup_changed",
        include_str!("../../templates/mail/meetup_changed/subject.txt"),
        include_str!("../../templates/mail/meetup_changed/body.txt"),
        include_str!("../../templates/mail/meetup_changed/body.html"),
    ),
    (
        "meetup_cancelled",
        include_str!("../../templates/mail/meetup_cancelled/subject.txt"),
        include_str!("../../templates/mail/meetup_cancelled/body.txt"),
        include_str!("../../templates/mail/meetup_cancelled/body.html"),
    ),
    // The notification mail of any other event (see `outbox::mail`).
    (
        "notification",
        include_str!("../../templates/mail/notification/subject.txt"),
        include_str!("../../templates/mail/notification/body.txt"),
        include_str!("../../templates/mail/notification/body.html"),
    ),
    (
        "meetup_reminder",
        include_str!("../../templates/mail/meetup_reminder/subject.txt"),
        include_str!("../../templates/mail/meetup_reminder/body.txt"),
        include_str!("../../templates/mail/meetup_reminder/body.html"),
    ),
    // Notifications.
    (
        "digest",
        include_str!("../../templates/mail/digest/subject.txt"),
        include_str!("../../templates/mail/digest/body.txt"),
        include_str!("../../templates/mail/digest/body.html"),
    ),
];

pub struct Templates {
    env: Environment<'static>,
}

#[derive(Debug, Clone)]
pub struct RenderedMail {
    pub subject: String,
    pub text: String,
    pub html: String,
}

impl Templates {
    pub fn load() -> anyhow::Result<Self> {
        let mut env = Environment::new();
        // HTML bodies are auto-escaped (by the .html ending); text parts are not.
        env.add_template(
            "layout.html",
            include_str!("../../templates/mail/layout.html"),
        )?;
        // The plain-text unsubscribe footer of notification mail.
        env.add_template(
            "unsubscribe.txt",
            include_str!("../../templates/mail/unsubscribe.txt"),
        )?;
        for (kind, subject, text, html) in KINDS {
            env.add_template_owned(format!("{kind}/subject.txt"), *subject)?;
            env.add_template_owned(format!("{kind}/body.txt"), *text)?;
            env.add_template_owned(format!("{kind}/body.html"), *html)?;
        }
        Ok(Templates { env })
    }

    pub fn has(&self, kind: &str) -> bool {
        KINDS.iter().any(|(k, ..)| *k == kind)
    }

    pub fn render(
        &self,
        kind: &str,
        recipient: &str,
        base_url: &str,
        payload: &serde_json::Value,
    ) -> anyhow::Result<RenderedMail> {
        let mut ctx = match payload {
            serde_json::Value::Object(map) => map.clone(),
            _ => serde_json::Map::new(),
        };
        ctx.insert("recipient".into(), recipient.into());
        ctx.insert("base_url".into(), base_url.into());
        let ctx = serde_json::Value::Object(ctx);
        let part = |name: &str| -> anyhow::Result<String> {
            self.env
                .get_template(&format!("{kind}/{name}"))
                .with_context(|| format!("no mail template {kind}/{name}"))?
                .render(&ctx)
                .with_context(|| format!("rendering {kind}/{name}"))
        };
        Ok(RenderedMail {
            subject: part("subject.txt")?.trim().to_string(),
            text: part("body.txt")?,
            html: part("body.html")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_renders_and_html_is_escaped() {
        let t = Templates::load().unwrap();
        for (kind, ..) in KINDS {
            let r = t
                .render(
                    kind,
                    "a@b.org",
                    "http://x",
                    &serde_json::json!({"display_name": "<b>Ann</b>", "link": "http://x/l"}),
                )
                .unwrap();
            assert!(!r.subject.is_empty());
            assert!(!r.html.contains("<b>Ann</b>"), "{kind} did not escape");
        }
        assert!(t
            .render("nope", "a@b.org", "http://x", &serde_json::json!({}))
            .is_err());
    }
}
