//! Accounts and sessions: sign-up, verification, login, refresh, logout, password reset and
//! change, profiles and roles.

use async_graphql::{Context, Enum, InputObject, Object, SimpleObject, ID};
use chrono::{DateTime, Utc};

use super::ctx;
use super::plain::{self, Plain};
use super::scalars::{parse_id, to_id};
use crate::entities::user::{self, Role as DbRole, Sector as DbSector};
use crate::services::accounts::{self, ProfileChanges, SessionTokens, SignUp};

/// A platform-wide role. Only an ADMIN changes roles.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "DbRole")]
pub enum Role {
    /// A data user: suggests, supports, discusses.
    Member,
    /// Runs working groups and schedules meet-ups.
    Organiser,
    /// Publishes commitments and official responses.
    Official,
    /// Runs the platform: roles, moderation.
    Admin,
}

/// The sector a person or organisation belongs to.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "DbSector")]
pub enum Sector {
    /// Government and other public bodies.
    Public,
    /// Businesses.
    Private,
    /// Charities, NGOs and community groups.
    CivilSociety,
    /// Universities and research.
    Academic,
    /// A person speaking for themself.
    Individual,
}

/// A Convene account as others see it.
pub struct User(pub user::Profile);

impl User {
    /// The columns each field reads, for lists that join people and read only what their
    /// selection shows (`services::columns`); `None` for a field not listed, which then
    /// reads every column. Keep it beside the resolvers below.
    pub(crate) fn columns_for(field: &str) -> Option<&'static [user::Column]> {
        use user::Column as C;
        Some(match field {
            "__typename" => &[],
            // Fields that need whose account it is.
            "id" | "emailDeliverable" => &[C::Id],
            "displayName" => &[C::DisplayName],
            "bio" => &[C::Bio],
            "organisation" => &[C::Organisation],
            "sector" => &[C::Sector],
            "role" => &[C::Role],
            "emailVerified" => &[C::EmailVerifiedAt],
            "createdAt" => &[C::CreatedAt],
            "email" => &[C::Email, C::Id],
            "suspendedUntil" => &[C::Id],
            _ => return None,
        })
    }

    /// The fields a person answers at once (`graphql::plain`), from the profile alone: what
    /// the resolvers below give, without a future each.
    pub(crate) fn answer<'a>(p: &'a user::Profile, name: &str) -> plain::Answer<'a> {
        match name {
            "id" => plain::id(p.id),
            "displayName" => plain::string(&p.display_name),
            "bio" => plain::string(&p.bio),
            "organisation" => plain::string(&p.organisation),
            "sector" => plain::enumeration(Sector::from(p.sector)),
            "role" => plain::enumeration(Role::from(p.role)),
            "emailVerified" => plain::scalar(&p.email_verified_at.is_some()),
            "createdAt" => plain::scalar(&p.created_at),
            _ => None,
        }
    }
}

/// What a person joined into another object's row answers at once.
impl plain::Answers for user::Profile {
    fn answer(&self, name: &str) -> plain::Answer<'_> {
        User::answer(self, name)
    }
}

impl Plain for User {
    const ANSWERS: bool = true;

    fn plain<'a>(&'a self, _c: &Context<'_>, name: &str) -> plain::Answer<'a> {
        User::answer(&self.0, name)
    }
}

impl From<user::Model> for User {
    fn from(m: user::Model) -> Self {
        User(m.into())
    }
}

