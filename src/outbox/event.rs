//! What happened, as the outbox keeps it: one typed variant per event, naming rows by id.
//!
//! A row stores its event as JSON tagged by `event` (the row's `template` holds the same
//! name). Nothing here is text for people: titles, names and messages are read from the
//! database when the event is delivered or read (`outbox::render`), so an item hidden or
//! made private meanwhile never leaks through an event written before.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Where a row goes: `kind` of the outbox row that carries an event.
pub const KIND_NOTIFICATION: &str = "notification";
pub const KIND_CHANNEL: &str = "channel";

/// What a meet-up event carries for its mail: what the meet-up templates show (`mail`),
/// the invitation for those GOING (`ics`), the same without the online link for those
/// WAITLISTED (`ics_waitlisted`) and the calendar method. The invitations hold the online
/// link, a secret: they are removed from the row once it is delivered.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MeetupMail {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mail: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ics: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ics_waitlisted: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ics_method: Option<String>,
}

/// A message for a working group's chat channel, rendered when it is posted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "message", rename_all = "snake_case")]
pub enum ChannelMessage {
    /// A meet-up was scheduled in the group.
    MeetupScheduled { meetup_id: Uuid },
    /// A meet-up's outcomes were published.
    OutcomesPublished { meetup_id: Uuid, outcome_id: Uuid },
    /// A thread was started in the group.
    ThreadStarted { thread_id: Uuid },
    /// An official response on a suggestion (`new_status`: its new status, if it changed).
    SuggestionResponse {
        suggestion_id: Uuid,
        response_id: Uuid,
        new_status: Option<String>,
    },
    /// An official response in a thread.
    ThreadResponse { thread_id: Uuid, response_id: Uuid },
    /// A message written before messages were rendered late: its text as it was queued.
    Text { text: String },
}

impl ChannelMessage {
    /// What makes one message of one event: the same event is posted to a channel once.
    fn key(&self) -> String {
        match self {
            ChannelMessage::MeetupScheduled { meetup_id } => {
                format!("meetup-scheduled:{meetup_id}")
            }
            ChannelMessage::OutcomesPublished { outcome_id, .. } => {
                format!("meetup-outcomes:{outcome_id}")
            }
            ChannelMessage::ThreadStarted { thread_id } => format!("thread-started:{thread_id}"),
            ChannelMessage::SuggestionResponse { response_id, .. }
            | ChannelMessage::ThreadResponse { response_id, .. } => {
                format!("response-published:{response_id}")
            }
            // Only rows written before messages were typed hold text; none is written now.
            ChannelMessage::Text { .. } => "text".to_string(),
        }
    }
}

