//! The immediate notification mail, decided in the fan-out's transaction. For each person
//! an event reaches, the email preference of the event's group says: `IMMEDIATE` queues one
//! email outbox row now (key `notify-mail:{notification id}`), `DAILY_DIGEST` marks the
//! notification `digest_pending` for the digest job, `OFF` sends nothing. Only verified
//! addresses not marked undeliverable get either. Every read and write is chunked
//! (`notifications::CHUNK` ids per statement), so 10,000 recipients cost a few dozen
//! statements, not 10,000.
//!
//! A meet-up's change, cancellation, waitlist promotion and reminder are mailed this way
//! too, with the meet-up's own templates and its `.ics`: one mail per event and person.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect};
use serde_json::{json, Value};
use uuid::Uuid;

use super::notify::NewRow;
use super::plan::{recipients, Plan};
use super::write::NewMail;
use crate::auth::tokens::TokenKeys;
use crate::config::NotificationSettings;
use crate::entities::notification::SubjectType;
use crate::entities::notification_preference::EmailPreference;
use crate::entities::{rsvp, user};
use crate::services::notifications::in_chunks;
use crate::services::unsubscribe::{self, Scope};
use crate::services::{deliverability, notification_prefs};

/// The template of the generic notification mail.
pub const TEMPLATE: &str = "notification";

/// Event payload keys of a meet-up event that the worker turns into each person's mail:
/// `mail` (what the meet-up templates show), `ics` (the invitation for those GOING),
/// `ics_waitlisted` (the same without the online link) and `ics_method`.
pub const MAIL_KEY: &str = "mail";
pub const ICS_WAITLISTED_KEY: &str = "ics_waitlisted";

/// What the worker needs to write notification mail.
#[derive(Clone)]
pub struct MailSetup {
    /// Signs each mail's unsubscribe token.
    pub keys: Arc<TokenKeys>,
    pub settings: NotificationSettings,
    /// `public.base_url`, without a trailing slash: links in the mail go there.
    pub base_url: String,
}

/// Who gets what for one event.
#[derive(Default)]
pub struct Decisions {
    /// Mailed now: (address, display name).
    pub immediate: HashMap<Uuid, (String, String)>,
    /// Left for the daily digest.
    pub digest: HashSet<Uuid>,
}

/// Reads the preferences, deliverability and verified addresses of everyone `plan` reaches
/// and decides, per person, immediate mail, the digest or nothing.
pub async fn decide<C: ConnectionTrait>(
    conn: &C,
    setup: &MailSetup,
    plan: &Plan,
) -> Result<Decisions, sea_orm::DbErr> {
    let people = recipients(plan);
    if people.is_empty() {
        return Ok(Decisions::default());
    }
    let ids: Vec<Uuid> = people.iter().map(|(p, _)| *p).collect();
    let prefs = notification_prefs::for_people(conn, &setup.settings, &ids).await?;
    let undeliverable = deliverability::undeliverable_among(conn, &ids).await?;
    let mut addresses: HashMap<Uuid, (String, String)> = in_chunks(conn, &ids, |chunk| {
        user::Entity::find()
            .select_only()
            .column(user::Column::Id)
            .column(user::Column::Email)
            .column(user::Column::DisplayName)
            .filter(user::Column::Id.is_in(chunk.iter().copied()))
            .filter(user::Column::EmailVerifiedAt.is_not_null())
            .into_tuple::<(Uuid, String, String)>()
    })
    .await?
    .into_iter()
    .map(|(id, e, n)| (id, (e, n)))
    .collect();
    let mut out = Decisions::default();
    for (person, audience) in people {
        if undeliverable.contains(&person) {
            continue;
        }
        let Some(address) = addresses.remove(&person) else {
            continue;
        };
        let group = plan.audiences[audience].kind.group();
        match prefs.get(&person).map(|p| p.for_group(group)) {
            Some(EmailPreference::Immediate) => {
                out.immediate.insert(person, address);
            }
            Some(EmailPreference::DailyDigest) => {
                out.digest.insert(person);
            }
            Some(EmailPreference::Off) | None => {}
        }
    }
    Ok(out)
}

