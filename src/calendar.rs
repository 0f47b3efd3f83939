//! iCalendar (RFC 5545): a meet-up as an invitation attached to mail, and the feeds of a
//! meet-up and of a group.

use crate::entities::{meetup, working_group};

/// The iTIP method of a calendar object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// A feed: the events as they stand.
    Publish,
    /// An invitation or an update of one (RSVP confirmation, change, promotion).
    Request,
    /// The event is cancelled.
    Cancel,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Publish => "PUBLISH",
            Method::Request => "REQUEST",
            Method::Cancel => "CANCEL",
        }
    }
}

/// One meet-up as a whole VCALENDAR with `method`, for a mail attachment. `base_url` is the
/// public base URL the event's `URL` points under.
pub fn invite(
    meetup: &meetup::Model,
    group: &working_group::Model,
    method: Method,
    base_url: &str,
) -> String {
    feed(
        &group.name,
        std::slice::from_ref(meetup),
        group,
        method,
        base_url,
    )
}

/// A VCALENDAR of `meetups` (all of `group`), named `name`.
pub fn feed(
    name: &str,
    meetups: &[meetup::Model],
    group: &working_group::Model,
    method: Method,
    base_url: &str,
) -> String {
    // Filled in by the calendar work (icalendar crate); the signature is the contract.
    let _ = (name, meetups, group, method, base_url);
    String::new()
}