/// A person with a Convene account.
#[Object(serial)]
impl User {
    /// Opaque identifier.
    async fn id(&self) -> ID {
        to_id(self.0.id)
    }
    /// Public name.
    async fn display_name(&self) -> &str {
        &self.0.display_name
    }
    /// Short profile text.
    async fn bio(&self) -> &str {
        &self.0.bio
    }
    /// The organisation the person speaks for; empty for individuals.
    async fn organisation(&self) -> &str {
        &self.0.organisation
    }
    /// The sector the person belongs to.
    async fn sector(&self) -> Sector {
        self.0.sector.into()
    }
    /// Platform role.
    async fn role(&self) -> Role {
        self.0.role.into()
    }
    /// Whether the account's email address has been confirmed.
    async fn email_verified(&self) -> bool {
        self.0.email_verified_at.is_some()
    }
    /// When the account was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// Whether mail reaches the account's address: false once the receiving server has
    /// refused it permanently (5xx) `mail.undeliverable_after` times in a row, after which it
    /// gets security mail only until the address is verified again (`resendVerificationEmail`
    /// then `verifyEmail`). Visible to the account's owner only; null for anyone else.
    async fn email_deliverable(&self, c: &Context<'_>) -> async_graphql::Result<Option<bool>> {
        let (services, viewer) = ctx(c)?;
        match &viewer.actor {
            Some(a) if a.id == self.0.id => Ok(Some(
                // Boxed: every field of a person on a page would otherwise carry its state.
                Box::pin(crate::services::deliverability::is_deliverable(
                    &services.db,
                    self.0.id,
                ))
                .await
                .map_err(crate::error::AppError::from)?,
            )),
            _ => Ok(None),
        }
    }
    /// Until when the account is suspended; null when it is not. Visible to its owner and
    /// to admins only, null for anyone else.
    async fn suspended_until(
        &self,
        c: &Context<'_>,
    ) -> async_graphql::Result<Option<DateTime<Utc>>> {
        let (services, viewer) = ctx(c)?;
        match &viewer.actor {
            Some(a) if a.id == self.0.id || a.is_admin() => Ok(Box::pin(
                crate::services::suspension::suspended_until(services, self.0.id),
            )
            .await?),
            _ => Ok(None),
        }
    }
    /// The account's email address: visible to its owner and to admins only, null otherwise.
    async fn email(&self, c: &Context<'_>) -> async_graphql::Result<Option<&str>> {
        let (_, viewer) = ctx(c)?;
        Ok(match &viewer.actor {
            Some(a) if a.id == self.0.id || a.is_admin() => Some(self.0.email.as_str()),
            _ => None,
        })
    }
}

/// Sign-up details.
#[derive(InputObject)]
pub struct SignUpInput {
    /// Email address; compared case-insensitively.
    pub email: String,
    /// 12–256 characters, not easy to guess, not containing the email or display name.
    pub password: String,
    /// Public name, 1–80 characters.
    pub display_name: String,
    /// Organisation the person speaks for, if any.
    pub organisation: Option<String>,
    /// Sector; INDIVIDUAL when left out.
    pub sector: Option<Sector>,
}

/// The answer to `signUp`: the same whether or not the address was new.
#[derive(SimpleObject)]
pub struct SignUpPayload {
    /// Always true: look in the mailbox for what happens next.
    pub accepted: bool,
}

/// The answer to `verifyEmail`.
#[derive(SimpleObject)]
pub struct VerifyEmailPayload {
    /// The account whose address is now verified.
    pub user: User,
}

/// The answer to `resendVerificationEmail`: the same whether or not the account exists.
#[derive(SimpleObject)]
pub struct ResendVerificationEmailPayload {
    /// Always true.
    pub accepted: bool,
}

/// Credentials for `logIn`.
#[derive(InputObject)]
pub struct LogInInput {
    /// Email address.
    pub email: String,
    /// Password.
    pub password: String,
}

macro_rules! session_payload {
    ($name:ident, $doc:literal) => {
        #[doc = $doc]
        #[derive(SimpleObject)]
        pub struct $name {
            /// Bearer token for the `Authorization` header; short-lived.
            pub access_token: String,
            /// When the access token stops working.
            pub access_token_expires_at: DateTime<Utc>,
            /// Single-use token for `refreshSession`; keep it secret.
            pub refresh_token: String,
            /// When the refresh token stops working if unused.
            pub refresh_token_expires_at: DateTime<Utc>,
            /// The logged-in account.
            pub user: User,
        }

        impl From<SessionTokens> for $name {
            fn from(t: SessionTokens) -> Self {
                $name {
                    access_token: t.access_token,
                    access_token_expires_at: t.access_token_expires_at,
                    refresh_token: t.refresh_token,
                    refresh_token_expires_at: t.refresh_token_expires_at,
                    user: t.user.into(),
                }
            }
        }
    };
}

session_payload!(LogInPayload, "A new session: tokens and the account.");
session_payload!(
    RefreshSessionPayload,
    "A rotated session: new tokens; the refresh token presented no longer works."
);

/// The answer to `logOut`.
#[derive(SimpleObject)]
pub struct LogOutPayload {
    /// True when a session was found and ended.
    pub logged_out: bool,
}

/// The answer to `logOutEverywhere`.
#[derive(SimpleObject)]
pub struct LogOutEverywherePayload {
    /// True: every session of the account has ended.
    pub logged_out: bool,
}

/// The answer to `requestPasswordReset`: the same whether or not the account exists.
#[derive(SimpleObject)]
pub struct RequestPasswordResetPayload {
    /// Always true.
    pub accepted: bool,
}

/// A reset token from the mail and the new password.
#[derive(InputObject)]
pub struct ResetPasswordInput {
    /// The token from the reset mail.
    pub token: String,
    /// The new password.
    pub new_password: String,
}

