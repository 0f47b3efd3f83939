//! Accounts and sessions: sign-up, verification, login with throttling, refresh-token
//! rotation with reuse detection, password reset and change, profiles and roles.

use chrono::{DateTime, Duration, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction,
    EntityTrait, IntoActiveModel, QueryFilter, QuerySelect,
};
use serde_json::json;
use uuid::Uuid;

use super::{deliverability, throttle, Ctx};
use crate::auth::password::{self, Verified};
use crate::auth::tokens::{random_token, token_hash, Claims};
use crate::auth::Actor;
use crate::db::{begin_write, now};
use crate::domain::{Bio, DisplayName, Email, Organisation, Password};
use crate::entities::email_token::{self, Purpose};
use crate::entities::user::{self, Role, Sector};
use crate::entities::{refresh_token, session};
use crate::error::{AppError, AppResult};
use crate::outbox::event::OutboxEvent;
use crate::outbox::write as outbox;

pub struct SignUp {
    pub email: String,
    pub password: String,
    pub display_name: String,
    pub organisation: Option<String>,
    pub sector: Sector,
}

/// What a successful login or refresh hands the client.
pub struct SessionTokens {
    pub access_token: String,
    pub access_token_expires_at: DateTime<Utc>,
    pub refresh_token: String,
    pub refresh_token_expires_at: DateTime<Utc>,
    pub user: user::Model,
}

#[derive(Default)]
pub struct ProfileChanges {
    pub display_name: Option<String>,
    pub bio: Option<String>,
    pub organisation: Option<String>,
    pub sector: Option<Sector>,
}

fn parse_email(field: &str, raw: &str) -> AppResult<Email> {
    Email::parse(raw).map_err(|e| AppError::bad_input(field, e.0))
}

fn hour_bucket(at: DateTime<Utc>) -> String {
    at.format("%Y%m%d%H").to_string()
}

async fn find_by_email<C: ConnectionTrait>(
    conn: &C,
    email: &Email,
) -> AppResult<Option<user::Model>> {
    Ok(user::Entity::find()
        .filter(user::Column::EmailNormalized.eq(email.normalized()))
        .one(conn)
        .await?)
}

pub async fn find_user(ctx: &Ctx, id: Uuid) -> AppResult<Option<user::Model>> {
    Ok(user::Entity::find_by_id(id).one(&ctx.db).await?)
}

async fn issue_email_token(
    tx: &DatabaseTransaction,
    user_id: Uuid,
    purpose: Purpose,
    lifetime: Duration,
) -> AppResult<(Uuid, String)> {
    let token = random_token();
    let id = Uuid::now_v7();
    let at = now();
    email_token::ActiveModel {
        id: Set(id),
        user_id: Set(user_id),
        purpose: Set(purpose),
        token_hash: Set(token_hash(&token)),
        created_at: Set(at),
        expires_at: Set(at + lifetime),
        used_at: Set(None),
    }
    .insert(tx)
    .await?;
    Ok((id, token))
}

/// Marks a single-use email token used, or says why it cannot be.
async fn consume_email_token(
    tx: &DatabaseTransaction,
    token: &str,
    purpose: Purpose,
) -> AppResult<email_token::Model> {
    let invalid = || AppError::bad_input("token", "this link is invalid, used or expired");
    let found = email_token::Entity::find()
        .filter(email_token::Column::TokenHash.eq(token_hash(token.trim())))
        .filter(email_token::Column::Purpose.eq(purpose))
        .lock_exclusive()
        .one(tx)
        .await?
        .ok_or_else(invalid)?;
    let at = now();
    if found.used_at.is_some() || found.expires_at <= at {
        return Err(invalid());
    }
    // Conditional on still being unused, so two concurrent uses cannot both succeed.
    let updated = email_token::Entity::update_many()
        .col_expr(
            email_token::Column::UsedAt,
            sea_orm::sea_query::Expr::value(at),
        )
        .filter(email_token::Column::Id.eq(found.id))
        .filter(email_token::Column::UsedAt.is_null())
        .exec(tx)
        .await?;
    if updated.rows_affected != 1 {
        return Err(invalid());
    }
    Ok(found)
}

