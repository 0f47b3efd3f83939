//! sea-orm entities mirroring the migrations, one file per table. They never leave the
//! services layer: the GraphQL layer has its own types.

pub mod commitment;
pub mod commitment_follow;
pub mod commitment_update;
pub mod email_deliverability;
pub mod email_token;
pub mod group_channel;
pub mod meetup;
pub mod meetup_outcome;
pub mod membership;
pub mod milestone;
pub mod moderation_action;
pub mod notification;
pub mod notification_preference;
pub mod official_response;
pub mod outbox;
pub mod outcome;
pub mod post;
pub mod post_reaction;
pub mod post_revision;
pub mod refresh_token;
pub mod report;
pub mod rsvp;
pub mod session;
pub mod suggestion;
pub mod suggestion_follow;
pub mod suggestion_revision;
pub mod support;
pub mod thread;
pub mod thread_follow;
pub mod throttle_bucket;
pub mod user;
pub mod working_group;
pub mod working_group_commitment;
