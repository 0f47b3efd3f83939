//! The access policy: who may see inside a group, and so what each viewer may read, answered
//! in one place for every list, item, feed, subscription, notification and mail.
//!
//! The rule: what a group keeps inside (its threads and their posts, its meet-ups, its member
//! list, its unpublished outcomes, its calendar feed) may be read by anyone when the group is
//! PUBLIC; when it is PRIVATE, by its ACTIVE members (organisers included) and the site's
//! administrators only. PENDING, INVITED and REJECTED people, and former members (whose row
//! is gone), are outsiders.
//!
//! The rule is written once, as SQL, in [`reads_group`]; every list filters through a builder
//! made from it ([`group_readable`], [`readable_threads`], [`readable_meetups`], …), and every
//! audience of a notification, mail or reminder is narrowed by [`who_may_see`], which runs the
//! same SQL with the person in the place of the viewer. The per-item checks ([`Access`]) are
//! the same rule over rows already read. A new reader (search, feeds, exports) takes a
//! builder here rather than writing the condition again.

use sea_orm::sea_query::{Expr, ExprTrait, IntoColumnRef, Query, SimpleExpr};
use sea_orm::{ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect};
use uuid::Uuid;

use crate::auth::Actor;
use crate::entities::membership::{self, Role as MemberRole, Status as MemberStatus};
use crate::entities::working_group::{self, Visibility};
use crate::entities::{commitment_update, meetup, meetup_outcome, post, suggestion, thread, user};
use crate::error::{AppError, AppResult};

/// A group as one viewer stands to it: the per-item form of the rule, for rows already read.
#[derive(Clone, Debug)]
pub struct Access {
    pub group: working_group::Model,
    /// The viewer's membership row, whatever its status (pending, invited, rejected too).
    pub membership: Option<membership::Model>,
    /// Site administrators see and run every group.
    pub admin: bool,
}

impl Access {
    /// An ACTIVE member (organisers included).
    pub fn is_member(&self) -> bool {
        self.membership
            .as_ref()
            .is_some_and(|m| active_in(m, self.group.id))
    }

    /// An ACTIVE organiser of the group.
    pub fn is_organiser(&self) -> bool {
        self.membership
            .as_ref()
            .is_some_and(|m| m.status == MemberStatus::Active && m.role == MemberRole::Organiser)
    }

    /// May run the group: its organisers and site administrators.
    pub fn can_organise(&self) -> bool {
        self.admin || self.is_organiser()
    }

    /// May see what a group keeps inside (meet-ups, threads, the member list): everyone for
    /// a public group; active members and administrators for a private one. The same rule
    /// as [`reads_group`].
    pub fn can_see_inside(&self) -> bool {
        open_inside(&self.group) || self.admin || self.is_member()
    }

    /// `FORBIDDEN` unless the viewer may run the group.
    pub fn require_organiser(&self) -> AppResult<()> {
        if self.can_organise() {
            Ok(())
        } else {
            Err(AppError::Forbidden(
                "only the group's organisers may do this".to_string(),
            ))
        }
    }

    /// May see a meet-up's online link: only from inside the group, and then those GOING
    /// (`going`) and whoever runs the group. A former member, who may have been GOING when
    /// they left, never gets it.
    pub fn may_see_online_url(&self, going: bool) -> bool {
        self.can_see_inside() && (going || self.can_organise())
    }

    /// May read a published meet-up outcome of this group: a public outcome anyone may; one
    /// kept to the group follows the group's rule.
    pub fn may_see_outcome(&self, outcome: &meetup_outcome::Model) -> bool {
        outcome.public || self.can_see_inside()
    }
}

/// Whether `m` makes its person an ACTIVE member (organisers included) of group `group_id`.
pub fn active_in(m: &membership::Model, group_id: Uuid) -> bool {
    m.working_group_id == group_id && m.status == MemberStatus::Active
}

/// Whether anyone at all may see inside `group` (a public group), so that who is asking
/// need not be read.
pub fn open_inside(group: &working_group::Model) -> bool {
    group.visibility == Visibility::Public
}

/// How `actor` (or an anonymous viewer) stands to the group `group_id`, read on `conn` (a
/// transaction when the caller will write). `NotFound` when there is no such group.
pub async fn group_access<C: ConnectionTrait>(
    conn: &C,
    actor: Option<&Actor>,
    group_id: Uuid,
) -> AppResult<Access> {
    let group = working_group::Entity::find_by_id(group_id)
        .one(conn)
        .await?
        .ok_or(AppError::NotFound("working group"))?;
    access_to(conn, actor, group).await
}