async fn queue_verification(
    ctx: &Ctx,
    tx: &DatabaseTransaction,
    user: &user::Model,
) -> AppResult<()> {
    let hours = ctx.settings.auth.verification_token_hours;
    let (token_id, token) =
        issue_email_token(tx, user.id, Purpose::VerifyEmail, Duration::hours(hours)).await?;
    outbox::enqueue_mail(
        tx,
        &format!("verify_email:{token_id}:{}", user.email_normalized),
        &user.email,
        "verify_email",
        json!({
            "display_name": user.display_name,
            "token": token,
            "link": ctx.link(&format!("verify-email?token={token}")),
            "hours": hours,
        }),
    )
    .await?;
    Ok(())
}

/// Answers the same whether or not the address is taken; the owner of a taken address is
/// told by mail (at most once an hour) instead. Limited per client address.
pub async fn sign_up(ctx: &Ctx, input: SignUp, ip: Option<&str>) -> AppResult<()> {
    let email = parse_email("email", &input.email)?;
    let display_name = DisplayName::parse(&input.display_name)
        .map_err(|e| AppError::bad_input("displayName", e.0))?;
    let organisation = Organisation::parse(input.organisation.as_deref().unwrap_or(""))
        .map_err(|e| AppError::bad_input("organisation", e.0))?;
    let new_password = Password::parse_new(&input.password, email.as_str(), display_name.as_str())
        .map_err(|e| AppError::bad_input("password", e.0))?;
    throttle::reserve(&ctx.db, &[&throttle::sign_up(&ctx.settings.limits, ip)]).await?;

    if let Some(existing) = find_by_email(&ctx.db, &email).await? {
        // Spend the hashing time a new account would, so timing does not tell either.
        password::burn_equivalent_time(new_password.expose().to_string()).await?;
        return tell_owner_account_exists(ctx, &existing).await;
    }

    let hash = password::hash(new_password.expose().to_string()).await?;
    let at = now();
    let tx = begin_write(&ctx.db).await?;
    let created = user::ActiveModel {
        id: Set(Uuid::now_v7()),
        email: Set(email.as_str().to_string()),
        email_normalized: Set(email.normalized().to_string()),
        password_hash: Set(hash),
        display_name: Set(display_name.as_str().to_string()),
        bio: Set(String::new()),
        organisation: Set(organisation.as_str().to_string()),
        sector: Set(input.sector),
        role: Set(Role::Member),
        email_verified_at: Set(None),
        created_at: Set(at),
        updated_at: Set(at),
        suspended_until: Set(None),
    }
    .insert(&tx)
    .await;
    match created {
        Ok(user) => {
            queue_verification(ctx, &tx, &user).await?;
            tx.commit().await?;
            Ok(())
        }
        Err(e)
            if matches!(
                e.sql_err(),
                Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
            ) =>
        {
            // Someone signed up with this address a moment ago.
            tx.rollback().await?;
            match find_by_email(&ctx.db, &email).await? {
                Some(existing) => tell_owner_account_exists(ctx, &existing).await,
                None => Err(AppError::internal(anyhow::anyhow!(
                    "sign-up conflict without a row"
                ))),
            }
        }
        Err(e) => Err(e.into()),
    }
}

