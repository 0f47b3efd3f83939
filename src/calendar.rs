//! iCalendar (RFC 5545): a meet-up as an invitation attached to mail, and the feeds of a
//! meet-up and of a group.
//!
//! The `icalendar` crate writes the objects: it escapes TEXT values (`\`, `,`, `;`, newline)
//! and folds content lines at 75 octets on UTF-8 boundaries. Times are written in UTC (the
//! crate has no VTIMEZONE writer, and a TZID without its VTIMEZONE is not valid); calendar
//! apps show them in the reader's own zone, and the meet-up's zone is named in the text.

use chrono::{DateTime, Utc};
use icalendar::{Calendar, Component, EventLike, EventStatus, Property};

use crate::entities::meetup::{self, Status};
use crate::entities::working_group;

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

    /// The method named `s` (`PUBLISH`, `REQUEST`, `CANCEL`), as mail payloads carry it.
    pub fn parse(s: &str) -> Option<Method> {
        match s {
            "PUBLISH" => Some(Method::Publish),
            "REQUEST" => Some(Method::Request),
            "CANCEL" => Some(Method::Cancel),
            _ => None,
        }
    }
}

/// Names Convene as the producer of every calendar object.
const PRODID: &str = "-//Convene//Meet-ups//EN";

/// One meet-up as a whole VCALENDAR with `method`, for a mail attachment. `base_url` is the
/// public base URL the event's `URL` points under.
///
/// `meetup.online_url` is written as given (as `LOCATION` when there is no venue, else in
/// the description): pass a copy with `online_url: None` for a recipient who may not see it
/// (anyone not GOING who does not organise the group). With `Method::Cancel` the event is
/// `STATUS:CANCELLED` whatever the meet-up's status, so that calendar apps remove it.
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

/// A VCALENDAR of `meetups` (all of `group`), named `name`. The same rule for
/// `online_url` as for [`invite`].
pub fn feed(
    name: &str,
    meetups: &[meetup::Model],
    group: &working_group::Model,
    method: Method,
    base_url: &str,
) -> String {
    render(name, meetups, group, method, base_url, crate::db::now())
}

/// `ics` (an [`invite`]) addressed for iTIP (RFC 5546), which wants an organiser and the
/// attendee in a REQUEST or CANCEL: each event without an `ORGANIZER` gets
/// `ORGANIZER;CN=<name>:mailto:<organizer_email>` and `ATTENDEE;RSVP=FALSE:mailto:<attendee_email>`
/// (no reply is asked for: answers are made in Convene). The mailer calls it with its own
/// sender and the recipient.
pub fn addressed(
    ics: &str,
    organizer_name: Option<&str>,
    organizer_email: &str,
    attendee_email: &str,
) -> String {
    let mut organizer = Property::new("ORGANIZER", format!("mailto:{organizer_email}"));
    // A parameter value may hold no DQUOTE (RFC 5545 §3.2); the crate quotes the rest.
    if let Some(name) = organizer_name
        .map(|n| clean(n).replace(['"', '\n', '\t'], " "))
        .filter(|n| !n.trim().is_empty())
    {
        organizer.add_parameter("CN", name.trim());
    }
    let mut attendee = Property::new("ATTENDEE", format!("mailto:{attendee_email}"));
    attendee.add_parameter("RSVP", "FALSE");
    let lines: String = [organizer, attendee]
        .into_iter()
        .filter_map(|p| TryInto::<String>::try_into(p).ok())
        .collect();
    // Content lines are whole lines here: a folded continuation starts with a space, so
    // `END:VEVENT` at the start of a line is the end of an event and nothing else.
    let mut out = String::with_capacity(ics.len() + 2 * lines.len());
    let mut has_organizer = false;
    for line in ics.split_inclusive("\r\n") {
        if line.starts_with("BEGIN:VEVENT") {
            has_organizer = false;
        } else if line.starts_with("ORGANIZER") {
            has_organizer = true;
        } else if line == "END:VEVENT\r\n" && !has_organizer {
            out.push_str(&lines);
        }
        out.push_str(line);
    }
    out
}

/// [`feed`] stamped at `stamp` (the `DTSTAMP` of every event: when the object was made).
fn render(
    name: &str,
    meetups: &[meetup::Model],
    group: &working_group::Model,
    method: Method,
    base_url: &str,
    stamp: DateTime<Utc>,
) -> String {
    let base_url = base_url.trim_end_matches('/');
    let host = host_of(base_url);
    let mut calendar = Calendar::empty();
    calendar
        .append_property(Property::new("VERSION", "2.0"))
        .append_property(Property::new("PRODID", PRODID))
        .append_property(Property::new("CALSCALE", "GREGORIAN"))
        .append_property(Property::new("METHOD", method.as_str()))
        // RFC 7986's NAME is TEXT, but the crate knows it not and would write it unescaped;
        // saying so makes it escape it. X-WR-CALNAME (what most apps read) it escapes.
        .append_property(
            Property::new("NAME", clean(name))
                .add_parameter("VALUE", "TEXT")
                .done(),
        )
        .append_property(Property::new("X-WR-CALNAME", clean(name)));
    for m in meetups {
        calendar.push(event(m, group, method, base_url, &host, stamp));
    }
    calendar.to_string()
}

