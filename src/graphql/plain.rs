//! Answering a list's objects without async-graphql's per-field machinery.
//!
//! async-graphql resolves every field of every object through a boxed future of the size of
//! the type's largest resolver, then hashes its name twice into the object's map. For a page
//! of twenty suggestions with their authors and commitments that is most of what Convene
//! spends on the request. A type that implements [`Plain`] says which of its fields it can
//! answer at once from what it holds (no arguments, nothing to load); a list of such objects
//! ([`PlainList`], every connection's `nodes`) answers those fields directly, in one pass
//! with no future per item, and leaves every other field to the type's own resolver; a
//! single object ([`Plainly`], `edges.node`) does the same in selection order.
//! A selection with fragments, custom directives or a response key given twice goes the
//! usual way whole, so what a query gets back never depends on which way it went (the test
//! `columns::every_field_reads_the_same_either_way` compares both for every field).
//! When the HTTP handler writes the response itself ([`JsonText`], [`write_response`]),
//! a list whose every field is plain is written straight into its JSON text, strings
//! borrowed from the rows (no `Value` per field, no map per object).

use std::borrow::Cow;

use async_graphql::indexmap::IndexMap;
use async_graphql::parser::types::{Field, Selection, SelectionSet};
use async_graphql::registry::Registry;
use async_graphql::resolver_utils::{resolve_container_serial, resolve_list, ContainerType};
use async_graphql::{
    Context, ContextSelectionSet, OutputType, Positioned, ServerError, ServerResult, Value,
};
use uuid::Uuid;

use super::scalars::{id_text, to_id};

/// A field's value given at once.
pub enum Given<'a> {
    /// A string, borrowed from the object.
    Str(&'a str),
    /// An `ID`: the UUID's hyphenated text, as `scalars::to_id` gives it.
    Id(Uuid),
    /// Any other value.
    Value(Value),
    /// An object this one holds (a joined author, say), of GraphQL type `.0`, whose own
    /// fields `.1` answers. It is plain when its selection is plain and every field in it
    /// is answered at once; otherwise the field goes to its resolver.
    Object(&'static str, &'a dyn Answers),
}

/// A field's value given at once: `None` when the field is not one the type answers so.
pub type Answer<'a> = Option<async_graphql::Result<Given<'a>>>;

/// The fields an object nested in a plain one (see [`Given::Object`]) answers from what it
/// holds alone.
pub trait Answers: Sync {
    /// The value of field `name`, or `None` when it needs the type's resolver.
    fn answer(&self, name: &str) -> Answer<'_>;
}

/// A GraphQL object some of whose fields need neither arguments nor a load.
pub trait Plain: ContainerType {
    /// False for a type that answers every field through its resolvers (the default), so a
    /// connection can wrap any node type.
    const ANSWERS: bool = false;

    /// The value of field `name` (its context is `c`), or `None` to leave it to the
    /// resolver. Must give exactly what the resolver gives.
    fn plain<'a>(&'a self, _c: &Context<'_>, _name: &str) -> Answer<'a> {
        None
    }
}

/// An object of a list, answered through [`Plain`] first. It is the same GraphQL type as
/// the object itself.
pub struct Plainly<'a, T>(pub &'a T);

impl<T: Plain> OutputType for Plainly<'_, T> {
    fn type_name() -> Cow<'static, str> {
        T::type_name()
    }

    fn create_type_info(registry: &mut Registry) -> String {
        T::create_type_info(registry)
    }

    async fn resolve(
        &self,
        ctx: &ContextSelectionSet<'_>,
        field: &Positioned<Field>,
    ) -> ServerResult<Value> {
        if !T::ANSWERS {
            return self.0.resolve(ctx, field).await;
        }
        resolve(ctx, self.0).await
    }
}

/// A list of objects answered through [`Plain`]: every connection's `nodes`. It is the
/// same GraphQL type as a `Vec` of the objects. When the items' selection is plain (see
/// [`PlainFields`]), the whole list is answered in one pass with no future per item: plain
/// fields at once, and only the fields a type leaves to its resolvers become futures, all
/// run side by side so that their loads batch across the list. Otherwise each item goes
/// through [`Plainly`], as a `Vec` would.
pub struct PlainList<'a, T>(pub Vec<&'a T>);

