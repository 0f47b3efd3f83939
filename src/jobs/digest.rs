//! The daily digest: once a day, at the hour a person chose in their own time zone, one mail
//! gathering the notifications whose email waited for it (`notifications.digest_pending`).
//!
//! Only people with something pending are considered (one indexed statement), so the run
//! costs the same with 5,000 accounts or 50,000: every later read and write is batched over
//! the people due, `notifications::CHUNK` ids per statement. A digest is never empty, and
//! goes once per person per local day: its outbox key is `digest:{user id}:{local date}`,
//! inserted with `ON CONFLICT DO NOTHING`, so two instances racing queue it once.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use sea_orm::sea_query::{Expr, OnConflict, Query};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QuerySelect,
};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::auth::tokens::TokenKeys;
use crate::config::{NotificationSettings, Settings};
use crate::db::begin_write;
use crate::entities::notification::{self, SubjectType};
use crate::entities::notification_preference::{self, EmailPreference};
use crate::entities::{
    commitment, commitment_update, meetup, post, suggestion, thread, user, working_group,
};
use crate::outbox::render::Rendered;
use crate::outbox::write::NewMail;
use crate::services::notification_prefs::{self, Prefs};
use crate::services::notifications::{in_chunks, CHUNK};
use crate::services::unsubscribe::{self, Scope};
use crate::services::{deliverability, Ctx};

/// The mail template (and outbox `template`) of a digest.
pub const TEMPLATE: &str = "digest";

/// The most items one digest lists; the rest are counted, and wait in the app.
pub const MAX_ITEMS: usize = 100;

/// What one run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DigestRun {
    /// People with something pending (the only ones read at all).
    pub considered: usize,
    /// Of those, the people whose digest moment had come today.
    pub due: usize,
    /// Digests queued in the outbox.
    pub queued: usize,
    /// People due whose address is unverified or undeliverable: their pending items were
    /// dropped from email (they stay in the app).
    pub skipped: usize,
}

