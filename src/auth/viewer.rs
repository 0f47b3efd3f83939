//! Who is asking: anonymous, or an account whose access token checked out.

use uuid::Uuid;

use crate::entities::user::Role;
use crate::error::{AppError, AppResult};

/// The account behind a request, as loaded at the start of the request.
#[derive(Debug, Clone)]
pub struct Actor {
    pub id: Uuid,
    pub session_id: Uuid,
    pub role: Role,
    pub email_verified: bool,
}

impl Actor {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// Writing content needs a verified email address.
    pub fn require_verified(&self) -> AppResult<()> {
        if self.email_verified {
            Ok(())
        } else {
            Err(AppError::EmailNotVerified)
        }
    }

    pub fn require_role(&self, allowed: &[Role]) -> AppResult<()> {
        if allowed.contains(&self.role) {
            Ok(())
        } else {
            Err(AppError::Forbidden(
                "your role does not allow this".to_string(),
            ))
        }
    }
}

/// The request's viewer, put into the GraphQL context by the HTTP layer.
#[derive(Debug, Clone, Default)]
pub struct Viewer {
    pub actor: Option<Actor>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

impl Viewer {
    pub fn require(&self) -> AppResult<&Actor> {
        self.actor
            .as_ref()
            .ok_or_else(|| AppError::Unauthenticated("log in first".to_string()))
    }
}