impl<'a, T: Plain> OutputType for PlainList<'a, T> {
    fn type_name() -> Cow<'static, str> {
        <Vec<Plainly<'a, T>> as OutputType>::type_name()
    }

    fn qualified_type_name() -> String {
        <Vec<Plainly<'a, T>> as OutputType>::qualified_type_name()
    }

    fn create_type_info(registry: &mut Registry) -> String {
        <Vec<Plainly<'a, T>> as OutputType>::create_type_info(registry)
    }

    async fn resolve(
        &self,
        ctx: &ContextSelectionSet<'_>,
        field: &Positioned<Field>,
    ) -> ServerResult<Value> {
        if T::ANSWERS {
            if let Some(fields) = PlainFields::of(ctx.item) {
                if as_text(ctx) {
                    if let Some(text) = write_all(ctx, fields, &self.0) {
                        return Ok(Value::Binary(text.into()));
                    }
                }
                return Ok(resolve_all(ctx, fields, &self.0).await);
            }
        }
        let items = self.0.iter().map(|t| Plainly(*t));
        resolve_list(ctx, field, items, Some(self.0.len())).await
    }
}

/// The list's JSON text when every field of every object in it is plain, written as it
/// goes; `None`, with nothing recorded, as soon as one is not.
fn write_all<T: Plain>(
    ctx: &ContextSelectionSet<'_>,
    fields: PlainFields<'_>,
    items: &[&T],
) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(32 + 160 * items.len());
    let mut errors = Vec::new();
    out.push(b'[');
    for (i, root) in items.iter().copied().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let item = ctx.with_index(i);
        let type_name = root.introspection_type_name();
        let answer = |c: &Context<'_>, name: &str| root.plain(c, name);
        write_object(&mut out, &mut errors, &item, fields, &type_name, &answer)?;
    }
    out.push(b']');
    for e in errors {
        ctx.add_error(e);
    }
    Some(out)
}

/// Writes one object (`ctx`, of type `type_name`) as JSON text: its `fields` in order,
/// leaving out one whose answer is an error (recorded in `errors`), `null` when nothing is
/// left, as [`object_value`] gives. `None`, with `out` and `errors` as they were, when a
/// field is not plain.
fn write_object<'a>(
    out: &mut Vec<u8>,
    errors: &mut Vec<ServerError>,
    ctx: &ContextSelectionSet<'_>,
    fields: PlainFields<'_>,
    type_name: &str,
    answer: &impl Fn(&Context<'_>, &str) -> Answer<'a>,
) -> Option<()> {
    let (start, failed) = (out.len(), errors.len());
    let undo = |out: &mut Vec<u8>, errors: &mut Vec<ServerError>| {
        out.truncate(start);
        errors.truncate(failed);
    };
    let mut first = true;
    for field in fields.iter() {
        let c = ctx.with_field(field);
        let Some(given) = given(&c, type_name, answer) else {
            undo(out, errors);
            return None;
        };
        match given {
            Ok(given) => {
                out.push(if first { b'{' } else { b',' });
                first = false;
                write_key(out, field);
                if write_given(out, errors, &c, given).is_none() {
                    undo(out, errors);
                    return None;
                }
            }
            Err(e) => errors.push(e),
        }
    }
    if first {
        out.extend_from_slice(b"null");
    } else {
        out.push(b'}');
    }
    Some(())
}

/// A field's response key and the colon after it. A key is a GraphQL name
/// (`[_A-Za-z][_0-9A-Za-z]*`), which JSON never escapes.
fn write_key(out: &mut Vec<u8>, field: &Positioned<Field>) {
    out.push(b'"');
    out.extend_from_slice(field.node.response_key().node.as_bytes());
    out.extend_from_slice(b"\":");
}

/// Writes a given value (of field `c`) as JSON text; `None` when it is an object that is
/// not plain (the caller undoes what was written).
fn write_given(
    out: &mut Vec<u8>,
    errors: &mut Vec<ServerError>,
    c: &Context<'_>,
    given: Given<'_>,
) -> Option<()> {
    match given {
        Given::Str(s) => write_str(out, s),
        Given::Id(id) => {
            out.push(b'"');
            out.extend_from_slice(id_text(id, &mut Uuid::encode_buffer()).as_bytes());
            out.push(b'"');
        }
        Given::Value(value) => write_value(out, &value),
        Given::Object(type_name, answers) => {
            let set = &c.item.node.selection_set;
            let fields = PlainFields::of(set)?;
            let ctx = c.with_selection_set(set);
            let answer = |_: &Context<'_>, name: &str| answers.answer(name);
            write_object(out, errors, &ctx, fields, type_name, &answer)?;
        }
    }
    Some(())
}