fn event(
    m: &meetup::Model,
    group: &working_group::Model,
    method: Method,
    base_url: &str,
    host: &str,
    stamp: DateTime<Utc>,
) -> icalendar::Event {
    let cancelled = m.status == Status::Cancelled || method == Method::Cancel;
    let mut e = icalendar::Event::new();
    e.uid(&format!("meetup-{}@{host}", m.id))
        .timestamp(stamp)
        .created(m.created_at)
        .last_modified(m.updated_at)
        .sequence(u32::try_from(m.sequence).unwrap_or(0))
        .starts(m.starts_at)
        .ends(m.ends_at)
        .summary(&clean(&m.title))
        .description(&clean(&description(m, group, cancelled)))
        .url(&format!("{base_url}/meetups/{}", m.id))
        .status(if cancelled {
            EventStatus::Cancelled
        } else {
            EventStatus::Confirmed
        });
    if let Some(location) = location(m) {
        e.location(&clean(&location));
    }
    e.done()
}

/// Where it is held: the venue and its address, or else the online link.
fn location(m: &meetup::Model) -> Option<String> {
    let place: Vec<&str> = [m.venue.as_deref(), m.address.as_deref()]
        .into_iter()
        .flatten()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if place.is_empty() {
        m.online_url.clone().filter(|u| !u.trim().is_empty())
    } else {
        Some(place.join(", "))
    }
}

/// The agenda, after why it was cancelled and before what a calendar app may not show
/// elsewhere: the online link when the location is the venue, the group, the time zone.
fn description(m: &meetup::Model, group: &working_group::Model, cancelled: bool) -> String {
    let mut parts = Vec::new();
    if cancelled {
        parts.push(match m.cancel_reason.as_deref().map(str::trim) {
            Some(reason) if !reason.is_empty() => format!("Cancelled: {reason}"),
            _ => "Cancelled.".to_string(),
        });
    }
    if !m.agenda.trim().is_empty() {
        parts.push(m.agenda.trim().to_string());
    }
    if m.venue.is_some() || m.address.is_some() {
        if let Some(url) = m.online_url.as_deref().filter(|u| !u.trim().is_empty()) {
            parts.push(format!("Online: {url}"));
        }
    }
    parts.push(format!("{} · times in {}", group.name, m.time_zone));
    parts.join("\n\n")
}

/// Text as a TEXT value may hold it: line breaks as `\n` (the crate escapes them), and no
/// other control characters (RFC 5545 §3.3.11 allows none but HTAB).
fn clean(text: &str) -> String {
    text.replace("\r\n", "\n")
        .replace('\r', "\n")
        .chars()
        .filter(|c| !c.is_control() || *c == '\n' || *c == '\t')
        .collect()
}