/// Every event the outbox delivers. Each names what it is about by id; the plan
/// (`outbox::plan`) gives each its audience, mail template and text, in one exhaustive
/// match, so a new event cannot be written without them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum OutboxEvent {
    /// A suggestion was made on a commitment: its followers hear.
    SuggestionCreated {
        suggestion_id: Uuid,
        commitment_id: Uuid,
        actor_id: Option<Uuid>,
    },
    /// An official response to a suggestion: its followers and supporters hear. A merge
    /// moves the duplicate's audience to the original in the same write, so it was taken
    /// before and rides in the event (`audience_ids`).
    ResponsePublished {
        suggestion_id: Uuid,
        response_id: Uuid,
        actor_id: Option<Uuid>,
        #[serde(default)]
        new_status: Option<String>,
        #[serde(default)]
        duplicate_of_id: Option<Uuid>,
        #[serde(default)]
        audience_ids: Option<Vec<Uuid>>,
    },
    /// An official update on a commitment: its followers hear.
    #[serde(rename = "commitment_update_published")]
    UpdatePublished {
        update_id: Uuid,
        commitment_id: Uuid,
        author_id: Option<Uuid>,
    },
    /// A reply in a thread: the author replied to, the thread's writers and followers.
    PostAdded {
        thread_id: Uuid,
        post_id: Uuid,
        #[serde(default)]
        parent_post_id: Option<Uuid>,
        actor_id: Option<Uuid>,
    },
    /// A meet-up was scheduled: the group's members hear.
    MeetupScheduled {
        meetup_id: Uuid,
        working_group_id: Uuid,
        actor_id: Option<Uuid>,
    },
    /// A meet-up's time or place changed (`sequence`: its calendar sequence after the
    /// change): those GOING and WAITLISTED hear.
    MeetupChanged {
        meetup_id: Uuid,
        #[serde(default)]
        sequence: i32,
        actor_id: Option<Uuid>,
        #[serde(flatten)]
        mail: MeetupMail,
    },
    /// A meet-up was cancelled: those GOING and WAITLISTED hear.
    MeetupCancelled {
        meetup_id: Uuid,
        actor_id: Option<Uuid>,
        #[serde(flatten)]
        mail: MeetupMail,
    },
    /// A meet-up starts soon (`starts`: its start, in Unix seconds): one person GOING.
    MeetupReminder {
        meetup_id: Uuid,
        user_id: Uuid,
        #[serde(default)]
        starts: i64,
        #[serde(flatten)]
        mail: MeetupMail,
    },
    /// A seat freed up and `user_id` moved from the waitlist to GOING (`promotion`: names
    /// this move, since a person may be promoted, leave and be promoted again).
    MeetupPromoted {
        meetup_id: Uuid,
        user_id: Uuid,
        #[serde(default)]
        promotion: Uuid,
        #[serde(flatten)]
        mail: MeetupMail,
    },
    /// Someone asked to join a group (`day`: the day they asked): its organisers hear,
    /// once a day per person however often they ask, withdraw and ask again.
    MembershipRequested {
        working_group_id: Uuid,
        user_id: Uuid,
        #[serde(default)]
        membership_id: Option<Uuid>,
        #[serde(default)]
        day: Option<chrono::NaiveDate>,
    },
    /// A request to join was approved or declined: the person who asked hears.
    MembershipDecided {
        working_group_id: Uuid,
        membership_id: Uuid,
        user_id: Uuid,
        #[serde(default)]
        approved: bool,
        decided_by: Option<Uuid>,
        /// The membership's `updated_at` in microseconds: names this decision.
        #[serde(default)]
        at: i64,
    },
    /// An organiser invited someone: that person hears.
    MembershipInvited {
        working_group_id: Uuid,
        membership_id: Uuid,
        user_id: Uuid,
        invited_by: Option<Uuid>,
        #[serde(default)]
        at: i64,
    },
    /// An item was reported: the site's administrators hear and, for content inside a
    /// group, its organisers. Written only for the report that opens an item's case, so
    /// further reports of an item already waiting for a moderator tell nobody again.
    ReportFiled {
        report_id: Uuid,
        actor_id: Option<Uuid>,
        #[serde(default)]
        working_group_id: Option<Uuid>,
    },
    /// An administrator changed an account's site role: that account hears.
    RoleChanged {
        user_id: Uuid,
        role: String,
        actor_id: Option<Uuid>,
        #[serde(default)]
        change: Uuid,
    },
    /// An organiser changed a member's role in a group: that member hears.
    MemberRoleChanged {
        working_group_id: Uuid,
        membership_id: Uuid,
        user_id: Uuid,
        role: String,
        actor_id: Option<Uuid>,
        #[serde(default)]
        at: i64,
    },
    /// A message for a group's chat channel.
    #[serde(rename = "channel")]
    ChannelPost {
        working_group_id: Uuid,
        #[serde(flatten)]
        message: ChannelMessage,
    },
}

/// Why a row could not be read as an event. Such a row is given up at once.
#[derive(Debug, thiserror::Error)]
#[error("undecodable outbox row ({template}): {reason}")]
pub struct Undecodable {
    pub template: String,
    pub reason: String,
}