/// The list's objects, each a map of `fields` in selection order. A field its type does
/// not answer at once keeps its place with a null until its resolver (run beside every
/// other such field of the list) gives its value; when that fails, the error is recorded
/// and the field left out, as [`resolve`] does for one object. Under [`JsonText`] the list
/// comes back as its JSON text rather than a tree of maps.
async fn resolve_all<T: Plain>(
    ctx: &ContextSelectionSet<'_>,
    fields: PlainFields<'_>,
    items: &[&T],
) -> Value {
    let width = fields.len();
    if width == 0 {
        return Value::List(vec![Value::Null; items.len()]);
    }
    // Row after row, one slot per field; `None` is a field left out after an error.
    let mut slots: Vec<Option<Value>> = Vec::with_capacity(items.len() * width);
    let mut pending = Vec::new();
    for (i, root) in items.iter().copied().enumerate() {
        let item = ctx.with_index(i);
        let type_name = root.introspection_type_name();
        let answer = |c: &Context<'_>, name: &str| root.plain(c, name);
        for field in fields.iter() {
            let c = item.with_field(field);
            match plain_value(&c, &type_name, &answer) {
                Some(Ok(value)) => slots.push(Some(value)),
                Some(Err(e)) => {
                    ctx.add_error(e);
                    slots.push(None);
                }
                None => {
                    let slot = slots.len();
                    slots.push(Some(Value::Null));
                    let item = item.clone();
                    pending.push(async move {
                        let c = item.with_field(field);
                        (slot, root.resolve_field(&c).await)
                    });
                }
            }
        }
    }
    for (slot, value) in futures::future::join_all(pending).await {
        match value {
            Ok(value) => slots[slot] = Some(value.unwrap_or_default()),
            Err(e) => {
                slots[slot] = None;
                ctx.add_error(e);
            }
        }
    }
    let keys = fields.iter().map(|f| &f.node.response_key().node);
    if as_text(ctx) {
        let mut out = Vec::with_capacity(64 * slots.len());
        out.push(b'[');
        for (i, row) in slots.chunks(width).enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_row(&mut out, keys.clone().zip(row));
        }
        out.push(b']');
        return Value::Binary(out.into());
    }
    Value::List(
        slots
            .chunks_mut(width)
            .map(|row| row_object(width, keys.clone().zip(row.iter_mut().map(Option::take))))
            .collect(),
    )
}

/// A selection of fields only, none with a custom directive (`@skip` and `@include` are
/// gone by now) and no response key twice. Checked without allocating: a nested object's
/// selection is checked once per row.
#[derive(Clone, Copy)]
struct PlainFields<'a>(&'a [Positioned<Selection>]);

impl<'a> PlainFields<'a> {
    /// The selection's fields, when they are plain; otherwise `None`.
    fn of(set: &'a Positioned<SelectionSet>) -> Option<Self> {
        let items = &set.node.items;
        for (i, selection) in items.iter().enumerate() {
            let Selection::Field(field) = &selection.node else {
                return None;
            };
            if !field.node.directives.is_empty() {
                return None;
            }
            let key = field.node.response_key().node.as_str();
            let twice = items[..i].iter().any(|s| {
                matches!(&s.node, Selection::Field(f) if f.node.response_key().node.as_str() == key)
            });
            if twice {
                return None;
            }
        }
        Some(Self(items))
    }

    fn len(self) -> usize {
        self.0.len()
    }

    fn iter(self) -> impl Iterator<Item = &'a Positioned<Field>> + Clone {
        self.0.iter().filter_map(|s| match &s.node {
            Selection::Field(field) => Some(field),
            _ => None,
        })
    }
}

/// What field `c` of an object of type `type_name` gives at once: `__typename`, or what
/// `answer` gives for the field's name, an error carrying the field's position and path.
fn given<'x, 'a: 'x>(
    c: &Context<'_>,
    type_name: &'x str,
    answer: &impl Fn(&Context<'_>, &str) -> Answer<'a>,
) -> Option<ServerResult<Given<'x>>> {
    let name = c.item.node.name.node.as_str();
    if name == "__typename" {
        return Some(Ok(Given::Str(type_name)));
    }
    match answer(c, name)? {
        Ok(given) => Some(Ok(given)),
        Err(e) => Some(Err(c.set_error_path(e.into_server_error(c.item.pos)))),
    }
}

/// A field's plain value as a `Value`; `None` when the field is not plain.
fn plain_value<'a>(
    c: &Context<'_>,
    type_name: &str,
    answer: &impl Fn(&Context<'_>, &str) -> Answer<'a>,
) -> Option<ServerResult<Value>> {
    Some(Ok(match given(c, type_name, answer)? {
        Ok(Given::Str(s)) => Value::String(s.to_owned()),
        Ok(Given::Id(id)) => Value::String(to_id(id).0),
        Ok(Given::Value(value)) => value,
        Ok(Given::Object(type_name, answers)) => nested_value(c, type_name, answers)?,
        Err(e) => return Some(Err(e)),
    }))
}

