//! Calendar URLs: rotating a member's secret calendar URL. (`calendarUrl` on `WorkingGroup`
//! and `Meetup` comes from `services::calendar_feeds`.)

use async_graphql::{Context, Object, SimpleObject, ID};

use super::ctx;
use super::scalars::parse_id;
use crate::services::calendar_feeds as service;

/// The answer to `rotateCalendarUrl`.
#[derive(SimpleObject)]
pub struct RotateCalendarUrlPayload {
    /// The viewer's new secret calendar URL for the group; the previous one no longer works.
    pub calendar_url: String,
}

#[derive(Default)]
pub struct CalendarMutation;

#[Object]
impl CalendarMutation {
    /// Replaces the viewer's secret calendar URL for a private group with a new one, so that
    /// whoever learnt the old one can no longer read the group's meet-ups. Only the group's
    /// active members have such a URL; a public group's feed is not secret.
    async fn rotate_calendar_url(
        &self,
        c: &Context<'_>,
        #[graphql(desc = "The private group's ID.")] working_group_id: ID,
    ) -> async_graphql::Result<RotateCalendarUrlPayload> {
        let (services, viewer) = ctx(c)?;
        let actor = viewer.require()?;
        let calendar_url = service::rotate(
            services,
            actor,
            parse_id("workingGroupId", &working_group_id)?,
        )
        .await?;
        Ok(RotateCalendarUrlPayload { calendar_url })
    }
}