/// Looks for due digests every `every`, until cancelled. Every instance runs it: the
/// idempotency key makes each digest one outbox row however many instances queue it.
pub async fn run(ctx: Ctx, every: Duration, cancel: CancellationToken) {
    loop {
        match run_once(&ctx.db, &ctx.settings, &ctx.tokens, Utc::now()).await {
            Ok(r) if r.queued > 0 || r.skipped > 0 => {
                tracing::info!(
                    considered = r.considered,
                    due = r.due,
                    queued = r.queued,
                    skipped = r.skipped,
                    "daily digests queued"
                );
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = ?e, "queuing daily digests failed"),
        }
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

/// A person's zone: their own, else the site's default, else UTC.
fn zone_of(prefs: &Prefs, settings: &NotificationSettings) -> Tz {
    prefs
        .time_zone
        .parse::<Tz>()
        .or_else(|_| settings.default_time_zone.parse::<Tz>())
        .unwrap_or(Tz::UTC)
}

/// The instant of local `date` at `hour`:00 in `tz`. A time that occurs twice (clocks going
/// back) is its first occurrence; a time that does not exist (clocks going forward) is
/// read with the offset before the jump, which lands just after it (02:00 in a gap from
/// 02:00 to 03:00 is 03:00).
pub fn scheduled_at(tz: Tz, date: NaiveDate, hour: u32) -> DateTime<Utc> {
    let local: NaiveDateTime = date
        .and_hms_opt(hour.min(23), 0, 0)
        .unwrap_or_else(|| date.and_time(chrono::NaiveTime::MIN));
    if let Some(t) = tz.from_local_datetime(&local).earliest() {
        return t.with_timezone(&Utc);
    }
    let before = local - chrono::Duration::hours(3);
    match tz.from_local_datetime(&before).earliest() {
        Some(t) => t.with_timezone(&Utc) + chrono::Duration::hours(3),
        None => local.and_utc(),
    }
}

/// One person due now.
struct Due {
    user_id: Uuid,
    tz: Tz,
    local_date: String,
    moment: DateTime<Utc>,
    prefs: Prefs,
}

/// Queues the digests due at `now`. See the module documentation.
pub async fn run_once(
    db: &DatabaseConnection,
    settings: &Settings,
    keys: &TokenKeys,
    now: DateTime<Utc>,
) -> anyhow::Result<DigestRun> {
    let ns = &settings.notifications;
    // The people with something pending: the index on (digest_pending, recipient_id,
    // created_at) answers this without touching anyone else.
    let candidates: Vec<Uuid> = notification::Entity::find()
        .select_only()
        .column(notification::Column::RecipientId)
        .filter(notification::Column::DigestPending.eq(true))
        .distinct()
        .into_tuple()
        .all(db)
        .await?;
    let mut out = DigestRun {
        considered: candidates.len(),
        ..DigestRun::default()
    };
    if candidates.is_empty() {
        return Ok(out);
    }
    let prefs = notification_prefs::for_people(db, ns, &candidates).await?;
    let mut due = Vec::new();
    for id in &candidates {
        let Some(p) = prefs.get(id) else { continue };
        let tz = zone_of(p, ns);
        let today = now.with_timezone(&tz).date_naive();
        let moment = scheduled_at(tz, today, p.digest_hour);
        let local_date = today.format("%Y-%m-%d").to_string();
        if now < moment || p.last_digest_on.as_deref() == Some(local_date.as_str()) {
            continue;
        }
        due.push(Due {
            user_id: *id,
            tz,
            local_date,
            moment,
            prefs: p.clone(),
        });
    }
    out.due = due.len();
    for batch in due.chunks(CHUNK) {
        let (queued, skipped) = run_batch(db, settings, keys, batch).await?;
        out.queued += queued;
        out.skipped += skipped;
    }
    Ok(out)
}

/// The section of a digest an item belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Section {
    Commitment(Uuid),
    WorkingGroup(Uuid),
    Thread(Uuid),
    Account,
}

/// Where each subject sits and links to, read for a batch of notifications in a fixed
/// number of statements per `CHUNK` subjects.
#[derive(Default)]
struct Subjects {
    /// Subject id → (its section, its link path).
    place: HashMap<Uuid, (Section, String)>,
    commitments: HashMap<Uuid, commitment::Model>,
    threads: HashMap<Uuid, (String, bool)>,
    groups: HashMap<Uuid, (String, String)>,
}

fn ids_of(rows: &[&notification::Model], t: SubjectType) -> Vec<Uuid> {
    let set: HashSet<Uuid> = rows
        .iter()
        .filter(|r| r.subject_type == t)
        .map(|r| r.subject_id)
        .collect();
    set.into_iter().collect()
}

async fn resolve<C: ConnectionTrait>(
    conn: &C,
    rows: &[&notification::Model],
) -> Result<Subjects, sea_orm::DbErr> {
    let mut s = Subjects::default();
    let mut commitment_ids = HashSet::new();
    let mut thread_ids = HashSet::new();
    let mut group_ids: HashSet<Uuid> = ids_of(rows, SubjectType::WorkingGroup)
        .into_iter()
        .collect();

    let suggestions: Vec<(Uuid, Uuid)> =
        in_chunks(conn, &ids_of(rows, SubjectType::Suggestion), |c| {
            suggestion::Entity::find()
                .select_only()
                .columns([suggestion::Column::Id, suggestion::Column::CommitmentId])
                .filter(suggestion::Column::Id.is_in(c.iter().copied()))
                .into_tuple()
        })
        .await?;
    for (id, commitment_id) in suggestions {
        commitment_ids.insert(commitment_id);
        s.place.insert(
            id,
            (
                Section::Commitment(commitment_id),
                format!("suggestions/{id}"),
            ),
        );
    }
    let updates: Vec<(Uuid, Uuid)> =
        in_chunks(conn, &ids_of(rows, SubjectType::CommitmentUpdate), |c| {
            commitment_update::Entity::find()
                .select_only()
                .columns([
                    commitment_update::Column::Id,
                    commitment_update::Column::CommitmentId,
                ])
                .filter(commitment_update::Column::Id.is_in(c.iter().copied()))
                .into_tuple()
        })
        .await?;
    for (id, commitment_id) in updates {
        commitment_ids.insert(commitment_id);
        s.place.insert(
            id,
            (Section::Commitment(commitment_id), format!("updates/{id}")),
        );
    }
    let posts: Vec<(Uuid, Uuid)> = in_chunks(conn, &ids_of(rows, SubjectType::Post), |c| {
        post::Entity::find()
            .select_only()
            .columns([post::Column::Id, post::Column::ThreadId])
            .filter(post::Column::Id.is_in(c.iter().copied()))
            .into_tuple()
    })
    .await?;
    for (id, thread_id) in posts {
        thread_ids.insert(thread_id);
        s.place.insert(
            id,
            (
                Section::Thread(thread_id),
                format!("threads/{thread_id}#post-{id}"),
            ),
        );
    }
    let meetups: Vec<(Uuid, Uuid)> = in_chunks(conn, &ids_of(rows, SubjectType::Meetup), |c| {
        meetup::Entity::find()
            .select_only()
            .columns([meetup::Column::Id, meetup::Column::WorkingGroupId])
            .filter(meetup::Column::Id.is_in(c.iter().copied()))
            .into_tuple()
    })
    .await?;
    for (id, group_id) in meetups {
        group_ids.insert(group_id);
        s.place.insert(
            id,
            (Section::WorkingGroup(group_id), format!("meetups/{id}")),
        );
    }

    let commitment_ids: Vec<Uuid> = commitment_ids.into_iter().collect();
    for chunk in commitment_ids.chunks(CHUNK) {
        for c in commitment::Entity::find()
            .filter(commitment::Column::Id.is_in(chunk.iter().copied()))
            .all(conn)
            .await?
        {
            s.commitments.insert(c.id, c);
        }
    }
    let thread_ids: Vec<Uuid> = thread_ids.into_iter().collect();
    let threads: Vec<(Uuid, String, bool)> = in_chunks(conn, &thread_ids, |c| {
        thread::Entity::find()
            .select_only()
            .columns([
                thread::Column::Id,
                thread::Column::Title,
                thread::Column::Hidden,
            ])
            .filter(thread::Column::Id.is_in(c.iter().copied()))
            .into_tuple()
    })
    .await?;
    for (id, title, hidden) in threads {
        s.threads.insert(id, (title, hidden));
    }
    let group_ids: Vec<Uuid> = group_ids.into_iter().collect();
    let groups: Vec<(Uuid, String, String)> = in_chunks(conn, &group_ids, |c| {
        working_group::Entity::find()
            .select_only()
            .columns([
                working_group::Column::Id,
                working_group::Column::Name,
                working_group::Column::Slug,
            ])
            .filter(working_group::Column::Id.is_in(c.iter().copied()))
            .into_tuple()
    })
    .await?;
    for (id, name, slug) in groups {
        s.groups.insert(id, (name, slug));
    }
    // A working group is its own section.
    for id in ids_of(rows, SubjectType::WorkingGroup) {
        if let Some((_, slug)) = s.groups.get(&id) {
            let path = format!("groups/{slug}");
            s.place.insert(id, (Section::WorkingGroup(id), path));
        }
    }
    Ok(s)
}

impl Subjects {
    /// The section and link path of one notification. Reports and role changes, and a
    /// subject deleted since, go under "Moderation and your account".
    fn place_of(&self, n: &notification::Model) -> (Section, String) {
        match n.subject_type {
            SubjectType::Report => (Section::Account, "moderation/reports".into()),
            SubjectType::User => (Section::Account, "account".into()),
            _ => self
                .place
                .get(&n.subject_id)
                .cloned()
                .unwrap_or((Section::Account, "notifications".into())),
        }
    }

    /// A section's heading and link path.
    fn heading(&self, section: &Section) -> (String, String, &'static str) {
        match section {
            Section::Commitment(id) => match self.commitments.get(id) {
                Some(c) => (
                    format!("{}: {}", c.reference, c.title),
                    format!("commitments/{}", c.reference),
                    "commitment",
                ),
                None => ("A commitment".into(), "commitments".into(), "commitment"),
            },
            Section::WorkingGroup(id) => match self.groups.get(id) {
                Some((name, slug)) => (name.clone(), format!("groups/{slug}"), "working_group"),
                None => ("A working group".into(), "groups".into(), "working_group"),
            },
            Section::Thread(id) => match self.threads.get(id) {
                Some((_, true)) => (
                    crate::services::moderation::HIDDEN_TITLE.to_string(),
                    format!("threads/{id}"),
                    "thread",
                ),
                Some((title, false)) => (title.clone(), format!("threads/{id}"), "thread"),
                None => ("A discussion".into(), "threads".into(), "thread"),
            },
            Section::Account => (
                "Moderation and your account".into(),
                "notifications".into(),
                "account",
            ),
        }
    }
}

fn link(base_url: &str, path: &str) -> String {
    format!("{}/{}", base_url.trim_end_matches('/'), path)
}

/// The digest's payload: sections ordered by their newest item, items newest first within.
fn payload(
    settings: &Settings,
    keys: &TokenKeys,
    person: &Due,
    display_name: &str,
    items: &[&notification::Model],
    subjects: &Subjects,
    rendered: &HashMap<Uuid, Rendered>,
) -> Value {
    let base = settings.public.base_url.as_str();
    let mut sorted: Vec<&notification::Model> = items.to_vec();
    sorted.sort_by_key(|n| std::cmp::Reverse((n.created_at, n.id)));
    let total = sorted.len();
    sorted.truncate(MAX_ITEMS);
    // Sections in the order of their first (newest) item.
    let mut order: Vec<Section> = Vec::new();
    let mut by_section: HashMap<Section, Vec<Value>> = HashMap::new();
    // A thread's heading is its title as this reader may see it (the marker when the
    // thread is hidden or in a private group they left).
    let mut thread_titles: HashMap<Section, String> = HashMap::new();
    for n in &sorted {
        let (section, path) = subjects.place_of(n);
        let at = n.created_at.with_timezone(&person.tz);
        let entry = by_section.entry(section.clone()).or_insert_with(|| {
            order.push(section.clone());
            Vec::new()
        });
        let shown = rendered.get(&n.id);
        if let (Section::Thread(_), Some(Rendered { title: Some(t), .. })) = (&section, shown) {
            thread_titles
                .entry(section.clone())
                .or_insert_with(|| t.clone());
        }
        entry.push(json!({
            "text": shown.map_or(n.text.as_str(), |r| r.text.as_str()),
            "url": link(base, &path),
            "at": at.format("%-d %b %H:%M").to_string(),
            "kind": sea_orm::ActiveEnum::to_value(&n.kind),
        }));
    }
    let sections: Vec<Value> = order
        .iter()
        .map(|section| {
            let (mut title, path, kind) = subjects.heading(section);
            if let Some(shown) = thread_titles.get(section) {
                title = shown.clone();
            }
            json!({
                "title": title,
                "url": link(base, &path),
                "kind": kind,
                "items": by_section.remove(section).unwrap_or_default(),
            })
        })
        .collect();
    json!({
        "display_name": display_name,
        "date": person.local_date,
        "item_count": total,
        "more": total.saturating_sub(MAX_ITEMS),
        "groups": sections,
        "notifications_url": link(base, "notifications"),
        "preferences_url": link(base, "settings/notifications"),
        "unsubscribe_token": unsubscribe::token(keys, person.user_id, Scope::Digest),
    })
}

/// One person's digest, about to be queued.
struct Planned<'a> {
    due: &'a Due,
    email: &'a str,
    name: &'a str,
    /// The items it lists.
    include: Vec<&'a notification::Model>,
    /// Items in a group now OFF: no longer waiting, and not listed.
    off: Vec<Uuid>,
}