/// The host of `base_url` (the right-hand side of every `UID`).
fn host_of(base_url: &str) -> String {
    url::Url::parse(base_url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "convene.invalid".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use ical::parser::ical::component::IcalCalendar;
    use uuid::Uuid;

    const BASE: &str = "https://convene.example.org/";

    fn group() -> working_group::Model {
        let at = Utc.with_ymd_and_hms(2026, 1, 1, 9, 0, 0).unwrap();
        working_group::Model {
            id: Uuid::now_v7(),
            slug: "data-leaders".into(),
            name: "Data Leaders Network".into(),
            description: String::new(),
            description_html: String::new(),
            kind: working_group::Kind::Network,
            visibility: working_group::Visibility::Public,
            join_policy: working_group::JoinPolicy::Open,
            outcomes_public: true,
            member_count: 1,
            created_by: Uuid::now_v7(),
            created_at: at,
            updated_at: at,
        }
    }

    fn meetup(title: &str) -> meetup::Model {
        let at = Utc.with_ymd_and_hms(2026, 1, 2, 9, 0, 0).unwrap();
        meetup::Model {
            id: Uuid::now_v7(),
            working_group_id: Uuid::now_v7(),
            title: title.into(),
            agenda: "1. Welcome\n2. Open data; budgets, and more".into(),
            agenda_html: String::new(),
            starts_at: Utc.with_ymd_and_hms(2027, 3, 4, 14, 30, 0).unwrap(),
            ends_at: Utc.with_ymd_and_hms(2027, 3, 4, 16, 0, 0).unwrap(),
            time_zone: "Europe/London".into(),
            venue: Some("Room 1, Level 2".into()),
            address: Some("10 Downing St; London".into()),
            online_url: None,
            capacity: Some(10),
            going_count: 0,
            waitlist_count: 0,
            next_waitlist_seq: 1,
            status: Status::Scheduled,
            cancel_reason: None,
            sequence: 3,
            reminded_at: None,
            created_by: Uuid::now_v7(),
            created_at: at,
            updated_at: at,
        }
    }

    fn parse(text: &str) -> IcalCalendar {
        let mut parser = ical::IcalParser::new(text.as_bytes());
        let calendar = parser.next().expect("one calendar").expect("parses");
        assert!(parser.next().is_none(), "only one calendar");
        calendar
    }

    /// RFC 5545 §3.3.11: the inverse of TEXT escaping (the parser leaves values escaped).
    fn unescape(value: &str) -> String {
        let mut out = String::new();
        let mut chars = value.chars();
        while let Some(c) = chars.next() {
            if c != '\\' {
                out.push(c);
                continue;
            }
            match chars.next() {
                Some('n') | Some('N') => out.push('\n'),
                Some(other) => out.push(other),
                None => panic!("dangling backslash in {value:?}"),
            }
        }
        out
    }

    fn prop<'a>(props: &'a [ical::property::Property], name: &str) -> &'a str {
        let found: Vec<_> = props.iter().filter(|p| p.name == name).collect();
        assert_eq!(found.len(), 1, "one {name} in {props:?}");
        found[0].value.as_deref().unwrap_or("")
    }

    #[test]
    fn an_invitation_reads_back_with_every_property() {
        let g = group();
        let title = "Budgets, open data; and \"more\"\nsecond line — café 東京 🚀 \\ done";
        let m = meetup(title);
        let stamp = Utc.with_ymd_and_hms(2026, 2, 1, 12, 0, 0).unwrap();
        let text = render(
            &g.name,
            std::slice::from_ref(&m),
            &g,
            Method::Request,
            BASE,
            stamp,
        );

        let cal = parse(&text);
        assert_eq!(prop(&cal.properties, "METHOD"), "REQUEST");
        assert_eq!(prop(&cal.properties, "VERSION"), "2.0");
        assert_eq!(prop(&cal.properties, "PRODID"), PRODID);
        assert_eq!(
            prop(&cal.properties, "X-WR-CALNAME"),
            "Data Leaders Network"
        );
        assert_eq!(cal.events.len(), 1);
        let p = &cal.events[0].properties;
        assert_eq!(
            prop(p, "UID"),
            format!("meetup-{}@convene.example.org", m.id)
        );
        assert_eq!(prop(p, "DTSTAMP"), "20260201T120000Z");
        assert_eq!(prop(p, "SEQUENCE"), "3");
        assert_eq!(prop(p, "DTSTART"), "20270304T143000Z");
        assert_eq!(prop(p, "DTEND"), "20270304T160000Z");
        assert_eq!(unescape(prop(p, "SUMMARY")), title);
        let description = unescape(prop(p, "DESCRIPTION"));
        assert!(
            description.starts_with("1. Welcome\n2. Open data; budgets, and more"),
            "{description}"
        );
        assert!(description.contains("Europe/London"), "{description}");
        assert_eq!(
            unescape(prop(p, "LOCATION")),
            "Room 1, Level 2, 10 Downing St; London"
        );
        assert_eq!(
            prop(p, "URL"),
            format!("https://convene.example.org/meetups/{}", m.id)
        );
        assert_eq!(prop(p, "STATUS"), "CONFIRMED");
    }

    #[test]
    fn lines_are_folded_at_75_octets_on_character_boundaries_and_unfold_to_the_value() {
        let g = group();
        let title = "Données ouvertes, budgets; réunion — 東京 🚀 ".repeat(12);
        let m = meetup(title.trim_end());
        let text = invite(&m, &g, Method::Request, BASE);
        assert!(text.ends_with("END:VCALENDAR\r\n"));
        for line in text.split("\r\n") {
            assert!(line.len() <= 75, "{} octets: {line:?}", line.len());
            assert!(!line.contains(['\r', '\n']));
        }
        // RFC 5545 §3.1: unfolding removes each CRLF followed by one space.
        let unfolded = text.replace("\r\n ", "");
        let summary = unfolded
            .split("\r\n")
            .find_map(|l| l.strip_prefix("SUMMARY:"))
            .expect("a SUMMARY line");
        assert_eq!(unescape(summary), title.trim_end());
        assert_eq!(
            unescape(prop(&parse(&text).events[0].properties, "SUMMARY")).replace(' ', ""),
            title.trim_end().replace(' ', ""),
        );
    }

    #[test]
    fn a_cancelled_meetup_is_cancelled_with_its_reason_and_carriage_returns_are_line_breaks() {
        let g = group();
        let mut m = meetup("Budget day");
        m.status = Status::Cancelled;
        m.cancel_reason = Some("Room flooded\r\nsorry".into());
        m.sequence = 4;
        let cal = parse(&invite(&m, &g, Method::Cancel, BASE));
        assert_eq!(prop(&cal.properties, "METHOD"), "CANCEL");
        let p = &cal.events[0].properties;
        assert_eq!(prop(p, "STATUS"), "CANCELLED");
        assert_eq!(prop(p, "SEQUENCE"), "4");
        assert!(unescape(prop(p, "DESCRIPTION")).starts_with("Cancelled: Room flooded\nsorry"));

        // A CANCEL is a cancellation for its reader even if the meet-up goes on.
        let going_on = meetup("Budget day");
        let cal = parse(&invite(&going_on, &g, Method::Cancel, BASE));
        assert_eq!(prop(&cal.events[0].properties, "STATUS"), "CANCELLED");
    }

    #[test]
    fn an_online_meetup_is_located_at_its_link_and_a_hidden_link_leaves_no_location() {
        let g = group();
        let mut m = meetup("Online");
        m.venue = None;
        m.address = None;
        m.online_url = Some("https://meet.example.org/abc?x=1;y=2".into());
        let cal = parse(&invite(&m, &g, Method::Request, BASE));
        assert_eq!(
            unescape(prop(&cal.events[0].properties, "LOCATION")),
            "https://meet.example.org/abc?x=1;y=2"
        );
        m.online_url = None;
        let cal = parse(&invite(&m, &g, Method::Request, BASE));
        assert!(cal.events[0]
            .properties
            .iter()
            .all(|p| p.name != "LOCATION"));

        // With a venue, the link goes into the description.
        let mut both = meetup("Hybrid");
        both.online_url = Some("https://meet.example.org/h".into());
        let cal = parse(&invite(&both, &g, Method::Request, BASE));
        let p = &cal.events[0].properties;
        assert!(unescape(prop(p, "DESCRIPTION")).contains("Online: https://meet.example.org/h"));
        assert_eq!(
            unescape(prop(p, "LOCATION")),
            "Room 1, Level 2, 10 Downing St; London"
        );
    }

    #[test]
    fn an_addressed_invitation_names_its_organiser_and_attendee() {
        let g = group();
        let m = meetup("Long title, with; specials ".repeat(5).trim_end());
        let text = addressed(
            &invite(&m, &g, Method::Request, BASE),
            Some("Convene: \"meet-ups\""),
            "no-reply@convene.example.org",
            "ann@example.org",
        );
        for line in text.split("\r\n") {
            assert!(line.len() <= 75, "{line:?}");
        }
        let cal = parse(&text);
        let p = &cal.events[0].properties;
        let organizer: Vec<_> = p.iter().filter(|p| p.name == "ORGANIZER").collect();
        assert_eq!(organizer.len(), 1);
        assert_eq!(
            organizer[0].value.as_deref(),
            Some("mailto:no-reply@convene.example.org")
        );
        let params = organizer[0].params.clone().unwrap_or_default();
        assert!(
            params
                .iter()
                .any(|(k, v)| k == "CN" && v.concat().contains("meet-ups")),
            "{params:?}"
        );
        assert_eq!(prop(p, "ATTENDEE"), "mailto:ann@example.org");
        assert_eq!(unescape(prop(p, "SUMMARY")), m.title);
        // Addressing twice adds nothing more.
        let again = addressed(&text, None, "x@example.org", "y@example.org");
        assert_eq!(again, text);
    }

    #[test]
    fn a_feed_names_itself_and_holds_every_meetup_with_its_own_uid() {
        let g = group();
        let a = meetup("First");
        let b = meetup("Second");
        let cal = parse(&feed(
            "Data, Leaders;\r\nNetwork",
            &[a.clone(), b.clone()],
            &g,
            Method::Publish,
            "http://localhost:8080",
        ));
        assert_eq!(prop(&cal.properties, "METHOD"), "PUBLISH");
        assert_eq!(
            unescape(prop(&cal.properties, "X-WR-CALNAME")),
            "Data, Leaders;\nNetwork"
        );
        assert_eq!(
            unescape(prop(&cal.properties, "NAME")),
            "Data, Leaders;\nNetwork"
        );
        let uids: Vec<String> = cal
            .events
            .iter()
            .map(|e| prop(&e.properties, "UID").to_string())
            .collect();
        assert_eq!(
            uids,
            vec![
                format!("meetup-{}@localhost", a.id),
                format!("meetup-{}@localhost", b.id)
            ]
        );
        assert_eq!(
            prop(&cal.events[1].properties, "URL"),
            format!("http://localhost:8080/meetups/{}", b.id)
        );
    }
}