/// The answer to `resetPassword`.
#[derive(SimpleObject)]
pub struct ResetPasswordPayload {
    /// The account, now with the new password and every session ended.
    pub user: User,
}

/// The current and the new password.
#[derive(InputObject)]
pub struct ChangePasswordInput {
    /// The password in use now.
    pub current_password: String,
    /// The new password.
    pub new_password: String,
}

/// The answer to `changePassword`.
#[derive(SimpleObject)]
pub struct ChangePasswordPayload {
    /// The account; other sessions have ended, this one goes on.
    pub user: User,
}

/// Profile fields to change; those left out stay as they are.
#[derive(InputObject)]
pub struct UpdateProfileInput {
    /// New public name.
    pub display_name: Option<String>,
    /// New profile text.
    pub bio: Option<String>,
    /// New organisation.
    pub organisation: Option<String>,
    /// New sector.
    pub sector: Option<Sector>,
}

/// The answer to `updateProfile`.
#[derive(SimpleObject)]
pub struct UpdateProfilePayload {
    /// The updated account.
    pub user: User,
}

/// Whose role to change, and to what.
#[derive(InputObject)]
pub struct SetUserRoleInput {
    /// The account.
    pub user_id: ID,
    /// The new role.
    pub role: Role,
}

/// The answer to `setUserRole`.
#[derive(SimpleObject)]
pub struct SetUserRolePayload {
    /// The account with its new role.
    pub user: User,
}

#[derive(Default)]
pub struct AccountQuery;

#[Object]
impl AccountQuery {
    /// The logged-in account, or null when anonymous.
    async fn me(&self, c: &Context<'_>) -> async_graphql::Result<Option<User>> {
        let (services, viewer) = ctx(c)?;
        let Some(actor) = &viewer.actor else {
            return Ok(None);
        };
        Ok(accounts::find_user(services, actor.id)
            .await?
            .map(User::from))
    }

    /// One account by ID.
    async fn user(
        &self,
        c: &Context<'_>,
        #[graphql(desc = "Its ID.")] id: ID,
    ) -> async_graphql::Result<Option<User>> {
        let (services, _) = ctx(c)?;
        let id = parse_id("id", &id)?;
        Ok(accounts::find_user(services, id).await?.map(User::from))
    }
}

#[derive(Default)]
pub struct AccountMutation;

#[Object]
impl AccountMutation {
    /// Creates an account and mails a verification link. The answer is the same whether or
    /// not the address already has an account; its owner is told by mail. Too many sign-ups
    /// from one client address within an hour answer `RATE_LIMITED` with `retryAfterSeconds`.
    async fn sign_up(
        &self,
        c: &Context<'_>,
        #[graphql(desc = "What to do.")] input: SignUpInput,
    ) -> async_graphql::Result<SignUpPayload> {
        let (services, viewer) = ctx(c)?;
        accounts::sign_up(
            services,
            SignUp {
                email: input.email,
                password: input.password,
                display_name: input.display_name,
                organisation: input.organisation,
                sector: input.sector.unwrap_or(Sector::Individual).into(),
            },
            viewer.ip.as_deref(),
        )
        .await?;
        Ok(SignUpPayload { accepted: true })
    }

    /// Confirms an email address with the token from the verification mail (single use,
    /// valid 48 hours). Every session started before the address was confirmed ends.
    async fn verify_email(
        &self,
        c: &Context<'_>,
        #[graphql(desc = "The token from the mail.")] token: String,
    ) -> async_graphql::Result<VerifyEmailPayload> {
        let (services, _) = ctx(c)?;
        let user = accounts::verify_email(services, &token).await?;
        Ok(VerifyEmailPayload { user: user.into() })
    }

    /// Mails a fresh verification link to an unverified account, or to one whose address is
    /// marked undeliverable (verifying it again clears the mark). Shares a per-address hourly
    /// limit with `requestPasswordReset` (`RATE_LIMITED` with `retryAfterSeconds`).
    async fn resend_verification_email(
        &self,
        c: &Context<'_>,
        #[graphql(desc = "The account's email address.")] email: String,
    ) -> async_graphql::Result<ResendVerificationEmailPayload> {
        let (services, viewer) = ctx(c)?;
        accounts::resend_verification(services, &email, viewer.ip.as_deref()).await?;
        Ok(ResendVerificationEmailPayload { accepted: true })
    }