/// [`group_access`] for a group already read.
pub async fn access_to<C: ConnectionTrait>(
    conn: &C,
    actor: Option<&Actor>,
    group: working_group::Model,
) -> AppResult<Access> {
    let membership = match actor {
        Some(a) => {
            membership::Entity::find()
                .filter(membership::Column::WorkingGroupId.eq(group.id))
                .filter(membership::Column::UserId.eq(a.id))
                .one(conn)
                .await?
        }
        None => None,
    };
    Ok(with_membership(actor, group, membership))
}

/// [`Access`] from a membership row the caller already has (through a request's loader, say).
pub fn with_membership(
    actor: Option<&Actor>,
    group: working_group::Model,
    membership: Option<membership::Model>,
) -> Access {
    Access {
        group,
        membership,
        admin: actor.is_some_and(Actor::is_admin),
    }
}

/// Whether `actor` may read a thread in `group` (the thread's group access, if it is in
/// one): threads outside groups are public; a group's threads follow the group's rule.
pub fn may_read_thread(t: &thread::Model, group: Option<&Access>) -> bool {
    match t.working_group_id {
        None => true,
        Some(_) => group.is_some_and(Access::can_see_inside),
    }
}

/// Who the rule is asked about, as SQL sees them.
#[derive(Clone, Copy)]
enum Reader<'a> {
    /// The viewer of a list (anonymous when `None`).
    Viewer(Option<&'a Actor>),
    /// Each row of the `users` table in the enclosing query: an audience.
    EachUser,
}

/// THE rule, as SQL: `reader` may see inside the group whose id is `group`. Public groups,
/// the groups the reader is an ACTIVE member of, and every group for an administrator.
fn reads_group(group: SimpleExpr, reader: Reader<'_>) -> Condition {
    let public = Query::select()
        .column(working_group::Column::Id)
        .from(working_group::Entity)
        .and_where(working_group::Column::Visibility.eq(Visibility::Public))
        .to_owned();
    let mut c = Condition::any().add(group.clone().in_subquery(public));
    let member_of = |who: SimpleExpr| {
        Query::select()
            .column(membership::Column::WorkingGroupId)
            .from(membership::Entity)
            .and_where(Expr::col((membership::Entity, membership::Column::UserId)).eq(who))
            .and_where(membership::Column::Status.eq(MemberStatus::Active))
            .to_owned()
    };
    match reader {
        Reader::Viewer(None) => {}
        Reader::Viewer(Some(a)) if a.is_admin() => c = c.add(Expr::value(true)),
        Reader::Viewer(Some(a)) => c = c.add(group.in_subquery(member_of(Expr::value(a.id)))),
        Reader::EachUser => {
            c = c
                .add(group.in_subquery(member_of(Expr::col((user::Entity, user::Column::Id)))))
                .add(Expr::col((user::Entity, user::Column::Role)).eq(user::Role::Admin));
        }
    }
    c
}

/// The rows whose group column `group` names a group `viewer` may see inside. Every list of
/// something a group keeps inside filters through this (or a builder below made from it).
pub fn group_readable(viewer: Option<&Actor>, group: impl IntoColumnRef) -> Condition {
    reads_group(Expr::col(group), Reader::Viewer(viewer))
}

/// Threads `viewer` may list: those outside groups, and those of groups they may see inside.
pub fn readable_threads(viewer: Option<&Actor>) -> Condition {
    Condition::any()
        .add(thread::Column::WorkingGroupId.is_null())
        .add(group_readable(
            viewer,
            (thread::Entity, thread::Column::WorkingGroupId),
        ))
}

/// Posts `viewer` may list: those of threads they may read. (Whether a hidden post shows its
/// text is moderation's rule, not this one.)
pub fn readable_posts(viewer: Option<&Actor>) -> Condition {
    let threads = Query::select()
        .column((thread::Entity, thread::Column::Id))
        .from(thread::Entity)
        .cond_where(readable_threads(viewer))
        .to_owned();
    Condition::all().add(post::Column::ThreadId.in_subquery(threads))
}

/// Meet-ups `viewer` may list: those of groups they may see inside.
pub fn readable_meetups(viewer: Option<&Actor>) -> Condition {
    group_readable(viewer, (meetup::Entity, meetup::Column::WorkingGroupId))
}

/// Memberships `viewer` may list as a member list: the ACTIVE members of groups they may see
/// inside.
pub fn readable_members(viewer: Option<&Actor>) -> Condition {
    Condition::all()
        .add(membership::Column::Status.eq(MemberStatus::Active))
        .add(group_readable(
            viewer,
            (membership::Entity, membership::Column::WorkingGroupId),
        ))
}