/// Queues the digests of one batch of people due (at most `CHUNK`), in one transaction:
/// their mails, their included items marked sent, and the day of their last digest.
/// Returns (digests queued, people skipped).
async fn run_batch(
    db: &DatabaseConnection,
    settings: &Settings,
    keys: &TokenKeys,
    batch: &[Due],
) -> anyhow::Result<(usize, usize)> {
    let ids: Vec<Uuid> = batch.iter().map(|d| d.user_id).collect();
    let tx = begin_write(db).await?;
    let people: HashMap<Uuid, (String, String, bool)> = user::Entity::find()
        .select_only()
        .columns([
            user::Column::Id,
            user::Column::Email,
            user::Column::DisplayName,
            user::Column::EmailVerifiedAt,
        ])
        .filter(user::Column::Id.is_in(ids.iter().copied()))
        .into_tuple::<(Uuid, String, String, Option<DateTime<Utc>>)>()
        .all(&tx)
        .await?
        .into_iter()
        .map(|(id, email, name, verified)| (id, (email, name, verified.is_some())))
        .collect();
    let undeliverable = deliverability::undeliverable_among(&tx, &ids).await?;
    let pending = notification::Entity::find()
        .filter(notification::Column::DigestPending.eq(true))
        .filter(notification::Column::RecipientId.is_in(ids.iter().copied()))
        .all(&tx)
        .await?;
    let mut by_person: HashMap<Uuid, Vec<&notification::Model>> = HashMap::new();
    for n in &pending {
        by_person.entry(n.recipient_id).or_default().push(n);
    }

    // Who is skipped (their pending items leave the email queue), and what each remaining
    // person's digest holds.
    let mut skipped_people = Vec::new();
    let mut drop_ids: Vec<Uuid> = Vec::new();
    let mut plans: Vec<Planned> = Vec::new();
    for d in batch {
        let rows = by_person.remove(&d.user_id).unwrap_or_default();
        let person = match people.get(&d.user_id) {
            Some(p) if p.2 && !undeliverable.contains(&d.user_id) => p,
            _ => {
                skipped_people.push(d.user_id);
                continue;
            }
        };
        let (mut include, mut off) = (Vec::new(), Vec::new());
        for n in rows {
            if n.created_at > d.moment {
                continue; // Tomorrow's.
            }
            match d.prefs.for_group(n.kind.group()) {
                EmailPreference::Off => off.push(n.id),
                // IMMEDIATE now: it was queued for the digest, so it goes in it.
                EmailPreference::DailyDigest | EmailPreference::Immediate => include.push(n),
            }
        }
        if include.is_empty() {
            drop_ids.extend(off);
        } else {
            plans.push(Planned {
                due: d,
                email: &person.0,
                name: &person.1,
                include,
                off,
            });
        }
    }

    let included: Vec<&notification::Model> = plans
        .iter()
        .flat_map(|p| p.include.iter().copied())
        .collect();
    let subjects = resolve(&tx, &included).await?;
    // Each item's text as its reader may see it now, for the whole batch at once.
    let owned: Vec<notification::Model> = included.iter().map(|n| (*n).clone()).collect();
    let rendered = crate::outbox::render::notifications(&tx, &owned).await?;

    // The mails, in one statement; a key already there (another instance, or an earlier
    // digest today) is not queued again, and that person's items stay as they are.
    let mails = plans
        .iter()
        .map(
            |Planned {
                 due: d,
                 email,
                 name,
                 include,
                 ..
             }| NewMail {
                idempotency_key: digest_key(d),
                recipient: email.to_string(),
                template: TEMPLATE.to_string(),
                payload: payload(settings, keys, d, name, include, &subjects, &rendered),
            },
        )
        .collect();
    let queued_keys = crate::outbox::write::enqueue_mails(&tx, mails).await?;
    // Items leave the queue only with the mail that lists them. The day is recorded for
    // everyone planned: a key already there means that day's digest exists.
    let mut done_ids = drop_ids;
    let mut queued = 0;
    for Planned {
        due: d,
        include,
        off,
        ..
    } in &plans
    {
        if queued_keys.contains(&digest_key(d)) {
            done_ids.extend(include.iter().map(|n| n.id));
            done_ids.extend(off.iter().copied());
            queued += 1;
        }
    }
    let sent_to: Vec<&Due> = plans.iter().map(|p| p.due).collect();
    for chunk in done_ids.chunks(CHUNK) {
        notification::Entity::update_many()
            .col_expr(notification::Column::DigestPending, Expr::value(false))
            .filter(notification::Column::Id.is_in(chunk.iter().copied()))
            .exec(&tx)
            .await?;
    }
    if !skipped_people.is_empty() {
        notification::Entity::update_many()
            .col_expr(notification::Column::DigestPending, Expr::value(false))
            .filter(notification::Column::DigestPending.eq(true))
            .filter(notification::Column::RecipientId.is_in(skipped_people.iter().copied()))
            .exec(&tx)
            .await?;
    }
    mark_sent(&tx, &settings.notifications, &sent_to).await?;
    tx.commit().await?;
    Ok((queued, skipped_people.len()))
}