async fn tell_owner_account_exists(ctx: &Ctx, existing: &user::Model) -> AppResult<()> {
    let tx = begin_write(&ctx.db).await?;
    outbox::enqueue_mail(
        &tx,
        &format!(
            "account_exists:{}:{}:{}",
            existing.id,
            hour_bucket(now()),
            existing.email_normalized
        ),
        &existing.email,
        "account_exists",
        json!({
            "display_name": existing.display_name,
            "login_link": ctx.link("login"),
            "reset_link": ctx.link("reset-password"),
        }),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Marks the address verified. Whoever signed up with it may not have been its owner, so
/// every session started before this moment ends.
pub async fn verify_email(ctx: &Ctx, token: &str) -> AppResult<user::Model> {
    let tx = begin_write(&ctx.db).await?;
    let used = consume_email_token(&tx, token, Purpose::VerifyEmail).await?;
    let user = user::Entity::find_by_id(used.user_id)
        .one(&tx)
        .await?
        .ok_or(AppError::NotFound("account"))?;
    let user = if user.email_verified_at.is_none() {
        let mut active = user.into_active_model();
        active.email_verified_at = Set(Some(now()));
        active.updated_at = Set(now());
        let user = active.update(&tx).await?;
        revoke_all_sessions(&tx, user.id, None).await?;
        user
    } else {
        user
    };
    // The link reached the mailbox: an undeliverable mark and its count are forgotten.
    deliverability::clear(&tx, user.id).await?;
    tx.commit().await?;
    sessions_ended(ctx, user.id, None, None);
    Ok(user)
}

/// Sends a fresh verification link to an unverified account, or to one whose address is
/// marked undeliverable (verifying it again clears the mark); says nothing either way.
/// Shares the per-address limit on mail requests with password resets.
pub async fn resend_verification(ctx: &Ctx, raw_email: &str, ip: Option<&str>) -> AppResult<()> {
    let email = parse_email("email", raw_email)?;
    throttle::reserve(
        &ctx.db,
        &[&throttle::mail_requests(&ctx.settings.limits, ip)],
    )
    .await?;
    let tx = begin_write(&ctx.db).await?;
    if let Some(user) = find_by_email(&tx, &email).await? {
        let needs_verifying = user.email_verified_at.is_none()
            || !deliverability::is_deliverable(&tx, user.id).await?;
        if needs_verifying && !outbox::mailbox_is_busy(&tx, &user.email, "verify_email").await? {
            queue_verification(ctx, &tx, &user).await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

fn wrong_credentials() -> AppError {
    AppError::Unauthenticated("wrong email or password".into())
}

pub async fn log_in(
    ctx: &Ctx,
    raw_email: &str,
    raw_password: &str,
    ip: Option<&str>,
    user_agent: Option<&str>,
) -> AppResult<SessionTokens> {
    let email = parse_email("email", raw_email)?;
    let limits = throttle::LoginLimits::new(&ctx.settings.limits, email.normalized(), ip);
    // Counted before the password is checked, so parallel guesses cannot all be tried; a
    // lock-out holds even against the right password.
    throttle::reserve(&ctx.db, &limits.all()).await?;

    let user = find_by_email(&ctx.db, &email).await?;
    let verdict = match (&user, raw_password.chars().count() <= Password::MAX_CHARS) {
        (Some(u), true) => {
            password::verify(raw_password.to_string(), u.password_hash.clone()).await?
        }
        _ => {
            password::burn_equivalent_time(
                raw_password.chars().take(Password::MAX_CHARS).collect(),
            )
            .await?;
            Verified::No
        }
    };
    let Some(user) = user.filter(|_| verdict != Verified::No) else {
        // The reserved attempt stays counted.
        return Err(wrong_credentials());
    };
    // Told only to whoever knows the password, so the answer reveals nothing to a guesser.
    refuse_suspended(&user)?;

    let rehashed = if verdict == Verified::YesNeedsRehash {
        Some(password::hash(raw_password.to_string()).await?)
    } else {
        None
    };
    let tx = begin_write(&ctx.db).await?;
    throttle::password_accepted(&tx, &limits).await?;
    let user = match rehashed {
        Some(hash) => {
            let mut active = user.into_active_model();
            active.password_hash = Set(hash);
            active.update(&tx).await?
        }
        None => user,
    };
    let tokens = start_session(ctx, &tx, user, ip, user_agent).await?;
    tx.commit().await?;
    Ok(tokens)
}

async fn start_session(
    ctx: &Ctx,
    tx: &DatabaseTransaction,
    user: user::Model,
    ip: Option<&str>,
    user_agent: Option<&str>,
) -> AppResult<SessionTokens> {
    let at = now();
    let session = session::ActiveModel {
        id: Set(Uuid::now_v7()),
        user_id: Set(user.id),
        created_at: Set(at),
        last_used_at: Set(at),
        revoked_at: Set(None),
        ip: Set(ip.map(|s| s.chars().take(64).collect())),
        user_agent: Set(user_agent.map(|s| s.chars().take(512).collect())),
    }
    .insert(tx)
    .await?;
    issue_tokens(ctx, tx, user, session.id).await
}

async fn issue_tokens(
    ctx: &Ctx,
    tx: &DatabaseTransaction,
    user: user::Model,
    session_id: Uuid,
) -> AppResult<SessionTokens> {
    let at = now();
    let refresh = random_token();
    let refresh_expires = at + Duration::days(ctx.settings.auth.refresh_token_days);
    refresh_token::ActiveModel {
        id: Set(Uuid::now_v7()),
        session_id: Set(session_id),
        token_hash: Set(token_hash(&refresh)),
        created_at: Set(at),
        expires_at: Set(refresh_expires),
        used_at: Set(None),
    }
    .insert(tx)
    .await?;
    let (access, access_expires) = ctx
        .tokens
        .issue(user.id, session_id, at)
        .map_err(AppError::internal)?;
    Ok(SessionTokens {
        access_token: access,
        access_token_expires_at: access_expires,
        refresh_token: refresh,
        refresh_token_expires_at: refresh_expires,
        user,
    })
}

async fn revoke_session<C: ConnectionTrait>(conn: &C, session_id: Uuid) -> AppResult<()> {
    session::Entity::update_many()
        .col_expr(
            session::Column::RevokedAt,
            sea_orm::sea_query::Expr::value(now()),
        )
        .filter(session::Column::Id.eq(session_id))
        .filter(session::Column::RevokedAt.is_null())
        .exec(conn)
        .await?;
    Ok(())
}

pub(crate) async fn revoke_all_sessions<C: ConnectionTrait>(
    conn: &C,
    user_id: Uuid,
    except: Option<Uuid>,
) -> AppResult<u64> {
    let mut q = session::Entity::update_many()
        .col_expr(
            session::Column::RevokedAt,
            sea_orm::sea_query::Expr::value(now()),
        )
        .filter(session::Column::UserId.eq(user_id))
        .filter(session::Column::RevokedAt.is_null());
    if let Some(keep) = except {
        q = q.filter(session::Column::Id.ne(keep));
    }
    Ok(q.exec(conn).await?.rows_affected)
}

/// Rotates a refresh token. Presenting one that was already used means it was copied: the
/// whole session (every token descended from that login) is revoked.
pub async fn refresh_session(ctx: &Ctx, presented: &str) -> AppResult<SessionTokens> {
    let invalid = || AppError::Unauthenticated("the refresh token is not valid".into());
    let tx = begin_write(&ctx.db).await?;
    let Some(token) = refresh_token::Entity::find()
        .filter(refresh_token::Column::TokenHash.eq(token_hash(presented.trim())))
        .lock_exclusive()
        .one(&tx)
        .await?
    else {
        return Err(invalid());
    };
    let at = now();
    let claimed = refresh_token::Entity::update_many()
        .col_expr(
            refresh_token::Column::UsedAt,
            sea_orm::sea_query::Expr::value(at),
        )
        .filter(refresh_token::Column::Id.eq(token.id))
        .filter(refresh_token::Column::UsedAt.is_null())
        .exec(&tx)
        .await?
        .rows_affected
        == 1;
    if !claimed {
        tracing::warn!(session = %token.session_id, "refresh token reused: revoking its session");
        revoke_session(&tx, token.session_id).await?;
        let owner = session::Entity::find_by_id(token.session_id)
            .select_only()
            .column(session::Column::UserId)
            .into_tuple::<Uuid>()
            .one(&tx)
            .await?;
        tx.commit().await?;
        if let Some(owner) = owner {
            sessions_ended(ctx, owner, Some(token.session_id), None);
        }
        return Err(AppError::Unauthenticated(
            "this refresh token was already used; the session has been ended".into(),
        ));
    }
    let session = session::Entity::find_by_id(token.session_id)
        .one(&tx)
        .await?
        .ok_or_else(invalid)?;
    let user = user::Entity::find_by_id(session.user_id)
        .one(&tx)
        .await?
        .ok_or_else(invalid)?;
    // Before the session's own state, so a suspended account learns why it is out.
    refuse_suspended(&user)?;
    if session.revoked_at.is_some() || token.expires_at <= at {
        return Err(invalid());
    }
    let mut active = session.into_active_model();
    active.last_used_at = Set(at);
    let session = active.update(&tx).await?;
    let tokens = issue_tokens(ctx, &tx, user, session.id).await?;
    tx.commit().await?;
    Ok(tokens)
}

/// Ends the session the refresh token belongs to. False when the token is unknown.
pub async fn log_out(ctx: &Ctx, presented: &str) -> AppResult<bool> {
    let tx = begin_write(&ctx.db).await?;
    let token = refresh_token::Entity::find()
        .filter(refresh_token::Column::TokenHash.eq(token_hash(presented.trim())))
        .one(&tx)
        .await?;
    let Some(token) = token else {
        return Ok(false);
    };
    revoke_session(&tx, token.session_id).await?;
    let owner = session::Entity::find_by_id(token.session_id)
        .select_only()
        .column(session::Column::UserId)
        .into_tuple::<Uuid>()
        .one(&tx)
        .await?;
    tx.commit().await?;
    if let Some(owner) = owner {
        sessions_ended(ctx, owner, Some(token.session_id), None);
    }
    Ok(true)
}

pub async fn log_out_everywhere(ctx: &Ctx, actor: &Actor) -> AppResult<bool> {
    let tx = begin_write(&ctx.db).await?;
    revoke_all_sessions(&tx, actor.id, None).await?;
    tx.commit().await?;
    sessions_ended(ctx, actor.id, None, None);
    Ok(true)
}

/// Tells every instance that sessions of `user_id` ended (after the commit that ended
/// them), so that their open sockets close now rather than when their tokens expire.
pub(crate) fn sessions_ended(ctx: &Ctx, user_id: Uuid, only: Option<Uuid>, except: Option<Uuid>) {
    ctx.events.publish(crate::events::Event::SessionsEnded {
        user_id,
        only,
        except,
    });
}

/// FORBIDDEN, saying until when, for a suspended account.
fn refuse_suspended(user: &user::Model) -> AppResult<()> {
    match user.suspended_until {
        Some(until) if user.is_suspended(now()) => Err(AppError::Forbidden(format!(
            "this account is suspended until {}",
            until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ))),
        _ => Ok(()),
    }
}

/// Mails a reset link to an account, or tells the address's owner that no account uses it.
/// Limited per client address, together with verification resends.
pub async fn request_password_reset(ctx: &Ctx, raw_email: &str, ip: Option<&str>) -> AppResult<()> {
    let email = parse_email("email", raw_email)?;
    throttle::reserve(
        &ctx.db,
        &[&throttle::mail_requests(&ctx.settings.limits, ip)],
    )
    .await?;
    let minutes = ctx.settings.auth.reset_token_minutes;
    let tx = begin_write(&ctx.db).await?;
    match find_by_email(&tx, &email).await? {
        Some(user) if outbox::mailbox_is_busy(&tx, &user.email, "password_reset").await? => {
            // Same answer, no more mail: the owner already has recent links.
        }
        Some(user) => {
            let (token_id, token) = issue_email_token(
                &tx,
                user.id,
                Purpose::ResetPassword,
                Duration::minutes(minutes),
            )
            .await?;
            outbox::enqueue_mail(
                &tx,
                &format!("password_reset:{token_id}:{}", user.email_normalized),
                &user.email,
                "password_reset",
                json!({
                    "display_name": user.display_name,
                    "token": token,
                    "link": ctx.link(&format!("reset-password?token={token}")),
                    "minutes": minutes,
                }),
            )
            .await?;
        }
        None => {
            outbox::enqueue_mail(
                &tx,
                &format!(
                    "password_reset_no_account:{}:{}",
                    hour_bucket(now()),
                    email.normalized()
                ),
                email.as_str(),
                "password_reset_no_account",
                json!({ "signup_link": ctx.link("sign-up") }),
            )
            .await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

async fn queue_password_changed(
    ctx: &Ctx,
    tx: &DatabaseTransaction,
    user: &user::Model,
    event: Uuid,
    by_reset: bool,
) -> AppResult<()> {
    outbox::enqueue_mail(
        tx,
        &format!("password_changed:{event}:{}", user.email_normalized),
        &user.email,
        "password_changed",
        json!({
            "display_name": user.display_name,
            "reset": by_reset,
            "reset_link": ctx.link("reset-password"),
        }),
    )
    .await?;
    Ok(())
}

/// Sets a new password from a reset link; every session ends, and since the link reached
/// the mailbox, the address counts as verified (and an undeliverable mark is cleared).
pub async fn reset_password(ctx: &Ctx, token: &str, new_password: &str) -> AppResult<user::Model> {
    // Check the token before the (slow) hashing, and again atomically when consuming it.
    let pending = email_token::Entity::find()
        .filter(email_token::Column::TokenHash.eq(token_hash(token.trim())))
        .filter(email_token::Column::Purpose.eq(Purpose::ResetPassword))
        .one(&ctx.db)
        .await?
        .filter(|t| t.used_at.is_none() && t.expires_at > now())
        .ok_or_else(|| AppError::bad_input("token", "this link is invalid, used or expired"))?;
    let user = user::Entity::find_by_id(pending.user_id)
        .one(&ctx.db)
        .await?
        .ok_or(AppError::NotFound("account"))?;
    let parsed = Password::parse_new(new_password, &user.email, &user.display_name)
        .map_err(|e| AppError::bad_input("newPassword", e.0))?;
    let hash = password::hash(parsed.expose().to_string()).await?;

    let tx = begin_write(&ctx.db).await?;
    let used = consume_email_token(&tx, token, Purpose::ResetPassword).await?;
    let at = now();
    let mut active = user.into_active_model();
    active.password_hash = Set(hash);
    active.updated_at = Set(at);
    if active.email_verified_at.as_ref().is_none() {
        active.email_verified_at = Set(Some(at));
    }
    let user = active.update(&tx).await?;
    deliverability::clear(&tx, user.id).await?;
    revoke_all_sessions(&tx, user.id, None).await?;
    throttle::clear_account(&tx, &user.email_normalized).await?;
    queue_password_changed(ctx, &tx, &user, used.id, true).await?;
    tx.commit().await?;
    sessions_ended(ctx, user.id, None, None);
    Ok(user)
}

/// Changes the password of a logged-in account; other sessions end, this one stays. The
/// current password is a guess like a login's, counted against the same limits.
pub async fn change_password(
    ctx: &Ctx,
    actor: &Actor,
    ip: Option<&str>,
    current: &str,
    new_password: &str,
) -> AppResult<user::Model> {
    let user = user::Entity::find_by_id(actor.id)
        .one(&ctx.db)
        .await?
        .ok_or(AppError::NotFound("account"))?;
    let limits = throttle::LoginLimits::new(&ctx.settings.limits, &user.email_normalized, ip);
    throttle::reserve(&ctx.db, &limits.all()).await?;
    if password::verify(current.to_string(), user.password_hash.clone()).await? == Verified::No {
        return Err(AppError::bad_input(
            "currentPassword",
            "the current password is wrong",
        ));
    }
    throttle::password_accepted(&ctx.db, &limits).await?;
    let parsed = Password::parse_new(new_password, &user.email, &user.display_name)
        .map_err(|e| AppError::bad_input("newPassword", e.0))?;
    let hash = password::hash(parsed.expose().to_string()).await?;
    let tx = begin_write(&ctx.db).await?;
    let mut active = user.into_active_model();
    active.password_hash = Set(hash);
    active.updated_at = Set(now());
    let user = active.update(&tx).await?;
    revoke_all_sessions(&tx, user.id, Some(actor.session_id)).await?;
    queue_password_changed(ctx, &tx, &user, Uuid::now_v7(), false).await?;
    tx.commit().await?;
    sessions_ended(ctx, user.id, None, Some(actor.session_id));
    Ok(user)
}

pub async fn update_profile(
    ctx: &Ctx,
    actor: &Actor,
    changes: ProfileChanges,
) -> AppResult<user::Model> {
    let tx = begin_write(&ctx.db).await?;
    let user = user::Entity::find_by_id(actor.id)
        .one(&tx)
        .await?
        .ok_or(AppError::NotFound("account"))?;
    let mut active = user.into_active_model();
    if let Some(name) = changes.display_name {
        let name =
            DisplayName::parse(&name).map_err(|e| AppError::bad_input("displayName", e.0))?;
        active.display_name = Set(name.as_str().to_string());
    }
    if let Some(bio) = changes.bio {
        let bio = Bio::parse(&bio).map_err(|e| AppError::bad_input("bio", e.0))?;
        active.bio = Set(bio.as_str().to_string());
    }
    if let Some(org) = changes.organisation {
        let org =
            Organisation::parse(&org).map_err(|e| AppError::bad_input("organisation", e.0))?;
        active.organisation = Set(org.as_str().to_string());
    }
    if let Some(sector) = changes.sector {
        active.sector = Set(sector);
    }
    active.updated_at = Set(now());
    let user = active.update(&tx).await?;
    tx.commit().await?;
    Ok(user)
}

/// Changes an account's role, refusing to demote the last admin.
async fn set_role_in_tx(
    tx: &DatabaseTransaction,
    target: user::Model,
    role: Role,
) -> AppResult<user::Model> {
    if target.role == Role::Admin && role != Role::Admin {
        // Lock the admin rows so two concurrent demotions cannot both pass the count.
        let admins = user::Entity::find()
            .filter(user::Column::Role.eq(Role::Admin))
            .lock_exclusive()
            .all(tx)
            .await?;
        if admins.len() <= 1 {
            return Err(AppError::Conflict(
                "the last admin cannot be removed".into(),
            ));
        }
    }
    let mut active = target.into_active_model();
    active.role = Set(role);
    active.updated_at = Set(now());
    Ok(active.update(tx).await?)
}

pub async fn set_user_role(
    ctx: &Ctx,
    actor: &Actor,
    user_id: Uuid,
    role: Role,
) -> AppResult<user::Model> {
    if !actor.is_admin() {
        return Err(AppError::Forbidden("only an admin changes roles".into()));
    }
    let tx = begin_write(&ctx.db).await?;
    let target = user::Entity::find_by_id(user_id)
        .one(&tx)
        .await?
        .ok_or(AppError::NotFound("user"))?;
    let previous = target.role;
    let user = set_role_in_tx(&tx, target, role).await?;
    if previous != role {
        let reason = format!("{} → {}", role_name(previous), role_name(role));
        super::moderation_log::record(
            &tx,
            super::moderation_log::Entry {
                actor_id: actor.id,
                action: crate::entities::moderation_action::Action::RoleChange,
                subject_type: crate::entities::report::SubjectType::User,
                subject_id: user.id,
                working_group_id: None,
                reason: Some(&reason),
            },
        )
        .await?;
        outbox::enqueue_event(
            &tx,
            &OutboxEvent::RoleChanged {
                user_id: user.id,
                role: role_name(role).to_string(),
                actor_id: Some(actor.id),
                change: Uuid::now_v7(),
            },
        )
        .await?;
    }
    tx.commit().await?;
    Ok(user)
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Member => "MEMBER",
        Role::Organiser => "ORGANISER",
        Role::Official => "OFFICIAL",
        Role::Admin => "ADMIN",
    }
}

/// The command line's way to bootstrap the first admin.
pub async fn set_role_by_email(ctx: &Ctx, raw_email: &str, role: Role) -> AppResult<user::Model> {
    let email = parse_email("email", raw_email)?;
    let tx = begin_write(&ctx.db).await?;
    let target = find_by_email(&tx, &email)
        .await?
        .ok_or(AppError::NotFound("user"))?;
    let user = set_role_in_tx(&tx, target, role).await?;
    tx.commit().await?;
    Ok(user)
}

/// Turns a verified access token into the acting account; the token dies with its session.
/// This is the one place every request's account is resolved (HTTP and WebSocket), so a
/// suspended account is refused here, for reading and writing alike, on its next request:
/// the row read anyway carries `suspended_until`, so the check costs nothing.
pub async fn authenticate(ctx: &Ctx, claims: &Claims) -> AppResult<Actor> {
    let ended = || AppError::Unauthenticated("this session has ended; log in again".into());
    let found = session::Entity::find_by_id(claims.sid)
        .find_also_related(user::Entity)
        .one(&ctx.db)
        .await?;
    match found {
        Some((session, Some(user))) if user.id == claims.sub => {
            refuse_suspended(&user)?;
            if session.revoked_at.is_some() {
                return Err(ended());
            }
            Ok(Actor {
                id: user.id,
                session_id: session.id,
                role: user.role,
                email_verified: user.email_verified_at.is_some(),
            })
        }
        _ => Err(ended()),
    }
}