/// `actor`'s memberships as an ACTIVE organiser: the groups whose content they moderate.
pub fn organises(actor: &Actor) -> Condition {
    Condition::all()
        .add(membership::Column::UserId.eq(actor.id))
        .add(membership::Column::Role.eq(MemberRole::Organiser))
        .add(membership::Column::Status.eq(MemberStatus::Active))
}

/// Something a person may or may not see, for the audience of a notification, a mail, a
/// reminder or a live event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subject {
    /// What a group keeps inside (its meet-ups, threads, members).
    GroupInside(Uuid),
    Thread(Uuid),
    Post(Uuid),
    Meetup(Uuid),
    MeetupOutcome(Uuid),
    Suggestion(Uuid),
    Update(Uuid),
}

/// Where a subject lives: `None` when it no longer exists; `Some(None)` outside any group
/// (anyone may see it); `Some(Some(g))` kept inside group `g`.
async fn place_of<C: ConnectionTrait>(
    conn: &C,
    subject: Subject,
) -> Result<Option<Option<Uuid>>, sea_orm::DbErr> {
    let exists = |found: Option<Uuid>| found.map(|_| None);
    Ok(match subject {
        Subject::GroupInside(g) => working_group::Entity::find_by_id(g)
            .select_only()
            .column(working_group::Column::Id)
            .into_tuple::<Uuid>()
            .one(conn)
            .await?
            .map(Some),
        Subject::Thread(id) => {
            thread::Entity::find_by_id(id)
                .select_only()
                .column(thread::Column::WorkingGroupId)
                .into_tuple::<Option<Uuid>>()
                .one(conn)
                .await?
        }
        Subject::Post(id) => {
            thread::Entity::find()
                .select_only()
                .column(thread::Column::WorkingGroupId)
                .filter(
                    thread::Column::Id.in_subquery(
                        Query::select()
                            .column(post::Column::ThreadId)
                            .from(post::Entity)
                            .and_where(post::Column::Id.eq(id))
                            .to_owned(),
                    ),
                )
                .into_tuple::<Option<Uuid>>()
                .one(conn)
                .await?
        }
        Subject::Meetup(id) => meetup::Entity::find_by_id(id)
            .select_only()
            .column(meetup::Column::WorkingGroupId)
            .into_tuple::<Uuid>()
            .one(conn)
            .await?
            .map(Some),
        Subject::MeetupOutcome(id) => meetup_outcome::Entity::find_by_id(id)
            .one(conn)
            .await?
            .map(|o| (!o.public).then_some(o.working_group_id)),
        // Suggestions and updates live on commitments, outside groups.
        Subject::Suggestion(id) => exists(
            suggestion::Entity::find_by_id(id)
                .select_only()
                .column(suggestion::Column::Id)
                .into_tuple::<Uuid>()
                .one(conn)
                .await?,
        ),
        Subject::Update(id) => exists(
            commitment_update::Entity::find_by_id(id)
                .select_only()
                .column(commitment_update::Column::Id)
                .into_tuple::<Uuid>()
                .one(conn)
                .await?,
        ),
    })
}

/// Those of `people` who may see `subject` now, in the order given: everyone for what lives
/// outside groups; for what a group keeps inside, the same rule as every list
/// ([`reads_group`]) with each person in the viewer's place; nobody for what no longer
/// exists. One statement to place the subject, then one per `CHUNK` people at most.
/// Every audience (notification fan-outs, meet-up mail, reminders, calendar updates) is
/// narrowed here, at delivery, so leaving a group stops what was queued before.
pub async fn who_may_see<C: ConnectionTrait>(
    conn: &C,
    subject: Subject,
    people: Vec<Uuid>,
) -> Result<Vec<Uuid>, sea_orm::DbErr> {
    if people.is_empty() {
        return Ok(people);
    }
    let group = match place_of(conn, subject).await? {
        None => return Ok(Vec::new()),
        Some(None) => return Ok(people),
        Some(Some(g)) => g,
    };
    let allowed: std::collections::HashSet<Uuid> =
        super::notifications::in_chunks(conn, &people, |chunk| {
            user::Entity::find()
                .select_only()
                .column(user::Column::Id)
                .filter(user::Column::Id.is_in(chunk.to_vec()))
                .filter(reads_group(Expr::value(group), Reader::EachUser))
                .into_tuple::<Uuid>()
        })
        .await?
        .into_iter()
        .collect();
    Ok(people.into_iter().filter(|p| allowed.contains(p)).collect())
}

/// Whether `person` may see `subject` now: [`who_may_see`] for one person.
pub async fn may_see<C: ConnectionTrait>(
    conn: &C,
    subject: Subject,
    person: Uuid,
) -> Result<bool, sea_orm::DbErr> {
    Ok(!who_may_see(conn, subject, vec![person]).await?.is_empty())
}