/// The selection of field `c` (an object of type `type_name` that `answers` answers) as a
/// map, when every field in it is plain: `None`, with nothing recorded, when one is not.
fn nested_value(c: &Context<'_>, type_name: &str, answers: &dyn Answers) -> Option<Value> {
    let set = &c.item.node.selection_set;
    let fields = PlainFields::of(set)?;
    let ctx = c.with_selection_set(set);
    let answer = |_: &Context<'_>, name: &str| answers.answer(name);
    let mut map = IndexMap::with_capacity(fields.len());
    let mut errors = Vec::new();
    for field in fields.iter() {
        match plain_value(&ctx.with_field(field), type_name, &answer)? {
            Ok(value) => {
                map.insert(field.node.response_key().node.clone(), value);
            }
            Err(e) => errors.push(e),
        }
    }
    for e in errors {
        ctx.add_error(e);
    }
    Some(object_value(map))
}

/// Resolves one object: plain fields at once, the others through the type's resolvers in
/// selection order (their loads still batch with the same field of the list's other items,
/// which run side by side). Errors are recorded and the field left out, as async-graphql
/// does.
pub async fn resolve<T: Plain>(ctx: &ContextSelectionSet<'_>, root: &T) -> ServerResult<Value> {
    let Some(fields) = PlainFields::of(ctx.item) else {
        return resolve_container_serial(ctx, root).await;
    };
    let type_name = root.introspection_type_name();
    let answer = |c: &Context<'_>, name: &str| root.plain(c, name);
    let mut map = IndexMap::with_capacity(fields.len());
    for field in fields.iter() {
        let c = ctx.with_field(field);
        let value = match plain_value(&c, &type_name, &answer) {
            Some(value) => value,
            None => root.resolve_field(&c).await.map(Option::unwrap_or_default),
        };
        match value {
            Ok(value) => {
                map.insert(field.node.response_key().node.clone(), value);
            }
            Err(e) => ctx.add_error(e),
        }
    }
    Ok(object_value(map))
}

/// Set in a request's data by the HTTP handler when the response is written with
/// [`write_response`] and the document names no response key twice at any level (so
/// async-graphql never merges two answers for one key, which it does on maps and lists
/// only). A plain list may then answer with its JSON text, held in a `Value::Binary`,
/// rather than a tree of maps: no map per object, no two hashed inserts per field, and
/// nothing to walk again when writing. Convene's schema has no binary type, so nothing
/// else makes a `Value::Binary`.
pub struct JsonText;

fn as_text(ctx: &ContextSelectionSet<'_>) -> bool {
    ctx.data_opt::<JsonText>().is_some()
}

/// One object's JSON text: its fields in order, leaving out a `None` (a field whose
/// resolver failed); `null` when nothing is left, as [`object`] gives.
fn write_row<'k>(
    out: &mut Vec<u8>,
    row: impl Iterator<Item = (&'k async_graphql::Name, &'k Option<Value>)>,
) {
    let mut first = true;
    for (key, value) in row {
        let Some(value) = value else { continue };
        out.push(if first { b'{' } else { b',' });
        first = false;
        write_str(out, key.as_str());
        out.push(b':');
        write_value(out, value);
    }
    if first {
        out.extend_from_slice(b"null");
    } else {
        out.push(b'}');
    }
}

fn write_str(out: &mut Vec<u8>, s: &str) {
    // Writing a string into a `Vec` cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// A value's JSON text, exactly as serde_json writes a `Value` (compact), except that a
/// `Value::Binary` is JSON text already (see [`JsonText`]) and is copied as it is.
pub fn write_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Binary(text) => out.extend_from_slice(text),
        Value::List(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, item);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            out.push(b'{');
            for (i, (key, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_str(out, key.as_str());
                out.push(b':');
                write_value(out, item);
            }
            out.push(b'}');
        }
        // Null, numbers, strings, booleans and enums: serde_json's own writing. Into a
        // `Vec` it cannot fail (a `Number` is never NaN or infinite).
        scalar => {
            let _ = serde_json::to_writer(&mut *out, scalar);
        }
    }
}

/// A response's JSON text, as serde_json writes `async_graphql::Response` (`data`, then
/// `extensions` and `errors` when there are any), with `data` written by [`write_value`].
pub fn write_response(response: &async_graphql::Response) -> serde_json::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(4096);
    out.extend_from_slice(b"{\"data\":");
    write_value(&mut out, &response.data);
    if !response.extensions.is_empty() {
        out.extend_from_slice(b",\"extensions\":");
        serde_json::to_writer(&mut out, &response.extensions)?;
    }
    if !response.errors.is_empty() {
        out.extend_from_slice(b",\"errors\":");
        serde_json::to_writer(&mut out, &response.errors)?;
    }
    out.push(b'}');
    Ok(out)
}