fn digest_key(d: &Due) -> String {
    format!("digest:{}:{}", d.user_id, d.local_date)
}

/// Records the local day of each person's digest, in one statement. A person without
/// preferences gets a row of the defaults, carrying the day.
async fn mark_sent<C: ConnectionTrait>(
    conn: &C,
    settings: &NotificationSettings,
    sent_to: &[&Due],
) -> Result<(), sea_orm::DbErr> {
    if sent_to.is_empty() {
        return Ok(());
    }
    let at = crate::db::now();
    let defaults = Prefs::defaults(settings);
    let pref = |p: EmailPreference| -> sea_orm::sea_query::SimpleExpr {
        let v: sea_orm::Value = sea_orm::ActiveEnum::to_value(&p).into();
        Expr::val(v)
    };
    let mut q = Query::insert();
    q.into_table(notification_preference::Entity)
        .columns([
            notification_preference::Column::UserId,
            notification_preference::Column::MySuggestions,
            notification_preference::Column::FollowedCommitments,
            notification_preference::Column::Discussions,
            notification_preference::Column::Meetups,
            notification_preference::Column::Moderation,
            notification_preference::Column::TimeZone,
            notification_preference::Column::LastDigestOn,
            notification_preference::Column::UpdatedAt,
        ])
        .on_conflict(
            OnConflict::column(notification_preference::Column::UserId)
                .update_column(notification_preference::Column::LastDigestOn)
                .to_owned(),
        );
    for d in sent_to {
        q.values_panic([
            d.user_id.into(),
            pref(defaults.my_suggestions),
            pref(defaults.followed_commitments),
            pref(defaults.discussions),
            pref(defaults.meetups),
            pref(defaults.moderation),
            // The site's default zone, whatever it is when the digest is read.
            String::new().into(),
            d.local_date.clone().into(),
            at.into(),
        ]);
    }
    let backend = conn.get_database_backend();
    conn.execute_raw(backend.build(&q)).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    #[test]
    fn the_moment_is_the_local_hour_through_daylight_saving_changes() {
        let ny: Tz = "America/New_York".parse().unwrap();
        let day = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
        // Winter (UTC-5) and summer (UTC-4).
        assert_eq!(
            scheduled_at(ny, day(2027, 1, 14), 8),
            utc(2027, 1, 14, 13, 0)
        );
        assert_eq!(
            scheduled_at(ny, day(2027, 7, 14), 8),
            utc(2027, 7, 14, 12, 0)
        );
        // 02:00 does not exist on 14 March 2027: the clocks jump to 03:00 EDT.
        assert_eq!(
            scheduled_at(ny, day(2027, 3, 14), 2),
            utc(2027, 3, 14, 7, 0)
        );
        // 01:00 happens twice on 7 November 2027: the first one (EDT) counts.
        assert_eq!(
            scheduled_at(ny, day(2027, 11, 7), 1),
            utc(2027, 11, 7, 5, 0)
        );
        let london: Tz = "Europe/London".parse().unwrap();
        assert_eq!(
            scheduled_at(london, day(2027, 3, 28), 1),
            utc(2027, 3, 28, 1, 0)
        );
        assert_eq!(
            scheduled_at(london, day(2027, 1, 14), 8),
            utc(2027, 1, 14, 8, 0)
        );
    }
}