    /// Starts a session. Repeated wrong passwords for an account from one address lock that
    /// pair out for a while (`RATE_LIMITED` with `retryAfterSeconds`); many more lock the
    /// address for every account, or the account from every address.
    async fn log_in(
        &self,
        c: &Context<'_>,
        #[graphql(desc = "What to do.")] input: LogInInput,
    ) -> async_graphql::Result<LogInPayload> {
        let (services, viewer) = ctx(c)?;
        let tokens = accounts::log_in(
            services,
            &input.email,
            &input.password,
            viewer.ip.as_deref(),
            viewer.user_agent.as_deref(),
        )
        .await?;
        Ok(tokens.into())
    }

    /// Exchanges a refresh token for new tokens. Each refresh token works once; using one
    /// twice ends its session.
    async fn refresh_session(
        &self,
        c: &Context<'_>,
        #[graphql(desc = "The refresh token from `logIn` or `refreshSession`.")]
        refresh_token: String,
    ) -> async_graphql::Result<RefreshSessionPayload> {
        let (services, _) = ctx(c)?;
        Ok(accounts::refresh_session(services, &refresh_token)
            .await?
            .into())
    }

    /// Ends the session the refresh token belongs to.
    async fn log_out(
        &self,
        c: &Context<'_>,
        #[graphql(desc = "The refresh token from `logIn` or `refreshSession`.")]
        refresh_token: String,
    ) -> async_graphql::Result<LogOutPayload> {
        let (services, _) = ctx(c)?;
        Ok(LogOutPayload {
            logged_out: accounts::log_out(services, &refresh_token).await?,
        })
    }

    /// Ends every session of the logged-in account.
    async fn log_out_everywhere(
        &self,
        c: &Context<'_>,
    ) -> async_graphql::Result<LogOutEverywherePayload> {
        let (services, viewer) = ctx(c)?;
        let actor = viewer.require()?;
        Ok(LogOutEverywherePayload {
            logged_out: accounts::log_out_everywhere(services, actor).await?,
        })
    }

    /// Mails a password-reset link (valid one hour). The answer is the same whether or not
    /// the account exists. Shares a per-address hourly limit with `resendVerificationEmail`
    /// (`RATE_LIMITED` with `retryAfterSeconds`).
    async fn request_password_reset(
        &self,
        c: &Context<'_>,
        #[graphql(desc = "The account's email address.")] email: String,
    ) -> async_graphql::Result<RequestPasswordResetPayload> {
        let (services, viewer) = ctx(c)?;
        accounts::request_password_reset(services, &email, viewer.ip.as_deref()).await?;
        Ok(RequestPasswordResetPayload { accepted: true })
    }

    /// Sets a new password with a reset token; every session ends.
    async fn reset_password(
        &self,
        c: &Context<'_>,
        #[graphql(desc = "What to do.")] input: ResetPasswordInput,
    ) -> async_graphql::Result<ResetPasswordPayload> {
        let (services, _) = ctx(c)?;
        let user = accounts::reset_password(services, &input.token, &input.new_password).await?;
        Ok(ResetPasswordPayload { user: user.into() })
    }

    /// Changes the logged-in account's password; other sessions end.
    async fn change_password(
        &self,
        c: &Context<'_>,
        #[graphql(desc = "What to do.")] input: ChangePasswordInput,
    ) -> async_graphql::Result<ChangePasswordPayload> {
        let (services, viewer) = ctx(c)?;
        let actor = viewer.require()?;
        let user = accounts::change_password(
            services,
            actor,
            viewer.ip.as_deref(),
            &input.current_password,
            &input.new_password,
        )
        .await?;
        Ok(ChangePasswordPayload { user: user.into() })
    }

    /// Changes the logged-in account's public profile.
    async fn update_profile(
        &self,
        c: &Context<'_>,
        #[graphql(desc = "What to do.")] input: UpdateProfileInput,
    ) -> async_graphql::Result<UpdateProfilePayload> {
        let (services, viewer) = ctx(c)?;
        let actor = viewer.require()?;
        let user = accounts::update_profile(
            services,
            actor,
            ProfileChanges {
                display_name: input.display_name,
                bio: input.bio,
                organisation: input.organisation,
                sector: input.sector.map(Into::into),
            },
        )
        .await?;
        Ok(UpdateProfilePayload { user: user.into() })
    }

    /// Changes an account's role (ADMIN only; the last admin cannot be demoted).
    async fn set_user_role(
        &self,
        c: &Context<'_>,
        #[graphql(desc = "What to do.")] input: SetUserRoleInput,
    ) -> async_graphql::Result<SetUserRolePayload> {
        let (services, viewer) = ctx(c)?;
        let actor = viewer.require()?;
        let id = parse_id("userId", &input.user_id)?;
        let user = accounts::set_user_role(services, actor, id, input.role.into()).await?;
        Ok(SetUserRolePayload { user: user.into() })
    }
}