/// One object's map: its fields in order, leaving out a `None` (a field whose resolver
/// failed); what [`write_row`] writes as text.
fn row_object<'k>(
    width: usize,
    row: impl Iterator<Item = (&'k async_graphql::Name, Option<Value>)>,
) -> Value {
    let mut map = IndexMap::with_capacity(width);
    for (key, value) in row {
        if let Some(value) = value {
            map.insert(key.clone(), value);
        }
    }
    object_value(map)
}

fn object_value(map: IndexMap<async_graphql::Name, Value>) -> Value {
    if map.is_empty() {
        Value::Null
    } else {
        Value::Object(map)
    }
}

/// A string field's value, borrowed from the object.
pub fn string(s: &str) -> Answer<'_> {
    Some(Ok(Given::Str(s)))
}

/// An `ID` field's value.
pub fn id(id: Uuid) -> Answer<'static> {
    Some(Ok(Given::Id(id)))
}

/// A scalar field's value, written as its GraphQL scalar writes it.
pub fn scalar<T: async_graphql::ScalarType>(v: &T) -> Answer<'static> {
    Some(Ok(Given::Value(v.to_value())))
}

/// An enum field's value.
pub fn enumeration<T: async_graphql::resolver_utils::EnumType>(v: T) -> Answer<'static> {
    Some(Ok(Given::Value(async_graphql::resolver_utils::enum_value(
        v,
    ))))
}

/// An object field's value: an object of GraphQL type `type_name` that `answers` answers.
pub fn object<'a>(type_name: &'static str, answers: &'a dyn Answers) -> Answer<'a> {
    Some(Ok(Given::Object(type_name, answers)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use async_graphql::{Name, Number, ServerError};

    fn sample() -> Value {
        let mut inner = IndexMap::new();
        inner.insert(
            Name::new("quote"),
            Value::String("a \"b\"\n\\ c\u{1} é ✓".into()),
        );
        inner.insert(Name::new("empty"), Value::Object(IndexMap::new()));
        inner.insert(Name::new("none"), Value::List(vec![]));
        let mut map = IndexMap::new();
        map.insert(Name::new("id"), Value::String("U3VnZ2VzdGlvbjox".into()));
        map.insert(Name::new("count"), Value::Number(Number::from(-42)));
        map.insert(Name::new("big"), Value::Number(Number::from(u64::MAX)));
        map.insert(
            Name::new("ratio"),
            Value::Number(Number::from_f64(0.1).unwrap()),
        );
        map.insert(Name::new("yes"), Value::Boolean(true));
        map.insert(Name::new("nothing"), Value::Null);
        map.insert(Name::new("status"), Value::Enum(Name::new("OPEN")));
        map.insert(Name::new("inner"), Value::Object(inner));
        Value::List(vec![
            Value::Object(map.clone()),
            Value::Null,
            Value::Object(map),
        ])
    }

    #[test]
    fn values_are_written_as_serde_json_writes_them() {
        let value = sample();
        let mut out = Vec::new();
        write_value(&mut out, &value);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            serde_json::to_string(&value).unwrap()
        );
    }

    #[test]
    fn responses_are_written_as_serde_json_writes_them() {
        let mut plain = async_graphql::Response::new(sample());
        assert_eq!(
            String::from_utf8(write_response(&plain).unwrap()).unwrap(),
            serde_json::to_string(&plain).unwrap()
        );
        plain.errors.push(ServerError::new("it \"failed\"", None));
        plain
            .extensions
            .insert("cost".into(), Value::Number(Number::from(7)));
        assert_eq!(
            String::from_utf8(write_response(&plain).unwrap()).unwrap(),
            serde_json::to_string(&plain).unwrap()
        );
    }

    #[test]
    fn json_text_is_copied_as_it_is() {
        let mut map = IndexMap::new();
        map.insert(
            Name::new("nodes"),
            Value::Binary(br#"[{"id":"1"},null]"#.to_vec().into()),
        );
        let mut out = Vec::new();
        write_value(&mut out, &Value::Object(map));
        assert_eq!(out, br#"{"nodes":[{"id":"1"},null]}"#);
        // A row whose every field failed is null, as `object` makes it.
        let mut out = Vec::new();
        let key = Name::new("id");
        write_row(&mut out, [(&key, &None)].into_iter());
        assert_eq!(out, b"null");
    }
}