fn str_at<'a>(p: &'a Value, key: &str) -> Option<&'a str> {
    p.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// The path (under `public.base_url`) of what an event is about. Its title is read when
/// the mail is sent (`outbox::render::mail_payload`).
pub fn path_of(plan: &Plan, payload: &Value) -> String {
    let id = plan.subject_id;
    match plan.subject_type {
        SubjectType::Suggestion => format!("suggestions/{id}"),
        SubjectType::CommitmentUpdate => format!("updates/{id}"),
        SubjectType::Post => match str_at(payload, "thread_id") {
            Some(thread) => format!("threads/{thread}#post-{id}"),
            None => format!("posts/{id}"),
        },
        SubjectType::Meetup => format!("meetups/{id}"),
        SubjectType::WorkingGroup => format!("groups/{id}"),
        SubjectType::Report => format!("moderation/reports/{id}"),
        SubjectType::User => "account".to_string(),
    }
}

/// Queues the immediate mail of the notifications just `written` for event `payload`, in
/// chunked multi-row INSERTs that skip any key already queued. Returns how many were new.
pub async fn queue_immediate<C: ConnectionTrait>(
    conn: &C,
    setup: &MailSetup,
    plan: &Plan,
    payload: &Value,
    written: &[NewRow],
    decisions: &Decisions,
) -> Result<u64, sea_orm::DbErr> {
    if decisions.immediate.is_empty() || written.is_empty() {
        return Ok(0);
    }
    let audience_of: HashMap<Uuid, usize> = recipients(plan).into_iter().collect();
    let link = format!("{}/{}", setup.base_url, path_of(plan, payload));
    let shown = payload.get(MAIL_KEY).and_then(Value::as_object);
    // Those WAITLISTED get the invitation without the online link.
    let waitlisted: HashSet<Uuid> = match (payload.get(ICS_WAITLISTED_KEY), plan.subject_type) {
        (Some(_), SubjectType::Meetup) => rsvp::Entity::find()
            .select_only()
            .column(rsvp::Column::UserId)
            .filter(rsvp::Column::MeetupId.eq(plan.subject_id))
            .filter(rsvp::Column::Status.eq(rsvp::Status::Waitlisted))
            .into_tuple::<Uuid>()
            .all(conn)
            .await?
            .into_iter()
            .collect(),
        _ => HashSet::new(),
    };
    let mut mails = Vec::new();
    for n in written
        .iter()
        .filter(|n| decisions.immediate.contains_key(&n.recipient_id))
    {
        let (Some((address, name)), Some(&audience)) = (
            decisions.immediate.get(&n.recipient_id),
            audience_of.get(&n.recipient_id),
        ) else {
            continue;
        };
        let a = &plan.audiences[audience];
        let group = a.kind.group();
        let mut mail = serde_json::Map::new();
        if let Some(shown) = shown {
            mail.extend(shown.clone());
        }
        mail.extend(
            json!({
                "display_name": name,
                "notification_id": n.id,
                "kind": sea_orm::ActiveEnum::to_value(&a.kind),
                "text": "",
                "subject_title": "",
                "link": link,
                "group_label": group.label(),
                "unsubscribe_token": unsubscribe::token(&setup.keys, n.recipient_id, Scope::Group(group)),
            })
            .as_object()
            .cloned()
            .unwrap_or_default(),
        );
        if let (Some(ics), Some(method)) = (
            payload.get(crate::mail::ICS_KEY),
            payload.get(crate::mail::ICS_METHOD_KEY),
        ) {
            let ics = match payload.get(ICS_WAITLISTED_KEY) {
                Some(hidden) if waitlisted.contains(&n.recipient_id) => hidden,
                _ => ics,
            };
            mail.insert(crate::mail::ICS_KEY.into(), ics.clone());
            mail.insert(crate::mail::ICS_METHOD_KEY.into(), method.clone());
        }
        mails.push(NewMail {
            idempotency_key: format!("notify-mail:{}", n.id),
            recipient: address.clone(),
            template: a.template.to_string(),
            payload: Value::Object(mail),
        });
    }
    let queued = super::write::enqueue_mails(conn, mails).await?.len() as u64;
    Ok(queued)
}
