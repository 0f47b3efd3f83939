//! One error type for the services, mapped to GraphQL errors with a stable `extensions.code`.
//! Internal failures are logged (inside the request's span, which carries its request id)
//! and reach the client as `INTERNAL` with no database text.

use async_graphql::ErrorExtensions;
use sea_orm::{DbErr, SqlErr};

///
/// It deliberately does not implement `Display`: async-graphql converts any `Display` type
/// into an error without extensions, and every error Convene returns must carry its code.
#[derive(Debug)]
pub enum AppError {
    Unauthenticated(String),
    Forbidden(String),
    NotFound(&'static str),
    BadInput {
        field: String,
        message: String,
    },
    Conflict(String),
    /// A conflict with existing data caused by one input field (a taken slug): `CONFLICT`
    /// with `extensions.field`.
    ConflictOn {
        field: String,
        message: String,
    },
    EmailNotVerified,
    RateLimited {
        retry_after_seconds: i64,
    },
    Internal(anyhow::Error),
}

pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    pub fn bad_input(field: impl Into<String>, message: impl Into<String>) -> Self {
        AppError::BadInput {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn internal(err: impl Into<anyhow::Error>) -> Self {
        AppError::Internal(err.into())
    }

    /// The message a client sees; internal details never reach it.
    pub fn message(&self) -> String {
        match self {
            AppError::Unauthenticated(m) | AppError::Forbidden(m) | AppError::Conflict(m) => {
                m.clone()
            }
            AppError::NotFound(what) => format!("{what} not found"),
            AppError::BadInput { message, .. } | AppError::ConflictOn { message, .. } => {
                message.clone()
            }
            AppError::EmailNotVerified => "verify your email address first".into(),
            AppError::RateLimited {
                retry_after_seconds,
            } => format!("too many attempts; try again in {retry_after_seconds} seconds"),
            AppError::Internal(_) => "internal error".into(),
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            AppError::Unauthenticated(_) => "UNAUTHENTICATED",
            AppError::Forbidden(_) => "FORBIDDEN",
            AppError::NotFound(_) => "NOT_FOUND",
            AppError::BadInput { .. } => "BAD_USER_INPUT",
            AppError::Conflict(_) | AppError::ConflictOn { .. } => "CONFLICT",
            AppError::EmailNotVerified => "EMAIL_NOT_VERIFIED",
            AppError::RateLimited { .. } => "RATE_LIMITED",
            AppError::Internal(_) => "INTERNAL",
        }
    }
}

impl From<DbErr> for AppError {
    fn from(err: DbErr) -> Self {
        if let Some(SqlErr::UniqueConstraintViolation(_)) = err.sql_err() {
            return AppError::Conflict("that already exists".into());
        }
        AppError::Internal(err.into())
    }
}

impl ErrorExtensions for AppError {
    fn extend(&self) -> async_graphql::Error {
        if let AppError::Internal(source) = self {
            tracing::error!(error = ?source, "internal error");
        }
        async_graphql::Error::new(self.message()).extend_with(|_, e| {
            e.set("code", self.code());
            match self {
                AppError::BadInput { field, .. } | AppError::ConflictOn { field, .. } => {
                    e.set("field", field.as_str())
                }
                AppError::RateLimited {
                    retry_after_seconds,
                } => e.set("retryAfterSeconds", *retry_after_seconds),
                _ => {}
            }
        })
    }
}

impl From<AppError> for async_graphql::Error {
    fn from(err: AppError) -> Self {
        err.extend()
    }
}