impl OutboxEvent {
    /// The event's name: the row's `template`, and the tag in its JSON.
    pub fn name(&self) -> &'static str {
        match self {
            OutboxEvent::SuggestionCreated { .. } => "suggestion_created",
            OutboxEvent::ResponsePublished { .. } => "response_published",
            OutboxEvent::UpdatePublished { .. } => "commitment_update_published",
            OutboxEvent::PostAdded { .. } => "post_added",
            OutboxEvent::MeetupScheduled { .. } => "meetup_scheduled",
            OutboxEvent::MeetupChanged { .. } => "meetup_changed",
            OutboxEvent::MeetupCancelled { .. } => "meetup_cancelled",
            OutboxEvent::MeetupReminder { .. } => "meetup_reminder",
            OutboxEvent::MeetupPromoted { .. } => "meetup_promoted",
            OutboxEvent::MembershipRequested { .. } => "membership_requested",
            OutboxEvent::MembershipDecided { .. } => "membership_decided",
            OutboxEvent::MembershipInvited { .. } => "membership_invited",
            OutboxEvent::ReportFiled { .. } => "report_filed",
            OutboxEvent::RoleChanged { .. } => "role_changed",
            OutboxEvent::MemberRoleChanged { .. } => "member_role_changed",
            OutboxEvent::ChannelPost { .. } => "channel",
        }
    }

    /// The row's `kind`: a channel post, or a notification event the worker fans out.
    pub fn kind(&self) -> &'static str {
        match self {
            OutboxEvent::ChannelPost { .. } => KIND_CHANNEL,
            _ => KIND_NOTIFICATION,
        }
    }

    /// The row's `recipient`: the account an event for one person reaches, the group of a
    /// channel post, or `audience:{subject}` for an event whose audience is worked out
    /// when it is delivered.
    pub fn recipient(&self) -> String {
        match self {
            OutboxEvent::MeetupReminder { user_id, .. }
            | OutboxEvent::MeetupPromoted { user_id, .. }
            | OutboxEvent::MembershipDecided { user_id, .. }
            | OutboxEvent::MembershipInvited { user_id, .. }
            | OutboxEvent::RoleChanged { user_id, .. }
            | OutboxEvent::MemberRoleChanged { user_id, .. } => user_id.to_string(),
            OutboxEvent::ChannelPost {
                working_group_id, ..
            } => working_group_id.to_string(),
            OutboxEvent::SuggestionCreated { commitment_id, .. }
            | OutboxEvent::UpdatePublished { commitment_id, .. } => {
                format!("audience:{commitment_id}")
            }
            OutboxEvent::ResponsePublished { suggestion_id, .. } => {
                format!("audience:{suggestion_id}")
            }
            OutboxEvent::PostAdded { thread_id, .. } => format!("audience:{thread_id}"),
            OutboxEvent::MeetupScheduled {
                working_group_id, ..
            }
            | OutboxEvent::MembershipRequested {
                working_group_id, ..
            } => format!("audience:{working_group_id}"),
            OutboxEvent::MeetupChanged { meetup_id, .. }
            | OutboxEvent::MeetupCancelled { meetup_id, .. } => format!("audience:{meetup_id}"),
            OutboxEvent::ReportFiled { report_id, .. } => format!("audience:{report_id}"),
        }
    }

    /// The idempotency key: one event is written, and heard, once. Writing an event whose
    /// key is already there changes nothing, which is what budgets the mail anyone can
    /// trigger: a join request is heard once per person, group and day.
    pub fn idempotency_key(&self) -> String {
        match self {
            OutboxEvent::SuggestionCreated { suggestion_id, .. } => {
                format!("suggestion_created:{suggestion_id}")
            }
            OutboxEvent::ResponsePublished { response_id, .. } => {
                format!("response_published:{response_id}")
            }
            OutboxEvent::UpdatePublished { update_id, .. } => {
                format!("commitment_update_published:{update_id}")
            }
            OutboxEvent::PostAdded { post_id, .. } => format!("post_added:{post_id}"),
            OutboxEvent::MeetupScheduled { meetup_id, .. } => {
                format!("meetup-scheduled:{meetup_id}")
            }
            OutboxEvent::MeetupChanged {
                meetup_id,
                sequence,
                ..
            } => format!("meetup-changed:{meetup_id}:{sequence}"),
            OutboxEvent::MeetupCancelled { meetup_id, .. } => {
                format!("meetup-cancelled:{meetup_id}")
            }
            OutboxEvent::MeetupReminder {
                meetup_id,
                user_id,
                starts,
                ..
            } => format!("meetup-reminder:{meetup_id}:{user_id}:{starts}"),
            OutboxEvent::MeetupPromoted {
                meetup_id,
                user_id,
                promotion,
                ..
            } => format!("notify:meetup-promoted:{meetup_id}:{user_id}:{promotion}"),
            OutboxEvent::MembershipRequested {
                working_group_id,
                user_id,
                day,
                ..
            } => {
                let day = day.map(|d| d.to_string()).unwrap_or_default();
                format!("membership_requested:{working_group_id}:{user_id}:{day}")
            }
            OutboxEvent::MembershipDecided {
                membership_id, at, ..
            } => format!("membership_decided:{membership_id}:{at}"),
            OutboxEvent::MembershipInvited {
                membership_id, at, ..
            } => format!("membership_invited:{membership_id}:{at}"),
            OutboxEvent::ReportFiled { report_id, .. } => format!("report_filed:{report_id}"),
            OutboxEvent::RoleChanged {
                user_id, change, ..
            } => format!("role_changed:{user_id}:{change}"),
            OutboxEvent::MemberRoleChanged {
                membership_id, at, ..
            } => format!("member_role_changed:{membership_id}:{at}"),
            OutboxEvent::ChannelPost {
                working_group_id,
                message,
            } => format!("channel:{}:{working_group_id}", message.key()),
        }
    }

    /// The JSON a row stores.
    pub fn to_payload(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    /// Reads a row back. Rows written before events were typed carry the event's name
    /// only in `template`, the account of a one-person event only in `recipient`, and a
    /// channel message as its frozen `text`: those are filled in from the row, so such
    /// rows are delivered as they always were.
    pub fn decode(template: &str, recipient: &str, payload: &str) -> Result<Self, Undecodable> {
        let fail = |reason: String| Undecodable {
            template: template.to_string(),
            reason,
        };
        let value: serde_json::Value =
            serde_json::from_str(payload).map_err(|e| fail(format!("payload is not JSON: {e}")))?;
        let serde_json::Value::Object(mut fields) = value else {
            return Err(fail("payload is not a JSON object".into()));
        };
        if !fields.contains_key("event") {
            fields.insert("event".into(), template.into());
            if template == "channel" {
                fields.insert("working_group_id".into(), recipient.into());
                if !fields.contains_key("message") {
                    fields.insert("message".into(), "text".into());
                }
            } else if !fields.contains_key("user_id") {
                if let Ok(person) = recipient.parse::<Uuid>() {
                    fields.insert("user_id".into(), person.to_string().into());
                }
            }
        }
        let event: OutboxEvent = serde_json::from_value(serde_json::Value::Object(fields))
            .map_err(|e| fail(e.to_string()))?;
        if event.name() != template {
            return Err(fail(format!(
                "payload holds event {:?}, row says {template:?}",
                event.name()
            )));
        }
        Ok(event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    #[test]
    fn an_event_reads_back_as_written() {
        let events = [
            OutboxEvent::PostAdded {
                thread_id: id(1),
                post_id: id(2),
                parent_post_id: None,
                actor_id: Some(id(3)),
            },
            OutboxEvent::MeetupChanged {
                meetup_id: id(1),
                sequence: 2,
                actor_id: None,
                mail: MeetupMail {
                    mail: Some(serde_json::json!({"title": "x"})),
                    ics: Some("BEGIN".into()),
                    ics_waitlisted: None,
                    ics_method: Some("REQUEST".into()),
                },
            },
            OutboxEvent::ChannelPost {
                working_group_id: id(4),
                message: ChannelMessage::ThreadStarted { thread_id: id(5) },
            },
        ];
        for e in events {
            let payload = e.to_payload().to_string();
            let back = OutboxEvent::decode(e.name(), &e.recipient(), &payload).unwrap();
            assert_eq!(back, e);
        }
    }

    #[test]
    fn rows_of_the_old_shape_decode() {
        let old = serde_json::json!({
            "meetup_id": id(1), "working_group_id": id(2), "title": "Old title",
            "starts_at": "2026-12-01T10:00:00Z", "sequence": 0,
            "mail": {"title": "Old title"}, "ics": "BEGIN:VCALENDAR",
        });
        let e =
            OutboxEvent::decode("meetup_reminder", &id(9).to_string(), &old.to_string()).unwrap();
        assert!(matches!(e, OutboxEvent::MeetupReminder { user_id, .. } if user_id == id(9)));
        let e = OutboxEvent::decode("channel", &id(4).to_string(), r#"{"text":"hello"}"#).unwrap();
        assert_eq!(
            e,
            OutboxEvent::ChannelPost {
                working_group_id: id(4),
                message: ChannelMessage::Text {
                    text: "hello".into()
                }
            }
        );
    }

    #[test]
    fn a_row_that_is_no_event_is_refused_with_its_reason() {
        let e = OutboxEvent::decode("post_added", "audience:x", r#"{"thread_id": 5}"#).unwrap_err();
        assert!(e.to_string().contains("post_added"), "{e}");
        assert!(OutboxEvent::decode("no_such_event", "x", "{}").is_err());
        assert!(OutboxEvent::decode("post_added", "x", "not json").is_err());
    }
}
